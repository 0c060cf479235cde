//! Crashes under load: `artemis-top simulate` writes at full speed while a dashboard watches,
//! and the Redis server is killed with SIGKILL and restarted 5 s later, three times (and, on a
//! local 3-master Cluster, one master is). Nothing panics or hangs; the dashboard shows each
//! outage and is current again within 2 s of Redis returning; every tracker and metrics write
//! made during the outages lands (the buffer is large enough, so nothing is dropped) and the
//! totals in Redis equal what the simulator reports it sent; the limiter followed its `local`
//! failure policy while Redis was away.
//!
//! The servers keep every acknowledged write (AOF, fsync per write), so what a restarted server
//! holds is what was written before the crash plus what was replayed after it.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use artemis::demo::report::SimReport;
use artemis::snapshot::Snapshot;
use support::tmux::{Tmux, binary_line};
use support::{RedisCluster, RedisServer, ServerOptions};

fn command(redis_args: &[String], home: &std::path::Path) -> Command {
    let mut c = support::artemis_top(home);
    c.args(redis_args);
    c
}

/// The dashboard in tmux, logging to a file in `home`.
fn dashboard(tag: &str, redis_args: &[String], home: &std::path::Path) -> Tmux {
    let log = home.join("dash.log").display().to_string();
    let args: Vec<&str> = redis_args.iter().map(String::as_str).collect();
    let (line, _) = binary_line(home, &[("ARTEMIS_TOP_LOG_FILE", &log)], &args);
    let tmux = Tmux::start(tag, 160, 40, &line);
    tmux.wait_for("the dashboard", |s| s.contains("● connected"));
    tmux
}

/// The age the header shows for the data on screen, in seconds.
fn data_age(screen: &str) -> Option<f64> {
    let header = screen.lines().next()?;
    let at = header.find("data ")? + 5;
    let rest = &header[at..];
    let end = rest.find("s old")?;
    rest[..end].parse().ok()
}

