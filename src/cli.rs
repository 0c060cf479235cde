//! The command line of `artemis-top`: flags, subcommands, and how each flag maps onto a
//! setting (flags are the top layer of [`crate::config`]).
// The doc comments below are the `--help` text (clap): written for a terminal, not for rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::FlagOverrides;

/// Live terminal dashboard for Artemis LLM pipelines kept in Redis.
///
/// Without a subcommand it shows the dashboard; with --once, --count or --format (or when
/// stdout is not a terminal) it prints a snapshot instead. Settings come from built-in defaults < config file
/// < environment (REDIS_URL, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_USERNAME, REDIS_PASSWORD,
/// REDIS_TIMEOUT, REDIS_CONNECT_TIMEOUT, and ARTEMIS_TOP_<SECTION>_<KEY> for any other
/// setting, e.g. ARTEMIS_TOP_CACHE_TTL_SECONDS) < these flags. Other ARTEMIS_* variables
/// belong to the Python original and are ignored. Logging: ARTEMIS_TOP_LOG (filter),
/// ARTEMIS_TOP_LOG_FILE.
#[derive(Debug, Parser)]
#[command(name = "artemis-top", version, about, long_about)]
pub struct Cli {
    /// Config file (default: $ARTEMIS_TOP_CONFIG, else $XDG_CONFIG_HOME/artemis-top/config.toml).
    #[arg(short, long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// Redis URL: redis://[user@]host:port/db, rediss:// (TLS), unix:///path. The password
    /// is best given in REDIS_PASSWORD, not on the command line.
    #[arg(long, value_name = "URL", global = true)]
    pub redis_url: Option<String>,

    /// Talk Redis Cluster protocol (seed nodes from --cluster-nodes or the URL).
    #[arg(long, global = true)]
    pub cluster: bool,

    /// Comma-separated Redis Cluster seed nodes, host:port (or [user[:password]@]host:port, or
    /// redis:// URLs; passwords are best given in REDIS_PASSWORD).
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

    /// Output format of headless snapshots [default: text]. Implies --once: asking for a
    /// format asks for headless output.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Print N snapshots (JSON lines with --format json), --interval apart. Implies --once:
    /// a number of snapshots asks for headless output.
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,

    /// Seconds between headless snapshots, and the dashboard's poll interval (alone it does
    /// not imply --once: the dashboard polls at that interval).
    #[arg(long, value_name = "SECONDS")]
    pub interval: Option<String>,

    /// Colour theme: auto (from the terminal's background, the default), dark, light or mono
    /// (NO_COLOR forces mono).
    #[arg(long, value_name = "NAME")]
    pub theme: Option<String>,

    /// Capture the mouse: click selects a card, double click opens it, the wheel scrolls
    /// (the terminal's own text selection then needs Shift in most terminals).
    #[arg(long)]
    pub mouse: bool,

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
    /// Print a shell completion script to stdout, e.g.
    /// `source <(artemis-top completions bash)`.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to stdout, e.g. `artemis-top man | man -l -`.
    Man,
    /// Connect to Redis and report what is there: endpoint, latency, server, cluster.
    Check,
    /// Run simulated Artemis pipelines against Redis through the library (tracker, LLM cache,
    /// rate limiter, metrics), then print what was done. Watch it with `artemis-top` in
    /// another terminal. Ctrl-C cancels the cards in flight, waits for the writes and reports.
    Simulate(SimulateArgs),
}

/// Options of `artemis-top simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Cards to run in total (default: until --duration passes or Ctrl-C).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub cards: Option<u64>,

    /// Time multiplier: 10 runs stages, LLM latency and rate-limit windows ten times faster.
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,

    /// Chance (0..1) that a card fails at some stage; a quarter of it again that it is
    /// cancelled.
    #[arg(long, value_name = "F", default_value_t = 0.1, value_parser = parse_rate)]
    pub failure_rate: f64,

    /// Seed of every card's decisions: the same seed runs the same cards (default: random).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,

    /// Start no new card after this many seconds; cards in flight then finish.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub duration: Option<f64>,

    /// Cards running at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub concurrency: u64,

    /// Longest wait at the end for writes buffered during a Redis outage to land.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    pub drain_timeout: f64,

    /// Format of the final report.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 && v <= 100_000.0 {
        Ok(v)
    } else {
        Err("must be above 0 and at most 100000".into())
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1e9).contains(&v) {
        Ok(v)
    } else {
        Err("must be a number of seconds, 0 or more".into())
    }
}

impl Cli {
    /// Whether the flags ask for headless output: `--once`, or `--count` / `--format`, which
    /// mean nothing to the dashboard. (`--interval` alone is the dashboard's poll interval.)
    pub fn wants_headless(&self) -> bool {
        self.once || self.count.is_some() || self.format.is_some()
    }

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
        if self.mouse {
            put("dashboard.mouse", "true".into(), "--mouse");
        }
        out
    }
}

/// The `artemis-top completions SHELL` script, as the shell's completion system reads it.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "artemis-top", &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 mangles the `-` of a binary name one way where it sets the state
        // (`artemis__top__subcmd__simulate`) and another in the `case` that reads it
        // (`artemis__subcmd__top__subcmd__simulate`): subcommands' flags would never complete.
        let text = String::from_utf8_lossy(&script).replace("artemis__subcmd__top", "artemis__top");
        script = text.into_bytes();
    }
    let _ = out.write_all(&script);
}

/// The `artemis-top man` page: the top-level sections, then one section per subcommand with
/// its synopsis, description and options, so that one page documents every command and flag
/// (no `artemis-top-simulate(1)` pages to install next to it).
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name().to_owned();
        let sub = sub.clone().bin_name(format!("artemis-top {name}"));
        let sub_man = clap_mangen::Man::new(sub);
        let mut body = Vec::new();
        sub_man.render_synopsis_section(&mut body)?;
        sub_man.render_description_section(&mut body)?;
        sub_man.render_options_section(&mut body)?;
        writeln!(out, ".SH \"COMMAND: {name}\"")?;
        // clap_mangen writes each part as a section; within a command they are subsections.
        for line in String::from_utf8_lossy(&body).lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(out, ".SS {}", title_case(heading))?,
                None => writeln!(out, "{line}")?,
            }
        }
    }
    man.render_version_section(out)?;
    Ok(())
}

/// `OPTIONS` → `Options`: subsection headings in the usual man style.
fn title_case(heading: &str) -> String {
    let mut chars = heading.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}
