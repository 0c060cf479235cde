//! Metrics on Redis: each `track_*` is one pipeline (one round trip; split per node on
//! Cluster, where each command is still atomic on its own key), each read two, plus one
//! bounded SCAN step (per master) of the walk for names only the original wrote, which
//! keeps no index of them ([`Discovery`]; the first read walks the whole keyspace).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use redis::Pipeline;

use super::closed::{self, ClosedPeriods, Held};
use super::history::{self, Add, BucketAdds, HistoryRead, HistoryWindow, LimitActivityRecord};
use super::writes::{Op, Writes};
use super::{
    CodeReviewRecord, FieldReader, KNOWN_PIPELINE_STATUSES, LlmRequestRecord, MetricsRead,
    MetricsWrite, PipelineCompletionRecord, finish, last_days, local_date, parse_recent,
    timeseries_member,
};
use crate::connection::{ConnState, Discovery, DiscoveryScan};
use crate::keys::validate_name;
use crate::metrics::{Breakdown, DailyFigures, DeveloperReviews, Summary};
use crate::model::Malformed;
use crate::store::{RedisCore, delegate_store};

/// Most names the discovery keeps (Python-written providers, models, developers, statuses).
const SCAN_LIMIT: usize = 30_000;

type Fields = HashMap<String, String>;

/// Names of metric keys found by SCAN: the original keeps no name index, so names only it
/// wrote are found this way.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScannedNames {
    statuses: Vec<String>,
    providers: Vec<String>,
    models: Vec<String>,
    developers: Vec<String>,
    review_statuses: Vec<String>,
}

/// Metrics on Redis (standalone or Cluster).
#[derive(Debug, Clone)]
pub struct RedisMetrics {
    core: RedisCore,
    /// The walk for Python-written metric names: one pattern, a bounded step per read.
    scanned: std::sync::Arc<tokio::sync::Mutex<Discovery>>,
    /// The charts' closed time buckets as last read (see [`super::closed`]).
    closed_buckets: std::sync::Arc<tokio::sync::Mutex<ClosedPeriods>>,
    /// The past days' hashes as last read.
    closed_days: std::sync::Arc<tokio::sync::Mutex<ClosedPeriods>>,
}

delegate_store!(RedisMetrics);

impl RedisMetrics {
    /// Metrics over `core`'s connection.
    pub fn new(core: RedisCore) -> Self {
        Self {
            core,
            scanned: Default::default(),
            closed_buckets: Default::default(),
            closed_days: Default::default(),
        }
    }

