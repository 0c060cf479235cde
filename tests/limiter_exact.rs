//! Exactness under real concurrency: 4 OS processes × 32 tasks hammer one key (50 requests per
//! 2 s) for 5.5 windows, and 32 more tasks per process hammer a second key limited to 500 tokens
//! per 2 s. Every admission is logged with the server time the script decided it at. The log
//! must show no sliding window over the limit, and, since demand is far above the limit, every
//! whole window from the first admission on must reach it.
//!
//! The worker processes are this test binary run again (`worker_process`, activated by an
//! environment variable), so no extra binary needs building.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use artemis::Backend;
use artemis::limiter::{AcquireOptions, Limits, RateLimiter};
use support::RedisServer;

const PROCESSES: usize = 4;
const TASKS_PER_KEY: usize = 32;
const REQUEST_LIMIT: u64 = 50;
const TOKEN_LIMIT: u64 = 500;
const MAX_COST: u64 = 20;
const WINDOW: Duration = Duration::from_secs(2);
/// 5.5 windows: five whole windows after the first admission.
const RUN: Duration = Duration::from_millis(11_000);

const ENV_WORKER: &str = "LIMITER_EXACT_WORKER";
const ENV_URL: &str = "LIMITER_EXACT_URL";
const ENV_START: &str = "LIMITER_EXACT_START_MS";
const ENV_END: &str = "LIMITER_EXACT_END_MS";

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn cost_of(task: usize) -> u64 {
    (task as u64 % MAX_COST) + 1
}

fn request_limits() -> Limits {
    Limits::requests(REQUEST_LIMIT, WINDOW)
}

fn token_limits() -> Limits {
    Limits::requests(10_000, WINDOW).with_tokens(TOKEN_LIMIT)
}

/// One worker process: runs only when the parent test starts it.
#[test]
fn worker_process() {
    let Ok(worker) = std::env::var(ENV_WORKER) else {
        return;
    };
    let url = std::env::var(ENV_URL).unwrap();
    let start_ms: u64 = std::env::var(ENV_START).unwrap().parse().unwrap();
    let end_ms: u64 = std::env::var(ENV_END).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lines = rt.block_on(async move {
        let mut settings = artemis::config::Settings::default();
        settings.redis.url = Some(url);
        let storage = Backend::redis(settings).await.expect("worker connects");
        let limiter = RateLimiter::new(storage.limiter().clone());
        let req = limiter
            .limit("exact", "requests", request_limits())
            .unwrap();
        let tok = limiter.limit("exact", "tokens", token_limits()).unwrap();
        tokio::time::sleep(Duration::from_millis(start_ms.saturating_sub(epoch_ms()))).await;
        let mut tasks = Vec::new();
        for (kind, limit) in [("req", req), ("tok", tok)] {
            for task in 0..TASKS_PER_KEY {
                let (limiter, limit) = (limiter.clone(), limit.clone());
                let cost = if kind == "tok" { cost_of(task) } else { 0 };
                tasks.push(tokio::spawn(async move {
                    let mut log = Vec::new();
                    loop {
                        let left = end_ms.saturating_sub(epoch_ms());
                        if left == 0 {
                            break;
                        }
                        let opts = AcquireOptions::from_settings(limiter.settings())
                            .with_timeout(Duration::from_millis(left));
                        match limiter.acquire_with(&limit, cost, opts).await {
                            Ok(r) => {
                                log.push(format!("ADMIT {kind} {} {cost}", r.admitted_at_us()));
                                r.keep();
                            }
                            Err(artemis::limiter::LimitError::DeadlineExceeded { .. }) => break,
                            Err(e) => panic!("worker error: {e}"),
                        }
                    }
                    log
                }));
            }
        }
        let mut lines = Vec::new();
        for t in tasks {
            lines.extend(t.await.unwrap());
        }
        lines
    });
    for l in lines {
        println!("{l} w{worker}");
    }
}

/// `(time µs, cost, worker)` of every admission of one kind, sorted by time.
type Log = Vec<(i64, u64, usize)>;

fn check_log(
    name: &str,
    log: &Log,
    limit: u64,
    weight: impl Fn(u64) -> u64,
    floor: u64,
    end_us: i64,
) {
    let w = WINDOW.as_micros() as i64;
    assert!(!log.is_empty(), "{name}: no admissions");
    // No sliding window (t - W, t] holds more than the limit.
    let mut lo = 0;
    let mut sum = 0;
    let mut max = 0;
    for (i, &(t, c, _)) in log.iter().enumerate() {
        sum += weight(c);
        while log[lo].0 <= t - w {
            sum -= weight(log[lo].1);
            lo += 1;
        }
        assert!(
            sum <= limit,
            "{name}: {sum} in the window ending at admission #{i} (limit {limit})"
        );
        max = max.max(sum);
    }
    // Every whole window from the first admission reaches the limit (demand is far above it).
    let t0 = log[0].0;
    let mut whole = 0;
    let mut k = 0;
    while t0 + (k + 1) * w <= end_us {
        let (a, b) = (t0 + k * w, t0 + (k + 1) * w);
        let used: u64 = log
            .iter()
            .filter(|(t, _, _)| (a..b).contains(t))
            .map(|&(_, c, _)| weight(c))
            .sum();
        if std::env::var("LIMITER_EXACT_DEBUG").is_ok() {
            let times: Vec<i64> = log
                .iter()
                .filter(|(t, _, _)| (a..b).contains(t))
                .map(|&(t, _, _)| (t - a) / 1000)
                .collect();
            eprintln!("{name} window {k}: {used}: {times:?}");
        }
        assert!(
            used >= floor && used <= limit,
            "{name}: window {k} admitted {used}, expected {floor}..={limit}"
        );
        whole += 1;
        k += 1;
    }
    assert!(whole >= 5, "{name}: only {whole} whole windows observed");
    let workers: std::collections::HashSet<usize> = log.iter().map(|&(_, _, p)| p).collect();
    assert_eq!(
        workers.len(),
        PROCESSES,
        "{name}: every process was admitted"
    );
    eprintln!(
        "{name}: {} admissions, sliding max {max}/{limit}, {whole} whole windows",
        log.len()
    );
}

#[test]
fn sliding_window_is_exact_across_processes() {
    let server = RedisServer::start();
    let start_ms = epoch_ms() + 1_500;
    let end_ms = start_ms + RUN.as_millis() as u64;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "worker_process",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(ENV_WORKER, i.to_string())
                .env(ENV_URL, server.url())
                .env(ENV_START, start_ms.to_string())
                .env(ENV_END, end_ms.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    let mut req: Log = Vec::new();
    let mut tok: Log = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a worker failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // The harness may print "test worker_process ... " on the same line.
            let Some(at) = line.find("ADMIT ") else {
                continue;
            };
            let rest = &line[at + "ADMIT ".len()..];
            let f: Vec<&str> = rest.split(' ').collect();
            let entry = (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].trim_start_matches('w').parse().unwrap(),
            );
            match f[0] {
                "req" => req.push(entry),
                _ => tok.push(entry),
            }
        }
    }
    req.sort_unstable();
    tok.sort_unstable();
    let end_us = end_ms as i64 * 1_000;
    check_log(
        "requests",
        &req,
        REQUEST_LIMIT,
        |_| 1,
        REQUEST_LIMIT,
        end_us,
    );
    // With costs of 1..=20 a window can stop short of the limit by less than one request.
    check_log(
        "tokens",
        &tok,
        TOKEN_LIMIT,
        |c| c,
        TOKEN_LIMIT - MAX_COST + 1,
        end_us,
    );
}
