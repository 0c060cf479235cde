//! Rendered frames of the dashboard, checked cell by cell against committed snapshots
//! (`tests/snapshots/`): one table of every view (overview, metrics, drilldown, help) at every
//! size (60x18, 80x24, 160x48, 220x60) in every theme (dark, light, mono), each snapshot the
//! text and the style of every cell; plus the outage banner, the filter prompt, the splash and
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

/// The buffer's text, then the style of every cell: a legend of the styles used (a letter
/// each, in order of first use) and one line of letters per row, so a snapshot shows where a
/// theme's colours go as plainly as the text.
fn styled_text(buf: &Buffer) -> String {
    let mut legend: Vec<(Color, Color, ratatui::style::Modifier)> = Vec::new();
    let mut map = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            let style = (c.fg, c.bg, c.modifier);
            let i = legend.iter().position(|s| *s == style).unwrap_or_else(|| {
                legend.push(style);
                legend.len() - 1
            });
            let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            map.push(char::from(*letters.get(i).unwrap_or(&b'?')));
        }
        map.push('\n');
    }
    let mut out = text(buf);
    out.push_str("\n--- styles ---\n");
    let letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for ((fg, bg, m), l) in legend.iter().zip(letters.chars()) {
        out.push_str(&format!("{l}: fg {fg:?}, bg {bg:?}, {m:?}\n"));
    }
    out.push_str(&map);
    out
}

/// The screens the matrix draws.
#[derive(Debug, Clone, Copy)]
enum Screen {
    Overview,
    Metrics,
    Drilldown,
    Help,
}

const SCREENS: [Screen; 4] = [
    Screen::Overview,
    Screen::Metrics,
    Screen::Drilldown,
    Screen::Help,
];
const SIZES: [(u16, u16); 4] = [(60, 18), (80, 24), (160, 48), (220, 60)];
const THEMES: [&str; 3] = ["dark", "light", "mono"];

/// The fixture app showing `screen` in `theme`.
fn screen_app(screen: Screen, theme: &str) -> App {
    let mut app = fx::app_with_all_metrics(Theme::by_name(theme), false);
    match screen {
        Screen::Overview => {}
        Screen::Metrics => {
            app.handle_key(code(KeyCode::Tab));
        }
        Screen::Drilldown => open_card_101(&mut app),
        Screen::Help => {
            app.handle_key(key('?'));
        }
    }
    app
}

