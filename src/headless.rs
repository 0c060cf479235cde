//! `artemis-top --once`: the dashboard's other face, for scripts, CI and agents.
//!
//! It reads the same [`Snapshot`] the dashboard draws and prints it as a plain-text report or
//! as JSON (one object per line, schema in `schema/snapshot.schema.json`), once or `count`
//! times `interval` apart. The text report is sanitized like the screen (data from Redis can
//! hold escape sequences); the JSON is exact (serde escapes control characters).
//!
//! Failure is one line for stderr ([`HeadlessError`]) and a non-zero exit code, never a
//! half-written report: each snapshot is formatted in full before it is written.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Settings;
use crate::connection::ConnState;
use crate::feed::{Feed, StorageFeed};
use crate::snapshot::Snapshot;
use crate::storage::Storage;
use crate::{format, text};

/// Output format of a headless report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
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
    Unreachable { endpoint: String, reason: String },
    /// Redis answered but the read failed (permissions, unexpected reply).
    #[error("reading from {endpoint} failed: {reason}")]
    Read { endpoint: String, reason: String },
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

/// Prints `opts.count` snapshots read from `storage` to `out`.
pub async fn run(
    storage: Arc<dyn Storage>,
    settings: &Settings,
    opts: HeadlessOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), HeadlessError> {
    let feed = StorageFeed::new(storage);
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
        let snap = feed.snapshot(Utc::now()).await.map_err(|e| {
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
                let mut s = serde_json::to_string(&snap)
                    .map_err(|e| HeadlessError::Output(std::io::Error::other(e)))?;
                s.push('\n');
                s
            }
            Format::Text => {
                let mut s = report(&snap, snap.taken_at);
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

/// The plain-text report of one snapshot. Every string from Redis is sanitized.
pub fn report(snap: &Snapshot, now: DateTime<Utc>) -> String {
    let mut o = String::new();
    let m = &snap.metrics;
    let _ = writeln!(
        o,
        "artemis-top report · {} UTC",
        snap.taken_at.format("%Y-%m-%d %H:%M:%S")
    );
    let _ = writeln!(
        o,
        "source: {} {} ({})",
        text::sanitize(&snap.source.backend),
        text::sanitize(&snap.source.endpoint),
        format::describe_conn(&snap.connection)
    );

    // ---- cards ----
    let _ = writeln!(o, "\nCARDS ({})", snap.cards.len());
    if snap.cards.is_empty() {
        let _ = writeln!(o, "  none");
    } else {
        let id_w = col_width(
            snap.cards.iter().map(|c| c.pipeline.card_id.as_str()),
            6,
            32,
        );
        let title_w = col_width(snap.cards.iter().map(|c| c.title().unwrap_or("")), 5, 40);
        let stage_w = col_width(
            snap.cards
                .iter()
                .map(|c| c.pipeline.current_stage.as_deref().unwrap_or("-")),
            5,
            20,
        );
        let _ = writeln!(
            o,
            "  {} {} {} {} {} {} {}",
            text::pad("ID", id_w),
            text::pad("TITLE", title_w),
            text::pad("STATUS", 9),
            text::pad("STAGE", stage_w),
            text::pad("PROGRESS", 12),
            text::pad_left("TIME", 7),
            text::pad_left("COST", 8)
        );
        for c in &snap.cards {
            let p = &c.pipeline;
            let mut prog = format!("{}/{}", p.completed_stages, p.total_stages);
            if let Some(pct) = format::running_percent(c) {
                let _ = write!(prog, " {pct}%");
            }
            let _ = writeln!(
                o,
                "  {} {} {} {} {} {} {}",
                text::pad(&p.card_id, id_w),
                text::pad(c.title().unwrap_or(""), title_w),
                text::pad(p.status.as_str(), 9),
                text::pad(p.current_stage.as_deref().unwrap_or("-"), stage_w),
                text::pad(&prog, 12),
                text::pad_left(
                    &format::elapsed(p, now)
                        .map(format::duration)
                        .unwrap_or_else(|| "-".into()),
                    7
                ),
                text::pad_left(
                    &c.cost_usd.map(format::usd).unwrap_or_else(|| "-".into()),
                    8
                )
            );
        }
    }
    if !snap.malformed.is_empty() {
        let _ = writeln!(o, "\nMALFORMED ({})", snap.malformed.len());
        for mal in &snap.malformed {
            let _ = writeln!(
                o,
                "  {}: {}",
                text::sanitize(&mal.key),
                text::sanitize(&mal.reason)
            );
        }
    }

    // ---- cache ----
    let llm = &m.llm;
    let _ = writeln!(o, "\nLLM CACHE");
    let _ = writeln!(
        o,
        "  hit rate {} · hits {} · misses {} · saved {}",
        llm.hit_rate
            .map(format::percent)
            .unwrap_or_else(|| "-".into()),
        llm.cache_hits,
        llm.cache_misses,
        format::usd(llm.saved_cost)
    );

    // ---- limits ----
    let _ = writeln!(o, "\nRATE LIMITS (used/limit in the current window)");
    if snap.limits.is_empty() {
        let _ = writeln!(o, "  none registered");
    }
    for l in &snap.limits {
        let mut line = format!(
            "  {}:{}  requests {}/{} per {}",
            text::sanitize(&l.resource),
            text::sanitize(&l.identifier),
            l.requests_used,
            l.requests_limit,
            format::duration(l.window_seconds)
        );
        if let (Some(u), Some(lim)) = (l.tokens_used, l.tokens_limit) {
            let _ = write!(line, " · tokens {u}/{lim}");
        }
        let _ = writeln!(o, "{line}");
    }

    // ---- cost ----
    let _ = writeln!(o, "\nCOST (USD)");
    let _ = writeln!(
        o,
        "  LLM total {} · {} requests · {} prompt + {} completion tokens",
        format::usd(llm.total_cost),
        llm.total_requests,
        llm.prompt_tokens,
        llm.completion_tokens
    );
    let pt = &m.pipelines;
    let _ = writeln!(
        o,
        "  pipelines completed {} · total {} · avg duration {} · avg cost {}",
        pt.completed,
        format::usd(pt.total_cost),
        pt.avg_duration
            .map(format::duration)
            .unwrap_or_else(|| "-".into()),
        pt.avg_cost.map(format::usd).unwrap_or_else(|| "-".into())
    );
    if !pt.by_status.is_empty() {
        let parts: Vec<String> = pt
            .by_status
            .iter()
            .map(|(k, v)| format!("{} {v}", text::sanitize(k)))
            .collect();
        let _ = writeln!(o, "  by status: {}", parts.join(" · "));
    }
    let days: Vec<String> = m
        .daily
        .iter()
        .filter(|d| d.cost != 0.0 || d.completions != 0)
        .map(|d| {
            format!(
                "{} {} ({} runs)",
                d.date,
                format::usd(d.cost),
                d.completions
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "  per day, last {} days (local dates, days with activity): {}",
        m.daily.len(),
        if days.is_empty() {
            "none".into()
        } else {
            days.join(" · ")
        }
    );
    for (label, items) in [("per provider", &m.providers), ("per model", &m.models)] {
        let parts: Vec<String> = items
            .iter()
            .map(|b| {
                format!(
                    "{} {} ({} req)",
                    text::sanitize(&b.name),
                    format::usd(b.cost),
                    b.requests
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "  {label}: {}",
            if parts.is_empty() {
                "none".into()
            } else {
                parts.join(" · ")
            }
        );
    }
    if !m.recent.is_empty() {
        let _ = writeln!(o, "\nRECENT PIPELINES");
        for r in &m.recent {
            let _ = writeln!(
                o,
                "  {}  {}  {}  {}  {}",
                text::sanitize(&r.timestamp),
                text::sanitize(&r.card_id),
                text::sanitize(&r.status),
                format::duration(r.duration_seconds),
                format::usd(r.cost)
            );
        }
    }
    o
}

fn col_width<'a>(items: impl Iterator<Item = &'a str>, min: usize, max: usize) -> usize {
    items.map(text::width).max().unwrap_or(0).clamp(min, max)
}
