//! `--once` against a real Redis seeded exactly as the Python original writes (text and JSON,
//! the JSON checked against the committed schema), `--count` JSON lines, and an unreachable
//! Redis (non-zero exit, one line on stderr) — through the library entry point and through
//! the real binary.

mod support;
mod tui_fixtures;

use std::process::Command;
use std::time::Duration;

use redis::Commands;
use serde_json::Value;

use artemis::headless::{self, Format, HeadlessError, HeadlessOptions};
use support::{RedisServer, free_port};

fn schema() -> jsonschema::Validator {
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/snapshot.schema.json"
    ))
    .expect("schema file");
    let schema: Value = serde_json::from_str(&raw).expect("schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles")
}

fn assert_valid(v: &Value) {
    let validator = schema();
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}\n{v:#}");
}

fn naive(secs_ago: i64) -> String {
    artemis::model::format_naive(
        (chrono::Utc::now() - chrono::Duration::seconds(secs_ago)).naive_utc(),
    )
}

/// Writes what Python Artemis writes for two pipelines, LLM metrics and a broken document.
fn seed_python(server: &RedisServer) {
    let mut c = server.raw();
    // json.dumps default separators, as Python writes them.
    let doc = format!(
        r#"{{"card_id": "card-py-1", "status": "running", "total_stages": 4, "completed_stages": 1, "current_stage": "development", "start_time": "{}", "end_time": null, "metadata": {{"title": "Python card \u001b[31mred\u001b[0m 日本語", "priority": "high"}}}}"#,
        naive(120)
    );
    let _: () = redis::cmd("SET")
        .arg("artemis:pipeline:card-py-1")
        .arg(&doc)
        .arg("EX")
        .arg(86400)
        .query(&mut c)
        .unwrap();
    for (name, status, pct, ago) in [
        ("planning", "completed", 100, 100),
        ("development", "running", 45, 5),
    ] {
        let stage = format!(
            r#"{{"stage_name": "{name}", "status": "{status}", "progress_percent": {pct}, "message": "working on {name}", "timestamp": "{}", "metadata": {{}}}}"#,
            naive(ago)
        );
        let _: () = redis::cmd("SET")
            .arg(format!("artemis:pipeline:card-py-1:stage:{name}"))
            .arg(stage)
            .arg("EX")
            .arg(86400)
            .query(&mut c)
            .unwrap();
    }
    let done = format!(
        r#"{{"card_id": "card-py-2", "status": "completed", "total_stages": 2, "completed_stages": 2, "current_stage": "deploy", "start_time": "{}", "end_time": "{}", "metadata": {{}}, "duration_seconds": 60.5}}"#,
        naive(600),
        naive(540)
    );
    let _: () = c.set_ex("artemis:pipeline:card-py-2", done, 86400).unwrap();
    let _: () = c.set("artemis:pipeline:card-broken", "{not json").unwrap();
    // Metrics, with Python's HINCRBY / HINCRBYFLOAT.
    let _: () = redis::pipe()
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm")
        .arg("total_requests")
        .arg(10)
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm")
        .arg("prompt_tokens")
        .arg(1200)
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm")
        .arg("completion_tokens")
        .arg(300)
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm")
        .arg("cache_hits")
        .arg(6)
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm")
        .arg("cache_misses")
        .arg(4)
        .cmd("HINCRBYFLOAT")
        .arg("artemis:metrics:llm")
        .arg("total_cost")
        .arg("0.75")
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm:openai")
        .arg("requests")
        .arg(10)
        .cmd("HINCRBYFLOAT")
        .arg("artemis:metrics:llm:openai")
        .arg("cost")
        .arg("0.75")
        .cmd("HINCRBY")
        .arg("artemis:metrics:llm:model:gpt-4o")
        .arg("requests")
        .arg(10)
        .cmd("HINCRBYFLOAT")
        .arg("artemis:metrics:llm:model:gpt-4o")
        .arg("cost")
        .arg("0.75")
        .cmd("HINCRBY")
        .arg("artemis:metrics:total")
        .arg("pipelines_completed")
        .arg(1)
        .cmd("HINCRBYFLOAT")
        .arg("artemis:metrics:total")
        .arg("total_cost")
        .arg("0.5")
        .cmd("HINCRBYFLOAT")
        .arg("artemis:metrics:total")
        .arg("total_duration")
        .arg("60.5")
        .cmd("INCR")
        .arg("artemis:metrics:status:completed")
        .query(&mut c)
        .unwrap();
}

