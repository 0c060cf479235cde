//! Cache benchmark: what a hit costs compared with a plain Redis GET of the same value over the
//! same connection in the same run, and how long the Python-identical key takes to compute.
//!
//! Run: `cargo bench --bench cache` (starts its own `redis-server` on a free port).
//! Each figure is the median of several runs; runs of the hit path and of the baseline GET
//! alternate so that drift on a shared machine hits both alike.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;

use std::time::Instant;

use artemis::Backend;
use artemis::cache::key::{request_hash, sha256_hex};
use artemis::cache::{
    CacheControl, CachedClient, LlmClient, LlmError, LlmRequest, LlmResponse, Message, Source,
    Usage,
};
use artemis::metrics::Metrics;
use artemis::store::{RedisCore, Store};

const RUNS: usize = 25;
const HIT_OPS: usize = 1500;

/// The metrics guard script, to measure a record written in the same pipeline as the `GET`.
const GUARD_SOURCE: &str = include_str!("../src/metrics/scripts/guard.lua");

/// A provider that answers at once with a response of realistic size.
struct InstantLlm;

#[async_trait::async_trait]
impl LlmClient for InstantLlm {
    fn provider(&self) -> &str {
        "openai"
    }

    async fn complete(&self, r: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(LlmResponse {
            content: "The answer, in some detail. ".repeat(70),
            model: r.model.clone(),
            provider: "openai".into(),
            usage: Usage {
                prompt_tokens: 250,
                completion_tokens: 500,
                total_tokens: 750,
            },
            raw_response: serde_json::json!({
                "id": "chatcmpl-123", "object": "chat.completion", "created": 1_700_000_000,
                "choices": [{"index": 0, "finish_reason": "stop"}],
                "system_fingerprint": "fp_0123456789",
            }),
        })
    }
}

/// Prompt text of `bytes` bytes: English prose with newlines, quotes and some non-ASCII.
fn prompt(bytes: usize) -> String {
    let unit = "Summarise the \"quarterly\" report for the board.\nKey figures: revenue up 12%, \
                costs down 3% — see table 4 (Zürich office).\t";
    let mut s = String::with_capacity(bytes + unit.len());
    while s.len() < bytes {
        s.push_str(unit);
    }
    while s.len() > bytes {
        s.pop();
    }
    s
}

/// A `GET` and one hit's request record as the guard script applies it (a fresh operation
/// marker, the `llm`, provider and model increments and the name indexes), in one pipeline.
fn get_and_record(entry_key: &str, guard_sha: &str) -> redis::Pipeline {
    let marker = format!(
        "bench:metrics::op:{{bench:metrics:llm}}:{:032x}",
        rand::random::<u128>()
    );
    let keys = [
        "bench:metrics:llm",
        "bench:metrics:llm:openai",
        "bench:metrics:llm:model:gpt-4o",
        "bench:metrics::index:providers",
        "bench:metrics::index:models",
    ];
    let mut args: Vec<String> = vec!["3600".into()];
    let mut op = |key: usize, cmd: &str, a: &str, b: &str| {
        args.extend([(key + 2).to_string(), cmd.into(), a.into(), b.into()]);
    };
    for field in [
        "total_requests",
        "prompt_tokens",
        "completion_tokens",
        "cache_hits",
    ] {
        op(
            0,
            "HINCRBY",
            field,
            if field == "total_requests" || field == "cache_hits" {
                "1"
            } else {
                "0"
            },
        );
    }
    for field in ["total_cost", "saved_cost", "latency_ms_total"] {
        op(0, "HINCRBYFLOAT", field, "0.0125");
    }
    for key in [1, 2] {
        op(key, "HINCRBY", "requests", "1");
        op(key, "HINCRBYFLOAT", "cost", "0.0");
    }
    op(3, "SADD", "openai", "");
    op(4, "SADD", "gpt-4o", "");
    let mut p = redis::pipe();
    p.cmd("GET").arg(entry_key);
    p.cmd("EVALSHA")
        .arg(guard_sha)
        .arg(keys.len() + 1)
        .arg(marker)
        .arg(&keys[..])
        .arg(args);
    p
}

