//! The live-event log: events seen on the subscription, kept per card for the drilldown (its
//! only source when the writer keeps no history stream), with the caps that keep memory
//! bounded under any event storm, and the per-second counts behind the events-per-second
//! figure.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

use chrono::{DateTime, Utc};

use super::charts::Ring;
use crate::model::PipelineEvent;

/// Events kept per card for the drilldown when the writer keeps no history stream.
pub const EVENTS_PER_CARD: usize = 200;
/// Cards whose live events are tracked at once; beyond it new cards' events are counted only.
pub const TRACKED_CARDS: usize = 20_000;
/// Live events kept over all cards (oldest dropped first), so that memory stays bounded under
/// a long event storm over many cards (200 per card × 10,000 cards would be gigabytes).
pub const LIVE_EVENTS_TOTAL: usize = 20_000;
/// Seconds over which the events-per-second figure is averaged.
pub const RATE_WINDOW_SECS: i64 = 5;

/// An event as the dashboard saw it arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenEvent {
    /// When it arrived (the dashboard's clock).
    pub received: DateTime<Utc>,
    /// The event as published.
    pub event: PipelineEvent,
}

/// Events seen live, per card, within [`EVENTS_PER_CARD`], [`TRACKED_CARDS`] and
/// [`LIVE_EVENTS_TOTAL`].
#[derive(Debug)]
pub struct LiveEvents {
    by_card: HashMap<String, VecDeque<SeenEvent>>,
    /// Card ids in the order their events arrived, one entry per kept event: the front names
    /// the card holding the oldest event.
    order: VecDeque<String>,
    /// Per-second event counts (epoch second, count), for the rate.
    buckets: Ring<(i64, u32)>,
}

impl Default for LiveEvents {
    fn default() -> Self {
        Self {
            by_card: HashMap::new(),
            order: VecDeque::new(),
            buckets: Ring::new(60),
        }
    }
}

impl LiveEvents {
    /// Counts one event and keeps it. `listed`: its card is on screen, so it is always
    /// tracked; a storm of unknown ids only fills the room left under [`TRACKED_CARDS`].
    pub(super) fn record(&mut self, event: PipelineEvent, now: DateTime<Utc>, listed: bool) {
        let sec = now.timestamp();
        match self.buckets.last_mut() {
            Some((s, n)) if *s == sec => *n = n.saturating_add(1),
            _ => self.buckets.push((sec, 1)),
        }
        let id = event.card_id();
        let known = listed || self.by_card.contains_key(id);
        if !known && self.by_card.len() >= TRACKED_CARDS {
            return;
        }
        let seen = self.by_card.entry(id.to_owned()).or_default();
        if seen.len() == EVENTS_PER_CARD {
            seen.pop_front();
        }
        self.order.push_back(id.to_owned());
        seen.push_back(SeenEvent {
            received: now,
            event,
        });
        // Over the total budget: drop the globally oldest events. (An entry can name a card
        // whose event the per-card cap already dropped; it then drops that card's oldest,
        // which keeps the bound.)
        while self.order.len() > LIVE_EVENTS_TOTAL {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(q) = self.by_card.get_mut(&old) {
                q.pop_front();
                if q.is_empty() {
                    self.by_card.remove(&old);
                }
            }
        }
    }

    /// Keeps only the events of cards for which `keep` holds (cards that left Redis take
    /// their events with them).
    pub(super) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_card.retain(|id, _| keep(id));
        let kept = &self.by_card;
        self.order.retain(|id| kept.contains_key(id));
    }

    /// Live events per second over the last [`RATE_WINDOW_SECS`] whole seconds before `now`.
    pub fn per_sec(&self, now: DateTime<Utc>) -> f64 {
        let now = now.timestamp();
        let sum: u32 = self
            .buckets
            .iter()
            .filter(|(s, _)| *s < now && *s >= now - RATE_WINDOW_SECS)
            .map(|(_, n)| *n)
            .sum();
        f64::from(sum) / RATE_WINDOW_SECS as f64
    }

    /// Cards with kept events.
    pub fn len(&self) -> usize {
        self.by_card.len()
    }

    /// Whether no event is kept.
    pub fn is_empty(&self) -> bool {
        self.by_card.is_empty()
    }

    /// Whether `card_id` has kept events.
    pub fn contains_key<Q>(&self, card_id: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_card.contains_key(card_id)
    }

    /// The kept events of `card_id`, oldest first.
    pub fn get<Q>(&self, card_id: &Q) -> Option<&VecDeque<SeenEvent>>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.by_card.get(card_id)
    }

    /// Every card's kept events.
    pub fn values(&self) -> impl Iterator<Item = &VecDeque<SeenEvent>> {
        self.by_card.values()
    }
}

impl<Q> std::ops::Index<&Q> for LiveEvents
where
    String: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = VecDeque<SeenEvent>;

    /// The kept events of a card; panics when it has none, like a map's index (tests only).
    fn index(&self, card_id: &Q) -> &Self::Output {
        &self.by_card[card_id]
    }
}
