//! The `--once` report: what `artemis-top --once` prints, as explicit, versioned types.
//!
//! Scripts, CI jobs and agents parse `--once --format json`, so its shape is a contract, not a
//! side effect of the internal read model. The types here are that contract: they are built
//! from a [`Snapshot`] by one explicit conversion ([`Report::from_snapshot`]) and carry their
//! own serde derives (no flattening of internal types), so a change to an internal type
//! cannot silently change the JSON; it breaks the conversion instead. The JSON Schema in
//! `schema/snapshot.schema.json` describes exactly these types, and the tests check both
//! directions (real output validates; an unknown or a missing field is rejected).
//!
//! [`REPORT_VERSION`] is the first field of every report and changes whenever a field is
//! renamed, removed or changes meaning; adding a field is not a new version for readers
//! that ignore unknown fields, but it is a schema change all the same.
//!
//! The plain-text report (`--format text`) is in [`text`].

pub mod stream;
pub mod text;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::connection::ConnState;
use crate::snapshot::Snapshot;

/// Version of the report's JSON shape, the `version` field of every [`Report`].
///
/// 2: a limit's `requests_limit` may be `null` (a window found in Redis whose limit nobody
/// registered or configured) and carries `limit_origin`; the report gained `health` (the
/// server refusing writes, e.g. `OOM` or a read-only replica).
pub const REPORT_VERSION: u32 = 2;

/// One report: everything the dashboard shows at one moment, as `--once --format json`
/// prints it (one object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_VERSION`] when written by this build.
    pub version: u32,
    /// When the read finished.
    pub taken_at: DateTime<Utc>,
    /// Where the data came from, with any password removed.
    pub source: Source,
    /// The connection state when the read finished.
    pub connection: Connection,
    /// Whether the server accepted writes when the read finished.
    pub health: Health,
    /// Live cards, newest start first.
    pub cards: Vec<Card>,
    /// Aggregates of the metrics keys.
    pub metrics: Metrics,
    /// Rate-limit headroom per window: registered ones and those found by SCAN (Python's).
    pub limits: Vec<Limit>,
    /// Documents and members that could not be parsed.
    pub malformed: Vec<Malformed>,
}

impl Report {
    /// The report of `snap`: every field copied, nothing computed, so the JSON says what the
    /// dashboard shows.
    pub fn from_snapshot(snap: &Snapshot) -> Self {
        Self {
            version: REPORT_VERSION,
            taken_at: snap.taken_at,
            source: Source {
                backend: snap.source.backend.clone(),
                endpoint: snap.source.endpoint.clone(),
            },
            connection: Connection::from_state(&snap.connection),
            health: Health::from_snapshot(snap),
            cards: snap.cards.iter().map(Card::from_snapshot).collect(),
            metrics: Metrics::from_snapshot(&snap.metrics),
            limits: snap.limits.iter().map(Limit::from_snapshot).collect(),
            malformed: snap
                .malformed
                .iter()
                .map(|m| Malformed {
                    key: m.key.clone(),
                    reason: m.reason.clone(),
                })
                .collect(),
        }
    }
}

/// Where a report was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `redis`, `cluster` or `memory`.
    pub backend: String,
    /// Endpoint without credentials, e.g. `redis://127.0.0.1:6379/0`.
    pub endpoint: String,
}

/// Reachability of Redis when the read finished, tagged by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    /// The first connection attempt had not finished.
    Connecting,
    /// Connected since `since`.
    Connected {
        /// When the connection was made.
        since: DateTime<Utc>,
    },
    /// Was connected, lost it; retrying.
    Reconnecting {
        /// When the connection was lost.
        since: DateTime<Utc>,
        /// Attempts made since.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// Never reached; retrying.
    Unreachable {
        /// When the first attempt failed.
        since: DateTime<Utc>,
        /// Attempts made since.
        attempts: u32,
        /// The last attempt's error.
        error: String,
    },
    /// An in-process backend: always available.
    InProcess,
}

