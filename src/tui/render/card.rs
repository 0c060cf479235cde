//! The drilldown of one card: its summary and metadata, every stage in order (status,
//! progress, message, start, duration) and its events, newest first.
//!
//! Stage start and duration are not in the Python stage document (it keeps only the last
//! update's timestamp), so they are derived from the events: the first `running` update
//! starts a stage, the update that ends it (completed, failed, skipped) stops it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::model::{PipelineEvent, StageStatus};
use crate::tui::app::{App, View};
use crate::tui::theme::Theme;
use crate::{format, text};

/// When a stage started and ended, as far as its events tell.
type StageSpan = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// (start, end) per stage name, from events in any order.
fn stage_times(events: &[PipelineEvent]) -> HashMap<&str, StageSpan> {
    let mut out: HashMap<&str, StageSpan> = HashMap::new();
    for e in events {
        if let PipelineEvent::StageUpdated {
            stage_name,
            status,
            timestamp,
            ..
        } = e
        {
            let Some(ts) = format::utc(timestamp) else {
                continue;
            };
            let entry = out.entry(stage_name.as_str()).or_default();
            match status {
                StageStatus::Running => {
                    entry.0 = Some(entry.0.map_or(ts, |s| s.min(ts)));
                }
                StageStatus::Completed | StageStatus::Failed | StageStatus::Skipped => {
                    entry.1 = Some(entry.1.map_or(ts, |s| s.max(ts)));
                }
                StageStatus::Pending => {}
            }
        }
    }
    out
}

fn stage_style(t: &Theme, s: StageStatus) -> ratatui::style::Style {
    match s {
        StageStatus::Pending => t.dim,
        StageStatus::Running => t.busy,
        StageStatus::Completed => t.ok,
        StageStatus::Failed => t.bad,
        StageStatus::Skipped => t.dim,
    }
}

