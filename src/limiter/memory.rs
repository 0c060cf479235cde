//! The limiter in process: the same sliding-window log as `check.lua`, under one lock.
//!
//! It serves the in-memory backend (demo, single-process use) and is the `local` failure
//! policy's fallback while Redis is unreachable. The algorithm is a pure function of an
//! injected clock ([`Window::check`]), so it is tested exactly, without sleeping.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use super::LimitsRead;
use super::{
    Exceeded, Limit, LimiterStore, Limits, REGISTRY_READ_LIMIT, RegistryEntry, Usage, Verdict,
};
use crate::store::{MemoryCore, delegate_store};

/// Checks between two sweeps of idle windows, which bounds memory when identifiers churn.
const SWEEP_EVERY: u32 = 1_024;

/// This process's clock, epoch microseconds.
pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The limiter's state inside [`MemoryStorage`].
#[derive(Debug, Default)]
pub struct LimiterState {
    windows: HashMap<String, Window>,
    registry: BTreeMap<String, RegistryEntry>,
    checks_since_sweep: u32,
    /// Limiter instances over this store and when each last checked.
    presence: HashMap<String, std::time::Instant>,
}

#[derive(Debug)]
struct TokenEntry {
    at: i64,
    id: String,
    tokens: u64,
}

/// One key's log: admission times with their request ids (bounded by the request limit) and
/// one token entry per admitted request that reserved tokens, with their running sum.
#[derive(Debug, Default)]
pub(crate) struct Window {
    log: VecDeque<(i64, String)>,
    tokens: VecDeque<TokenEntry>,
    token_sum: u64,
    window_us: u64,
}

impl Window {
    fn prune(&mut self, cutoff: i64) {
        while self.log.front().is_some_and(|(at, _)| *at <= cutoff) {
            self.log.pop_front();
        }
        while let Some(e) = self.tokens.front()
            && e.at <= cutoff
        {
            self.token_sum = self.token_sum.saturating_sub(e.tokens);
            self.tokens.pop_front();
        }
    }

    fn is_empty(&self) -> bool {
        self.log.is_empty() && self.tokens.is_empty()
    }

    /// The same decision as `check.lua`, at the given clock.
    pub(crate) fn check(&mut self, now: i64, limits: &Limits, cost: u64, id: &str) -> Verdict {
        // Keep the log sorted even if the wall clock steps back.
        let newest = self.log.back().map(|(at, _)| *at).into_iter();
        let now = newest
            .chain(self.tokens.back().map(|e| e.at))
            .fold(now, i64::max);
        let window = limits.window_us() as i64;
        self.window_us = limits.window_us();
        self.prune(now - window);
        let count = self.log.len() as u64;
        let sum = self.token_sum;
        let tok_limit = limits.tokens.unwrap_or(0);
        if tok_limit > 0 && cost > tok_limit {
            return Verdict::TooLarge;
        }
        let mut wait: i64 = 0;
        let mut bits = 0;
        if count >= limits.requests {
            let k = (count - limits.requests) as usize;
            wait = self.log[k].0 + window - now;
            bits |= 1;
        }
        if tok_limit > 0 && sum + cost > tok_limit {
            let need = sum + cost - tok_limit;
            let mut freed = 0;
            let mut tw = window;
            for e in &self.tokens {
                freed += e.tokens;
                if freed >= need {
                    tw = e.at + window - now;
                    break;
                }
            }
            wait = wait.max(tw);
            bits |= 2;
        }
        if bits != 0 {
            return Verdict::Refused {
                at_us: now,
                requests_used: count,
                tokens_used: sum,
                retry_after_us: wait.max(1) as u64,
                exceeded: match bits {
                    1 => Exceeded::Requests,
                    2 => Exceeded::Tokens,
                    _ => Exceeded::RequestsAndTokens,
                },
            };
        }
        self.log.push_back((now, id.to_owned()));
        if cost > 0 {
            self.tokens.push_back(TokenEntry {
                at: now,
                id: id.to_owned(),
                tokens: cost,
            });
            self.token_sum += cost;
        }
        Verdict::Admitted {
            at_us: now,
            requests_used: count + 1,
            tokens_used: sum + cost,
        }
    }

