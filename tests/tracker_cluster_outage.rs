//! The outage buffer on Redis Cluster: a master that holds a card's slot dies, the writes for
//! that card are kept, and they land once the master is back; a master that holds only the
//! index dies, and the card's event is recorded once however often the write is retried.

mod support;

use std::time::{Duration, Instant};

use artemis::buffer::WriteOutcome;
use artemis::model::{PipelineStatus, StageStatus};
use artemis::tracker::StageUpdate;
use serde_json::Map;
use support::RedisCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_dead_master_are_replayed_when_it_returns() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut cluster = RedisCluster::start();
    let tracker = support::tracker(cluster.settings()).await;
    tracker.start_pipeline("card", 2, Map::new()).await.unwrap();
    // The master holding the card's document.
    let owner = cluster
        .nodes
        .iter()
        .position(|n| n.cli(&["EXISTS", "artemis:pipeline:card"]) == "1")
        .expect("one master holds the card");
    cluster.kill_node(owner);

    let started = Instant::now();
    let mut outcomes = Vec::new();
    for stage in ["a", "b"] {
        let r = tracker
            .update_stage("card", stage, StageUpdate::new(StageStatus::Completed))
            .await;
        outcomes.push(r.unwrap());
    }
    outcomes.push(
        tracker
            .complete_pipeline("card", PipelineStatus::Completed, None)
            .await
            .unwrap(),
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        outcomes.iter().all(|o| *o == WriteOutcome::Buffered),
        "{outcomes:?}"
    );

    cluster.restart_node(owner);
    assert!(
        tracker.buffer().wait_drained(Duration::from_secs(30)).await,
        "{:?}",
        tracker.buffer().stats()
    );
    // The restarted master lost its data (no persistence in tests): the replayed writes made
    // the stage documents again, and the history holds the replayed stage events. The card's
    // document is gone, so its replayed completion, as the original's, records nothing.
    let h = tracker.history("card", None, 10).await.unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    let s = tracker.buffer().stats();
    assert_eq!((s.buffered, s.replayed, s.dropped, s.failed), (3, 3, 0, 0));
    let seeds: Vec<String> = cluster
        .seeds()
        .iter()
        .map(|s| format!("redis://{s}"))
        .collect();
    let mut raw = redis::cluster::ClusterClient::new(seeds)
        .unwrap()
        .get_connection()
        .unwrap();
    for stage in ["a", "b"] {
        let doc: Option<String> = redis::cmd("GET")
            .arg(format!("artemis:pipeline:card:stage:{stage}"))
            .query(&mut raw)
            .unwrap();
        assert!(doc.unwrap().contains("\"completed\""));
    }
}

/// The master holding the index dies while a card on another master is written: the card's
/// script lands and its index write fails. The replay once the master is back writes the
/// index (and the stage document) without running the script again: each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_index_master_died_is_replayed_without_repeating_its_event() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut cluster = RedisCluster::start();
    let tracker = support::tracker(cluster.settings()).await;
    let holds = |key: &str| {
        cluster
            .nodes
            .iter()
            .position(|n| n.cli(&["EXISTS", key]) == "1")
    };
    tracker
        .start_pipeline("first", 2, Map::new())
        .await
        .unwrap();
    let index = holds("artemis:pipeline#index").expect("one master holds the index");
    // A card whose document lives on another master than the index.
    let mut card = None;
    for i in 0..100 {
        let c = format!("card-{i}");
        tracker.start_pipeline(&c, 2, Map::new()).await.unwrap();
        if holds(&format!("artemis:pipeline:{c}")).is_some_and(|o| o != index) {
            card = Some(c);
            break;
        }
    }
    let card = card.expect("a card on another master");
    cluster.kill_node(index);
    let outcome = tracker
        .update_stage(&card, "a", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    assert_eq!(outcome, WriteOutcome::Buffered);
    cluster.restart_node(index);
    assert!(
        tracker.buffer().wait_drained(Duration::from_secs(30)).await,
        "{:?}",
        tracker.buffer().stats()
    );
    let events = tracker.history(&card, None, 10).await.unwrap();
    assert_eq!(
        events.len(),
        2,
        "started and stage a, once each: {events:?}"
    );
    let listed = tracker.list_cards().await.unwrap();
    assert!(
        listed.contains(&card),
        "the replay wrote the index: {listed:?}"
    );
}
