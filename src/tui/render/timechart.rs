//! How the panels draw a [`ChartData`]: braille lines over time with a labelled y axis (the
//! unit the caller formats) and a labelled time axis (UTC, as every time on screen), so the
//! cost, cache and rate-limit charts read alike.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph};

use crate::tui::app::App;
use crate::tui::app::charts::{ChartData, ChartSource};

/// Rows a chart needs to show a line between its axes.
pub const MIN_HEIGHT: u16 = 4;

/// The style of the chart's `i`-th line (the legend uses the same).
pub fn line_style(app: &App, i: usize) -> Style {
    let t = &app.theme;
    [t.chart, t.ok, t.busy, t.warn][i % 4]
}

/// The line above a chart: what one point is, or that the data is what this dashboard saw
/// since it started because the store holds no buckets.
pub fn source_label(data: &ChartData) -> String {
    match data.source {
        ChartSource::Buckets => data.per.to_owned(),
        ChartSource::SinceStart => "since start (no history in Redis)".to_owned(),
    }
}

/// Time-axis labels: start, middle and end of the span; dates for spans over two days.
fn time_labels(x: [f64; 2], width: u16) -> Vec<String> {
    let fmt = if x[1] - x[0] > 2.0 * 86_400.0 {
        "%m-%d"
    } else if x[1] - x[0] < 600.0 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    let at = |s: f64| {
        crate::metrics::history::epoch(s as i64)
            .format(fmt)
            .to_string()
    };
    let mut labels = vec![at(x[0])];
    if width as usize >= (4 * labels[0].len() + 12).max(40) {
        labels.push(at((x[0] + x[1]) / 2.0));
    }
    // Where "UTC" does not fit beside the first label, the times go without it.
    if width >= 30 {
        labels.push(format!("{} UTC", at(x[1])));
    } else {
        labels.push(at(x[1]));
    }
    labels
}

/// Draws `data` in `area`: y from 0 to `y_max` (the data's largest value when `None`),
/// labelled by `unit`; the x axis from the data's span.
pub fn draw(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    data: &ChartData,
    y_max: Option<f64>,
    unit: &dyn Fn(f64) -> String,
) {
    if area.height < MIN_HEIGHT || area.width < 12 {
        return;
    }
    let t = &app.theme;
    let top = y_max.unwrap_or(data.max_y);
    let top = if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    };
    let datasets: Vec<Dataset> = data
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(line_style(app, i))
                .data(&l.points)
        })
        .collect();
    // A middle label only where there are rows for three: the axis keeps its 0 and its top.
    let marks: &[f64] = if area.height >= 6 {
        &[0.0, 0.5, 1.0]
    } else {
        &[0.0, 1.0]
    };
    let y_labels: Vec<Line> = marks
        .iter()
        .map(|m| m * top)
        .map(|v| Line::from(Span::styled(unit(v), t.dim)))
        .collect();
    let x_labels: Vec<Line> = time_labels(data.x, area.width)
        .into_iter()
        .map(|s| Line::from(Span::styled(s, t.dim)))
        .collect();
    // The plot itself, where a message may go without covering a label: the chart puts its
    // y axis right of the widest y label, or of the first (left-aligned) x label but its last
    // cell, at most a third of the width in; the x axis and its labels take the last 2 rows.
    let label_width = y_labels
        .iter()
        .map(Line::width)
        .max()
        .unwrap_or(0)
        .max(x_labels.first().map_or(0, |l| l.width().saturating_sub(1)));
    let left = u16::try_from(label_width)
        .unwrap_or(u16::MAX)
        .min(area.width / 3)
        .saturating_add(1);
    let plot = Rect {
        x: area.x.saturating_add(left),
        width: area.width.saturating_sub(left),
        height: area.height.saturating_sub(2),
        ..area
    };
    let chart = Chart::new(datasets)
        .style(t.text)
        .legend_position(None)
        .x_axis(Axis::default().style(t.dim).bounds(data.x).labels(x_labels))
        .y_axis(
            Axis::default()
                .style(t.dim)
                .bounds([0.0, top])
                .labels(y_labels),
        );
    frame.render_widget(chart, area);
    if data.lines.iter().all(|l| l.points.is_empty()) && plot.height > 0 {
        let mid = Rect {
            y: plot.y + (plot.height - 1) / 2,
            height: 1,
            ..plot
        };
        let long = "no data in this window";
        let text = if usize::from(mid.width) >= long.len() {
            long
        } else {
            "no data"
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, t.dim)).alignment(ratatui::layout::Alignment::Center),
            mid,
        );
    }
}
