//! Metrics in process: the same aggregates as the Redis keys, under one lock so every
//! `track_*` is atomic, as a pipeline of single-key commands is on Redis.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, NaiveDate, Utc};

use super::history::{self, Add, BucketAdds, HistoryRead, HistoryWindow, LimitActivityRecord};

use super::{
    CodeReviewRecord, LlmRequestRecord, MetricsRead, PipelineCompletionRecord, finish, last_days,
    local_date,
};
use crate::keys::validate_name;
use crate::metrics::{
    Breakdown, DailyFigures, DeveloperReviews, LlmTotals, PipelineTotals, RecentPipeline, Summary,
};
use crate::store::{MemoryCore, delegate_store};

/// The aggregates, as the Redis keys hold them.
#[derive(Debug, Default)]
struct MetricsState {
    pipelines: PipelineTotals,
    llm: LlmTotals,
    providers: BTreeMap<String, (i64, f64)>,
    models: BTreeMap<String, (i64, f64)>,
    daily: BTreeMap<NaiveDate, DailyFigures>,
    /// (epoch seconds, member), oldest first.
    timeseries: VecDeque<(f64, RecentPipeline)>,
    reviews: BTreeMap<String, DeveloperReviews>,
    review_statuses: BTreeMap<String, i64>,
    /// The time buckets as the Redis hashes hold them (field → decimal text), by resolution
    /// and period start; dropped once past their retention, as EXPIRE drops them.
    buckets: BTreeMap<(history::Resolution, i64), std::collections::HashMap<String, String>>,
}

impl MetricsState {
    fn add_to_buckets(&mut self, adds: &BucketAdds, now: DateTime<Utc>) {
        for ((resolution, start), fields) in adds {
            let left = start + resolution.seconds() + resolution.ttl_seconds() - now.timestamp();
            if left <= 0 {
                continue;
            }
            let bucket = self.buckets.entry((*resolution, *start)).or_default();
            for (field, value) in fields {
                let old = bucket.get(field).map(String::as_str).unwrap_or("0");
                let new = match value {
                    Add::Int(n) => old
                        .parse::<i64>()
                        .unwrap_or(0)
                        .saturating_add(*n)
                        .to_string(),
                    Add::Float(x) => format!("{:?}", old.parse::<f64>().unwrap_or(0.0) + x),
                };
                bucket.insert(field.clone(), new);
            }
        }
        self.buckets.retain(|(resolution, start), _| {
            start + resolution.seconds() + resolution.ttl_seconds() > now.timestamp()
        });
    }
}

/// Metrics in this process's memory.
#[derive(Debug)]
pub struct MemoryMetrics {
    core: MemoryCore,
    state: std::sync::Mutex<MetricsState>,
}

delegate_store!(MemoryMetrics);

impl MemoryMetrics {
    /// Empty metrics using `core`'s settings.
    pub fn new(core: MemoryCore) -> Self {
        Self {
            core,
            state: Default::default(),
        }
    }

    fn metrics_state(&self) -> std::sync::MutexGuard<'_, MetricsState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl super::MetricsStore for MemoryMetrics {
    async fn track_pipeline_completion(&self, r: &PipelineCompletionRecord) -> crate::Result<()> {
        validate_name("status", &r.status)?;
        let at = r.at.unwrap_or_else(Utc::now);
        let epoch = at.timestamp_micros() as f64 / 1e6;
        let settings = &self.core.settings.metrics;
        let status = r.status.to_lowercase();
        let mut s = self.metrics_state();
        s.pipelines.completed += 1;
        s.pipelines.total_cost += r.cost;
        s.pipelines.total_duration += r.duration_seconds;
        *s.pipelines.by_status.entry(status).or_default() += 1;
        let date = local_date(at);
        let day = s.daily.entry(date).or_insert(DailyFigures {
            date,
            completions: 0,
            cost: 0.0,
            duration: 0.0,
        });
        day.completions += 1;
        day.cost += r.cost;
        day.duration += r.duration_seconds;
        // The daily hashes expire after the TTL on Redis.
        let keep_days = settings.daily_ttl_seconds.div_ceil(86_400);
        if let Some(oldest) = date.checked_sub_days(chrono::Days::new(keep_days)) {
            s.daily.retain(|d, _| *d > oldest);
        }
        let member = RecentPipeline {
            card_id: r.card_id.clone(),
            duration_seconds: r.duration_seconds,
            // The caller's text, as the original stores it; only the counter is lowercased.
            status: r.status.clone(),
            cost: r.cost,
            timestamp: crate::model::format_naive(at.with_timezone(&chrono::Local).naive_local()),
        };
        let pos = s.timeseries.partition_point(|(e, _)| *e <= epoch);
        s.timeseries.insert(pos, (epoch, member));
        if let Some(days) = settings.timeseries_retention_days {
            let oldest = epoch - days.saturating_mul(86_400) as f64;
            while s.timeseries.front().is_some_and(|(e, _)| *e < oldest) {
                s.timeseries.pop_front();
            }
        }
        Ok(())
    }

