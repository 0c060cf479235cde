//! Rate-limiter throughput and latency, as ratios to baselines measured in the same run on the
//! same self-started `redis-server`:
//!
//! - `redis-benchmark -n N -c 50 EVALSHA <sha> 3 <keys> <args>`: the same check script driven
//!   by Redis's own C client with 50 connections: the ceiling for one script per check;
//! - the original's algorithm (ZREMRANGEBYSCORE, ZCARD, then ZADD + EXPIRE, or ZRANGE for the
//!   retry-after; one round trip each, client clock), on the same client stack as ours.
//!
//! Ours: `RateLimiter::check` from 50 concurrent tasks on one single-threaded tokio runtime
//! (like redis-benchmark's single event loop), over the library's one multiplexed connection.
//!
//! Run: `cargo bench --bench limiter` (env `LIMITER_BENCH_N`, default 100000 checks per
//! measurement; `LIMITER_BENCH_RUNS`, default 5). Prints a Markdown table of medians.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artemis::Backend;
use artemis::connection::Redis;
use artemis::keys::KeySpace;
use artemis::limiter::{Limit, Limits, RateLimiter, check_script_sha, check_script_source};
use support::RedisServer;

const CLIENTS: usize = 50;

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    limits: fn() -> Limits,
    cost: u64,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "requests, admitted",
        limits: || Limits::requests(1_000_000_000, Duration::from_secs(1)),
        cost: 0,
    },
    Scenario {
        name: "requests + tokens, admitted",
        limits: || {
            Limits::requests(1_000_000_000, Duration::from_secs(1)).with_tokens(1_000_000_000_000)
        },
        cost: 10,
    },
    Scenario {
        name: "requests, saturated (refused)",
        limits: || Limits::requests(120, Duration::from_secs(60)),
        cost: 0,
    },
];

/// Throughput and latency of one measurement.
#[derive(Debug, Clone, Copy)]
struct Measure {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Checks admitted (not known for redis-benchmark).
    admitted: u64,
    /// The server's CPU time per check (`INFO cpu`: commands, parsing, replies, I/O), µs.
    server_cpu_us: f64,
    /// The server's time inside commands per check (`INFO commandstats`, a script's inner
    /// commands included), µs.
    server_cmd_us: f64,
    /// This process's CPU time per check (the client: the library, the driver, the runtime;
    /// for redis-benchmark, that program's, which is not measured: 0), µs.
    client_cpu_us: f64,
}

/// This process's CPU seconds so far (user + system, from /proc/self/stat).
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

/// What the server has spent so far: CPU seconds (`INFO cpu`), µs inside scripts, and µs
/// inside plain commands (`INFO commandstats`; a script's inner commands are counted in both its
/// own line and theirs, so a runner that sends scripts is charged its scripts' time only).
#[derive(Debug, Clone, Copy)]
struct ServerCosts {
    cpu_s: f64,
    script_us: f64,
    plain_us: f64,
}