    /// The window's use at `now` without changing anything.
    pub(crate) fn usage(&self, now: i64, window_us: u64) -> Usage {
        let cutoff = now - window_us as i64;
        let requests_used =
            (self.log.len() - self.log.partition_point(|(at, _)| *at <= cutoff)) as u64;
        let gone: u64 = self
            .tokens
            .iter()
            .take_while(|e| e.at <= cutoff)
            .map(|e| e.tokens)
            .sum();
        Usage {
            at_us: now,
            requests_used,
            tokens_used: self.token_sum.saturating_sub(gone),
        }
    }

    pub(crate) fn reconcile(&mut self, id: &str, reserved: u64, used: u64) {
        // Recent reservations sit at the back.
        let Some(pos) = self
            .tokens
            .iter()
            .rposition(|e| e.id == id && e.tokens == reserved)
        else {
            return;
        };
        self.token_sum = (self.token_sum + used).saturating_sub(reserved);
        if used == 0 {
            self.tokens.remove(pos);
        } else {
            self.tokens[pos].tokens = used;
        }
    }
}

impl Window {
    /// Moves the admission `id` to `at` if that is later (the store decided it then; a later
    /// stamp keeps it in this window at least as long as in the store's), keeping both logs
    /// sorted.
    pub(crate) fn restamp(&mut self, id: &str, at: i64) {
        if let Some(pos) = self.log.iter().rposition(|(_, i)| i == id)
            && self.log[pos].0 < at
            && let Some(entry) = self.log.remove(pos)
        {
            let to = self.log.partition_point(|(t, _)| *t <= at);
            self.log.insert(to, (at, entry.1));
        }
        if let Some(pos) = self.tokens.iter().rposition(|e| e.id == id)
            && self.tokens[pos].at < at
            && let Some(mut entry) = self.tokens.remove(pos)
        {
            entry.at = at;
            let to = self.tokens.partition_point(|e| e.at <= at);
            self.tokens.insert(to, entry);
        }
    }

    /// Takes the admission `id` back (the store refused it or could not be asked).
    pub(crate) fn remove(&mut self, id: &str) {
        if let Some(pos) = self.log.iter().rposition(|(_, i)| i == id) {
            self.log.remove(pos);
        }
        if let Some(pos) = self.tokens.iter().rposition(|e| e.id == id)
            && let Some(entry) = self.tokens.remove(pos)
        {
            self.token_sum = self.token_sum.saturating_sub(entry.tokens);
        }
    }
}

impl LimiterState {
    fn sweep(&mut self, now: i64) {
        self.windows.retain(|_, w| {
            w.prune(now - w.window_us as i64);
            !w.is_empty()
        });
    }
}

/// The limiter in this process's memory: the demo backend, and the local fallback window of
/// every [`super::RateLimiter`].
#[derive(Debug)]
pub struct MemoryLimiter {
    core: MemoryCore,
    state: std::sync::Mutex<LimiterState>,
}

delegate_store!(MemoryLimiter);

impl MemoryLimiter {
    /// An empty limiter.
    pub fn new(core: MemoryCore) -> Self {
        Self {
            core,
            state: Default::default(),
        }
    }

    /// [`LimiterStore::limit_check`] against other limits than the key's own (the `local`
    /// policy's share of them).
    pub(crate) fn check_with(
        &self,
        limit: &Limit,
        limits: &Limits,
        tokens: u64,
        request_id: &str,
    ) -> Verdict {
        let now = now_us();
        let mut state = self.limiter_state();
        state.checks_since_sweep += 1;
        if state.checks_since_sweep >= SWEEP_EVERY {
            state.checks_since_sweep = 0;
            state.sweep(now);
        }
        let window = state.windows.entry(limit.key.clone()).or_default();
        window.check(now, limits, tokens, request_id)
    }

