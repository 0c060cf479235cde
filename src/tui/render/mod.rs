//! Turning the app state into a frame: one file per screen region.
//!
//! Overview (`header.rs`, `cards.rs`, `cache.rs`, `limits.rs`, `cost.rs`, `limit_chart.rs`,
//! `footer.rs`; the charts are drawn by `timechart.rs`):
//!
//! ```text
//! ┌─────────────────────────────── terminal ───────────────────────────────┐
//! │ artemis-top │ redis://host:6379/0 │ ● connected │ data 0.4s │ 12 ev/s   │ header (1)
//! │ ▲ Redis unreachable since 12:00:01 … showing data from 11:59:58        │ banner (0-1)
//! │┌ Cards 12/340 · sort started ↓ · filter "abc" ────────────────────────┐│
//! ││ ID       TITLE            STATUS  STAGE PROGRESS         TIME  COST  ││ cards (rest)
//! ││ card-123 Add login        running dev   ███▌░░░░ 3/8 45% 4m12s $0.42 ││
//! │└──────────────────────────────────────────────────────────────────────┘│
//! │┌ LLM cache · 1h ┐┌ Rate limits ──┐┌ LLM spend · 1h ──┐┌ Rate-limit use ┐│
//! ││ gauge, totals, ││ requests /    ││ spend per minute ││ checks per key ││ panels (2/5)
//! ││ hit rate chart ││ tokens, refus.││ per provider     ││ (from 140 cols)││
//! │└────────────────┘└───────────────┘└──────────────────┘└────────────────┘│
//! │ q quit  ? help  ⏎ open  / filter  s sort  p freeze  t theme  + window  │ footer (1)
//! └────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! The cards table sizes its columns from the rows on screen (`cards::plan`): the short
//! columns get what they show, ids stay whole or at least distinct, the title takes the rest;
//! progress bars have one length per frame.
//!
//! Drilldown (`card.rs`) replaces the cards table and panels with the card's summary, its
//! stages in order and its events; the metrics view (`metrics.rs`, Tab) replaces them with
//! everything the metrics hold; the help popup (`help.rs`) is drawn over any view.
//! Below [`MIN_WIDTH`]×[`MIN_HEIGHT`] only a "too small" message is drawn.
//!
//! Every string from Redis goes through `crate::text` (sanitizing, widths) here, and only the
//! visible rows of the table are built, so a frame costs the same with 100 or 10,000 cards.

mod cache;
mod card;
mod cards;
mod cost;
mod footer;
mod header;
mod help;
mod limit_chart;
mod limits;
mod metrics;
mod timechart;

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::app::{App, View};
use crate::format;
use crate::text;

/// Narrowest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
/// Shortest terminal the dashboard draws in.
pub const MIN_HEIGHT: u16 = 18;

/// Draws the whole screen for the app's current state.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, app, area);
        return;
    }
    let banner = header::banner_text(app);
    let [head, banner_area, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(u16::from(banner.is_some())),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::render(frame, app, head);
    if let Some(b) = banner {
        header::render_banner(frame, app, banner_area, &b);
    }
    if app.shown().is_none() {
        splash(frame, app, body);
    } else {
        match app.view {
            View::Overview => overview(frame, app, body),
            View::Metrics => metrics::render(frame, app, body),
            View::Card(_) => card::render(frame, app, body),
        }
    }
    footer::render(frame, app, foot);
    if app.help {
        help::render(frame, app, body);
    }
}

/// Terminal width from which the overview shows the rate-limit history panel.
pub const LIMIT_CHART_MIN_WIDTH: u16 = 140;

