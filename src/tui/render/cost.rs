//! The spend panel: LLM spend per minute (or hour) over the charts' window, one line per
//! provider, from the metrics' time buckets (or the polls since start when Redis holds none);
//! the window's and the all-time LLM spend, what completed pipelines cost, and totals per
//! provider and per model. Every figure says what it counts and over which span.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::timechart;
use crate::metrics::Breakdown;
use crate::tui::app::App;
use crate::tui::app::charts;
use crate::{format, text};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let title = format!(" LLM spend (USD) · {} [-/+] ", app.window.label());
    let block = super::panel(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(snap) = app.shown() else {
        return;
    };
    let m = &snap.metrics;
    let w = inner.width as usize;
    // Below 8 rows the window's total and the legend share one line.
    let roomy = inner.height >= 8;
    let breakdown_rows: u16 = if inner.height >= 14 { 4 } else { 0 };
    let [summary, legend, chart, pipelines, rest] = Layout::vertical([
        Constraint::Length(u16::from(roomy)),
        Constraint::Length(1),
        Constraint::Min(timechart::MIN_HEIGHT),
        Constraint::Length(1),
        Constraint::Length(breakdown_rows),
    ])
    .areas(inner);

    let Some(series) = app.chart_series() else {
        frame.render_widget(
            Paragraph::new(Span::styled(
                text::fit(&format!("reading the last {}…", app.window.label()), w),
                t.dim,
            )),
            legend,
        );
        return;
    };
    let data = charts::spend(series, app.window, app.shown_history());
    let window_spend: f64 = data
        .lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .sum();
    let since_start = data.source == charts::ChartSource::SinceStart;
    let source = Span::styled(timechart::source_label(&data), t.dim);
    // Roomy: a line for the window's total (or where the data comes from), one for the legend
    // (each line's name in its colour, with its spend over the span). Tight: one line.
    let spans = if roomy {
        let head = if since_start {
            vec![source]
        } else {
            vec![
                Span::styled(format!("last {} ", app.window.label()), t.dim),
                Span::styled(format::usd(window_spend), t.text),
                Span::styled(format!(" · {}", data.per), t.dim),
            ]
        };
        frame.render_widget(Paragraph::new(fit_spans(head, w)), summary);
        Vec::new()
    } else if since_start {
        vec![source]
    } else {
        vec![
            Span::styled(format!("last {} ", app.window.label()), t.dim),
            Span::styled(format::usd(window_spend), t.text),
            Span::styled(": ", t.dim),
        ]
    };
    let (mut full, mut short) = (Vec::new(), Vec::new());
    if roomy || !since_start {
        for (i, l) in data.lines.iter().enumerate() {
            let sum: f64 = l.points.iter().map(|p| p.1).sum();
            let name = text::sanitize(&l.name);
            let style = timechart::line_style(app, i);
            full.push(Span::styled(
                format!("━ {name} {} ", format::usd(sum)),
                style,
            ));
            // Where every line's spend cannot fit, every line's name still tells the colours.
            short.push(Span::styled(format!("━ {name} "), style));
        }
    }
    // Tight, the window's name goes before a line's name does (the title names the window).
    let heads = match spans.as_slice() {
        [_, total, colon] if !since_start && !roomy => {
            vec![spans.clone(), vec![total.clone(), colon.clone()]]
        }
        _ => vec![spans],
    };
    let spans = best_fit(&heads, &[full, short], w, t.dim);
    frame.render_widget(Paragraph::new(fit_spans(spans, w)), legend);
    timechart::draw(frame, app, chart, &data, None, &|v| format::usd(v));

    // All-time totals, each saying what it counts: every LLM request's spend, and what the
    // completed pipelines cost (their own figure, which need not match).
    let p = &m.pipelines;
    let (llm, done, done_cost) = (
        format::usd(m.llm.total_cost),
        format::count(p.completed.max(0) as u64),
        format::usd(p.total_cost),
    );
    // The longest wording that fits, so the figures are never the part that is cut.
    let totals = [
        format!("all time: LLM {llm} · {done} pipelines completed {done_cost}"),
        format!("all time: LLM {llm} · {done} completed {done_cost}"),
        format!("all time LLM {llm} · {done} done {done_cost}"),
        format!("LLM {llm} · {done} done {done_cost}"),
        format!("LLM {llm} · {done} done"),
        format!("LLM {llm}"),
    ];
    let totals = totals
        .iter()
        .find(|s| text::width(s) <= w)
        .unwrap_or(&totals[totals.len() - 1]);
    frame.render_widget(
        Paragraph::new(Span::styled(text::fit(totals, w), t.dim)),
        pipelines,
    );

    if breakdown_rows > 0 {
        let heads = [
            vec![Span::styled("per provider (all time): ", t.column)],
            vec![Span::styled("providers: ", t.column)],
        ];
        let spans = if m.providers.is_empty() {
            let mut spans = heads[0].clone();
            spans.push(Span::styled("none yet", t.text));
            spans
        } else {
            let last = m.providers.len() - 1;
            let items = m
                .providers
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let sep = if i < last { " · " } else { "" };
                    let name = text::sanitize(&b.name);
                    Span::styled(format!("{name} {}{sep}", format::usd(b.cost)), t.text)
                })
                .collect();
            best_fit(&heads, &[items], w, t.dim)
        };
        let mut lines = vec![Line::from(spans)];
        lines.extend(list(app, &m.models, 2, w, "per model (all time)"));
        let lines: Vec<Line> = lines.into_iter().map(|l| fit_line(l, w)).collect();
        frame.render_widget(Paragraph::new(lines), rest);
    }
}

