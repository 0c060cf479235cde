//! Incremental reads on the dashboard's state: a delta applied in place gives the rows,
//! selection, counts and cards the equivalent full snapshot gives (every sort, both
//! directions, with text and status filters, over random deltas, events and clock steps);
//! removed cards leave; a read older than what live events showed never rolls a card back;
//! the clock moves cards between groups without a new read; a frozen screen does not move.
//! Fixed fixtures, seeded randomness, injected clock, no Redis (the app is fed messages).

mod tui_fixtures;

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use artemis::model::{
    Malformed, PipelineEvent, PipelineStatus, StageDoc, StageStatus, format_naive,
};
use artemis::snapshot::{Snapshot, SnapshotDelta};
use artemis::tracker::Card;
use artemis::tui::app::{App, EVENT_CARD_GRACE_SECS, Row, SortKey};
use artemis::tui::message::Message;

use tui_fixtures as fx;
use tui_fixtures::{ids, selected_id};

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

fn enter(app: &mut App) {
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
}

fn ts(secs_before_now: i64) -> String {
    format_naive((fx::now() - Duration::seconds(secs_before_now)).naive_utc())
}

/// The delta that turns `from` into `to` as a poller would send it.
fn delta(to: &Snapshot, changed: Vec<Card>, removed: Vec<String>) -> SnapshotDelta {
    SnapshotDelta {
        taken_at: to.taken_at,
        source: to.source.clone(),
        connection: to.connection.clone(),
        health: to.health.clone(),
        changed,
        removed,
        metrics: to.metrics.clone(),
        limits: to.limits.clone(),
        history: to.history.clone(),
        malformed: to.malformed.clone(),
    }
}

fn card_of<'a>(app: &'a App, id: &str) -> Option<&'a Card> {
    app.live
        .as_ref()?
        .cards
        .iter()
        .find(|c| c.pipeline.card_id == id)
}

// ------------------------------------------------------------------ random data

/// Writers' clock: every write is stamped later than the last, and later than any fixture time
/// (a later write carries a later time, as the tracker's do).
struct Clock(i64);

impl Clock {
    fn tick(&mut self) -> String {
        self.0 += 1;
        format_naive(
            (fx::now() + Duration::seconds(1) + Duration::microseconds(self.0 * 1_337)).naive_utc(),
        )
    }
}

const STATUSES: [PipelineStatus; 5] = [
    PipelineStatus::Queued,
    PipelineStatus::Running,
    PipelineStatus::Completed,
    PipelineStatus::Failed,
    PipelineStatus::Cancelled,
];
const STAGES: [&str; 4] = ["plan", "build", "test", "deploy"];
const WORDS: [&str; 5] = ["alpha", "beta", "gamma", "delta", "omega"];

fn random_card(rng: &mut ChaCha8Rng, id: &str) -> Card {
    let mut c = fx::cards()[0].clone();
    let p = &mut c.pipeline;
    p.card_id = id.into();
    p.status = STATUSES[rng.random_range(0..STATUSES.len())];
    p.total_stages = rng.random_range(0..6);
    p.completed_stages = rng.random_range(0..=p.total_stages);
    // Whole tens of seconds, so that sorts meet ties (broken by id).
    let started = rng.random_range(0..900) * 10;
    p.start_time = match rng.random_range(0..15) {
        0 => "yesterday".into(),
        _ => ts(started).into(),
    };
    p.end_time = (p.status.is_final() && rng.random_bool(0.8))
        .then(|| ts(started - rng.random_range(0..=started.min(3000))).into());
    p.duration_seconds = rng
        .random_bool(0.3)
        .then(|| rng.random_range(0..5000) as f64);
    p.metadata.insert(
        "title".into(),
        json!(format!(
            "Card {id} {}",
            WORDS[rng.random_range(0..WORDS.len())]
        )),
    );
    p.current_stage = rng
        .random_bool(0.7)
        .then(|| STAGES[rng.random_range(0..STAGES.len())].into());
    c.stages = (0..rng.random_range(0..4))
        .map(|i| StageDoc {
            stage_name: STAGES[i].into(),
            status: [
                StageStatus::Completed,
                StageStatus::Running,
                StageStatus::Failed,
            ][rng.random_range(0..3)],
            progress_percent: rng.random_bool(0.7).then(|| rng.random_range(0..=100)),
            message: None,
            timestamp: ts(rng.random_range(0..8000)).into(),
            metadata: Default::default(),
        })
        .collect();
    c.cost_usd = rng
        .random_bool(0.6)
        .then(|| rng.random_range(0..40) as f64 / 10.0);
    c
}