impl Connection {
    fn from_state(c: &ConnState) -> Self {
        match c {
            ConnState::Connecting => Self::Connecting,
            ConnState::Connected { since } => Self::Connected { since: *since },
            ConnState::Reconnecting {
                since,
                attempts,
                error,
            } => Self::Reconnecting {
                since: *since,
                attempts: *attempts,
                error: error.clone(),
            },
            ConnState::Unreachable {
                since,
                attempts,
                error,
            } => Self::Unreachable {
                since: *since,
                attempts: *attempts,
                error: error.clone(),
            },
            ConnState::InProcess => Self::InProcess,
        }
    }
}

/// Whether a reachable server accepted writes: it may refuse them for a while (`OOM` at
/// `maxmemory`, a read-only replica after a failover, `LOADING`), which the connection state
/// alone does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Why the server refused writes, `null` when nothing said it did.
    pub refusal: Option<Refusal>,
    /// The ACL user may not run `INFO`, so only refused replies can tell.
    pub probe_denied: bool,
}

/// A server refusing requests for a reason that passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The reply code: `OOM`, `READONLY`, `LOADING`, `MASTERDOWN`, `BUSY`, `CLUSTERDOWN`, …
    pub code: String,
    /// What the dashboard shows, e.g. "Redis refuses writes: OOM (maxmemory reached)".
    pub label: String,
    /// When it was first seen.
    pub since: DateTime<Utc>,
    /// `reply` (a refused command) or `probe` (the server's `INFO`).
    pub source: String,
}

impl Health {
    fn from_snapshot(snap: &Snapshot) -> Self {
        use crate::connection::HealthSource;
        Self {
            refusal: snap.health.refusal_at(snap.taken_at).map(|r| Refusal {
                code: r.code.clone(),
                label: r.label(),
                since: r.since,
                source: match r.source {
                    HealthSource::Reply => "reply",
                    HealthSource::Probe => "probe",
                }
                .into(),
            }),
            probe_denied: snap.health.probe_denied,
        }
    }
}

/// One card: its pipeline document's fields, its stages in stage order and its cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The card's id.
    pub card_id: String,
    /// `queued`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Stages the pipeline announced.
    pub total_stages: i64,
    /// Stages completed so far.
    pub completed_stages: i64,
    /// The stage last reported.
    pub current_stage: Option<String>,
    /// Naive ISO-8601 UTC, as the writer stored it.
    pub start_time: String,
    /// Naive ISO-8601 UTC once the pipeline ended.
    pub end_time: Option<String>,
    /// Free-form; `title` is shown when it is a string.
    pub metadata: Map<String, Value>,
    /// Present once the pipeline has ended and its writer recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// The card's stages, in stage order.
    pub stages: Vec<Stage>,
    /// LLM spend attributed to the card, when known.
    pub cost_usd: Option<f64>,
}

impl Card {
    fn from_snapshot(c: &crate::tracker::Card) -> Self {
        let p = &c.pipeline;
        Self {
            card_id: p.card_id.clone(),
            status: p.status.as_str().to_owned(),
            total_stages: p.total_stages,
            completed_stages: p.completed_stages,
            current_stage: p.current_stage.as_deref().map(str::to_owned),
            start_time: p.start_time.to_string(),
            end_time: p.end_time.as_deref().map(str::to_owned),
            metadata: p.metadata.to_map(),
            duration_seconds: p.duration_seconds,
            stages: c
                .stages
                .iter()
                .map(|s| Stage {
                    stage_name: s.stage_name.to_string(),
                    status: s.status.as_str().to_owned(),
                    progress_percent: s.progress_percent,
                    message: s.message.clone(),
                    timestamp: s.timestamp.to_string(),
                    metadata: s.metadata.to_map(),
                })
                .collect(),
            cost_usd: c.cost_usd,
        }
    }
}

