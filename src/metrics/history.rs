//! Time buckets: pre-aggregated per-minute and per-hour figures kept in Redis, so that a
//! dashboard opened now charts the last hour (or month), not only what it saw since it started.
//!
//! Every metrics write that records LLM requests or rate-limit activity also adds to the hash of
//! the minute and of the hour it happened in (`<metrics>::bucket:m:<start>` and
//! `::bucket:h:<start>`, see [`crate::keys::KeySpace::metrics_bucket`]), inside the same guarded
//! write as the original's counters, so a replay applies them at most once too. Each bucket key
//! gets an EXPIRE on every write ([`Resolution::ttl_seconds`]): at most 48 h of minutes and 30 d
//! of hours exist, whatever the traffic. Within a bucket there is one field per measure and
//! name, `<measure>:<kind>:<name>` (`kind` is `p` provider, `m` model, `l` limiter key; the name
//! is the rest, colons included), so the fields grow with the names seen in that period only.
//!
//! Python processes write no buckets: a fleet of them only shows up in [`Series::found`] being
//! false, and the dashboard then charts what it saw since it started instead.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{FieldReader, LlmRequestRecord};
use crate::model::Malformed;

/// How long one bucket covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// One minute; kept 48 h.
    Minute,
    /// One hour; kept 30 days.
    Hour,
}

impl Resolution {
    /// Both resolutions, finest first: every write adds to one bucket of each.
    pub const ALL: [Resolution; 2] = [Resolution::Minute, Resolution::Hour];

    /// Seconds one bucket covers.
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour => 3_600,
        }
    }

    /// The key segment naming the resolution.
    pub fn code(self) -> &'static str {
        match self {
            Resolution::Minute => "m",
            Resolution::Hour => "h",
        }
    }

    /// Lifetime of a bucket key, re-applied on every write to it (the last write of the period
    /// decides, so a bucket lives this long after its period ends at most).
    pub fn ttl_seconds(self) -> i64 {
        match self {
            Resolution::Minute => 48 * 3_600,
            Resolution::Hour => 30 * 86_400,
        }
    }

    /// The first second (Unix time) of the bucket `at` falls into.
    pub fn bucket_start(self, at: DateTime<Utc>) -> i64 {
        at.timestamp().div_euclid(self.seconds()) * self.seconds()
    }
}

/// The span the charts show; `+` / `-` step through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HistoryWindow {
    /// The last 15 minutes, per minute.
    #[serde(rename = "15m")]
    Minutes15,
    /// The last hour, per minute.
    #[default]
    #[serde(rename = "1h")]
    Hour1,
    /// The last 6 hours, per minute.
    #[serde(rename = "6h")]
    Hours6,
    /// The last 24 hours, per hour.
    #[serde(rename = "24h")]
    Hours24,
    /// The last 30 days, per hour.
    #[serde(rename = "30d")]
    Days30,
}

impl HistoryWindow {
    /// Every window, shortest first.
    pub const ALL: [HistoryWindow; 5] = [
        HistoryWindow::Minutes15,
        HistoryWindow::Hour1,
        HistoryWindow::Hours6,
        HistoryWindow::Hours24,
        HistoryWindow::Days30,
    ];

    /// How far back it reaches, seconds.
    pub fn span_seconds(self) -> i64 {
        match self {
            HistoryWindow::Minutes15 => 15 * 60,
            HistoryWindow::Hour1 => 3_600,
            HistoryWindow::Hours6 => 6 * 3_600,
            HistoryWindow::Hours24 => 24 * 3_600,
            HistoryWindow::Days30 => 30 * 86_400,
        }
    }

    /// The buckets it reads: minutes up to 6 h (360 keys), hours beyond (at most 720 keys).
    pub fn resolution(self) -> Resolution {
        match self {
            HistoryWindow::Minutes15 | HistoryWindow::Hour1 | HistoryWindow::Hours6 => {
                Resolution::Minute
            }
            HistoryWindow::Hours24 | HistoryWindow::Days30 => Resolution::Hour,
        }
    }

    /// The label the panel titles show (`15m`, `1h`, `6h`, `24h`, `30d`).
    pub fn label(self) -> &'static str {
        match self {
            HistoryWindow::Minutes15 => "15m",
            HistoryWindow::Hour1 => "1h",
            HistoryWindow::Hours6 => "6h",
            HistoryWindow::Hours24 => "24h",
            HistoryWindow::Days30 => "30d",
        }
    }

    /// The next longer window (the longest stays).
    pub fn longer(self) -> Self {
        let i = Self::ALL.iter().position(|w| *w == self).unwrap_or(0);
        Self::ALL[(i + 1).min(Self::ALL.len() - 1)]
    }

    /// The next shorter window (the shortest stays).
    pub fn shorter(self) -> Self {
        let i = Self::ALL.iter().position(|w| *w == self).unwrap_or(0);
        Self::ALL[i.saturating_sub(1)]
    }

    /// The bucket starts (Unix seconds) the window covers at `now`, oldest first, the
    /// current (partial) bucket last.
    pub fn bucket_starts(self, now: DateTime<Utc>) -> Vec<i64> {
        let r = self.resolution();
        let n = self.span_seconds() / r.seconds();
        let last = r.bucket_start(now);
        (0..n).rev().map(|back| last - back * r.seconds()).collect()
    }
}

