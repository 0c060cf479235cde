//! The outage buffer: tracker and metrics writes must never fail or stall a pipeline because
//! Redis is away, and must not be lost either.
//!
//! A write that fails with an outage ([`crate::Error::is_outage`]) is queued in process and the
//! caller gets `Ok` at once; queued writes replay **in order** as soon as the connection is
//! back (the connection state it follows). Once anything is queued, later writes queue behind it
//! without trying Redis, so the order in which one task made its writes is the order in which
//! they land. The queue is bounded (`tracker.outage_buffer`): what does not fit is refused,
//! counted in [`BufferStats::dropped`] and logged at `warn`, never silently lost.
//!
//! The buffer knows only the connection state and the writes: each write is a [`Replay`] trait
//! object that carries its own store, so the tracker and the metrics (and any later job) share
//! one buffer (and so one order) without the buffer knowing any of them.
//!
//! "An outage" includes a server that answers but refuses for a while (`OOM` at `maxmemory`,
//! `READONLY` after a failover, `LOADING`: [`crate::Error::Refused`]): the connection then stays
//! "up", so the drain retries with a growing pause (at most [`MAX_RETRY_PAUSE`]) instead of
//! waiting for a reconnect, and the first retry after the server accepts writes again replays
//! everything. A write that Redis rejects for another reason (`NOPERM`, `WRONGTYPE`, a syntax
//! `ERR`) cannot succeed by waiting: it is never queued (the caller gets the error), or, met on
//! replay, skipped so it does not block everything behind it; either way it is counted per
//! reply code in [`BufferStats::rejected`] (and a replayed one in [`BufferStats::failed`]).

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::connection::ConnState;
use crate::error::Result;
use crate::store::Store;

/// A write that can be applied (again) to the store it was made for.
#[async_trait::async_trait]
pub trait Replay: Send + Sync + fmt::Debug {
    /// Applies the write; an outage error ([`crate::Error::is_outage`]) keeps it queued.
    async fn replay(&self) -> Result<()>;
}

/// What happened to a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// Stored.
    Written,
    /// Redis is unreachable (or a backlog is replaying): kept, will be replayed in order.
    Buffered,
    /// Redis is unreachable and the buffer is full: lost, counted in [`BufferStats::dropped`].
    Dropped,
}

/// Counters of one buffer since it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferStats {
    /// Writes waiting now.
    pub pending: usize,
    /// Most writes it keeps at once.
    pub capacity: usize,
    /// Writes ever queued.
    pub buffered: u64,
    /// Queued writes applied after the outage.
    pub replayed: u64,
    /// Writes refused because the buffer was full.
    pub dropped: u64,
    /// Queued writes Redis rejected on replay for another reason than an outage.
    pub failed: u64,
    /// Writes Redis rejected for a reason that waiting does not cure, per reply code
    /// (`NOPERM`, `WRONGTYPE`, `ERR`, …), whether met on the first try or on replay. Never
    /// queued, never retried.
    #[serde(default)]
    pub rejected: std::collections::BTreeMap<String, u64>,
}

/// The reply code of a write Redis rejected for good, for [`BufferStats::rejected`]; `None`
/// for errors that are not the server's answer (invalid input caught before sending).
fn rejection_code(e: &crate::Error) -> Option<String> {
    match e {
        crate::Error::Permission { .. } => Some("NOPERM".into()),
        crate::Error::Auth { .. } => Some("AUTH".into()),
        crate::Error::Server { code, .. } => Some(code.as_str().to_owned()),
        crate::Error::UnexpectedReply(_) => Some("UNEXPECTED_REPLY".into()),
        _ => None,
    }
}

/// A bounded, ordered queue of writes made while Redis was unreachable. Cheap to clone; clones
/// share the queue.
#[derive(Clone)]
pub struct OutageBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    connection: watch::Receiver<ConnState>,
    capacity: usize,
    state: Mutex<State>,
    /// Woken whenever the queue becomes empty.
    drained: Notify,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Arc<dyn Replay>>,
    /// A drain task is running (at most one, so replays stay in order).
    draining: bool,
    stats: BufferStats,
    last_drop_warning: Option<Instant>,
    drops_since_warning: u64,
}

