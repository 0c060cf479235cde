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
    assert!(text.contains("7 (limit unknown)"), "{text}");
    assert!(text.contains("3/100"), "{text}");
}
