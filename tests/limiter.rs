//! The rate limiter against a real Redis: the Python layout both ways, retry-after, token
//! reservations, oversize requests, read-only headroom and registry, and each failure policy
//! with the server killed and started again.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use artemis::Backend;
use artemis::config::{FailurePolicy, Settings};
use artemis::limiter::{
    AcquireOptions, Decision, Exceeded, LimitError, Limits, RateLimiter, RegistryEntry, Source,
    Verdict,
};
use artemis::store::Store;
use redis::Commands;
use support::{RedisServer, ServerOptions};

async fn open(server: &RedisServer, policy: FailurePolicy) -> (Backend, RateLimiter) {
    let mut settings = server.settings();
    settings.limiter.failure_policy = policy;
    settings.limiter.acquire_jitter_ms = 0;
    let storage = Backend::redis(settings)
        .await
        .expect("connect to the test server");
    let limiter = RateLimiter::new(storage.limiter().clone());
    (storage, limiter)
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn admitted(d: Decision) -> artemis::limiter::Reservation {
    match d {
        Decision::Admitted(r) => r,
        Decision::Refused(r) => panic!("expected an admission, got {r}"),
    }
}

fn refused(d: Decision) -> artemis::limiter::Refusal {
    match d {
        Decision::Refused(r) => r,
        Decision::Admitted(r) => panic!("expected a refusal, got {r:?}"),
    }
}

/// Writes since the server started (`--save ""`: never reset).
fn server_writes(server: &RedisServer) -> u64 {
    let info = server.cli(&["INFO", "persistence"]);
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rdb_changes_since_last_save in INFO")
}

/// The original Python check, command by command (client clock, 4-5 round trips).
fn python_check(
    conn: &mut redis::Connection,
    key: &str,
    limit: u64,
    window: f64,
) -> Result<u64, f64> {
    let now = epoch_now();
    let _: () = conn.zrembyscore(key, 0, now - window).unwrap();
    let count: u64 = conn.zcard(key).unwrap();
    if count >= limit {
        let oldest: Vec<(String, f64)> = conn.zrange_withscores(key, 0, 0).unwrap();
        let retry_after = window - (now - oldest[0].1);
        return Err(retry_after);
    }
    let text = format!("{now}");
    let _: () = conn.zadd(key, &text, now).unwrap();
    let _: () = conn.expire(key, window as i64 + 60).unwrap();
    Ok(count + 1)
}

#[tokio::test]
async fn python_written_window_is_counted() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "openai:gpt-4o",
            "py",
            Limits::requests(5, Duration::from_secs(60)),
        )
        .unwrap();
    let mut raw = server.raw();
    let now = epoch_now();
    // Python's members: the float as text. One has left the window already.
    for age in [100.0, 30.0, 10.0, 1.0] {
        let t = now - age;
        let _: () = raw.zadd(limit.key(), format!("{t}"), t).unwrap();
    }
    let _: () = raw.expire(limit.key(), 120).unwrap();

    let a = admitted(limiter.check(&limit, 0).await.unwrap());
    assert_eq!(a.requests_used(), 4, "3 live Python requests + ours");
    let b = admitted(limiter.check(&limit, 0).await.unwrap());
    assert_eq!(b.requests_used(), 5);
    let r = refused(limiter.check(&limit, 0).await.unwrap());
    assert_eq!((r.current_count, r.limit, r.remaining), (5, 5, 0));
    assert_eq!(r.resource, "openai:gpt-4o");
    assert_eq!(r.window_seconds, 60.0);
    assert_eq!(r.exceeded, Exceeded::Requests);
    // The oldest live request (30 s old) leaves in ~30 s.
    assert!(
        r.retry_after > Duration::from_secs(28) && r.retry_after <= Duration::from_secs(31),
        "{r}"
    );
    assert_eq!(r.retry_after_seconds, r.retry_after.as_secs_f64());
    let members: Vec<(String, f64)> = raw.zrange_withscores(limit.key(), 0, -1).unwrap();
    assert_eq!(members.len(), 5);
    assert!(
        members.iter().all(|(_, score)| *score > now - 60.0),
        "the expired Python member was pruned"
    );
    // Our members: "<score>-<unique id>", score in epoch seconds like Python's.
    let ours: Vec<&(String, f64)> = members.iter().filter(|(m, _)| m.contains('-')).collect();
    assert_eq!(ours.len(), 2);
    for (member, score) in ours {
        let (text, _) = member.split_once('-').unwrap();
        assert_eq!(text.parse::<f64>().unwrap(), *score);
        assert!((score - now).abs() < 5.0, "server clock, epoch seconds");
    }
    let ttl: i64 = raw.ttl(limit.key()).unwrap();
    assert!((115..=120).contains(&ttl), "EXPIRE window+60, got {ttl}");
}