/// Seconds from now until the dashboard is connected and shows data read after now.
fn time_to_current(tmux: &Tmux, limit: Duration) -> f64 {
    let t0 = Instant::now();
    loop {
        let s = tmux.screen();
        let fresh = data_age(&s).is_some_and(|age| age < t0.elapsed().as_secs_f64());
        if s.contains("● connected") && fresh {
            return t0.elapsed().as_secs_f64();
        }
        assert!(
            t0.elapsed() < limit,
            "the dashboard did not become current again:\n{s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn snapshot(redis_args: &[String], home: &std::path::Path) -> Snapshot {
    let out = command(redis_args, home)
        .args(["--once", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-6, "{what}: {a} in Redis, {b} reported");
}

/// Every figure the simulator reports equals what Redis holds.
fn assert_totals_match(report: &SimReport, snap: &Snapshot) {
    let by_id: BTreeMap<&str, _> = snap
        .cards
        .iter()
        .map(|c| (c.pipeline.card_id.as_str(), c))
        .collect();
    assert_eq!(by_id.len(), report.card_list.len());
    for card in &report.card_list {
        let s = by_id[card.card_id.as_str()];
        assert_eq!(s.pipeline.status, card.status, "{}", card.card_id);
        assert_eq!(
            s.pipeline.completed_stages,
            i64::from(card.completed_stages),
            "{}",
            card.card_id
        );
    }
    let (llm, r) = (&snap.metrics.llm, &report.llm);
    assert_eq!(llm.total_requests as u64, r.calls, "LLM requests");
    assert_eq!(llm.cache_hits as u64, r.cache_hits, "cache hits");
    assert_eq!(llm.cache_misses as u64, r.cache_misses, "cache misses");
    assert_eq!(llm.prompt_tokens as u64, r.prompt_tokens);
    assert_eq!(llm.completion_tokens as u64, r.completion_tokens);
    close(llm.total_cost, r.cost_usd, "LLM cost");
    close(llm.saved_cost, r.saved_usd, "saved cost");
    let p = &snap.metrics.pipelines;
    assert_eq!(
        p.completed as u64, report.cards.started,
        "pipeline completions"
    );
    close(p.total_cost, r.cost_usd, "pipeline cost");
    let reviews: i64 = snap
        .metrics
        .code_review
        .developers
        .iter()
        .map(|d| d.total_reviews)
        .sum();
    assert_eq!(reviews as u64, report.code_reviews, "code reviews");
}

fn simulate_args(seed: &str) -> Vec<String> {
    [
        "simulate",
        "--format",
        "json",
        "--seed",
        seed,
        "--cards",
        "400",
        "--speed",
        "40",
        "--concurrency",
        "8",
        "--duration",
        "24",
        "--drain-timeout",
        "60",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn three_crashes_of_a_standalone_server() {
    let mut server = RedisServer::start_with(ServerOptions::durable());
    let home = tempfile::tempdir().unwrap();
    let redis_args = vec!["--redis-url".to_string(), server.url()];
    let tmux = dashboard("soak", &redis_args, home.path());
    let sim = command(&redis_args, home.path())
        .args(simulate_args("21"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let mut back = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(2));
        server.kill();
        tmux.wait_for("the outage on screen", |s| !s.contains("● connected"));
        std::thread::sleep(Duration::from_secs(5));
        server.start_again();
        back.push(time_to_current(&tmux, Duration::from_secs(15)));
    }
    eprintln!("dashboard current again after: {back:?} s");
    for t in &back {
        assert!(*t <= 2.0, "current again after {t:.2} s: {back:?}");
    }

    let out = support::wait_output(sim, Duration::from_secs(180), "simulate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "simulate: {stderr}");
    let report: SimReport = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "writes: {:?}\nlimiter: {:?}\ncards: {:?}",
        report.writes, report.limiter, report.cards
    );
    let w = &report.writes;
    assert!(w.buffered > 0, "the outages buffered writes: {w:?}");
    assert_eq!(
        (w.replayed, w.dropped, w.failed, w.pending),
        (w.buffered, 0, 0, 0)
    );
    assert!(w.drained && !w.lost_any(), "{w:?}");
    assert_eq!((w.metrics_dropped, w.metrics_failed), (0, 0));
    // The `local` policy: calls kept being admitted, by an in-process window, while Redis was
    // away, and the limiter never failed a call.
    let l = &report.limiter;
    assert!(l.admitted_locally > 0, "{l:?}");
    assert_eq!((l.errors, l.admitted_uncounted), (0, 0), "{l:?}");

    let snap = snapshot(&redis_args, home.path());
    assert_totals_match(&report, &snap);

    let s = tmux.screen();
    assert!(!s.contains("EXIT="), "the dashboard is still running:\n{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    let log = std::fs::read_to_string(home.path().join("dash.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_cluster_master_restarts_under_load() {
    let mut cluster = RedisCluster::start_with(ServerOptions::durable());
    let home = tempfile::tempdir().unwrap();
    let redis_args = vec![
        "--cluster".to_string(),
        "--cluster-nodes".to_string(),
        cluster.seeds().join(","),
    ];
    let tmux = dashboard("soak-cluster", &redis_args, home.path());
    let sim = command(&redis_args, home.path())
        .args(simulate_args("22"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    cluster.kill_node(1);
    std::thread::sleep(Duration::from_secs(5));
    cluster.restart_node(1);

    let out = support::wait_output(sim, Duration::from_secs(180), "simulate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "simulate: {stderr}");
    let report: SimReport = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("writes: {:?}\nlimiter: {:?}", report.writes, report.limiter);
    let w = &report.writes;
    assert!(w.buffered > 0, "the outage buffered writes: {w:?}");
    assert!(w.drained && !w.lost_any(), "{w:?}");
    let snap = snapshot(&redis_args, home.path());
    assert_totals_match(&report, &snap);
    tmux.wait_for("the dashboard connected", |s| s.contains("● connected"));
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}
