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
    Pending,
    Running,
    Completed,
    Failed,
    Skipped,
}

/// Status of a whole pipeline, lowercase on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum PipelineStatus {
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl StageStatus {
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
    pub card_id: String,
    pub status: PipelineStatus,
    pub total_stages: i64,
    pub completed_stages: i64,
    pub current_stage: Option<String>,
    pub start_time: String,
    pub end_time: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

/// A stage document at `artemis:pipeline:<card_id>:stage:<stage_name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDoc {
    pub stage_name: String,
    pub status: StageStatus,
    pub progress_percent: Option<i64>,
    pub message: Option<String>,
    pub timestamp: String,
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
    PipelineStarted {
        card_id: String,
        total_stages: i64,
        timestamp: String,
        /// Extension: the card's metadata (title, priority, …), so that a dashboard can show a
        /// new card fully before its next read. Python readers ignore it; Python writers do not
        /// send it.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        metadata: Map<String, Value>,
    },
    StageUpdated {
        card_id: String,
        stage_name: String,
        status: StageStatus,
        progress_percent: Option<i64>,
        message: Option<String>,
        timestamp: String,
    },
    PipelineCompleted {
        card_id: String,
        status: PipelineStatus,
        duration_seconds: Option<f64>,
        message: Option<String>,
        timestamp: String,
    },
}

impl PipelineEvent {
    pub fn card_id(&self) -> &str {
        match self {
            Self::PipelineStarted { card_id, .. }
            | Self::StageUpdated { card_id, .. }
            | Self::PipelineCompleted { card_id, .. } => card_id,
        }
    }

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
    pub key: String,
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
