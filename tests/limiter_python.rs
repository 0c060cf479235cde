//! The rate limiter beside Python: the original's own algorithm (redis-py,
//! `tests/python/original/ratelimit.py`, as PROTOCOL.md states it) and ours on one real
//! `redis-server`, both ways. Windows Python wrote are shown (with the limit the original
//! applies, a configured one, or "limit unknown"), a shared preset window refuses at the same
//! total on both sides, and Python counts what we admitted.

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::config::{Settings, WindowLimit};
use artemis::limiter::{Decision, LimitOrigin, LimitUsage, Limits, RateLimiter};
use support::RedisServer;
use support::python::run_python;

async fn open(settings: Settings) -> (Backend, RateLimiter) {
    let storage = Backend::redis(settings)
        .await
        .expect("connect to the test server");
    let limiter = RateLimiter::new(storage.limiter().clone());
    (storage, limiter)
}

fn drive(server: &RedisServer, args: &[&str]) -> String {
    run_python("ratelimit_drive.py", &server.url(), args)
}

async fn rows(storage: &Backend) -> Vec<LimitUsage> {
    storage
        .limiter()
        .read_limits()
        .await
        .expect("read the limits")
        .limits
}

/// `artemis-top --once` (text, or JSON with `json`) against the server.
fn once(server: &RedisServer, json: bool, config: Option<&str>) -> String {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = support::artemis_top(home.path());
    cmd.args(["--redis-url", &server.url(), "--once"]);
    if json {
        cmd.args(["--format", "json"]);
    }
    if let Some(text) = config {
        let path = home.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    let out = cmd.output().expect("run artemis-top --once");
    assert!(
        out.status.success(),
        "--once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn python_checks_show_with_the_originals_limit_in_headroom_and_once() {
    let server = RedisServer::start();
    let out = drive(&server, &["check", "openai", "gpt-4o", "default", "3"]);
    assert_eq!(out.lines().last(), Some("admitted 3"), "{out}");
    let (storage, _) = open(server.settings()).await;
    let rows = rows(&storage).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(r.key, "artemis:ratelimit:openai:openai:gpt-4o:default");
    assert_eq!(
        (r.resource.as_str(), r.identifier.as_str()),
        ("openai:gpt-4o", "default")
    );
    assert_eq!((r.requests_used, r.requests_limit), (3, Some(100)));
    assert_eq!(
        (r.window_seconds, r.limit_origin),
        (60.0, LimitOrigin::Original)
    );

    let text = once(&server, false, None);
    assert!(
        text.contains("openai:gpt-4o:default  requests 3/100 per"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&once(&server, true, None)).unwrap();
    let limits = json["limits"].as_array().unwrap();
    assert_eq!(limits.len(), 1);
    assert_eq!(limits[0]["requests_used"], 3);
    assert_eq!(limits[0]["requests_limit"], 100);
    assert_eq!(limits[0]["limit_origin"], "original");
}

#[tokio::test]
async fn python_windows_outside_the_presets_show_a_configured_limit_or_limit_unknown() {
    let server = RedisServer::start();
    drive(&server, &["generic", "search", "team-a", "10", "60", "4"]);
    drive(&server, &["generic", "crawl", "default", "5", "60", "2"]);
    let mut settings = server.settings();
    settings.limiter.limits = vec![WindowLimit {
        pattern: "artemis:ratelimit:search:*".into(),
        requests: 10,
        window_seconds: 60.0,
    }];
    let (storage, _) = open(settings).await;
    let rows = rows(&storage).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (crawl, search) = (&rows[0], &rows[1]);
    assert_eq!(
        (search.resource.as_str(), search.identifier.as_str()),
        ("search", "team-a")
    );
    assert_eq!((search.requests_used, search.requests_limit), (4, Some(10)));
    assert_eq!(search.limit_origin, LimitOrigin::Config);
    assert_eq!((crawl.requests_used, crawl.requests_limit), (2, None));
    assert_eq!(crawl.limit_origin, LimitOrigin::Unknown);

    let config = "[[limiter.limits]]\npattern = \"artemis:ratelimit:search:*\"\nrequests = 10\n";
    let text = once(&server, false, Some(config));
    assert!(text.contains("search:team-a  requests 4/10 per"), "{text}");
    assert!(
        text.contains("crawl:default  requests 2 in the last") && text.contains("(limit unknown)"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&once(&server, true, None)).unwrap();
    let limits = json["limits"].as_array().unwrap();
    assert!(
        limits
            .iter()
            .all(|l| l["requests_limit"].is_null() && l["limit_origin"] == "unknown"),
        "without the config neither limit is known: {limits:?}"
    );
}

#[tokio::test]
async fn our_extension_keys_and_other_types_are_not_listed_as_windows() {
    let server = RedisServer::start();
    let (storage, limiter) = open(server.settings()).await;
    let limit = limiter
        .limit(
            "svc",
            "default",
            Limits::requests(5, Duration::from_secs(60)).with_tokens(1_000),
        )
        .unwrap();
    limiter
        .check(&limit, 100)
        .await
        .unwrap()
        .into_reservation()
        .unwrap()
        .keep();
    // A key of another type under the prefix is no window.
    server.cli(&["SET", "artemis:ratelimit:stray:default", "x"]);
    let rows = rows(&storage).await;
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, [limit.key()], "{rows:?}");
    assert_eq!(rows[0].limit_origin, LimitOrigin::Registry);
    // The extension keys exist (tokens, sum, registry, presence) and are skipped.
    let ext = server.cli(&["--scan", "--pattern", "artemis:ratelimit::*"]);
    assert!(ext.lines().count() >= 4, "{ext}");
}

#[tokio::test]
async fn a_shared_preset_window_refuses_at_the_same_total_on_both_sides() {
    // (model, the original's limit): a dated id is "another model" on both sides.
    for (provider, model, limit) in [
        ("anthropic", "claude-sonnet-4-5-20250929", 30u64),
        ("openai", "gpt-4o-2024-08-06", 50),
    ] {
        let server = RedisServer::start();
        let (_storage, limiter) = open(server.settings()).await;
        let key = limiter.preset(provider, model, "default").unwrap();
        assert_eq!(key.limits().requests, limit);
        // Ours first, up to half the limit…
        for _ in 0..limit / 2 {
            assert!(limiter.check(&key, 0).await.unwrap().is_admitted());
        }
        // …then Python until refused: it refuses at the same total.
        let out = drive(&server, &["until-refused", provider, model, "default"]);
        assert_eq!(
            out.trim(),
            format!("admitted {} refused_at {limit} {limit}", limit - limit / 2),
            "{model}"
        );
        // And ours refuses there too.
        match limiter.check(&key, 0).await.unwrap() {
            Decision::Refused(r) => assert_eq!((r.current_count, r.limit), (limit, limit)),
            Decision::Admitted(r) => panic!("{model}: admitted past the shared limit: {r:?}"),
        }
    }
}

#[tokio::test]
async fn python_counts_our_admissions_and_we_refuse_where_python_filled_the_window() {
    let server = RedisServer::start();
    let (_storage, limiter) = open(server.settings()).await;
    let key = limiter.preset("openai", "gpt-4o", "team").unwrap();
    for _ in 0..7 {
        assert!(limiter.check(&key, 0).await.unwrap().is_admitted());
    }
    let out = drive(&server, &["count", "openai", "gpt-4o", "team"]);
    assert_eq!(out.trim(), "7");
    // Python fills the rest of the window; our next check is refused at 100.
    let out = drive(&server, &["until-refused", "openai", "gpt-4o", "team"]);
    assert_eq!(out.trim(), "admitted 93 refused_at 100 100");
    match limiter.check(&key, 0).await.unwrap() {
        Decision::Refused(r) => assert_eq!(r.current_count, 100),
        Decision::Admitted(r) => panic!("admitted past Python's full window: {r:?}"),
    }
}