    /// `cache`, locked, with what is due to be read again forgotten (see
    /// [`ClosedPeriods::expire`]).
    async fn closed<'a>(
        &self,
        cache: &'a tokio::sync::Mutex<ClosedPeriods>,
    ) -> tokio::sync::MutexGuard<'a, ClosedPeriods> {
        let mut held = cache.lock().await;
        let connection = match self.core.redis.current_state() {
            ConnState::Connected { since } => Some(since),
            _ => None,
        };
        let reread =
            std::time::Duration::from_secs(self.core.settings.tracker.full_read_interval_seconds);
        held.expire(std::time::Instant::now(), reread, connection, |at| {
            self.core.scan_still_valid(at)
        });
        held
    }

    /// The names under the original's key patterns (`status:*`, `llm:*`, `code_review:*`),
    /// from one walk of `<metrics>:[^:]*` (never KEYS; at most [`SCAN_LIMIT`] names) that
    /// advances a bounded step per read (see [`Discovery`]): whole on the first read and the
    /// first after [`crate::store::Store::forget_scans`], and on every read with
    /// `metrics.scan_interval_seconds = 0`.
    async fn scanned_metric_names(&self) -> crate::Result<ScannedNames> {
        let k = &self.core.keys;
        let mut discovery = self.scanned.lock().await;
        let whole = self.core.settings.metrics.scan_interval_seconds == 0
            || discovery
                .walked_at()
                .is_none_or(|at| !self.core.scan_still_valid(at));
        let pattern = k.metrics_names_scan_pattern();
        let scan = DiscoveryScan {
            pattern: &pattern,
            key_type: None,
            count_per_step: self.core.scan_count_per_poll(),
            limit: SCAN_LIMIT,
        };
        let status_prefix = k.metrics_status("");
        let model_prefix = k.metrics_llm_model("");
        let llm_prefix = k.metrics_llm_provider("");
        let review_status_prefix = k.metrics_code_review_status("");
        let dev_prefix = k.metrics_code_review("");
        let prefixes = [
            &status_prefix,
            &model_prefix,
            &llm_prefix,
            &review_status_prefix,
            &dev_prefix,
        ];
        // Key names that are not UTF-8 (no name either side writes) are left out.
        let keep = |key: &[u8]| {
            let key = std::str::from_utf8(key).ok()?;
            prefixes
                .iter()
                .any(|p| key.len() > p.len() && key.starts_with(p.as_str()))
                .then(|| key.to_owned())
        };
        let found = discovery.read(&self.core.redis, scan, whole, keep).await?;
        drop(discovery);
        let mut names = ScannedNames::default();
        for key in found {
            if let Some(s) = key.strip_prefix(&status_prefix) {
                names.statuses.push(s.to_owned());
            } else if let Some(name) = key.strip_prefix(&model_prefix) {
                names.models.push(name.to_owned());
            } else if let Some(name) = key.strip_prefix(&llm_prefix) {
                names.providers.push(name.to_owned());
            } else if let Some(s) = key.strip_prefix(&review_status_prefix) {
                names.review_statuses.push(s.to_owned());
            } else if let Some(d) = key.strip_prefix(&dev_prefix) {
                names.developers.push(d.to_owned());
            }
        }
        Ok(names)
    }
}

/// How long a metrics write's markers stay: a write whose reply was lost and that is replayed
/// within this time after it was first sent is applied once; later, it could count twice.
pub(crate) const REPLAY_GUARD_SECONDS: u64 = 3_600;

const GUARD_SOURCE: &str = include_str!("scripts/guard.lua");
static GUARD: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(GUARD_SOURCE));

impl RedisMetrics {
    /// The commands of a pipeline completion (the original's keys and field types).
    fn completion_writes(&self, r: &PipelineCompletionRecord) -> crate::Result<Writes> {
        validate_name("status", &r.status)?;
        let k = &self.core.keys;
        let m = &self.core.settings.metrics;
        let at = r.at.unwrap_or_else(Utc::now);
        let epoch = at.timestamp_micros() as f64 / 1e6;
        let status = r.status.to_lowercase();
        let daily = k.metrics_daily(local_date(at));
        let total = k.metrics_total();
        let mut w = Writes::default();
        w.push(
            k.metrics_timeseries(),
            Op::ZAdd {
                member: timeseries_member(r, at),
                score: epoch,
            },
        );
        // The original keeps every entry for ever; trimming (the original's entries too) only
        // when the operator asked for it.
        if let Some(days) = m.timeseries_retention_days {
            let oldest = epoch - days.saturating_mul(86_400) as f64;
            w.push(
                k.metrics_timeseries(),
                Op::ZRemRangeByScore {
                    min: "-inf".into(),
                    max: format!("({oldest}"),
                },
            );
        }
        w.push(&total, Op::HIncrBy("pipelines_completed".into(), 1))
            .push(&total, Op::HIncrByFloat("total_cost".into(), r.cost))
            .push(
                &total,
                Op::HIncrByFloat("total_duration".into(), r.duration_seconds),
            )
            .push(&daily, Op::HIncrBy("completions".into(), 1))
            .push(&daily, Op::HIncrByFloat("cost".into(), r.cost))
            .push(
                &daily,
                Op::HIncrByFloat("duration".into(), r.duration_seconds),
            )
            .push(&daily, Op::Expire(m.daily_ttl_seconds as i64))
            .push(k.metrics_status(&status), Op::IncrBy(1))
            .push(k.metrics_index("statuses"), Op::SAdd(status));
        Ok(w)
    }

