//! The built-in simulator: realistic Artemis pipelines run in process through the real library,
//! for `artemis-top --demo` (no Redis needed: the memory backend) and `artemis-top simulate`
//! (any Redis, to watch with a second `artemis-top` or to load-test).
//!
//! It exists so that the dashboard can be seen alive without a Python pipeline, and so that
//! the whole write path is exercised end to end the way a pipeline uses it: every card is
//! reported through [`Tracker`], every LLM call goes through the real response cache
//! ([`CachedClient`]) in front of a simulated provider ([`provider::SimProvider`]) that waits
//! for the real rate limiter, and completions and code reviews go through [`Metrics`]. The
//! tracker, the metrics handle and the cache's recorder share **one** [`OutageBuffer`], so a
//! simulation against a Redis that goes away keeps its writes and replays them in order.
//!
//! Layout: [`script`] is the catalogue (stages, prompts, models, work items) and plans each card
//! up front from its own seeded generator; this module runs the plans (`Simulation::run`);
//! [`provider`] is the simulated LLM provider; [`report`] is what a run did.
//!
//! Reproducibility: card `n` is planned by `ChaCha8Rng::seed_from_u64(mix(seed) ^ n)`, so what
//! each card does (title, stages, calls, failures, reviews) depends on the seed alone. Timing
//! decides only which identical request reaches the cache first (hits versus misses, so costs)
//! and which calls the rate limiter makes wait. `--duration` and Ctrl-C decide how many cards
//! start and whether in-flight ones are cancelled.

pub mod provider;
pub mod report;
pub mod script;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::buffer::{OutageBuffer, WriteOutcome};
use crate::cache::{CacheControl, CachedClient};
use crate::error::{Error, Result};

use crate::backend::Backend;
use crate::client::Artemis;
use crate::metrics::{CodeReviewRecord, Metrics, PipelineCompletionRecord};
use crate::model::{PipelineStatus, StageStatus};
use crate::tracker::{StageUpdate, Tracker};

use self::provider::{ProviderStats, SimProvider};
use self::report::{CardOutcome, EndedBy, SimReport};
use self::script::{CardPlan, Ending, Step};

/// Speed of `artemis-top --demo`: a card takes about half a minute.
pub const DEMO_SPEED: f64 = 8.0;
/// Cards running at once in the demo.
pub const DEMO_CONCURRENCY: usize = 7;
/// Failure rate of the demo.
pub const DEMO_FAILURE_RATE: f64 = 0.12;
/// The cache namespace of the simulator's requests: its made-up answers are never served to a
/// real pipeline sharing the Redis, and can be dropped together.
pub const CACHE_NAMESPACE: &str = "artemis-sim";
/// How long the simulator's cache entries live.
pub const CACHE_TTL: Duration = Duration::from_secs(86_400);

/// What a simulation does.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Time multiplier: 10 runs everything ten times faster than real pipelines (stage work, LLM
    /// latency, and the rate-limit window that stands for a minute).
    pub speed: f64,
    /// Cards to start in total; `None`: until `duration` or a stop.
    pub cards: Option<u64>,
    /// Cards running at once.
    pub concurrency: usize,
    /// Chance that a card fails at some stage (0..1); a card that does not fail is cancelled
    /// with a quarter of that chance.
    pub failure_rate: f64,
    /// Seed of every card's plan (title, stages, calls, failures, reviews): the same seed gives
    /// the same cards; timing still decides cache hits and rate-limit waits.
    pub seed: u64,
    /// Start no new card after this long (real time); in-flight cards finish.
    pub duration: Option<Duration>,
    /// Longest wait at the end for buffered writes to land.
    pub drain_timeout: Duration,
    /// Card ids are `<id_prefix>-<n>`, n from 1.
    pub id_prefix: String,
}

impl SimOptions {
    /// Defaults for `seed`: speed 1, 8 cards at once, failure rate 0.1, ids `sim-<seed>-<n>`.
    pub fn new(seed: u64) -> Self {
        Self {
            speed: 1.0,
            cards: None,
            concurrency: 8,
            failure_rate: 0.1,
            seed,
            duration: None,
            drain_timeout: Duration::from_secs(30),
            id_prefix: format!("sim-{seed}"),
        }
    }

