//! Layered configuration: built-in defaults < config file < environment < command-line flags.
//!
//! Every value remembers where it came from, so a mistake is reported as one line naming the
//! setting and its source ("redis.port: got string \"abc\" from environment variable
//! REDIS_PORT: expected an integer"). Unknown keys are errors, never silently ignored. The file
//! is never written: `config.toml.example` documents every setting, and `--print-config` shows
//! the effective configuration with secrets redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, ConfigError, Map, Source, Value, ValueKind};
use serde::{Deserialize, Serialize};

use crate::keys::Prefixes;

/// The prefix of every environment variable of ours other than the Python `REDIS_*` ones:
/// `ARTEMIS_TOP_<SECTION>_<KEY>` sets `<section>.<key>`. The Python original reads 20-odd
/// `ARTEMIS_*` variables of its own (`ARTEMIS_LLM_PROVIDER`, `ARTEMIS_REDIS_URL`, …), so any
/// other `ARTEMIS_*` name is the original's and is ignored; inside this prefix an unknown name
/// is an error, so a typo is never silently ignored.
pub const ENV_PREFIX: &str = "ARTEMIS_TOP_";

/// Environment variable that names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "ARTEMIS_TOP_CONFIG";

/// Environment variables of the Python original, and the setting each one sets.
pub const PYTHON_ENV: &[(&str, &str)] = &[
    ("REDIS_URL", "redis.url"),
    ("REDIS_HOST", "redis.host"),
    ("REDIS_PORT", "redis.port"),
    ("REDIS_DB", "redis.db"),
    ("REDIS_USERNAME", "redis.username"),
    ("REDIS_PASSWORD", "redis.password"),
    ("REDIS_TIMEOUT", "redis.timeout"),
    ("REDIS_CONNECT_TIMEOUT", "redis.connect_timeout"),
];

/// The log filter (`tracing` env-filter syntax) of the `artemis-top` binary.
pub const LOG_ENV: &str = "ARTEMIS_TOP_LOG";
/// The file the dashboard logs to (it never logs to its own terminal).
pub const LOG_FILE_ENV: &str = "ARTEMIS_TOP_LOG_FILE";

/// Variables in our namespace that are not settings.
const NON_SETTING_ENV: &[&str] = &[CONFIG_ENV, LOG_ENV, LOG_FILE_ENV];

/// Variables whose values are paths: any bytes are a valid value.
const PATH_ENV: &[&str] = &[CONFIG_ENV, LOG_FILE_ENV, "HOME", "XDG_CONFIG_HOME"];

/// Settings whose values are secrets: never shown, not even in a type error.
const SECRET_SETTINGS: &[&str] = &["redis.password"];

