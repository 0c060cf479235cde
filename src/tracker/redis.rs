//! (scaffolding) The tracker on Redis.

use crate::storage::RedisStorage;

#[async_trait::async_trait]
impl super::TrackerStore for RedisStorage {}
