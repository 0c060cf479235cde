//! (scaffolding) The limiter on Redis.

use crate::storage::RedisStorage;

#[async_trait::async_trait]
impl super::LimiterStore for RedisStorage {}
