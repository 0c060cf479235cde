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

const RUNS: usize = 7;
const HIT_OPS: usize = 4000;

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

    // Warm up every path.
    for _ in 0..500 {
        let _: Vec<u8> = redis
            .query(redis::cmd("GET").arg(&entry_key))
            .await
            .unwrap();
        with_metrics
            .complete_with(&request, &control)
            .await
            .unwrap();
        no_metrics.complete_with(&request, &control).await.unwrap();
        tiered.complete_with(&request, &control).await.unwrap();
    }
    with_metrics.flush_metrics().await;

    let mut get_ns = Vec::new();
    let mut hit_ns = Vec::new();
    let mut hit_quiet_ns = Vec::new();
    let mut tier_ns = Vec::new();
    for _ in 0..RUNS {
        let get_cmd = redis::cmd("GET").arg(&entry_key).clone();
        let t = Instant::now();
        for _ in 0..HIT_OPS {
            let v: Vec<u8> = redis.query(&get_cmd).await.unwrap();
            black_box(v);
        }
        get_ns.push(t.elapsed().as_nanos() as f64 / HIT_OPS as f64);

        let t = Instant::now();
        for _ in 0..HIT_OPS {
            let c = with_metrics
                .complete_with(&request, &control)
                .await
                .unwrap();
            debug_assert_eq!(c.source, Source::Store);
            black_box(c);
        }
        // The metrics writes queued by these hits belong to their cost.
        with_metrics.flush_metrics().await;
        hit_ns.push(t.elapsed().as_nanos() as f64 / HIT_OPS as f64);

        let t = Instant::now();
        for _ in 0..HIT_OPS {
            black_box(no_metrics.complete_with(&request, &control).await.unwrap());
        }
        hit_quiet_ns.push(t.elapsed().as_nanos() as f64 / HIT_OPS as f64);

        let t = Instant::now();
        for _ in 0..HIT_OPS {
            black_box(tiered.complete_with(&request, &control).await.unwrap());
        }
        tier_ns.push(t.elapsed().as_nanos() as f64 / HIT_OPS as f64);
    }
    let s = with_metrics.stats();
    assert_eq!(s.cache_misses, 1, "every measured request was a hit");
    let get = median(get_ns);
    let hit = median(hit_ns);
    let hit_quiet = median(hit_quiet_ns);
    let tier = median(tier_ns);

    println!(
        "## Cache hit path (value {value_len} bytes, prompt 1 KiB, {RUNS} runs x {HIT_OPS} sequential calls, medians)"
    );
    println!();
    println!("| path | µs per call | ratio to plain GET |");
    println!("|---|---:|---:|");
    println!(
        "| plain `GET` of the same value, same connection | {:.1} | 1.00 |",
        get / 1e3
    );
    println!(
        "| hit from Redis, metrics recorded (default) | {:.1} | {:.2} |",
        hit / 1e3,
        hit / get
    );
    println!(
        "| hit from Redis, `record_metrics = false` | {:.1} | {:.2} |",
        hit_quiet / 1e3,
        hit_quiet / get
    );
    println!(
        "| hit from the in-process tier | {:.1} | {:.2} |",
        tier / 1e3,
        tier / get
    );
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
