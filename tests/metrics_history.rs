//! The metrics' time buckets against a real Redis (and a 3-master Cluster): written inside the
//! once-per-operation guard, bounded by EXPIRE and by period, read back in one pipelined round
//! trip, filled by the rate limiter's counts, and absent for a Python-only fleet (which the
//! readers then report as "not found" so the charts can fall back).

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::client::Artemis;
use artemis::limiter::Limits;
use artemis::metrics::{HistoryWindow, LlmRequestRecord, MetricsWrite, Resolution, Series};
use chrono::Utc;
use support::{RedisCluster, RedisServer};

fn request(provider: &str, model: &str, hit: bool, cost: f64) -> LlmRequestRecord {
    LlmRequestRecord {
        provider: provider.into(),
        model: model.into(),
        prompt_tokens: 100,
        completion_tokens: 50,
        cost,
        cache_hit: hit,
        latency_ms: 10.0,
        saved_cost: 0.0,
        at: Some(Utc::now()),
    }
}

fn bucket_keys(server: &RedisServer) -> Vec<String> {
    let mut keys: Vec<String> = server
        .cli(&["--scan", "--pattern", "artemis:metrics::bucket:*"])
        .lines()
        .map(str::to_owned)
        .collect();
    keys.sort();
    keys
}

fn stat(server: &RedisServer, section: &str, field: &str) -> u64 {
    server
        .cli(&["INFO", section])
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_count_a_replayed_write_once() {
    let server = RedisServer::start();
    let cluster = RedisCluster::start();
    for (name, settings) in [
        ("server", server.settings()),
        ("cluster", cluster.settings()),
    ] {
        let store = Backend::redis(settings).await.unwrap();
        let write = MetricsWrite::Requests(vec![
            request("openai", "gpt-4o", false, 0.5),
            request("openai", "gpt-4o", true, 0.0),
            request("anthropic", "claude-sonnet-4-5", false, 0.25),
        ]);
        // Sent, reply lost, sent again with the same id: applied once.
        store.metrics().track_once("op-1", &write).await.unwrap();
        store.metrics().track_once("op-1", &write).await.unwrap();
        let series = store
            .metrics()
            .read_history(HistoryWindow::Minutes15, Utc::now())
            .await
            .unwrap()
            .series;
        assert!(series.found, "{name}");
        let now = series.buckets.last().unwrap();
        let openai = &now.providers["openai"];
        assert_eq!(
            (openai.requests, openai.hits, openai.misses),
            (2, 1, 1),
            "{name}"
        );
        assert!((openai.cost - 0.5).abs() < 1e-9, "{name}");
        assert_eq!(openai.prompt_tokens, 200, "{name}");
        assert_eq!(now.models["claude-sonnet-4-5"].requests, 1, "{name}");
        assert!((series.cost() - 0.75).abs() < 1e-9, "{name}");
        // The hour bucket holds the same, once.
        let hours = store
            .metrics()
            .read_history(HistoryWindow::Hours24, Utc::now())
            .await
            .unwrap()
            .series;
        assert_eq!(
            hours.buckets.last().unwrap().providers["openai"].requests,
            2
        );
    }
}

#[tokio::test]
async fn buckets_expire_after_their_retention() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    store
        .metrics()
        .track_once(
            "op",
            &MetricsWrite::Requests(vec![request("openai", "m", false, 0.1)]),
        )
        .await
        .unwrap();
    let keys = bucket_keys(&server);
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let ttl: i64 = server.cli(&["TTL", &key]).parse().unwrap();
        let resolution = if key.contains("::bucket:m:") {
            Resolution::Minute
        } else {
            Resolution::Hour
        };
        let most = resolution.ttl_seconds() + resolution.seconds();
        assert!(
            ttl > resolution.ttl_seconds() - 5 && ttl <= most,
            "{key}: {ttl}"
        );
    }
}

