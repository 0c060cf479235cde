//! What the simulator's pipelines do: the stage catalogue (progress messages, the LLM calls each
//! stage makes, how long its work takes, how it fails), the models it calls, the work items it
//! invents, and [`plan_card`], which turns one seeded random generator into the complete plan
//! of one card.
//!
//! Everything a card will do is decided here, up front, from its own generator: the driver only
//! carries the plan out. That is what makes a seeded run reproducible whatever the scheduling:
//! the only things left to chance at run time are *timing* effects (which card's identical
//! request reaches the cache first, which call the rate limiter makes wait).
//!
//! Prompts are built from small pools (a component, a title, a fixed instruction per call) so
//! that they repeat across cards the way real pipelines repeat boilerplate requests, and the
//! response cache gets hits.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::cache::{LlmRequest, Message};

/// The Artemis stages, in pipeline order.
pub const STAGES: [&str; 8] = [
    "requirements",
    "analysis",
    "architecture",
    "development",
    "code_review",
    "testing",
    "integration",
    "deployment",
];

/// A model the simulated provider serves, with its latency profile and the rate limits the
/// simulator enforces for it (per simulated minute).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// The requested model id.
    pub model: &'static str,
    /// The provider that serves it (`openai`, `anthropic`).
    pub provider: &'static str,
    /// The model id the "API" answers with (dated, as real APIs do); priced by prefix.
    pub served_as: &'static str,
    /// Seconds before the first token, at speed 1.
    pub first_token_seconds: f64,
    /// Seconds per completion token, at speed 1.
    pub seconds_per_token: f64,
    /// Requests admitted per simulated minute.
    pub requests_per_minute: u64,
    /// Tokens (prompt + completion) admitted per simulated minute.
    pub tokens_per_minute: u64,
}

/// Every model the simulator calls; all are in `assets/prices.toml`, so costs are real list
/// prices.
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        model: "gpt-4o-mini",
        provider: "openai",
        served_as: "gpt-4o-mini-2024-07-18",
        first_token_seconds: 0.4,
        seconds_per_token: 0.006,
        requests_per_minute: 20,
        tokens_per_minute: 60_000,
    },
    ModelSpec {
        model: "gpt-4o",
        provider: "openai",
        served_as: "gpt-4o-2024-08-06",
        first_token_seconds: 0.7,
        seconds_per_token: 0.012,
        requests_per_minute: 10,
        tokens_per_minute: 40_000,
    },
    ModelSpec {
        model: "claude-sonnet-4-5",
        provider: "anthropic",
        served_as: "claude-sonnet-4-5-20250929",
        first_token_seconds: 0.9,
        seconds_per_token: 0.014,
        requests_per_minute: 8,
        tokens_per_minute: 40_000,
    },
    ModelSpec {
        model: "claude-haiku-4-5",
        provider: "anthropic",
        served_as: "claude-haiku-4-5-20251001",
        first_token_seconds: 0.4,
        seconds_per_token: 0.006,
        requests_per_minute: 12,
        tokens_per_minute: 50_000,
    },
    ModelSpec {
        model: "gemini-2.5-flash",
        provider: "google",
        served_as: "gemini-2.5-flash",
        first_token_seconds: 0.35,
        seconds_per_token: 0.005,
        requests_per_minute: 12,
        tokens_per_minute: 60_000,
    },
];

/// The spec of a requested model.
pub fn model(name: &str) -> Option<&'static ModelSpec> {
    MODELS.iter().find(|m| m.model == name)
}

/// One kind of LLM call a stage makes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallSpec {
    /// The requested model id (one of [`MODELS`]).
    pub model: &'static str,
    /// The system prompt.
    pub system: &'static str,
    /// The user prompt; `{component}` and `{title}` are filled from the card.
    pub template: &'static str,
    /// The request's `max_tokens`.
    pub max_tokens: u64,
    /// The request's temperature.
    pub temperature: f64,
    /// Progress message while the call runs.
    pub message: &'static str,
}

