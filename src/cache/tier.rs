//! The optional in-process tier in front of Redis: hot answers served without a round trip.
//!
//! Bounded by bytes (the stored JSON size plus the key), least recently used out first, and by
//! age: an entry is served for at most `memory_tier_ttl_seconds`, because an invalidation in
//! Redis by another process does not reach this process's memory. Off by default.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{CacheKey, CacheScope, LlmResponse};

/// Per-entry bookkeeping charged on top of the value and key bytes.
const OVERHEAD_BYTES: u64 = 96;

struct Slot {
    response: Arc<LlmResponse>,
    bytes: u64,
    expires: Instant,
    stamp: u64,
}

/// A byte-bounded LRU map of answers.
pub(crate) struct Tier {
    capacity: u64,
    max_age: Duration,
    used: u64,
    clock: u64,
    slots: HashMap<CacheKey, Slot>,
    /// Stamp → key, oldest use first.
    order: BTreeMap<u64, CacheKey>,
}

impl Tier {
    pub fn new(capacity: u64, max_age: Duration) -> Self {
        Self {
            capacity,
            max_age,
            used: 0,
            clock: 0,
            slots: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn get(&mut self, key: &CacheKey, now: Instant) -> Option<Arc<LlmResponse>> {
        let expired = self.slots.get(key)?.expires <= now;
        if expired {
            self.remove(key);
            return None;
        }
        self.clock += 1;
        let stamp = self.clock;
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.stamp);
        slot.stamp = stamp;
        self.order.insert(stamp, key.clone());
        Some(slot.response.clone())
    }

    /// Keeps `response` (whose stored form is `value_bytes` long) for at most `ttl` (and the
    /// tier's own bound). An answer larger than the whole tier is not kept.
    pub fn put(
        &mut self,
        key: &CacheKey,
        response: Arc<LlmResponse>,
        value_bytes: usize,
        ttl: Duration,
        now: Instant,
    ) {
        let bytes = value_bytes as u64
            + key.hash().len() as u64
            + OVERHEAD_BYTES
            + key.namespace().map_or(0, |n| n.len() as u64);
        self.remove(key);
        if bytes > self.capacity {
            return;
        }
        while self.used + bytes > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.used -= slot.bytes;
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, key.clone());
        self.slots.insert(
            key.clone(),
            Slot {
                response,
                bytes,
                expires: super::later(now, ttl.min(self.max_age)),
                stamp: self.clock,
            },
        );
        self.used += bytes;
    }

    pub fn remove(&mut self, key: &CacheKey) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.stamp);
            self.used -= slot.bytes;
        }
    }

    pub fn remove_scope(&mut self, scope: &CacheScope) {
        let doomed: Vec<CacheKey> = self
            .slots
            .keys()
            .filter(|k| k.in_scope(scope))
            .cloned()
            .collect();
        for k in doomed {
            self.remove(&k);
        }
    }

    pub fn entries(&self) -> usize {
        self.slots.len()
    }

    pub fn bytes(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Usage;

    fn key(i: u8) -> CacheKey {
        CacheKey::new(format!("{i:02x}").repeat(32), None).unwrap()
    }

    fn answer(text: &str) -> Arc<LlmResponse> {
        Arc::new(LlmResponse {
            content: text.into(),
            model: "m".into(),
            provider: "p".into(),
            usage: Usage::default(),
            raw_response: serde_json::Value::Null,
        })
    }

    #[test]
    fn bounded_by_bytes_least_recently_used_out_first() {
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        // Room for two entries of 100 value bytes each (100 + 64 + 96 = 260).
        let mut t = Tier::new(600, ttl);
        t.put(&key(1), answer("a"), 100, ttl, now);
        t.put(&key(2), answer("b"), 100, ttl, now);
        assert!(t.get(&key(1), now).is_some()); // 1 is now the most recent
        t.put(&key(3), answer("c"), 100, ttl, now);
        assert!(
            t.get(&key(2), now).is_none(),
            "the least recently used goes"
        );
        assert!(t.get(&key(1), now).is_some());
        assert!(t.get(&key(3), now).is_some());
        assert!(t.bytes() <= 600);
        assert_eq!(t.entries(), 2);
        // Too big for the whole tier: not kept, nothing evicted for it.
        t.put(&key(4), answer("d"), 10_000, ttl, now);
        assert_eq!(t.entries(), 2);
    }

    #[test]
    fn entries_expire_at_the_tier_bound() {
        let now = Instant::now();
        let mut t = Tier::new(10_000, Duration::from_secs(5));
        t.put(&key(1), answer("a"), 10, Duration::from_secs(3600), now);
        assert!(t.get(&key(1), now + Duration::from_secs(4)).is_some());
        assert!(t.get(&key(1), now + Duration::from_secs(6)).is_none());
        assert_eq!(t.bytes(), 0);
    }
}
