//! [`RateLimiter`], the handle applications use: it names keys (generic or preset), applies the
//! failure policy when Redis is unreachable, waits for admission, keeps the registry of limits
//! in force up to date, and hands out [`Reservation`]s that settle token estimates.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use super::MemoryLimiter;
use super::{
    Headroom, Limit, LimitError, LimiterStore, Limits, Refusal, Source, Verdict, ceil_to_millis,
    find_preset,
};
use crate::config::{FailurePolicy, LimiterSettings, Settings};
use crate::keys::{KeySpace, validate_name};
use crate::limiter::LimitUsage;
use crate::store::MemoryCore;

/// How often a process re-records a key's limits in the registry (it also does so after every
/// outage, since a restarted server may have lost the registry).
const REGISTRY_REFRESH: Duration = Duration::from_secs(300);
/// Keys remembered as registered before the memo is cleared (bounds memory with per-user keys).
const REGISTERED_MEMO_MAX: usize = 10_000;
/// How often a checking process refreshes its entry in the presence set (and reads how many
/// processes there are), alongside a check.
const PRESENCE_REFRESH: Duration = Duration::from_secs(1);
/// How long admissions, refusals and waits are counted in process before they are written to
/// the metrics' time buckets as one write: a busy limiter costs one metrics write per second,
/// not one per check.
const ACTIVITY_FLUSH: Duration = Duration::from_secs(1);

/// What the limiter did per key and minute since the last flush.
#[derive(Debug, Default)]
struct ActivityTally {
    counts: HashMap<(String, i64), crate::metrics::LimitActivityRecord>,
    /// A flush is scheduled: the next event only adds to the counts.
    flush_pending: bool,
}

/// The answer to one [`RateLimiter::check`].
#[must_use = "a refused request must not be sent; an admitted one holds a reservation"]
#[derive(Debug)]
pub enum Decision {
    /// Admitted and recorded; reconcile the reservation once the call's real usage is known.
    Admitted(Reservation),
    /// Not admitted now; nothing was recorded.
    Refused(Refusal),
}

impl Decision {
    /// Whether the request was admitted (and may be sent).
    pub fn is_admitted(&self) -> bool {
        matches!(self, Self::Admitted(_))
    }

    /// The refusal, `None` when admitted.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(r) => Some(r),
            Self::Admitted(_) => None,
        }
    }

    /// The reservation to settle, `None` when refused.
    pub fn into_reservation(self) -> Option<Reservation> {
        match self {
            Self::Admitted(r) => Some(r),
            Self::Refused(_) => None,
        }
    }
}

/// How long [`RateLimiter::acquire_with`] waits, and how much it spreads retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireOptions {
    /// Give up after this long (`limiter.acquire_timeout` by default).
    pub timeout: Duration,
    /// Each retry waits the retry-after plus a random delay up to this (`limiter.acquire_jitter_ms`).
    pub max_jitter: Duration,
}

impl AcquireOptions {
    /// The options `limiter.acquire_timeout` and `limiter.acquire_jitter_ms` give; a timeout
    /// that is not a valid duration falls back to 120 s.
    pub fn from_settings(s: &LimiterSettings) -> Self {
        Self {
            timeout: Duration::try_from_secs_f64(s.acquire_timeout)
                .unwrap_or(Duration::from_secs(120)),
            max_jitter: Duration::from_millis(s.acquire_jitter_ms),
        }
    }

