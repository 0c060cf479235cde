//! (scaffolding) The cache's in-process state.

use crate::storage::MemoryStorage;

/// The cache's state inside [`MemoryStorage`].
#[derive(Debug, Default)]
pub struct CacheState {}

#[async_trait::async_trait]
impl super::CacheStore for MemoryStorage {}
