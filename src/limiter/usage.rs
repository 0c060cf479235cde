//! The limiter's read model: how much of each registered limit is used in its current window.

use serde::{Deserialize, Serialize};

/// Headroom of one limiter key in its current window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitUsage {
    pub key: String,
    pub resource: String,
    pub identifier: String,
    pub window_seconds: f64,
    pub requests_used: u64,
    pub requests_limit: u64,
    pub tokens_used: Option<u64>,
    pub tokens_limit: Option<u64>,
}