/// One rate-limit key's activity in one period, as the limiter counted it in process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitActivityRecord {
    /// The limiter window's Redis key (as in [`crate::limiter::LimitUsage::key`]).
    pub key: String,
    /// When it happened (its bucket).
    pub at: DateTime<Utc>,
    /// Checks admitted.
    pub admitted: u64,
    /// Checks refused (each refused attempt of an `acquire` counts).
    pub refused: u64,
    /// `acquire` calls that had to wait for a slot at least once.
    pub waited: u64,
    /// Time those calls spent waiting, milliseconds.
    pub wait_ms: u64,
}

/// An addition to one bucket field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Add {
    Int(i64),
    Float(f64),
}

/// The additions of a batch to each bucket: `(resolution, start) → field → addition`, summed
/// per field, zero additions left out (they would only lengthen the write).
pub(crate) type BucketAdds = BTreeMap<(Resolution, i64), BTreeMap<String, Add>>;

fn add(adds: &mut BucketAdds, at: DateTime<Utc>, field: String, value: Add) {
    let zero = match value {
        Add::Int(n) => n == 0,
        Add::Float(x) => x == 0.0,
    };
    if zero {
        return;
    }
    for r in Resolution::ALL {
        let slot = adds
            .entry((r, r.bucket_start(at)))
            .or_default()
            .entry(field.clone())
            .or_insert(match value {
                Add::Int(_) => Add::Int(0),
                Add::Float(_) => Add::Float(0.0),
            });
        *slot = match (*slot, value) {
            (Add::Int(a), Add::Int(b)) => Add::Int(a.saturating_add(b)),
            (Add::Float(a), Add::Float(b)) => Add::Float(a + b),
            (_, other) => other,
        };
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The bucket additions of LLM requests: per provider requests, hits, misses, spend and
/// tokens; per model requests and spend. `at` is the time of a record without one.
pub(crate) fn request_adds(records: &[LlmRequestRecord], at: DateTime<Utc>, adds: &mut BucketAdds) {
    for r in records {
        let when = r.at.unwrap_or(at);
        let p = |measure: &str| format!("{measure}:p:{}", r.provider);
        add(adds, when, p("req"), Add::Int(1));
        let outcome = if r.cache_hit { "hit" } else { "miss" };
        add(adds, when, p(outcome), Add::Int(1));
        add(adds, when, p("cost"), Add::Float(r.cost));
        add(adds, when, p("tok_in"), Add::Int(to_i64(r.prompt_tokens)));
        add(
            adds,
            when,
            p("tok_out"),
            Add::Int(to_i64(r.completion_tokens)),
        );
        add(adds, when, format!("req:m:{}", r.model), Add::Int(1));
        add(
            adds,
            when,
            format!("cost:m:{}", r.model),
            Add::Float(r.cost),
        );
    }
}

/// The bucket additions of rate-limit activity.
pub(crate) fn limit_adds(records: &[LimitActivityRecord], adds: &mut BucketAdds) {
    for r in records {
        let l = |measure: &str| format!("{measure}:l:{}", r.key);
        add(adds, r.at, l("adm"), Add::Int(to_i64(r.admitted)));
        add(adds, r.at, l("ref"), Add::Int(to_i64(r.refused)));
        add(adds, r.at, l("wait"), Add::Int(to_i64(r.waited)));
        add(adds, r.at, l("wait_ms"), Add::Int(to_i64(r.wait_ms)));
    }
}

/// One provider's (or model's) LLM figures in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LlmFigures {
    /// Requests, hits and misses.
    pub requests: i64,
    /// Requests answered from the cache (providers only).
    pub hits: i64,
    /// Requests sent upstream (providers only).
    pub misses: i64,
    /// LLM spend, USD.
    pub cost: f64,
    /// Input tokens (providers only).
    pub prompt_tokens: i64,
    /// Output tokens (providers only).
    pub completion_tokens: i64,
}

/// One rate-limit key's figures in one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitFigures {
    /// Checks admitted.
    pub admitted: i64,
    /// Checks refused.
    pub refused: i64,
    /// `acquire` calls that waited.
    pub waited: i64,
    /// Milliseconds they waited.
    pub wait_ms: i64,
}

