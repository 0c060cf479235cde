//! The one entry point of a pipeline process: [`Artemis`] hands out the jobs (tracker, metrics,
//! rate limiter, LLM response cache) over one connection and one outage buffer, so that a
//! process's writes replay in the order it made them and nobody wires handles by hand.
//!
//! `Artemis::from_env()` reads the settings the way the Python original's
//! `RedisConfig.from_env()` does (`REDIS_*`), plus the `ARTEMIS_TOP_*` variables and the config
//! file `artemis-top` reads (any other `ARTEMIS_*` variable is the original's and is ignored); [`ArtemisBuilder`] takes explicit settings instead.

use std::path::PathBuf;

use crate::backend::Backend;
use crate::buffer::OutageBuffer;
use crate::cache::{CachedClient, LlmClient};
use crate::config::{self, Settings};
use crate::error::{Error, Result};
use crate::limiter::RateLimiter;
use crate::metrics::Metrics;
use crate::snapshot::{Snapshot, read_snapshot};
use crate::store::Store;
use crate::tracker::Tracker;

/// The jobs of one pipeline process, sharing one connection and one outage buffer. Cheap to
/// clone; clones share everything.
#[derive(Clone, Debug)]
pub struct Artemis {
    backend: Backend,
    buffer: OutageBuffer,
    tracker: Tracker,
    metrics: Metrics,
    limiter: RateLimiter,
}

impl Artemis {
    /// Settings from defaults < the config file (`ARTEMIS_TOP_CONFIG`, else
    /// `$XDG_CONFIG_HOME/artemis-top/config.toml`) < `REDIS_*` / `ARTEMIS_TOP_*` environment
    /// variables; connects in the background, so it starts even while Redis is down.
    pub async fn from_env() -> Result<Self> {
        Self::builder().build().await
    }

    /// Explicit settings, a config file, the in-memory backend, or waiting for the connection.
    pub fn builder() -> ArtemisBuilder {
        ArtemisBuilder::default()
    }

    /// The jobs over an already opened backend, with one outage buffer of the backend's
    /// `tracker.outage_buffer` size.
    pub fn over(backend: Backend) -> Self {
        let buffer = OutageBuffer::for_store(&backend);
        let metrics = Metrics::with_buffer(backend.metrics().clone(), buffer.clone());
        // The limiter's admissions, refusals and waits go into the metrics' time buckets, so
        // dashboards chart rate-limit use per key over time.
        let limiter = RateLimiter::new(backend.limiter().clone());
        limiter.record_activity_into(metrics.clone());
        Self {
            tracker: Tracker::with_buffer(backend.tracker().clone(), buffer.clone()),
            metrics,
            limiter,
            backend,
            buffer,
        }
    }

    /// The pipeline tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The metrics recorder.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The rate limiter.
    pub fn limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// `inner` with the response cache in front of it, recording its requests through this
    /// process's metrics (and so its outage buffer).
    pub fn cached<C: LlmClient>(&self, inner: C) -> Result<CachedClient<C>> {
        CachedClient::new(inner, self.backend.cache().clone(), self.metrics.clone())
    }

    /// Everything the dashboard shows, read now.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        read_snapshot(&self.backend, chrono::Utc::now()).await
    }

    /// The stores underneath.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The outage buffer every write goes through.
    pub fn buffer(&self) -> &OutageBuffer {
        &self.buffer
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        self.backend.settings()
    }
}

/// Builds an [`Artemis`]: by default exactly what [`Artemis::from_env`] does.
#[derive(Debug, Default)]
pub struct ArtemisBuilder {
    settings: Option<Settings>,
    config_file: Option<PathBuf>,
    in_memory: bool,
    wait_for_connection: bool,
}

impl ArtemisBuilder {
    /// Uses these settings as they are: no config file, no environment.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Reads this config file (it must exist) instead of the default one, under the
    /// environment variables.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Keeps everything in this process's memory (tests, single-process use, the demo).
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Waits for the first connection (bounded by the connect timeout) and fails if Redis
    /// cannot be reached, instead of connecting in the background.
    pub fn wait_for_connection(mut self) -> Self {
        self.wait_for_connection = true;
        self
    }

    /// Reads the settings and opens the backend.
    pub async fn build(self) -> Result<Artemis> {
        let settings = match self.settings {
            Some(s) => s,
            None => settings_from_env(self.config_file)?,
        };
        let backend = if self.in_memory {
            Backend::memory(settings)
        } else if self.wait_for_connection {
            Backend::redis(settings).await?
        } else {
            Backend::redis_lazy(settings)?
        };
        Ok(Artemis::over(backend))
    }
}

/// Defaults < config file < environment, as `artemis-top` reads them. Variables of others are
/// ignored whatever their bytes; one of ours that is not UTF-8 is a configuration error.
fn settings_from_env(config_file: Option<PathBuf>) -> Result<Settings> {
    let env = config::Environment::capture().map_err(|e| Error::Config(e.0))?;
    let file = config::choose_file(config_file.as_deref(), &env);
    config::load(&file, env.settings(), &Vec::new()).map_err(|e| Error::Config(e.0))
}
