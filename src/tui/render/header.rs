//! The title bar (endpoint, connection, data age, event rate, FROZEN, the cards per status)
//! and the outage banner. The bar shortens to fit instead of being cut: the status strip
//! abbreviates first, then the endpoint, data age and event rate leave.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::connection::ConnState;
use crate::format::conn_label;
use crate::model::PipelineStatus;
use crate::text;
use crate::tui::app::App;

/// How much the header says; [`render`] takes the first of [`SHAPES`] that fits the width.
#[derive(Debug, Clone, Copy)]
struct Shape {
    endpoint: bool,
    age: bool,
    rate: bool,
    /// Why live events are off, after "(no live events"; a server error can be long.
    why: bool,
    strip: Strip,
}

/// How the status strip names its counts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Strip {
    /// `3 running · 1 queued · 30 completed · 5 failed · 0 cancelled`
    Full,
    /// `3 run · 1 que · 30 done · 5 fail · 0 canc`
    Short,
    /// `R3 Q1 C30 F5 X0`
    Letters,
}

/// From the most to the least said: the strip shortens first, then the endpoint gives way to
/// the reason live events are off; where that reason cannot fit at all, the endpoint comes back
/// with just the mark; then the data age and the event rate go (the connection state, FROZEN and refusals always stay).
const SHAPES: [Shape; 11] = [
    Shape {
        endpoint: true,
        age: true,
        rate: true,
        why: true,
        strip: Strip::Full,
    },
    Shape {
        endpoint: true,
        age: true,
        rate: true,
        why: true,
        strip: Strip::Short,
    },
    Shape {
        endpoint: false,
        age: true,
        rate: true,
        why: true,
        strip: Strip::Full,
    },
    Shape {
        endpoint: false,
        age: true,
        rate: true,
        why: true,
        strip: Strip::Short,
    },
    Shape {
        endpoint: true,
        age: true,
        rate: true,
        why: false,
        strip: Strip::Full,
    },
    Shape {
        endpoint: true,
        age: true,
        rate: true,
        why: false,
        strip: Strip::Short,
    },
    Shape {
        endpoint: false,
        age: true,
        rate: true,
        why: false,
        strip: Strip::Short,
    },
    Shape {
        endpoint: false,
        age: true,
        rate: false,
        why: false,
        strip: Strip::Short,
    },
    Shape {
        endpoint: false,
        age: false,
        rate: false,
        why: false,
        strip: Strip::Short,
    },
    Shape {
        endpoint: false,
        age: true,
        rate: false,
        why: false,
        strip: Strip::Letters,
    },
    Shape {
        endpoint: false,
        age: false,
        rate: false,
        why: false,
        strip: Strip::Letters,
    },
];

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let width = area.width as usize;
    let mut line = Line::from(spans(app, SHAPES[SHAPES.len() - 1]));
    for shape in SHAPES {
        let candidate = spans(app, shape);
        if candidate
            .iter()
            .map(|s| text::cells(&s.content))
            .sum::<usize>()
            <= width
        {
            line = Line::from(candidate);
            break;
        }
    }
    frame.render_widget(Paragraph::new(line), area);
}

fn strip_name(status: PipelineStatus, strip: Strip) -> &'static str {
    match (strip, status) {
        (Strip::Full, s) => s.as_str(),
        (Strip::Short, PipelineStatus::Queued) => "que",
        (Strip::Short, PipelineStatus::Running) => "run",
        (Strip::Short, PipelineStatus::Completed) => "done",
        (Strip::Short, PipelineStatus::Failed) => "fail",
        (Strip::Short, PipelineStatus::Cancelled) => "canc",
        (Strip::Letters, PipelineStatus::Queued) => "Q",
        (Strip::Letters, PipelineStatus::Running) => "R",
        (Strip::Letters, PipelineStatus::Completed) => "C",
        (Strip::Letters, PipelineStatus::Failed) => "F",
        (Strip::Letters, PipelineStatus::Cancelled) => "X",
    }
}

fn spans(app: &App, shape: Shape) -> Vec<Span<'static>> {
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
    spans.push(Span::raw(" "));
    if shape.endpoint {
        spans.push(Span::styled(
            text::sanitize(&app.endpoint).into_owned(),
            t.text,
        ));
        spans.push(sep.clone());
    }
    spans.push(Span::styled(conn, if healthy { t.ok } else { t.bad }));
    // Reachable but refusing (OOM, read-only replica, loading): said right after "connected",
    // where no width pushes it off screen before the endpoint does.
    if let Some(label) = refusal_label(app) {
        spans.push(Span::styled(format!(" ▲ {label}"), t.bad));
    }
    if shape.age
        && let Some(age) = super::age_label(app)
    {
        spans.push(sep.clone());
        spans.push(Span::styled("data ", t.dim));
        spans.push(Span::styled(format!("{age} old"), t.text));
    }
    if shape.rate {
        spans.push(sep.clone());
        spans.push(Span::styled(
            format!("{:.1} ev/s", app.events_per_sec()),
            t.text,
        ));
        if !app.subscribed && app.conn.is_up() {
            let label = match &app.subscribe_error {
                Some(why) if shape.why => format!(" (no live events: {})", text::sanitize(why)),
                _ => " (no live events)".into(),
            };
            spans.push(Span::styled(label, t.warn));
        }
    }
    if let Some(s) = app.shown() {
        spans.push(sep.clone());
        let n = s.cards.len();
        let noun = match (shape.strip, n) {
            (Strip::Letters, _) => "",
            (_, 1) => " card:",
            _ => " cards:",
        };
        spans.push(Span::styled(format!("{n}{noun} "), t.text));
        for (i, (status, count)) in app.status_counts().into_iter().enumerate() {
            if i > 0 {
                let gap = if shape.strip == Strip::Letters {
                    " "
                } else {
                    " · "
                };
                spans.push(Span::styled(gap, t.dim));
            }
            let name = strip_name(status, shape.strip);
            let label = if shape.strip == Strip::Letters {
                format!("{name}{count}")
            } else {
                format!("{count} {name}")
            };
            let style = if count == 0 {
                t.dim
            } else {
                super::cards::status_style(t, status)
            };
            spans.push(Span::styled(label, style));
        }
        if !s.malformed.is_empty() {
            spans.push(Span::styled(
                format!(" · {} malformed", s.malformed.len()),
                t.bad,
            ));
        }
    }
    spans
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
            // The header already says it is reconnecting: the banner's room goes to the error.
            let tried = match attempts {
                0 => String::new(),
                1 => " (1 failed attempt)".to_owned(),
                n => format!(" ({n} failed attempts)"),
            };
            return Some(format!(
                "▲ Redis unreachable since {} UTC{tried}: {}{shown_from}",
                since.format("%H:%M:%S"),
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
