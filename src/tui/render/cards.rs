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

/// Narrowest a title column gets before the others give way: enough for a word.
const TITLE_MIN: usize = 6;
/// Narrowest a stage column gets when space is short.
const STAGE_MIN: usize = 6;
/// Narrowest an id gets when space is short, whatever it takes to keep ids distinct.
const ID_MIN: usize = 6;

/// What the rows on screen need, in cells: measured from the very strings they will show,
/// before any width is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// The widest id shown in full.
    pub id: usize,
    /// The narrowest id width at which the shown ids, cut, are still all different.
    pub id_distinct: usize,
    /// The widest title.
    pub title: usize,
    /// The widest status word.
    pub status: usize,
    /// The widest stage name.
    pub stage: usize,
    /// The progress label (`3/8 45%`, every row padded to the same).
    pub label: usize,
    /// The widest elapsed time.
    pub time: usize,
    /// The cost column (aligned on the decimal point).
    pub cost: usize,
}

/// Column widths in cells, chosen for one frame from [`Needs`] and the table's inner width.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Widths {
    /// Id column.
    pub id: usize,
    /// Title column: whatever the others leave.
    pub title: usize,
    /// Status column.
    pub status: usize,
    /// Stage column.
    pub stage: usize,
    /// The bar inside the progress column: the same length on every row.
    pub bar: usize,
    /// The label after the bar.
    pub label: usize,
    /// Time column.
    pub time: usize,
    /// Cost column.
    pub cost: usize,
}

impl Widths {
    /// The progress column: bar, a space, label.
    pub fn progress(&self) -> usize {
        if self.bar == 0 {
            self.label
        } else {
            self.bar + 1 + self.label
        }
    }

    /// Which of the seven columns are drawn: all but the stage when it had to go.
    pub fn shown(&self) -> [bool; 7] {
        [true, true, true, self.stage > 0, true, true, true]
    }

    fn columns(&self) -> [usize; 7] {
        [
            self.id,
            self.title,
            self.status,
            self.stage,
            self.progress(),
            self.time,
            self.cost,
        ]
    }
}

/// The progress bar's length for a table `inner` cells wide: one length per frame, so that
/// equal progress draws equal bars and their right edges line up.
pub fn bar_width(inner: usize) -> usize {
    match inner {
        0..70 => 5,
        70..100 => 6,
        100..140 => 12,
        140..200 => 16,
        _ => 20,
    }
}

/// Column widths from what the rows show: status, progress, time and cost get what their
/// content needs (they are short and always legible); ids get their full width when there is
/// room and never less than keeps them distinct; stage names come next; the title takes the
/// rest. Gaps of one cell between the columns. Too narrow for all of that, the stage column is
/// left out (width 0, see [`Widths::shown`]).
pub fn plan(inner: usize, needs: &Needs) -> Widths {
    const GAPS: usize = 6;
    let mut w = Widths {
        status: needs.status.max(text::cells("STATUS")),
        bar: bar_width(inner),
        label: needs.label,
        time: needs.time.max(text::cells("TIME")),
        cost: needs.cost.max(text::cells("COST")),
        ..Widths::default()
    };
    let fixed = |w: &Widths| w.status + w.progress() + w.time + w.cost + GAPS;
    // At the narrowest sizes the bar gives way to its label first.
    while w.bar > 3 && fixed(&w) + ID_MIN + STAGE_MIN + TITLE_MIN > inner {
        w.bar -= 1;
    }
    let left = inner.saturating_sub(fixed(&w));
    let title_min = needs.title.clamp(1, TITLE_MIN);
    let id_floor = needs.id_distinct.max(ID_MIN.min(needs.id));
    // Full ids and stages if they fit beside a legible title. Else the stage column goes (the
    // drilldown shows it; a stage cut to a few letters says nothing) with its gap, and then
    // ids give way, down to what keeps them distinct.
    w.id = needs.id;
    w.stage = needs.stage.max(text::cells("STAGE").min(left / 4));
    let mut left = left;
    if w.id + w.stage + title_min > left {
        w.stage = 0;
        left += 1;
    }
    if w.id + w.stage + title_min > left {
        w.id = id_floor.max(left.saturating_sub(w.stage + title_min));
    }
    w.title = left.saturating_sub(w.id + w.stage);
    w
}

/// [`text::width`], with the common case (printable ASCII, one cell per byte) answered without
/// segmenting into grapheme clusters: measuring runs for every visible cell of every frame.
fn cells(s: &str) -> usize {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        s.len()
    } else {
        text::width(s)
    }
}

