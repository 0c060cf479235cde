//! The one interface through which the four core jobs reach storage, and its two
//! implementations: [`RedisStorage`] (standalone or Cluster: the product) and [`MemoryStorage`]
//! (the built-in demo, single-process use, and the limiter's local fallback).
//!
//! The interface is cut at the level of the core's own operations ("update a stage", "check a
//! limit"), not of Redis commands, so that a step that is atomic stays atomic on both backends:
//! Redis runs it as one script or pipeline, memory under one lock. Each job declares its part
//! of the interface in its own module ([`TrackerStore`], [`MetricsStore`], [`CacheStore`],
//! [`LimiterStore`]) and implements it for both backends next to it (`<job>/redis.rs`,
//! `<job>/memory.rs`).

mod memory;
mod redis;

pub use self::memory::MemoryStorage;
pub use self::redis::RedisStorage;

use std::sync::Arc;

use tokio::sync::watch;

use crate::cache::CacheStore;
use crate::config::Settings;
use crate::connection::ConnState;
use crate::limiter::LimiterStore;
use crate::metrics::MetricsStore;
use crate::tracker::TrackerStore;

/// Storage for all four jobs. Implemented by [`RedisStorage`] and [`MemoryStorage`].
pub trait Storage: TrackerStore + MetricsStore + CacheStore + LimiterStore + Send + Sync {
    /// `redis`, `cluster` or `memory`.
    fn backend(&self) -> &'static str;
    /// Where the data lives, without credentials.
    fn endpoint(&self) -> String;
    /// Follows reachability (always [`ConnState::InProcess`] for memory).
    fn connection(&self) -> watch::Receiver<ConnState>;
    /// The settings the backend was opened with.
    fn settings(&self) -> &Settings;
}

/// Opens the Redis backend described by `settings`, connecting in the background: the handle
/// is usable at once and reports [`crate::Error::Unavailable`] until Redis answers.
pub fn open_redis_lazy(settings: Settings) -> crate::Result<Arc<dyn Storage>> {
    Ok(Arc::new(RedisStorage::connect_lazy(settings)?))
}

/// Opens the Redis backend and waits for the first connection (bounded by the connect
/// timeout).
pub async fn open_redis(settings: Settings) -> crate::Result<Arc<dyn Storage>> {
    Ok(Arc::new(RedisStorage::connect(settings).await?))
}

/// Opens an empty in-process backend.
pub fn open_memory(settings: Settings) -> Arc<dyn Storage> {
    Arc::new(MemoryStorage::new(settings))
}
