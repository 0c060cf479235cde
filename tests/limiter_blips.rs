//! The limit through connection blips: a real `redis-server` whose clients are killed
//! (`CLIENT KILL TYPE normal`) every 0.3 s for 6 s while real worker processes hammer one key
//! (20 requests per 2 s), under each failure policy, one process and a fleet of four.
//!
//! Every admission is logged with the time it was decided at (the server's clock for Redis
//! admissions, the worker's for local and fail-open ones: one host, one clock). Every sliding
//! window of the log is checked, per process and for the fleet, against the bound
//! `docs/RELIABILITY.md` states:
//!
//! | policy | one process | fleet of N (shares s_i) |
//! |---|---|---|
//! | `closed` | L | L |
//! | `local` | L | L + Σ ⌊s_i·L⌋ (default s_i = 1/N: ≤ 2L) |
//! | `open` | L | N·L |
//!
//! The worker processes are this test binary run again (`blip_worker`, activated by an
//! environment variable), so no extra binary needs building.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use artemis::Backend;
use artemis::config::FailurePolicy;
use artemis::limiter::{AcquireOptions, LimitError, Limits, RateLimiter};
use support::RedisServer;

const LIMIT: u64 = 20;
const WINDOW: Duration = Duration::from_secs(2);
const TASKS: usize = 6;
/// Warm-up on a healthy server (the fleet's processes see each other), then the blips, then
/// a calm tail.
const WARMUP: Duration = Duration::from_millis(2_500);
const BLIPS: Duration = Duration::from_secs(6);
const TAIL: Duration = Duration::from_millis(1_500);
const BLIP_EVERY: Duration = Duration::from_millis(300);

const ENV_WORKER: &str = "LIMITER_BLIP_WORKER";
const ENV_URL: &str = "LIMITER_BLIP_URL";
const ENV_POLICY: &str = "LIMITER_BLIP_POLICY";
const ENV_START: &str = "LIMITER_BLIP_START_MS";
const ENV_END: &str = "LIMITER_BLIP_END_MS";

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn policy_name(p: FailurePolicy) -> &'static str {
    match p {
        FailurePolicy::Open => "open",
        FailurePolicy::Local => "local",
        FailurePolicy::Closed => "closed",
    }
}

/// One worker process: runs only when a parent test starts it.
#[test]
fn blip_worker() {
    let Ok(worker) = std::env::var(ENV_WORKER) else {
        return;
    };
    let url = std::env::var(ENV_URL).unwrap();
    let policy = match std::env::var(ENV_POLICY).unwrap().as_str() {
        "open" => FailurePolicy::Open,
        "closed" => FailurePolicy::Closed,
        _ => FailurePolicy::Local,
    };
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
        settings.redis.timeout = 1.0;
        settings.redis.reconnect_max_backoff = 0.1;
        settings.limiter.failure_policy = policy;
        let storage = Backend::redis(settings).await.expect("worker connects");
        let limiter = RateLimiter::new(storage.limiter().clone());
        let limit = limiter
            .limit("blips", "default", Limits::requests(LIMIT, WINDOW))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(start_ms.saturating_sub(epoch_ms()))).await;
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (limiter, limit) = (limiter.clone(), limit.clone());
            tasks.push(tokio::spawn(async move {
                let mut log = Vec::new();
                loop {
                    let left = end_ms.saturating_sub(epoch_ms());
                    if left == 0 {
                        break;
                    }
                    let opts = AcquireOptions::from_settings(limiter.settings())
                        .with_timeout(Duration::from_millis(left));
                    match limiter.acquire_with(&limit, 0, opts).await {
                        Ok(r) => {
                            log.push(format!("ADMIT {} {:?}", r.admitted_at_us(), r.source()));
                            r.keep();
                        }
                        Err(LimitError::DeadlineExceeded { .. } | LimitError::Unavailable(_)) => {
                            break;
                        }
                        Err(e) => panic!("worker error: {e}"),
                    }
                }
                log
            }));
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

/// `(time µs, worker, source)` of every admission, sorted by time.
type Log = Vec<(i64, usize, String)>;

/// The most admissions any sliding window `(t - W, t]` of `log` holds.
fn sliding_max(log: &[(i64, usize, String)]) -> u64 {
    let w = WINDOW.as_micros() as i64;
    let mut lo = 0;
    let mut max = 0;
    for (i, (t, _, _)) in log.iter().enumerate() {
        while log[lo].0 <= t - w {
            lo += 1;
        }
        max = max.max((i + 1 - lo) as u64);
    }
    max
}

