//! The rate-limit panel: per limiter key, requests and tokens used of the limit in the
//! current window, each with its own bar, coloured by the headroom left.
//!
//! Key names are shown whole (wrapped onto a second line when the panel is narrow), because
//! `openai:gpt-4o` and `openai:gpt-4o-mini` are different limits that a cut name makes look
//! alike. Every usage line has one layout, `req ███░░ 45/100  45%`, with the bars of one length
//! and the figures right-aligned across entries. A window whose limit nothing names says so in
//! words, with no bar and no ratio. Entries that do not fit end the panel with `+N more` and
//! their names.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_segmentation::UnicodeSegmentation;

use crate::limiter::LimitUsage;
use crate::tui::app::App;
use crate::{format, text};

/// Longest bar drawn: longer says nothing more and pushes the figures away.
const BAR_MAX: usize = 20;
/// Cells of `req ` and `tok `.
const KIND_W: usize = 4;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(snap) = app.shown() else {
        frame.render_widget(super::panel(app, " Rate limits "), area);
        return;
    };
    // One window for all (the usual case): said once, in the title, leaving the entries room.
    let shared_window = snap
        .limits
        .first()
        .map(|l| l.window_seconds)
        .filter(|w| snap.limits.iter().all(|l| l.window_seconds == *w));
    let room = area.width.saturating_sub(2) as usize;
    let title = match shared_window {
        Some(w) => {
            let w = format::window(w);
            [
                format!(" Rate limits · per {w} "),
                format!(" Rate limits /{w} "),
                format!(" Limits /{w} "),
            ]
            .into_iter()
            .find(|t| text::cells(t) <= room)
            .unwrap_or_else(|| format!(" /{w} "))
        }
        None => " Rate limits ".into(),
    };
    let block = super::panel(app, title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    if snap.limits.is_empty() {
        frame.render_widget(
            Paragraph::new(vec![
                Line::from(Span::styled("no rate-limit windows", t.dim)),
                Line::from(Span::styled(
                    text::fit("(none registered or found under the prefix)", w),
                    t.dim,
                )),
            ]),
            inner,
        );
        return;
    }
    // The keys closest to their limit first: that is what the panel is for.
    let mut sorted: Vec<&LimitUsage> = snap.limits.iter().collect();
    sorted.sort_by(|a, b| pressure(b).total_cmp(&pressure(a)).then(a.key.cmp(&b.key)));
    // How many entries fit depends only on their line counts; the bars and figures are then
    // sized from the entries shown, not from ones left out.
    let height = inner.height as usize;
    let own_window = shared_window.is_none();
    let counts: Vec<usize> = sorted
        .iter()
        .map(|l| entry_height(l, w, own_window))
        .collect();
    // A line per key for its refusals and waits, only where every key still fits with it:
    // which keys are near their limit matters more than what they refused.
    let with_activity = sorted.iter().any(|l| l.activity.is_some())
        && counts.iter().sum::<usize>() + counts.len() <= height;
    let counts: Vec<usize> = counts
        .into_iter()
        .map(|n| n + usize::from(with_activity))
        .collect();
    let mut used = 0;
    let mut shown = 0;
    for (i, n) in counts.iter().enumerate() {
        let last = i + 1 == counts.len();
        // Room for this entry, and for the "+N more" line unless this is the last entry.
        if used + n + usize::from(!last) > height {
            break;
        }
        used += n;
        shown += 1;
    }
    let layout = UsageLayout::fit(&sorted[..shown.max(1).min(sorted.len())], w);
    let mut lines: Vec<Line> = Vec::with_capacity(height);
    for l in &sorted[..shown] {
        lines.extend(entry_lines(app, l, &layout, w, own_window));
        if with_activity {
            lines.push(activity_line(app, l, w));
        }
    }
    if shown < sorted.len() {
        let rest: Vec<String> = sorted[shown..]
            .iter()
            .map(|l| text::sanitize(&name(l)).into_owned())
            .collect();
        lines.truncate(height.saturating_sub(1));
        // The names of what is left out, over whatever lines are left, the last one cut.
        let room = height.saturating_sub(lines.len()).max(1);
        let parts: Vec<String> = std::iter::once(format!("+{} more: ", rest.len()))
            .chain(rest.iter().enumerate().map(|(i, n)| {
                if i + 1 < rest.len() {
                    format!("{n}, ")
                } else {
                    n.clone()
                }
            }))
            .collect();
        let mut more: Vec<String> = wrap_parts(parts.iter().map(String::as_str), w.max(1))
            .into_iter()
            .map(|m| m.trim_start().to_owned())
            .collect();
        if more.len() > room {
            let cut_last = format!("{}{}", more[room - 1], more[room]);
            more.truncate(room);
            more[room - 1] = text::fit(&cut_last, w);
        }
        lines.extend(more.into_iter().map(|m| Line::from(Span::styled(m, t.dim))));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `refused 3 · waited 1 in 60s`: what the limiters did with the key over the buckets covering
/// its window (the metrics' time buckets), or that no bucket names it (Python limiters count
/// nothing).
pub(super) fn activity_label(l: &LimitUsage) -> String {
    match l.activity {
        Some(a) => format!(
            "refused {} · waited {} in {}",
            format::count(a.refused),
            format::count(a.waited),
            format::window(a.over_seconds as f64)
        ),
        None => "refusals not counted (no history)".to_owned(),
    }
}

fn activity_line<'a>(app: &App, l: &LimitUsage, w: usize) -> Line<'a> {
    let t = &app.theme;
    let style = match l.activity {
        Some(a) if a.refused > 0 || a.waited > 0 => t.warn,
        _ => t.dim,
    };
    Line::from(vec![
        Span::raw("    "),
        Span::styled(text::fit(&activity_label(l), w.saturating_sub(4)), style),
    ])
}

/// `resource:identifier`, the name a limit is known by.
fn name(l: &LimitUsage) -> String {
    format!("{}:{}", l.resource, l.identifier)
}

/// The usage lines' shared layout: one bar length and one figure width for every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UsageLayout {
    bar: usize,
    figures: usize,
    percent: usize,
}

impl UsageLayout {
    fn fit(limits: &[&LimitUsage], w: usize) -> Self {
        let figures = limits
            .iter()
            .flat_map(|l| {
                [
                    l.requests_limit.map(|lim| used_of(l.requests_used, lim)),
                    l.tokens_used
                        .zip(l.tokens_limit)
                        .map(|(u, lim)| used_of(u, lim)),
                ]
            })
            .flatten()
            .map(|s| s.len())
            .max()
            .unwrap_or(0);
        // "100%"; the first to go when the panel is narrow, as the bar shows the same.
        let mut percent = 4;
        let bar_for = |percent: usize| {
            let extra = if percent > 0 { 1 + percent } else { 0 };
            w.saturating_sub(KIND_W + 1 + figures + extra).min(BAR_MAX)
        };
        if bar_for(percent) < 3 {
            percent = 0;
        }
        let bar = bar_for(percent);
        Self {
            bar: if bar >= 3 { bar } else { 0 },
            figures,
            percent,
        }
    }
}

fn used_of(used: u64, limit: u64) -> String {
    format!("{}/{}", format::count(used), format::count(limit))
}

/// Lines [`entry_lines`] gives an entry.
fn entry_height(l: &LimitUsage, w: usize, own_window: bool) -> usize {
    let name_lines = wrap(&name(l), w.max(1));
    let last_w = name_lines.last().map_or(0, |n| text::cells(n));
    let window_w = if own_window {
        format!("per {}", format::window(l.window_seconds)).len()
    } else {
        0
    };
    let window_line = usize::from(own_window && last_w + 1 + window_w > w);
    name_lines.len() + window_line + 1 + usize::from(l.tokens_used.is_some())
}

/// One entry: its name (whole, wrapped when it must be) and window, then a usage line for
/// requests and, when tokens are limited, one for tokens.
fn entry_lines<'a>(
    app: &App,
    l: &LimitUsage,
    layout: &UsageLayout,
    w: usize,
    own_window: bool,
) -> Vec<Line<'a>> {
    let t = &app.theme;
    let window = if own_window {
        format!("per {}", format::window(l.window_seconds))
    } else {
        String::new()
    };
    let mut lines: Vec<Line> = Vec::with_capacity(3);
    let mut name_lines = wrap(&name(l), w.max(1));
    let last = name_lines.pop().unwrap_or_default();
    lines.extend(
        name_lines
            .into_iter()
            .map(|n| Line::from(Span::styled(n, t.text))),
    );
    let used = text::cells(&last);
    if window.is_empty() {
        lines.push(Line::from(Span::styled(last, t.text)));
    } else if used + 1 + window.len() <= w {
        lines.push(Line::from(vec![
            Span::styled(last, t.text),
            Span::raw(" ".repeat(w - used - window.len())),
            Span::styled(window, t.dim),
        ]));
    } else {
        lines.push(Line::from(Span::styled(last, t.text)));
        lines.push(Line::from(Span::styled(text::pad_left(&window, w), t.dim)));
    }
    lines.push(usage_line(
        app,
        "req",
        l.requests_used,
        l.requests_limit,
        layout,
    ));
    if let Some(u) = l.tokens_used {
        lines.push(usage_line(app, "tok", u, l.tokens_limit, layout));
    }
    lines
}