/// A later write of `card`: a stage report, a completion, a restart, a new title or cost.
fn rewrite(rng: &mut ChaCha8Rng, card: &Card, clock: &mut Clock) -> Card {
    let mut c = card.clone();
    match rng.random_range(0..5) {
        0 => {
            let name = STAGES[rng.random_range(0..STAGES.len())];
            let at = clock.tick();
            match c.stages.iter_mut().find(|s| s.stage_name == name) {
                Some(s) => s.timestamp = at.into(),
                None => c.stages.push(StageDoc {
                    stage_name: name.into(),
                    status: StageStatus::Running,
                    progress_percent: Some(rng.random_range(0..=100)),
                    message: None,
                    timestamp: at.into(),
                    metadata: Default::default(),
                }),
            }
            c.pipeline.current_stage = Some(name.into());
        }
        1 => {
            c.pipeline.status = STATUSES[rng.random_range(2..5)];
            c.pipeline.end_time = Some(clock.tick().into());
        }
        2 => {
            c.pipeline.status = PipelineStatus::Running;
            c.pipeline.start_time = clock.tick().into();
            c.pipeline.end_time = None;
            c.pipeline.duration_seconds = None;
            c.pipeline.completed_stages = 0;
        }
        3 => {
            let word = WORDS[rng.random_range(0..WORDS.len())];
            c.pipeline.metadata.insert(
                "title".into(),
                json!(format!("Card {} {word}", c.pipeline.card_id)),
            );
            // Stage documents are keyed by name: a card holds one of each.
            let at = clock.tick();
            match c.stages.iter_mut().find(|s| s.stage_name == "note") {
                Some(s) => s.timestamp = at.into(),
                None => c.stages.push(StageDoc {
                    stage_name: "note".into(),
                    status: StageStatus::Completed,
                    progress_percent: None,
                    message: None,
                    timestamp: at.into(),
                    metadata: Default::default(),
                }),
            }
        }
        _ => {
            c.cost_usd = Some(rng.random_range(0..40) as f64 / 10.0);
            c.pipeline.completed_stages = rng.random_range(0..=c.pipeline.total_stages);
            c.pipeline.end_time = c.pipeline.end_time.as_ref().map(|_| clock.tick().into());
        }
    }
    c
}

/// A live event of a card the dashboard may hold: the trace of a write it will read later.
fn random_event(
    rng: &mut ChaCha8Rng,
    truth: &Snapshot,
    clock: &mut Clock,
    next_new: &mut usize,
) -> PipelineEvent {
    if truth.cards.is_empty() || rng.random_bool(0.1) {
        *next_new += 1;
        return PipelineEvent::PipelineStarted {
            card_id: format!("ev-{next_new:03}"),
            total_stages: 3,
            timestamp: clock.tick(),
            metadata: json!({"title": "Card from an event"})
                .as_object()
                .cloned()
                .unwrap(),
        };
    }
    let card = &truth.cards[rng.random_range(0..truth.cards.len())];
    let card_id = card.pipeline.card_id.clone();
    let restartable = artemis::model::parse_timestamp(&card.pipeline.start_time).is_some();
    match rng.random_range(0..6) {
        0 if !card.pipeline.status.is_final() => PipelineEvent::PipelineCompleted {
            card_id,
            status: STATUSES[rng.random_range(2..5)],
            duration_seconds: Some(rng.random_range(1..900) as f64),
            message: None,
            timestamp: clock.tick(),
        },
        1 if restartable => PipelineEvent::PipelineStarted {
            card_id,
            total_stages: 4,
            timestamp: clock.tick(),
            metadata: Default::default(),
        },
        _ => PipelineEvent::StageUpdated {
            card_id,
            stage_name: STAGES[rng.random_range(0..STAGES.len())].into(),
            status: StageStatus::Running,
            progress_percent: Some(rng.random_range(0..=100)),
            message: None,
            timestamp: clock.tick(),
        },
    }
}

/// The cards of `app`'s live data, by id (the table keeps its own slot order).
fn cards_by_id(app: &App) -> Vec<Card> {
    let mut cards = app.live.as_ref().unwrap().cards.clone();
    cards.sort_by(|a, b| a.pipeline.card_id.cmp(&b.pipeline.card_id));
    cards
}

