//! The one picture of the whole system that both faces render: the TUI draws it, `--once`
//! prints it as text or JSON (schema in `schema/snapshot.schema.json`).
//!
//! It only composes the jobs' own read models ([`Card`], [`Summary`], [`LimitUsage`]): it is plain
//! owned data, read in a bounded number of round trips by [`read_snapshot`], so a background
//! task can build it and hand it to the UI in one message.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::connection::{ConnState, Health};
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::connection::ScanCursor;
use crate::limiter::{LimitActivity, LimitUsage, LimitsRead};
use crate::metrics::{HistoryRead, HistoryWindow, MetricsRead, RecentPipeline, Series, Summary};
use crate::model::Malformed;
use crate::store::Store;
use crate::tracker::{Card, CardChanges, CardsRead, ChangeHints, ReadCursor};

/// Reads everything the dashboard shows: the cards (with their stages) and the metrics, read
/// concurrently, each in a fixed number of pipelined round trips whatever the number of cards.
///
/// When Redis is unreachable this is an error (the caller shows the outage), never an empty
/// snapshot that would look like real data. Documents that do not parse are listed in
/// [`Snapshot::malformed`] instead. Rate-limit headroom lists the registered windows and
/// those found under the prefix without an entry (Python's), with the limit the original or
/// the config gives them, or none.
pub async fn read_snapshot(backend: &Backend, now: DateTime<Utc>) -> crate::Result<Snapshot> {
    read_snapshot_for(backend, now, HistoryWindow::default()).await
}

/// [`read_snapshot`] with the time buckets of `window` (the charts' window), read
/// concurrently with the rest in one more round trip.
pub async fn read_snapshot_for(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
) -> crate::Result<Snapshot> {
    let (cards, metrics, limits, history) =
        read_parts(backend, now, window, backend.tracker().read_cards(now)).await?;
    Ok(compose(backend, now, cards, metrics, limits, history))
}

/// Where a dashboard that polls for changes stands between polls: the tracker's cursor (see
/// [`ReadCursor`]), the bounded walk for Python-written cards (kept across full reads), and
/// the recent completions the last read attributed costs with. It holds ids, scores and names,
/// never card copies.
#[derive(Debug, Default)]
pub struct PollCursor {
    cards: Option<ReadCursor>,
    scan: ScanCursor,
    /// (card id, cost bits) of the recent completions last read.
    recent: Vec<(String, u64)>,
}

impl PollCursor {
    /// Whether a full read has started a cursor that reads of changes can continue from.
    pub fn is_started(&self) -> bool {
        self.cards.is_some()
    }

    /// The tracker's cursor, once a full read has started one.
    pub fn cards(&self) -> Option<&ReadCursor> {
        self.cards.as_ref()
    }
}

fn recent_marks(recent: &[RecentPipeline]) -> Vec<(String, u64)> {
    recent
        .iter()
        .map(|r| (r.card_id.clone(), r.cost.to_bits()))
        .collect()
}

/// [`read_snapshot_for`] that also starts `cursor` for [`read_snapshot_delta`] (when the store
/// can read only changes: Redis with a server clock the reader may ask for).
pub async fn read_snapshot_tracked(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
    cursor: &mut PollCursor,
) -> crate::Result<Snapshot> {
    let scan = cursor
        .cards
        .as_ref()
        .map(|c| c.scan.clone())
        .unwrap_or_else(|| cursor.scan.clone());
    let ((cards, started), metrics, limits, history) = read_parts(
        backend,
        now,
        window,
        backend.tracker().read_cards_tracked(now, scan),
    )
    .await?;
    cursor.recent = recent_marks(&metrics.metrics.recent);
    cursor.cards = started;
    Ok(compose(backend, now, cards, metrics, limits, history))
}