    /// The demo's options: a few cards at a time, forever, fast enough to watch.
    pub fn demo(seed: u64) -> Self {
        Self {
            speed: DEMO_SPEED,
            concurrency: DEMO_CONCURRENCY,
            failure_rate: DEMO_FAILURE_RATE,
            ..Self::new(seed)
        }
    }

    /// Fails with [`Error::InvalidInput`] when speed is not in (0, 100000], the failure rate
    /// not in 0..=1, concurrency not in 1..=10000, `cards` is 0, or `<id_prefix>-1` is not a
    /// valid card id.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidInput(m));
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= 100_000.0) {
            return bad(format!(
                "speed must be above 0 and at most 100000, not {}",
                self.speed
            ));
        }
        if !(0.0..=1.0).contains(&self.failure_rate) {
            return bad(format!(
                "failure rate must be between 0 and 1, not {}",
                self.failure_rate
            ));
        }
        if self.concurrency == 0 || self.concurrency > 10_000 {
            return bad(format!(
                "concurrency must be between 1 and 10000, not {}",
                self.concurrency
            ));
        }
        if self.cards == Some(0) {
            return bad("cards must be at least 1".into());
        }
        let probe = format!("{}-1", self.id_prefix);
        crate::keys::validate_card_id(&probe)?;
        Ok(())
    }
}

/// Asks a running simulation to stop: the first call cancels in-flight cards (their writes
/// still land), a second one also gives up waiting for buffered writes. Dropping it stops too.
#[derive(Debug)]
pub struct Stop {
    tx: watch::Sender<u32>,
}

/// What a simulation watches for [`Stop`].
#[derive(Debug, Clone)]
pub struct StopSignal {
    rx: watch::Receiver<u32>,
}

/// A connected stop handle and signal.
pub fn stop_pair() -> (Stop, StopSignal) {
    let (tx, rx) = watch::channel(0);
    (Stop { tx }, StopSignal { rx })
}

impl Stop {
    /// Asks the simulation to stop; calling it again also gives up waiting for buffered writes.
    pub fn stop(&self) {
        self.tx.send_modify(|n| *n = n.saturating_add(1));
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.stop();
    }
}

impl StopSignal {
    /// Whether a stop was asked at least once.
    pub fn is_stopped(&self) -> bool {
        *self.rx.borrow() >= 1
    }

    /// Resolves once stop was asked `times` times (never, if nobody can ask any more).
    async fn reached(&mut self, times: u32) {
        if self.rx.wait_for(|n| *n >= times).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once a stop is asked (at once if it already was).
    pub async fn stopped(&mut self) {
        self.reached(1).await;
    }
}

/// Shared by every card of a run.
struct Ctx {
    tracker: Tracker,
    metrics: Metrics,
    llm: CachedClient<SimProvider>,
    control: CacheControl,
    speed: f64,
    /// Writes refused for another reason than an outage (invalid input, permissions).
    write_errors: AtomicU64,
}

impl Ctx {
    fn real(&self, sim_seconds: f64) -> Duration {
        Duration::try_from_secs_f64(sim_seconds / self.speed).unwrap_or_default()
    }

    fn write_result(&self, what: &str, r: Result<WriteOutcome>) {
        if let Err(e) = r {
            let n = self.write_errors.fetch_add(1, Ordering::Relaxed);
            if n < 5 {
                tracing::warn!("simulator: {what} was refused: {e}");
            }
        }
    }
}

/// A simulation, ready to run.
pub struct Simulation {
    ctx: Arc<Ctx>,
    options: SimOptions,
    buffer: OutageBuffer,
    provider_stats: Arc<ProviderStats>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Wires the library the way a pipeline process would: one outage buffer shared by the
    /// tracker, the metrics handle and the cache's metrics recorder; the cache in front of the
    /// simulated provider, which waits for the rate limiter.
    pub fn new(backend: Backend, options: SimOptions) -> Result<Self> {
        options.validate()?;
        let artemis = Artemis::over(backend);
        let buffer = artemis.buffer().clone();
        let tracker = artemis.tracker().clone();
        let metrics = artemis.metrics().clone();
        let provider = SimProvider::new(artemis.limiter().clone(), options.speed)
            .map_err(|e| Error::InvalidInput(format!("simulator rate limits: {e}")))?;
        let provider_stats = provider.stats();
        let llm = artemis.cached(provider)?;
        Ok(Self {
            ctx: Arc::new(Ctx {
                tracker,
                metrics,
                llm,
                control: CacheControl::default()
                    .namespace(CACHE_NAMESPACE)
                    .ttl(CACHE_TTL),
                speed: options.speed,
                write_errors: AtomicU64::new(0),
            }),
            options,
            buffer,
            provider_stats,
        })
    }

