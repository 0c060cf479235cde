//! `--once` against a real Redis seeded exactly as the Python original writes (text and JSON,
//! the JSON checked against the committed schema), `--count` JSON lines, and an unreachable
//! Redis (non-zero exit, one line on stderr) — through the library entry point and through
//! the real binary. The schema and the report types are checked against each other: real
//! output with every optional field filled validates, and an unknown or a missing field in
//! any object is rejected, so neither can change without the other.

mod support;
mod tui_fixtures;

use artemis::Backend;
use std::process::Command;
use std::time::Duration;

use redis::Commands;
use serde_json::Value;

use artemis::headless::{self, Format, HeadlessError, HeadlessOptions};
use artemis::report::{REPORT_VERSION, Report};
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
    let storage = Backend::redis_lazy(settings.clone()).unwrap();
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
    assert_eq!(v["version"], REPORT_VERSION);
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
    let storage = Backend::redis_lazy(settings.clone()).unwrap();
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
    let mut snap = full_fixture();
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
        assert_valid(&report_json(&snap));
    }
    // A server refusing writes (the health's refusal filled).
    snap.health.refusal = Some(artemis::connection::Refusal {
        code: "OOM".into(),
        since: tui_fixtures::now(),
        seen: tui_fixtures::now(),
        source: artemis::connection::HealthSource::Reply,
    });
    let v = report_json(&snap);
    assert_eq!(v["health"]["refusal"]["code"], "OOM");
    assert_valid(&v);
    // The schema is closed: an unknown field fails, so output and schema cannot drift apart.
    let mut v = report_json(&snap);
    v["cards"][0]["surprise"] = Value::Bool(true);
    assert!(!schema().is_valid(&v));
    let mut v = report_json(&snap);
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
        .push(artemis::metrics::DeveloperReviews {
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
    let json = serde_json::to_string_pretty(&Report::from_snapshot(&full_fixture())).unwrap();
    insta::assert_snapshot!("report_json", json);
}

#[test]
fn report_text_of_the_fixture_is_unchanged() {
    let snap = full_fixture();
    insta::assert_snapshot!(
        "report_text",
        artemis::report::text::render(&snap, tui_fixtures::now())
    );
}

/// The report of a snapshot as JSON, as `--once --format json` prints it.
fn report_json(snap: &artemis::snapshot::Snapshot) -> Value {
    serde_json::to_value(Report::from_snapshot(snap)).unwrap()
}

/// Writes, through the library, what Python data lacks: a card cost from stage metadata, a
/// finished card with its duration, pipeline completions (recent, daily, per status), an LLM
/// request with saved cost and latency, a code review and a registered limit with tokens.
async fn seed_library(server: &RedisServer) {
    use artemis::limiter::{Limits, RateLimiter};
    use artemis::metrics::{CodeReviewRecord, LlmRequestRecord, Metrics, PipelineCompletionRecord};
    use artemis::model::{PipelineStatus, StageStatus};
    use artemis::tracker::{StageUpdate, Tracker};

    let storage = Backend::redis(server.settings()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    let mut meta = serde_json::Map::new();
    meta.insert("title".into(), Value::from("Rust card"));
    tracker.start_pipeline("card-rs-1", 2, meta).await.unwrap();
    let mut stage_meta = serde_json::Map::new();
    stage_meta.insert("cost_usd".into(), Value::from(0.25));
    tracker
        .update_stage(
            "card-rs-1",
            "build",
            StageUpdate::new(StageStatus::Running)
                .progress(50)
                .message("compiling")
                .metadata(stage_meta),
        )
        .await
        .unwrap();
    tracker
        .start_pipeline("card-rs-2", 1, serde_json::Map::new())
        .await
        .unwrap();
    tracker
        .complete_pipeline("card-rs-2", PipelineStatus::Completed, Some("done"))
        .await
        .unwrap();

    let metrics = Metrics::new(storage.metrics().clone());
    metrics
        .track_pipeline_completion(PipelineCompletionRecord {
            card_id: "card-rs-2".into(),
            duration_seconds: 12.5,
            status: "completed".into(),
            cost: 0.4,
            metadata: serde_json::Map::new(),
            at: None,
        })
        .await
        .unwrap();
    metrics
        .track_llm_request(LlmRequestRecord {
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
            prompt_tokens: 100,
            completion_tokens: 20,
            cost: 0.0,
            cache_hit: true,
            latency_ms: 35.0,
            saved_cost: 0.02,
            at: None,
        })
        .await
        .unwrap();
    metrics
        .track_code_review(CodeReviewRecord {
            developer: "alice".into(),
            status: "approved".into(),
            score: 90,
            critical_issues: 0,
            high_issues: 1,
        })
        .await
        .unwrap();

    let limiter = RateLimiter::new(storage.limiter().clone());
    let limit = limiter
        .limit(
            "llm",
            "team-a",
            Limits::requests(5, Duration::from_secs(60)).with_tokens(1_000),
        )
        .unwrap();
    limiter
        .check(&limit, 100)
        .await
        .unwrap()
        .into_reservation()
        .expect("admitted")
        .keep();
}

/// Every path of `v` (array items as `[]`, free-form metadata not entered) and whether it
/// is populated somewhere: not null, not an empty array or object.
fn populated_paths(v: &Value, path: &str, out: &mut std::collections::BTreeMap<String, bool>) {
    let populated = match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    };
    *out.entry(path.to_owned()).or_default() |= populated;
    if path.ends_with("/metadata") {
        return;
    }
    match v {
        Value::Array(items) => {
            for item in items {
                populated_paths(item, &format!("{path}/[]"), out);
            }
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                populated_paths(item, &format!("{path}/{k}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn once_json_from_redis_with_every_optional_field_filled_matches_the_schema() {
    let server = RedisServer::start();
    seed_python(&server);
    seed_library(&server).await;
    // A read-only replica (of a master that is not there, so it keeps its data) fills the
    // health's refusal.
    let nowhere = support::free_port().to_string();
    server.cli(&["REPLICAOF", "127.0.0.1", &nowhere]);
    let out = once(&server, Format::Json, 1).await.unwrap();
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_valid(&v);
    let mut paths = std::collections::BTreeMap::new();
    populated_paths(&v, "", &mut paths);
    let empty: Vec<&String> = paths.iter().filter(|(_, p)| !**p).map(|(k, _)| k).collect();
    assert!(empty.is_empty(), "never filled: {empty:#?}\n{v:#}");
    assert!(paths.contains_key("/cards/[]/duration_seconds"), "{v:#}");
    assert!(paths.contains_key("/limits/[]/tokens_limit"), "{v:#}");
}

/// JSON pointers of every object in `v` whose fields the types fix (not free-form metadata,
/// not the per-status counter maps).
fn closed_objects(v: &Value, pointer: String, out: &mut Vec<String>) {
    let free_form = pointer.ends_with("/metadata") || pointer.ends_with("/by_status");
    match v {
        Value::Object(fields) if !free_form => {
            for (k, item) in fields {
                closed_objects(item, format!("{pointer}/{k}"), out);
            }
            out.push(pointer);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                closed_objects(item, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_rejects_an_unknown_field_in_any_object() {
    let v = report_json(&full_fixture());
    let validator = schema();
    let mut objects = Vec::new();
    closed_objects(&v, String::new(), &mut objects);
    assert!(objects.len() > 20, "{objects:?}");
    for pointer in objects {
        let mut bad = v.clone();
        bad.pointer_mut(&pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .insert("surprise".into(), Value::Bool(true));
        assert!(
            !validator.is_valid(&bad),
            "an unknown field at {pointer:?} passed"
        );
    }
}

#[test]
fn schema_rejects_a_report_missing_any_field_the_types_always_emit() {
    let v = report_json(&full_fixture());
    let validator = schema();
    let mut objects = Vec::new();
    closed_objects(&v, String::new(), &mut objects);
    let mut checked = 0;
    for pointer in objects {
        let keys: Vec<String> = v
            .pointer(&pointer)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        // The one field the types leave out when empty (`skip_serializing_if`).
        for key in keys.into_iter().filter(|k| k != "duration_seconds") {
            let mut bad = v.clone();
            bad.pointer_mut(&pointer)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(&key);
            assert!(
                !validator.is_valid(&bad),
                "a report without {pointer}/{key} passed"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked}");
}

#[test]
fn report_json_opens_with_the_version_the_schema_names() {
    let json = serde_json::to_string(&Report::from_snapshot(&full_fixture())).unwrap();
    assert!(
        json.starts_with(&format!("{{\"version\":{REPORT_VERSION},")),
        "{json}"
    );
    let raw = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/snapshot.schema.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(schema["properties"]["version"]["const"], REPORT_VERSION);
    let mut older = report_json(&full_fixture());
    older["version"] = Value::from(REPORT_VERSION + 1);
    assert!(!self::schema().is_valid(&older), "another version passed");
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

/// The cards-table lines of a text report (between `CARDS (n)` and the next blank line).
fn card_lines(report: &str) -> Vec<&str> {
    report
        .lines()
        .skip_while(|l| !l.starts_with("CARDS ("))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

#[test]
fn report_text_shows_a_200_character_id_whole() {
    let mut snap = tui_fixtures::snapshot();
    let long = format!("pipeline-{}", "x".repeat(200));
    snap.cards[0].pipeline.card_id = long.clone();
    let report = artemis::report::text::render(&snap, tui_fixtures::now());
    let lines = card_lines(&report);
    assert!(
        lines.iter().any(|l| l.trim() == long),
        "the long id is not on a line of its own, whole:\n{report}"
    );
    // Its row follows, with the rest of the card's columns.
    let at = lines.iter().position(|l| l.trim() == long).unwrap();
    let title = snap.cards[0].title().unwrap_or("").to_owned();
    assert!(
        lines[at + 1].contains(&title[..title.len().min(10)]),
        "{report}"
    );
}

#[test]
fn report_text_long_id_does_not_widen_the_other_rows() {
    let snap = tui_fixtures::snapshot();
    let before = artemis::report::text::render(&snap, tui_fixtures::now());
    let mut with_long = snap.clone();
    with_long.cards[0].pipeline.card_id = "y".repeat(250);
    let after = artemis::report::text::render(&with_long, tui_fixtures::now());
    assert_eq!(
        card_lines(&before)[0],
        card_lines(&after)[0],
        "header moved"
    );
    for line in card_lines(&after).iter().skip(1) {
        if line.trim() != "y".repeat(250) {
            assert!(line.len() < 200, "a row was widened: {line}");
        }
    }
}

#[test]
fn report_text_sizes_the_id_column_from_the_ids() {
    let mut snap = tui_fixtures::snapshot();
    for (i, c) in snap.cards.iter_mut().enumerate() {
        c.pipeline.card_id = format!("id-{i}");
    }
    snap.cards[0].pipeline.card_id = "a-36-character-identifier-0123456789".into();
    let report = artemis::report::text::render(&snap, tui_fixtures::now());
    let lines = card_lines(&report);
    // Every row starts its title where the header's TITLE starts: one column width for all.
    let title_at = lines[0].find("TITLE").unwrap();
    assert_eq!(title_at, 2 + 36 + 1, "{report}");
    for (line, c) in lines.iter().skip(1).zip(&snap.cards) {
        assert!(line[2..].starts_with(&c.pipeline.card_id), "{line}");
        assert_eq!(line.as_bytes()[title_at - 1], b' ', "{line}");
    }
}

#[test]
fn report_text_long_hostile_id_is_whole_and_sanitized() {
    let mut snap = tui_fixtures::snapshot();
    let hostile = format!(
        "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n{}\u{202e}end",
        "z".repeat(200)
    );
    snap.cards[0].pipeline.card_id = hostile.clone();
    let report = artemis::report::text::render(&snap, tui_fixtures::now());
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!report.contains(bad), "{bad:?} reached the report");
    }
    // The id's own line holds all of it, the escapes shown as inert text.
    let own = card_lines(&report)
        .into_iter()
        .find(|l| l.contains(&"z".repeat(200)))
        .unwrap_or_else(|| panic!("the long id was cut:\n{report}"));
    assert!(
        own.trim_start().starts_with("evil")
            && own.contains("pwned")
            && own.trim_end().ends_with("end"),
        "the sanitized id is not shown whole: {own:?}"
    );
}
