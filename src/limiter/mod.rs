//! The rate limiter: a sliding-window log per key that counts requests *and* tokens, decided in
//! one atomic step on the storage side.
//!
//! Why it exists: LLM providers refuse callers that exceed requests- and tokens-per-minute
//! quotas, and a fleet of pipeline workers (Python and Rust alike) must share one budget. The
//! Python original kept the budget in a Redis sorted set but checked it in 4-5 round trips with
//! each client's clock, so concurrent callers overshot, and it never counted tokens. Here:
//!
//! - each check is decided by one server-side script (see `check.lua`) that prunes, counts,
//!   decides and records atomically, timed by the server's `TIME`; checks of one key that queue
//!   up behind calls in flight share one call (see `redis.rs`);
//! - the window key is the original's sorted set (same name, score and expiry), so Python and
//!   Rust processes share one window; tokens live in two extension keys of the same hash slot,
//!   one entry per admitted request (never one per token) plus a running sum;
//! - tokens are *reserved* before a call and reconciled with the real usage afterwards
//!   ([`Reservation`]);
//! - what to do while Redis is down is a policy ([`crate::config::FailurePolicy`]).
//!
//! Layering: [`LimiterStore`] is the storage-level step (implemented for Redis in `redis.rs` and
//! in process in `memory.rs`); [`RateLimiter`] is the handle applications use (presets, the
//! failure policy, waiting, reservations, the registry).

mod handle;
pub(crate) mod memory;
mod presets;
pub(crate) mod redis;
mod usage;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use handle::{AcquireOptions, Decision, RateLimiter, Reservation};
pub use memory::MemoryLimiter;
pub use presets::{
    ORIGINAL_PROVIDERS, configured_limit, find_preset, is_original_provider,
    original_preset_of_key, original_requests_per_minute,
};
pub use redis::RedisLimiter;
pub use redis::{check_script_sha, check_script_source};
pub use usage::{LimitActivity, LimitOrigin, LimitUsage};

/// The identifier the original uses when the caller names none.
pub const DEFAULT_IDENTIFIER: &str = "default";

/// Shortest window accepted (the algorithm works in microseconds; below a millisecond the
/// round trip dominates anyway).
pub const MIN_WINDOW: Duration = Duration::from_millis(1);
/// Longest window accepted.
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

/// Seconds the window key outlives its newest request, as in the original (`EXPIRE window+60`).
pub const EXPIRE_GRACE_SECONDS: u64 = 60;

/// How much one key admits per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Requests per window (at least 1).
    pub requests: u64,
    /// Tokens per window, if tokens are limited (at least 1).
    pub tokens: Option<u64>,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Limits {
    /// A requests-per-window limit.
    pub fn requests(requests: u64, window: Duration) -> Self {
        Self {
            requests,
            tokens: None,
            window,
        }
    }

    /// Adds a tokens-per-window limit.
    pub fn with_tokens(mut self, tokens: u64) -> Self {
        self.tokens = Some(tokens);
        self
    }

    /// Checks the figures a key may be created with.
    pub fn validate(&self) -> Result<(), LimitError> {
        if self.requests == 0 {
            return Err(LimitError::InvalidLimits(
                "the request limit must be at least 1".into(),
            ));
        }
        if self.tokens == Some(0) {
            return Err(LimitError::InvalidLimits(
                "the token limit must be at least 1 (leave it out for no token limit)".into(),
            ));
        }
        if self.window < MIN_WINDOW || self.window > MAX_WINDOW {
            return Err(LimitError::InvalidLimits(format!(
                "the window must be between {MIN_WINDOW:?} and {MAX_WINDOW:?}, not {:?}",
                self.window
            )));
        }
        Ok(())
    }

    /// The window in whole microseconds (the unit of every computation).
    pub fn window_us(&self) -> u64 {
        self.window.as_micros() as u64
    }

    /// [`Self::window`] in seconds, as the original and the registry state it.
    pub fn window_seconds(&self) -> f64 {
        self.window.as_secs_f64()
    }

    /// TTL given to the keys after each admission: the window rounded up to whole seconds,
    /// plus [`EXPIRE_GRACE_SECONDS`].
    pub fn ttl_seconds(&self) -> u64 {
        self.window.as_micros().div_ceil(1_000_000) as u64 + EXPIRE_GRACE_SECONDS
    }
}