    /// Runs cards until the card count, the duration or a stop ends it; then waits for every
    /// card and for every write to land (up to `drain_timeout`) and reports.
    pub async fn run(self, mut stop: StopSignal) -> SimReport {
        let o = &self.options;
        let started = Instant::now();
        let deadline = o.duration.map(|d| tokio::time::Instant::now() + d);
        let slots = Arc::new(Semaphore::new(o.concurrency));
        let mut tasks: JoinSet<CardOutcome> = JoinSet::new();
        let mut outcomes: Vec<CardOutcome> = Vec::new();
        let mut panicked = 0u64;
        // Only timing (the gap between starts) comes from here, never a card's decisions.
        let mut pacing = ChaCha8Rng::seed_from_u64(mix(o.seed) ^ u64::MAX);
        let until_deadline = || async move {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let mut n: u64 = 0;
        let ended_by = loop {
            if o.cards.is_some_and(|max| n >= max) {
                break EndedBy::Cards;
            }
            // Spread the starts: the first wave within about a second, later cards a few
            // simulated seconds after a slot frees up.
            let gap = if n < o.concurrency as u64 {
                Duration::from_millis(if n == 0 {
                    0
                } else {
                    pacing.random_range(80..180)
                })
            } else {
                self.ctx.real(pacing.random_range(1.0..5.0))
            };
            let permit = tokio::select! {
                // A stop or the deadline wins over a slot that frees at the same moment.
                biased;
                _ = stop.stopped() => break EndedBy::Interrupted,
                _ = until_deadline() => break EndedBy::Duration,
                p = async {
                    let p = slots.clone().acquire_owned().await;
                    tokio::time::sleep(gap).await;
                    p
                } => match p {
                    Ok(p) => p,
                    Err(_) => break EndedBy::Cards,
                },
            };
            while let Some(done) = tasks.try_join_next() {
                collect(done, &mut outcomes, &mut panicked);
            }
            n += 1;
            let card_id = format!("{}-{n}", o.id_prefix);
            let mut rng = ChaCha8Rng::seed_from_u64(mix(o.seed) ^ n);
            let plan = script::plan_card(&mut rng, o.failure_rate);
            let ctx = self.ctx.clone();
            let signal = stop.clone();
            tasks.spawn(async move {
                let outcome = CardRun::new(ctx, card_id, n, plan, signal).run().await;
                drop(permit);
                outcome
            });
        };
        // In-flight cards finish (or, after a stop, cancel themselves at their next step).
        while let Some(done) = tasks.join_next().await {
            collect(done, &mut outcomes, &mut panicked);
        }
        outcomes.sort_by_key(|c| c.index);

        // Every write made, landed: the cache's request records, then the shared buffer.
        self.ctx.llm.flush_metrics().await;
        let drained = tokio::select! {
            d = self.buffer.wait_drained(o.drain_timeout) => d,
            _ = stop.reached(2) => false,
        };
        if !drained {
            tracing::warn!(
                pending = self.buffer.stats().pending,
                "simulator: buffered writes did not all land before the end"
            );
        }
        report::build(report::Inputs {
            options: o,
            elapsed: started.elapsed(),
            ended_by,
            cards: outcomes,
            panicked,
            cache: self.ctx.llm.stats(),
            provider: &self.provider_stats,
            buffer: self.buffer.stats(),
            drained,
            write_errors: self.ctx.write_errors.load(Ordering::Relaxed),
        })
    }

    /// Runs the simulation in a background task until the returned [`Stop`] is dropped or
    /// used (the demo's way).
    pub fn spawn(self) -> (Stop, tokio::task::JoinHandle<SimReport>) {
        let (stop, signal) = stop_pair();
        (stop, tokio::spawn(self.run(signal)))
    }
}

/// Starts the demo simulator on `backend` (normally the memory backend) with a fresh random
/// seed. It runs until the returned [`Stop`] is dropped.
pub fn start_demo(backend: Backend) -> Result<Stop> {
    let seed = rand::rng().random_range(1000..100_000);
    let (stop, _task) = Simulation::new(backend, SimOptions::demo(seed))?.spawn();
    Ok(stop)
}

fn collect(
    done: std::result::Result<CardOutcome, tokio::task::JoinError>,
    outcomes: &mut Vec<CardOutcome>,
    panicked: &mut u64,
) {
    match done {
        Ok(o) => outcomes.push(o),
        Err(e) => {
            *panicked += 1;
            tracing::error!("simulator: a card task ended abnormally: {e}");
        }
    }
}

/// Spreads a user's seed over 64 bits (splitmix64), so that seeds 1, 2, 3 … give unrelated
/// card generators even though card `n` is seeded with `mix(seed) ^ n`.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The run was stopped at an await point.
struct Interrupted;

/// One card being carried out.
struct CardRun {
    ctx: Arc<Ctx>,
    plan: CardPlan,
    stop: StopSignal,
    out: CardOutcome,
    completed: BTreeSet<&'static str>,
    started: Instant,
    /// The stage running now and its last progress, for a cancellation.
    current: Option<(&'static str, u8)>,
    /// LLM spend per stage so far, sent in each stage update's metadata (`cost_usd`), which is
    /// how the dashboard shows a running card's cost.
    stage_cost: std::collections::HashMap<&'static str, f64>,
}

impl CardRun {
    fn new(ctx: Arc<Ctx>, card_id: String, index: u64, plan: CardPlan, stop: StopSignal) -> Self {
        let out = CardOutcome {
            index,
            card_id,
            title: plan.title.to_owned(),
            status: PipelineStatus::Running,
            total_stages: plan.total_stages(),
            completed_stages: 0,
            stage_updates: 0,
            llm_calls: 0,
            cache_hits: 0,
            llm_errors: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            cost_usd: 0.0,
            saved_usd: 0.0,
            code_reviews: 0,
            message: None,
        };
        Self {
            ctx,
            plan,
            stop,
            out,
            completed: BTreeSet::new(),
            started: Instant::now(),
            current: None,
            stage_cost: std::collections::HashMap::new(),
        }
    }