#[tokio::test]
async fn python_algorithm_reads_our_window() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .preset("openai", "gpt-4o", "shared")
        .expect("default preset");
    assert_eq!(limit.key(), "artemis:ratelimit:openai:openai:gpt-4o:shared");
    assert_eq!(limit.limits().requests, 100);
    let mut raw = server.raw();
    for _ in 0..97 {
        admitted(limiter.check(&limit, 0).await.unwrap()).keep();
    }
    // Python (limit 100 for gpt-4o) counts our 97 and admits the 98th.
    assert_eq!(python_check(&mut raw, limit.key(), 100, 60.0), Ok(98));
    // We count Python's request too.
    assert_eq!(limiter.headroom(&limit).await.unwrap().requests_used, 98);
    admitted(limiter.check(&limit, 0).await.unwrap()).keep();
    admitted(limiter.check(&limit, 0).await.unwrap()).keep();
    assert_eq!(
        refused(limiter.check(&limit, 0).await.unwrap()).current_count,
        100
    );
    // Python refuses too, with a retry-after computed from our oldest score.
    let retry = python_check(&mut raw, limit.key(), 100, 60.0).unwrap_err();
    assert!(retry > 55.0 && retry <= 60.5, "retry {retry}");
    // Equal timestamps never collapse: every admission is its own member.
    let count: u64 = raw.zcard(limit.key()).unwrap();
    assert_eq!(count, 100);
}

#[tokio::test]
async fn members_are_unique_under_concurrency() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "burst",
            "default",
            Limits::requests(10_000, Duration::from_secs(60)),
        )
        .unwrap();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (l, k) = (limiter.clone(), limit.clone());
            tokio::spawn(async move { l.check(&k, 0).await.unwrap().is_admitted() })
        })
        .collect();
    let mut n = 0;
    for t in tasks {
        n += t.await.unwrap() as u64;
    }
    assert_eq!(n, 500);
    let count: u64 = server.raw().zcard(limit.key()).unwrap();
    assert_eq!(count, 500);
}

#[tokio::test]
async fn retry_after_is_never_early_and_tight() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let window = Duration::from_millis(800);
    let limit = limiter
        .limit("retry", "default", Limits::requests(3, window))
        .unwrap();
    let mut admissions = Vec::new();
    for _ in 0..3 {
        admissions.push(admitted(limiter.check(&limit, 0).await.unwrap()).admitted_at_us());
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    for round in 0..6 {
        let r = refused(limiter.check(&limit, 0).await.unwrap());
        // The slot opens when the oldest of the last 3 admissions leaves the window.
        let opens_at = admissions[admissions.len() - 3] + window.as_micros() as i64;
        let exact_us = (opens_at - r.checked_at_us) as u128;
        let given_us = r.retry_after.as_micros();
        assert!(
            given_us >= exact_us,
            "round {round}: retry {given_us} µs < {exact_us} µs"
        );
        assert!(
            given_us < exact_us + 1_000,
            "rounded up to the ms only: {given_us} vs {exact_us}"
        );
        assert_eq!(given_us % 1_000, 0);
        tokio::time::sleep(r.retry_after).await;
        let a = admitted(limiter.check(&limit, 0).await.unwrap());
        assert!(a.admitted_at_us() >= opens_at);
        admissions.push(a.admitted_at_us());
    }
}

