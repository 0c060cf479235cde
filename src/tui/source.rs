//! The background tasks that collect data for the dashboard: they read, subscribe and watch
//! the connection, and only ever *send* [`Message`]s. Nothing here touches UI state.
//!
//! - the **poller** polls every `poll_interval`: a full read (the truth, sent as
//!   [`Message::Snapshot`]) first, at once on request (`r`, which also redoes the SCANs for
//!   Python-written cards, metric names and rate-limit windows that reads otherwise reuse for
//!   their interval), at once after every (re)connect and after a lost subscription, and
//!   whenever the feed finds one due (`tracker.full_read_interval_seconds`); between those,
//!   only what changed since the previous poll ([`Message::Delta`], see
//!   [`crate::feed::Feed::poll`]);
//! - the **subscriber** follows every card's pub/sub channel (PSUBSCRIBE) for live updates on
//!   a connection of its own, kept alive by PING ([`crate::connection::Subscription`]). Its
//!   life is its own: the command connection's reconnects (a server idle `timeout` shorter than
//!   the poll interval closes that one between polls) do not touch it; when the subscription
//!   itself ends, it subscribes again at once (then with a growing pause) and asks for a read.
//!   Pub/sub is at-most-once, which is why that read matters: events missed in the gap are
//!   covered by the fresh snapshot;
//! - the **watcher** forwards connection state and health changes, and asks for a read on
//!   reconnect;
//! - **history** reads run one per request, for the drilldown.
//!
//! Reads go through the [`Feed`] trait ([`crate::feed`], shared with `--once`), so tests and
//! benchmarks can drive the same tasks with scripted data; [`crate::feed::StorageFeed`] is the
//! real one over a [`crate::Backend`]. Everything here is read-only against Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::feed::Feed;
use crate::metrics::HistoryWindow;
use crate::snapshot::Update;

use super::message::{Command, Message};

/// The pause before subscribing again after a lost subscription: short, since the gap is
/// what events are missed in.
const FIRST_RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between subscription attempts while they keep failing.
const MAX_RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(2);

/// The shortest gap between two messages of live events (see the subscriber): under the
/// frame cap's default 33 ms, so no frame waits for it.
const EVENT_BATCH_GAP: Duration = Duration::from_millis(20);
/// The most live events one message carries.
const EVENT_BATCH_MAX: usize = 4096;

/// `first` and every event `events` has ready now, as messages in arrival order (the good
/// events together, a bad one on its own), and whether the stream ended.
fn take_ready(
    first: Result<crate::model::PipelineEvent, crate::model::Malformed>,
    events: &mut crate::feed::FeedEvents,
) -> (Vec<Message>, bool) {
    use futures::FutureExt;
    let mut out = Vec::new();
    let mut good = Vec::new();
    let mut next = Some(first);
    let mut taken = 0;
    let mut ended = false;
    while let Some(item) = next.take() {
        match item {
            Ok(e) => good.push(e),
            Err(m) => {
                if !good.is_empty() {
                    out.push(Message::Events(std::mem::take(&mut good)));
                }
                out.push(Message::BadEvent(m));
            }
        }
        taken += 1;
        if taken >= EVENT_BATCH_MAX {
            break;
        }
        // Polled without a waker of this task's: an event arriving later does not wake it.
        match events.next().now_or_never() {
            Some(Some(item)) => next = Some(item),
            Some(None) => ended = true,
            None => {}
        }
    }
    if !good.is_empty() {
        out.push(Message::Events(good));
    }
    (out, ended)
}

