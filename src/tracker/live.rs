//! The tracker's rule for a live event: how a card read earlier changes when one of its pub/sub
//! events arrives. It lives beside the writes so that a reader patching cards between reads
//! (the dashboard) shows what its next read will show, instead of guessing with rules of its
//! own.
//!
//! Each event is the trace of one tracker write (`start`, `stage`, `complete` in
//! `scripts/tracker.lua` and `memory.rs`), and applying it changes the card as that write
//! changed the stored documents. `tests/card_events.rs` checks this on both backends: a card
//! built from the subscribed events equals the card read back after the same writes.
//!
//! An event carries less than its write did. Where it lacks something the card keeps what it
//! already has:
//! - **stage metadata** is not in `stage_updated`: an updated stage keeps its metadata, a new
//!   one starts with none (so a stage's `metadata.cost_usd`, and the card's `cost_usd` summed
//!   from it, change only at the next read);
//! - **card metadata**: `pipeline_started` carries it (an extension), but an empty map is not
//!   sent and Python writers send none; an event without metadata keeps the card's;
//! - **`_completed`** (the stages already counted in `completed_stages`) is not in the card: a
//!   stage counts as already counted when the card shows it completed in the current run. A
//!   stage reported completed, then something else, then completed again counts once in the
//!   tracker and twice here, until the next read;
//! - **`_stages`** (first-reported order) is not in the card either: the stages reported in the
//!   current run are taken to be those stamped at or after the card's `start_time`, in the
//!   card's order; the others (left from an earlier run of the card id) follow them, ordered as
//!   a read orders stages outside `_stages`. This assumes the writers' clocks agree;
//! - the completion **message** is not stored in any document and changes nothing.
//!
//! A card may already reflect events still in flight (it was read after they were written).
//! An event stamped before the state it would change — a stage update older than the card's
//! copy of that stage, or anything older than the card's `start_time` — counts as already
//! applied and changes nothing; a start event of the run the card shows changes nothing
//! either. So the events that overlap a read leave the read's card as it was.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use super::{ParsedDoc, assemble_card};
use crate::model::{
    Metadata, PipelineDoc, PipelineEvent, PipelineStatus, StageDoc, StageStatus, parse_timestamp,
};
use crate::tracker::Card;

/// Whether `a` is strictly earlier than `b`; unparsable times are never earlier (an event with
/// one is applied rather than dropped).
fn earlier(a: Option<NaiveDateTime>, b: Option<NaiveDateTime>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a < b)
}

impl Card {
    /// The card a `pipeline_started` event creates, as the start write stores it: running, no
    /// stage yet. Other events create no card: for a card without a pipeline document the
    /// tracker writes only their stage document and event, and a read finds no card.
    pub fn from_event(event: &PipelineEvent) -> Option<Self> {
        let PipelineEvent::PipelineStarted {
            card_id,
            total_stages,
            timestamp,
            metadata,
        } = event
        else {
            return None;
        };
        Some(Self::started(
            card_id.clone(),
            *total_stages,
            timestamp.clone(),
            metadata.clone(),
            HashMap::new(),
        ))
    }

    /// A fresh run's card: the start write's document; `leftover` stages (documents of an
    /// earlier run, which a start does not delete) are outside the new run's stage order.
    fn started(
        card_id: String,
        total_stages: i64,
        start_time: String,
        metadata: impl Into<Metadata>,
        leftover: HashMap<String, StageDoc>,
    ) -> Self {
        let doc = PipelineDoc {
            card_id,
            status: PipelineStatus::Running,
            total_stages,
            completed_stages: 0,
            current_stage: None,
            start_time: start_time.into(),
            end_time: None,
            metadata: metadata.into(),
            duration_seconds: None,
        };
        // The read's own assembly, so stage order and cost follow the read's rules.
        assemble_card(
            ParsedDoc {
                doc,
                stage_order: Some(Vec::new()),
            },
            leftover,
        )
    }

