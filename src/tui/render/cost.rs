//! The spend panel: LLM spend per minute (or hour) over the charts' window, one line per
//! provider, from the metrics' time buckets (or the polls since start when Redis holds none);
//! the window's and the all-time LLM spend, what completed pipelines cost, and totals per
//! provider and per model. Every figure says what it counts and over which span.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::timechart;
use crate::metrics::Breakdown;
use crate::tui::app::App;
use crate::tui::app::charts;
use crate::{format, text};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let title = format!(" LLM spend (USD) · {} [-/+] ", app.window.label());
    let block = super::panel(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let m = &snap.metrics;
    let w = inner.width as usize;
    // Below 8 rows the window's total and the legend share one line.
    let roomy = inner.height >= 8;
    let breakdown_rows: u16 = if inner.height >= 14 { 4 } else { 0 };
    let [summary, legend, chart, pipelines, rest] = Layout::vertical([
        Constraint::Length(u16::from(roomy)),
        Constraint::Length(1),
        Constraint::Min(timechart::MIN_HEIGHT),
        Constraint::Length(1),
        Constraint::Length(breakdown_rows),
    ])
    .areas(inner);

    let Some(series) = app.chart_series() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::fit(&format!("reading the last {}…", app.window.label()), w),
                t.dim,
            )),
            legend,
        );
        return;
    };
    let data = charts::spend(series, app.window, app.shown_history());
    let window_spend: f64 = data
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .sum();
    let since_start = data.source == charts::ChartSource::SinceStart;
    let source = Span::styled(timechart::source_label(&data), t.dim);
    // Roomy: a line for the window's total (or where the data comes from), one for the legend
    // (each line's name in its colour, with its spend over the span). Tight: one line.
    let mut spans = if roomy {
        let head = if since_start {
            vec![source]
        } else {
            vec![
                Span::styled(format!("last {} ", app.window.label()), t.dim),
                Span::styled(format::usd(window_spend), t.text),
                Span::styled(format!(" · {}", data.per), t.dim),
            ]
        };
        frame.render_widget(Paragraph::new(fit_spans(head, w)), summary);
        Vec::new()
    } else if since_start {
        vec![source]
    } else {
        vec![
            Span::styled(format!("last {} ", app.window.label()), t.dim),
            Span::styled(format::usd(window_spend), t.text),
            Span::styled(": ", t.dim),
        ]
    };
    if roomy || !since_start {
        for (i, l) in data.lines.iter().enumerate() {
            let sum: f64 = l.points.iter().map(|p| p.1).sum();
            spans.push(Span::styled(
                format!("━ {} {} ", text::sanitize(&l.name), format::usd(sum)),
                timechart::line_style(app, i),
            ));
        }
    }
    frame.render_widget(Paragraph::new(fit_spans(spans, w)), legend);
    timechart::draw(frame, app, chart, &data, None, &|v| format::usd(v));

    // All-time totals, each saying what it counts: every LLM request's spend, and what the
    // completed pipelines cost (their own figure, which need not match).
    let p = &m.pipelines;
    frame.render_widget(
        Paragraph::new(Span::styled(
            text::fit(
                &format!(
                    "all time: LLM {} · {} pipelines completed {}",
                    format::usd(m.llm.total_cost),
                    format::count(p.completed.max(0) as u64),
                    format::usd(p.total_cost)
                ),
                w,
            ),
            t.dim,
        )),
        pipelines,
    );

    if breakdown_rows > 0 {
        let mut lines = vec![Line::from(vec![
            Span::styled("per provider (all time): ", t.column),
            Span::styled(compact_body(&m.providers), t.text),
        ])];
        lines.extend(list(app, &m.models, 2, w, "per model (all time)"));
        let lines: Vec<Line> = lines.into_iter().map(|l| fit_line(l, w)).collect();
        frame.render_widget(Paragraph::new(lines), rest);
    }
}

/// Cuts a line of spans to `w` columns.
fn fit_spans(spans: Vec<Span<'_>>, w: usize) -> Line<'_> {
    fit_line(Line::from(spans), w)
}

fn fit_line(line: Line<'_>, w: usize) -> Line<'_> {
    let mut left = w;
    let mut out = Vec::new();
    for s in line.spans {
        if left == 0 {
            break;
        }
        let n = text::width(&s.content);
        if n <= left {
            left -= n;
            out.push(s);
        } else {
            out.push(Span::styled(text::fit(&s.content, left), s.style));
            left = 0;
        }
    }
    Line::from(out)
}

fn compact_body(items: &[Breakdown]) -> String {
    if items.is_empty() {
        return "none yet".to_owned();
    }
    items
        .iter()
        .map(|b| format!("{} {}", text::sanitize(&b.name), format::usd(b.cost)))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn list<'a>(app: &App, items: &[Breakdown], n: usize, w: usize, head: &str) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(head.to_owned(), t.column))];
    if items.is_empty() {
        lines.push(Line::from(Span::styled("  none yet", t.dim)));
        return lines;
    }
    let more = items.len().saturating_sub(n);
    let shown = if more > 0 { n - 1 } else { n };
    lines.extend(items.iter().take(shown).map(|b| {
        let right = format!(
            " {} · {} req",
            format::usd(b.cost),
            format::count(b.requests.max(0) as u64)
        );
        let name_w = w.saturating_sub(right.chars().count() + 2);
        Line::from(vec![
            Span::raw("  "),
            Span::styled(text::pad(&b.name, name_w), t.text),
            Span::styled(right, t.dim),
        ])
    }));
    if more > 0 {
        lines.push(Line::from(Span::styled(
            format!("  +{} more", items.len() - shown),
            t.dim,
        )));
    }
    lines
}
