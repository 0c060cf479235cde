//! The overview's rows: which cards and malformed documents the filter keeps, in which order
//! the sort puts them, and the selection that follows its card when rows move.
//!
//! The selection is a card id, never a row index: cards arriving, finishing or re-sorting
//! move rows under it and it moves with its card; a card that leaves (expired, filtered out)
//! hands the selection to its neighbour in the old order that is still listed. Until the user
//! moves the cursor (and again after `Home`), the selection stays on the first row, like
//! `top`: the default order puts what needs attention there.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::App;
use crate::model::{PipelineStatus, parse_timestamp};
use crate::snapshot::Snapshot;
use crate::tracker::Card;

/// The card table's sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// What needs attention first: running cards (newest start first), then cards failed
    /// within [`RECENT_FAILURE_SECS`] (newest first), then the rest by last activity, newest
    /// first. New cards land among the running ones at the top, never below the screen.
    Attention,
    /// Start time, newest first; start times that do not parse come last either way.
    Started,
    /// Card id.
    Id,
    /// Attention first: failed, running, queued, cancelled, completed.
    Status,
    /// Furthest along first.
    Progress,
    /// Longest first.
    Elapsed,
    /// Most expensive first.
    Cost,
}

impl SortKey {
    /// Every column, in cycling order.
    pub const ALL: [SortKey; 7] = [
        SortKey::Attention,
        SortKey::Started,
        SortKey::Id,
        SortKey::Status,
        SortKey::Progress,
        SortKey::Elapsed,
        SortKey::Cost,
    ];

    /// The column's name in the footer.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Attention => "attention",
            SortKey::Started => "started",
            SortKey::Id => "id",
            SortKey::Status => "status",
            SortKey::Progress => "progress",
            SortKey::Elapsed => "time",
            SortKey::Cost => "cost",
        }
    }

    pub(super) fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// One row of the overview table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Index into the displayed snapshot's cards.
    Card(usize),
    /// Index into the displayed snapshot's malformed documents.
    Malformed(usize),
}

/// The statuses the quick filter cycles through (`f` forward, `F` back), after "all".
pub const STATUS_FILTERS: [PipelineStatus; 5] = [
    PipelineStatus::Running,
    PipelineStatus::Failed,
    PipelineStatus::Queued,
    PipelineStatus::Completed,
    PipelineStatus::Cancelled,
];

/// How long a failed card counts as recent for [`SortKey::Attention`] (kept with the running
/// ones at the top).
pub const RECENT_FAILURE_SECS: i64 = 3600;

fn status_rank(s: PipelineStatus) -> u8 {
    match s {
        PipelineStatus::Failed => 0,
        PipelineStatus::Running => 1,
        PipelineStatus::Queued => 2,
        PipelineStatus::Cancelled => 3,
        PipelineStatus::Completed => 4,
    }
}

/// Which cards the overview keeps: a status (the quick filters) and a text that must occur,
/// case-insensitively, in the id, title, status, current stage or a metadata value.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Filter<'a> {
    pub(super) text: &'a str,
    pub(super) status: Option<PipelineStatus>,
}

/// Whether `card` has `needle` (already lowercase, non-empty) in a field the filter searches.
fn card_matches(card: &Card, needle: &str) -> bool {
    let has = |s: &str| s.to_lowercase().contains(needle);
    let p = &card.pipeline;
    has(&p.card_id)
        || has(p.status.as_str())
        || p.current_stage.as_deref().is_some_and(has)
        || p.metadata.values().any(|v| value_matches(v, needle))
}

fn value_matches(v: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match v {
        Value::String(s) => s.to_lowercase().contains(needle),
        Value::Number(n) => n.to_string().contains(needle),
        Value::Bool(b) => b.to_string().contains(needle),
        Value::Null => false,
        Value::Array(a) => a.iter().any(|v| value_matches(v, needle)),
        Value::Object(o) => o.values().any(|v| value_matches(v, needle)),
    }
}