#[tokio::test]
async fn token_retry_after_waits_for_enough_tokens() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let window = Duration::from_millis(700);
    let limit = limiter
        .limit(
            "tok",
            "default",
            Limits::requests(100, window).with_tokens(100),
        )
        .unwrap();
    let first = admitted(limiter.check(&limit, 20).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = admitted(limiter.check(&limit, 60).await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    admitted(limiter.check(&limit, 10).await.unwrap()).keep();
    // 90 used; 50 more needs 40 to leave: both the first (20) and the second (60).
    let r = refused(limiter.check(&limit, 50).await.unwrap());
    assert_eq!(r.exceeded, Exceeded::Tokens);
    assert_eq!((r.tokens_used, r.tokens_remaining), (Some(90), Some(10)));
    let opens_at = second.admitted_at_us() + window.as_micros() as i64;
    let exact_us = (opens_at - r.checked_at_us) as u128;
    assert!(r.retry_after.as_micros() >= exact_us);
    assert!(r.retry_after.as_micros() < exact_us + 1_000);
    tokio::time::sleep(r.retry_after).await;
    admitted(limiter.check(&limit, 50).await.unwrap()).keep();
    first.keep();
    second.keep();
}

#[tokio::test]
async fn reserve_and_reconcile() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "llm",
            "default",
            Limits::requests(50, Duration::from_secs(60)).with_tokens(1_000),
        )
        .unwrap();
    let tokens_used = |l: RateLimiter, k: artemis::limiter::Limit| async move {
        l.headroom(&k).await.unwrap().tokens_used.unwrap()
    };
    let r1 = limiter.acquire(&limit, 600).await.unwrap();
    assert_eq!(r1.tokens_reserved(), 600);
    let r2 = limiter.acquire(&limit, 300).await.unwrap();
    assert_eq!(r2.tokens_used(), 900);
    let r = refused(limiter.check(&limit, 200).await.unwrap());
    assert_eq!(r.exceeded, Exceeded::Tokens);
    // The first call used only 100 of its 600: 500 come back at once.
    r1.reconcile(100).await.unwrap();
    assert_eq!(tokens_used(limiter.clone(), limit.clone()).await, 400);
    let r3 = admitted(limiter.check(&limit, 200).await.unwrap());
    // That call failed: everything it reserved comes back.
    r3.release().await.unwrap();
    assert_eq!(tokens_used(limiter.clone(), limit.clone()).await, 400);
    // A call that used more than estimated is charged the excess.
    r2.reconcile(450).await.unwrap();
    assert_eq!(tokens_used(limiter.clone(), limit.clone()).await, 550);
    // Dropped without reconcile: the estimate stays charged (the call may have happened).
    drop(admitted(limiter.check(&limit, 100).await.unwrap()));
    assert_eq!(tokens_used(limiter.clone(), limit.clone()).await, 650);
    // Request slots are kept whatever happened to the tokens.
    assert_eq!(limiter.headroom(&limit).await.unwrap().requests_used, 4);

    // Storage stays one entry per request and a running sum, never one member per token.
    let keys = artemis::keys::KeySpace::default();
    let mut raw = server.raw();
    let entries: Vec<String> = raw
        .zrange(keys.ratelimit_tokens(limit.key()), 0, -1)
        .unwrap();
    assert_eq!(entries.len(), 3, "{entries:?}");
    let sum: u64 = raw.get(keys.ratelimit_token_sum(limit.key())).unwrap();
    assert_eq!(sum, 650);
    for key in [
        keys.ratelimit_tokens(limit.key()),
        keys.ratelimit_token_sum(limit.key()),
    ] {
        let ttl: i64 = raw.ttl(&key).unwrap();
        assert!((115..=120).contains(&ttl), "{key} ttl {ttl}");
    }

    // A reconcile after the request left the window changes nothing.
    let short = limiter
        .limit(
            "llm",
            "short",
            Limits::requests(10, Duration::from_millis(200)).with_tokens(100),
        )
        .unwrap();
    let late = admitted(limiter.check(&short, 80).await.unwrap());
    tokio::time::sleep(Duration::from_millis(250)).await;
    let fresh = admitted(limiter.check(&short, 90).await.unwrap());
    assert_eq!(fresh.tokens_used(), 90);
    late.release().await.unwrap();
    assert_eq!(
        limiter.headroom(&short).await.unwrap().tokens_used,
        Some(90)
    );
    fresh.keep();
}

