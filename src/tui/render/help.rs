//! The `?` popup: every binding from the live key map, and any key-config warnings.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::text;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let rows = app.keymap.help_rows();
    let warnings = &app.keymap.warnings;
    // The filter note wraps to about three lines.
    let want_h = rows.len() as u16
        + 6
        + if warnings.is_empty() {
            0
        } else {
            warnings.len() as u16 + 2
        };
    let w = area.width.saturating_sub(4).min(84);
    let h = area.height.saturating_sub(2).min(want_h);
    let [_, mid, _] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, popup, _] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(w),
        Constraint::Fill(1),
    ])
    .areas(mid);
    frame.render_widget(Clear, popup);
    let block = super::panel(
        app,
        " Keys (from the binding table; rebind in [dashboard.keys]) ",
    );
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let iw = inner.width as usize;
    let key_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(4)
        .min(14);
    let name_w = 13;
    let where_w = 11;
    let desc_w = iw.saturating_sub(key_w + name_w + where_w + 3);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} {} {} {}",
            text::pad("KEYS", key_w),
            text::pad("ACTION", name_w),
            text::pad("WHAT", desc_w),
            text::pad("WHERE", where_w)
        ),
        t.column,
    ))];
    for (keys, name, desc, scope) in rows {
        lines.push(Line::from(vec![
            Span::styled(text::pad(&keys, key_w), t.key),
            Span::raw(" "),
            Span::styled(text::pad(name, name_w), t.text),
            Span::raw(" "),
            Span::styled(text::pad(desc, desc_w), t.text),
            Span::raw(" "),
            Span::styled(text::pad(scope, where_w), t.dim),
        ]));
    }
    lines.push(Line::from(Span::styled(
        "In the filter: type to match id, title, status, stage or a metadata value (matches \
         highlighted) · Enter keeps it · Esc clears it. Default sort \"attention\": running, \
         then failed within the hour, then by last activity; the selection follows its card.",
        t.dim,
    )));
    if !warnings.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("Key config warnings:", t.warn)));
        for w in warnings {
            lines.push(Line::from(Span::styled(text::fit(w, iw), t.warn)));
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}