    /// Applies one live event of this card as the tracker's write of the same operation changed
    /// the stored documents (see the module documentation for what an event cannot carry).
    /// Returns whether the card changed: `false` for another card's event and for an event the
    /// card already reflects.
    pub fn apply_event(&mut self, event: &PipelineEvent) -> bool {
        if event.card_id() != self.pipeline.card_id {
            return false;
        }
        let start = parse_timestamp(&self.pipeline.start_time);
        let at = parse_timestamp(event.timestamp());
        match event {
            PipelineEvent::PipelineStarted {
                total_stages,
                timestamp,
                metadata,
                ..
            } => {
                if *timestamp == self.pipeline.start_time || earlier(at, start) {
                    return false;
                }
                let metadata = if metadata.is_empty() {
                    std::mem::take(&mut self.pipeline.metadata)
                } else {
                    metadata.clone().into()
                };
                let leftover = std::mem::take(&mut self.stages)
                    .into_iter()
                    .map(|s| (s.stage_name.to_string(), s))
                    .collect();
                *self = Self::started(
                    std::mem::take(&mut self.pipeline.card_id),
                    *total_stages,
                    timestamp.clone(),
                    metadata,
                    leftover,
                );
                true
            }
            PipelineEvent::StageUpdated {
                stage_name,
                status,
                progress_percent,
                message,
                timestamp,
                ..
            } => {
                let pos = self.stages.iter().position(|s| s.stage_name == *stage_name);
                if earlier(at, start)
                    || pos.is_some_and(|i| earlier(at, parse_timestamp(&self.stages[i].timestamp)))
                {
                    return false;
                }
                let reported = self.reported_in_run(start);
                let counted = pos.is_some_and(|i| {
                    i < reported && self.stages[i].status == StageStatus::Completed
                });
                let doc = StageDoc {
                    stage_name: stage_name.as_str().into(),
                    status: *status,
                    progress_percent: *progress_percent,
                    message: message.clone(),
                    timestamp: timestamp.as_str().into(),
                    metadata: pos
                        .map(|i| std::mem::take(&mut self.stages[i].metadata))
                        .unwrap_or_default(),
                };
                // The write replaces the stage document and appends a stage first reported in
                // this run to `_stages`.
                match pos {
                    Some(i) if i < reported => self.stages[i] = doc,
                    Some(i) => {
                        self.stages.remove(i);
                        self.stages.insert(reported, doc);
                    }
                    None => self.stages.insert(reported, doc),
                }
                let p = &mut self.pipeline;
                p.current_stage = Some(stage_name.as_str().into());
                if *status == StageStatus::Completed && !counted {
                    p.completed_stages = p
                        .completed_stages
                        .saturating_add(1)
                        .min(p.total_stages)
                        .max(0);
                }
                true
            }
            PipelineEvent::PipelineCompleted {
                status,
                duration_seconds,
                timestamp,
                ..
            } => {
                if earlier(at, start) {
                    return false;
                }
                let p = &mut self.pipeline;
                p.status = *status;
                p.end_time = Some(timestamp.as_str().into());
                p.current_stage = None;
                // The write leaves the duration alone when the start time does not parse; the
                // event then says null.
                if let Some(d) = duration_seconds {
                    p.duration_seconds = Some(*d);
                }
                true
            }
        }
    }

    /// Whether this version of a card is strictly newer than `other`, a version of the same
    /// card read or patched at another moment: what a reader holding both shows, so that a read
    /// taken before a live event it has already applied never rolls the card back.
    ///
    /// Decided by what the two versions hold, in this order (each step only when it can tell):
    /// 1. **the run**: both start times parse and differ: the later start is a later run;
    /// 2. **finality**: in the same run a finished card is newer than an unfinished one (the
    ///    completion is a run's last status write; only a new start un-finishes a card);
    /// 3. **the reports**: this version is newer when it holds a later report than `other`
    ///    (a stage stamped later than `other`'s copy of it, a stage `other` lacks, or a later
    ///    end time) and `other` holds none later than this one.
    ///
    /// Anything else (the same state, times that do not parse, each version ahead in some
    /// report) is not newer: a reader then takes the read, which also carries what events do
    /// not (stage metadata, costs).
    pub fn newer_than(&self, other: &Card) -> bool {
        let (a, b) = (&self.pipeline, &other.pipeline);
        if let (Some(x), Some(y)) = (
            parse_timestamp(&a.start_time),
            parse_timestamp(&b.start_time),
        ) && x != y
        {
            return x > y;
        }
        if a.status.is_final() != b.status.is_final() {
            return a.status.is_final();
        }
        let (mine, theirs) = (self.later_reports(other), other.later_reports(self));
        mine && !theirs
    }

