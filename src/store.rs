//! What every job's storage backend shares, so that each job (tracker, metrics, cache, limiter,
//! and those to come) can own its backends without owning the connection.
//!
//! - [`Store`]: the few questions any backend of any job answers (which backend, where, is it
//!   reachable, with which settings). Each job's store trait (`TrackerStore`, `MetricsStore`,
//!   …) extends it.
//! - [`RedisCore`]: the connection handle, the key space, the settings and the script runner
//!   that every job's Redis backend is built on. Cheap to clone: the jobs of one process share
//!   one connection through clones of one core.
//! - [`MemoryCore`]: the same for the in-process backends (key space, settings, and a
//!   connection state that is always [`ConnState::InProcess`]).

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Settings;
use crate::connection::{ConnState, Redis};
use crate::keys::KeySpace;

/// What any storage backend of any job tells about itself.
pub trait Store: Send + Sync {
    /// `redis`, `cluster` or `memory`.
    fn backend(&self) -> &'static str;
    /// Where the data lives, without credentials.
    fn endpoint(&self) -> String;
    /// Follows reachability (always [`ConnState::InProcess`] for memory).
    fn connection(&self) -> watch::Receiver<ConnState>;
    /// The settings the backend was opened with.
    fn settings(&self) -> &Settings;
    /// The Redis handle underneath, if any (its health, its probe); `None` in process.
    fn redis(&self) -> Option<&Redis> {
        None
    }
    /// Makes the next reads redo their SCAN-based discoveries instead of reusing what they
    /// found: the Python-written cards' SCAN (otherwise reused for its interval) runs again,
    /// and the bounded walks for metric names and rate-limit windows walk the whole keyspace
    /// once (otherwise one step per read), so a reader asked to read everything now (`r` in
    /// the dashboard) sees what Python wrote since. Nothing to forget in process.
    fn forget_scans(&self) {}
}

/// The shared part of every job's Redis backend: one connection (standalone or Cluster), the
/// key names, the settings, and the script runner.
#[derive(Debug, Clone)]
pub struct RedisCore {
    pub(crate) redis: Redis,
    pub(crate) keys: KeySpace,
    pub(crate) settings: Arc<Settings>,
    /// When [`Store::forget_scans`] was last called: a SCAN result from before it is not
    /// reused. Shared by the clones, so one call reaches every job.
    scans_forgotten_at: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl RedisCore {
    /// Connects now; fails within the connect timeout if Redis cannot be reached.
    pub async fn connect(settings: Settings) -> crate::Result<Self> {
        let redis = Redis::connect(&settings.redis).await?;
        Ok(Self::with_redis(redis, settings))
    }

    /// Connects in the background: usable at once, reporting [`crate::Error::Unavailable`]
    /// until Redis answers.
    pub fn connect_lazy(settings: Settings) -> crate::Result<Self> {
        let redis = Redis::connect_lazy(&settings.redis)?;
        Ok(Self::with_redis(redis, settings))
    }

    /// A core over an existing connection handle.
    pub fn with_redis(redis: Redis, settings: Settings) -> Self {
        Self {
            redis,
            keys: KeySpace::new(settings.prefixes.clone()),
            settings: Arc::new(settings),
            scans_forgotten_at: Arc::default(),
        }
    }

    /// Whether a SCAN made at `at` may still be reused: no [`Store::forget_scans`] since.
    pub(crate) fn scan_still_valid(&self, at: std::time::Instant) -> bool {
        self.scans_forgotten_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none_or(|forgotten| at > forgotten)
    }

    /// The `COUNT` of the bounded SCAN step a discovery (Python-written cards, metric names,
    /// rate-limit windows) advances per read: `tracker.scan_count_per_poll`.
    pub(crate) fn scan_count_per_poll(&self) -> usize {
        usize::try_from(self.settings.tracker.scan_count_per_poll).unwrap_or(usize::MAX)
    }

    /// The connection handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The key names in use.
    pub fn keys(&self) -> &KeySpace {
        &self.keys
    }

    /// Runs a script by EVALSHA within one command timeout, sending its source with EVAL
    /// (which caches it again) when the server answers NOSCRIPT: after a restart, a
    /// `SCRIPT FLUSH`, or on a Cluster node that has not seen it yet.
    pub(crate) async fn eval_script<K, A>(
        &self,
        script: &redis::Script,
        source: &'static str,
        keys: &[K],
        args: &[A],
    ) -> crate::Result<redis::Value>
    where
        K: redis::ToRedisArgs + Sync,
        A: redis::ToRedisArgs + Sync,
    {
        self.redis
            .run(|mut conn| async move {
                let mut evalsha = redis::cmd("EVALSHA");
                evalsha
                    .arg(script.get_hash())
                    .arg(keys.len())
                    .arg(keys)
                    .arg(args);
                match evalsha.query_async::<redis::Value>(&mut conn).await {
                    Err(e) if crate::Error::from_reply(&e).is_noscript() => {
                        tracing::debug!("script not cached on the server; sending its source");
                        let mut eval = redis::cmd("EVAL");
                        eval.arg(source).arg(keys.len()).arg(keys).arg(args);
                        eval.query_async(&mut conn).await
                    }
                    other => other,
                }
            })
            .await
    }
}

impl Store for RedisCore {
    fn backend(&self) -> &'static str {
        if self.redis.is_cluster() {
            "cluster"
        } else {
            "redis"
        }
    }

    fn endpoint(&self) -> String {
        self.redis.endpoint().to_owned()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.redis.state()
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn redis(&self) -> Option<&Redis> {
        Some(&self.redis)
    }

    fn forget_scans(&self) {
        *self
            .scans_forgotten_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(std::time::Instant::now());
    }
}

/// The shared part of every job's in-process backend.
#[derive(Debug, Clone)]
pub struct MemoryCore {
    pub(crate) keys: KeySpace,
    pub(crate) settings: Arc<Settings>,
    /// Kept so receivers never see a closed channel.
    state: Arc<watch::Sender<ConnState>>,
}

impl MemoryCore {
    /// A core for in-process backends opened with `settings`.
    pub fn new(settings: Settings) -> Self {
        Self {
            keys: KeySpace::new(settings.prefixes.clone()),
            settings: Arc::new(settings),
            state: Arc::new(watch::channel(ConnState::InProcess).0),
        }
    }
}

impl Store for MemoryCore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn endpoint(&self) -> String {
        "in-process memory".into()
    }

    fn connection(&self) -> watch::Receiver<ConnState> {
        self.state.subscribe()
    }

    fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// Implements [`Store`] for a job's backend type by asking its `core` field.
macro_rules! delegate_store {
    ($ty:ty) => {
        impl $crate::store::Store for $ty {
            fn backend(&self) -> &'static str {
                $crate::store::Store::backend(&self.core)
            }
            fn endpoint(&self) -> String {
                $crate::store::Store::endpoint(&self.core)
            }
            fn connection(&self) -> tokio::sync::watch::Receiver<$crate::connection::ConnState> {
                $crate::store::Store::connection(&self.core)
            }
            fn settings(&self) -> &$crate::config::Settings {
                $crate::store::Store::settings(&self.core)
            }
            fn redis(&self) -> Option<&$crate::connection::Redis> {
                $crate::store::Store::redis(&self.core)
            }
        }
    };
}
pub(crate) use delegate_store;
