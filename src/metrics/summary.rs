//! The metrics' read model: the aggregates every face shows (totals, per provider and model,
//! per day, recent completions, code reviews), built by both backends from the same keys.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Aggregates of the metrics keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
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