    /// The commands of a batch of LLM requests, summed per key: their number depends on the
    /// distinct providers and models, not on the number of records.
    fn requests_writes(&self, records: &[LlmRequestRecord]) -> crate::Result<Writes> {
        #[derive(Default)]
        struct Sum {
            requests: i64,
            cost: f64,
        }
        let (mut hits, mut misses, mut prompt, mut completion) = (0i64, 0i64, 0i64, 0i64);
        let (mut cost, mut saved, mut latency) = (0f64, 0f64, 0f64);
        let mut providers: BTreeMap<&str, Sum> = BTreeMap::new();
        let mut models: BTreeMap<&str, Sum> = BTreeMap::new();
        for r in records {
            validate_name("provider", &r.provider)?;
            validate_name("model", &r.model)?;
            if r.cache_hit {
                hits += 1;
            } else {
                misses += 1;
            }
            prompt = prompt.saturating_add(i64::try_from(r.prompt_tokens).unwrap_or(i64::MAX));
            completion =
                completion.saturating_add(i64::try_from(r.completion_tokens).unwrap_or(i64::MAX));
            cost += r.cost;
            saved += r.saved_cost;
            latency += r.latency_ms;
            for (map, name) in [(&mut providers, &r.provider), (&mut models, &r.model)] {
                let s = map.entry(name.as_str()).or_default();
                s.requests += 1;
                s.cost += r.cost;
            }
        }
        let mut w = Writes::default();
        if records.is_empty() {
            return Ok(w);
        }
        let k = &self.core.keys;
        let llm = k.metrics_llm();
        // A zero addition changes nothing a reader sees (every reader, the original's too,
        // takes a missing field as 0), so it is not sent: a cache hit (no cost, no tokens)
        // then costs the guard script fewer commands, which pays for its time buckets.
        w.push(&llm, Op::HIncrBy("total_requests".into(), hits + misses));
        for (field, n) in [
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("cache_hits", hits),
            ("cache_misses", misses),
        ] {
            if n != 0 {
                w.push(&llm, Op::HIncrBy(field.into(), n));
            }
        }
        for (field, x) in [
            ("total_cost", cost),
            ("saved_cost", saved),
            ("latency_ms_total", latency),
        ] {
            if x != 0.0 {
                w.push(&llm, Op::HIncrByFloat(field.into(), x));
            }
        }
        for (key, s) in providers
            .iter()
            .map(|(n, s)| (k.metrics_llm_provider(n), s))
            .chain(models.iter().map(|(n, s)| (k.metrics_llm_model(n), s)))
        {
            w.push(&key, Op::HIncrBy("requests".into(), s.requests));
            if s.cost != 0.0 {
                w.push(&key, Op::HIncrByFloat("cost".into(), s.cost));
            }
        }
        for name in providers.keys() {
            w.push(k.metrics_index("providers"), Op::SAdd((*name).to_owned()));
        }
        for name in models.keys() {
            w.push(k.metrics_index("models"), Op::SAdd((*name).to_owned()));
        }
        let now = Utc::now();
        let mut adds = BucketAdds::new();
        history::request_adds(records, now, &mut adds);
        self.bucket_writes(&adds, now, &mut w);
        Ok(w)
    }

    /// The commands of rate-limit activity: bucket fields only.
    fn limit_writes(&self, records: &[LimitActivityRecord]) -> crate::Result<Writes> {
        for r in records {
            validate_name("rate-limit key", &r.key)?;
        }
        let now = Utc::now();
        let mut adds = BucketAdds::new();
        history::limit_adds(records, &mut adds);
        let mut w = Writes::default();
        self.bucket_writes(&adds, now, &mut w);
        Ok(w)
    }

