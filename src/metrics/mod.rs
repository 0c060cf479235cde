//! Metrics: what pipelines, LLM calls and code reviews cost, in the Python original's keys.
//!
//! Writers add to counters with HINCRBY / HINCRBYFLOAT / INCR only (Python parses integer
//! fields with `int()`), in one pipelined round trip per `track_*` call. Readers turn the keys
//! into a [`Summary`] in a fixed number of round trips, reporting unparsable values
//! instead of guessing.
//!
//! Extensions (ignored by Python readers): `saved_cost` and `latency_ms_total` fields in the
//! `llm` hash, name indexes (`<prefix>::index:<kind>` sets) so readers need no SCAN for names
//! this project wrote (always unioned with a periodic, cached SCAN for the names only the
//! original wrote), and optional age-trimming of the pipeline time series
//! (`metrics.timeseries_retention_days`, off by default: the original keeps every entry).

mod closed;
mod handle;
pub mod history;
mod memory;
pub(crate) mod redis;
mod summary;
pub(crate) mod writes;

use chrono::{DateTime, Local, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use handle::Metrics;
pub use history::{
    Bucket, HistoryRead, HistoryWindow, LimitActivityRecord, LimitFigures, LlmFigures, Resolution,
    Series,
};
pub use memory::MemoryMetrics;
pub use redis::RedisMetrics;
pub use summary::{
    Breakdown, CodeReviewTotals, DailyFigures, DeveloperReviews, LlmTotals, PipelineTotals,
    RecentPipeline, Summary,
};

use crate::model::Malformed;

/// A finished pipeline, for `timeseries:pipelines`, `total`, `daily:<date>` and `status:<s>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineCompletionRecord {
    /// The card that finished (time-series member `card_id`).
    pub card_id: String,
    /// Wall time of the pipeline, seconds; added to `total_duration` and the day's `duration`.
    pub duration_seconds: f64,
    /// Stored as given in the time-series member (the original keeps `"COMPLETED"` as
    /// `"COMPLETED"`); the `status:<status>` counter key lowercases it, as the original does.
    pub status: String,
    /// LLM spend of the pipeline, USD; added to `total_cost` and the day's `cost`.
    pub cost: f64,
    /// Free-form, copied into the time-series member's `metadata`.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// When it finished (now when `None`).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// One LLM request, for the `llm`, `llm:<provider>` and `llm:model:<model>` hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequestRecord {
    /// Provider name (`openai`, `anthropic`, …): the `llm:<provider>` hash.
    pub provider: String,
    /// Model id as requested: the `llm:model:<model>` hash.
    pub model: String,
    /// Input tokens, added to the `llm` hash's `prompt_tokens`.
    pub prompt_tokens: u64,
    /// Output tokens, added to the `llm` hash's `completion_tokens`.
    pub completion_tokens: u64,
    /// Money spent: zero for a cache hit.
    pub cost: f64,
    /// Answered from the cache: counts in `cache_hits`, else in `cache_misses`.
    pub cache_hit: bool,
    /// Time the request took, milliseconds (extension field `latency_ms_total` of `llm`).
    pub latency_ms: f64,
    /// Money a cache hit saved (what the call would have cost).
    #[serde(default)]
    pub saved_cost: f64,
    /// When it happened, for its time buckets (the time of the write when `None`; the
    /// [`Metrics`] handle fills it in, so a request replayed after an outage keeps its minute).
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// One code review, for `code_review:<developer>` and `code_review:status:<status>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeReviewRecord {
    /// Who was reviewed: the `code_review:<developer>` hash.
    pub developer: String,
    /// Lowercased on write.
    pub status: String,
    /// Review score, added to `total_score` (readers average it over `total_reviews`).
    pub score: i64,
    /// Critical findings, added to `critical_issues`.
    pub critical_issues: i64,
    /// High-severity findings, added to `high_issues`.
    pub high_issues: i64,
}

/// One metrics write, as the outage buffer keeps it for a replay.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsWrite {
    /// [`MetricsStore::track_pipeline_completion`].
    Completion(PipelineCompletionRecord),
    /// [`MetricsStore::track_llm_requests`].
    Requests(Vec<LlmRequestRecord>),
    /// [`MetricsStore::track_code_review`].
    Review(CodeReviewRecord),
    /// [`MetricsStore::track_limit_activity`].
    Limits(Vec<LimitActivityRecord>),
}