fn malformed_rows(app: &mut App) -> Vec<Row> {
    app.rows()
        .iter()
        .filter(|r| matches!(r, Row::Malformed(_)))
        .copied()
        .collect()
}

/// One configuration of the overview: `s` presses, reversed, and a filter.
#[derive(Debug, Clone, Copy)]
enum Filtering {
    None,
    Text,
    Running,
    Failed,
}

fn configure(app: &mut App, sorts: usize, reverse: bool, filtering: Filtering) {
    press(app, &"s".repeat(sorts));
    if reverse {
        press(app, "S");
    }
    match filtering {
        Filtering::None => {}
        Filtering::Text => {
            press(app, "/a");
            enter(app);
        }
        Filtering::Running => press(app, "f"),
        Filtering::Failed => press(app, "ff"),
    }
}

/// Two dashboards fed the same reads, one as deltas and one as the equivalent full snapshots,
/// with the same events, keys and clock between them; after every read they agree, and the
/// delta-fed one agrees with a rebuild from scratch of its own rows.
fn run_equivalence(seed: u64, sorts: usize, reverse: bool, filtering: Filtering) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clock = Clock(0);
    let mut next_new = 0;
    let mut truth = fx::snapshot();
    truth.cards = (0..70)
        .map(|i| random_card(&mut rng, &format!("c-{i:03}")))
        .collect();
    let (mut by_delta, mut by_full) = (fx::app(), fx::app());
    for app in [&mut by_delta, &mut by_full] {
        app.apply(Message::Snapshot(Box::new(truth.clone())));
        configure(app, sorts, reverse, filtering);
    }
    let mut unread: Vec<PipelineEvent> = Vec::new();
    let ctx = format!("seed {seed}, {sorts} × s, reverse {reverse}, {filtering:?}");
    for round in 0..30 {
        // The user moves (or goes home), the clock moves on whole seconds.
        let keys = ["", "j", "jjj", "k", "G", "g", "jk", "kkk"][rng.random_range(0..8)];
        if rng.random_bool(0.3) {
            let step = Duration::seconds([1, 7, 600, 1800][rng.random_range(0..4)]);
            by_delta.now += step;
            by_full.now += step;
        }
        // Live events arrive before the read that will include their writes.
        let events: Vec<PipelineEvent> = (0..rng.random_range(0..6))
            .map(|_| random_event(&mut rng, &truth, &mut clock, &mut next_new))
            .collect();
        for app in [&mut by_delta, &mut by_full] {
            press(app, keys);
            for e in &events {
                app.apply(Message::Event(e.clone()));
            }
        }
        // Events alone move their cards in place; a rebuild agrees.
        let (rows, selected) = (ids(&mut by_delta), by_delta.selected);
        assert_eq!(rows, ids(&mut by_full), "{ctx}, events of round {round}");
        press(&mut by_delta, "SS");
        assert_eq!(
            ids(&mut by_delta),
            rows,
            "{ctx}, rebuilt after events of round {round}"
        );
        assert_eq!(by_delta.selected, selected, "{ctx}, round {round}");
        press(&mut by_full, "SS");
        // The read: the writes of the previous round's events (a start of an unknown card
        // is found only sometimes, as a Python card found by a later SCAN), random writes,
        // new cards, cards gone.
        let mut changed: Vec<Card> = Vec::new();
        let mut written: Vec<Card> = truth.cards.clone();
        for e in unread.drain(..) {
            match written
                .iter_mut()
                .find(|c| c.pipeline.card_id == e.card_id())
            {
                Some(c) => {
                    c.apply_event(&e);
                }
                None if rng.random_bool(0.7) => written.extend(Card::from_event(&e)),
                None => {}
            }
            if let Some(c) = written.iter().find(|c| c.pipeline.card_id == e.card_id())
                && !changed.iter().any(|x| x.pipeline.card_id == e.card_id())
            {
                changed.push(c.clone());
            }
        }
        for _ in 0..rng.random_range(0..5) {
            let c = &written[rng.random_range(0..written.len())];
            let c = rewrite(&mut rng, c, &mut clock);
            changed.retain(|x| x.pipeline.card_id != c.pipeline.card_id);
            changed.push(c);
        }
        for _ in 0..rng.random_range(0..3) {
            let id = format!("n-{round:02}-{}", rng.random_range(0..1000));
            if !changed.iter().any(|x| x.pipeline.card_id == id) {
                changed.push(random_card(&mut rng, &id));
            }
        }
        let mut removed: Vec<String> = (0..rng.random_range(0..4))
            .map(|_| {
                truth.cards[rng.random_range(0..truth.cards.len())]
                    .pipeline
                    .card_id
                    .clone()
            })
            .collect();
        removed.dedup();
        removed.retain(|id| !changed.iter().any(|c| &c.pipeline.card_id == id));
        if rng.random_bool(0.2) {
            removed.push("never-there".into());
        }
        let mut next = truth.clone();
        next.taken_at = fx::now() + Duration::seconds(round);
        next.metrics.llm.cache_hits += round;
        if rng.random_bool(0.2) {
            next.malformed.push(Malformed {
                key: format!("artemis:pipeline:bad-{round}"),
                reason: "invalid JSON".into(),
            });
        }
        let d = delta(&next, changed, removed);
        next.apply_delta(d.clone());
        by_delta.apply(Message::Delta(Box::new(d)));
        by_full.apply(Message::Snapshot(Box::new(next.clone())));
        truth = next;
        unread = events;
        if truth.cards.is_empty() {
            truth.cards.push(random_card(&mut rng, "c-refill"));
        }

        let at = format!("{ctx}, round {round}");
        assert_eq!(ids(&mut by_delta), ids(&mut by_full), "rows: {at}");
        assert_eq!(
            malformed_rows(&mut by_delta),
            malformed_rows(&mut by_full),
            "{at}"
        );
        assert_eq!(by_delta.selected, by_full.selected, "selected row: {at}");
        assert_eq!(
            selected_id(&mut by_delta),
            selected_id(&mut by_full),
            "selection: {at}"
        );
        assert_eq!(
            by_delta.status_counts(),
            by_full.status_counts(),
            "counts: {at}"
        );
        assert_eq!(cards_by_id(&by_delta), cards_by_id(&by_full), "cards: {at}");
        // The incremental rows are what a rebuild from scratch gives (S twice rebuilds).
        let (rows, selected) = (ids(&mut by_delta), by_delta.selected);
        press(&mut by_delta, "SS");
        assert_eq!(ids(&mut by_delta), rows, "rebuilt rows: {at}");
        assert_eq!(by_delta.selected, selected, "rebuilt selection: {at}");
        press(&mut by_full, "SS");
    }
}