/// Largest config file read, bytes. Real config files are a few kilobytes; the cap keeps a
/// mistake such as `--config /dev/zero` or a huge log file from taking all memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The variables of the process environment that are ours, read once with
/// [`std::env::vars_os`], so that a variable that is not UTF-8 can never panic the process.
///
/// Kept: the Python `REDIS_*` names of [`PYTHON_ENV`], everything under [`ENV_PREFIX`], and
/// `HOME` / `XDG_CONFIG_HOME` (to find the config file). Everything else, whatever its bytes,
/// is ignored. A variable of ours whose value is not UTF-8 (paths excepted) is an error naming
/// the variable, never showing its value. `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Environment {
    text: Vec<(String, String)>,
    paths: Vec<(String, std::ffi::OsString)>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field(
                "names",
                &self.text.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field(
                "paths",
                &self.paths.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Environment {
    /// This process's environment.
    pub fn capture() -> Result<Self, ConfigErrorMsg> {
        Self::from_vars(std::env::vars_os())
    }

    /// Keeps our variables out of `vars` (see the type's documentation).
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigErrorMsg>
    where
        K: Into<std::ffi::OsString>,
        V: Into<std::ffi::OsString>,
    {
        let mut out = Self::default();
        for (name, value) in vars {
            let (name, value) = (name.into(), value.into());
            let Some(name) = name.to_str().map(str::to_owned) else {
                if name.as_encoded_bytes().starts_with(ENV_PREFIX.as_bytes()) {
                    return Err(ConfigErrorMsg(format!(
                        "environment variable {}: the name is not valid UTF-8, so it is no \
                         setting of ours (unset it)",
                        name.to_string_lossy().escape_debug()
                    )));
                }
                continue;
            };
            let ours = name.starts_with(ENV_PREFIX) || PYTHON_ENV.iter().any(|(n, _)| *n == name);
            if PATH_ENV.contains(&name.as_str()) {
                out.paths.push((name, value));
            } else if ours {
                match value.into_string() {
                    Ok(v) => out.text.push((name, v)),
                    Err(_) => {
                        return Err(ConfigErrorMsg(format!(
                            "environment variable {name}: the value is not valid UTF-8"
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The setting variables, as [`load`] takes them.
    pub fn settings(&self) -> &[(String, String)] {
        &self.text
    }

    /// One text variable of ours (e.g. [`LOG_ENV`]).
    pub fn var(&self, name: &str) -> Option<&str> {
        self.text
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// One path variable ([`CONFIG_ENV`], [`LOG_FILE_ENV`], `HOME`, `XDG_CONFIG_HOME`); an
    /// empty value counts as unset.
    pub fn path(&self, name: &str) -> Option<&Path> {
        self.paths
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| Path::new(v))
    }
}

/// Shortest duration setting, seconds (1 ms): below it every call would time out.
pub const MIN_SECONDS: f64 = 0.001;
/// Shortest dashboard poll interval, seconds: faster polling only loads Redis.
pub const MIN_POLL_SECONDS: f64 = 0.01;
/// Longest duration setting, seconds (a day).
pub const MAX_SECONDS: f64 = 86_400.0;
/// Longest TTL setting, seconds (ten years).
pub const MAX_TTL_SECONDS: u64 = 315_360_000;

/// The full, validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Connection: where Redis is, credentials, TLS, Cluster, timeouts.
    pub redis: RedisSettings,
    /// Key prefixes of the four jobs (the Python defaults unless changed).
    pub prefixes: Prefixes,
    /// Pipeline tracker: TTLs, event history, outage buffer, SCAN for Python-written cards.
    pub tracker: TrackerSettings,
    /// Metrics: time-series retention, daily TTL, how much the snapshot reads.
    pub metrics: MetricsSettings,
    /// LLM response cache: TTL, in-process tier, fetch leases, prices.
    pub cache: CacheSettings,
    /// Rate limiter: outage policy, `acquire` timing, presets.
    pub limiter: LimiterSettings,
    /// The `artemis-top` dashboard: polling, theme, keys.
    pub dashboard: DashboardSettings,
}

/// How to reach Redis.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://`, `rediss://` (TLS), `unix://` or `redis+unix://`. When set it wins over
    /// host/port/db/tls; username and password fill in what the URL leaves out.
    pub url: Option<String>,
    /// Host name or address (`REDIS_HOST`, default `localhost`); ignored when `url` is set.
    pub host: String,
    /// TCP port (`REDIS_PORT`, default 6379); ignored when `url` is set.
    pub port: u16,
    /// Database number (`REDIS_DB`, default 0); ignored when `url` is set. Redis Cluster only
    /// has database 0.
    pub db: i64,
    /// ACL user name (`REDIS_USERNAME`); `None` authenticates as the default user.
    pub username: Option<String>,
    /// Password (`REDIS_PASSWORD`); `None` sends no AUTH. Redacted in `Debug` and
    /// `--print-config`.
    pub password: Option<String>,
    /// Connect with TLS (`rediss://`); ignored when `url` is set.
    pub tls: bool,
    /// Accept a server certificate that does not verify (self-signed test servers only).
    pub tls_insecure: bool,
    /// PEM file of a CA to trust in addition to the system's.
    pub tls_ca_file: Option<PathBuf>,
    /// Talk Redis Cluster protocol; seed nodes from `cluster_nodes`, else host:port or url.
    pub cluster: bool,
    /// Seed nodes as `host:port` (or URLs).
    pub cluster_nodes: Vec<String>,
    /// Command (socket) timeout in seconds (`REDIS_TIMEOUT`).
    pub timeout: f64,
    /// Connect timeout in seconds (`REDIS_CONNECT_TIMEOUT`).
    pub connect_timeout: f64,
    /// Longest pause between reconnect attempts, seconds.
    pub reconnect_max_backoff: f64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            host: "localhost".into(),
            port: 6379,
            db: 0,
            username: None,
            password: None,
            tls: false,
            tls_insecure: false,
            tls_ca_file: None,
            cluster: false,
            cluster_nodes: Vec::new(),
            timeout: 5.0,
            connect_timeout: 5.0,
            reconnect_max_backoff: 1.0,
        }
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_deref().map(crate::redact::redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("tls_insecure", &self.tls_insecure)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("cluster", &self.cluster)
            .field("cluster_nodes", &self.cluster_nodes)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("reconnect_max_backoff", &self.reconnect_max_backoff)
            .finish()
    }
}

impl RedisSettings {
    /// [`Self::timeout`] as a `Duration`; panics if the configured number is negative or not
    /// finite, which configuration validation rejects.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }

    /// [`Self::connect_timeout`](field@Self::connect_timeout) as a `Duration`; panics like
    /// [`Self::command_timeout`].
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    /// [`Self::reconnect_max_backoff`] as a `Duration`; panics like [`Self::command_timeout`].
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs_f64(self.reconnect_max_backoff)
    }
}

/// Pipeline tracker settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSettings {
    /// TTL of pipeline and stage documents and of the extension keys, seconds (Python: 86400).
    pub ttl_seconds: u64,
    /// Events kept per card in the history stream.
    pub history_max_events: u64,
    /// Writes kept in process while Redis is unreachable, replayed in order when it returns.
    pub outage_buffer: usize,
    /// Also find cards written by the Python original (which keeps no index) with SCAN.
    pub scan_python_cards: bool,
    /// How long a SCAN for Python-written cards is reused before the next one, seconds
    /// (0: scan on every read). Cards this project writes are always found through the index.
    /// Full reads use it; the dashboard's polls between them walk the keyspace a bounded
    /// step at a time instead ([`Self::scan_count_per_poll`]).
    pub scan_interval_seconds: u64,
    /// Seconds between the dashboard's full reads (every card read again: what a poll of only
    /// the changes cannot see, a card deleted by hand, is seen gone then). It also reads in
    /// full at start, after a reconnect and on `r`. The metrics' closed periods (time buckets
    /// and past days, otherwise held) are read again as often.
    pub full_read_interval_seconds: u64,
    /// The largest share of the dashboard's time, in percent, that the periodic full read
    /// (an audit of every card) may take: when the last audit took longer than this share of
    /// [`Self::full_read_interval_seconds`], the next one waits its duration × 100 / this
    /// instead, so that the audit's cost stays a fixed share however many cards exist (at
    /// 100,000 cards, an audit of ~2 s comes every ~200 s at the default 1). 100 never
    /// stretches the interval past one audit's duration.
    pub audit_share_percent: u64,
    /// Seconds a poll of only the changes reaches back before the previous poll's server time:
    /// it covers a Cluster index write that lands before its card's documents, and a server
    /// clock that steps back.
    pub poll_overlap_seconds: u64,
    /// The `COUNT` of the one SCAN each master gets per poll between full reads, walking the
    /// keyspace for Python-written cards a bounded step at a time; the walks for
    /// Python-written metric names and rate-limit windows step by it on every read too.
    pub scan_count_per_poll: u64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 86_400,
            history_max_events: 1_000,
            outage_buffer: 10_000,
            scan_python_cards: true,
            scan_interval_seconds: 30,
            full_read_interval_seconds: 60,
            audit_share_percent: 1,
            poll_overlap_seconds: 5,
            scan_count_per_poll: 1_000,
        }
    }
}

/// Metrics settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Age after which pipeline time-series members are trimmed on every completion write,
    /// days; `None` (the default) never trims, as the original, which keeps every entry for
    /// ever. When set, it trims every member older than that, the original's included.
    pub timeseries_retention_days: Option<u64>,
    /// 0: walk the whole keyspace for metric names only the original wrote (providers,
    /// models, developers, statuses: it keeps no name index) on every read. Otherwise (the
    /// default) the first read and the first after `r` walk it whole and every later read
    /// advances one bounded SCAN step (`tracker.scan_count_per_poll` keys per master), a name
    /// leaving after one complete pass without it. Its names are always added to the indexed
    /// ones.
    pub scan_interval_seconds: u64,
    /// TTL of the `daily:<date>` hashes, seconds (Python: 2592000).
    pub daily_ttl_seconds: u64,
    /// Days of daily figures the snapshot reads.
    pub snapshot_days: u32,
    /// Recent pipelines the snapshot reads.
    pub snapshot_recent: u32,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            timeseries_retention_days: None,
            scan_interval_seconds: 30,
            daily_ttl_seconds: 2_592_000,
            snapshot_days: 30,
            snapshot_recent: 20,
        }
    }
}

