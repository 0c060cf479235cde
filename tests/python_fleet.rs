//! Living beside a Python Artemis fleet: the original's algorithms (re-stated in redis-py under
//! `tests/python/original/`, as `shared/PROTOCOL.md` gives them) and this crate on one Redis.
//! Both directions: what Python writes we show exactly; what we write, Python's readers read as
//! if another Python process had written it; and nothing we add is counted, read or deleted by
//! a pattern the original scans. Each test starts its own redis-server.

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::cache::{CacheKey, CacheScope, LlmResponse, Usage, entry};
use artemis::metrics::{CodeReviewRecord, LlmRequestRecord, PipelineCompletionRecord};
use artemis::model::{PipelineEvent, PipelineStatus, StageStatus};
use artemis::tracker::{StageUpdate, Tracker};
use futures::StreamExt;
use redis::Commands;
use serde_json::{Value, json};
use support::RedisServer;
use support::python::run_python;

/// Calls `method` of one of the original's modules with keyword arguments; its JSON result.
fn py(server: &RedisServer, module: &str, method: &str, kwargs: Value) -> Value {
    let out = run_python(
        &format!("original/{module}.py"),
        &server.url(),
        &[method, &kwargs.to_string()],
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{module}.{method}: {e}: {out}"))
}

async fn backend(server: &RedisServer) -> Backend {
    Backend::redis(server.settings()).await.unwrap()
}

async fn tracker(server: &RedisServer) -> Tracker {
    support::tracker(server.settings()).await
}

fn completion(
    card: &str,
    status: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> PipelineCompletionRecord {
    PipelineCompletionRecord {
        card_id: card.into(),
        duration_seconds: 12.5,
        status: status.into(),
        cost: 0.25,
        metadata: serde_json::Map::new(),
        at,
    }
}

fn request(provider: &str, model: &str, hit: bool) -> LlmRequestRecord {
    LlmRequestRecord {
        provider: provider.into(),
        model: model.into(),
        prompt_tokens: 100,
        completion_tokens: 20,
        cost: if hit { 0.0 } else { 0.01 },
        cache_hit: hit,
        latency_ms: 10.0,
        saved_cost: if hit { 0.01 } else { 0.0 },
        at: None,
    }
}

fn answer(content: &str) -> Vec<u8> {
    entry::encode(&LlmResponse {
        content: content.into(),
        model: "gpt-4o-2024-08-06".into(),
        provider: "openai".into(),
        usage: Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            total_tokens: 5,
        },
        raw_response: json!({"id": "r"}),
    })
}

fn hash_of(n: u32) -> String {
    format!("{n:064x}")
}

// ---- 3. completion clears current_stage ----

#[tokio::test]
async fn a_card_we_complete_is_in_no_stage_for_python_readers() {
    let server = RedisServer::start();
    let t = tracker(&server).await;
    t.start_pipeline("c1", 2, serde_json::Map::new())
        .await
        .unwrap();
    t.update_stage("c1", "deployment", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    t.complete_pipeline("c1", PipelineStatus::Completed, None)
        .await
        .unwrap();
    let doc = py(
        &server,
        "tracker",
        "get_pipeline_status",
        json!({"card_id": "c1"}),
    );
    assert_eq!(doc["current_stage"], Value::Null, "{doc}");
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["completed_stages"], 1);
    assert!(doc["duration_seconds"].is_f64(), "{doc}");
    assert!(doc["end_time"].is_string(), "{doc}");
}

#[tokio::test]
async fn a_card_python_completes_shows_no_current_stage() {
    let server = RedisServer::start();
    py(
        &server,
        "tracker",
        "start_pipeline",
        json!({"card_id": "p1", "total_stages": 2}),
    );
    py(
        &server,
        "tracker",
        "update_stage_status",
        json!({"card_id": "p1", "stage_name": "deployment", "status": "running"}),
    );
    py(
        &server,
        "tracker",
        "complete_pipeline",
        json!({"card_id": "p1"}),
    );
    let card = tracker(&server)
        .await
        .get_card("p1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(card.pipeline.current_stage, None);
    assert_eq!(card.pipeline.status, PipelineStatus::Completed);
    assert_eq!(card.stages.len(), 1, "the stage document stays");
}

// ---- 8. no event for a card without a document ----

#[tokio::test]
async fn completing_a_card_without_a_document_publishes_and_writes_nothing() {
    let server = RedisServer::start();
    let t = tracker(&server).await;
    let mut events = t.subscribe_all().await.unwrap();
    // Python's complete_pipeline on an unknown card: nothing. Ours must match it.
    py(
        &server,
        "tracker",
        "complete_pipeline",
        json!({"card_id": "ghost"}),
    );
    t.complete_pipeline("ghost", PipelineStatus::Completed, None)
        .await
        .unwrap();
    // One connection delivers events in order: the next one must be this marker.
    t.start_pipeline("marker", 1, serde_json::Map::new())
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("stream open")
        .expect("a valid event");
    assert!(
        matches!(&first, PipelineEvent::PipelineStarted { card_id, .. } if card_id == "marker"),
        "{first:?}"
    );
    let keys = artemis::keys::KeySpace::default();
    assert_eq!(server.cli(&["EXISTS", &keys.pipeline("ghost")]), "0");
    assert_eq!(server.cli(&["EXISTS", &keys.event_history("ghost")]), "0");
    assert!(t.history("ghost", None, 10).await.unwrap().is_empty());
}

// ---- 7. status text as given, counters lowercased ----

#[tokio::test]
async fn python_status_text_is_shown_as_written() {
    let server = RedisServer::start();
    py(
        &server,
        "metrics",
        "track_pipeline_completion",
        json!({"card_id": "p1", "duration_seconds": 3.0, "status": "COMPLETED", "cost": 0.5}),
    );
    let read = backend(&server)
        .await
        .metrics()
        .read_metrics(1, 10)
        .await
        .unwrap();
    assert_eq!(read.metrics.recent[0].status, "COMPLETED");
    assert_eq!(read.metrics.pipelines.by_status.get("completed"), Some(&1));
}

#[tokio::test]
async fn our_status_text_reaches_python_readers_as_given() {
    let server = RedisServer::start();
    let b = backend(&server).await;
    b.metrics()
        .track_pipeline_completion(&completion("c1", "COMPLETED", None))
        .await
        .unwrap();
    let recent = py(&server, "metrics", "get_recent_pipelines", json!({}));
    assert_eq!(recent[0]["status"], "COMPLETED", "{recent}");
    assert_eq!(
        py(
            &server,
            "metrics",
            "get_status_count",
            json!({"status": "completed"})
        ),
        1
    );
    assert_eq!(
        server.cli(&["GET", "artemis:metrics:status:completed"]),
        "1"
    );
    // Our own reader, too, keeps the text and counts it under the lowercased key.
    let read = b.metrics().read_metrics(1, 10).await.unwrap();
    assert_eq!(read.metrics.recent[0].status, "COMPLETED");
    assert_eq!(read.metrics.pipelines.by_status.get("completed"), Some(&1));
}

// ---- 4. names only Python wrote stay visible ----

#[tokio::test]
async fn names_only_python_wrote_are_shown_beside_ours() {
    let server = RedisServer::start();
    let b = backend(&server).await;
    for _ in 0..2 {
        py(
            &server,
            "metrics",
            "track_llm_request",
            json!({"provider": "anthropic", "model": "claude-py", "prompt_tokens": 5,
                   "completion_tokens": 1, "cost": 0.02}),
        );
    }
    py(
        &server,
        "metrics",
        "track_code_review",
        json!({"developer": "py-dev", "status": "NEEDS_WORK", "score": 60}),
    );
    py(
        &server,
        "metrics",
        "track_pipeline_completion",
        json!({"card_id": "p1", "duration_seconds": 1.0, "status": "timeout"}),
    );
    // We write names of our own (so our indexes are not empty).
    b.metrics()
        .track_llm_requests(&[
            request("openai", "gpt-4o", false),
            request("openai", "gpt-4o", true),
            request("openai", "gpt-4o-mini", false),
        ])
        .await
        .unwrap();
    b.metrics()
        .track_code_review(&CodeReviewRecord {
            developer: "rs-dev".into(),
            status: "PASS".into(),
            score: 90,
            critical_issues: 0,
            high_issues: 1,
        })
        .await
        .unwrap();
    b.metrics()
        .track_pipeline_completion(&completion("c1", "completed", None))
        .await
        .unwrap();

    let m = b.metrics().read_metrics(1, 10).await.unwrap().metrics;
    assert_eq!(m.llm.total_requests, 5);
    let model_sum: i64 = m.models.iter().map(|r| r.requests).sum();
    let provider_sum: i64 = m.providers.iter().map(|r| r.requests).sum();
    assert_eq!(model_sum, m.llm.total_requests, "{:?}", m.models);
    assert_eq!(provider_sum, m.llm.total_requests, "{:?}", m.providers);
    let claude = m.models.iter().find(|r| r.name == "claude-py").unwrap();
    assert_eq!(claude.requests, 2);
    assert!((claude.cost - 0.04).abs() < 1e-9);
    let devs: Vec<_> = m
        .code_review
        .developers
        .iter()
        .map(|d| d.developer.as_str())
        .collect();
    assert_eq!(devs, ["py-dev", "rs-dev"]);
    assert_eq!(m.code_review.by_status.get("needs_work"), Some(&1));
    assert_eq!(m.code_review.by_status.get("pass"), Some(&1));
    assert_eq!(m.pipelines.by_status.get("timeout"), Some(&1));
    assert_eq!(m.pipelines.by_status.get("completed"), Some(&1));
}

#[tokio::test]
async fn a_name_python_adds_later_appears_by_the_next_scan() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    settings.metrics.scan_interval_seconds = 0;
    let b = Backend::redis(settings).await.unwrap();
    b.metrics()
        .track_llm_request(&request("openai", "gpt-4o", false))
        .await
        .unwrap();
    assert_eq!(
        b.metrics()
            .read_metrics(1, 1)
            .await
            .unwrap()
            .metrics
            .models
            .len(),
        1
    );
    py(
        &server,
        "metrics",
        "track_llm_request",
        json!({"provider": "openai", "model": "gpt-py", "prompt_tokens": 1,
               "completion_tokens": 1, "cost": 0.0}),
    );
    let m = b.metrics().read_metrics(1, 1).await.unwrap().metrics;
    let names: Vec<_> = m.models.iter().map(|r| r.name.as_str()).collect();
    assert!(names.contains(&"gpt-py"), "{names:?}");
    assert_eq!(m.models.iter().map(|r| r.requests).sum::<i64>(), 2);
}

#[tokio::test]
async fn python_readers_read_our_metrics_as_their_own() {
    let server = RedisServer::start();
    let b = backend(&server).await;
    b.metrics()
        .track_llm_requests(&[
            request("openai", "gpt-4o", false),
            request("openai", "gpt-4o", true),
        ])
        .await
        .unwrap();
    b.metrics()
        .track_pipeline_completion(&completion("c1", "completed", None))
        .await
        .unwrap();
    b.metrics()
        .track_code_review(&CodeReviewRecord {
            developer: "rs-dev".into(),
            status: "PASS".into(),
            score: 90,
            critical_issues: 1,
            high_issues: 2,
        })
        .await
        .unwrap();
    let total = py(&server, "metrics", "get_total_metrics", json!({}));
    assert_eq!(total["pipelines"]["total_completed"], 1);
    assert_eq!(total["pipelines"]["average_duration"], 12.5);
    assert_eq!(total["llm"]["total_requests"], 2);
    assert_eq!(total["llm"]["cache_hit_rate_percent"], 50.0);
    assert_eq!(
        py(
            &server,
            "metrics",
            "get_model_metrics",
            json!({"model": "gpt-4o"})
        ),
        json!({"requests": 2, "cost": 0.01})
    );
    assert_eq!(
        py(
            &server,
            "metrics",
            "get_developer_metrics",
            json!({"developer": "rs-dev"})
        ),
        json!({"total_reviews": 1, "total_score": 90, "critical_issues": 1, "high_issues": 2})
    );
    assert_eq!(
        py(
            &server,
            "metrics",
            "get_review_status_count",
            json!({"status": "pass"})
        ),
        1
    );
    assert_eq!(
        py(&server, "metrics", "get_daily_metrics", json!({}))["completions"],
        1
    );
}

// ---- 9. retention keeps the original's history ----

#[tokio::test]
async fn python_history_older_than_a_month_is_kept_by_default() {
    let server = RedisServer::start();
    let forty_days_ago = chrono::Utc::now().timestamp() as f64 - 40.0 * 86_400.0;
    py(
        &server,
        "metrics",
        "track_pipeline_completion",
        json!({"card_id": "old", "duration_seconds": 1.0, "status": "completed",
               "at": forty_days_ago}),
    );
    backend(&server)
        .await
        .metrics()
        .track_pipeline_completion(&completion("new", "completed", None))
        .await
        .unwrap();
    let all = py(&server, "metrics", "get_all_pipelines", json!({}));
    let cards: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0]["card_id"].clone())
        .collect();
    assert_eq!(cards, [json!("old"), json!("new")]);
    assert_eq!(all[0][1], forty_days_ago, "the original's entry, untouched");
}

