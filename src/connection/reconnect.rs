//! Getting a connection: one bounded attempt ([`Redis::establish`]), and the one background
//! task that repeats it with capped, jittered exponential backoff while Redis is away. The task
//! holds the handle only through a [`Weak`], so it ends by itself once every handle is gone.
//!
//! Also the re-resolve after a `READONLY` reply ([`Redis::reresolve`]): the server answering
//! is a replica now (a failover happened, or someone ran `REPLICAOF`), and a fresh connection
//! is the only way this driver offers to find the master again: a new DNS lookup of the host on
//! a server, a new slot map on Cluster. The live connection keeps serving until the new one is
//! ready, so the state never shows an outage for it.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::Rng;
use redis::RedisError;

use super::state::{Event, publish};
use super::target::Target;
use super::{Conn, Inner, RERESOLVE_INTERVAL, Redis, is_auth_failure};
use crate::error::{Error, scrub};

impl Redis {
    /// Starts the reconnect task unless one is running (or there is no runtime to run it).
    pub(super) fn spawn_reconnect(&self) {
        if self.inner.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.reconnecting.store(false, Ordering::Release);
            return;
        };
        let weak: Weak<Inner> = std::sync::Arc::downgrade(&self.inner);
        let max_backoff = self.inner.max_backoff;
        rt.spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                // Nobody is left to use the connection: stop.
                let Some(inner) = weak.upgrade() else { return };
                let this = Redis { inner };
                let pause = match this.establish().await {
                    Ok(()) => {
                        this.inner.reconnecting.store(false, Ordering::Release);
                        return;
                    }
                    // Retrying wrong credentials only locks the account out faster; keep the
                    // state saying why and try again at the slowest pace.
                    Err(Error::Auth { .. }) | Err(Error::Permission { .. }) => max_backoff,
                    Err(_) => {
                        let jitter = rand::rng().random_range(0.8..1.2);
                        let pause = backoff.mul_f64(jitter);
                        backoff = (backoff * 2).min(max_backoff);
                        pause
                    }
                };
                // The pause must not keep the handle alive.
                drop(this);
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// Opens a fresh connection in the background and swaps it in for the live one, at most
    /// once per [`RERESOLVE_INTERVAL`] (a replica refuses every write of every task; one
    /// re-resolve is enough for all of them). Nothing happens while a reconnect is running: it
    /// opens a fresh connection anyway.
    pub(super) fn reresolve(&self) {
        {
            let mut last = self
                .inner
                .last_reresolve
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < RERESOLVE_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if self.inner.reconnecting.load(Ordering::Acquire) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Inner> = std::sync::Arc::downgrade(&self.inner);
        rt.spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            let this = Redis { inner };
            match tokio::time::timeout(this.inner.connect_timeout, this.open()).await {
                Ok(Ok(conn)) => {
                    if let Ok(mut g) = this.inner.conn.write() {
                        // A connection lost meanwhile is the reconnect task's to replace.
                        if g.is_some() {
                            *g = Some(conn);
                            tracing::info!("READONLY reply: reconnected to re-resolve the master");
                        }
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "re-resolving the master failed"),
                Err(_) => tracing::debug!("re-resolving the master timed out"),
            }
        });
    }

    /// One connection attempt, bounded by the connect timeout; updates the state either way.
    pub(super) async fn establish(&self) -> Result<(), Error> {
        let attempt = tokio::time::timeout(self.inner.connect_timeout, self.open()).await;
        let result = match attempt {
            Ok(Ok(conn)) => {
                if let Ok(mut g) = self.inner.conn.write() {
                    *g = Some(conn);
                }
                publish(&self.inner.state, Event::Connected);
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(_) => Error::Unreachable {
                endpoint: self.inner.endpoint.clone(),
                detail: format!(
                    "no answer within the connect timeout of {:?}",
                    self.inner.connect_timeout
                ),
            },
        };
        publish(&self.inner.state, Event::AttemptFailed(&result.to_string()));
        Err(result)
    }

    async fn open(&self) -> Result<Conn, Error> {
        let connect_err = |e: RedisError| {
            if is_auth_failure(&e) {
                self.auth_error(&e)
            } else {
                Error::Unreachable {
                    endpoint: self.inner.endpoint.clone(),
                    detail: scrub(&e.to_string()),
                }
            }
        };
        match &self.inner.target {
            Target::Single { client, config } => {
                let mut conn = client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
                    .map_err(connect_err)?;
                // A PING proves the handshake (AUTH, SELECT) really succeeded.
                redis::cmd("PING")
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(connect_err)?;
                Ok(Conn::Single(conn))
            }
            Target::Cluster { client, .. } => {
                let mut conn = client.get_async_connection().await.map_err(connect_err)?;
                redis::cmd("PING")
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(connect_err)?;
                Ok(Conn::Cluster(conn))
            }
        }
    }
}
