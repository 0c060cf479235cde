//! The cache panel: hit-rate gauge, hits, misses and money saved (all time), and the hit rate
//! over the charts' window as a line on a 0-100 % axis, from the metrics' time buckets (or the
//! polls since start when Redis holds none).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::timechart;
use crate::tui::app::charts;

use crate::format;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let block = super::panel(app, format!(" LLM cache · {} ", app.window.label()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let llm = &snap.metrics.llm;
    // Below 7 rows the all-time figures give way to the chart.
    let figures_rows = u16::from(inner.height >= 7);
    let [gauge, figures, label, spark] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(figures_rows),
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
    // All-time figures (the gauge's too): the chart below is the window's.
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("hits ", t.dim),
            Span::styled(format::count(llm.cache_hits.max(0) as u64), t.ok),
            Span::styled(" · misses ", t.dim),
            Span::styled(format::count(llm.cache_misses.max(0) as u64), t.warn),
            Span::styled(" · saved ", t.dim),
            Span::styled(format::usd(llm.saved_cost), t.ok),
            Span::styled(" · all time", t.dim),
        ])),
        figures,
    );
    let Some(series) = app.chart_series() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                crate::text::fit(
                    &format!("reading the last {}…", app.window.label()),
                    label.width as usize,
                ),
                t.dim,
            )),
            label,
        );
        return;
    };
    let data = charts::hit_rate(series, app.window, app.shown_history());
    frame.render_widget(
        Paragraph::new(Span::styled(
            crate::text::fit(
                &match data.source {
                    charts::ChartSource::Buckets => format!("hit rate, {}", data.per),
                    charts::ChartSource::SinceStart => timechart::source_label(&data),
                },
                label.width as usize,
            ),
            t.dim,
        )),
        label,
    );
    timechart::draw(frame, app, spark, &data, Some(100.0), &|v| {
        format!("{v:.0}%")
    });
}