#[test]
fn a_delta_gives_the_rows_and_selection_of_the_equivalent_snapshot_for_every_sort_and_filter() {
    for (sorts, key) in SortKey::ALL.iter().enumerate() {
        for reverse in [false, true] {
            for filtering in [
                Filtering::None,
                Filtering::Text,
                Filtering::Running,
                Filtering::Failed,
            ] {
                let seed = (sorts as u64) * 100 + u64::from(reverse) * 10 + filtering as u64;
                run_equivalence(seed, sorts, reverse, filtering);
                assert_eq!(fx::app().sort, SortKey::Attention, "{key:?} is {sorts} × s");
            }
        }
    }
}

/// The standard snapshot as the previous read, and a delta from it.
fn fixture_delta(changed: Vec<Card>, removed: &[&str]) -> SnapshotDelta {
    let s = fx::snapshot();
    delta(&s, changed, removed.iter().map(|r| r.to_string()).collect())
}

fn running(id: &str, started_ago: i64) -> Card {
    let mut c = fx::cards()[0].clone();
    c.pipeline.card_id = id.into();
    c.pipeline.start_time = ts(started_ago).into();
    for s in &mut c.stages {
        s.timestamp = ts(started_ago).into();
    }
    c
}

#[test]
fn removed_cards_leave_the_rows_the_counts_and_the_table() {
    let mut app = fx::app();
    let before = app.status_counts();
    app.apply(Message::Delta(Box::new(fixture_delta(
        Vec::new(),
        &["card-101", "card-105", "not-there"],
    ))));
    assert_eq!(ids(&mut app), ["card-103\u{1b}[2J", "card-104", "card-102"]);
    assert!(card_of(&app, "card-101").is_none() && card_of(&app, "card-105").is_none());
    assert_eq!(app.live.as_ref().unwrap().cards.len(), 3);
    let count = |c: &[(PipelineStatus, usize)], s: PipelineStatus| {
        c.iter().find(|(x, _)| *x == s).unwrap().1
    };
    let after = app.status_counts();
    assert_eq!(
        count(&after, PipelineStatus::Running),
        count(&before, PipelineStatus::Running) - 1
    );
    assert_eq!(count(&after, PipelineStatus::Cancelled), 0);
    assert_eq!(count(&after, PipelineStatus::Failed), 1);
}

