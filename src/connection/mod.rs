//! One Redis handle for standalone servers and Redis Cluster, with an observable connection
//! state and automatic reconnect.
//!
//! Why not a bare `ConnectionManager`: the core's fallbacks (outage buffer, local limiter, cache
//! bypass) must learn *at once* that Redis is gone instead of waiting a connect timeout on every
//! call, and the dashboard must show "reconnecting since T". So commands on a lost connection
//! fail fast with [`Error::Unavailable`] while one background task reconnects with capped,
//! jittered exponential backoff, and every state change is published on a `watch` channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind,
    IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::RedisSettings;
use crate::error::Error;

/// Whether Redis can be reached right now, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnState {
    /// The first connection attempt has not finished.
    Connecting,
    Connected {
        since: DateTime<Utc>,
    },
    /// Was connected, lost it; retrying.
    Reconnecting {
        since: DateTime<Utc>,
        attempts: u32,
        error: String,
    },
    /// Never reached; retrying.
    Unreachable {
        since: DateTime<Utc>,
        attempts: u32,
        error: String,
    },
    /// An in-process backend: always available.
    InProcess,
}

impl ConnState {
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Connected { .. } | Self::InProcess)
    }
}

/// Removes any password (and username) from a Redis URL so it can be shown.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_none() {
                // `scheme:secret@host` without `//` parses with the secret in the path.
                if u.cannot_be_a_base() && raw.contains('@') {
                    return redact_unparsed(raw);
                }
                return u.to_string();
            }
            let _ = u.set_password(Some("REDACTED"));
            // The url crate percent-encodes `<` and `>`; write the marker readably.
            u.to_string().replacen(":REDACTED@", ":<redacted>@", 1)
        }
        Err(_) => redact_unparsed(raw),
    }
}

/// Not a URL: it may still hold a secret before an `@`; show only what follows it.
fn redact_unparsed(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((_, host)) => format!("<redacted>@{host}"),
        None => raw.to_owned(),
    }
}

/// What to connect to, resolved from the settings.
#[derive(Clone)]
enum Target {
    Single {
        client: Client,
        config: AsyncConnectionConfig,
    },
    Cluster {
        client: redis::cluster::ClusterClient,
        /// Used for pub/sub, which Redis Cluster broadcasts to every node.
        seeds: Vec<Client>,
    },
}