fn server_costs(server: &RedisServer) -> ServerCosts {
    let cpu = server.cli(&["INFO", "cpu"]);
    let field = |k: &str| {
        cpu.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let stats = server.cli(&["INFO", "commandstats"]);
    let usec = |pick: &dyn Fn(&str) -> bool| -> f64 {
        stats
            .lines()
            .filter_map(|l| l.strip_prefix("cmdstat_"))
            .filter(|l| !l.starts_with("info") && pick(l))
            .filter_map(|l| l.split("usec=").nth(1))
            .filter_map(|v| v.split(',').next())
            .filter_map(|v| v.parse::<f64>().ok())
            .sum()
    };
    let is_script = |l: &str| l.starts_with("evalsha:") || l.starts_with("eval:");
    ServerCosts {
        cpu_s: field("used_cpu_user:") + field("used_cpu_sys:"),
        script_us: usec(&is_script),
        plain_us: usec(&|l| !is_script(l)),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn percentiles(mut samples: Vec<u32>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    (at(0.50) as f64 / 1_000.0, at(0.99) as f64 / 1_000.0)
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn clear(server: &RedisServer, limit: &Limit) {
    let keys = KeySpace::default();
    server.cli(&[
        "DEL",
        limit.key(),
        &keys.ratelimit_tokens(limit.key()),
        &keys.ratelimit_token_sum(limit.key()),
    ]);
}

/// The check script driven by `redis-benchmark` with 50 clients.
fn redis_benchmark(server: &RedisServer, limit: &Limit, cost: u64, n: usize) -> Measure {
    let keys = KeySpace::default();
    let l = limit.limits();
    let port = server.port.to_string();
    let n = n.to_string();
    let clients = CLIENTS.to_string();
    let args: Vec<String> = vec![
        "-p".into(),
        port,
        "-n".into(),
        n,
        "-c".into(),
        clients,
        "-r".into(),
        "1000000000".into(),
        "--csv".into(),
        "EVALSHA".into(),
        check_script_sha().into(),
        "3".into(),
        limit.key().into(),
        keys.ratelimit_tokens(limit.key()),
        keys.ratelimit_token_sum(limit.key()),
        l.window_us().to_string(),
        l.requests.to_string(),
        l.tokens.unwrap_or(0).to_string(),
        l.ttl_seconds().to_string(),
        cost.to_string(),
        "rb__rand_int__".into(),
    ];
    let out = Command::new("redis-benchmark")
        .args(&args)
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().filter(|l| l.starts_with('"'));
    let header: Vec<String> = lines
        .next()
        .expect("redis-benchmark CSV header")
        .split(',')
        .map(|s| s.trim_matches('"').to_owned())
        .collect();
    let row = lines.next().expect("redis-benchmark CSV row");
    // The first field (the command) contains no comma; split the rest.
    let values: Vec<f64> = row
        .rsplitn(header.len(), ',')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .skip(1)
        .map(|s| s.trim_matches('"').parse().unwrap_or(f64::NAN))
        .collect();
    let col = |name: &str| {
        let i = header.iter().position(|h| h == name).expect("CSV column") - 1;
        values[i]
    };
    Measure {
        rps: col("rps"),
        p50_ms: col("p50_latency_ms"),
        p99_ms: col("p99_latency_ms"),
        admitted: 0,
        server_cpu_us: 0.0,
        server_cmd_us: 0.0,
        client_cpu_us: 0.0,
    }
}

/// Runs `CLIENTS` tasks of `n / CLIENTS` checks each; task `i` uses `checkers[i % len]` (one
/// shared handle, or one per task with its own connection).
async fn drive<C, F, Fut>(checkers: &[C], n: usize, check: F) -> Measure
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    drive_with(CLIENTS, checkers, n, check).await
}

/// [`drive`] with `clients` tasks.
async fn drive_with<C, F, Fut>(clients: usize, checkers: &[C], n: usize, check: F) -> Measure
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let per_task = n / clients;
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let c = checkers[i % checkers.len()].clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                let mut admitted = 0;
                for _ in 0..per_task {
                    let t = Instant::now();
                    admitted += check(c.clone()).await as u64;
                    lat.push(t.elapsed().as_micros() as u32);
                }
                (lat, admitted)
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(n);
    let mut admitted = 0;
    for t in tasks {
        let (lat, a) = t.await.unwrap();
        samples.extend(lat);
        admitted += a;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = percentiles(samples);
    Measure {
        rps: (per_task * clients) as f64 / elapsed,
        p50_ms,
        p99_ms,
        admitted,
        server_cpu_us: 0.0,
        server_cmd_us: 0.0,
        client_cpu_us: 0.0,
    }
}

/// `RateLimiter::check` (the reservation is kept: nothing to reconcile).
async fn ours_check(limiter: RateLimiter, limit: Arc<Limit>, cost: u64) -> bool {
    match limiter.check(&limit, cost).await.expect("check") {
        artemis::limiter::Decision::Admitted(r) => {
            r.keep();
            true
        }
        artemis::limiter::Decision::Refused(_) => false,
    }
}

/// The original's check: one round trip per command, client clock.
async fn original_check(redis: &Redis, key: &str, limit: u64, window: f64) -> bool {
    let now = epoch_secs();
    redis
        .query::<()>(
            redis::cmd("ZREMRANGEBYSCORE")
                .arg(key)
                .arg(0)
                .arg(now - window),
        )
        .await
        .unwrap();
    let count: u64 = redis.query(redis::cmd("ZCARD").arg(key)).await.unwrap();
    if count >= limit {
        let _oldest: Vec<(String, f64)> = redis
            .query(
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES"),
            )
            .await
            .unwrap();
        return false;
    }
    let member = now.to_string();
    redis
        .query::<()>(redis::cmd("ZADD").arg(key).arg(now).arg(&member))
        .await
        .unwrap();
    redis
        .query::<()>(redis::cmd("EXPIRE").arg(key).arg(window as u64 + 60))
        .await
        .unwrap();
    true
}

/// One way of running checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Runner {
    RedisBenchmark,
    OursShared,
    OursDedicated,
    OriginalShared,
    OriginalDedicated,
}

impl Runner {
    const ALL: [Runner; 5] = [
        Runner::RedisBenchmark,
        Runner::OursShared,
        Runner::OursDedicated,
        Runner::OriginalShared,
        Runner::OriginalDedicated,
    ];

    fn label(self) -> &'static str {
        match self {
            Runner::RedisBenchmark => "redis-benchmark, same script, 50 connections",
            Runner::OursShared => "ours, 50 tasks, 1 multiplexed connection",
            Runner::OursDedicated => "ours, 50 tasks, 1 connection each",
            Runner::OriginalShared => "original algorithm, 50 tasks, 1 multiplexed connection",
            Runner::OriginalDedicated => "original algorithm, 50 tasks, 1 connection each",
        }
    }
}

fn main() {
    let n = env_usize("LIMITER_BENCH_N", 100_000);
    let runs = env_usize("LIMITER_BENCH_RUNS", 5);
    let server = RedisServer::start();
    let version = server.cli(&["INFO", "server"]);
    let version = version
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap_or("?")
        .trim()
        .to_owned();
    let loaded = server.cli(&["SCRIPT", "LOAD", check_script_source()]);
    assert_eq!(
        loaded,
        check_script_sha(),
        "script SHA as the library computes it"
    );

    // One thread for all 50 tasks, like redis-benchmark's single event loop.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut settings = server.settings();
    settings.redis.timeout = 30.0;
    let (shared, dedicated, redis_shared, redis_dedicated) = rt.block_on(async {
        let shared = RateLimiter::new(
            Backend::redis(settings.clone())
                .await
                .unwrap()
                .limiter()
                .clone(),
        );
        let mut dedicated = Vec::new();
        let mut redis_dedicated = Vec::new();
        for _ in 0..CLIENTS {
            dedicated.push(RateLimiter::new(
                Backend::redis(settings.clone())
                    .await
                    .unwrap()
                    .limiter()
                    .clone(),
            ));
            redis_dedicated.push(Redis::connect(&settings.redis).await.unwrap());
        }
        let redis_shared = Redis::connect(&settings.redis).await.unwrap();
        (shared, dedicated, redis_shared, redis_dedicated)
    });

    println!(
        "limiter bench: redis {version}, {} CPUs, load average {}, {n} checks per measurement, {runs} runs, {CLIENTS} concurrent clients\n",
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    );
    println!(
        "| scenario | runner | checks/s | / redis-benchmark | ours / original (same connections) | p50 ms | p99 ms | server CPU µs / check | server µs in commands / check | client CPU µs / check |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for sc in SCENARIOS {
        let limit = Arc::new(
            shared
                .limit(
                    "bench",
                    &sc.name.replace([' ', ',', '(', ')', '+'], "_"),
                    (sc.limits)(),
                )
                .unwrap(),
        );
        let (max, window) = (limit.limits().requests, limit.limits().window_seconds());
        let cost = sc.cost;
        let mut results: Vec<Vec<Measure>> = vec![Vec::new(); Runner::ALL.len()];
        for _ in 0..runs {
            for (i, runner) in Runner::ALL.iter().enumerate() {
                clear(&server, &limit);
                let before = server_costs(&server);
                let own_before = own_cpu_s();
                let mut m = match runner {
                    Runner::RedisBenchmark => redis_benchmark(&server, &limit, cost, n),
                    Runner::OursShared => rt.block_on(drive(
                        &[(shared.clone(), limit.clone())],
                        n,
                        move |(l, k)| ours_check(l, k, cost),
                    )),
                    Runner::OursDedicated => {
                        let checkers: Vec<_> = dedicated
                            .iter()
                            .map(|l| (l.clone(), limit.clone()))
                            .collect();
                        rt.block_on(drive(&checkers, n, move |(l, k)| ours_check(l, k, cost)))
                    }
                    Runner::OriginalShared => rt.block_on(drive(
                        &[(redis_shared.clone(), limit.clone())],
                        n,
                        move |(r, k): (Redis, Arc<Limit>)| async move {
                            original_check(&r, k.key(), max, window).await
                        },
                    )),
                    Runner::OriginalDedicated => {
                        let checkers: Vec<_> = redis_dedicated
                            .iter()
                            .map(|r| (r.clone(), limit.clone()))
                            .collect();
                        rt.block_on(drive(
                            &checkers,
                            n,
                            move |(r, k): (Redis, Arc<Limit>)| async move {
                                original_check(&r, k.key(), max, window).await
                            },
                        ))
                    }
                };
                let own_after = own_cpu_s();
                let after = server_costs(&server);
                let checks = n as f64;
                if *runner != Runner::RedisBenchmark {
                    m.client_cpu_us = (own_after - own_before) * 1e6 / checks;
                }
                m.server_cpu_us = (after.cpu_s - before.cpu_s) * 1e6 / checks;
                m.server_cmd_us = match runner {
                    Runner::OriginalShared | Runner::OriginalDedicated => {
                        after.plain_us - before.plain_us
                    }
                    // Inner commands are in the scripts' own time (the registry write, once
                    // per 30 s, is left out).
                    _ => after.script_us - before.script_us,
                } / checks;
                results[i].push(m);
            }
        }
        let med = |v: &[Measure], f: fn(&Measure) -> f64| median(v.iter().map(f).collect());
        let ratio = |a: &[Measure], z: &[Measure]| {
            median(a.iter().zip(z).map(|(a, z)| a.rps / z.rps).collect())
        };
        let of = |r: Runner| &results[Runner::ALL.iter().position(|x| *x == r).unwrap()];
        for runner in Runner::ALL {
            let m = of(runner);
            let vs_rb = if runner == Runner::RedisBenchmark {
                "1.00".to_owned()
            } else {
                format!("{:.2}", ratio(m, of(Runner::RedisBenchmark)))
            };
            let vs_orig = match runner {
                Runner::OursShared => format!("{:.2}", ratio(m, of(Runner::OriginalShared))),
                Runner::OursDedicated => {
                    format!("{:.2}", ratio(m, of(Runner::OriginalDedicated)))
                }
                _ => String::new(),
            };
            println!(
                "| {} | {} | {:.0} | {vs_rb} | {vs_orig} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                sc.name,
                runner.label(),
                med(m, |m| m.rps),
                med(m, |m| m.p50_ms),
                med(m, |m| m.p99_ms),
                med(m, |m| m.server_cpu_us),
                med(m, |m| m.server_cmd_us),
                med(m, |m| m.client_cpu_us),
            );
        }
        if max < n as u64 {
            let most = |r: Runner| of(r).iter().map(|m| m.admitted).max().unwrap_or(0);
            notes.push(format!(
                "{}: limit {max} per {window} s; most admitted in one run: ours {} / {}, original {} / {} (shared / dedicated connections; the original is not atomic, concurrent callers overshoot)",
                sc.name,
                most(Runner::OursShared),
                most(Runner::OursDedicated),
                most(Runner::OriginalShared),
                most(Runner::OriginalDedicated),
            ));
        }
    }
    for note in notes {
        println!("\n{note}");
    }

    // Unloaded latency: one client, one check at a time (one round trip against four).
    let limit = Arc::new(
        shared
            .limit("bench", "unloaded", (SCENARIOS[0].limits)())
            .unwrap(),
    );
    let (max, window) = (limit.limits().requests, limit.limits().window_seconds());
    let m = (n / 10).max(1_000);
    let (mut o, mut p) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        clear(&server, &limit);
        o.push(rt.block_on(drive_with(
            1,
            &[(dedicated[0].clone(), limit.clone())],
            m,
            |(l, k)| ours_check(l, k, 0),
        )));
        clear(&server, &limit);
        p.push(rt.block_on(drive_with(
            1,
            &[(redis_dedicated[0].clone(), limit.clone())],
            m,
            move |(r, k): (Redis, Arc<Limit>)| async move {
                original_check(&r, k.key(), max, window).await
            },
        )));
    }
    let med = |v: &[Measure], f: fn(&Measure) -> f64| median(v.iter().map(f).collect());
    println!(
        "\nUnloaded (1 client, {m} sequential checks): ours p50 {:.3} ms / p99 {:.3} ms; original p50 {:.3} ms / p99 {:.3} ms",
        med(&o, |m| m.p50_ms),
        med(&o, |m| m.p99_ms),
        med(&p, |m| m.p50_ms),
        med(&p, |m| m.p99_ms),
    );
    println!("\n(medians of {runs} runs; ratios are medians of per-run ratios)");
}
