//! The dashboard's poll at 10,000 cards (`cargo bench --bench poll`): a poll of only the
//! changes (idle, and with 100 cards written between polls) against a full read measured in
//! the same run, alternately, on one Redis server and on a local 3-master Cluster.
//!
//! Reported per kind of poll: the median wall time, the reader's own CPU time and the Redis
//! server's CPU time per poll (`INFO cpu`, summed over the nodes), and the ratio of each to the
//! full read's. At one poll a second, CPU milliseconds per poll are tenths of a percent of a
//! core.
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
use common::{cpu_secs, median, redis_cpu};
use support::{RedisCluster, RedisServer};

const CARDS: usize = 10_000;
const STAGES: [&str; 3] = ["analysis", "development", "review"];
const ROUNDS: usize = 15;
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

/// Wall ms, reader CPU ms, Redis CPU ms of one poll.
async fn one_poll(feed: &StorageFeed, nodes: &[&RedisServer], full: bool) -> [f64; 3] {
    let me = std::process::id();
    let (cpu0, redis0, t0) = (cpu_secs(me), redis_cpu(nodes), Instant::now());
    let update = feed
        .poll(Utc::now(), HistoryWindow::default(), full)
        .await
        .unwrap();
    let wall = t0.elapsed().as_secs_f64();
    let (cpu1, redis1) = (cpu_secs(me), redis_cpu(nodes));
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
    let (mut full, mut idle, mut busy) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        full.push(one_poll(&feed, nodes, true).await);
        // Past the overlap once, so the idle poll finds nothing written in it.
        one_poll(&feed, nodes, false).await;
        idle.push(one_poll(&feed, nodes, false).await);
        for i in 0..CHANGED {
            let id = format!("poll-{:05}", (round * CHANGED + i * 97) % CARDS);
            writer
                .update_stage(&report(&id, "review", (round % 100) as u8))
                .await
                .unwrap();
        }
        busy.push(one_poll(&feed, nodes, false).await);
    }
    let col = |v: &[[f64; 3]], i: usize| median(v.iter().map(|x| x[i]).collect());
    let base = [col(&full, 0), col(&full, 1), col(&full, 2)];
    println!(
        "| {name} | poll | wall ms | reader CPU ms | Redis CPU ms | × full (wall / reader / Redis) |"
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
