//! The card table between reads: the live snapshot's cards, changed in place by incremental
//! reads and patched by live events with the tracker's own rule ([`Card::apply_event`]), plus
//! the cards that only a start event has shown so far, kept for a grace period and within a
//! cap.
//!
//! Every change costs what it touches, not the table's size: the table keeps each card's
//! position (id → index into the live snapshot's cards), a removed card's slot takes the last
//! card (swap-remove, one index fixed up), and the cards per status are counted as they
//! change, so the header never walks the table. Only a full read re-indexes everything.
//!
//! **Never older than shown.** A read is taken before it arrives; a live event applied in
//! between may already show a later state of a card than the read holds. So a card that
//! events patched since the last read keeps its patched version when the read's copy is
//! older by the tracker's rule ([`Card::newer_than`]); the next read, taken after that write,
//! brings it. Only cards patched since the last read are compared: reads come from one poller
//! in order, so nothing else on screen can be newer than a read.
//!
//! Each slot whose card changed is logged ([`CardTable::take_touched`]) with the id it held
//! before, so the rows can re-place exactly those cards (`rows.rs`).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::model::{PipelineEvent, PipelineStatus};
use crate::snapshot::Snapshot;
use crate::tracker::Card;

/// Cards that live events may add before a snapshot lists them (a storm of unknown ids cannot
/// grow the table without bound).
pub const CARDS_FROM_EVENTS: usize = 5_000;
/// How long a card known only from its start event stays without appearing in a snapshot.
pub const EVENT_CARD_GRACE_SECS: i64 = 60;

/// What a live event did to the card table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TableChange {
    /// Nothing (another card's event the table does not hold, or one it already reflects).
    None,
    /// A start event added a card no snapshot listed yet.
    Added,
    /// The listed card in `slot` changed; `same_status`: its status is what it was (the
    /// header's counts did not move).
    Patched { slot: usize, same_status: bool },
}

/// The cards per status, in the header strip's order.
pub type StatusCounts = [(PipelineStatus, usize); 5];

fn no_counts() -> StatusCounts {
    [
        (PipelineStatus::Queued, 0),
        (PipelineStatus::Running, 0),
        (PipelineStatus::Completed, 0),
        (PipelineStatus::Failed, 0),
        (PipelineStatus::Cancelled, 0),
    ]
}

fn count(counts: &mut StatusCounts, status: PipelineStatus, add: bool) {
    if let Some((_, n)) = counts.iter_mut().find(|(s, _)| *s == status) {
        *n = if add { *n + 1 } else { n.saturating_sub(1) };
    }
}

/// A slot of the live cards whose card changed, with the id it held before (`None`: the slot
/// is new).
pub(super) type Touched = (usize, Option<String>);

/// Where each card of the live snapshot is, which ones came from events, and what changed.
#[derive(Debug)]
pub(super) struct CardTable {
    index: HashMap<String, usize>,
    /// Cards added by a start event and not yet seen in a snapshot, with when they came.
    /// A reader may find a new card only later (the tracker finds Python-written cards by a
    /// SCAN it repeats every `tracker.scan_interval_seconds`); such a card stays on screen
    /// for [`EVENT_CARD_GRACE_SECS`] instead of vanishing at the next poll.
    from_events: HashMap<String, DateTime<Utc>>,
    /// Cards live events changed since the last read: the only ones a read can be older than.
    patched: HashSet<String>,
    counts: StatusCounts,
    touched: Vec<Touched>,
}

impl Default for CardTable {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            from_events: HashMap::new(),
            patched: HashSet::new(),
            counts: no_counts(),
            touched: Vec::new(),
        }
    }
}

/// The cards of `cards` per status.
pub(super) fn status_counts(cards: &[Card]) -> StatusCounts {
    let mut counts = no_counts();
    for c in cards {
        count(&mut counts, c.pipeline.status, true);
    }
    counts
}

impl CardTable {
    /// Whether the live snapshot holds `card_id`.
    pub(super) fn contains(&self, card_id: &str) -> bool {
        self.index.contains_key(card_id)
    }

    /// Where `card_id` is among the live snapshot's cards.
    pub(super) fn position(&self, card_id: &str) -> Option<usize> {
        self.index.get(card_id).copied()
    }

    /// The id → position map (copied by a freeze, for the frozen screen's lookups).
    pub(super) fn index(&self) -> &HashMap<String, usize> {
        &self.index
    }

    /// The live cards per status.
    pub(super) fn counts(&self) -> StatusCounts {
        self.counts
    }

    /// The slots changed since the last call, each with the id it held before its first
    /// change (a slot may appear more than once; the first entry counts).
    pub(super) fn take_touched(&mut self) -> Vec<Touched> {
        std::mem::take(&mut self.touched)
    }

    fn touch(&mut self, snap: &Snapshot, i: usize) {
        let before = snap.cards.get(i).map(|c| c.pipeline.card_id.clone());
        self.touched.push((i, before));
    }