fn overview(frame: &mut Frame, app: &mut App, area: Rect) {
    // The panels grow with the terminal (two fifths of the body, never under 8 rows), so a
    // tall terminal shows more rate limits and a longer history, not a longer blank table.
    let panels_h = (area.height * 2 / 5)
        .max(8)
        .min(area.height.saturating_sub(5));
    let [table, panels] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(panels_h)]).areas(area);
    cards::render(frame, app, table);
    app.table_area = table;
    // The rate-limit history needs a panel of its own: only where four panels fit.
    if panels.width >= LIMIT_CHART_MIN_WIDTH {
        let [c, l, k, h] = Layout::horizontal([
            Constraint::Percentage(24),
            Constraint::Percentage(26),
            Constraint::Percentage(28),
            Constraint::Percentage(22),
        ])
        .areas(panels);
        cache::render(frame, app, c);
        limits::render(frame, app, l);
        cost::render(frame, app, k);
        limit_chart::render(frame, app, h);
    } else {
        let [c, l, k] = Layout::horizontal([
            Constraint::Percentage(30),
            Constraint::Percentage(30),
            Constraint::Percentage(40),
        ])
        .areas(panels);
        cache::render(frame, app, c);
        limits::render(frame, app, l);
        cost::render(frame, app, k);
    }
}

/// Until the first snapshot arrives: where we are connecting and how it goes.
fn splash(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![
        Line::from(Span::styled("artemis-top", t.title)),
        Line::from(""),
        Line::from(vec![
            Span::styled("reading ", t.dim),
            Span::styled(text::sanitize(&app.endpoint).into_owned(), t.text),
        ]),
        Line::from(Span::styled(format::conn_label(&app.conn).0, t.text)),
    ];
    if let Some((_, e)) = &app.read_error {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled(
            format!("last attempt: {e}"),
            t.bad,
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        format!("{} quits", app.keymap.label(super::keymap::Action::Quit)),
        t.dim,
    )));
    centered(frame, area, Text::from(lines));
}

fn too_small(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let msg = Text::from(vec![
        Line::from(Span::styled("Terminal too small", t.bad)),
        Line::from(Span::styled(
            format!(
                "{}×{}, need {MIN_WIDTH}×{MIN_HEIGHT}",
                area.width, area.height
            ),
            t.text,
        )),
        Line::from(Span::styled(
            format!("{} quits", app.keymap.label(super::keymap::Action::Quit)),
            t.dim,
        )),
    ]);
    frame.render_widget(Clear, area);
    centered(frame, area, msg);
}

/// `text` centred in `area`, both ways (cut to the area's height).
fn centered(frame: &mut Frame, area: Rect, text: Text<'_>) {
    let h = (text.lines.len() as u16).min(area.height);
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(h),
        Constraint::Fill(1),
    ])
    .areas(area);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        mid,
    );
}

/// A bordered panel with a title in the theme's style.
fn panel<'a>(app: &App, title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .border_style(app.theme.border)
        .title(title.into().style(app.theme.title))
}

/// A horizontal bar of `width` cells filled to `ratio`, with eighth blocks for precision.
pub fn bar(ratio: f64, width: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let ratio = if ratio.is_finite() {
        ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (ratio * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let mut s = String::with_capacity(width * 3);
    s.extend(std::iter::repeat_n('█', full.min(width)));
    if full < width {
        let part = eighths % 8;
        if part > 0 {
            s.push(EIGHTHS[part]);
        } else {
            s.push('░');
        }
        s.extend(std::iter::repeat_n('░', width - full - 1));
    }
    s
}

/// Style for "used of limit": plenty left, getting close (< 50% left), nearly out (< 20%).
fn headroom_style(app: &App, used: f64) -> ratatui::style::Style {
    let left = 1.0 - used;
    if left < 0.2 {
        app.theme.bad
    } else if left < 0.5 {
        app.theme.warn
    } else {
        app.theme.ok
    }
}

fn age_label(app: &App) -> Option<String> {
    let taken = app.shown()?.taken_at;
    Some(format::age(taken, app.now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_have_the_exact_width() {
        assert_eq!(bar(0.0, 4), "░░░░");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 4), "██░░");
        assert_eq!(bar(0.55, 4), "██▎░");
        assert_eq!(bar(f64::NAN, 3), "░░░");
        for r in [0.01, 0.33, 0.99, 2.0] {
            assert_eq!(bar(r, 7).chars().count(), 7);
        }
    }
}