    /// Adds `adds` to their bucket hashes, each bucket followed by its EXPIRE: the bucket
    /// lives until its retention after its period ends. A bucket already past its retention (a
    /// very late replay) is not written at all.
    fn bucket_writes(&self, adds: &BucketAdds, now: DateTime<Utc>, w: &mut Writes) {
        for ((resolution, start), fields) in adds {
            let left = start + resolution.seconds() + resolution.ttl_seconds() - now.timestamp();
            if left <= 0 {
                continue;
            }
            let key = self.core.keys.metrics_bucket(resolution.code(), *start);
            for (field, value) in fields {
                let op = match value {
                    Add::Int(n) => Op::HIncrBy(field.clone(), *n),
                    Add::Float(x) => Op::HIncrByFloat(field.clone(), *x),
                };
                w.push(&key, op);
            }
            w.push(&key, Op::Expire(left));
        }
    }

    /// The commands of one code review.
    fn review_writes(&self, r: &CodeReviewRecord) -> crate::Result<Writes> {
        validate_name("developer", &r.developer)?;
        validate_name("status", &r.status)?;
        let k = &self.core.keys;
        let dev = k.metrics_code_review(&r.developer);
        let status = r.status.to_lowercase();
        let mut w = Writes::default();
        w.push(&dev, Op::HIncrBy("total_reviews".into(), 1))
            .push(&dev, Op::HIncrBy("total_score".into(), r.score))
            .push(
                &dev,
                Op::HIncrBy("critical_issues".into(), r.critical_issues),
            )
            .push(&dev, Op::HIncrBy("high_issues".into(), r.high_issues))
            .push(k.metrics_code_review_status(&status), Op::IncrBy(1))
            .push(k.metrics_index("developers"), Op::SAdd(r.developer.clone()))
            .push(k.metrics_index("review_statuses"), Op::SAdd(status));
        Ok(w)
    }
}

#[async_trait::async_trait]
impl super::MetricsStore for RedisMetrics {
    async fn track_pipeline_completion(&self, r: &PipelineCompletionRecord) -> crate::Result<()> {
        let w = self.completion_writes(r)?;
        self.core.redis.query_pipe_ok(&w.pipeline()).await
    }

    async fn track_llm_request(&self, r: &LlmRequestRecord) -> crate::Result<()> {
        self.track_llm_requests(std::slice::from_ref(r)).await
    }

    async fn track_llm_requests(&self, records: &[LlmRequestRecord]) -> crate::Result<()> {
        // Merged: whatever each record adds, a batch costs its distinct keys and fields.
        let w = self.requests_writes(records)?.merged();
        if w.is_empty() {
            return Ok(());
        }
        self.core.redis.query_pipe_ok(&w.pipeline()).await
    }

    async fn track_code_review(&self, r: &CodeReviewRecord) -> crate::Result<()> {
        let w = self.review_writes(r)?;
        self.core.redis.query_pipe_ok(&w.pipeline()).await
    }

    async fn track_limit_activity(&self, records: &[LimitActivityRecord]) -> crate::Result<()> {
        let w = self.limit_writes(records)?;
        if w.is_empty() {
            return Ok(());
        }
        self.core.redis.query_pipe_ok(&w.pipeline()).await
    }

    async fn read_history(
        &self,
        window: HistoryWindow,
        now: DateTime<Utc>,
    ) -> crate::Result<HistoryRead> {
        let resolution = window.resolution();
        let starts = window.bucket_starts(now);
        let keys: Vec<(String, bool)> = starts
            .iter()
            .map(|s| {
                (
                    self.core.keys.metrics_bucket(resolution.code(), *s),
                    closed::bucket_closed(*s, resolution.seconds(), now),
                )
            })
            .collect();
        let mut cache = self.closed(&self.closed_buckets).await;
        let to_read = cache.to_read(&keys);
        // One round trip: one HGETALL per period not held (at most 720), split per node on
        // Cluster; none when every one is held and none is open (a past window).
        let mut p = Pipeline::new();
        p.ignore_errors();
        for ((key, _), read) in keys.iter().zip(&to_read) {
            if *read {
                p.hgetall(key);
            }
        }
        let values: Vec<redis::Value> = if p.is_empty() {
            Vec::new()
        } else {
            self.core.redis.query_pipe(&p).await?
        };
        let mut values = values
            .into_iter()
            .chain(std::iter::repeat(redis::Value::Nil));
        let read: Vec<Option<Held>> = keys
            .iter()
            .zip(&to_read)
            .map(|((key, _), read)| {
                read.then(|| {
                    Reply {
                        key: key.clone(),
                        value: values.next().unwrap_or(redis::Value::Nil),
                    }
                    .held()
                })
            })
            .collect();
        let held = cache.merge(&keys, read);
        drop(cache);
        let malformed = held.iter().flat_map(|h| h.malformed.clone()).collect();
        let periods = starts
            .into_iter()
            .zip(keys)
            .zip(&held)
            .map(|((start, (key, _)), h)| (start, key, &h.fields));
        Ok(HistoryRead::from_periods(window, periods, malformed))
    }

