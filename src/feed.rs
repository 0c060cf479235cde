//! What the faces read: a snapshot, the live events and a card's history, behind one trait
//! ([`Feed`]) so that the dashboard, the `--once` report, the demo, tests and benchmarks read
//! the same way whether the data comes from Redis, memory or a script.
//!
//! [`StorageFeed`] is the real one, over a [`Backend`] (Redis or memory), and it is read-only:
//! a snapshot read, a PSUBSCRIBE to every card's events channel, and a card's history stream.

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::backend::Backend;
use crate::connection::{ConnState, Health};
use crate::metrics::HistoryWindow;
use crate::model::{Malformed, PipelineEvent};
use crate::snapshot::{Snapshot, Update};
use crate::store::Store;

/// Live events as a feed delivers them; a payload that is not an event comes as `Err`.
pub type FeedEvents = BoxStream<'static, Result<PipelineEvent, Malformed>>;

/// Where the faces' data comes from.
#[async_trait::async_trait]
pub trait Feed: Send + Sync + 'static {
    /// Where the data lives, without credentials.
    fn endpoint(&self) -> String;
    /// Follows reachability.
    fn connection(&self) -> watch::Receiver<ConnState>;
    /// Follows whether the server accepts writes. The default never changes from healthy
    /// (a feed with no server behind it).
    fn health(&self) -> watch::Receiver<Health> {
        watch::channel(Health::default()).1
    }
    /// Makes the next [`Feed::snapshot`] redo the SCANs it otherwise reuses for their interval
    /// (Python-written cards, metric names, rate-limit windows): `r` reads everything. The
    /// default has nothing cached.
    fn forget_scans(&self) {}
    /// One full read, with the time buckets of `window` for the charts.
    async fn snapshot(&self, now: DateTime<Utc>, window: HistoryWindow) -> crate::Result<Snapshot>;
    /// One poll: a full read when `full` is set, else, where the feed can, only what changed
    /// since its previous poll ([`Update::Delta`]). The default always reads in full.
    async fn poll(
        &self,
        now: DateTime<Utc>,
        window: HistoryWindow,
        full: bool,
    ) -> crate::Result<Update> {
        let _ = full;
        Ok(Update::Full(Box::new(self.snapshot(now, window).await?)))
    }
    /// Live events of every card, on a subscription of its own (its life does not follow the
    /// command connection's reconnects); the stream ends when the subscription is lost.
    async fn subscribe(&self) -> crate::Result<FeedEvents>;
    /// A card's stored events, oldest first; `None` when none are stored (Python writers).
    async fn history(&self, card_id: &str) -> crate::Result<Option<Vec<PipelineEvent>>>;
}

/// Events fetched per drilldown.
pub const HISTORY_LIMIT: usize = 500;

/// Reads the faces' data from a [`Backend`], read-only.
pub struct StorageFeed {
    backend: Backend,
}

impl StorageFeed {
    /// A feed over `backend`.
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

    fn health(&self) -> watch::Receiver<Health> {
        match self.backend.redis() {
            Some(redis) => redis.health(),
            None => watch::channel(Health::default()).1,
        }
    }

    fn forget_scans(&self) {
        self.backend.forget_scans();
    }

    async fn snapshot(&self, now: DateTime<Utc>, window: HistoryWindow) -> crate::Result<Snapshot> {
        crate::snapshot::read_snapshot_for(&self.backend, now, window).await
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