/// One read of only the cards that changed since `cursor`'s previous read (and everything
/// else in full: the metrics, limits and time buckets are a fixed number of keys), advancing
/// it. `named`: cards live events named since, with their stage names (Python-written cards
/// change without touching the index). `None`: no read of changes can be made (no full read
/// started the cursor, the store or the server cannot), read in full instead.
///
/// Applied to the previous read's snapshot ([`Snapshot::apply_delta`]) it gives what a full
/// read would, except what only a full read sees ([`ReadCursor`]). A card whose attributed
/// cost moves (its completion entered or left the recent completions) is read again, so
/// the cost attribution agrees with a full read.
pub async fn read_snapshot_delta(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
    cursor: &mut PollCursor,
    named: HashMap<String, BTreeSet<String>>,
) -> crate::Result<Option<SnapshotDelta>> {
    read_delta(backend, now, window, cursor, CardsDelta::Changes(named)).await
}

/// The periodic full read as an audit: every card is read (in chunks), but only the cards
/// that differ from what `cursor`'s reads gave, and the ids of those no longer found, are
/// sent ([`crate::tracker::TrackerStore::audit_cards`]), so the dashboard does not hold and
/// apply a second copy of every card. Applied to the snapshot held, it gives what a full read
/// would, what a read of changes cannot see included; cards whose attributed cost moved are
/// sent as in [`read_snapshot_delta`]. `None`: no audit can be made, read in full instead.
pub async fn read_snapshot_audit(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
    cursor: &mut PollCursor,
) -> crate::Result<Option<SnapshotDelta>> {
    read_delta(backend, now, window, cursor, CardsDelta::Audit).await
}

/// How a delta reads its cards.
enum CardsDelta {
    /// Only what the index (and these cards live events named) say changed.
    Changes(HashMap<String, BTreeSet<String>>),
    /// Every card, keeping those that differ.
    Audit,
}

async fn read_delta(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
    cursor: &mut PollCursor,
    how: CardsDelta,
) -> crate::Result<Option<SnapshotDelta>> {
    let Some(cards_cursor) = cursor.cards.as_mut() else {
        return Ok(None);
    };
    // The metrics first: the recent completions say which cards' costs moved, so they are
    // read with the cards of this same poll.
    let ((), metrics, limits, history) = read_parts(backend, now, window, async { Ok(()) }).await?;
    let marks = recent_marks(&metrics.metrics.recent);
    let before: HashSet<&(String, u64)> = cursor.recent.iter().collect();
    let after: HashSet<&(String, u64)> = marks.iter().collect();
    let recheck: HashSet<String> = before
        .symmetric_difference(&after)
        .map(|(id, _)| id.clone())
        .collect();
    let changes = match how {
        CardsDelta::Changes(named) => {
            let hints = ChangeHints { named, recheck };
            backend.tracker().read_changes(cards_cursor, hints).await?
        }
        CardsDelta::Audit => {
            backend
                .tracker()
                .audit_cards(cards_cursor, &recheck)
                .await?
        }
    };
    let Some(changes) = changes else {
        return Ok(None);
    };
    cursor.recent = marks;
    let CardChanges {
        mut changed,
        removed,
        malformed: card_malformed,
    } = changes;
    attribute_costs(&mut changed, &metrics.metrics.recent);
    let snap = compose(
        backend,
        now,
        CardsRead {
            cards: Vec::new(),
            malformed: card_malformed,
        },
        metrics,
        limits,
        history,
    );
    Ok(Some(SnapshotDelta {
        taken_at: snap.taken_at,
        source: snap.source,
        connection: snap.connection,
        health: snap.health,
        changed,
        removed,
        metrics: snap.metrics,
        limits: snap.limits,
        history: snap.history,
        malformed: snap.malformed,
    }))
}

/// The cards (`cards`, any read) with the metrics, limits and time buckets, all concurrently,
/// with the health probe riding along (at most every few seconds: the faces barely write, so
/// they would never see a refused write of their own).
async fn read_parts<T>(
    backend: &Backend,
    now: DateTime<Utc>,
    window: HistoryWindow,
    cards: impl std::future::Future<Output = crate::Result<T>>,
) -> crate::Result<(T, MetricsRead, LimitsRead, HistoryRead)> {
    let m = &backend.settings().metrics;
    let recent = usize::try_from(m.snapshot_recent).unwrap_or(usize::MAX);
    let probe = async {
        if let Some(redis) = backend.redis() {
            redis.probe_health_if_due().await;
        }
    };
    let (read, ()) = futures::join!(
        async {
            futures::try_join!(
                cards,
                backend.metrics().read_metrics(m.snapshot_days, recent),
                backend.limiter().read_limits(),
                backend.metrics().read_history(window, now)
            )
        },
        probe
    );
    read
}