/// One stage of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSpec {
    /// The stage name the tracker shows (`analysis`, `development`, …).
    pub name: &'static str,
    /// Progress messages of the stage's non-LLM work, in order.
    pub work: &'static [&'static str],
    /// The calls the stage may make (a card picks some of them, in this order).
    pub calls: &'static [CallSpec],
    /// Fewest and most calls per run of the stage.
    pub call_count: (usize, usize),
    /// Seconds of one work step at speed 1 (low, high).
    pub work_seconds: (f64, f64),
    /// Why the stage can fail.
    pub failures: &'static [&'static str],
    /// Relative chance that a failing card fails here.
    pub failure_weight: u32,
}

const SYSTEM_PM: &str =
    "You are the product analyst of an autonomous software team. Answer in concise Markdown.";
const SYSTEM_ARCH: &str =
    "You are a senior software architect. Prefer simple designs; name trade-offs explicitly.";
const SYSTEM_DEV: &str =
    "You are a careful senior developer. Output complete, compilable code and nothing else.";
const SYSTEM_REVIEW: &str = "You are a strict code reviewer. Report issues as critical, high, medium or low, then a score out of 100.";
const SYSTEM_QA: &str = "You are a QA engineer. Write focused, deterministic tests.";
const SYSTEM_OPS: &str =
    "You are a release engineer. Be precise about ordering, rollback and verification.";