#[tokio::test]
async fn lost_token_sum_is_rebuilt() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "heal",
            "default",
            Limits::requests(50, Duration::from_secs(60)).with_tokens(100),
        )
        .unwrap();
    admitted(limiter.check(&limit, 30).await.unwrap()).keep();
    admitted(limiter.check(&limit, 40).await.unwrap()).keep();
    let keys = artemis::keys::KeySpace::default();
    let _: () = server
        .raw()
        .del(keys.ratelimit_token_sum(limit.key()))
        .unwrap();
    let r = refused(limiter.check(&limit, 40).await.unwrap());
    assert_eq!(r.tokens_used, Some(70));
    assert_eq!(
        admitted(limiter.check(&limit, 30).await.unwrap()).tokens_used(),
        100
    );
}

#[tokio::test]
async fn oversize_request_gets_its_own_error() {
    let server = RedisServer::start();
    let (storage, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "big",
            "default",
            Limits::requests(10, Duration::from_secs(60)).with_tokens(1_000),
        )
        .unwrap();
    let started = Instant::now();
    match limiter.acquire(&limit, 1_001).await {
        Err(LimitError::TooLarge {
            requested, limit, ..
        }) => assert_eq!((requested, limit), (1_001, 1_000)),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "no waiting");
    assert!(matches!(
        limiter.check(&limit, 1_001).await,
        Err(LimitError::TooLarge { .. })
    ));
    // The script refuses it on its own too (another writer with the same key).
    assert_eq!(
        storage
            .limiter()
            .limit_check(&limit, 5_000, "x")
            .await
            .unwrap(),
        Verdict::TooLarge
    );
    let exists: bool = server.raw().exists(limit.key()).unwrap();
    assert!(!exists, "nothing recorded");
    // Exactly the limit passes.
    admitted(limiter.check(&limit, 1_000).await.unwrap()).keep();
    // Without a token limit, tokens are not counted at all.
    let plain = limiter
        .limit(
            "big",
            "plain",
            Limits::requests(10, Duration::from_secs(60)),
        )
        .unwrap();
    let r = admitted(limiter.check(&plain, 1_000_000).await.unwrap());
    assert_eq!(r.tokens_reserved(), 0);
}

#[tokio::test]
async fn headroom_changes_nothing() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let limit = limiter
        .limit(
            "ro",
            "default",
            Limits::requests(5, Duration::from_millis(300)).with_tokens(100),
        )
        .unwrap();
    for cost in [10, 20, 30] {
        admitted(limiter.check(&limit, cost).await.unwrap()).keep();
    }
    let h = limiter.headroom(&limit).await.unwrap();
    assert_eq!(
        (
            h.requests_used,
            h.requests_remaining,
            h.tokens_used,
            h.tokens_remaining
        ),
        (3, 2, Some(60), Some(40))
    );
    assert_eq!(h.source, Source::Store);
    // Let everything leave the window: a check would now prune; headroom must not.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let writes = server_writes(&server);
    let mut raw = server.raw();
    let keys = artemis::keys::KeySpace::default();
    let before: Vec<(String, f64)> = raw.zrange_withscores(limit.key(), 0, -1).unwrap();
    for _ in 0..5 {
        let h = limiter.headroom(&limit).await.unwrap();
        assert_eq!((h.requests_used, h.tokens_used), (0, Some(0)));
        let all = limiter.headroom_all().await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].requests_used, all[0].tokens_used), (0, Some(0)));
    }
    assert_eq!(server_writes(&server), writes, "headroom wrote to Redis");
    let after: Vec<(String, f64)> = raw.zrange_withscores(limit.key(), 0, -1).unwrap();
    assert_eq!(before, after);
    assert_eq!(before.len(), 3, "expired members are still there");
    let sum: u64 = raw.get(keys.ratelimit_token_sum(limit.key())).unwrap();
    assert_eq!(sum, 60);
}

