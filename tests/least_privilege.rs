//! Least privilege, against a real server with ACL users made by the test:
//! - the dashboard (`--once` and the live TUI) works as a user that may only *read* `artemis:*`
//!   keys and subscribe to `artemis:*` channels, and that user really can do nothing else.
//!   Redis matches a PSUBSCRIBE pattern *literally* against the ACL's channel patterns, so live
//!   events need `&artemis:pipeline:events:*` spelled out next to `&artemis:*`; without it the
//!   dashboard says why it has no live events and keeps polling;
//! - the library's four jobs work as a user confined to `artemis:*` keys and channels (every
//!   command and script touches only keys under the prefix).

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::cache::client::{LlmClient, LlmError, LlmRequest, LlmResponse, Message, Usage};
use artemis::cache::{CacheControl, CacheScope, CachedClient, Source};
use artemis::limiter::{Limits, RateLimiter};
use artemis::metrics::{LlmRequestRecord, Metrics};
use artemis::model::{PipelineStatus, StageStatus};
use artemis::tracker::{StageUpdate, Tracker};
use serde_json::{Map, Value};
use support::tmux::{Tmux, assert_restored, binary_line};
use support::{RedisServer, ServerOptions};

const READER_PASS: &str = "reader-pass-1";
const APP_PASS: &str = "app-pass-2";

fn server() -> RedisServer {
    let reader = [
        "top",
        "on",
        &format!(">{READER_PASS}"),
        "resetkeys",
        "%R~artemis:*",
        "resetchannels",
        "&artemis:*",
        "&artemis:pipeline:events:*",
        "-@all",
        "+@read",
        "+@connection",
        "+subscribe",
        "+psubscribe",
        "+unsubscribe",
        "+punsubscribe",
        "+time",
    ];
    let app = [
        "app",
        "on",
        &format!(">{APP_PASS}"),
        "resetkeys",
        "~artemis:*",
        "resetchannels",
        "&artemis:*",
        "&artemis:pipeline:events:*",
        "+@all",
    ];
    // Like `top`, without the literal events pattern.
    let narrow = [
        "narrow",
        "on",
        &format!(">{READER_PASS}"),
        "resetkeys",
        "%R~artemis:*",
        "resetchannels",
        "&artemis:*",
        "-@all",
        "+@read",
        "+@connection",
        "+subscribe",
        "+psubscribe",
        "+time",
    ];
    RedisServer::start_with(ServerOptions {
        acl_users: vec![
            reader.map(String::from).to_vec(),
            app.map(String::from).to_vec(),
            narrow.map(String::from).to_vec(),
        ],
        ..Default::default()
    })
}

async fn open_as(server: &RedisServer, user: &str, pass: &str) -> Backend {
    let mut settings = server.settings();
    settings.redis.username = Some(user.into());
    settings.redis.password = Some(pass.into());
    Backend::redis(settings)
        .await
        .expect("the ACL user connects")
}

struct Echo;

#[async_trait::async_trait]
impl LlmClient for Echo {
    fn provider(&self) -> &str {
        "openai"
    }

    async fn complete(&self, r: &LlmRequest) -> Result<LlmResponse, LlmError> {
        Ok(LlmResponse {
            content: format!("echo {}", r.messages.len()),
            model: r.model.clone(),
            provider: "openai".into(),
            usage: Usage {
                prompt_tokens: 10,
                completion_tokens: 5,
                total_tokens: 15,
            },
            raw_response: Value::Null,
        })
    }
}

