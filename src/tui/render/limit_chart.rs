//! The rate-limit history panel: checks admitted per minute (or hour) for the busiest
//! limiter keys over the charts' window, with each key's refusals, from the metrics' time
//! buckets that this project's limiters fill. Python limiters count nothing, so without buckets
//! the panel says there is no history instead of drawing zeros.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::timechart;
use crate::tui::app::App;
use crate::tui::app::charts;
use crate::{format, text};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let title = format!(" Rate-limit use · {} ", app.window.label());
    let block = super::panel(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.shown().is_none() {
        return;
    }
    let w = inner.width as usize;
    let Some(series) = app.chart_series() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::fit(&format!("reading the last {}…", app.window.label()), w),
                t.dim,
            )),
            inner,
        );
        return;
    };
    let Some((data, refusals)) = charts::limit_use(series) else {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled(text::fit("no history in Redis", w), t.dim)),
                Line::from(Span::styled(
                    text::fit("(only this project's limiters count admissions)", w),
                    t.dim,
                )),
            ]),
            inner,
        );
        return;
    };
    let legend_rows = data.lines.len().max(1) as u16;
    let [label, legend, chart] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(legend_rows),
        Constraint::Min(timechart::MIN_HEIGHT),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Span::styled(
            text::fit(
                &format!("checks admitted, {}", timechart::source_label(&data)),
                w,
            ),
            t.dim,
        )),
        label,
    );
    // One legend row per key: its full tail (the distinguishing part), refusals over the window.
    let rows: Vec<Line> = refusals
        .iter()
        .enumerate()
        .map(|(i, (key, refused))| {
            let right = format!(" refused {}", format::count((*refused).max(0) as u64));
            let name_w = w.saturating_sub(text::width(&right) + 2);
            let short = key
                .strip_prefix(&format!("{}:", crate::keys::DEFAULT_RATELIMIT_PREFIX))
                .unwrap_or(key);
            Line::from(vec![
                Span::styled("━ ", timechart::line_style(app, i)),
                Span::styled(text::fit_tail(short, name_w), t.text),
                Span::styled(right, if *refused > 0 { t.warn } else { t.dim }),
            ])
        })
        .collect();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("no rate-limit checks in this window", t.dim)),
            legend,
        );
    } else {
        frame.render_widget(Paragraph::new(rows), legend);
    }
    timechart::draw(frame, app, chart, &data, None, &|v| format!("{v:.0}"));
}
