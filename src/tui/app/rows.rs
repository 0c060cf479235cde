//! The overview's rows: which cards and malformed documents the filter keeps, in which order
//! the sort puts them, and the selection that follows its card when rows move.
//!
//! The order is kept, not recomputed: each card's sort key is cached, and the cards a read or
//! an event changed are taken out and put back by binary search ([`Order`]), so a poll with
//! ten changes among 100,000 cards costs ten placements, not a sort.
//!
//! The selection is a card id, never a row index: cards arriving, finishing or re-sorting
//! move rows under it and it moves with its card; a card that leaves (expired, filtered out)
//! hands the selection to its neighbour in the old order that is still listed. Until the user
//! moves the cursor (and again after `Home`), the selection stays on the first row, like
//! `top`: the default order puts what needs attention there.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::App;
use crate::model::{InlineStr, PipelineStatus, parse_timestamp};
use crate::snapshot::Snapshot;
use crate::tracker::Card;

/// The card table's sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// What needs attention first: running cards (newest start first), then cards failed
    /// within [`RECENT_FAILURE_SECS`] (newest first), then the rest by last activity, newest
    /// first. New cards land among the running ones at the top, never below the screen.
    Attention,
    /// Start time, newest first; start times that do not parse come last either way.
    Started,
    /// Card id.
    Id,
    /// Attention first: failed, running, queued, cancelled, completed.
    Status,
    /// Furthest along first.
    Progress,
    /// Longest first.
    Elapsed,
    /// Most expensive first.
    Cost,
}

impl SortKey {
    /// Every column, in cycling order.
    pub const ALL: [SortKey; 7] = [
        SortKey::Attention,
        SortKey::Started,
        SortKey::Id,
        SortKey::Status,
        SortKey::Progress,
        SortKey::Elapsed,
        SortKey::Cost,
    ];

    /// The column's name in the footer.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Attention => "attention",
            SortKey::Started => "started",
            SortKey::Id => "id",
            SortKey::Status => "status",
            SortKey::Progress => "progress",
            SortKey::Elapsed => "time",
            SortKey::Cost => "cost",
        }
    }

    pub(super) fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// One row of the overview table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Index into the displayed snapshot's cards.
    Card(usize),
    /// Index into the displayed snapshot's malformed documents.
    Malformed(usize),
}

/// The statuses the quick filter cycles through (`f` forward, `F` back), after "all".
pub const STATUS_FILTERS: [PipelineStatus; 5] = [
    PipelineStatus::Running,
    PipelineStatus::Failed,
    PipelineStatus::Queued,
    PipelineStatus::Completed,
    PipelineStatus::Cancelled,
];

/// How long a failed card counts as recent for [`SortKey::Attention`] (kept with the running
/// ones at the top).
pub const RECENT_FAILURE_SECS: i64 = 3600;

fn status_rank(s: PipelineStatus) -> u8 {
    match s {
        PipelineStatus::Failed => 0,
        PipelineStatus::Running => 1,
        PipelineStatus::Queued => 2,
        PipelineStatus::Cancelled => 3,
        PipelineStatus::Completed => 4,
    }
}

/// Which cards the overview keeps: a status (the quick filters) and a text that must occur,
/// case-insensitively, in the id, title, status, current stage or a metadata value.
#[cfg(test)]
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Filter<'a> {
    pub(super) text: &'a str,
    pub(super) status: Option<PipelineStatus>,
}

/// Whether `card` has `needle` (already lowercase, non-empty) in a field the filter searches.
fn card_matches(card: &Card, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    let p = &card.pipeline;
    has(&p.card_id)
        || has(p.status.as_str())
        || p.current_stage.as_deref().is_some_and(has)
        || p.metadata.values().any(|v| value_matches(v, needle))
}

fn value_matches(v: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.to_lowercase().contains(needle),
        Value::Number(n) => n.to_string().contains(needle),
        Value::Bool(b) => b.to_string().contains(needle),
        Value::Null => false,
        Value::Array(a) => a.iter().any(|v| value_matches(v, needle)),
        Value::Object(o) => o.values().any(|v| value_matches(v, needle)),
    }
}

/// Where one card sorts under the current sort and filter, computed when the card changes
/// (parsing times per comparison would dominate sorting tens of thousands of cards) and kept
/// per card, so that a changed card is placed by binary search among the others.
#[derive(Debug, Clone, Copy)]
struct Key {
    /// The filter keeps the card.
    listed: bool,
    /// The card changed since the rows were last brought up to date: the rest of the key is
    /// the one its row (if any) was placed by, not the card's own any more.
    dirty: bool,
    /// [`SortKey::Elapsed`]: the card still runs, so its time grows with the clock.
    open: bool,
    /// Stays last whatever the direction ([`SortKey::Started`]'s unparsable start times).
    last: bool,
    /// [`SortKey::Attention`]'s group (0 running, 1 recently failed, 2 the rest), or
    /// [`SortKey::Status`]'s rank.
    group: u8,
    /// The time compared, newest first: the start ([`SortKey::Started`], and the running group
    /// of [`SortKey::Attention`]) or the last activity (the other groups).
    time: Option<NaiveDateTime>,
    /// The figure compared, largest first (progress, elapsed seconds, cost).
    num: f64,
}

