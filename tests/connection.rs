//! The Redis connection against real servers: standalone, Cluster, TLS, ACL, unix socket,
//! reconnect after a crash, fast and clear failures, no secret in any message.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use artemis::Error;
use artemis::config::RedisSettings;
use artemis::connection::{ConnState, Redis};
use support::{RedisCluster, RedisServer, ServerOptions};

async fn ping(redis: &Redis) -> Result<String, Error> {
    redis.query(&redis::cmd("PING")).await
}

#[tokio::test]
async fn standalone_round_trip_and_state() {
    let server = RedisServer::start();
    let redis = Redis::connect(&server.redis_settings()).await.unwrap();
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
    assert!(matches!(redis.current_state(), ConnState::Connected { .. }));
    assert_eq!(
        redis.endpoint(),
        format!("redis://127.0.0.1:{}/0", server.port)
    );
    let report = artemis::check::check(&server.settings()).await.unwrap();
    assert!(!report.cluster);
    assert!(report.server_version.starts_with('7') || report.server_version.starts_with('6'));
}

#[tokio::test]
async fn reconnects_after_the_server_is_killed_and_restarted() {
    let mut server = RedisServer::start();
    let redis = Redis::connect(&server.redis_settings()).await.unwrap();
    let mut state = redis.state();
    ping(&redis).await.unwrap();

    server.kill();
    // The first call after the crash notices it; the next ones fail at once.
    assert!(ping(&redis).await.unwrap_err().is_outage());
    let started = Instant::now();
    let err = ping(&redis).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "fails fast while down"
    );
    assert!(matches!(
        redis.current_state(),
        ConnState::Reconnecting { .. }
    ));

    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if matches!(*state.borrow_and_update(), ConnState::Connected { .. }) {
            break;
        }
        assert!(Instant::now() < deadline, "did not reconnect");
        let _ = tokio::time::timeout(Duration::from_millis(200), state.changed()).await;
    }
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
}

#[tokio::test]
async fn lazy_connection_reports_unreachable_then_connects() {
    let mut server = RedisServer::start();
    server.kill();
    let redis = Redis::connect_lazy(&server.redis_settings()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        redis.current_state(),
        ConnState::Unreachable { .. }
    ));
    assert!(ping(&redis).await.is_err());
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !redis.current_state().is_up() {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
}

#[tokio::test]
async fn unreachable_port_fails_fast_naming_host_and_port() {
    let port = support::free_port();
    let settings = RedisSettings {
        host: "127.0.0.1".into(),
        port,
        connect_timeout: 1.0,
        ..Default::default()
    };
    let started = Instant::now();
    let err = Redis::connect(&settings).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let msg = err.to_string();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(matches!(err, Error::Unreachable { .. }), "{msg}");
}

#[tokio::test]
async fn silent_server_times_out_instead_of_hanging() {
    // Accepts TCP connections (kernel backlog) but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let settings = RedisSettings {
        host: "127.0.0.1".into(),
        port,
        connect_timeout: 0.5,
        timeout: 0.5,
        ..Default::default()
    };
    let started = Instant::now();
    let err = Redis::connect(&settings).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    drop(listener);
}

#[tokio::test]
async fn wrong_password_is_clear_and_secret_free() {
    let server = RedisServer::start_with(ServerOptions {
        password: Some("right-pass-123".into()),
        ..Default::default()
    });
    let mut settings = server.redis_settings();
    settings.password = Some("wrong-pass-456".into());
    let err = Redis::connect(&settings).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Auth { .. }), "{msg}");
    assert!(msg.contains("credentials"), "{msg}");
    assert!(
        !msg.contains("wrong-pass-456") && !msg.contains("right-pass-123"),
        "{msg}"
    );
    assert!(!format!("{err:?}").contains("wrong-pass-456"));

    // The right password works, and is not in the endpoint or Debug output either.
    let redis = Redis::connect(&server.redis_settings()).await.unwrap();
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
    assert!(!format!("{redis:?}").contains("right-pass-123"));
    assert!(!redis.endpoint().contains("right-pass-123"));
}

#[tokio::test]
async fn the_reconnect_task_lets_go_of_a_dropped_handle() {
    // Wrong credentials make the task wait the longest backoff between attempts; a task that
    // kept the handle alive through that wait would keep its state channel open for a minute.
    let server = RedisServer::start_with(ServerOptions {
        password: Some("right-pass-123".into()),
        ..Default::default()
    });
    let mut settings = server.redis_settings();
    settings.password = Some("wrong-pass-456".into());
    settings.reconnect_max_backoff = 60.0;
    let redis = Redis::connect_lazy(&settings).unwrap();
    let mut state = redis.state();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !matches!(redis.current_state(), ConnState::Unreachable { .. }) {
        assert!(Instant::now() < deadline, "the first attempt did not fail");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(redis);
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        while state.changed().await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "the handle outlived its last user");
}