#[test]
fn changed_and_new_cards_from_a_delta_take_their_places() {
    let mut app = fx::app();
    let mut done = card_of(&app, "card-101").unwrap().clone();
    done.pipeline.status = PipelineStatus::Completed;
    done.pipeline.end_time = Some(ts(0).into());
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![done, running("fresh", 1)],
        &[],
    ))));
    let order = ids(&mut app);
    assert_eq!(order[0], "fresh", "the new running card is first");
    assert!(
        order[1].starts_with("card-103"),
        "the failure follows: {order:?}"
    );
    assert_eq!(
        order[2], "card-101",
        "finished just now, it leads the rest: {order:?}"
    );
    assert_eq!(
        card_of(&app, "card-101").unwrap().pipeline.status,
        PipelineStatus::Completed
    );
}

#[test]
fn the_selection_follows_its_card_through_a_delta() {
    let mut app = fx::app();
    press(&mut app, "jj");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
    let arrivals: Vec<Card> = (0..5).map(|i| running(&format!("new-{i}"), i)).collect();
    app.apply(Message::Delta(Box::new(fixture_delta(arrivals, &[]))));
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
    assert_eq!(app.selected, 7, "five new running cards above it");
}

#[test]
fn a_selection_a_delta_removes_moves_to_its_next_neighbour() {
    let mut app = fx::app();
    press(&mut app, "jj");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
    // The slot of card-104 is taken by the last card of the table (swap-remove): the
    // neighbour is still found by the order shown, not by slots.
    app.apply(Message::Delta(Box::new(fixture_delta(
        Vec::new(),
        &["card-104"],
    ))));
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-102"));
    app.apply(Message::Delta(Box::new(fixture_delta(
        Vec::new(),
        &["card-102", "card-105"],
    ))));
    assert_eq!(
        selected_id(&mut app).as_deref().map(|s| &s[..8]),
        Some("card-103"),
        "nothing listed after it: the previous one"
    );
}

/// card-101 as the fixture read has it, then patched by a later stage report.
fn patched_101(app: &mut App) -> Card {
    app.apply(Message::Event(PipelineEvent::StageUpdated {
        card_id: "card-101".into(),
        stage_name: "development".into(),
        status: StageStatus::Completed,
        progress_percent: Some(100),
        message: Some("done".into()),
        timestamp: ts(1),
    }));
    let shown = card_of(app, "card-101").unwrap().clone();
    assert_eq!(shown.stages[3].status, StageStatus::Completed);
    shown
}

#[test]
fn an_older_card_in_a_delta_never_replaces_the_newer_one_events_showed() {
    let mut app = fx::app();
    let shown = patched_101(&mut app);
    // The read was taken before that write: its card-101 still runs development.
    let stale = fx::cards()[0].clone();
    app.apply(Message::Delta(Box::new(fixture_delta(vec![stale], &[]))));
    assert_eq!(card_of(&app, "card-101"), Some(&shown));
    // The next read, taken after the write, is the truth again (with what events lack).
    let mut read = shown.clone();
    read.stages[3]
        .metadata
        .insert("cost_usd".into(), json!(0.1));
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![read.clone()],
        &[],
    ))));
    assert_eq!(card_of(&app, "card-101"), Some(&read));
}

#[test]
fn an_older_card_in_a_snapshot_never_replaces_the_newer_one_events_showed() {
    let mut app = fx::app();
    let shown = patched_101(&mut app);
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    assert_eq!(card_of(&app, "card-101"), Some(&shown));
    // A later read without the card's write (it was never made) replaces it: only cards
    // events patched since the last read are kept.
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    assert_eq!(card_of(&app, "card-101"), Some(&fx::cards()[0]));
}