#[tokio::test]
async fn registry_lets_a_reader_show_headroom_without_the_writers_config() {
    let server = RedisServer::start_with(ServerOptions {
        acl_users: vec![
            [
                "reader",
                "on",
                ">readpw",
                "~*",
                "+@read",
                "+@connection",
                "+time",
            ]
            .map(String::from)
            .to_vec(),
            ["notime", "on", ">readpw", "~*", "+@read", "+@connection"]
                .map(String::from)
                .to_vec(),
        ],
        ..Default::default()
    });
    let (storage, limiter) = open(&server, FailurePolicy::Local).await;
    let a = limiter
        .limit(
            "svc",
            "alice",
            Limits::requests(10, Duration::from_secs(60)),
        )
        .unwrap();
    let b = limiter
        .preset("anthropic", "claude-sonnet-4-5-20250929", "bob")
        .unwrap();
    let b = limiter
        .limit(
            b.resource(),
            "bob",
            Limits::requests(50, Duration::from_secs(60)).with_tokens(5_000),
        )
        .unwrap();
    for _ in 0..3 {
        admitted(limiter.check(&a, 0).await.unwrap()).keep();
    }
    admitted(limiter.check(&b, 1_200).await.unwrap()).keep();

    let registry = artemis::keys::KeySpace::default().ratelimit_registry();
    let json: String = server.raw().hget(&registry, a.key()).unwrap();
    let entry: RegistryEntry = serde_json::from_str(&json).unwrap();
    assert_eq!(entry, RegistryEntry::of(&a));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["resource"], "svc");
    assert_eq!(value["identifier"], "alice");
    assert_eq!(value["limits"]["requests"], 10);
    assert_eq!(value["window_seconds"], 60.0);

    for user in ["reader", "notime"] {
        let mut settings = Settings {
            redis: server.redis_settings(),
            ..Settings::default()
        };
        settings.redis.username = Some(user.into());
        settings.redis.password = Some("readpw".into());
        settings.limiter.presets.clear(); // the reader knows nothing of the writer's limits
        let reader = Backend::redis(settings)
            .await
            .expect("read-only user connects");
        let writes = server_writes(&server);
        let mut all = reader
            .limiter()
            .read_limits()
            .await
            .expect("read-only headroom")
            .limits;
        assert_eq!(server_writes(&server), writes);
        all.sort_by(|x, y| x.identifier.cmp(&y.identifier));
        assert_eq!(all.len(), 2, "{user}");
        assert_eq!(all[0].key, a.key());
        assert_eq!((all[0].requests_used, all[0].requests_limit), (3, Some(10)));
        assert_eq!((all[0].tokens_used, all[0].tokens_limit), (None, None));
        assert_eq!(all[1].resource, "anthropic:claude-sonnet-4-5-20250929");
        assert_eq!((all[1].requests_used, all[1].requests_limit), (1, Some(50)));
        assert_eq!(
            (all[1].tokens_used, all[1].tokens_limit),
            (Some(1_200), Some(5_000))
        );
        // The read-only user cannot check (the script writes).
        let ro_limiter = RateLimiter::new(reader.limiter().clone());
        match ro_limiter.check(&a, 0).await {
            Err(LimitError::Store(artemis::Error::Permission { .. })) => {}
            other => panic!("expected a permission error, got {other:?}"),
        }
    }

    // A malformed entry, or a window key overwritten with another type, costs its own row only.
    let _: () = server
        .raw()
        .hset(&registry, "artemis:ratelimit:x:y", "{not json")
        .unwrap();
    let c = limiter
        .limit(
            "svc",
            "carol",
            Limits::requests(10, Duration::from_secs(60)),
        )
        .unwrap();
    admitted(limiter.check(&c, 0).await.unwrap()).keep();
    assert_eq!(limiter.headroom_all().await.unwrap().len(), 3);
    let _: () = server.raw().set(c.key(), "not a zset").unwrap();
    assert_eq!(limiter.headroom_all().await.unwrap().len(), 2);
    // The dashboard's snapshot carries the headroom, and says which entries it could not read.
    let snap = artemis::snapshot::read_snapshot(&storage, chrono::Utc::now())
        .await
        .unwrap();
    let mut shown: Vec<&str> = snap.limits.iter().map(|l| l.identifier.as_str()).collect();
    shown.sort();
    assert_eq!(shown, ["alice", "bob"]);
    let bad: Vec<String> = snap
        .malformed
        .iter()
        .map(|m| format!("{} {}", m.key, m.reason))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(
        bad.iter()
            .any(|m| m.starts_with(&registry) && m.contains("artemis:ratelimit:x:y"))
    );
    assert!(bad.iter().any(|m| m.starts_with(c.key())));
    assert!(
        limiter.check(&c, 0).await.is_err(),
        "WRONGTYPE is an error, not an admission"
    );
    // forget() removes the key from the registry.
    limiter.forget(&a).await.unwrap();
    assert_eq!(limiter.headroom_all().await.unwrap().len(), 1);
}

