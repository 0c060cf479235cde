//! The dashboard's background tasks against a real Redis: they deliver a snapshot, live
//! events from PSUBSCRIBE, a card's history, and after Redis dies and comes back they report
//! the outage, reconnect by themselves, subscribe again and read at once — so events
//! published after the restart arrive without anyone pressing a key. (The subscription
//! follows its own connection, not the command connection's reconnects: `tests/faults.rs`.)

mod support;

use artemis::Backend;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use artemis::connection::ConnState;
use artemis::feed::StorageFeed;
use artemis::tui::message::{Command, Message};
use artemis::tui::source;
use support::RedisServer;

async fn next_matching(
    rx: &mut mpsc::Receiver<Message>,
    what: &str,
    want: impl Fn(&Message) -> bool,
) -> Message {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(m)) if want(&m) => return m,
            Ok(Some(_)) => {}
            Ok(None) => panic!("sources stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Waits for a snapshot and a (re)subscription, in whichever order they come.
async fn both(rx: &mut mpsc::Receiver<Message>, what: &str) {
    let (mut snap, mut sub) = (false, false);
    while !(snap && sub) {
        match next_matching(rx, what, |m| {
            matches!(m, Message::Snapshot(_) | Message::Subscribed(true))
        })
        .await
        {
            Message::Snapshot(_) => snap = true,
            _ => sub = true,
        }
    }
}

fn publish(server: &RedisServer, card: &str, pct: i64) {
    let payload = format!(
        r#"{{"event": "stage_updated", "card_id": "{card}", "stage_name": "build", "status": "running", "progress_percent": {pct}, "message": null, "timestamp": "2025-10-22T20:30:44"}}"#
    );
    server.cli(&[
        "PUBLISH",
        &format!("artemis:pipeline:events:{card}"),
        &payload,
    ]);
}

#[tokio::test]
async fn events_published_together_reach_the_ui_in_order_and_in_few_messages() {
    let server = RedisServer::start();
    let storage = Backend::redis_lazy(server.settings()).unwrap();
    let feed = Arc::new(StorageFeed::new(storage));
    let (tx, mut rx) = mpsc::channel(1024);
    let (_cmd_tx, cmd_rx) = mpsc::channel(16);
    let _sources = source::spawn(feed, Duration::from_secs(3600), tx, cmd_rx);
    both(&mut rx, "the first snapshot and the subscription").await;

    // 400 events in one round trip, a payload that is not an event after the 200th.
    let event = |pct: usize| {
        format!(
            r#"{{"event": "stage_updated", "card_id": "card-{pct}", "stage_name": "build", "status": "running", "progress_percent": {pct}, "message": null, "timestamp": "2025-10-22T20:30:44"}}"#
        )
    };
    let mut pipe = redis::pipe();
    for i in 0..400 {
        pipe.cmd("PUBLISH")
            .arg(format!("artemis:pipeline:events:card-{i}"))
            .arg(event(i));
        if i == 199 {
            pipe.cmd("PUBLISH")
                .arg("artemis:pipeline:events:card-bad")
                .arg("garbage");
        }
    }
    let () = pipe.ignore().query(&mut server.raw()).unwrap();

    let mut seen: Vec<String> = Vec::new();
    let mut messages = 0;
    while seen.len() < 401 {
        let m = next_matching(&mut rx, "the published events", |m| {
            matches!(
                m,
                Message::Events(_) | Message::BadEvent(_) | Message::Event(_)
            )
        })
        .await;
        messages += 1;
        match m {
            Message::Events(batch) => {
                assert!(!batch.is_empty(), "no empty batches");
                seen.extend(batch.iter().map(|e| e.card_id().to_owned()));
            }
            Message::BadEvent(_) => seen.push("bad".into()),
            other => panic!("events come in batches, got {other:?}"),
        }
    }
    let mut want: Vec<String> = (0..400).map(|i| format!("card-{i}")).collect();
    want.insert(200, "bad".into());
    assert_eq!(seen, want, "every event, in the order published");
    assert!(
        messages <= 401 / 4,
        "{messages} messages for 401 payloads published together"
    );
}

#[tokio::test]
async fn sources_deliver_and_recover_after_a_redis_restart() {
    let mut server = RedisServer::start();
    let settings = server.settings();
    let storage = Backend::redis_lazy(settings.clone()).unwrap();
    let feed = Arc::new(StorageFeed::new(storage.clone()));
    let (tx, mut rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    // A long poll interval: every snapshot after the first must come from a reconnect or `r`.
    let _sources = source::spawn(feed, Duration::from_secs(3600), tx, cmd_rx);

    both(&mut rx, "the first snapshot and the subscription").await;
    publish(&server, "card-live", 10);
    let m = next_matching(&mut rx, "a live event", |m| matches!(m, Message::Events(_))).await;
    let Message::Events(batch) = m else {
        unreachable!()
    };
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].card_id(), "card-live");

    // A payload that is not an event is reported, not dropped silently nor fatal.
    server.cli(&["PUBLISH", "artemis:pipeline:events:card-live", "garbage"]);
    next_matching(&mut rx, "the bad event", |m| {
        matches!(m, Message::BadEvent(_))
    })
    .await;

    // `r` reads at once.
    cmd_tx.send(Command::Refresh).await.unwrap();
    next_matching(&mut rx, "the refreshed snapshot", |m| {
        matches!(m, Message::Snapshot(_))
    })
    .await;

    // History of a card written by this project's tracker.
    let tracker = artemis::tracker::Tracker::new(storage.tracker().clone());
    tracker
        .start_pipeline("card-hist", 2, Default::default())
        .await
        .unwrap();
    cmd_tx
        .send(Command::LoadHistory("card-hist".into()))
        .await
        .unwrap();
    let m = next_matching(&mut rx, "the history", |m| {
        matches!(m, Message::History { .. })
    })
    .await;
    let Message::History { card_id, result } = m else {
        unreachable!()
    };
    assert_eq!(card_id, "card-hist");
    let events = result.unwrap().expect("the tracker keeps a history stream");
    assert!(!events.is_empty());

    // Redis dies: the subscription ends, the read that follows at once fails, and the outage
    // is reported (the dashboard's banner).
    server.kill();
    next_matching(&mut rx, "the lost subscription", |m| {
        matches!(m, Message::Subscribed(false))
    })
    .await;
    next_matching(&mut rx, "the outage", |m| {
        matches!(
            m,
            Message::Connection(ConnState::Reconnecting { .. } | ConnState::Unreachable { .. })
        )
    })
    .await;
    // It comes back: reconnect, read at once, subscribe again — all without a key press and
    // long before the (one-hour) poll interval.
    // The subscription has a life of its own: it may be back before or after the command
    // connection, so the three come in any order.
    server.start_again();
    let (mut connected, mut snap, mut sub) = (false, false, false);
    while !(connected && snap && sub) {
        match next_matching(
            &mut rx,
            "the reconnect, a snapshot and a new subscription",
            |m| {
                matches!(
                    m,
                    Message::Connection(ConnState::Connected { .. })
                        | Message::Snapshot(_)
                        | Message::Subscribed(true)
                )
            },
        )
        .await
        {
            Message::Connection(_) => connected = true,
            Message::Snapshot(_) => snap = connected,
            _ => sub = true,
        }
    }
    publish(&server, "card-after", 50);
    let m = next_matching(
        &mut rx,
        "an event after the restart",
        |m| matches!(m, Message::Events(b) if b.iter().any(|e| e.card_id() == "card-after")),
    )
    .await;
    assert!(matches!(m, Message::Events(_)));
}

