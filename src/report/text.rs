//! The plain-text report of `artemis-top --once --format text`: the dashboard's sections as
//! aligned text for a terminal, a log or a pager. Every string from Redis is sanitized, like
//! on the screen, because it may hold escape sequences meant for a terminal.
//!
//! Columns are sized from what they show. A card id is never cut (it is what a reader copies
//! into the next command): an id too long for the table gets a line of its own, whole, and its
//! row follows with the id cell blank.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::format;
use crate::snapshot::Snapshot;
use crate::text;

/// The plain-text report of one snapshot. Every string from Redis is sanitized.
pub fn render(snap: &Snapshot, now: DateTime<Utc>) -> String {
    let mut o = String::new();
    let m = &snap.metrics;
    let _ = writeln!(
        o,
        "artemis-top report · {} UTC",
        snap.taken_at.format("%Y-%m-%d %H:%M:%S")
    );
    let _ = writeln!(
        o,
        "source: {} {} ({})",
        text::sanitize(&snap.source.backend),
        text::sanitize(&snap.source.endpoint),
        format::describe_conn(&snap.connection)
    );
    if let Some(r) = snap.health.refusal_at(snap.taken_at) {
        let _ = writeln!(
            o,
            "health: {} ({} since {} UTC)",
            text::sanitize(&r.label()),
            text::sanitize(&r.code),
            r.since.format("%H:%M:%S")
        );
    }

    // ---- cards ----
    let _ = writeln!(o, "\nCARDS ({})", snap.cards.len());
    if snap.cards.is_empty() {
        let _ = writeln!(o, "  none");
    } else {
        // Sized from the ids that fit inline; a longer one goes on its own line below.
        let id_w = snap
            .cards
            .iter()
            .map(|c| text::width(&c.pipeline.card_id))
            .filter(|&w| w <= ID_INLINE_MAX)
            .max()
            .unwrap_or(0)
            .max(text::cells("ID"));
        let title_w = col_width(snap.cards.iter().map(|c| c.title().unwrap_or("")), 5, 40);
        let stage_w = col_width(
            snap.cards
                .iter()
                .map(|c| c.pipeline.current_stage.as_deref().unwrap_or("-")),
            5,
            20,
        );
        // One money format, aligned on the decimal point like the dashboard's column.
        let costs: Vec<String> = snap
            .cards
            .iter()
            .map(|c| c.cost_usd.map(format::usd).unwrap_or_else(|| "-".into()))
            .collect();
        let cost_col = format::DecimalColumn::fit(costs.iter().map(String::as_str));
        let cost_w = cost_col.width().max(text::cells("COST"));
        let _ = writeln!(
            o,
            "  {} {} {} {} {} {} {}",
            text::pad("ID", id_w),
            text::pad("TITLE", title_w),
            text::pad("STATUS", 9),
            text::pad("STAGE", stage_w),
            text::pad("PROGRESS", 12),
            text::pad_left("TIME", 7),
            text::pad_left("COST", cost_w)
        );
        for (c, cost) in snap.cards.iter().zip(&costs) {
            let p = &c.pipeline;
            let mut prog = format!("{}/{}", p.completed_stages, p.total_stages);
            if let Some(pct) = c.running_percent() {
                let _ = write!(prog, " {pct}%");
            }
            let id = text::sanitize(&p.card_id);
            let id_cell = if text::cells(&id) > id_w {
                let _ = writeln!(o, "  {id}");
                " ".repeat(id_w)
            } else {
                text::pad(&p.card_id, id_w)
            };
            let _ = writeln!(
                o,
                "  {} {} {} {} {} {} {}",
                id_cell,
                text::pad(c.title().unwrap_or(""), title_w),
                text::pad(p.status.as_str(), 9),
                text::pad(p.current_stage.as_deref().unwrap_or("-"), stage_w),
                text::pad(&prog, 12),
                text::pad_left(
                    &format::elapsed(p, now)
                        .map(format::duration)
                        .unwrap_or_else(|| "-".into()),
                    7
                ),
                text::pad_left(&cost_col.cell(cost), cost_w)
            );
        }
    }
    if !snap.malformed.is_empty() {
        let _ = writeln!(o, "\nMALFORMED ({})", snap.malformed.len());
        for mal in &snap.malformed {
            let _ = writeln!(
                o,
                "  {}: {}",
                text::sanitize(&mal.key),
                text::sanitize(&mal.reason)
            );
        }
    }

    // ---- cache ----
    let llm = &m.llm;
    let _ = writeln!(o, "\nLLM CACHE");
    let _ = writeln!(
        o,
        "  hit rate {} · hits {} · misses {} · saved {}",
        llm.hit_rate
            .map(format::percent)
            .unwrap_or_else(|| "-".into()),
        llm.cache_hits,
        llm.cache_misses,
        format::usd(llm.saved_cost)
    );

    // ---- limits ----
    let _ = writeln!(o, "\nRATE LIMITS (used/limit in the current window)");
    if snap.limits.is_empty() {
        let _ = writeln!(o, "  none found");
    }
    for l in &snap.limits {
        let mut line = match l.requests_limit {
            Some(limit) => format!(
                "  {}:{}  requests {}/{} per {}",
                text::sanitize(&l.resource),
                text::sanitize(&l.identifier),
                l.requests_used,
                limit,
                format::window(l.window_seconds)
            ),
            None => format!(
                "  {}:{}  requests {} in the last {} (limit unknown)",
                text::sanitize(&l.resource),
                text::sanitize(&l.identifier),
                l.requests_used,
                format::window(l.window_seconds)
            ),
        };
        if l.limit_origin == crate::limiter::LimitOrigin::Original {
            line.push_str(" (original preset)");
        }
        if let (Some(u), Some(lim)) = (l.tokens_used, l.tokens_limit) {
            let _ = write!(line, " · tokens {u}/{lim}");
        }
        let _ = writeln!(o, "{line}");
    }

    // ---- cost ----
    let _ = writeln!(o, "\nCOST (USD)");
    let _ = writeln!(
        o,
        "  LLM spend, all calls (a cache hit costs nothing): {} · {} requests · {} prompt + {} completion tokens",
        format::usd(llm.total_cost),
        llm.total_requests,
        llm.prompt_tokens,
        llm.completion_tokens
    );
    let pt = &m.pipelines;
    let _ = writeln!(
        o,
        "  finished pipelines (any status): {} · their spend {} · avg duration {} · avg spend {}",
        pt.completed,
        format::usd(pt.total_cost),
        pt.avg_duration
            .map(format::duration)
            .unwrap_or_else(|| "-".into()),
        pt.avg_cost.map(format::usd).unwrap_or_else(|| "-".into())
    );
    if !pt.by_status.is_empty() {
        let parts: Vec<String> = pt
            .by_status
            .iter()
            .map(|(k, v)| format!("{} {v}", text::sanitize(k)))
            .collect();
        let _ = writeln!(o, "  by status: {}", parts.join(" · "));
    }
    let days: Vec<String> = m
        .daily
        .iter()
        .filter(|d| d.cost != 0.0 || d.completions != 0)
        .map(|d| {
            format!(
                "{} {} ({} runs)",
                d.date,
                format::usd(d.cost),
                d.completions
            )
        })
        .collect();
    let _ = writeln!(
        o,
        "  finished pipelines' spend per day, last {} days (local dates, days with activity): {}",
        m.daily.len(),
        if days.is_empty() {
            "none".into()
        } else {
            days.join(" · ")
        }
    );
    for (label, items) in [
        ("LLM spend per provider", &m.providers),
        ("LLM spend per model", &m.models),
    ] {
        let parts: Vec<String> = items
            .iter()
            .map(|b| {
                format!(
                    "{} {} ({} req)",
                    text::sanitize(&b.name),
                    format::usd(b.cost),
                    b.requests
                )
            })
            .collect();
        let _ = writeln!(
            o,
            "  {label}: {}",
            if parts.is_empty() {
                "none".into()
            } else {
                parts.join(" · ")
            }
        );
    }
    if !m.recent.is_empty() {
        let _ = writeln!(o, "\nRECENT PIPELINES");
        for r in &m.recent {
            let _ = writeln!(
                o,
                "  {}  {}  {}  {}  {}",
                text::sanitize(&r.timestamp),
                text::sanitize(&r.card_id),
                text::sanitize(&r.status),
                format::duration(r.duration_seconds),
                format::usd(r.cost)
            );
        }
    }
    o
}

/// Widest id (in cells) kept inline in the cards table; a longer one gets its own line.
const ID_INLINE_MAX: usize = 40;

fn col_width<'a>(items: impl Iterator<Item = &'a str>, min: usize, max: usize) -> usize {
    items.map(text::width).max().unwrap_or(0).clamp(min, max)
}
