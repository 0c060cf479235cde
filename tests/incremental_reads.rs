//! Incremental polling against a real Redis (and a 3-master Cluster): between full reads the
//! feed reads only the cards written since its previous poll, and the snapshot those deltas
//! build ([`Snapshot::apply_delta`]) never misses a write and never goes back to an older
//! version of a card — with writers racing the poller, writers whose clocks are far from the
//! server's, cards that expire, cards deleted by hand, a reconnect in the middle and
//! Python-written cards that only a SCAN (or their events) reveal.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Map;
use tokio::sync::mpsc;

use artemis::Backend;
use artemis::config::Settings;
use artemis::feed::{Feed, StorageFeed};
use artemis::metrics::HistoryWindow;
use artemis::model::StageStatus;
use artemis::snapshot::{Snapshot, Update};
use artemis::tracker::{PipelineStart, StageReport};
use artemis::tui::message::{Command, Message};
use artemis::tui::source;
use support::{RedisCluster, RedisServer, ServerOptions};

/// Settings for a poller that reads in full only when asked (or at a reconnect).
fn polling(mut settings: Settings) -> Settings {
    settings.tracker.full_read_interval_seconds = 3600;
    settings.tracker.scan_interval_seconds = 3600;
    settings
}

/// What a dashboard holds: the last full read with every delta since applied.
struct Held {
    snap: Option<Snapshot>,
    fulls: usize,
    deltas: usize,
    /// The highest progress seen per card (the writers only raise it).
    progress: HashMap<String, i64>,
}

impl Held {
    fn new() -> Self {
        Self {
            snap: None,
            fulls: 0,
            deltas: 0,
            progress: HashMap::new(),
        }
    }

    fn take(&mut self, update: Update) {
        match update {
            Update::Full(s) => {
                self.fulls += 1;
                self.snap = Some(*s);
            }
            Update::Delta(d) => {
                self.deltas += 1;
                self.snap
                    .as_mut()
                    .expect("a delta comes after a full read")
                    .apply_delta(*d);
            }
        }
        self.check_never_older();
    }

    /// Fails if a card shows less progress than it already showed.
    fn check_never_older(&mut self) {
        for card in &self.snap.as_ref().unwrap().cards {
            let p = progress_of(card);
            let seen = self
                .progress
                .entry(card.pipeline.card_id.clone())
                .or_insert(p);
            assert!(
                p >= *seen,
                "card {} went back from progress {} to {p}",
                card.pipeline.card_id,
                *seen
            );
            *seen = p;
        }
    }

    fn cards(&self) -> &[artemis::tracker::Card] {
        &self.snap.as_ref().unwrap().cards
    }

    fn has(&self, id: &str) -> bool {
        self.cards().iter().any(|c| c.pipeline.card_id == id)
    }
}

fn progress_of(card: &artemis::tracker::Card) -> i64 {
    card.stages
        .iter()
        .find(|s| s.stage_name == "work")
        .and_then(|s| s.progress_percent)
        .unwrap_or(-1)
}

async fn poll(feed: &StorageFeed, full: bool) -> Update {
    feed.poll(Utc::now(), HistoryWindow::default(), full)
        .await
        .expect("poll")
}

/// The cards of a full read, on a connection of its own (so no SCAN the feed made is reused).
async fn full_read(settings: &Settings) -> Vec<artemis::tracker::Card> {
    let backend = Backend::redis(settings.clone()).await.expect("connect");
    artemis::snapshot::read_snapshot(&backend, Utc::now())
        .await
        .expect("full read")
        .cards
}

fn start(card: &str, at: DateTime<Utc>) -> PipelineStart {
    let mut metadata = Map::new();
    metadata.insert("title".into(), format!("card {card}").into());
    PipelineStart {
        card_id: card.into(),
        total_stages: 3,
        metadata,
        at,
    }
}

fn report(card: &str, progress: u8, at: DateTime<Utc>) -> StageReport {
    StageReport {
        card_id: card.into(),
        stage_name: "work".into(),
        status: StageStatus::Running,
        progress_percent: Some(progress),
        message: Some(format!("at {progress}")),
        metadata: Map::new(),
        at,
    }
}

/// How long after a write a poll of changes is sure to show it: at once on a server; on
/// Cluster, where a card's documents may land after its index entry, once the skew has passed.
fn settle(cluster: bool) -> Duration {
    if cluster {
        Duration::from_secs_f64(artemis::tracker::CLUSTER_WRITE_SKEW_SECONDS)
    } else {
        Duration::ZERO
    }
}