#[tokio::test]
async fn reset_empties_only_its_window() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let l = Limits::requests(2, Duration::from_secs(60)).with_tokens(100);
    let a = limiter.limit("r", "a", l).unwrap();
    let b = limiter.limit("r", "b", l).unwrap();
    for k in [&a, &b] {
        admitted(limiter.check(k, 50).await.unwrap()).keep();
        admitted(limiter.check(k, 50).await.unwrap()).keep();
        assert!(!limiter.check(k, 1).await.unwrap().is_admitted());
    }
    limiter.reset(&a).await.unwrap();
    let keys = artemis::keys::KeySpace::default();
    let mut raw = server.raw();
    for key in [
        a.key().to_owned(),
        keys.ratelimit_tokens(a.key()),
        keys.ratelimit_token_sum(a.key()),
    ] {
        let exists: bool = raw.exists(&key).unwrap();
        assert!(!exists, "{key}");
    }
    assert_eq!(limiter.headroom(&b).await.unwrap().requests_used, 2);
    admitted(limiter.check(&a, 100).await.unwrap()).keep();
}

#[tokio::test]
async fn script_cache_loss_is_recovered() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Closed).await;
    let limit = limiter
        .limit(
            "flush",
            "default",
            Limits::requests(5, Duration::from_secs(60)).with_tokens(50),
        )
        .unwrap();
    let r = admitted(limiter.check(&limit, 10).await.unwrap());
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    r.reconcile(5).await.unwrap();
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    let r = admitted(limiter.check(&limit, 10).await.unwrap());
    assert_eq!((r.requests_used(), r.tokens_used()), (2, 15));
    r.keep();
}