const STALE: Key = Key {
    listed: false,
    dirty: true,
    open: false,
    last: false,
    group: 0,
    time: None,
    num: 0.0,
};

/// The latest of a card's end time, stage reports and start time.
fn last_activity(c: &Card) -> Option<NaiveDateTime> {
    let p = &c.pipeline;
    let mut best = parse_timestamp(&p.start_time);
    let others = p
        .end_time
        .iter()
        .map(InlineStr::as_str)
        .chain(c.stages.iter().map(|s| s.timestamp.as_str()));
    for t in others {
        if let Some(t) = parse_timestamp(t) {
            best = best.max(Some(t));
        }
    }
    best
}

/// The group of [`SortKey::Attention`] a card with this status and last activity is in at
/// `now`.
fn attention_group(
    status: PipelineStatus,
    active: Option<NaiveDateTime>,
    now: DateTime<Utc>,
) -> u8 {
    match status {
        PipelineStatus::Running => 0,
        PipelineStatus::Failed
            if active
                .is_some_and(|t| (now.naive_utc() - t).num_seconds() < RECENT_FAILURE_SECS) =>
        {
            1
        }
        _ => 2,
    }
}

/// What the rows are computed against, besides the cards: the filter, the sort and the clock.
#[derive(Debug, Clone, Copy)]
struct Context<'a> {
    /// The filter text, lowercase.
    needle: &'a str,
    status: Option<PipelineStatus>,
    sort: SortKey,
    reverse: bool,
    /// The clock of [`SortKey::Attention`]'s recent-failure window.
    now: DateTime<Utc>,
    /// The moment [`SortKey::Elapsed`] measures running cards at.
    elapsed_at: DateTime<Utc>,
}

impl Context<'_> {
    fn key(&self, c: &Card) -> Key {
        let listed = self.status.is_none_or(|s| c.pipeline.status == s)
            && (self.needle.is_empty() || card_matches(c, self.needle));
        let mut key = Key {
            listed,
            dirty: false,
            ..STALE
        };
        if !listed {
            return key;
        }
        let p = &c.pipeline;
        match self.sort {
            // A running card is placed by its start alone: its last activity (every stage's
            // time parsed) is only worth finding for the other groups. Most cards of a busy
            // board run, and this is computed for every card of a full read and again for
            // every card an event or a delta changes.
            SortKey::Attention if p.status == PipelineStatus::Running => {
                key.group = attention_group(p.status, None, self.now);
                key.time = parse_timestamp(&p.start_time);
            }
            SortKey::Attention => {
                let active = last_activity(c);
                key.group = attention_group(p.status, active, self.now);
                key.time = active;
            }
            SortKey::Started => {
                key.time = parse_timestamp(&p.start_time);
                key.last = key.time.is_none();
            }
            SortKey::Id => {}
            SortKey::Status => key.group = status_rank(p.status),
            SortKey::Progress => key.num = c.progress(),
            SortKey::Elapsed => {
                key.open = p.duration_seconds.is_none_or(|d| !d.is_finite())
                    && p.end_time.is_none()
                    && !p.status.is_final();
                key.num = crate::format::elapsed(p, self.elapsed_at).unwrap_or(-1.0);
            }
            SortKey::Cost => key.num = c.cost_usd.unwrap_or(-1.0),
        }
        key
    }

    /// A listed card's place as plain integers, compared before the id: whether it stays
    /// last whatever the direction, then the sort's own figures (smaller first).
    fn rank(&self, k: &Key) -> Rank {
        // Newest first; unknown times last within the group.
        let newest = |t: Option<NaiveDateTime>| {
            t.map_or(0, |t| {
                let t = t.and_utc();
                -(i128::from(t.timestamp()) * 1_000_000_000
                    + i128::from(t.timestamp_subsec_nanos()))
            })
        };
        // f64::total_cmp's order, largest first.
        let largest = |x: f64| {
            let b = x.to_bits() as i64;
            -i128::from(b ^ (((b >> 63) as u64) >> 1) as i64)
        };
        match self.sort {
            SortKey::Attention => Rank(
                false,
                k.group * 2 + u8::from(k.time.is_none()),
                newest(k.time),
            ),
            SortKey::Started => Rank(k.last, 0, newest(k.time)),
            SortKey::Id => Rank(false, 0, 0),
            SortKey::Status => Rank(false, k.group, 0),
            SortKey::Progress | SortKey::Elapsed | SortKey::Cost => Rank(false, 0, largest(k.num)),
        }
    }

    /// The order of two listed cards from their ranks: the sort's, ties by id; reversed but
    /// for what stays last.
    fn order(&self, a: &Rank, x: &Card, b: &Rank, y: &Card) -> Ordering {
        a.0.cmp(&b.0).then_with(|| {
            let ord = (a.1, a.2)
                .cmp(&(b.1, b.2))
                .then_with(|| x.pipeline.card_id.cmp(&y.pipeline.card_id));
            if self.reverse { ord.reverse() } else { ord }
        })
    }

    /// The order of two listed cards: the sort's, ties by id.
    fn cmp(&self, (a, x): (&Key, &Card), (b, y): (&Key, &Card)) -> Ordering {
        self.order(&self.rank(a), x, &self.rank(b), y)
    }
}

