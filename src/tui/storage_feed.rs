//! The real [`Feed`]: the dashboard's reads over a [`Storage`] (Redis or memory), all
//! read-only: a snapshot read, a PSUBSCRIBE to every card's events channel, and a card's
//! history stream.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::connection::ConnState;
use crate::model::PipelineEvent;
use crate::snapshot::Snapshot;
use crate::storage::Storage;

use super::source::{Feed, FeedEvents, HISTORY_LIMIT};

/// Reads the dashboard's data from a [`Storage`], read-only.
pub struct StorageFeed {
    storage: Arc<dyn Storage>,
}

impl StorageFeed {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }
}

#[async_trait::async_trait]
impl Feed for StorageFeed {
    fn endpoint(&self) -> String {
        self.storage.endpoint()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.storage.connection()
    }

    async fn snapshot(&self, now: DateTime<Utc>) -> crate::Result<Snapshot> {
        crate::snapshot::read_snapshot(&*self.storage, now).await
    }

    async fn subscribe(&self) -> crate::Result<FeedEvents> {
        self.storage.subscribe(None).await
    }

    async fn history(&self, card_id: &str) -> crate::Result<Option<Vec<PipelineEvent>>> {
        let entries = self.storage.history(card_id, None, HISTORY_LIMIT).await?;
        if entries.is_empty() {
            // Python writers keep no history: the drilldown shows the events seen live.
            return Ok(None);
        }
        Ok(Some(
            entries.into_iter().filter_map(|e| e.event.ok()).collect(),
        ))
    }
}
