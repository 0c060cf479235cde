//! What a simulation did, for people (`Display`) and for scripts and tests (JSON via serde).
//! The figures that also land in Redis are named as the snapshot names them, so the two can be
//! compared: `llm.calls` is `metrics.llm.total_requests`, `llm.cost_usd` is
//! `metrics.llm.total_cost`, `llm.saved_usd` is `metrics.llm.saved_cost`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SimOptions;
use super::provider::ProviderStats;
use crate::buffer::BufferStats;
use crate::cache::CacheStats;
use crate::model::PipelineStatus;

/// Why the simulation stopped starting cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndedBy {
    /// All `--cards` were started (and have finished).
    Cards,
    /// `--duration` passed; cards in flight then finished.
    Duration,
    /// Stopped (Ctrl-C): cards in flight were cancelled.
    Interrupted,
}

/// One card, as the simulator carried it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardOutcome {
    /// 1-based start order.
    pub index: u64,
    /// `<id_prefix>-<index>`.
    pub card_id: String,
    /// The card's title (its metadata `title`).
    pub title: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: PipelineStatus,
    /// Stages the card was planned with (the tracker's `total_stages`).
    pub total_stages: u32,
    /// Distinct stages reported completed (the tracker's `completed_stages`).
    pub completed_stages: u32,
    /// `update_stage` calls made.
    pub stage_updates: u64,
    /// LLM calls answered (cache hits included).
    pub llm_calls: u64,
    /// LLM calls answered from the cache.
    pub cache_hits: u64,
    /// LLM calls that returned an error to the card.
    pub llm_errors: u64,
    /// Tokens of the calls that reached the provider.
    pub prompt_tokens: u64,
    /// Output tokens of the calls that reached the provider.
    pub completion_tokens: u64,
    /// Spent on this card's LLM calls: the cost in its `track_pipeline_completion`.
    pub cost_usd: f64,
    /// Saved by this card's cache hits.
    pub saved_usd: f64,
    /// Code reviews recorded for the card (`track_code_review` calls).
    pub code_reviews: u64,
    /// The completion message.
    pub message: Option<String>,
}

/// How the cards ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardCounts {
    /// Cards started (aborted ones included).
    pub started: u64,
    /// Cards that completed.
    pub completed: u64,
    /// Cards that failed at some stage.
    pub failed: u64,
    /// Cards cancelled (by plan, or by a stop).
    pub cancelled: u64,
    /// Card tasks that ended abnormally (a bug): never reported to storage as ended.
    pub aborted: u64,
}

/// Stage reports, over all cards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageCounts {
    /// `update_stage` calls.
    pub updates: u64,
    /// Distinct stages completed, summed over cards.
    pub completed: u64,
}

/// LLM calls, over all cards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmCounts {
    /// Requests answered through the cache (hits + misses), as in `metrics.llm.total_requests`.
    pub calls: u64,
    /// Calls answered from the cache.
    pub cache_hits: u64,
    /// Calls that went to the provider.
    pub cache_misses: u64,
    /// `cache_hits / calls`, `None` before the first call.
    pub hit_rate: Option<f64>,
    /// Calls that reached the simulated provider.
    pub provider_calls: u64,
    /// Calls that failed (returned an error to the card).
    pub errors: u64,
    /// Input tokens of the calls that reached the provider.
    pub prompt_tokens: u64,
    /// Output tokens of the calls that reached the provider.
    pub completion_tokens: u64,
    /// Money spent, as in `metrics.llm.total_cost`.
    pub cost_usd: f64,
    /// Money saved by cache hits, as in `metrics.llm.saved_cost`.
    pub saved_usd: f64,
}

/// What the rate limiter did to the provider calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LimiterCounts {
    /// Provider calls whose first rate-limit check was refused.
    pub refused: u64,
    /// Calls that then waited and were admitted.
    pub waited: u64,
    /// Total time spent waiting for admission, seconds (real time, not scaled by `speed`).
    pub waited_seconds: f64,
    /// `acquire` deadlines that passed while a call kept waiting.
    pub acquire_timeouts: u64,
    /// Limiter failures (the call failed).
    pub errors: u64,
    /// Admissions by who decided them: Redis, the `local` failure policy's in-process window,
    /// or the `open` policy (no counting) while Redis was away.
    #[serde(default)]
    pub admitted_by_redis: u64,
    /// Admissions by the `local` failure policy's in-process window (Redis away).
    #[serde(default)]
    pub admitted_locally: u64,
    /// Admissions by the `open` failure policy, not counted anywhere (Redis away).
    #[serde(default)]
    pub admitted_uncounted: u64,
}

