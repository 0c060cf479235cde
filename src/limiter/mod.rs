//! (scaffolding) The limiter job. Filled in by its issue.

pub(crate) mod memory;
mod redis;

/// The limiter's part of [`crate::storage::Storage`].
#[async_trait::async_trait]
pub trait LimiterStore: Send + Sync {}