    /// The window's use now (what [`LimiterStore::limit_usage`] answers), without awaiting.
    pub(crate) fn usage_now(&self, limit: &Limit) -> Usage {
        let now = now_us();
        match self.limiter_state().windows.get(&limit.key) {
            Some(w) => w.usage(now, limit.limits.window_us()),
            None => Usage {
                at_us: now,
                requests_used: 0,
                tokens_used: 0,
            },
        }
    }

    /// See [`Window::restamp`].
    pub(crate) fn restamp(&self, limit: &Limit, request_id: &str, at_us: i64) {
        if let Some(w) = self.limiter_state().windows.get_mut(&limit.key) {
            w.restamp(request_id, at_us);
        }
    }

    /// See [`Window::remove`].
    pub(crate) fn remove(&self, limit: &Limit, request_id: &str) {
        if let Some(w) = self.limiter_state().windows.get_mut(&limit.key) {
            w.remove(request_id);
        }
    }

    fn limiter_state(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        // A panic while holding the lock cannot leave a window half-updated in a way that
        // matters more than losing the limiter altogether, so keep going with the data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl LimiterStore for MemoryLimiter {
    async fn limit_check(
        &self,
        limit: &Limit,
        tokens: u64,
        request_id: &str,
    ) -> crate::Result<Verdict> {
        Ok(self.check_with(limit, &limit.limits, tokens, request_id))
    }

    async fn limit_reconcile(
        &self,
        limit: &Limit,
        request_id: &str,
        reserved: u64,
        used: u64,
    ) -> crate::Result<()> {
        if let Some(w) = self.limiter_state().windows.get_mut(&limit.key) {
            w.reconcile(request_id, reserved, used);
        }
        Ok(())
    }

    async fn limit_usage(&self, limit: &Limit) -> crate::Result<Usage> {
        Ok(self.usage_now(limit))
    }

    async fn limit_presence(&self, instance: &str) -> crate::Result<u64> {
        let now = std::time::Instant::now();
        let mut state = self.limiter_state();
        state.presence.insert(instance.to_owned(), now);
        state
            .presence
            .retain(|_, seen| now.duration_since(*seen) < super::PRESENCE_HORIZON);
        Ok(state.presence.len() as u64)
    }

    async fn limit_reset(&self, limit: &Limit) -> crate::Result<()> {
        self.limiter_state().windows.remove(&limit.key);
        Ok(())
    }

    async fn limit_register(&self, limit: &Limit) -> crate::Result<()> {
        self.limiter_state()
            .registry
            .insert(limit.key.clone(), RegistryEntry::of(limit));
        Ok(())
    }

    async fn limit_unregister(&self, limit: &Limit) -> crate::Result<()> {
        self.limiter_state().registry.remove(&limit.key);
        Ok(())
    }

    async fn read_limits(&self) -> crate::Result<LimitsRead> {
        let now = now_us();
        let state = self.limiter_state();
        let limits = state
            .registry
            .iter()
            .filter_map(|(key, entry)| {
                let window_us = entry.window_us()?;
                let usage = match state.windows.get(key) {
                    Some(w) => w.usage(now, window_us),
                    None => Usage {
                        at_us: now,
                        requests_used: 0,
                        tokens_used: 0,
                    },
                };
                Some(entry.snapshot(key, usage))
            })
            .take(REGISTRY_READ_LIMIT)
            .collect();
        Ok(LimitsRead {
            limits,
            malformed: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const S: i64 = 1_000_000;

    fn limits(requests: u64, tokens: Option<u64>, window_s: u64) -> Limits {
        Limits {
            requests,
            tokens,
            window: Duration::from_secs(window_s),
        }
    }

    fn admitted(v: Verdict) -> bool {
        matches!(v, Verdict::Admitted { .. })
    }

    fn retry(v: Verdict) -> u64 {
        match v {
            Verdict::Refused { retry_after_us, .. } => retry_after_us,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn requests_slide_and_retry_is_exact() {
        let l = limits(3, None, 10);
        let mut w = Window::default();
        let t0 = 1_700_000_000 * S;
        assert!(admitted(w.check(t0, &l, 0, "a")));
        assert!(admitted(w.check(t0 + S, &l, 0, "b")));
        assert!(admitted(w.check(t0 + 2 * S, &l, 0, "c")));
        // Full: the oldest (t0) leaves at t0 + 10 s exactly.
        assert_eq!(retry(w.check(t0 + 3 * S, &l, 0, "d")), 7 * S as u64);
        assert_eq!(retry(w.check(t0 + 10 * S - 1, &l, 0, "d")), 1);
        assert!(admitted(w.check(t0 + 10 * S, &l, 0, "d")));
        assert_eq!(w.usage(t0 + 10 * S, 10 * S as u64).requests_used, 3);
    }

    #[test]
    fn tokens_are_reserved_reconciled_and_expire() {
        let l = limits(100, Some(1_000), 10);
        let mut w = Window::default();
        let t0 = 1_700_000_000 * S;
        assert!(admitted(w.check(t0, &l, 600, "a")));
        assert!(admitted(w.check(t0 + S, &l, 300, "b")));
        // 900 used: 200 more needs "a" (600) to leave, at t0 + 10 s.
        let v = w.check(t0 + 2 * S, &l, 200, "c");
        assert_eq!(retry(v), 8 * S as u64);
        assert!(matches!(
            v,
            Verdict::Refused {
                exceeded: Exceeded::Tokens,
                ..
            }
        ));
        // "a" really used 100: 500 come back at once.
        w.reconcile("a", 600, 100);
        assert_eq!(w.usage(t0 + 2 * S, 10 * S as u64).tokens_used, 400);
        assert!(admitted(w.check(t0 + 2 * S, &l, 200, "c")));
        // A failed call releases everything.
        w.reconcile("c", 200, 0);
        assert_eq!(w.usage(t0 + 2 * S, 10 * S as u64).tokens_used, 400);
        assert_eq!(w.check(t0 + 3 * S, &l, 1_001, "x"), Verdict::TooLarge);
        // Everything has left after one window.
        assert_eq!(w.usage(t0 + 12 * S, 10 * S as u64).tokens_used, 0);
    }

    #[test]
    fn usage_does_not_prune() {
        let l = limits(2, Some(10), 1);
        let mut w = Window::default();
        let t0 = 1_700_000_000 * S;
        assert!(admitted(w.check(t0, &l, 5, "a")));
        let u = w.usage(t0 + 5 * S, S as u64);
        assert_eq!((u.requests_used, u.tokens_used), (0, 0));
        assert_eq!(w.log.len(), 1);
        assert_eq!(w.token_sum, 5);
    }

    #[test]
    fn restamped_admissions_stay_sorted_and_removed_ones_free_their_slot() {
        let l = limits(3, Some(100), 10);
        let mut w = Window::default();
        let t0 = 1_700_000_000 * S;
        assert!(admitted(w.check(t0, &l, 10, "a")));
        assert!(admitted(w.check(t0 + S, &l, 20, "b")));
        // "a" was decided later by the store: it moves behind "b" and leaves the window later.
        w.restamp("a", t0 + 2 * S);
        assert_eq!(
            w.log.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(w.usage(t0 + 11 * S, 10 * S as u64).requests_used, 1);
        assert_eq!(w.usage(t0 + 11 * S, 10 * S as u64).tokens_used, 10);
        // An earlier stamp never moves an entry back.
        w.restamp("a", t0);
        assert_eq!(w.log.back().unwrap().0, t0 + 2 * S);
        // A removed admission gives its request and tokens back.
        assert!(admitted(w.check(t0 + 3 * S, &l, 30, "c")));
        w.remove("c");
        let u = w.usage(t0 + 3 * S, 10 * S as u64);
        assert_eq!((u.requests_used, u.tokens_used), (2, 30));
    }

    #[test]
    fn clock_stepping_back_keeps_the_log_sorted() {
        let l = limits(10, None, 10);
        let mut w = Window::default();
        let t0 = 1_700_000_000 * S;
        assert!(admitted(w.check(t0, &l, 0, "a")));
        assert!(admitted(w.check(t0 - 5 * S, &l, 0, "b")));
        assert!(
            w.log
                .iter()
                .zip(w.log.iter().skip(1))
                .all(|(a, b)| a.0 <= b.0)
        );
    }
}
