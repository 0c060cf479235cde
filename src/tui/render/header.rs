//! The title bar (endpoint, connection, data age, event rate, FROZEN) and the outage banner.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::connection::ConnState;
use crate::format::conn_label;
use crate::text;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let (conn, healthy) = conn_label(&app.conn);
    let sep = Span::styled(" │ ", t.dim);
    let mut spans = vec![Span::styled(" artemis-top ", t.header)];
    // The FROZEN mark comes first so that no width can push it off screen.
    if let Some(f) = &app.frozen {
        spans.push(Span::styled(
            format!(" FROZEN {} ", f.at.format("%H:%M:%S")),
            t.frozen,
        ));
    }
    spans.extend([
        Span::raw(" "),
        Span::styled(text::sanitize(&app.endpoint).into_owned(), t.text),
        sep.clone(),
        Span::styled(conn, if healthy { t.ok } else { t.bad }),
    ]);
    // Reachable but refusing (OOM, read-only replica, loading): said right after "connected",
    // where no width pushes it off screen before the endpoint does.
    if let Some(label) = refusal_label(app) {
        spans.push(Span::styled(format!(" ▲ {label}"), t.bad));
    }
    if let Some(age) = super::age_label(app) {
        spans.push(sep.clone());
        spans.push(Span::styled("data ", t.dim));
        spans.push(Span::styled(format!("{age} old"), t.text));
    }
    spans.push(sep.clone());
    spans.push(Span::styled(
        format!("{:.1} ev/s", app.events_per_sec()),
        t.text,
    ));
    if !app.subscribed && app.conn.is_up() {
        let label = match &app.subscribe_error {
            Some(why) => format!(" (no live events: {})", text::sanitize(why)),
            None => " (no live events)".into(),
        };
        spans.push(Span::styled(label, t.warn));
    }
    if let Some(s) = app.shown() {
        spans.push(sep.clone());
        let n = s.cards.len();
        let noun = if n == 1 { "card" } else { "cards" };
        spans.push(Span::styled(format!("{n} {noun}"), t.text));
        if !s.malformed.is_empty() {
            spans.push(Span::styled(
                format!(" · {} malformed", s.malformed.len()),
                t.bad,
            ));
        }
    }
    let line = Line::from(spans);
    frame.render_widget(Paragraph::new(line), area);
}

/// What the header says about a reachable server that refuses writes, while it does.
pub fn refusal_label(app: &App) -> Option<String> {
    if !app.conn.is_up() {
        return None;
    }
    app.health
        .refusal_at(app.now)
        .map(|r| text::sanitize(&r.label()).into_owned())
}

/// The banner's text, when one is needed: Redis down, or the last read failed.
pub fn banner_text(app: &App) -> Option<String> {
    let shown_from = app
        .live
        .as_ref()
        .map(|s| format!("; showing data from {} UTC", s.taken_at.format("%H:%M:%S")))
        .unwrap_or_default();
    match &app.conn {
        ConnState::Reconnecting {
            since,
            attempts,
            error,
        }
        | ConnState::Unreachable {
            since,
            attempts,
            error,
        } => {
            return Some(format!(
                "▲ Redis unreachable since {} UTC ({} attempts, reconnecting): {}{shown_from}",
                since.format("%H:%M:%S"),
                attempts,
                text::sanitize(error)
            ));
        }
        _ => {}
    }
    app.read_error.as_ref().map(|(at, e)| {
        format!(
            "▲ read failed at {} UTC: {}{shown_from}",
            at.format("%H:%M:%S"),
            text::sanitize(e)
        )
    })
}

pub fn render_banner(frame: &mut Frame, app: &App, area: Rect, msg: &str) {
    let shown = text::pad(msg, area.width as usize);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(shown, app.theme.banner))),
        area,
    );
}
