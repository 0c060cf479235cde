//! Metrics against a real Redis (standalone and Cluster) and the memory backend: the same
//! behaviour on all three, Python's key layout and field types, and Python-written data read
//! back correctly.

mod support;

use artemis::Backend;
use artemis::metrics::{CodeReviewRecord, LlmRequestRecord, PipelineCompletionRecord};
use artemis::store::Store;
use redis::Commands;
use support::{RedisCluster, RedisServer};

fn completion(card: &str, status: &str, cost: f64, duration: f64) -> PipelineCompletionRecord {
    PipelineCompletionRecord {
        card_id: card.into(),
        duration_seconds: duration,
        status: status.into(),
        cost,
        metadata: serde_json::Map::new(),
        at: None,
    }
}

fn llm(provider: &str, model: &str, hit: bool, cost: f64) -> LlmRequestRecord {
    LlmRequestRecord {
        provider: provider.into(),
        model: model.into(),
        prompt_tokens: 100,
        completion_tokens: 50,
        cost: if hit { 0.0 } else { cost },
        cache_hit: hit,
        latency_ms: 20.0,
        saved_cost: if hit { cost } else { 0.0 },
        at: None,
    }
}

/// The behaviour every backend must show.
async fn exercise(store: Backend) {
    store
        .metrics()
        .track_pipeline_completion(&completion("c1", "COMPLETED", 0.5, 10.0))
        .await
        .unwrap();
    store
        .metrics()
        .track_pipeline_completion(&completion("c2", "failed", 0.25, 30.0))
        .await
        .unwrap();
    store
        .metrics()
        .track_llm_request(&llm("openai", "gpt-4o", false, 0.02))
        .await
        .unwrap();
    store
        .metrics()
        .track_llm_request(&llm("openai", "gpt-4o", true, 0.02))
        .await
        .unwrap();
    store
        .metrics()
        .track_llm_request(&llm("anthropic", "claude-sonnet-4-5", false, 0.05))
        .await
        .unwrap();
    store
        .metrics()
        .track_code_review(&CodeReviewRecord {
            developer: "dev-a".into(),
            status: "PASS".into(),
            score: 85,
            critical_issues: 0,
            high_issues: 2,
        })
        .await
        .unwrap();

    let read = store.metrics().read_metrics(7, 10).await.unwrap();
    assert!(read.malformed.is_empty(), "{:?}", read.malformed);
    let m = read.metrics;
    assert_eq!(m.pipelines.completed, 2);
    assert!((m.pipelines.total_cost - 0.75).abs() < 1e-9);
    assert_eq!(m.pipelines.avg_duration, Some(20.0));
    assert_eq!(m.pipelines.by_status.get("completed"), Some(&1));
    assert_eq!(m.pipelines.by_status.get("failed"), Some(&1));
    assert_eq!(m.llm.total_requests, 3);
    assert_eq!(m.llm.cache_hits, 1);
    assert_eq!(m.llm.cache_misses, 2);
    assert_eq!(m.llm.prompt_tokens, 300);
    assert!((m.llm.hit_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert!((m.llm.saved_cost - 0.02).abs() < 1e-9);
    assert!((m.llm.total_cost - 0.07).abs() < 1e-9);
    assert_eq!(m.providers[0].name, "anthropic");
    assert_eq!(m.providers[1].requests, 2);
    assert_eq!(m.models.len(), 2);
    assert_eq!(m.daily.len(), 7);
    let today = m.daily.last().unwrap();
    assert_eq!(today.completions, 2);
    assert!(m.daily[..6].iter().all(|d| d.completions == 0));
    assert_eq!(m.recent.len(), 2);
    assert_eq!(m.recent[0].card_id, "c2", "newest first");
    assert_eq!(m.code_review.developers[0].total_score, 85);
    assert_eq!(m.code_review.by_status.get("pass"), Some(&1));

    // Names that cannot go into a key are refused with a clear error.
    let err = store
        .metrics()
        .track_llm_request(&llm("open\u{1b}ai", "m", false, 0.0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("control characters"), "{err}");
}

#[tokio::test]
async fn memory_backend_behaves() {
    exercise(Backend::memory(Default::default())).await;
}

#[tokio::test]
async fn redis_backend_behaves_and_writes_python_layout() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    exercise(store).await;

    let mut raw = server.raw();
    // Integer fields were written by HINCRBY: Python's int() parses them.
    let total: std::collections::HashMap<String, String> =
        raw.hgetall("artemis:metrics:total").unwrap();
    assert_eq!(total["pipelines_completed"], "2");
    assert_eq!(total["total_cost"].parse::<f64>().unwrap(), 0.75);
    let llm: std::collections::HashMap<String, String> =
        raw.hgetall("artemis:metrics:llm").unwrap();
    for f in [
        "total_requests",
        "prompt_tokens",
        "completion_tokens",
        "cache_hits",
        "cache_misses",
    ] {
        llm[f]
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("{f} = {:?}", llm[f]));
    }
    let status: String = raw.get("artemis:metrics:status:completed").unwrap();
    assert_eq!(status, "1");
    let by_model: String = raw
        .hget("artemis:metrics:llm:model:gpt-4o", "requests")
        .unwrap();
    assert_eq!(by_model, "2");
    let review: String = raw
        .hget("artemis:metrics:code_review:dev-a", "high_issues")
        .unwrap();
    assert_eq!(review, "2");
    // The daily key carries the 30-day TTL, on the local date.
    let today = chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let ttl: i64 = raw.ttl(format!("artemis:metrics:daily:{today}")).unwrap();
    assert!(ttl > 2_591_000 && ttl <= 2_592_000, "ttl {ttl}");
    // Time-series members are the original's JSON with a naive local timestamp.
    let members: Vec<String> = raw
        .zrange("artemis:metrics:timeseries:pipelines", 0, -1)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&members[0]).unwrap();
    for f in [
        "card_id",
        "duration_seconds",
        "status",
        "cost",
        "timestamp",
        "metadata",
    ] {
        assert!(v.get(f).is_some(), "member lacks {f}: {v}");
    }
    let ts = v["timestamp"].as_str().unwrap();
    assert!(!ts.ends_with('Z') && !ts.contains('+'), "{ts}");
}

