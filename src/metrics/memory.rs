//! (scaffolding) The metrics's in-process state.

use crate::storage::MemoryStorage;

/// The metrics's state inside [`MemoryStorage`].
#[derive(Debug, Default)]
pub struct MetricsState {}

#[async_trait::async_trait]
impl super::MetricsStore for MemoryStorage {}
