//! Rendered frames of the dashboard, checked cell by cell against committed snapshots
//! (`tests/snapshots/`): overview, drilldown, help and the mono theme at 80x24 and 160x48, and
//! the "too small" screen, all from fixed fixtures and an injected clock. Beside the
//! snapshots, properties that must hold in every frame: no raw control character reaches the
//! terminal, wide characters are cut by width, mono uses no colour.

mod tui_fixtures;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use artemis::connection::ConnState;
use artemis::tui::app::App;
use artemis::tui::message::Message;
use artemis::tui::render;
use artemis::tui::theme::Theme;

use tui_fixtures as fx;

fn frame(app: &mut App, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    t.backend().buffer().clone()
}

/// The buffer as text, one line per row (wide characters occupy their cell; the cell after
/// one is skipped as the terminal would).
fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut skip = 0;
        for x in 0..buf.area.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            out.push_str(sym);
            skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
        }
        out.push('\n');
    }
    out
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Every frame: nothing a terminal would interpret, and no colour at all in mono.
fn check_safe(buf: &Buffer, mono: bool) {
    for cell in buf.content() {
        for c in cell.symbol().chars() {
            assert!(
                !c.is_control() && !('\u{202A}'..='\u{202E}').contains(&c),
                "control character {c:?} reached the frame"
            );
        }
        if mono {
            assert!(
                matches!(cell.fg, Color::Reset) && matches!(cell.bg, Color::Reset),
                "mono theme drew a colour: {cell:?}"
            );
        }
    }
}

fn shot(name: &str, app: &mut App, w: u16, h: u16) -> String {
    let buf = frame(app, w, h);
    check_safe(&buf, app.theme.name == "mono");
    let t = text(&buf);
    insta::assert_snapshot!(name, t);
    t
}

#[test]
fn overview_80x24() {
    let mut app = fx::app();
    let t = shot("overview_80x24", &mut app, 80, 24);
    assert!(t.contains("card-101"));
    assert!(t.contains("● connected"));
    assert!(t.contains("data 0.4s old"));
}

#[test]
fn overview_160x48() {
    let mut app = fx::app();
    let t = shot("overview_160x48", &mut app, 160, 48);
    for want in ["per provider", "gpt-4o", "hit rate", "FROZEN"] {
        if want == "FROZEN" {
            assert!(!t.contains(want));
        } else {
            assert!(t.contains(want), "{want} missing:\n{t}");
        }
    }
}

#[test]
fn too_small() {
    let mut app = fx::app();
    let t = shot("too_small_40x10", &mut app, 40, 10);
    assert!(t.contains("Terminal too small"));
    assert!(t.contains("40×10, need 60×18"));
    // Tiny and degenerate sizes never panic.
    for (w, h) in [(1, 1), (0, 0), (59, 40), (200, 17), (60, 18)] {
        frame(&mut app, w, h);
    }
}

fn drilled() -> App {
    let mut app = fx::app();
    app.handle_key(key('j')); // card-104 (newest) is first, card-101 second
    app.handle_key(code(KeyCode::Enter));
    for e in fx::events_101() {
        app.apply(Message::Event(e));
    }
    app.apply(Message::History {
        card_id: "card-101".into(),
        result: Ok(None),
    });
    app
}

#[test]
fn drilldown_80x24() {
    let mut app = drilled();
    let t = shot("drilldown_80x24", &mut app, 80, 24);
    assert!(t.contains("Card card-101 · Add OAuth login"));
    assert!(t.contains("development"));
}

#[test]
fn drilldown_160x48() {
    let mut app = drilled();
    let t = shot("drilldown_160x48", &mut app, 160, 48);
    assert!(t.contains("writing tests"));
    assert!(t.contains("priority=high"));
}

#[test]
fn help_80x24() {
    let mut app = fx::app();
    app.handle_key(key('?'));
    let t = shot("help_80x24", &mut app, 80, 24);
    assert!(t.contains("freeze"));
}

#[test]
fn help_160x48() {
    let mut app = fx::app();
    app.handle_key(key('?'));
    shot("help_160x48", &mut app, 160, 48);
}

#[test]
fn mono_overview_80x24() {
    let mut app = fx::app_with(Theme::mono(), false);
    let t = shot("mono_overview_80x24", &mut app, 80, 24);
    // Same text as the coloured theme: only the styling differs.
    let mut dark = fx::app();
    assert_eq!(t, text(&frame(&mut dark, 80, 24)));
}

#[test]
fn mono_drilldown_160x48() {
    let mut app = fx::app_with(Theme::dark(), true); // NO_COLOR forces mono
    app.handle_key(key('j'));
    app.handle_key(code(KeyCode::Enter));
    assert_eq!(app.theme.name, "mono");
    shot("mono_drilldown_160x48", &mut app, 160, 48);
}

#[test]
fn outage_banner_and_frozen_mark() {
    let mut app = fx::app();
    app.handle_key(key('p'));
    app.apply(Message::Connection(ConnState::Reconnecting {
        since: fx::now() - chrono::Duration::seconds(8),
        attempts: 3,
        error: "Connection refused (os error 111)".into(),
    }));
    let t = shot("outage_frozen_80x24", &mut app, 80, 24);
    assert!(t.contains("Redis unreachable since 20:30:37"));
    assert!(t.contains("FROZEN"));
}

#[test]
fn splash_before_the_first_snapshot() {
    let mut app = App::new(
        Default::default(),
        Theme::dark(),
        false,
        fx::ENDPOINT.into(),
    );
    app.now = fx::now();
    app.apply(Message::Connection(ConnState::Unreachable {
        since: fx::now(),
        attempts: 2,
        error: "Connection refused".into(),
    }));
    app.apply(Message::ReadFailed(
        "cannot reach Redis at redis://127.0.0.1:6379/0".into(),
    ));
    let t = shot("splash_80x24", &mut app, 80, 24);
    assert!(t.contains("reading redis://127.0.0.1:6379/0"));
}

#[test]
fn filter_prompt_and_scrolling_many_cards() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(fx::many_cards(500))));
    app.handle_key(key('G'));
    let t = text(&frame(&mut app, 80, 24));
    assert!(t.contains("Cards 501/501"), "{t}");
    assert!(t.contains("card-bad"), "the malformed row is last:\n{t}");
    app.handle_key(key('/'));
    for c in "number 42".chars() {
        app.handle_key(key(c));
    }
    let t = shot("filter_80x24", &mut app, 80, 24);
    assert!(t.contains("filter: number 42"));
    assert!(t.contains("Cards 1/11"), "{t}");
}

#[test]
fn hostile_text_is_neutralised_and_cut_by_width() {
    let mut app = fx::app();
    let buf = frame(&mut app, 160, 48);
    check_safe(&buf, false);
    let t = text(&buf);
    assert!(t.contains("␛[31mEVIL␛[0m"), "{t}");
    assert!(t.contains("card-103␛[2J"), "{t}");
    // The emoji title is cut with an ellipsis and every row keeps the frame width.
    assert!(t.contains("…"));
    for line in t.lines() {
        assert_eq!(unicode_width::UnicodeWidthStr::width(line), 160, "{line:?}");
    }
}
