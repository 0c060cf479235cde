//! The limiter on Redis: one `EVALSHA` per check (the script is sent again with `EVAL` when
//! the server answers `NOSCRIPT`, e.g. after a restart or on a Cluster node that has not seen
//! it), plain read-only commands for headroom.
//!
//! Checks of one key that arrive while two calls for that key are in flight wait and then go
//! together, as one call that decides them in order ([`CheckBatches`]): on a connection many
//! callers share, a script's fixed cost (the call, `TIME`, the prune, the count, the TTL) is
//! paid once per batch instead of once per check, which is what lets an exact check cost the
//! server less than the original's four plain commands. Otherwise a check is sent at once (by a
//! driver task of its own, so that a caller giving up cannot strand the checks behind it).
//!
//! Every script touches only the window key and its two extension keys, which carry the
//! window key as their hash tag: one hash slot, so it runs unchanged on Redis Cluster.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{Script, Value};

use std::sync::Arc;

use super::{
    Limit, LimitOrigin, LimiterStore, LimitsRead, REGISTRY_READ_LIMIT, RegistryEntry,
    RegistryLimits, Usage, Verdict, configured_limit, original_preset_of_key,
};
use crate::connection::{Discovery, DiscoveryScan};
use crate::error::Error;
use crate::model::Malformed;
use crate::store::{RedisCore, delegate_store};

/// The check (prune, count, decide, record).
pub(crate) static CHECK_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("check.lua")));
/// The reconcile step of a token reservation.
static RECONCILE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("reconcile.lua")));

/// The presence refresh (`limit_presence`).
static PRESENCE_SCRIPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("presence.lua")));

/// The source text of the check script (for benchmarks that drive it with `redis-benchmark`).
pub fn check_script_source() -> &'static str {
    include_str!("check.lua")
}

/// The SHA1 under which the check script is cached by the server.
pub fn check_script_sha() -> &'static str {
    CHECK_SCRIPT.get_hash()
}

/// Exact decimal text of an epoch-microsecond time as a score (the script's `score_text`).
pub(crate) fn score_text(us: i64) -> String {
    format!(
        "{}.{:06}",
        us.div_euclid(1_000_000),
        us.rem_euclid(1_000_000)
    )
}

/// The weight encoded in a token entry member `<id>:<tokens>`.
pub(crate) fn entry_weight(member: &str) -> u64 {
    member
        .rsplit_once(':')
        .and_then(|(_, w)| w.parse().ok())
        .unwrap_or(0)
}

/// Most windows without a registry entry the discovery keeps (so one poll stays bounded).
pub const WINDOW_SCAN_LIMIT: usize = 1_000;

/// Most checks one script call decides.
const MAX_BATCH: usize = 128;
/// Script calls in flight per limit at most. Two, so that the server decides one batch while
/// the next one forms and travels (Redis runs scripts one at a time: exactness does not depend
/// on this number, only how the checks group).
const MAX_IN_FLIGHT: usize = 2;

/// One check waiting for its batch.
struct Waiting {
    tokens: u64,
    id: String,
    reply: tokio::sync::oneshot::Sender<crate::Result<Verdict>>,
}

/// The checks of one limit waiting to be sent, and the drivers sending them.
#[derive(Default)]
struct Queue {
    waiting: std::collections::VecDeque<Waiting>,
    drivers: usize,
}

/// The queues of the limits that have a call in flight (a queue is removed when its last
/// driver finds it empty).
#[derive(Default)]
struct CheckBatches {
    queues: std::sync::Mutex<HashMap<Limit, Queue>>,
}

impl std::fmt::Debug for CheckBatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckBatches").finish_non_exhaustive()
    }
}

impl CheckBatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Limit, Queue>> {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The limiter on Redis (standalone or Cluster).
#[derive(Debug, Clone)]
pub struct RedisLimiter {
    core: RedisCore,
    /// The walk for windows under the prefix (Python-written ones have no registry entry):
    /// a bounded step per read.
    windows: Arc<tokio::sync::Mutex<Discovery>>,
    batches: Arc<CheckBatches>,
}

delegate_store!(RedisLimiter);

impl RedisLimiter {
    /// The limiter over `core`'s connection.
    pub fn new(core: RedisCore) -> Self {
        Self {
            core,
            windows: Default::default(),
            batches: Default::default(),
        }
    }