    /// The same options with another deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// An admitted request's hold on its window: the request slot, and the tokens it reserved.
///
/// Settle it once the call is over: [`Reservation::reconcile`] with the tokens really used
/// (returns the difference, or charges the excess), [`Reservation::release`] if the call failed
/// (returns every reserved token), or [`Reservation::keep`] to leave the estimate charged.
///
/// Dropped without settling (a cancelled task, a panic), the estimate stays charged until it
/// leaves the window: the limiter cannot know whether the call reached the provider, and
/// over-counting for one window is the side that never lets the provider's limit be exceeded.
/// The request slot itself is always kept: the request was (or may have been) sent.
#[must_use = "reconcile the reservation with the real usage, release it if the call failed, or keep it"]
pub struct Reservation {
    store: Option<Arc<dyn LimiterStore>>,
    /// This process's own record of the admission (the local window), settled alongside.
    mirror: Option<Arc<MemoryLimiter>>,
    limit: Limit,
    id: String,
    reserved: u64,
    at_us: i64,
    requests_used: u64,
    tokens_used: u64,
    source: Source,
    settled: bool,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("key", &self.limit.key)
            .field("id", &self.id)
            .field("reserved", &self.reserved)
            .field("at_us", &self.at_us)
            .field("requests_used", &self.requests_used)
            .field("tokens_used", &self.tokens_used)
            .field("source", &self.source)
            .field("settled", &self.settled)
            .finish()
    }
}

impl Reservation {
    /// The tokens held (0 when the key has no token limit).
    pub fn tokens_reserved(&self) -> u64 {
        self.reserved
    }

    /// Where the admission was decided.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The admission time by the deciding clock (the Redis server's for [`Source::Store`]),
    /// epoch microseconds; this is the request's score in the window.
    pub fn admitted_at_us(&self) -> i64 {
        self.at_us
    }

    /// [`Self::admitted_at_us`] as a UTC time (the epoch when out of range).
    pub fn admitted_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.at_us).unwrap_or_default()
    }

    /// Requests in the window including this one.
    pub fn requests_used(&self) -> u64 {
        self.requests_used
    }

    /// Tokens in the window including this reservation.
    pub fn tokens_used(&self) -> u64 {
        self.tokens_used
    }

    /// The limited key this reservation holds a slot in.
    pub fn limit(&self) -> &Limit {
        &self.limit
    }

    /// The unique id of the request in its window.
    pub fn request_id(&self) -> &str {
        &self.id
    }

    /// Replaces the reserved estimate by the tokens the call really used: the difference goes
    /// back to the window at once (or, if the call used more, is charged). If the request has
    /// already left the window there is nothing to settle. On error (Redis unreachable) the
    /// estimate stays charged until it leaves the window.
    pub async fn reconcile(mut self, used_tokens: u64) -> Result<(), LimitError> {
        self.settled = true;
        if self.limit.limits.tokens.is_none() || used_tokens == self.reserved {
            return Ok(());
        }
        if let Some(mirror) = &self.mirror {
            mirror
                .limit_reconcile(&self.limit, &self.id, self.reserved, used_tokens)
                .await
                .map_err(LimitError::Store)?;
        }
        let Some(store) = &self.store else {
            return Ok(());
        };
        store
            .limit_reconcile(&self.limit, &self.id, self.reserved, used_tokens)
            .await
            .map_err(LimitError::Store)
    }

    /// The call failed without using tokens: every reserved token goes back.
    pub async fn release(self) -> Result<(), LimitError> {
        self.reconcile(0).await
    }

    /// Leaves the estimate charged (e.g. the usage is unknown).
    pub fn keep(mut self) {
        self.settled = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled && self.reserved > 0 {
            tracing::debug!(
                key = %self.limit.key,
                reserved = self.reserved,
                "rate-limit reservation dropped without reconcile: its estimate stays charged until it leaves the window"
            );
        }
    }
}

struct Inner {
    store: Arc<dyn LimiterStore>,
    local: Arc<MemoryLimiter>,
    keys: KeySpace,
    settings: LimiterSettings,
    nonce: u64,
    counter: AtomicU64,
    registered: Mutex<HashMap<String, (Instant, Limits)>>,
    degraded: AtomicBool,
    /// This process's id in the presence set.
    instance: String,
    /// Limiter processes seen recently, as last read (1 until Redis was reached).
    peers: AtomicU64,
    /// When the presence set was last refreshed.
    presence_at: Mutex<Option<Instant>>,
    /// Where admissions, refusals and waits are recorded (none: not counted).
    activity_sink: std::sync::OnceLock<crate::metrics::Metrics>,
    activity: Mutex<ActivityTally>,
}

