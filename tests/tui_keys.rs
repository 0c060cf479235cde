//! Key presses fed to the app, with assertions on its state: drilldown in and out, filter,
//! sort, freeze, help, themes, navigation, refresh, quitting, and rebound keys. No terminal
//! is involved: the app is plain state that the run loop drives the same way.

mod tui_fixtures;

use std::collections::BTreeMap;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use artemis::model::{PipelineEvent, PipelineStatus, StageStatus};
use artemis::tui::app::{App, SortKey, View};
use artemis::tui::keymap::KeyMap;
use artemis::tui::message::{Command, Message};
use artemis::tui::theme::Theme;

use tui_fixtures as fx;
use tui_fixtures::{ids, selected_id};

fn ch(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn press(app: &mut App, keys: &str) -> Vec<Command> {
    keys.chars().flat_map(|c| app.handle_key(ch(c))).collect()
}

#[test]
fn enter_opens_the_selected_card_and_esc_goes_back() {
    let mut app = fx::app();
    // Running first in the default order.
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-101"));
    let cmds = app.handle_key(k(KeyCode::Enter));
    assert_eq!(cmds, vec![Command::LoadHistory("card-101".into())]);
    assert!(matches!(&app.view, View::Card(v) if v.card_id == "card-101"));
    // History arriving for another card (a stale answer) is ignored.
    app.apply(Message::History {
        card_id: "card-999".into(),
        result: Ok(Some(vec![])),
    });
    assert!(app.card_history.is_none());
    app.apply(Message::History {
        card_id: "card-101".into(),
        result: Ok(Some(fx::events_101())),
    });
    let (events, stored) = app.open_card_events();
    assert!(stored);
    assert_eq!(events.len(), 9);
    assert_eq!(
        events[0].timestamp(),
        fx::events_101()[8].timestamp(),
        "newest first"
    );
    // Enter does nothing inside a card; Esc goes back and keeps the selection.
    assert!(app.handle_key(k(KeyCode::Enter)).is_empty());
    app.handle_key(k(KeyCode::Esc));
    assert_eq!(app.view, View::Overview);
    assert!(app.card_history.is_none());
    assert_eq!(selected_id(&mut app).as_deref(), Some("card-101"));
}

#[test]
fn live_events_and_history_merge_without_duplicates() {
    let mut app = fx::app();
    app.handle_key(k(KeyCode::Enter));
    let evs = fx::events_101();
    for e in &evs[..5] {
        app.apply(Message::Event(e.clone()));
    }
    app.apply(Message::History {
        card_id: "card-101".into(),
        result: Ok(Some(evs[..7].to_vec())),
    });
    for e in &evs[5..] {
        app.apply(Message::Event(e.clone()));
    }
    assert_eq!(app.open_card_events().0.len(), evs.len());
}

#[test]
fn filter_matches_id_and_title_and_esc_clears_it() {
    let mut app = fx::app();
    press(&mut app, "/oauth");
    assert!(app.filter_editing);
    assert_eq!(ids(&mut app), vec!["card-101"]);
    app.handle_key(k(KeyCode::Enter));
    assert!(!app.filter_editing);
    assert_eq!(app.filter, "oauth");
    // Keys are actions again once the filter is kept: `s` sorts instead of typing.
    press(&mut app, "s");
    assert_eq!(app.filter, "oauth");
    assert_eq!(app.sort, SortKey::Started);
    // By id, case-insensitively; Backspace edits.
    press(&mut app, "/");
    for _ in 0..5 {
        app.handle_key(k(KeyCode::Backspace));
    }
    press(&mut app, "CARD-10");
    assert_eq!(app.filter, "CARD-10");
    assert_eq!(ids(&mut app).len(), 5);
    app.handle_key(k(KeyCode::Esc));
    assert!(app.filter.is_empty() && !app.filter_editing);
    // Esc in the overview clears a kept filter too.
    press(&mut app, "/nothing-matches");
    app.handle_key(k(KeyCode::Enter));
    assert!(ids(&mut app).is_empty());
    assert!(app.selected_card().is_none());
    assert!(
        app.handle_key(k(KeyCode::Enter)).is_empty(),
        "nothing to open"
    );
    app.handle_key(k(KeyCode::Esc));
    assert_eq!(ids(&mut app).len(), 5);
}

#[test]
fn s_cycles_sort_columns_and_capital_s_reverses() {
    let mut app = fx::app();
    assert_eq!(app.sort, SortKey::Attention);
    assert_eq!(ids(&mut app)[0], "card-101", "running first");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Started);
    assert_eq!(ids(&mut app)[0], "card-104", "newest start first");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Id);
    assert_eq!(ids(&mut app)[0], "card-101");
    press(&mut app, "S");
    assert!(app.reverse);
    assert_eq!(ids(&mut app)[0], "card-105");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Status);
    assert!(!app.reverse);
    assert!(ids(&mut app)[0].starts_with("card-103"), "failed first");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Progress);
    assert_eq!(ids(&mut app)[0], "card-102", "completed 3/3 first");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Elapsed);
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Cost);
    assert_eq!(ids(&mut app)[0], "card-102", "most expensive first");
    press(&mut app, "s");
    assert_eq!(app.sort, SortKey::Attention);
}

