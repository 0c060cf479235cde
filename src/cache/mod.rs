//! The LLM response cache: answers identical requests from Redis instead of paying for them
//! again, shared with the Python original's processes.
//!
//! Pieces:
//! - [`client`]: the async LLM client interface ([`LlmClient`], [`LlmRequest`], [`LlmResponse`]);
//! - [`key`]: the Python-identical cache key (preimage + sha256), extended with every parameter
//!   the original left out;
//! - [`entry`]: the stored five-key JSON value, read strictly (anything else is a miss);
//! - [`CachedClient`] (in `cached.rs`): the wrapper that adds the cache to any client, with
//!   single flight in process and a lease across processes, per-request controls, statistics
//!   and metrics;
//! - [`pricing`]: the price table that turns usage into spend and savings;
//! - [`CacheStore`]: the storage operations, implemented for Redis (`redis.rs`) and memory
//!   (`memory.rs`); `tier.rs`: the optional in-process tier in front of either.

pub mod client;
pub mod entry;
pub mod key;
pub mod pricing;

mod cached;
mod flight;
mod memory;
mod recorder;
mod redis;
mod tier;

use std::time::Duration;

pub use self::cached::{CacheControl, CacheStats, CachedClient, Completion, HitsBySource, Source};
pub use self::client::{LlmClient, LlmError, LlmRequest, LlmResponse, Message, Temperature, Usage};
pub use self::memory::MemoryCache;
pub use self::pricing::{ModelPrice, PriceTable};
pub use self::redis::RedisCache;

use crate::keys::{InvalidName, KeySpace, validate_name};

/// Where one cached answer lives: the request's hash and, optionally, a namespace. Entries of a
/// namespace are never shared with plain (Python-compatible) entries or other namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    hash: String,
    namespace: Option<String>,
}

impl CacheKey {
    /// The key of `request` (in `namespace`, if given).
    pub fn for_request(request: &LlmRequest, namespace: Option<&str>) -> Result<Self, LlmError> {
        let hash = key::request_hash(request)?;
        Self::new(hash, namespace).map_err(|e| LlmError::InvalidRequest(e.to_string()))
    }

    /// A key from a known hash (64 lowercase hex digits).
    pub fn new(hash: String, namespace: Option<&str>) -> Result<Self, InvalidName> {
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(InvalidName {
                kind: "cache hash",
                name: hash.escape_debug().take(80).collect(),
                reason: "expected 64 lowercase hex digits",
            });
        }
        if let Some(ns) = namespace {
            validate_name("cache namespace", ns)?;
        }
        Ok(Self {
            hash,
            namespace: namespace.map(str::to_owned),
        })
    }

    /// The request's sha256, 64 lowercase hex digits (the Python key's suffix).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The namespace the entry is shared in; `None` for a plain, Python-shared entry.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The Redis key of the entry.
    pub fn entry_key(&self, keys: &KeySpace) -> String {
        match &self.namespace {
            None => keys.cache_entry(&self.hash),
            Some(ns) => keys.cache_namespaced_entry(ns, &self.hash),
        }
    }

    /// Whether the entry belongs to `scope`.
    pub fn in_scope(&self, scope: &CacheScope) -> bool {
        match scope {
            CacheScope::All => true,
            CacheScope::Plain => self.namespace.is_none(),
            CacheScope::Namespace(ns) => self.namespace.as_deref() == Some(ns.as_str()),
        }
    }
}

/// Which entries an administrative count or invalidation covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheScope {
    /// Every entry: plain and all namespaces.
    All,
    /// Only the plain entries, the ones shared with Python processes.
    Plain,
    /// Only the entries of one namespace.
    Namespace(String),
}

impl CacheScope {
    pub(crate) fn validate(&self) -> crate::Result<()> {
        if let Self::Namespace(ns) = self {
            validate_name("cache namespace", ns)?;
        }
        Ok(())
    }
}

/// How many entries a scope holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheCount {
    /// Entries counted (a lower bound when `truncated`).
    pub entries: u64,
    /// The count stopped at a bound (see the backend); there are at least `entries`.
    pub truncated: bool,
}

/// What a read found under an entry key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No entry under the key (never written, expired or invalidated).
    Missing,
    /// The stored bytes (not yet checked: see [`entry::decode`]).
    Found(Vec<u8>),
    /// Something that cannot be read as a string (another type of key), with the reason.
    Unreadable(String),
}

/// What a waiter sees while another process may be fetching the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// The entry as [`CacheStore::cache_get`] would return it.
    pub entry: Lookup,
    /// Whether a lease on the entry is held.
    pub leased: bool,
}

/// The remaining lifetime of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryTtl {
    /// No entry under the key.
    Missing,
    /// Stored without a TTL (not written by this project or Python).
    Persistent,
    /// Expires after this long (to the millisecond, as `PTTL` reports it).
    Expires(Duration),
}

/// The cache's storage interface ([`RedisCache`], [`MemoryCache`]): entry reads and writes, the cross-process
/// fetch lease, and administration. Errors are transport errors (Redis unreachable, refused);
/// a value that is not a usable entry is a successful [`Lookup`].
#[async_trait::async_trait]
pub trait CacheStore: crate::store::Store {
    /// The bytes stored under `key`, without checking or refreshing them (reads never extend
    /// the TTL, as in the original).
    async fn cache_get(&self, key: &CacheKey) -> crate::Result<Lookup>;

    /// Stores `value` with a TTL (`SET … EX`); with `lease`, also releases that lease if it
    /// is still the holder's, atomically with the write.
    async fn cache_put(
        &self,
        key: &CacheKey,
        value: &[u8],
        ttl: Duration,
        lease: Option<&str>,
    ) -> crate::Result<()>;

    /// Takes the fetch lease of `key` for `ttl` (`SET NX PX`); `false` when another holds it.
    async fn cache_try_lease(
        &self,
        key: &CacheKey,
        token: &str,
        ttl: Duration,
    ) -> crate::Result<bool>;

    /// Gives the lease back if `token` still holds it.
    async fn cache_release_lease(&self, key: &CacheKey, token: &str) -> crate::Result<()>;

    /// The entry and whether its lease is held, in one round trip.
    async fn cache_poll(&self, key: &CacheKey) -> crate::Result<Poll>;

    /// How long the entry under `key` has left.
    async fn cache_ttl(&self, key: &CacheKey) -> crate::Result<EntryTtl>;

    /// Counts the entries of `scope`.
    async fn cache_count(&self, scope: &CacheScope) -> crate::Result<CacheCount>;

    /// Deletes the entries of `scope` in bounded batches; returns how many were deleted.
    async fn cache_invalidate(&self, scope: &CacheScope) -> crate::Result<u64>;
}

/// The TTL in whole seconds for `SET … EX` (at least one: `EX 0` is an error).
pub(crate) fn ttl_seconds(ttl: Duration) -> u64 {
    ttl.as_secs_f64().ceil().max(1.0) as u64
}

/// `now + d`, saturating far in the future instead of overflowing on absurd settings.
pub(crate) fn later(now: std::time::Instant, d: Duration) -> std::time::Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Locks a mutex, carrying on after a panic elsewhere: every cache structure stays consistent
/// between statements, so a poisoned lock holds nothing half-written.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
