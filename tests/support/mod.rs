//! Test harness: every integration test starts its own `redis-server` (or a local 3-master
//! Redis Cluster) on free ports, in a temporary directory, and stops it when dropped. No test
//! ever talks to a server it did not start.
//!
//! Fault tests use [`RedisServer::kill`] (SIGKILL, like a crash) and [`RedisServer::start_again`]
//! (same port, same options).
#![allow(dead_code)]

pub mod python;
pub mod tmux;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use artemis::config::{RedisSettings, Settings};

/// Options for a test server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// `requirepass` for the default user.
    pub password: Option<String>,
    /// Extra `--aclfile`-free ACL rules, applied with `ACL SETUSER` after start.
    pub acl_users: Vec<Vec<String>>,
    /// Serve TLS (with a self-signed certificate) instead of plain TCP.
    pub tls: bool,
    /// Extra `--name value` arguments.
    pub extra: Vec<(String, String)>,
}

impl ServerOptions {
    /// Options for a server that keeps every acknowledged write across a SIGKILL (AOF with
    /// an fsync per write), for crash tests that check what survived.
    pub fn durable() -> Self {
        Self {
            extra: vec![
                ("appendonly".into(), "yes".into()),
                ("appendfsync".into(), "always".into()),
            ],
            ..Default::default()
        }
    }
}

/// A `redis-server` process owned by one test.
pub struct RedisServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    options: ServerOptions,
    child: Option<Child>,
}

/// Finds a port that is free now (and whose cluster-bus port, +10000, is free too).
pub fn free_port() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().unwrap().port();
        drop(l);
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

fn redis_server_bin() -> String {
    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into())
}

/// The test TLS material, made once per test process in memory (no `openssl` binary): a CA
/// and a server certificate it signed for localhost/127.0.0.1, with the server's key, as PEM.
/// One CA for every server of the process, so the nodes of a TLS Cluster trust each other.
struct TestPki {
    ca: String,
    cert: String,
    key: String,
}

static PKI: std::sync::LazyLock<TestPki> = std::sync::LazyLock::new(|| {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "artemis test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).expect("server certificate");
    TestPki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
});

/// Writes the test CA (`ca.pem`), the server certificate (`cert.pem`) and its key (`key.pem`)
/// into `dir`; returns their paths in that order.
fn make_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, &PKI.ca).expect("write ca.pem");
    std::fs::write(&paths.1, &PKI.cert).expect("write cert.pem");
    std::fs::write(&paths.2, &PKI.key).expect("write key.pem");
    paths
}

