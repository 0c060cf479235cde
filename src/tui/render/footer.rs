//! The bottom line: the key hints of the current view (from the binding table), the filter
//! prompt while typing one, or a warning or a note (the theme just put on) that waits for the
//! next key.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::text;
use crate::tui::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let w = area.width as usize;
    let line = if app.filter_editing {
        Line::from(vec![
            Span::styled(" filter: ", t.key),
            Span::styled(text::fit(&app.filter, w.saturating_sub(40)), t.text),
            Span::styled("█", t.key),
            Span::styled("   Enter keep · Esc clear · ↑↓ move", t.dim),
        ])
    } else if let Some(first) = app.notices.first() {
        let more = if app.notices.len() > 1 {
            format!(" (+{} more in ?)", app.notices.len() - 1)
        } else {
            String::new()
        };
        let msg = format!(" ⚠ {first}{more}");
        Line::from(Span::styled(text::fit(&msg, w), t.warn))
    } else if let Some(note) = &app.flash {
        Line::from(Span::styled(text::fit(&format!(" {note}"), w), t.key))
    } else {
        let mut spans = vec![Span::raw(" ")];
        let mut used = 1;
        for (key, hint) in app.keymap.hints(app.scope()) {
            let piece = key.chars().count() + 1 + hint.len() + 2;
            if used + piece > w {
                break;
            }
            used += piece;
            spans.push(Span::styled(key, t.key));
            spans.push(Span::styled(format!(" {hint}  "), t.dim));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