/// Writers raise the progress of their cards as fast as they can while the poller polls;
/// after the last write (and the settling time) one more poll of changes, and the held
/// snapshot is a full read's, card for card. The progress on screen never goes back.
async fn racing_writers_are_all_seen(settings: Settings, settling: Duration) {
    let backend = Backend::redis(polling(settings.clone())).await.unwrap();
    let writer = Backend::redis(settings.clone()).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);

    let mut writers = Vec::new();
    for w in 0..4 {
        let store = writer.tracker().clone();
        writers.push(tokio::spawn(async move {
            let mut writes = 0u32;
            for round in 0u8..=100 {
                for c in 0..10 {
                    let card = format!("race-{w}-{c}");
                    if round == 0 {
                        store
                            .start_pipeline(&start(&card, Utc::now()))
                            .await
                            .unwrap();
                    }
                    store
                        .update_stage(&report(&card, round, Utc::now()))
                        .await
                        .unwrap();
                    writes += 1;
                }
            }
            writes
        }));
    }
    let mut polls = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        held.take(poll(&feed, false).await);
        polls += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    tokio::time::sleep(settling).await;
    held.take(poll(&feed, false).await);
    assert_eq!(held.fulls, 1, "only the first poll reads in full");
    assert!(polls >= 3, "the poller raced the writers ({polls} polls)");
    assert_eq!(writes, 4 * 10 * 101);
    let truth = full_read(&settings).await;
    assert_eq!(truth.len(), 40);
    assert!(truth.iter().all(|c| progress_of(c) == 100));
    assert_eq!(held.cards(), truth.as_slice());
}

#[tokio::test]
async fn a_writer_racing_the_poller_misses_nothing() {
    let server = RedisServer::start();
    racing_writers_are_all_seen(server.settings(), settle(false)).await;
}

#[tokio::test]
async fn a_writer_racing_the_poller_misses_nothing_on_cluster() {
    let cluster = RedisCluster::start();
    racing_writers_are_all_seen(cluster.settings(), settle(true)).await;
}

#[tokio::test]
async fn a_writer_clock_far_from_the_servers_does_not_hide_its_writes() {
    let server = RedisServer::start();
    let settings = polling(server.settings());
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);

    let store = backend.tracker();
    let behind = Utc::now() - chrono::Duration::days(3);
    let ahead = Utc::now() + chrono::Duration::days(365);
    store
        .start_pipeline(&start("slow-clock", behind))
        .await
        .unwrap();
    store
        .start_pipeline(&start("fast-clock", ahead))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert!(held.has("slow-clock") && held.has("fast-clock"));

    // Later writes stamped far behind what the card already shows still come through.
    store
        .update_stage(&report("fast-clock", 40, behind))
        .await
        .unwrap();
    store
        .update_stage(&report("slow-clock", 60, ahead))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert_eq!(held.deltas, 2);
    let by_id = |id: &str| {
        held.cards()
            .iter()
            .find(|c| c.pipeline.card_id == id)
            .map(progress_of)
    };
    assert_eq!(by_id("fast-clock"), Some(40));
    assert_eq!(by_id("slow-clock"), Some(60));
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

/// A card written once with a short TTL leaves the held snapshot through `removed`.
async fn an_expired_card_leaves(settings: Settings, settling: Duration) {
    let mut settings = polling(settings);
    settings.tracker.ttl_seconds = 2;
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let store = backend.tracker();
    store
        .start_pipeline(&start("short-lived", Utc::now()))
        .await
        .unwrap();
    store
        .start_pipeline(&start("kept-alive", Utc::now()))
        .await
        .unwrap();
    tokio::time::sleep(settling).await;
    held.take(poll(&feed, false).await);
    assert!(held.has("short-lived"));

    let mut removed = Vec::new();
    for round in 0u8..12 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        store
            .update_stage(&report("kept-alive", round, Utc::now()))
            .await
            .unwrap();
        match poll(&feed, false).await {
            Update::Delta(d) => {
                removed.extend(d.removed.clone());
                held.take(Update::Delta(d));
            }
            Update::Full(_) => panic!("no full read was due"),
        }
    }
    tokio::time::sleep(settling).await;
    match poll(&feed, false).await {
        Update::Delta(d) => {
            removed.extend(d.removed.clone());
            held.take(Update::Delta(d));
        }
        Update::Full(_) => panic!("no full read was due"),
    }
    assert_eq!(removed, vec!["short-lived".to_owned()]);
    assert!(!held.has("short-lived") && held.has("kept-alive"));
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

#[tokio::test]
async fn a_card_that_expires_leaves_through_removed() {
    let server = RedisServer::start();
    an_expired_card_leaves(server.settings(), settle(false)).await;
}

#[tokio::test]
async fn a_card_that_expires_leaves_through_removed_on_cluster() {
    let cluster = RedisCluster::start();
    an_expired_card_leaves(cluster.settings(), settle(true)).await;
}

/// Settings for a poller whose periodic read (an audit) is due every second and whose SCAN
/// for Python-written keys is redone at each read, so the audit sees what was written raw.
/// The audit may take all of the time (`audit_share_percent` 100), so a slow test machine does
/// not stretch the interval past the second these tests wait.
fn auditing(settings: Settings) -> Settings {
    let mut settings = polling(settings);
    settings.tracker.full_read_interval_seconds = 1;
    settings.tracker.audit_share_percent = 100;
    settings.tracker.scan_interval_seconds = 0;
    settings
}

