//! TLS end to end against a local TLS-only server: the library verifies the server with the CA
//! file from the configuration (no "insecure" shortcut), writes and reads cards; the binary's
//! `--once` does the same from a config file; without the CA the connection is refused with a
//! clear message instead of silently trusting the server. The same against a TLS-only
//! Cluster (TLS on the cluster bus too), with the CA file. Certificates are made in process.

mod support;

use artemis::Backend;
use artemis::model::StageStatus;
use artemis::tracker::{StageUpdate, Tracker};
use support::{RedisCluster, RedisServer, ServerOptions};

fn tls_server() -> RedisServer {
    RedisServer::start_with(ServerOptions {
        tls: true,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_tls_end_to_end() {
    let server = tls_server();
    let ca = server.dir.path().join("ca.pem");
    let url = format!("rediss://127.0.0.1:{}/0", server.port);

    let mut settings = server.settings();
    settings.redis.url = Some(url.clone());
    settings.redis.tls_insecure = false;
    settings.redis.tls_ca_file = Some(ca.clone());
    let storage = Backend::redis(settings.clone()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    tracker
        .start_pipeline("tls-card", 1, serde_json::Map::new())
        .await
        .unwrap();
    tracker
        .update_stage(
            "tls-card",
            "build",
            StageUpdate::new(StageStatus::Running).progress(50),
        )
        .await
        .unwrap();
    let card = tracker.get_card("tls-card").await.unwrap().unwrap();
    assert_eq!(card.stages[0].progress_percent, Some(50));

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{url}\"\ntls_ca_file = \"{}\"\n",
            ca.display()
        ),
    )
    .unwrap();
    let run = |config: &std::path::Path| {
        support::artemis_top(dir.path())
            .args([
                "--config",
                config.to_str().unwrap(),
                "--once",
                "--format",
                "json",
            ])
            .output()
            .unwrap()
    };
    let out = run(&config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["cards"][0]["card_id"], "tls-card");
    assert!(
        v["source"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("rediss://")
    );

    // Without the CA the self-signed server is not trusted.
    let untrusted = dir.path().join("untrusted.toml");
    std::fs::write(
        &untrusted,
        format!("[redis]\nurl = \"{url}\"\nconnect_timeout = 2.0\n"),
    )
    .unwrap();
    let out = run(&untrusted);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("127.0.0.1"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "says it is about TLS: {err}"
    );
}

fn tls_cluster() -> RedisCluster {
    RedisCluster::start_with(ServerOptions {
        tls: true,
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_verified_with_the_ca_file() {
    let cluster = tls_cluster();
    let mut settings = cluster.settings();
    settings.redis.tls_insecure = false;
    settings.redis.tls_ca_file = Some(cluster.nodes[0].dir.path().join("ca.pem"));
    let storage = Backend::redis(settings).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    // Enough cards to land on every master.
    let cards: Vec<String> = (0..12).map(|i| format!("tls-cluster-{i}")).collect();
    for card in &cards {
        tracker
            .start_pipeline(card, 1, serde_json::Map::new())
            .await
            .unwrap();
        tracker
            .update_stage(
                card,
                "build",
                StageUpdate::new(StageStatus::Running).progress(25),
            )
            .await
            .unwrap();
    }
    for card in &cards {
        let read = tracker.get_card(card).await.unwrap().unwrap();
        assert_eq!(read.stages[0].progress_percent, Some(25), "{card}");
    }
    let keys: usize = cluster
        .cli_all(&["DBSIZE"])
        .iter()
        .filter(|n| n.trim().parse::<usize>().unwrap_or(0) > 0)
        .count();
    assert_eq!(keys, 3, "the cards are spread over the three masters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_not_trusted_without_the_ca_file() {
    let cluster = tls_cluster();
    let mut settings = cluster.settings();
    settings.redis.tls_insecure = false;
    settings.redis.tls_ca_file = None;
    let err = Backend::redis(settings)
        .await
        .expect_err("an untrusted cluster is refused");
    assert!(err.is_outage(), "{err}");
}
