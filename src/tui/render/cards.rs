//! The cards table: one row per card (and per malformed document), filtered, sorted, with the
//! selection kept on screen and the scroll position shown in the title and a scrollbar.

use ratatui::Frame;
use ratatui::layout::{Constraint, Margin, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Cell, Paragraph, Row as TableRow, Scrollbar, ScrollbarOrientation, ScrollbarState, Table,
};

use crate::model::PipelineStatus;
use crate::tracker::Card;
use crate::tui::app::{App, Row};
use crate::tui::theme::Theme;
use crate::{format, text};

/// Column widths for a given inner width: (id, title, status, stage, progress, time, cost).
fn widths(inner: u16) -> [u16; 7] {
    let (id, stage, prog) = if inner >= 140 {
        (24, 16, 22)
    } else if inner >= 100 {
        (18, 12, 18)
    } else {
        (14, 10, 14)
    };
    let (status, time, cost) = (9, 6, 7);
    let fixed = id + status + stage + prog + time + cost + 6; // 6 column gaps
    let title = inner.saturating_sub(fixed).max(4);
    [id, title, status, stage, prog, time, cost]
}

pub fn status_style(t: &Theme, s: PipelineStatus) -> Style {
    match s {
        PipelineStatus::Queued => t.warn,
        PipelineStatus::Running => t.busy,
        PipelineStatus::Completed => t.ok,
        PipelineStatus::Failed => t.bad,
        PipelineStatus::Cancelled => t.dim,
    }
}

/// `███▌░░ 3/8 45%`, fitted to `width` cells (the bar takes what the figures leave).
pub fn progress_cell(card: &Card, width: usize) -> String {
    let p = &card.pipeline;
    let mut figures = format!(
        " {}/{}",
        p.completed_stages.clamp(0, 9999),
        p.total_stages.clamp(0, 9999)
    );
    if let Some(pct) = card.running_percent() {
        figures.push_str(&format!(" {pct}%"));
    }
    let bar_w = width.saturating_sub(figures.chars().count());
    if bar_w < 3 {
        return text::fit(figures.trim_start(), width);
    }
    format!("{}{figures}", super::bar(card.progress(), bar_w))
}

pub fn render(frame: &mut Frame, app: &mut App, area: Rect) {
    let rows_len = app.rows().len();
    // Borders (2) and the header row (1).
    let visible = area.height.saturating_sub(3) as usize;
    app.page = visible.max(1);
    if std::mem::take(&mut app.settle_offset) {
        // Rows moved under the cursor: no further down than the selection needs, so that
        // the top of the order stays in sight with it.
        app.offset = app.offset.min((app.selected + 1).saturating_sub(visible));
    }
    if app.selected < app.offset {
        app.offset = app.selected;
    } else if visible > 0 && app.selected >= app.offset + visible {
        app.offset = app.selected + 1 - visible;
    }
    app.offset = app.offset.min(rows_len.saturating_sub(visible));

    let t = app.theme.clone();
    let mut title = vec![Span::styled(
        format!(
            " Cards {}/{} ",
            if rows_len == 0 { 0 } else { app.selected + 1 },
            rows_len
        ),
        t.title,
    )];
    title.push(Span::styled(
        format!(
            "· sort {} {} ",
            app.sort.name(),
            if app.reverse { "↑" } else { "↓" }
        ),
        t.dim,
    ));
    if let Some(st) = app.status_filter {
        title.push(Span::styled(
            format!("· only {} ", st.as_str()),
            status_style(&t, st),
        ));
    }
    if !app.filter.is_empty() || app.filter_editing {
        title.push(Span::styled(
            format!("· filter \"{}\" ", text::fit(&app.filter, 30)),
            t.warn,
        ));
    }
    let block = super::panel(app, Line::from(title));
    let inner_w = area.width.saturating_sub(2);
    let w = widths(inner_w);
    let header = TableRow::new(
        ["ID", "TITLE", "STATUS", "STAGE", "PROGRESS", "TIME", "COST"]
            .iter()
            .zip(w)
            .map(|(h, w)| Cell::from(text::fit(h, w as usize))),
    )
    .style(t.column);

    let Some(snap) = app.shown() else {
        return;
    };
    let rows = app.rows_slice(app.offset, visible);
    let needle: Vec<char> = app.filter.chars().flat_map(char::to_lowercase).collect();
    let mut table_rows = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let selected = app.offset + i == app.selected;
        let r = match *row {
            Row::Card(ci) => card_row(&snap.cards[ci], &w, &t, app.now, &needle),
            Row::Malformed(mi) => {
                let m = &snap.malformed[mi];
                TableRow::new(vec![
                    Cell::from(text::fit_tail(&m.key, w[0] as usize)),
                    Cell::from(text::fit(&m.reason, w[1] as usize)),
                    Cell::from(Span::styled("malformed", t.bad)),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                ])
            }
        };
        table_rows.push(if selected { r.style(t.selected) } else { r });
    }
    let empty = table_rows.is_empty();
    let table = Table::new(table_rows, w.map(Constraint::Length))
        .header(header)
        .column_spacing(1)
        .style(t.text)
        .block(block);
    frame.render_widget(table, area);
    if empty {
        let msg = if app.filter.is_empty() && app.status_filter.is_none() {
            "no cards in Redis"
        } else {
            "no card matches the filter"
        };
        let inner = area.inner(Margin::new(2, 2));
        if inner.height > 0 {
            frame.render_widget(
                Paragraph::new(Span::styled(msg, t.dim)),
                Rect { height: 1, ..inner },
            );
        }
    }
    if rows_len > visible && area.height > 2 {
        let mut state = ScrollbarState::new(rows_len.saturating_sub(visible)).position(app.offset);
        frame.render_stateful_widget(
            Scrollbar::new(ScrollbarOrientation::VerticalRight)
                .begin_symbol(None)
                .end_symbol(None)
                .style(t.dim),
            area.inner(Margin::new(0, 1)),
            &mut state,
        );
    }
}

