//! The Redis backend's shared state. The job-specific operations are implemented beside each
//! job (`tracker/redis.rs`, `metrics/redis.rs`, …) on this type.

use tokio::sync::watch;

use crate::config::Settings;
use crate::connection::{ConnState, Redis};
use crate::keys::KeySpace;

use super::Storage;

/// Storage on a Redis server or Redis Cluster.
#[derive(Debug, Clone)]
pub struct RedisStorage {
    pub(crate) redis: Redis,
    pub(crate) keys: KeySpace,
    pub(crate) settings: std::sync::Arc<Settings>,
    /// The tracker's cached SCAN for Python-written cards.
    pub(crate) tracker: std::sync::Arc<crate::tracker::TrackerCache>,
    /// The metrics' cached SCAN for Python-written names.
    pub(crate) metrics_scan: std::sync::Arc<crate::metrics::redis::MetricsScanCache>,
}

impl RedisStorage {
    /// Connects now; fails within the connect timeout if Redis cannot be reached.
    pub async fn connect(settings: Settings) -> crate::Result<Self> {
        let redis = Redis::connect(&settings.redis).await?;
        Ok(Self::with_redis(redis, settings))
    }

    /// Connects in the background.
    pub fn connect_lazy(settings: Settings) -> crate::Result<Self> {
        let redis = Redis::connect_lazy(&settings.redis)?;
        Ok(Self::with_redis(redis, settings))
    }

    pub fn with_redis(redis: Redis, settings: Settings) -> Self {
        Self {
            redis,
            keys: KeySpace::new(settings.prefixes.clone()),
            settings: std::sync::Arc::new(settings),
            tracker: Default::default(),
            metrics_scan: Default::default(),
        }
    }

    /// The underlying connection handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

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

impl Storage for RedisStorage {
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
}
