//! artemis: the Redis core of Artemis LLM pipelines (LLM response cache, pipeline tracker,
//! sliding-window rate limiter, metrics), wire-compatible with the Python original, and the
//! data side of the `artemis-top` dashboard.
//!
//! # Getting going
//!
//! [`Artemis::from_env`] reads the settings like the Python original's `RedisConfig.from_env()`
//! (`REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`, …, plus `ARTEMIS_TOP_*` and the config file
//! `artemis-top` reads) and hands out the four jobs over one connection and one outage buffer;
//! [`Artemis::builder`] takes explicit settings or keeps everything in memory.
//!
//! One pipeline stage: report progress, wait for rate-limit headroom, ask the model through
//! the cache, record what it cost. Every write goes through the outage buffer, so the stage
//! keeps running (and nothing is lost) while Redis is away.
//!
//! ```no_run
//! use artemis::cache::{CacheControl, LlmClient, LlmRequest, Message};
//! use artemis::model::{PipelineStatus, StageStatus};
//! use artemis::tracker::StageUpdate;
//!
//! async fn analyse(card: &str, provider: impl LlmClient) -> Result<String, Box<dyn std::error::Error>> {
//!     // Lazy: starts even if Redis is down, and reconnects by itself.
//!     let artemis = artemis::Artemis::from_env().await?;
//!     let (tracker, limiter) = (artemis.tracker(), artemis.limiter());
//!     let llm = artemis.cached(provider)?;
//!
//!     tracker.start_pipeline(card, 8, serde_json::Map::new()).await?;
//!     tracker
//!         .update_stage(card, "analysis", StageUpdate::new(StageStatus::Running).progress(10))
//!         .await?;
//!     // Requests and tokens per minute for this model, per team.
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
//!
//! `examples/pipeline_stage.rs` is the same as a program (`cargo run --example pipeline_stage
//! -- --memory` runs it without Redis).
//!
//! # Module map
//!
//! (See `docs/ARCHITECTURE.md`.)
//! - The jobs, each owning its storage interface, its Redis and memory backends, its scripts and
//!   its read model: [`tracker`], [`metrics`], [`cache`], [`limiter`].
//! - Below them: [`config`] (layered settings), [`keys`] (every Redis key name), [`redact`]
//!   (secrets out of what is shown), [`connection`] (the Redis handle, reconnects, Cluster
//!   routing in [`connection::cluster`]), [`store`] (what every job's backend
//!   shares), [`buffer`] (the outage buffer), [`model`] (the Python wire documents),
//!   [`error`].
//! - Above them: [`backend`] (one store per job over one connection), [`client`] (the
//!   [`Artemis`] entry point), [`snapshot`] (the one picture every face renders), [`feed`] (what
//!   the faces read), [`report`] (the versioned `--once` report), [`demo`] (the built-in
//!   simulator).
//!
//! # Features
//!
//! `tui` (on by default) builds the `artemis-top` binary and its faces (the dashboard, `--once`,
//! the command line, `check`). Those modules are compiled into the library only for the binary
//! and its tests, are hidden from these docs and are not part of the API. A pipeline that only
//! wants the core builds with `default-features = false`: no ratatui, crossterm or clap.

#![warn(missing_docs)]

pub mod backend;
pub mod buffer;
pub mod cache;
pub mod client;
pub mod config;
pub mod connection;
pub mod demo;
pub mod error;
pub mod feed;
mod format;
pub mod keys;
pub mod limiter;
pub mod metrics;
pub mod model;
pub mod redact;
pub mod report;
pub mod snapshot;
pub mod store;
mod text;
pub mod tracker;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

// The binary's faces: public only so the binary and its tests reach them.
#[cfg(feature = "tui")]
#[doc(hidden)]
pub mod check;
#[cfg(feature = "tui")]
#[doc(hidden)]
pub mod cli;
#[cfg(feature = "tui")]
#[doc(hidden)]
pub mod headless;
#[cfg(feature = "tui")]
#[doc(hidden)]
pub mod logging;
#[cfg(feature = "tui")]
#[doc(hidden)]
pub mod tui;

pub use backend::Backend;
pub use client::{Artemis, ArtemisBuilder};
pub use error::{Error, Result};

/// The README's Rust examples, compiled as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