/// LLM response cache settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Look up and store responses at all; `false` sends every request upstream.
    pub enabled: bool,
    /// Entry TTL, seconds (Python: 604800).
    pub ttl_seconds: u64,
    /// Cache requests whose temperature is above zero (the original does).
    pub cache_nonzero_temperature: bool,
    /// Bytes of the optional in-process tier in front of Redis; 0 turns it off.
    pub memory_tier_bytes: u64,
    /// Longest time the in-process tier serves an entry, seconds. It bounds how long this
    /// process keeps answering from an entry that another process invalidated in Redis.
    pub memory_tier_ttl_seconds: u64,
    /// How long a cross-process fetch lease lives, milliseconds.
    pub lease_ms: u64,
    /// How long a process waits for another's answer before calling upstream itself, ms.
    pub lease_wait_ms: u64,
    /// Price table file replacing the shipped `assets/prices.toml`.
    pub price_file: Option<PathBuf>,
    /// Record every request (hits, misses, cost, saved cost) in the metrics keys.
    pub record_metrics: bool,
    /// Longest time a request's metrics record waits in process to be written with the ones
    /// after it, milliseconds: what a crash of the process can lose, and what keeps a metrics
    /// write of its own off every hit.
    pub metrics_flush_ms: u64,
    /// Records written at once without waiting for `metrics_flush_ms`.
    pub metrics_flush_records: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl_seconds: 604_800,
            cache_nonzero_temperature: true,
            memory_tier_bytes: 0,
            memory_tier_ttl_seconds: 60,
            lease_ms: 30_000,
            lease_wait_ms: 10_000,
            price_file: None,
            record_metrics: true,
            metrics_flush_ms: 50,
            metrics_flush_records: 256,
        }
    }
}

/// What the limiter does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// Admit everything (the original's behaviour).
    Open,
    /// Enforce the same limits in an in-process window.
    #[default]
    Local,
    /// Refuse everything.
    Closed,
}

/// One preset: limits for models of one provider whose id starts with `model_prefix`.
///
/// Only for providers the original does not limit itself: `openai` and `anthropic` keys get
/// exactly the original's table (see `limiter::presets`), so that the same key has the same
/// limit in Python and Rust processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitPreset {
    /// Provider name, the first segment of the preset's resource (`mistral`, …); matched
    /// case-insensitively, written into keys as spelled here.
    pub provider: String,
    /// Model-id prefix; the longest matching prefix wins; `""` is the provider's fallback.
    pub model_prefix: String,
    /// Requests admitted per window (at least 1).
    pub requests_per_window: u64,
    /// Tokens admitted per window; `None` enforces none (the original never enforces them).
    #[serde(default)]
    pub tokens_per_window: Option<u64>,
    /// Window length, seconds (default 60).
    #[serde(default = "default_window")]
    pub window_seconds: f64,
}

fn default_window() -> f64 {
    60.0
}

/// The limit a reader shows for windows that no process registered (e.g. written by Python
/// processes with limits of their own): `[[limiter.limits]]` entries, the first whose
/// pattern matches the window's full key wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowLimit {
    /// Glob over the full window key (`*` any run, `?` one character, a backslash escapes the next), e.g.
    /// `artemis:ratelimit:search:*`.
    pub pattern: String,
    /// Requests admitted per window (at least 1).
    pub requests: u64,
    /// Window length, seconds (default 60).
    #[serde(default = "default_window")]
    pub window_seconds: f64,
}

