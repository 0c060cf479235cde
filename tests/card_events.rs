//! A card patched by live events equals the card read back after the same writes: the
//! tracker's rule for an event (`Card::apply_event`) checked against what the writes
//! themselves store, on the memory backend and on a real redis-server.
//!
//! The events come from the tracker's own subscription; the cards from `get_card`. Compared:
//! the whole pipeline document (status, stage counts, current stage, times, duration,
//! metadata) and every stage's name, order, status, progress, message and time, and the
//! card's cost when the card's metadata names it. Not compared, because no event carries it:
//! stage metadata (and so a cost summed from it); the completion message (no document keeps
//! it either).

mod support;

use std::time::Duration;

use artemis::Backend;
use artemis::config::Settings;
use artemis::model::{PipelineEvent, PipelineStatus, StageStatus};
use artemis::tracker::Card;
use artemis::tracker::{EventStream, StageUpdate, Tracker};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use support::RedisServer;

fn meta(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

/// One tracker write.
enum Write {
    Start(u32, Value),
    Stage(&'static str, StageUpdate),
    Complete(PipelineStatus, Option<&'static str>),
}

fn stage(name: &'static str, status: StageStatus) -> Write {
    // Stage metadata is stored but not in the event: it must not make the cards differ in
    // anything but the stages' metadata.
    Write::Stage(
        name,
        StageUpdate::new(status).metadata(meta(json!({"model": "gpt-4o"}))),
    )
}

/// Start, several stages with repeated and late `completed` reports, a failure, a report
/// after the failure, then a restart of the same card that reports an old stage again.
fn writes() -> Vec<Write> {
    use StageStatus::*;
    vec![
        Write::Start(3, json!({"title": "First run", "cost_usd": 0.5})),
        Write::Stage("plan", StageUpdate::new(Running).progress(10)),
        stage("plan", Completed),
        stage("plan", Completed),
        stage("build", Pending),
        Write::Stage(
            "build",
            StageUpdate::new(Running).progress(50).message("compiling"),
        ),
        Write::Stage("test", StageUpdate::new(Failed).message("3 failed")),
        stage("plan", Completed),
        stage("build", Completed),
        Write::Complete(PipelineStatus::Failed, Some("tests failed")),
        stage("test", Completed),
        Write::Start(2, json!({"title": "Second run"})),
        stage("build", Running),
        stage("deploy", Completed),
        stage("build", Completed),
        Write::Complete(PipelineStatus::Completed, None),
    ]
}

async fn perform(t: &Tracker, card: &str, w: Write) {
    match w {
        Write::Start(total, m) => t.start_pipeline(card, total, meta(m)).await,
        Write::Stage(name, update) => t.update_stage(card, name, update).await,
        Write::Complete(status, message) => t.complete_pipeline(card, status, message).await,
    }
    .expect("tracker write");
}

async fn next(s: &mut EventStream) -> PipelineEvent {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("event within 5 s")
        .expect("stream open")
        .expect("well-formed event")
}

/// What an event can carry of a card: everything but the stages' metadata.
fn carried(card: &Card) -> Card {
    let mut c = card.clone();
    for s in &mut c.stages {
        s.metadata.clear();
    }
    c
}

/// Runs [`writes`] on `card`, returning each write's event with the card read after it.
async fn run(t: &Tracker, card: &str) -> Vec<(PipelineEvent, Card)> {
    let mut events = t.subscribe_card(card).await.unwrap();
    let mut out = Vec::new();
    for w in writes() {
        perform(t, card, w).await;
        let event = next(&mut events).await;
        let read = t
            .get_card(card)
            .await
            .unwrap()
            .expect("the card was started");
        out.push((event, read));
    }
    out
}

/// After every write, the card built from the events so far equals the card read back.
async fn events_rebuild_the_card_read_back(t: &Tracker, card: &str) {
    let steps = run(t, card).await;
    let mut built: Option<Card> = None;
    for (i, (event, read)) in steps.iter().enumerate() {
        match &mut built {
            Some(c) => assert!(c.apply_event(event), "write {i}: {event:?} changed nothing"),
            None => built = Card::from_event(event),
        }
        let built = built.as_ref().expect("the first event starts the card");
        assert_eq!(carried(built), carried(read), "after write {i}: {event:?}");
    }
}

/// A card read while its events were in flight, patched with every event of the sequence
/// (those it already reflects included), ends as the card read after the last write.
async fn events_overlapping_a_read_leave_it_as_read(t: &Tracker, card: &str) {
    let steps = run(t, card).await;
    let last = carried(&steps.last().unwrap().1);
    for (k, (_, read)) in steps.iter().enumerate() {
        let mut c = read.clone();
        for (event, _) in &steps {
            c.apply_event(event);
        }
        assert_eq!(carried(&c), last, "card read after write {k}");
    }
}

/// A stage report for a card that was never started writes no pipeline document: its event
/// creates no card, and no card is read back.
async fn an_unknown_cards_event_creates_no_card(t: &Tracker, card: &str) {
    let mut events = t.subscribe_card(card).await.unwrap();
    perform(t, card, stage("plan", StageStatus::Running)).await;
    let event = next(&mut events).await;
    assert!(Card::from_event(&event).is_none());
    assert!(t.get_card(card).await.unwrap().is_none());
}

async fn suite(t: &Tracker) {
    events_rebuild_the_card_read_back(t, "rebuild").await;
    events_overlapping_a_read_leave_it_as_read(t, "overlap").await;
    an_unknown_cards_event_creates_no_card(t, "never-started").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_match_reads_on_memory() {
    suite(&Tracker::new(
        Backend::memory(Settings::default()).tracker().clone(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_match_reads_on_redis() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    // Every read SCANs afresh, so that a restarted card's stages from the first run (outside
    // the new run's `_stages`) are read back at once rather than after the SCAN interval.
    settings.tracker.scan_interval_seconds = 0;
    suite(&Tracker::new(
        Backend::redis(settings).await.unwrap().tracker().clone(),
    ))
    .await;
}
