//! The metrics view (Tab): everything the metrics keys hold, from the same snapshot as the
//! overview, so the figures `--once` prints (and the code reviews it only puts in its JSON)
//! are on screen too: pipeline totals and averages, LLM totals, spend per provider and model,
//! code reviews by developer and status, the recent pipelines and the per-day table.
//!
//! Wide terminals get two columns (totals, breakdowns and reviews on the left; recent
//! pipelines and days on the right), narrow ones one. Both scroll together with the movement
//! keys; the scroll is clamped here to what there is to show.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::metrics::Summary;
use crate::model::PipelineStatus;
use crate::tui::app::App;
use crate::tui::theme::Theme;
use crate::{format, text};

/// Inner width from which the view has two columns.
const TWO_COLUMNS_FROM: u16 = 120;

pub fn render(frame: &mut Frame, app: &mut App, area: Rect) {
    let Some(snap) = app.shown() else {
        return;
    };
    let t = app.theme.clone();
    let m = &snap.metrics;
    let inner = Block::bordered()
        .inner(area)
        .inner(ratatui::layout::Margin::new(1, 0));
    let two = inner.width >= TWO_COLUMNS_FROM;
    let (left_area, right_area) = if two {
        let [l, _, r] = Layout::horizontal([
            Constraint::Percentage(50),
            Constraint::Length(2),
            Constraint::Fill(1),
        ])
        .areas(inner);
        (l, Some(r))
    } else {
        (inner, None)
    };
    let mut left = totals(&t, m, left_area.width as usize);
    left.push(Line::from(""));
    left.extend(breakdowns(&t, m, left_area.width as usize));
    left.push(Line::from(""));
    left.extend(reviews(&t, m, left_area.width as usize));
    let mut right = recent(&t, m, right_area.unwrap_or(inner).width as usize);
    right.push(Line::from(""));
    right.extend(days(&t, m, right_area.unwrap_or(inner).width as usize));
    if right_area.is_none() {
        left.push(Line::from(""));
        left.append(&mut right);
    }
    let visible = inner.height as usize;
    let longest = left.len().max(right.len());
    app.metrics_scroll = app.metrics_scroll.min(longest.saturating_sub(visible));
    let scroll = app.metrics_scroll;
    let position = if longest > visible {
        format!(
            " · {}-{} of {longest} · {} scroll",
            scroll + 1,
            (scroll + visible).min(longest),
            app.keymap.label(crate::tui::keymap::Action::Down)
        )
    } else {
        String::new()
    };
    let title = format!(" Metrics · all time{position} ");
    frame.render_widget(
        super::panel(
            app,
            text::fit(&title, area.width.saturating_sub(2) as usize),
        ),
        area,
    );
    let window = |lines: Vec<Line<'static>>| -> Vec<Line<'static>> {
        lines.into_iter().skip(scroll).take(visible).collect()
    };
    frame.render_widget(Paragraph::new(window(left)), left_area);
    if let Some(r) = right_area {
        frame.render_widget(Paragraph::new(window(right)), r);
    }
}

fn heading(t: &Theme, s: &str) -> Line<'static> {
    Line::from(Span::styled(s.to_owned(), t.title))
}

/// A column header row: each (label, width, right-aligned).
fn columns(t: &Theme, cols: &[(&str, usize, bool)]) -> Line<'static> {
    Line::from(Span::styled(row_text(cols), t.column))
}

fn row_text(cols: &[(&str, usize, bool)]) -> String {
    let mut s = String::from(" ");
    for (i, (label, w, right)) in cols.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        if *right {
            s.push_str(&text::pad_left(label, *w));
        } else {
            s.push_str(&text::pad(label, *w));
        }
    }
    s
}

/// `label value · label value` pairs, labels dim, on as few lines of `w` cells as they fit
/// (a pair is never split).
fn pairs(t: &Theme, items: &[(&str, String)], w: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut spans = vec![Span::raw(" ")];
    let mut used = 1;
    for (label, value) in items {
        let piece = text::width(label) + 1 + text::width(value);
        // Labels and values may come from Redis (status and developer names).
        if used > 1 && used + 3 + piece > w {
            lines.push(Line::from(std::mem::replace(
                &mut spans,
                vec![Span::raw(" ")],
            )));
            used = 1;
        }
        if used > 1 {
            spans.push(Span::styled(" · ", t.dim));
            used += 3;
        }
        spans.push(Span::styled(format!("{} ", text::sanitize(label)), t.dim));
        spans.push(Span::styled(text::sanitize(value).into_owned(), t.text));
        used += piece;
    }
    lines.push(Line::from(spans));
    lines
}

