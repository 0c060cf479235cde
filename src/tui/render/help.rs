//! The `?` help: every binding from the live key map, the mouse, what each panel shows (the
//! progress label included), and any key-config warnings. It covers the whole body of the
//! screen, header and footer stay, and scrolls with the movement keys (the scroll is clamped
//! here), so it reads completely at the minimum size and nothing is cut at any width:
//! descriptions wrap instead.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::text;
use crate::tui::app::App;
use crate::tui::keymap::Action;

/// What each part of the screen shows, in screen order: (name, explanation).
const PANELS: &[(&str, &str)] = &[
    (
        "Header",
        "Where the data comes from, the connection (● connected, ◌ connecting, ↻ reconnecting, \
         ✖ unreachable), \
         how old the shown data is, live events per second, FROZEN while frozen, and the cards \
         per status (queued · running · completed · failed · cancelled), shortened on narrow \
         terminals. \"no live events\" says why the subscription is off; the dashboard then \
         polls only.",
    ),
    (
        "Cards",
        "One row per card in Redis (Python-written ones included) and per document that does \
         not parse, with its reason. The title shows the rows listed of the total, the sort, \
         the status filter and the text filter. TIME is the run time so far (or the whole run \
         once finished); COST is what the card's metadata or its completion recorded.",
    ),
    (
        "Progress",
        "The bar fills with the stages done; \"3/8 42%\" means 3 of 8 stages done and the \
         running stage at 42% (the percent is missing when no stage runs or it reports none).",
    ),
    (
        "LLM cache",
        "Hit rate of every process's lookups (hits / (hits + misses)) with its recent history, \
         hits and misses, and the money hits saved. A hit costs nothing.",
    ),
    (
        "Rate limits",
        "Per limiter key (provider:model:identifier): requests, and tokens where limited, used \
         of the limit in the current sliding window, coloured by the headroom left (red below \
         20%). Windows only Python wrote show the original's limit or \"limit unknown\".",
    ),
    (
        "Cost",
        "LLM spend: per day, the recent rate over the stated window, and per provider and \
         model. Pipeline totals count finished pipelines only; LLM spend counts every request.",
    ),
    (
        "Metrics view",
        "Tab: everything --once knows, all time: pipelines finished (by status, average time and \
         cost), LLM requests, tokens, spend and latency, spend per provider and model, code \
         reviews by developer (average score, critical and high issues) and by status, the \
         recent pipelines and the per-day table.",
    ),
    (
        "Drilldown",
        "Enter on a card: its summary, its stages in order with their progress and messages, \
         and its events (stored history, or only those seen live for Python-written cards).",
    ),
    (
        "Footer",
        "The keys of the current view, the filter while typing it, a warning or note until the \
         next key (the theme now on, for instance).",
    ),
];

/// Cuts `s` into lines of at most `width` cells at spaces (a word longer than a line is cut).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in s.split_whitespace() {
        let w = text::width(word);
        if used > 0 && used + 1 + w > width {
            out.push(std::mem::take(&mut line));
            used = 0;
        }
        if used > 0 {
            line.push(' ');
            used += 1;
        }
        if w > width {
            line.push_str(&text::fit(word, width));
            used = width;
        } else {
            line.push_str(word);
            used += w;
        }
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// A label column of `label_w` cells, then `body` wrapped into the rest; continuation lines
/// are indented under the body.
fn labelled(
    label: &str,
    label_style: Style,
    label_w: usize,
    body: &str,
    body_style: Style,
    width: usize,
) -> Vec<Line<'static>> {
    // One space before the label, one after it, one before the border.
    let body_w = width.saturating_sub(label_w + 3).max(10);
    wrap(body, body_w)
        .into_iter()
        .enumerate()
        .map(|(i, part)| {
            let head = if i == 0 {
                text::pad(label, label_w)
            } else {
                " ".repeat(label_w)
            };
            Line::from(vec![
                Span::raw(" "),
                Span::styled(head, label_style),
                Span::raw(" "),
                Span::styled(part, body_style),
            ])
        })
        .collect()
}