#[tokio::test]
async fn bucket_keys_grow_with_periods_not_with_requests() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    let at = Utc::now();
    for i in 0..40 {
        let batch: Vec<LlmRequestRecord> = (0..25)
            .map(|j| {
                let mut r = request(
                    &format!("p{}", j % 3),
                    &format!("m{}", j % 4),
                    j % 2 == 0,
                    0.01,
                );
                r.at = Some(at);
                r
            })
            .collect();
        store
            .metrics()
            .track_once(&format!("op-{i}"), &MetricsWrite::Requests(batch))
            .await
            .unwrap();
    }
    // 1000 requests in one minute: one minute and one hour bucket.
    assert_eq!(bucket_keys(&server).len(), 2);
    // Fields: per provider at most 6 measures, per model 2.
    let minute = format!(
        "artemis:metrics::bucket:m:{}",
        Resolution::Minute.bucket_start(at)
    );
    let fields: usize = server.cli(&["HLEN", &minute]).parse().unwrap();
    assert!(fields <= 3 * 6 + 4 * 2, "{fields}");
    let series = store
        .metrics()
        .read_history(HistoryWindow::Minutes15, Utc::now())
        .await
        .unwrap()
        .series;
    let requests: i64 = series
        .buckets
        .iter()
        .flat_map(|b| b.providers.values())
        .map(|f| f.requests)
        .sum();
    assert_eq!(requests, 1000);
}

#[tokio::test]
async fn history_is_read_in_one_pipelined_round_trip() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    store
        .metrics()
        .track_once(
            "op",
            &MetricsWrite::Requests(vec![request("openai", "m", true, 0.0)]),
        )
        .await
        .unwrap();
    // Warm the connection (with a read that holds no bucket, so the one measured is a first
    // read of every bucket), then measure what one more read costs the server: its socket
    // reads (one per round trip of a small pipeline) beside what the INFO calls themselves
    // cost.
    store.metrics().read_metrics(1, 1).await.unwrap();
    let r0 = stat(&server, "stats", "total_reads_processed:");
    let r1 = stat(&server, "stats", "total_reads_processed:");
    let info_cost = r1 - r0;
    let hgetall0 = stat(&server, "commandstats", "cmdstat_hgetall:calls=");
    let series = store
        .metrics()
        .read_history(HistoryWindow::Hour1, Utc::now())
        .await
        .unwrap()
        .series;
    let hgetall1 = stat(&server, "commandstats", "cmdstat_hgetall:calls=");
    let r2 = stat(&server, "stats", "total_reads_processed:");
    assert_eq!(series.buckets.len(), 60);
    assert_eq!(
        hgetall1 - hgetall0,
        60,
        "one HGETALL per minute of the window"
    );
    // Three INFO calls ran after r1 was taken (the two commandstats and r2's own).
    let reads = (r2 - r1).saturating_sub(3 * info_cost);
    assert!(reads <= 2, "60 bucket reads took {reads} socket reads");
}

/// Buckets that ended more than the grace margin ago are held after one read.
#[tokio::test]
async fn a_second_read_fetches_only_the_open_buckets() {
    let server = RedisServer::start();
    let store = Backend::redis(server.settings()).await.unwrap();
    let read = || {
        store
            .metrics()
            .read_history(HistoryWindow::Hour1, Utc::now())
    };
    read().await.unwrap();
    let hgetall0 = stat(&server, "commandstats", "cmdstat_hgetall:calls=");
    let series = read().await.unwrap().series;
    let hgetall1 = stat(&server, "commandstats", "cmdstat_hgetall:calls=");
    assert_eq!(series.buckets.len(), 60);
    // The current minute and those within the two-minute grace (four, if a minute turned
    // between the reads).
    assert!(
        hgetall1 - hgetall0 <= 4,
        "{} HGETALL for a window of 60 closed and open minutes",
        hgetall1 - hgetall0
    );
}