    async fn track_once(&self, op_id: &str, write: &MetricsWrite) -> crate::Result<()> {
        let w = match write {
            MetricsWrite::Completion(r) => self.completion_writes(r)?,
            MetricsWrite::Requests(rs) => self.requests_writes(rs)?.merged(),
            MetricsWrite::Review(r) => self.review_writes(r)?,
            MetricsWrite::Limits(rs) => self.limit_writes(rs)?,
        };
        if w.is_empty() {
            return Ok(());
        }
        crate::keys::validate_name("operation id", op_id)?;
        let cluster = self.core.redis.is_cluster();
        let marker = |key: &str| self.core.keys.metrics_op_marker(key, op_id);
        let evalsha = || {
            let mut c = redis::cmd("EVALSHA");
            c.arg(GUARD.get_hash());
            c
        };
        let first = w.guarded(cluster, REPLAY_GUARD_SECONDS, marker, &evalsha);
        match self.core.redis.query_pipe_ok(&first).await {
            // A restarted server has no scripts cached: send the source. Parts of the write that
            // did run are not run again (their markers are set).
            Err(e) if e.is_noscript() => {
                let eval = || {
                    let mut c = redis::cmd("EVAL");
                    c.arg(GUARD_SOURCE);
                    c
                };
                let again = w.guarded(cluster, REPLAY_GUARD_SECONDS, marker, &eval);
                self.core.redis.query_pipe_ok(&again).await
            }
            other => other,
        }
    }