/// Whether two keys place a card at the same row (every field the order reads).
fn same_place(a: &Key, b: &Key) -> bool {
    a.listed == b.listed
        && a.open == b.open
        && a.last == b.last
        && a.group == b.group
        && a.time == b.time
        && a.num.to_bits() == b.num.to_bits()
}

/// A card's place under a sort (see [`Context::rank`]).
#[derive(Debug, Clone, Copy)]
struct Rank(bool, u8, i128);

/// Malformed documents the filter keeps (only without a status filter: they have none).
fn malformed_rows(snap: &Snapshot, ctx: &Context<'_>) -> impl Iterator<Item = Row> {
    let needle = ctx.needle;
    snap.malformed
        .iter()
        .enumerate()
        .filter(move |_| ctx.status.is_none())
        .filter(move |(_, m)| {
            needle.is_empty()
                || m.key.to_lowercase().contains(needle)
                || m.reason.to_lowercase().contains(needle)
        })
        .map(|(i, _)| Row::Malformed(i))
}

/// Every card's key and the rows of `snap` in order, from scratch: the cards the filter keeps
/// in sort order (ties by id), then the malformed documents it keeps.
fn full_order(snap: &Snapshot, ctx: &Context<'_>) -> (Vec<Key>, Vec<Row>, usize) {
    let keys: Vec<Key> = snap.cards.iter().map(|c| ctx.key(c)).collect();
    // Sorted by ranks held beside their indices: the comparisons read no card but on ties.
    let mut listed: Vec<(Rank, usize)> = (0..keys.len())
        .filter(|&i| keys[i].listed)
        .map(|i| (ctx.rank(&keys[i]), i))
        .collect();
    listed.sort_unstable_by(|(a, i), (b, j)| ctx.order(a, &snap.cards[*i], b, &snap.cards[*j]));
    let cards = listed.len();
    let mut rows: Vec<Row> = listed.into_iter().map(|(_, i)| Row::Card(i)).collect();
    rows.extend(malformed_rows(snap, ctx));
    (keys, rows, cards)
}

/// The rows of `snap` that `filter` keeps: cards in `sort` order (ties by id), then malformed
/// documents (by key and reason). The reference the incremental upkeep is tested against.
#[cfg(test)]
pub(super) fn visible_rows(
    snap: &Snapshot,
    filter: Filter<'_>,
    sort: SortKey,
    reverse: bool,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let needle = filter.text.to_lowercase();
    let ctx = Context {
        needle: &needle,
        status: filter.status,
        sort,
        reverse,
        now,
        elapsed_at: now,
    };
    full_order(snap, &ctx).1
}

/// The overview's rows kept in order between full rebuilds.
///
/// A full rebuild (a new full snapshot, a sort or filter change, a freeze or thaw) keys and
/// sorts every card. Between them, the slots the card table reports changed are marked
/// stale; the next look at the rows takes their rows out, keys them again and merges them
/// back by binary search: O(changed · log n) comparisons plus one copy of the row list,
/// however many events or delta cards arrived since the last frame.
///
/// The clock moves cards too, and is handled without a full sort: under
/// [`SortKey::Attention`] the recently-failed group (contiguous in the order) is checked
/// whenever the clock moves and the cards that aged out of it are re-placed; under
/// [`SortKey::Elapsed`] running cards are measured at one moment, moved forward once a second
/// (all running cards re-placed; their order among themselves never changes, only against
/// finished ones). A clock that goes back rebuilds.
#[derive(Debug)]
pub(super) struct Order {
    rows: Vec<Row>,
    /// How many of `rows` are cards (the malformed rows follow them).
    cards: usize,
    /// One per card of the shown snapshot (longer while removed slots wait for the next
    /// upkeep).
    keys: Vec<Key>,
    /// Slots changed since the rows were last brought up to date, with the id each held then
    /// (`None`: a new slot), so that the old order can still be read by id.
    changed: HashMap<usize, Option<String>>,
    /// Slots whose card is unchanged but whose key moved with the clock (the time sort's
    /// running cards).
    retimed: Vec<usize>,
    /// The malformed list was replaced by an incremental read.
    malformed_changed: bool,
    /// The filter text the keys were computed with, lowercase.
    needle: String,
    /// The clock [`SortKey::Attention`]'s groups hold for.
    keyed_at: DateTime<Utc>,
    /// The moment [`SortKey::Elapsed`] measures running cards at.
    elapsed_at: DateTime<Utc>,
    /// The ids of the rows as last shown, when the snapshot they index was replaced before
    /// the next rebuild (a vanished selection's neighbours are looked up in it).
    before: Option<Vec<String>>,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            cards: 0,
            keys: Vec::new(),
            changed: HashMap::new(),
            retimed: Vec::new(),
            malformed_changed: false,
            needle: String::new(),
            keyed_at: DateTime::<Utc>::MIN_UTC,
            elapsed_at: DateTime::<Utc>::MIN_UTC,
            before: None,
        }
    }
}