/// One limited key: where the window lives and the limits that apply to it. Built by
/// [`RateLimiter::limit`] or [`RateLimiter::preset`], which validate the names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Limit {
    pub(crate) key: String,
    pub(crate) resource: String,
    pub(crate) identifier: String,
    pub(crate) limits: Limits,
}

impl Limit {
    /// The window's Redis key (Python layout).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The resource as the original names it (`openai:gpt-4o` for presets).
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// Who is limited within the resource (a team, a user; [`DEFAULT_IDENTIFIER`] in the
    /// original), the last key segment.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The limits that apply to this key.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The tokens a request of `tokens` actually reserves: none when tokens are not limited.
    pub(crate) fn charged(&self, tokens: u64) -> u64 {
        if self.limits.tokens.is_some() {
            tokens
        } else {
            0
        }
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exceeded {
    /// The request count is at the limit.
    Requests,
    /// The tokens reserved in the window plus this request's exceed the token limit.
    Tokens,
    /// Both at once; the retry-after is the later of the two.
    RequestsAndTokens,
}

impl Exceeded {
    fn from_bits(bits: i64) -> Self {
        match bits {
            2 => Self::Tokens,
            3 => Self::RequestsAndTokens,
            _ => Self::Requests,
        }
    }

    /// Whether only the request count stands in the way (tokens released by a reconcile
    /// cannot make the wait shorter).
    pub fn requests_only(self) -> bool {
        self == Self::Requests
    }
}

/// The storage step's answer to one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded. Figures include this request.
    Admitted {
        /// The storage clock at the decision, epoch microseconds (the request's score).
        at_us: i64,
        /// Requests in the window, this one included.
        requests_used: u64,
        /// Tokens reserved in the window, this request's included.
        tokens_used: u64,
    },
    /// Nothing recorded.
    Refused {
        /// The storage clock at the decision, epoch microseconds.
        at_us: i64,
        /// Requests in the window (this one not recorded).
        requests_used: u64,
        /// Tokens reserved in the window (this request's not recorded).
        tokens_used: u64,
        /// Microseconds until the request would be admitted if nobody else came first
        /// (rounded up, never early).
        retry_after_us: u64,
        /// Which limit stands in the way.
        exceeded: Exceeded,
    },
    /// The request alone needs more tokens than the whole limit: it can never pass.
    TooLarge,
}

impl Verdict {
    /// Decodes the `{status, requests_used, tokens_used, retry_after_us, exceeded, now_us}`
    /// reply both backends produce.
    pub(crate) fn from_reply(reply: &[i64]) -> Option<Self> {
        let &[status, requests, tokens, retry, exceeded, at_us] = reply else {
            return None;
        };
        let (requests_used, tokens_used) = (requests.max(0) as u64, tokens.max(0) as u64);
        Some(match status {
            1 => Self::Admitted {
                at_us,
                requests_used,
                tokens_used,
            },
            0 => Self::Refused {
                at_us,
                requests_used,
                tokens_used,
                retry_after_us: retry.max(1) as u64,
                exceeded: Exceeded::from_bits(exceeded),
            },
            -1 => Self::TooLarge,
            _ => return None,
        })
    }
}

/// A read-only view of a window's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The clock the figures were computed against, epoch microseconds.
    pub at_us: i64,
    /// Requests in the window.
    pub requests_used: u64,
    /// Tokens reserved in the window (0 when tokens are not limited).
    pub tokens_used: u64,
}

/// Where a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The configured storage (Redis, or memory for the in-process backend).
    Store,
    /// This process's own window: the `local` failure policy while Redis is unreachable, or a
    /// refusal because this process's own admissions already fill the window.
    Local,
    /// Admitted without counting: Redis was unreachable and the policy is `open`.
    FailOpen,
}