/// The sort key of one card, computed once per rebuild (parsing times per comparison would
/// dominate the sort of tens of thousands of cards).
#[derive(Debug, Clone, Copy)]
struct Keyed {
    index: usize,
    /// Start time, for [`SortKey::Started`] and the running group of [`SortKey::Attention`].
    started: Option<NaiveDateTime>,
    /// [`SortKey::Attention`]'s group: 0 running, 1 recently failed, 2 the rest.
    group: u8,
    /// Last activity (end, latest stage report, start), for [`SortKey::Attention`].
    active: Option<NaiveDateTime>,
}

/// The latest of a card's end time, stage reports and start time.
fn last_activity(c: &Card) -> Option<NaiveDateTime> {
    let p = &c.pipeline;
    let mut best = start_time(&p.start_time);
    let others = p
        .end_time
        .iter()
        .map(String::as_str)
        .chain(c.stages.iter().map(|s| s.timestamp.as_str()));
    for t in others {
        if let Some(t) = start_time(t) {
            best = best.max(Some(t));
        }
    }
    best
}

fn keyed(index: usize, c: &Card, sort: SortKey, now: DateTime<Utc>) -> Keyed {
    let (mut started, mut group, mut active) = (None, 0, None);
    match sort {
        SortKey::Started => started = start_time(&c.pipeline.start_time),
        SortKey::Attention => {
            active = last_activity(c);
            group = match c.pipeline.status {
                PipelineStatus::Running => {
                    started = start_time(&c.pipeline.start_time);
                    0
                }
                PipelineStatus::Failed
                    if active.is_some_and(|t| {
                        (now.naive_utc() - t).num_seconds() < RECENT_FAILURE_SECS
                    }) =>
                {
                    1
                }
                _ => 2,
            };
        }
        _ => {}
    }
    Keyed {
        index,
        started,
        group,
        active,
    }
}

/// The rows of `snap` that `filter` keeps (malformed documents by key and reason): cards in
/// `sort` order (ties by id), then malformed ones.
pub(super) fn visible_rows(
    snap: &Snapshot,
    filter: Filter<'_>,
    sort: SortKey,
    reverse: bool,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let needle = filter.text.to_lowercase();
    let mut cards: Vec<Keyed> = snap
        .cards
        .iter()
        .enumerate()
        .filter(|(_, c)| filter.status.is_none_or(|s| c.pipeline.status == s))
        .filter(|(_, c)| needle.is_empty() || card_matches(c, &needle))
        .map(|(i, c)| keyed(i, c, sort, now))
        .collect();
    cards.sort_by(|a, b| {
        let (x, y) = (&snap.cards[a.index], &snap.cards[b.index]);
        // Unparsable start times stay last whatever the direction.
        let unknown = match sort {
            SortKey::Started => a.started.is_none().cmp(&b.started.is_none()),
            _ => Ordering::Equal,
        };
        unknown.then_with(|| {
            let ord = match sort {
                SortKey::Attention => a.group.cmp(&b.group).then_with(|| {
                    let (ta, tb) = if a.group == 0 {
                        (a.started, b.started)
                    } else {
                        (a.active, b.active)
                    };
                    // Newest first; unknown times last within the group.
                    ta.is_none().cmp(&tb.is_none()).then(tb.cmp(&ta))
                }),
                _ => compare(sort, x, y, (a.started, b.started), now),
            }
            .then_with(|| x.pipeline.card_id.cmp(&y.pipeline.card_id));
            if reverse { ord.reverse() } else { ord }
        })
    });
    let mut rows: Vec<Row> = cards.into_iter().map(|k| Row::Card(k.index)).collect();
    if filter.status.is_none() {
        rows.extend(
            snap.malformed
                .iter()
                .enumerate()
                .filter(|(_, m)| {
                    needle.is_empty()
                        || m.key.to_lowercase().contains(&needle)
                        || m.reason.to_lowercase().contains(&needle)
                })
                .map(|(i, _)| Row::Malformed(i)),
        );
    }
    rows
}

