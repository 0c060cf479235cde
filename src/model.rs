//! The documents and events of the Python wire format (`shared/PROTOCOL.md`, section A) as Rust
//! types, with the parsing rules a reader needs for data it did not write.
//!
//! Writers produce exactly the Python shapes; readers are lenient where Python is (a missing
//! optional field, a fraction-less timestamp) and report anything else as malformed instead of
//! guessing.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Status of one stage, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// Reported, not yet started.
    Pending,
    /// Being worked on; `progress_percent` says how far.
    Running,
    /// Finished successfully; counts towards the pipeline's `completed_stages`.
    Completed,
    /// Ended with an error; `message` usually says why.
    Failed,
    /// Deliberately not run.
    Skipped,
}

/// Status of a whole pipeline, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum PipelineStatus {
    /// Created but not yet started.
    Queued,
    /// Started and not yet ended.
    Running,
    /// Ended successfully.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped before the end on request.
    Cancelled,
}

impl StageStatus {
    /// The lowercase wire spelling (`"pending"`, …), as Python writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

impl PipelineStatus {
    /// The lowercase wire spelling (`"queued"`, …), as Python writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the pipeline has ended (completed, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for PipelineStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Python's naive ISO-8601 timestamp: `YYYY-MM-DDTHH:MM:SS.ffffff`, fraction omitted when zero,
/// never a `Z` or offset (Python's completion step fails on one).
pub fn format_naive(t: NaiveDateTime) -> String {
    use chrono::Timelike;
    if t.nanosecond() / 1000 == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// Current UTC time as Python's `datetime.utcnow().isoformat()` prints it.
pub fn utc_now_naive() -> String {
    format_naive(Utc::now().naive_utc())
}

/// Parses a timestamp as Python writes it; also accepts a trailing `Z` or offset written by
/// other tools (converted to UTC), so that readers never reject a document over its clock.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok())
        .or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|d| d.with_timezone(&Utc).naive_utc())
        })
}

/// The pipeline document at `artemis:pipeline:<card_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineDoc {
    /// PROTOCOL `card_id`: the card (pipeline) id, also the last segment of the key.
    pub card_id: String,
    /// PROTOCOL `status`: `running` from the start until completion writes the final one.
    pub status: PipelineStatus,
    /// PROTOCOL `total_stages`: how many stages the pipeline was started with.
    pub total_stages: i64,
    /// PROTOCOL `completed_stages`: stages reported `completed`. This project counts each stage
    /// once, up to `total_stages`; Python counts every such report, so a Python-written value
    /// can exceed `total_stages`.
    pub completed_stages: i64,
    /// PROTOCOL `current_stage`: the stage last reported, `None` before the first report.
    pub current_stage: Option<String>,
    /// PROTOCOL `start_time`: naive UTC ISO-8601 (see [`format_naive`]); never with `Z` or an
    /// offset, which breaks Python's completion step.
    pub start_time: String,
    /// PROTOCOL `end_time`: naive UTC ISO-8601, `None` while the pipeline is not final.
    pub end_time: Option<String>,
    /// PROTOCOL `metadata`: free-form (e.g. `title`, `priority`); empty when missing.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// PROTOCOL `duration_seconds`: wall time from start to completion in seconds; written only
    /// on completion, `None` before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

/// A stage document at `artemis:pipeline:<card_id>:stage:<stage_name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDoc {
    /// PROTOCOL `stage_name`: also the last segment of the key.
    pub stage_name: String,
    /// PROTOCOL `status`: the stage's latest reported status.
    pub status: StageStatus,
    /// PROTOCOL `progress_percent`: 0–100 as the writer reported it, `None` when not given.
    pub progress_percent: Option<i64>,
    /// PROTOCOL `message`: free text from the writer, `None` when not given.
    pub message: Option<String>,
    /// PROTOCOL `timestamp`: naive UTC ISO-8601 of the report.
    pub timestamp: String,
    /// PROTOCOL `metadata`: free-form; `cost_usd` ([`STAGE_COST_FIELD`]) is the one name
    /// readers interpret. Empty when missing.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

/// Extension convention: a stage document's `metadata.cost_usd` is the LLM spend of that stage
/// so far; a card's cost is their sum when its own metadata names none. Python writers may put
/// anything in stage metadata; only a number under this name counts.
pub const STAGE_COST_FIELD: &str = "cost_usd";

