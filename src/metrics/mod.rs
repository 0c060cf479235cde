//! (scaffolding) The metrics job. Filled in by its issue.

pub(crate) mod memory;
mod redis;

/// The metrics's part of [`crate::storage::Storage`].
#[async_trait::async_trait]
pub trait MetricsStore: Send + Sync {}