impl RedisServer {
    /// Starts a plain server on a free port.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Self {
            port: free_port(),
            dir,
            options,
            child: None,
        };
        server.spawn_on_a_free_port(&[]);
        server
    }

    /// Starts the server, on another free port whenever the one picked was taken between
    /// `free_port` and the server's bind (tests run in parallel).
    fn spawn_on_a_free_port(&mut self, cluster_args: &[String]) {
        for _ in 0..5 {
            if self.try_spawn(cluster_args) {
                return;
            }
            self.port = free_port();
        }
        panic!("redis-server found no free port in 5 tries");
    }

    /// Starts the server on its port; panics when it does not come up.
    fn spawn(&mut self, cluster_args: &[String]) {
        if !self.try_spawn(cluster_args) {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            panic!("redis-server on port {} did not start:\n{log}", self.port);
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Starts the server; false when it exited before listening (its port was taken).
    fn try_spawn(&mut self, cluster_args: &[String]) -> bool {
        let mut cmd = Command::new(redis_server_bin());
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        if self.options.tls {
            let (ca, cert, key) = make_cert(self.dir.path());
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca)
                .args(["--tls-auth-clients", "no"]);
            if !cluster_args.is_empty() {
                // The cluster bus and replication between nodes speak TLS too.
                cmd.args(["--tls-cluster", "yes", "--tls-replication", "yes"]);
            }
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        if let Some(p) = &self.options.password {
            cmd.args(["--requirepass", p]);
        }
        for (k, v) in &self.options.extra {
            cmd.arg(format!("--{k}")).arg(v);
        }
        cmd.args(cluster_args);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        // A restart appends to the same log: only what this start writes counts.
        let log_start = std::fs::metadata(self.log_path()).map_or(0, |m| m.len() as usize);
        let child = cmd.spawn().expect("start redis-server (is it installed?)");
        self.child = Some(child);
        if !self.wait_listening(log_start) {
            self.kill();
            return false;
        }
        if !self.options.acl_users.is_empty() {
            for rule in self.options.acl_users.clone() {
                let mut args = vec!["ACL".to_string(), "SETUSER".to_string()];
                args.extend(rule);
                self.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
            }
        }
        true
    }

    /// Waits until this server, not just anything on its port, accepts connections: its own
    /// log says it is ready. A connect alone would also succeed against another test's server
    /// that took the port first, while this one exits with "Address already in use"; that
    /// test then stopping its server made this one's clients see "Connection refused".
    fn wait_listening(&mut self, log_start: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                return false;
            }
            let log = std::fs::read(self.log_path()).unwrap_or_default();
            let ours = log.get(log_start..).unwrap_or_default();
            if String::from_utf8_lossy(ours).contains("Ready to accept connections")
                && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Settings that point the library at this server.
    pub fn settings(&self) -> Settings {
        Settings {
            redis: self.redis_settings(),
            ..Default::default()
        }
    }

    pub fn redis_settings(&self) -> RedisSettings {
        RedisSettings {
            url: Some(self.url()),
            password: self.options.password.clone(),
            timeout: 2.0,
            connect_timeout: 2.0,
            reconnect_max_backoff: 0.5,
            tls_insecure: self.options.tls,
            ..Default::default()
        }
    }

    /// The URL of the server (no password in it).
    pub fn url(&self) -> String {
        if self.options.tls {
            format!("rediss://127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    /// Runs `redis-cli` against this server and returns its stdout (raw replies).
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.options.tls {
            cmd.args(["--tls", "--insecure"]);
        }
        if let Some(p) = &self.options.password {
            cmd.env("REDISCLI_AUTH", p);
        }
        let out = cmd.args(args).output().expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
    }

    /// A synchronous raw connection for seeding and inspecting data exactly as another
    /// process (e.g. the Python original) would.
    pub fn raw(&self) -> redis::Connection {
        let mut info =
            redis::IntoConnectionInfo::into_connection_info(self.url().as_str()).expect("test url");
        if let Some(p) = &self.options.password {
            let r = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(r);
        }
        redis::Client::open(info)
            .expect("client")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("raw connection to the test server")
    }

    /// Kills the server with SIGKILL, like a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port with the same options (data is gone unless
    /// the options turned persistence on, see [`ServerOptions::durable`]).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "server is still running");
        self.spawn(&[]);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Sends the server `signal` (`STOP` freezes it as a stalled host would: connections
    /// stay open, nothing is answered; `CONT` lets it go on with what it was sent).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("server is running").id();
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local Redis Cluster of three masters, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// A cluster whose nodes all get `options` (e.g. `extra` persistence settings, or `tls`:
    /// TLS-only nodes whose cluster bus and replication use TLS too).
    pub fn start_with(options: ServerOptions) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut node = RedisServer {
                port: free_port(),
                dir,
                options: options.clone(),
                child: None,
            };
            node.spawn_on_a_free_port(&cluster_args());
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = Command::new("redis-cli");
        if options.tls {
            create.args(["--tls", "--insecure"]);
        }
        let out = create
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_ok();
        cluster
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self
                .nodes
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("cluster did not reach cluster_state:ok");
    }

    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect()
    }

    /// A synchronous raw Cluster connection, to seed and inspect data exactly as another
    /// process would (no TLS or password: the Clusters that need them are not seeded raw).
    pub fn raw(&self) -> redis::cluster::ClusterConnection {
        let seeds: Vec<String> = self
            .seeds()
            .iter()
            .map(|s| format!("redis://{s}"))
            .collect();
        redis::cluster::ClusterClient::new(seeds)
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }

    pub fn settings(&self) -> Settings {
        Settings {
            redis: RedisSettings {
                cluster: true,
                cluster_nodes: self.seeds(),
                tls: self.nodes[0].options.tls,
                tls_insecure: self.nodes[0].options.tls,
                timeout: 2.0,
                connect_timeout: 2.0,
                reconnect_max_backoff: 0.5,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Kills one master (SIGKILL).
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Restarts a killed master with its cluster config (it rejoins with its slots).
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].spawn(&cluster_args());
        self.wait_ok();
    }

    /// A command on every node, e.g. to sum `DBSIZE`.
    pub fn cli_all(&self, args: &[&str]) -> Vec<String> {
        self.nodes.iter().map(|n| n.cli(args)).collect()
    }
}

fn cluster_args() -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Waits for `child` at most `limit` while draining its stdout and stderr (a child blocked on
/// a full pipe would look hung), then returns what it printed. A child that overstays is
/// killed (only it) and the test fails with its stderr.
pub fn wait_output(mut child: Child, limit: Duration, what: &str) -> std::process::Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The `artemis-top` binary in a clean environment: `HOME` = `home` (so no config file of the
/// caller's), the caller's `PATH`, and no other variable (no `REDIS_*`, no `ARTEMIS_*`).
pub fn artemis_top(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_artemis-top"));
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    c
}

/// A tracker handle over a fresh connection to the server (or Cluster) these settings name.
pub async fn tracker(settings: Settings) -> artemis::tracker::Tracker {
    let backend = artemis::Backend::redis(settings)
        .await
        .expect("connect to the test server");
    artemis::tracker::Tracker::new(backend.tracker().clone())
}