/// A card only Python wrote (no index entry, found by the SCAN), as the original stores it.
fn write_python_card(server: &RedisServer, card: &str) {
    let doc = format!(
        r#"{{"card_id": "{card}", "status": "running", "total_stages": 3, "completed_stages": 1, "current_stage": "build", "start_time": "2025-10-22T20:29:00", "end_time": null, "metadata": {{}}}}"#
    );
    server.cli(&[
        "SET",
        &format!("artemis:pipeline:{card}"),
        &doc,
        "EX",
        "86400",
    ]);
}

fn has_card(m: &Message, card: &str) -> bool {
    matches!(m, Message::Snapshot(s) if s.cards.iter().any(|c| c.pipeline.card_id == card))
}

#[tokio::test]
async fn refresh_scans_again_for_cards_python_wrote_since_the_last_scan() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    // Reads reuse a SCAN for an hour: only `r` may look again sooner.
    settings.tracker.scan_interval_seconds = 3600;
    let feed = Arc::new(StorageFeed::new(Backend::redis_lazy(settings).unwrap()));
    let (tx, mut rx) = mpsc::channel(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let _sources = source::spawn(feed, Duration::from_secs(3600), tx, cmd_rx);
    let first = next_matching(&mut rx, "the first snapshot", |m| {
        matches!(m, Message::Snapshot(_))
    })
    .await;
    assert!(!has_card(&first, "card-py-late"));

    write_python_card(&server, "card-py-late");
    cmd_tx.send(Command::Refresh).await.unwrap();
    next_matching(&mut rx, "a snapshot with the Python card", |m| {
        has_card(m, "card-py-late")
    })
    .await;
}