/// A snapshot of what was read.
fn compose(
    backend: &Backend,
    now: DateTime<Utc>,
    cards: CardsRead,
    metrics: MetricsRead,
    limits: LimitsRead,
    history: HistoryRead,
) -> Snapshot {
    let mut malformed = cards.malformed;
    malformed.extend(metrics.malformed);
    malformed.extend(limits.malformed);
    malformed.extend(history.malformed);
    let mut limits = limits.limits;
    attribute_activity(&mut limits, &history.series, now);
    let mut cards = cards.cards;
    attribute_costs(&mut cards, &metrics.metrics.recent);
    let connection = backend.connection().borrow().clone();
    let health = backend
        .redis()
        .map(|r| r.current_health())
        .unwrap_or_default();
    Snapshot {
        taken_at: now,
        source: SourceInfo {
            backend: backend.backend().to_owned(),
            endpoint: backend.endpoint(),
        },
        connection,
        health,
        cards,
        metrics: metrics.metrics,
        limits,
        history: history.series,
        malformed,
    }
}

/// Each limit takes the admissions, refusals and waits the time buckets hold for its key over
/// the buckets that overlap its window before `now` (at least the current minute or hour).
pub(crate) fn attribute_activity(limits: &mut [LimitUsage], series: &Series, now: DateTime<Utc>) {
    for l in limits {
        l.activity = series
            .limit_recent(&l.key, l.window_seconds, now)
            .filter(|_| series.buckets.iter().any(|b| b.limits.contains_key(&l.key)))
            .map(|(f, over_seconds)| LimitActivity {
                admitted: f.admitted.max(0) as u64,
                refused: f.refused.max(0) as u64,
                waited: f.waited.max(0) as u64,
                over_seconds,
            });
    }
}

/// A finished card whose writer recorded no cost in its metadata takes the cost its pipeline
/// completion recorded in the metrics (the recent completions read with the snapshot), so the
/// card table shows what a finished pipeline cost whoever wrote it.
pub(crate) fn attribute_costs(cards: &mut [Card], recent: &[RecentPipeline]) {
    if recent.is_empty() {
        return;
    }
    let by_card: std::collections::HashMap<&str, f64> = recent
        .iter()
        .rev() // newest last, so the newest completion of a card id wins
        .map(|r| (r.card_id.as_str(), r.cost))
        .collect();
    for card in cards.iter_mut().filter(|c| c.cost_usd.is_none()) {
        if card.pipeline.status.is_final()
            && let Some(cost) = by_card.get(card.pipeline.card_id.as_str())
        {
            card.cost_usd = Some(*cost);
        }
    }
}

/// Everything the dashboard shows at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When the read finished.
    pub taken_at: DateTime<Utc>,
    /// Where the data came from, with any password removed.
    pub source: SourceInfo,
    /// The connection state when the read finished.
    pub connection: ConnState,
    /// Whether the server accepted writes when the read finished (a reachable server may
    /// refuse them: `OOM`, read-only replica, loading).
    #[serde(default)]
    pub health: Health,
    /// Live cards, newest start first.
    pub cards: Vec<Card>,
    /// The metrics' aggregates.
    pub metrics: Summary,
    /// Rate-limit headroom per window: registered ones and those found by SCAN (Python's).
    pub limits: Vec<LimitUsage>,
    /// The metrics' time buckets of the charts' window (`found` false: none in the store).
    #[serde(default)]
    pub history: Series,
    /// Documents and members that could not be parsed, shown as such.
    pub malformed: Vec<Malformed>,
}