/// A pub/sub event on `artemis:pipeline:events:<card_id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PipelineEvent {
    /// `pipeline_started`: a pipeline was (re)started.
    PipelineStarted {
        /// The card (pipeline) id.
        card_id: String,
        /// How many stages the pipeline was started with.
        total_stages: i64,
        /// Naive UTC ISO-8601 time of the event.
        timestamp: String,
        /// Extension: the card's metadata (title, priority, …), so that a dashboard can show a
        /// new card fully before its next read. Python readers ignore it; Python writers do not
        /// send it.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        metadata: Map<String, Value>,
    },
    /// `stage_updated`: a stage reported progress or a new status.
    StageUpdated {
        /// The card (pipeline) id.
        card_id: String,
        /// The stage's name.
        stage_name: String,
        /// The stage's new status.
        status: StageStatus,
        /// 0–100, `None` when the writer gave none.
        progress_percent: Option<i64>,
        /// Free text from the writer, `None` when not given.
        message: Option<String>,
        /// Naive UTC ISO-8601 time of the event.
        timestamp: String,
    },
    /// `pipeline_completed`: the pipeline ended (completed, failed and cancelled all arrive
    /// here).
    PipelineCompleted {
        /// The card (pipeline) id.
        card_id: String,
        /// The final status.
        status: PipelineStatus,
        /// Seconds from start to completion; `None` when the pipeline document was gone or its
        /// `start_time` could not be read.
        duration_seconds: Option<f64>,
        /// Free text from the writer, `None` when not given.
        message: Option<String>,
        /// Naive UTC ISO-8601 time of the event.
        timestamp: String,
    },
}

impl PipelineEvent {
    /// The card the event is about (the last segment of its channel).
    pub fn card_id(&self) -> &str {
        match self {
            Self::PipelineStarted { card_id, .. }
            | Self::StageUpdated { card_id, .. }
            | Self::PipelineCompleted { card_id, .. } => card_id,
        }
    }

    /// The event's naive UTC ISO-8601 timestamp, as written.
    pub fn timestamp(&self) -> &str {
        match self {
            Self::PipelineStarted { timestamp, .. }
            | Self::StageUpdated { timestamp, .. }
            | Self::PipelineCompleted { timestamp, .. } => timestamp,
        }
    }
}

/// Something read from Redis that could not be parsed: kept with a reason so that a reader can
/// show it as malformed instead of dropping it or crashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Malformed {
    /// The Redis key that held the bad value (a hash field, if any, is named in `reason`).
    pub key: String,
    /// What was wrong, in words for display.
    pub reason: String,
}

/// Set or sorted-set members as text: a member that is not UTF-8 is reported against `key` and
/// left out, the others kept.
pub(crate) fn utf8_members(
    key: &str,
    members: Vec<Vec<u8>>,
    malformed: &mut Vec<Malformed>,
) -> Vec<String> {
    members
        .into_iter()
        .filter_map(|member| match String::from_utf8(member) {
            Ok(s) => Some(s),
            Err(e) => {
                malformed.push(Malformed {
                    key: key.to_owned(),
                    reason: format!(
                        "member {:?} is not UTF-8",
                        String::from_utf8_lossy(e.as_bytes())
                    ),
                });
                None
            }
        })
        .collect()
}

/// Parses a JSON document read from Redis, naming the key in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(key: &str, raw: &[u8]) -> Result<T, Malformed> {
    let text = std::str::from_utf8(raw).map_err(|_| Malformed {
        key: key.to_owned(),
        reason: "not UTF-8".into(),
    })?;
    serde_json::from_str(text).map_err(|e| Malformed {
        key: key.to_owned(),
        reason: format!("invalid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_match_python_isoformat() {
        let t = NaiveDateTime::parse_from_str("2025-10-22T20:30:45.123456", "%Y-%m-%dT%H:%M:%S%.f")
            .unwrap();
        assert_eq!(format_naive(t), "2025-10-22T20:30:45.123456");
        let t0 = NaiveDateTime::parse_from_str("2025-10-22T20:30:45", "%Y-%m-%dT%H:%M:%S").unwrap();
        assert_eq!(format_naive(t0), "2025-10-22T20:30:45");
        assert_eq!(parse_timestamp("2025-10-22T20:30:45"), Some(t0));
        assert_eq!(parse_timestamp("2025-10-22T20:30:45Z"), Some(t0));
        assert_eq!(parse_timestamp("nonsense"), None);
    }

    #[test]
    fn events_use_python_tags() {
        let e: PipelineEvent = serde_json::from_str(
            r#"{"event":"stage_updated","card_id":"c","stage_name":"dev","status":"running","progress_percent":45,"message":null,"timestamp":"2025-10-22T20:30:45"}"#,
        )
        .unwrap();
        assert_eq!(e.card_id(), "c");
        let back = serde_json::to_value(&e).unwrap();
        assert_eq!(back["event"], "stage_updated");
    }
}