    async fn track_llm_request(&self, r: &LlmRequestRecord) -> crate::Result<()> {
        validate_name("provider", &r.provider)?;
        validate_name("model", &r.model)?;
        let mut guard = self.metrics_state();
        let s = &mut *guard;
        let llm = &mut s.llm;
        llm.total_requests += 1;
        llm.prompt_tokens += r.prompt_tokens as i64;
        llm.completion_tokens += r.completion_tokens as i64;
        if r.cache_hit {
            llm.cache_hits += 1;
        } else {
            llm.cache_misses += 1;
        }
        llm.total_cost += r.cost;
        llm.saved_cost += r.saved_cost;
        llm.latency_ms_total += r.latency_ms;
        for (map, name) in [(&mut s.providers, &r.provider), (&mut s.models, &r.model)] {
            let e = map.entry(name.clone()).or_default();
            e.0 += 1;
            e.1 += r.cost;
        }
        let now = Utc::now();
        let mut adds = BucketAdds::new();
        history::request_adds(std::slice::from_ref(r), now, &mut adds);
        s.add_to_buckets(&adds, now);
        Ok(())
    }

    async fn track_limit_activity(&self, records: &[LimitActivityRecord]) -> crate::Result<()> {
        for r in records {
            validate_name("rate-limit key", &r.key)?;
        }
        let mut adds = BucketAdds::new();
        history::limit_adds(records, &mut adds);
        self.metrics_state().add_to_buckets(&adds, Utc::now());
        Ok(())
    }

    async fn read_history(
        &self,
        window: HistoryWindow,
        now: DateTime<Utc>,
    ) -> crate::Result<HistoryRead> {
        let s = self.metrics_state();
        let resolution = window.resolution();
        let empty = std::collections::HashMap::new();
        let periods = window.bucket_starts(now).into_iter().map(|start| {
            let fields = s.buckets.get(&(resolution, start)).unwrap_or(&empty);
            let key = self.core.keys.metrics_bucket(resolution.code(), start);
            (start, key, fields)
        });
        Ok(HistoryRead::from_periods(window, periods, Vec::new()))
    }

    async fn track_code_review(&self, r: &CodeReviewRecord) -> crate::Result<()> {
        validate_name("developer", &r.developer)?;
        validate_name("status", &r.status)?;
        let mut s = self.metrics_state();
        let d = s
            .reviews
            .entry(r.developer.clone())
            .or_insert_with(|| DeveloperReviews {
                developer: r.developer.clone(),
                ..Default::default()
            });
        d.total_reviews += 1;
        d.total_score += r.score;
        d.critical_issues += r.critical_issues;
        d.high_issues += r.high_issues;
        *s.review_statuses
            .entry(r.status.to_lowercase())
            .or_default() += 1;
        Ok(())
    }

    async fn read_metrics(&self, days: u32, recent: usize) -> crate::Result<MetricsRead> {
        let s = self.metrics_state();
        let breakdown = |map: &BTreeMap<String, (i64, f64)>| -> Vec<Breakdown> {
            map.iter()
                .map(|(name, (requests, cost))| Breakdown {
                    name: name.clone(),
                    requests: *requests,
                    cost: *cost,
                })
                .collect()
        };
        let mut m = Summary {
            pipelines: s.pipelines.clone(),
            llm: s.llm.clone(),
            providers: breakdown(&s.providers),
            models: breakdown(&s.models),
            daily: last_days(local_date(Utc::now()), days)
                .into_iter()
                .map(|date| {
                    s.daily.get(&date).cloned().unwrap_or(DailyFigures {
                        date,
                        completions: 0,
                        cost: 0.0,
                        duration: 0.0,
                    })
                })
                .collect(),
            recent: s
                .timeseries
                .iter()
                .rev()
                .take(recent)
                .map(|(_, r)| r.clone())
                .collect(),
            code_review: crate::metrics::CodeReviewTotals {
                developers: s.reviews.values().cloned().collect(),
                by_status: s.review_statuses.clone(),
            },
        };
        finish(&mut m);
        Ok(MetricsRead {
            metrics: m,
            malformed: Vec::new(),
        })
    }
}
