//! The cache in process: the same entries, TTLs and leases as on Redis, under one lock, for the
//! demo backend and single-process use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{CacheCount, CacheKey, CacheScope, EntryTtl, Lookup, Poll};
use crate::store::{MemoryCore, delegate_store};

/// Writes between two sweeps of expired entries.
const SWEEP_EVERY: u32 = 1024;

/// Entries and leases, with their expiry times.
#[derive(Debug, Default)]
struct CacheState {
    entries: HashMap<CacheKey, (Vec<u8>, Instant)>,
    leases: HashMap<CacheKey, (String, Instant)>,
    writes_since_sweep: u32,
}

impl CacheState {
    fn live_entry(&mut self, key: &CacheKey, now: Instant) -> Option<&(Vec<u8>, Instant)> {
        if self.entries.get(key).is_some_and(|(_, exp)| *exp <= now) {
            self.entries.remove(key);
        }
        self.entries.get(key)
    }

    fn lease_holder(&mut self, key: &CacheKey, now: Instant) -> Option<&str> {
        if self.leases.get(key).is_some_and(|(_, exp)| *exp <= now) {
            self.leases.remove(key);
        }
        self.leases.get(key).map(|(t, _)| t.as_str())
    }

    fn release(&mut self, key: &CacheKey, token: &str, now: Instant) {
        if self.lease_holder(key, now) == Some(token) {
            self.leases.remove(key);
        }
    }
}

/// The cache in this process's memory.
#[derive(Debug)]
pub struct MemoryCache {
    core: MemoryCore,
    state: std::sync::Mutex<CacheState>,
}

delegate_store!(MemoryCache);

impl MemoryCache {
    /// An empty cache.
    pub fn new(core: MemoryCore) -> Self {
        Self {
            core,
            state: Default::default(),
        }
    }

    fn cache_state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        super::lock(&self.state)
    }
}

#[async_trait::async_trait]
impl super::CacheStore for MemoryCache {
    async fn cache_get(&self, key: &CacheKey) -> crate::Result<Lookup> {
        let mut s = self.cache_state();
        Ok(match s.live_entry(key, Instant::now()) {
            Some((bytes, _)) => Lookup::Found(bytes.clone()),
            None => Lookup::Missing,
        })
    }

    async fn cache_put(
        &self,
        key: &CacheKey,
        value: &[u8],
        ttl: Duration,
        lease: Option<&str>,
    ) -> crate::Result<()> {
        let now = Instant::now();
        // Whole seconds, as `SET … EX` stores it on Redis.
        let ttl = Duration::from_secs(super::ttl_seconds(ttl));
        let mut s = self.cache_state();
        s.entries
            .insert(key.clone(), (value.to_vec(), super::later(now, ttl)));
        if let Some(token) = lease {
            s.release(key, token, now);
        }
        s.writes_since_sweep += 1;
        if s.writes_since_sweep >= SWEEP_EVERY {
            s.writes_since_sweep = 0;
            s.entries.retain(|_, (_, exp)| *exp > now);
            s.leases.retain(|_, (_, exp)| *exp > now);
        }
        Ok(())
    }

    async fn cache_try_lease(
        &self,
        key: &CacheKey,
        token: &str,
        ttl: Duration,
    ) -> crate::Result<bool> {
        let now = Instant::now();
        let mut s = self.cache_state();
        if s.lease_holder(key, now).is_some() {
            return Ok(false);
        }
        s.leases
            .insert(key.clone(), (token.to_owned(), super::later(now, ttl)));
        Ok(true)
    }

    async fn cache_release_lease(&self, key: &CacheKey, token: &str) -> crate::Result<()> {
        self.cache_state().release(key, token, Instant::now());
        Ok(())
    }

    async fn cache_poll(&self, key: &CacheKey) -> crate::Result<Poll> {
        let now = Instant::now();
        let mut s = self.cache_state();
        let entry = match s.live_entry(key, now) {
            Some((bytes, _)) => Lookup::Found(bytes.clone()),
            None => Lookup::Missing,
        };
        let leased = s.lease_holder(key, now).is_some();
        Ok(Poll { entry, leased })
    }

    async fn cache_ttl(&self, key: &CacheKey) -> crate::Result<EntryTtl> {
        let now = Instant::now();
        let mut s = self.cache_state();
        Ok(match s.live_entry(key, now) {
            Some((_, exp)) => EntryTtl::Expires(exp.saturating_duration_since(now)),
            None => EntryTtl::Missing,
        })
    }

    async fn cache_count(&self, scope: &CacheScope) -> crate::Result<CacheCount> {
        scope.validate()?;
        let now = Instant::now();
        let s = self.cache_state();
        let entries = s
            .entries
            .iter()
            .filter(|(k, (_, exp))| *exp > now && k.in_scope(scope))
            .count() as u64;
        Ok(CacheCount {
            entries,
            truncated: false,
        })
    }

    async fn cache_invalidate(&self, scope: &CacheScope) -> crate::Result<u64> {
        scope.validate()?;
        let now = Instant::now();
        let mut s = self.cache_state();
        let before = s.entries.len();
        let mut expired = 0;
        s.entries.retain(|k, (_, exp)| {
            let gone = *exp <= now;
            expired += usize::from(gone);
            !gone && !k.in_scope(scope)
        });
        Ok((before - s.entries.len() - expired) as u64)
    }
}
