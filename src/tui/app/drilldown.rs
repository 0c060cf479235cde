//! The drilldown of one card: which card is open, the card it shows (kept when the card
//! expires from Redis while open), and its event list merged from the stored history and the
//! events seen live.

use crate::model::PipelineEvent;
use crate::tracker::Card;

use super::{App, View};

/// A card's stored history as the source task delivered it.
pub type HistoryResult = Result<Option<Vec<PipelineEvent>>, String>;

/// The drilldown of one card.
#[derive(Debug, Clone, PartialEq)]
pub struct CardView {
    /// The open card.
    pub card_id: String,
    /// First event row shown.
    pub scroll: usize,
    /// The card as last seen, kept when it expires from Redis while open.
    pub last_seen: Option<Card>,
}

impl App {
    /// The card the drilldown shows: the displayed copy, else the last one seen. The flag
    /// says whether the displayed data still lists it.
    pub fn open_card(&self) -> Option<(&Card, bool)> {
        let View::Card(v) = &self.view else {
            return None;
        };
        if let Some(c) = self.shown_card(&v.card_id) {
            return Some((c, true));
        }
        v.last_seen.as_ref().map(|c| (c, false))
    }

    /// The drilldown's event list, newest first: the stored history when there is one, plus
    /// anything seen live that it does not contain yet. The flag says whether a stored history
    /// was used.
    pub fn open_card_events(&self) -> (Vec<PipelineEvent>, bool) {
        let View::Card(v) = &self.view else {
            return (Vec::new(), false);
        };
        let mut out: Vec<PipelineEvent> = Vec::new();
        let mut stored = false;
        if let Some((id, Ok(Some(h)))) = &self.card_history
            && id == &v.card_id
        {
            out.extend(h.iter().cloned());
            stored = true;
        }
        if let Some(seen) = self.live_events.get(v.card_id.as_str()) {
            for s in seen {
                if !out.contains(&s.event) {
                    out.push(s.event.clone());
                }
            }
        }
        // Oldest first by timestamp (stable: equal stamps keep arrival order), then reversed.
        out.sort_by(|a, b| {
            crate::format::utc(a.timestamp()).cmp(&crate::format::utc(b.timestamp()))
        });
        out.reverse();
        (out, stored)
    }
}