/// The stage catalogue, in [`STAGES`] order.
pub const CATALOGUE: [StageSpec; 8] = [
    StageSpec {
        name: "requirements",
        work: &[
            "reading the card and linked tickets",
            "drafting acceptance criteria",
            "checking scope with the product notes",
        ],
        calls: &[
            CallSpec {
                model: "gpt-4o-mini",
                system: SYSTEM_PM,
                template: "Turn this work item into user stories with acceptance criteria: {title}",
                max_tokens: 1200,
                temperature: 0.2,
                message: "drafting user stories",
            },
            CallSpec {
                model: "gpt-4o-mini",
                system: SYSTEM_PM,
                template: "List the non-functional requirements that usually apply to the {component}.",
                max_tokens: 800,
                temperature: 0.0,
                message: "listing non-functional requirements",
            },
        ],
        call_count: (1, 2),
        work_seconds: (2.0, 5.0),
        failures: &["requirements rejected: the card contradicts the product spec"],
        failure_weight: 1,
    },
    StageSpec {
        name: "analysis",
        work: &[
            "mapping affected modules",
            "estimating complexity",
            "collecting prior incidents",
        ],
        calls: &[
            CallSpec {
                model: "gemini-2.5-flash",
                system: SYSTEM_ARCH,
                template: "Summarize the modules, data stores and external APIs of the {component}.",
                max_tokens: 1500,
                temperature: 0.0,
                message: "summarizing the codebase",
            },
            CallSpec {
                model: "gpt-4o",
                system: SYSTEM_ARCH,
                template: "Identify the risks and unknowns of this change: {title}",
                max_tokens: 1000,
                temperature: 0.3,
                message: "assessing risks",
            },
        ],
        call_count: (1, 2),
        work_seconds: (2.0, 6.0),
        failures: &["analysis blocked: a required upstream API is undocumented"],
        failure_weight: 1,
    },
    StageSpec {
        name: "architecture",
        work: &[
            "sketching components",
            "reviewing data model changes",
            "writing the design note",
        ],
        calls: &[
            CallSpec {
                model: "claude-sonnet-4-5",
                system: SYSTEM_ARCH,
                template: "Propose a design for: {title}. The change lives in the {component}.",
                max_tokens: 2000,
                temperature: 0.4,
                message: "proposing a design",
            },
            CallSpec {
                model: "gpt-4o",
                system: SYSTEM_ARCH,
                template: "Write an ADR template pre-filled with the constraints of the {component}.",
                max_tokens: 900,
                temperature: 0.0,
                message: "drafting the ADR",
            },
        ],
        call_count: (1, 2),
        work_seconds: (3.0, 7.0),
        failures: &["design rejected: it needs a schema migration nobody approved"],
        failure_weight: 1,
    },
    StageSpec {
        name: "development",
        work: &[
            "creating the branch",
            "applying generated changes",
            "running the build",
            "fixing lint warnings",
        ],
        calls: &[
            CallSpec {
                model: "claude-sonnet-4-5",
                system: SYSTEM_DEV,
                template: "Implement: {title}. Follow the conventions of the {component}.",
                max_tokens: 4000,
                temperature: 0.2,
                message: "generating the implementation",
            },
            CallSpec {
                model: "gpt-4o",
                system: SYSTEM_DEV,
                template: "Write the boilerplate (config, wiring, feature flag) for a new endpoint in the {component}.",
                max_tokens: 1500,
                temperature: 0.0,
                message: "generating boilerplate",
            },
            CallSpec {
                model: "gpt-4o-mini",
                system: SYSTEM_DEV,
                template: "Explain and fix the usual compile errors after a dependency bump in the {component}.",
                max_tokens: 1000,
                temperature: 0.0,
                message: "fixing compile errors",
            },
        ],
        call_count: (1, 3),
        work_seconds: (3.0, 8.0),
        failures: &[
            "build failed: generated code does not compile after 3 attempts",
            "provider overloaded (HTTP 529) on every retry",
        ],
        failure_weight: 3,
    },
    StageSpec {
        name: "code_review",
        work: &["collecting the diff", "running static analysis"],
        calls: &[
            CallSpec {
                model: "claude-sonnet-4-5",
                system: SYSTEM_REVIEW,
                template: "Review the diff implementing: {title}",
                max_tokens: 1500,
                temperature: 0.0,
                message: "reviewing the diff",
            },
            CallSpec {
                model: "claude-haiku-4-5",
                system: SYSTEM_REVIEW,
                template: "Summarize the team's coding standards for the {component} as a checklist.",
                max_tokens: 700,
                temperature: 0.0,
                message: "loading the review checklist",
            },
        ],
        call_count: (1, 2),
        work_seconds: (2.0, 5.0),
        failures: &["review rejected: critical security issue"],
        failure_weight: 2,
    },
    StageSpec {
        name: "testing",
        work: &[
            "running unit tests",
            "running integration tests",
            "collecting coverage",
        ],
        calls: &[
            CallSpec {
                model: "gpt-4o-mini",
                system: SYSTEM_QA,
                template: "Write unit tests for: {title}",
                max_tokens: 2000,
                temperature: 0.0,
                message: "generating tests",
            },
            CallSpec {
                model: "gpt-4o-mini",
                system: SYSTEM_QA,
                template: "List the edge cases every change to the {component} must test.",
                max_tokens: 800,
                temperature: 0.0,
                message: "listing edge cases",
            },
        ],
        call_count: (1, 2),
        work_seconds: (3.0, 8.0),
        failures: &[
            "tests failed: 3 of 214 failing",
            "tests failed: flaky timeout in the payment suite",
        ],
        failure_weight: 3,
    },
    StageSpec {
        name: "integration",
        work: &[
            "merging main",
            "running contract tests",
            "deploying to staging",
        ],
        calls: &[CallSpec {
            model: "gemini-2.5-flash",
            system: SYSTEM_OPS,
            template: "Write the integration checklist for a release of the {component}.",
            max_tokens: 900,
            temperature: 0.0,
            message: "preparing the integration checklist",
        }],
        call_count: (0, 1),
        work_seconds: (2.0, 6.0),
        failures: &["integration failed: contract test against billing v2 broke"],
        failure_weight: 2,
    },
    StageSpec {
        name: "deployment",
        work: &[
            "canary at 5%",
            "canary at 50%",
            "full rollout",
            "verifying health checks",
        ],
        calls: &[CallSpec {
            model: "gpt-4o-mini",
            system: SYSTEM_OPS,
            template: "Write release notes for: {title}",
            max_tokens: 600,
            temperature: 0.3,
            message: "writing release notes",
        }],
        call_count: (0, 1),
        work_seconds: (2.0, 5.0),
        failures: &["deployment rolled back: error rate above 2% in the canary"],
        failure_weight: 1,
    },
];

