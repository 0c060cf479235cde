//! The limiter against a server that is up but refuses writes.
//!
//! Turned into a replica (`REPLICAOF`, READONLY replies: what a failover looks like to a client
//! still talking to the old master), every check is refused; that is a transient refusal, so
//! the limiter applies its failure policy instead of failing the caller, and is back on Redis
//! once the server accepts writes again.
//!
//! At `maxmemory` with `noeviction` (OOM replies), `check.lua` still runs: its first command,
//! the prune (`ZREMRANGEBYSCORE`), is a write Redis allows at OOM (it only deletes), and once a
//! script has written Redis lets it finish, so the check is decided by Redis, exactly, and
//! records its admission (one member per admitted request, bounded by the limit and expiring
//! with the window). What is refused there (the registry's HSET) must not stop the check.

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::config::FailurePolicy;
use artemis::limiter::{Decision, LimitError, Limits, RateLimiter, Source};
use redis::Commands;
use support::{RedisServer, free_port};

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

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    ReadOnly,
    OutOfMemory,
}

fn start_fault(server: &RedisServer, fault: Fault) {
    match fault {
        // A replica of a master that is not there: it keeps its data and refuses writes.
        Fault::ReadOnly => {
            let port = free_port().to_string();
            assert_eq!(server.cli(&["REPLICAOF", "127.0.0.1", &port]), "OK");
        }
        Fault::OutOfMemory => {
            assert_eq!(
                server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
                "OK"
            );
            assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory", "1"]), "OK");
        }
    }
}

fn end_fault(server: &RedisServer, fault: Fault) {
    match fault {
        Fault::ReadOnly => assert_eq!(server.cli(&["REPLICAOF", "NO", "ONE"]), "OK"),
        Fault::OutOfMemory => assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK"),
    }
}

async fn refusal_case(fault: Fault, policy: FailurePolicy) {
    let server = RedisServer::start();
    let (_storage, limiter) = open(&server, policy).await;
    let limit = limiter
        .limit(
            "refusals",
            "default",
            Limits::requests(3, Duration::from_secs(60)),
        )
        .unwrap();
    let first = limiter
        .check(&limit, 0)
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert_eq!(first.source(), Source::Store);
    first.keep();

    start_fault(&server, fault);
    let outcome = limiter.check(&limit, 0).await;
    match policy {
        FailurePolicy::Local => {
            let r = match outcome {
                Ok(Decision::Admitted(r)) => r,
                other => panic!("expected a local admission, got {other:?}"),
            };
            // The local window counts the admission Redis made before the fault.
            assert_eq!((r.source(), r.requests_used()), (Source::Local, 2));
            r.keep();
        }
        FailurePolicy::Open => {
            let r = match outcome {
                Ok(Decision::Admitted(r)) => r,
                other => panic!("expected a fail-open admission, got {other:?}"),
            };
            assert_eq!(r.source(), Source::FailOpen);
            r.keep();
        }
        FailurePolicy::Closed => match outcome {
            Err(LimitError::Unavailable(e)) => {
                let text = e.to_string();
                assert!(text.contains("READONLY") || text.contains("OOM"), "{text}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        },
    }
    // Nothing was recorded in Redis while it refused writes.
    let count: u64 = server.raw().zcard(limit.key()).unwrap();
    assert_eq!(count, 1);

    end_fault(&server, fault);
    let r = limiter
        .check(&limit, 0)
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert_eq!((r.source(), r.requests_used()), (Source::Store, 2));
    r.keep();
}

#[tokio::test]
async fn readonly_replica_makes_the_local_policy_decide() {
    refusal_case(Fault::ReadOnly, FailurePolicy::Local).await;
}

#[tokio::test]
async fn readonly_replica_makes_the_closed_policy_refuse_as_unavailable() {
    refusal_case(Fault::ReadOnly, FailurePolicy::Closed).await;
}

#[tokio::test]
async fn readonly_replica_makes_the_open_policy_admit() {
    refusal_case(Fault::ReadOnly, FailurePolicy::Open).await;
}

/// At OOM the check runs on Redis (see the module comment): exact, shared, never an error,
/// for a key already registered and for one that could not be registered.
async fn out_of_memory_case(policy: FailurePolicy) {
    let server = RedisServer::start();
    let (_storage, limiter) = open(&server, policy).await;
    let (_other_storage, other) = open(&server, policy).await;
    let limits = Limits::requests(3, Duration::from_secs(60));
    let known = limiter.limit("oom", "known", limits).unwrap();
    limiter
        .check(&known, 0)
        .await
        .unwrap()
        .into_reservation()
        .unwrap()
        .keep();
    start_fault(&server, Fault::OutOfMemory);
    // The registry cannot be written now.
    assert!(
        server
            .cli(&["HSET", "artemis:ratelimit::registry", "x", "y"])
            .contains("OOM")
    );
    let fresh = limiter.limit("oom", "fresh", limits).unwrap();
    for (limit, before) in [(&known, 1), (&fresh, 0)] {
        for used in before + 1..=3 {
            let r = limiter
                .check(limit, 0)
                .await
                .unwrap()
                .into_reservation()
                .unwrap();
            assert_eq!((r.source(), r.requests_used()), (Source::Store, used));
            r.keep();
        }
        // This process's own window is full, so it refuses by itself; another process asks
        // Redis, which refuses too.
        match limiter.check(limit, 0).await.unwrap() {
            Decision::Refused(r) => assert_eq!((r.source, r.current_count), (Source::Local, 3)),
            Decision::Admitted(r) => panic!("admitted past the limit at OOM: {r:?}"),
        }
        match other.check(limit, 0).await.unwrap() {
            Decision::Refused(r) => assert_eq!((r.source, r.current_count), (Source::Store, 3)),
            Decision::Admitted(r) => panic!("admitted past the limit at OOM: {r:?}"),
        }
        let count: u64 = server.raw().zcard(limit.key()).unwrap();
        assert_eq!(count, 3);
    }
    end_fault(&server, Fault::OutOfMemory);
}

#[tokio::test]
async fn out_of_memory_server_still_decides_exactly_under_the_local_policy() {
    out_of_memory_case(FailurePolicy::Local).await;
}

#[tokio::test]
async fn out_of_memory_server_still_decides_exactly_under_the_closed_policy() {
    out_of_memory_case(FailurePolicy::Closed).await;
}