/// `id` cut to `max` cells in the middle (`sim-4…0551`): the prefix says what kind of card it
/// is, the end tells cards apart. Whole when it fits.
pub fn cut_id(id: &str, max: usize) -> String {
    if cells(id) <= max {
        return text::sanitize(id).into_owned();
    }
    if max < 4 {
        return text::fit_tail(id, max);
    }
    // One cell for the ellipsis; the end gets the larger share.
    let tail_w = (max - 1) * 2 / 3;
    let head_w = max - 1 - tail_w;
    let head = text::fit(id, head_w + 1); // ends with the ellipsis
    let tail = text::fit_tail(id, tail_w + 1);
    let tail = tail.strip_prefix(text::ELLIPSIS).unwrap_or(&tail);
    format!("{head}{tail}")
}

/// The narrowest width, from `floor` up, at which [`cut_id`] keeps all `ids` different (the
/// widest id's width when nothing narrower does).
pub fn distinct_width(ids: &[&str], floor: usize) -> usize {
    let full = ids.iter().map(|i| text::width(i)).max().unwrap_or(0);
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    (floor.min(full)..full)
        .find(|&w| {
            seen.clear();
            ids.iter().all(|id| seen.insert(cut_id(id, w)))
        })
        .unwrap_or(full)
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

/// The progress label of every row on screen laid out alike: stages done / total
/// right-aligned, then the running stage's percent (blank on rows with none), so that labels of
/// different rows line up under each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressLabel {
    stages_w: usize,
    percent_w: usize,
}

impl ProgressLabel {
    /// Sized from the cards on screen.
    pub fn fit<'a>(cards: impl IntoIterator<Item = &'a Card>) -> Self {
        cards.into_iter().fold(Self::default(), |l, c| Self {
            stages_w: l.stages_w.max(stages_done(c).len()),
            percent_w: l.percent_w.max(percent_done(c).map_or(0, |p| p.len())),
        })
    }

    /// Cells every label takes.
    pub fn width(&self) -> usize {
        self.stages_w
            + if self.percent_w > 0 {
                1 + self.percent_w
            } else {
                0
            }
    }

    /// One card's label, [`Self::width`] cells wide.
    pub fn label(&self, card: &Card) -> String {
        let mut s = text::pad_left(&stages_done(card), self.stages_w);
        if self.percent_w > 0 {
            s.push(' ');
            s.push_str(&text::pad_left(
                &percent_done(card).unwrap_or_default(),
                self.percent_w,
            ));
        }
        s
    }
}

fn stages_done(card: &Card) -> String {
    let p = &card.pipeline;
    format!(
        "{}/{}",
        p.completed_stages.clamp(0, 9999),
        p.total_stages.clamp(0, 9999)
    )
}

fn percent_done(card: &Card) -> Option<String> {
    card.running_percent().map(|pct| format!("{pct}%"))
}

/// `███▌░░░░ 3/8 45%`: a bar exactly `bar` cells long (none when `bar` is 0), then the label.
pub fn progress_cell(card: &Card, bar: usize, label: &ProgressLabel) -> String {
    if bar == 0 {
        return label.label(card);
    }
    format!("{} {}", super::bar(card.progress(), bar), label.label(card))
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
    let inner_w = area.width.saturating_sub(2) as usize;

    let Some(snap) = app.shown() else {
        return;
    };
    let rows = app.rows_slice(app.offset, visible);
    let shown = Shown::measure(rows, snap, app.now);
    let mut w = plan(inner_w, &shown.needs);
    if w.id < shown.needs.id {
        // Ids must be cut: only now is it worth finding how far they can be (most frames
        // show them whole and skip this).
        let ids: Vec<&str> = rows
            .iter()
            .filter_map(|r| match *r {
                Row::Card(ci) => snap.cards.get(ci).map(|c| c.pipeline.card_id.as_str()),
                Row::Malformed(_) => None,
            })
            .collect();
        let needs = Needs {
            id_distinct: distinct_width(&ids, ID_MIN),
            ..shown.needs
        };
        w = plan(inner_w, &needs);
    }
    let cols = w.columns();
    let mask = w.shown();
    let keep = move |cells: Vec<Cell<'static>>| -> Vec<Cell<'static>> {
        cells
            .into_iter()
            .zip(mask)
            .filter_map(|(c, shown)| shown.then_some(c))
            .collect()
    };
    let header = TableRow::new(keep(vec![
        Cell::from(text::pad("ID", cols[0])),
        Cell::from(text::pad("TITLE", cols[1])),
        Cell::from(text::pad("STATUS", cols[2])),
        Cell::from(text::pad("STAGE", cols[3])),
        Cell::from(text::pad("PROGRESS", cols[4])),
        Cell::from(text::pad_left("TIME", cols[5])),
        Cell::from(text::pad_left("COST", cols[6])),
    ]))
    .style(t.column);
    let needle: Vec<char> = app.filter.chars().flat_map(char::to_lowercase).collect();
    let mut table_rows = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let selected = app.offset + i == app.selected;
        let r = match *row {
            Row::Card(ci) => TableRow::new(keep(card_cells(
                &snap.cards[ci],
                &shown,
                &w,
                &t,
                &needle,
                i,
            ))),
            Row::Malformed(mi) => {
                let m = &snap.malformed[mi];
                TableRow::new(keep(vec![
                    Cell::from(text::fit_tail(&m.key, w.id)),
                    Cell::from(text::fit(&m.reason, w.title)),
                    Cell::from(Span::styled(text::fit("malformed", w.status), t.bad)),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                ]))
            }
        };
        table_rows.push(if selected { r.style(t.selected) } else { r });
    }
    let constraints: Vec<Constraint> = cols
        .into_iter()
        .zip(mask)
        .filter_map(|(c, shown)| shown.then_some(Constraint::Length(c as u16)))
        .collect();
    let empty = table_rows.is_empty();
    let table = Table::new(table_rows, constraints)
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