/// The rate limiter. Cheap to clone; clones share the local fallback window and the registry
/// memo.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("failure_policy", &self.inner.settings.failure_policy)
            .field("presets", &self.inner.settings.presets.len())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter over `store`, configured by the store's settings.
    pub fn new(store: Arc<dyn LimiterStore>) -> Self {
        let settings = store.settings().clone();
        Self::with_store(store, &settings)
    }

    /// A limiter over any limiter store (key prefixes and limiter settings from `settings`).
    pub fn with_store(store: Arc<dyn LimiterStore>, settings: &Settings) -> Self {
        let local = MemoryLimiter::new(MemoryCore::new(Settings {
            prefixes: settings.prefixes.clone(),
            limiter: settings.limiter.clone(),
            ..Settings::default()
        }));
        Self {
            inner: Arc::new(Inner {
                store,
                local: Arc::new(local),
                keys: KeySpace::new(settings.prefixes.clone()),
                settings: settings.limiter.clone(),
                nonce: rand::random(),
                counter: AtomicU64::new(0),
                registered: Mutex::new(HashMap::new()),
                degraded: AtomicBool::new(false),
                instance: format!("{:016x}", rand::random::<u64>()),
                peers: AtomicU64::new(1),
                presence_at: Mutex::new(None),
                activity_sink: std::sync::OnceLock::new(),
                activity: Mutex::new(ActivityTally::default()),
            }),
        }
    }

    /// Counts this limiter's admissions, refusals and waits per key and writes them, about once
    /// a second, into the metrics' time buckets through `metrics` (its outage buffer and replay
    /// guard), so dashboards chart rate-limit use over time. Only the first call takes effect.
    pub fn record_activity_into(&self, metrics: crate::metrics::Metrics) {
        let _ = self.inner.activity_sink.set(metrics);
    }

    /// Adds to the key's counts of the current minute and schedules a flush if none is.
    fn count_activity(&self, key: &str, admitted: u64, refused: u64, waited: Option<Duration>) {
        let Some(metrics) = self.inner.activity_sink.get() else {
            return;
        };
        let now = Utc::now();
        let minute = crate::metrics::Resolution::Minute.bucket_start(now);
        let schedule = {
            let mut tally = self
                .inner
                .activity
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let r = tally
                .counts
                .entry((key.to_owned(), minute))
                .or_insert_with(|| crate::metrics::LimitActivityRecord {
                    key: key.to_owned(),
                    at: now,
                    admitted: 0,
                    refused: 0,
                    waited: 0,
                    wait_ms: 0,
                });
            r.admitted += admitted;
            r.refused += refused;
            if let Some(w) = waited {
                r.waited += 1;
                r.wait_ms += u64::try_from(w.as_millis()).unwrap_or(u64::MAX);
            }
            !std::mem::replace(&mut tally.flush_pending, true)
        };
        if !schedule {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let metrics = metrics.clone();
        let inner = self.inner.clone();
        runtime.spawn(async move {
            tokio::time::sleep(ACTIVITY_FLUSH).await;
            let records: Vec<_> = {
                let mut tally = inner.activity.lock().unwrap_or_else(|p| p.into_inner());
                tally.flush_pending = false;
                tally.counts.drain().map(|(_, r)| r).collect()
            };
            if let Err(e) = metrics.track_limit_activity(records).await {
                tracing::warn!(error = %e, "cannot record rate-limit activity in the metrics");
            }
        });
    }

    /// The limiter settings in force (failure policy, `acquire` timing, presets).
    pub fn settings(&self) -> &LimiterSettings {
        &self.inner.settings
    }

    /// The generic limit of the original's `RedisRateLimiter`: key
    /// `artemis:ratelimit:<resource>:<identifier>`.
    pub fn limit(
        &self,
        resource: &str,
        identifier: &str,
        limits: Limits,
    ) -> Result<Limit, LimitError> {
        validate_name("resource", resource)?;
        validate_name("identifier", identifier)?;
        limits.validate()?;
        Ok(Limit {
            key: self.inner.keys.ratelimit(resource, identifier),
            resource: resource.to_owned(),
            identifier: identifier.to_owned(),
            limits,
        })
    }

    /// The preset limit of `model` at `provider` (for `openai` and `anthropic` exactly the
    /// original's table, the model matched exactly; for other providers the longest model-id
    /// prefix in `limiter.presets`), in the original's preset key
    /// `artemis:ratelimit:<provider>:<provider>:<model>:<identifier>`, resource
    /// `<provider>:<model>`. The provider is spelled as in the matching preset, so keys agree
    /// whatever case the caller used.
    pub fn preset(
        &self,
        provider: &str,
        model: &str,
        identifier: &str,
    ) -> Result<Limit, LimitError> {
        validate_name("model", model)?;
        validate_name("identifier", identifier)?;
        let preset =
            find_preset(&self.inner.settings.presets, provider, model).ok_or_else(|| {
                LimitError::NoPreset {
                    provider: provider.escape_debug().take(80).collect(),
                    model: model.escape_debug().take(80).collect(),
                }
            })?;
        validate_name("provider", &preset.provider)?;
        let window = Duration::try_from_secs_f64(preset.window_seconds).map_err(|_| {
            LimitError::InvalidLimits(format!(
                "preset {}/{} has an invalid window",
                preset.provider, preset.model_prefix
            ))
        })?;
        let limits = Limits {
            requests: preset.requests_per_window,
            tokens: preset.tokens_per_window,
            window,
        };
        limits.validate()?;
        Ok(Limit {
            key: self
                .inner
                .keys
                .ratelimit_preset(&preset.provider, model, identifier),
            resource: format!("{}:{model}", preset.provider),
            identifier: identifier.to_owned(),
            limits,
        })
    }

    fn next_id(&self) -> String {
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:x}", self.inner.nonce)
    }

    /// One atomic check of `limit` for a request reserving `tokens` (ignored when the key has
    /// no token limit): admitted and recorded, or refused with nothing recorded.
    ///
    /// Every admission is also recorded in this process's own window (the local one), and a
    /// request is sent to Redis only if that window has room: so this process never exceeds
    /// the limit in any window, whichever side decided its admissions. While Redis is
    /// unreachable the failure policy decides; `local` then admits up to this process's share
    /// of the limit (`limiter.local_share`), counting its own admissions of the window.
    pub async fn check(&self, limit: &Limit, tokens: u64) -> Result<Decision, LimitError> {
        let decision = self.check_once(limit, tokens).await;
        match &decision {
            Ok(Decision::Admitted(_)) => self.count_activity(&limit.key, 1, 0, None),
            Ok(Decision::Refused(_)) => self.count_activity(&limit.key, 0, 1, None),
            Err(_) => {}
        }
        decision
    }

    async fn check_once(&self, limit: &Limit, tokens: u64) -> Result<Decision, LimitError> {
        let charged = limit.charged(tokens);
        if let Some(token_limit) = limit.limits.tokens
            && charged > token_limit
        {
            return Err(too_large(limit, charged, token_limit));
        }
        let id = self.next_id();
        let local = &self.inner.local;
        // This process's own admissions already fill the window: no other process's view can
        // change that, so refuse here.
        let gate = local.check_with(limit, &limit.limits, charged, &id);
        if !matches!(gate, Verdict::Admitted { .. }) {
            return self.decide(limit, gate, id, charged, Source::Local);
        }
        let outcome = match self.ensure_registered(limit).await {
            Err(e) => Err(e),
            Ok(()) => {
                let (verdict, ()) = tokio::join!(
                    self.inner.store.limit_check(limit, charged, &id),
                    self.refresh_presence()
                );
                verdict
            }
        };
        match outcome {
            Ok(verdict) => {
                self.leave_degraded();
                match verdict {
                    Verdict::Admitted { at_us, .. } => local.restamp(limit, &id, at_us),
                    _ => local.remove(limit, &id),
                }
                self.decide(limit, verdict, id, charged, Source::Store)
            }
            Err(e) if e.is_outage() => {
                self.enter_degraded(&e);
                match self.inner.settings.failure_policy {
                    // The admission stays in the local window: this process still never
                    // sends more than the limit in a window.
                    FailurePolicy::Open => Ok(Decision::Admitted(Reservation {
                        store: None,
                        mirror: Some(local.clone()),
                        limit: limit.clone(),
                        id,
                        reserved: charged,
                        at_us: super::memory::now_us(),
                        requests_used: 0,
                        tokens_used: 0,
                        source: Source::FailOpen,
                        settled: true,
                    })),
                    FailurePolicy::Local => {
                        local.remove(limit, &id);
                        let verdict = self.local_share_check(limit, charged, &id);
                        self.decide(limit, verdict, id, charged, Source::Local)
                    }
                    FailurePolicy::Closed => {
                        local.remove(limit, &id);
                        Err(LimitError::Unavailable(e))
                    }
                }
            }
            Err(e) => {
                local.remove(limit, &id);
                Err(LimitError::Store(e))
            }
        }
    }

    /// The share of every limit this process uses alone while Redis is unreachable:
    /// `limiter.local_share`, else 1/N with N the limiter processes seen recently.
    pub fn local_share(&self) -> f64 {
        self.inner
            .settings
            .local_share
            .unwrap_or_else(|| 1.0 / self.inner.peers.load(Ordering::Relaxed).max(1) as f64)
    }

    /// The limits the `local` policy enforces for `limit`: ⌊share × limit⌋ requests and
    /// tokens (0 means none can be admitted locally).
    pub fn local_limits(&self, limit: &Limit) -> (u64, Option<u64>) {
        let share = self.local_share();
        // The epsilon keeps 0.25 × 20 at 5 and 1/3 × 30 at 10 despite binary fractions.
        let part = |n: u64| ((n as f64) * share + 1e-9).floor().min(n as f64) as u64;
        (part(limit.limits.requests), limit.limits.tokens.map(part))
    }

    fn local_share_check(&self, limit: &Limit, charged: u64, id: &str) -> Verdict {
        let (requests, tokens) = self.local_limits(limit);
        let none_left = requests == 0 || tokens.is_some_and(|t| charged > t || t == 0);
        if none_left {
            // Nothing this request needs fits in the share: refuse until Redis decides again.
            let usage = self.inner.local.usage_now(limit);
            return Verdict::Refused {
                at_us: usage.at_us,
                requests_used: usage.requests_used,
                tokens_used: usage.tokens_used,
                retry_after_us: limit.limits.window_us().min(1_000_000),
                exceeded: if requests == 0 {
                    super::Exceeded::Requests
                } else {
                    super::Exceeded::Tokens
                },
            };
        }
        let shared = Limits {
            requests,
            tokens,
            window: limit.limits.window,
        };
        self.inner.local.check_with(limit, &shared, charged, id)
    }

    /// Refreshes this process's entry in the presence set at most every
    /// [`PRESENCE_REFRESH`] and keeps the count of processes seen; errors only leave the last
    /// count in place.
    async fn refresh_presence(&self) {
        {
            let mut at = self
                .inner
                .presence_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if at.is_some_and(|t| t.elapsed() < PRESENCE_REFRESH) {
                return;
            }
            *at = Some(Instant::now());
        }
        match self.inner.store.limit_presence(&self.inner.instance).await {
            Ok(n) => self.inner.peers.store(n.max(1), Ordering::Relaxed),
            Err(e) => tracing::debug!(error = %e, "cannot refresh the limiter presence set"),
        }
    }

    fn decide(
        &self,
        limit: &Limit,
        verdict: Verdict,
        id: String,
        charged: u64,
        source: Source,
    ) -> Result<Decision, LimitError> {
        let l = &limit.limits;
        match verdict {
            Verdict::Admitted {
                at_us,
                requests_used,
                tokens_used,
            } => {
                let (store, mirror): (Option<Arc<dyn LimiterStore>>, _) = match source {
                    Source::Local => (None, Some(self.inner.local.clone())),
                    _ => (
                        Some(self.inner.store.clone()),
                        Some(self.inner.local.clone()),
                    ),
                };
                Ok(Decision::Admitted(Reservation {
                    store,
                    mirror,
                    limit: limit.clone(),
                    id,
                    reserved: charged,
                    at_us,
                    requests_used,
                    tokens_used,
                    source,
                    settled: charged == 0,
                }))
            }
            Verdict::Refused {
                at_us,
                requests_used,
                tokens_used,
                retry_after_us,
                exceeded,
            } => {
                let retry_after = ceil_to_millis(retry_after_us);
                Ok(Decision::Refused(Refusal {
                    resource: limit.resource.clone(),
                    identifier: limit.identifier.clone(),
                    key: limit.key.clone(),
                    limit: l.requests,
                    window_seconds: l.window_seconds(),
                    current_count: requests_used,
                    remaining: l.requests.saturating_sub(requests_used),
                    retry_after,
                    retry_after_seconds: retry_after.as_secs_f64(),
                    tokens_limit: l.tokens,
                    tokens_used: l.tokens.map(|_| tokens_used),
                    tokens_remaining: l.tokens.map(|t| t.saturating_sub(tokens_used)),
                    tokens_requested: charged,
                    exceeded,
                    source,
                    checked_at_us: at_us,
                }))
            }
            Verdict::TooLarge => Err(too_large(limit, charged, l.tokens.unwrap_or(0))),
        }
    }

    /// Waits until `limit` admits a request reserving `tokens`, up to the default timeout
    /// (`limiter.acquire_timeout`). See [`Self::acquire_with`].
    pub async fn acquire(&self, limit: &Limit, tokens: u64) -> Result<Reservation, LimitError> {
        self.acquire_with(
            limit,
            tokens,
            AcquireOptions::from_settings(&self.inner.settings),
        )
        .await
    }

    /// Waits until admitted: after each refusal it sleeps the retry-after plus a random jitter,
    /// then checks again. Gives up with [`LimitError::DeadlineExceeded`] at the deadline, at
    /// once if only the request count stands in the way and its retry-after lies beyond the
    /// deadline (nothing but a reset can open that slot earlier; released tokens can).
    ///
    /// Cancellation: dropping the future is safe at any point. If it is dropped while a check
    /// is in flight, that check may still be admitted by the server: one slot (and its tokens)
    /// is then charged for one window without a caller, which errs on the safe side.
    ///
    /// With `failure_policy = closed` an unreachable Redis is waited out too (with backoff),
    /// ending in [`LimitError::Unavailable`] at the deadline.
    pub async fn acquire_with(
        &self,
        limit: &Limit,
        tokens: u64,
        options: AcquireOptions,
    ) -> Result<Reservation, LimitError> {
        let start = Instant::now();
        let deadline = start + options.timeout;
        let mut outage_backoff = Duration::from_millis(50);
        let mut waited = false;
        let waited_for = |waited: bool| waited.then(|| start.elapsed());
        loop {
            let wait = match self.check(limit, tokens).await {
                Ok(Decision::Admitted(r)) => {
                    if waited {
                        self.count_activity(&limit.key, 0, 0, waited_for(waited));
                    }
                    return Ok(r);
                }
                Ok(Decision::Refused(refusal)) => {
                    let now = Instant::now();
                    let remaining = deadline.saturating_duration_since(now);
                    if remaining.is_zero()
                        || (refusal.exceeded.requests_only() && refusal.retry_after > remaining)
                    {
                        if waited {
                            self.count_activity(&limit.key, 0, 0, waited_for(waited));
                        }
                        return Err(LimitError::DeadlineExceeded {
                            timeout: options.timeout,
                            waited: now - start,
                            refusal: Box::new(refusal),
                        });
                    }
                    refusal.retry_after + jitter(options.max_jitter)
                }
                Err(LimitError::Unavailable(e)) => {
                    if Instant::now() >= deadline {
                        return Err(LimitError::Unavailable(e));
                    }
                    let w = outage_backoff + jitter(options.max_jitter);
                    outage_backoff = (outage_backoff * 2).min(Duration::from_secs(1));
                    w
                }
                Err(e) => return Err(e),
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(wait.min(remaining)).await;
            waited = true;
        }
    }

    /// The key's use now, read-only: nothing is recorded, pruned or refreshed. While Redis is
    /// unreachable under the `local` policy, the local window's figures.
    pub async fn headroom(&self, limit: &Limit) -> Result<Headroom, LimitError> {
        let (usage, source) = match self.inner.store.limit_usage(limit).await {
            Ok(u) => (u, Source::Store),
            Err(e)
                if e.is_outage() && self.inner.settings.failure_policy == FailurePolicy::Local =>
            {
                (self.inner.local.limit_usage(limit).await?, Source::Local)
            }
            Err(e) => return Err(LimitError::Store(e)),
        };
        let l = &limit.limits;
        Ok(Headroom {
            key: limit.key.clone(),
            resource: limit.resource.clone(),
            identifier: limit.identifier.clone(),
            window_seconds: l.window_seconds(),
            requests_limit: l.requests,
            requests_used: usage.requests_used,
            requests_remaining: l.requests.saturating_sub(usage.requests_used),
            tokens_limit: l.tokens,
            tokens_used: l.tokens.map(|_| usage.tokens_used),
            tokens_remaining: l.tokens.map(|t| t.saturating_sub(usage.tokens_used)),
            source,
        })
    }

    /// Empties the key's window (requests and tokens), in Redis and in the local fallback.
    pub async fn reset(&self, limit: &Limit) -> Result<(), LimitError> {
        self.inner.local.limit_reset(limit).await?;
        self.inner.store.limit_reset(limit).await?;
        Ok(())
    }

    /// Resets the key and removes it from the registry (the dashboard stops showing it until
    /// the next check registers it again).
    pub async fn forget(&self, limit: &Limit) -> Result<(), LimitError> {
        self.reset(limit).await?;
        self.memo().remove(&limit.key);
        self.inner.store.limit_unregister(limit).await?;
        Ok(())
    }

    /// Headroom of every registered window and every unregistered one found under the prefix
    /// (what the dashboard shows).
    pub async fn headroom_all(&self) -> crate::Result<Vec<LimitUsage>> {
        Ok(self.inner.store.read_limits().await?.limits)
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Limits)>> {
        self.inner
            .registered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Records the key's limits in the registry once per process (and again every
    /// [`REGISTRY_REFRESH`], after an outage, or when the limits change). Only an unreachable
    /// server is reported: the check then goes straight to the failure policy instead of
    /// waiting for a second failure. Other errors (an ACL that denies HSET, OOM) must not stop
    /// limiting; the entry is written on a later check.
    async fn ensure_registered(&self, limit: &Limit) -> crate::Result<()> {
        if let Some((at, limits)) = self.memo().get(&limit.key)
            && *limits == limit.limits
            && at.elapsed() < REGISTRY_REFRESH
        {
            return Ok(());
        }
        match self.inner.store.limit_register(limit).await {
            Ok(()) => {
                let mut memo = self.memo();
                if memo.len() >= REGISTERED_MEMO_MAX {
                    memo.clear();
                }
                memo.insert(limit.key.clone(), (Instant::now(), limit.limits));
                Ok(())
            }
            // A server that is up but refuses writes (OOM at maxmemory) may still run the
            // check: Redis lets a script that has started writing (the prune) finish. Let the
            // check decide; a READONLY replica refuses the check too and the policy applies.
            Err(e) if e.is_outage() && !matches!(e, crate::Error::Refused { .. }) => Err(e),
            Err(e) => {
                tracing::debug!(key = %limit.key, error = %e, "cannot record the limit in the registry");
                Ok(())
            }
        }
    }

    fn enter_degraded(&self, e: &crate::Error) {
        self.memo().clear();
        if !self.inner.degraded.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %e,
                policy = ?self.inner.settings.failure_policy,
                "rate limiter storage unreachable; applying the failure policy"
            );
        }
    }

    fn leave_degraded(&self) {
        if self.inner.degraded.swap(false, Ordering::AcqRel) {
            tracing::info!("rate limiter storage reachable again");
        }
    }
}