#[tokio::test]
async fn acquire_waits_with_deadline_and_is_cancellable() {
    let server = RedisServer::start();
    let (_s, limiter) = open(&server, FailurePolicy::Local).await;
    let window = Duration::from_millis(400);
    let limit = limiter
        .limit("wait", "default", Limits::requests(2, window))
        .unwrap();
    let first = limiter.acquire(&limit, 0).await.unwrap();
    limiter.acquire(&limit, 0).await.unwrap().keep();
    let started = Instant::now();
    let third = limiter
        .acquire_with(
            &limit,
            0,
            AcquireOptions {
                timeout: Duration::from_secs(5),
                max_jitter: Duration::from_millis(20),
            },
        )
        .await
        .unwrap();
    assert!(third.admitted_at_us() >= first.admitted_at_us() + window.as_micros() as i64);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A deadline the slot cannot meet fails at once (only a reset could open it earlier).
    let long = limiter
        .limit("wait", "long", Limits::requests(1, Duration::from_secs(60)))
        .unwrap();
    limiter.acquire(&long, 0).await.unwrap().keep();
    let started = Instant::now();
    let opts =
        AcquireOptions::from_settings(limiter.settings()).with_timeout(Duration::from_secs(2));
    match limiter.acquire_with(&long, 0, opts).await {
        Err(LimitError::DeadlineExceeded { refusal, .. }) => assert_eq!(refusal.current_count, 1),
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(500));

    // A token wait may end early through a release, so it waits up to its deadline.
    let tok = limiter
        .limit(
            "wait",
            "tok",
            Limits::requests(10, Duration::from_secs(60)).with_tokens(10),
        )
        .unwrap();
    let hog = limiter.acquire(&tok, 10).await.unwrap();
    let waiter = {
        let (l, k) = (limiter.clone(), tok.clone());
        tokio::spawn(async move {
            l.acquire_with(
                &k,
                5,
                AcquireOptions::from_settings(l.settings())
                    .with_timeout(Duration::from_millis(600)),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    hog.release().await.unwrap();
    // The waiter polls at its retry-after (a minute away) — so it only sees the release at its
    // deadline check.
    match waiter.await.unwrap() {
        Ok(r) => r.keep(),
        Err(e) => panic!("expected admission at the deadline re-check, got {e}"),
    }

    // Cancelling a waiting acquire records nothing.
    let before = limiter.headroom(&long).await.unwrap().requests_used;
    let cancelled = tokio::time::timeout(
        Duration::from_millis(100),
        limiter.acquire_with(
            &long,
            0,
            AcquireOptions::from_settings(limiter.settings())
                .with_timeout(Duration::from_secs(600)),
        ),
    )
    .await;
    assert!(cancelled.is_err(), "still waiting when cancelled");
    // (It failed fast or waited: either way no extra admission.)
    assert_eq!(limiter.headroom(&long).await.unwrap().requests_used, before);
}

async fn wait_connected(storage: &Backend) {
    let mut state = storage.connection();
    tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if state.borrow_and_update().is_up() {
                return;
            }
            state.changed().await.unwrap();
        }
    })
    .await
    .expect("reconnected to the restarted server");
}

async fn failure_policy_case(policy: FailurePolicy) {
    let mut server = RedisServer::start();
    let (storage, limiter) = open(&server, policy).await;
    let limit = limiter
        .limit(
            "fp",
            "default",
            Limits::requests(3, Duration::from_secs(60)).with_tokens(100),
        )
        .unwrap();
    let r = admitted(limiter.check(&limit, 10).await.unwrap());
    assert_eq!(r.source(), Source::Store);
    r.keep();

    server.kill();
    match policy {
        FailurePolicy::Open => {
            // Admitted uncounted by Redis, but never more than the limit by this process: its
            // own window holds the Redis admission and these.
            for _ in 0..2 {
                let r = admitted(limiter.check(&limit, 40).await.unwrap());
                assert_eq!(r.source(), Source::FailOpen);
                r.reconcile(1).await.unwrap();
            }
            let refusal = refused(limiter.check(&limit, 1).await.unwrap());
            assert_eq!((refusal.source, refusal.current_count), (Source::Local, 3));
            assert!(limiter.headroom(&limit).await.is_err());
        }
        FailurePolicy::Local => {
            // The same limits, in the in-process window, which already holds this process's
            // admission by Redis (requests 1, tokens 10).
            for i in 2..=3 {
                let r = admitted(limiter.check(&limit, 20).await.unwrap());
                assert_eq!((r.source(), r.requests_used()), (Source::Local, i));
                r.keep();
            }
            let refusal = refused(limiter.check(&limit, 1).await.unwrap());
            assert_eq!(refusal.source, Source::Local);
            assert!(refusal.retry_after > Duration::from_secs(59));
            let h = limiter.headroom(&limit).await.unwrap();
            assert_eq!(
                (h.source, h.requests_used, h.tokens_used),
                (Source::Local, 3, Some(50))
            );
            // Oversize is still its own error.
            assert!(matches!(
                limiter.check(&limit, 101).await,
                Err(LimitError::TooLarge { .. })
            ));
        }
        FailurePolicy::Closed => {
            assert!(matches!(
                limiter.check(&limit, 1).await,
                Err(LimitError::Unavailable(_))
            ));
            let started = Instant::now();
            let opts = AcquireOptions::from_settings(limiter.settings())
                .with_timeout(Duration::from_millis(400));
            assert!(matches!(
                limiter.acquire_with(&limit, 1, opts).await,
                Err(LimitError::Unavailable(_))
            ));
            assert!(started.elapsed() >= Duration::from_millis(400));
        }
    }

    server.start_again();
    wait_connected(&storage).await;
    if policy != FailurePolicy::Closed {
        // This process already sent the limit in this window: it refuses by itself, whatever
        // the fresh server (an empty window) would say.
        let refusal = refused(limiter.check(&limit, 10).await.unwrap());
        assert_eq!((refusal.source, refusal.current_count), (Source::Local, 3));
        limiter.reset(&limit).await.unwrap();
    }
    // Back on Redis (a fresh server: the window is empty again).
    let r = admitted(limiter.check(&limit, 10).await.unwrap());
    assert_eq!((r.source(), r.requests_used()), (Source::Store, 1));
    r.keep();
    let count: u64 = server.raw().zcard(limit.key()).unwrap();
    assert_eq!(count, 1);
    // The registry is recorded again on the restarted server.
    let registered: bool = server
        .raw()
        .hexists(
            artemis::keys::KeySpace::default().ratelimit_registry(),
            limit.key(),
        )
        .unwrap();
    assert!(registered);
}

#[tokio::test]
async fn failure_policy_open() {
    failure_policy_case(FailurePolicy::Open).await;
}

#[tokio::test]
async fn failure_policy_local() {
    failure_policy_case(FailurePolicy::Local).await;
}

#[tokio::test]
async fn failure_policy_closed() {
    failure_policy_case(FailurePolicy::Closed).await;
}
