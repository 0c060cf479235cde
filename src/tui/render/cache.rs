//! The cache panel: hit-rate gauge, its recent history, hits, misses and money saved.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use crate::format;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let block = super::panel(app, " LLM cache ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let llm = &snap.metrics.llm;
    let [gauge, figures, saved, label, spark] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(inner);

    // The gauge is a bar after its figure, so it reads the same with or without colour.
    let (ratio, figure) = match llm.hit_rate {
        Some(r) if r.is_finite() => (r.clamp(0.0, 1.0), format::percent(r)),
        _ => (0.0, "-".to_owned()),
    };
    let head = format!("hit rate {figure:>6} ");
    let bar_w = (gauge.width as usize).saturating_sub(head.chars().count());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(head, t.text),
            Span::styled(
                super::bar(ratio, bar_w),
                super::headroom_style(app, 1.0 - ratio),
            ),
        ])),
        gauge,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("hits ", t.dim),
            Span::styled(format::count(llm.cache_hits.max(0) as u64), t.ok),
            Span::styled("  misses ", t.dim),
            Span::styled(format::count(llm.cache_misses.max(0) as u64), t.warn),
        ])),
        figures,
    );
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("saved ", t.dim),
            Span::styled(format::usd(llm.saved_cost), t.ok),
            Span::styled(" by hits", t.dim),
        ])),
        saved,
    );
    // One column per poll, newest at the right.
    let hist = &app.shown_history().hit_rate;
    let n = (spark.width as usize).min(hist.len());
    let data: Vec<Option<u64>> = hist
        .iter()
        .skip(hist.len() - n)
        .map(|r| r.map(|r| (r.clamp(0.0, 1.0) * 100.0).round() as u64))
        .collect();
    frame.render_widget(
        Paragraph::new(Span::styled(format!("per poll · last {n}"), t.dim)),
        label,
    );
    if spark.height > 0 {
        frame.render_widget(
            Sparkline::default()
                .data(data)
                .max(100)
                .style(t.chart)
                .absent_value_symbol(" ")
                .absent_value_style(t.dim),
            spark,
        );
    }
}