/// The server's own time spent in commands so far (`INFO commandstats`, all commands), µs.
fn server_usec(server: &support::RedisServer) -> f64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info"))
        .filter_map(|l| l.split("usec=").nth(1))
        .filter_map(|v| v.split(',').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median nanoseconds per call of `f`, over RUNS runs of `ops` calls.
fn time_sync(ops: usize, mut f: impl FnMut()) -> f64 {
    let runs = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ops {
                f();
            }
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    median(runs)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let server = support::RedisServer::start();
    let settings = server.settings();
    let core = RedisCore::connect(settings.clone())
        .await
        .expect("connect to the benchmark server");
    let redis = core.redis().clone();
    let storage = Backend::over_redis(core);

    let request = LlmRequest::new(
        "gpt-4o",
        vec![
            Message::system("You are a careful analyst."),
            Message::user(prompt(1024)),
        ],
    );
    let with_metrics = CachedClient::new(
        InstantLlm,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
    )
    .unwrap();
    let mut quiet = storage.settings().cache.clone();
    quiet.record_metrics = false;
    let no_metrics = CachedClient::with_settings(
        InstantLlm,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
        quiet.clone(),
    )
    .unwrap();
    quiet.memory_tier_bytes = 64 << 20;
    let tiered = CachedClient::with_settings(
        InstantLlm,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
        quiet,
    )
    .unwrap();

    // The shape this crate had before records were coalesced: one write per record (with
    // sequential callers a batch was one record), measured in the same run as the reference.
    let mut per_record = storage.settings().cache.clone();
    per_record.metrics_flush_records = 1;
    let unbatched = CachedClient::with_settings(
        InstantLlm,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
        per_record,
    )
    .unwrap();

    let control = CacheControl::default();
    let first = with_metrics
        .complete_with(&request, &control)
        .await
        .unwrap();
    assert_eq!(first.source, Source::Upstream);
    let keys = artemis::keys::KeySpace::new(storage.settings().prefixes.clone());
    let entry_key = first.key.clone().unwrap().entry_key(&keys);
    let value_len: usize = {
        let v: Vec<u8> = redis
            .query(redis::cmd("GET").arg(&entry_key))
            .await
            .unwrap();
        v.len()
    };
    let guard_sha: String = redis
        .query(redis::cmd("SCRIPT").arg("LOAD").arg(GUARD_SOURCE))
        .await
        .unwrap();

    // Warm up every path.
    for _ in 0..500 {
        let _: Vec<u8> = redis
            .query(redis::cmd("GET").arg(&entry_key))
            .await
            .unwrap();
        for c in [&with_metrics, &no_metrics, &tiered, &unbatched] {
            c.complete_with(&request, &control).await.unwrap();
        }
        let _: (Vec<u8>, i64) = redis
            .query_pipe(&get_and_record(&entry_key, &guard_sha))
            .await
            .unwrap();
    }
    with_metrics.flush_metrics().await;
    unbatched.flush_metrics().await;

    let paths = [
        "plain `GET` of the same value, same connection",
        "hit from Redis, metrics recorded (default: coalesced, one write per 50 ms / 256 records)",
        "hit from Redis, metrics recorded one write per record (before: `metrics_flush_records = 1`)",
        "`GET` + the record's guarded write in one pipeline (the alternative to coalescing)",
        "hit from Redis, `record_metrics = false`",
        "hit from the in-process tier",
    ];
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut server_us: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for _ in 0..RUNS {
        for (i, slot) in ns.iter_mut().enumerate() {
            let before = server_usec(&server);
            let t = Instant::now();
            match i {
                0 => {
                    let get_cmd = redis::cmd("GET").arg(&entry_key).clone();
                    for _ in 0..HIT_OPS {
                        let v: Vec<u8> = redis.query(&get_cmd).await.unwrap();
                        black_box(v);
                    }
                }
                3 => {
                    for _ in 0..HIT_OPS {
                        let v: (Vec<u8>, i64) = redis
                            .query_pipe(&get_and_record(&entry_key, &guard_sha))
                            .await
                            .unwrap();
                        black_box(v);
                    }
                }
                _ => {
                    let client = match i {
                        1 => &with_metrics,
                        2 => &unbatched,
                        4 => &no_metrics,
                        _ => &tiered,
                    };
                    for _ in 0..HIT_OPS {
                        let c = client.complete_with(&request, &control).await.unwrap();
                        debug_assert!(c.source.is_hit());
                        black_box(c);
                    }
                    // The metrics writes these hits queued belong to their cost.
                    client.flush_metrics().await;
                }
            }
            slot.push(t.elapsed().as_nanos() as f64 / HIT_OPS as f64);
            server_us[i].push((server_usec(&server) - before) / HIT_OPS as f64);
        }
    }
    let s = with_metrics.stats();
    assert_eq!(s.cache_misses, 1, "every measured request was a hit");
    assert_eq!((s.metrics_dropped, s.metrics_failed), (0, 0));

    println!(
        "## Cache hit path (value {value_len} bytes, prompt 1 KiB, {RUNS} runs x {HIT_OPS} sequential calls, medians)"
    );
    println!();
    println!(
        "| path | µs per call | ratio to plain GET (median of per-run ratios) | server µs per call |"
    );
    println!("|---|---:|---:|---:|");
    for (i, label) in paths.iter().enumerate() {
        let ratio = median(ns[i].iter().zip(&ns[0]).map(|(a, g)| a / g).collect());
        println!(
            "| {label} | {:.1} | {ratio:.2} | {:.2} |",
            median(ns[i].clone()) / 1e3,
            median(server_us[i].clone()),
        );
    }
    println!();

    println!("## Cache key computation (preimage + sha256; medians of {RUNS} runs)");
    println!();
    println!("| prompt | µs per key | MB/s | ratio to sha256 of the prompt alone |");
    println!("|---|---:|---:|---:|");
    for (label, text) in [
        ("1 KiB", prompt(1024)),
        ("64 KiB", prompt(64 * 1024)),
        (
            "64 KiB, all non-ASCII (CJK)",
            "漢字かな交じり文".repeat(64 * 1024 / 24),
        ),
    ] {
        let r = LlmRequest::new("gpt-4o", vec![Message::user(text.clone())]);
        let ops = if text.len() > 4096 { 300 } else { 20_000 };
        let key = time_sync(ops, || {
            black_box(request_hash(black_box(&r)).unwrap());
        });
        let sha = time_sync(ops, || {
            black_box(sha256_hex(black_box(text.as_bytes())));
        });
        println!(
            "| {label} | {:.2} | {:.0} | {:.2} |",
            key / 1e3,
            text.len() as f64 / (key / 1e9) / 1e6,
            key / sha
        );
    }
    drop(server);
}
