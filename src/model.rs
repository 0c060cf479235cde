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
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let year = t.year();
    if !(0..=9999).contains(&year) || t.nanosecond() >= 1_000_000_000 {
        // Outside four-digit years, and for a leap second, chrono's own format is the
        // reference.
        return if t.nanosecond() / 1000 == 0 {
            t.format("%Y-%m-%dT%H:%M:%S").to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        };
    }
    // Written directly: every tracker write stamps its event and stage this way, and chrono's
    // format parses its pattern on each call (a few percent of a writer's CPU).
    let mut out = String::with_capacity(26);
    let _ = write!(
        out,
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.nanosecond() / 1000;
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out
}

/// Current UTC time as Python's `datetime.utcnow().isoformat()` prints it.
pub fn utc_now_naive() -> String {
    format_naive(Utc::now().naive_utc())
}

/// Parses a timestamp as Python writes it; also accepts a trailing `Z` or offset written by
/// other tools (converted to UTC), so that readers never reject a document over its clock.
pub fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    quick_timestamp(s).or_else(|| parse_timestamp_general(s))
}

/// [`parse_timestamp`] of any shape it accepts, through chrono's parsers.
fn parse_timestamp_general(s: &str) -> Option<NaiveDateTime> {
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

/// [`parse_timestamp`] of the shape writers use (`YYYY-MM-DDTHH:MM:SS[.fraction]`, no zone),
/// without chrono's pattern parser: the dashboard parses a timestamp or two for every live
/// event and every card it sorts, and the general parser costs far more than the use made of
/// it. `None` for any other shape, which the general parser then reads.
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

/// Bytes of text an [`InlineStr`] holds without a heap allocation: a Python timestamp (26 bytes
/// with its fraction) and the usual stage names fit.
const INLINE_CAP: usize = 30;

/// Short wire text held inline (timestamps, stage names), the rest boxed: a dashboard keeps
/// 100,000 cards, and a `String` of a 26-byte timestamp costs 24 bytes plus a 48-byte heap chunk
/// where this costs 32 bytes in place. It holds exactly the text it was given and dereferences
/// to it, so what Python wrote renders byte for byte.
#[derive(Clone)]
pub struct InlineStr(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE_CAP] },
    Heap(Box<str>),
}

impl InlineStr {
    /// The text, inline when it fits.
    pub fn new(s: &str) -> Self {
        if s.len() <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..s.len()].copy_from_slice(s.as_bytes());
            Self(Repr::Inline {
                len: s.len() as u8,
                buf,
            })
        } else {
            Self(Repr::Heap(s.into()))
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Only `new` fills `buf`, with the bytes of a `&str` cut at its own length.
            Repr::Inline { len, buf } => {
                std::str::from_utf8(&buf[..*len as usize]).expect("copied from a str")
            }
            Repr::Heap(s) => s,
        }
    }
}

impl std::ops::Deref for InlineStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for InlineStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for InlineStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for InlineStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for InlineStr {}