impl fmt::Debug for OutageBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutageBuffer")
            .field("stats", &self.stats())
            .finish()
    }
}

/// Longest pause between replay attempts while the connection claims to be up but writes still
/// fail (a server refusing writes with `OOM` or `READONLY`, or one that accepts connections
/// but does not answer): how late, at most, the backlog starts landing once writes pass again.
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);
/// At most one overflow warning per this period (the count covers the whole period).
const DROP_WARNING_PERIOD: Duration = Duration::from_secs(10);

impl OutageBuffer {
    /// A buffer of at most `capacity` writes that replays them while `connection` is up (0
    /// keeps nothing: every write made during an outage is dropped and counted).
    pub fn new(connection: watch::Receiver<ConnState>, capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                connection,
                capacity,
                state: Mutex::new(State {
                    stats: BufferStats {
                        capacity,
                        ..Default::default()
                    },
                    ..Default::default()
                }),
                drained: Notify::new(),
            }),
        }
    }

    /// A buffer following `store`'s connection, of its `tracker.outage_buffer` size.
    pub fn for_store(store: &dyn Store) -> Self {
        Self::new(store.connection(), store.settings().tracker.outage_buffer)
    }

    /// Applies `op` now, or queues it if Redis is unreachable or earlier writes are still
    /// queued. Fails only when storage rejects the write for another reason than an outage.
    pub async fn submit(&self, op: Arc<dyn Replay>) -> Result<WriteOutcome> {
        if self.inner.lock().queue.is_empty() {
            match op.replay().await {
                Ok(()) => return Ok(WriteOutcome::Written),
                Err(e) if e.is_outage() => {
                    tracing::debug!(error = %e, "write failed with an outage, buffering it");
                }
                Err(e) => {
                    self.count_rejection(&e);
                    return Err(e);
                }
            }
        }
        Ok(self.enqueue(op))
    }

    /// Its counters now.
    pub fn stats(&self) -> BufferStats {
        let st = self.inner.lock();
        BufferStats {
            pending: st.queue.len(),
            ..st.stats.clone()
        }
    }

    fn count_rejection(&self, e: &crate::Error) {
        self.inner.count_rejection(e);
    }

    /// Waits until nothing is queued, at most `timeout`; whether the queue is empty.
    pub async fn wait_drained(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.inner.lock().queue.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.lock().queue.is_empty();
            }
        }
    }

    fn enqueue(&self, op: Arc<dyn Replay>) -> WriteOutcome {
        let mut st = self.inner.lock();
        if st.queue.len() >= self.inner.capacity {
            st.stats.dropped += 1;
            st.drops_since_warning += 1;
            let due = st
                .last_drop_warning
                .is_none_or(|t| t.elapsed() >= DROP_WARNING_PERIOD);
            if due {
                tracing::warn!(
                    dropped = st.drops_since_warning,
                    dropped_total = st.stats.dropped,
                    capacity = self.inner.capacity,
                    "Redis unreachable and the outage buffer is full: writes are being dropped"
                );
                st.last_drop_warning = Some(Instant::now());
                st.drops_since_warning = 0;
            }
            return WriteOutcome::Dropped;
        }
        if st.queue.is_empty() {
            tracing::warn!(
                capacity = self.inner.capacity,
                "Redis unreachable: buffering tracker and metrics writes until it returns"
            );
        }
        st.queue.push_back(op);
        st.stats.buffered += 1;
        if !st.draining {
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    st.draining = true;
                    rt.spawn(drain(Arc::downgrade(&self.inner)));
                }
                // Unreachable from async callers; the next submit from a runtime retries.
                Err(_) => tracing::warn!("no tokio runtime: buffered writes wait for one"),
            }
        }
        WriteOutcome::Buffered
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data (plain pushes and pops).
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_rejection(&self, e: &crate::Error) {
        if let Some(code) = rejection_code(e) {
            *self.lock().stats.rejected.entry(code).or_default() += 1;
        }
    }
}