#[tokio::test]
async fn redis_cluster_behaves() {
    let cluster = RedisCluster::start();
    let store = Backend::redis(cluster.settings()).await.unwrap();
    assert_eq!(store.backend(), "cluster");
    exercise(store).await;
}

#[tokio::test]
async fn python_written_metrics_are_read() {
    let server = RedisServer::start();
    let mut raw = server.raw();
    let today = chrono::Local::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    // Exactly what the Python original writes (no name indexes, no extension fields).
    let _: () = redis::pipe()
        .hincr("artemis:metrics:total", "pipelines_completed", 3)
        .hincr("artemis:metrics:total", "total_cost", 1.5)
        .hincr("artemis:metrics:total", "total_duration", 90.0)
        .hincr(format!("artemis:metrics:daily:{today}"), "completions", 3)
        .hincr(format!("artemis:metrics:daily:{today}"), "cost", 1.5)
        .incr("artemis:metrics:status:completed", 3)
        .hincr("artemis:metrics:llm", "total_requests", 4)
        .hincr("artemis:metrics:llm", "cache_hits", 1)
        .hincr("artemis:metrics:llm", "cache_misses", 3)
        .hincr("artemis:metrics:llm", "total_cost", 0.4)
        .hincr("artemis:metrics:llm:openai", "requests", 4)
        .hincr("artemis:metrics:llm:openai", "cost", 0.4)
        .hincr("artemis:metrics:llm:model:gpt-4o", "requests", 4)
        .hincr("artemis:metrics:code_review:alice", "total_reviews", 2)
        .incr("artemis:metrics:code_review:status:pass", 2)
        .zadd(
            "artemis:metrics:timeseries:pipelines",
            r#"{"card_id": "py-1", "duration_seconds": 30.0, "status": "completed", "cost": 0.5, "timestamp": "2026-11-25T10:00:00.123456", "metadata": {}}"#,
            1.0,
        )
        .zadd("artemis:metrics:timeseries:pipelines", "not json", 2.0)
        .query(&mut raw)
        .unwrap();
    let store = Backend::redis(server.settings()).await.unwrap();
    let read = store.metrics().read_metrics(30, 10).await.unwrap();
    let m = &read.metrics;
    assert_eq!(m.pipelines.completed, 3);
    assert_eq!(m.pipelines.avg_cost, Some(0.5));
    assert_eq!(m.pipelines.by_status.get("completed"), Some(&3));
    assert_eq!(m.llm.hit_rate, Some(0.25));
    assert_eq!(m.providers.len(), 1);
    assert_eq!(m.providers[0].name, "openai");
    assert_eq!(m.models[0].name, "gpt-4o");
    assert_eq!(m.daily.last().unwrap().completions, 3);
    assert_eq!(m.code_review.developers[0].developer, "alice");
    assert_eq!(m.code_review.by_status.get("pass"), Some(&2));
    // The invalid member is skipped and reported, the valid one kept.
    assert_eq!(m.recent.len(), 1);
    assert_eq!(m.recent[0].card_id, "py-1");
    assert_eq!(read.malformed.len(), 1, "{:?}", read.malformed);
}