/// Rate limiter settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimiterSettings {
    /// What happens while Redis is unreachable (default [`FailurePolicy::Local`]).
    pub failure_policy: FailurePolicy,
    /// Fraction of each limit this process may use on its own under the `local` policy while
    /// Redis is unreachable (counting its own admissions of the window, those Redis made
    /// included), e.g. `0.25` for one of four processes. `None` (default): 1/N, N = the
    /// limiter processes seen in the last 30 s (1 until this process has reached Redis).
    pub local_share: Option<f64>,
    /// Longest time `acquire` waits by default, seconds.
    pub acquire_timeout: f64,
    /// Upper bound of the random delay `acquire` adds to each retry-after, milliseconds, so
    /// that refused waiters do not all come back in the same instant (never makes a retry
    /// early, only later).
    pub acquire_jitter_ms: u64,
    /// Per-provider, per-model-prefix limits for `RateLimiter::preset`, for providers other
    /// than the original's `openai` and `anthropic` (whose table is fixed). Empty by default.
    pub presets: Vec<LimitPreset>,
    /// Limits to show for windows no process registered, by key pattern (first match wins).
    pub limits: Vec<WindowLimit>,
}

impl Default for LimiterSettings {
    fn default() -> Self {
        Self {
            failure_policy: FailurePolicy::Local,
            local_share: None,
            acquire_timeout: 120.0,
            acquire_jitter_ms: 25,
            presets: Vec::new(),
            limits: Vec::new(),
        }
    }
}

/// Dashboard settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardSettings {
    /// Seconds between snapshot polls.
    pub poll_interval: f64,
    /// `auto` (dark or light from the terminal's background: its OSC 11 answer, else
    /// `COLORFGBG`, else dark), `dark`, `light` or `mono` (`NO_COLOR` forces mono).
    pub theme: String,
    /// Capture the mouse: a click selects a card, a double click opens it, the wheel scrolls.
    /// Off by default, which leaves the terminal's own mouse handling (selecting text to copy an
    /// id or an error) alone.
    pub mouse: bool,
    /// Upper bound on redraws per second under event storms.
    pub max_fps: u32,
    /// Key bindings: action name → key (e.g. `quit = "q"`).
    pub keys: BTreeMap<String, String>,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            poll_interval: 1.0,
            theme: "auto".into(),
            mouse: false,
            max_fps: 30,
            keys: BTreeMap::new(),
        }
    }
}

/// A configuration mistake: one line for the user, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigErrorMsg(pub String);

/// Settings given on the command line, as `(key, value, flag name)`.
pub type FlagOverrides = Vec<(String, String, String)>;

/// Where the configuration file is looked for, and whether it must exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChoice {
    /// The file to read; `None` when neither `XDG_CONFIG_HOME` nor `HOME` is set.
    pub path: Option<PathBuf>,
    /// Named explicitly (flag or `ARTEMIS_TOP_CONFIG`): a missing file is then an error.
    pub required: bool,
}

/// Picks the config file: `--config`, else `ARTEMIS_TOP_CONFIG`, else
/// `$XDG_CONFIG_HOME/artemis-top/config.toml` (or `~/.config/…`, on macOS too).
pub fn choose_file(flag: Option<&Path>, env: &Environment) -> FileChoice {
    if let Some(p) = flag {
        return FileChoice {
            path: Some(p.to_owned()),
            required: true,
        };
    }
    if let Some(p) = env.path(CONFIG_ENV) {
        return FileChoice {
            path: Some(p.to_owned()),
            required: true,
        };
    }
    let base = env
        .path("XDG_CONFIG_HOME")
        .filter(|p| p.is_absolute())
        .map(PathBuf::from)
        .or_else(|| env.path("HOME").map(|h| h.join(".config")));
    FileChoice {
        path: base.map(|b| b.join("artemis-top").join("config.toml")),
        required: false,
    }
}

/// Loads the layered configuration. `env` is the process environment (injected for tests).
pub fn load(
    file: &FileChoice,
    env: &[(String, String)],
    flags: &FlagOverrides,
) -> Result<Settings, ConfigErrorMsg> {
    let mut text = None;
    if let Some(path) = &file.path {
        match read_config_file(path)? {
            Some(read) => text = Some((read, path.as_path())),
            None if file.required => {
                return Err(ConfigErrorMsg(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            None => {}
        }
    }
    load_text(text.as_ref().map(|(t, p)| (t.as_str(), *p)), env, flags)
}

/// Reads a config file, `None` if there is none. Only a regular file is read (a FIFO would
/// block, a device or `/proc` file may never end), and at most [`MAX_CONFIG_BYTES`] of it,
/// read through `take` so that a file growing while it is read cannot exceed the cap either.
fn read_config_file(path: &Path) -> Result<Option<String>, ConfigErrorMsg> {
    use std::io::Read as _;
    let cannot = |why: String| ConfigErrorMsg(format!("config file {}: {why}", path.display()));
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(cannot(format!("cannot read it: {e}"))),
    };
    let not_regular = |meta: &std::fs::Metadata| -> Option<&'static str> {
        use std::os::unix::fs::FileTypeExt as _;
        let t = meta.file_type();
        if t.is_file() {
            None
        } else if t.is_dir() {
            Some("a directory")
        } else if t.is_fifo() {
            Some("a FIFO (named pipe)")
        } else if t.is_char_device() || t.is_block_device() {
            Some("a device")
        } else if t.is_socket() {
            Some("a socket")
        } else {
            Some("not a regular file")
        }
    };
    if let Some(what) = not_regular(&meta) {
        return Err(cannot(format!("is {what}; give a regular TOML file")));
    }
    let f = std::fs::File::open(path).map_err(|e| cannot(format!("cannot read it: {e}")))?;
    // Checked again on the open file: the path may have been replaced in between.
    if let Some(what) = f.metadata().ok().as_ref().and_then(not_regular) {
        return Err(cannot(format!("is {what}; give a regular TOML file")));
    }
    let mut bytes = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(cannot(format!(
            "is larger than {} KiB, which no config file needs",
            MAX_CONFIG_BYTES / 1024
        )));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| cannot("is not UTF-8 text".into()))
}

