//! Where the library's `tracing` events go. Outage warnings, dropped writes and skipped data are
//! logged; a user must be able to see them without them ever corrupting the dashboard's screen.
//!
//! `ARTEMIS_TOP_LOG` sets the filter (`tracing_subscriber::EnvFilter` syntax). The default is
//! `warn,redis=error`: the Redis client logs a warning per failed node connection attempt, which
//! during a Cluster outage is hundreds of lines a second saying what our own outage warnings
//! already say once.
//! Headless modes log to stderr. The dashboard owns the terminal, so it logs only to the file
//! named by `ARTEMIS_TOP_LOG_FILE` (appended to), and not at all without one.

use std::path::Path;

// The environment variables read here (they are not settings) are named beside the settings.
pub use crate::config::{LOG_ENV, LOG_FILE_ENV};
/// The log filter when `ARTEMIS_TOP_LOG` is unset.
pub const DEFAULT_FILTER: &str = "warn,redis=error";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Stderr,
    /// The terminal belongs to the dashboard: only a log file, if one is named.
    FileOnly,
}

/// Installs the global subscriber. A bad filter or an unopenable log file is reported on stderr
/// (before the dashboard takes the terminal) and logging falls back to `warn` / off.
pub fn init(sink: Sink, env: &crate::config::Environment) {
    let spec = env.var(LOG_ENV).unwrap_or(DEFAULT_FILTER);
    let filter = tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!(
            "artemis-top: {LOG_ENV}={spec:?} is not a log filter ({e}); using {DEFAULT_FILTER:?}"
        );
        tracing_subscriber::EnvFilter::new(DEFAULT_FILTER)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let file = env.path(LOG_FILE_ENV);
    let result = match (file, sink) {
        (Some(path), _) => match open_log(path) {
            Ok(f) => builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init(),
            Err(e) => {
                eprintln!(
                    "artemis-top: cannot open log file {}: {e}; not logging",
                    path.display()
                );
                return;
            }
        },
        (None, Sink::Stderr) => {
            use std::io::IsTerminal;
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .try_init()
        }
        (None, Sink::FileOnly) => return,
    };
    // Only fails if a subscriber is already installed (e.g. by an embedding test).
    let _ = result;
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}