#[tokio::test]
async fn trimming_when_set_removes_only_entries_older_than_the_setting() {
    let server = RedisServer::start();
    let now = chrono::Utc::now().timestamp() as f64;
    for (card, days) in [("forty", 40.0), ("twenty", 20.0)] {
        py(
            &server,
            "metrics",
            "track_pipeline_completion",
            json!({"card_id": card, "duration_seconds": 1.0, "status": "completed",
                   "at": now - days * 86_400.0}),
        );
    }
    let mut settings = server.settings();
    settings.metrics.timeseries_retention_days = Some(30);
    Backend::redis(settings)
        .await
        .unwrap()
        .metrics()
        .track_pipeline_completion(&completion("new", "completed", None))
        .await
        .unwrap();
    let all = py(&server, "metrics", "get_all_pipelines", json!({}));
    let cards: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0]["card_id"].clone())
        .collect();
    assert_eq!(cards, [json!("twenty"), json!("new")]);
}

// ---- 5. our extension keys are out of the original's patterns ----

/// Writes what a busy process of ours leaves in Redis: plain and namespaced cache entries,
/// two live leases, a card with stages (index, history), metrics (indexes, replay markers).
async fn write_everything_we_add(server: &RedisServer) -> Backend {
    let b = backend(server).await;
    let cache = b.cache();
    let ttl = Duration::from_secs(600);
    for n in 0..2 {
        let key = CacheKey::new(hash_of(n), None).unwrap();
        cache
            .cache_put(&key, &answer("plain"), ttl, None)
            .await
            .unwrap();
    }
    for n in 0..3 {
        let key = CacheKey::new(hash_of(n), Some("team-a")).unwrap();
        cache
            .cache_put(&key, &answer("ns"), ttl, None)
            .await
            .unwrap();
    }
    let lease_ttl = Duration::from_secs(60);
    let plain_leased = CacheKey::new(hash_of(7), None).unwrap();
    let ns_leased = CacheKey::new(hash_of(8), Some("team-a")).unwrap();
    assert!(
        cache
            .cache_try_lease(&plain_leased, "tok1", lease_ttl)
            .await
            .unwrap()
    );
    assert!(
        cache
            .cache_try_lease(&ns_leased, "tok2", lease_ttl)
            .await
            .unwrap()
    );

    let t = Tracker::new(b.tracker().clone());
    t.start_pipeline("c1", 2, serde_json::Map::new())
        .await
        .unwrap();
    t.update_stage("c1", "dev", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    t.update_stage("c1", "test", StageUpdate::new(StageStatus::Running))
        .await
        .unwrap();
    let m = artemis::metrics::Metrics::new(b.metrics().clone());
    m.track_llm_request(request("openai", "gpt-4o", false))
        .await
        .unwrap();
    m.track_pipeline_completion(completion("c1", "completed", None))
        .await
        .unwrap();
    b
}

#[tokio::test]
async fn python_cache_stats_count_only_plain_entries() {
    let server = RedisServer::start();
    write_everything_we_add(&server).await;
    py(
        &server,
        "cache",
        "set",
        json!({"messages": [{"role": "user", "content": "Hello"}], "model": "gpt-4o",
               "content": "Hi", "response_model": "gpt-4o", "provider": "openai",
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
    );
    let stats = py(&server, "cache", "get_stats", json!({}));
    assert_eq!(
        stats["cached_responses"], 3,
        "2 plain of ours + 1 of Python's: {stats}"
    );
}

#[tokio::test]
async fn python_invalidate_all_leaves_our_namespaced_entries_and_live_leases() {
    let server = RedisServer::start();
    let b = write_everything_we_add(&server).await;
    assert_eq!(py(&server, "cache", "invalidate_all", json!({})), 2);
    let cache = b.cache();
    assert_eq!(
        cache.cache_count(&CacheScope::Plain).await.unwrap().entries,
        0
    );
    let ns = cache
        .cache_count(&CacheScope::Namespace("team-a".into()))
        .await
        .unwrap();
    assert_eq!(ns.entries, 3);
    for key in [
        CacheKey::new(hash_of(7), None).unwrap(),
        CacheKey::new(hash_of(8), Some("team-a")).unwrap(),
    ] {
        assert!(cache.cache_poll(&key).await.unwrap().leased, "{key:?}");
    }
}

#[tokio::test]
async fn python_card_scan_reads_only_pipeline_documents() {
    let server = RedisServer::start();
    write_everything_we_add(&server).await;
    py(
        &server,
        "tracker",
        "start_pipeline",
        json!({"card_id": "p1", "total_stages": 1}),
    );
    // A Python reader finds cards by SCAN MATCH artemis:pipeline:* and GETs every match: a
    // key of ours there (a zset, a stream) would make it fail with WRONGTYPE.
    let cards = py(&server, "tracker", "list_pipelines", json!({}));
    let mut ids: Vec<_> = cards.as_object().unwrap().keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, ["c1", "p1"]);
    let stages = py(
        &server,
        "tracker",
        "get_all_stages",
        json!({"card_id": "c1"}),
    );
    let mut names: Vec<_> = stages.as_object().unwrap().keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["dev", "test"]);
}

#[tokio::test]
async fn no_key_we_add_matches_a_pattern_the_original_scans() {
    let server = RedisServer::start();
    write_everything_we_add(&server).await;
    let mut raw = server.raw();
    let all: Vec<String> = raw.scan().unwrap().collect::<Result<_, _>>().unwrap();
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut extension = Vec::new();
    for key in &all {
        let original = key.strip_prefix("artemis:llm:cache:").is_some_and(hex64)
            || key
                .strip_prefix("artemis:pipeline:")
                .is_some_and(|card| !card.is_empty() && !card.starts_with(':'))
            || (key.starts_with("artemis:metrics:") && !key.starts_with("artemis:metrics::"));
        if !original {
            extension.push(key.clone());
        }
    }
    assert!(extension.len() >= 8, "{extension:?}");
    for key in &extension {
        // The original's scans: `artemis:llm:cache:*` (stats, invalidate_all),
        // `artemis:pipeline:*` (finding cards) and `artemis:pipeline:<card>:stage:*`; its
        // metrics readers read `artemis:metrics:<fixed name>` only.
        assert!(!key.starts_with("artemis:llm:cache:"), "{key}");
        assert!(!key.starts_with("artemis:pipeline:"), "{key}");
        assert!(
            !key.starts_with("artemis:metrics:") || key.starts_with("artemis:metrics::"),
            "{key}"
        );
    }
    // Every key the original's own patterns find is one it can read.
    let cached: Vec<String> = raw
        .scan_match("artemis:llm:cache:*")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for key in &cached {
        assert!(hex64(&key["artemis:llm:cache:".len()..]), "{key}");
    }
    let pipeline: Vec<String> = raw
        .scan_match("artemis:pipeline:*")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for key in &pipeline {
        let text: String = raw.get(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}