/// Components the invented work items touch.
pub const COMPONENTS: &[&str] = &[
    "auth service",
    "billing API",
    "search indexer",
    "notification worker",
    "admin dashboard",
    "payments gateway",
    "user profile service",
    "reporting pipeline",
    "mobile sync API",
    "feature-flag service",
];

/// What kind of work item a card is; a bug fix skips the architecture stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// New functionality: goes through every stage.
    Feature,
    /// A bug fix: skips the architecture stage.
    Bugfix,
    /// A restructuring without new behaviour.
    Refactor,
}

impl Kind {
    /// The lowercase name stored in the card's metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feature => "feature",
            Self::Bugfix => "bugfix",
            Self::Refactor => "refactor",
        }
    }
}

/// Work items: (title, kind, index into [`COMPONENTS`]).
pub const WORK_ITEMS: &[(&str, Kind, usize)] = &[
    ("Add OAuth2 login with Google", Kind::Feature, 0),
    ("Expire sessions after password change", Kind::Feature, 0),
    ("Fix token refresh race on mobile", Kind::Bugfix, 0),
    ("Prorate plan upgrades mid-cycle", Kind::Feature, 1),
    ("Fix double charge on retried invoices", Kind::Bugfix, 1),
    ("Fuzzy matching for product search", Kind::Feature, 2),
    ("Reindex without downtime", Kind::Refactor, 2),
    ("Batch push notifications per user", Kind::Feature, 3),
    ("Fix duplicate emails after retries", Kind::Bugfix, 3),
    ("Audit log page for admins", Kind::Feature, 4),
    ("Fix CSV export timezone", Kind::Bugfix, 4),
    ("Support 3-D Secure 2 challenges", Kind::Feature, 5),
    ("Retry webhooks with backoff", Kind::Refactor, 5),
    ("Let users delete their account", Kind::Feature, 6),
    ("Fix avatar upload over 5 MB", Kind::Bugfix, 6),
    ("Weekly revenue report by region", Kind::Feature, 7),
    ("Move report jobs to the queue", Kind::Refactor, 7),
    ("Offline edits with conflict resolution", Kind::Feature, 8),
    ("Fix sync loop on clock skew", Kind::Bugfix, 8),
    ("Percentage rollouts for flags", Kind::Feature, 9),
    ("Remove stale feature flags", Kind::Refactor, 9),
];

/// The developer agents that write the code and get reviewed.
pub const DEVELOPERS: &[&str] = &["developer-a", "developer-b", "developer-c"];

/// One step inside a stage run.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Non-LLM work: wait this many simulated seconds.
    Work {
        /// Simulated seconds (divided by the speed for real time).
        seconds: f64,
        /// Progress message while the work runs.
        message: String,
    },
    /// One LLM call through the cache.
    Llm {
        /// The request, sent through the cache.
        request: LlmRequest,
        /// Progress message while the call runs.
        message: String,
    },
}

/// A code review's outcome, recorded with `track_code_review`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewPlan {
    /// `approved`, `changes_requested` or `rejected`.
    pub status: &'static str,
    /// Score out of 100.
    pub score: i64,
    /// Critical findings (0 for an approval).
    pub critical_issues: i64,
    /// High-severity findings.
    pub high_issues: i64,
}

