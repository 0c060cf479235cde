//! The handle pipelines record metrics through. Like the tracker's, its writes go through the
//! outage buffer: a `track_*` call never fails or stalls a pipeline because Redis is away, and
//! what it recorded during an outage lands, in order, once Redis returns. Counters are not
//! idempotent, so every write carries an operation id: one that the server applied before its
//! reply was lost is not counted again when replayed.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;

use super::MetricsStore;
use super::{
    CodeReviewRecord, HistoryRead, HistoryWindow, LimitActivityRecord, LlmRequestRecord,
    MetricsRead, MetricsWrite, PipelineCompletionRecord,
};
use crate::buffer::{OutageBuffer, Replay, WriteOutcome};
use crate::error::{Error, Result};

/// A write with the id that makes its replay harmless: a write whose reply was lost may have
/// been applied, and is then sent again with the same id.
struct OnceWrite {
    store: Arc<dyn MetricsStore>,
    id: String,
    write: MetricsWrite,
}

impl fmt::Debug for OnceWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceWrite")
            .field("id", &self.id)
            .field("write", &self.write)
            .finish()
    }
}

#[async_trait::async_trait]
impl Replay for OnceWrite {
    async fn replay(&self) -> Result<()> {
        self.store.track_once(&self.id, &self.write).await
    }
}

/// Records pipeline completions, LLM requests and code reviews. Cheap to clone.
///
/// Writes return once stored, or once kept in the outage buffer when Redis is unreachable
/// (never later than the command timeout); they fail only for invalid input or an error Redis
/// itself reports (e.g. a permission error).
#[derive(Clone)]
pub struct Metrics {
    store: Arc<dyn MetricsStore>,
    buffer: OutageBuffer,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("backend", &self.store.backend())
            .field("buffer", &self.buffer.stats())
            .finish()
    }
}

impl Metrics {
    /// A metrics handle with its own outage buffer (`tracker.outage_buffer` writes).
    pub fn new(store: Arc<dyn MetricsStore>) -> Self {
        let buffer = OutageBuffer::for_store(&*store);
        Self { store, buffer }
    }

    /// A metrics handle sharing `buffer` (e.g. with a [`crate::tracker::Tracker`], so that all
    /// of a process's writes replay in the order they were made).
    pub fn with_buffer(store: Arc<dyn MetricsStore>, buffer: OutageBuffer) -> Self {
        Self { store, buffer }
    }

    /// The outage buffer its writes go through.
    pub fn buffer(&self) -> &OutageBuffer {
        &self.buffer
    }

    /// The store it writes to and reads from.
    pub fn store(&self) -> &Arc<dyn MetricsStore> {
        &self.store
    }

    fn once(&self, write: MetricsWrite) -> Arc<OnceWrite> {
        Arc::new(OnceWrite {
            store: self.store.clone(),
            id: format!("{:032x}", rand::random::<u128>()),
            write,
        })
    }

    /// Records a finished pipeline. Its time is taken now when the record has none, so a
    /// completion replayed after an outage still lands on the day (and time-series score) it
    /// happened.
    pub async fn track_pipeline_completion(
        &self,
        mut record: PipelineCompletionRecord,
    ) -> Result<WriteOutcome> {
        check_name("status", &record.status)?;
        check_number("duration_seconds", record.duration_seconds)?;
        check_number("cost", record.cost)?;
        record.at.get_or_insert_with(Utc::now);
        self.buffer
            .submit(self.once(MetricsWrite::Completion(record)))
            .await
    }

    /// Records one LLM request.
    pub async fn track_llm_request(&self, mut record: LlmRequestRecord) -> Result<WriteOutcome> {
        check_name("provider", &record.provider)?;
        check_name("model", &record.model)?;
        check_number("cost", record.cost)?;
        check_number("latency_ms", record.latency_ms)?;
        check_number("saved_cost", record.saved_cost)?;
        record.at.get_or_insert_with(Utc::now);
        self.buffer
            .submit(self.once(MetricsWrite::Requests(vec![record])))
            .await
    }

    /// Records many LLM requests as one write (one pipeline, summed per key; one entry in the
    /// outage buffer). Every record is checked first: one invalid record refuses the batch.
    pub async fn track_llm_requests(
        &self,
        mut records: Vec<LlmRequestRecord>,
    ) -> Result<WriteOutcome> {
        let now = Utc::now();
        for r in &mut records {
            r.at.get_or_insert(now);
            check_name("provider", &r.provider)?;
            check_name("model", &r.model)?;
            check_number("cost", r.cost)?;
            check_number("latency_ms", r.latency_ms)?;
            check_number("saved_cost", r.saved_cost)?;
        }
        if records.is_empty() {
            return Ok(WriteOutcome::Written);
        }
        self.buffer
            .submit(self.once(MetricsWrite::Requests(records)))
            .await
    }

    /// Records one code review.
    pub async fn track_code_review(&self, record: CodeReviewRecord) -> Result<WriteOutcome> {
        check_name("developer", &record.developer)?;
        check_name("status", &record.status)?;
        self.buffer
            .submit(self.once(MetricsWrite::Review(record)))
            .await
    }

    /// Records rate-limit activity in the time buckets (one write for the batch). The rate
    /// limiter sends what it counted through here when given a metrics handle
    /// ([`crate::limiter::RateLimiter::record_activity_into`]).
    pub async fn track_limit_activity(
        &self,
        records: Vec<LimitActivityRecord>,
    ) -> Result<WriteOutcome> {
        for r in &records {
            check_name("rate-limit key", &r.key)?;
        }
        if records.is_empty() {
            return Ok(WriteOutcome::Written);
        }
        self.buffer
            .submit(self.once(MetricsWrite::Limits(records)))
            .await
    }

    /// See [`super::MetricsStore::read_history`].
    pub async fn read_history(
        &self,
        window: HistoryWindow,
        now: chrono::DateTime<Utc>,
    ) -> Result<HistoryRead> {
        self.store.read_history(window, now).await
    }

    /// See [`super::MetricsStore::read_metrics`]. Fails with [`Error::Unavailable`] while
    /// Redis is unreachable rather than returning zeros that look real.
    pub async fn read(&self, days: u32, recent: usize) -> Result<MetricsRead> {
        self.store.read_metrics(days, recent).await
    }
}

/// Names become key segments: reject what would make a key ambiguous or unreadable before it
/// is buffered, since a write that can never succeed must not wait in the buffer.
fn check_name(what: &'static str, value: &str) -> Result<()> {
    Ok(crate::keys::validate_name(what, value)?)
}

/// NaN or infinite figures would corrupt the float counters for every later reader.
fn check_number(what: &str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} must be a finite number, got {value}"
        )))
    }
}