    async fn run(mut self) -> CardOutcome {
        let mut meta = Map::new();
        meta.insert("title".into(), self.plan.title.into());
        meta.insert("priority".into(), self.plan.priority.into());
        meta.insert("kind".into(), self.plan.kind.as_str().into());
        meta.insert("component".into(), self.plan.component.into());
        meta.insert("developer".into(), self.plan.developer.into());
        meta.insert("simulated".into(), true.into());
        let r = self
            .ctx
            .tracker
            .start_pipeline(&self.out.card_id, self.out.total_stages, meta)
            .await;
        self.ctx.write_result("start_pipeline", r);
        let end = match self.stages().await {
            Ok(end) => end,
            Err(Interrupted) => Some((
                PipelineStatus::Cancelled,
                "cancelled: simulation stopped".to_owned(),
            )),
        };
        let (status, message) =
            end.unwrap_or((PipelineStatus::Completed, "all stages done".into()));
        if status == PipelineStatus::Cancelled
            && let Some((stage, progress)) = self.current
        {
            self.stage(stage, StageStatus::Skipped, progress, &message)
                .await;
        }
        self.finish(status, message).await;
        self.out
    }

    /// Carries out the plan; `Some` when the card ends early (failure or planned cancel).
    async fn stages(
        &mut self,
    ) -> std::result::Result<Option<(PipelineStatus, String)>, Interrupted> {
        let runs = std::mem::take(&mut self.plan.runs);
        for (i, run) in runs.iter().enumerate() {
            let mut before = 0u8;
            for (j, (step, progress)) in run.steps.iter().enumerate() {
                if self.stop.is_stopped() {
                    return Err(Interrupted);
                }
                match &self.plan.ending {
                    Ending::Failed {
                        run: r,
                        step: s,
                        message,
                    } if (*r, *s) == (i, j) => {
                        let message = message.clone();
                        if let Some(review) = &run.review {
                            self.review(review).await;
                        }
                        self.stage(run.stage, StageStatus::Failed, before, &message)
                            .await;
                        return Ok(Some((PipelineStatus::Failed, message)));
                    }
                    Ending::Cancelled {
                        run: r,
                        step: s,
                        message,
                    } if (*r, *s) == (i, j) => {
                        let message = message.clone();
                        self.stage(run.stage, StageStatus::Skipped, before, &message)
                            .await;
                        return Ok(Some((PipelineStatus::Cancelled, message)));
                    }
                    _ => {}
                }
                match step {
                    Step::Work { seconds, message } => {
                        self.stage(run.stage, StageStatus::Running, before, message)
                            .await;
                        self.pause(*seconds).await?;
                    }
                    Step::Llm { request, message } => {
                        self.stage(run.stage, StageStatus::Running, before, message)
                            .await;
                        if let Err(e) = self.call(request).await? {
                            let message = format!("LLM call failed: {e}");
                            self.stage(run.stage, StageStatus::Failed, before, &message)
                                .await;
                            return Ok(Some((PipelineStatus::Failed, message)));
                        }
                    }
                }
                before = *progress;
            }
            if let Some(review) = &run.review {
                self.review(review).await;
            }
            self.stage(run.stage, StageStatus::Completed, 100, &run.done_message)
                .await;
            self.completed.insert(run.stage);
            self.current = None;
        }
        Ok(None)
    }