/// What became of the writes to storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteCounts {
    /// Writes kept in the outage buffer because Redis was unreachable.
    pub buffered: u64,
    /// Buffered writes that landed later.
    pub replayed: u64,
    /// Writes lost because the buffer was full.
    pub dropped: u64,
    /// Buffered writes Redis rejected on replay.
    pub failed: u64,
    /// Buffered writes still waiting when the report was made.
    pub pending: u64,
    /// Writes refused outright (invalid input, permissions).
    pub errors: u64,
    /// LLM request records the cache's recorder dropped or failed to write.
    pub metrics_dropped: u64,
    /// LLM request records whose metrics write failed.
    pub metrics_failed: u64,
    /// Whether every buffered write landed before the end.
    pub drained: bool,
}

impl WriteCounts {
    /// Whether some write did not land.
    pub fn lost_any(&self) -> bool {
        self.dropped
            + self.failed
            + self.pending
            + self.errors
            + self.metrics_dropped
            + self.metrics_failed
            > 0
    }
}

/// The final report of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The seed the run used ([`SimOptions::seed`]).
    pub seed: u64,
    /// The time multiplier ([`SimOptions::speed`]).
    pub speed: f64,
    /// The failure rate asked for ([`SimOptions::failure_rate`]).
    pub failure_rate: f64,
    /// Cards run at once ([`SimOptions::concurrency`]).
    pub concurrency: usize,
    /// Wall time of the run, seconds.
    pub elapsed_seconds: f64,
    /// Why no more cards were started.
    pub ended_by: EndedBy,
    /// How the cards ended.
    pub cards: CardCounts,
    /// Stage reports.
    pub stages: StageCounts,
    /// LLM calls, cache use, tokens and money.
    pub llm: LlmCounts,
    /// Rate-limit refusals and waits.
    pub limiter: LimiterCounts,
    /// Code reviews recorded, over all cards.
    pub code_reviews: u64,
    /// What became of the writes to storage.
    pub writes: WriteCounts,
    /// Every card, in start order.
    pub card_list: Vec<CardOutcome>,
}

pub(super) struct Inputs<'a> {
    pub options: &'a SimOptions,
    pub elapsed: Duration,
    pub ended_by: EndedBy,
    pub cards: Vec<CardOutcome>,
    pub panicked: u64,
    pub cache: CacheStats,
    pub provider: &'a ProviderStats,
    pub buffer: BufferStats,
    pub drained: bool,
    pub write_errors: u64,
}