/// One period's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The period's first second.
    pub start: DateTime<Utc>,
    /// Per provider.
    pub providers: BTreeMap<String, LlmFigures>,
    /// Per model (requests and spend).
    pub models: BTreeMap<String, LlmFigures>,
    /// Per rate-limit key.
    pub limits: BTreeMap<String, LimitFigures>,
}

impl Bucket {
    /// LLM spend of every provider, USD.
    pub fn cost(&self) -> f64 {
        self.providers.values().map(|f| f.cost).sum()
    }

    /// Cache hits and misses of every provider.
    pub fn lookups(&self) -> (i64, i64) {
        self.providers
            .values()
            .fold((0, 0), |(h, m), f| (h + f.hits, m + f.misses))
    }

    /// `hits / (hits + misses)`; `None` without lookups.
    pub fn hit_rate(&self) -> Option<f64> {
        let (h, m) = self.lookups();
        (h + m > 0).then(|| h as f64 / (h + m) as f64)
    }

    /// Builds a bucket from its hash fields; unparsable values are reported, unknown measures
    /// or kinds (a newer writer's) skipped.
    pub(crate) fn from_fields(
        key: &str,
        start: DateTime<Utc>,
        fields: &HashMap<String, String>,
        malformed: &mut Vec<Malformed>,
    ) -> Self {
        let mut b = Bucket {
            start,
            ..Default::default()
        };
        let mut reader = FieldReader { key, malformed };
        for field in fields.keys() {
            let mut parts = field.splitn(3, ':');
            let (Some(measure), Some(kind), Some(name)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let name = name.to_owned();
            match kind {
                "p" | "m" => {
                    let map = if kind == "p" {
                        &mut b.providers
                    } else {
                        &mut b.models
                    };
                    let f = map.entry(name).or_default();
                    match measure {
                        "req" => f.requests = reader.int(fields, field),
                        "hit" => f.hits = reader.int(fields, field),
                        "miss" => f.misses = reader.int(fields, field),
                        "cost" => f.cost = reader.float(fields, field),
                        "tok_in" => f.prompt_tokens = reader.int(fields, field),
                        "tok_out" => f.completion_tokens = reader.int(fields, field),
                        _ => {}
                    }
                }
                "l" => {
                    let f = b.limits.entry(name).or_default();
                    match measure {
                        "adm" => f.admitted = reader.int(fields, field),
                        "ref" => f.refused = reader.int(fields, field),
                        "wait" => f.waited = reader.int(fields, field),
                        "wait_ms" => f.wait_ms = reader.int(fields, field),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        b
    }
}

/// The buckets of one window, one per period (empty periods included), oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The window read.
    pub window: HistoryWindow,
    /// Minute or hour buckets.
    pub resolution: Option<Resolution>,
    /// One per period of the window, oldest first; the last one is the current, partial one.
    pub buckets: Vec<Bucket>,
    /// Whether any bucket of the window exists in the store. False for a fleet of Python
    /// processes only (they write none), or before the first write: charts then fall back to
    /// what the reader saw since it started.
    pub found: bool,
}

impl Series {
    /// An empty window (no bucket found) at `now`.
    pub fn empty(window: HistoryWindow, now: DateTime<Utc>) -> Self {
        let buckets = window
            .bucket_starts(now)
            .into_iter()
            .map(|s| Bucket {
                start: epoch(s),
                ..Default::default()
            })
            .collect();
        Self {
            window,
            resolution: Some(window.resolution()),
            buckets,
            found: false,
        }
    }

    /// Summed LLM spend over the window, USD.
    pub fn cost(&self) -> f64 {
        self.buckets.iter().map(Bucket::cost).sum()
    }

    /// A rate-limit key's figures summed over the buckets that overlap the last `seconds`
    /// before `now` (at least the current bucket), with the seconds they cover (from the
    /// first one's start to `now`). Just after a minute or hour begins, the current bucket
    /// alone would hide what happened a moment ago, so the one before it counts too.
    pub fn limit_recent(
        &self,
        key: &str,
        seconds: f64,
        now: DateTime<Utc>,
    ) -> Option<(LimitFigures, i64)> {
        let step = self.resolution?.seconds();
        let last = self.buckets.len().checked_sub(1)?;
        let since = now.timestamp_millis() as f64 / 1000.0 - seconds;
        let first = self
            .buckets
            .iter()
            .position(|b| (b.start.timestamp() + step) as f64 > since)
            .unwrap_or(last)
            .min(last);
        let mut sum = LimitFigures::default();
        for b in &self.buckets[first..] {
            if let Some(f) = b.limits.get(key) {
                sum.admitted += f.admitted;
                sum.refused += f.refused;
                sum.waited += f.waited;
                sum.wait_ms += f.wait_ms;
            }
        }
        let covered = (now - self.buckets[first].start).num_seconds().max(1);
        Some((sum, covered))
    }

    /// Every rate-limit key seen in the window, by name.
    pub fn limit_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .buckets
            .iter()
            .flat_map(|b| b.limits.keys().cloned())
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Providers by spend over the window, highest first.
    pub fn providers_by_cost(&self) -> Vec<(String, f64)> {
        let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
        for b in &self.buckets {
            for (name, f) in &b.providers {
                *sums.entry(name).or_default() += f.cost;
            }
        }
        let mut v: Vec<(String, f64)> = sums.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

/// What a history read returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryRead {
    /// The buckets.
    pub series: Series,
    /// Fields that could not be parsed.
    pub malformed: Vec<Malformed>,
}

impl HistoryRead {
    /// The read of `window` from each of its periods, in order: the period's start (Unix
    /// seconds), its key and its stored fields (empty where no bucket exists). `malformed`
    /// holds what was found wrong before the fields were parsed. Both backends end here, so a
    /// series means the same whoever stored it.
    pub(crate) fn from_periods<F: std::borrow::Borrow<HashMap<String, String>>>(
        window: HistoryWindow,
        periods: impl IntoIterator<Item = (i64, String, F)>,
        mut malformed: Vec<Malformed>,
    ) -> Self {
        let mut found = false;
        let buckets = periods
            .into_iter()
            .map(|(start, key, fields)| {
                let fields = fields.borrow();
                found |= !fields.is_empty();
                Bucket::from_fields(&key, epoch(start), fields, &mut malformed)
            })
            .collect();
        HistoryRead {
            series: Series {
                window,
                resolution: Some(window.resolution()),
                buckets,
                found,
            },
            malformed,
        }
    }
}

/// Unix seconds as a time (the epoch itself for an impossible value).
pub(crate) fn epoch(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn windows_step_through_and_stop_at_the_ends() {
        assert_eq!(HistoryWindow::Hour1.longer(), HistoryWindow::Hours6);
        assert_eq!(HistoryWindow::Days30.longer(), HistoryWindow::Days30);
        assert_eq!(HistoryWindow::Minutes15.shorter(), HistoryWindow::Minutes15);
        assert_eq!(HistoryWindow::Hours24.shorter(), HistoryWindow::Hours6);
    }

    #[test]
    fn a_window_covers_its_span_ending_with_the_current_bucket() {
        let now = at("2026-12-01T15:04:30Z");
        let starts = HistoryWindow::Minutes15.bucket_starts(now);
        assert_eq!(starts.len(), 15);
        assert_eq!(
            *starts.last().unwrap(),
            at("2026-12-01T15:04:00Z").timestamp()
        );
        assert_eq!(starts[0], at("2026-12-01T14:50:00Z").timestamp());
        assert_eq!(HistoryWindow::Days30.bucket_starts(now).len(), 720);
    }

    #[test]
    fn additions_are_summed_per_bucket_and_field_without_zeros() {
        let r = LlmRequestRecord {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            prompt_tokens: 10,
            completion_tokens: 0,
            cost: 0.0,
            cache_hit: true,
            latency_ms: 1.0,
            saved_cost: 0.0,
            at: Some(at("2026-12-01T15:04:30Z")),
        };
        let mut adds = BucketAdds::new();
        request_adds(&[r.clone(), r], Utc::now(), &mut adds);
        assert_eq!(adds.len(), 2, "one minute and one hour bucket");
        let minute = &adds[&(Resolution::Minute, at("2026-12-01T15:04:00Z").timestamp())];
        assert_eq!(minute["hit:p:openai"], Add::Int(2));
        assert_eq!(minute["tok_in:p:openai"], Add::Int(20));
        assert!(!minute.contains_key("cost:p:openai"));
        assert!(!minute.contains_key("miss:p:openai"));
    }

    #[test]
    fn fields_parse_back_with_colons_in_names() {
        let fields: HashMap<String, String> = [
            (
                "ref:l:artemis:ratelimit:openai:x".to_string(),
                "3".to_string(),
            ),
            ("cost:p:openai".into(), "0.5".into()),
            ("req:p:openai".into(), "oops".into()),
            ("future:z:thing".into(), "1".into()),
        ]
        .into_iter()
        .collect();
        let mut malformed = Vec::new();
        let b = Bucket::from_fields("k", epoch(0), &fields, &mut malformed);
        assert_eq!(b.limits["artemis:ratelimit:openai:x"].refused, 3);
        assert_eq!(b.providers["openai"].cost, 0.5);
        assert_eq!(malformed.len(), 1, "{malformed:?}");
    }
}