/// Cuts a line of spans to `w` columns.
fn fit_spans(spans: Vec<Span<'_>>, w: usize) -> Line<'_> {
    fit_line(Line::from(spans), w)
}

fn fit_line(line: Line<'_>, w: usize) -> Line<'_> {
    let mut left = w;
    let mut out = Vec::new();
    for s in line.spans {
        if left == 0 {
            break;
        }
        let n = text::width(&s.content);
        if n <= left {
            left -= n;
            out.push(s);
        } else {
            out.push(Span::styled(text::fit(&s.content, left), s.style));
            left = 0;
        }
    }
    Line::from(out)
}

fn spans_width(spans: &[Span<'_>]) -> usize {
    spans.iter().map(|s| text::width(&s.content)).sum()
}

/// The head and item wording (each in order of preference) that leaves out the fewest items in
/// `w` columns, earlier choices winning ties: a shorter head or shorter items come before an
/// entry is left out.
fn best_fit<'a>(
    heads: &[Vec<Span<'a>>],
    item_sets: &[Vec<Span<'a>>],
    w: usize,
    more_style: Style,
) -> Vec<Span<'a>> {
    let mut best: Option<(usize, Vec<Span<'a>>)> = None;
    for items in item_sets {
        for head in heads {
            let (fitted, hidden) = fit_items(spans_width(head), items.clone(), w, more_style);
            if best.as_ref().is_none_or(|(h, _)| hidden < *h) {
                let mut spans = head.clone();
                spans.extend(fitted);
                best = Some((hidden, spans));
            }
        }
    }
    best.map(|(_, spans)| spans).unwrap_or_default()
}

/// As many whole `items` as fit in `w` columns after `used`, then `+N more` for the rest, so
/// that no entry of a list is cut or silently left out; with the number left out.
fn fit_items<'a>(
    used: usize,
    items: Vec<Span<'a>>,
    w: usize,
    more_style: Style,
) -> (Vec<Span<'a>>, usize) {
    let total = items.len();
    let widths: Vec<usize> = items.iter().map(|s| text::width(&s.content)).collect();
    let more = |n: usize| format!("+{n} more");
    let mut left = w.saturating_sub(used);
    let mut out = Vec::new();
    for (i, (item, iw)) in items.into_iter().zip(&widths).enumerate() {
        let all_rest_fit = widths[i..].iter().sum::<usize>() <= left;
        // Unless everything left fits, this item must leave room for the "+N more" after it.
        if !all_rest_fit && iw + text::width(&more(total - i - 1)) > left {
            // In a narrow panel "+3" says it where "+3 more" would be cut.
            let rest = more(total - i);
            let rest = if text::width(&rest) <= left {
                rest
            } else {
                format!("+{}", total - i)
            };
            out.push(Span::styled(rest, more_style));
            return (out, total - i);
        }
        left -= iw;
        out.push(item);
    }
    (out, 0)
}

fn list<'a>(app: &App, items: &[Breakdown], n: usize, w: usize, head: &str) -> Vec<Line<'a>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(head.to_owned(), t.column))];
    if items.is_empty() {
        lines.push(Line::from(Span::styled("  none yet", t.dim)));
        return lines;
    }
    let more = items.len().saturating_sub(n);
    let shown = if more > 0 { n - 1 } else { n };
    lines.extend(items.iter().take(shown).map(|b| {
        let right = format!(
            " {} · {} req",
            format::usd(b.cost),
            format::count(b.requests.max(0) as u64)
        );
        let name_w = w.saturating_sub(right.chars().count() + 2);
        Line::from(vec![
            Span::raw("  "),
            Span::styled(text::pad(&b.name, name_w), t.text),
            Span::styled(right, t.dim),
        ])
    }));
    if more > 0 {
        lines.push(Line::from(Span::styled(
            format!("  +{} more", items.len() - shown),
            t.dim,
        )));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(spans: &[Span<'_>]) -> Vec<String> {
        spans.iter().map(|s| s.content.to_string()).collect()
    }

    fn items(names: &[&str]) -> Vec<Span<'static>> {
        names.iter().map(|n| Span::raw(n.to_string())).collect()
    }

    #[test]
    fn a_list_that_fits_is_shown_whole() {
        let (out, hidden) = fit_items(
            0,
            items(&["openai $1 · ", "anthropic $2"]),
            40,
            Style::new(),
        );
        assert_eq!(texts(&out), ["openai $1 · ", "anthropic $2"]);
        assert_eq!(hidden, 0);
    }

    #[test]
    fn a_list_that_does_not_fit_ends_with_how_many_more() {
        let names = items(&["openai $1 · ", "anthropic $2 · ", "local $0"]);
        let (out, hidden) = fit_items(5, names, 28, Style::new());
        assert_eq!(texts(&out), ["openai $1 · ", "+2 more"]);
        assert_eq!(hidden, 2);
        assert!(5 + spans_width(&out) <= 28);
    }

    #[test]
    fn a_narrow_list_says_how_many_more_in_short() {
        let (out, hidden) = fit_items(0, items(&["openai $1 · ", "anthropic $2"]), 5, Style::new());
        assert_eq!(texts(&out), ["+2"]);
        assert_eq!(hidden, 2);
    }

    #[test]
    fn the_last_item_needs_no_room_for_more() {
        // 12 + 12 = 24 columns: both fit exactly, no "+1 more" in their place.
        let (out, _) = fit_items(
            0,
            items(&["openai $1 · ", "anthropic $2"]),
            24,
            Style::new(),
        );
        assert_eq!(texts(&out), ["openai $1 · ", "anthropic $2"]);
    }

    #[test]
    fn a_shorter_wording_comes_before_leaving_an_entry_out() {
        let heads = [
            items(&["per provider (all time): "]),
            items(&["providers: "]),
        ];
        let out = best_fit(
            &heads,
            &[items(&["openai $9.50 · ", "anthropic $3.39"])],
            41,
            Style::new(),
        );
        assert_eq!(
            texts(&out),
            ["providers: ", "openai $9.50 · ", "anthropic $3.39"]
        );
    }

    #[test]
    fn the_preferred_wording_wins_when_it_fits() {
        let heads = [
            items(&["per provider (all time): "]),
            items(&["providers: "]),
        ];
        let out = best_fit(&heads, &[items(&["openai $9.50"])], 41, Style::new());
        assert_eq!(texts(&out), ["per provider (all time): ", "openai $9.50"]);
    }
}