#[tokio::test]
async fn acl_user_logs_in_and_is_confined() {
    let server = RedisServer::start_with(ServerOptions {
        acl_users: vec![
            [
                "artemis",
                "on",
                ">acl-pass-789",
                "~artemis:*",
                "&artemis:*",
                "+@all",
            ]
            .map(String::from)
            .to_vec(),
        ],
        ..Default::default()
    });
    let mut settings = server.redis_settings();
    settings.username = Some("artemis".into());
    settings.password = Some("acl-pass-789".into());
    let redis = Redis::connect(&settings).await.unwrap();
    let _: () = redis
        .query(redis::cmd("SET").arg("artemis:x").arg("1"))
        .await
        .unwrap();
    let err = redis
        .query::<()>(redis::cmd("SET").arg("other:x").arg("1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Permission { .. }), "{err}");

    settings.password = Some("nope".into());
    let err = Redis::connect(&settings).await.unwrap_err();
    assert!(
        err.to_string().contains("\"artemis\""),
        "names the user: {err}"
    );
    assert!(!err.to_string().contains("nope"));
}

#[tokio::test]
async fn tls_server() {
    let server = RedisServer::start_with(ServerOptions {
        tls: true,
        ..Default::default()
    });
    let redis = Redis::connect(&server.redis_settings()).await.unwrap();
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
    assert!(
        redis.endpoint().starts_with("rediss://"),
        "{}",
        redis.endpoint()
    );
    // Host/port settings with tls = true reach the same server.
    let settings = RedisSettings {
        host: "127.0.0.1".into(),
        port: server.port,
        tls: true,
        tls_insecure: true,
        ..Default::default()
    };
    let redis = Redis::connect(&settings).await.unwrap();
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
    // Plain TCP to a TLS port does not hang.
    let plain = RedisSettings {
        url: Some(format!("redis://127.0.0.1:{}/", server.port)),
        connect_timeout: 1.0,
        timeout: 1.0,
        ..Default::default()
    };
    let started = Instant::now();
    assert!(Redis::connect(&plain).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn unix_socket_and_db_number() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock");
    let server = RedisServer::start_with(ServerOptions {
        extra: vec![
            ("unixsocket".into(), sock.display().to_string()),
            ("unixsocketperm".into(), "700".into()),
        ],
        ..Default::default()
    });
    let settings = RedisSettings {
        url: Some(format!("unix://{}?db=3", sock.display())),
        ..Default::default()
    };
    let redis = Redis::connect(&settings).await.unwrap();
    let _: () = redis
        .query(redis::cmd("SET").arg("artemis:in-db-3").arg("1"))
        .await
        .unwrap();
    assert_eq!(server.cli(&["-n", "3", "GET", "artemis:in-db-3"]), "1");
    assert_eq!(server.cli(&["-n", "0", "EXISTS", "artemis:in-db-3"]), "0");
}

#[tokio::test]
async fn cluster_round_trips_pipelines_and_scan() {
    let cluster = RedisCluster::start();
    let redis = Redis::connect(&cluster.settings().redis).await.unwrap();
    assert!(redis.is_cluster());
    assert_eq!(ping(&redis).await.unwrap(), "PONG");
    // A pipeline spanning many slots is split per slot and answered in order.
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.set(format!("artemis:k{i}"), i).ignore();
    }
    redis.query_pipe::<()>(&pipe).await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.get(format!("artemis:k{i}"));
    }
    let values: Vec<i64> = redis.query_pipe(&pipe).await.unwrap();
    assert_eq!(values, (0..50).collect::<Vec<_>>());
    // Keys live on several masters; SCAN finds them all.
    let per_node: Vec<i64> = cluster
        .cli_all(&["DBSIZE"])
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "{per_node:?}"
    );
    let mut keys = redis.scan_match("artemis:k*", None, 10_000).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 50);
    let report = artemis::check::check(&cluster.settings()).await.unwrap();
    assert_eq!(report.cluster_state.as_deref(), Some("ok"));
}

#[tokio::test]
async fn cluster_survives_a_master_restart() {
    let mut cluster = RedisCluster::start();
    let redis = Redis::connect(&cluster.settings().redis).await.unwrap();
    cluster.kill_node(1);
    cluster.restart_node(1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pipe = redis::pipe();
        for i in 0..30 {
            pipe.set(format!("artemis:r{i}"), i).ignore();
        }
        match redis.query_pipe::<()>(&pipe).await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "cluster did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