/// Handles of the running tasks; dropping it stops them.
pub struct Sources {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Sources {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the tasks. They send to `tx` and take work from `commands`; they stop when the
/// returned handle is dropped or the UI's receiver is gone.
pub fn spawn(
    feed: Arc<dyn Feed>,
    poll_interval: Duration,
    tx: mpsc::Sender<Message>,
    mut commands: mpsc::Receiver<Command>,
) -> Sources {
    let poll_now = Arc::new(Notify::new());
    // Whether the next poll must read in full: at start, and set with `poll_now` wherever
    // what was read before may no longer hold.
    let want_full = Arc::new(AtomicBool::new(true));
    // The charts' window, as the UI last chose it: the poller reads its buckets.
    let (window_tx, window_rx) = tokio::sync::watch::channel(HistoryWindow::default());
    let mut tasks = Vec::new();

    // Watcher.
    {
        let mut conn = feed.connection();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        let want_full = want_full.clone();
        tasks.push(tokio::spawn(async move {
            let first = conn.borrow_and_update().clone();
            let mut was_up = first.is_up();
            if tx.send(Message::Connection(first)).await.is_err() {
                return;
            }
            while conn.changed().await.is_ok() {
                let state = conn.borrow_and_update().clone();
                let up = state.is_up();
                if tx.send(Message::Connection(state)).await.is_err() {
                    return;
                }
                if up && !was_up {
                    want_full.store(true, Ordering::SeqCst);
                    poll_now.notify_one();
                }
                was_up = up;
            }
        }));
    }

    // Health watcher: a refusal (OOM, read-only replica) is shown as soon as it is learnt.
    {
        let mut health = feed.health();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let first = health.borrow_and_update().clone();
            if tx.send(Message::Health(first)).await.is_err() {
                return;
            }
            while health.changed().await.is_ok() {
                let h = health.borrow_and_update().clone();
                if tx.send(Message::Health(h)).await.is_err() {
                    return;
                }
            }
        }));
    }

    // Poller: one read at a time; ticks missed during a slow read are skipped, not queued.
    {
        let feed = feed.clone();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        let want_full = want_full.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = poll_now.notified() => tick.reset(),
                }
                let window = *window_rx.borrow();
                let full = want_full.swap(false, Ordering::SeqCst);
                let msg = match feed.poll(Utc::now(), window, full).await {
                    Ok(Update::Full(s)) => Message::Snapshot(s),
                    Ok(Update::Delta(d)) => Message::Delta(d),
                    Err(e) => {
                        // The full read asked for is still owed.
                        if full {
                            want_full.store(true, Ordering::SeqCst);
                        }
                        Message::ReadFailed(e.to_string())
                    }
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        }));
    }

    // Subscriber.
    {
        let feed = feed.clone();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        let want_full = want_full.clone();
        tasks.push(tokio::spawn(async move {
            let mut lost_once = false;
            let mut pause = FIRST_RESUBSCRIBE_PAUSE;
            loop {
                match feed.subscribe().await {
                    Ok(mut events) => {
                        pause = FIRST_RESUBSCRIBE_PAUSE;
                        if tx.send(Message::Subscribed(true)).await.is_err() {
                            return;
                        }
                        // Events published while unsubscribed are lost (pub/sub is
                        // at-most-once): a fresh read covers them.
                        if lost_once {
                            want_full.store(true, Ordering::SeqCst);
                            poll_now.notify_one();
                        }
                        let mut last_sent: Option<tokio::time::Instant> = None;
                        while let Some(first) = events.next().await {
                            // The first event after a quiet spell goes at once; under a storm
                            // the events go at most once per EVENT_BATCH_GAP, all that came
                            // meanwhile in one message, so the UI task wakes tens of times a
                            // second, not once per event.
                            if let Some(t) = last_sent {
                                tokio::time::sleep_until(t + EVENT_BATCH_GAP).await;
                            }
                            let (batch, ended) = take_ready(first, &mut events);
                            for msg in batch {
                                if tx.send(msg).await.is_err() {
                                    return;
                                }
                            }
                            last_sent = Some(tokio::time::Instant::now());
                            if ended {
                                break;
                            }
                        }
                        lost_once = true;
                        if tx.send(Message::Subscribed(false)).await.is_err() {
                            return;
                        }
                        // A lost subscription usually means a lost server: a read now
                        // either succeeds or makes the connection notice and reconnect.
                        want_full.store(true, Ordering::SeqCst);
                        poll_now.notify_one();
                    }
                    Err(e) => {
                        let why = match e {
                            crate::Error::Permission { .. } => {
                                "this Redis user may not PSUBSCRIBE to the events channels".into()
                            }
                            e if e.is_outage() => "Redis unreachable".into(),
                            e => e.to_string(),
                        };
                        if tx.send(Message::SubscribeFailed(why)).await.is_err() {
                            return;
                        }
                    }
                }
                // Subscribe again soon, then slower while it keeps failing (the server may
                // be away; the subscription does not wait for the command connection).
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RESUBSCRIBE_PAUSE);
            }
        }));
    }

    // Commands from the UI.
    {
        let feed = feed.clone();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        let want_full = want_full.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(cmd) = commands.recv().await {
                match cmd {
                    Command::Refresh => {
                        feed.forget_scans();
                        want_full.store(true, Ordering::SeqCst);
                        poll_now.notify_one();
                    }
                    Command::Window(w) => {
                        window_tx.send_replace(w);
                        poll_now.notify_one();
                    }
                    Command::LoadHistory(card_id) => {
                        let feed = feed.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            let result = feed.history(&card_id).await.map_err(|e| e.to_string());
                            let _ = tx.send(Message::History { card_id, result }).await;
                        });
                    }
                }
            }
        }));
    }
    Sources { tasks }
}
