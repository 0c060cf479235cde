//! [`CachedClient`]: the cache in front of any [`LlmClient`].
//!
//! The path of one cacheable request:
//! 1. the in-process tier, if on;
//! 2. the in-process flight for its key: the first caller leads, identical concurrent callers
//!    wait for the leader's result (one lookup, at most one upstream call);
//! 3. the leader reads the entry; a hit is served, a corrupt or foreign entry is a miss;
//! 4. on a miss the leader takes the entry's lease in the store (`SET NX PX`), calls upstream,
//!    then writes the answer and releases the lease in one step. If another process holds the
//!    lease, the leader polls for that process's answer until the lease is gone (then tries to
//!    take it) or `lease_wait_ms` has passed (then calls upstream itself).
//!
//! When the store fails (Redis down, refused) the request goes straight upstream: the caller
//! never sees a cache error, and the next request tries the store again (the connection
//! reconnects in the background). Upstream errors are never stored: callers that were waiting
//! in this process for the failed call receive the same error (retrying is their decision, and
//! the error says whether it is retryable); processes waiting on the lease see it released
//! without an answer and one of them calls upstream itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::CacheStore;
use super::flight::{self, Flights, Role};
use super::recorder::{FlushPolicy, Recorder};
use super::tier::Tier;
use super::{
    CacheCount, CacheKey, CacheScope, LlmClient, LlmError, LlmRequest, LlmResponse, Lookup,
    PriceTable, entry, lock,
};
use crate::config::CacheSettings;
use crate::keys::{KeySpace, validate_name};
use crate::metrics::{LlmRequestRecord, Metrics};

/// Longest pause between two polls for another process's answer.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(50);
/// Unpriced model names remembered for the statistics.
const MAX_UNPRICED_NAMES: usize = 64;
/// Models whose upstream latency is tracked separately (the rest share the overall mean).
const MAX_LATENCY_MODELS: usize = 256;

/// Per-request cache controls.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CacheControl {
    /// Do not answer from the cache: always call upstream (the answer is still stored unless
    /// `skip_write`).
    pub skip_read: bool,
    /// Do not store the answer.
    pub skip_write: bool,
    /// TTL of the stored answer instead of `cache.ttl_seconds` (whole seconds, rounded up).
    pub ttl: Option<Duration>,
    /// Share answers only with requests of the same namespace. Namespaced entries are never
    /// shared with plain (Python-compatible) ones and can be invalidated together.
    pub namespace: Option<String>,
}

impl CacheControl {
    /// Always call upstream for this request (its answer is still stored).
    pub fn skip_read(mut self) -> Self {
        self.skip_read = true;
        self
    }

    /// Do not store this request's answer.
    pub fn skip_write(mut self) -> Self {
        self.skip_write = true;
        self
    }

    /// Store the answer for `ttl` instead of `cache.ttl_seconds` (rounded up to whole seconds;
    /// zero is refused when the request is made).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Share answers only with requests of `namespace` (must pass
    /// [`validate_name`](crate::keys::validate_name)).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The provider was called (a miss, or a request that was not looked up).
    Upstream,
    /// The store (Redis or memory) had it.
    Store,
    /// The in-process tier had it.
    MemoryTier,
    /// An identical concurrent request in this process fetched it.
    Flight,
    /// Another process fetched it while this one waited on the lease.
    Peer,
}

impl Source {
    /// Whether the answer was had without calling the provider.
    pub fn is_hit(self) -> bool {
        self != Self::Upstream
    }
}

/// An answer and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The provider's answer, or the cached one (the same shape either way).
    pub response: LlmResponse,
    /// Where the answer came from; anything but [`Source::Upstream`] is a hit.
    pub source: Source,
    /// Whether the cache was consulted (false for bypassed and uncacheable requests).
    pub looked_up: bool,
    /// USD spent on this request (zero for a hit).
    pub cost_usd: f64,
    /// USD a hit saved (what the call would have cost).
    pub saved_usd: f64,
    /// Whether the model was in the price table (if not, both figures are zero).
    pub priced: bool,
    /// Wall time of the whole request, cache lookups and waits included.
    pub latency: Duration,
    /// The entry's key, when the request was cacheable.
    pub key: Option<CacheKey>,
}