/// The matrix of the issue: every view at every size in every theme, one snapshot each
/// (`view_<screen>_<theme>_<w>x<h>`). Other parts change these frames too: after a merge,
/// `INSTA_FORCE_PASS=1 cargo test --test tui_render` writes every `.snap.new` at once to
/// review.
#[test]
fn every_view_at_every_size_in_every_theme() {
    for screen in SCREENS {
        for (w, h) in SIZES {
            for theme in THEMES {
                let mut app = screen_app(screen, theme);
                let buf = frame(&mut app, w, h);
                check_safe(&buf, theme == "mono");
                let name = format!("view_{screen:?}_{theme}_{w}x{h}").to_lowercase();
                insta::assert_snapshot!(name, styled_text(&buf));
            }
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
    for want in ["providers", "gpt-4o", "hit rate", "FROZEN"] {
        if want == "FROZEN" {
            assert!(!t.contains(want));
        } else {
            assert!(t.contains(want), "{want} missing:\n{t}");
        }
    }
}

#[test]
fn overview_60x18() {
    let mut app = fx::app();
    let t = shot("overview_60x18", &mut app, 60, 18);
    // The stated minimum: ids whole, every figure whole.
    for want in ["card-101", "card-105", "4m12s", "$0.42", "$1.23", "3/8 45%"] {
        assert!(t.contains(want), "{want} missing:\n{t}");
    }
}

#[test]
fn overview_220x60() {
    let mut app = fx::app();
    let t = shot("overview_220x60", &mut app, 220, 60);
    // The lower panels grow with the terminal: every rate limit fits.
    assert!(!t.contains("more:"), "{t}");
    assert!(t.contains("openai:gpt-4o-mini:default"), "{t}");
}

/// Cells of the progress bar in row `y` (its block and track characters).
fn bar_cells(buf: &Buffer, y: u16) -> Vec<u16> {
    (0..buf.area.width)
        .filter(|&x| {
            buf[(x, y)]
                .symbol()
                .chars()
                .all(|c| matches!(c, '█' | '▉' | '▊' | '▋' | '▌' | '▍' | '▎' | '▏' | '░'))
        })
        .filter(|&x| !buf[(x, y)].symbol().is_empty())
        .collect()
}

#[test]
fn progress_bars_have_one_length_and_one_right_edge() {
    for (w, h) in [(60, 18), (80, 24), (160, 48), (220, 60)] {
        let mut app = fx::app();
        let buf = frame(&mut app, w, h);
        // One row per status in the fixture (ids may be cut at the narrowest size).
        let rows: Vec<Vec<u16>> = ["running", "failed", "queued", "completed", "cancelled"]
            .iter()
            .map(|status| {
                let y = (2..h)
                    .find(|&y| column_of(&buf, y, status).is_some())
                    .unwrap_or_else(|| panic!("{status} at {w}x{h}:\n{}", text(&buf)));
                bar_cells(&buf, y)
            })
            .collect();
        for r in &rows {
            assert!(!r.is_empty(), "{w}x{h}: a row without a bar");
            assert_eq!(
                (r.first(), r.len()),
                (rows[0].first(), rows[0].len()),
                "{w}x{h}: bars {rows:?}"
            );
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
    open_card_101(&mut app);
    app
}

/// Opens card-101 with its live events (no stored history, as for Python-written cards).
fn open_card_101(app: &mut App) {
    // card-101 runs: first in the default order, selected.
    app.handle_key(code(KeyCode::Enter));
    for e in fx::events_101() {
        app.apply(Message::Event(e));
    }
    app.apply(Message::History {
        card_id: "card-101".into(),
        result: Ok(None),
    });
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
fn drilldown_60x18() {
    let mut app = drilled();
    let t = shot("drilldown_60x18", &mut app, 60, 18);
    assert!(t.contains("Card card-101"), "{t}");
    assert!(t.contains("$0.42"), "{t}");
}

#[test]
fn drilldown_220x60() {
    let mut app = drilled();
    let t = shot("drilldown_220x60", &mut app, 220, 60);
    assert!(t.contains("writing tests"), "{t}");
    assert!(t.contains("cost $0.42"), "{t}");
}

/// The help's lines from its first to its last, scrolling one line at a time at `w`x`h`.
fn whole_help(w: u16, h: u16) -> String {
    let mut app = fx::app();
    app.handle_key(key('?'));
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..400 {
        let t = text(&frame(&mut app, w, h));
        // The body between the header, the help's borders and the footer.
        let body: Vec<&str> = t.lines().skip(2).take(usize::from(h) - 4).collect();
        let last = body.last().map(|l| l.to_string());
        if seen.last() == last.as_ref() && seen.len() > 1 {
            break;
        }
        if seen.is_empty() {
            seen.extend(body.iter().map(|l| l.to_string()));
        } else if let Some(l) = last {
            seen.push(l);
        }
        app.handle_key(key('j'));
    }
    seen.join("\n")
}

#[test]
fn help_is_full_width_and_cuts_no_description_at_220_columns() {
    let mut app = fx::app();
    app.handle_key(key('?'));
    let t = text(&frame(&mut app, 220, 60));
    let top = t.lines().nth(1).unwrap();
    assert!(top.starts_with("┌ Help") && top.ends_with('┐'), "{top}");
    assert_eq!(unicode_width::UnicodeWidthStr::width(top), 220);
    let help = whole_help(220, 60);
    assert!(!help.contains('…'), "something was cut:\n{help}");
    for info in artemis::tui::keymap::ACTIONS {
        assert!(help.contains(info.help), "{} missing:\n{help}", info.name);
    }
}

#[test]
fn help_scrolls_to_its_last_line_at_the_minimum_size() {
    let help = whole_help(60, 18);
    for section in ["Keys", "Filter and sort", "Mouse", "Panels", "Footer"] {
        assert!(help.contains(section), "{section} never shown:\n{help}");
    }
    assert!(!help.contains('…'), "something was cut:\n{help}");
}

#[test]
fn help_explains_each_panel_and_the_progress_label() {
    let help = whole_help(160, 48);
    for panel in [
        "Header",
        "Cards",
        "Progress",
        "LLM cache",
        "Rate limits",
        "Cost",
        "Metrics view",
        "Drilldown",
        "Footer",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start_matches('│').trim_start().starts_with(panel)),
            "{panel} not explained:\n{help}"
        );
    }
    assert!(
        help.contains("\"3/8 42%\" means 3 of 8 stages done and the running stage at 42%"),
        "{help}"
    );
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
fn the_outage_banner_counts_failed_attempts_in_words() {
    let mut app = fx::app();
    for (attempts, want) in [
        (0, "UTC: timed out"),
        (1, "UTC (1 failed attempt): timed out"),
        (4, "UTC (4 failed attempts): timed out"),
    ] {
        app.apply(Message::Connection(ConnState::Reconnecting {
            since: fx::now(),
            attempts,
            error: "timed out".into(),
        }));
        let t = text(&frame(&mut app, 160, 48));
        assert!(t.contains(want), "{attempts}:\n{t}");
    }
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
    // The selected malformed row is filtered out: the selection stays near where it was.
    assert!(t.contains("Cards 11/11"), "{t}");
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

/// Titles, ids, stage names and messages as a hostile or careless writer leaves them: line and
/// paragraph separators, soft hyphens, zero-width and tag characters, bidi controls, a
/// 1,000-code-point combining cluster, flag and family emoji, a lone variation selector, a
/// combining mark with nothing to combine with, escape sequences, wide CJK.
fn hostile_strings() -> Vec<String> {
    vec![
        "ls\u{2028}sep\u{2029}para".into(),
        "soft\u{AD}hyphen".into(),
        "zero\u{200B}width\u{200C}joiners\u{2060}".into(),
        "tag\u{E0041}\u{E0042}chars".into(),
        "bidi\u{202E}desrever\u{202C}\u{2067}iso\u{2069}".into(),
        format!("zalgo{}!", "\u{301}".repeat(1000)),
        "flags 🇫🇷🇩🇪🇯🇵 end".into(),
        "family 👨\u{200D}👩\u{200D}👧\u{200D}👦 end".into(),
        "england 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F} flag".into(),
        "\u{FE0F}lone selector".into(),
        "\u{301}mark first".into(),
        "ctl\u{1b}[2J\u{7}bell".into(),
        "wide 日本語テキスト".into(),
    ]
}

/// The standard snapshot with one running card per hostile string, the string in its id, title,
/// current stage, stage name and stage message.
fn hostile_snapshot() -> artemis::snapshot::Snapshot {
    let mut s = fx::snapshot();
    let base = fx::cards()[0].clone();
    s.cards = hostile_strings()
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let mut c = base.clone();
            c.pipeline.card_id = format!("h{i:02}-{h}");
            c.pipeline
                .metadata
                .insert("title".into(), serde_json::json!(format!("{h} title")));
            c.pipeline.current_stage = Some(h.as_str().into());
            let mut stage = base.stages[3].clone();
            stage.stage_name = h.as_str().into();
            stage.message = Some(h);
            c.stages = vec![stage];
            c
        })
        .collect();
    s
}

/// Characters that must never reach a cell as themselves (the emoji sequences' own joiners and
/// tags stay inside their cluster and are allowed there).
fn check_no_hidden(buf: &Buffer) {
    for cell in buf.content() {
        let sym = cell.symbol();
        let emoji = sym.starts_with(|c: char| c as u32 >= 0x1F000);
        for c in sym.chars() {
            let hidden = c.is_control()
                || matches!(
                    c,
                    '\u{AD}'
                        | '\u{200B}'..='\u{200C}'
                        | '\u{200E}'..='\u{200F}'
                        | '\u{2028}'..='\u{202E}'
                        | '\u{2060}'..='\u{206F}'
                        | '\u{FEFF}'
                )
                || (!emoji && (c == '\u{200D}' || ('\u{E0000}'..='\u{E007F}').contains(&c)))
                || (sym.starts_with(c)
                    && matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{300}'..='\u{36F}'));
            assert!(!hidden, "{c:?} reached a cell as itself: {sym:?}");
        }
        assert!(
            sym.chars().count() <= 16,
            "a cell holds {} code points",
            sym.chars().count()
        );
    }
}

/// The column (in cells) where `word` starts on row `y`, if it is there.
fn column_of(buf: &Buffer, y: u16, word: &str) -> Option<u16> {
    let w = buf.area.width;
    (0..w).find(|&x| {
        let mut s = String::new();
        let mut xx = x;
        while xx < w && s.len() < word.len() {
            s.push_str(buf[(xx, y)].symbol());
            xx += 1;
        }
        s == word
    })
}

fn row_text(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

/// In the overview, every hostile card's row keeps its columns: the status, progress and time
/// columns start where their headers do, and the right border closes every row.
#[test]
fn hostile_rows_keep_their_columns_in_the_overview() {
    let mut app = fx::app();
    app.apply(Message::Snapshot(Box::new(hostile_snapshot())));
    for (w, h) in [(160, 48), (100, 30), (80, 24)] {
        let buf = frame(&mut app, w, h);
        check_safe(&buf, false);
        check_no_hidden(&buf);
        let header = (0..h)
            .find(|&y| column_of(&buf, y, "STATUS").is_some())
            .expect("the table header");
        let status_x = column_of(&buf, header, "STATUS").unwrap();
        let mut rows = 0;
        for y in header + 1..h {
            if let Some(x) = column_of(&buf, y, "running") {
                assert_eq!(x, status_x, "{w}x{h} row {y}: {:?}", row_text(&buf, y));
                rows += 1;
            }
        }
        assert!(rows >= 5, "{w}x{h}: only {rows} card rows");
    }
}

/// In the drilldown of every hostile card, the stage row's columns (laid out by the text
/// module's own padding, not by a table widget) line up with their headers cell for cell.
#[test]
fn hostile_stage_rows_keep_their_columns_in_the_drilldown() {
    let n = hostile_strings().len();
    for i in 0..n {
        let mut app = fx::app();
        app.apply(Message::Snapshot(Box::new(hostile_snapshot())));
        // Sort by id, then walk down to the i-th card.
        while app.sort != artemis::tui::app::SortKey::Id {
            app.handle_key(key('s'));
        }
        if app.reverse {
            app.handle_key(key('S'));
        }
        for _ in 0..i {
            app.handle_key(code(KeyCode::Down));
        }
        app.handle_key(code(KeyCode::Enter));
        for (w, h) in [(160, 48), (100, 30)] {
            let buf = frame(&mut app, w, h);
            check_safe(&buf, false);
            check_no_hidden(&buf);
            let header = (0..h)
                .find(|&y| column_of(&buf, y, "PROGRESS").is_some())
                .unwrap_or_else(|| panic!("card {i}: no stage table:\n{}", text(&buf)));
            let row = header + 1;
            for (head, cell) in [("STATUS", "running"), ("PROGRESS", "█")] {
                let want = column_of(&buf, header, head).unwrap();
                let got = column_of(&buf, row, cell);
                assert_eq!(
                    got,
                    Some(want),
                    "card {i} at {w}x{h}, {head}: {:?}",
                    row_text(&buf, row)
                );
            }
            // The START column holds a time (HH:MM:SS) or "-", where its header is.
            let start = column_of(&buf, header, "START").unwrap();
            let s = buf[(start, row)].symbol();
            assert!(s == "-" || s.chars().all(|c| c.is_ascii_digit()), "{s:?}");
        }
    }
}
