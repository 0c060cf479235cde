//! What the faces read: a snapshot, the live events and a card's history, behind one trait
//! ([`Feed`]) so that the dashboard, the `--once` report, the demo, tests and benchmarks read
//! the same way whether the data comes from Redis, memory or a script.
//!
//! [`StorageFeed`] is the real one, over a [`Backend`] (Redis or memory), and it is read-only:
//! a snapshot read, a PSUBSCRIBE to every card's events channel, and a card's history stream.
//! Its polls read in full now and then and only the changes in between ([`Feed::poll`]), so
//! an idle dashboard costs what changes, not how many cards exist.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::watch;

use crate::backend::Backend;
use crate::connection::{ConnState, Health};
use crate::metrics::HistoryWindow;
use crate::model::{Malformed, PipelineEvent};
use crate::snapshot::{
    PollCursor, Snapshot, Update, read_snapshot_audit, read_snapshot_delta, read_snapshot_tracked,
};
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

/// Cards named by live events that a poll has not read yet, at most this many (beyond it the
/// walk for Python-written cards and the next full read find them).
pub const NAMED_CARDS_MAX: usize = 10_000;

/// Reads the faces' data from a [`Backend`], read-only.
///
/// Its [`Feed::poll`] reads in full on request, on its first poll and after every reconnect
/// (the server may have lost or been replaced by other data). Where the store can (Redis with
/// a `TIME` the reader may ask for), once every `tracker.full_read_interval_seconds` it reads
/// every card but sends only what differs ([`crate::snapshot::read_snapshot_audit`]), and
/// between those it reads only what changed ([`crate::snapshot::read_snapshot_delta`]). Cards
/// its own event subscriptions name are read by the next poll of changes if the index does not
/// list them (Python-written cards).
pub struct StorageFeed {
    backend: Backend,
    poll: tokio::sync::Mutex<PollState>,
    named: Arc<Mutex<HashMap<String, BTreeSet<String>>>>,
}

/// How one poll reads its cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadKind {
    /// Everything, sent whole: at start, after a reconnect, on request.
    Full,
    /// Everything, sending what differs: the periodic read.
    Audit,
    /// Only what changed.
    Changes,
}

/// What [`StorageFeed::poll`] keeps between polls.
#[derive(Default)]
struct PollState {
    cursor: PollCursor,
    /// When the last full read or audit finished.
    last_full: Option<Instant>,
    /// How long the last audit took, which stretches the wait for the next one (see
    /// [`audit_interval`]). Full reads do not set it: they parse every card, which an audit
    /// does not, so they would overstate it.
    last_audit_took: Option<Duration>,
    /// The connection the last full read was made on (its `since`): another one means a
    /// reconnect since.
    connected_since: Option<DateTime<Utc>>,
}

