//! artemis: the Redis core of Artemis LLM pipelines (LLM response cache, pipeline tracker,
//! sliding-window rate limiter, metrics), wire-compatible with the Python original, and the
//! data side of the `artemis-top` dashboard.
//!
//! Module map (see `docs/ARCHITECTURE.md`):
//! - [`config`]: layered settings; [`keys`]: every Redis key name; [`connection`]: the Redis
//!   handle; [`storage`]: the one interface the four jobs use, over Redis or memory;
//! - the four jobs: [`tracker`], [`metrics`], [`cache`], [`limiter`]; [`buffer`]: the outage
//!   buffer their writes go through while Redis is away;
//! - [`model`]: the Python wire documents; [`snapshot`]: what the dashboard shows;
//! - [`demo`]: the built-in simulator behind `--demo` and `artemis-top simulate`.
//!
//! # Example
//!
//! One pipeline stage: report progress, wait for rate-limit headroom, ask the model through
//! the cache, record what it cost. Every write goes through one outage buffer, so the stage
//! keeps running (and nothing is lost) while Redis is away.
//!
//! ```no_run
//! use artemis::buffer::OutageBuffer;
//! use artemis::cache::{CacheControl, CachedClient, LlmClient, LlmRequest, Message};
//! use artemis::limiter::RateLimiter;
//! use artemis::metrics::Metrics;
//! use artemis::model::{PipelineStatus, StageStatus};
//! use artemis::tracker::{StageUpdate, Tracker};
//!
//! async fn analyse(card: &str, provider: impl LlmClient) -> Result<String, Box<dyn std::error::Error>> {
//!     // Defaults < config file < REDIS_* / ARTEMIS_* environment, as artemis-top reads them.
//!     let env: Vec<(String, String)> = std::env::vars().collect();
//!     let file = artemis::config::choose_file(None, &|k| std::env::var(k).ok());
//!     let settings = artemis::config::load(&file, &env, &Vec::new())?;
//!     // Lazy: starts even if Redis is down, and reconnects by itself.
//!     let storage = artemis::storage::open_redis_lazy(settings)?;
//!
//!     let buffer = OutageBuffer::new(storage.clone(), storage.settings().tracker.outage_buffer);
//!     let tracker = Tracker::with_buffer(storage.clone(), buffer.clone());
//!     let metrics = Metrics::with_buffer(storage.clone(), buffer);
//!     let llm = CachedClient::new(provider, storage.clone())?.with_metrics(metrics);
//!     let limiter = RateLimiter::new(storage);
//!
//!     tracker.start_pipeline(card, 8, serde_json::Map::new()).await?;
//!     tracker
//!         .update_stage(card, "analysis", StageUpdate::new(StageStatus::Running).progress(10))
//!         .await?;
//!     // Requests and tokens per minute for this model (prefix-matched preset), per team.
//!     let limit = limiter.preset("anthropic", "claude-sonnet-4-5-20250929", "team-a")?;
//!     let slot = limiter.acquire(&limit, 4_000).await?;
//!     let request = LlmRequest::new(
//!         "claude-sonnet-4-5-20250929",
//!         vec![Message::user(format!("Analyse card {card}"))],
//!     )
//!     .max_tokens(2_000);
//!     let done = llm.complete_with(&request, &CacheControl::default()).await?;
//!     slot.reconcile(done.response.usage.total_tokens).await?;
//!     tracker
//!         .update_stage(card, "analysis", StageUpdate::new(StageStatus::Completed).progress(100))
//!         .await?;
//!     tracker.complete_pipeline(card, PipelineStatus::Completed, None).await?;
//!     Ok(done.response.content)
//! }
//! ```

pub mod buffer;
pub mod cache;
pub mod check;
pub mod cli;
pub mod config;
pub mod connection;
pub mod demo;
pub mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod headless;
pub mod keys;
pub mod limiter;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod redact;
pub mod snapshot;
pub mod storage;
pub mod tracker;
pub mod tui;

pub use error::{Error, Result};
