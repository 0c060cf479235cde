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
pub mod snapshot;
pub mod storage;
pub mod tracker;
pub mod tui;

pub use error::{Error, Result};