/// The cards table's colour for a status the metrics recorded as text (any case, as writers
/// store it); a status no card has stays plain.
fn status_style(t: &Theme, status: &str) -> Style {
    let known = [
        PipelineStatus::Queued,
        PipelineStatus::Running,
        PipelineStatus::Completed,
        PipelineStatus::Failed,
        PipelineStatus::Cancelled,
    ]
    .into_iter()
    .find(|s| s.as_str().eq_ignore_ascii_case(status));
    match known {
        Some(s) => super::cards::status_style(t, s),
        None => t.text,
    }
}

fn totals(t: &Theme, m: &Summary, w: usize) -> Vec<Line<'static>> {
    let p = &m.pipelines;
    let l = &m.llm;
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let mut lines = vec![heading(t, "Pipelines (finished, every writer)")];
    lines.extend(pairs(
        t,
        &[
            ("completed", p.completed.to_string()),
            ("their cost", format::usd(p.total_cost)),
            ("their time", format::duration(p.total_duration)),
        ],
        w,
    ));
    lines.extend(pairs(
        t,
        &[
            ("avg time", or_dash(p.avg_duration.map(format::duration))),
            ("avg cost", or_dash(p.avg_cost.map(format::usd))),
        ],
        w,
    ));
    if p.by_status.is_empty() {
        lines.extend(pairs(t, &[("by status", "none yet".into())], w));
    } else {
        let mut spans = vec![Span::styled(" by status ", t.dim)];
        for (i, (status, n)) in p.by_status.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", t.dim));
            }
            spans.push(Span::styled(
                format!("{} {n}", text::sanitize(status)),
                status_style(t, status),
            ));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::from(""));
    lines.push(heading(t, "LLM requests (every process, hits included)"));
    lines.extend(pairs(
        t,
        &[
            ("requests", l.total_requests.to_string()),
            ("hits", l.cache_hits.to_string()),
            ("misses", l.cache_misses.to_string()),
            ("hit rate", or_dash(l.hit_rate.map(format::percent))),
        ],
        w,
    ));
    lines.extend(pairs(
        t,
        &[
            ("tokens in", l.prompt_tokens.to_string()),
            ("out", l.completion_tokens.to_string()),
        ],
        w,
    ));
    let avg_latency = (l.total_requests > 0 && l.latency_ms_total > 0.0)
        .then(|| format::duration(l.latency_ms_total / 1000.0 / l.total_requests as f64));
    lines.extend(pairs(
        t,
        &[
            ("LLM spend", format::usd(l.total_cost)),
            ("saved by hits", format::usd(l.saved_cost)),
            ("avg latency", or_dash(avg_latency)),
        ],
        w,
    ));
    lines
}

fn breakdowns(t: &Theme, m: &Summary, w: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let total: f64 = m.llm.total_cost;
    for (label, items) in [("Per provider", &m.providers), ("Per model", &m.models)] {
        lines.push(heading(t, &format!("{label} (LLM spend)")));
        if items.is_empty() {
            lines.push(Line::from(Span::styled(" none yet", t.dim)));
            lines.push(Line::from(""));
            continue;
        }
        let name_w = w.saturating_sub(1 + 3 + 9 + 9 + 6).clamp(8, 40);
        lines.push(columns(
            t,
            &[
                ("NAME", name_w, false),
                ("REQUESTS", 9, true),
                ("SPEND", 9, true),
                ("SHARE", 6, true),
            ],
        ));
        for b in items {
            let share = if total > 0.0 {
                format::percent(b.cost / total)
            } else {
                "-".into()
            };
            lines.push(Line::from(Span::styled(
                row_text(&[
                    (&b.name, name_w, false),
                    (&b.requests.to_string(), 9, true),
                    (&format::usd(b.cost), 9, true),
                    (&share, 6, true),
                ]),
                t.text,
            )));
        }
        lines.push(Line::from(""));
    }
    lines.pop();
    lines
}

