//! The limiter's read model: how much of each limit is used in its current window, for the
//! windows the registry names and those found under the rate-limit prefix without an entry
//! (written by Python processes, or by ours before they registered).

use serde::{Deserialize, Serialize};

/// Where the limit shown for a window comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LimitOrigin {
    /// The registry entry a limiter process recorded.
    #[default]
    Registry,
    /// The original's preset table, for its preset keys (`…:openai:openai:<model>:<id>`).
    Original,
    /// A `[[limiter.limits]]` entry whose pattern matches the key.
    Config,
    /// Nothing names a limit for this key (the window is then assumed to be 60 s, the
    /// original's preset window).
    Unknown,
}

/// Headroom of one limiter key in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitUsage {
    /// The window's Redis key.
    pub key: String,
    /// The limited resource (`openai:gpt-4o` for presets).
    pub resource: String,
    /// Who is limited within the resource.
    pub identifier: String,
    /// The window length, seconds, from the registry entry (or the original's table, the
    /// config, or 60 s when the limit is unknown).
    pub window_seconds: f64,
    /// Requests in the window now.
    pub requests_used: u64,
    /// Requests admitted per window; `None` when no registry entry, original preset or
    /// configured limit names one ("limit unknown").
    pub requests_limit: Option<u64>,
    /// Tokens reserved in the window now; `None` when tokens are not limited.
    pub tokens_used: Option<u64>,
    /// Tokens admitted per window; `None` when tokens are not limited.
    pub tokens_limit: Option<u64>,
    /// Where the limit comes from.
    #[serde(default)]
    pub limit_origin: LimitOrigin,
    /// What limiters did with the key lately (from the metrics' time buckets); `None` when no
    /// bucket names the key (Python limiters count nothing).
    #[serde(default)]
    pub activity: Option<LimitActivity>,
}

/// Admissions, refusals and waits of one key over the recent buckets covering its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitActivity {
    /// Checks admitted.
    pub admitted: u64,
    /// Checks refused (every refused attempt of a waiting `acquire` counts).
    pub refused: u64,
    /// `acquire` calls that had to wait.
    pub waited: u64,
    /// Seconds the counts cover: from the start of the first bucket (minute or hour) that
    /// overlaps the window to the snapshot's time, so at least the window once its buckets exist.
    pub over_seconds: i64,
}
