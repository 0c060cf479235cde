//! The overview's selection and filters, driven by keys and snapshots on the app state and
//! drawn on ratatui's `TestBackend`: the selection follows its card (never a row index) while
//! cards arrive, finish and leave; running cards stay on screen however many finished cards
//! pile up; the status strip counts each status and still fits at the minimum width; quick
//! status filters and the `/` filter over status, stage and metadata, with the matches
//! highlighted. Fixed fixtures, injected clock, no terminal.

mod tui_fixtures;

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use serde_json::json;

use artemis::model::{PipelineStatus, format_naive};
use artemis::snapshot::Snapshot;
use artemis::tracker::Card;
use artemis::tui::app::{App, SortKey};
use artemis::tui::message::Message;
use artemis::tui::render;

use tui_fixtures as fx;
use tui_fixtures::{ids, selected_id};

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

fn esc(app: &mut App) {
    app.handle_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
}

fn ts(secs_before_now: i64) -> String {
    format_naive((fx::now() - Duration::seconds(secs_before_now)).naive_utc())
}

/// A card like the fixture's running one, with its own id, status and times.
fn card(id: &str, status: PipelineStatus, started_ago: i64, ended_ago: Option<i64>) -> Card {
    let mut c = fx::cards()[0].clone();
    c.pipeline.card_id = id.into();
    c.pipeline.status = status;
    c.pipeline.start_time = ts(started_ago).into();
    c.pipeline.end_time = ended_ago.map(|e| ts(e).into());
    c.pipeline
        .metadata
        .insert("title".into(), json!(format!("Generated {id}")));
    for s in &mut c.stages {
        s.timestamp = ts(ended_ago.unwrap_or(started_ago)).into();
    }
    c
}

fn with_cards(extra: Vec<Card>) -> Snapshot {
    let mut s = fx::snapshot();
    s.cards.extend(extra);
    s
}

fn frame(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

fn row_text(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

fn screen(buf: &Buffer) -> String {
    (0..buf.area.height)
        .map(|y| row_text(buf, y) + "\n")
        .collect()
}

/// The demo's situation: many cards finished recently, a few still running, started earlier.
fn finished_pile_and_running(finished: usize, running: usize) -> Vec<Card> {
    let mut cards: Vec<Card> = (0..finished)
        .map(|i| {
            card(
                &format!("done-{i:03}"),
                PipelineStatus::Completed,
                100 + i as i64,
                Some(i as i64),
            )
        })
        .collect();
    cards.extend(
        (0..running).map(|i| card(&format!("run-{i}"), PipelineStatus::Running, 600, None)),
    );
    cards
}

#[test]
fn the_default_order_is_running_then_recent_failures_then_recent_activity() {
    let mut app = fx::app();
    assert_eq!(app.sort, SortKey::Attention);
    // 101 runs; 103 failed 10 minutes ago; then 104 (queued 30 s ago), 102 (finished an
    // hour ago), 105 (two hours ago).
    let order = ids(&mut app);
    assert_eq!(order[0], "card-101");
    assert!(order[1].starts_with("card-103"));
    assert_eq!(order[2..], ["card-104", "card-102", "card-105"]);
    // A failure older than the hour is no longer kept at the top.
    let old_fail = card("old-fail", PipelineStatus::Failed, 9000, Some(8000));
    app.apply(Message::Snapshot(Box::new(with_cards(vec![old_fail]))));
    assert_eq!(ids(&mut app).last().unwrap(), "old-fail");
}

#[test]
fn the_selection_follows_its_card_while_cards_arrive() {
    let mut app = fx::app();
    press(&mut app, "jj");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
    // Cards arrive above it in waves, by snapshot and by start event.
    let mut extra = Vec::new();
    for wave in 0..5 {
        for i in 0..4 {
            extra.push(card(
                &format!("new-{wave}-{i}"),
                PipelineStatus::Running,
                i,
                None,
            ));
        }
        app.apply(Message::Snapshot(Box::new(with_cards(extra.clone()))));
        assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
        let buf = frame(&mut app, 120, 36);
        assert!(
            screen(&buf).contains("card-104"),
            "the selected card stays on screen"
        );
    }
    app.apply(Message::Event(
        artemis::model::PipelineEvent::PipelineStarted {
            card_id: "by-event".into(),
            total_stages: 3,
            timestamp: ts(0),
            metadata: Default::default(),
        },
    ));
    assert_eq!(
        ids(&mut app)[0],
        "by-event",
        "the newest running card is first"
    );
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
}

#[test]
fn the_selection_follows_its_card_when_it_finishes_and_moves() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(with_cards(vec![card(
        "other-run",
        PipelineStatus::Running,
        100,
        None,
    )]))));
    // card-101 (started 252 s ago) is second among the running ones.
    press(&mut app, "j");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-101"));
    let mut s = with_cards(vec![card("other-run", PipelineStatus::Running, 100, None)]);
    let c = &mut s.cards[0];
    c.pipeline.status = PipelineStatus::Completed;
    c.pipeline.end_time = Some(ts(0).into());
    app.apply(Message::Snapshot(Box::new(s)));
    let order = ids(&mut app);
    let pos = order.iter().position(|i| i == "card-101").unwrap();
    assert!(pos > 0, "it left the running group: {order:?}");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-101"));
}

