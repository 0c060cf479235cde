//! The tracker's read model: a card as every face shows it (its pipeline document, its stages
//! in stage order, what it cost), and the rules that build it from stored documents. The rule
//! that patches it from a live event lives beside it, so a patched card and a card read back
//! after the same writes agree.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ParsedDoc;
use crate::model::{Malformed, PipelineDoc, PipelineStatus, StageDoc, StageStatus};

/// One card: its pipeline document and its stages in stage order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    /// The pipeline document as stored (Python's fields).
    #[serde(flatten)]
    pub pipeline: PipelineDoc,
    /// Its stage documents: first-reported order, then stages only Python wrote.
    pub stages: Vec<StageDoc>,
    /// LLM spend attributed to the card, when the writer recorded it.
    pub cost_usd: Option<f64>,
}

impl Card {
    /// The title from the metadata, if it is a string.
    pub fn title(&self) -> Option<&str> {
        self.pipeline.metadata.get("title").and_then(|v| v.as_str())
    }

    /// Percent (0–100) of the current stage while it runs and reports one.
    pub fn running_percent(&self) -> Option<i64> {
        let current = self.pipeline.current_stage.as_deref()?;
        self.stages
            .iter()
            .find(|s| s.stage_name == current && s.status == StageStatus::Running)
            .and_then(|s| s.progress_percent)
            .map(|p| p.clamp(0, 100))
    }

    /// Share of the pipeline done (0.0–1.0): completed stages plus the running stage's
    /// percent, over the total; a card without stages counts as done once completed.
    pub fn progress(&self) -> f64 {
        let total = self.pipeline.total_stages.max(0) as f64;
        if total == 0.0 {
            return if self.pipeline.status == PipelineStatus::Completed {
                1.0
            } else {
                0.0
            };
        }
        let done = self
            .pipeline
            .completed_stages
            .clamp(0, self.pipeline.total_stages) as f64;
        let running = self.running_percent().unwrap_or(0) as f64 / 100.0;
        ((done + running) / total).clamp(0.0, 1.0)
    }
}

/// Cards read together, and whatever could not be parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardsRead {
    /// Newest start first.
    pub cards: Vec<Card>,
    /// Keys (documents, stages) that could not be parsed, with the reason; the cards around
    /// them are still read.
    pub malformed: Vec<Malformed>,
}

/// Builds a card from its document and fetched stage documents: recorded order first, the rest
/// (Python-written stages) by last update time, then name.
pub(crate) fn assemble_card(parsed: ParsedDoc, mut stages: HashMap<String, StageDoc>) -> Card {
    let mut ordered = Vec::with_capacity(stages.len());
    for name in parsed.stage_order.iter().flatten() {
        if let Some(s) = stages.remove(name) {
            ordered.push(s);
        }
    }
    let mut rest: Vec<StageDoc> = stages.into_values().collect();
    rest.sort_by_cached_key(|s| {
        (
            crate::model::parse_timestamp(&s.timestamp),
            s.stage_name.clone(),
        )
    });
    ordered.extend(rest);
    let stage_cost = ordered
        .iter()
        .filter_map(|s| {
            s.metadata
                .get(crate::model::STAGE_COST_FIELD)
                .and_then(Value::as_f64)
        })
        .filter(|c| c.is_finite())
        .fold(None, |sum: Option<f64>, c| Some(sum.unwrap_or(0.0) + c));
    let cost_usd = ["cost_usd", "cost"]
        .iter()
        .find_map(|k| parsed.doc.metadata.get(k).and_then(Value::as_f64))
        .or(stage_cost);
    Card {
        pipeline: parsed.doc,
        stages: ordered,
        cost_usd,
    }
}

/// Newest start first; unparsable start times last, then by card id.
pub(crate) fn sort_cards(cards: &mut [Card]) {
    cards.sort_by_cached_key(|c| {
        (
            std::cmp::Reverse(crate::model::parse_timestamp(&c.pipeline.start_time)),
            c.pipeline.card_id.clone(),
        )
    });
}