/// What a metrics read returns: the figures, and whatever could not be parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRead {
    /// The figures; fields whose value was unreadable count as zero.
    pub metrics: Summary,
    /// Keys and fields that could not be parsed, with the reason.
    pub malformed: Vec<Malformed>,
}

/// Statuses whose `status:<status>` counters every reader looks at, besides indexed ones.
pub const KNOWN_PIPELINE_STATUSES: &[&str] = &["completed", "failed", "cancelled"];

/// The metrics' storage interface, over Redis ([`RedisMetrics`]) or memory
/// ([`MemoryMetrics`]). Writes do not buffer: use [`Metrics`].
#[async_trait::async_trait]
pub trait MetricsStore: crate::store::Store {
    /// Adds one finished pipeline: a time-series member, `total`, `daily:<local date>` (TTL
    /// re-applied) and `status:<status>`.
    async fn track_pipeline_completion(&self, r: &PipelineCompletionRecord) -> crate::Result<()>;
    /// Adds one LLM request to `llm`, `llm:<provider>` and `llm:model:<model>`.
    async fn track_llm_request(&self, r: &LlmRequestRecord) -> crate::Result<()>;
    /// Many requests at once, with the same effect as one `track_llm_request` each. The Redis
    /// backend sums them per key first: one pipeline whose size depends on the number of
    /// distinct providers and models, not on the number of records.
    async fn track_llm_requests(&self, records: &[LlmRequestRecord]) -> crate::Result<()> {
        for r in records {
            self.track_llm_request(r).await?;
        }
        Ok(())
    }
    /// Adds one code review to `code_review:<developer>` and
    /// `code_review:status:<status>`.
    async fn track_code_review(&self, r: &CodeReviewRecord) -> crate::Result<()>;
    /// Adds rate-limit activity (admissions, refusals, waits per limiter key) to the time
    /// buckets of when it happened.
    async fn track_limit_activity(&self, records: &[LimitActivityRecord]) -> crate::Result<()>;
    /// Applies `write` at most once per `op_id`: sending it again after a failure whose reply
    /// was lost (the server may have applied it) changes nothing. The Redis backend marks each
    /// applied write for an hour in the slots it touched; a backend where a failed call cannot
    /// have been applied just applies it.
    async fn track_once(&self, op_id: &str, write: &MetricsWrite) -> crate::Result<()> {
        let _ = op_id;
        match write {
            MetricsWrite::Completion(r) => self.track_pipeline_completion(r).await,
            MetricsWrite::Requests(rs) => self.track_llm_requests(rs).await,
            MetricsWrite::Review(r) => self.track_code_review(r).await,
            MetricsWrite::Limits(rs) => self.track_limit_activity(rs).await,
        }
    }
    /// The time buckets of `window` ending at `now`, in one round trip.
    async fn read_history(
        &self,
        window: HistoryWindow,
        now: DateTime<Utc>,
    ) -> crate::Result<HistoryRead>;
    /// Totals, the last `days` local days (oldest first, gaps as zeros), the `recent` newest
    /// completed pipelines, per-provider and per-model breakdowns, code review figures.
    async fn read_metrics(&self, days: u32, recent: usize) -> crate::Result<MetricsRead>;
}

/// The local dates of the last `days` days ending at `today`, oldest first.
pub fn last_days(today: NaiveDate, days: u32) -> Vec<NaiveDate> {
    (0..days as i64)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back as u64)))
        .collect()
}

/// Today's local date (the original keys daily figures on local time).
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Local).date_naive()
}

/// The time-series member exactly as the original writes it (local naive timestamp).
pub fn timeseries_member(r: &PipelineCompletionRecord, at: DateTime<Utc>) -> String {
    let member = serde_json::json!({
        "card_id": r.card_id,
        "duration_seconds": r.duration_seconds,
        "status": r.status,
        "cost": r.cost,
        "timestamp": crate::model::format_naive(at.with_timezone(&Local).naive_local()),
        "metadata": r.metadata,
    });
    member.to_string()
}