#[test]
fn running_cards_stay_on_screen_while_finished_cards_pile_up() {
    let mut app = fx::app();
    // 60 s of demo: 40 cards finished in the last minute, 7 still running since before.
    app.apply(Message::Snapshot(Box::new(with_cards(
        finished_pile_and_running(40, 7),
    ))));
    let buf = frame(&mut app, 120, 36);
    let shown = screen(&buf);
    for i in 0..7 {
        assert!(
            shown.contains(&format!("run-{i}")),
            "run-{i} off screen:\n{shown}"
        );
    }
    assert!(shown.contains("card-101"));
    // The cursor was never moved: it stays on the first row as cards arrive.
    assert_eq!(app.selected, 0);
}

#[test]
fn rows_moving_under_the_selection_bring_the_running_cards_back_into_sight() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(with_cards(
        finished_pile_and_running(40, 3),
    ))));
    // Down to the bottom and back up to the eighth row: the view now starts there, with the
    // running cards above it.
    press(&mut app, "G");
    frame(&mut app, 120, 36);
    press(&mut app, &"k".repeat(39));
    frame(&mut app, 120, 36);
    assert!(app.offset > 0);
    let chosen = selected_id(&mut app).unwrap();
    // A new card arrives: the view scrolls no further than the selection needs.
    let mut extra = finished_pile_and_running(40, 3);
    extra.push(card("late-run", PipelineStatus::Running, 1, None));
    app.apply(Message::Snapshot(Box::new(with_cards(extra))));
    let buf = frame(&mut app, 120, 36);
    assert_eq!(app.offset, 0);
    let shown = screen(&buf);
    for id in [
        "late-run",
        "run-0",
        "run-1",
        "run-2",
        "card-101",
        chosen.as_str(),
    ] {
        assert!(shown.contains(id), "{id} off screen:\n{shown}");
    }
    assert_eq!(selected_id(&mut app), Some(chosen));
}

#[test]
fn a_vanished_selection_moves_to_its_neighbour_in_the_new_order() {
    let mut app = fx::app();
    press(&mut app, "jj");
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-104"));
    // card-104 expires: its neighbour below (card-102) takes the selection.
    let mut s = fx::snapshot();
    s.cards.retain(|c| c.pipeline.card_id != "card-104");
    app.apply(Message::Snapshot(Box::new(s)));
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-102"));
    // Filtered out: the same rule.
    press(&mut app, "/card-10");
    app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-102"));
    press(&mut app, "f"); // running only: 102 is gone, 101 is what is left
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-101"));
}

