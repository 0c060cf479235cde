//! One Redis handle for standalone servers and Redis Cluster, with an observable connection
//! state and automatic reconnect.
//!
//! Why not a bare `ConnectionManager`: the core's fallbacks (outage buffer, local limiter, cache
//! bypass) must learn *at once* that Redis is gone instead of waiting a connect timeout on every
//! call, and the dashboard must show "reconnecting since T". So commands on a lost connection
//! fail fast with [`Error::Unavailable`] while one background task reconnects with capped,
//! jittered exponential backoff, and every state change is published on a `watch` channel.
//!
//! A server that is reachable but refuses requests for a while (`OOM` at `maxmemory`,
//! `READONLY` after a failover, `LOADING`) is not an outage of the connection: the handle stays
//! connected, the reply becomes [`Error::Refused`] (an outage to every fallback) and the
//! [`Health`] watch says why. A `READONLY` reply also makes the handle re-resolve the master
//! (a fresh connection: DNS or the Cluster's slot map may point elsewhere after a failover),
//! at most once per [`RERESOLVE_INTERVAL`].
//!
//! Pub/sub has a life of its own ([`Redis::psubscribe`]): its own connection, kept alive by
//! PING, whose failures never touch the command connection and whose reconnects are the
//! subscriber's business.
//!
//! By concern: `state` (the state and its one transition rule), `target` (settings to
//! endpoint and TLS), `reconnect` (the attempts and the background task), `scan` (key
//! listing), [`cluster`] (all Cluster routing), `health` (the `INFO` probe), `pubsub` (the
//! subscription and its keepalive), and here the handle and its request methods.

pub mod cluster;
mod health;
mod pubsub;
mod reconnect;
mod scan;
mod state;
mod target;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::watch;

use crate::config::RedisSettings;
use crate::error::{Error, ServerCode, scrub};

pub use crate::redact::redact_url;
pub use cluster::SlotMap;
pub use health::PROBE_INTERVAL;
pub use pubsub::{PUBSUB_KEEPALIVE, Subscription};
pub use scan::{Discovery, DiscoveryScan, ScanCursor};
pub use state::{ConnState, Health, HealthSource, REPLY_REFUSAL_HOLD, Refusal};

use state::{Event, HealthEvent, publish, publish_health};
use target::{Target, resolve_target};

/// A cheap-to-clone live connection (multiplexed; clones share one socket).
#[derive(Clone)]
pub enum Conn {
    /// To one server.
    Single(MultiplexedConnection),
    /// To a Cluster (the driver routes each command to its node).
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

struct Inner {
    target: Target,
    endpoint: String,
    username: Option<String>,
    connect_timeout: Duration,
    command_timeout: Duration,
    max_backoff: Duration,
    conn: RwLock<Option<Conn>>,
    state: watch::Sender<ConnState>,
    reconnecting: AtomicBool,
    health: watch::Sender<Health>,
    /// When the master was last re-resolved after a `READONLY` reply.
    last_reresolve: Mutex<Option<Instant>>,
    /// When the `INFO` probe last ran.
    last_probe: Mutex<Option<Instant>>,
}

/// At most one re-resolve of the master per this period, however many commands a replica
/// refuses meanwhile.
pub const RERESOLVE_INTERVAL: Duration = Duration::from_secs(1);

/// A Redis connection shared by every part of the core. Clone freely.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("endpoint", &self.inner.endpoint)
            .field("state", &*self.inner.state.borrow())
            .finish()
    }
}

/// Whether the server refused the credentials (at connect or on any later command).
fn is_auth_failure(e: &RedisError) -> bool {
    e.kind() == ErrorKind::AuthenticationFailed
        || e.code()
            .is_some_and(|c| ServerCode::parse(c).is_auth_failure())
}

impl Redis {
    /// Connects now, failing within the connect timeout with a message that names the endpoint
    /// (and never the password) if the server cannot be reached or refuses the credentials.
    pub async fn connect(settings: &RedisSettings) -> Result<Self, Error> {
        let redis = Self::new(settings)?;
        redis.establish().await.map(|_| redis)
    }

