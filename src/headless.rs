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
//! Failure is one line for stderr ([`HeadlessError`]) and a non-zero exit code. The text
//! report is formatted in full before it is written, so it is never half-written. The JSON
//! report from Redis is streamed ([`write_json`]): every read that can fail before the first
//! card (the metrics, the index, the SCAN, the sorting pass) is done before a byte is written,
//! so an unreachable Redis still prints nothing; a connection lost in the middle of the cards
//! leaves a line with no closing brace and no newline, which no JSON reader accepts, and the
//! exit code is non-zero.

use std::io::Write;

use std::time::Duration;

use chrono::Utc;

use crate::backend::Backend;
use crate::config::Settings;
use crate::connection::ConnState;
use crate::feed::{Feed, StorageFeed};
use crate::report::{self, Report};
use crate::snapshot::Snapshot;
use crate::store::Store;
use crate::text;
use crate::tracker::stream::{CardStream, STREAM_CHUNK};

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

/// Prints `opts.count` snapshots read from `backend` to `out`. JSON from Redis is streamed
/// ([`write_json`]); the rest goes through the snapshot ([`run_feed`]).
pub async fn run(
    backend: Backend,
    settings: &Settings,
    opts: HeadlessOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), HeadlessError> {
    if opts.format != Format::Json || backend.redis().is_none() {
        let feed = StorageFeed::new(backend);
        return run_feed(&feed, settings, opts, out).await;
    }
    if opts.count == 0 {
        return Err(HeadlessError::Options("--count must be at least 1".into()));
    }
    let feed = StorageFeed::new(backend.clone());
    wait_for_first_attempt(&feed, settings).await;
    for i in 0..opts.count {
        if i > 0 {
            tokio::time::sleep(opts.interval).await;
        }
        write_json(&backend, Utc::now(), STREAM_CHUNK, out).await?;
    }
    Ok(())
}

/// What one streamed report wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    /// Cards written.
    pub cards: usize,
    /// The most pipeline documents or cards the reader held at once
    /// ([`CardStream::most_held`]; the chunk being written while the next is read comes on
    /// top): it follows `chunk`, not the number of cards.
    pub most_held: usize,
}

/// Writes one JSON report of `backend` (one line), reading and writing the cards `chunk` at a
/// time ([`CardStream`]) while the next chunk's read is in flight: the same bytes as
/// [`Report::from_snapshot`] of [`crate::snapshot::read_snapshot_for`] at `now` would give
/// (up to the order of the malformed entries), in memory that follows `chunk`, not the number
/// of cards. A backend that is not Redis is read as one snapshot.
pub async fn write_json(
    backend: &Backend,
    now: chrono::DateTime<Utc>,
    chunk: usize,
    out: &mut (dyn Write + Send),
) -> Result<Streamed, HeadlessError> {
    let endpoint = text::sanitize(&backend.endpoint()).into_owned();
    let read_err = |e: crate::Error| read_error(e, &endpoint);
    let window = crate::metrics::HistoryWindow::default();
    let Some(redis) = backend.redis() else {
        let snap = crate::snapshot::read_snapshot_for(backend, now, window)
            .await
            .map_err(read_err)?;
        let mut s = serde_json::to_string(&Report::from_snapshot(&snap))
            .map_err(|e| HeadlessError::Output(std::io::Error::other(e)))?;
        s.push('\n');
        out.write_all(s.as_bytes())?;
        out.flush()?;
        return Ok(Streamed {
            cards: snap.cards.len(),
            most_held: snap.cards.len(),
        });
    };
    let (mut rest, stream) = futures::try_join!(
        read_all_but_cards(backend, now, window),
        CardStream::open(redis, backend.settings(), now, chunk)
    )
    .map_err(read_err)?;
    rest.connection = backend.connection().borrow().clone();
    rest.health = backend
        .redis()
        .map(|r| r.current_health())
        .unwrap_or_default();
    let mut report = Report::from_snapshot(&rest);
    let recent = &rest.metrics.recent;
    let mut buf = std::io::BufWriter::with_capacity(1 << 16, out);
    report::stream::write_head(&mut buf, &report)?;
    let mut written = 0usize;
    // The next chunk is read and parsed on a task of its own (another core, when the runtime
    // has one) while this one is written.
    let next = |mut stream: CardStream| {
        tokio::spawn(async move {
            let chunk = stream.next_chunk().await;
            (stream, chunk)
        })
    };
    let mut pending = next(stream);
    let mut stream = loop {
        let (stream, chunk) = pending
            .await
            .map_err(|e| HeadlessError::Output(std::io::Error::other(e)))?;
        let Some(mut cards) = chunk.map_err(read_err)? else {
            break stream;
        };
        pending = next(stream);
        crate::snapshot::attribute_costs(&mut cards, recent);
        report::stream::write_cards(&mut buf, cards, &mut written)?;
        buf.flush()?;
    };
    let mut malformed: Vec<report::Malformed> = stream
        .take_malformed()
        .into_iter()
        .map(|m| report::Malformed {
            key: m.key,
            reason: m.reason,
        })
        .collect();
    malformed.append(&mut report.malformed);
    report.malformed = malformed;
    report::stream::write_tail(&mut buf, &report)?;
    buf.flush()?;
    Ok(Streamed {
        cards: written,
        most_held: stream.most_held(),
    })
}

/// Everything [`crate::snapshot::read_snapshot_for`] reads but the cards (left empty), with
/// the same costs and activity attributed, read concurrently.
async fn read_all_but_cards(
    backend: &Backend,
    now: chrono::DateTime<Utc>,
    window: crate::metrics::HistoryWindow,
) -> crate::Result<Snapshot> {
    let m = &backend.settings().metrics;
    let recent = usize::try_from(m.snapshot_recent).unwrap_or(usize::MAX);
    let probe = async {
        if let Some(redis) = backend.redis() {
            redis.probe_health_if_due().await;
        }
    };
    let (read, ()) = futures::join!(
        async {
            futures::try_join!(
                backend.metrics().read_metrics(m.snapshot_days, recent),
                backend.limiter().read_limits(),
                backend.metrics().read_history(window, now)
            )
        },
        probe
    );
    let (metrics, limits, history) = read?;
    let mut malformed = metrics.malformed;
    malformed.extend(limits.malformed);
    malformed.extend(history.malformed);
    let mut limits = limits.limits;
    crate::snapshot::attribute_activity(&mut limits, &history.series, now);
    Ok(Snapshot {
        taken_at: now,
        source: crate::snapshot::SourceInfo {
            backend: backend.backend().to_owned(),
            endpoint: backend.endpoint(),
        },
        connection: backend.connection().borrow().clone(),
        health: Default::default(),
        cards: Vec::new(),
        metrics: metrics.metrics,
        limits,
        history: history.series,
        malformed,
    })
}

/// The error of a failed read, naming the endpoint once.
fn read_error(e: crate::Error, endpoint: &str) -> HeadlessError {
    let reason = text::sanitize(&e.to_string()).into_owned();
    if e.is_outage() {
        HeadlessError::Unreachable {
            reason: outage_reason(&e, endpoint),
            endpoint: endpoint.to_owned(),
        }
    } else {
        HeadlessError::Read {
            endpoint: endpoint.to_owned(),
            reason,
        }
    }
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
            .map_err(|e| read_error(e, &endpoint))?;
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
