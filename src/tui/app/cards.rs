//! The card table between reads: the latest snapshot's cards, patched by live events with the
//! tracker's own rule ([`Card::apply_event`]), plus the cards that only a start event
//! has shown so far, kept for a grace period and within a cap.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::model::PipelineEvent;
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
    /// A listed card changed.
    Patched,
}

/// Where each card of the live snapshot is, and which ones came from events.
#[derive(Debug, Default)]
pub(super) struct CardTable {
    index: HashMap<String, usize>,
    /// Cards added by a start event and not yet seen in a snapshot, with when they came.
    /// A reader may find a new card only later (the tracker finds Python-written cards by a
    /// SCAN it repeats every `tracker.scan_interval_seconds`); such a card stays on screen
    /// for [`EVENT_CARD_GRACE_SECS`] instead of vanishing at the next poll.
    from_events: HashMap<String, DateTime<Utc>>,
}

impl CardTable {
    /// Whether the live snapshot holds `card_id`.
    pub(super) fn contains(&self, card_id: &str) -> bool {
        self.index.contains_key(card_id)
    }

    /// Takes a new snapshot: cards only events have shown, still within their grace period,
    /// are carried over from the `old` one.
    pub(super) fn take_snapshot(
        &mut self,
        snap: &mut Snapshot,
        old: Option<&Snapshot>,
        now: DateTime<Utc>,
    ) {
        if !self.from_events.is_empty() {
            let listed: HashSet<&str> = snap
                .cards
                .iter()
                .map(|c| c.pipeline.card_id.as_str())
                .collect();
            let mut keep = Vec::new();
            self.from_events.retain(|id, since| {
                let wait = !listed.contains(id.as_str())
                    && (now - *since).num_seconds() < EVENT_CARD_GRACE_SECS;
                if wait {
                    keep.push(id.clone());
                }
                wait
            });
            if let Some(old) = old {
                snap.cards.extend(
                    old.cards
                        .iter()
                        .filter(|c| keep.contains(&c.pipeline.card_id))
                        .cloned(),
                );
            }
        }
        self.index = snap
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| (c.pipeline.card_id.clone(), i))
            .collect();
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
        if let Some(&i) = self.index.get(id) {
            let changed = snap.cards.get_mut(i).is_some_and(|c| c.apply_event(event));
            return if changed {
                TableChange::Patched
            } else {
                TableChange::None
            };
        }
        if self.from_events.len() >= CARDS_FROM_EVENTS {
            return TableChange::None;
        }
        let Some(card) = Card::from_event(event) else {
            return TableChange::None;
        };
        self.from_events.insert(id.to_owned(), now);
        self.index.insert(id.to_owned(), snap.cards.len());
        snap.cards.push(card);
        TableChange::Added
    }
}