    async fn stage(
        &mut self,
        stage: &'static str,
        status: StageStatus,
        progress: u8,
        message: &str,
    ) {
        self.current = Some((stage, progress));
        let mut meta = Map::new();
        meta.insert(
            crate::model::STAGE_COST_FIELD.into(),
            json!(self.stage_cost.get(stage).copied().unwrap_or(0.0)),
        );
        let update = StageUpdate::new(status)
            .progress(progress)
            .message(message)
            .metadata(meta);
        let r = self
            .ctx
            .tracker
            .update_stage(&self.out.card_id, stage, update)
            .await;
        self.ctx.write_result("update_stage", r);
        self.out.stage_updates += 1;
    }

    async fn pause(&mut self, sim_seconds: f64) -> std::result::Result<(), Interrupted> {
        let d = self.ctx.real(sim_seconds);
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.stopped() => Err(Interrupted),
        }
    }

    /// One LLM call through the cache. The outer error is a stop; the inner one the call's.
    async fn call(
        &mut self,
        request: &crate::cache::LlmRequest,
    ) -> std::result::Result<std::result::Result<(), crate::cache::LlmError>, Interrupted> {
        let ctx = self.ctx.clone();
        let result = tokio::select! {
            r = ctx.llm.complete_with(request, &ctx.control) => r,
            _ = self.stop.stopped() => return Err(Interrupted),
        };
        Ok(match result {
            Ok(c) => {
                self.out.llm_calls += 1;
                if c.source.is_hit() {
                    self.out.cache_hits += 1;
                } else {
                    self.out.prompt_tokens += c.response.usage.prompt_tokens;
                    self.out.completion_tokens += c.response.usage.completion_tokens;
                }
                self.out.cost_usd += c.cost_usd;
                self.out.saved_usd += c.saved_usd;
                if let Some((stage, _)) = self.current {
                    *self.stage_cost.entry(stage).or_default() += c.cost_usd;
                }
                Ok(())
            }
            Err(e) => {
                self.out.llm_errors += 1;
                Err(e)
            }
        })
    }

    async fn review(&mut self, review: &script::ReviewPlan) {
        let r = self
            .ctx
            .metrics
            .track_code_review(CodeReviewRecord {
                developer: self.plan.developer.to_owned(),
                status: review.status.to_owned(),
                score: review.score,
                critical_issues: review.critical_issues,
                high_issues: review.high_issues,
            })
            .await;
        self.ctx.write_result("track_code_review", r);
        self.out.code_reviews += 1;
    }

