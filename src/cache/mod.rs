//! (scaffolding) The cache job. Filled in by its issue.

pub(crate) mod memory;
mod redis;

/// The cache's part of [`crate::storage::Storage`].
#[async_trait::async_trait]
pub trait CacheStore: Send + Sync {}