#[tokio::test]
async fn wrong_types_and_garbage_are_reported_not_fatal() {
    let server = RedisServer::start();
    let mut raw = server.raw();
    let _: () = redis::pipe()
        .set("artemis:metrics:total", "a string, not a hash")
        .hset("artemis:metrics:llm", "total_requests", "lots")
        .hset("artemis:metrics:llm", "cache_hits", "2")
        .set("artemis:metrics:status:completed", "x")
        .query(&mut raw)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("artemis:metrics:llm")
        .arg("completion_tokens")
        .arg(&b"\xff\xfe"[..])
        .query(&mut raw)
        .unwrap();
    let store = Backend::redis(server.settings()).await.unwrap();
    let read = store.metrics().read_metrics(3, 5).await.unwrap();
    assert_eq!(read.metrics.llm.cache_hits, 2);
    let keys: Vec<&str> = read.malformed.iter().map(|m| m.key.as_str()).collect();
    assert!(keys.contains(&"artemis:metrics:total"), "{keys:?}");
    assert!(keys.contains(&"artemis:metrics:llm"), "{keys:?}");
    assert!(
        keys.contains(&"artemis:metrics:status:completed"),
        "{keys:?}"
    );
}

#[tokio::test]
async fn time_series_is_trimmed_by_age_when_retention_is_set() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    settings.metrics.timeseries_retention_days = Some(1);
    let store = Backend::redis(settings).await.unwrap();
    let mut old = completion("old", "completed", 0.0, 1.0);
    old.at = Some(chrono::Utc::now() - chrono::Duration::days(3));
    store
        .metrics()
        .track_pipeline_completion(&old)
        .await
        .unwrap();
    store
        .metrics()
        .track_pipeline_completion(&completion("new", "completed", 0.0, 1.0))
        .await
        .unwrap();
    let mut raw = server.raw();
    let n: i64 = raw.zcard("artemis:metrics:timeseries:pipelines").unwrap();
    assert_eq!(n, 1);
    let read = store.metrics().read_metrics(1, 10).await.unwrap();
    assert_eq!(read.metrics.recent[0].card_id, "new");
}

#[tokio::test]
async fn time_series_is_never_trimmed_by_default() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    let mut old = completion("old", "completed", 0.0, 1.0);
    old.at = Some(chrono::Utc::now() - chrono::Duration::days(400));
    for r in [old, completion("new", "completed", 0.0, 1.0)] {
        store.metrics().track_pipeline_completion(&r).await.unwrap();
    }
    let mut raw = server.raw();
    let n: i64 = raw.zcard("artemis:metrics:timeseries:pipelines").unwrap();
    assert_eq!(
        n, 2,
        "the original keeps every entry; so do we unless told otherwise"
    );
}

