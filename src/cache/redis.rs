//! (scaffolding) The cache on Redis.

use crate::storage::RedisStorage;

#[async_trait::async_trait]
impl super::CacheStore for RedisStorage {}
