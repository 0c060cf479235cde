//! The real [`Feed`]: the dashboard's reads over a [`Backend`] (Redis or memory), all
//! read-only: a snapshot read, a PSUBSCRIBE to every card's events channel, and a card's
//! history stream.

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::backend::Backend;
use crate::connection::ConnState;
use crate::model::PipelineEvent;
use crate::snapshot::Snapshot;
use crate::store::Store;

use super::source::{Feed, FeedEvents, HISTORY_LIMIT};

/// Reads the dashboard's data from a [`Backend`], read-only.
pub struct StorageFeed {
    backend: Backend,
}

impl StorageFeed {
    /// A feed reading `backend`.
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }
}

#[async_trait::async_trait]
impl Feed for StorageFeed {
    fn endpoint(&self) -> String {
        self.backend.endpoint()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.backend.connection()
    }

    async fn snapshot(&self, now: DateTime<Utc>) -> crate::Result<Snapshot> {
        crate::snapshot::read_snapshot(&self.backend, now).await
    }

    async fn subscribe(&self) -> crate::Result<FeedEvents> {
        self.backend.tracker().subscribe(None).await
    }

    async fn history(&self, card_id: &str) -> crate::Result<Option<Vec<PipelineEvent>>> {
        let entries = self
            .backend
            .tracker()
            .history(card_id, None, HISTORY_LIMIT)
            .await?;
        if entries.is_empty() {
            // Python writers keep no history: the drilldown shows the events seen live.
            return Ok(None);
        }
        Ok(Some(
            entries.into_iter().filter_map(|e| e.event.ok()).collect(),
        ))
    }
}
