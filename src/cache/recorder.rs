//! Hands every cached-client request to the metrics module without putting a metrics round trip
//! on the caller's path, and without ever letting a failed metrics write reach the caller.
//!
//! A hit costs one `GET`; a metrics write of its own per request would cost about as much again
//! (measured in `benches/cache.rs`: the write shares the connection and the server with the
//! `GET`s). So records are coalesced in process: one background writer collects them for at most
//! `cache.metrics_flush_ms` after the first one arrives, or until `cache.metrics_flush_records`
//! have arrived, and writes them as one batch (summed per key: one guarded write per flush, not
//! per request, so counts stay exactly once through replays after an outage). A flush request
//! ([`Recorder::flush`]) or the client being dropped writes what is pending at once.
//!
//! What a crash loses: the records still being coalesced (at most one flush interval's worth,
//! and never more than one batch) plus the queue behind them; docs/RELIABILITY.md states it.
//! When the queue is full (Redis slow or down for long) records are dropped and counted, not
//! buffered without bound. Writes go through a [`Metrics`] handle, so records made while Redis
//! is away wait in its outage buffer (shared with the tracker when the caller wires it so) and
//! land when Redis returns.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::buffer::WriteOutcome;
use crate::metrics::{LlmRequestRecord, Metrics};

/// Records waiting for the writer at most.
const QUEUE: usize = 8192;

enum Msg {
    Record(LlmRequestRecord),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
pub(crate) struct Counters {
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

/// When the writer sends what it has collected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushPolicy {
    /// Longest time a record waits in process for the records after it.
    pub every: Duration,
    /// Records that make a batch full (written without waiting for the timer).
    pub records: usize,
}

pub(crate) struct Recorder {
    metrics: Metrics,
    policy: FlushPolicy,
    tx: OnceLock<Option<mpsc::Sender<Msg>>>,
    wake: Arc<Wake>,
    pub counters: Arc<Counters>,
}

impl Drop for Recorder {
    /// A clean shutdown writes what is being coalesced: the writer stops waiting for its timer,
    /// writes, and ends once the queue is empty and closed.
    fn drop(&mut self) {
        self.wake.due.notify_one();
    }
}

impl Recorder {
    pub fn new(metrics: Metrics, policy: FlushPolicy) -> Self {
        Self {
            metrics,
            policy,
            tx: OnceLock::new(),
            wake: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// The queue, starting the writer on first use (inside the caller's tokio runtime).
    fn sender(&self) -> Option<&mpsc::Sender<Msg>> {
        self.tx
            .get_or_init(|| {
                let Ok(rt) = tokio::runtime::Handle::try_current() else {
                    tracing::warn!("cache metrics are off: no tokio runtime to write them from");
                    return None;
                };
                let (tx, rx) = mpsc::channel(QUEUE);
                rt.spawn(write_loop(
                    self.metrics.clone(),
                    rx,
                    self.counters.clone(),
                    self.wake.clone(),
                    self.policy,
                ));
                Some(tx)
            })
            .as_ref()
    }

    pub fn record(&self, record: LlmRequestRecord) {
        let Some(tx) = self.sender() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        // Counted before it is queued, so the writer never takes more than was counted.
        let queued = self.wake.queued.fetch_add(1, Ordering::AcqRel) + 1;
        if tx.try_send(Msg::Record(record)).is_err() {
            self.wake.queued.fetch_sub(1, Ordering::AcqRel);
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("cache metrics queue full; a request record was dropped");
        } else if queued == self.policy.records {
            self.wake.due.notify_one();
        }
    }

    /// Writes what is being coalesced now and waits until every record queued so far has been
    /// written, buffered for after an outage, or has failed.
    pub async fn flush(&self) {
        let Some(tx) = self.tx.get().and_then(Option::as_ref) else {
            return;
        };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            self.wake.due.notify_one();
            let _ = wait.await;
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// One batch being collected: its records and the flush requests that wait for it.
#[derive(Default)]
struct Batch {
    records: Vec<LlmRequestRecord>,
    waiting: Vec<oneshot::Sender<()>>,
}

impl Batch {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Record(r) => self.records.push(r),
            Msg::Flush(done) => self.waiting.push(done),
        }
    }
}

/// Wakes the writer before its timer: set when a batch is full or a flush is asked for. While
/// a batch is being collected the writer does not poll the queue, so a record costs its
/// sender a push, not a wake-up of the writer's thread.
#[derive(Default)]
struct Wake {
    queued: AtomicUsize,
    due: Notify,
}

async fn write_loop(
    metrics: Metrics,
    mut rx: mpsc::Receiver<Msg>,
    counters: Arc<Counters>,
    wake: Arc<Wake>,
    policy: FlushPolicy,
) {
    let mut inbox = Vec::with_capacity(policy.records);
    loop {
        // Idle: nothing is pending, so no timer runs until the next record.
        if rx.recv_many(&mut inbox, policy.records).await == 0 {
            return;
        }
        if !inbox.iter().any(|m| matches!(m, Msg::Flush(_))) && inbox.len() < policy.records {
            // A full batch, a flush request or the client being dropped ends the wait early.
            let deadline = tokio::time::Instant::now() + policy.every;
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = wake.due.notified() => {}
            }
        }
        // Whatever queued meanwhile, up to a full batch (the rest makes the next one).
        while inbox.len() < policy.records {
            let Ok(m) = rx.try_recv() else { break };
            inbox.push(m);
        }
        let records = inbox.iter().filter(|m| matches!(m, Msg::Record(_))).count();
        wake.queued.fetch_sub(records, Ordering::AcqRel);
        let mut batch = Batch::default();
        inbox.drain(..).for_each(|m| batch.take(m));
        write(&metrics, &counters, batch).await;
    }
}

async fn write(metrics: &Metrics, counters: &Counters, batch: Batch) {
    let n = batch.records.len() as u64;
    if n > 0 {
        match metrics.track_llm_requests(batch.records).await {
            Ok(WriteOutcome::Written | WriteOutcome::Buffered) => {}
            Ok(WriteOutcome::Dropped) => {
                counters.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!("cache metrics not written: {e}");
            }
        }
    }
    for done in batch.waiting {
        let _ = done.send(());
    }
}
