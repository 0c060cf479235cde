//! The cost panel: cost per day over the last 30 days as bars, the recent spend rate, and
//! totals per provider and per model. Every figure says its unit and window.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Paragraph};

use crate::metrics::Breakdown;
use crate::tui::app::App;
use crate::{format, text};

/// Days shown in the chart.
pub const DAYS: usize = 30;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let block = super::panel(app, " Cost (USD) ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let m = &snap.metrics;
    let w = inner.width as usize;
    let breakdown_rows: u16 = if inner.height >= 12 { 6 } else { 2 };
    let [summary, chart, axis, rest] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(2),
        Constraint::Length(1),
        Constraint::Length(breakdown_rows),
    ])
    .areas(inner);

    let rate = match app.shown_history().spend_per_hour() {
        Some((r, secs)) => format!(
            "{}/h over {}",
            format::usd(r),
            format::duration(secs as f64)
        ),
        None => "-/h".into(),
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(rate, t.text),
            Span::styled(" · sum ", t.dim),
            Span::styled(format::usd(m.llm.total_cost), t.text),
        ])),
        summary,
    );

    let days: Vec<&crate::metrics::DailyFigures> = {
        let skip = m.daily.len().saturating_sub(DAYS);
        m.daily.iter().skip(skip).collect()
    };
    let max = days.iter().map(|d| d.cost).fold(0.0f64, f64::max);
    // Cents, so that small daily costs still show as bars.
    let bars: Vec<Bar> = days
        .iter()
        .map(|d| {
            Bar::default()
                .value((d.cost.max(0.0) * 100.0).round() as u64)
                .text_value(String::new())
        })
        .collect();
    let n = bars.len().max(1) as u16;
    let bar_w = (chart.width / n).max(1);
    let gap = u16::from(bar_w >= 3);
    let bar_w = if gap == 1 { bar_w - 1 } else { bar_w };
    if !bars.is_empty() {
        frame.render_widget(
            BarChart::default()
                .data(BarGroup::default().bars(&bars))
                .bar_width(bar_w)
                .bar_gap(gap)
                .bar_style(t.chart)
                .max(((max * 100.0).round() as u64).max(1)),
            chart,
        );
    } else {
        frame.render_widget(
            Paragraph::new(Span::styled("no daily figures yet", t.dim)),
            chart,
        );
    }
    let first = days.first().map(|d| d.date.format("%m-%d").to_string());
    let last = days.last().map(|d| d.date.format("%m-%d").to_string());
    let axis_text = match (first, last) {
        (Some(a), Some(b)) => format!(
            "{a} … {b} · cost/day, {} days · max {}/day",
            days.len(),
            format::usd(max)
        ),
        _ => format!("cost/day, last {DAYS} days"),
    };
    frame.render_widget(
        Paragraph::new(Span::styled(text::fit(&axis_text, w), t.dim)),
        axis,
    );

    let mut lines = Vec::new();
    if breakdown_rows >= 4 {
        let half = (breakdown_rows as usize) / 2;
        lines.push(Line::from(Span::styled(
            "per provider (all time)",
            t.column,
        )));
        lines.extend(list(app, &m.providers, half - 1, w));
        lines.push(Line::from(Span::styled("per model (all time)", t.column)));
        lines.extend(list(app, &m.models, half - 1, w));
    } else {
        lines.push(compact(app, "providers", &m.providers, w));
        lines.push(compact(app, "models", &m.models, w));
    }
    frame.render_widget(Paragraph::new(lines), rest);
}

fn list<'a>(app: &App, items: &[Breakdown], n: usize, w: usize) -> Vec<Line<'a>> {
    let t = &app.theme;
    if items.is_empty() {
        return vec![Line::from(Span::styled("  none yet", t.dim))];
    }
    items
        .iter()
        .take(n)
        .map(|b| {
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
        })
        .collect()
}

fn compact<'a>(app: &App, label: &str, items: &[Breakdown], w: usize) -> Line<'a> {
    let t = &app.theme;
    let body = if items.is_empty() {
        "none yet".to_owned()
    } else {
        items
            .iter()
            .take(4)
            .map(|b| format!("{} {}", text::sanitize(&b.name), format::usd(b.cost)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let label = format!("{label}: ");
    let room = w.saturating_sub(label.chars().count());
    Line::from(vec![
        Span::styled(label, t.dim),
        Span::styled(text::fit(&body, room), t.text),
    ])
}
