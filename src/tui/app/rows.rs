//! The overview's rows: which cards and malformed documents the filter keeps, in which order
//! the sort puts them, and the selection that follows its card when rows move.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::App;
use crate::model::{PipelineStatus, parse_timestamp};
use crate::snapshot::Snapshot;
use crate::tracker::Card;

/// The card table's sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
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
    pub const ALL: [SortKey; 6] = [
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

fn status_rank(s: PipelineStatus) -> u8 {
    match s {
        PipelineStatus::Failed => 0,
        PipelineStatus::Running => 1,
        PipelineStatus::Queued => 2,
        PipelineStatus::Cancelled => 3,
        PipelineStatus::Completed => 4,
    }
}

/// The rows of `snap` that `filter` keeps (case-insensitive, on id and title; on key and
/// reason for malformed documents): cards in `sort` order (ties by id), then malformed ones.
pub(super) fn visible_rows(
    snap: &Snapshot,
    filter: &str,
    sort: SortKey,
    reverse: bool,
    now: DateTime<Utc>,
) -> Vec<Row> {
    let needle = filter.to_lowercase();
    let matches = |id: &str, title: Option<&str>| {
        needle.is_empty()
            || id.to_lowercase().contains(&needle)
            || title.is_some_and(|t| t.to_lowercase().contains(&needle))
    };
    // Start times parsed once per card, not once per comparison.
    let mut cards: Vec<(usize, Option<NaiveDateTime>)> = snap
        .cards
        .iter()
        .enumerate()
        .filter(|(_, c)| matches(&c.pipeline.card_id, c.title()))
        .map(|(i, c)| {
            let started = match sort {
                SortKey::Started => start_time(&c.pipeline.start_time),
                _ => None,
            };
            (i, started)
        })
        .collect();
    cards.sort_by(|(a, ta), (b, tb)| {
        let (x, y) = (&snap.cards[*a], &snap.cards[*b]);
        // Unparsable start times stay last whatever the direction.
        let unknown = match sort {
            SortKey::Started => ta.is_none().cmp(&tb.is_none()),
            _ => Ordering::Equal,
        };
        unknown.then_with(|| {
            let ord = compare(sort, x, y, (*ta, *tb), now)
                .then_with(|| x.pipeline.card_id.cmp(&y.pipeline.card_id));
            if reverse { ord.reverse() } else { ord }
        })
    });
    let mut rows: Vec<Row> = cards.into_iter().map(|(i, _)| Row::Card(i)).collect();
    rows.extend(
        snap.malformed
            .iter()
            .enumerate()
            .filter(|(_, m)| matches(&m.key, Some(&m.reason)))
            .map(|(i, _)| Row::Malformed(i)),
    );
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
        let rows = visible_rows(snap, &self.filter, self.sort, self.reverse, self.now);
        // Keep the same card selected when rows move under it.
        let followed = self.selected_id.as_ref().and_then(|id| {
            rows.iter().position(|r| match r {
                Row::Card(i) => &snap.cards[*i].pipeline.card_id == id,
                Row::Malformed(_) => false,
            })
        });
        self.rows = rows;
        if let Some(pos) = followed {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
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
        let sel = self.selected;
        let row = *self.rows().get(sel)?;
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
            malformed: Vec::new(),
        }
    }

    fn order(snap: &Snapshot, reverse: bool) -> Vec<&str> {
        visible_rows(snap, "", SortKey::Started, reverse, Utc::now())
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
