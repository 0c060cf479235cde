//! The real [`Feed`]: the dashboard's reads over a [`Storage`] (Redis or memory).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::connection::ConnState;
use crate::model::PipelineEvent;
use crate::snapshot::Snapshot;
use crate::storage::Storage;

use super::source::{Feed, FeedEvents};

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

    async fn snapshot(&self, _now: DateTime<Utc>) -> crate::Result<Snapshot> {
        // Wired to the tracker's snapshot read once it lands on main.
        Err(crate::Error::Config(
            "snapshot reading is not in this build yet".into(),
        ))
    }

    async fn subscribe(&self) -> crate::Result<FeedEvents> {
        Err(crate::Error::Config(
            "event subscription is not in this build yet".into(),
        ))
    }

    async fn history(&self, _card_id: &str) -> crate::Result<Option<Vec<PipelineEvent>>> {
        Ok(None)
    }
}