/// A cheap-to-clone live connection (multiplexed; clones share one socket).
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
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
}

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
            }),
        })
    }

    /// The endpoint, without credentials: safe to print.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.target, Target::Cluster { .. })
    }

    pub fn command_timeout(&self) -> Duration {
        self.inner.command_timeout
    }

    /// Follows the connection state.
    pub fn state(&self) -> watch::Receiver<ConnState> {
        self.inner.state.subscribe()
    }

    pub fn current_state(&self) -> ConnState {
        self.inner.state.borrow().clone()
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
        if self.is_cluster() {
            let cmds: Vec<&Cmd> = pipe.cmd_iter().collect();
            let mut groups: Vec<(Option<Slot>, Vec<usize>)> = Vec::new();
            for (i, c) in cmds.iter().enumerate() {
                let slot = cmd_slot(c);
                match groups.iter_mut().find(|(s, _)| *s == slot) {
                    Some((_, indices)) => indices.push(i),
                    None => groups.push((slot, vec![i])),
                }
            }
            if groups.len() > 1 {
                if pipe.is_transaction() {
                    return Err(Error::Redis(
                        "a MULTI pipeline must stay in one Cluster hash slot".into(),
                    ));
                }
                let sends = groups.iter().map(|(_, indices)| {
                    let mut sub = Pipeline::with_capacity(indices.len());
                    sub.ignore_errors();
                    for &i in indices {
                        sub.add_command(cmds[i].clone());
                    }
                    async move {
                        let values: Vec<Value> = self
                            .run(|mut c| async move { sub.query_async(&mut c).await })
                            .await?;
                        Ok::<_, Error>((indices, values))
                    }
                });
                let mut out = vec![Value::Nil; cmds.len()];
                for (indices, values) in futures::future::try_join_all(sends).await? {
                    for (&i, v) in indices.iter().zip(values) {
                        out[i] = v;
                    }
                }
                return redis::from_redis_value(Value::Array(out))
                    .map_err(|e| Error::Redis(scrub(&e.to_string())));
            }
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
    pub fn classify(&self, e: RedisError) -> Error {
        let endpoint = self.inner.endpoint.clone();
        if e.kind() == ErrorKind::AuthenticationFailed
            || e.code().is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH")
        {
            return Error::Auth {
                endpoint,
                user: self.inner.username.clone(),
            };
        }
        if e.code() == Some("NOPERM") {
            return Error::Permission {
                endpoint,
                detail: e.detail().unwrap_or("").to_owned(),
            };
        }
        // Cluster states that pass on their own (a master down until it returns or fails over,
        // slots moving, a node loading its data): the request did not run and may succeed
        // later, so to callers it is an outage, not a bad request. The connection itself is
        // fine (the driver repairs its node links), so no reconnect is started.
        if matches!(
            e.code(),
            Some("CLUSTERDOWN" | "TRYAGAIN" | "MASTERDOWN" | "LOADING" | "MOVED" | "ASK")
        ) {
            return Error::Unavailable {
                endpoint,
                detail: scrub(&e.to_string()),
            };
        }
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_connection_refusal()
            || e.kind() == ErrorKind::ClusterConnectionNotFound
            || e.is_cluster_error() && e.code().is_some_and(|c| c == "CLUSTERDOWN")
        {
            let msg = scrub(&e.to_string());
            self.lost(&msg);
            return Error::Unavailable {
                endpoint,
                detail: msg,
            };
        }
        Error::Redis(scrub(&e.to_string()))
    }

    /// Drops the broken connection and starts reconnecting.
    fn lost(&self, why: &str) {
        if let Ok(mut g) = self.inner.conn.write() {
            *g = None;
        }
        let now = Utc::now();
        self.inner.state.send_modify(|s| {
            *s = match s {
                ConnState::Reconnecting { .. } | ConnState::Unreachable { .. } => return,
                ConnState::Connected { .. } => ConnState::Reconnecting {
                    since: now,
                    attempts: 0,
                    error: why.to_owned(),
                },
                _ => ConnState::Unreachable {
                    since: now,
                    attempts: 0,
                    error: why.to_owned(),
                },
            }
        });
        self.spawn_reconnect();
    }

    fn spawn_reconnect(&self) {
        if self.inner.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.reconnecting.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        rt.spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                match this.establish().await {
                    Ok(()) => break,
                    Err(Error::Auth { .. }) | Err(Error::Permission { .. }) => {
                        // Retrying wrong credentials only locks the account out faster; keep
                        // the state saying why and try again at the slowest pace.
                        tokio::time::sleep(this.inner.max_backoff).await;
                    }
                    Err(_) => {
                        let jitter = rand::rng().random_range(0.8..1.2);
                        tokio::time::sleep(backoff.mul_f64(jitter)).await;
                        backoff = (backoff * 2).min(this.inner.max_backoff);
                    }
                }
                if Arc::strong_count(&this.inner) <= 1 {
                    break; // nobody is left to use the connection
                }
            }
            this.inner.reconnecting.store(false, Ordering::Release);
        });
    }

    /// One connection attempt, bounded by the connect timeout; updates the state either way.
    async fn establish(&self) -> Result<(), Error> {
        let attempt = tokio::time::timeout(self.inner.connect_timeout, self.open()).await;
        let result = match attempt {
            Ok(Ok(conn)) => {
                if let Ok(mut g) = self.inner.conn.write() {
                    *g = Some(conn);
                }
                self.inner
                    .state
                    .send_replace(ConnState::Connected { since: Utc::now() });
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
        let shown = result.to_string();
        let now = Utc::now();
        self.inner.state.send_modify(|s| {
            *s = match s.clone() {
                ConnState::Reconnecting {
                    since, attempts, ..
                } => ConnState::Reconnecting {
                    since,
                    attempts: attempts + 1,
                    error: shown.clone(),
                },
                ConnState::Unreachable {
                    since, attempts, ..
                } => ConnState::Unreachable {
                    since,
                    attempts: attempts + 1,
                    error: shown.clone(),
                },
                ConnState::Connected { .. } => ConnState::Reconnecting {
                    since: now,
                    attempts: 1,
                    error: shown.clone(),
                },
                _ => ConnState::Unreachable {
                    since: now,
                    attempts: 1,
                    error: shown.clone(),
                },
            }
        });
        Err(result)
    }

    async fn open(&self) -> Result<Conn, Error> {
        let endpoint = &self.inner.endpoint;
        let connect_err = |e: RedisError| {
            if e.kind() == ErrorKind::AuthenticationFailed
                || e.code().is_some_and(|c| c == "WRONGPASS" || c == "NOAUTH")
            {
                Error::Auth {
                    endpoint: endpoint.clone(),
                    user: self.inner.username.clone(),
                }
            } else {
                Error::Unreachable {
                    endpoint: endpoint.clone(),
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

    /// Every key matching `pattern` (already glob-escaped where needed), optionally only of
    /// one Redis `TYPE`, by SCAN in batches of `COUNT 1000` (never KEYS), on every master of a
    /// Cluster. Stops after `limit` keys so a huge keyspace cannot exhaust memory.
    ///
    /// Key names that are not UTF-8 (no name this project or the Python original writes) are
    /// left out and logged; [`Redis::scan_match_raw`] returns them too.
    pub async fn scan_match(
        &self,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        let raw = self.scan_match_raw(pattern, key_type, limit).await?;
        let mut keys = Vec::with_capacity(raw.len());
        let mut skipped = 0usize;
        for name in raw {
            match String::from_utf8(name) {
                Ok(k) => keys.push(k),
                Err(_) => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(
                pattern,
                skipped,
                "SCAN found key names that are not UTF-8; left out"
            );
        }
        Ok(keys)
    }

    /// Like [`Redis::scan_match`], with key names as bytes.
    pub async fn scan_match_raw(
        &self,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let mut found = Vec::new();
        match self.conn()? {
            Conn::Single(_) => {
                self.scan_node(None, pattern, key_type, limit, &mut found)
                    .await?
            }
            Conn::Cluster(_) => {
                for (host, port) in self.cluster_masters().await? {
                    self.scan_node(Some((host, port)), pattern, key_type, limit, &mut found)
                        .await?;
                    if found.len() >= limit {
                        break;
                    }
                }
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn scan_node(
        &self,
        node: Option<(String, u16)>,
        pattern: &str,
        key_type: Option<&str>,
        limit: usize,
        found: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            if let Some(t) = key_type {
                cmd.arg("TYPE").arg(t);
            }
            let (next, keys): (u64, Vec<Vec<u8>>) = match &node {
                None => self.query(&cmd).await?,
                Some((host, port)) => {
                    let routing = redis::cluster_routing::RoutingInfo::SingleNode(
                        redis::cluster_routing::SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        },
                    );
                    let value = self
                        .run(|c| async move {
                            match c {
                                Conn::Cluster(mut c) => c.route_command(cmd, routing).await,
                                Conn::Single(mut c) => cmd.query_async(&mut c).await,
                            }
                        })
                        .await?;
                    redis::from_redis_value(value).map_err(|e| Error::Redis(e.to_string()))?
                }
            };
            found.extend(keys);
            cursor = next;
            if cursor == 0 || found.len() >= limit {
                return Ok(());
            }
        }
    }

    /// The reachable masters of the cluster, as (host, port).
    async fn cluster_masters(&self) -> Result<Vec<(String, u16)>, Error> {
        let nodes: String = self
            .query(&redis::cmd("CLUSTER").arg("NODES").clone())
            .await?;
        Ok(parse_cluster_masters(&nodes))
    }

    /// A dedicated pub/sub connection. On Cluster, PUBLISH reaches every node, so the first
    /// seed that answers is enough.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, Error> {
        let clients: Vec<&Client> = match &self.inner.target {
            Target::Single { client, .. } => vec![client],
            Target::Cluster { seeds, .. } => seeds.iter().collect(),
        };
        let mut last = None;
        for client in clients {
            match tokio::time::timeout(self.inner.connect_timeout, client.get_async_pubsub()).await
            {
                Ok(Ok(p)) => return Ok(p),
                Ok(Err(e)) => last = Some(self.classify(e)),
                Err(_) => {
                    last = Some(Error::Unreachable {
                        endpoint: self.inner.endpoint.clone(),
                        detail: "pub/sub connect timed out".into(),
                    })
                }
            }
        }
        Err(last.unwrap_or_else(|| self.unavailable()))
    }
}

/// The first error reply in a (possibly nested) reply, as a driver error.
fn first_error(v: &Value) -> Option<RedisError> {
    match v {
        Value::ServerError(e) => Some(RedisError::from(e.clone())),
        Value::Array(items) | Value::Set(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

/// The Cluster hash slot of a command's first key, `None` for keyless commands (PUBLISH,
/// EVALSHA with no keys, …), which may go to any node.
fn cmd_slot(cmd: &Cmd) -> Option<Slot> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => b,
            _ => &b"0"[..],
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => {
            let numkeys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if numkeys == 0 {
                return None;
            }
            args.get(3)?
        }
        b"PUBLISH" | b"SPUBLISH" | b"PING" | b"TIME" | b"SCRIPT" | b"INFO" | b"CLUSTER" => {
            return None;
        }
        _ => args.get(1)?,
    };
    Some(Slot::for_key(key))
}

/// Masters that are not failed, from `CLUSTER NODES` output
/// (`<id> <ip:port@cport[,host]> <flags> …`).
pub(crate) fn parse_cluster_masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let _id = parts.next()?;
            let addr = parts.next()?;
            let flags = parts.next()?;
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                return None;
            }
            let hostport = addr.split('@').next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
        .collect()
}

/// Redis error texts can echo a command's arguments; strip anything that looks like an AUTH
/// line so a password never reaches a log.
fn scrub(msg: &str) -> String {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("auth ") {
        return "authentication-related error (details withheld)".into();
    }
    msg.chars().filter(|c| !c.is_control()).collect()
}

fn resolve_target(s: &RedisSettings) -> Result<(Target, String), Error> {
    let config_err = |m: String| Error::Config(m);
    let password = s.password.clone().filter(|p| !p.is_empty());
    let username = s.username.clone().filter(|u| !u.is_empty());
    let with_auth = |info: ConnectionInfo, db: Option<i64>| -> ConnectionInfo {
        let mut r = info.redis_settings().clone();
        if let Some(u) = &username
            && r.username().is_none()
        {
            r = r.set_username(u);
        }
        if let Some(p) = &password
            && r.password().is_none()
        {
            r = r.set_password(p);
        }
        if let Some(db) = db {
            r = r.set_db(db);
        }
        info.set_redis_settings(r)
    };
    let root_cert = match &s.tls_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            config_err(format!(
                "redis.tls_ca_file: cannot read {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let url_info = |raw: &str| -> Result<ConnectionInfo, Error> {
        raw.into_connection_info()
            .map_err(|_| config_err(format!("redis.url: cannot parse {}", redact_url(raw))))
    };
    let host_info = |host: &str, port: u16| -> ConnectionInfo {
        let addr = if s.tls {
            ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: s.tls_insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_owned(), port)
        };
        // A bare host:port always parses; only the address is replaced.
        format!("redis://{host}:{port}")
            .into_connection_info()
            .map(|i| i.set_addr(addr))
            .unwrap_or_else(|_| {
                ("127.0.0.1", port)
                    .into_connection_info()
                    .expect("tuple address")
            })
    };
    let describe = |info: &ConnectionInfo| -> String {
        let db = info.redis_settings().db();
        match info.addr() {
            ConnectionAddr::Tcp(h, p) => format!("redis://{h}:{p}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix://{}?db={db}", path.display()),
            _ => "redis".into(),
        }
    };
    let build_client = |info: ConnectionInfo| -> Result<Client, Error> {
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let made = match (&root_cert, tls) {
            (Some(cert), true) => Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(cert.clone()),
                },
            ),
            _ => Client::open(info),
        };
        made.map_err(|e| config_err(format!("redis: {}", scrub(&e.to_string()))))
    };

    let url = s.url.clone().filter(|u| !u.is_empty());
    if s.cluster {
        let seeds: Vec<ConnectionInfo> = if !s.cluster_nodes.is_empty() {
            s.cluster_nodes
                .iter()
                .map(|n| {
                    if n.contains("://") {
                        url_info(n).map(|i| with_auth(i, None))
                    } else {
                        let (h, p) = n.rsplit_once(':').ok_or_else(|| {
                            config_err(format!("redis.cluster_nodes: {n:?} is not host:port"))
                        })?;
                        let port = p.parse::<u16>().map_err(|_| {
                            config_err(format!("redis.cluster_nodes: bad port in {n:?}"))
                        })?;
                        Ok(with_auth(host_info(h, port), None))
                    }
                })
                .collect::<Result<_, _>>()?
        } else if let Some(u) = &url {
            vec![with_auth(url_info(u)?, None)]
        } else {
            vec![with_auth(host_info(&s.host, s.port), None)]
        };
        let endpoint = format!(
            "cluster[{}]",
            seeds.iter().map(describe).collect::<Vec<_>>().join(",")
        );
        let mut builder = redis::cluster::ClusterClient::builder(seeds.clone())
            .connection_timeout(s.connect_timeout())
            .response_timeout(s.command_timeout())
            .retries(2)
            .min_retry_wait(20)
            .max_retry_wait(500);
        if let Some(u) = &username {
            builder = builder.username(u);
        }
        if let Some(p) = &password {
            builder = builder.password(p);
        }
        if root_cert.is_some() {
            return Err(config_err(
                "redis.tls_ca_file is not supported with redis.cluster (the cluster client \
                 trusts the system store); install the CA system-wide or set redis.tls_insecure"
                    .into(),
            ));
        }
        if s.tls_insecure {
            builder = builder.danger_accept_invalid_hostnames(true);
        }
        let client = builder
            .build()
            .map_err(|e| config_err(format!("redis cluster: {}", scrub(&e.to_string()))))?;
        let seeds = seeds
            .into_iter()
            .map(build_client)
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((Target::Cluster { client, seeds }, endpoint));
    }

    let info = match &url {
        Some(u) => with_auth(url_info(u)?, None),
        None => with_auth(host_info(&s.host, s.port), Some(s.db)),
    };
    let endpoint = describe(&info);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(s.connect_timeout()))
        .set_response_timeout(Some(s.command_timeout()));
    Ok((
        Target::Single {
            client: build_client(info)?,
            config,
        },
        endpoint,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:hunter2@host:6379/1"),
            "redis://user:<redacted>@host:6379/1"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert!(!redact_url("garbage:hunter2@x").contains("hunter2"));
    }

    #[test]
    fn endpoint_never_shows_the_password() {
        let s = RedisSettings {
            url: Some("redis://bob:hunter2@example.invalid:7000/3".into()),
            ..Default::default()
        };
        let (_, endpoint) = resolve_target(&s).unwrap();
        assert_eq!(endpoint, "redis://example.invalid:7000/3");
        let s = RedisSettings {
            password: Some("hunter2".into()),
            ..Default::default()
        };
        let r = Redis::new(&s).unwrap();
        assert!(!format!("{r:?}").contains("hunter2"));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
