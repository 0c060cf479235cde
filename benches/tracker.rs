//! Tracker benchmark, against servers it starts itself (never a server it did not start).
//!
//! Reports, as medians of several runs:
//! - stage updates per second with 16 concurrent writers, as a ratio to `redis-benchmark -t set
//!   -c 16` run on the same server in the same run;
//! - the ceiling those updates are judged against: the commands an update makes the server
//!   run, alone in a script without logic, called by `redis-benchmark -c 16` (one update per
//!   call, Protocol A's commands alone, and batches of 5), also as ratios to that SET;
//! - round trips per operation, measured by a counting proxy that parses RESP and counts the
//!   times a client starts a request while no reply is outstanding (a request split over TCP
//!   segments is one), and the server-side commands per operation from `INFO commandstats`
//!   deltas (standalone and Cluster);
//! - snapshot read time for 1,000 and 10,000 cards (8 stages each), cold (with the SCAN for
//!   Python-written cards) and warm.
//!
//! Run: `cargo bench --bench tracker` (`BENCH_RUNS=n` for more or fewer runs, default 5;
//! `BENCH_ONLY=writes` or `BENCH_ONLY=snapshot` for one part).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use artemis::Backend;
use artemis::config::Settings;
use artemis::model::{PipelineStatus, StageStatus};
use artemis::tracker::{StageUpdate, Tracker};
use chrono::Utc;
use serde_json::{Map, json};
use support::{RedisCluster, RedisServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WRITERS: usize = 16;
const STAGES: usize = 8;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn redis_benchmark_set(port: u16, requests: usize) -> f64 {
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set", "-c", &WRITERS.to_string()])
        .args(["-n", &requests.to_string(), "-q", "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("\"SET\""))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {text}"))
}

/// Updates per call of the batched ceiling: about what a shared connection's calls carry.
const FLOOR_BATCH: usize = 5;

/// The commands one stage update makes the server run, and nothing else: no branches, no
/// JSON, no comparisons. `redis-benchmark` calls it, so what it reaches is the most any client
/// could reach with the update's writes (the ceiling the update is measured against, next to
/// SET). ARGV: the stage document, the pipeline document, the event, how many updates the call
/// carries (each on its own keys, as a batch of a shared connection carries), and "full" for
/// every command an update runs or "a" for Protocol A's alone (what the original's readers
/// need: the stage document, the pipeline document's read and write, the event).
const FLOOR_SCRIPT: &str = r#"
local full = ARGV[5] == 'full'
for i = 1, tonumber(ARGV[4]) do
  local card = KEYS[1] .. i
  redis.call('SET', card .. ':stage:dev', ARGV[1], 'EX', '86400')
  redis.call('GET', card)
  redis.call('SET', card, ARGV[2], 'EX', '86400')
  if full then
    redis.call('XADD', card .. '#history', 'MAXLEN', '~', '1000', '*', 'event', ARGV[3])
    redis.call('EXPIRE', card .. '#history', '86400')
  end
  redis.call('PUBLISH', 'bench:events', ARGV[3])
end
if full then
  local now = redis.call('TIME')
  local score = now[1] .. '.' .. string.format('%06d', tonumber(now[2]))
  for i = 1, tonumber(ARGV[4]) do redis.call('ZADD', KEYS[2], score, KEYS[1] .. i) end
  redis.call('EXPIRE', KEYS[2], '86400')
end
return 1
"#;

/// Updates per second and the server's CPU µs per update of [`FLOOR_SCRIPT`] called by
/// `redis-benchmark -c WRITERS`, `batch` updates per call (`shape` "full" or "a").
fn floor_updates_per_sec(
    server: &RedisServer,
    requests: usize,
    batch: usize,
    shape: &str,
) -> (f64, f64) {
    let sha = server.cli(&["SCRIPT", "LOAD", FLOOR_SCRIPT]);
    let stage = r#"{"stage": "dev", "status": "running", "progress": 50, "updated_at": "2026-12-02T17:00:01.000000"}"#;
    let doc = r#"{"card_id": "bench", "status": "running", "current_stage": "stage-3", "total_stages": 8, "completed_stages": 3, "start_time": "2026-12-02T17:00:00.123456", "metadata": {}, "_stages": ["stage-0", "stage-1", "stage-2", "stage-3"], "_completed": ["stage-0", "stage-1", "stage-2"]}"#;
    let event = r#"{"event": "stage_updated", "card_id": "bench", "stage": "dev", "status": "running", "progress": 50, "timestamp": "2026-12-02T17:00:01.000000"}"#;
    let batch_text = batch.to_string();
    let before = server_costs(server).0;
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-c", &WRITERS.to_string(), "-n", &requests.to_string()])
        .args([
            "-q",
            "--csv",
            "EVALSHA",
            &sha,
            "2",
            "bench:floor:",
            "bench:floor#index",
        ])
        .args([stage, doc, event, &batch_text, shape])
        .output()
        .expect("run redis-benchmark");
    let after = server_costs(server).0;
    let text = String::from_utf8_lossy(&out.stdout);
    // The test's name (the command line, with its JSON) is quoted with commas in it: the
    // requests per second are the seventh field from the end.
    let calls: f64 = text
        .lines()
        .last()
        .and_then(|l| l.rsplit("\",\"").nth(6))
        .and_then(|v| v.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {text}"));
    let updates = (requests * batch) as f64;
    (calls * batch as f64, (after - before) * 1e6 / updates)
}

/// Stage updates per second: `WRITERS` tasks, each driving its own card, each with its own
/// connection (`own`) or all sharing one multiplexed connection.
async fn stage_updates_per_sec(settings: &Settings, total: usize, own: bool, run: usize) -> f64 {
    let shared = Backend::redis(settings.clone()).await.unwrap();
    let mut trackers = Vec::new();
    for _ in 0..WRITERS {
        let storage = if own {
            Backend::redis(settings.clone()).await.unwrap()
        } else {
            shared.clone()
        };
        trackers.push(Tracker::new(storage.tracker().clone()));
    }
    for (w, t) in trackers.iter().enumerate() {
        t.start_pipeline(&format!("bench-{run}-{own}-{w}"), STAGES as u32, Map::new())
            .await
            .unwrap();
    }
    let per = total / WRITERS;
    let started = Instant::now();
    let tasks: Vec<_> = trackers
        .into_iter()
        .enumerate()
        .map(|(w, t)| {
            tokio::spawn(async move {
                let card = format!("bench-{run}-{own}-{w}");
                for i in 0..per {
                    let status = if i % 2 == 0 {
                        StageStatus::Running
                    } else {
                        StageStatus::Completed
                    };
                    let stage = format!("stage-{}", (i / 2) % STAGES);
                    t.update_stage(&card, &stage, StageUpdate::new(status).progress(50))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per * WRITERS) as f64 / started.elapsed().as_secs_f64()
}

// ---- Round trips: a RESP-counting proxy ----

/// Length of the complete RESP2 value at the start of `buf`, if it is all there.
fn resp_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = &buf[1..line_end];
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let n: i64 = std::str::from_utf8(head).ok()?.parse().ok()?;
            let mut pos = after;
            for _ in 0..n.max(0) {
                pos += resp_len(&buf[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// Takes the complete values off the front of `buf`; how many.
fn take_values(buf: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    let mut pos = 0;
    while let Some(len) = resp_len(&buf[pos..]) {
        pos += len;
        n += 1;
    }
    buf.drain(..pos);
    n
}

#[derive(Default)]
struct Counter {
    round_trips: AtomicU64,
    requests: AtomicU64,
}

/// Forwards TCP connections to `target`, counting requests and round trips.
async fn proxy(target: u16, counter: Arc<Counter>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let counter = counter.clone();
            let outstanding = Arc::new(Mutex::new(0u64));
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let out2 = outstanding.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                while let Ok(n) = cr.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    // A new round trip: the client starts a request while no reply is
                    // outstanding. Data that continues a half-received request is the same
                    // flight, even if the server already answered the commands before it.
                    let fresh = buf.is_empty();
                    buf.extend_from_slice(&chunk[..n]);
                    let k = take_values(&mut buf);
                    {
                        let mut o = outstanding.lock().unwrap();
                        if fresh && *o == 0 {
                            counter.round_trips.fetch_add(1, Ordering::SeqCst);
                        }
                        *o += k;
                    }
                    counter.requests.fetch_add(k, Ordering::SeqCst);
                    if sw.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            });
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                while let Ok(n) = sr.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let k = take_values(&mut buf);
                    {
                        let mut o = out2.lock().unwrap();
                        *o = o.saturating_sub(k);
                    }
                    if cw.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn commandstats(ports: &[u16]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for port in ports {
        let o = std::process::Command::new("redis-cli")
            .args(["-p", &port.to_string(), "INFO", "commandstats"])
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let Some(rest) = line.strip_prefix("cmdstat_") else {
                continue;
            };
            let Some((name, stats)) = rest.split_once(':') else {
                continue;
            };
            let calls = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|c| c.parse::<u64>().ok())
                .unwrap_or(0);
            *out.entry(name.to_owned()).or_default() += calls;
        }
    }
    out
}

fn per_op(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, ops: usize) -> String {
    let mut parts = Vec::new();
    for (name, calls) in after {
        if name == "info" {
            continue;
        }
        let d = calls - before.get(name).copied().unwrap_or(0);
        if d > 0 {
            parts.push(format!("{name} {:.2}", d as f64 / ops as f64));
        }
    }
    parts.join(", ")
}

/// Runs `f` `ops` times sequentially; round trips and requests per call through the proxy.
async fn measure<F, Fut>(counter: &Counter, ops: usize, mut f: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let rt0 = counter.round_trips.load(Ordering::SeqCst);
    let rq0 = counter.requests.load(Ordering::SeqCst);
    for i in 0..ops {
        f(i).await;
    }
    // Let the proxy's reader catch up with the last replies.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let rt = counter.round_trips.load(Ordering::SeqCst) - rt0;
    let rq = counter.requests.load(Ordering::SeqCst) - rq0;
    (rt as f64 / ops as f64, rq as f64 / ops as f64)
}

async fn seed_cards(tracker: &Tracker, prefix: &str, n: usize) {
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let t = tracker.clone();
            let next = next.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst) as usize;
                    if i >= n {
                        return;
                    }
                    let card = format!("{prefix}-{i}");
                    let meta = json!({"title": format!("Card {i}"), "priority": "high"});
                    t.start_pipeline(&card, STAGES as u32, meta.as_object().unwrap().clone())
                        .await
                        .unwrap();
                    for s in 0..STAGES {
                        let status = if s < STAGES / 2 {
                            StageStatus::Completed
                        } else {
                            StageStatus::Pending
                        };
                        t.update_stage(&card, &format!("stage-{s}"), StageUpdate::new(status))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Cold (first read: includes the SCAN for Python-written cards) and warm median snapshot
/// time, ms, on a fresh storage handle; plus the median time of the cards part alone.
async fn snapshot_times(settings: &Settings, expect: usize, runs: usize) -> (f64, f64, f64) {
    let storage = Backend::redis(settings.clone()).await.unwrap();
    let t0 = Instant::now();
    let snap = artemis::snapshot::read_snapshot(&storage, Utc::now())
        .await
        .unwrap();
    let cold = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(snap.cards.len(), expect);
    assert!(snap.cards.iter().all(|c| c.stages.len() == STAGES));
    let mut warm = Vec::new();
    let mut cards_only = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let s = artemis::snapshot::read_snapshot(&storage, Utc::now())
            .await
            .unwrap();
        warm.push(t0.elapsed().as_secs_f64() * 1e3);
        assert_eq!(s.cards.len(), expect);
        let t0 = Instant::now();
        storage.tracker().read_cards(Utc::now()).await.unwrap();
        cards_only.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    (cold, median(warm), median(cards_only))
}

async fn round_trip_table(server_port: u16, mut settings: Settings) {
    let counter = Arc::new(Counter::default());
    let port = proxy(server_port, counter.clone()).await;
    settings.redis.url = Some(format!("redis://127.0.0.1:{port}/"));
    let storage: Backend = Backend::redis(settings).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    let ops = 200;
    println!("\n### Round trips per operation (standalone, measured by a RESP-counting proxy)\n");
    println!("| operation | round trips | requests | server commands per op (INFO commandstats) |");
    println!("|---|---|---|---|");
    let row = |name: &str, rt: (f64, f64), stats: String| {
        println!("| {name} | {:.2} | {:.2} | {stats} |", rt.0, rt.1);
    };
    let s0 = commandstats(&[server_port]);
    let rt = measure(&counter, ops, |i| {
        let t = tracker.clone();
        async move {
            t.start_pipeline(&format!("rt-{i}"), 4, Map::new())
                .await
                .unwrap();
        }
    })
    .await;
    let s1 = commandstats(&[server_port]);
    row("start_pipeline", rt, per_op(&s0, &s1, ops));
    let rt = measure(&counter, ops, |i| {
        let t = tracker.clone();
        async move {
            t.update_stage(
                &format!("rt-{i}"),
                "dev",
                StageUpdate::new(StageStatus::Completed).progress(100),
            )
            .await
            .unwrap();
        }
    })
    .await;
    let s2 = commandstats(&[server_port]);
    row("update_stage", rt, per_op(&s1, &s2, ops));
    let rt = measure(&counter, ops, |i| {
        let t = tracker.clone();
        async move {
            t.complete_pipeline(&format!("rt-{i}"), PipelineStatus::Completed, None)
                .await
                .unwrap();
        }
    })
    .await;
    let s3 = commandstats(&[server_port]);
    row("complete_pipeline", rt, per_op(&s2, &s3, ops));
    let rt = measure(&counter, ops, |i| {
        let t = tracker.clone();
        async move {
            t.get_card(&format!("rt-{i}")).await.unwrap().unwrap();
        }
    })
    .await;
    let s4 = commandstats(&[server_port]);
    row("get_card", rt, per_op(&s3, &s4, ops));
    let rt = measure(&counter, ops, |i| {
        let t = tracker.clone();
        async move {
            t.history(&format!("rt-{i}"), None, 100).await.unwrap();
        }
    })
    .await;
    let s5 = commandstats(&[server_port]);
    row("history", rt, per_op(&s4, &s5, ops));
    for n in [200usize, 2000] {
        if n > 200 {
            seed_cards(&tracker, "rt-more", n - 200).await;
        }
        // Warm the SCAN cache first: the row shows the steady state.
        storage.tracker().read_cards(Utc::now()).await.unwrap();
        let a = commandstats(&[server_port]);
        let rt = measure(&counter, 5, |_| {
            let s = storage.clone();
            async move {
                s.tracker().read_cards(Utc::now()).await.unwrap();
            }
        })
        .await;
        let b = commandstats(&[server_port]);
        row(
            &format!("read_cards, {n} cards (warm)"),
            rt,
            per_op(&a, &b, 5),
        );
        let rt = measure(&counter, 5, |_| {
            let s = storage.clone();
            async move {
                artemis::snapshot::read_snapshot(&s, Utc::now())
                    .await
                    .unwrap();
            }
        })
        .await;
        let c = commandstats(&[server_port]);
        row(
            &format!("read_snapshot, {n} cards (warm, with metrics)"),
            rt,
            per_op(&b, &c, 5),
        );
    }
}

async fn cluster_commands_table(cluster: &RedisCluster) {
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let tracker = support::tracker(cluster.settings()).await;
    let ops = 200;
    println!("\n### Commands per operation on a 3-master Cluster (INFO commandstats, all nodes)\n");
    println!("| operation | commands per op |");
    println!("|---|---|");
    let s0 = commandstats(&ports);
    for i in 0..ops {
        tracker
            .start_pipeline(&format!("c-{i}"), 4, Map::new())
            .await
            .unwrap();
    }
    let s1 = commandstats(&ports);
    println!("| start_pipeline | {} |", per_op(&s0, &s1, ops));
    for i in 0..ops {
        tracker
            .update_stage(
                &format!("c-{i}"),
                "dev",
                StageUpdate::new(StageStatus::Completed),
            )
            .await
            .unwrap();
    }
    let s2 = commandstats(&ports);
    println!("| update_stage | {} |", per_op(&s1, &s2, ops));
    for i in 0..ops {
        tracker
            .complete_pipeline(&format!("c-{i}"), PipelineStatus::Failed, None)
            .await
            .unwrap();
    }
    let s3 = commandstats(&ports);
    println!("| complete_pipeline | {} |", per_op(&s2, &s3, ops));
}

async fn run() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!("## Tracker benchmark ({runs} runs, medians)\n");
    // BENCH_ONLY=snapshot skips the write and round-trip parts (for iterating on reads),
    // BENCH_ONLY=writes everything after them (for iterating on writes).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let server = RedisServer::start();
    let settings = server.settings();
    if only != "snapshot" {
        write_and_round_trip_parts(&server, &settings, runs).await;
    }
    if only != "writes" {
        snapshot_part(server, &settings, runs, only == "snapshot").await;
    }
}

/// This process's CPU seconds so far (user + system, from /proc/self/stat): the client's
/// side of an update (the library, the driver, the runtime).
fn own_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat (utime, stime) are the 12th and 13th after the name.
    let ticks = f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0);
    ticks / 100.0
}

/// The server's CPU seconds (`INFO cpu`) and µs inside commands (`INFO commandstats`; a
/// script's inner commands are in its own line too, so only top-level ones: scripts and `SET`).
fn server_costs(server: &RedisServer) -> (f64, f64) {
    let cpu = server.cli(&["INFO", "cpu"]);
    let field = |k: &str| {
        cpu.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let usec: f64 = server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| {
            l.starts_with("cmdstat_evalsha:")
                || l.starts_with("cmdstat_eval:")
                || l.starts_with("cmdstat_set:")
        })
        .filter_map(|l| {
            l.split("usec=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum();
    (field("used_cpu_user:") + field("used_cpu_sys:"), usec)
}

async fn write_and_round_trip_parts(server: &RedisServer, settings: &Settings, runs: usize) {
    let updates = 64_000;
    let set_requests = 200_000;
    let mut set_rps = Vec::new();
    let mut own = Vec::new();
    let mut shared = Vec::new();
    // Per run: (server CPU µs, µs in commands) per operation, for SET, own, shared.
    let mut costs: [Vec<(f64, f64)>; 3] = Default::default();
    // Per run: this process's CPU µs per update, own and shared.
    let mut client: [Vec<f64>; 2] = Default::default();
    // Per run: updates per script call on the shared connection.
    let mut shared_batch = Vec::new();
    // Per run, per floor (every command, 1 per call; Protocol A's, 1 per call; every command,
    // `FLOOR_BATCH` per call): (updates per second, server CPU µs per update).
    let mut floors: [Vec<(f64, f64)>; 3] = Default::default();
    let per_op = |before: (f64, f64), after: (f64, f64), ops: usize| {
        (
            (after.0 - before.0) * 1e6 / ops as f64,
            (after.1 - before.1) / ops as f64,
        )
    };
    for run in 0..runs {
        server.cli(&["CONFIG", "RESETSTAT"]);
        let b = server_costs(server);
        set_rps.push(redis_benchmark_set(server.port, set_requests));
        let a = server_costs(server);
        costs[0].push(per_op(b, a, set_requests));
        let (b, c) = (server_costs(server), own_cpu_s());
        own.push(stage_updates_per_sec(settings, updates, true, run).await);
        client[0].push((own_cpu_s() - c) * 1e6 / updates as f64);
        let a = server_costs(server);
        costs[1].push(per_op(b, a, updates));
        let (b, c, calls) = (server_costs(server), own_cpu_s(), script_calls(server));
        shared.push(stage_updates_per_sec(settings, updates, false, run).await);
        client[1].push((own_cpu_s() - c) * 1e6 / updates as f64);
        let a = server_costs(server);
        costs[2].push(per_op(b, a, updates));
        shared_batch.push(updates as f64 / (script_calls(server) - calls) as f64);
        floors[0].push(floor_updates_per_sec(server, set_requests / 2, 1, "full"));
        floors[1].push(floor_updates_per_sec(server, set_requests / 2, 1, "a"));
        floors[2].push(floor_updates_per_sec(
            server,
            set_requests / 2 / FLOOR_BATCH,
            FLOOR_BATCH,
            "full",
        ));
        // BENCH_VERBOSE=1: the server's per-command figures for this run (all three parts).
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            for line in server.cli(&["INFO", "commandstats"]).lines() {
                if line.starts_with("cmdstat_") {
                    println!("run {run}: {line}");
                }
            }
        }
        server.cli(&["FLUSHALL"]);
    }
    let set = median(set_rps.clone());
    let (o, s) = (median(own.clone()), median(shared.clone()));
    let ratio = |v: &[f64]| median(v.iter().zip(&set_rps).map(|(x, set)| x / set).collect());
    let cpu = |i: usize| median(costs[i].iter().map(|c| c.0).collect());
    let cmd = |i: usize| median(costs[i].iter().map(|c| c.1).collect());
    println!("### Stage updates per second, {WRITERS} concurrent writers\n");
    println!(
        "| measure | per second (median) | ratio to SET (median of per-run ratios) | server CPU µs / op | server µs in commands / op | client CPU µs / op | runs |"
    );
    println!("|---|---|---|---|---|---|---|");
    let client_us = |i: usize| median(client[i].clone());
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "| `redis-benchmark -t set -c {WRITERS}` | {set:.0} | 1.00 | {:.2} | {:.2} | | {} |",
        cpu(0),
        cmd(0),
        fmt(&set_rps)
    );
    println!(
        "| update_stage, one connection per writer | {o:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        ratio(&own),
        cpu(1),
        cmd(1),
        client_us(0),
        fmt(&own)
    );
    println!(
        "| update_stage, one shared connection | {s:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
        ratio(&shared),
        cpu(2),
        cmd(2),
        client_us(1),
        fmt(&shared)
    );

    println!(
        "\nUpdates per script call on the shared connection (median): {:.1}\n",
        median(shared_batch.clone())
    );
    println!(
        "The ceiling: only the commands an update makes the server run, in one script without logic, called by `redis-benchmark -c {WRITERS}` on the same server in the same runs:\n"
    );
    println!(
        "| ceiling | updates per second (median) | ratio to SET (median of per-run ratios) | server CPU µs / update |"
    );
    println!("|---|---|---|---|");
    let names = [
        "every command of an update, one update per call (the shape of a connection per writer)",
        "Protocol A's commands alone (stage SET, pipeline GET + SET, PUBLISH), one per call",
        "every command of an update, batches of 5 updates per call (a shared connection's shape)",
    ];
    for (name, f) in names.iter().zip(&floors) {
        let rates: Vec<f64> = f.iter().map(|x| x.0).collect();
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} |",
            median(rates.clone()),
            ratio(&rates),
            median(f.iter().map(|x| x.1).collect())
        );
    }
    println!();

    round_trip_table(server.port, settings.clone()).await;
    server.cli(&["FLUSHALL"]);
}

/// Script calls the server has run so far (`EVALSHA` and `EVAL`, from `INFO commandstats`).
fn script_calls(server: &RedisServer) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

async fn snapshot_part(server: RedisServer, settings: &Settings, runs: usize, only: bool) {
    let mut rows = Vec::new();
    let writer = support::tracker(settings.clone()).await;
    let mut seeded = 0;
    for n in [1_000usize, 10_000] {
        seed_cards(&writer, &format!("snap{n}"), n - seeded).await;
        seeded = n;
        let (cold, warm, cards) = snapshot_times(settings, n, runs).await;
        rows.push(format!(
            "| standalone | {n} | {cold:.1} | {warm:.1} | {cards:.1} |"
        ));
    }
    drop(server);

    let cluster = RedisCluster::start();
    if !only {
        cluster_commands_table(&cluster).await;
    }
    cluster.cli_all(&["FLUSHALL"]);
    let writer = support::tracker(cluster.settings()).await;
    let mut seeded = 0;
    for n in [1_000usize, 10_000] {
        seed_cards(&writer, &format!("snap{n}"), n - seeded).await;
        seeded = n;
        let (cold, warm, cards) = snapshot_times(&cluster.settings(), n, runs).await;
        rows.push(format!(
            "| cluster, 3 masters | {n} | {cold:.1} | {warm:.1} | {cards:.1} |"
        ));
    }
    println!("\n### Snapshot read time ({STAGES} stages per card)\n");
    println!(
        "| backend | cards | cold: first read (with SCAN), ms | warm read_snapshot, ms | warm cards part only, ms |"
    );
    println!("|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}