#[test]
fn home_returns_the_selection_to_the_top_row_as_cards_arrive() {
    let mut app = fx::app();
    press(&mut app, "jjg");
    app.apply(Message::Snapshot(Box::new(with_cards(vec![card(
        "newest",
        PipelineStatus::Running,
        0,
        None,
    )]))));
    assert_eq!(selected_id(&mut app).as_deref(), Some("newest"));
}

#[test]
fn quick_status_filters_cycle_and_show_in_the_title() {
    let mut app = fx::app();
    press(&mut app, "f");
    assert_eq!(app.status_filter, Some(PipelineStatus::Running));
    assert_eq!(ids(&mut app), ["card-101"]);
    let buf = frame(&mut app, 120, 36);
    assert!(screen(&buf).contains("only running"));
    press(&mut app, "f");
    assert_eq!(app.status_filter, Some(PipelineStatus::Failed));
    assert!(ids(&mut app)[0].starts_with("card-103"));
    press(&mut app, "F");
    assert_eq!(app.status_filter, Some(PipelineStatus::Running));
    press(&mut app, "FF");
    assert_eq!(app.status_filter, Some(PipelineStatus::Cancelled), "wraps");
    assert_eq!(ids(&mut app), ["card-105"]);
    esc(&mut app);
    assert_eq!(app.status_filter, None);
    assert_eq!(ids(&mut app).len(), 5);
}

#[test]
fn the_text_filter_matches_status_stage_and_metadata_values() {
    let mut app = fx::app();
    let mut tagged = card("tagged", PipelineStatus::Completed, 50, Some(40));
    tagged
        .pipeline
        .metadata
        .insert("team".into(), json!("payments"));
    tagged
        .pipeline
        .metadata
        .insert("ticket".into(), json!(4711));
    tagged.pipeline.current_stage = Some("deploy".into());
    app.apply(Message::Snapshot(Box::new(with_cards(vec![tagged]))));
    for (needle, want) in [
        ("/failed", vec!["card-103"]),
        ("/cancel", vec!["card-105"]),
        ("/develop", vec!["card-101"]),
        ("/PAYMENTS", vec!["tagged"]),
        ("/4711", vec!["tagged"]),
    ] {
        press(&mut app, needle);
        let got = ids(&mut app);
        let got: Vec<&str> = got.iter().map(|s| &s[..s.len().min(8)]).collect();
        assert_eq!(got, want, "{needle}");
        esc(&mut app);
    }
}

#[test]
fn filter_matches_are_highlighted_in_the_rows() {
    let mut app = fx::app();
    press(&mut app, "/oauth");
    let buf = frame(&mut app, 120, 36);
    let y = (0..buf.area.height)
        .find(|&y| row_text(&buf, y).contains("Add OAuth login"))
        .expect("the matching row is drawn");
    let x = (0..buf.area.width)
        .find(|&x| (0..5).all(|i| buf[(x + i, y)].symbol() == &"OAuth"[i as usize..i as usize + 1]))
        .unwrap();
    let marked = |x: u16| {
        let m = buf[(x, y)].modifier;
        m.contains(Modifier::BOLD) && m.contains(Modifier::UNDERLINED)
    };
    assert!((x..x + 5).all(marked), "every matching cell is marked");
    assert!(!marked(x - 1) && !marked(x + 5), "and only those");
}

#[test]
fn the_header_counts_each_status_and_shortens_to_fit() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(with_cards(
        finished_pile_and_running(3, 2),
    ))));
    let wide = row_text(&frame(&mut app, 220, 40), 0);
    assert!(
        wide.contains("10 cards: 1 queued · 3 running · 4 completed · 1 failed · 1 cancelled"),
        "{wide}"
    );
    assert!(wide.contains(fx::ENDPOINT));
    let narrow = row_text(&frame(&mut app, 60, 18), 0);
    assert!(narrow.contains("connected"), "{narrow}");
    assert!(
        narrow.contains("Q1") && narrow.contains("R3") && narrow.contains("C4"),
        "{narrow}"
    );
    assert!(
        narrow.contains("F1") && narrow.contains("X1"),
        "nothing cut off the end: {narrow}"
    );
}