fn too_large(limit: &Limit, requested: u64, token_limit: u64) -> LimitError {
    LimitError::TooLarge {
        resource: limit.resource.clone(),
        requested,
        limit: token_limit,
        window_seconds: limit.limits.window_seconds(),
    }
}

fn jitter(max: Duration) -> Duration {
    let max_us = max.as_micros() as u64;
    if max_us == 0 {
        return Duration::ZERO;
    }
    Duration::from_micros(rand::rng().random_range(0..=max_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limiter::Exceeded;

    fn limiter() -> RateLimiter {
        RateLimiter::new(Arc::new(MemoryLimiter::new(MemoryCore::new(
            Settings::default(),
        ))))
    }

    #[test]
    fn preset_keys_reproduce_the_original() {
        let l = limiter();
        let k = l.preset("openai", "gpt-4o", "default").unwrap();
        assert_eq!(k.key(), "artemis:ratelimit:openai:openai:gpt-4o:default");
        assert_eq!(k.resource(), "openai:gpt-4o");
        assert_eq!(k.limits().requests, 100);
        let k = l
            .preset("Anthropic", "claude-sonnet-4-5-20250929", "u1")
            .unwrap();
        assert_eq!(
            k.key(),
            "artemis:ratelimit:anthropic:anthropic:claude-sonnet-4-5-20250929:u1"
        );
        // The original matches the model exactly: a dated id is "another Anthropic model".
        assert_eq!(k.limits().requests, 30);
        assert!(matches!(
            l.preset("mistral", "large", "default"),
            Err(LimitError::NoPreset { .. })
        ));
        assert!(l.preset("openai", "gpt{x}", "default").is_err());
        let k = l
            .limit(
                "search",
                "default",
                Limits::requests(5, Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!(k.key(), "artemis:ratelimit:search:default");
    }

    #[test]
    fn local_limits_are_the_floor_of_the_share() {
        let with_share = |share: Option<f64>| {
            let mut settings = Settings::default();
            settings.limiter.local_share = share;
            let store = Arc::new(MemoryLimiter::new(MemoryCore::new(settings.clone())));
            RateLimiter::with_store(store, &settings)
        };
        let limits = |r, t| Limits::requests(r, Duration::from_secs(2)).with_tokens(t);
        let l = with_share(Some(0.25));
        let k = l.limit("s", "d", limits(20, 1_000)).unwrap();
        assert_eq!(l.local_limits(&k), (5, Some(250)));
        let l = with_share(Some(1.0 / 3.0));
        let k = l.limit("s", "d", limits(30, 10)).unwrap();
        assert_eq!(l.local_limits(&k), (10, Some(3)));
        let k = l.limit("s", "d", limits(2, 10)).unwrap();
        assert_eq!(l.local_limits(&k).0, 0);
        // Without a setting: alone until other processes are seen.
        let l = with_share(None);
        assert_eq!(l.local_share(), 1.0);
    }

    #[tokio::test]
    async fn memory_backend_limits_and_reports() {
        let l = limiter();
        let k = l
            .limit(
                "t",
                "default",
                Limits::requests(2, Duration::from_secs(60)).with_tokens(100),
            )
            .unwrap();
        let a = l.check(&k, 60).await.unwrap().into_reservation().unwrap();
        assert_eq!(a.source(), Source::Store);
        let refused = l.check(&k, 50).await.unwrap();
        let r = refused.refusal().unwrap();
        assert_eq!(r.exceeded, Exceeded::Tokens);
        assert_eq!(r.tokens_remaining, Some(40));
        assert!(r.retry_after > Duration::from_secs(59));
        a.reconcile(10).await.unwrap();
        let b = l.check(&k, 50).await.unwrap().into_reservation().unwrap();
        b.keep();
        let h = l.headroom(&k).await.unwrap();
        assert_eq!((h.requests_used, h.tokens_used), (2, Some(60)));
        assert!(matches!(
            l.check(&k, 101).await,
            Err(LimitError::TooLarge { .. })
        ));
        let all = l.headroom_all().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].requests_used, 2);
        l.reset(&k).await.unwrap();
        assert_eq!(l.headroom(&k).await.unwrap().requests_used, 0);
    }
}