/// [`load`] with the config file's text already read (`path` names it in messages).
pub fn load_text(
    file: Option<(&str, &Path)>,
    env: &[(String, String)],
    flags: &FlagOverrides,
) -> Result<Settings, ConfigErrorMsg> {
    let mut builder = Config::builder().add_source(Layer::defaults()?);
    if let Some((text, path)) = file {
        builder = builder.add_source(Layer::from_toml(text, path)?);
    }
    builder = builder.add_source(Layer::from_env(env)?);
    builder = builder.add_source(Layer::from_flags(flags));
    let merged = builder.build().map_err(|e| ConfigErrorMsg(describe(&e)))?;
    let collected = merged.collect().map_err(|e| ConfigErrorMsg(describe(&e)))?;
    check_unknown_keys(&collected)?;
    let settings: Settings = merged
        .try_deserialize()
        .map_err(|e| ConfigErrorMsg(describe(&e)))?;
    settings.validate(&collected)?;
    Ok(settings)
}

fn describe(e: &ConfigError) -> String {
    match e {
        ConfigError::Type {
            origin,
            unexpected,
            expected,
            key,
        } => {
            let key = key.as_deref().unwrap_or("?");
            // A secret given with the wrong type (`password = 1234`) is still a secret.
            let got = if SECRET_SETTINGS.contains(&key) {
                "a value of the wrong type".to_owned()
            } else {
                crate::redact::redact_text(&unexpected.to_string())
            };
            format!(
                "{key}: got {got}{}, expected {expected}",
                origin
                    .as_deref()
                    .map(|o| format!(" from {o}"))
                    .unwrap_or_default()
            )
        }
        other => crate::redact::redact_text(&other.to_string()),
    }
}

/// A source of settings with one origin per value.
#[derive(Debug, Clone)]
struct Layer {
    values: Map<String, Value>,
}

impl Source for Layer {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, ConfigError> {
        Ok(self.values.clone())
    }
}

impl Layer {
    fn defaults() -> Result<Self, ConfigErrorMsg> {
        let json = serde_json::to_value(Settings::default())
            .map_err(|e| ConfigErrorMsg(format!("internal: defaults do not serialize: {e}")))?;
        Ok(Self {
            values: json_to_config(&json, "built-in defaults"),
        })
    }

    fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigErrorMsg> {
        // The parser's own message quotes the offending line, which may be the password's:
        // only its reason and position are shown.
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let before = &text[..span.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            ConfigErrorMsg(format!(
                "config file {}: {at}{}",
                path.display(),
                e.message().trim().replace('\n', " ")
            ))
        })?;
        let json = serde_json::to_value(table)
            .map_err(|e| ConfigErrorMsg(format!("config file {}: {e}", path.display())))?;
        Ok(Self {
            values: json_to_config(&json, &format!("config file {}", path.display())),
        })
    }

    fn from_env(env: &[(String, String)]) -> Result<Self, ConfigErrorMsg> {
        let known = known_settings();
        let mut sections: Vec<&String> = known
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        // The longest section name first, should one ever be a prefix of another.
        sections.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let mut values = Map::new();
        let mut put = |key: &str, raw: &str, origin: String| {
            insert_path(&mut values, key, text_value(&known, key, raw, &origin));
        };
        for (name, raw) in env {
            if let Some((_, key)) = PYTHON_ENV.iter().find(|(n, _)| n == name) {
                put(key, raw, format!("environment variable {name}"));
            } else if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
                if NON_SETTING_ENV.contains(&name.as_str()) {
                    continue;
                }
                // Generic over the sections, so a field any job adds is settable at once.
                let lower = rest.to_ascii_lowercase();
                let split = sections.iter().find_map(|section| {
                    let field = lower.strip_prefix(section.as_str())?.strip_prefix('_')?;
                    (!field.is_empty()).then_some((section.as_str(), field))
                });
                let Some((section, field)) = split else {
                    return Err(ConfigErrorMsg(format!(
                        "unknown setting in environment variable {name}: expected \
                         {ENV_PREFIX}<SECTION>_<KEY> with a section of {}",
                        sections
                            .iter()
                            .map(|s| s.to_ascii_uppercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                };
                put(
                    &format!("{section}.{field}"),
                    raw,
                    format!("environment variable {name}"),
                );
            }
        }
        Ok(Self { values })
    }

    fn from_flags(flags: &FlagOverrides) -> Self {
        let known = known_settings();
        let mut values = Map::new();
        for (key, raw, flag) in flags {
            let origin = format!("command-line flag {flag}");
            insert_path(&mut values, key, text_value(&known, key, raw, &origin));
        }
        Self { values }
    }
}

/// Every setting with its default, as a tree of names.
fn known_settings() -> serde_json::Value {
    serde_json::to_value(Settings::default()).unwrap_or_default()
}

/// A setting given as text (environment, flag): a setting whose default is a list takes a
/// comma-separated list; everything else is converted to its type when the settings are
/// deserialized.
fn text_value(known: &serde_json::Value, key: &str, raw: &str, origin: &String) -> Value {
    let is_list = key
        .split('.')
        .try_fold(known, |v, part| v.get(part))
        .is_some_and(serde_json::Value::is_array);
    let kind = if is_list {
        let items: Vec<Value> = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::new(Some(origin), s))
            .collect();
        // An empty list given explicitly is kept as one empty item, which validation refuses,
        // rather than silently meaning "not given".
        if items.is_empty() {
            ValueKind::Array(vec![Value::new(Some(origin), "")])
        } else {
            ValueKind::Array(items)
        }
    } else {
        ValueKind::String(raw.to_owned())
    };
    Value::new(Some(origin), kind)
}

fn insert_path(map: &mut Map<String, Value>, dotted: &str, value: Value) {
    match dotted.split_once('.') {
        None => {
            map.insert(dotted.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::new(None, ValueKind::Table(Map::new())));
            if !matches!(entry.kind, ValueKind::Table(_)) {
                *entry = Value::new(None, ValueKind::Table(Map::new()));
            }
            if let ValueKind::Table(inner) = &mut entry.kind {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn json_to_config(json: &serde_json::Value, origin: &str) -> Map<String, Value> {
    let origin = origin.to_owned();
    fn conv(v: &serde_json::Value, origin: &String) -> Value {
        let kind = match v {
            serde_json::Value::Null => ValueKind::Nil,
            serde_json::Value::Bool(b) => ValueKind::Boolean(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => ValueKind::I64(i),
                None => ValueKind::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => ValueKind::String(s.clone()),
            serde_json::Value::Array(a) => {
                ValueKind::Array(a.iter().map(|x| conv(x, origin)).collect())
            }
            serde_json::Value::Object(o) => ValueKind::Table(
                o.iter()
                    .map(|(k, x)| (k.clone(), conv(x, origin)))
                    .collect(),
            ),
        };
        Value::new(Some(origin), kind)
    }
    match conv(json, &origin).kind {
        ValueKind::Table(t) => t,
        _ => Map::new(),
    }
}

/// Settings whose values are free-form tables (any key allowed).
const OPEN_TABLES: &[&str] = &["dashboard.keys"];

fn check_unknown_keys(collected: &Map<String, Value>) -> Result<(), ConfigErrorMsg> {
    walk_unknown(collected, &known_settings(), "")
}

fn walk_unknown(
    given: &Map<String, Value>,
    known: &serde_json::Value,
    path: &str,
) -> Result<(), ConfigErrorMsg> {
    for (key, value) in given {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let known_child = known.as_object().and_then(|o| o.get(key));
        let Some(known_child) = known_child else {
            return Err(ConfigErrorMsg(format!(
                "unknown setting {full}{}",
                value
                    .origin()
                    .map(|o| format!(" (from {o})"))
                    .unwrap_or_default()
            )));
        };
        if OPEN_TABLES.contains(&full.as_str()) {
            continue;
        }
        if let (ValueKind::Table(inner), true) = (&value.kind, known_child.is_object()) {
            walk_unknown(inner, known_child, &full)?;
        }
    }
    Ok(())
}

fn origin_of(collected: &Map<String, Value>, dotted: &str) -> String {
    let mut map = collected;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        let Some(v) = map.get(part) else { break };
        if parts.peek().is_none() {
            return v.origin().unwrap_or("built-in defaults").to_owned();
        }
        match &v.kind {
            ValueKind::Table(t) => map = t,
            _ => break,
        }
    }
    "built-in defaults".into()
}

impl Settings {
    fn validate(&self, collected: &Map<String, Value>) -> Result<(), ConfigErrorMsg> {
        let bad = |key: &str, shown: String, why: &str| {
            Err(ConfigErrorMsg(format!(
                "{key}: invalid value {shown} from {}: {why}",
                origin_of(collected, key)
            )))
        };
        let r = &self.redis;
        for (key, v, min) in [
            ("redis.timeout", r.timeout, MIN_SECONDS),
            ("redis.connect_timeout", r.connect_timeout, MIN_SECONDS),
            (
                "redis.reconnect_max_backoff",
                r.reconnect_max_backoff,
                MIN_SECONDS,
            ),
            (
                "dashboard.poll_interval",
                self.dashboard.poll_interval,
                MIN_POLL_SECONDS,
            ),
            (
                "limiter.acquire_timeout",
                self.limiter.acquire_timeout,
                MIN_SECONDS,
            ),
        ] {
            if !(v.is_finite() && v >= min && v <= MAX_SECONDS) {
                // `1e-300`, not three hundred zeros.
                let shown = if v != 0.0 && v.is_finite() && !(1e-3..1e9).contains(&v.abs()) {
                    format!("{v:e}")
                } else {
                    v.to_string()
                };
                return bad(
                    key,
                    shown,
                    &format!("must be a number of seconds from {min} to {MAX_SECONDS} (a day)"),
                );
            }
        }
        for (key, v, min, max) in self.counts() {
            if !(min..=max).contains(&v) {
                return bad(key, v.to_string(), &format!("must be {min}-{max}"));
            }
        }
        if let Some(url) = &r.url
            && url.trim().is_empty()
        {
            return bad(
                "redis.url",
                format!("{url:?}"),
                "empty; give a redis://, rediss:// or unix:// URL, or leave it unset",
            );
        }
        if r.host.trim().is_empty() {
            return bad("redis.host", format!("{:?}", r.host), "must not be empty");
        }
        if r.cluster_nodes.iter().any(|n| n.trim().is_empty()) {
            return bad(
                "redis.cluster_nodes",
                "\"\"".into(),
                "empty node; give host:port or redis:// URLs, comma-separated",
            );
        }
        // Seed nodes without Cluster protocol would silently talk to host:port instead.
        if !r.cluster && !r.cluster_nodes.is_empty() {
            return bad(
                "redis.cluster_nodes",
                format!("{} node(s)", r.cluster_nodes.len()),
                "are only used with Redis Cluster: add --cluster (or redis.cluster = true, \
                 ARTEMIS_TOP_REDIS_CLUSTER=true), or drop the nodes",
            );
        }
        if r.port == 0 {
            return bad("redis.port", "0".into(), "must be 1-65535");
        }
        if !(0..=15_999).contains(&r.db) {
            return bad(
                "redis.db",
                r.db.to_string(),
                "must be a database number >= 0",
            );
        }
        if r.cluster && r.db != 0 {
            return bad(
                "redis.db",
                r.db.to_string(),
                "Redis Cluster has only database 0",
            );
        }
        if let Some(url) = &r.url
            && !url.is_empty()
        {
            let ok = [
                "redis://",
                "rediss://",
                "unix://",
                "redis+unix://",
                "valkey://",
                "valkeys://",
            ]
            .iter()
            .any(|s| url.starts_with(s));
            if !ok || url::Url::parse(url).is_err() {
                return bad(
                    "redis.url",
                    format!("{:?}", crate::redact::redact_url(url)),
                    "expected redis://, rediss://, unix:// or redis+unix:// URL",
                );
            }
        }
        for (key, p) in [
            ("prefixes.cache", &self.prefixes.cache),
            ("prefixes.pipeline", &self.prefixes.pipeline),
            ("prefixes.ratelimit", &self.prefixes.ratelimit),
            ("prefixes.metrics", &self.prefixes.metrics),
        ] {
            if p.is_empty() || p.contains(['{', '}']) || p.chars().any(char::is_control) {
                return bad(
                    key,
                    format!("{p:?}"),
                    "must be non-empty, without braces or control characters",
                );
            }
        }
        if !["auto", "dark", "light", "mono"].contains(&self.dashboard.theme.as_str()) {
            return bad(
                "dashboard.theme",
                format!("{:?}", self.dashboard.theme),
                "expected auto, dark, light or mono",
            );
        }
        for (i, p) in self.limiter.presets.iter().enumerate() {
            let shown = || {
                format!(
                    "#{} ({}/{})",
                    i + 1,
                    p.provider.escape_debug(),
                    p.model_prefix.escape_debug()
                )
            };
            if p.requests_per_window == 0
                || !(p.window_seconds.is_finite()
                    && p.window_seconds >= 0.001
                    && p.window_seconds <= 86_400.0)
                || p.tokens_per_window == Some(0)
            {
                return bad(
                    "limiter.presets",
                    shown(),
                    "limits must be above 0 and the window 0.001-86400 seconds",
                );
            }
            if crate::keys::is_original_ratelimit_provider(&p.provider) {
                return bad(
                    "limiter.presets",
                    shown(),
                    "the original limits openai and anthropic keys with its own table; \
                     the same key must get the same limit in every process",
                );
            }
            if crate::keys::validate_name("provider", &p.provider).is_err()
                || p.provider.contains(':')
                || p.model_prefix.contains(['{', '}'])
                || p.model_prefix.chars().any(char::is_control)
            {
                return bad(
                    "limiter.presets",
                    shown(),
                    "provider must be a non-empty name without ':', braces or control \
                     characters; model_prefix without braces or control characters",
                );
            }
        }
        if let Some(share) = self.limiter.local_share
            && !(share.is_finite() && share > 0.0 && share <= 1.0)
        {
            return bad(
                "limiter.local_share",
                share.to_string(),
                "must be a fraction above 0 and at most 1 (e.g. 0.25 for one of four processes)",
            );
        }
        for (i, l) in self.limiter.limits.iter().enumerate() {
            if l.requests == 0
                || !(l.window_seconds.is_finite()
                    && l.window_seconds >= 0.001
                    && l.window_seconds <= 86_400.0)
                || l.pattern.is_empty()
            {
                return bad(
                    "limiter.limits",
                    format!("#{} ({})", i + 1, l.pattern.escape_debug()),
                    "needs a pattern, requests above 0 and a window of 0.001-86400 seconds",
                );
            }
        }
        Ok(())
    }

    /// Every count and integer duration with its bounds `(key, value, min, max)`: the bounds
    /// keep each one in what Redis and the process can honour (a TTL Redis accepts, a buffer
    /// that fits in memory) and refuse the zero that would mean "expire at once" or "never".
    fn counts(&self) -> Vec<(&'static str, u64, u64, u64)> {
        let (t, m, c, d) = (&self.tracker, &self.metrics, &self.cache, &self.dashboard);
        let wide = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        vec![
            ("tracker.ttl_seconds", t.ttl_seconds, 1, MAX_TTL_SECONDS),
            (
                "tracker.history_max_events",
                t.history_max_events,
                1,
                1_000_000,
            ),
            (
                "tracker.outage_buffer",
                wide(t.outage_buffer),
                1,
                10_000_000,
            ),
            (
                "tracker.scan_interval_seconds",
                t.scan_interval_seconds,
                0,
                86_400,
            ),
            (
                "tracker.full_read_interval_seconds",
                t.full_read_interval_seconds,
                1,
                86_400,
            ),
            ("tracker.audit_share_percent", t.audit_share_percent, 1, 100),
            (
                "tracker.poll_overlap_seconds",
                t.poll_overlap_seconds,
                0,
                3_600,
            ),
            (
                "tracker.scan_count_per_poll",
                t.scan_count_per_poll,
                1,
                1_000_000,
            ),
            // Unset means never trim (the original keeps its history); a set value is bounded.
            (
                "metrics.timeseries_retention_days",
                m.timeseries_retention_days.unwrap_or(1),
                1,
                36_500,
            ),
            (
                "metrics.scan_interval_seconds",
                m.scan_interval_seconds,
                0,
                86_400,
            ),
            (
                "metrics.daily_ttl_seconds",
                m.daily_ttl_seconds,
                1,
                MAX_TTL_SECONDS,
            ),
            (
                "metrics.snapshot_days",
                u64::from(m.snapshot_days),
                1,
                3_660,
            ),
            (
                "metrics.snapshot_recent",
                u64::from(m.snapshot_recent),
                0,
                10_000,
            ),
            ("cache.ttl_seconds", c.ttl_seconds, 1, MAX_TTL_SECONDS),
            ("cache.memory_tier_bytes", c.memory_tier_bytes, 0, 1 << 36),
            (
                "cache.memory_tier_ttl_seconds",
                c.memory_tier_ttl_seconds,
                1,
                86_400,
            ),
            ("cache.lease_ms", c.lease_ms, 1, 86_400_000),
            ("cache.lease_wait_ms", c.lease_wait_ms, 0, 86_400_000),
            ("cache.metrics_flush_ms", c.metrics_flush_ms, 1, 60_000),
            (
                "cache.metrics_flush_records",
                c.metrics_flush_records,
                1,
                8_192,
            ),
            ("dashboard.max_fps", u64::from(d.max_fps), 1, 240),
            (
                "limiter.acquire_jitter_ms",
                self.limiter.acquire_jitter_ms,
                0,
                60_000,
            ),
        ]
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if shown.redis.password.is_some() {
            shown.redis.password = Some("<redacted>".into());
        }
        if let Some(url) = &shown.redis.url {
            shown.redis.url = Some(crate::redact::redact_url(url));
        }
        shown.redis.cluster_nodes = shown
            .redis
            .cluster_nodes
            .iter()
            .map(|n| crate::redact::redact_url(n))
            .collect();
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn no_file() -> FileChoice {
        FileChoice {
            path: None,
            required: false,
        }
    }

    #[test]
    fn defaults_are_the_python_originals() {
        let s = load(&no_file(), &[], &vec![]).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.redis.host, "localhost");
        assert_eq!(s.redis.port, 6379);
        assert_eq!(s.redis.timeout, 5.0);
        assert_eq!(s.cache.ttl_seconds, 604_800);
    }

    fn load_toml(text: &str) -> Result<Settings, ConfigErrorMsg> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        load(
            &FileChoice {
                path: Some(path),
                required: true,
            },
            &[],
            &vec![],
        )
    }

    #[test]
    fn limiter_presets_come_from_the_file() {
        let s = load_toml(
            "[limiter]\nfailure_policy = \"closed\"\nacquire_jitter_ms = 5\n\
             local_share = 0.25\n\
             [[limiter.presets]]\nprovider = \"mistral\"\nmodel_prefix = \"large\"\n\
             requests_per_window = 500\ntokens_per_window = 30000\n\
             [[limiter.limits]]\npattern = \"artemis:ratelimit:search:*\"\nrequests = 10\n",
        )
        .unwrap();
        assert_eq!(s.limiter.failure_policy, FailurePolicy::Closed);
        assert_eq!(s.limiter.acquire_jitter_ms, 5);
        assert_eq!(s.limiter.local_share, Some(0.25));
        assert_eq!(s.limiter.presets.len(), 1);
        assert_eq!(s.limiter.presets[0].tokens_per_window, Some(30_000));
        assert_eq!(s.limiter.presets[0].window_seconds, 60.0);
        assert_eq!(s.limiter.limits[0].requests, 10);
        assert_eq!(s.limiter.limits[0].window_seconds, 60.0);
        for bad in [
            "[[limiter.presets]]\nprovider = \"open:ai\"\nmodel_prefix = \"\"\nrequests_per_window = 1\n",
            "[[limiter.presets]]\nprovider = \"mistral\"\nmodel_prefix = \"\"\nrequests_per_window = 0\n",
            "[[limiter.presets]]\nprovider = \"mistral\"\nmodel_prefix = \"{x}\"\nrequests_per_window = 1\n",
            // The original's providers keep the original's table.
            "[[limiter.presets]]\nprovider = \"OpenAI\"\nmodel_prefix = \"gpt-5\"\nrequests_per_window = 1\n",
            "[limiter]\nlocal_share = 0\n",
            "[limiter]\nlocal_share = 1.5\n",
            "[[limiter.limits]]\npattern = \"x*\"\nrequests = 0\n",
            "[limiter]\nacquire_jitter_ms = 60001\n",
        ] {
            let e = load_toml(bad).unwrap_err();
            assert!(e.0.contains("limiter."), "{e}");
        }
    }

    #[test]
    fn cache_settings_come_from_the_environment_and_are_checked() {
        let s = load(
            &no_file(),
            &env(&[
                ("ARTEMIS_TOP_CACHE_RECORD_METRICS", "false"),
                ("ARTEMIS_TOP_CACHE_MEMORY_TIER_TTL_SECONDS", "5"),
            ]),
            &vec![],
        )
        .unwrap();
        assert!(!s.cache.record_metrics);
        assert_eq!(s.cache.memory_tier_ttl_seconds, 5);
        let e = load(
            &no_file(),
            &env(&[("ARTEMIS_TOP_CACHE_LEASE_MS", "0")]),
            &vec![],
        )
        .unwrap_err();
        assert!(e.0.contains("cache.lease_ms"), "{e}");
    }

    #[test]
    fn unknown_variable_in_our_namespace_is_an_error() {
        let e = load(
            &no_file(),
            &env(&[("ARTEMIS_TOP_REDIS_PORTT", "1")]),
            &vec![],
        )
        .unwrap_err();
        assert!(e.0.contains("redis.portt"), "{e}");
        assert!(e.0.contains("ARTEMIS_TOP_REDIS_PORTT"), "{e}");
    }
}
