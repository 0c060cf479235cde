//! Hands every cached-client request to the metrics module without putting a metrics round trip
//! on the caller's path, and without ever letting a failed metrics write reach the caller.
//!
//! Records go through a bounded queue to one background writer, which writes whatever has
//! queued up as one batch (summed per key: one pipeline per batch, not per request). When the
//! queue is full (Redis slow or down for long) records are dropped and counted, not buffered
//! without bound. Writes go through a [`Metrics`] handle, so records made while Redis is away
//! wait in its outage buffer (shared with the tracker when the caller wires it so) and land
//! when Redis returns.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use crate::buffer::WriteOutcome;
use crate::metrics::{LlmRequestRecord, Metrics};

/// Records waiting for the writer at most.
const QUEUE: usize = 8192;
/// Records the writer sends at once.
const BATCH: usize = 256;

enum Msg {
    Record(LlmRequestRecord),
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
pub(crate) struct Counters {
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

pub(crate) struct Recorder {
    metrics: Metrics,
    tx: OnceLock<Option<mpsc::Sender<Msg>>>,
    pub counters: Arc<Counters>,
}

impl Recorder {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            tx: OnceLock::new(),
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
                rt.spawn(write_loop(self.metrics.clone(), rx, self.counters.clone()));
                Some(tx)
            })
            .as_ref()
    }

    pub fn record(&self, record: LlmRequestRecord) {
        let Some(tx) = self.sender() else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if tx.try_send(Msg::Record(record)).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("cache metrics queue full; a request record was dropped");
        }
    }

    /// Waits until every record queued so far has been written, buffered for after an outage,
    /// or has failed.
    pub async fn flush(&self) {
        let Some(tx) = self.tx.get().and_then(Option::as_ref) else {
            return;
        };
        let (done, wait) = oneshot::channel();
        if tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

async fn write_loop(metrics: Metrics, mut rx: mpsc::Receiver<Msg>, counters: Arc<Counters>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut flushes = Vec::new();
        let mut records = Vec::with_capacity(batch.len());
        for msg in batch.drain(..) {
            match msg {
                Msg::Record(r) => records.push(r),
                Msg::Flush(done) => flushes.push(done),
            }
        }
        // What queued up while the previous write was in flight goes as one write, summed
        // per key: under load the metrics cost one pipeline per batch, not per request.
        let n = records.len() as u64;
        match metrics.track_llm_requests(records).await {
            Ok(WriteOutcome::Written | WriteOutcome::Buffered) => {}
            Ok(WriteOutcome::Dropped) => {
                counters.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::warn!("cache metrics not written: {e}");
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
