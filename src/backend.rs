//! The four jobs' stores over one connection, assembled above the jobs: what a reader of the
//! whole system (the snapshot, the dashboard, the simulator) holds.
//!
//! Each job owns its backends (`tracker::{RedisTracker, MemoryTracker}`, …); this module only
//! puts one of each side by side over a shared [`RedisCore`] or [`MemoryCore`], so adding a job
//! means adding a field here, not touching the others.

use std::sync::Arc;

use tokio::sync::watch;

use crate::cache::{CacheStore, MemoryCache, RedisCache};
use crate::config::Settings;
use crate::connection::ConnState;
use crate::limiter::{LimiterStore, MemoryLimiter, RedisLimiter};
use crate::metrics::{MemoryMetrics, MetricsStore, RedisMetrics};
use crate::store::{MemoryCore, RedisCore, Store};
use crate::tracker::{MemoryTracker, RedisTracker, TrackerStore};

/// One store per job, all over the same connection (or the same process). Cheap to clone.
#[derive(Clone)]
pub struct Backend {
    core: Arc<dyn Store>,
    tracker: Arc<dyn TrackerStore>,
    metrics: Arc<dyn MetricsStore>,
    cache: Arc<dyn CacheStore>,
    limiter: Arc<dyn LimiterStore>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("backend", &self.core.backend())
            .field("endpoint", &self.core.endpoint())
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// Opens Redis (standalone or Cluster, as `settings` say) and waits for the first
    /// connection, bounded by the connect timeout.
    pub async fn redis(settings: Settings) -> crate::Result<Self> {
        Ok(Self::over_redis(RedisCore::connect(settings).await?))
    }

    /// Opens Redis in the background: usable at once, reporting
    /// [`crate::Error::Unavailable`] until Redis answers, and reconnecting by itself.
    pub fn redis_lazy(settings: Settings) -> crate::Result<Self> {
        Ok(Self::over_redis(RedisCore::connect_lazy(settings)?))
    }

    /// The four jobs over one Redis connection.
    pub fn over_redis(core: RedisCore) -> Self {
        Self {
            tracker: Arc::new(RedisTracker::new(core.clone())),
            metrics: Arc::new(RedisMetrics::new(core.clone())),
            cache: Arc::new(RedisCache::new(core.clone())),
            limiter: Arc::new(RedisLimiter::new(core.clone())),
            core: Arc::new(core),
        }
    }

    /// Empty in-process stores (the demo, single-process use).
    pub fn memory(settings: Settings) -> Self {
        let core = MemoryCore::new(settings);
        Self {
            tracker: Arc::new(MemoryTracker::new(core.clone())),
            metrics: Arc::new(MemoryMetrics::new(core.clone())),
            cache: Arc::new(MemoryCache::new(core.clone())),
            limiter: Arc::new(MemoryLimiter::new(core.clone())),
            core: Arc::new(core),
        }
    }

    /// The pipeline tracker's store.
    pub fn tracker(&self) -> &Arc<dyn TrackerStore> {
        &self.tracker
    }

    /// The metrics' store.
    pub fn metrics(&self) -> &Arc<dyn MetricsStore> {
        &self.metrics
    }

    /// The LLM response cache's store.
    pub fn cache(&self) -> &Arc<dyn CacheStore> {
        &self.cache
    }

    /// The rate limiter's store.
    pub fn limiter(&self) -> &Arc<dyn LimiterStore> {
        &self.limiter
    }
}

impl Store for Backend {
    fn backend(&self) -> &'static str {
        self.core.backend()
    }

    fn endpoint(&self) -> String {
        self.core.endpoint()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.core.connection()
    }

    fn settings(&self) -> &Settings {
        self.core.settings()
    }

    fn redis(&self) -> Option<&crate::connection::Redis> {
        self.core.redis()
    }

    fn forget_scans(&self) {
        self.core.forget_scans();
    }
}