fn card_row<'a>(
    c: &Card,
    w: &[u16; 7],
    t: &Theme,
    now: chrono::DateTime<chrono::Utc>,
    needle: &[char],
) -> TableRow<'a> {
    let p = &c.pipeline;
    let stage = p.current_stage.as_deref().unwrap_or("-");
    let time = format::elapsed(p, now)
        .map(format::duration)
        .unwrap_or_else(|| "-".into());
    let cost = c.cost_usd.map(format::usd).unwrap_or_else(|| "-".into());
    // Bold and underlined, no colour: legible in every theme (mono too) and on the
    // selected row's colours.
    let mark = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    TableRow::new(vec![
        Cell::from(highlighted(
            text::fit(&p.card_id, w[0] as usize),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(c.title().unwrap_or(""), w[1] as usize),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(p.status.as_str(), w[2] as usize),
            needle,
            status_style(t, p.status),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(stage, w[3] as usize),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(Span::styled(progress_cell(c, w[4] as usize), t.bar)),
        Cell::from(text::pad_left(&time, w[5] as usize)),
        Cell::from(text::pad_left(&cost, w[6] as usize)),
    ])
}

/// `shown` (already fitted and sanitized) with each case-insensitive occurrence of `needle`
/// (lowercase chars) in `mark`, the rest in `base`: the filter's matches, seen in the row.
pub fn highlighted<'a>(shown: String, needle: &[char], base: Style, mark: Style) -> Line<'a> {
    let chars: Vec<char> = shown.chars().collect();
    if needle.is_empty() || chars.len() < needle.len() {
        return Line::from(Span::styled(shown, base));
    }
    // One lowercase char per shown char, so that positions map back one to one.
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let mut hit = vec![false; chars.len()];
    let mut i = 0;
    while i + needle.len() <= lower.len() {
        if lower[i..i + needle.len()] == *needle {
            hit[i..i + needle.len()].iter_mut().for_each(|h| *h = true);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut run_hit = false;
    for (c, h) in chars.into_iter().zip(hit) {
        if h != run_hit && !run.is_empty() {
            spans.push(Span::styled(
                std::mem::take(&mut run),
                if run_hit { base.patch(mark) } else { base },
            ));
        }
        run_hit = h;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(
            run,
            if run_hit { base.patch(mark) } else { base },
        ));
    }
    Line::from(spans)
}