/// [`parse_timestamp`], with a quick path for the shape writers use
/// (`YYYY-MM-DDTHH:MM:SS[.fraction]`): a new snapshot of tens of thousands of cards is sorted
/// on every poll, and the general parser costs far more than the sort itself.
fn start_time(s: &str) -> Option<NaiveDateTime> {
    quick_timestamp(s).or_else(|| parse_timestamp(s))
}

fn quick_timestamp(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() < 19
        || b.len() == 20
        || b.len() > 29
        || (b[4], b[7], b[10], b[13], b[16]) != (b'-', b'-', b'T', b':', b':')
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let nanos = match b.get(19) {
        None => 0,
        Some(b'.') => {
            let digits = &b[20..];
            let n = num(20, b.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        Some(_) => return None,
    };
    let sec = num(17, 19)?;
    if sec >= 60 {
        return None; // leap seconds: the general parser's rules
    }
    chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?.and_hms_nano_opt(
        num(11, 13)?,
        num(14, 16)?,
        sec,
        nanos,
    )
}

/// One column's order of two cards (`started`: their parsed start times, for
/// [`SortKey::Started`]).
fn compare(
    sort: SortKey,
    x: &Card,
    y: &Card,
    started: (Option<NaiveDateTime>, Option<NaiveDateTime>),
    now: DateTime<Utc>,
) -> Ordering {
    match sort {
        // Ordered by the caller, which has the groups.
        SortKey::Attention => Ordering::Equal,
        SortKey::Started => started.1.cmp(&started.0),
        SortKey::Id => x.pipeline.card_id.cmp(&y.pipeline.card_id),
        SortKey::Status => status_rank(x.pipeline.status).cmp(&status_rank(y.pipeline.status)),
        SortKey::Progress => y.progress().total_cmp(&x.progress()),
        SortKey::Elapsed => crate::format::elapsed(&y.pipeline, now)
            .unwrap_or(-1.0)
            .total_cmp(&crate::format::elapsed(&x.pipeline, now).unwrap_or(-1.0)),
        SortKey::Cost => y
            .cost_usd
            .unwrap_or(-1.0)
            .total_cmp(&x.cost_usd.unwrap_or(-1.0)),
    }
}

impl App {
    /// The overview's rows after filter and sort (recomputed only when something changed).
    pub fn rows(&mut self) -> &[Row] {
        if self.rows_stale {
            self.rebuild_rows();
        }
        &self.rows
    }

    /// Up to `n` rows from `offset`, as last computed by [`App::rows`].
    pub fn rows_slice(&self, offset: usize, n: usize) -> &[Row] {
        let end = offset.saturating_add(n).min(self.rows.len());
        &self.rows[offset.min(end)..end]
    }

    fn rebuild_rows(&mut self) {
        self.rows_stale = false;
        let Some(snap) = self.shown() else {
            self.rows.clear();
            return;
        };
        let filter = Filter {
            text: &self.filter,
            status: self.status_filter,
        };
        let rows = visible_rows(snap, filter, self.sort, self.reverse, self.now);
        let id_of = |r: &Row| match r {
            Row::Card(i) => snap.cards.get(*i).map(|c| c.pipeline.card_id.as_str()),
            Row::Malformed(_) => None,
        };
        let pos_of = |id: &str| rows.iter().position(|r| id_of(r) == Some(id));
        let followed = if self.follow_top {
            Some(0)
        } else {
            self.selected_id.as_deref().and_then(|id| {
                pos_of(id).or_else(|| {
                    // Gone: its neighbour in the old order (the next one, else the previous
                    // one) that is still listed.
                    let old = self.row_ids.iter().position(|o| o == id)?;
                    let after = self.row_ids[old + 1..].iter();
                    let before = self.row_ids[..old].iter().rev();
                    after.chain(before).find_map(|o| pos_of(o))
                })
            })
        };
        let row_ids = rows
            .iter()
            .filter_map(|r| id_of(r).map(str::to_owned))
            .collect();
        self.rows = rows;
        self.row_ids = row_ids;
        if let Some(pos) = followed {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        // Rows moved under the cursor: scroll no further down than the selection needs, so
        // the top of the order (running cards, recent failures) stays in sight with it.
        self.settle_offset = true;
        self.remember_selection();
    }

    /// Notes which card the cursor is on, so that it can follow the card when rows move.
    pub(super) fn remember_selection(&mut self) {
        self.selected_id = match (self.rows.get(self.selected), self.shown()) {
            (Some(Row::Card(i)), Some(s)) => s.cards.get(*i).map(|c| c.pipeline.card_id.clone()),
            _ => None,
        };
    }

    /// The card under the cursor.
    pub fn selected_card(&mut self) -> Option<&Card> {
        // Rebuild first: a rebuild moves the selection to its card's new row.
        self.rows();
        let row = *self.rows.get(self.selected)?;
        match row {
            Row::Card(i) => self.shown()?.cards.get(i),
            Row::Malformed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PipelineDoc;

    fn card(id: &str, start: &str) -> Card {
        Card {
            pipeline: PipelineDoc {
                card_id: id.into(),
                status: PipelineStatus::Running,
                total_stages: 1,
                completed_stages: 0,
                current_stage: None,
                start_time: start.into(),
                end_time: None,
                metadata: Default::default(),
                duration_seconds: None,
            },
            stages: Vec::new(),
            cost_usd: None,
        }
    }

    fn snapshot(cards: Vec<Card>) -> Snapshot {
        Snapshot {
            taken_at: Utc::now(),
            source: crate::snapshot::SourceInfo {
                backend: "memory".into(),
                endpoint: "memory".into(),
            },
            connection: crate::connection::ConnState::Connecting,
            health: Default::default(),
            cards,
            metrics: Default::default(),
            limits: Vec::new(),
            history: Default::default(),
            malformed: Vec::new(),
        }
    }

    fn order(snap: &Snapshot, reverse: bool) -> Vec<&str> {
        visible_rows(
            snap,
            Filter::default(),
            SortKey::Started,
            reverse,
            Utc::now(),
        )
        .into_iter()
        .map(|r| match r {
            Row::Card(i) => snap.cards[i].pipeline.card_id.as_str(),
            Row::Malformed(_) => "malformed",
        })
        .collect()
    }

    #[test]
    fn started_sort_compares_times_not_text() {
        // As text "2026-01-02T03:04:05Z" sorts after "2026-01-02T03:04:05.5"; as times the
        // fractional one is later.
        let snap = snapshot(vec![
            card("a", "2026-01-02T03:04:05Z"),
            card("b", "2026-01-02T03:04:05.5"),
            card("c", "2026-01-02 03:04:06"),
        ]);
        assert_eq!(order(&snap, false), ["c", "b", "a"]);
        assert_eq!(order(&snap, true), ["a", "b", "c"]);
    }

    #[test]
    fn the_quick_start_time_parser_agrees_with_the_general_one() {
        for s in [
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05.5",
            "2026-01-02T03:04:05.123456",
            "2026-01-02T03:04:05.123456789",
            "2026-02-30T03:04:05",
            "2026-01-02T24:04:05",
            "2026-01-02T03:04:05.",
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.5+02:00",
            "2026-01-02 03:04:05",
            "2026-01-02T03:04:60",
            "+2026-01-02T03:04:05",
            "2026-1-02T03:04:05",
            " 2026-01-02T03:04:05",
            "",
        ] {
            assert_eq!(start_time(s), parse_timestamp(s), "{s:?}");
        }
    }

    #[test]
    fn unparsable_start_times_come_last_by_id_either_way() {
        let snap = snapshot(vec![
            card("z-bad", "yesterday"),
            card("old", "2026-01-01T00:00:00"),
            card("a-bad", ""),
            card("new", "2026-01-02T00:00:00"),
        ]);
        assert_eq!(order(&snap, false), ["new", "old", "a-bad", "z-bad"]);
        assert_eq!(order(&snap, true), ["old", "new", "z-bad", "a-bad"]);
    }
}