    /// Returns at once and connects in the background: for processes that must keep running
    /// while Redis is away (pipelines, the dashboard). Check [`Redis::state`].
    pub fn connect_lazy(settings: &RedisSettings) -> Result<Self, Error> {
        let redis = Self::new(settings)?;
        redis.spawn_reconnect();
        Ok(redis)
    }

    fn new(settings: &RedisSettings) -> Result<Self, Error> {
        let (target, endpoint) = resolve_target(settings)?;
        let (state, _) = watch::channel(ConnState::Connecting);
        let (health, _) = watch::channel(Health::default());
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                endpoint,
                username: settings.username.clone().filter(|u| !u.is_empty()),
                connect_timeout: settings.connect_timeout(),
                command_timeout: settings.command_timeout(),
                max_backoff: settings.max_backoff(),
                conn: RwLock::new(None),
                state,
                reconnecting: AtomicBool::new(false),
                health,
                last_reresolve: Mutex::new(None),
                last_probe: Mutex::new(None),
            }),
        })
    }

    /// The endpoint, without credentials: safe to print.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether this handle talks Redis Cluster protocol.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster { .. })
    }

    /// How long one request may take before it fails with [`Error::Timeout`].
    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    /// Follows the connection state.
    pub fn state(&self) -> watch::Receiver<ConnState> {
        self.inner.state.subscribe()
    }

    /// The connection state now.
    pub fn current_state(&self) -> ConnState {
        self.inner.state.borrow().clone()
    }

    /// Follows whether the server accepts writes (learnt from refused replies and the probe).
    pub fn health(&self) -> watch::Receiver<Health> {
        self.inner.health.subscribe()
    }

    /// The health now.
    pub fn current_health(&self) -> Health {
        self.inner.health.borrow().clone()
    }

    /// The live connection, or [`Error::Unavailable`] at once while Redis is away (a reconnect
    /// is then running in the background).
    pub fn conn(&self) -> Result<Conn, Error> {
        if let Some(c) = self.inner.conn.read().ok().and_then(|g| g.clone()) {
            return Ok(c);
        }
        self.spawn_reconnect();
        Err(self.unavailable())
    }

    fn unavailable(&self) -> Error {
        let detail = match &*self.inner.state.borrow() {
            ConnState::Reconnecting { since, error, .. } => {
                format!("connection lost at {}: {error}", since.format("%H:%M:%S"))
            }
            ConnState::Unreachable { error, .. } => error.clone(),
            _ => "not connected yet".into(),
        };
        Error::Unavailable {
            endpoint: self.inner.endpoint.clone(),
            detail,
        }
    }

    fn auth_error(&self, e: &RedisError) -> Error {
        Error::Auth {
            endpoint: self.inner.endpoint.clone(),
            user: self.inner.username.clone(),
            missing_password: e.code().map(ServerCode::parse) == Some(ServerCode::NoAuth),
        }
    }

    /// Runs one request (a command, pipeline or script invocation) with the command timeout,
    /// turning connection failures into a reconnect and a clear error.
    pub async fn run<T, F, Fut>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn()?;
        match tokio::time::timeout(self.inner.command_timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => {
                let e = Error::Timeout {
                    endpoint: self.inner.endpoint.clone(),
                    after: self.inner.command_timeout,
                };
                self.lost(&e.to_string());
                Err(e)
            }
        }
    }

    /// Sends one command.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        self.run(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Sends one pipeline in one round trip.
    ///
    /// On Cluster the driver only accepts single-slot pipelines, so a pipeline spanning slots
    /// is split into one sub-pipeline per slot, all sent at once (still one round-trip time),
    /// and the replies are put back in command order. Each command stays atomic on its own
    /// key; a multi-slot pipeline as a whole is not a transaction (it never is on Cluster).
    /// After a split, `.ignore()` is not honoured and per-command errors come back as
    /// `Value::ServerError` items: read such pipelines positionally as `Vec<Value>`. Writes use
    /// [`Redis::query_pipe_ok`], which fails on any error reply (read as `()`, a split pipeline's
    /// error replies would pass unnoticed).
    pub async fn query_pipe<T: redis::FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, Error> {
        if let Some(replies) = self.split_pipe(pipe).await? {
            return redis::from_redis_value(replies).map_err(|e| Error::from_reply(&e.into()));
        }
        self.run(|mut c| async move { pipe.query_async(&mut c).await })
            .await
    }

    /// [`Redis::query_pipe`] for writes: any command's error reply fails the call. (On Cluster,
    /// a pipeline split across slots collects per-command replies, where an error reply would
    /// otherwise pass as a value.)
    pub async fn query_pipe_ok(&self, pipe: &Pipeline) -> Result<(), Error> {
        let replies: Value = self.query_pipe(pipe).await?;
        match first_error(&replies) {
            Some(e) => Err(self.classify(e)),
            None => Ok(()),
        }
    }

    /// Maps a driver error to the core's error; connection-class errors start a reconnect.
    /// Every other error reply keeps its code ([`Error::from_reply`]). A transient refusal is
    /// published as the [`Health`]; a `READONLY` one also re-resolves the master.
    pub fn classify(&self, e: RedisError) -> Error {
        let err = self.map_error(&e);
        match &err {
            Error::Refused { code, .. } => {
                publish_health(&self.inner.health, HealthEvent::Refused(code.as_str()));
                if *code == ServerCode::ReadOnly {
                    self.reresolve();
                }
            }
            Error::Unavailable { detail, .. } => self.lost(detail),
            _ => {}
        }
        err
    }

    /// [`Redis::classify`] without its effects on the command connection: for errors of a
    /// connection that is not the command connection (the pub/sub one), which must neither
    /// tear it down nor mark it refusing.
    pub fn classify_detached(&self, e: RedisError) -> Error {
        self.map_error(&e)
    }

    /// The one mapping of a driver error to the core's error, without side effects.
    fn map_error(&self, e: &RedisError) -> Error {
        // A pipeline's error replies come wrapped, without a code the driver knows for
        // extension codes such as OOM: classify the first one by its own code.
        if let Some(first) = first_pipeline_error(e) {
            return self.map_error(&first);
        }
        let endpoint = self.inner.endpoint.clone();
        if is_auth_failure(e) {
            return self.auth_error(e);
        }
        let code = e.code().map(ServerCode::parse);
        if code == Some(ServerCode::NoPerm) {
            return Error::Permission {
                endpoint,
                detail: e.detail().unwrap_or("").to_owned(),
            };
        }
        // The request did not run and may succeed later (memory freed, failover done, slots
        // settled), so to callers it is an outage, not a bad request. The connection itself is
        // fine, so no reconnect is started here.
        if let Some(code) = code.filter(|c| c.is_transient() || c.is_cluster_transition()) {
            return Error::Refused {
                endpoint,
                code,
                detail: scrub(e.detail().unwrap_or("")),
            };
        }
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.kind() == ErrorKind::ClusterConnectionNotFound
        {
            return Error::Unavailable {
                endpoint,
                detail: scrub(&e.to_string()),
            };
        }
        Error::from_reply(e)
    }

    /// Drops the broken connection and starts reconnecting.
    fn lost(&self, why: &str) {
        if let Ok(mut g) = self.inner.conn.write() {
            *g = None;
        }
        publish(&self.inner.state, Event::Lost(why));
        self.spawn_reconnect();
    }
}

/// The first error reply of a failed pipeline, as a driver error of its own; `None` for an
/// error that is not a pipeline's (a plain error reply is its own first error).
fn first_pipeline_error(e: &RedisError) -> Option<RedisError> {
    let items = e.clone().into_server_errors()?;
    let (_, first) = items.first()?;
    let single = RedisError::from(first.clone());
    (single.to_string() != e.to_string()).then_some(single)
}

/// The first error reply in a (possibly nested) reply, as a driver error.
fn first_error(v: &Value) -> Option<RedisError> {
    match v {
        Value::ServerError(e) => Some(RedisError::from(e.clone())),
        Value::Array(items) | Value::Set(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let s = RedisSettings {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let r = Redis::new(&s).unwrap();
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
