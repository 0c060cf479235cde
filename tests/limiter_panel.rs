//! The rate-limit panel with a window whose limit nothing names (a Python-written window
//! outside the original's presets and `[[limiter.limits]]`): it shows the use and "limit
//! unknown", never a made-up ratio, beside a window with a known limit.

mod tui_fixtures;

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use artemis::limiter::{LimitOrigin, LimitUsage};
use artemis::tui::message::Message;
use artemis::tui::render;

use tui_fixtures as fx;

#[test]
fn a_window_without_a_known_limit_shows_limit_unknown() {
    let mut app = fx::app();
    let mut snap = fx::snapshot();
    snap.limits = vec![
        LimitUsage {
            key: "artemis:ratelimit:crawl:default".into(),
            resource: "crawl".into(),
            identifier: "default".into(),
            window_seconds: 60.0,
            requests_used: 7,
            requests_limit: None,
            tokens_used: None,
            tokens_limit: None,
            limit_origin: LimitOrigin::Unknown,
            activity: None,
        },
        LimitUsage {
            key: "artemis:ratelimit:openai:openai:gpt-4o:default".into(),
            resource: "openai:gpt-4o".into(),
            identifier: "default".into(),
            window_seconds: 60.0,
            requests_used: 3,
            requests_limit: Some(100),
            tokens_used: None,
            tokens_limit: None,
            limit_origin: LimitOrigin::Original,
            activity: None,
        },
    ];
    app.apply(Message::Snapshot(Box::new(snap)));
    let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
    t.draw(|f| render::draw(f, &mut app)).unwrap();
    let buf = t.backend().buffer().clone();
    let text: String = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
                + "\n"
        })
        .collect();
    assert!(text.contains("crawl:default"), "{text}");
    assert!(text.contains("req 7 used, limit unknown"), "{text}");
    assert!(text.contains("3/100"), "{text}");
}

fn panel_text(w: u16, h: u16) -> String {
    let mut app = fx::app();
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render::draw(f, &mut app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_owned())
                .collect::<String>()
                + "\n"
        })
        .collect()
}

#[test]
fn key_names_are_whole_so_similar_models_stay_apart() {
    let text = panel_text(160, 48);
    assert!(text.contains("openai:gpt-4o:default "), "{text}");
    assert!(text.contains("openai:gpt-4o-mini:default "), "{text}");
    assert!(!text.contains("gpt-4o…"), "{text}");
}

#[test]
fn tokens_get_their_own_bar_in_the_same_format_as_requests() {
    let text = panel_text(160, 48);
    let req = text
        .lines()
        .find(|l| l.contains("45/100"))
        .expect("requests line");
    let tok = text
        .lines()
        .find(|l| l.contains("12.0k/40.0k"))
        .expect("tokens line");
    assert!(req.contains("req █"), "{req}");
    assert!(tok.contains("tok █"), "{tok}");
    assert!(req.contains("45%") && tok.contains("30%"), "{req}\n{tok}");
    // The figures end in the same column.
    let end = |line: &str, fig: &str| {
        line.find(fig)
            .map(|i| line[..i].chars().count() + fig.len())
    };
    assert_eq!(end(req, "45/100"), end(tok, "12.0k/40.0k"), "{req}\n{tok}");
}

#[test]
fn limits_that_do_not_fit_end_with_how_many_more_and_their_names() {
    let text = panel_text(80, 24);
    assert!(text.contains("+2 more:"), "{text}");
    // The names left out follow, whole where there is room.
    assert!(text.contains("openai:gpt-4o:default,"), "{text}");
}

#[test]
fn one_shared_window_is_named_once_in_the_title() {
    let text = panel_text(160, 48);
    assert!(text.contains("Rate limits · per 60s"), "{text}");
}