impl PartialEq<str> for InlineStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for InlineStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for InlineStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<InlineStr> for str {
    fn eq(&self, other: &InlineStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<InlineStr> for &str {
    fn eq(&self, other: &InlineStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<InlineStr> for String {
    fn eq(&self, other: &InlineStr) -> bool {
        self == other.as_str()
    }
}

impl PartialOrd for InlineStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for InlineStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for InlineStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl std::fmt::Debug for InlineStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for InlineStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for InlineStr {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for InlineStr {
    fn from(s: String) -> Self {
        if s.len() <= INLINE_CAP {
            Self::new(&s)
        } else {
            Self(Repr::Heap(s.into_boxed_str()))
        }
    }
}

impl From<&String> for InlineStr {
    fn from(s: &String) -> Self {
        Self::new(s)
    }
}

impl From<InlineStr> for String {
    fn from(s: InlineStr) -> Self {
        match s.0 {
            Repr::Heap(b) => b.into_string(),
            Repr::Inline { .. } => s.as_str().to_owned(),
        }
    }
}

impl Serialize for InlineStr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for InlineStr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = InlineStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<InlineStr, E> {
                Ok(InlineStr::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<InlineStr, E> {
                Ok(v.into())
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// A document's free-form `metadata` object, held as a sorted slice of its entries instead of a
/// `serde_json::Map` (a B-tree, whose first entry allocates a ~600-byte node however few
/// follow). It keeps what the map kept: one value per key (the last one written, as a JSON
/// reader keeps it), in key order, so it serializes to the very bytes the map did. Values
/// nested inside are ordinary `serde_json` values.
#[derive(Clone, Default, PartialEq)]
pub struct Metadata(Box<[(Box<str>, Value)]>);

impl Metadata {
    /// No entries.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many entries it has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether a value is stored under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`, returning the value it replaces. Rebuilds the slice: metadata is
    /// written rarely and read often.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        match self.0.binary_search_by(|(k, _)| (**k).cmp(key.as_str())) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                let mut v = std::mem::take(&mut self.0).into_vec();
                v.insert(i, (key.into_boxed_str(), value));
                self.0 = v.into_boxed_slice();
                None
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0 = Box::default();
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &Value> {
        self.0.iter().map(|(_, v)| v)
    }

    /// As a `serde_json` map (for writers and reports that build JSON values).
    pub fn to_map(&self) -> Map<String, Value> {
        self.0
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

impl From<Map<String, Value>> for Metadata {
    fn from(map: Map<String, Value>) -> Self {
        // The map iterates in key order with one value per key: already the slice's order.
        Self(
            map.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v))
                .collect(),
        )
    }
}

impl From<Metadata> for Map<String, Value> {
    fn from(m: Metadata) -> Self {
        m.0.into_vec()
            .into_iter()
            .map(|(k, v)| (k.into_string(), v))
            .collect()
    }
}

impl FromIterator<(String, Value)> for Metadata {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        iter.into_iter().collect::<Map<String, Value>>().into()
    }
}

impl std::ops::Index<&str> for Metadata {
    type Output = Value;
    /// `Value::Null` for a missing key, as indexing a `serde_json` map does.
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Through the map, so duplicate keys and ordering follow exactly its rules.
        Map::<String, Value>::deserialize(deserializer).map(Self::from)
    }
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
    pub current_stage: Option<InlineStr>,
    /// PROTOCOL `start_time`: naive UTC ISO-8601 (see [`format_naive`]); never with `Z` or an
    /// offset, which breaks Python's completion step.
    pub start_time: InlineStr,
    /// PROTOCOL `end_time`: naive UTC ISO-8601, `None` while the pipeline is not final.
    pub end_time: Option<InlineStr>,
    /// PROTOCOL `metadata`: free-form (e.g. `title`, `priority`); empty when missing.
    #[serde(default)]
    pub metadata: Metadata,
    /// PROTOCOL `duration_seconds`: wall time from start to completion in seconds; written only
    /// on completion, `None` before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

/// A stage document at `artemis:pipeline:<card_id>:stage:<stage_name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageDoc {
    /// PROTOCOL `stage_name`: also the last segment of the key.
    pub stage_name: InlineStr,
    /// PROTOCOL `status`: the stage's latest reported status.
    pub status: StageStatus,
    /// PROTOCOL `progress_percent`: 0–100 as the writer reported it, `None` when not given.
    pub progress_percent: Option<i64>,
    /// PROTOCOL `message`: free text from the writer, `None` when not given.
    pub message: Option<String>,
    /// PROTOCOL `timestamp`: naive UTC ISO-8601 of the report.
    pub timestamp: InlineStr,
    /// PROTOCOL `metadata`: free-form; `cost_usd` ([`STAGE_COST_FIELD`]) is the one name
    /// readers interpret. Empty when missing.
    #[serde(default)]
    pub metadata: Metadata,
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
    fn the_quick_timestamp_parser_agrees_with_the_general_one() {
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
            assert_eq!(parse_timestamp(s), parse_timestamp_general(s), "{s:?}");
        }
    }

    #[test]
    fn timestamps_print_as_chronos_pattern_would() {
        let chrono_way = |t: NaiveDateTime| {
            if t.and_utc().timestamp_subsec_micros() == 0 {
                t.format("%Y-%m-%dT%H:%M:%S").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
            }
        };
        for s in [
            "2026-01-02T03:04:05",
            "2026-01-02T03:04:05.000001",
            "2026-12-31T23:59:59.999999",
            "2026-01-02T03:04:05.1234569",
            "0001-01-01T00:00:00.5",
            "9999-12-31T23:59:59",
        ] {
            let t = parse_timestamp(s).unwrap();
            assert_eq!(format_naive(t), chrono_way(t), "{s:?}");
        }
        let far = chrono::NaiveDate::from_ymd_opt(12345, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 6)
            .unwrap();
        assert_eq!(format_naive(far), chrono_way(far));
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap();
        assert_eq!(format_naive(leap), chrono_way(leap));
    }

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

    /// Texts a Python writer may produce: timestamps with and without a fraction, the
    /// 30-byte inline limit and one past it, unicode, escapes, a long message.
    fn wire_texts() -> Vec<String> {
        vec![
            String::new(),
            "2025-10-22T20:30:45".into(),
            "2025-10-22T20:30:45.123456".into(),
            "2025-10-22T20:30:45.123456+00:00".into(),
            "x".repeat(INLINE_CAP),
            "x".repeat(INLINE_CAP + 1),
            "développement 🚀 \u{0}\t\"quoted\"\\".into(),
            "é".repeat(INLINE_CAP / 2) + "é",
            "y".repeat(100_000),
        ]
    }

    #[test]
    fn inline_str_holds_exactly_the_text_it_was_given() {
        for text in wire_texts() {
            let s = InlineStr::new(&text);
            assert_eq!(s.as_str(), text);
            assert_eq!(InlineStr::from(text.clone()), s);
            assert_eq!(String::from(s.clone()), text);
            assert_eq!(s.to_string(), text);
        }
    }

    #[test]
    fn inline_str_serializes_as_the_string_did() {
        for text in wire_texts() {
            let json = serde_json::to_string(&text).unwrap();
            let s: InlineStr = serde_json::from_str(&json).unwrap();
            assert_eq!(serde_json::to_string(&s).unwrap(), json);
        }
    }

    #[test]
    fn inline_str_orders_and_hashes_as_its_text() {
        use std::collections::HashSet;
        let (a, b) = (InlineStr::new("a"), InlineStr::new(&"b".repeat(40)));
        assert!(a < b);
        let set: HashSet<InlineStr> = [a.clone()].into();
        assert!(set.contains("a"));
    }

    #[test]
    fn inline_str_is_no_bigger_than_a_string_slot_and_its_heap_chunk() {
        assert_eq!(std::mem::size_of::<InlineStr>(), 32);
        assert_eq!(std::mem::size_of::<Option<InlineStr>>(), 32);
    }

    /// Metadata objects as Python may write them: nested, unicode, escapes, a duplicate key,
    /// numbers of every kind, a huge value, and keys out of order.
    const METADATA: &[&str] = &[
        r#"{}"#,
        r#"{"title":"Scale card 1"}"#,
        r#"{"z":1,"a":2,"m":{"y":[1,2,{"b":null,"a":true}],"x":"é"}}"#,
        r#"{"title":"caf\u00e9 \ud83d\ude80 \"q\" \\ \n\t","priority":"high"}"#,
        r#"{"k":1,"k":2,"j":0,"k":3}"#,
        r#"{"int":-12,"big":18446744073709551615,"f":1.0,"e":1e300,"small":1.5e-7}"#,
        r#"{"cost_usd":0.125,"cost":null,"tags":["a","b"],"nested":{"deep":{"deeper":{}}}}"#,
    ];

    #[test]
    fn metadata_serializes_to_the_bytes_the_map_did() {
        let huge = format!(r#"{{"blob":"{}","a":1}}"#, "x".repeat(1 << 20));
        for raw in METADATA.iter().copied().chain([huge.as_str()]) {
            let map: Map<String, Value> = serde_json::from_str(raw).unwrap();
            let meta: Metadata = serde_json::from_str(raw).unwrap();
            assert_eq!(
                serde_json::to_string(&meta).unwrap(),
                serde_json::to_string(&map).unwrap(),
                "{raw:.80}"
            );
            assert_eq!(
                serde_json::to_string_pretty(&meta).unwrap(),
                serde_json::to_string_pretty(&map).unwrap()
            );
            assert_eq!(meta.to_map(), map);
            assert_eq!(Map::from(meta.clone()), map);
            assert_eq!(Metadata::from(map), meta);
        }
    }

    #[test]
    fn metadata_keeps_the_last_of_duplicate_keys_as_the_map_does() {
        let meta: Metadata = serde_json::from_str(r#"{"k":1,"k":2,"j":0,"k":3}"#).unwrap();
        assert_eq!(meta.len(), 2);
        assert_eq!(meta["k"], 3);
        assert_eq!(meta.keys().collect::<Vec<_>>(), ["j", "k"]);
    }

    #[test]
    fn metadata_lookups_behave_as_the_map_did() {
        let mut meta: Metadata = serde_json::from_str(r#"{"b":2,"a":"x"}"#).unwrap();
        assert_eq!(meta.get("a"), Some(&Value::from("x")));
        assert_eq!(meta.get("c"), None);
        assert_eq!(meta["c"], Value::Null);
        assert_eq!(meta.insert("c".into(), 3.into()), None);
        assert_eq!(meta.insert("a".into(), 1.into()), Some("x".into()));
        assert_eq!(meta.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(meta.values().cloned().collect::<Vec<_>>(), [1, 2, 3]);
        meta.clear();
        assert!(meta.is_empty());
    }

    #[test]
    fn documents_read_back_exactly_what_python_wrote() {
        let raw = r#"{"card_id":"c-1","status":"completed","total_stages":2,"completed_stages":2,
            "current_stage":"révision","start_time":"2025-10-22T20:30:45","end_time":"2025-10-22T20:31:00.000001",
            "metadata":{"title":"Ünïcode \"t\"","priority":"high","n":{"x":[1,{"y":2}]}},"duration_seconds":15.000001}"#;
        let doc: PipelineDoc = serde_json::from_str(raw).unwrap();
        let want: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), want);
        let stage = r#"{"stage_name":"development","status":"running","progress_percent":45,
            "message":"half way ✓","timestamp":"2025-10-22T20:30:45.123456","metadata":{"cost_usd":0.5}}"#;
        let doc: StageDoc = serde_json::from_str(stage).unwrap();
        let want: Value = serde_json::from_str(stage).unwrap();
        assert_eq!(serde_json::to_value(&doc).unwrap(), want);
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
