//! What discovering Python-written metric names and rate-limit windows costs Redis at
//! ~500,000 keys (`cargo bench --bench discovery`): the walks the reads made before (three
//! whole-keyspace SCAN walks for metric names and one for windows, every 30 s), measured in
//! the same run as what they do now (one bounded SCAN step per walk per master per poll, after
//! one whole walk per discovery at start and on `r`).
//!
//! Reported per 30 s at one poll a second (the old walks' interval): SCAN calls and the
//! server's time in SCAN (`INFO commandstats` usec, summed over the nodes), medians of
//! `ROUNDS` repetitions, with the ratio of now to before; then the whole walk now made at
//! start, and how many polls one pass takes (how long a new Python name can take to appear).
//!
//! `cargo bench --bench discovery -- standalone` or `-- cluster` runs one of the two.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use artemis::Backend;
use artemis::store::Store;
use common::median;
use support::{RedisCluster, RedisServer};

const KEYS: usize = 500_000;
const ROUNDS: usize = 5;
const POLLS: usize = 30;

/// (SCAN calls, SCAN usec) summed over the nodes.
fn scan_stats(nodes: &[&RedisServer]) -> (f64, f64) {
    let mut out = (0.0, 0.0);
    for n in nodes {
        let info = n.cli(&["INFO", "commandstats"]);
        let Some(rest) = info.lines().find_map(|l| l.strip_prefix("cmdstat_scan:")) else {
            continue;
        };
        let field = |k: &str| {
            rest.split(',')
                .find_map(|f| f.strip_prefix(k))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        out.0 += field("calls=");
        out.1 += field("usec=");
    }
    out
}

/// Cards' documents, stage hashes and other keys no walk matches (the haystack), plus a few
/// Python-written metric keys and windows (what the walks are for).
async fn seed(backend: &Backend) {
    let redis = backend.redis().unwrap();
    for start in (0..KEYS).step_by(10_000) {
        let mut p = redis::pipe();
        for i in start..(start + 10_000).min(KEYS) {
            p.set(format!("artemis:pipeline:hay-{i}:stage:{{x{i}}}"), "x")
                .ignore();
        }
        redis.query_pipe_ok(&p).await.unwrap();
    }
    let mut p = redis::pipe();
    for i in 0..50 {
        p.hincr(format!("artemis:metrics:llm:model:py-{i}"), "requests", 1)
            .ignore()
            .hincr(
                format!("artemis:metrics:llm:py-provider-{i}"),
                "requests",
                1,
            )
            .ignore()
            .incr(format!("artemis:metrics:status:py-{i}"), 1)
            .ignore()
            .zadd(format!("artemis:ratelimit:py-{i}:default"), "m", 1)
            .ignore();
    }
    redis.query_pipe_ok(&p).await.unwrap();
}

/// The walks the reads made every 30 s before: the metrics' three patterns, the limiter's one.
async fn old_walks(backend: &Backend) {
    let redis = backend.redis().unwrap();
    let k = artemis::keys::KeySpace::new(backend.settings().prefixes.clone());
    for (pattern, ty) in [
        (k.metrics_status_scan_pattern(), Some("string")),
        (k.metrics_llm_scan_pattern(), Some("hash")),
        (k.metrics_code_review_scan_pattern(), None),
        (k.ratelimit_scan_pattern(), Some("zset")),
    ] {
        redis.scan_match(&pattern, ty, 10_000).await.unwrap();
    }
}

async fn discoveries(backend: &Backend) {
    backend.metrics().read_metrics(1, 0).await.unwrap();
    backend.limiter().read_limits().await.unwrap();
}

async fn run(name: &str, backend: Backend, nodes: &[&RedisServer]) {
    let t = std::time::Instant::now();
    seed(&backend).await;
    println!(
        "{name}: seeded {KEYS} keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (mut before, mut now, mut whole, mut reads) = (vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        // Before: the four whole walks of one 30 s interval.
        let s0 = scan_stats(nodes);
        old_walks(&backend).await;
        let s1 = scan_stats(nodes);
        before.push((s1.0 - s0.0, s1.1 - s0.1));
        // Now: the whole walks of a start (or `r`), then 30 polls' steps.
        backend.forget_scans();
        let s0 = scan_stats(nodes);
        let t = std::time::Instant::now();
        discoveries(&backend).await;
        let s1 = scan_stats(nodes);
        whole.push((s1.0 - s0.0, s1.1 - s0.1));
        reads.push(t.elapsed().as_secs_f64() * 1e3);
        let s0 = scan_stats(nodes);
        for _ in 0..POLLS {
            discoveries(&backend).await;
        }
        let s1 = scan_stats(nodes);
        now.push((s1.0 - s0.0, s1.1 - s0.1));
    }
    let med = |v: &[(f64, f64)], i: usize| {
        median(v.iter().map(|x| if i == 0 { x.0 } else { x.1 }).collect())
    };
    let (bc, bu, nc, nu) = (med(&before, 0), med(&before, 1), med(&now, 0), med(&now, 1));
    let count = backend.settings().tracker.scan_count_per_poll as usize;
    let per_node = KEYS / nodes.len();
    let p = POLLS as f64;
    println!(
        "| {name} | per 30 s at 1 poll/s | SCAN calls | Redis µs in SCAN | per poll (calls / Redis ms) | × before (calls / µs) |"
    );
    println!(
        "| {name} | before: 4 whole walks | {bc:.0} | {bu:.0} | {:.1} / {:.2} (mean; all in one poll of 30) | 1 / 1 |",
        bc / p,
        bu / p / 1e3
    );
    println!(
        "| {name} | now: {POLLS} polls x 2 bounded steps | {nc:.0} | {nu:.0} | {:.1} / {:.2} | {:.3} / {:.3} |",
        nc / p,
        nu / p / 1e3,
        nc / bc,
        nu / bu
    );
    println!(
        "| {name} | now, once at start / after r: 2 whole walks | {:.0} | {:.0} | (one poll) | {:.3} / {:.3} |",
        med(&whole, 0),
        med(&whole, 1),
        med(&whole, 0) / bc,
        med(&whole, 1) / bu
    );
    println!(
        "{name}: the start's reads of metrics and limits took {:.0} ms (median); one pass of \
         steps of COUNT {count} takes about {} polls ({per_node} keys per master)",
        median(reads),
        per_node.next_power_of_two() / count
    );
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
        let backend = rt.block_on(Backend::redis(server.settings())).unwrap();
        rt.block_on(run("server", backend, &[&server]));
    }
    if wants("cluster") {
        let cluster = RedisCluster::start();
        let nodes: Vec<&RedisServer> = cluster.nodes.iter().collect();
        let backend = rt.block_on(Backend::redis(cluster.settings())).unwrap();
        rt.block_on(run("cluster", backend, &nodes));
    }
}