impl From<crate::tracker::Card> for Card {
    /// The conversion of the snapshot's card, by move: the streamed report converts each card once and
    /// drops it, so nothing needs copying.
    fn from(c: crate::tracker::Card) -> Self {
        let p = c.pipeline;
        Self {
            card_id: p.card_id,
            status: p.status.as_str().to_owned(),
            total_stages: p.total_stages,
            completed_stages: p.completed_stages,
            current_stage: p.current_stage.map(String::from),
            start_time: p.start_time.into(),
            end_time: p.end_time.map(String::from),
            metadata: p.metadata.into(),
            duration_seconds: p.duration_seconds,
            stages: c
                .stages
                .into_iter()
                .map(|s| Stage {
                    stage_name: s.stage_name.into(),
                    status: s.status.as_str().to_owned(),
                    progress_percent: s.progress_percent,
                    message: s.message,
                    timestamp: s.timestamp.into(),
                    metadata: s.metadata.into(),
                })
                .collect(),
            cost_usd: c.cost_usd,
        }
    }
}

/// One stage of a card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// The stage's name.
    pub stage_name: String,
    /// `pending`, `running`, `completed`, `failed` or `skipped`.
    pub status: String,
    /// Progress the writer reported, as written (not clamped).
    pub progress_percent: Option<i64>,
    /// The writer's last message.
    pub message: Option<String>,
    /// Naive ISO-8601 UTC of the last update, as written.
    pub timestamp: String,
    /// Free-form.
    pub metadata: Map<String, Value>,
}

/// Aggregates of the metrics keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Completed pipelines.
    pub pipelines: PipelineTotals,
    /// LLM requests and the cache.
    pub llm: LlmTotals,
    /// Per provider, highest cost first.
    pub providers: Vec<Breakdown>,
    /// Per model, highest cost first.
    pub models: Vec<Breakdown>,
    /// One entry per local day, oldest first, days without data as zeros.
    pub daily: Vec<Day>,
    /// Most recently completed pipelines, newest first.
    pub recent: Vec<RecentPipeline>,
    /// Code reviews.
    pub code_review: CodeReviewTotals,
}

impl Metrics {
    fn from_snapshot(m: &crate::metrics::Summary) -> Self {
        let p = &m.pipelines;
        let l = &m.llm;
        let breakdown = |items: &[crate::metrics::Breakdown]| {
            items
                .iter()
                .map(|b| Breakdown {
                    name: b.name.clone(),
                    requests: b.requests,
                    cost: b.cost,
                })
                .collect()
        };
        Self {
            pipelines: PipelineTotals {
                completed: p.completed,
                total_cost: p.total_cost,
                total_duration: p.total_duration,
                avg_duration: p.avg_duration,
                avg_cost: p.avg_cost,
                by_status: p.by_status.clone(),
            },
            llm: LlmTotals {
                total_requests: l.total_requests,
                prompt_tokens: l.prompt_tokens,
                completion_tokens: l.completion_tokens,
                cache_hits: l.cache_hits,
                cache_misses: l.cache_misses,
                total_cost: l.total_cost,
                hit_rate: l.hit_rate,
                saved_cost: l.saved_cost,
                latency_ms_total: l.latency_ms_total,
            },
            providers: breakdown(&m.providers),
            models: breakdown(&m.models),
            daily: m
                .daily
                .iter()
                .map(|d| Day {
                    date: d.date,
                    completions: d.completions,
                    cost: d.cost,
                    duration: d.duration,
                })
                .collect(),
            recent: m
                .recent
                .iter()
                .map(|r| RecentPipeline {
                    card_id: r.card_id.clone(),
                    duration_seconds: r.duration_seconds,
                    status: r.status.clone(),
                    cost: r.cost,
                    timestamp: r.timestamp.clone(),
                })
                .collect(),
            code_review: CodeReviewTotals {
                developers: m
                    .code_review
                    .developers
                    .iter()
                    .map(|d| DeveloperReviews {
                        developer: d.developer.clone(),
                        total_reviews: d.total_reviews,
                        total_score: d.total_score,
                        critical_issues: d.critical_issues,
                        high_issues: d.high_issues,
                    })
                    .collect(),
                by_status: m.code_review.by_status.clone(),
            },
        }
    }
}