/// Every line of the help at `width` cells.
fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let rows = app.keymap.help_rows();
    let mut out = Vec::new();
    let key_w = rows
        .iter()
        .map(|r| text::width(&r.0))
        .max()
        .unwrap_or(4)
        .clamp(4, 16);
    let name_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(6).max(6);
    let where_w = rows.iter().map(|r| r.3.len()).max().unwrap_or(5).max(5);
    out.push(Line::from(Span::styled(" Keys", t.title)));
    for part in wrap(
        "Rebind any action in [dashboard.keys] of the config file by its name (ACTION, or the \
         first word in brackets): name = \"key\", several keys as \"k, Up\".",
        width.saturating_sub(2),
    ) {
        out.push(Line::from(Span::styled(format!(" {part}"), t.dim)));
    }
    // Narrow: the action name and where it works go under the description.
    let wide = width >= key_w + name_w + where_w + 40;
    let desc_w = if wide {
        width.saturating_sub(1 + key_w + 1 + name_w + 1 + 1 + where_w + 1)
    } else {
        width.saturating_sub(key_w + 2)
    };
    if wide {
        out.push(Line::from(Span::styled(
            format!(
                " {} {} {} {}",
                text::pad("KEYS", key_w),
                text::pad("ACTION", name_w),
                text::pad("WHAT", desc_w),
                text::pad("WHERE", where_w)
            ),
            t.column,
        )));
    }
    for (keys, name, desc, scope) in rows {
        if wide {
            for (i, part) in wrap(desc, desc_w).into_iter().enumerate() {
                let first = i == 0;
                out.push(Line::from(vec![
                    Span::raw(" "),
                    Span::styled(text::pad(if first { &keys } else { "" }, key_w), t.key),
                    Span::raw(" "),
                    Span::styled(text::pad(if first { name } else { "" }, name_w), t.dim),
                    Span::raw(" "),
                    Span::styled(text::pad(&part, desc_w), t.text),
                    Span::raw(" "),
                    Span::styled(text::pad(if first { scope } else { "" }, where_w), t.dim),
                ]));
            }
        } else {
            let body = format!("{desc} ({name}; {scope})");
            out.extend(labelled(&keys, t.key, key_w, &body, t.text, width));
        }
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(" Filter and sort", t.title)));
    let notes = [
        "/ filters over id, title, status, stage and metadata values; matches are highlighted; \
         Enter keeps the filter, Esc clears it, ↑↓ move meanwhile.",
        "The default sort, attention, lists running cards (newest first), then cards failed \
         within the hour, then the rest by last activity. The selection follows its card as \
         cards arrive, finish or re-sort.",
    ];
    for n in notes {
        for part in wrap(n, width.saturating_sub(2)) {
            out.push(Line::from(Span::styled(format!(" {part}"), t.text)));
        }
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(" Mouse", t.title)));
    let mouse = if app.mouse {
        "On: a click selects a card, a double click opens it, the wheel scrolls (every view and \
         this help). Hold Shift to select text in most terminals."
    } else {
        "Off (the terminal keeps its own text selection): start with --mouse or set \
         dashboard.mouse = true for click to select, double click to open, wheel to scroll."
    };
    for part in wrap(mouse, width.saturating_sub(2)) {
        out.push(Line::from(Span::styled(format!(" {part}"), t.text)));
    }
    out.push(Line::from(""));
    out.push(Line::from(Span::styled(" Panels", t.title)));
    let panel_w = PANELS.iter().map(|p| p.0.len()).max().unwrap_or(8);
    for (name, what) in PANELS {
        out.extend(labelled(name, t.key, panel_w, what, t.text, width));
    }
    let warnings = &app.keymap.warnings;
    if !warnings.is_empty() {
        out.push(Line::from(""));
        out.push(Line::from(Span::styled(" Key config warnings", t.warn)));
        for w in warnings {
            for part in wrap(w, width.saturating_sub(2)) {
                out.push(Line::from(Span::styled(format!(" {part}"), t.warn)));
            }
        }
    }
    out
}

pub fn render(frame: &mut Frame, app: &mut App, area: Rect) {
    frame.render_widget(Clear, area);
    let probe = super::panel(app, "");
    let inner = probe.inner(area);
    let all = lines(app, inner.width as usize);
    let visible = inner.height as usize;
    app.help_scroll = app.help_scroll.min(all.len().saturating_sub(visible));
    let first = app.help_scroll;
    let last = (first + visible).min(all.len());
    let position = if all.len() > visible {
        format!(
            " · {}-{last} of {} · {} scroll",
            first + 1,
            all.len(),
            app.keymap.label(Action::Down)
        )
    } else {
        String::new()
    };
    let title = format!(
        " Help{position} · {} closes ",
        app.keymap.label(Action::Back)
    );
    let block = super::panel(
        app,
        text::fit(&title, area.width.saturating_sub(2) as usize),
    );
    frame.render_widget(block, area);
    let shown: Vec<Line<'static>> = all.into_iter().skip(first).take(visible).collect();
    frame.render_widget(Paragraph::new(shown), inner);
}