/// The cells of the rows on screen that need measuring, computed once per frame: only the
/// visible rows, so a frame costs the same with 100 or 10,000 cards.
struct Shown {
    needs: Needs,
    /// Elapsed time of each visible row (`-` for none and for malformed rows).
    times: Vec<String>,
    /// Cost of each visible row, formatted.
    costs: Vec<String>,
    cost_col: format::DecimalColumn,
    label: ProgressLabel,
}

impl Shown {
    fn measure(
        rows: &[Row],
        snap: &crate::snapshot::Snapshot,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let cards: Vec<Option<&Card>> = rows
            .iter()
            .map(|r| match *r {
                Row::Card(ci) => snap.cards.get(ci),
                Row::Malformed(_) => None,
            })
            .collect();
        let times: Vec<String> = cards
            .iter()
            .map(|c| {
                c.and_then(|c| format::elapsed(&c.pipeline, now))
                    .map(format::duration)
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        let costs: Vec<String> = cards
            .iter()
            .map(|c| {
                c.and_then(|c| c.cost_usd)
                    .map(format::usd)
                    .unwrap_or_else(|| "-".into())
            })
            .collect();
        let cost_col = format::DecimalColumn::fit(costs.iter().map(String::as_str));
        let label = ProgressLabel::fit(cards.iter().flatten().copied());
        let max_of =
            |f: &dyn Fn(&Card) -> usize| cards.iter().flatten().map(|c| f(c)).max().unwrap_or(0);
        let malformed = rows.iter().any(|r| matches!(r, Row::Malformed(_)));
        let id_full = max_of(&|c| cells(&c.pipeline.card_id));
        let needs = Needs {
            // A malformed row shows the end of its key in whatever the ids leave.
            id: id_full.max(if id_full == 0 { 12 } else { 2 }),
            // Found by the caller when ids must be cut.
            id_distinct: 0,
            title: max_of(&|c| cells(c.title().unwrap_or(""))),
            status: max_of(&|c| c.pipeline.status.as_str().len()).max(if malformed {
                "malformed".len()
            } else {
                0
            }),
            stage: max_of(&|c| cells(c.pipeline.current_stage.as_deref().unwrap_or("-"))),
            label: label.width(),
            time: times.iter().map(|t| text::cells(t)).max().unwrap_or(0),
            cost: cost_col.width(),
        };
        Shown {
            needs,
            times,
            costs,
            cost_col,
            label,
        }
    }
}

fn card_cells(
    c: &Card,
    shown: &Shown,
    w: &Widths,
    t: &Theme,
    needle: &[char],
    i: usize,
) -> Vec<Cell<'static>> {
    let p = &c.pipeline;
    let stage = p.current_stage.as_deref().unwrap_or("-");
    let time = shown.times.get(i).map_or("-", String::as_str);
    let cost = shown
        .cost_col
        .cell(shown.costs.get(i).map_or("-", String::as_str));
    // Bold and underlined, no colour: legible in every theme (mono too) and on the
    // selected row's colours.
    let mark = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
    vec![
        Cell::from(highlighted(
            cut_id(&p.card_id, w.id),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(c.title().unwrap_or(""), w.title),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(p.status.as_str(), w.status),
            needle,
            status_style(t, p.status),
            mark,
        )),
        Cell::from(highlighted(
            text::fit(stage, w.stage),
            needle,
            Style::default(),
            mark,
        )),
        Cell::from(Span::styled(
            text::fit(&progress_cell(c, w.bar, &shown.label), w.progress()),
            t.bar,
        )),
        Cell::from(text::pad_left(time, w.time)),
        Cell::from(text::pad_left(&cost, w.cost)),
    ]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        Needs {
            id: 8,
            id_distinct: 6,
            title: 30,
            status: 9,
            stage: 11,
            label: 7,
            time: 5,
            cost: 5,
        }
    }