#[test]
fn selection_follows_its_card_when_rows_move() {
    let mut app = fx::app();
    press(&mut app, "jj");
    let id = selected_id(&mut app).unwrap();
    press(&mut app, "s");
    assert_eq!(selected_id(&mut app).unwrap(), id);
}

#[test]
fn freeze_keeps_collecting_but_shows_the_frozen_copy() {
    let mut app = fx::app();
    let before = app.shown().unwrap().clone();
    press(&mut app, "p");
    assert!(app.is_frozen());
    let mut newer = fx::snapshot_at(0, 20);
    newer.cards.retain(|c| c.pipeline.card_id != "card-105");
    app.apply(Message::Snapshot(Box::new(newer.clone())));
    app.apply(Message::Event(PipelineEvent::PipelineCompleted {
        card_id: "card-101".into(),
        status: PipelineStatus::Completed,
        duration_seconds: Some(300.0),
        message: None,
        timestamp: "2025-10-22T20:30:44".into(),
    }));
    assert_eq!(app.shown(), Some(&before), "the screen does not move");
    assert_eq!(
        app.live.as_ref().unwrap().cards.len(),
        4,
        "but data keeps coming"
    );
    assert_eq!(
        app.live
            .as_ref()
            .unwrap()
            .cards
            .iter()
            .find(|c| c.pipeline.card_id == "card-101")
            .unwrap()
            .pipeline
            .status,
        PipelineStatus::Completed
    );
    // Space is the other freeze key; unfreezing shows the latest data at once.
    app.handle_key(k(KeyCode::Char(' ')));
    assert!(!app.is_frozen());
    assert_eq!(ids(&mut app).len(), 4);
}

#[test]
fn help_opens_and_closes_and_swallows_other_keys() {
    let mut app = fx::app();
    press(&mut app, "?");
    assert!(app.help);
    press(&mut app, "jsp");
    assert!(app.help);
    assert_eq!(app.sort, SortKey::Attention);
    assert!(!app.is_frozen());
    press(&mut app, "?");
    assert!(!app.help);
    press(&mut app, "?");
    app.handle_key(k(KeyCode::Esc));
    assert!(!app.help);
    press(&mut app, "?q");
    assert!(app.quit, "q quits from the popup too");
}

#[test]
fn navigation_keys_move_and_clamp() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(fx::many_cards(100))));
    app.page = 10;
    app.handle_key(k(KeyCode::PageDown));
    assert_eq!(app.selected, 10);
    app.handle_key(k(KeyCode::Down));
    assert_eq!(app.selected, 11);
    app.handle_key(k(KeyCode::Up));
    press(&mut app, "k");
    assert_eq!(app.selected, 9);
    press(&mut app, "G");
    assert_eq!(app.selected, 100, "last row: the malformed document");
    press(&mut app, "j");
    assert_eq!(app.selected, 100);
    app.handle_key(k(KeyCode::PageUp));
    assert_eq!(app.selected, 90);
    press(&mut app, "g");
    assert_eq!(app.selected, 0);
    press(&mut app, "k");
    assert_eq!(app.selected, 0);
}

#[test]
fn themes_cycle_unless_no_color() {
    let mut app = fx::app();
    press(&mut app, "t");
    assert_eq!(app.theme.name, "light");
    press(&mut app, "tt");
    assert_eq!(app.theme.name, "dark");
    let mut nc = fx::app_with(Theme::light(), true);
    assert_eq!(nc.theme.name, "mono");
    press(&mut nc, "t");
    assert_eq!(nc.theme.name, "mono");
    assert!(nc.notices[0].contains("NO_COLOR"));
}