async fn once(server: &RedisServer, format: Format, count: u32) -> Result<String, HeadlessError> {
    let settings = server.settings();
    let storage = artemis::storage::open_redis_lazy(settings.clone()).unwrap();
    let mut out: Vec<u8> = Vec::new();
    headless::run(
        storage,
        &settings,
        HeadlessOptions {
            format,
            count,
            interval: Duration::from_millis(100),
        },
        &mut out,
    )
    .await?;
    Ok(String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn once_json_reads_python_data_and_matches_the_schema() {
    let server = RedisServer::start();
    seed_python(&server);
    let out = once(&server, Format::Json, 1).await.unwrap();
    assert_eq!(out.lines().count(), 1, "one JSON object per line");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_valid(&v);
    let cards = v["cards"].as_array().unwrap();
    let ids: Vec<&str> = cards
        .iter()
        .map(|c| c["card_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"card-py-1") && ids.contains(&"card-py-2"),
        "{ids:?}"
    );
    let c1 = cards.iter().find(|c| c["card_id"] == "card-py-1").unwrap();
    assert_eq!(c1["stages"].as_array().unwrap().len(), 2);
    // JSON is exact: the title keeps its escape character (escaped by JSON, not stripped).
    assert!(c1["metadata"]["title"].as_str().unwrap().contains('\u{1b}'));
    assert!(out.contains(r"\u001b"));
    assert_eq!(v["metrics"]["llm"]["cache_hits"], 6);
    assert_eq!(v["metrics"]["llm"]["hit_rate"], 0.6);
    assert!(
        v["malformed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["key"] == "artemis:pipeline:card-broken"),
        "{:#}",
        v["malformed"]
    );
    assert_eq!(v["connection"]["state"], "connected");
}

#[tokio::test]
async fn once_text_is_readable_and_neutralises_escapes() {
    let server = RedisServer::start();
    seed_python(&server);
    let out = once(&server, Format::Text, 1).await.unwrap();
    assert!(!out.contains('\u{1b}'), "raw escape reached stdout:\n{out}");
    assert!(out.contains("␛[31mred␛[0m"), "{out}");
    for want in [
        "CARDS (2)",
        "card-py-1",
        "development",
        "1/4 45%",
        "MALFORMED (1)",
        "artemis:pipeline:card-broken",
        "hit rate 60.0%",
        "per provider: openai $0.75 (10 req)",
        "per model: gpt-4o $0.75 (10 req)",
    ] {
        assert!(out.contains(want), "{want:?} missing:\n{out}");
    }
}

#[tokio::test]
async fn count_prints_json_lines_an_interval_apart() {
    let server = RedisServer::start();
    seed_python(&server);
    let started = std::time::Instant::now();
    let out = once(&server, Format::Json, 3).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let mut last: Option<chrono::DateTime<chrono::Utc>> = None;
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_valid(&v);
        let t: chrono::DateTime<chrono::Utc> = v["taken_at"].as_str().unwrap().parse().unwrap();
        assert!(last.is_none_or(|p| t > p), "snapshots are successive");
        last = Some(t);
    }
}

#[tokio::test]
async fn unreachable_redis_is_one_clear_error() {
    let port = free_port();
    let mut settings = artemis::config::Settings::default();
    settings.redis.url = Some(format!("redis://127.0.0.1:{port}/"));
    settings.redis.connect_timeout = 1.0;
    let storage = artemis::storage::open_redis_lazy(settings.clone()).unwrap();
    let mut out: Vec<u8> = Vec::new();
    let err = headless::run(storage, &settings, HeadlessOptions::default(), &mut out)
        .await
        .unwrap_err();
    assert!(matches!(err, HeadlessError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 1);
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert_eq!(msg.matches("cannot reach").count(), 1, "{msg}");
    assert!(out.is_empty(), "nothing half-written");
}

#[test]
fn fixture_snapshot_with_every_field_matches_the_schema() {
    // Limits, daily figures, code review, every connection state: what a seeded Redis may
    // not contain.
    let mut snap = tui_fixtures::snapshot();
    snap.metrics
        .code_review
        .developers
        .push(artemis::snapshot::DeveloperReviews {
            developer: "alice".into(),
            total_reviews: 3,
            total_score: 250,
            critical_issues: 1,
            high_issues: 2,
        });
    for conn in [
        artemis::connection::ConnState::Connecting,
        artemis::connection::ConnState::InProcess,
        tui_fixtures::connected(),
        artemis::connection::ConnState::Reconnecting {
            since: tui_fixtures::now(),
            attempts: 2,
            error: "refused".into(),
        },
    ] {
        snap.connection = conn;
        assert_valid(&serde_json::to_value(&snap).unwrap());
    }
    // The schema is closed: an unknown field fails, so output and schema cannot drift apart.
    let mut v = serde_json::to_value(&snap).unwrap();
    v["cards"][0]["surprise"] = Value::Bool(true);
    assert!(!schema().is_valid(&v));
    let mut v = serde_json::to_value(&snap).unwrap();
    v["metrics"]["llm"]
        .as_object_mut()
        .unwrap()
        .remove("hit_rate");
    assert!(!schema().is_valid(&v));
}

/// The fixture snapshot with every section filled, code reviews included (the fixture's
/// metrics have none).
fn full_fixture() -> artemis::snapshot::Snapshot {
    let mut snap = tui_fixtures::snapshot();
    snap.metrics
        .code_review
        .developers
        .push(artemis::snapshot::DeveloperReviews {
            developer: "alice".into(),
            total_reviews: 3,
            total_score: 250,
            critical_issues: 1,
            high_issues: 2,
        });
    snap
}

#[test]
fn report_json_of_the_fixture_is_unchanged() {
    let json = serde_json::to_string_pretty(&full_fixture()).unwrap();
    insta::assert_snapshot!("report_json", json);
}

#[test]
fn report_text_of_the_fixture_is_unchanged() {
    let snap = full_fixture();
    insta::assert_snapshot!("report_text", headless::report(&snap, tui_fixtures::now()));
}

fn bin() -> Command {
    support::artemis_top(&std::env::temp_dir().join("artemis-top-headless-test-home"))
}

#[test]
fn binary_once_prints_and_exits_zero() {
    let server = RedisServer::start();
    seed_python(&server);
    let out = bin()
        .args(["--redis-url", &server.url(), "--once", "--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_valid(&v);
    // stdout is a pipe here, so even without --once the binary prints a report.
    let out = bin().args(["--redis-url", &server.url()]).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("CARDS (2)"));
}

#[test]
fn binary_exits_non_zero_with_one_line_when_redis_is_unreachable() {
    let port = free_port();
    let out = bin()
        .args([
            "--redis-url",
            &format!("redis://127.0.0.1:{port}/"),
            "--once",
        ])
        .env("REDIS_CONNECT_TIMEOUT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("artemis-top: cannot reach Redis at redis://127.0.0.1:"),
        "{err}"
    );
}