/// Why a request was not admitted now, with the original's fields (resource, limit,
/// window_seconds, current_count, retry_after_seconds) and what remains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// The limited resource (`openai:gpt-4o` for presets), as in the original's refusal.
    pub resource: String,
    /// Who was limited within the resource.
    pub identifier: String,
    /// The window's Redis key.
    pub key: String,
    /// The request limit.
    pub limit: u64,
    /// The window length, seconds.
    pub window_seconds: f64,
    /// Requests in the window now.
    pub current_count: u64,
    /// Requests still admissible in the window now.
    pub remaining: u64,
    /// Wait before trying again, rounded up to the millisecond: never early.
    #[serde(with = "duration_seconds")]
    pub retry_after: Duration,
    /// The same wait in seconds, as the original reports it.
    pub retry_after_seconds: f64,
    /// The token limit; `None` when tokens are not limited (then the other token fields are
    /// `None` too).
    pub tokens_limit: Option<u64>,
    /// Tokens reserved in the window now, this request's not included.
    pub tokens_used: Option<u64>,
    /// Tokens still admissible in the window now.
    pub tokens_remaining: Option<u64>,
    /// The tokens this request asked for.
    pub tokens_requested: u64,
    /// Which limit refused the request.
    pub exceeded: Exceeded,
    /// Who decided: the store, or the in-process fallback window while Redis is unreachable.
    pub source: Source,
    /// The deciding clock at the refusal (the Redis server's for [`Source::Store`]), epoch
    /// microseconds: `checked_at_us + retry_after` is when the request would pass.
    pub checked_at_us: i64,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rate limit exceeded for {} ({}): {}/{} requests",
            self.resource.escape_debug(),
            self.identifier.escape_debug(),
            self.current_count,
            self.limit
        )?;
        if let (Some(used), Some(limit)) = (self.tokens_used, self.tokens_limit) {
            write!(
                f,
                ", {used}/{limit} tokens (+{} asked)",
                self.tokens_requested
            )?;
        }
        write!(
            f,
            " in a {} s window; retry after {:.3} s",
            self.window_seconds, self.retry_after_seconds
        )
    }
}

mod duration_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// A read-only report of a key's headroom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headroom {
    /// The window's Redis key.
    pub key: String,
    /// The limited resource (`openai:gpt-4o` for presets).
    pub resource: String,
    /// Who is limited within the resource.
    pub identifier: String,
    /// The window length, seconds.
    pub window_seconds: f64,
    /// Requests admitted per window.
    pub requests_limit: u64,
    /// Requests in the window now.
    pub requests_used: u64,
    /// Requests still admissible now (`requests_limit - requests_used`, never below 0).
    pub requests_remaining: u64,
    /// The token limit; `None` when tokens are not limited (then the other token fields are
    /// `None` too).
    pub tokens_limit: Option<u64>,
    /// Tokens reserved in the window now.
    pub tokens_used: Option<u64>,
    /// Tokens still admissible now, never below 0.
    pub tokens_remaining: Option<u64>,
    /// Where the figures come from: the store, or the in-process fallback window while Redis
    /// is unreachable.
    pub source: Source,
}