/// One run of one stage (a stage can run twice: development after a review asked for
/// changes).
#[derive(Debug, Clone, PartialEq)]
pub struct StageRun {
    /// The stage's name (one of [`STAGES`]).
    pub stage: &'static str,
    /// Each step, with the progress reported once it is done.
    pub steps: Vec<(Step, u8)>,
    /// Set for code review runs.
    pub review: Option<ReviewPlan>,
    /// The message of the stage's `completed` report.
    pub done_message: String,
    /// A second run of the stage.
    pub rework: bool,
}

/// How a card ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every run finishes; the pipeline completes.
    Completed,
    /// Fails before step `step` of run `run`.
    Failed {
        /// Index into [`CardPlan::runs`].
        run: usize,
        /// Index into that run's steps.
        step: usize,
        /// The completion message.
        message: String,
    },
    /// Is cancelled before step `step` of run `run`.
    Cancelled {
        /// Index into [`CardPlan::runs`].
        run: usize,
        /// Index into that run's steps.
        step: usize,
        /// The completion message.
        message: String,
    },
}

/// Everything one card will do.
#[derive(Debug, Clone, PartialEq)]
pub struct CardPlan {
    /// One of [`WORK_ITEMS`]' titles (the card's metadata `title`).
    pub title: &'static str,
    /// What kind of work item it is.
    pub kind: Kind,
    /// One of [`COMPONENTS`], the part of the product the card touches.
    pub component: &'static str,
    /// `high`, `medium` or `low` (the card's metadata `priority`).
    pub priority: &'static str,
    /// One of [`DEVELOPERS`], the agent whose code is reviewed.
    pub developer: &'static str,
    /// The stage runs, in order.
    pub runs: Vec<StageRun>,
    /// How the card ends.
    pub ending: Ending,
}

impl CardPlan {
    /// The distinct stages the card goes through (its `total_stages`).
    pub fn total_stages(&self) -> u32 {
        let mut names: Vec<&str> = self.runs.iter().map(|r| r.stage).collect();
        names.sort_unstable();
        names.dedup();
        names.len() as u32
    }

    /// LLM calls the plan makes if it runs to its ending.
    pub fn planned_calls(&self) -> usize {
        let mut n = 0;
        for (i, run) in self.runs.iter().enumerate() {
            for (j, (step, _)) in run.steps.iter().enumerate() {
                if self.ends_before(i, j) {
                    return n;
                }
                n += usize::from(matches!(step, Step::Llm { .. }));
            }
        }
        n
    }

    fn ends_before(&self, run: usize, step: usize) -> bool {
        match &self.ending {
            Ending::Completed => false,
            Ending::Failed {
                run: r, step: s, ..
            }
            | Ending::Cancelled {
                run: r, step: s, ..
            } => (*r, *s) == (run, step),
        }
    }
}