#[tokio::test]
async fn memory_time_series_is_trimmed_only_when_retention_is_set() {
    let mut settings = artemis::config::Settings::default();
    let mut old = completion("old", "completed", 0.0, 1.0);
    old.at = Some(chrono::Utc::now() - chrono::Duration::days(40));
    let fresh = completion("new", "completed", 0.0, 1.0);
    for (retention, expect) in [(None, 2), (Some(30), 1)] {
        settings.metrics.timeseries_retention_days = retention;
        let store = Backend::memory(settings.clone());
        for r in [old.clone(), fresh.clone()] {
            store.metrics().track_pipeline_completion(&r).await.unwrap();
        }
        let read = store.metrics().read_metrics(1, 10).await.unwrap();
        assert_eq!(read.metrics.recent.len(), expect, "retention {retention:?}");
    }
}

#[tokio::test]
async fn python_name_scan_walks_whole_once_then_one_step_per_read() {
    let server = RedisServer::start();
    let mut raw = server.raw();
    let _: () = redis::pipe()
        .hincr("artemis:metrics:llm", "total_requests", 1)
        .hincr("artemis:metrics:llm:openai", "requests", 1)
        .query(&mut raw)
        .unwrap();
    let store = Backend::redis(server.settings()).await.unwrap();
    let scans = || -> u64 {
        let stats = server.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let first = store.metrics().read_metrics(1, 1).await.unwrap();
    assert_eq!(first.metrics.providers[0].name, "openai");
    let after_first = scans();
    assert!(after_first > 0);
    for _ in 0..5 {
        let again = store.metrics().read_metrics(1, 1).await.unwrap();
        assert_eq!(again.metrics.providers[0].name, "openai");
    }
    assert_eq!(
        scans(),
        after_first + 5,
        "each later read sends one bounded SCAN step, not a whole walk"
    );
}

/// Metrics written through the handle during an outage land afterwards, in the order they were
/// made together with the tracker writes sharing the buffer, with the day they happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_writes_during_an_outage_land_when_redis_returns() {
    use artemis::buffer::{OutageBuffer, WriteOutcome};
    use artemis::metrics::Metrics;
    use artemis::model::PipelineStatus;
    use artemis::tracker::Tracker;

    let mut server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    let buffer = OutageBuffer::new(store.connection(), 100);
    let tracker = Tracker::with_buffer(store.tracker().clone(), buffer.clone());
    let metrics = Metrics::with_buffer(store.metrics().clone(), buffer.clone());
    assert_eq!(
        metrics
            .track_llm_request(llm("openai", "gpt-4o", false, 0.5))
            .await
            .unwrap(),
        WriteOutcome::Written
    );

    server.kill();
    let started = std::time::Instant::now();
    tracker
        .start_pipeline("outage-card", 1, serde_json::Map::new())
        .await
        .unwrap();
    for hit in [false, true, true] {
        let outcome = metrics
            .track_llm_request(llm("openai", "gpt-4o", hit, 0.25))
            .await
            .unwrap();
        assert_eq!(outcome, WriteOutcome::Buffered);
    }
    metrics
        .track_code_review(CodeReviewRecord {
            developer: "dev-a".into(),
            status: "PASS".into(),
            score: 90,
            critical_issues: 0,
            high_issues: 1,
        })
        .await
        .unwrap();
    tracker
        .complete_pipeline("outage-card", PipelineStatus::Completed, None)
        .await
        .unwrap();
    let written_at = chrono::Utc::now();
    metrics
        .track_pipeline_completion(completion("outage-card", "completed", 0.25, 3.0))
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "outage writes do not stall: {:?}",
        started.elapsed()
    );
    assert_eq!(buffer.stats().pending, 7);
    // Invalid input is refused at once, not buffered to fail later.
    let mut bad = llm("openai", "gpt-4o", false, f64::NAN);
    assert!(metrics.track_llm_request(bad.clone()).await.is_err());
    bad.cost = 0.0;
    bad.model = "bad\u{1b}[31m".into();
    assert!(metrics.track_llm_request(bad).await.is_err());
    assert_eq!(buffer.stats().pending, 7);

    server.start_again();
    assert!(
        buffer
            .wait_drained(std::time::Duration::from_secs(20))
            .await
    );
    let stats = buffer.stats();
    assert_eq!((stats.replayed, stats.dropped, stats.failed), (7, 0, 0));

    // The restarted server is empty: everything in it came from the buffer.
    let read = metrics.read(1, 10).await.unwrap();
    let m = &read.metrics;
    assert_eq!(m.llm.total_requests, 3);
    assert_eq!((m.llm.cache_hits, m.llm.cache_misses), (2, 1));
    assert!((m.llm.total_cost - 0.25).abs() < 1e-9);
    assert!((m.llm.saved_cost - 0.5).abs() < 1e-9);
    assert_eq!(m.pipelines.completed, 1);
    assert_eq!(m.code_review.developers.len(), 1);
    assert_eq!(m.code_review.developers[0].total_reviews, 1);
    assert_eq!(m.recent.len(), 1);
    assert_eq!(m.recent[0].card_id, "outage-card");
    // The time-series score is when the completion was made, not when it was replayed.
    let mut raw = server.raw();
    let scored: Vec<(String, f64)> = raw
        .zrange_withscores("artemis:metrics:timeseries:pipelines", 0, -1)
        .unwrap();
    assert_eq!(scored.len(), 1);
    let lag = written_at.timestamp() as f64 - scored[0].1;
    assert!((-1.0..=2.0).contains(&lag), "score lag {lag}");
    assert!(tracker.get_card("outage-card").await.unwrap().is_some());
}