/// `req ███░░░ 45/100  45%`, or `req 7 used, limit unknown` when nothing names the limit.
fn usage_line<'a>(
    app: &App,
    kind: &str,
    used: u64,
    limit: Option<u64>,
    layout: &UsageLayout,
) -> Line<'a> {
    let t = &app.theme;
    let head = Span::styled(format!("{kind} "), t.dim);
    let Some(limit) = limit else {
        return Line::from(vec![
            head,
            Span::styled(format!("{} used", format::count(used)), t.text),
            Span::styled(", limit unknown", t.warn),
        ]);
    };
    let r = ratio(used, limit);
    let style: Style = super::headroom_style(app, r);
    let mut spans = vec![head];
    if layout.bar > 0 {
        spans.push(Span::styled(super::bar(r, layout.bar), style));
        spans.push(Span::raw(" "));
    }
    spans.push(Span::styled(
        text::pad_left(&used_of(used, limit), layout.figures),
        style,
    ));
    if layout.percent > 0 {
        spans.push(Span::styled(
            format!(" {}", text::pad_left(&percent(r), layout.percent)),
            style,
        ));
    }
    Line::from(spans)
}

/// Whole percent, as the bar shows it: `45%`.
fn percent(r: f64) -> String {
    format!("{:.0}%", (r * 100.0).clamp(0.0, 9999.0))
}