pub(super) fn build(i: Inputs<'_>) -> SimReport {
    let count = |s: PipelineStatus| i.cards.iter().filter(|c| c.status == s).count() as u64;
    let cards = CardCounts {
        started: i.cards.len() as u64 + i.panicked,
        completed: count(PipelineStatus::Completed),
        failed: count(PipelineStatus::Failed),
        cancelled: count(PipelineStatus::Cancelled),
        aborted: i.panicked,
    };
    let sum = |f: fn(&CardOutcome) -> u64| i.cards.iter().map(f).sum::<u64>();
    let p = i.provider;
    SimReport {
        seed: i.options.seed,
        speed: i.options.speed,
        failure_rate: i.options.failure_rate,
        concurrency: i.options.concurrency,
        elapsed_seconds: i.elapsed.as_secs_f64(),
        ended_by: i.ended_by,
        cards,
        stages: StageCounts {
            updates: sum(|c| c.stage_updates),
            completed: sum(|c| u64::from(c.completed_stages)),
        },
        llm: LlmCounts {
            calls: i.cache.total_requests,
            cache_hits: i.cache.cache_hits,
            cache_misses: i.cache.cache_misses,
            hit_rate: (i.cache.total_requests > 0)
                .then(|| i.cache.cache_hits as f64 / i.cache.total_requests as f64),
            provider_calls: p.calls.load(Ordering::Relaxed),
            errors: i.cache.failed_requests,
            prompt_tokens: sum(|c| c.prompt_tokens),
            completion_tokens: sum(|c| c.completion_tokens),
            cost_usd: i.cache.cost_spent_usd,
            saved_usd: i.cache.cost_saved_usd,
        },
        limiter: LimiterCounts {
            refused: p.refused.load(Ordering::Relaxed),
            waited: p.waited.load(Ordering::Relaxed),
            waited_seconds: p.waited_us.load(Ordering::Relaxed) as f64 / 1e6,
            acquire_timeouts: p.acquire_timeouts.load(Ordering::Relaxed),
            errors: p.limiter_errors.load(Ordering::Relaxed),
            admitted_by_redis: p.admitted_store.load(Ordering::Relaxed),
            admitted_locally: p.admitted_local.load(Ordering::Relaxed),
            admitted_uncounted: p.admitted_open.load(Ordering::Relaxed),
        },
        code_reviews: sum(|c| c.code_reviews),
        writes: WriteCounts {
            buffered: i.buffer.buffered,
            replayed: i.buffer.replayed,
            dropped: i.buffer.dropped,
            failed: i.buffer.failed,
            pending: i.buffer.pending as u64,
            errors: i.write_errors,
            metrics_dropped: i.cache.metrics_dropped,
            metrics_failed: i.cache.metrics_failed,
            drained: i.drained,
        },
        card_list: i.cards,
    }
}

fn usd(v: f64) -> String {
    crate::format::usd(v)
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ended = match self.ended_by {
            EndedBy::Cards => "every card started and finished",
            EndedBy::Duration => "duration reached, in-flight cards finished",
            EndedBy::Interrupted => "stopped, in-flight cards cancelled",
        };
        writeln!(
            f,
            "simulation: seed {}, speed {}x, {:.1} s ({ended})",
            self.seed, self.speed, self.elapsed_seconds
        )?;
        let c = &self.cards;
        write!(
            f,
            "cards        {} started: {} completed, {} failed, {} cancelled",
            c.started, c.completed, c.failed, c.cancelled
        )?;
        if c.aborted > 0 {
            write!(f, ", {} aborted", c.aborted)?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "stages       {} updates reported, {} stages completed",
            self.stages.updates, self.stages.completed
        )?;
        let l = &self.llm;
        let rate = l
            .hit_rate
            .map(|r| format!(" ({:.1}%)", r * 100.0))
            .unwrap_or_default();
        writeln!(
            f,
            "LLM calls    {}: {} cache hits{rate}, {} misses, {} reached the provider, {} failed",
            l.calls, l.cache_hits, l.cache_misses, l.provider_calls, l.errors
        )?;
        writeln!(
            f,
            "tokens       {} prompt, {} completion (spent on misses)",
            l.prompt_tokens, l.completion_tokens
        )?;
        writeln!(
            f,
            "cost         {} spent, {} saved by the cache",
            usd(l.cost_usd),
            usd(l.saved_usd)
        )?;
        let r = &self.limiter;
        writeln!(
            f,
            "rate limits  {} calls refused at first check, {} waited ({:.1} s in total){}",
            r.refused,
            r.waited,
            r.waited_seconds,
            if r.errors > 0 {
                format!(", {} limiter errors", r.errors)
            } else {
                String::new()
            }
        )?;
        if r.admitted_locally + r.admitted_uncounted > 0 {
            writeln!(
                f,
                "             while Redis was away: {} admitted by the local window, {} uncounted",
                r.admitted_locally, r.admitted_uncounted
            )?;
        }
        writeln!(f, "code reviews {}", self.code_reviews)?;
        let w = &self.writes;
        write!(
            f,
            "writes       {} buffered during outages, {} replayed, {} dropped, {} failed, {} refused",
            w.buffered, w.replayed, w.dropped, w.failed, w.errors
        )?;
        if w.pending > 0 {
            write!(f, ", {} still pending", w.pending)?;
        }
        if w.metrics_dropped + w.metrics_failed > 0 {
            write!(
                f,
                ", {} LLM records not written",
                w.metrics_dropped + w.metrics_failed
            )?;
        }
        writeln!(f)
    }
}
