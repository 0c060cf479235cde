//! The live-event subscription: its own connection, its own life.
//!
//! The command connection reconnects whenever a command finds it broken (a server idle
//! `timeout` shorter than the poll interval closes it between two polls), and none of that may
//! end a healthy subscription. So a [`Subscription`] owns a dedicated pub/sub connection whose
//! errors are classified without touching the command connection
//! ([`Redis::classify_detached`]), and keeps it alive on its own: a PING every
//! [`PUBSUB_KEEPALIVE`] (allowed in subscribed mode) keeps it from looking idle to the server or
//! to anything in between, and a PING not answered within the command timeout ends the stream,
//! so a half-open socket (a frozen server, a dropped route) is noticed instead of staying silent
//! for ever. Pub/sub is at-most-once: whoever subscribes again after the stream ended reads the
//! state to cover what was published meanwhile.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use redis::Msg;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Redis;
use super::target::Target;
use crate::error::Error;

/// How often a quiet subscription PINGs the server.
pub const PUBSUB_KEEPALIVE: Duration = Duration::from_secs(2);

/// Messages buffered between the connection and a slow reader.
const BUFFERED: usize = 1024;

/// The messages of one subscription, in order; the stream ends when the subscription is lost
/// (connection closed, keepalive unanswered). Dropping it closes the connection.
pub struct Subscription {
    rx: mpsc::Receiver<Msg>,
    task: JoinHandle<()>,
}

impl Stream for Subscription {
    type Item = Msg;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Msg>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

/// What to subscribe to.
enum Topic<'a> {
    Channel(&'a str),
    Pattern(&'a str),
}

impl Redis {
    /// Follows every channel matching `pattern` (PSUBSCRIBE) on a connection of its own. On
    /// Cluster, PUBLISH reaches every node, so the first seed that answers is enough.
    pub async fn psubscribe(&self, pattern: &str) -> Result<Subscription, Error> {
        self.open_subscription(Topic::Pattern(pattern)).await
    }

    /// Follows one channel (SUBSCRIBE) on a connection of its own.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, Error> {
        self.open_subscription(Topic::Channel(channel)).await
    }

    async fn open_subscription(&self, topic: Topic<'_>) -> Result<Subscription, Error> {
        let clients: Vec<&redis::Client> = match &self.inner.target {
            Target::Single { client, .. } => vec![client],
            Target::Cluster { seeds, .. } => seeds.iter().collect(),
        };
        let timeout = self.inner.command_timeout;
        let mut last = None;
        for client in clients {
            let pubsub =
                match tokio::time::timeout(self.inner.connect_timeout, client.get_async_pubsub())
                    .await
                {
                    Ok(Ok(p)) => p,
                    Ok(Err(e)) => {
                        last = Some(self.classify_detached(e));
                        continue;
                    }
                    Err(_) => {
                        last = Some(Error::Unreachable {
                            endpoint: self.inner.endpoint.clone(),
                            detail: "pub/sub connect timed out".into(),
                        });
                        continue;
                    }
                };
            let (mut sink, stream) = pubsub.split();
            let subscribed = match topic {
                Topic::Channel(c) => tokio::time::timeout(timeout, sink.subscribe(c)).await,
                Topic::Pattern(p) => tokio::time::timeout(timeout, sink.psubscribe(p)).await,
            };
            match subscribed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.classify_detached(e)),
                Err(_) => {
                    return Err(Error::Timeout {
                        endpoint: self.inner.endpoint.clone(),
                        after: timeout,
                    });
                }
            }
            let (tx, rx) = mpsc::channel(BUFFERED);
            let task = tokio::spawn(forward(sink, stream, tx, timeout));
            return Ok(Subscription { rx, task });
        }
        Err(last.unwrap_or_else(|| self.unavailable()))
    }
}

/// Moves messages to `tx` and PINGs when the subscription is quiet; returns (ending the
/// stream) when the connection ends, a PING goes unanswered, or the reader is gone.
async fn forward(
    mut sink: redis::aio::PubSubSink,
    mut stream: redis::aio::PubSubStream,
    tx: mpsc::Sender<Msg>,
    ping_timeout: Duration,
) {
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + PUBSUB_KEEPALIVE,
        PUBSUB_KEEPALIVE,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                Some(m) => {
                    if tx.send(m).await.is_err() {
                        return;
                    }
                }
                None => {
                    tracing::debug!("pub/sub connection closed");
                    return;
                }
            },
            _ = tick.tick() => {
                match tokio::time::timeout(ping_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(error = %crate::error::scrub(&e.to_string()), "pub/sub keepalive failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("pub/sub keepalive unanswered");
                        return;
                    }
                }
            }
            _ = tx.closed() => return,
        }
    }
}