/// How often [`SortKey::Elapsed`] measures running cards again.
const ELAPSED_STEP_MS: i64 = 1000;

/// From one changed card per this many kept ones, changed cards are merged in one pass over
/// the rows instead of each by binary search.
const LINEAR_MERGE_RATIO: usize = 16;

/// Up to this many changed cards move in place (each a binary search and a shift of the rows
/// between its old and new place); more are merged in one pass over the rows.
const IN_PLACE_MAX: usize = 64;

impl Order {
    /// Notes that the card in slot `i` changed; `before` is the id it held (first note wins).
    pub(super) fn changed(&mut self, i: usize, before: Option<String>) {
        if i >= self.keys.len() {
            self.keys.resize(i + 1, STALE);
        }
        self.keys[i].dirty = true;
        self.changed.entry(i).or_insert(before);
    }

    /// Notes that the malformed list changed.
    pub(super) fn malformed_changed(&mut self) {
        self.malformed_changed = true;
    }

    /// Forgets the slots noted changed: the rows will be rebuilt for another snapshot.
    pub(super) fn forget_changes(&mut self) {
        self.changed.clear();
        self.retimed.clear();
    }

    /// Notes the cards of the recently failed group (contiguous in [`SortKey::Attention`]'s
    /// order) whose failure aged out of [`RECENT_FAILURE_SECS`] by `self.keyed_at`.
    fn note_aged_failures(&mut self, snap: &Snapshot, reverse: bool) {
        let keys = &self.keys;
        let group = |r: &Row| match r {
            Row::Card(j) => keys[*j].group,
            Row::Malformed(_) => u8::MAX,
        };
        let rows = &self.rows[..self.cards];
        let (from, to) = if reverse {
            (
                rows.partition_point(|r| group(r) > 1),
                rows.partition_point(|r| group(r) >= 1),
            )
        } else {
            (
                rows.partition_point(|r| group(r) < 1),
                rows.partition_point(|r| group(r) <= 1),
            )
        };
        let now = self.keyed_at;
        let aged: Vec<(usize, String)> = rows[from..to.max(from)]
            .iter()
            .filter_map(|r| match r {
                Row::Card(j) => Some(*j),
                Row::Malformed(_) => None,
            })
            .filter_map(|j| {
                let (k, c) = (&keys[j], snap.cards.get(j)?);
                let moved = !k.dirty && attention_group(c.pipeline.status, k.time, now) != k.group;
                moved.then(|| (j, c.pipeline.card_id.clone()))
            })
            .collect();
        for (j, id) in aged {
            self.changed(j, Some(id));
        }
    }

    /// Notes every running card of [`SortKey::Elapsed`]: `self.elapsed_at` moved on.
    fn note_running(&mut self, snap: &Snapshot) {
        // The same cards in the same slots: no id to remember, only the key to compute again.
        for j in 0..self.keys.len().min(snap.cards.len()) {
            let k = &mut self.keys[j];
            if k.open && !k.dirty {
                k.dirty = true;
                self.retimed.push(j);
            }
        }
    }

    /// Moves each changed card (`fresh`: slot and new key; every slot still holds the card it
    /// held) from its row to where its new key puts it, keeping the rows sorted by the keys
    /// held at every step. Returns `false` when a card's row is not where its old key says
    /// (only possible with duplicate ids): the rows are then to be rebuilt.
    fn shift_in_place(
        &mut self,
        snap: &Snapshot,
        ctx: &Context<'_>,
        fresh: &[(usize, Key)],
    ) -> bool {
        let at_old = |order: &Self, i: usize| -> Option<usize> {
            let key = order.keys[i];
            if !key.listed {
                return None;
            }
            let rows = &order.rows[..order.cards];
            let p = rows.partition_point(|r| order.before(r, (&key, &snap.cards[i]), snap, ctx));
            (rows.get(p) == Some(&Row::Card(i))).then_some(p)
        };
        for &(i, key) in fresh {
            let card = &snap.cards[i];
            let old = at_old(self, i);
            if old.is_none() && self.keys[i].listed {
                return false;
            }
            match (old, key.listed) {
                (Some(p), true) => {
                    let rows = &self.rows[..self.cards];
                    let above = |r: &Row| self.before(r, (&key, card), snap, ctx);
                    if p > 0 && !above(&rows[p - 1]) {
                        let q = rows[..p].partition_point(above);
                        self.rows[q..=p].rotate_right(1);
                    } else if p + 1 < rows.len() && above(&rows[p + 1]) {
                        let q = p + 1 + rows[p + 1..].partition_point(above);
                        self.rows[p..q].rotate_left(1);
                    }
                }
                (Some(p), false) => {
                    self.rows.remove(p);
                    self.cards -= 1;
                }
                (None, true) => {
                    let q = self.rows[..self.cards]
                        .partition_point(|r| self.before(r, (&key, card), snap, ctx));
                    self.rows.insert(q, Row::Card(i));
                    self.cards += 1;
                }
                (None, false) => {}
            }
            self.keys[i] = key;
        }
        true
    }