/// Runs `processes` workers under `policy` through the blips; returns the merged log.
fn run_fleet(policy: FailurePolicy, processes: usize) -> Log {
    let server = RedisServer::start();
    let start_ms = epoch_ms() + 1_500;
    let blips_from = start_ms + WARMUP.as_millis() as u64;
    let blips_to = blips_from + BLIPS.as_millis() as u64;
    let end_ms = blips_to + TAIL.as_millis() as u64;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..processes)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", "blip_worker", "--nocapture", "--test-threads=1"])
                .env(ENV_WORKER, i.to_string())
                .env(ENV_URL, server.url())
                .env(ENV_POLICY, policy_name(policy))
                .env(ENV_START, start_ms.to_string())
                .env(ENV_END, end_ms.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start a worker process")
        })
        .collect();
    // The blips: every normal client (the workers' connections) killed every 0.3 s.
    let mut kills = 0;
    std::thread::sleep(Duration::from_millis(blips_from.saturating_sub(epoch_ms())));
    while epoch_ms() < blips_to {
        let killed: u64 = server
            .cli(&["CLIENT", "KILL", "TYPE", "normal"])
            .trim()
            .parse()
            .unwrap_or(0);
        kills += killed;
        std::thread::sleep(BLIP_EVERY);
    }
    assert!(kills > 0, "the blips killed no connection");
    let mut log: Log = Vec::new();
    for child in children {
        let out = support::wait_output(child, Duration::from_secs(60), "a blip worker");
        assert!(out.status.success(), "a worker failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(at) = line.find("ADMIT ") else {
                continue;
            };
            let f: Vec<&str> = line[at + "ADMIT ".len()..].split(' ').collect();
            log.push((
                f[0].parse().unwrap(),
                f[2].trim_start_matches('w').parse().unwrap(),
                f[1].to_owned(),
            ));
        }
    }
    log.sort_unstable();
    let sources: HashMap<&str, usize> = log.iter().fold(HashMap::new(), |mut m, (_, _, s)| {
        *m.entry(s.as_str()).or_default() += 1;
        m
    });
    eprintln!(
        "{} × {processes}: {} admissions {sources:?}, {kills} connections killed",
        policy_name(policy),
        log.len()
    );
    log
}

/// Checks every sliding window, per process and for the fleet; returns the fleet's maximum.
fn check_windows(policy: FailurePolicy, log: &Log, processes: usize, fleet_bound: u64) -> u64 {
    assert!(!log.is_empty(), "no admissions");
    let name = policy_name(policy);
    let own: Vec<u64> = (0..processes)
        .map(|p| {
            let own: Vec<_> = log.iter().filter(|e| e.1 == p).cloned().collect();
            sliding_max(&own)
        })
        .collect();
    let max = sliding_max(log);
    eprintln!(
        "{name} × {processes}: per-process sliding max {own:?} (limit {LIMIT}), fleet sliding max {max} (bound {fleet_bound})"
    );
    for (p, m) in own.iter().enumerate() {
        assert!(
            *m <= LIMIT,
            "{name}: process {p} admitted {m} in one window (limit {LIMIT})"
        );
    }
    assert!(
        max <= fleet_bound,
        "{name}: the fleet admitted {max} in one window (bound {fleet_bound})"
    );
    max
}

#[test]
fn local_policy_one_process_never_exceeds_the_limit_through_blips() {
    let log = run_fleet(FailurePolicy::Local, 1);
    assert!(
        log.iter().any(|e| e.2 == "Local"),
        "the blips made the local window decide"
    );
    check_windows(FailurePolicy::Local, &log, 1, LIMIT);
}

#[test]
fn local_policy_fleet_of_four_stays_within_its_share_bound() {
    // Default share: 1/N with N the processes seen recently (4) → ⌊20/4⌋ = 5 each.
    let log = run_fleet(FailurePolicy::Local, 4);
    check_windows(FailurePolicy::Local, &log, 4, LIMIT + 4 * (LIMIT / 4));
}

#[test]
fn closed_policy_fleet_never_exceeds_the_limit_through_blips() {
    let log = run_fleet(FailurePolicy::Closed, 4);
    check_windows(FailurePolicy::Closed, &log, 4, LIMIT);
}

#[test]
fn closed_policy_one_process_never_exceeds_the_limit_through_blips() {
    let log = run_fleet(FailurePolicy::Closed, 1);
    check_windows(FailurePolicy::Closed, &log, 1, LIMIT);
}

#[test]
fn open_policy_one_process_never_exceeds_the_limit_through_blips() {
    let log = run_fleet(FailurePolicy::Open, 1);
    check_windows(FailurePolicy::Open, &log, 1, LIMIT);
}

#[test]
fn open_policy_fleet_stays_within_one_limit_per_process() {
    let log = run_fleet(FailurePolicy::Open, 4);
    check_windows(FailurePolicy::Open, &log, 4, 4 * LIMIT);
}
