//! Scale run (`cargo bench --bench scale`): the release dashboard in tmux watching 10,000 live
//! cards while 1,000 tracker updates per second (each a real write and a pub/sub event) arrive
//! for 60 s, on one Redis server and on a local 3-master Redis Cluster.
//!
//! Reported: the dashboard's CPU (median and worst 10 s window) against the Redis server's own
//! CPU in the same windows as the baseline; resident memory at the start and the end of the run
//! (it must not grow with time); how long a key press takes to show (Enter → drill-down drawn,
//! as seen through tmux, whose own capture cost is measured as the baseline); the UI loop's own
//! frame times and longest message-apply stretch, from its `loop_stats` log; and whether the
//! header still counts every card at the end.
//!
//! `cargo bench --bench scale -- standalone` or `-- cluster` runs one of the two.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use artemis::Backend;
use common::{cpu_secs, max, median, redis_cpu, rss_mib};

use std::time::{Duration, Instant};

use artemis::model::StageStatus;
use artemis::tracker::{StageUpdate, Tracker};
use support::tmux::{Tmux, child_of};

const CARDS: usize = 10_000;
const EVENTS_PER_SEC: u64 = 1_000;
const RUN: Duration = Duration::from_secs(60);
const WINDOW: Duration = Duration::from_secs(10);