    async fn read_metrics(&self, days: u32, recent: usize) -> crate::Result<MetricsRead> {
        let k = &self.core.keys;
        let now = Utc::now();
        let dates = last_days(local_date(now), days);

        // Round trip 1: the fixed keys and the name indexes. Errors (a key of the wrong
        // type) come back per reply, so one bad key cannot hide the rest.
        let mut malformed = Vec::new();
        let mut p = Pipeline::new();
        p.ignore_errors()
            .hgetall(k.metrics_total())
            .hgetall(k.metrics_llm())
            .smembers(k.metrics_index("statuses"))
            .smembers(k.metrics_index("providers"))
            .smembers(k.metrics_index("models"))
            .smembers(k.metrics_index("developers"))
            .smembers(k.metrics_index("review_statuses"))
            .zrevrange(k.metrics_timeseries(), 0, recent as isize - 1);
        // The past days are closed (see `super::closed`): held ones are not read again.
        let day_keys: Vec<(String, bool)> = dates
            .iter()
            .map(|d| (k.metrics_daily(*d), closed::day_closed(*d, now)))
            .collect();
        let mut days_cache = self.closed(&self.closed_days).await;
        let read_day = days_cache.to_read(&day_keys);
        for ((key, _), read) in day_keys.iter().zip(&read_day) {
            if *read {
                p.hgetall(key);
            }
        }
        let values: Vec<redis::Value> = self.core.redis.query_pipe(&p).await?;
        let mut values = values.into_iter();
        let mut next = |key: String| Reply {
            key,
            value: values.next().unwrap_or(redis::Value::Nil),
        };
        let total = next(k.metrics_total()).hash(&mut malformed);
        let llm = next(k.metrics_llm()).hash(&mut malformed);
        let mut statuses = next(k.metrics_index("statuses")).strings(&mut malformed);
        let mut providers = next(k.metrics_index("providers")).strings(&mut malformed);
        let mut models = next(k.metrics_index("models")).strings(&mut malformed);
        let mut developers = next(k.metrics_index("developers")).strings(&mut malformed);
        let mut review_statuses = next(k.metrics_index("review_statuses")).strings(&mut malformed);
        let ts = next(k.metrics_timeseries()).strings(&mut malformed);
        let daily: Vec<Option<Held>> = day_keys
            .iter()
            .zip(&read_day)
            .map(|((key, _), read)| read.then(|| next(key.clone()).held()))
            .collect();
        let daily = days_cache.merge(&day_keys, daily);
        drop(days_cache);
        for h in &daily {
            malformed.extend(h.malformed.iter().cloned());
        }

        let mut out = MetricsRead::default();
        let m: &mut Summary = &mut out.metrics;
        {
            let key = k.metrics_total();
            let mut f = FieldReader {
                key: &key,
                malformed: &mut malformed,
            };
            m.pipelines.completed = f.int(&total, "pipelines_completed");
            m.pipelines.total_cost = f.float(&total, "total_cost");
            m.pipelines.total_duration = f.float(&total, "total_duration");
        }
        {
            let key = k.metrics_llm();
            let mut f = FieldReader {
                key: &key,
                malformed: &mut malformed,
            };
            m.llm.total_requests = f.int(&llm, "total_requests");
            m.llm.prompt_tokens = f.int(&llm, "prompt_tokens");
            m.llm.completion_tokens = f.int(&llm, "completion_tokens");
            m.llm.cache_hits = f.int(&llm, "cache_hits");
            m.llm.cache_misses = f.int(&llm, "cache_misses");
            m.llm.total_cost = f.float(&llm, "total_cost");
            m.llm.saved_cost = f.float(&llm, "saved_cost");
            m.llm.latency_ms_total = f.float(&llm, "latency_ms_total");
        }
        for (date, Held { fields, .. }) in dates.iter().zip(daily) {
            let key = k.metrics_daily(*date);
            let mut f = FieldReader {
                key: &key,
                malformed: &mut malformed,
            };
            m.daily.push(DailyFigures {
                date: *date,
                completions: f.int(&fields, "completions"),
                cost: f.float(&fields, "cost"),
                duration: f.float(&fields, "duration"),
            });
        }
        let ts_key = k.metrics_timeseries();
        m.recent = ts
            .iter()
            .filter_map(|member| parse_recent(&ts_key, member, &mut malformed))
            .collect();

        // The original keeps no name index: the names only it wrote come from a SCAN of its
        // key patterns (cached, see `scanned_metric_names`), always added to the indexed
        // ones, so neither side's names can hide the other's.
        let scanned = self.scanned_metric_names().await?;
        statuses.extend(scanned.statuses);
        providers.extend(scanned.providers);
        models.extend(scanned.models);
        developers.extend(scanned.developers);
        review_statuses.extend(scanned.review_statuses);
        let mut all_statuses: Vec<String> = KNOWN_PIPELINE_STATUSES
            .iter()
            .map(|s| s.to_string())
            .collect();
        all_statuses.extend(statuses);
        all_statuses.sort();
        all_statuses.dedup();
        let mut all_review_statuses = review_statuses;
        all_review_statuses.sort();
        all_review_statuses.dedup();
        providers.sort();
        providers.dedup();
        models.sort();
        models.dedup();
        developers.sort();
        developers.dedup();

        // Round trip 2: the named keys.
        let mut p = Pipeline::new();
        for s in &all_statuses {
            p.get(k.metrics_status(s));
        }
        for s in &all_review_statuses {
            p.get(k.metrics_code_review_status(s));
        }
        for name in &providers {
            p.hgetall(k.metrics_llm_provider(name));
        }
        for name in &models {
            p.hgetall(k.metrics_llm_model(name));
        }
        for name in &developers {
            p.hgetall(k.metrics_code_review(name));
        }
        p.ignore_errors();
        let values: Vec<redis::Value> = if p.is_empty() {
            Vec::new()
        } else {
            self.core.redis.query_pipe(&p).await?
        };
        let mut values = values.into_iter();
        let mut next = |key: String| Reply {
            key,
            value: values.next().unwrap_or(redis::Value::Nil),
        };
        for s in &all_statuses {
            let n = next(k.metrics_status(s)).counter(&mut malformed);
            if n != 0 {
                m.pipelines.by_status.insert(s.clone(), n);
            }
        }
        for s in &all_review_statuses {
            let n = next(k.metrics_code_review_status(s)).counter(&mut malformed);
            if n != 0 {
                m.code_review.by_status.insert(s.clone(), n);
            }
        }
        for (names, out, key_of) in [
            (
                &providers,
                &mut m.providers,
                &(|n: &str| k.metrics_llm_provider(n)) as &dyn Fn(&str) -> String,
            ),
            (&models, &mut m.models, &|n: &str| k.metrics_llm_model(n)),
        ] {
            for name in names {
                let key = key_of(name);
                let fields = next(key.clone()).hash(&mut malformed);
                let mut f = FieldReader {
                    key: &key,
                    malformed: &mut malformed,
                };
                out.push(Breakdown {
                    name: name.clone(),
                    requests: f.int(&fields, "requests"),
                    cost: f.float(&fields, "cost"),
                });
            }
        }
        for name in &developers {
            let key = k.metrics_code_review(name);
            let fields = next(key.clone()).hash(&mut malformed);
            let mut f = FieldReader {
                key: &key,
                malformed: &mut malformed,
            };
            m.code_review.developers.push(DeveloperReviews {
                developer: name.clone(),
                total_reviews: f.int(&fields, "total_reviews"),
                total_score: f.int(&fields, "total_score"),
                critical_issues: f.int(&fields, "critical_issues"),
                high_issues: f.int(&fields, "high_issues"),
            });
        }
        finish(m);
        out.malformed = malformed;
        Ok(out)
    }
}

