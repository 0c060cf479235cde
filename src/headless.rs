//! `artemis-top --once`: the dashboard's other face, for scripts, CI and agents.
//!
//! It reads the same snapshot the dashboard draws, through the same [`Feed`], and prints it
//! as a [`crate::report`]: plain text ([`crate::report::text`]) or versioned JSON (one
//! [`Report`] per line, schema in `schema/snapshot.schema.json`), once or `count` times
//! `interval` apart. The text report is sanitized like the screen (data from Redis can hold
//! escape sequences); the JSON is exact (serde escapes control characters). This module only
//! drives the reads and the output; it shares nothing with the dashboard but what lies below
//! both ([`crate::feed`], [`crate::report`], the formatting helpers).
//!
//! Failure is one line for stderr ([`HeadlessError`]) and a non-zero exit code, never a
//! half-written report: each snapshot is formatted in full before it is written.

use std::io::Write;

use std::time::Duration;

use chrono::Utc;

use crate::backend::Backend;
use crate::config::Settings;
use crate::connection::ConnState;
use crate::feed::{Feed, StorageFeed};
use crate::report::{self, Report};
use crate::text;

/// Output format of a headless report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The plain-text report ([`crate::report::text`]).
    #[default]
    Text,
    /// One JSON object per snapshot, one per line (JSON lines).
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown format {:?} (expected text or json)",
                text::sanitize(other)
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// What to print and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadlessOptions {
    /// Text or JSON.
    pub format: Format,
    /// Snapshots to print (at least 1).
    pub count: u32,
    /// Pause between two snapshots.
    pub interval: Duration,
}

impl Default for HeadlessOptions {
    fn default() -> Self {
        Self {
            format: Format::Text,
            count: 1,
            interval: Duration::from_secs(1),
        }
    }
}

/// Why a headless run failed; `Display` is one line for stderr.
#[derive(Debug, thiserror::Error)]
pub enum HeadlessError {
    /// Redis could not be reached (connect failed, or the connection is down).
    #[error("{reason}")]
    Unreachable {
        /// Where Redis was expected, without credentials.
        endpoint: String,
        /// One line naming the endpoint once.
        reason: String,
    },
    /// Redis answered but the read failed (permissions, unexpected reply).
    #[error("reading from {endpoint} failed: {reason}")]
    Read {
        /// Where the read went, without credentials.
        endpoint: String,
        /// What Redis answered, sanitized.
        reason: String,
    },
    /// The options cannot be honoured (e.g. `--count 0`).
    #[error("invalid options: {0}")]
    Options(String),
    /// stdout could not be written (e.g. the reader of a pipe went away).
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl HeadlessError {
    /// Suggested process exit code: 1 for Redis trouble, 2 for bad options (like a config
    /// error), 74 (EX_IOERR) when the output could not be written.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Unreachable { .. } | Self::Read { .. } => 1,
            Self::Options(_) => 2,
            Self::Output(_) => 74,
        }
    }

    /// The reader of stdout is gone (`artemis-top --once | head`): not worth an error message.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Prints `opts.count` snapshots read from `backend` to `out`.
pub async fn run(
    backend: Backend,
    settings: &Settings,
    opts: HeadlessOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), HeadlessError> {
    let feed = StorageFeed::new(backend);
    run_feed(&feed, settings, opts, out).await
}

/// [`run`] over any [`Feed`].
pub async fn run_feed(
    feed: &dyn Feed,
    settings: &Settings,
    opts: HeadlessOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), HeadlessError> {
    if opts.count == 0 {
        return Err(HeadlessError::Options("--count must be at least 1".into()));
    }
    let endpoint = text::sanitize(&feed.endpoint()).into_owned();
    wait_for_first_attempt(feed, settings).await;
    for i in 0..opts.count {
        if i > 0 {
            tokio::time::sleep(opts.interval).await;
        }
        let snap = feed
            .snapshot(Utc::now(), crate::metrics::HistoryWindow::default())
            .await
            .map_err(|e| {
                let reason = text::sanitize(&e.to_string()).into_owned();
                if e.is_outage() {
                    HeadlessError::Unreachable {
                        reason: outage_reason(&e, &endpoint),
                        endpoint: endpoint.clone(),
                    }
                } else {
                    HeadlessError::Read {
                        endpoint: endpoint.clone(),
                        reason,
                    }
                }
            })?;
        let rendered = match opts.format {
            Format::Json => {
                let mut s = serde_json::to_string(&Report::from_snapshot(&snap))
                    .map_err(|e| HeadlessError::Output(std::io::Error::other(e)))?;
                s.push('\n');
                s
            }
            Format::Text => {
                let mut s = report::text::render(&snap, snap.taken_at);
                if opts.count > 1 && i + 1 < opts.count {
                    s.push('\n');
                }
                s
            }
        };
        out.write_all(rendered.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

/// One line saying why Redis cannot be reached, naming the endpoint once.
fn outage_reason(e: &crate::Error, endpoint: &str) -> String {
    let line = match e {
        crate::Error::Unavailable { detail, .. } if detail.starts_with("cannot reach") => {
            detail.clone()
        }
        crate::Error::Unavailable { detail, .. } => {
            format!("cannot reach Redis at {endpoint}: {detail}")
        }
        other => other.to_string(),
    };
    text::sanitize(&line).into_owned()
}

/// A lazily connecting backend starts in `Connecting`: give its first attempt the connect
/// timeout to finish, so that `--once` reports the real outcome instead of "not yet".
async fn wait_for_first_attempt(feed: &dyn Feed, settings: &Settings) {
    let mut conn = feed.connection();
    let limit = settings.redis.connect_timeout() + Duration::from_millis(500);
    let _ = tokio::time::timeout(limit, async {
        loop {
            if !matches!(*conn.borrow_and_update(), ConnState::Connecting) {
                return;
            }
            if conn.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}