#[test]
fn a_failure_leaving_the_recent_window_moves_down_without_a_new_read() {
    let mut app = fx::app();
    // card-103 failed 600 s ago: kept with the running cards until the hour is over.
    assert!(ids(&mut app)[1].starts_with("card-103"));
    app.now += Duration::seconds(artemis::tui::app::RECENT_FAILURE_SECS - 600 + 1);
    let order = ids(&mut app);
    assert_eq!(order[0], "card-101");
    assert_eq!(
        order[1], "card-104",
        "queued 30 s before, now its activity leads"
    );
    assert!(
        order[2].starts_with("card-103"),
        "among the rest by activity: {order:?}"
    );
    assert_eq!(order[3..], ["card-102", "card-105"]);
}

#[test]
fn running_cards_overtake_finished_ones_under_the_time_sort_as_the_clock_moves() {
    let mut app = fx::app();
    press(&mut app, &"s".repeat(5));
    assert_eq!(app.sort, SortKey::Elapsed);
    // card-102 ran 300.5 s; card-101 has run 252 s so far.
    let pos = |app: &mut App, id: &str| ids(app).iter().position(|x| x == id).unwrap();
    assert!(pos(&mut app, "card-102") < pos(&mut app, "card-101"));
    app.now += Duration::seconds(60);
    assert!(pos(&mut app, "card-101") < pos(&mut app, "card-102"));
}

#[test]
fn a_delta_while_frozen_changes_the_data_but_not_the_screen() {
    let mut app = fx::app();
    let before = app.shown().unwrap().clone();
    let rows = ids(&mut app);
    press(&mut app, "p");
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![running("fresh", 0)],
        &["card-105"],
    ))));
    assert_eq!(app.shown(), Some(&before));
    assert_eq!(ids(&mut app), rows);
    assert!(card_of(&app, "fresh").is_some(), "the data keeps coming");
    press(&mut app, "p");
    let now = ids(&mut app);
    assert_eq!(now[0], "fresh");
    assert!(!now.contains(&"card-105".to_string()));
}

#[test]
fn a_delta_before_any_snapshot_is_ignored() {
    let mut app = App::new(
        artemis::tui::keymap::KeyMap::default(),
        artemis::tui::theme::Theme::dark(),
        false,
        fx::ENDPOINT.into(),
    );
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![running("x", 0)],
        &[],
    ))));
    assert!(app.live.is_none());
    assert!(app.rows().is_empty());
}

#[test]
fn a_card_only_an_event_showed_leaves_after_its_grace_without_a_read_listing_it() {
    let mut app = fx::app();
    app.apply(Message::Event(PipelineEvent::PipelineStarted {
        card_id: "by-event".into(),
        total_stages: 2,
        timestamp: ts(0),
        metadata: Default::default(),
    }));
    app.apply(Message::Delta(Box::new(fixture_delta(Vec::new(), &[]))));
    assert_eq!(ids(&mut app)[0], "by-event", "within its grace period");
    app.now += Duration::seconds(EVENT_CARD_GRACE_SECS + 1);
    app.apply(Message::Delta(Box::new(fixture_delta(Vec::new(), &[]))));
    assert!(!ids(&mut app).contains(&"by-event".to_string()));
    assert!(!app.live_events.contains_key("by-event"));
}

#[test]
fn a_read_listing_one_id_twice_is_shown_without_a_panic() {
    // A reader should never list an id twice; if one does, the dashboard keeps going.
    let mut app = fx::app();
    press(&mut app, "j");
    let mut s = fx::snapshot();
    s.cards.push(s.cards[0].clone());
    app.apply(Message::Snapshot(Box::new(s)));
    let twice = fx::cards()[0].clone();
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![twice.clone(), twice],
        &["card-105"],
    ))));
    for e in fx::events_101() {
        app.apply(Message::Event(e));
    }
    press(&mut app, "sS");
    let rows = ids(&mut app);
    assert!(rows.contains(&"card-101".to_string()) && !rows.contains(&"card-105".to_string()));
}

#[test]
fn a_delta_that_changes_nothing_on_screen_draws_no_frame() {
    let mut app = fx::app();
    app.dirty = false;
    let held = app.live.clone().unwrap();
    let mut idle = delta(&held, Vec::new(), Vec::new());
    idle.taken_at += Duration::seconds(1);
    app.apply(Message::Delta(Box::new(idle)));
    assert!(!app.dirty, "only the data age moved");
    assert_eq!(app.quiet_reads, 1);
    assert_eq!(
        app.live.as_ref().unwrap().taken_at,
        held.taken_at + Duration::seconds(1),
        "the next frame shows the new data age"
    );
}

