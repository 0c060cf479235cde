//! Getting a connection: one bounded attempt ([`Redis::establish`]), and the one background
//! task that repeats it with capped, jittered exponential backoff while Redis is away. The task
//! holds the handle only through a [`Weak`], so it ends by itself once every handle is gone.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use redis::RedisError;

use super::state::{Event, publish};
use super::target::Target;
use super::{Conn, Inner, Redis, is_auth_failure};
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