/// Everything the library writes, done as the confined `app` user: nothing is refused.
async fn write_everything(storage: &Backend) {
    let tracker = Tracker::new(storage.tracker().clone());
    let mut meta = Map::new();
    meta.insert("title".into(), "Least privilege card".into());
    tracker.start_pipeline("lp-card", 2, meta).await.unwrap();
    tracker
        .update_stage(
            "lp-card",
            "analysis",
            StageUpdate::new(StageStatus::Completed).progress(100),
        )
        .await
        .unwrap();
    tracker
        .update_stage(
            "lp-card",
            "development",
            StageUpdate::new(StageStatus::Running)
                .progress(30)
                .message("writing code"),
        )
        .await
        .unwrap();

    let metrics = Metrics::new(storage.metrics().clone());
    metrics
        .track_llm_request(LlmRequestRecord {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            prompt_tokens: 100,
            completion_tokens: 20,
            cost: 0.01,
            cache_hit: false,
            latency_ms: 300.0,
            saved_cost: 0.0,
            at: None,
        })
        .await
        .unwrap();

    let cached = CachedClient::new(
        Echo,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
    )
    .unwrap();
    let q = LlmRequest::new("gpt-4o", vec![Message::user("hello")]);
    let first = cached
        .complete_with(&q, &CacheControl::default())
        .await
        .unwrap();
    let second = cached
        .complete_with(&q, &CacheControl::default())
        .await
        .unwrap();
    assert_eq!(
        (first.source, second.source),
        (Source::Upstream, Source::Store)
    );
    assert_eq!(cached.stats().errors, 0, "no cache command was refused");
    cached.flush_metrics().await;
    assert_eq!(cached.stats().metrics_failed, 0);
    assert!(cached.count(&CacheScope::All).await.unwrap().entries >= 1);

    let limiter = RateLimiter::new(storage.limiter().clone());
    let limit = limiter
        .limit(
            "llm",
            "lp",
            Limits::requests(5, Duration::from_secs(60)).with_tokens(1_000),
        )
        .unwrap();
    for _ in 0..2 {
        let d = limiter.check(&limit, 100).await.unwrap();
        let r = d.into_reservation().expect("admitted");
        r.reconcile(50).await.unwrap();
    }
    let h = limiter.headroom(&limit).await.unwrap();
    assert_eq!(h.requests_used, 2);
    assert!(tracker.buffer().stats().failed == 0 && tracker.buffer().stats().pending == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_works_confined_to_its_prefix() {
    let server = server();
    let storage = open_as(&server, "app", APP_PASS).await;
    write_everything(&storage).await;
    let tracker = Tracker::new(storage.tracker().clone());
    // Reads, subscriptions and history.
    let card = tracker.get_card("lp-card").await.unwrap().unwrap();
    assert_eq!(card.stages.len(), 2);
    assert_eq!(tracker.history("lp-card", None, 10).await.unwrap().len(), 3);
    let mut events = tracker.subscribe_all().await.unwrap();
    tracker
        .complete_pipeline("lp-card", PipelineStatus::Completed, None)
        .await
        .unwrap();
    let got = tokio::time::timeout(
        Duration::from_secs(5),
        futures::StreamExt::next(&mut events),
    )
    .await
    .expect("an event arrives");
    assert!(got.is_some());
    let snap = artemis::snapshot::read_snapshot(&storage, chrono::Utc::now())
        .await
        .unwrap();
    assert!(snap.malformed.is_empty(), "{:?}", snap.malformed);
    assert_eq!(snap.limits.len(), 1);
    // Cache administration by SCAN + UNLINK stays inside the prefix too.
    let cached = CachedClient::new(
        Echo,
        storage.cache().clone(),
        Metrics::new(storage.metrics().clone()),
    )
    .unwrap();
    assert!(cached.invalidate(&CacheScope::All).await.unwrap() >= 1);
    // And the user really is confined.
    let out = server.cli(&["--user", "app", "--pass", APP_PASS, "SET", "other:key", "1"]);
    assert!(out.contains("NOPERM"), "{out}");
}

fn read_only_url(server: &RedisServer) -> String {
    user_url(server, "top")
}

fn user_url(server: &RedisServer, user: &str) -> String {
    format!("redis://{user}:{READER_PASS}@127.0.0.1:{}/0", server.port)
}

fn dashboard_line(server: &RedisServer, user: &str, dir: &std::path::Path) -> String {
    binary_line(dir, &[], &["--redis-url", &user_url(server, user)]).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_works_as_a_read_only_user() {
    let server = server();
    let writer = open_as(&server, "app", APP_PASS).await;
    write_everything(&writer).await;
    // The reader really may only read.
    let out = server.cli(&[
        "--user",
        "top",
        "--pass",
        READER_PASS,
        "SET",
        "artemis:x",
        "1",
    ]);
    assert!(out.contains("NOPERM"), "{out}");
    let out = server.cli(&["--user", "top", "--pass", READER_PASS, "GET", "other"]);
    assert!(out.contains("NOPERM"), "{out}");

    let out = support::artemis_top(&std::env::temp_dir())
        .args([
            "--redis-url",
            &read_only_url(&server),
            "--once",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cards"][0]["card_id"], "lp-card");
    assert_eq!(v["cards"][0]["stages"].as_array().unwrap().len(), 2);
    assert_eq!(v["metrics"]["llm"]["total_requests"], 3);
    assert_eq!(v["metrics"]["llm"]["cache_hits"], 1);
    assert_eq!(v["limits"][0]["requests_used"], 2);
    assert_eq!(v["malformed"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["connection"]["state"], "connected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_as_a_read_only_user() {
    let server = server();
    let writer = open_as(&server, "app", APP_PASS).await;
    write_everything(&writer).await;
    let dir = tempfile::tempdir().unwrap();
    let stty = dir.path().join("stty.txt");
    let line = dashboard_line(&server, "top", dir.path());
    let tmux = Tmux::start("readonly", 140, 40, &line);
    tmux.wait_for("the card, with live events", |s| {
        s.contains("lp-card") && s.contains("● connected") && !s.contains("no live events")
    });
    // A live update from the writer reaches the read-only dashboard.
    Tracker::new(writer.tracker().clone())
        .update_stage(
            "lp-card",
            "development",
            StageUpdate::new(StageStatus::Running)
                .progress(80)
                .message("almost there"),
        )
        .await
        .unwrap();
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the live update in the drill-down", |s| {
        s.contains("almost there")
    });
    assert!(!s.to_lowercase().contains("noperm"), "{s}");
    tmux.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(100));
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_events_pattern_the_dashboard_says_why_it_polls() {
    let server = server();
    let writer = open_as(&server, "app", APP_PASS).await;
    write_everything(&writer).await;
    let dir = tempfile::tempdir().unwrap();
    let line = dashboard_line(&server, "narrow", dir.path());
    let tmux = Tmux::start("narrow", 180, 40, &line);
    let s = tmux.wait_for("the reason", |s| s.contains("may not PSUBSCRIBE"));
    assert!(
        s.contains("lp-card"),
        "the data is still shown by polling:\n{s}"
    );
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}

/// `artemis-top check` works for the read-only users and says what each may do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_what_the_user_may_do() {
    use artemis::check::{Access, check};
    let server = server();
    let settings_for = |user: &str| {
        let mut s = server.settings();
        s.redis.username = Some(user.into());
        s.redis.password = Some(READER_PASS.into());
        s
    };
    let top = check(&settings_for("top")).await.expect("check as top");
    assert_eq!(
        (&top.can_read, &top.can_subscribe),
        (&Access::Yes, &Access::Yes)
    );
    assert!(
        top.server_version.contains("not permitted"),
        "{}",
        top.server_version
    );
    let narrow = check(&settings_for("narrow"))
        .await
        .expect("check as narrow");
    assert_eq!(narrow.can_read, Access::Yes);
    match &narrow.can_subscribe {
        Access::Denied(why) => assert!(why.contains("&artemis:pipeline:events:*"), "{why}"),
        other => panic!("narrow may not PSUBSCRIBE: {other:?}"),
    }
    let printed = narrow.to_string();
    assert!(printed.contains("live events:   NO"), "{printed}");
    assert!(!printed.contains(READER_PASS));
}