/// What one incremental read found: everything a [`Snapshot`] holds except the cards, which
/// come as the changes since the previous read (the cards written since, whole, and the ids of
/// the cards gone). Applied to the snapshot that read produced ([`Snapshot::apply_delta`]), it
/// gives the snapshot a full read would have given, at the cost of what changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotDelta {
    /// When the read finished.
    pub taken_at: DateTime<Utc>,
    /// Where the data came from, with any password removed.
    pub source: SourceInfo,
    /// The connection state when the read finished.
    pub connection: ConnState,
    /// Whether the server accepted writes when the read finished.
    #[serde(default)]
    pub health: Health,
    /// Cards written since the previous read, each whole (document and stages): it replaces
    /// the card of its id, or is new.
    pub changed: Vec<Card>,
    /// Ids of cards gone since the previous read (expired or deleted).
    pub removed: Vec<String>,
    /// The metrics' aggregates (read in full: they are a fixed number of keys).
    pub metrics: Summary,
    /// Rate-limit headroom per window (read in full).
    pub limits: Vec<LimitUsage>,
    /// The metrics' time buckets of the charts' window.
    #[serde(default)]
    pub history: Series,
    /// Every document and member known not to parse, as in [`Snapshot::malformed`] (the
    /// whole list, not only what this read found).
    pub malformed: Vec<Malformed>,
}

/// What a poll read: everything, or the changes since the previous poll.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A full read: the truth, replacing whatever was held.
    Full(Box<Snapshot>),
    /// The changes since the previous read.
    Delta(Box<SnapshotDelta>),
}

/// What [`Snapshot::take_delta_fields`] changed besides the cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FieldsTaken {
    /// The source, connection, metrics, limits, time buckets or malformed list differ from
    /// what the snapshot held (the read time and the health are not compared: the read time
    /// always moves, and the dashboard compares the health with its own latest report).
    pub differ: bool,
    /// The malformed list differs.
    pub malformed: bool,
}

impl Snapshot {
    /// Applies the changes of an incremental read: the changed cards replace theirs or are
    /// added, the removed ones leave, the cards stay newest start first, and everything else is
    /// taken from the delta. The result is what a full read at the same moment would give.
    pub fn apply_delta(&mut self, delta: SnapshotDelta) {
        let (changed, removed, _) = self.take_delta_fields(delta);
        if !changed.is_empty() || !removed.is_empty() {
            let mut gone: std::collections::HashSet<String> = removed.into_iter().collect();
            let mut replacing: std::collections::HashMap<String, Card> = changed
                .into_iter()
                .map(|c| (c.pipeline.card_id.clone(), c))
                .collect();
            gone.extend(replacing.keys().cloned());
            self.cards.retain(|c| !gone.contains(&c.pipeline.card_id));
            self.cards.extend(replacing.drain().map(|(_, c)| c));
            crate::tracker::sort_cards(&mut self.cards);
        }
    }

    /// Takes everything of `delta` but its cards, in place of this snapshot's own, and hands
    /// back the cards' changes (the cards written since, the ids gone) for the caller to
    /// apply as it keeps them (the dashboard changes its cards in place, by index), with what
    /// the other fields changed. The one place a delta is taken apart, so that a field added
    /// to both structs cannot be forgotten by one of the two ways of applying it.
    pub fn take_delta_fields(
        &mut self,
        delta: SnapshotDelta,
    ) -> (Vec<Card>, Vec<String>, FieldsTaken) {
        let SnapshotDelta {
            taken_at,
            source,
            connection,
            health,
            changed,
            removed,
            metrics,
            limits,
            history,
            malformed,
        } = delta;
        let malformed_differs = self.malformed != malformed;
        let taken = FieldsTaken {
            differ: malformed_differs
                || self.source != source
                || self.connection != connection
                || self.metrics != metrics
                || self.limits != limits
                || self.history != history,
            malformed: malformed_differs,
        };
        self.taken_at = taken_at;
        self.source = source;
        self.connection = connection;
        self.health = health;
        self.metrics = metrics;
        self.limits = limits;
        self.history = history;
        self.malformed = malformed;
        (changed, removed, taken)
    }
}

/// Where a snapshot was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `redis`, `cluster` or `memory`.
    pub backend: String,
    /// Endpoint without credentials, e.g. `redis://127.0.0.1:6379/0`.
    pub endpoint: String,
}