/// Waits out the interval, then polls: the periodic read, which must come as a delta.
async fn audit_poll(feed: &StorageFeed) -> Box<artemis::snapshot::SnapshotDelta> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match poll(feed, false).await {
        Update::Delta(d) => d,
        Update::Full(_) => panic!("the periodic read came in full, not as an audit"),
    }
}

fn changed_ids(delta: &artemis::snapshot::SnapshotDelta) -> Vec<&str> {
    let mut ids: Vec<&str> = delta
        .changed
        .iter()
        .map(|c| c.pipeline.card_id.as_str())
        .collect();
    ids.sort();
    ids
}

/// A stage as the Python original writes it, with a raw SET beside a card's documents.
fn write_python_stage(server: &RedisServer, card: &str, stage: &str) {
    let doc = format!(
        r#"{{"stage_name": "{stage}", "status": "running", "progress_percent": 40, "message": null, "timestamp": "2025-10-22T20:29:30", "metadata": {{}}}}"#
    );
    server.cli(&[
        "SET",
        &format!("artemis:pipeline:{card}:stage:{stage}"),
        &doc,
        "EX",
        "86400",
    ]);
}

#[tokio::test]
async fn the_periodic_audit_sends_only_the_cards_that_differ() {
    let server = RedisServer::start();
    let backend = Backend::redis(auditing(server.settings())).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let store = backend.tracker();
    for card in ["steady", "touched"] {
        store
            .start_pipeline(&start(card, Utc::now()))
            .await
            .unwrap();
        store
            .update_stage(&report(card, 5, Utc::now()))
            .await
            .unwrap();
    }
    held.take(poll(&feed, false).await);
    assert!(held.has("steady") && held.has("touched"));

    // Behind the index's back: no index entry moves, no event is sent.
    write_python_stage(&server, "touched", "review");
    let delta = audit_poll(&feed).await;
    assert_eq!(changed_ids(&delta), vec!["touched"]);
    assert!(delta.removed.is_empty(), "removed: {:?}", delta.removed);
    let touched = &delta.changed[0];
    assert!(touched.stages.iter().any(|s| s.stage_name == "review"));
    held.take(Update::Delta(delta));
    assert_eq!(held.fulls, 1, "the periodic read is not a full one");
}

#[tokio::test]
async fn a_card_deleted_by_hand_leaves_through_removed_at_the_periodic_audit() {
    let server = RedisServer::start();
    let backend = Backend::redis(auditing(server.settings())).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let store = backend.tracker();
    store
        .start_pipeline(&start("doomed", Utc::now()))
        .await
        .unwrap();
    store
        .update_stage(&report("doomed", 5, Utc::now()))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert!(held.has("doomed"));
    assert_eq!(held.deltas, 1);

    server.cli(&[
        "DEL",
        "artemis:pipeline:doomed",
        "artemis:pipeline:doomed:stage:work",
    ]);
    let delta = audit_poll(&feed).await;
    assert_eq!(delta.removed, vec!["doomed".to_owned()]);
    held.take(Update::Delta(delta));
    assert!(!held.has("doomed"));
}