/// Plans one card from its own generator. `failure_rate` is the chance the card fails at
/// some stage; a card that does not fail is cancelled with a quarter of that chance.
pub fn plan_card<R: Rng>(rng: &mut R, failure_rate: f64) -> CardPlan {
    let failure_rate = failure_rate.clamp(0.0, 1.0);
    let &(title, kind, component_idx) = WORK_ITEMS.choose(rng).unwrap_or(&WORK_ITEMS[0]);
    let component = COMPONENTS.get(component_idx).copied().unwrap_or("core");
    let priority = *["high", "medium", "medium", "low"]
        .choose(rng)
        .unwrap_or(&"medium");
    let developer = *DEVELOPERS.choose(rng).unwrap_or(&"developer-a");
    let fill = |t: &str| {
        t.replace("{title}", title)
            .replace("{component}", component)
    };

    // Whether the first review asks for changes (then development and review run again).
    let rework = rng.random_bool(0.3);
    let mut runs = Vec::new();
    for spec in &CATALOGUE {
        if spec.name == "architecture" && kind == Kind::Bugfix {
            continue;
        }
        let rounds = if spec.name == "code_review" && rework {
            2
        } else {
            1
        };
        for round in 0..rounds {
            if round == 1 {
                // The developer reworks the change before the second review.
                let dev = CATALOGUE[3];
                runs.push(stage_run(rng, &dev, &fill, true));
            }
            let mut run = stage_run(rng, spec, &fill, round == 1);
            if spec.name == "code_review" {
                run.review = Some(if rework && round == 0 {
                    ReviewPlan {
                        status: "changes_requested",
                        score: rng.random_range(45..75),
                        critical_issues: rng.random_range(0..2),
                        high_issues: rng.random_range(1..5),
                    }
                } else {
                    ReviewPlan {
                        status: "approved",
                        score: rng.random_range(78..99),
                        critical_issues: 0,
                        high_issues: rng.random_range(0..2),
                    }
                });
            }
            runs.push(run);
        }
    }

    let ending = if rng.random_bool(failure_rate) {
        let total: u32 = runs.iter().map(|r| spec_of(r.stage).failure_weight).sum();
        let mut pick = rng.random_range(0..total.max(1));
        let mut at = runs.len() - 1;
        for (i, r) in runs.iter().enumerate() {
            let w = spec_of(r.stage).failure_weight;
            if pick < w {
                at = i;
                break;
            }
            pick -= w;
        }
        let run = &mut runs[at];
        let step = rng.random_range(0..run.steps.len().max(1));
        let message = spec_of(run.stage)
            .failures
            .choose(rng)
            .copied()
            .unwrap_or("stage failed")
            .to_owned();
        if let Some(review) = &mut run.review {
            *review = ReviewPlan {
                status: "rejected",
                score: rng.random_range(20..50),
                critical_issues: rng.random_range(1..4),
                high_issues: rng.random_range(1..6),
            };
        }
        Ending::Failed {
            run: at,
            step,
            message,
        }
    } else if rng.random_bool(failure_rate / 4.0) {
        let at = rng.random_range(0..runs.len());
        let step = rng.random_range(0..runs[at].steps.len().max(1));
        let message = *[
            "cancelled: superseded by another card",
            "cancelled by the product owner",
            "cancelled: duplicate of an open card",
        ]
        .choose(rng)
        .unwrap_or(&"cancelled");
        Ending::Cancelled {
            run: at,
            step,
            message: message.to_owned(),
        }
    } else {
        Ending::Completed
    };

    CardPlan {
        title,
        kind,
        component,
        priority,
        developer,
        runs,
        ending,
    }
}

fn spec_of(stage: &str) -> &'static StageSpec {
    CATALOGUE
        .iter()
        .find(|s| s.name == stage)
        .unwrap_or(&CATALOGUE[0])
}

/// Plans one run of a stage: its LLM calls (a chosen subset of the stage's, in catalogue
/// order) interleaved with its work steps, with increasing progress figures.
fn stage_run<R: Rng>(
    rng: &mut R,
    spec: &StageSpec,
    fill: &dyn Fn(&str) -> String,
    rework: bool,
) -> StageRun {
    let (lo, hi) = spec.call_count;
    let hi = hi.min(spec.calls.len());
    let n_calls = rng.random_range(lo.min(hi)..=hi);
    let mut chosen: Vec<usize> =
        rand::seq::index::sample(rng, spec.calls.len(), n_calls).into_vec();
    chosen.sort_unstable();
    let n_work = rng
        .random_range(1..=spec.work.len().max(1))
        .min(spec.work.len());
    let mut work: Vec<usize> = rand::seq::index::sample(rng, spec.work.len(), n_work).into_vec();
    work.sort_unstable();

    let mut steps: Vec<Step> = Vec::new();
    let mut calls = chosen.into_iter().map(|i| spec.calls[i]).peekable();
    for (k, w) in work.into_iter().enumerate() {
        // Calls go before the work they feed, spread over the run.
        if (k > 0 || rng.random_bool(0.5))
            && let Some(call) = calls.next()
        {
            steps.push(llm_step(&call, fill, rework));
        }
        let (a, b) = spec.work_seconds;
        steps.push(Step::Work {
            seconds: rng.random_range(a..b),
            message: spec.work[w].to_owned(),
        });
    }
    for call in calls {
        steps.push(llm_step(&call, fill, rework));
    }
    let n = steps.len();
    let steps = steps
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let progress = ((i + 1) * 100 / (n + 1)).min(99) as u8;
            (s, progress)
        })
        .collect();
    StageRun {
        stage: spec.name,
        steps,
        review: None,
        done_message: if rework {
            format!("{} done (second pass)", spec.name.replace('_', " "))
        } else {
            format!("{} done", spec.name.replace('_', " "))
        },
        rework,
    }
}