impl StorageFeed {
    /// A feed over `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            poll: Default::default(),
            named: Default::default(),
        }
    }

    /// How the next [`Feed::poll`] reads (`full`: it was asked to read in full).
    fn read_due(
        &self,
        st: &PollState,
        connected_since: Option<DateTime<Utc>>,
        full: bool,
    ) -> ReadKind {
        let interval = audit_interval(&self.backend.settings().tracker, st.last_audit_took);
        if full || !st.cursor.is_started() || st.connected_since != connected_since {
            ReadKind::Full
        } else if st.last_full.is_none_or(|t| t.elapsed() >= interval) {
            ReadKind::Audit
        } else {
            ReadKind::Changes
        }
    }

    fn connected_since(&self) -> Option<DateTime<Utc>> {
        match &*self.backend.connection().borrow() {
            ConnState::Connected { since } => Some(*since),
            _ => None,
        }
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

    async fn poll(
        &self,
        now: DateTime<Utc>,
        window: HistoryWindow,
        full: bool,
    ) -> crate::Result<Update> {
        let mut st = self.poll.lock().await;
        // Taken before the read: a reconnect during it makes the next poll full.
        let since = self.connected_since();
        let kind = self.read_due(&st, since, full);
        if kind == ReadKind::Audit {
            let started = Instant::now();
            if let Some(delta) =
                read_snapshot_audit(&self.backend, now, window, &mut st.cursor).await?
            {
                let took = started.elapsed();
                st.last_full = Some(Instant::now());
                st.last_audit_took = Some(took);
                tracing::info!(
                    took_ms = took.as_millis() as u64,
                    changed = delta.changed.len(),
                    removed = delta.removed.len(),
                    next_in_s =
                        audit_interval(&self.backend.settings().tracker, Some(took)).as_secs_f64(),
                    "audit"
                );
                return Ok(Update::Delta(Box::new(delta)));
            }
        }
        if kind == ReadKind::Changes {
            // Taken out for the read, put back if it fails.
            let named = std::mem::take(&mut *lock(&self.named));
            match read_snapshot_delta(&self.backend, now, window, &mut st.cursor, named.clone())
                .await
            {
                Ok(Some(delta)) => return Ok(Update::Delta(Box::new(delta))),
                Ok(None) => {}
                Err(e) => {
                    let mut held = lock(&self.named);
                    for (id, stages) in named {
                        if held.len() < NAMED_CARDS_MAX || held.contains_key(&id) {
                            held.entry(id).or_default().extend(stages);
                        }
                    }
                    return Err(e);
                }
            }
        }
        let snap = read_snapshot_tracked(&self.backend, now, window, &mut st.cursor).await?;
        st.last_full = Some(Instant::now());
        st.connected_since = since;
        if !st.cursor.is_started() {
            // No reads of changes to come (memory, or no server clock): nothing will read the
            // named cards, and every poll reads everything anyway.
            lock(&self.named).clear();
        }
        Ok(Update::Full(Box::new(snap)))
    }

    async fn subscribe(&self) -> crate::Result<FeedEvents> {
        let events = self.backend.tracker().subscribe(None).await?;
        // Remember which cards events name: a Python-written card changes without touching
        // the index, so the next poll of changes reads the cards named.
        let named = self.named.clone();
        Ok(events
            .inspect(move |e| {
                if let Ok(event) = e {
                    note_named(&named, event);
                }
            })
            .boxed())
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

/// How long after the last full read or audit the next audit is due:
/// `tracker.full_read_interval_seconds`, or longer when the last audit took more than
/// `tracker.audit_share_percent` of that: then its duration × 100 / the share, so that the
/// audit, the one read whose cost follows how many cards exist, costs a bounded share of the
/// dashboard's time at any size.
fn audit_interval(t: &crate::config::TrackerSettings, last_took: Option<Duration>) -> Duration {
    let base = Duration::from_secs(t.full_read_interval_seconds);
    let share = t.audit_share_percent.clamp(1, 100) as f64;
    last_took.map_or(base, |took| base.max(took.mul_f64(100.0 / share)))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records the card (and stage) an event names, within [`NAMED_CARDS_MAX`].
fn note_named(named: &Mutex<HashMap<String, BTreeSet<String>>>, event: &PipelineEvent) {
    let mut held = lock(named);
    let id = event.card_id();
    if held.len() >= NAMED_CARDS_MAX && !held.contains_key(id) {
        return;
    }
    let stages = held.entry(id.to_owned()).or_default();
    if let PipelineEvent::StageUpdated { stage_name, .. } = event
        && stages.len() < 64
    {
        stages.insert(stage_name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrackerSettings;

    fn settings(interval: u64, share: u64) -> TrackerSettings {
        TrackerSettings {
            full_read_interval_seconds: interval,
            audit_share_percent: share,
            ..TrackerSettings::default()
        }
    }

    #[test]
    fn before_any_audit_the_interval_is_the_setting() {
        assert_eq!(
            audit_interval(&settings(60, 1), None),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_quick_audit_keeps_the_set_interval() {
        let took = Duration::from_millis(200);
        assert_eq!(
            audit_interval(&settings(60, 1), Some(took)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_long_audit_stretches_the_interval_to_its_share() {
        let took = Duration::from_secs(2);
        assert_eq!(
            audit_interval(&settings(60, 1), Some(took)),
            Duration::from_secs(200)
        );
        assert_eq!(
            audit_interval(&settings(60, 2), Some(took)),
            Duration::from_secs(100)
        );
    }

    #[test]
    fn a_full_share_never_waits_less_than_the_setting_nor_the_audit() {
        assert_eq!(
            audit_interval(&settings(1, 100), Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            audit_interval(&settings(5, 100), Some(Duration::from_secs(3))),
            Duration::from_secs(5)
        );
    }
}