#[test]
fn refresh_asks_the_sources_and_quit_keys_quit() {
    let mut app = fx::app();
    assert_eq!(press(&mut app, "r"), vec![Command::Refresh]);
    assert!(!app.quit);
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
    let mut app = fx::app();
    // Key releases (kitty keyboard protocol) are not presses.
    let mut release = ch('q');
    release.kind = KeyEventKind::Release;
    app.handle_key(release);
    assert!(!app.quit);
    press(&mut app, "q");
    assert!(app.quit);
    // Ctrl-C quits even while typing a filter.
    let mut app = fx::app();
    press(&mut app, "/q");
    assert!(!app.quit);
    app.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

#[test]
fn rebound_keys_work_and_warnings_are_shown() {
    let cfg: BTreeMap<String, String> = [("quit", "x"), ("open", "o, Enter"), ("nope", "z")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let km = KeyMap::from_config(&cfg);
    let mut app = App::new(km, Theme::dark(), false, fx::ENDPOINT.into());
    assert_eq!(app.notices.len(), 1, "{:?}", app.notices);
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    press(&mut app, "q");
    assert!(!app.quit);
    assert!(app.notices.is_empty(), "a key press dismisses the warning");
    assert_eq!(
        app.handle_key(ch('o')),
        vec![Command::LoadHistory("card-101".into())]
    );
    app.handle_key(k(KeyCode::Esc));
    press(&mut app, "x");
    assert!(app.quit);
}

#[test]
fn live_events_patch_cards_until_the_next_snapshot() {
    let mut app = fx::app();
    app.apply(Message::Event(PipelineEvent::StageUpdated {
        card_id: "card-104".into(),
        stage_name: "planning".into(),
        status: StageStatus::Running,
        progress_percent: Some(20),
        message: None,
        timestamp: "2025-10-22T20:30:44".into(),
    }));
    let c = app
        .live
        .as_ref()
        .unwrap()
        .cards
        .iter()
        .find(|c| c.pipeline.card_id == "card-104")
        .unwrap();
    // The tracker's rule for a stage update (issue 12): it sets the current stage and leaves
    // the pipeline status alone, so the card shows what the next read will show.
    assert_eq!(c.pipeline.status, PipelineStatus::Queued);
    assert_eq!(c.pipeline.current_stage.as_deref(), Some("planning"));
    // A new card appears from its start event.
    app.apply(Message::Event(PipelineEvent::PipelineStarted {
        card_id: "card-new".into(),
        total_stages: 3,
        timestamp: "2025-10-22T20:30:45".into(),
        metadata: serde_json::json!({"title": "Fresh card"})
            .as_object()
            .cloned()
            .unwrap(),
    }));
    assert_eq!(ids(&mut app)[0], "card-new");
    // With its title at once (the start event's metadata extension).
    let shown = app.shown().unwrap();
    let fresh = shown
        .cards
        .iter()
        .find(|c| c.pipeline.card_id == "card-new")
        .unwrap();
    assert_eq!(fresh.title(), Some("Fresh card"));
    assert_eq!(app.events_total, 2);
    // Snapshots are the truth, but a reader may list a new card only later (Python cards
    // are found by a periodic SCAN): within the grace period the card stays.
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    assert!(ids(&mut app).contains(&"card-new".to_string()));
    // Past it, a card that no snapshot lists leaves the table with its events.
    app.now += chrono::Duration::seconds(artemis::tui::app::EVENT_CARD_GRACE_SECS + 1);
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    assert!(!ids(&mut app).contains(&"card-new".to_string()));
    assert!(!app.live_events.contains_key("card-new"));
    assert!(app.live_events.contains_key("card-104"));
    // A card listed by a snapshot is the snapshot's from then on.
    app.apply(Message::Event(PipelineEvent::PipelineStarted {
        card_id: "card-101".into(),
        total_stages: 8,
        timestamp: "2025-10-22T20:26:33".into(),
        metadata: Default::default(),
    }));
    assert_eq!(ids(&mut app).len(), 5);
}

#[test]
fn memory_stays_bounded_under_event_storms() {
    let mut app = fx::app();
    for i in 0..30_000 {
        app.apply(Message::Event(PipelineEvent::PipelineStarted {
            card_id: format!("storm-{i}"),
            total_stages: 1,
            timestamp: "2025-10-22T20:30:45".into(),
            metadata: Default::default(),
        }));
    }
    for i in 0..1_000 {
        app.apply(Message::Event(PipelineEvent::StageUpdated {
            card_id: "card-101".into(),
            stage_name: format!("s{i}"),
            status: StageStatus::Running,
            progress_percent: None,
            message: None,
            timestamp: "2025-10-22T20:30:45".into(),
        }));
    }
    assert!(app.live_events.len() <= artemis::tui::app::TRACKED_CARDS + 5);
    assert_eq!(
        app.live_events["card-101"].len(),
        artemis::tui::app::EVENTS_PER_CARD
    );
    let cards = app.live.as_ref().unwrap().cards.len();
    assert!(cards <= 5 + artemis::tui::app::CARDS_FROM_EVENTS, "{cards}");
    app.now += chrono::Duration::seconds(artemis::tui::app::EVENT_CARD_GRACE_SECS + 1);
    for _ in 0..2_000 {
        app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    }
    assert_eq!(
        app.history.hit_rate.len(),
        artemis::tui::app::HISTORY_SAMPLES
    );
    assert_eq!(app.live.as_ref().unwrap().cards.len(), 5);
}

/// A long event storm over many cards keeps a bounded number of live events (the drill-down's
/// fallback when the writer keeps no history), dropping the oldest first.
#[test]
fn live_events_stay_bounded_under_a_storm() {
    use artemis::tui::app::{EVENTS_PER_CARD, LIVE_EVENTS_TOTAL};
    let cards = 10_000;
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(fx::many_cards(cards))));
    let total = |app: &App| app.live_events.values().map(|q| q.len()).sum::<usize>();
    for i in 0..(LIVE_EVENTS_TOTAL * 3) {
        app.apply(Message::Event(PipelineEvent::StageUpdated {
            card_id: format!("card-{:06}", i % cards),
            stage_name: "development".into(),
            status: StageStatus::Running,
            progress_percent: Some((i % 100) as i64),
            message: Some(format!("event {i}")),
            timestamp: "2025-10-22T20:30:44".into(),
        }));
        if i % 997 == 0 {
            assert!(total(&app) <= LIVE_EVENTS_TOTAL);
        }
    }
    assert_eq!(total(&app), LIVE_EVENTS_TOTAL);
    // The newest are kept: the last card touched has its last event.
    let last = LIVE_EVENTS_TOTAL * 3 - 1;
    let q = &app.live_events[&format!("card-{:06}", last % cards)];
    match &q.back().unwrap().event {
        PipelineEvent::StageUpdated { message, .. } => {
            assert_eq!(message.as_deref(), Some(format!("event {last}").as_str()))
        }
        other => panic!("{other:?}"),
    }
    // One hot card still keeps its own cap.
    for i in 0..(EVENTS_PER_CARD * 2) {
        app.apply(Message::Event(PipelineEvent::StageUpdated {
            card_id: "card-000001".into(),
            stage_name: "development".into(),
            status: StageStatus::Running,
            progress_percent: Some((i % 100) as i64),
            message: None,
            timestamp: "2025-10-22T20:30:44".into(),
        }));
    }
    assert_eq!(app.live_events["card-000001"].len(), EVENTS_PER_CARD);
    assert!(total(&app) <= LIVE_EVENTS_TOTAL);
}