fn llm_step(call: &CallSpec, fill: &dyn Fn(&str) -> String, rework: bool) -> Step {
    let mut user = fill(call.template);
    if rework {
        user.push_str(" Address the review comments.");
    }
    let request = LlmRequest::new(
        call.model,
        vec![Message::system(call.system), Message::user(user)],
    )
    .temperature(call.temperature)
    .max_tokens(call.max_tokens);
    Step::Llm {
        request,
        message: format!("{} ({})", call.message, call.model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn every_model_is_priced_and_every_call_model_exists() {
        let prices = crate::cache::PriceTable::load(None).unwrap();
        let usage = crate::cache::Usage {
            prompt_tokens: 1000,
            completion_tokens: 1000,
            total_tokens: 2000,
        };
        for m in MODELS {
            let cost = prices.cost(m.served_as, m.model, &usage);
            assert!(
                cost.is_some_and(|c| c > 0.0),
                "{} is not priced",
                m.served_as
            );
        }
        for stage in &CATALOGUE {
            for call in stage.calls {
                let spec = model(call.model).expect("call model in MODELS");
                // The biggest request must fit the model's token limit.
                assert!(call.max_tokens + 10_000 < spec.tokens_per_minute);
            }
        }
        assert_eq!(CATALOGUE.map(|s| s.name), STAGES);
    }

    #[test]
    fn the_same_seed_plans_the_same_card() {
        let a = plan_card(&mut ChaCha8Rng::seed_from_u64(42), 0.3);
        let b = plan_card(&mut ChaCha8Rng::seed_from_u64(42), 0.3);
        assert_eq!(a, b);
        let different = (0..20)
            .map(|s| plan_card(&mut ChaCha8Rng::seed_from_u64(s), 0.3))
            .filter(|p| *p != a)
            .count();
        assert!(different > 15);
    }

    #[test]
    fn plans_are_well_formed() {
        let mut endings = [0usize; 3];
        for seed in 0..400 {
            let plan = plan_card(&mut ChaCha8Rng::seed_from_u64(seed), 0.4);
            let total = plan.total_stages();
            assert!(total == 7 || total == 8);
            assert_eq!(total == 7, plan.kind == Kind::Bugfix);
            for run in &plan.runs {
                assert!(!run.steps.is_empty());
                let progress: Vec<u8> = run.steps.iter().map(|(_, p)| *p).collect();
                assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
                assert!(progress.iter().all(|p| *p < 100));
                assert_eq!(run.review.is_some(), run.stage == "code_review");
            }
            match &plan.ending {
                Ending::Completed => endings[0] += 1,
                Ending::Failed { run, step, .. } => {
                    endings[1] += 1;
                    assert!(*step < plan.runs[*run].steps.len());
                }
                Ending::Cancelled { run, step, .. } => {
                    endings[2] += 1;
                    assert!(*step < plan.runs[*run].steps.len());
                }
            }
        }
        // Roughly 40% fail, 6% of the rest are cancelled.
        assert!(endings[1] > 100 && endings[1] < 220, "{endings:?}");
        assert!(endings[2] > 2, "{endings:?}");
        assert_eq!(
            plan_card(&mut ChaCha8Rng::seed_from_u64(1), 0.0).ending,
            Ending::Completed
        );
    }
}