    fn total(w: &Widths) -> usize {
        let gaps = w.shown().iter().filter(|s| **s).count() - 1;
        w.columns().iter().sum::<usize>() + gaps
    }

    #[test]
    fn the_columns_fill_the_width_exactly() {
        for inner in [58, 78, 100, 158, 218] {
            let w = plan(inner, &needs());
            assert_eq!(total(&w), inner, "{inner}: {w:?}");
        }
    }

    #[test]
    fn the_title_takes_the_spare_width() {
        let narrow = plan(78, &needs());
        let wide = plan(218, &needs());
        assert_eq!(wide.id, 8);
        assert_eq!(wide.stage, 11);
        assert_eq!(wide.status, narrow.status);
        assert!(wide.title > narrow.title + 100, "{wide:?}");
    }

    #[test]
    fn short_columns_are_sized_from_their_content() {
        let mut n = needs();
        n.status = "running".len();
        n.time = 6;
        n.cost = 9;
        let w = plan(158, &n);
        assert_eq!(w.status, 7);
        assert_eq!(w.time, 6);
        assert_eq!(w.cost, 9);
        // Headers still fit over narrow content.
        n.time = 2;
        assert_eq!(plan(158, &n).time, "TIME".len());
    }

    #[test]
    fn ids_are_whole_at_80_columns() {
        let w = plan(78, &needs());
        assert_eq!(w.id, 8, "{w:?}");
        assert!(w.title >= TITLE_MIN, "{w:?}");
    }

    #[test]
    fn the_stage_column_goes_before_ids_are_cut() {
        let mut n = needs();
        n.id = 11;
        n.status = 7;
        n.cost = 9;
        n.time = 4;
        let w = plan(58, &n);
        assert_eq!(w.stage, 0, "{w:?}");
        assert_eq!(w.id, 11, "{w:?}");
        assert!(w.title >= TITLE_MIN, "{w:?}");
        assert_eq!(total(&w), 58, "{w:?}");
        assert!(plan(78, &n).stage >= 11, "kept where it fits");
    }

    #[test]
    fn at_the_minimum_width_ids_stay_distinct_and_figures_whole() {
        let mut n = needs();
        n.id = 20;
        n.id_distinct = 12;
        let w = plan(58, &n);
        assert_eq!(total(&w), 58, "{w:?}");
        assert!(w.id >= 12, "{w:?}");
        assert_eq!((w.time, w.cost, w.label), (5, 5, 7), "{w:?}");
        assert!(w.bar >= 3, "{w:?}");
    }

    #[test]
    fn a_cut_id_keeps_its_start_and_end() {
        assert_eq!(cut_id("sim-42-000551", 9), "sim…00551");
        assert_eq!(text::cells(&cut_id("sim-42-000551", 9)), 9);
        assert_eq!(cut_id("card-101", 8), "card-101");
        for w in 0..16 {
            assert!(text::cells(&cut_id("日本語-🇫🇷-👨\u{200D}👩\u{200D}👧-0551", w)) <= w);
        }
    }

    #[test]
    fn the_distinct_width_tells_every_shown_id_apart() {
        let ids = ["sim-42-000551", "sim-42-000552", "sim-42-000553"];
        let w = distinct_width(&ids, 4);
        let cut: std::collections::HashSet<String> = ids.iter().map(|i| cut_id(i, w)).collect();
        assert_eq!(cut.len(), 3, "{w}");
        assert!(w < 13, "{w}: narrower than the full ids");
        let narrower: std::collections::HashSet<String> =
            ids.iter().map(|i| cut_id(i, w - 1)).collect();
        assert!(w == 4 || narrower.len() < 3, "{w} is the narrowest");
        assert_eq!(distinct_width(&[], 6), 0);
    }

    #[test]
    fn emoji_ids_are_measured_by_cluster() {
        let ids = ["🇫🇷-1", "👨\u{200D}👩\u{200D}👧-2"];
        let full = ids.iter().map(|i| text::width(i)).max().unwrap();
        assert_eq!(full, 4);
        assert!(distinct_width(&ids, 1) <= full);
    }
}