/// Replays the queue front to back, one write at a time, then ends. Holds the buffer only
/// weakly so that dropping every handle ends it.
async fn drain(weak: Weak<Inner>) {
    let mut pause = Duration::from_millis(50);
    let mut replayed_now = 0u64;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let front = {
            let mut st = inner.lock();
            match st.queue.front() {
                Some(op) => op.clone(),
                None => {
                    st.draining = false;
                    drop(st);
                    if replayed_now > 0 {
                        tracing::info!(replayed = replayed_now, "outage buffer drained");
                    }
                    inner.drained.notify_waiters();
                    return;
                }
            }
        };
        let mut conn = inner.connection.clone();
        if !conn.borrow().is_up() {
            // Wait for the reconnect, but wake now and then to notice dropped handles.
            drop(inner);
            let _ =
                tokio::time::timeout(Duration::from_secs(1), conn.wait_for(|s| s.is_up())).await;
            continue;
        }
        match front.replay().await {
            Ok(()) => {
                pause = Duration::from_millis(50);
                replayed_now += 1;
                let mut st = inner.lock();
                st.queue.pop_front();
                st.stats.replayed += 1;
            }
            Err(e) if e.is_outage() => {
                drop(inner);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
            Err(e) => {
                tracing::warn!(error = %e, "a buffered write was rejected on replay; skipping it");
                inner.count_rejection(&e);
                let mut st = inner.lock();
                st.queue.pop_front();
                st.stats.failed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::error::Error;
    use crate::store::MemoryCore;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A write that fails with an outage while `down` is set, recording the order it landed in.
    #[derive(Debug)]
    struct Probe {
        n: usize,
        down: Arc<std::sync::atomic::AtomicBool>,
        log: Arc<Mutex<Vec<usize>>>,
        attempts: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl Replay for Probe {
        async fn replay(&self) -> Result<()> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(Error::Unavailable {
                    endpoint: "test".into(),
                    detail: "down".into(),
                });
            }
            self.log.lock().unwrap().push(self.n);
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_queue_in_order_and_overflow_is_counted() {
        let core = MemoryCore::new(Settings::default());
        let buffer = OutageBuffer::new(core.connection(), 3);
        let down = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let log = Arc::new(Mutex::new(Vec::new()));
        let attempts = Arc::new(AtomicUsize::new(0));
        let probe = |n| {
            Arc::new(Probe {
                n,
                down: down.clone(),
                log: log.clone(),
                attempts: attempts.clone(),
            }) as Arc<dyn Replay>
        };
        // The memory backend is always "up", so the drainer retries with its pause; hold the
        // outage long enough to queue everything first.
        let mut outcomes = Vec::new();
        for n in 0..5 {
            outcomes.push(buffer.submit(probe(n)).await.unwrap());
        }
        assert_eq!(
            outcomes,
            [
                WriteOutcome::Buffered,
                WriteOutcome::Buffered,
                WriteOutcome::Buffered,
                WriteOutcome::Dropped,
                WriteOutcome::Dropped
            ]
        );
        // Only the first write tried storage; the later ones queued behind it untried.
        assert!(attempts.load(Ordering::SeqCst) <= 2);
        down.store(false, Ordering::SeqCst);
        assert!(buffer.wait_drained(Duration::from_secs(5)).await);
        assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
        let s = buffer.stats();
        assert_eq!(
            (s.pending, s.buffered, s.replayed, s.dropped, s.failed),
            (0, 3, 3, 2, 0)
        );
        // Back to direct writes once drained.
        assert_eq!(
            buffer.submit(probe(9)).await.unwrap(),
            WriteOutcome::Written
        );
        assert_eq!(*log.lock().unwrap(), [0, 1, 2, 9]);
    }

    #[derive(Debug)]
    struct Rejected;

    #[async_trait::async_trait]
    impl Replay for Rejected {
        async fn replay(&self) -> Result<()> {
            Err(Error::Server {
                code: crate::error::ServerCode::NoPerm,
                detail: "no permissions".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_rejected_write_is_an_error_not_a_buffered_write() {
        let core = MemoryCore::new(Settings::default());
        let buffer = OutageBuffer::new(core.connection(), 3);
        assert!(buffer.submit(Arc::new(Rejected)).await.is_err());
        assert!(buffer.submit(Arc::new(Rejected)).await.is_err());
        let s = buffer.stats();
        assert_eq!(s.buffered, 0);
        assert_eq!(s.rejected.get("NOPERM"), Some(&2), "{s:?}");
    }
}