fn alt(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
}

/// Feeds one key event the way the run loop does: through `KeyMap::split_escape`.
fn feed(app: &mut App, event: KeyEvent) {
    for key in app
        .keymap
        .split_escape(event, app.scope(), app.filter_editing)
    {
        app.handle_key(key);
    }
}

/// `ESC q` read at once is Alt-q to the terminal parser; bound to nothing, it is Escape then q:
/// out of the drilldown, then quit.
#[test]
fn an_unbound_alt_key_is_escape_then_the_key() {
    let mut app = fx::app();
    app.handle_key(k(KeyCode::Enter));
    assert!(matches!(app.view, View::Card(_)));
    feed(&mut app, alt('q'));
    assert_eq!(app.view, View::Overview);
    assert!(app.quit);
}

/// While the filter is typed, `ESC x` ends the filter (Escape) and x is a key again.
#[test]
fn escape_then_a_key_while_filtering_leaves_the_filter() {
    let mut app = fx::app();
    press(&mut app, "/card");
    assert!(app.filter_editing);
    feed(&mut app, alt('q'));
    assert!(!app.filter_editing);
    assert!(app.filter.is_empty(), "Escape clears the filter");
    assert!(app.quit, "q after it quits");
}

/// An Alt key the user bound keeps its binding.
#[test]
fn a_bound_alt_key_keeps_its_action() {
    let cfg: BTreeMap<String, String> = [("quit", "alt-x")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let km = KeyMap::from_config(&cfg);
    let mut app = App::new(km, Theme::dark(), false, fx::ENDPOINT.into());
    app.apply(Message::Snapshot(Box::new(fx::snapshot())));
    assert_eq!(
        app.keymap.split_escape(alt('x'), app.scope(), false),
        vec![alt('x')]
    );
    feed(&mut app, alt('x'));
    assert!(app.quit);
}