/// What only a full read sees (a raw Python stage, a card deleted by hand, a Python card)
/// reaches the held snapshot through the audit, which then equals a fresh full read; reads of
/// changes continue from the audit's cursor.
#[tokio::test]
async fn after_the_periodic_audit_the_held_snapshot_is_a_full_reads() {
    let server = RedisServer::start();
    let settings = auditing(server.settings());
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let store = backend.tracker();
    for card in ["a", "b", "c", "d"] {
        store
            .start_pipeline(&start(card, Utc::now()))
            .await
            .unwrap();
        store
            .update_stage(&report(card, 5, Utc::now()))
            .await
            .unwrap();
    }
    held.take(poll(&feed, false).await);

    write_python_stage(&server, "a", "review");
    server.cli(&["DEL", "artemis:pipeline:b", "artemis:pipeline:b:stage:work"]);
    write_python_card(&server, "py", "running", r#""draft""#);
    store
        .update_stage(&report("c", 50, Utc::now()))
        .await
        .unwrap();
    let delta = audit_poll(&feed).await;
    assert_eq!(changed_ids(&delta), vec!["a", "c", "py"]);
    held.take(Update::Delta(delta));
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());

    store
        .update_stage(&report("d", 60, Utc::now()))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert_eq!(held.fulls, 1, "only the first poll reads in full");
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

#[tokio::test]
async fn after_a_reconnect_the_next_poll_reads_in_full_and_misses_nothing() {
    let mut server = RedisServer::start_with(ServerOptions::durable());
    let settings = polling(server.settings());
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let writer = Backend::redis(server.settings()).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    writer
        .tracker()
        .start_pipeline(&start("before", Utc::now()))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert_eq!(held.deltas, 1);

    server.kill();
    server.start_again();
    // Written while the reader has not noticed the restart yet.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match writer
            .tracker()
            .start_pipeline(&start("after", Utc::now()))
            .await
        {
            Ok(()) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the writer never got back: {e}"),
        }
    }
    let update = loop {
        match feed.poll(Utc::now(), HistoryWindow::default(), false).await {
            Ok(u) => break u,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the reader never got back: {e}"),
        }
    };
    assert!(
        matches!(update, Update::Full(_)),
        "the first read after a reconnect is a full one"
    );
    held.take(update);
    assert!(held.has("before") && held.has("after"));
    held.take(poll(&feed, false).await);
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

/// A card as the Python original writes it: no index entry, documents only.
fn write_python_card(server: &RedisServer, card: &str, status: &str, current: &str) {
    let doc = format!(
        r#"{{"card_id": "{card}", "status": "{status}", "total_stages": 2, "completed_stages": 0, "current_stage": {current}, "start_time": "2025-10-22T20:29:00", "end_time": null, "metadata": {{"title": "from Python"}}}}"#
    );
    server.cli(&[
        "SET",
        &format!("artemis:pipeline:{card}"),
        &doc,
        "EX",
        "86400",
    ]);
    let stage = r#"{"stage_name": "draft", "status": "running", "progress_percent": 10, "message": null, "timestamp": "2025-10-22T20:29:30", "metadata": {}}"#;
    server.cli(&[
        "SET",
        &format!("artemis:pipeline:{card}:stage:draft"),
        stage,
        "EX",
        "86400",
    ]);
}

#[tokio::test]
async fn a_python_card_is_found_by_the_bounded_scan_within_a_pass() {
    let server = RedisServer::start();
    // Other keys under the pipeline prefix for the walk to go through: 300 of our cards.
    let mut settings = polling(server.settings());
    settings.tracker.scan_count_per_poll = 50;
    let backend = Backend::redis(settings.clone()).await.unwrap();
    for i in 0..300 {
        backend
            .tracker()
            .start_pipeline(&start(&format!("ours-{i}"), Utc::now()))
            .await
            .unwrap();
    }
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    // No current stage: only the walk, finding its stage key, names its stage.
    write_python_card(&server, "py-card", "running", "null");

    // Each SCAN step returns at least COUNT keys until its pass ends, so one pass takes at
    // most keys / COUNT steps (+1 for the step under way); the document and its stage may
    // be found in two passes' worth of steps.
    let keys: usize = server.cli(&["DBSIZE"]).parse().unwrap();
    let bound = 2 * (keys / 50 + 2);
    let mut polls = 0;
    let with_stage = |held: &Held| {
        held.cards()
            .iter()
            .any(|c| c.pipeline.card_id == "py-card" && c.stages.len() == 1)
    };
    while !with_stage(&held) {
        assert!(polls < bound, "not found within {bound} polls");
        let update = poll(&feed, false).await;
        assert!(matches!(update, Update::Delta(_)));
        held.take(update);
        polls += 1;
    }
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

#[tokio::test]
async fn a_python_card_named_by_an_event_is_read_by_the_next_poll() {
    let server = RedisServer::start();
    let mut settings = polling(server.settings());
    // A walk so slow it cannot be what finds the card.
    settings.tracker.scan_count_per_poll = 1;
    let backend = Backend::redis(settings).await.unwrap();
    for i in 0..200 {
        backend
            .tracker()
            .start_pipeline(&start(&format!("ours-{i}"), Utc::now()))
            .await
            .unwrap();
    }
    let feed = Arc::new(StorageFeed::new(backend.clone()));
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let mut events = feed.subscribe().await.unwrap();
    tokio::spawn(async move {
        while let Some(e) = events.next().await {
            if seen_tx.send(e).is_err() {
                return;
            }
        }
    });
    let mut held = Held::new();
    held.take(poll(&feed, true).await);

    write_python_card(&server, "py-live", "running", r#""draft""#);
    let event = r#"{"event": "pipeline_started", "card_id": "py-live", "total_stages": 2, "timestamp": "2025-10-22T20:29:00", "metadata": {}}"#;
    // Published until the subscription has it (it may still be subscribing).
    loop {
        server.cli(&["PUBLISH", "artemis:pipeline:events:py-live", event]);
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), seen_rx.recv()).await
        {
            break;
        }
    }
    let update = poll(&feed, false).await;
    let Update::Delta(d) = update else {
        panic!("a poll of changes")
    };
    assert!(d.changed.iter().any(|c| c.pipeline.card_id == "py-live"));
    held.take(Update::Delta(d));

    // A Python write does not touch the index; its event brings it in.
    write_python_card(&server, "py-live", "completed", "null");
    let done = r#"{"event": "pipeline_completed", "card_id": "py-live", "status": "completed", "message": null, "timestamp": "2025-10-22T20:31:00"}"#;
    server.cli(&["PUBLISH", "artemis:pipeline:events:py-live", done]);
    tokio::time::timeout(Duration::from_secs(5), seen_rx.recv())
        .await
        .expect("the event arrives");
    held.take(poll(&feed, false).await);
    let card = held
        .cards()
        .iter()
        .find(|c| c.pipeline.card_id == "py-live")
        .unwrap();
    assert_eq!(
        card.pipeline.status,
        artemis::model::PipelineStatus::Completed
    );
}

#[tokio::test]
async fn an_idle_poll_reads_no_card() {
    let server = RedisServer::start();
    let backend = Backend::redis(polling(server.settings())).await.unwrap();
    for i in 0..50 {
        backend
            .tracker()
            .start_pipeline(&start(&format!("idle-{i}"), Utc::now()))
            .await
            .unwrap();
    }
    let feed = StorageFeed::new(backend.clone());
    let Update::Full(first) = poll(&feed, true).await else {
        panic!("full")
    };
    assert_eq!(first.cards.len(), 50);
    let Update::Delta(d) = poll(&feed, false).await else {
        panic!("delta")
    };
    assert!(d.changed.is_empty() && d.removed.is_empty(), "{d:?}");
}

/// Every malformed entry, in a stable order (a delta lists them all, as a full read does).
fn sorted_malformed(m: &[artemis::model::Malformed]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m
        .iter()
        .map(|m| (m.key.clone(), m.reason.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_card_whose_document_stops_parsing_leaves_and_is_listed_until_it_is_rewritten() {
    let server = RedisServer::start();
    let settings = polling(server.settings());
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let store = backend.tracker();
    store
        .start_pipeline(&start("fragile", Utc::now()))
        .await
        .unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    assert!(held.has("fragile"));

    // Garbage over the document, and a write that touches the index (the completion keeps
    // the document as it is: it is not JSON).
    server.cli(&[
        "SET",
        "artemis:pipeline:fragile",
        "{not json",
        "EX",
        "86400",
    ]);
    store
        .complete_pipeline(&artemis::tracker::PipelineCompletion {
            card_id: "fragile".into(),
            status: artemis::model::PipelineStatus::Failed,
            message: None,
            at: Utc::now(),
        })
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert!(!held.has("fragile"));
    let full = artemis::snapshot::read_snapshot(
        &Backend::redis(settings.clone()).await.unwrap(),
        Utc::now(),
    )
    .await
    .unwrap();
    let snap = held.snap.as_ref().unwrap();
    assert!(
        snap.malformed
            .iter()
            .any(|m| m.key == "artemis:pipeline:fragile")
    );
    assert_eq!(
        sorted_malformed(&snap.malformed),
        sorted_malformed(&full.malformed)
    );

    // Started again: a card once more, and no longer listed as malformed.
    store
        .start_pipeline(&start("fragile", Utc::now()))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert!(held.has("fragile"));
    assert!(held.snap.as_ref().unwrap().malformed.is_empty());
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

#[tokio::test]
async fn a_cost_recorded_after_the_card_completed_reaches_the_held_card() {
    a_cost_recorded_later_reaches_the_held_card(false).await;
}

#[tokio::test]
async fn a_cost_recorded_after_the_card_completed_reaches_the_held_card_at_the_audit() {
    a_cost_recorded_later_reaches_the_held_card(true).await;
}

/// The completion's cost comes after the card completed; the next read (a read of changes,
/// or the periodic audit) sends the card again with it.
async fn a_cost_recorded_later_reaches_the_held_card(audit: bool) {
    use artemis::metrics::PipelineCompletionRecord;
    let server = RedisServer::start();
    let settings = if audit {
        auditing(server.settings())
    } else {
        polling(server.settings())
    };
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let store = backend.tracker();
    store
        .start_pipeline(&start("costly", Utc::now()))
        .await
        .unwrap();
    store
        .complete_pipeline(&artemis::tracker::PipelineCompletion {
            card_id: "costly".into(),
            status: artemis::model::PipelineStatus::Completed,
            message: None,
            at: Utc::now(),
        })
        .await
        .unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    assert_eq!(held.cards()[0].cost_usd, None);

    // The metrics' completion record comes later and touches no tracker key.
    backend
        .metrics()
        .track_pipeline_completion(&PipelineCompletionRecord {
            card_id: "costly".into(),
            duration_seconds: 3.0,
            status: "completed".into(),
            cost: 0.75,
            metadata: Map::new(),
            at: None,
        })
        .await
        .unwrap();
    if audit {
        let delta = audit_poll(&feed).await;
        assert_eq!(changed_ids(&delta), vec!["costly"]);
        held.take(Update::Delta(delta));
    } else {
        held.take(poll(&feed, false).await);
    }
    assert_eq!(held.deltas, 1);
    assert_eq!(held.cards()[0].cost_usd, Some(0.75));
    assert_eq!(held.cards(), full_read(&settings).await.as_slice());
}

#[tokio::test]
async fn a_reader_the_server_refuses_time_reads_in_full_every_poll() {
    let reader = [
        "no-time",
        "on",
        ">pw-no-time",
        "resetkeys",
        "%R~artemis:*",
        "resetchannels",
        "&artemis:*",
        "-@all",
        "+@read",
        "+@connection",
        "-time",
    ];
    let server = RedisServer::start_with(ServerOptions {
        acl_users: vec![reader.map(String::from).to_vec()],
        ..Default::default()
    });
    let writer = Backend::redis(server.settings()).await.unwrap();
    writer
        .tracker()
        .start_pipeline(&start("seen-anyway", Utc::now()))
        .await
        .unwrap();
    let mut settings = polling(server.settings());
    settings.redis.username = Some("no-time".into());
    settings.redis.password = Some("pw-no-time".into());
    let feed = StorageFeed::new(Backend::redis(settings).await.unwrap());
    for _ in 0..3 {
        let Update::Full(s) = poll(&feed, false).await else {
            panic!("without the server's clock no poll may read only changes")
        };
        assert!(s.cards.iter().any(|c| c.pipeline.card_id == "seen-anyway"));
    }
}

// ---- The poller's schedule ----

async fn next_read(rx: &mut mpsc::Receiver<Message>) -> Message {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(m @ (Message::Snapshot(_) | Message::Delta(_)))) => return m,
            Ok(Some(_)) => {}
            Ok(None) => panic!("sources stopped"),
            Err(_) => panic!("no read within 15 s"),
        }
    }
}

#[tokio::test]
async fn the_poller_sends_deltas_between_full_reads_at_start_refresh_and_reconnect() {
    let server = RedisServer::start();
    let backend = Backend::redis_lazy(polling(server.settings())).unwrap();
    let feed = Arc::new(StorageFeed::new(backend.clone()));
    let (tx, mut rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let _sources = source::spawn(feed, Duration::from_millis(100), tx, cmd_rx);

    assert!(matches!(next_read(&mut rx).await, Message::Snapshot(_)));
    assert!(matches!(next_read(&mut rx).await, Message::Delta(_)));
    assert!(matches!(next_read(&mut rx).await, Message::Delta(_)));

    cmd_tx.send(Command::Refresh).await.unwrap();
    // A poll already under way (or sent) may come first; then the full one.
    let mut reads = 0;
    while !matches!(next_read(&mut rx).await, Message::Snapshot(_)) {
        reads += 1;
        assert!(reads < 3, "no full read after `r`");
    }
    assert!(
        matches!(next_read(&mut rx).await, Message::Delta(_)),
        "deltas again after the full read"
    );

    // Our connection is closed by the server: the poller reads in full once back.
    server.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    let mut full = false;
    for _ in 0..50 {
        if matches!(next_read(&mut rx).await, Message::Snapshot(_)) {
            full = true;
            break;
        }
    }
    assert!(full, "a full read after the reconnect");
    assert!(matches!(next_read(&mut rx).await, Message::Delta(_)));
}

/// A card of ours with one stage on `server`, read through a feed set up by `settings` with a
/// full read and then a poll of changes.
async fn one_card_held(
    server: &RedisServer,
    settings: fn(Settings) -> Settings,
    card: &str,
) -> (StorageFeed, Held) {
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let store = backend.tracker();
    store
        .start_pipeline(&start(card, Utc::now()))
        .await
        .unwrap();
    store
        .update_stage(&report(card, 5, Utc::now()))
        .await
        .unwrap();
    held.take(poll(&feed, false).await);
    assert!(held.has(card));
    (feed, held)
}

/// Rewrites a card's `work` stage document by hand: no index entry moves, no event is sent.
fn rewrite_work_stage(server: &RedisServer, card: &str, progress: u8) {
    let doc = format!(
        r#"{{"stage_name": "work", "status": "running", "progress_percent": {progress}, "message": "by hand", "timestamp": "2099-01-01T00:00:00", "metadata": {{}}}}"#
    );
    server.cli(&[
        "SET",
        &format!("artemis:pipeline:{card}:stage:work"),
        &doc,
        "EX",
        "86400",
    ]);
}

/// Moves a card's index entry to a later score by hand, its documents untouched.
fn rescore(server: &RedisServer, card: &str) {
    let later = (Utc::now().timestamp() + 5).to_string();
    server.cli(&["ZADD", "artemis:pipeline#index", &later, card]);
}

#[tokio::test]
async fn a_stage_document_changed_without_an_event_is_caught_by_the_periodic_audit() {
    let server = RedisServer::start();
    let (feed, mut held) = one_card_held(&server, auditing, "quiet").await;

    // The stage the document lists, rewritten behind the index's back: only its bytes say so.
    rewrite_work_stage(&server, "quiet", 60);
    let delta = audit_poll(&feed).await;
    assert_eq!(changed_ids(&delta), vec!["quiet"]);
    held.take(Update::Delta(delta));
    let card = held.cards().iter().find(|c| c.pipeline.card_id == "quiet");
    assert_eq!(card.map(progress_of), Some(60));
}

#[tokio::test]
async fn a_card_listed_again_with_unchanged_documents_is_not_sent_again() {
    let server = RedisServer::start();
    let (feed, mut held) = one_card_held(&server, polling, "same").await;

    // The index says it was written again, but its documents read back byte for byte.
    rescore(&server, "same");
    let Update::Delta(delta) = poll(&feed, false).await else {
        panic!("a poll of changes came in full");
    };
    assert!(
        changed_ids(&delta).is_empty(),
        "sent: {:?}",
        changed_ids(&delta)
    );
    assert!(delta.removed.is_empty(), "removed: {:?}", delta.removed);
    held.take(Update::Delta(delta));
    assert!(held.has("same"));
}

#[tokio::test]
async fn a_card_listed_again_with_a_changed_stage_document_is_sent() {
    let server = RedisServer::start();
    let (feed, mut held) = one_card_held(&server, polling, "moved").await;

    rewrite_work_stage(&server, "moved", 70);
    rescore(&server, "moved");
    let Update::Delta(delta) = poll(&feed, false).await else {
        panic!("a poll of changes came in full");
    };
    assert_eq!(changed_ids(&delta), vec!["moved"]);
    held.take(Update::Delta(delta));
    let card = held.cards().iter().find(|c| c.pipeline.card_id == "moved");
    assert_eq!(card.map(progress_of), Some(70));
}

#[tokio::test]
async fn an_unchanged_card_keeps_its_malformed_stage_listed_through_polls_and_audits() {
    let server = RedisServer::start();
    let backend = Backend::redis(auditing(server.settings())).await.unwrap();
    let feed = StorageFeed::new(backend.clone());
    // Held without the progress check: the broken stage takes the card's progress away.
    let Update::Full(mut snap) = poll(&feed, true).await else {
        panic!("the first poll is a full read");
    };
    let take = |update: Update, snap: &mut Snapshot| match update {
        Update::Full(s) => *snap = *s,
        Update::Delta(d) => snap.apply_delta(*d),
    };
    let store = backend.tracker();
    store
        .start_pipeline(&start("scarred", Utc::now()))
        .await
        .unwrap();
    store
        .update_stage(&report("scarred", 5, Utc::now()))
        .await
        .unwrap();
    server.cli(&[
        "SET",
        "artemis:pipeline:scarred:stage:work",
        "{not json",
        "EX",
        "86400",
    ]);
    take(poll(&feed, false).await, &mut snap);
    let listed = |snap: &Snapshot| {
        snap.cards.iter().any(|c| c.pipeline.card_id == "scarred")
            && snap
                .malformed
                .iter()
                .any(|m| m.key == "artemis:pipeline:scarred:stage:work")
    };
    assert!(listed(&snap));

    // Read again with the same bytes (not parsed): the broken stage stays listed.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    rescore(&server, "scarred");
    take(poll(&feed, false).await, &mut snap);
    assert!(listed(&snap), "after the audit");
    rescore(&server, "scarred");
    take(poll(&feed, false).await, &mut snap);
    assert!(listed(&snap), "after a poll of changes");
}

/// The dashboard's first full read goes a chunk of cards at a time (so that its temporaries
/// are one chunk's, not every card's): across chunk boundaries it must give exactly the cards
/// and malformed entries of the read that takes every card at once (`read_snapshot`), with
/// Python-written cards, a Python stage beside a card of this crate, a document that does not
/// parse and a stage document that does not parse among them.
#[tokio::test]
async fn a_full_read_in_chunks_gives_what_a_read_of_every_card_at_once_gives() {
    let server = RedisServer::start();
    let settings = polling(server.settings());
    let backend = Backend::redis(settings.clone()).await.unwrap();
    let store = backend.tracker();
    let now = Utc::now();
    let n = artemis::tracker::FULL_READ_CHUNK * 2 + 300;
    futures::stream::iter(0..n)
        .map(|i| {
            let store = store.clone();
            async move {
                let id = format!("bulk-{i:05}");
                store.start_pipeline(&start(&id, now)).await.unwrap();
                if i % 3 == 0 {
                    store
                        .update_stage(&report(&id, (i % 100) as u8, now))
                        .await
                        .unwrap();
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    // In the first chunk, in the second and at the end (the Python cards come last).
    write_python_stage(&server, "bulk-00007", "py-review");
    write_python_stage(&server, &format!("bulk-{:05}", n - 2), "py-review");
    server.cli(&[
        "SET",
        "artemis:pipeline:bulk-02100",
        "{not json",
        "EX",
        "86400",
    ]);
    server.cli(&[
        "SET",
        "artemis:pipeline:bulk-00003:stage:work",
        "[1, 2]",
        "EX",
        "86400",
    ]);
    for i in 0..5 {
        write_python_card(&server, &format!("py-{i}"), "running", "\"draft\"");
    }

    let feed = StorageFeed::new(backend.clone());
    let Update::Full(chunked) = poll(&feed, true).await else {
        panic!("the first poll reads in full");
    };
    let at_once =
        artemis::snapshot::read_snapshot(&Backend::redis(settings).await.unwrap(), Utc::now())
            .await
            .unwrap();
    assert_eq!(
        chunked.cards.len(),
        n - 1 + 5,
        "every card but the broken one"
    );
    assert_eq!(chunked.cards, at_once.cards);
    let malformed = sorted_malformed(&chunked.malformed);
    assert_eq!(malformed, sorted_malformed(&at_once.malformed));
    assert_eq!(
        malformed
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>(),
        [
            "artemis:pipeline:bulk-00003:stage:work",
            "artemis:pipeline:bulk-02100"
        ]
    );
    let py_stage = |id: &str| {
        chunked
            .cards
            .iter()
            .find(|c| c.pipeline.card_id == id)
            .is_some_and(|c| c.stages.iter().any(|s| s.stage_name == "py-review"))
    };
    assert!(py_stage("bulk-00007") && py_stage(&format!("bulk-{:05}", n - 2)));
}

/// The card's index entry, scored by the index node's clock as the writers' script scores it.
fn index_entry_now(raw: &mut redis::cluster::ClusterConnection, card: &str) {
    let script = "local t = redis.call('TIME') \
                  redis.call('ZADD', KEYS[1], t[1] .. '.' .. string.format('%06d', t[2]), ARGV[1]) \
                  return 1";
    let _: i64 = redis::cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("artemis:pipeline#index")
        .arg(card)
        .query(raw)
        .unwrap();
}

fn pipeline_document(raw: &mut redis::cluster::ClusterConnection, card: &str) {
    let doc = format!(
        r#"{{"card_id": "{card}", "status": "running", "total_stages": 2, "completed_stages": 0, "current_stage": null, "start_time": "2025-10-22T20:29:00", "end_time": null, "metadata": {{}}}}"#
    );
    let _: () = redis::cmd("SET")
        .arg(format!("artemis:pipeline:{card}"))
        .arg(doc)
        .arg("EX")
        .arg(86_400)
        .query(raw)
        .unwrap();
}

/// Settings for polls that find cards through the index alone (no SCAN for Python cards).
fn index_only(settings: Settings) -> Settings {
    let mut settings = polling(settings);
    settings.tracker.scan_python_cards = false;
    settings
}

/// A Cluster of its own and a poller on it that finds cards through the index alone.
async fn index_only_cluster_feed() -> (RedisCluster, Backend, StorageFeed) {
    let cluster = RedisCluster::start();
    let backend = Backend::redis(index_only(cluster.settings()))
        .await
        .unwrap();
    let feed = StorageFeed::new(backend.clone());
    (cluster, backend, feed)
}

#[tokio::test]
async fn on_cluster_a_document_landing_after_its_index_entry_is_shown_once_it_lands() {
    let (cluster, _, feed) = index_only_cluster_feed().await;
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    let mut raw = cluster.raw();
    index_entry_now(&mut raw, "late");
    held.take(poll(&feed, false).await);
    assert!(!held.has("late"), "no document yet");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pipeline_document(&mut raw, "late");
    tokio::time::sleep(settle(true)).await;
    held.take(poll(&feed, false).await);
    assert!(held.has("late"));
}

#[tokio::test]
async fn on_cluster_a_document_landing_after_a_full_read_listed_it_is_shown_once_it_lands() {
    let (cluster, _, feed) = index_only_cluster_feed().await;
    let mut raw = cluster.raw();
    index_entry_now(&mut raw, "late");
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    assert!(!held.has("late"), "no document yet");
    pipeline_document(&mut raw, "late");
    tokio::time::sleep(settle(true)).await;
    held.take(poll(&feed, false).await);
    assert!(held.has("late"));
}

/// `GET` calls served by all of the Cluster's nodes so far.
fn gets_served(cluster: &RedisCluster) -> u64 {
    cluster
        .cli_all(&["INFO", "commandstats"])
        .iter()
        .flat_map(|info| info.lines())
        .filter_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn on_cluster_a_write_is_read_by_one_poll_not_by_every_poll_within_the_skew() {
    let (cluster, backend, feed) = index_only_cluster_feed().await;
    let mut held = Held::new();
    held.take(poll(&feed, true).await);
    // What a poll that reads no card costs in GETs (the metrics' own reads among them).
    let before = gets_served(&cluster);
    held.take(poll(&feed, false).await);
    let idle = gets_served(&cluster) - before;

    backend
        .tracker()
        .start_pipeline(&start("once", Utc::now()))
        .await
        .unwrap();
    let mut reading_polls = 0;
    let until = std::time::Instant::now() + settle(true) * 2;
    while std::time::Instant::now() < until {
        let before = gets_served(&cluster);
        held.take(poll(&feed, false).await);
        if gets_served(&cluster) - before > idle {
            reading_polls += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(held.has("once"));
    assert_eq!(reading_polls, 1, "the card was read by one poll");
}
