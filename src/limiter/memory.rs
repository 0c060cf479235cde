//! (scaffolding) The limiter's in-process state.

use crate::storage::MemoryStorage;

/// The limiter's state inside [`MemoryStorage`].
#[derive(Debug, Default)]
pub struct LimiterState {}

#[async_trait::async_trait]
impl super::LimiterStore for MemoryStorage {}