/// A batch of request records has the effect of writing them one by one, on a server and on a
/// Cluster (where the summed pipeline spans slots), and through the memory backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_requests_equals_one_by_one() {
    let records: Vec<LlmRequestRecord> = (0..50)
        .map(|i| {
            let (provider, model) = match i % 3 {
                0 => ("openai", "gpt-4o"),
                1 => ("anthropic", "claude-sonnet-4-5"),
                _ => ("openai", "gpt-4o-mini"),
            };
            let mut r = llm(provider, model, i % 4 == 0, 0.001 * f64::from(i));
            r.prompt_tokens = 10 + u64::from(i as u32);
            r
        })
        .collect();
    let one_by_one = RedisServer::start();
    let reference = Backend::redis(one_by_one.settings()).await.unwrap();
    for r in &records {
        reference.metrics().track_llm_request(r).await.unwrap();
    }
    let want = reference
        .metrics()
        .read_metrics(1, 0)
        .await
        .unwrap()
        .metrics;
    assert_eq!(want.llm.total_requests, 50);

    let batched = RedisServer::start();
    let cluster = RedisCluster::start();
    let stores = [
        Backend::redis(batched.settings()).await.unwrap(),
        Backend::redis(cluster.settings()).await.unwrap(),
        Backend::memory(artemis::config::Settings::default()),
    ];
    for store in stores {
        let backend = store.backend().to_owned();
        store
            .metrics()
            .track_llm_requests(&records[..20])
            .await
            .unwrap();
        store
            .metrics()
            .track_llm_requests(&records[20..])
            .await
            .unwrap();
        let got = store.metrics().read_metrics(1, 0).await.unwrap().metrics;
        let (a, b) = (&got.llm, &want.llm);
        assert_eq!(
            (
                a.total_requests,
                a.cache_hits,
                a.cache_misses,
                a.prompt_tokens,
                a.completion_tokens
            ),
            (
                b.total_requests,
                b.cache_hits,
                b.cache_misses,
                b.prompt_tokens,
                b.completion_tokens
            ),
            "{backend}"
        );
        for (x, y) in [
            (a.total_cost, b.total_cost),
            (a.saved_cost, b.saved_cost),
            (a.latency_ms_total, b.latency_ms_total),
        ] {
            assert!((x - y).abs() < 1e-9, "{backend}: {x} vs {y}");
        }
        for (mine, theirs) in [
            (&got.providers, &want.providers),
            (&got.models, &want.models),
        ] {
            assert_eq!(mine.len(), theirs.len());
            for (m, t) in mine.iter().zip(theirs.iter()) {
                assert_eq!((&m.name, m.requests), (&t.name, t.requests));
                assert!((m.cost - t.cost).abs() < 1e-9);
            }
        }
    }
    // One pipeline per batch on a server: the commands depend on the keys, not on the records.
    let calls = |server: &RedisServer| -> u64 {
        let info = server.cli(&["INFO", "commandstats"]);
        info.lines()
            .filter(|l| l.starts_with("cmdstat_hincrby"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    // Per batch: at most 20 on the original's hashes, and on each of its two time buckets
    // (minute, hour) at most 6 measures per provider (2) and 2 per model (3).
    let per_batch = 20 + 2 * (2 * 6 + 3 * 2);
    assert!(calls(&batched) <= 2 * per_batch, "{}", calls(&batched));
    assert!(calls(&one_by_one) >= 50 * 11);
}

/// A write sent twice with the same operation id (a replay after a lost reply) counts once, on
/// a server (also after its script cache was flushed, as after a restart) and on a Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_write_counts_once() {
    use artemis::metrics::MetricsWrite;
    let server = RedisServer::start();
    let cluster = RedisCluster::start();
    let stores = [
        ("server", Backend::redis(server.settings()).await.unwrap()),
        ("cluster", Backend::redis(cluster.settings()).await.unwrap()),
    ];
    for (name, store) in stores {
        let writes = [
            MetricsWrite::Requests(vec![
                llm("openai", "gpt-4o", false, 0.5),
                llm("anthropic", "claude-sonnet-4-5", true, 0.25),
            ]),
            MetricsWrite::Completion(completion("card-1", "completed", 0.5, 10.0)),
            MetricsWrite::Review(CodeReviewRecord {
                developer: "dev-a".into(),
                status: "pass".into(),
                score: 90,
                critical_issues: 0,
                high_issues: 1,
            }),
        ];
        for (i, w) in writes.iter().enumerate() {
            let id = format!("op-{i}");
            store.metrics().track_once(&id, w).await.unwrap();
            if name == "server" && i == 1 {
                server.cli(&["SCRIPT", "FLUSH"]);
            }
            store.metrics().track_once(&id, w).await.unwrap();
        }
        // A new id is a new write.
        store
            .metrics()
            .track_once("op-new", &writes[0])
            .await
            .unwrap();
        let m = store.metrics().read_metrics(1, 10).await.unwrap().metrics;
        assert_eq!(m.llm.total_requests, 4, "{name}: {:?}", m.llm);
        assert_eq!((m.llm.cache_hits, m.llm.cache_misses), (2, 2), "{name}");
        assert!((m.llm.total_cost - 1.0).abs() < 1e-9, "{name}");
        assert_eq!(m.pipelines.completed, 1, "{name}");
        assert_eq!(m.recent.len(), 1, "{name}");
        assert_eq!(m.code_review.developers[0].total_reviews, 1, "{name}");
        let by_provider: Vec<(String, i64)> = m
            .providers
            .iter()
            .map(|b| (b.name.clone(), b.requests))
            .collect();
        assert_eq!(
            by_provider,
            [("openai".to_string(), 2), ("anthropic".to_string(), 2)],
            "{name}"
        );
    }
    // The markers expire.
    let ttl: i64 = server
        .cli(&["--scan", "--pattern", "artemis:metrics::op:*"])
        .lines()
        .next()
        .map(|k| server.cli(&["TTL", k]).parse().unwrap())
        .unwrap();
    assert!((1..=3600).contains(&ttl), "{ttl}");
}