    async fn finish(&mut self, status: PipelineStatus, message: String) {
        let r = self
            .ctx
            .tracker
            .complete_pipeline(&self.out.card_id, status, Some(&message))
            .await;
        self.ctx.write_result("complete_pipeline", r);
        let mut meta = Map::new();
        meta.insert("title".into(), Value::from(self.plan.title));
        meta.insert("simulated".into(), json!(true));
        let r = self
            .ctx
            .metrics
            .track_pipeline_completion(PipelineCompletionRecord {
                card_id: self.out.card_id.clone(),
                duration_seconds: self.started.elapsed().as_secs_f64(),
                status: status.as_str().to_owned(),
                cost: self.out.cost_usd,
                metadata: meta,
                at: None,
            })
            .await;
        self.ctx.write_result("track_pipeline_completion", r);
        self.out.status = status;
        self.out.completed_stages = self.completed.len() as u32;
        self.out.message = Some(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn fast(seed: u64, cards: u64) -> SimOptions {
        SimOptions {
            speed: 400.0,
            cards: Some(cards),
            concurrency: 4,
            failure_rate: 0.3,
            ..SimOptions::new(seed)
        }
    }

    #[tokio::test]
    async fn a_run_lands_in_storage_as_reported() {
        let backend = Backend::memory(Settings::default());
        let sim = Simulation::new(backend.clone(), fast(3, 6)).unwrap();
        let (_stop, signal) = stop_pair();
        let report = sim.run(signal).await;
        assert_eq!(report.ended_by, EndedBy::Cards);
        assert_eq!(report.cards.started, 6);
        assert_eq!(
            report.cards.completed + report.cards.failed + report.cards.cancelled,
            6
        );
        let snap = crate::snapshot::read_snapshot(&backend, chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(snap.cards.len(), 6);
        for c in &report.card_list {
            let s = snap
                .cards
                .iter()
                .find(|s| s.pipeline.card_id == c.card_id)
                .unwrap();
            assert_eq!(s.pipeline.status, c.status);
            assert_eq!(s.pipeline.completed_stages, i64::from(c.completed_stages));
        }
        let llm = &snap.metrics.llm;
        assert_eq!(llm.total_requests as u64, report.llm.calls);
        assert_eq!(llm.cache_hits as u64, report.llm.cache_hits);
        assert!((llm.total_cost - report.llm.cost_usd).abs() < 1e-9);
        assert!(report.llm.calls > 20);
        assert_eq!(snap.metrics.pipelines.completed, 6);
        assert!(!snap.limits.is_empty());
        assert!(report.writes.drained);
    }

    #[tokio::test]
    async fn a_stop_cancels_in_flight_cards_and_still_reports() {
        let backend = Backend::memory(Settings::default());
        let options = SimOptions {
            speed: 20.0,
            ..fast(5, 1000)
        };
        let sim = Simulation::new(backend.clone(), options).unwrap();
        let (stop, signal) = stop_pair();
        let task = tokio::spawn(sim.run(signal));
        tokio::time::sleep(Duration::from_millis(700)).await;
        stop.stop();
        let report = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.ended_by, EndedBy::Interrupted);
        assert!(report.cards.started >= 1 && report.cards.started < 1000);
        assert!(report.cards.cancelled >= 1);
        let snap = crate::snapshot::read_snapshot(&backend, chrono::Utc::now())
            .await
            .unwrap();
        assert!(snap.cards.iter().all(|c| c.pipeline.status.is_final()));
    }

    #[test]
    fn bad_options_are_refused() {
        let ok = SimOptions::new(1);
        assert!(ok.validate().is_ok());
        for bad in [
            SimOptions {
                speed: 0.0,
                ..ok.clone()
            },
            SimOptions {
                speed: f64::NAN,
                ..ok.clone()
            },
            SimOptions {
                failure_rate: 1.5,
                ..ok.clone()
            },
            SimOptions {
                concurrency: 0,
                ..ok.clone()
            },
            SimOptions {
                cards: Some(0),
                ..ok.clone()
            },
            SimOptions {
                id_prefix: ":x".into(),
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
