//! (scaffolding) The metrics on Redis.

use crate::storage::RedisStorage;

#[async_trait::async_trait]
impl super::MetricsStore for RedisStorage {}
