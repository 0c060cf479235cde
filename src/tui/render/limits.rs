//! The rate-limit panel: per limiter key, requests (and tokens) used of the limit in the
//! current window, coloured by the headroom left.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::{format, text};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let block = super::panel(app, " Rate limits ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let w = inner.width as usize;
    if snap.limits.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled("no rate-limit windows", t.dim)),
                Line::from(Span::styled(
                    text::fit("(none registered or found under the prefix)", w),
                    t.dim,
                )),
            ]),
            inner,
        );
        return;
    }
    let mut lines = Vec::new();
    // A third line per key for its refusals and waits, where every key still fits.
    let with_activity = snap.limits.iter().any(|l| l.activity.is_some());
    let per_limit = if with_activity && inner.height as usize >= 3 * snap.limits.len() {
        3usize
    } else {
        2usize
    };
    let room = inner.height as usize / per_limit;
    let shown = snap.limits.len().min(room.max(1));
    // The keys closest to their limit first: that is what the panel is for.
    let mut sorted: Vec<_> = snap.limits.iter().collect();
    sorted.sort_by(|a, b| pressure(b).total_cmp(&pressure(a)).then(a.key.cmp(&b.key)));
    for l in sorted.into_iter().take(shown) {
        let window = format!(" per {}", window_label(l.window_seconds));
        let full = format!("{}:{}", l.resource, l.identifier);
        let name = text::fit(&full, w.saturating_sub(window.chars().count()));
        lines.push(Line::from(vec![
            Span::styled(name, t.text),
            Span::styled(window, t.dim),
        ]));
        let used = l
            .requests_limit
            .map_or(0.0, |limit| ratio(l.requests_used, limit));
        let req = match l.requests_limit {
            Some(limit) => format!(
                " {}/{}",
                format::count(l.requests_used),
                format::count(limit)
            ),
            None => format!(" {} (limit unknown)", format::count(l.requests_used)),
        };
        let mut spans = vec![Span::styled("req ", t.dim)];
        // Tokens in full when they fit, else as a share of the limit.
        let tok = match (l.tokens_used, l.tokens_limit) {
            (Some(u), Some(lim)) => {
                let r = ratio(u, lim);
                let full = format!(" tok {}/{}", format::count(u), format::count(lim));
                let short = format!(" tok {:.0}%", r * 100.0);
                let room = w.saturating_sub(4 + req.chars().count() + 3);
                Some((
                    r,
                    if full.chars().count() <= room {
                        full
                    } else {
                        short
                    },
                ))
            }
            _ => None,
        };
        let tok_w = tok.as_ref().map_or(0, |(_, s)| s.chars().count());
        let bar_w = w.saturating_sub(4 + req.chars().count() + tok_w).min(12);
        if bar_w >= 3 && l.requests_limit.is_some() {
            spans.push(Span::styled(
                super::bar(used, bar_w),
                super::headroom_style(app, used),
            ));
        }
        spans.push(Span::styled(req, super::headroom_style(app, used)));
        if let Some((r, s)) = tok {
            spans.push(Span::styled(s, super::headroom_style(app, r)));
        }
        lines.push(Line::from(spans));
        if per_limit == 3 {
            lines.push(activity_line(app, l, w));
        }
    }
    if shown < snap.limits.len() {
        for _ in 0..per_limit {
            lines.pop();
        }
        lines.push(Line::from(Span::styled(
            format!("+{} more (see --once)", snap.limits.len() - shown + 1),
            t.dim,
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `refused 3 · waited 1 in 60s`: what the limiters did with the key over the buckets covering
/// its window (the metrics' time buckets), or that no bucket names it (Python limiters count
/// nothing).
pub(super) fn activity_label(l: &crate::limiter::LimitUsage) -> String {
    match l.activity {
        Some(a) => format!(
            "refused {} · waited {} in {}",
            format::count(a.refused),
            format::count(a.waited),
            window_label(a.over_seconds as f64)
        ),
        None => "refusals not counted (no history)".to_owned(),
    }
}

fn activity_line<'a>(app: &App, l: &crate::limiter::LimitUsage, w: usize) -> Line<'a> {
    let t = &app.theme;
    let style = match l.activity {
        Some(a) if a.refused > 0 || a.waited > 0 => t.warn,
        _ => t.dim,
    };
    Line::from(vec![
        Span::raw("    "),
        Span::styled(text::fit(&activity_label(l), w.saturating_sub(4)), style),
    ])
}

fn ratio(used: u64, limit: u64) -> f64 {
    if limit == 0 {
        1.0
    } else {
        used as f64 / limit as f64
    }
}

fn pressure(l: &crate::limiter::LimitUsage) -> f64 {
    // An unknown limit sorts last: nothing says how close it is.
    let req = l
        .requests_limit
        .map_or(-1.0, |limit| ratio(l.requests_used, limit));
    match (l.tokens_used, l.tokens_limit) {
        (Some(u), Some(lim)) => req.max(ratio(u, lim)),
        _ => req,
    }
}

/// `60s`, `5m`, `1h30m`: a window length as people say it.
fn window_label(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    if (secs - s as f64).abs() > 1e-9 {
        return format!("{secs:.1}s");
    }
    if s < 120 {
        return format!("{s}s");
    }
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format::duration(secs)
    }
}