/// `s` (sanitized) cut into lines of at most `w` cells, nothing of it dropped: after a `:`
/// (`anthropic:` / `claude-sonnet-4-5:default`) unless that takes more lines than cutting
/// anywhere, by whole grapheme clusters.
fn wrap(s: &str, w: usize) -> Vec<String> {
    let clean = text::sanitize(s);
    let at_colons = wrap_parts(clean.split_inclusive(':'), w);
    let anywhere = wrap_parts(std::iter::once(clean.as_ref()), w);
    if at_colons.len() <= anywhere.len() {
        at_colons
    } else {
        anywhere
    }
}

/// `parts` packed into lines of `w` cells, a part that does not fit the current line starting
/// the next one, a part wider than a line cut by cluster.
fn wrap_parts<'a>(parts: impl Iterator<Item = &'a str>, w: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut used = 0;
    for part in parts {
        if used > 0 && used + text::cells(part) > w {
            lines.push(String::new());
            used = 0;
        }
        for g in part.graphemes(true) {
            let gw = text::cluster_width(g);
            if used + gw > w && used > 0 {
                lines.push(String::new());
                used = 0;
            }
            if let Some(l) = lines.last_mut() {
                l.push_str(g);
            }
            used += gw;
        }
    }
    lines
}

fn ratio(used: u64, limit: u64) -> f64 {
    if limit == 0 {
        1.0
    } else {
        used as f64 / limit as f64
    }
}

fn pressure(l: &LimitUsage) -> f64 {
    // An unknown limit sorts last: nothing says how close it is.
    let req = l
        .requests_limit
        .map_or(-1.0, |limit| ratio(l.requests_used, limit));
    match (l.tokens_used, l.tokens_limit) {
        (Some(u), Some(lim)) => req.max(ratio(u, lim)),
        _ => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_wraps_whole() {
        let name = "anthropic:claude-sonnet-4-5:default";
        let lines = wrap(name, 26);
        assert_eq!(lines.concat(), name);
        assert_eq!(lines[0], "anthropic:", "breaks after a colon");
        // Where colons would take a line more, it cuts anywhere instead.
        assert_eq!(wrap(name, 22).len(), 2);
        assert_eq!(wrap(name, 22).concat(), name);
        assert!(lines.iter().all(|l| text::cells(l) <= 26), "{lines:?}");
        assert_eq!(wrap("short", 16), vec!["short".to_owned()]);
    }

    #[test]
    fn wide_and_emoji_names_wrap_by_cluster() {
        let name = "日本語👨\u{200D}👩\u{200D}👧🇫🇷x";
        let lines = wrap(name, 3);
        assert_eq!(lines.concat(), name);
        assert!(lines.iter().all(|l| text::cells(l) <= 3), "{lines:?}");
    }

    fn usage(used: u64, limit: Option<u64>, tokens: Option<(u64, u64)>) -> LimitUsage {
        LimitUsage {
            key: "k".into(),
            resource: "r".into(),
            identifier: "i".into(),
            window_seconds: 60.0,
            requests_used: used,
            requests_limit: limit,
            tokens_used: tokens.map(|t| t.0),
            tokens_limit: tokens.map(|t| t.1),
            limit_origin: Default::default(),
            activity: None,
        }
    }

    #[test]
    fn every_entry_shares_one_bar_length_and_figure_width() {
        let a = usage(45, Some(100), Some((12_000, 40_000)));
        let b = usage(3, Some(5), None);
        let layout = UsageLayout::fit(&[&a, &b], 40);
        assert_eq!(layout.figures, "12.0k/40.0k".len());
        assert_eq!(layout.bar, 40 - KIND_W - 1 - layout.figures - 1 - 4);
        let narrow = UsageLayout::fit(&[&a, &b], 20);
        assert_eq!(narrow.percent, 0, "the percent goes before the bar does");
        assert_eq!(narrow.bar, 20 - KIND_W - 1 - layout.figures);
        let tiny = UsageLayout::fit(&[&a, &b], 16);
        assert_eq!(tiny.bar, 0, "no bar shorter than 3 cells");
    }

    #[test]
    fn an_unknown_limit_sorts_last() {
        let known = usage(1, Some(100), None);
        let unknown = usage(99, None, None);
        assert!(pressure(&known) > pressure(&unknown));
    }
}
