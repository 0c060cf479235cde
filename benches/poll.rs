//! The dashboard's poll at 10,000 cards (`cargo bench --bench poll`): a poll of only the
//! changes (idle, and with 100 cards written between polls) against a full read measured in
//! the same run, alternately, on one Redis server and on a local 3-master Cluster.
//!
//! Reported per kind of poll: the median wall time, the mean of the reader's own CPU time per
//! poll (the scheduler's per-thread run time, `/proc/self/task/*/schedstat`, in ns: `/proc`'s
//! tick-based CPU times are 10 ms coarse) and of the Redis server's (`INFO cpu`, summed over the
//! nodes), and the ratio of each to the full read's. At one poll a second, CPU milliseconds per
//! poll are tenths of a percent of a core. Then what one idle poll sends, from `INFO
//! commandstats` before and after.
//!
//! `cargo bench --bench poll -- standalone` or `-- cluster` runs one of the two.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use chrono::Utc;
use serde_json::Map;

use artemis::Backend;
use artemis::config::Settings;
use artemis::feed::{Feed, StorageFeed};
use artemis::metrics::HistoryWindow;
use artemis::model::StageStatus;
use artemis::snapshot::Update;
use artemis::tracker::{PipelineStart, StageReport};
use common::{median, redis_cpu};
use support::{RedisCluster, RedisServer};

const CARDS: usize = 10_000;
const STAGES: [&str; 3] = ["analysis", "development", "review"];
const ROUNDS: usize = 30;
const CHANGED: usize = 100;

fn report(card: &str, stage: &str, progress: u8) -> StageReport {
    StageReport {
        card_id: card.into(),
        stage_name: stage.into(),
        status: StageStatus::Running,
        progress_percent: Some(progress),
        message: None,
        metadata: Map::new(),
        at: Utc::now(),
    }
}

async fn seed(backend: &Backend) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..32 {
        let store = backend.tracker().clone();
        tasks.spawn(async move {
            for i in (w..CARDS).step_by(32) {
                let id = format!("poll-{i:05}");
                let mut metadata = Map::new();
                metadata.insert("title".into(), format!("Poll card {i}").into());
                store
                    .start_pipeline(&PipelineStart {
                        card_id: id.clone(),
                        total_stages: 3,
                        metadata,
                        at: Utc::now(),
                    })
                    .await
                    .unwrap();
                for s in STAGES {
                    store.update_stage(&report(&id, s, 10)).await.unwrap();
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// This process's CPU time so far, seconds, from the scheduler's run time of every thread.
fn cpu_secs_fine() -> f64 {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    ns as f64 / 1e9
}

fn mean(v: Vec<f64>) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `cmdstat_<name>` → (calls, usec) from `INFO commandstats`, summed over the nodes.
fn commandstats(nodes: &[&RedisServer]) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut out = std::collections::BTreeMap::new();
    for n in nodes {
        for line in n.cli(&["INFO", "commandstats"]).lines() {
            let Some((name, rest)) = line.split_once(':') else {
                continue;
            };
            let Some(name) = name.strip_prefix("cmdstat_") else {
                continue;
            };
            let field = |k: &str| {
                rest.split(',')
                    .find_map(|f| f.strip_prefix(k))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let e = out.entry(name.to_owned()).or_insert((0.0, 0.0));
            e.0 += field("calls=");
            e.1 += field("usec=");
        }
    }
    out
}

/// Wall ms, reader CPU ms, Redis CPU ms of one poll.
async fn one_poll(feed: &StorageFeed, nodes: &[&RedisServer], full: bool) -> [f64; 3] {
    let (cpu0, redis0, t0) = (cpu_secs_fine(), redis_cpu(nodes), Instant::now());
    let update = feed
        .poll(Utc::now(), HistoryWindow::default(), full)
        .await
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, redis1) = (cpu_secs_fine(), redis_cpu(nodes));
    match (&update, full) {
        (Update::Full(s), true) => assert_eq!(s.cards.len(), CARDS),
        (Update::Delta(_), false) => {}
        _ => panic!("a poll of the wrong kind"),
    }
    [wall * 1e3, (cpu1 - cpu0) * 1e3, (redis1 - redis0) * 1e3]
}

async fn run(name: &str, settings: Settings, nodes: &[&RedisServer]) {
    let mut settings = settings;
    settings.tracker.full_read_interval_seconds = 86_400;
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let t = Instant::now();
    seed(&backend).await;
    println!(
        "{name}: seeded {CARDS} cards x {} stages in {:.1} s",
        STAGES.len(),
        t.elapsed().as_secs_f64()
    );
    let feed = StorageFeed::new(backend.clone());
    let writer = backend.tracker().clone();
    one_poll(&feed, nodes, true).await; // warm: scripts, SCAN cache, connections
    // Idle: nothing written for longer than the overlap, full reads and polls alternately.
    tokio::time::sleep(std::time::Duration::from_secs(
        settings.tracker.poll_overlap_seconds + 1,
    ))
    .await;
    let (mut full, mut idle, mut busy) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        full.push(one_poll(&feed, nodes, true).await);
        idle.push(one_poll(&feed, nodes, false).await);
    }
    // What an idle poll sends (the commandstats calls themselves are left out).
    let before = commandstats(nodes);
    one_poll(&feed, nodes, false).await;
    let after = commandstats(nodes);
    let mut sent = Vec::new();
    for (cmd, (calls, usec)) in &after {
        let (c0, u0) = before.get(cmd).copied().unwrap_or((0.0, 0.0));
        if *calls > c0 && cmd != "info" {
            sent.push(format!("{cmd} {} ({:.0} µs)", calls - c0, usec - u0));
        }
    }
    // Busy: CHANGED cards written before each poll (a second apart would be the dashboard's
    // pace; back to back, every poll also finds the previous rounds' writes in its overlap).
    for round in 0..ROUNDS {
        full.push(one_poll(&feed, nodes, true).await);
        for i in 0..CHANGED {
            let id = format!("poll-{:05}", (round * CHANGED + i * 97) % CARDS);
            writer
                .update_stage(&report(&id, "review", (round % 100) as u8))
                .await
                .unwrap();
        }
        busy.push(one_poll(&feed, nodes, false).await);
    }
    let col = |v: &[[f64; 3]], i: usize| {
        let c: Vec<f64> = v.iter().map(|x| x[i]).collect();
        if i == 0 { median(c) } else { mean(c) }
    };
    let base = [col(&full, 0), col(&full, 1), col(&full, 2)];
    println!(
        "| {name} | poll | wall ms (median) | reader CPU ms (mean) | Redis CPU ms (mean) | × full (wall / reader / Redis) |"
    );
    for (label, v) in [
        ("full read", &full),
        ("changes, idle", &idle),
        ("changes, 100 cards written", &busy),
    ] {
        let m = [col(v, 0), col(v, 1), col(v, 2)];
        println!(
            "| {name} | {label} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} / {:.3} |",
            m[0],
            m[1],
            m[2],
            m[0] / base[0],
            m[1] / base[1],
            m[2] / base[2]
        );
    }
    println!("{name}: one idle poll sends: {}", sent.join(", "));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wants = |what: &str| {
        !args.iter().any(|a| a == "standalone" || a == "cluster") || args.iter().any(|a| a == what)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if wants("standalone") {
        let server = RedisServer::start();
        rt.block_on(run("server", server.settings(), &[&server]));
    }
    if wants("cluster") {
        let cluster = RedisCluster::start();
        let nodes: Vec<&RedisServer> = cluster.nodes.iter().collect();
        rt.block_on(run("cluster", cluster.settings(), &nodes));
    }
}