/// What the limiter can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LimitError {
    /// `acquire` was not admitted before its deadline.
    #[error(
        "waited {waited:?} for a rate-limit slot without admission (deadline {timeout:?}): {refusal}"
    )]
    DeadlineExceeded {
        /// The longest wait that was allowed.
        timeout: Duration,
        /// How long `acquire` actually waited.
        waited: Duration,
        /// The last refusal before the deadline.
        refusal: Box<Refusal>,
    },
    /// The request alone needs more tokens than the whole limit: retrying cannot help.
    #[error(
        "a request of {requested} tokens can never pass the limit of {limit} tokens per {window_seconds} s for {resource}"
    )]
    TooLarge {
        /// The limited resource.
        resource: String,
        /// The tokens the request asked for.
        requested: u64,
        /// The token limit per window.
        limit: u64,
        /// The window length, seconds.
        window_seconds: f64,
    },
    /// No preset matches and the provider has no fallback (`model_prefix = ""`).
    #[error(
        "no rate-limit preset for provider {provider:?} and model {model:?} (add a [[limiter.presets]] entry)"
    )]
    NoPreset {
        /// The provider asked for (printable form).
        provider: String,
        /// The model asked for (printable form).
        model: String,
    },
    /// The figures cannot make a key: a zero request or token limit, or a window outside
    /// [`MIN_WINDOW`]..=[`MAX_WINDOW`].
    #[error("invalid rate limit: {0}")]
    InvalidLimits(String),
    /// Redis is unreachable and the failure policy is `closed`.
    #[error("rate limiter refuses while its storage is unreachable (failure_policy = closed): {0}")]
    Unavailable(crate::Error),
    /// Any other storage error (bad names, permissions, a malformed key, …).
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<crate::keys::InvalidName> for LimitError {
    fn from(e: crate::keys::InvalidName) -> Self {
        Self::Store(crate::Error::InvalidName(e))
    }
}

/// What the registry records for each key: enough for a reader to show headroom without the
/// writer's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// The limited resource (`openai:gpt-4o` for presets).
    pub resource: String,
    /// Who is limited within the resource.
    pub identifier: String,
    /// What the key admits per window.
    pub limits: RegistryLimits,
    /// The window length, seconds.
    pub window_seconds: f64,
}

/// The limits part of a [`RegistryEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryLimits {
    /// Requests admitted per window.
    pub requests: u64,
    /// Tokens admitted per window; `None` when tokens are not limited.
    #[serde(default)]
    pub tokens: Option<u64>,
}

impl RegistryEntry {
    /// The registry entry describing `limit`.
    pub fn of(limit: &Limit) -> Self {
        Self {
            resource: limit.resource.clone(),
            identifier: limit.identifier.clone(),
            limits: RegistryLimits {
                requests: limit.limits.requests,
                tokens: limit.limits.tokens,
            },
            window_seconds: limit.limits.window_seconds(),
        }
    }

    /// The window in microseconds, if the entry's window is usable.
    pub(crate) fn window_us(&self) -> Option<u64> {
        let w = Duration::try_from_secs_f64(self.window_seconds).ok()?;
        (MIN_WINDOW..=MAX_WINDOW)
            .contains(&w)
            .then_some(w.as_micros() as u64)
    }

    pub(crate) fn snapshot(&self, key: &str, usage: Usage) -> LimitUsage {
        LimitUsage {
            key: key.to_owned(),
            resource: self.resource.clone(),
            identifier: self.identifier.clone(),
            window_seconds: self.window_seconds,
            requests_used: usage.requests_used,
            requests_limit: Some(self.limits.requests),
            tokens_used: self.limits.tokens.map(|_| usage.tokens_used),
            tokens_limit: self.limits.tokens,
            limit_origin: LimitOrigin::Registry,
            activity: None,
        }
    }
}

/// How long a limiter process counts as present after its last check (for the default
/// `local` share).
pub const PRESENCE_HORIZON: Duration = Duration::from_secs(30);

/// Most registry entries [`LimiterStore::read_limits`] (and so [`RateLimiter::headroom_all`])
/// reads (in key order), so one dashboard poll stays one bounded pipeline even if identifiers
/// are per user.
pub const REGISTRY_READ_LIMIT: usize = 1_000;

/// The limiter's storage interface, over Redis ([`RedisLimiter`]) or memory ([`MemoryLimiter`]):
/// one atomic step per operation. Decisions and fallbacks are [`RateLimiter`]'s.
#[async_trait::async_trait]
pub trait LimiterStore: crate::store::Store {
    /// Prunes the window, counts, decides and (if admitted) records one request reserving
    /// `tokens` (0 when tokens are not limited) under the unique `request_id`, atomically.
    async fn limit_check(
        &self,
        limit: &Limit,
        tokens: u64,
        request_id: &str,
    ) -> crate::Result<Verdict>;

