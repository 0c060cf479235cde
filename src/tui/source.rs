//! The background tasks that collect data for the dashboard: they read, subscribe and watch
//! the connection, and only ever *send* [`Message`]s. Nothing here touches UI state.
//!
//! - the **poller** reads a full snapshot every `poll_interval` (the truth), at once on
//!   request (`r`) and at once after every (re)connect;
//! - the **subscriber** follows every card's pub/sub channel (PSUBSCRIBE) for live updates,
//!   and subscribes again after every reconnect. Pub/sub is at-most-once, which is why the
//!   poll after a reconnect matters: events missed while away are covered by the fresh read;
//! - the **watcher** forwards connection state changes and wakes the other two on reconnect;
//! - **history** reads run one per request, for the drilldown.
//!
//! Reads go through the [`Feed`] trait ([`crate::feed`], shared with `--once`), so tests and
//! benchmarks can drive the same tasks with scripted data; [`crate::feed::StorageFeed`] is the
//! real one over a [`crate::Backend`]. Everything here is read-only against Redis.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::feed::Feed;

use super::message::{Command, Message};

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
    let resubscribe = Arc::new(Notify::new());
    let mut tasks = Vec::new();

    // Watcher.
    {
        let mut conn = feed.connection();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        let resubscribe = resubscribe.clone();
        tasks.push(tokio::spawn(async move {
            let first = conn.borrow_and_update().clone();
            let mut was_up = first.is_up();
            let mut ever_up = was_up;
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
                    poll_now.notify_one();
                    // The first connect needs no new subscription: the subscriber opens its
                    // own connection and is either subscribed already or retrying.
                    if ever_up {
                        resubscribe.notify_one();
                    }
                    ever_up = true;
                }
                was_up = up;
            }
        }));
    }

    // Poller: one read at a time; ticks missed during a slow read are skipped, not queued.
    {
        let feed = feed.clone();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = poll_now.notified() => tick.reset(),
                }
                let msg = match feed.snapshot(Utc::now()).await {
                    Ok(s) => Message::Snapshot(Box::new(s)),
                    Err(e) => Message::ReadFailed(e.to_string()),
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
        let resubscribe = resubscribe.clone();
        let poll_now = poll_now.clone();
        tasks.push(tokio::spawn(async move {
            let mut lost_once = false;
            loop {
                match feed.subscribe().await {
                    Ok(mut events) => {
                        if tx.send(Message::Subscribed(true)).await.is_err() {
                            return;
                        }
                        // Events published while unsubscribed are lost (pub/sub is
                        // at-most-once): a fresh read covers them.
                        if lost_once {
                            poll_now.notify_one();
                        }
                        loop {
                            tokio::select! {
                                next = events.next() => match next {
                                    Some(Ok(e)) => {
                                        if tx.send(Message::Event(e)).await.is_err() {
                                            return;
                                        }
                                    }
                                    Some(Err(m)) => {
                                        if tx.send(Message::BadEvent(m)).await.is_err() {
                                            return;
                                        }
                                    }
                                    None => break,
                                },
                                // A reconnect happened while this subscription looked alive
                                // (its socket may be a stale one): start over.
                                _ = resubscribe.notified() => break,
                            }
                        }
                        lost_once = true;
                        if tx.send(Message::Subscribed(false)).await.is_err() {
                            return;
                        }
                        // A lost subscription usually means a lost server: a read now
                        // either succeeds or makes the connection notice and reconnect.
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
                // Wait for a reconnect, or retry on a slow timer (the pub/sub socket may
                // fail on its own while the command connection stays up).
                tokio::select! {
                    _ = resubscribe.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }));
    }

    // Commands from the UI.
    {
        let feed = feed.clone();
        let tx = tx.clone();
        let poll_now = poll_now.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(cmd) = commands.recv().await {
                match cmd {
                    Command::Refresh => poll_now.notify_one(),
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