/// One pipelined reply with the key it belongs to, converted leniently: a reply of the wrong
/// type or encoding becomes a [`Malformed`] entry and an empty value.
pub(crate) struct Reply {
    pub key: String,
    pub value: redis::Value,
}

impl Reply {
    fn convert<T: redis::FromRedisValue + Default>(
        self,
        what: &str,
        malformed: &mut Vec<Malformed>,
    ) -> T {
        if matches!(self.value, redis::Value::Nil) {
            return T::default();
        }
        let reason = match &self.value {
            redis::Value::ServerError(e) => {
                format!("cannot read as {what}: {}", e.details().unwrap_or(e.code()))
            }
            _ => format!("not {what}"),
        };
        match redis::from_redis_value(self.value) {
            Ok(v) => v,
            Err(_) => {
                malformed.push(Malformed {
                    key: self.key,
                    reason,
                });
                T::default()
            }
        }
    }

    /// A hash; a field or value that is not UTF-8 is kept lossily converted (so that the
    /// number parser reports it) instead of losing the whole hash.
    /// A hash with what in it did not parse, as [`super::closed`] holds it.
    fn held(self) -> Held {
        let mut malformed = Vec::new();
        let fields = self.hash(&mut malformed);
        Held { fields, malformed }
    }

    pub(crate) fn hash(self, malformed: &mut Vec<Malformed>) -> Fields {
        let raw: HashMap<Vec<u8>, Vec<u8>> = self.convert("a hash", malformed);
        raw.into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    /// Set or sorted-set members; one that is not UTF-8 is reported and left out, the rest
    /// kept.
    pub(crate) fn strings(self, malformed: &mut Vec<Malformed>) -> Vec<String> {
        let key = self.key.clone();
        let raw: Vec<Vec<u8>> = self.convert("a set of strings", malformed);
        crate::model::utf8_members(&key, raw, malformed)
    }

    pub(crate) fn counter(self, malformed: &mut Vec<Malformed>) -> i64 {
        let key = self.key.clone();
        let text: Option<String> = self.convert("a counter", malformed);
        match text.map(|t| t.trim().parse::<i64>()) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                malformed.push(Malformed {
                    key,
                    reason: "counter is not an integer".into(),
                });
                0
            }
        }
    }
}
