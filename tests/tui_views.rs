//! Switching views and moving in them, by key and by mouse, with assertions on the app's
//! state: Tab to the metrics view and back, the metrics view's and the help's scrolls (clamped
//! by the renderer), the footer naming the theme just put on, and mouse clicks, double clicks
//! and the wheel. Frames are drawn on ratatui's test backend where the renderer's part matters
//! (where the table is, how far a scroll may go); no terminal is involved otherwise.

mod tui_fixtures;

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use artemis::tui::app::{App, DOUBLE_CLICK_MS, View};
use artemis::tui::message::Command;
use artemis::tui::render;
use artemis::tui::theme::{Background, BackgroundSource, Theme};

use tui_fixtures as fx;
use tui_fixtures::selected_id;

fn ch(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn k(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// Draws one frame and returns its text.
fn draw(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    let buf = t.backend().buffer();
    let mut s = String::new();
    for y in 0..h {
        for x in 0..w {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn mouse(kind: MouseEventKind, column: u16, row: u16) -> MouseEvent {
    MouseEvent {
        kind,
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }
}

fn click(app: &mut App, column: u16, row: u16) -> Vec<Command> {
    app.handle_mouse(mouse(MouseEventKind::Down(MouseButton::Left), column, row))
}

/// The screen row of the table's `i`-th visible data row (below its border and header).
fn row_y(app: &App, i: u16) -> u16 {
    app.table_area.y + 2 + i
}

#[test]
fn tab_switches_to_the_metrics_view_and_back() {
    let mut app = fx::app_with_all_metrics(Theme::dark(), false);
    app.handle_key(k(KeyCode::Tab));
    assert_eq!(app.view, View::Metrics);
    let t = draw(&mut app, 160, 48);
    for section in [
        "Metrics",
        "Code reviews",
        "Recent pipelines",
        "Per day",
        "alice",
    ] {
        assert!(t.contains(section), "{section} missing:\n{t}");
    }
    app.handle_key(k(KeyCode::Tab));
    assert_eq!(app.view, View::Overview);
    app.handle_key(k(KeyCode::Tab));
    app.handle_key(k(KeyCode::Esc));
    assert_eq!(
        app.view,
        View::Overview,
        "Esc goes back to the overview too"
    );
}

#[test]
fn tab_does_nothing_in_the_drilldown() {
    let mut app = fx::app();
    app.handle_key(k(KeyCode::Enter));
    app.handle_key(k(KeyCode::Tab));
    assert!(matches!(&app.view, View::Card(v) if v.card_id == "card-101"));
}

#[test]
fn movement_keys_scroll_the_metrics_view_within_its_length() {
    let mut app = fx::app_with_all_metrics(Theme::dark(), false);
    app.handle_key(k(KeyCode::Tab));
    let first = draw(&mut app, 80, 24);
    assert!(first.contains("Metrics · all time · 1-"), "{first}");
    app.handle_key(ch('j'));
    assert_eq!(app.metrics_scroll, 1);
    app.handle_key(ch('G'));
    let end = draw(&mut app, 80, 24);
    let max = app.metrics_scroll;
    assert!(max > 1 && max < 1000, "clamped to the content: {max}");
    // The oldest day is the last line of the one-column layout.
    assert!(end.contains("2025-09-23"), "{end}");
    app.handle_key(ch('j'));
    draw(&mut app, 80, 24);
    assert_eq!(app.metrics_scroll, max, "no scrolling past the end");
    app.handle_key(ch('g'));
    assert_eq!(app.metrics_scroll, 0);
}

#[test]
fn help_scrolls_with_the_movement_keys_and_opens_at_its_top() {
    let mut app = fx::app();
    app.handle_key(ch('?'));
    let top = draw(&mut app, 60, 18);
    assert!(top.contains(" Keys"), "{top}");
    app.handle_key(k(KeyCode::PageDown));
    app.handle_key(ch('j'));
    draw(&mut app, 60, 18);
    assert!(app.help_scroll > 1);
    assert_eq!(
        selected_id(&mut app).as_deref(),
        Some("card-101"),
        "the table stays"
    );
    app.handle_key(ch('G'));
    let end = draw(&mut app, 60, 18);
    assert!(end.contains("Footer"), "{end}");
    app.handle_key(k(KeyCode::Esc));
    assert!(!app.help);
    app.handle_key(ch('?'));
    draw(&mut app, 60, 18);
    assert_eq!(app.help_scroll, 0);
}

#[test]
fn the_theme_key_names_the_theme_now_on_until_the_next_key() {
    let mut app = fx::app();
    app.handle_key(ch('t'));
    let t = draw(&mut app, 100, 24);
    assert!(
        t.contains("theme light · t switches: dark → light → mono"),
        "{t}"
    );
    app.handle_key(ch('j'));
    assert!(app.flash.is_none());
}

#[test]
fn the_auto_theme_says_what_it_chose_and_why() {
    let mut app = fx::app();
    app.set_auto_theme(Background::Light, BackgroundSource::Terminal);
    assert_eq!(app.theme.name, "light");
    let t = draw(&mut app, 100, 24);
    assert!(
        t.contains("theme light (auto, from the terminal's background) · t switches"),
        "{t}"
    );
    let mut nc = fx::app_with(Theme::dark(), true);
    nc.set_auto_theme(Background::Light, BackgroundSource::Terminal);
    assert_eq!(nc.theme.name, "mono", "NO_COLOR keeps mono");
}

#[test]
fn a_click_on_a_row_selects_its_card() {
    let mut app = fx::app();
    let t = draw(&mut app, 120, 30);
    assert_eq!(app.selected, 0);
    let y = row_y(&app, 2);
    // The card id drawn on that row is the one the click must select.
    let drawn: String = t
        .lines()
        .nth(usize::from(y))
        .unwrap()
        .chars()
        .skip(1)
        .collect();
    let x = app.table_area.x + 5;
    let cmds = click(&mut app, x, y);
    assert!(cmds.is_empty(), "one click only selects");
    assert_eq!(app.selected, 2);
    let id = selected_id(&mut app).unwrap();
    assert!(drawn.trim_start().starts_with(&id), "{id} vs {drawn}");
    assert_eq!(app.view, View::Overview);
}

#[test]
fn a_double_click_opens_the_card() {
    let mut app = fx::app();
    draw(&mut app, 120, 30);
    let y = row_y(&app, 1);
    click(&mut app, 10, y);
    let id = selected_id(&mut app).unwrap();
    app.now += Duration::milliseconds(DOUBLE_CLICK_MS / 2);
    let cmds = click(&mut app, 12, y);
    assert_eq!(cmds, vec![Command::LoadHistory(id.clone())]);
    assert!(matches!(&app.view, View::Card(v) if v.card_id == id));
}

#[test]
fn two_clicks_further_apart_than_a_double_click_only_select() {
    let mut app = fx::app();
    draw(&mut app, 120, 30);
    let y = row_y(&app, 1);
    click(&mut app, 10, y);
    app.now += Duration::milliseconds(DOUBLE_CLICK_MS + 1);
    assert!(click(&mut app, 10, y).is_empty());
    assert_eq!(app.view, View::Overview);
    // Nor do two clicks on different rows, however quick.
    let (y2, y3) = (row_y(&app, 2), row_y(&app, 3));
    click(&mut app, 10, y2);
    assert!(click(&mut app, 10, y3).is_empty());
    assert_eq!(app.view, View::Overview);
}

#[test]
fn clicks_outside_the_card_rows_change_nothing() {
    let mut app = fx::app();
    draw(&mut app, 120, 30);
    let before = app.selected;
    let a = app.table_area;
    for (x, y) in [
        (5, 0),               // header
        (5, a.y),             // table border
        (5, a.y + 1),         // column header
        (a.x, a.y + 2),       // left border
        (5, row_y(&app, 40)), // below the last card, in the panels
        (5, 29),              // footer
    ] {
        click(&mut app, x, y);
        assert_eq!(app.selected, before, "click at {x},{y}");
    }
    assert_eq!(app.view, View::Overview);
}

#[test]
fn the_wheel_scrolls_the_table_the_drilldown_and_the_help() {
    let mut app = fx::app();
    app.apply(artemis::tui::message::Message::Snapshot(Box::new(
        fx::many_cards(50),
    )));
    draw(&mut app, 120, 30);
    app.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10));
    assert_eq!(app.selected, 3, "three rows a notch");
    app.handle_mouse(mouse(MouseEventKind::ScrollUp, 10, 10));
    assert_eq!(app.selected, 0);

    app.handle_key(ch('?'));
    app.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10));
    assert_eq!(app.help_scroll, 3);
    assert_eq!(app.selected, 0, "the help scrolls, not the table behind it");
    app.handle_key(k(KeyCode::Esc));

    app.handle_key(k(KeyCode::Enter));
    app.handle_mouse(mouse(MouseEventKind::ScrollDown, 10, 10));
    let View::Card(v) = &app.view else {
        panic!("the drilldown is open")
    };
    assert_eq!(v.scroll, 3);
}
