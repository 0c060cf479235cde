//! The limiter's read model: how much of each registered limit is used in its current window.

use serde::{Deserialize, Serialize};

/// Headroom of one limiter key in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitUsage {
    /// The window's Redis key.
    pub key: String,
    /// The limited resource (`openai:gpt-4o` for presets).
    pub resource: String,
    /// Who is limited within the resource.
    pub identifier: String,
    /// The window length, seconds, from the registry entry.
    pub window_seconds: f64,
    /// Requests in the window now.
    pub requests_used: u64,
    /// Requests admitted per window.
    pub requests_limit: u64,
    /// Tokens reserved in the window now; `None` when tokens are not limited.
    pub tokens_used: Option<u64>,
    /// Tokens admitted per window; `None` when tokens are not limited.
    pub tokens_limit: Option<u64>,
}