/// Totals of completed pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineTotals {
    /// Pipelines completed.
    pub completed: i64,
    /// USD.
    pub total_cost: f64,
    /// Seconds.
    pub total_duration: f64,
    /// Seconds per pipeline; `None` before the first completion.
    pub avg_duration: Option<f64>,
    /// USD per pipeline; `None` before the first completion.
    pub avg_cost: Option<f64>,
    /// Completions per status.
    pub by_status: BTreeMap<String, i64>,
}

/// Totals of LLM requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmTotals {
    /// Requests made.
    pub total_requests: i64,
    /// Prompt tokens sent.
    pub prompt_tokens: i64,
    /// Completion tokens received.
    pub completion_tokens: i64,
    /// Cache lookups that hit.
    pub cache_hits: i64,
    /// Cache lookups that missed.
    pub cache_misses: i64,
    /// USD.
    pub total_cost: f64,
    /// `cache_hits / (cache_hits + cache_misses)`, `None` before the first lookup.
    pub hit_rate: Option<f64>,
    /// USD not spent thanks to cache hits.
    pub saved_cost: f64,
    /// Summed request latency, for an average.
    pub latency_ms_total: f64,
}

/// Requests and cost of one provider or model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Provider or model name.
    pub name: String,
    /// Requests made.
    pub requests: i64,
    /// USD.
    pub cost: f64,
}

/// The figures of one local day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    /// Local date.
    pub date: NaiveDate,
    /// Pipelines completed that day.
    pub completions: i64,
    /// USD.
    pub cost: f64,
    /// Seconds.
    pub duration: f64,
}

/// One recently completed pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentPipeline {
    /// The card's id.
    pub card_id: String,
    /// Seconds.
    pub duration_seconds: f64,
    /// Final status, as written.
    pub status: String,
    /// USD.
    pub cost: f64,
    /// Local time, as the writer stored it.
    pub timestamp: String,
}

/// Totals of code reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeReviewTotals {
    /// Per developer.
    pub developers: Vec<DeveloperReviews>,
    /// Reviews per status.
    pub by_status: BTreeMap<String, i64>,
}

/// The code reviews of one developer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeveloperReviews {
    /// The developer's name.
    pub developer: String,
    /// Reviews recorded.
    pub total_reviews: i64,
    /// Summed scores.
    pub total_score: i64,
    /// Critical issues found.
    pub critical_issues: i64,
    /// High-severity issues found.
    pub high_issues: i64,
}

/// Headroom of one limiter key in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// The limiter's Redis key.
    pub key: String,
    /// What is limited (e.g. `openai:gpt-4o`).
    pub resource: String,
    /// Who is limited (e.g. a team).
    pub identifier: String,
    /// Length of the sliding window, seconds.
    pub window_seconds: f64,
    /// Requests admitted in the current window.
    pub requests_used: u64,
    /// Requests allowed per window; `None` when nothing names the limit ("limit unknown":
    /// a window no process registered, outside the original's presets and the config).
    pub requests_limit: Option<u64>,
    /// Tokens reserved in the current window, when the limit counts tokens.
    pub tokens_used: Option<u64>,
    /// Tokens allowed per window, when the limit counts tokens.
    pub tokens_limit: Option<u64>,
    /// Where the limit comes from.
    pub limit_origin: crate::limiter::LimitOrigin,
}

impl Limit {
    fn from_snapshot(l: &crate::limiter::LimitUsage) -> Self {
        Self {
            key: l.key.clone(),
            resource: l.resource.clone(),
            identifier: l.identifier.clone(),
            window_seconds: l.window_seconds,
            requests_used: l.requests_used,
            requests_limit: l.requests_limit,
            tokens_used: l.tokens_used,
            tokens_limit: l.tokens_limit,
            limit_origin: l.limit_origin,
        }
    }
}

/// Something read from Redis that could not be parsed, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Malformed {
    /// The key (or key and member) it was read from.
    pub key: String,
    /// Why it could not be parsed.
    pub reason: String,
}