pub fn render(frame: &mut Frame, app: &mut App, area: Rect) {
    let (events, stored) = app.open_card_events();
    let t = app.theme.clone();
    let now = app.now;
    let Some((card, present)) = app.open_card().map(|(c, p)| (c.clone(), p)) else {
        let id = match &app.view {
            View::Card(v) => v.card_id.clone(),
            _ => String::new(),
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!("card {} is not in Redis", text::sanitize(&id)),
                t.bad,
            )),
            area,
        );
        return;
    };
    let p = &card.pipeline;
    let stages_h = (card.stages.len() as u16 + 3)
        .min(area.height.saturating_sub(7) / 2)
        .max(4);
    let [info, stages_area, events_area] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Length(stages_h),
        Constraint::Min(3),
    ])
    .areas(area);

    // ---- summary ----
    let title = format!(
        " Card {}{} ",
        text::fit(&p.card_id, 40),
        card.title()
            .map(|s| format!(" · {}", text::fit(s, 60)))
            .unwrap_or_default()
    );
    let block = super::panel(app, title);
    let inner = block.inner(info);
    frame.render_widget(block, info);
    let w = inner.width as usize;
    let mut status_spans = vec![
        Span::styled("status ", t.dim),
        Span::styled(p.status.as_str(), super::cards::status_style(&t, p.status)),
    ];
    if !present {
        status_spans.push(Span::styled(
            " (expired from Redis; last copy shown)",
            t.bad,
        ));
    }
    status_spans.push(Span::styled("   stage ", t.dim));
    status_spans.push(Span::styled(
        format!(
            "{} ({}/{} done)",
            text::fit(p.current_stage.as_deref().unwrap_or("-"), 30),
            p.completed_stages,
            p.total_stages
        ),
        t.text,
    ));
    // The progress goes where the line has room: a 12-cell bar, shorter or none when narrow,
    // its percent always; the running stage's own percent when there is room for it too.
    let head_w: usize = status_spans.iter().map(|s| text::cells(&s.content)).sum();
    let share = format!(" {}", format::percent(card.progress()));
    let stage_pct = card
        .running_percent()
        .map(|pct| format!(" (stage {pct}%)"))
        .unwrap_or_default();
    let mut room = w.saturating_sub(head_w + 3 + share.len());
    let stage_pct = if room >= stage_pct.len() + 3 {
        room -= stage_pct.len();
        stage_pct
    } else {
        String::new()
    };
    let bar_w = room.min(12);
    status_spans.push(Span::styled("   ", t.dim));
    if bar_w >= 3 {
        status_spans.push(Span::styled(super::bar(card.progress(), bar_w), t.bar));
    }
    status_spans.push(Span::styled(share, t.text));
    if !stage_pct.is_empty() {
        status_spans.push(Span::styled(stage_pct, t.dim));
    }
    let elapsed = format::elapsed(p, now)
        .map(format::duration)
        .unwrap_or_else(|| "-".into());
    let mut times = Line::from(vec![
        Span::styled("started ", t.dim),
        Span::styled(
            format!("{} UTC", text::sanitize(&format::clock(&p.start_time))),
            t.text,
        ),
        Span::styled("   ended ", t.dim),
        Span::styled(
            p.end_time
                .as_deref()
                .map(|e| format!("{} UTC", text::sanitize(&format::clock(e))))
                .unwrap_or_else(|| "-".into()),
            t.text,
        ),
        Span::styled(
            if p.status.is_final() {
                "   took "
            } else {
                "   elapsed "
            },
            t.dim,
        ),
        Span::styled(elapsed, t.text),
        Span::styled("   cost ", t.dim),
        Span::styled(
            card.cost_usd.map(format::usd).unwrap_or_else(|| "-".into()),
            t.text,
        ),
    ]);
    if times.width() > w {
        // Narrow: the separators shrink before the cost (the last figure) would be cut.
        for span in &mut times.spans {
            if let Some(rest) = span.content.strip_prefix("   ") {
                span.content = format!(" {rest}").into();
            }
        }
    }
    let meta: Vec<String> = p
        .metadata
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={v}")
        })
        .collect();
    let meta_line = Line::from(vec![
        Span::styled("metadata ", t.dim),
        Span::styled(
            text::fit(
                &if meta.is_empty() {
                    "-".to_owned()
                } else {
                    meta.join(" · ")
                },
                w.saturating_sub(9),
            ),
            t.text,
        ),
    ]);
    frame.render_widget(
        Paragraph::new(vec![Line::from(status_spans), times, meta_line]),
        inner,
    );

    // ---- stages ----
    let times_by_stage = stage_times(&events);
    let block = super::panel(app, format!(" Stages ({}) ", card.stages.len()));
    let inner = block.inner(stages_area);
    frame.render_widget(block, stages_area);
    let w = inner.width as usize;
    let (name_w, status_w, prog_w, start_w, dur_w) = if w >= 120 {
        (24usize, 10usize, 22usize, 9usize, 8usize)
    } else {
        (14, 9, 12, 8, 8)
    };
    // Narrow: the progress column gives way first (down to a 5-cell bar and its percent) so
    // that start and duration stay whole.
    let prog_w = prog_w.min(
        w.saturating_sub(3 + name_w + status_w + start_w + dur_w + 6)
            .max(10),
    );
    let msg_w = w.saturating_sub(3 + name_w + status_w + prog_w + start_w + dur_w + 6);
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "{} {} {} {} {} {} {}",
            text::pad("#", 3),
            text::pad("STAGE", name_w),
            text::pad("STATUS", status_w),
            text::pad("PROGRESS", prog_w),
            text::pad("START", start_w),
            text::pad("DURATION", dur_w),
            text::pad("MESSAGE", msg_w)
        ),
        t.column,
    ))];
    if card.stages.is_empty() {
        lines.push(Line::from(Span::styled("no stage reported yet", t.dim)));
    }
    let room = inner.height.saturating_sub(1) as usize;
    let skip = card.stages.len().saturating_sub(room); // keep the latest stages visible
    for (i, s) in card.stages.iter().enumerate().skip(skip) {
        let (start, end) = times_by_stage
            .get(s.stage_name.as_str())
            .copied()
            .unwrap_or((None, None));
        let end = end.or_else(|| {
            matches!(
                s.status,
                StageStatus::Completed | StageStatus::Failed | StageStatus::Skipped
            )
            .then(|| format::utc(&s.timestamp))
            .flatten()
        });
        let duration = match (start, end, s.status) {
            (Some(a), Some(b), _) => format::duration((b - a).num_milliseconds() as f64 / 1000.0),
            (Some(a), None, StageStatus::Running) => {
                format::duration((now - a).num_milliseconds() as f64 / 1000.0)
            }
            _ => "-".into(),
        };
        let ratio = match s.status {
            StageStatus::Completed | StageStatus::Skipped => 1.0,
            _ => s.progress_percent.unwrap_or(0).clamp(0, 100) as f64 / 100.0,
        };
        let pct = s
            .progress_percent
            .map(|p| format!(" {:>3}%", p.clamp(0, 100)))
            .unwrap_or_else(|| "     ".into());
        let bar_w = prog_w.saturating_sub(5);
        lines.push(Line::from(vec![
            Span::styled(text::pad(&(i + 1).to_string(), 3), t.dim),
            Span::raw(" "),
            Span::styled(text::pad(&s.stage_name, name_w), t.text),
            Span::raw(" "),
            Span::styled(
                text::pad(s.status.as_str(), status_w),
                stage_style(&t, s.status),
            ),
            Span::raw(" "),
            Span::styled(format!("{}{pct}", super::bar(ratio, bar_w)), t.bar),
            Span::raw(" "),
            Span::styled(
                text::pad(
                    &start
                        .map(|s| s.format("%H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into()),
                    start_w,
                ),
                t.text,
            ),
            Span::raw(" "),
            Span::styled(text::pad_left(&duration, dur_w), t.text),
            Span::raw(" "),
            Span::styled(text::fit(s.message.as_deref().unwrap_or(""), msg_w), t.text),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), inner);

    // ---- events ----
    let source = if stored {
        "stored history + live"
    } else {
        match &app.card_history {
            Some((_, Err(_))) => "history unavailable, seen live",
            Some((_, Ok(None))) => "no stored history, seen live",
            None => "loading history…, seen live",
            Some((_, Ok(Some(_)))) => "history",
        }
    };
    let block = super::panel(
        app,
        format!(" Events ({}, {source}, newest first) ", events.len()),
    );
    let inner = block.inner(events_area);
    frame.render_widget(block, events_area);
    let visible = inner.height as usize;
    let max_scroll = events.len().saturating_sub(visible);
    let scroll = match &mut app.view {
        View::Card(v) => {
            v.scroll = v.scroll.min(max_scroll);
            v.scroll
        }
        _ => 0,
    };
    let w = inner.width as usize;
    let mut lines = Vec::with_capacity(visible);
    if let Some((_, Err(e))) = &app.card_history {
        lines.push(Line::from(Span::styled(
            text::fit(&format!("history read failed: {e}"), w),
            t.bad,
        )));
    }
    if events.is_empty() {
        lines.push(Line::from(Span::styled("no events yet", t.dim)));
    }
    for e in events.iter().skip(scroll).take(visible) {
        lines.push(event_line(&t, e, w));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn event_line<'a>(t: &Theme, e: &PipelineEvent, w: usize) -> Line<'a> {
    let time = format::clock(e.timestamp());
    let (kind, style, detail) = match e {
        PipelineEvent::PipelineStarted { total_stages, .. } => {
            ("started", t.busy, format!("{total_stages} stages"))
        }
        PipelineEvent::StageUpdated {
            stage_name,
            status,
            progress_percent,
            message,
            ..
        } => (
            "stage",
            stage_style(t, *status),
            format!(
                "{stage_name} {status}{}{}",
                progress_percent
                    .map(|p| format!(" {p}%"))
                    .unwrap_or_default(),
                message
                    .as_deref()
                    .map(|m| format!(" · {m}"))
                    .unwrap_or_default()
            ),
        ),
        PipelineEvent::PipelineCompleted {
            status,
            duration_seconds,
            message,
            ..
        } => (
            "finished",
            super::cards::status_style(t, *status),
            format!(
                "{status}{}{}",
                duration_seconds
                    .map(|d| format!(" in {}", format::duration(d)))
                    .unwrap_or_default(),
                message
                    .as_deref()
                    .map(|m| format!(" · {m}"))
                    .unwrap_or_default()
            ),
        ),
    };
    let head = format!("{} {} ", text::pad(&time, 8), text::pad(kind, 8));
    let room = w.saturating_sub(text::cells(&head));
    Line::from(vec![
        Span::styled(text::fit(&head, w), t.dim),
        Span::styled(text::fit(&detail, room), style),
    ])
}
