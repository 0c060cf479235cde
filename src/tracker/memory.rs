//! (scaffolding) The tracker's in-process state.

use crate::storage::MemoryStorage;

/// The tracker's state inside [`MemoryStorage`].
#[derive(Debug, Default)]
pub struct TrackerState {}

#[async_trait::async_trait]
impl super::TrackerStore for MemoryStorage {}