/// Hits, by where they were served from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HitsBySource {
    /// Answered from the store (Redis, or memory for the in-memory backend).
    pub store: u64,
    /// Answered from the in-process tier.
    pub memory_tier: u64,
    /// Answered by an identical concurrent request of this process.
    pub flight: u64,
    /// Answered by another process while this one waited on its lease.
    pub peer: u64,
}

impl HitsBySource {
    /// All hits, whatever served them.
    pub fn total(&self) -> u64 {
        self.store + self.memory_tier + self.flight + self.peer
    }
}

/// This process's cache figures, like the original's `get_cache_stats` (same first four names)
/// plus money, time and error accounting.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CacheStats {
    /// Answers had without calling the provider (as the original counts them).
    pub cache_hits: u64,
    /// Answers that came from the provider (including bypassed requests).
    pub cache_misses: u64,
    /// `cache_hits + cache_misses` (failed requests are not counted).
    pub total_requests: u64,
    /// `100 × cache_hits / total_requests`, 0 before the first request.
    pub hit_rate_percent: f64,
    /// The hits, split by what served them.
    pub hits_by_source: HitsBySource,
    /// Misses that did not consult the cache (`skip_read`, uncacheable temperature, disabled).
    pub bypassed: u64,
    /// Cache failures hidden from callers: corrupt or foreign entries, store errors.
    pub errors: u64,
    /// Calls made to the wrapped client.
    pub upstream_calls: u64,
    /// Calls to the wrapped client that failed.
    pub upstream_errors: u64,
    /// Requests that returned an error to their caller.
    pub failed_requests: u64,
    /// USD spent on upstream calls, by the price table.
    pub cost_spent_usd: f64,
    /// USD that hits saved (what they would have cost upstream).
    pub cost_saved_usd: f64,
    /// Estimated: for each hit, this process's mean upstream latency for the model (or for all
    /// models, before the first call to it) minus the hit's own latency.
    pub time_saved_ms: f64,
    /// Answers whose model is not in the price table (priced at zero).
    pub unpriced_requests: u64,
    /// Names of the unpriced models, in name order (the first 64 distinct ones seen).
    pub unpriced_models: Vec<String>,
    /// Entries in the in-process tier now (0 when it is off).
    pub memory_tier_entries: usize,
    /// Bytes the in-process tier holds now (bounded by `cache.memory_tier_bytes`).
    pub memory_tier_bytes: u64,
    /// Request records the metrics writer could not keep up with.
    pub metrics_dropped: u64,
    /// Request records whose metrics write failed (e.g. Redis down).
    pub metrics_failed: u64,
}

#[derive(Default)]
struct StatsState {
    hits: HitsBySource,
    misses: u64,
    bypassed: u64,
    errors: u64,
    upstream_calls: u64,
    upstream_errors: u64,
    failed_requests: u64,
    spent: f64,
    saved: f64,
    time_saved_ms: f64,
    unpriced_requests: u64,
    unpriced_models: BTreeSet<String>,
    /// Upstream (calls, total ms) per requested model, and over all models.
    latency: HashMap<String, (u64, f64)>,
    latency_all: (u64, f64),
}

impl StatsState {
    fn mean_upstream_ms(&self, model: &str) -> Option<f64> {
        let (n, total) = self.latency.get(model).copied().unwrap_or(self.latency_all);
        (n > 0).then(|| total / n as f64)
    }
}

/// An LLM client with the response cache in front of it.
pub struct CachedClient<C> {
    inner: C,
    store: Arc<dyn CacheStore>,
    keys: KeySpace,
    settings: CacheSettings,
    prices: PriceTable,
    flights: Flights,
    tier: Option<Mutex<Tier>>,
    stats: Mutex<StatsState>,
    recorder: Recorder,
}

impl<C> std::fmt::Debug for CachedClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedClient")
            .field("backend", &self.store.backend())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Gives the lease back if the leader's future is dropped while holding it (its caller gave
