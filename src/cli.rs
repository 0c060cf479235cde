//! The command line of `artemis-top`: flags, subcommands, and how each flag maps onto a
//! setting (flags are the top layer of [`crate::config`]).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::FlagOverrides;

/// Live terminal dashboard for Artemis LLM pipelines kept in Redis.
///
/// Without a subcommand it shows the dashboard; with --once (or when stdout is not a
/// terminal) it prints a snapshot instead. Settings come from built-in defaults < config file
/// < environment (REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD, REDIS_TIMEOUT,
/// REDIS_CONNECT_TIMEOUT, ARTEMIS_<SECTION>_<KEY>) < these flags.
#[derive(Debug, Parser)]
#[command(name = "artemis-top", version, about, long_about)]
pub struct Cli {
    /// Config file (default: $ARTEMIS_CONFIG, else $XDG_CONFIG_HOME/artemis-top/config.toml).
    #[arg(short, long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// Redis URL: redis://[user@]host:port/db, rediss:// (TLS), unix:///path. The password
    /// is best given in REDIS_PASSWORD, not on the command line.
    #[arg(long, value_name = "URL", global = true)]
    pub redis_url: Option<String>,

    /// Talk Redis Cluster protocol (seed nodes from --cluster-nodes or the URL).
    #[arg(long, global = true)]
    pub cluster: bool,

    /// Comma-separated Redis Cluster seed nodes, host:port.
    #[arg(long, value_name = "HOST:PORT,...", global = true)]
    pub cluster_nodes: Option<String>,

    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// Run on the built-in simulator instead of Redis: no Redis needed.
    #[arg(long)]
    pub demo: bool,

    /// Print one snapshot and exit (headless).
    #[arg(long)]
    pub once: bool,

    /// Output format of headless snapshots.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Print N snapshots (JSON lines with --format json), --interval apart.
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,

    /// Seconds between headless snapshots, and the dashboard's poll interval.
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<String>,

    /// Colour theme: dark, light or mono (NO_COLOR forces mono).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Headless output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to Redis and report what is there: endpoint, latency, server, cluster.
    Check,
}

impl Cli {
    /// The settings these flags set, each tagged with its flag for error messages.
    pub fn overrides(&self) -> FlagOverrides {
        let mut out: FlagOverrides = Vec::new();
        let mut put = |key: &str, value: String, flag: &str| {
            out.push((key.to_owned(), value, flag.to_owned()));
        };
        if let Some(u) = &self.redis_url {
            put("redis.url", u.clone(), "--redis-url");
        }
        if self.cluster {
            put("redis.cluster", "true".into(), "--cluster");
        }
        if let Some(n) = &self.cluster_nodes {
            put("redis.cluster_nodes", n.clone(), "--cluster-nodes");
        }
        if let Some(i) = &self.interval {
            put("dashboard.poll_interval", i.clone(), "--interval");
        }
        if let Some(t) = &self.theme {
            put("dashboard.theme", t.clone(), "--theme");
        }
        out
    }
}
