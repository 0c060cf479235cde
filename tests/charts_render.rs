//! The overview's charts drawn from fixed time buckets and an injected clock: labelled axes
//! (percent, dollars, counts; UTC times), the `+` / `-` window named in the panel titles and
//! asked of the source tasks, and the fallback to what the dashboard saw since start when Redis
//! holds no buckets (a Python-only fleet), said on the chart.

mod tui_fixtures;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use artemis::metrics::{HistoryWindow, Series};
use artemis::tui::app::App;
use artemis::tui::message::{Command, Message};
use artemis::tui::render;

use tui_fixtures as fx;

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// A new poll whose snapshot carries `history`.
fn poll_with(app: &mut App, history: Series) {
    let mut snap = fx::snapshot();
    snap.history = history;
    app.apply(Message::Snapshot(Box::new(snap)));
}

#[test]
fn charts_have_labelled_axes_with_units_and_utc_times() {
    let mut app = fx::app();
    let t = screen(&mut app, 160, 48);
    // Hit rate on a fixed 0-100 % axis.
    for want in ["100%", "50%", "0%"] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
    // Spend in dollars, per minute, one legend entry per provider.
    for want in ["$0.03", "$0.00", "per minute", "━ openai", "━ anthropic"] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
    // The window's first minute and its end, in UTC (the fixture clock is 20:30:45 UTC).
    assert!(t.contains("19:31"), "{t}");
    assert!(t.contains("20:31 UTC"), "{t}");
    // Rate-limit use per key, with its refusals.
    assert!(t.contains("Rate-limit use · 1h"), "{t}");
    assert!(t.contains("gpt-4o:default refused 45"), "{t}");
}

#[test]
fn plus_and_minus_step_the_window_shown_in_the_titles() {
    let mut app = fx::app();
    assert!(screen(&mut app, 160, 48).contains("LLM spend (USD) · 1h"));
    assert_eq!(
        app.handle_key(key('+')),
        vec![Command::Window(HistoryWindow::Hours6)]
    );
    let t = screen(&mut app, 160, 48);
    assert!(t.contains("LLM spend (USD) · 6h"), "{t}");
    assert!(t.contains("LLM cache · 6h"), "{t}");
    // Until the 6 h buckets arrive, the charts say so instead of drawing the 1 h ones.
    assert!(t.contains("reading the last 6h"), "{t}");
    poll_with(&mut app, fx::history_for(HistoryWindow::Hours6));
    let t = screen(&mut app, 160, 48);
    assert!(!t.contains("reading the last"), "{t}");
    assert!(t.contains("14:31"), "6 h back from 20:31:\n{t}");
    // 24 h and 30 d read hour buckets.
    app.handle_key(key('+'));
    poll_with(&mut app, fx::history_for(HistoryWindow::Hours24));
    let t = screen(&mut app, 160, 48);
    assert!(t.contains("· 24h") && t.contains("per hour"), "{t}");
    app.handle_key(key('+'));
    assert_eq!(
        app.handle_key(key('+')),
        vec![Command::Window(HistoryWindow::Days30)],
        "30 d is the longest"
    );
    poll_with(&mut app, fx::history_for(HistoryWindow::Days30));
    let t = screen(&mut app, 160, 48);
    assert!(
        t.contains("· 30d") && t.contains("09-22"),
        "dates on a month:\n{t}"
    );
    for _ in 0..5 {
        app.handle_key(key('-'));
    }
    assert_eq!(app.window, HistoryWindow::Minutes15);
    assert!(screen(&mut app, 160, 48).contains("LLM spend (USD) · 15m"));
}

#[test]
fn without_buckets_the_charts_show_the_polls_since_start_and_say_so() {
    let mut app = fx::app();
    poll_with(&mut app, Series::empty(HistoryWindow::Hour1, fx::now()));
    let t = screen(&mut app, 160, 48);
    assert!(t.contains("since start (no history in Redis)"), "{t}");
    assert!(t.contains("━ all providers"), "{t}");
    // The rate-limit history has nothing to fall back on: it says so instead of drawing zeros.
    assert!(t.contains("no history in Redis"), "{t}");
    assert!(!t.contains("checks admitted"), "{t}");
    // The hit-rate chart draws the polls: braille dots on its 0-100 % axis.
    assert!(t.contains("100%"), "{t}");
    assert!(
        t.chars().any(|c| ('\u{2801}'..='\u{28FF}').contains(&c)),
        "{t}"
    );
}

#[test]
fn charts_at_every_supported_size() {
    for (w, h) in [(60, 18), (80, 24), (220, 60)] {
        let mut app = fx::app();
        let t = screen(&mut app, w, h);
        insta::assert_snapshot!(format!("charts_{w}x{h}"), t);
        assert!(t.contains("LLM spend (USD) · 1h"), "{w}x{h}:\n{t}");
        assert!(t.contains("20:31"), "{w}x{h}: the chart's end time\n{t}");
    }
}

#[test]
fn an_empty_chart_says_so_inside_its_plot_not_over_its_axis_labels() {
    let mut app = App::new(
        artemis::tui::keymap::KeyMap::default(),
        artemis::tui::theme::Theme::dark(),
        false,
        "redis://127.0.0.1:6379".into(),
    );
    app.now = fx::now();
    app.apply(Message::Connection(fx::connected()));
    let mut snap = fx::snapshot();
    snap.metrics = Default::default();
    snap.limits = Vec::new();
    snap.history = Series::empty(HistoryWindow::Hour1, fx::now());
    app.apply(Message::Snapshot(Box::new(snap)));
    for (w, h) in [(100, 30), (80, 24), (160, 48)] {
        let t = screen(&mut app, w, h);
        let grid: Vec<Vec<char>> = t.lines().map(|l| l.chars().collect()).collect();
        let mut messages = 0;
        for (r, row) in grid.iter().enumerate() {
            let text: String = row.iter().collect();
            let Some(at) = text.find("no data") else {
                continue;
            };
            messages += 1;
            let start = text[..at].chars().count();
            let long = "no data in this window";
            let message = if text[at..].starts_with(long) {
                long
            } else {
                "no data"
            };
            let end = start + message.chars().count();
            // A vertical line through the rows above and below (a chart's y axis, a panel's
            // border) must not be cut by the message.
            let vertical = |r: usize, c: usize| {
                grid.get(r)
                    .and_then(|row| row.get(c))
                    .is_some_and(|ch| "│┼└┤├".contains(*ch))
            };
            for c in start..end {
                assert!(
                    !(r > 0 && vertical(r - 1, c) && vertical(r + 1, c)),
                    "{w}x{h}: the message cuts the line in column {c}:\n{t}"
                );
            }
        }
        assert!(messages > 0, "{w}x{h}: no empty chart:\n{t}");
    }
}