    /// Whether the card row `r` sorts before a card with `key`, by the key `r` is held at.
    fn before(
        &self,
        r: &Row,
        (key, card): (&Key, &Card),
        snap: &Snapshot,
        ctx: &Context<'_>,
    ) -> bool {
        match r {
            Row::Card(j) => {
                ctx.cmp((&self.keys[*j], &snap.cards[*j]), (key, card)) == Ordering::Less
            }
            Row::Malformed(_) => false,
        }
    }

    /// The id the card row `row` stood for when the rows were last brought up to date.
    fn old_id<'a>(&'a self, row: &Row, snap: &'a Snapshot) -> Option<&'a str> {
        let Row::Card(j) = row else {
            return None;
        };
        match self.changed.get(j) {
            Some(before) => before.as_deref(),
            None => snap.cards.get(*j).map(|c| c.pipeline.card_id.as_str()),
        }
    }

    /// The row now showing the card in slot `i`, found by its key.
    fn row_of(&self, i: usize, snap: &Snapshot, ctx: &Context<'_>) -> Option<usize> {
        let (key, card) = (self.keys.get(i)?, snap.cards.get(i)?);
        if !key.listed || key.dirty {
            return None;
        }
        let rows = &self.rows[..self.cards];
        let at = rows.partition_point(|r| match r {
            Row::Card(j) => {
                ctx.cmp((&self.keys[*j], &snap.cards[*j]), (key, card)) == Ordering::Less
            }
            Row::Malformed(_) => false,
        });
        (rows.get(at) == Some(&Row::Card(i))).then_some(at)
    }

    /// Whether the card in slot `i`, in its row, sorts outside the rows `from..to`: before the
    /// first of them or after the last. Two comparisons with the rows at the edges, not a
    /// search for its own row (an event of an off-screen card asks this, a thousand times a
    /// second under a storm). Conservative: `false` when the card's key or an edge row's is
    /// not up to date, or when no card row is in the range.
    fn sorts_outside(
        &self,
        i: usize,
        snap: &Snapshot,
        ctx: &Context<'_>,
        (from, to): (usize, usize),
    ) -> bool {
        let (Some(key), Some(card)) = (self.keys.get(i), snap.cards.get(i)) else {
            return false;
        };
        if !key.listed || key.dirty {
            return false;
        }
        let to = to.min(self.cards);
        if from >= to {
            return false;
        }
        let edge = |r: usize| match self.rows.get(r) {
            Some(Row::Card(j)) => {
                let (k, c) = (self.keys.get(*j)?, snap.cards.get(*j)?);
                (!k.dirty).then(|| ctx.cmp((key, card), (k, c)))
            }
            _ => None,
        };
        match (edge(from), edge(to - 1)) {
            (Some(first), Some(last)) => first == Ordering::Less || last == Ordering::Greater,
            _ => false,
        }
    }
}