#[test]
fn a_delta_with_a_changed_card_draws_a_frame() {
    let mut app = fx::app();
    app.dirty = false;
    app.apply(Message::Delta(Box::new(fixture_delta(
        vec![running("fresh", 1)],
        &[],
    ))));
    assert!(app.dirty);
    assert_eq!(app.quiet_reads, 0);
}

#[test]
fn a_delta_with_changed_metrics_draws_a_frame() {
    let mut app = fx::app();
    app.dirty = false;
    let mut d = delta(app.live.as_ref().unwrap(), Vec::new(), Vec::new());
    d.metrics.llm.total_requests += 1;
    app.apply(Message::Delta(Box::new(d)));
    assert!(app.dirty);
}

/// An app showing 200 cards with a frame drawn: five rows on screen, from the top.
fn drawn_app() -> App {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(fx::many_cards(200))));
    let _ = ids(&mut app);
    app.page = 5;
    app.offset = 0;
    app.dirty = false;
    app
}

fn progress_event(id: &str, progress: i64) -> Message {
    Message::Event(PipelineEvent::StageUpdated {
        card_id: id.into(),
        stage_name: "development".into(),
        status: StageStatus::Running,
        progress_percent: Some(progress),
        message: Some(format!("at {progress}")),
        timestamp: ts(0),
    })
}

/// The order a full read of the app's cards gives, in a fresh app.
fn rebuilt_ids(app: &App) -> Vec<String> {
    let mut snap = app.live.as_ref().unwrap().clone();
    snap.cards
        .sort_by(|a, b| a.pipeline.card_id.cmp(&b.pipeline.card_id));
    let mut fresh = fx::app();
    fresh.apply(Message::Snapshot(Box::new(snap)));
    ids(&mut fresh)
}

#[test]
fn an_event_that_leaves_its_off_screen_row_in_place_draws_no_frame() {
    let mut app = drawn_app();
    let order = ids(&mut app);
    let off = order[40].clone();
    assert_eq!(
        card_of(&app, &off).unwrap().pipeline.status,
        PipelineStatus::Running
    );
    app.apply(progress_event(&off, 77));
    assert!(!app.dirty, "nothing on screen changed");
    let dev = |app: &App| {
        card_of(app, &off)
            .unwrap()
            .stages
            .iter()
            .find(|s| s.stage_name == "development")
            .and_then(|s| s.progress_percent)
    };
    assert_eq!(dev(&app), Some(77), "the card is patched all the same");
    assert_eq!(ids(&mut app), order);
    assert_eq!(ids(&mut app), rebuilt_ids(&app));
}

#[test]
fn an_event_of_a_card_above_the_screen_draws_no_frame() {
    let mut app = drawn_app();
    app.offset = 20;
    let above = ids(&mut app)[3].clone();
    app.apply(progress_event(&above, 66));
    assert!(!app.dirty, "its row is above the five on screen");
}

#[test]
fn an_event_of_the_cards_on_the_screens_edges_draws_a_frame() {
    for row in [20, 24] {
        let mut app = drawn_app();
        app.offset = 20;
        let edge = ids(&mut app)[row].clone();
        app.apply(progress_event(&edge, 66));
        assert!(app.dirty, "row {row} is on screen");
    }
    let mut app = drawn_app();
    app.offset = 20;
    let below = ids(&mut app)[25].clone();
    app.apply(progress_event(&below, 66));
    assert!(!app.dirty, "row 25 is just below the screen");
}

#[test]
fn an_event_for_a_card_on_screen_draws_a_frame() {
    let mut app = drawn_app();
    let on = ids(&mut app)[2].clone();
    app.apply(progress_event(&on, 55));
    assert!(app.dirty);
}

#[test]
fn an_event_that_moves_an_off_screen_row_draws_a_frame_and_places_it() {
    let mut app = drawn_app();
    let order = ids(&mut app);
    let off = order[40].clone();
    app.apply(Message::Event(PipelineEvent::PipelineCompleted {
        card_id: off.clone(),
        status: PipelineStatus::Failed,
        duration_seconds: Some(10.0),
        message: None,
        timestamp: ts(0),
    }));
    assert!(app.dirty, "its status and place changed");
    assert_eq!(ids(&mut app), rebuilt_ids(&app));
}