    /// Whether this version holds a report `other` does not have yet: a stage stamped later
    /// than `other`'s copy (or one `other` lacks), or a later end time. Unparsable times tell
    /// nothing.
    fn later_reports(&self, other: &Card) -> bool {
        let later = |a: &str, b: &str| matches!((parse_timestamp(a), parse_timestamp(b)), (Some(a), Some(b)) if a > b);
        let ended_later = match (&self.pipeline.end_time, &other.pipeline.end_time) {
            (Some(a), Some(b)) => later(a, b),
            (Some(a), None) => parse_timestamp(a).is_some(),
            _ => false,
        };
        ended_later
            || self.stages.iter().any(|s| {
                match other.stages.iter().find(|o| o.stage_name == s.stage_name) {
                    Some(o) => later(&s.timestamp, &o.timestamp),
                    None => parse_timestamp(&s.timestamp).is_some(),
                }
            })
    }

    /// How many leading stages were reported in the current run (the card's stand-in for
    /// `_stages`): stamped at or after the start. All of them when the start does not parse.
    fn reported_in_run(&self, start: Option<NaiveDateTime>) -> usize {
        let Some(start) = start else {
            return self.stages.len();
        };
        self.stages
            .iter()
            .take_while(|s| parse_timestamp(&s.timestamp).is_some_and(|t| t >= start))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    const START: &str = "2026-01-02T03:00:00";

    fn started(total: i64) -> Card {
        Card::from_event(&PipelineEvent::PipelineStarted {
            card_id: "c".into(),
            total_stages: total,
            timestamp: START.into(),
            metadata: json!({"title": "T"}).as_object().cloned().unwrap(),
        })
        .unwrap()
    }

    fn stage(name: &str, status: StageStatus, at: &str) -> PipelineEvent {
        PipelineEvent::StageUpdated {
            card_id: "c".into(),
            stage_name: name.into(),
            status,
            progress_percent: Some(10),
            message: Some(format!("{name} {status}")),
            timestamp: at.into(),
        }
    }

    fn names(card: &Card) -> Vec<&str> {
        card.stages.iter().map(|s| s.stage_name.as_str()).collect()
    }

    #[test]
    fn only_a_start_event_creates_a_card() {
        let card = started(3);
        assert_eq!(card.pipeline.status, PipelineStatus::Running);
        assert_eq!(card.title(), Some("T"));
        assert!(card.stages.is_empty());
        assert!(
            Card::from_event(&stage("a", StageStatus::Running, START)).is_none(),
            "a stage event of an unknown card writes no pipeline document"
        );
    }

    #[test]
    fn any_stage_update_becomes_the_current_stage() {
        let mut card = started(3);
        card.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:01"));
        card.apply_event(&stage("b", StageStatus::Pending, "2026-01-02T03:00:02"));
        assert_eq!(card.pipeline.current_stage.as_deref(), Some("b"));
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:03"));
        assert_eq!(card.pipeline.current_stage.as_deref(), Some("a"));
    }

    #[test]
    fn a_stage_update_leaves_the_pipeline_status_alone() {
        let mut card = started(3);
        card.pipeline.status = PipelineStatus::Queued;
        card.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:01"));
        assert_eq!(card.pipeline.status, PipelineStatus::Queued);
    }

    #[test]
    fn a_repeated_completed_report_counts_once() {
        let mut card = started(3);
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:01"));
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:02"));
        assert_eq!(card.pipeline.completed_stages, 1);
    }

    #[test]
    fn completed_stages_never_exceed_the_total() {
        let mut card = started(1);
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:01"));
        card.apply_event(&stage("b", StageStatus::Completed, "2026-01-02T03:00:02"));
        assert_eq!(card.pipeline.completed_stages, 1);
    }

    #[test]
    fn stages_keep_their_first_reported_order() {
        let mut card = started(3);
        card.apply_event(&stage("b", StageStatus::Running, "2026-01-02T03:00:01"));
        card.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:02"));
        card.apply_event(&stage("b", StageStatus::Completed, "2026-01-02T03:00:03"));
        assert_eq!(names(&card), ["b", "a"]);
        assert_eq!(card.stages[0].status, StageStatus::Completed);
        assert_eq!(card.stages[0].message.as_deref(), Some("b completed"));
    }

    #[test]
    fn an_updated_stage_keeps_the_metadata_the_event_lacks() {
        let mut card = started(3);
        card.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:01"));
        card.stages[0]
            .metadata
            .insert("cost_usd".into(), json!(0.5));
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:02"));
        assert_eq!(card.stages[0].metadata["cost_usd"], json!(0.5));
    }

    #[test]
    fn completion_sets_status_end_time_and_duration() {
        let mut card = started(1);
        let done = PipelineEvent::PipelineCompleted {
            card_id: "c".into(),
            status: PipelineStatus::Failed,
            duration_seconds: Some(5.5),
            message: Some("boom".into()),
            timestamp: "2026-01-02T03:00:05.500000".into(),
        };
        assert!(card.apply_event(&done));
        assert_eq!(card.pipeline.status, PipelineStatus::Failed);
        assert_eq!(
            card.pipeline.end_time.as_deref(),
            Some("2026-01-02T03:00:05.500000")
        );
        assert_eq!(card.pipeline.duration_seconds, Some(5.5));
    }

    #[test]
    fn completion_without_a_duration_keeps_the_cards() {
        let mut card = started(1);
        card.pipeline.duration_seconds = Some(2.0);
        card.apply_event(&PipelineEvent::PipelineCompleted {
            card_id: "c".into(),
            status: PipelineStatus::Completed,
            duration_seconds: None,
            message: None,
            timestamp: "2026-01-02T03:00:05".into(),
        });
        assert_eq!(card.pipeline.duration_seconds, Some(2.0));
    }

    #[test]
    fn a_restart_resets_the_run_and_puts_old_stages_after_new_ones() {
        let mut card = started(2);
        card.apply_event(&stage(
            "old-b",
            StageStatus::Completed,
            "2026-01-02T03:00:02",
        ));
        card.apply_event(&stage(
            "old-a",
            StageStatus::Completed,
            "2026-01-02T03:00:01",
        ));
        card.apply_event(&PipelineEvent::PipelineCompleted {
            card_id: "c".into(),
            status: PipelineStatus::Completed,
            duration_seconds: Some(3.0),
            message: None,
            timestamp: "2026-01-02T03:00:03".into(),
        });
        assert!(card.apply_event(&PipelineEvent::PipelineStarted {
            card_id: "c".into(),
            total_stages: 4,
            timestamp: "2026-01-02T04:00:00".into(),
            metadata: Map::new(),
        }));
        let p = &card.pipeline;
        assert_eq!(p.status, PipelineStatus::Running);
        assert_eq!((p.total_stages, p.completed_stages), (4, 0));
        assert_eq!(
            (p.current_stage.as_deref(), p.end_time.as_deref()),
            (None, None)
        );
        assert_eq!(p.duration_seconds, None);
        assert_eq!(
            card.title(),
            Some("T"),
            "no metadata sent: the card keeps its own"
        );
        // Old stages stay (a start does not delete them), by time outside the new order.
        assert_eq!(names(&card), ["old-a", "old-b"]);
        card.apply_event(&stage("new", StageStatus::Running, "2026-01-02T04:00:01"));
        card.apply_event(&stage(
            "old-b",
            StageStatus::Completed,
            "2026-01-02T04:00:02",
        ));
        assert_eq!(names(&card), ["new", "old-b", "old-a"]);
        assert_eq!(
            card.pipeline.completed_stages, 1,
            "completed in the old run does not count in the new one"
        );
    }

    #[test]
    fn events_the_card_already_reflects_change_nothing() {
        let mut card = started(3);
        card.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:05"));
        let before = card.clone();
        let stale = [
            stage("a", StageStatus::Running, "2026-01-02T03:00:04"),
            stage("z", StageStatus::Running, "2026-01-02T02:59:59"),
            PipelineEvent::PipelineStarted {
                card_id: "c".into(),
                total_stages: 9,
                timestamp: START.into(),
                metadata: Map::new(),
            },
            PipelineEvent::PipelineCompleted {
                card_id: "c".into(),
                status: PipelineStatus::Completed,
                duration_seconds: Some(1.0),
                message: None,
                timestamp: "2026-01-02T02:00:00".into(),
            },
            stage("a", StageStatus::Completed, "2026-01-02T03:00:05"),
        ];
        for e in &stale[..4] {
            assert!(!card.apply_event(e), "{e:?}");
        }
        card.apply_event(&stale[4]);
        assert_eq!(card, before);
    }

    #[test]
    fn another_cards_event_changes_nothing() {
        let mut card = started(3);
        let before = card.clone();
        assert!(!card.apply_event(&PipelineEvent::StageUpdated {
            card_id: "other".into(),
            stage_name: "a".into(),
            status: StageStatus::Running,
            progress_percent: None,
            message: None,
            timestamp: "2026-01-02T03:00:05".into(),
        }));
        assert_eq!(card, before);
    }

    #[test]
    fn a_card_patched_by_a_later_stage_report_is_newer_than_the_read_before_it() {
        let read = started(3);
        let mut patched = read.clone();
        patched.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:01"));
        assert!(patched.newer_than(&read));
        assert!(!read.newer_than(&patched));
        let mut later = patched.clone();
        later.apply_event(&stage("a", StageStatus::Completed, "2026-01-02T03:00:02"));
        assert!(later.newer_than(&patched), "a later copy of the same stage");
    }

    #[test]
    fn a_finished_card_is_newer_than_the_same_run_unfinished() {
        let mut running = started(1);
        running.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:09"));
        let mut done = started(1);
        done.apply_event(&PipelineEvent::PipelineCompleted {
            card_id: "c".into(),
            status: PipelineStatus::Failed,
            duration_seconds: None,
            message: None,
            timestamp: "2026-01-02T03:00:05".into(),
        });
        // Finality decides before the reports: the running copy's stage is stamped later.
        assert!(done.newer_than(&running));
        assert!(!running.newer_than(&done));
    }

    #[test]
    fn a_later_run_is_newer_whatever_the_earlier_one_finished() {
        let mut old = started(1);
        old.apply_event(&PipelineEvent::PipelineCompleted {
            card_id: "c".into(),
            status: PipelineStatus::Completed,
            duration_seconds: Some(1.0),
            message: None,
            timestamp: "2026-01-02T03:00:05".into(),
        });
        let mut rerun = old.clone();
        rerun.apply_event(&PipelineEvent::PipelineStarted {
            card_id: "c".into(),
            total_stages: 2,
            timestamp: "2026-01-02T04:00:00".into(),
            metadata: Map::new(),
        });
        assert!(rerun.newer_than(&old));
        assert!(!old.newer_than(&rerun));
    }

    #[test]
    fn equal_conflicting_or_unparsable_versions_are_not_newer() {
        let card = started(3);
        assert!(!card.newer_than(&card.clone()), "the same state");
        let mut a = card.clone();
        a.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:02"));
        a.apply_event(&stage("b", StageStatus::Running, "2026-01-02T03:00:01"));
        let mut b = card.clone();
        b.apply_event(&stage("b", StageStatus::Running, "2026-01-02T03:00:03"));
        b.apply_event(&stage("a", StageStatus::Running, "2026-01-02T03:00:01"));
        assert!(
            !a.newer_than(&b) && !b.newer_than(&a),
            "each ahead in one stage"
        );
        let mut bad = card.clone();
        bad.apply_event(&stage("a", StageStatus::Running, "soon"));
        assert!(!bad.newer_than(&card), "an unparsable stamp tells nothing");
    }
}