    /// Sends the checks queued for `limit`, batch after batch, until none is left (the last
    /// driver to leave removes the queue, so the next check starts a new one).
    async fn drive(self, limit: Limit) {
        loop {
            let batch: Vec<Waiting> = {
                let mut queues = self.batches.lock();
                let Some(queue) = queues.get_mut(&limit) else {
                    return;
                };
                // A caller that gave up before its check was sent is not checked at all.
                queue.waiting.retain(|w| !w.reply.is_closed());
                if queue.waiting.is_empty() {
                    queue.drivers -= 1;
                    if queue.drivers == 0 {
                        queues.remove(&limit);
                    }
                    return;
                }
                let n = queue.waiting.len().min(MAX_BATCH);
                queue.waiting.drain(..n).collect()
            };
            match self.check_batch(&limit, &batch).await {
                Ok(verdicts) => {
                    for (w, v) in batch.into_iter().zip(verdicts) {
                        let _ = w.reply.send(Ok(v));
                    }
                }
                Err(e) => {
                    for w in batch {
                        let _ = w.reply.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// One script call deciding `batch` in order.
    async fn check_batch(&self, limit: &Limit, batch: &[Waiting]) -> crate::Result<Vec<Verdict>> {
        let tokens_key = self.core.keys.ratelimit_tokens(&limit.key);
        let sum_key = self.core.keys.ratelimit_token_sum(&limit.key);
        let mut args = Vec::with_capacity(4 + 2 * batch.len());
        args.extend([
            limit.limits.window_us().to_string(),
            limit.limits.requests.to_string(),
            limit.limits.tokens.unwrap_or(0).to_string(),
            limit.limits.ttl_seconds().to_string(),
        ]);
        for w in batch {
            args.push(w.tokens.to_string());
            args.push(w.id.clone());
        }
        let reply = self
            .core
            .eval_script(
                &CHECK_SCRIPT,
                include_str!("check.lua"),
                &[&limit.key, &tokens_key, &sum_key],
                &args,
            )
            .await?;
        let ints: Vec<i64> = redis::from_redis_value(reply)
            .map_err(|e| Error::UnexpectedReply(format!("limiter script: {e}")))?;
        if ints.len() != 6 * batch.len() {
            return Err(Error::UnexpectedReply(format!(
                "limiter script: {} values for {} checks",
                ints.len(),
                batch.len()
            )));
        }
        ints.chunks(6)
            .map(|r| {
                Verdict::from_reply(r)
                    .ok_or_else(|| Error::UnexpectedReply(format!("limiter script: {r:?}")))
            })
            .collect()
    }

    /// Every sorted set under the rate-limit prefix except the extension keys, from a walk
    /// (never KEYS; at most [`WINDOW_SCAN_LIMIT`] windows) that advances one bounded step per
    /// read ([`Discovery`]): whole on the first read and the first after
    /// [`crate::store::Store::forget_scans`].
    async fn scanned_windows(&self) -> crate::Result<Vec<String>> {
        let mut discovery = self.windows.lock().await;
        let whole = discovery
            .walked_at()
            .is_none_or(|at| !self.core.scan_still_valid(at));
        let pattern = self.core.keys.ratelimit_scan_pattern();
        let scan = DiscoveryScan {
            pattern: &pattern,
            key_type: Some("zset"),
            count_per_step: self.core.scan_count_per_poll(),
            limit: WINDOW_SCAN_LIMIT,
        };
        // Key names that are not UTF-8 (no window either side writes) are left out.
        let keep = |key: &[u8]| {
            let key = std::str::from_utf8(key).ok()?;
            (!self.core.keys.is_ratelimit_extension(key)).then(|| key.to_owned())
        };
        discovery.read(&self.core.redis, scan, whole, keep).await
    }

    /// What a reader knows of a window no process registered: the original's preset table
    /// for its preset keys, else `[[limiter.limits]]`, else nothing (limit unknown, 60 s
    /// assumed).
    fn unregistered_entry(&self, key: &str) -> (RegistryEntry, LimitOrigin) {
        let prefix = &self.core.keys.prefixes().ratelimit;
        if let Some((provider, model, identifier, rpm)) = original_preset_of_key(prefix, key) {
            return (
                RegistryEntry {
                    resource: format!("{provider}:{model}"),
                    identifier: identifier.to_owned(),
                    limits: RegistryLimits {
                        requests: rpm,
                        tokens: None,
                    },
                    window_seconds: super::presets::ORIGINAL_WINDOW_SECONDS,
                },
                LimitOrigin::Original,
            );
        }
        let rest = key
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
            .unwrap_or(key);
        let (resource, identifier) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let entry = |requests, window_seconds| RegistryEntry {
            resource: resource.to_owned(),
            identifier: identifier.to_owned(),
            limits: RegistryLimits {
                requests,
                tokens: None,
            },
            window_seconds,
        };
        match configured_limit(&self.core.settings.limiter.limits, key) {
            Some(l) => (entry(l.requests, l.window_seconds), LimitOrigin::Config),
            None => (
                entry(0, super::presets::ORIGINAL_WINDOW_SECONDS),
                LimitOrigin::Unknown,
            ),
        }
    }

    /// The server clock in epoch microseconds. A reader whose ACL forbids `TIME` falls back to
    /// its own clock (headroom is then as exact as the clocks agree).
    async fn server_time_us(&self) -> crate::Result<i64> {
        match self
            .core
            .redis
            .query::<(i64, i64)>(&redis::cmd("TIME"))
            .await
        {
            Ok((s, us)) => Ok(s * 1_000_000 + us),
            Err(Error::Permission { .. }) => Ok(super::memory::now_us()),
            Err(e) => Err(e),
        }
    }

    /// Adds to `pipe` the read-only commands that measure one window at `now_us`; three
    /// replies, decoded by [`decode_usage`].
    fn push_usage_reads(
        &self,
        pipe: &mut redis::Pipeline,
        window_key: &str,
        window_us: u64,
        now_us: i64,
    ) {
        let cutoff = score_text(now_us - window_us as i64);
        pipe.cmd("ZCOUNT")
            .arg(window_key)
            .arg(format!("({cutoff}"))
            .arg("+inf");
        pipe.cmd("GET")
            .arg(self.core.keys.ratelimit_token_sum(window_key));
        pipe.cmd("ZRANGEBYSCORE")
            .arg(self.core.keys.ratelimit_tokens(window_key))
            .arg("-inf")
            .arg(cutoff);
    }
}

/// Decodes the three replies of [`RedisStorage::push_usage_reads`]: the requests in the
/// window, and the running token sum minus the entries that have left the window but have not
/// been pruned yet (the check script prunes; a reader must not write).
pub(crate) fn decode_usage(replies: &[Value], now_us: i64) -> crate::Result<Usage> {
    let bad = |what: &str| Error::UnexpectedReply(format!("the limiter's {what}"));
    let [count, sum, expired] = replies else {
        return Err(bad("headroom read"));
    };
    let requests_used: u64 = redis::from_redis_value(count.clone()).map_err(|_| bad("ZCOUNT"))?;
    let sum: Option<i64> = redis::from_redis_value(sum.clone()).map_err(|_| bad("GET"))?;
    let expired: Vec<String> =
        redis::from_redis_value(expired.clone()).map_err(|_| bad("ZRANGEBYSCORE"))?;
    let gone: u64 = expired.iter().map(|m| entry_weight(m)).sum();
    let tokens_used = (sum.unwrap_or(0).max(0) as u64).saturating_sub(gone);
    Ok(Usage {
        at_us: now_us,
        requests_used,
        tokens_used,
    })
}

#[async_trait::async_trait]
impl LimiterStore for RedisLimiter {
    async fn limit_check(
        &self,
        limit: &Limit,
        tokens: u64,
        request_id: &str,
    ) -> crate::Result<Verdict> {
        let (reply, verdict) = tokio::sync::oneshot::channel();
        let waiting = Waiting {
            tokens,
            id: request_id.to_owned(),
            reply,
        };
        let lead = {
            let mut queues = self.batches.lock();
            match queues.get_mut(limit) {
                Some(queue) => {
                    queue.waiting.push_back(waiting);
                    let lead = queue.drivers < MAX_IN_FLIGHT;
                    queue.drivers += usize::from(lead);
                    lead
                }
                None => {
                    let waiting = std::collections::VecDeque::from([waiting]);
                    queues.insert(
                        limit.clone(),
                        Queue {
                            waiting,
                            drivers: 1,
                        },
                    );
                    true
                }
            }
        };
        if lead {
            // Its own task, so that a caller giving up cannot strand the checks queued behind
            // its call.
            let driver = self.clone().drive(limit.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(driver)),
                Err(_) => driver.await,
            }
        }
        verdict.await.unwrap_or_else(|_| {
            Err(Error::UnexpectedReply(
                "the limiter's batch ended without an answer".into(),
            ))
        })
    }

    async fn limit_reconcile(
        &self,
        limit: &Limit,
        request_id: &str,
        reserved: u64,
        used: u64,
    ) -> crate::Result<()> {
        if reserved == used {
            return Ok(());
        }
        let tokens_key = self.core.keys.ratelimit_tokens(&limit.key);
        let sum_key = self.core.keys.ratelimit_token_sum(&limit.key);
        self.core
            .eval_script(
                &RECONCILE_SCRIPT,
                include_str!("reconcile.lua"),
                &[&tokens_key, &sum_key],
                &[
                    request_id.to_owned(),
                    reserved.to_string(),
                    used.to_string(),
                ],
            )
            .await
            .map(drop)
    }

    async fn limit_usage(&self, limit: &Limit) -> crate::Result<Usage> {
        let now_us = self.server_time_us().await?;
        let mut pipe = redis::pipe();
        self.push_usage_reads(&mut pipe, &limit.key, limit.limits.window_us(), now_us);
        let replies: Vec<Value> = self.core.redis.query_pipe(&pipe).await?;
        decode_usage(&replies, now_us)
    }

    async fn limit_reset(&self, limit: &Limit) -> crate::Result<()> {
        // One DEL of three keys of one slot: atomic, and valid on Cluster.
        let mut cmd = redis::cmd("DEL");
        cmd.arg(&limit.key)
            .arg(self.core.keys.ratelimit_tokens(&limit.key))
            .arg(self.core.keys.ratelimit_token_sum(&limit.key));
        self.core.redis.query::<()>(&cmd).await
    }

    async fn limit_register(&self, limit: &Limit) -> crate::Result<()> {
        let entry = serde_json::to_string(&RegistryEntry::of(limit))
            .map_err(|e| Error::InvalidInput(format!("cannot encode a registry entry: {e}")))?;
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.core.keys.ratelimit_registry())
            .arg(&limit.key)
            .arg(entry);
        self.core.redis.query::<()>(&cmd).await
    }

    async fn limit_unregister(&self, limit: &Limit) -> crate::Result<()> {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(self.core.keys.ratelimit_registry()).arg(&limit.key);
        self.core.redis.query::<()>(&cmd).await
    }

    async fn limit_presence(&self, instance: &str) -> crate::Result<u64> {
        let key = self.core.keys.ratelimit_presence();
        let reply = self
            .core
            .eval_script(
                &PRESENCE_SCRIPT,
                include_str!("presence.lua"),
                &[&key],
                &[
                    instance.to_owned(),
                    super::PRESENCE_HORIZON.as_secs().to_string(),
                ],
            )
            .await?;
        redis::from_redis_value(reply)
            .map_err(|e| Error::UnexpectedReply(format!("limiter presence script: {e}")))
    }

    async fn read_limits(&self) -> crate::Result<LimitsRead> {
        let registry_key = self.core.keys.ratelimit_registry();
        let mut malformed = Vec::new();
        // Round trip 1: the registry and the server clock, concurrently.
        let mut hgetall = redis::cmd("HGETALL");
        hgetall.arg(&registry_key);
        let (registry, now_us) = tokio::join!(
            self.core.redis.query::<Value>(&hgetall),
            self.server_time_us()
        );
        let registry = match registry {
            Err(e) if e.is_wrong_type() => {
                malformed.push(Malformed {
                    key: registry_key.clone(),
                    reason: "not a hash (overwritten with another type?)".into(),
                });
                Value::Nil
            }
            other => other?,
        };
        let now_us = now_us?;
        let registry: HashMap<Vec<u8>, Vec<u8>> = match redis::from_redis_value(registry) {
            Ok(r) => r,
            Err(_) => {
                malformed.push(Malformed {
                    key: registry_key.clone(),
                    reason: "not a hash".into(),
                });
                HashMap::new()
            }
        };
        let mut bad = |field: &[u8], reason: String| {
            malformed.push(Malformed {
                key: registry_key.clone(),
                reason: format!("entry {:?} {reason}", String::from_utf8_lossy(field)),
            })
        };
        let mut entries: Vec<(String, RegistryEntry, u64, LimitOrigin)> = Vec::new();
        let registered: std::collections::HashSet<Vec<u8>> = registry.keys().cloned().collect();
        for (field, json) in registry {
            let Ok(key) = String::from_utf8(field.clone()) else {
                bad(&field, "is not UTF-8".into());
                continue;
            };
            match serde_json::from_slice::<RegistryEntry>(&json) {
                Ok(e) => match e.window_us() {
                    Some(window_us) => entries.push((key, e, window_us, LimitOrigin::Registry)),
                    None => bad(&field, "has an impossible window".into()),
                },
                Err(err) => bad(&field, format!("is not a registry entry: {err}")),
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.truncate(REGISTRY_READ_LIMIT);
        // Windows nobody registered (Python's): found by the bounded walk.
        match self.scanned_windows().await {
            Ok(found) => {
                for key in found.iter() {
                    if registered.contains(key.as_bytes()) {
                        continue;
                    }
                    let (entry, origin) = self.unregistered_entry(key);
                    if let Some(window_us) = entry.window_us() {
                        entries.push((key.clone(), entry, window_us, origin));
                    }
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            // An ACL without SCAN still shows the registered windows.
            Err(e) if matches!(e, Error::Permission { .. }) => {
                tracing::debug!(error = %e, "cannot SCAN for unregistered rate-limit windows");
            }
            Err(e) => return Err(e),
        }
        if entries.is_empty() {
            return Ok(LimitsRead {
                limits: Vec::new(),
                malformed,
            });
        }
        // Round trip 2: every key's use, in one pipeline (on Cluster, `query_pipe` sends one
        // sub-pipeline per slot, all at once). Errors stay per command, so a key another
        // program overwrote with the wrong type costs its own row, not the poll.
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (key, _, window_us, _) in &entries {
            self.push_usage_reads(&mut pipe, key, *window_us, now_us);
            // A window found by an earlier SCAN may be gone since (expired, reset).
            pipe.cmd("EXISTS").arg(key);
        }
        let flat: Vec<Value> = self.core.redis.query_pipe(&pipe).await?;
        let replies: Vec<&[Value]> = flat.chunks(4).collect();
        if flat.len() != entries.len() * 4 {
            return Err(Error::UnexpectedReply(
                "wrong number of replies to the headroom pipeline".into(),
            ));
        }
        let mut limits = Vec::with_capacity(entries.len());
        for ((key, entry, _, origin), replies) in entries.iter().zip(replies) {
            let (usage_replies, exists) = replies.split_at(3);
            if *origin != LimitOrigin::Registry && matches!(exists, [Value::Int(0)]) {
                continue;
            }
            match decode_usage(usage_replies, now_us) {
                Ok(usage) => {
                    let mut row = entry.snapshot(key, usage);
                    row.limit_origin = *origin;
                    if *origin == LimitOrigin::Unknown {
                        row.requests_limit = None;
                    }
                    limits.push(row);
                }
                Err(err) => malformed.push(Malformed {
                    key: key.clone(),
                    reason: format!("window cannot be read: {err}"),
                }),
            }
        }
        Ok(LimitsRead { limits, malformed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_exact_decimal_text() {
        assert_eq!(score_text(1_712_345_678_000_001), "1712345678.000001");
        assert_eq!(score_text(1_712_345_678_123_456), "1712345678.123456");
        assert_eq!(score_text(5), "0.000005");
    }

    #[test]
    fn weights_parse_from_members() {
        assert_eq!(entry_weight("abc12:40"), 40);
        assert_eq!(entry_weight("garbage"), 0);
    }
}