/// up), so that neither this process's next leader nor other processes wait on a lease nobody
/// will release. Forgotten once `fetch_and_store` has released the lease itself.
struct LeaseGuard<'a> {
    store: &'a Arc<dyn CacheStore>,
    key: &'a CacheKey,
    token: &'a str,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, key, token) = (self.store.clone(), self.key.clone(), self.token.to_owned());
        rt.spawn(async move {
            if let Err(e) = store.cache_release_lease(&key, &token).await {
                tracing::debug!("cache lease of a cancelled request not released: {e}");
            }
        });
    }
}

enum PeerWait {
    Answer(LlmResponse),
    LeaseFree,
    TimedOut,
    StoreFailed,
}

impl<C: LlmClient> CachedClient<C> {
    /// Wraps `inner` with the cache in `store`, configured by the store's settings (`cache`
    /// section), recording every request through `metrics` (unless `cache.record_metrics`
    /// is off).
    pub fn new(inner: C, store: Arc<dyn CacheStore>, metrics: Metrics) -> crate::Result<Self> {
        let settings = store.settings().cache.clone();
        Self::with_settings(inner, store, metrics, settings)
    }

    /// Wraps `inner` with explicit cache settings. Fails only on an unreadable price file.
    pub fn with_settings(
        inner: C,
        store: Arc<dyn CacheStore>,
        metrics: Metrics,
        settings: CacheSettings,
    ) -> crate::Result<Self> {
        let prices = PriceTable::load(settings.price_file.as_deref())?;
        let tier = (settings.memory_tier_bytes > 0).then(|| {
            Mutex::new(Tier::new(
                settings.memory_tier_bytes,
                Duration::from_secs(settings.memory_tier_ttl_seconds),
            ))
        });
        let policy = FlushPolicy {
            every: Duration::from_millis(settings.metrics_flush_ms.max(1)),
            records: usize::try_from(settings.metrics_flush_records.max(1)).unwrap_or(usize::MAX),
        };
        Ok(Self {
            recorder: Recorder::new(metrics, policy),
            keys: KeySpace::new(store.settings().prefixes.clone()),
            inner,
            store,
            settings,
            prices,
            flights: Flights::default(),
            tier,
            stats: Mutex::default(),
        })
    }

