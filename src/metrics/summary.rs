//! The metrics' read model: the aggregates every face shows (totals, per provider and model,
//! per day, recent completions, code reviews), built by both backends from the same keys.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Aggregates of the metrics keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The `total` hash and the `status:<status>` counters.
    pub pipelines: PipelineTotals,
    /// The `llm` hash.
    pub llm: LlmTotals,
    /// Per provider, highest cost first.
    pub providers: Vec<Breakdown>,
    /// Per model, highest cost first.
    pub models: Vec<Breakdown>,
    /// One entry per local day, oldest first, days without data included as zeros.
    pub daily: Vec<DailyFigures>,
    /// Most recently completed pipelines, newest first.
    pub recent: Vec<RecentPipeline>,
    /// The `code_review:*` hashes and counters.
    pub code_review: CodeReviewTotals,
}

/// All-time pipeline figures, from `total` and `status:<status>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PipelineTotals {
    /// `pipelines_completed`: finished pipelines of any status.
    pub completed: i64,
    /// `total_cost`: summed pipeline spend, USD.
    pub total_cost: f64,
    /// `total_duration`: summed pipeline wall time, seconds.
    pub total_duration: f64,
    /// `total_duration / completed`, seconds; `None` before the first completion.
    pub avg_duration: Option<f64>,
    /// `total_cost / completed`, USD; `None` before the first completion.
    pub avg_cost: Option<f64>,
    /// `status:<status>` counters.
    pub by_status: BTreeMap<String, i64>,
}

/// All-time LLM request figures, from the `llm` hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmTotals {
    /// `total_requests`: every request, hit or miss.
    pub total_requests: i64,
    /// `prompt_tokens`: summed input tokens.
    pub prompt_tokens: i64,
    /// `completion_tokens`: summed output tokens.
    pub completion_tokens: i64,
    /// `cache_hits`: requests answered from the cache.
    pub cache_hits: i64,
    /// `cache_misses`: requests sent upstream.
    pub cache_misses: i64,
    /// `total_cost`: summed LLM spend, USD (a hit costs nothing).
    pub total_cost: f64,
    /// `cache_hits / (cache_hits + cache_misses)`, `None` before the first lookup.
    pub hit_rate: Option<f64>,
    /// Extension: money not spent thanks to cache hits.
    pub saved_cost: f64,
    /// Extension: summed request latency, for an average.
    pub latency_ms_total: f64,
}

/// Requests and spend of one provider (`llm:<provider>`) or model (`llm:model:<model>`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The provider or model name, the last key segment.
    pub name: String,
    /// `requests`: how many requests went to it.
    pub requests: i64,
    /// `cost`: what they cost, USD.
    pub cost: f64,
}

/// One local day's figures, from `daily:<YYYY-MM-DD>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyFigures {
    /// The local date of the `daily:<date>` key.
    pub date: NaiveDate,
    /// `completions`: pipelines finished that day.
    pub completions: i64,
    /// `cost`: their summed spend, USD.
    pub cost: f64,
    /// `duration`: their summed wall time, seconds.
    pub duration: f64,
}

/// One time-series member of `timeseries:pipelines`, as the original writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentPipeline {
    /// `card_id` of the finished pipeline.
    pub card_id: String,
    /// `duration_seconds`: its wall time; 0 when the member has none.
    pub duration_seconds: f64,
    /// `status`, lowercased; empty when the member has none.
    pub status: String,
    /// `cost`: its spend, USD; 0 when the member has none.
    pub cost: f64,
    /// `timestamp`: naive local ISO-8601 completion time; empty when the member has none.
    pub timestamp: String,
}

/// Code review figures, from `code_review:<developer>` and `code_review:status:<status>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeReviewTotals {
    /// One entry per developer, by name.
    pub developers: Vec<DeveloperReviews>,
    /// `code_review:status:<status>` counters, by lowercased status.
    pub by_status: BTreeMap<String, i64>,
}

/// One developer's review totals, from `code_review:<developer>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeveloperReviews {
    /// The developer, the last key segment.
    pub developer: String,
    /// `total_reviews`: reviews recorded.
    pub total_reviews: i64,
    /// `total_score`: summed scores (divide by `total_reviews` for the average).
    pub total_score: i64,
    /// `critical_issues`: summed critical findings.
    pub critical_issues: i64,
    /// `high_issues`: summed high-severity findings.
    pub high_issues: i64,
}