    /// Takes a new snapshot (a full read): cards only events have shown, still within their
    /// grace period, are carried over from the `old` one, and cards events patched since the
    /// last read keep their patched version where the read's is older.
    /// Returns the index it replaced, for the caller to drop where it costs nothing.
    pub(super) fn take_snapshot(
        &mut self,
        snap: &mut Snapshot,
        old: Option<&Snapshot>,
        now: DateTime<Utc>,
    ) -> HashMap<String, usize> {
        let mut index: HashMap<String, usize> = HashMap::with_capacity(snap.cards.len());
        for (i, c) in snap.cards.iter().enumerate() {
            index.insert(c.pipeline.card_id.clone(), i);
        }
        let held = |id: &str| {
            let i = *self.index.get(id)?;
            old?.cards.get(i)
        };
        for id in &self.patched {
            if let (Some(&i), Some(shown)) = (index.get(id), held(id))
                && let Some(read) = snap.cards.get_mut(i)
                && shown.newer_than(read)
            {
                *read = shown.clone();
            }
        }
        let mut carried = Vec::new();
        self.from_events.retain(|id, since| {
            let wait =
                !index.contains_key(id) && (now - *since).num_seconds() < EVENT_CARD_GRACE_SECS;
            match held(id).filter(|_| wait) {
                Some(c) => {
                    carried.push(c.clone());
                    true
                }
                None => false,
            }
        });
        for c in carried {
            index.insert(c.pipeline.card_id.clone(), snap.cards.len());
            snap.cards.push(c);
        }
        let old_index = std::mem::replace(&mut self.index, index);
        self.counts = status_counts(&snap.cards);
        self.patched.clear();
        self.touched.clear();
        old_index
    }

    /// Applies the cards of an incremental read to `snap`, in place: the `removed` ones leave,
    /// each `changed` one replaces the card of its id (unless events showed a newer version)
    /// or is added; cards only events have shown leave once their grace period is over
    /// without a read listing them. Returns the ids that left.
    pub(super) fn apply_delta(
        &mut self,
        snap: &mut Snapshot,
        changed: Vec<Card>,
        removed: Vec<String>,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        // A card both gone and written since is a card recreated: it is replaced, as any
        // changed card, by the rule for versions. Of a card listed twice, the last one counts.
        let mut seen = HashSet::new();
        let mut keep: Vec<bool> = changed
            .iter()
            .rev()
            .map(|c| seen.insert(c.pipeline.card_id.as_str()))
            .collect();
        keep.reverse();
        let removed: Vec<String> = removed
            .into_iter()
            .filter(|id| !seen.contains(id.as_str()))
            .collect();
        let changed: Vec<Card> = changed
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect();
        let mut gone = Vec::new();
        for id in removed {
            if self.remove(snap, &id) {
                gone.push(id);
            }
        }
        for card in changed {
            let id = card.pipeline.card_id.clone();
            self.from_events.remove(&id);
            match self.position(&id) {
                Some(i) if i < snap.cards.len() => {
                    if self.patched.contains(&id) && snap.cards[i].newer_than(&card) {
                        continue;
                    }
                    self.touch(snap, i);
                    count(&mut self.counts, snap.cards[i].pipeline.status, false);
                    count(&mut self.counts, card.pipeline.status, true);
                    snap.cards[i] = card;
                }
                _ => self.push(snap, card),
            }
        }
        let expired: Vec<String> = self
            .from_events
            .iter()
            .filter(|(_, since)| (now - **since).num_seconds() >= EVENT_CARD_GRACE_SECS)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if self.remove(snap, &id) {
                gone.push(id);
            }
        }
        self.patched.clear();
        gone
    }

    fn push(&mut self, snap: &mut Snapshot, card: Card) {
        let i = snap.cards.len();
        self.touched.push((i, None));
        count(&mut self.counts, card.pipeline.status, true);
        self.index.insert(card.pipeline.card_id.clone(), i);
        snap.cards.push(card);
    }

    /// Removes `card_id` from `snap`: the last card takes its slot. Returns whether it was
    /// there.
    fn remove(&mut self, snap: &mut Snapshot, card_id: &str) -> bool {
        self.from_events.remove(card_id);
        self.patched.remove(card_id);
        let Some(i) = self.index.remove(card_id) else {
            return false;
        };
        if i >= snap.cards.len() {
            return false;
        }
        let last = snap.cards.len() - 1;
        self.touch(snap, i);
        if last != i {
            self.touch(snap, last);
        }
        let card = snap.cards.swap_remove(i);
        count(&mut self.counts, card.pipeline.status, false);
        if let Some(moved) = snap.cards.get(i)
            && let Some(at) = self.index.get_mut(&moved.pipeline.card_id)
        {
            *at = i;
        }
        true
    }

    /// Applies a live event to the card it names in `snap`, or adds the card its start event
    /// creates (within [`CARDS_FROM_EVENTS`]). Other events of unlisted cards wait for the
    /// next snapshot, which brings the card with its documents.
    pub(super) fn apply_event(
        &mut self,
        snap: &mut Snapshot,
        event: &PipelineEvent,
        now: DateTime<Utc>,
    ) -> TableChange {
        let id = event.card_id();
        if let Some(i) = self.position(id) {
            let Some(card) = snap.cards.get_mut(i) else {
                return TableChange::None;
            };
            let before = card.pipeline.status;
            if !card.apply_event(event) {
                return TableChange::None;
            }
            let after = card.pipeline.status;
            // An event never changes a card's id: the slot held this one before.
            self.touched.push((i, Some(id.to_owned())));
            count(&mut self.counts, before, false);
            count(&mut self.counts, after, true);
            self.patched.insert(id.to_owned());
            return TableChange::Patched {
                slot: i,
                same_status: before == after,
            };
        }
        if self.from_events.len() >= CARDS_FROM_EVENTS {
            return TableChange::None;
        }
        let Some(card) = Card::from_event(event) else {
            return TableChange::None;
        };
        self.from_events.insert(id.to_owned(), now);
        self.patched.insert(id.to_owned());
        self.push(snap, card);
        TableChange::Added
    }
}