    /// The handle request metrics are recorded through.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        self.recorder.metrics()
    }

    /// Replaces the price table.
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// The wrapped client.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// The cache settings this client was built with.
    pub fn settings(&self) -> &CacheSettings {
        &self.settings
    }

    /// The price table that turns usage into spend and savings.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The key `request` is cached under (in `namespace`, if given).
    pub fn key_for(
        &self,
        request: &LlmRequest,
        namespace: Option<&str>,
    ) -> Result<CacheKey, LlmError> {
        CacheKey::for_request(request, namespace)
    }

    /// Whether requests like this one are cached at all.
    pub fn is_cacheable(&self, request: &LlmRequest) -> bool {
        self.settings.enabled
            && (self.settings.cache_nonzero_temperature || request.temperature.as_f64() <= 0.0)
    }

    /// Completes `request` through the cache, with per-request controls.
    pub async fn complete_with(
        &self,
        request: &LlmRequest,
        control: &CacheControl,
    ) -> Result<Completion, LlmError> {
        let started = Instant::now();
        let invalid = |m: String| LlmError::InvalidRequest(m);
        if let Some(ns) = &control.namespace {
            validate_name("cache namespace", ns).map_err(|e| invalid(e.to_string()))?;
        }
        if control.ttl.is_some_and(|t| t.is_zero()) {
            return Err(invalid("cache TTL override must be above zero".into()));
        }
        if !self.is_cacheable(request) {
            let result = self.upstream(request).await;
            return self.finish(request, result, Source::Upstream, false, None, started);
        }
        let key = CacheKey::for_request(request, control.namespace.as_deref())?;
        if control.skip_read {
            let result = self.fetch_and_store(request, &key, control, None).await;
            return self.finish(request, result, Source::Upstream, false, Some(key), started);
        }
        if let Some(hit) = self.tier_get(&key) {
            return self.finish(
                request,
                Ok(hit),
                Source::MemoryTier,
                true,
                Some(key),
                started,
            );
        }
        loop {
            match self.flights.join(&key) {
                Role::Leader(leader) => {
                    let (result, source) = self.lead(request, &key, control).await;
                    let shared = Arc::new(result);
                    leader.finish(shared.clone());
                    let result = Arc::try_unwrap(shared).unwrap_or_else(|s| (*s).clone());
                    return self.finish(request, result, source, true, Some(key), started);
                }
                Role::Follower(rx) => {
                    if let Some(shared) = flight::follow(rx).await {
                        let result = (*shared).clone();
                        return self.finish(
                            request,
                            result,
                            Source::Flight,
                            true,
                            Some(key),
                            started,
                        );
                    }
                    // The leader's caller gave up before it finished: go again, maybe leading.
                }
            }
        }
    }

    /// This process's figures.
    pub fn stats(&self) -> CacheStats {
        let s = self.lock_stats();
        let hits = s.hits.total();
        let total = hits + s.misses;
        let (tier_entries, tier_bytes) = self
            .tier
            .as_ref()
            .map(|t| {
                let t = lock(t);
                (t.entries(), t.bytes())
            })
            .unwrap_or_default();
        CacheStats {
            cache_hits: hits,
            cache_misses: s.misses,
            total_requests: total,
            hit_rate_percent: if total > 0 {
                hits as f64 * 100.0 / total as f64
            } else {
                0.0
            },
            hits_by_source: s.hits.clone(),
            bypassed: s.bypassed,
            errors: s.errors,
            upstream_calls: s.upstream_calls,
            upstream_errors: s.upstream_errors,
            failed_requests: s.failed_requests,
            cost_spent_usd: s.spent,
            cost_saved_usd: s.saved,
            time_saved_ms: s.time_saved_ms,
            unpriced_requests: s.unpriced_requests,
            unpriced_models: s.unpriced_models.iter().cloned().collect(),
            memory_tier_entries: tier_entries,
            memory_tier_bytes: tier_bytes,
            metrics_dropped: self.recorder.counters.dropped.load(Ordering::Relaxed),
            metrics_failed: self.recorder.counters.failed.load(Ordering::Relaxed),
        }
    }

    /// Writes the request records being coalesced now (see `cache.metrics_flush_ms`) and
    /// waits until the metrics of every request so far have been written, kept in the outage
    /// buffer, or have failed. Call it before a clean exit: dropping the client also writes
    /// them, but in the background.
    pub async fn flush_metrics(&self) {
        self.recorder.flush().await;
    }

    /// Counts the entries of `scope` in the store.
    pub async fn count(&self, scope: &CacheScope) -> crate::Result<CacheCount> {
        self.store.cache_count(scope).await
    }

    /// Deletes the entries of `scope` from the store and from this process's tier. Other
    /// processes' tiers keep serving theirs for at most `memory_tier_ttl_seconds`.
    pub async fn invalidate(&self, scope: &CacheScope) -> crate::Result<u64> {
        scope.validate()?;
        if let Some(tier) = &self.tier {
            lock(tier).remove_scope(scope);
        }
        self.store.cache_invalidate(scope).await
    }

    // ---- the request path ----

    /// The leader's part: read the entry, else fetch (with the lease) and store.
    async fn lead(
        &self,
        request: &LlmRequest,
        key: &CacheKey,
        control: &CacheControl,
    ) -> (Result<LlmResponse, LlmError>, Source) {
        match self.store.cache_get(key).await {
            Ok(Lookup::Found(bytes)) => match entry::decode(&bytes) {
                Ok(response) => {
                    self.tier_put(key, &response, bytes.len(), None);
                    return (Ok(response), Source::Store);
                }
                Err(why) => self.unusable_entry(key, &why),
            },
            Ok(Lookup::Missing) => {}
            Ok(Lookup::Unreadable(why)) => self.unusable_entry(key, &why),
            Err(e) => {
                self.store_failed("read", &e);
                return (self.upstream(request).await, Source::Upstream);
            }
        }
        if control.skip_write {
            // Nothing will be shared, so neither take the lease nor wait for others.
            return (self.upstream(request).await, Source::Upstream);
        }
        self.fetch_with_lease(request, key, control).await
    }

    async fn fetch_with_lease(
        &self,
        request: &LlmRequest,
        key: &CacheKey,
        control: &CacheControl,
    ) -> (Result<LlmResponse, LlmError>, Source) {
        let token = format!("{:032x}", rand::random::<u128>());
        let lease_ttl = Duration::from_millis(self.settings.lease_ms);
        let deadline = super::later(
            Instant::now(),
            Duration::from_millis(self.settings.lease_wait_ms),
        );
        loop {
            match self.store.cache_try_lease(key, &token, lease_ttl).await {
                Ok(true) => {
                    let guard = LeaseGuard {
                        store: &self.store,
                        key,
                        token: &token,
                    };
                    let result = self
                        .fetch_and_store(request, key, control, Some(&token))
                        .await;
                    std::mem::forget(guard);
                    return (result, Source::Upstream);
                }
                Ok(false) => {}
                Err(e) => {
                    self.store_failed("lease", &e);
                    return (self.upstream(request).await, Source::Upstream);
                }
            }
            match self.wait_for_peer(key, deadline).await {
                PeerWait::Answer(response) => return (Ok(response), Source::Peer),
                PeerWait::LeaseFree => continue,
                PeerWait::TimedOut => {
                    let result = self.fetch_and_store(request, key, control, None).await;
                    return (result, Source::Upstream);
                }
                PeerWait::StoreFailed => return (self.upstream(request).await, Source::Upstream),
            }
        }
    }

    /// Polls for the answer another process is fetching, with growing pauses.
    async fn wait_for_peer(&self, key: &CacheKey, deadline: Instant) -> PeerWait {
        let mut pause = Duration::from_millis(5);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return PeerWait::TimedOut;
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(MAX_POLL_PAUSE);
            let poll = match self.store.cache_poll(key).await {
                Ok(p) => p,
                Err(e) => {
                    self.store_failed("poll", &e);
                    return PeerWait::StoreFailed;
                }
            };
            if let Lookup::Found(bytes) = &poll.entry
                && let Ok(response) = entry::decode(bytes)
            {
                self.tier_put(key, &response, bytes.len(), None);
                return PeerWait::Answer(response);
            }
            // Missing or still unusable: the holder will overwrite it; once the lease is gone
            // without an answer, it is this process's turn.
            if !poll.leased {
                return PeerWait::LeaseFree;
            }
        }
    }

    /// Calls upstream and stores a successful answer (releasing `lease` either way).
    async fn fetch_and_store(
        &self,
        request: &LlmRequest,
        key: &CacheKey,
        control: &CacheControl,
        lease: Option<&str>,
    ) -> Result<LlmResponse, LlmError> {
        let result = self.upstream(request).await;
        match &result {
            Ok(response) if !control.skip_write => {
                let bytes = entry::encode(response);
                let ttl = control
                    .ttl
                    .unwrap_or(Duration::from_secs(self.settings.ttl_seconds));
                match self.store.cache_put(key, &bytes, ttl, lease).await {
                    Ok(()) => self.tier_put(key, response, bytes.len(), Some(ttl)),
                    Err(e) => self.store_failed("write", &e),
                }
            }
            _ => {
                if let Some(token) = lease
                    && let Err(e) = self.store.cache_release_lease(key, token).await
                {
                    self.store_failed("lease release", &e);
                }
            }
        }
        result
    }

    async fn upstream(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let started = Instant::now();
        let result = self.inner.complete(request).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut s = self.lock_stats();
        s.upstream_calls += 1;
        match &result {
            Ok(_) => {
                if s.latency.len() < MAX_LATENCY_MODELS || s.latency.contains_key(&request.model) {
                    let per_model = s.latency.entry(request.model.clone()).or_default();
                    per_model.0 += 1;
                    per_model.1 += ms;
                }
                s.latency_all.0 += 1;
                s.latency_all.1 += ms;
            }
            Err(_) => s.upstream_errors += 1,
        }
        result
    }

    /// Accounts for one finished request (statistics, metrics) and builds its [`Completion`].
    fn finish(
        &self,
        request: &LlmRequest,
        result: Result<LlmResponse, LlmError>,
        source: Source,
        looked_up: bool,
        key: Option<CacheKey>,
        started: Instant,
    ) -> Result<Completion, LlmError> {
        let latency = started.elapsed();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                self.lock_stats().failed_requests += 1;
                return Err(e);
            }
        };
        let price = self
            .prices
            .cost(&response.model, &request.model, &response.usage);
        let value = price.unwrap_or(0.0);
        let hit = source.is_hit();
        let (cost, saved) = if hit { (0.0, value) } else { (value, 0.0) };
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let model = if response.model.is_empty() {
            &request.model
        } else {
            &response.model
        };
        {
            let mut s = self.lock_stats();
            match source {
                Source::Upstream => {
                    s.misses += 1;
                    s.spent += cost;
                    s.bypassed += u64::from(!looked_up);
                }
                Source::Store => s.hits.store += 1,
                Source::MemoryTier => s.hits.memory_tier += 1,
                Source::Flight => s.hits.flight += 1,
                Source::Peer => s.hits.peer += 1,
            }
            if hit {
                s.saved += saved;
                if let Some(mean) = s.mean_upstream_ms(&request.model) {
                    s.time_saved_ms += (mean - latency_ms).max(0.0);
                }
            }
            if price.is_none() {
                s.unpriced_requests += 1;
                if s.unpriced_models.len() < MAX_UNPRICED_NAMES
                    && s.unpriced_models.insert(model.clone())
                {
                    tracing::warn!(
                        "model {:?} is not in the price table: its requests are priced at 0",
                        model.escape_debug().to_string()
                    );
                }
            }
        }
        if self.settings.record_metrics {
            let provider = if response.provider.is_empty() {
                self.inner.provider()
            } else {
                &response.provider
            };
            // Tokens count what was spent: a hit consumed none.
            let (prompt_tokens, completion_tokens) = if hit {
                (0, 0)
            } else {
                (
                    response.usage.prompt_tokens,
                    response.usage.completion_tokens,
                )
            };
            self.recorder.record(LlmRequestRecord {
                provider: provider.to_owned(),
                model: model.clone(),
                prompt_tokens,
                completion_tokens,
                cost,
                cache_hit: hit,
                latency_ms,
                saved_cost: saved,
                at: Some(chrono::Utc::now()),
            });
        }
        Ok(Completion {
            response,
            source,
            looked_up,
            cost_usd: cost,
            saved_usd: saved,
            priced: price.is_some(),
            latency,
            key,
        })
    }

    // ---- helpers ----

    fn lock_stats(&self) -> std::sync::MutexGuard<'_, StatsState> {
        lock(&self.stats)
    }

    fn tier_get(&self, key: &CacheKey) -> Option<LlmResponse> {
        let tier = self.tier.as_ref()?;
        let mut t = lock(tier);
        t.get(key, Instant::now()).map(|r| (*r).clone())
    }

    fn tier_put(
        &self,
        key: &CacheKey,
        response: &LlmResponse,
        bytes: usize,
        ttl: Option<Duration>,
    ) {
        if let Some(tier) = &self.tier {
            let ttl = ttl.unwrap_or(Duration::MAX);
            lock(tier).put(key, Arc::new(response.clone()), bytes, ttl, Instant::now());
        }
    }

    fn unusable_entry(&self, key: &CacheKey, why: &str) {
        self.lock_stats().errors += 1;
        tracing::warn!(
            "cache entry {} is unusable ({why}); treating it as a miss and overwriting it",
            key.entry_key(&self.keys)
        );
    }

    fn store_failed(&self, what: &str, e: &crate::Error) {
        self.lock_stats().errors += 1;
        if e.is_outage() {
            tracing::debug!("cache {what} skipped, the store is unavailable: {e}");
        } else {
            tracing::warn!("cache {what} failed (answering without the cache): {e}");
        }
    }
}

#[async_trait::async_trait]
impl<C: LlmClient> LlmClient for CachedClient<C> {
    fn provider(&self) -> &str {
        self.inner.provider()
    }

    async fn complete(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.complete_with(request, &CacheControl::default())
            .await
            .map(|c| c.response)
    }
}