impl App {
    fn context(&self) -> Context<'_> {
        self.context_with(&self.order.needle)
    }

    /// The context of the rows with the filter text `needle` (lowercase).
    fn context_with<'a>(&self, needle: &'a str) -> Context<'a> {
        Context {
            needle,
            status: self.status_filter,
            sort: self.sort,
            reverse: self.reverse,
            now: self.order.keyed_at,
            elapsed_at: self.order.elapsed_at,
        }
    }

    /// Whether the card now in slot `i`, which held `before` until it changed, still sorts
    /// where its row is: the same card (not another one swapped into the slot) whose key
    /// places it as before. Its row then needs no upkeep. At 1,000 updates/s over 100,000
    /// cards almost every event and delta card is such a one (a stage report moves no
    /// running card under the default sort); re-placing them all cost a pass over every row.
    pub(super) fn stays_in_place(&self, i: usize, before: Option<&str>) -> bool {
        let (Some(snap), Some(held)) = (self.live.as_ref(), self.order.keys.get(i)) else {
            return false;
        };
        let Some(card) = snap.cards.get(i) else {
            return false;
        };
        !self.rows_stale
            && !held.dirty
            && before == Some(card.pipeline.card_id.as_str())
            && same_place(held, &self.context().key(card))
    }

    /// Whether the card in slot `i`, just patched in place, keeps its row and that row is
    /// off screen: nothing on screen changed with it. Conservative: any doubt (a stale key, a
    /// pending rebuild, a frozen screen, no frame drawn yet) answers `false`.
    pub(super) fn patched_off_screen(&self, i: usize) -> bool {
        if self.is_frozen() || self.page == 0 {
            return false;
        }
        let Some(snap) = self.live.as_ref() else {
            return false;
        };
        let id = snap.cards.get(i).map(|c| c.pipeline.card_id.as_str());
        self.stays_in_place(i, id)
            && self.order.sorts_outside(
                i,
                snap,
                &self.context(),
                (self.offset, self.offset.saturating_add(self.page)),
            )
    }

    /// Where the shown snapshot holds `card_id`.
    pub(super) fn shown_position(&self, card_id: &str) -> Option<usize> {
        match &self.frozen {
            Some(f) => f.index.get(card_id).copied(),
            None => self.cards.position(card_id),
        }
    }

    /// The overview's rows after filter and sort (brought up to date only when something
    /// changed, and then by what changed).
    pub fn rows(&mut self) -> &[Row] {
        if self.rows_stale {
            self.rebuild_rows();
        } else if !self.is_frozen() {
            self.update_rows();
        }
        &self.order.rows
    }

    /// Up to `n` rows from `offset`, as last computed by [`App::rows`].
    pub fn rows_slice(&self, offset: usize, n: usize) -> &[Row] {
        let rows = &self.order.rows;
        let end = offset.saturating_add(n).min(rows.len());
        &rows[offset.min(end)..end]
    }

    /// Keeps the ids of the rows on screen before the snapshot they index is replaced, so that
    /// a selection that vanishes with it can still go to its neighbour (only while the cursor
    /// is the user's: on the top row it stays there).
    pub(super) fn keep_order_before_replacing(&mut self) {
        if self.follow_top || self.selected_id.is_none() || self.order.before.is_some() {
            return;
        }
        let Some(snap) = self.shown() else {
            return;
        };
        let ids = self
            .order
            .rows
            .iter()
            .filter_map(|r| self.order.old_id(r, snap).map(str::to_owned))
            .collect();
        self.order.before = Some(ids);
    }

    /// Notes what the card table changed, for the next upkeep of the rows (nothing while
    /// frozen: the rows show the frozen copy, rebuilt when thawed).
    pub(super) fn note_table_changes(&mut self) {
        let touched = self.cards.take_touched();
        if self.is_frozen() {
            return;
        }
        for (i, before) in touched {
            if !self.stays_in_place(i, before.as_deref()) {
                self.order.changed(i, before);
            }
        }
    }

    /// Keys and sorts every card again.
    fn rebuild_rows(&mut self) {
        self.rows_stale = false;
        self.order.needle = self.filter.to_lowercase();
        self.order.keyed_at = self.now;
        self.order.elapsed_at = self.now;
        let before = self.order.before.take();
        let Some(snap) = self.shown() else {
            self.order.rows.clear();
            self.order.keys.clear();
            self.order.cards = 0;
            self.order.forget_changes();
            return;
        };
        let (keys, rows, cards) = full_order(snap, &self.context());
        let old_rows = std::mem::replace(&mut self.order.rows, rows);
        self.order.keys = keys;
        self.order.cards = cards;
        let followed = self.followed(&old_rows, before.as_deref());
        self.order.forget_changes();
        self.order.malformed_changed = false;
        self.settle_selection(followed);
    }

    /// Brings the rows up to date with the cards changed and the clock moved since the last
    /// look, re-placing only those cards.
    fn update_rows(&mut self) {
        let now = self.now;
        if now < self.order.keyed_at || now < self.order.elapsed_at {
            self.rebuild_rows();
            return;
        }
        let Some(snap) = self.live.as_ref() else {
            return;
        };
        let order = &mut self.order;
        if self.sort == SortKey::Attention && now != order.keyed_at {
            order.keyed_at = now;
            order.note_aged_failures(snap, self.reverse);
        }
        if self.sort == SortKey::Elapsed
            && (now - order.elapsed_at).num_milliseconds() >= ELAPSED_STEP_MS
        {
            order.elapsed_at = now;
            order.note_running(snap);
        }
        if order.changed.is_empty() && order.retimed.is_empty() && !order.malformed_changed {
            return;
        }
        let needle = std::mem::take(&mut self.order.needle);
        let ctx = self.context_with(&needle);
        let order = &self.order;
        let retimed = order
            .retimed
            .iter()
            .filter(|i| !order.changed.contains_key(i));
        let fresh: Vec<(usize, Key)> = order
            .changed
            .keys()
            .chain(retimed)
            .filter(|&&i| i < snap.cards.len())
            .map(|&i| (i, ctx.key(&snap.cards[i])))
            .collect();
        // A few cards that are still the cards their slots held (live events, a small delta
        // without arrivals or departures) move in place: a binary search and a shift each.
        let selection_stays = self.follow_top
            || self.selected_id.as_deref().is_none_or(|id| {
                let at = self.cards.position(id);
                fresh.iter().all(|(i, k)| Some(*i) != at || k.listed)
            });
        let in_place = selection_stays
            && fresh.len() <= IN_PLACE_MAX
            && self.order.changed.iter().all(|(i, before)| {
                before.as_deref() == snap.cards.get(*i).map(|c| c.pipeline.card_id.as_str())
            });
        if in_place {
            if !self.order.shift_in_place(snap, &ctx, &fresh) {
                self.order.needle = needle;
                self.rebuild_rows();
                return;
            }
            if self.order.malformed_changed {
                let tail: Vec<Row> = malformed_rows(snap, &ctx).collect();
                let order = &mut self.order;
                order.rows.truncate(order.cards);
                order.rows.extend(tail);
            }
            self.order.needle = needle;
            let followed = self.followed(&[], None);
            self.order.forget_changes();
            self.order.malformed_changed = false;
            self.settle_selection(followed);
            return;
        }
        let order = &self.order;
        // The unchanged cards keep their order; the changed ones are taken out, in the order
        // their rows had (so that many cards whose order among themselves held, like running
        // cards measured again, sort in about one pass), and put back where their keys say.
        let mut rest: Vec<Row> = Vec::with_capacity(order.cards);
        let mut had_rows: Vec<usize> = Vec::new();
        for r in &order.rows[..order.cards] {
            if let Row::Card(j) = r {
                if order.keys[*j].dirty {
                    had_rows.push(*j);
                } else {
                    rest.push(*r);
                }
            }
        }
        let new_key: HashMap<usize, Key> = fresh.iter().copied().collect();
        let had: std::collections::HashSet<usize> = had_rows.iter().copied().collect();
        let mut placed: Vec<(usize, Key)> = had_rows
            .iter()
            .filter_map(|j| new_key.get(j).map(|k| (*j, *k)))
            .chain(fresh.iter().copied().filter(|(j, _)| !had.contains(j)))
            .filter(|(_, k)| k.listed)
            .collect();
        placed.sort_by(|(i, a), (j, b)| ctx.cmp((a, &snap.cards[*i]), (b, &snap.cards[*j])));
        let mut rows = Vec::with_capacity(rest.len() + placed.len() + snap.malformed.len());
        let held = |r: &Row, (i, key): &(usize, Key)| match r {
            Row::Card(j) => {
                ctx.cmp((&order.keys[*j], &snap.cards[*j]), (key, &snap.cards[*i]))
                    == Ordering::Less
            }
            Row::Malformed(_) => false,
        };
        if placed.len() * LINEAR_MERGE_RATIO >= rest.len() {
            // Many: one pass over both.
            let mut kept = rest.iter().peekable();
            for p in &placed {
                while let Some(r) = kept.next_if(|r| held(r, p)) {
                    rows.push(*r);
                }
                rows.push(Row::Card(p.0));
            }
            rows.extend(kept);
        } else {
            let mut from = 0;
            for p in &placed {
                let at = from + rest[from..].partition_point(|r| held(r, p));
                rows.extend_from_slice(&rest[from..at]);
                rows.push(Row::Card(p.0));
                from = at;
            }
            rows.extend_from_slice(&rest[from..]);
        }
        let cards = rows.len();
        if order.malformed_changed {
            rows.extend(malformed_rows(snap, &ctx));
        } else {
            rows.extend_from_slice(&order.rows[order.cards..]);
        }
        let cards_len = snap.cards.len();
        let order = &mut self.order;
        order.needle = needle;
        for (i, key) in fresh {
            order.keys[i] = key;
        }
        order.keys.truncate(cards_len);
        let old_rows = std::mem::replace(&mut order.rows, rows);
        order.cards = cards;
        let followed = self.followed(&old_rows, None);
        self.order.forget_changes();
        self.order.malformed_changed = false;
        self.settle_selection(followed);
    }

    /// Where the selection goes in the new rows: its card's row, or else the row of its
    /// nearest neighbour in the old order (`old_rows`, read through the changes noted, or the
    /// ids kept in `before`) that is still listed, the next one first.
    fn followed(&self, old_rows: &[Row], before: Option<&[String]>) -> Option<usize> {
        if self.follow_top {
            return Some(0);
        }
        let id = self.selected_id.as_deref()?;
        let snap = self.shown()?;
        let ctx = self.context();
        let row_of = |id: &str| self.order.row_of(self.shown_position(id)?, snap, &ctx);
        if let Some(at) = row_of(id) {
            return Some(at);
        }
        // Gone: its neighbour in the old order (the next one, else the previous one) that is
        // still listed.
        match before {
            Some(ids) => {
                let at = ids.iter().position(|o| o == id)?;
                let after = ids[at + 1..].iter();
                after.chain(ids[..at].iter().rev()).find_map(|o| row_of(o))
            }
            None => {
                let old = |r: &Row| self.order.old_id(r, snap);
                let at = match old_rows.get(self.selected).and_then(old) {
                    Some(o) if o == id => self.selected,
                    _ => old_rows.iter().position(|r| old(r) == Some(id))?,
                };
                let after = old_rows[at + 1..].iter();
                after
                    .chain(old_rows[..at].iter().rev())
                    .filter_map(old)
                    .find_map(row_of)
            }
        }
    }

    fn settle_selection(&mut self, followed: Option<usize>) {
        if let Some(pos) = followed {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.order.rows.len().saturating_sub(1));
        // Rows moved under the cursor: scroll no further down than the selection needs, so
        // the top of the order (running cards, recent failures) stays in sight with it.
        self.settle_offset = true;
        self.remember_selection();
    }

    /// Notes which card the cursor is on, so that it can follow the card when rows move.
    pub(super) fn remember_selection(&mut self) {
        self.selected_id = match (self.order.rows.get(self.selected), self.shown()) {
            (Some(Row::Card(i)), Some(s)) => s.cards.get(*i).map(|c| c.pipeline.card_id.clone()),
            _ => None,
        };
    }

    /// The card under the cursor.
    pub fn selected_card(&mut self) -> Option<&Card> {
        // Bring the rows up to date first: that moves the selection to its card's new row.
        self.rows();
        let row = *self.order.rows.get(self.selected)?;
        match row {
            Row::Card(i) => self.shown()?.cards.get(i),
            Row::Malformed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PipelineDoc;

    fn card(id: &str, start: &str) -> Card {
        Card {
            pipeline: PipelineDoc {
                card_id: id.into(),
                status: PipelineStatus::Running,
                total_stages: 1,
                completed_stages: 0,
                current_stage: None,
                start_time: start.into(),
                end_time: None,
                metadata: Default::default(),
                duration_seconds: None,
            },
            stages: Vec::new(),
            cost_usd: None,
        }
    }

    fn snapshot(cards: Vec<Card>) -> Snapshot {
        Snapshot {
            taken_at: Utc::now(),
            source: crate::snapshot::SourceInfo {
                backend: "memory".into(),
                endpoint: "memory".into(),
            },
            connection: crate::connection::ConnState::Connecting,
            health: Default::default(),
            cards,
            metrics: Default::default(),
            limits: Vec::new(),
            history: Default::default(),
            malformed: Vec::new(),
        }
    }

    fn order(snap: &Snapshot, reverse: bool) -> Vec<&str> {
        visible_rows(
            snap,
            Filter::default(),
            SortKey::Started,
            reverse,
            Utc::now(),
        )
        .into_iter()
        .map(|r| match r {
            Row::Card(i) => snap.cards[i].pipeline.card_id.as_str(),
            Row::Malformed(_) => "malformed",
        })
        .collect()
    }

    #[test]
    fn started_sort_compares_times_not_text() {
        // As text "2026-01-02T03:04:05Z" sorts after "2026-01-02T03:04:05.5"; as times the
        // fractional one is later.
        let snap = snapshot(vec![
            card("a", "2026-01-02T03:04:05Z"),
            card("b", "2026-01-02T03:04:05.5"),
            card("c", "2026-01-02 03:04:06"),
        ]);
        assert_eq!(order(&snap, false), ["c", "b", "a"]);
        assert_eq!(order(&snap, true), ["a", "b", "c"]);
    }

    #[test]
    fn running_cards_sort_by_start_under_attention_whatever_their_stages_report() {
        // The older card reported a stage just now: running cards still go newest start
        // first (their last activity is only read for the other groups).
        let mut old = card("old", "2026-01-01T00:00:00");
        old.stages.push(crate::model::StageDoc {
            stage_name: "development".into(),
            status: crate::model::StageStatus::Running,
            progress_percent: Some(50),
            message: None,
            timestamp: "2026-01-03T00:00:00".into(),
            metadata: Default::default(),
        });
        let snap = snapshot(vec![old, card("new", "2026-01-02T00:00:00")]);
        let now = parse_timestamp("2026-01-03T00:00:01").unwrap().and_utc();
        let ids: Vec<&str> = visible_rows(&snap, Filter::default(), SortKey::Attention, false, now)
            .into_iter()
            .map(|r| match r {
                Row::Card(i) => snap.cards[i].pipeline.card_id.as_str(),
                Row::Malformed(_) => "malformed",
            })
            .collect();
        assert_eq!(ids, ["new", "old"]);
    }

    #[test]
    fn unparsable_start_times_come_last_by_id_either_way() {
        let snap = snapshot(vec![
            card("z-bad", "yesterday"),
            card("old", "2026-01-01T00:00:00"),
            card("a-bad", ""),
            card("new", "2026-01-02T00:00:00"),
        ]);
        assert_eq!(order(&snap, false), ["new", "old", "a-bad", "z-bad"]);
        assert_eq!(order(&snap, true), ["old", "new", "z-bad", "a-bad"]);
    }
}
