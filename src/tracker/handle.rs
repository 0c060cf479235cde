//! [`Tracker`], the handle pipelines use: it validates, stamps the time, and sends every write
//! through the [`OutageBuffer`], so that a Redis outage never fails or stalls a pipeline.

use std::fmt;
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Map, Value};

use super::{
    Card, EventStream, HistoryEntry, PipelineCompletion, PipelineStart, StageReport, TrackerStore,
};
use crate::buffer::{OutageBuffer, Replay, WriteOutcome};
use crate::error::Result;
use crate::model::{PipelineStatus, StageStatus};

/// What a stage update says, for [`Tracker::update_stage`].
#[derive(Debug, Clone, PartialEq)]
pub struct StageUpdate {
    /// The stage's new status.
    pub status: StageStatus,
    /// 0–100; `None` leaves the stage document's `progress_percent` `null`. Above 100 is
    /// refused when written.
    pub progress_percent: Option<u8>,
    /// Free text shown with the stage; `None` writes `null`.
    pub message: Option<String>,
    /// Free-form stage metadata; replaces what the previous update wrote.
    pub metadata: Map<String, Value>,
}

impl StageUpdate {
    /// An update with only a status: no progress, no message, empty metadata.
    pub fn new(status: StageStatus) -> Self {
        Self {
            status,
            progress_percent: None,
            message: None,
            metadata: Map::new(),
        }
    }

    /// Sets the progress, 0–100 (more is refused when the update is written).
    pub fn progress(mut self, percent: u8) -> Self {
        self.progress_percent = Some(percent);
        self
    }

    /// Sets the message shown with the stage.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the stage metadata, e.g. `{"cost_usd": 0.42}` to report the stage's LLM spend.
    pub fn metadata(mut self, metadata: Map<String, Value>) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A tracker write as the outage buffer keeps it: the operation and the store it goes to.
struct Queued {
    store: Arc<dyn TrackerStore>,
    write: TrackerWrite,
}

#[derive(Debug)]
enum TrackerWrite {
    Start(PipelineStart),
    Stage(StageReport),
    Complete(PipelineCompletion),
}

impl fmt::Debug for Queued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write.fmt(f)
    }
}

#[async_trait::async_trait]
impl Replay for Queued {
    async fn replay(&self) -> Result<()> {
        match &self.write {
            TrackerWrite::Start(op) => self.store.start_pipeline(op).await,
            TrackerWrite::Stage(op) => self.store.update_stage(op).await,
            TrackerWrite::Complete(op) => self.store.complete_pipeline(op).await,
        }
    }
}

/// What pipelines use to report progress. Cheap to clone.
///
/// Writes return once stored, or once kept in the outage buffer when Redis is unreachable
/// (never later than the command timeout); they fail only for invalid input or an error
/// Redis itself reports (e.g. a permission error). Times are taken when the call is made, so a
/// write replayed after an outage still carries its real time.
#[derive(Clone)]
pub struct Tracker {
    store: Arc<dyn TrackerStore>,
    buffer: OutageBuffer,
}

impl fmt::Debug for Tracker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracker")
            .field("backend", &self.store.backend())
            .field("buffer", &self.buffer.stats())
            .finish()
    }
}

impl Tracker {
    /// A tracker with its own outage buffer (`tracker.outage_buffer` writes).
    pub fn new(store: Arc<dyn TrackerStore>) -> Self {
        let buffer = OutageBuffer::for_store(&*store);
        Self { store, buffer }
    }

    /// A tracker sharing `buffer` (e.g. with the metrics handle, so that all of a process's
    /// writes replay in the order they were made).
    pub fn with_buffer(store: Arc<dyn TrackerStore>, buffer: OutageBuffer) -> Self {
        Self { store, buffer }
    }

    /// The outage buffer its writes go through.
    pub fn buffer(&self) -> &OutageBuffer {
        &self.buffer
    }

    /// The store it reads and writes.
    pub fn store(&self) -> &Arc<dyn TrackerStore> {
        &self.store
    }

    async fn submit(&self, write: TrackerWrite) -> Result<WriteOutcome> {
        let queued = Queued {
            store: self.store.clone(),
            write,
        };
        self.buffer.submit(Arc::new(queued)).await
    }

    /// Starts (or restarts) a card's pipeline: `running`, no stage completed yet.
    pub async fn start_pipeline(
        &self,
        card_id: &str,
        total_stages: u32,
        metadata: Map<String, Value>,
    ) -> Result<WriteOutcome> {
        let op = PipelineStart {
            card_id: card_id.to_owned(),
            total_stages,
            metadata,
            at: Utc::now(),
        };
        op.validate()?;
        self.submit(TrackerWrite::Start(op)).await
    }

    /// Reports a stage's status (and progress, message, metadata).
    pub async fn update_stage(
        &self,
        card_id: &str,
        stage_name: &str,
        update: StageUpdate,
    ) -> Result<WriteOutcome> {
        let op = StageReport {
            card_id: card_id.to_owned(),
            stage_name: stage_name.to_owned(),
            status: update.status,
            progress_percent: update.progress_percent,
            message: update.message,
            metadata: update.metadata,
            at: Utc::now(),
        };
        op.validate()?;
        self.submit(TrackerWrite::Stage(op)).await
    }

    /// Ends a card's pipeline as `completed`, `failed` or `cancelled`.
    pub async fn complete_pipeline(
        &self,
        card_id: &str,
        status: PipelineStatus,
        message: Option<&str>,
    ) -> Result<WriteOutcome> {
        let op = PipelineCompletion {
            card_id: card_id.to_owned(),
            status,
            message: message.map(str::to_owned),
            at: Utc::now(),
        };
        op.validate()?;
        self.submit(TrackerWrite::Complete(op)).await
    }

    /// See [`TrackerStore::get_card`].
    pub async fn get_card(&self, card_id: &str) -> Result<Option<Card>> {
        self.store.get_card(card_id).await
    }

    /// See [`TrackerStore::list_cards`].
    pub async fn list_cards(&self) -> Result<Vec<String>> {
        self.store.list_cards().await
    }

    /// See [`TrackerStore::history`].
    pub async fn history(
        &self,
        card_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        self.store.history(card_id, after, limit).await
    }

    /// Live events of one card.
    pub async fn subscribe_card(&self, card_id: &str) -> Result<EventStream> {
        self.store.subscribe(Some(card_id)).await
    }

    /// Live events of every card.
    pub async fn subscribe_all(&self) -> Result<EventStream> {
        self.store.subscribe(None).await
    }
}