fn reviews(t: &Theme, m: &Summary, w: usize) -> Vec<Line<'static>> {
    let r = &m.code_review;
    let mut lines = vec![heading(t, "Code reviews")];
    if r.developers.is_empty() && r.by_status.is_empty() {
        lines.push(Line::from(Span::styled(" none recorded", t.dim)));
        return lines;
    }
    let name_w = w.saturating_sub(1 + 4 + 8 + 10 + 9 + 5).clamp(8, 32);
    lines.push(columns(
        t,
        &[
            ("DEVELOPER", name_w, false),
            ("REVIEWS", 8, true),
            ("AVG SCORE", 10, true),
            ("CRITICAL", 9, true),
            ("HIGH", 5, true),
        ],
    ));
    for d in &r.developers {
        let avg = if d.total_reviews > 0 {
            format!("{:.1}", d.total_score as f64 / d.total_reviews as f64)
        } else {
            "-".into()
        };
        let critical = d.critical_issues.to_string();
        let mut spans = vec![Span::styled(
            row_text(&[
                (&d.developer, name_w, false),
                (&d.total_reviews.to_string(), 8, true),
                (&avg, 10, true),
            ]),
            t.text,
        )];
        spans.push(Span::styled(
            format!(" {}", text::pad_left(&critical, 9)),
            if d.critical_issues > 0 { t.bad } else { t.text },
        ));
        spans.push(Span::styled(
            format!(" {}", text::pad_left(&d.high_issues.to_string(), 5)),
            if d.high_issues > 0 { t.warn } else { t.text },
        ));
        lines.push(Line::from(spans));
    }
    if !r.by_status.is_empty() {
        lines.push(Line::from(Span::styled(" by status", t.dim)));
        let items: Vec<(&str, String)> = r
            .by_status
            .iter()
            .map(|(s, n)| (s.as_str(), n.to_string()))
            .collect();
        lines.extend(pairs(t, &items, w));
    }
    lines
}

fn recent(t: &Theme, m: &Summary, w: usize) -> Vec<Line<'static>> {
    let mut lines = vec![heading(
        t,
        &format!("Recent pipelines ({}, newest first)", m.recent.len()),
    )];
    if m.recent.is_empty() {
        lines.push(Line::from(Span::styled(" none finished yet", t.dim)));
        return lines;
    }
    let id_w = w.saturating_sub(1 + 4 + 19 + 9 + 7 + 9).clamp(6, 40);
    lines.push(columns(
        t,
        &[
            ("FINISHED", 19, false),
            ("CARD", id_w, false),
            ("STATUS", 9, false),
            ("TIME", 7, true),
            ("COST", 9, true),
        ],
    ));
    for r in &m.recent {
        // To the second: the original writes microseconds, which say nothing here.
        let finished: String = r.timestamp.replace('T', " ").chars().take(19).collect();
        lines.push(Line::from(vec![
            Span::styled(
                row_text(&[(&finished, 19, false), (&r.card_id, id_w, false)]),
                t.text,
            ),
            Span::styled(
                format!(" {}", text::pad(&r.status, 9)),
                status_style(t, &r.status),
            ),
            Span::styled(
                format!(
                    " {} {}",
                    text::pad_left(&format::duration(r.duration_seconds), 7),
                    text::pad_left(&format::usd(r.cost), 9)
                ),
                t.text,
            ),
        ]));
    }
    lines
}

fn days(t: &Theme, m: &Summary, _w: usize) -> Vec<Line<'static>> {
    let mut lines = vec![heading(
        t,
        &format!("Per day (last {} local days, newest first)", m.daily.len()),
    )];
    if m.daily.is_empty() {
        lines.push(Line::from(Span::styled(" no days recorded", t.dim)));
        return lines;
    }
    lines.push(columns(
        t,
        &[
            ("DATE", 10, false),
            ("RUNS", 5, true),
            ("COST", 9, true),
            ("AVG TIME", 8, true),
        ],
    ));
    for d in m.daily.iter().rev() {
        let avg = if d.completions > 0 {
            format::duration(d.duration / d.completions as f64)
        } else {
            "-".into()
        };
        let quiet = d.completions == 0 && d.cost == 0.0;
        lines.push(Line::from(Span::styled(
            row_text(&[
                (&d.date.to_string(), 10, false),
                (&d.completions.to_string(), 5, true),
                (&format::usd(d.cost), 9, true),
                (&avg, 8, true),
            ]),
            if quiet { t.dim } else { t.text },
        )));
    }
    lines
}