/// Reads hash fields leniently: integer text, or float text for float fields. Anything else is
/// reported, and counted as zero.
pub(crate) struct FieldReader<'a> {
    pub key: &'a str,
    pub malformed: &'a mut Vec<Malformed>,
}

impl FieldReader<'_> {
    pub fn int(&mut self, fields: &std::collections::HashMap<String, String>, name: &str) -> i64 {
        match fields.get(name) {
            None => 0,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(i) => i,
                Err(_) => {
                    self.bad(name, v, "an integer");
                    0
                }
            },
        }
    }

    pub fn float(&mut self, fields: &std::collections::HashMap<String, String>, name: &str) -> f64 {
        match fields.get(name) {
            None => 0.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => f,
                _ => {
                    self.bad(name, v, "a number");
                    0.0
                }
            },
        }
    }

    fn bad(&mut self, field: &str, value: &str, expected: &str) {
        let shown: String = value.chars().take(40).collect();
        self.malformed.push(Malformed {
            key: self.key.to_owned(),
            reason: format!("field {field} is {shown:?}, expected {expected}"),
        });
    }
}

/// Parses one time-series member; `None` (and a malformed entry) when it is not the
/// original's JSON shape.
pub(crate) fn parse_recent(
    key: &str,
    member: &str,
    malformed: &mut Vec<Malformed>,
) -> Option<crate::metrics::RecentPipeline> {
    #[derive(Deserialize)]
    struct Member {
        card_id: String,
        #[serde(default)]
        duration_seconds: Option<f64>,
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        cost: Option<f64>,
        #[serde(default)]
        timestamp: Option<String>,
    }
    match serde_json::from_str::<Member>(member) {
        Ok(m) => Some(crate::metrics::RecentPipeline {
            card_id: m.card_id,
            duration_seconds: m.duration_seconds.unwrap_or(0.0),
            status: m.status.unwrap_or_default(),
            cost: m.cost.unwrap_or(0.0),
            timestamp: m.timestamp.unwrap_or_default(),
        }),
        Err(e) => {
            malformed.push(Malformed {
                key: key.to_owned(),
                reason: format!("time-series member is not valid JSON: {e}"),
            });
            None
        }
    }
}

/// Fills the derived figures (averages, hit rate) and sorts the breakdowns.
pub(crate) fn finish(m: &mut Summary) {
    let p = &mut m.pipelines;
    if p.completed > 0 {
        p.avg_duration = Some(p.total_duration / p.completed as f64);
        p.avg_cost = Some(p.total_cost / p.completed as f64);
    }
    let lookups = m.llm.cache_hits + m.llm.cache_misses;
    m.llm.hit_rate = (lookups > 0).then(|| m.llm.cache_hits as f64 / lookups as f64);
    let by_cost = |a: &crate::metrics::Breakdown, b: &crate::metrics::Breakdown| {
        b.cost
            .total_cmp(&a.cost)
            .then(b.requests.cmp(&a.requests))
            .then(a.name.cmp(&b.name))
    };
    m.providers.sort_by(by_cost);
    m.models.sort_by(by_cost);
    m.code_review
        .developers
        .sort_by(|a, b| a.developer.cmp(&b.developer));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_days_are_oldest_first() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        let days = last_days(d, 3);
        assert_eq!(
            days,
            vec![
                NaiveDate::from_ymd_opt(2026, 2, 28).unwrap(),
                NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                d
            ]
        );
    }

    #[test]
    fn bad_fields_are_reported_not_guessed() {
        let mut malformed = Vec::new();
        let fields = [
            ("a".to_string(), "12".to_string()),
            ("b".into(), "x".into()),
        ]
        .into_iter()
        .collect();
        let mut r = FieldReader {
            key: "k",
            malformed: &mut malformed,
        };
        assert_eq!(r.int(&fields, "a"), 12);
        assert_eq!(r.int(&fields, "b"), 0);
        assert_eq!(r.float(&fields, "missing"), 0.0);
        assert_eq!(malformed.len(), 1);
        assert!(malformed[0].reason.contains("field b"));
    }
}