/// 10,000 cards through the library (indexed: the dashboard finds them without SCAN).
async fn seed(tracker: &Tracker) {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..32 {
        let t = tracker.clone();
        tasks.spawn(async move {
            for i in (w..CARDS).step_by(32) {
                let id = format!("scale-{i:05}");
                let mut meta = serde_json::Map::new();
                meta.insert("title".into(), format!("Scale card {i}").into());
                t.start_pipeline(&id, 8, meta).await.unwrap();
                t.update_stage(
                    &id,
                    "development",
                    StageUpdate::new(StageStatus::Running).progress(10),
                )
                .await
                .unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// `EVENTS_PER_SEC` stage updates per second spread over every card, paced against the clock,
/// until `stop`. Returns how many were sent.
async fn storm(tracker: Tracker, stop: Instant) -> u64 {
    let writers = 16u64;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let t = tracker.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let per_writer = EVENTS_PER_SEC / writers;
            let mut sent = 0u64;
            while Instant::now() < stop {
                let due = (started.elapsed().as_secs_f64() * per_writer as f64) as u64;
                if sent >= due {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let k = sent * writers + w;
                let id = format!("scale-{:05}", k as usize % CARDS);
                t.update_stage(
                    &id,
                    "development",
                    StageUpdate::new(StageStatus::Running).progress((k % 100) as u8),
                )
                .await
                .unwrap();
                sent += 1;
            }
            sent
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap();
    }
    total
}

fn wait_screen(tmux: &Tmux, want: &str, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if tmux.screen().contains(want) {
            return Some(t0.elapsed());
        }
    }
    None
}

/// (ms from Enter to the drill-down on screen, baseline ms of one capture round trip).
fn key_latency(tmux: &Tmux) -> (f64, f64) {
    let t0 = Instant::now();
    let _ = tmux.screen();
    let capture = t0.elapsed().as_secs_f64() * 1e3;
    tmux.keys(&["Enter"]);
    let took = wait_screen(tmux, "Stages (", Duration::from_secs(10))
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(f64::INFINITY);
    tmux.keys(&["Escape"]);
    let _ = wait_screen(tmux, "Cards ", Duration::from_secs(10));
    (took, capture)
}

fn run(
    label: &str,
    redis_args: &str,
    settings: artemis::config::Settings,
    nodes: &[&support::RedisServer],
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let storage = rt.block_on(Backend::redis(settings)).unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    let t = Instant::now();
    rt.block_on(seed(&tracker));
    eprintln!(
        "{label}: seeded {CARDS} cards in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("loop.log");
    let tmux = Tmux::new(&format!("scale-{label}"));
    let line = format!(
        "env -i HOME={home} PATH=/usr/bin:/bin TERM=xterm-256color ARTEMIS_TOP_LOG=artemis::tui=info \
         ARTEMIS_TOP_LOG_FILE={log} {bin} {redis_args}; sleep 600",
        home = home.path().display(),
        log = log.display(),
        bin = env!("CARGO_BIN_EXE_artemis-top"),
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "160",
        "-y",
        "48",
        &line,
    ]);
    let want = format!("│ {CARDS} cards");
    let shown = wait_screen(&tmux, &want, Duration::from_secs(60));
    assert!(
        shown.is_some(),
        "the dashboard never showed {CARDS} cards:\n{}",
        tmux.screen()
    );
    std::thread::sleep(Duration::from_secs(2));
    let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let pid = child_of(shell.trim().parse().unwrap()).expect("the dashboard's pid");
    let (rss_start, _) = rss_mib(pid);

    let stop = Instant::now() + RUN;
    let storm = rt.spawn(storm(tracker.clone(), stop));
    let mut cpu = Vec::new();
    let mut redis = Vec::new();
    let mut latencies = Vec::new();
    let mut captures = Vec::new();
    let mut rss_windows = Vec::new();
    while Instant::now() + WINDOW <= stop + Duration::from_millis(100) {
        let (d0, r0, t0) = (cpu_secs(pid), redis_cpu(nodes), Instant::now());
        while t0.elapsed() < WINDOW {
            let (l, c) = key_latency(&tmux);
            latencies.push(l);
            captures.push(c);
            std::thread::sleep(Duration::from_millis(1500));
        }
        let wall = t0.elapsed().as_secs_f64();
        cpu.push((cpu_secs(pid) - d0) / wall * 100.0);
        redis.push((redis_cpu(nodes) - r0) / wall * 100.0);
        rss_windows.push(rss_mib(pid).0);
    }
    let sent = rt.block_on(storm).unwrap();
    let (rss_end, hwm) = rss_mib(pid);
    let screen = tmux.screen();
    let all_shown = screen.contains(&want);
    tmux.keys(&["q"]);
    std::thread::sleep(Duration::from_secs(1));

    let stats = std::fs::read_to_string(&log).unwrap_or_default();
    let field = |line: &str, name: &str| -> Option<f64> {
        let at = line.find(&format!("{name}="))? + name.len() + 1;
        let rest = line[at..].trim_start_matches('"');
        rest.split(['"', ' ']).next()?.parse().ok()
    };
    let loop_lines: Vec<&str> = stats.lines().filter(|l| l.contains("ui loop")).collect();
    let p99: Vec<f64> = loop_lines
        .iter()
        .filter_map(|l| field(l, "draw_p99_ms"))
        .collect();
    let p50: Vec<f64> = loop_lines
        .iter()
        .filter_map(|l| field(l, "draw_p50_ms"))
        .collect();
    let apply: Vec<f64> = loop_lines
        .iter()
        .filter_map(|l| field(l, "longest_apply_ms"))
        .collect();
    let msgs: Vec<f64> = loop_lines
        .iter()
        .filter_map(|l| field(l, "messages_per_s"))
        .collect();

    println!(
        "### {label}: {CARDS} cards, {EVENTS_PER_SEC} updates/s for {} s\n",
        RUN.as_secs()
    );
    println!("| figure | value | baseline | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| updates sent (events) | {sent} ({:.0}/s) | | |",
        sent as f64 / RUN.as_secs_f64()
    );
    println!(
        "| dashboard CPU, median of {} × 10 s | {:.1}% | Redis {:.1}% | {:.2} |",
        cpu.len(),
        median(cpu.clone()),
        median(redis.clone()),
        median(cpu.clone()) / median(redis.clone())
    );
    println!(
        "| dashboard CPU, worst 10 s | {:.1}% | Redis {:.1}% | |",
        max(&cpu),
        max(&redis)
    );
    println!(
        "| RSS start → end (peak) | {rss_start:.1} → {rss_end:.1} MiB ({hwm:.1}) | | {:.2} |",
        rss_end / rss_start
    );
    println!(
        "| key → drill-down drawn, median of {} (max) | {:.0} ms ({:.0}) | tmux capture {:.0} ms | {:.1} |",
        latencies.len(),
        median(latencies.clone()),
        max(&latencies),
        median(captures.clone()),
        median(latencies.clone()) / median(captures.clone())
    );
    println!(
        "| frame draw p50 / p99 (worst 10 s window) | {:.2} / {:.2} ms | | |",
        median(p50),
        max(&p99)
    );
    println!(
        "| longest message-apply stretch | {:.1} ms | | |",
        max(&apply)
    );
    println!(
        "| messages into the UI loop | {:.0}/s (median) | | |",
        median(msgs)
    );
    let rss_list: Vec<String> = rss_windows.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "| RSS after each 10 s window (MiB) | {} | | |",
        rss_list.join(", ")
    );
    println!("| header counts every card at the end | {all_shown} | | |");
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if want("standalone") {
        let server = support::RedisServer::start();
        run(
            "standalone",
            &format!("--redis-url {}", server.url()),
            server.settings(),
            &[&server],
        );
    }
    if want("cluster") {
        let cluster = support::RedisCluster::start();
        let nodes: Vec<&support::RedisServer> = cluster.nodes.iter().collect();
        run(
            "cluster",
            &format!("--cluster --cluster-nodes {}", cluster.seeds().join(",")),
            cluster.settings(),
            &nodes,
        );
    }
}
