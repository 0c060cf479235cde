//! The cache on Redis (standalone or Cluster), in the Python original's layout.
//!
//! A hit is one GET. The lease (`<prefix>#lease:{<entry key>}`) lives in the entry's hash slot,
//! so the write of a fetched answer and the release of the lease run as one script on one node.
//! Administration walks the keyspace with SCAN (never KEYS) and deletes with UNLINK in batches
//! of [`DELETE_BATCH`]; on Cluster the driver splits each batch by slot.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{Pipeline, Script, Value};

use super::{CacheCount, CacheKey, CacheScope, EntryTtl, Lookup, Poll, ttl_seconds};
use crate::store::{RedisCore, delegate_store};

/// Keys deleted per UNLINK.
const DELETE_BATCH: usize = 500;
/// Keys one SCAN pass collects before they are deleted and the scan starts over.
const INVALIDATE_PASS: usize = 50_000;
/// Passes after which an invalidation gives up (writers are adding keys as fast as it deletes).
const MAX_PASSES: usize = 1_000;
/// Keys a count collects at most (each held in memory while counting).
const COUNT_LIMIT: usize = 1_000_000;

/// Writes the entry and releases the caller's lease, if it still holds it.
static PUT_AND_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1",
    )
});

/// Deletes a lease only if the token still holds it (it may have expired and passed on).
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

fn lookup_of(v: Value) -> Lookup {
    match v {
        Value::Nil => Lookup::Missing,
        Value::BulkString(b) => Lookup::Found(b),
        Value::SimpleString(s) => Lookup::Found(s.into_bytes()),
        Value::ServerError(e) => Lookup::Unreadable(format!("{e:?}")),
        other => Lookup::Unreadable(format!("unexpected reply {other:?}")),
    }
}

/// The cache on Redis (standalone or Cluster).
#[derive(Debug, Clone)]
pub struct RedisCache {
    core: RedisCore,
}

delegate_store!(RedisCache);

impl RedisCache {
    /// The cache over `core`'s connection.
    pub fn new(core: RedisCore) -> Self {
        Self { core }
    }

    fn scan_patterns(&self, scope: &CacheScope) -> Vec<String> {
        let k = &self.core.keys;
        match scope {
            CacheScope::All => vec![
                k.cache_plain_scan_pattern(),
                k.cache_all_namespaces_scan_pattern(),
            ],
            CacheScope::Plain => vec![k.cache_plain_scan_pattern()],
            CacheScope::Namespace(ns) => vec![k.cache_namespace_scan_pattern(ns)],
        }
    }
}

#[async_trait::async_trait]
impl super::CacheStore for RedisCache {
    async fn cache_get(&self, key: &CacheKey) -> crate::Result<Lookup> {
        // A pipeline with errors kept per reply, so that a key of another type comes back as
        // an unreadable entry rather than as a failed call.
        let mut p = Pipeline::with_capacity(1);
        p.ignore_errors().get(key.entry_key(&self.core.keys));
        let mut replies: Vec<Value> = self.core.redis.query_pipe(&p).await?;
        Ok(lookup_of(replies.pop().unwrap_or(Value::Nil)))
    }

    async fn cache_put(
        &self,
        key: &CacheKey,
        value: &[u8],
        ttl: Duration,
        lease: Option<&str>,
    ) -> crate::Result<()> {
        let entry = key.entry_key(&self.core.keys);
        let ttl = ttl_seconds(ttl);
        match lease {
            None => {
                let cmd = redis::cmd("SET")
                    .arg(&entry)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl)
                    .clone();
                self.core.redis.query::<()>(&cmd).await
            }
            Some(token) => {
                let lease_key = self.core.keys.cache_lease_for(&entry);
                self.core
                    .redis
                    .run(|mut c| async move {
                        PUT_AND_RELEASE
                            .key(&entry)
                            .key(&lease_key)
                            .arg(value)
                            .arg(ttl)
                            .arg(token)
                            .invoke_async::<()>(&mut c)
                            .await
                    })
                    .await
            }
        }
    }

    async fn cache_try_lease(
        &self,
        key: &CacheKey,
        token: &str,
        ttl: Duration,
    ) -> crate::Result<bool> {
        let lease = self
            .core
            .keys
            .cache_lease_for(&key.entry_key(&self.core.keys));
        let cmd = redis::cmd("SET")
            .arg(lease)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .clone();
        let reply: Option<String> = self.core.redis.query(&cmd).await?;
        Ok(reply.is_some())
    }

    async fn cache_release_lease(&self, key: &CacheKey, token: &str) -> crate::Result<()> {
        let lease = self
            .core
            .keys
            .cache_lease_for(&key.entry_key(&self.core.keys));
        self.core
            .redis
            .run(|mut c| async move {
                RELEASE
                    .key(&lease)
                    .arg(token)
                    .invoke_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn cache_poll(&self, key: &CacheKey) -> crate::Result<Poll> {
        let entry = key.entry_key(&self.core.keys);
        let lease = self.core.keys.cache_lease_for(&entry);
        let mut p = Pipeline::with_capacity(2);
        p.ignore_errors().get(&entry).exists(&lease);
        let replies: Vec<Value> = self.core.redis.query_pipe(&p).await?;
        let mut replies = replies.into_iter();
        let entry = lookup_of(replies.next().unwrap_or(Value::Nil));
        let leased = matches!(replies.next(), Some(Value::Int(n)) if n > 0);
        Ok(Poll { entry, leased })
    }

    async fn cache_ttl(&self, key: &CacheKey) -> crate::Result<EntryTtl> {
        let cmd = redis::cmd("PTTL")
            .arg(key.entry_key(&self.core.keys))
            .clone();
        let ms: i64 = self.core.redis.query(&cmd).await?;
        Ok(match ms {
            -2 => EntryTtl::Missing,
            ms if ms < 0 => EntryTtl::Persistent,
            ms => EntryTtl::Expires(Duration::from_millis(ms as u64)),
        })
    }

    async fn cache_count(&self, scope: &CacheScope) -> crate::Result<CacheCount> {
        scope.validate()?;
        let mut count = CacheCount::default();
        for pattern in self.scan_patterns(scope) {
            let keys = self
                .core
                .redis
                .scan_match(&pattern, None, COUNT_LIMIT)
                .await?;
            count.truncated |= keys.len() >= COUNT_LIMIT;
            count.entries += keys.len() as u64;
        }
        Ok(count)
    }

    async fn cache_invalidate(&self, scope: &CacheScope) -> crate::Result<u64> {
        scope.validate()?;
        let mut deleted = 0u64;
        for pattern in self.scan_patterns(scope) {
            // Each pass holds at most INVALIDATE_PASS names; a pass that found fewer walked the
            // whole keyspace, so every key that existed throughout has been seen and deleted.
            for pass in 0.. {
                if pass == MAX_PASSES {
                    return Err(crate::Error::Incomplete(format!(
                        "cache invalidation stopped after {MAX_PASSES} passes of \
                         {INVALIDATE_PASS} keys: entries are written faster than deleted"
                    )));
                }
                let keys = self
                    .core
                    .redis
                    .scan_match(&pattern, None, INVALIDATE_PASS)
                    .await?;
                for batch in keys.chunks(DELETE_BATCH) {
                    let n: u64 = self
                        .core
                        .redis
                        .query(redis::cmd("UNLINK").arg(batch))
                        .await?;
                    deleted += n;
                }
                if keys.len() < INVALIDATE_PASS {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