    /// Replaces the `reserved` tokens of an admitted request by the `used` ones (0 releases
    /// them all). Does nothing if the request has already left the window.
    async fn limit_reconcile(
        &self,
        limit: &Limit,
        request_id: &str,
        reserved: u64,
        used: u64,
    ) -> crate::Result<()>;

    /// The window's use now. Read-only: it changes nothing, not even expired entries.
    async fn limit_usage(&self, limit: &Limit) -> crate::Result<Usage>;

    /// Empties the window (requests and tokens).
    async fn limit_reset(&self, limit: &Limit) -> crate::Result<()>;

    /// Records the limits in force for the key in the registry.
    async fn limit_register(&self, limit: &Limit) -> crate::Result<()>;

    /// Removes the key from the registry (its window is left alone).
    async fn limit_unregister(&self, limit: &Limit) -> crate::Result<()>;

    /// Records that the limiter process `instance` is checking now and returns how many
    /// processes did so within [`PRESENCE_HORIZON`] (this one included): the default share
    /// of the `local` failure policy is 1/that.
    async fn limit_presence(&self, instance: &str) -> crate::Result<u64>;

    /// Headroom of every registered key (at most [`REGISTRY_READ_LIMIT`]) and, on Redis, of
    /// the windows under the prefix without a registry entry (a cached, bounded SCAN), in key
    /// order, in a
    /// bounded number of round trips and with read-only commands only, with the registry
    /// entries and windows that could not be read.
    async fn read_limits(&self) -> crate::Result<LimitsRead>;
}

/// What a headroom read returns: the figures, and whatever could not be parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitsRead {
    /// Headroom of every readable window (registered, then found by SCAN), in key order.
    pub limits: Vec<LimitUsage>,
    /// Registry entries and windows that could not be read, with the reason.
    pub malformed: Vec<crate::model::Malformed>,
}

/// Rounds microseconds up to whole milliseconds, so a retry-after is never early.
pub(crate) fn ceil_to_millis(us: u64) -> Duration {
    Duration::from_millis(us.div_ceil(1_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(ceil_to_millis(1), Duration::from_millis(1));
        assert_eq!(ceil_to_millis(1_000), Duration::from_millis(1));
        assert_eq!(ceil_to_millis(1_001), Duration::from_millis(2));
    }

    #[test]
    fn ttl_is_window_plus_sixty() {
        assert_eq!(
            Limits::requests(1, Duration::from_secs(60)).ttl_seconds(),
            120
        );
        assert_eq!(
            Limits::requests(1, Duration::from_millis(1500)).ttl_seconds(),
            62
        );
    }

    #[test]
    fn limits_are_validated() {
        assert!(
            Limits::requests(0, Duration::from_secs(1))
                .validate()
                .is_err()
        );
        assert!(
            Limits::requests(1, Duration::from_secs(1))
                .with_tokens(0)
                .validate()
                .is_err()
        );
        assert!(Limits::requests(1, Duration::ZERO).validate().is_err());
        assert!(
            Limits::requests(1, Duration::from_secs(86_401))
                .validate()
                .is_err()
        );
        assert!(
            Limits::requests(1, Duration::from_secs(60))
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn replies_decode() {
        assert_eq!(
            Verdict::from_reply(&[0, 5, 0, 1234, 1, 99]),
            Some(Verdict::Refused {
                at_us: 99,
                requests_used: 5,
                tokens_used: 0,
                retry_after_us: 1234,
                exceeded: Exceeded::Requests
            })
        );
        assert_eq!(
            Verdict::from_reply(&[-1, 0, 0, 0, 2, 0]),
            Some(Verdict::TooLarge)
        );
        assert_eq!(Verdict::from_reply(&[7, 0, 0, 0, 0, 0]), None);
        assert_eq!(Verdict::from_reply(&[1, 2]), None);
    }
}