/// A write into a bucket already held (the outage buffer replays with the original time)
/// shows once the held buckets are read again: within `tracker.full_read_interval_seconds`
/// plus one read.
#[tokio::test]
async fn a_late_write_to_a_closed_bucket_shows_within_the_reread_interval() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    settings.tracker.full_read_interval_seconds = 2;
    let store = Backend::redis(settings).await.unwrap();
    let read = || {
        store
            .metrics()
            .read_history(HistoryWindow::Hour1, Utc::now())
    };
    assert!(!read().await.unwrap().series.found);
    let mut late = request("openai", "m", false, 0.5);
    late.at = Some(Utc::now() - chrono::Duration::minutes(10));
    store
        .metrics()
        .track_once("late", &MetricsWrite::Requests(vec![late]))
        .await
        .unwrap();
    let written = std::time::Instant::now();
    loop {
        if read().await.unwrap().series.found {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(4),
            "the late write was not read within the interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What the limiter admits and refuses lands in the buckets (through the metrics' write path)
/// and in the snapshot's rate-limit rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_admissions_refusals_and_waits_are_counted_per_key() {
    let server = RedisServer::start();
    let artemis = Artemis::builder()
        .settings(server.settings())
        .wait_for_connection()
        .build()
        .await
        .unwrap();
    let limiter = artemis.limiter();
    let limit = limiter
        .limit(
            "search",
            "user-1",
            Limits::requests(2, Duration::from_secs(60)),
        )
        .unwrap();
    let mut refused = 0;
    for _ in 0..5 {
        if !limiter.check(&limit, 0).await.unwrap().is_admitted() {
            refused += 1;
        }
    }
    assert_eq!(refused, 3);
    // A short window: one acquire waits for its slot.
    let short = limiter
        .limit(
            "fast",
            "user-1",
            Limits::requests(1, Duration::from_millis(300)),
        )
        .unwrap();
    limiter.acquire(&short, 0).await.unwrap().keep();
    limiter.acquire(&short, 0).await.unwrap().keep();
    // Counts are written about once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (figures, waited) = loop {
        let series = artemis
            .metrics()
            .read_history(HistoryWindow::Minutes15, Utc::now())
            .await
            .unwrap()
            .series;
        let sum = |key: &str| {
            series
                .limit_recent(key, 900.0, Utc::now())
                .map(|(f, _)| f)
                .unwrap_or_default()
        };
        let (a, b) = (sum(limit.key()), sum(short.key()));
        if (a.admitted + a.refused >= 5 && b.waited >= 1) || std::time::Instant::now() > deadline {
            break (a, b);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((figures.admitted, figures.refused), (2, 3));
    assert_eq!(waited.waited, 1, "{waited:?}");
    assert!(waited.refused >= 1 && waited.wait_ms > 0, "{waited:?}");
    let snap = artemis.snapshot().await.unwrap();
    let row = snap.limits.iter().find(|l| l.key == limit.key()).unwrap();
    let activity = row
        .activity
        .expect("the snapshot carries the key's activity");
    assert_eq!((activity.admitted, activity.refused), (2, 3));
    // The minute that holds the counts and, when it began less than a minute ago, the one
    // before it.
    assert!((60..120).contains(&activity.over_seconds), "{activity:?}");
}

/// A fleet of Python processes writes the original's metrics and no buckets: the history read
/// says nothing was found (the charts then show what they saw since start), and the readers of
/// the original do not see our buckets either.
#[tokio::test]
async fn a_python_only_fleet_has_no_history_and_ours_is_invisible_to_it() {
    support::python::require_redis_py();
    let server = RedisServer::start();
    support::python::run_python(
        "original/metrics.py",
        &server.url(),
        &[
            "track_llm_request",
            r#"{"provider": "openai", "model": "gpt-4o", "prompt_tokens": 100,
                "completion_tokens": 50, "cost": 0.01}"#,
        ],
    );
    let store = Backend::redis(server.settings()).await.unwrap();
    let read = store
        .metrics()
        .read_history(HistoryWindow::Hour1, Utc::now())
        .await
        .unwrap();
    assert!(!read.series.found);
    assert!(read.malformed.is_empty());
    assert_eq!(read.series.buckets.len(), 60);
    // Now ours writes too: the original's summary reads the same totals as before plus ours,
    // with no bucket field or key counted anywhere.
    store
        .metrics()
        .track_once(
            "op",
            &MetricsWrite::Requests(vec![request("openai", "gpt-4o", true, 0.0)]),
        )
        .await
        .unwrap();
    assert_eq!(bucket_keys(&server).len(), 2);
    let totals =
        support::python::run_python("original/metrics.py", &server.url(), &["get_total_metrics"]);
    let v: serde_json::Value = serde_json::from_str(totals.trim()).unwrap();
    assert_eq!(v["llm"]["total_requests"], 2, "{v}");
    assert_eq!(v["llm"]["cache_hits"], 1, "{v}");
    let provider = support::python::run_python(
        "original/metrics.py",
        &server.url(),
        &["get_provider_metrics", r#"{"provider": "openai"}"#],
    );
    let v: serde_json::Value = serde_json::from_str(provider.trim()).unwrap();
    assert_eq!(v["requests"], 2, "{v}");
}

/// The memory backend (the demo's) keeps the same buckets, applied the same way, and reports
/// none before the first write.
#[tokio::test]
async fn the_memory_backend_keeps_the_same_buckets() {
    let store = Backend::memory(artemis::config::Settings::default());
    let before = store
        .metrics()
        .read_history(HistoryWindow::Hour1, Utc::now())
        .await
        .unwrap();
    assert!(!before.series.found);
    store
        .metrics()
        .track_once(
            "op",
            &MetricsWrite::Requests(vec![
                request("openai", "gpt-4o", false, 0.5),
                request("openai", "gpt-4o", true, 0.0),
            ]),
        )
        .await
        .unwrap();
    store
        .metrics()
        .track_limit_activity(&[artemis::metrics::LimitActivityRecord {
            key: "artemis:ratelimit:search:u".into(),
            at: Utc::now(),
            admitted: 4,
            refused: 2,
            waited: 1,
            wait_ms: 300,
        }])
        .await
        .unwrap();
    let series = store
        .metrics()
        .read_history(HistoryWindow::Hour1, Utc::now())
        .await
        .unwrap()
        .series;
    assert!(series.found);
    let now = series.buckets.last().unwrap();
    assert_eq!(now.hit_rate(), Some(0.5));
    assert!((series.cost() - 0.5).abs() < 1e-9);
    let (limits, over) = series
        .limit_recent("artemis:ratelimit:search:u", 60.0, Utc::now())
        .unwrap();
    assert_eq!((limits.admitted, limits.refused, limits.waited), (4, 2, 1));
    assert!((60..120).contains(&over), "{over}");
}

/// Just after a minute begins, a key's recent activity still holds what happened a moment
/// before, in the minute that just ended.
#[test]
fn a_keys_recent_activity_spans_the_minute_that_just_ended() {
    let now = Utc::now();
    let mut series = Series::empty(HistoryWindow::Minutes15, now);
    let n = series.buckets.len();
    let current = series.buckets[n - 1].start;
    series.buckets[n - 2].limits.insert(
        "k".into(),
        artemis::metrics::LimitFigures {
            admitted: 2,
            refused: 3,
            ..Default::default()
        },
    );
    let at = current + chrono::Duration::seconds(1);
    let (f, over) = series.limit_recent("k", 60.0, at).unwrap();
    assert_eq!((f.admitted, f.refused), (2, 3));
    assert_eq!(over, 61);
    // 59 s into the current minute, a 30 s window lies inside it.
    let later = current + chrono::Duration::seconds(59);
    let (f, over) = series.limit_recent("k", 30.0, later).unwrap();
    assert_eq!((f.admitted, f.refused), (0, 0));
    assert_eq!(over, 59);
}
