//! (scaffolding) The tracker job. Filled in by its issue.

pub(crate) mod memory;
mod redis;

/// The tracker's part of [`crate::storage::Storage`].
#[async_trait::async_trait]
pub trait TrackerStore: Send + Sync {}
