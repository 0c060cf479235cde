//! The one picture of the whole system that both faces render: the TUI draws it, `--once`
//! prints it as text or JSON (schema in `schema/snapshot.schema.json`).
//!
//! It is plain owned data, read in a bounded number of round trips by [`read_snapshot`], so a
//! background task can build it and hand it to the UI in one message.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::connection::ConnState;
use crate::model::{Malformed, PipelineDoc, StageDoc};

/// Reads everything the dashboard shows: the cards (with their stages) and the metrics, read
/// concurrently, each in a fixed number of pipelined round trips whatever the number of cards.
///
/// When Redis is unreachable this is an error (the caller shows the outage), never an empty
/// snapshot that would look like real data. Documents that do not parse are listed in
/// [`Snapshot::malformed`] instead. Rate-limit headroom stays empty until the limiter
/// registers its limits.
pub async fn read_snapshot(
    storage: &dyn crate::storage::Storage,
    now: DateTime<Utc>,
) -> crate::Result<Snapshot> {
    let m = &storage.settings().metrics;
    let recent = usize::try_from(m.snapshot_recent).unwrap_or(usize::MAX);
    let (cards, metrics, limits) = futures::try_join!(
        storage.read_cards(now),
        storage.read_metrics(m.snapshot_days, recent),
        storage.read_limits()
    )?;
    let mut malformed = cards.malformed;
    malformed.extend(metrics.malformed);
    malformed.extend(limits.malformed);
    let mut cards = cards.cards;
    attribute_costs(&mut cards, &metrics.metrics.recent);
    let connection = storage.connection().borrow().clone();
    Ok(Snapshot {
        taken_at: now,
        source: SourceInfo {
            backend: storage.backend().to_owned(),
            endpoint: storage.endpoint(),
        },
        connection,
        cards,
        metrics: metrics.metrics,
        limits: limits.limits,
        malformed,
    })
}

/// A finished card whose writer recorded no cost in its metadata takes the cost its pipeline
/// completion recorded in the metrics (the recent completions read with the snapshot), so the
/// card table shows what a finished pipeline cost whoever wrote it.
fn attribute_costs(cards: &mut [CardSnapshot], recent: &[RecentPipeline]) {
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
    /// Live cards, newest start first.
    pub cards: Vec<CardSnapshot>,
    pub metrics: MetricsSnapshot,
    /// Rate-limit headroom per limiter key (empty when no limiter has registered its limits).
    pub limits: Vec<LimitSnapshot>,
    /// Documents and members that could not be parsed, shown as such.
    pub malformed: Vec<Malformed>,
}

/// Where a snapshot was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `redis`, `cluster` or `memory`.
    pub backend: String,
    /// Endpoint without credentials, e.g. `redis://127.0.0.1:6379/0`.
    pub endpoint: String,
}

/// One card: its pipeline document and its stages in stage order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardSnapshot {
    #[serde(flatten)]
    pub pipeline: PipelineDoc,
    pub stages: Vec<StageDoc>,
    /// LLM spend attributed to the card, when the writer recorded it.
    pub cost_usd: Option<f64>,
}

impl CardSnapshot {
    /// The title from the metadata, if it is a string.
    pub fn title(&self) -> Option<&str> {
        self.pipeline.metadata.get("title").and_then(|v| v.as_str())
    }
}

/// Aggregates of the metrics keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub pipelines: PipelineTotals,
    pub llm: LlmTotals,
    /// Per provider, highest cost first.
    pub providers: Vec<Breakdown>,
    /// Per model, highest cost first.
    pub models: Vec<Breakdown>,
    /// One entry per local day, oldest first, days without data included as zeros.
    pub daily: Vec<DailyFigures>,
    /// Most recently completed pipelines, newest first.
    pub recent: Vec<RecentPipeline>,
    pub code_review: CodeReviewTotals,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineTotals {
    pub completed: i64,
    pub total_cost: f64,
    pub total_duration: f64,
    pub avg_duration: Option<f64>,
    pub avg_cost: Option<f64>,
    /// `status:<status>` counters.
    pub by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmTotals {
    pub total_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_hits: i64,
    pub cache_misses: i64,
    pub total_cost: f64,
    /// `cache_hits / (cache_hits + cache_misses)`, `None` before the first lookup.
    pub hit_rate: Option<f64>,
    /// Extension: money not spent thanks to cache hits.
    pub saved_cost: f64,
    /// Extension: summed request latency, for an average.
    pub latency_ms_total: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    pub name: String,
    pub requests: i64,
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyFigures {
    pub date: NaiveDate,
    pub completions: i64,
    pub cost: f64,
    pub duration: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentPipeline {
    pub card_id: String,
    pub duration_seconds: f64,
    pub status: String,
    pub cost: f64,
    pub timestamp: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeReviewTotals {
    pub developers: Vec<DeveloperReviews>,
    pub by_status: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeveloperReviews {
    pub developer: String,
    pub total_reviews: i64,
    pub total_score: i64,
    pub critical_issues: i64,
    pub high_issues: i64,
}

/// Headroom of one limiter key in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitSnapshot {
    pub key: String,
    pub resource: String,
    pub identifier: String,
    pub window_seconds: f64,
    pub requests_used: u64,
    pub requests_limit: u64,
    pub tokens_used: Option<u64>,
    pub tokens_limit: Option<u64>,
}
