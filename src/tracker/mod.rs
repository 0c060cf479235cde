//! The pipeline tracker: where each card's pipeline stands, in the Python original's documents
//! and pub/sub events (`shared/PROTOCOL.md` A), so Python and this crate can drive and read the
//! same cards.
//!
//! What it fixes while staying readable by Python:
//! - every write is one atomic step (a Lua script on Redis, one lock in memory), so parallel
//!   workers updating stages of one card lose nothing;
//! - `completed_stages` counts *distinct* stages reported completed since the pipeline started
//!   (a repeated or late `completed` report counts once) and never exceeds `total_stages`;
//! - card ids are validated ([`crate::keys::validate_card_id`]) and glob-escaped wherever they
//!   go into a pattern, so one card can never read or match another's keys.
//!
//! Extensions (PROTOCOL B, ignored and preserved by Python): the card index
//! ([`crate::keys::KeySpace::pipeline_index`]), a capped per-card event history stream
//! ([`crate::keys::KeySpace::event_history`]), and two fields in the pipeline document:
//! `_stages` (stage names in first-reported order, so stages read back in stage order without
//! SCAN) and `_completed` (the stages already counted in `completed_stages`).
//!
//! Where things live: [`TrackerStore`] is the job's storage interface, implemented by
//! [`RedisTracker`] (`redis.rs`, scripts in `scripts/`) and [`MemoryTracker`] (`memory.rs`);
//! [`Card`] is its read model (`card.rs`), patched by live events with the same rules as the
//! writes (`live.rs`, [`Card::apply_event`]); [`Tracker`] (`handle.rs`) is the handle pipelines
//! use: it validates, stamps the time, and sends every write through the
//! [`crate::buffer::OutageBuffer`] so that a Redis outage never fails or stalls a pipeline.

mod card;
mod changes;
mod handle;
mod hints;
mod landed;
mod live;
mod memory;
mod mirror;
pub(crate) mod redis;
pub mod stream;

pub use self::card::{Card, CardsRead};
pub(crate) use self::card::{assemble_card, sort_cards};
pub use self::changes::{
    CLUSTER_WRITE_SKEW_SECONDS, CardChanges, ChangeHints, FULL_READ_CHUNK, ReadCursor,
};
pub use self::handle::{StageUpdate, Tracker};
pub use self::memory::MemoryTracker;
pub use self::redis::RedisTracker;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::keys::{validate_card_id, validate_name};
use crate::model::{
    Malformed, PipelineDoc, PipelineEvent, PipelineStatus, StageDoc, StageStatus, format_naive,
};
use crate::store::Store;

/// Largest pipeline or stage document a reader accepts; anything bigger is reported as
/// malformed instead of being parsed and shown.
pub const MAX_DOC_BYTES: usize = 1 << 20;

/// A pipeline starts: written as `status: running`, no stage completed yet.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineStart {
    /// The card (pipeline) id; must pass [`validate_card_id`] (no `:stage:`, no leading `:`).
    pub card_id: String,
    /// How many stages the pipeline has (PROTOCOL `total_stages`).
    pub total_stages: u32,
    /// Free-form, e.g. `title` and `priority`; stored and returned exactly as given.
    pub metadata: Map<String, Value>,
    /// When it started (the document's `start_time`).
    pub at: DateTime<Utc>,
}

/// A stage reports its status.
#[derive(Debug, Clone, PartialEq)]
pub struct StageReport {
    /// The card the stage belongs to; must pass [`validate_card_id`].
    pub card_id: String,
    /// The stage's name, the last segment of its key; must pass [`validate_name`].
    pub stage_name: String,
    /// The stage's new status; the first `completed` of each stage raises the pipeline's
    /// `completed_stages` by one (capped at `total_stages`; Python counts every report).
    pub status: StageStatus,
    /// 0-100.
    pub progress_percent: Option<u8>,
    /// Free text shown with the stage; `None` writes `null`.
    pub message: Option<String>,
    /// Free-form stage metadata, replacing the previous report's; a number under
    /// [`STAGE_COST_FIELD`](crate::model::STAGE_COST_FIELD) is the stage's LLM spend.
    pub metadata: Map<String, Value>,
    /// When the report was made (the document's and event's `timestamp`).
    pub at: DateTime<Utc>,
}

/// A pipeline ends.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineCompletion {
    /// The card (pipeline) id; must pass [`validate_card_id`].
    pub card_id: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: PipelineStatus,
    /// Free text carried by the `pipeline_completed` event; `None` sends `null`.
    pub message: Option<String>,
    /// When it ended (the document's `end_time`; `duration_seconds` is measured up to it).
    pub at: DateTime<Utc>,
}

impl PipelineStart {
    /// Fails with [`Error::InvalidName`] when the card id cannot be used in a key.
    pub fn validate(&self) -> Result<()> {
        validate_card_id(&self.card_id)?;
        Ok(())
    }
}

impl StageReport {
    /// Fails when the card id or stage name cannot be used in a key, or
    /// `progress_percent` is above 100.
    pub fn validate(&self) -> Result<()> {
        validate_card_id(&self.card_id)?;
        validate_name("stage name", &self.stage_name)?;
        if let Some(p) = self.progress_percent
            && p > 100
        {
            return Err(Error::InvalidInput(format!(
                "progress_percent {p} of stage {:?} is above 100",
                self.stage_name.escape_debug().take(80).collect::<String>()
            )));
        }
        Ok(())
    }
}

impl PipelineCompletion {
    /// Fails when the card id cannot be used in a key, or `status` is not final
    /// (`queued` or `running`).
    pub fn validate(&self) -> Result<()> {
        validate_card_id(&self.card_id)?;
        if !self.status.is_final() {
            return Err(Error::InvalidInput(format!(
                "a pipeline completes as completed, failed or cancelled, not {}",
                self.status
            )));
        }
        Ok(())
    }
}

/// One entry of a card's event history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The stream entry id (`<ms>-<seq>`); pass it as `after` to read only newer events.
    pub id: String,
    /// The event, or why its entry could not be read as one.
    pub event: std::result::Result<PipelineEvent, Malformed>,
}

/// Live events: a payload that is not a Python event shape comes as `Err`. The stream ends
/// when the connection is lost; re-read the card (or its history) and subscribe again. One
/// card's events arrive in the order they were written; on Cluster, events of cards held by
/// different nodes may interleave in another order.
pub type EventStream = BoxStream<'static, std::result::Result<PipelineEvent, Malformed>>;

/// The tracker's storage interface, over Redis ([`RedisTracker`]) or memory
/// ([`MemoryTracker`]). Writes do not buffer: use [`Tracker`].
#[async_trait::async_trait]
pub trait TrackerStore: Store {
    /// Writes a fresh pipeline document (replacing any earlier run of the card), appends and
    /// publishes `pipeline_started`.
    async fn start_pipeline(&self, start: &PipelineStart) -> Result<()>;
    /// Writes the stage document and, atomically, the pipeline document's `current_stage` and
    /// `completed_stages`; appends and publishes `stage_updated`. A card without a pipeline
    /// document gets its stage document and event only, as in the original.
    async fn update_stage(&self, report: &StageReport) -> Result<()>;
    /// Sets the final status, `end_time` and `duration_seconds` and clears `current_stage`;
    /// appends and publishes `pipeline_completed`. A card without a pipeline document gets
    /// nothing: no document, no event (as in the original).
    async fn complete_pipeline(&self, completion: &PipelineCompletion) -> Result<()>;
    /// One card with its stages in stage order; `None` when it has no pipeline document.
    /// A malformed pipeline document is an [`Error::Malformed`]; malformed stage documents
    /// are left out (and logged).
    async fn get_card(&self, card_id: &str) -> Result<Option<Card>>;
    /// Ids of the live cards: the index first (most recently written first), then cards only
    /// a SCAN finds (written by Python).
    async fn list_cards(&self) -> Result<Vec<String>>;
    /// Every live card with its stages, in a bounded number of round trips (the dashboard's
    /// read). `now` decides which index entries are still live.
    async fn read_cards(&self, now: DateTime<Utc>) -> Result<CardsRead>;
    /// [`TrackerStore::read_cards`], and the cursor that [`TrackerStore::read_changes`]
    /// continues from (`scan`: where the previous cursor's walk for Python-written cards
    /// stood). `None` for the cursor: this store cannot read only changes, read in full. The
    /// default reads in full.
    async fn read_cards_tracked(
        &self,
        now: DateTime<Utc>,
        scan: crate::connection::ScanCursor,
    ) -> Result<(CardsRead, Option<ReadCursor>)> {
        let _ = scan;
        Ok((self.read_cards(now).await?, None))
    }
    /// The cards changed since `cursor`'s read, which it advances: applied to that read's
    /// cards, they give what a full read would (within what [`ReadCursor`] says a read of
    /// changes cannot see). `None`: no read of changes can be made now, read in full. A read
    /// that fails leaves the cursor as it was. The default always says `None`.
    async fn read_changes(
        &self,
        cursor: &mut ReadCursor,
        hints: ChangeHints,
    ) -> Result<Option<CardChanges>> {
        let _ = (cursor, hints);
        Ok(None)
    }
    /// Every live card read as [`TrackerStore::read_cards_tracked`] would, but only the cards
    /// that differ from what `cursor`'s reads gave (or whose id is in `recheck`) come back as
    /// changed, and the cards no longer found as removed; the cursor becomes the one a full
    /// read would start. `None`: no audit can be made now, read in full. A failed audit leaves
    /// the cursor as it was. The default always says `None`.
    async fn audit_cards(
        &self,
        cursor: &mut ReadCursor,
        recheck: &std::collections::HashSet<String>,
    ) -> Result<Option<CardChanges>> {
        let _ = (cursor, recheck);
        Ok(None)
    }
    /// A card's recorded events, oldest first: the last `limit` ones, or the first `limit`
    /// after the entry `after`.
    async fn history(
        &self,
        card_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>>;
    /// Live events of one card (`Some`) or of every card (`None`).
    async fn subscribe(&self, card_id: Option<&str>) -> Result<EventStream>;
}

// ---- Wire documents shared by both backends ----

/// The pipeline document of a fresh start, with empty extension lists.
pub(crate) fn start_doc(s: &PipelineStart) -> Value {
    let mut doc = Map::new();
    doc.insert("card_id".into(), Value::String(s.card_id.clone()));
    doc.insert("status".into(), "running".into());
    doc.insert("total_stages".into(), s.total_stages.into());
    doc.insert("completed_stages".into(), 0.into());
    doc.insert("current_stage".into(), Value::Null);
    doc.insert("start_time".into(), format_naive(s.at.naive_utc()).into());
    doc.insert("end_time".into(), Value::Null);
    doc.insert("metadata".into(), Value::Object(s.metadata.clone()));
    doc.insert("_stages".into(), Value::Array(Vec::new()));
    doc.insert("_completed".into(), Value::Array(Vec::new()));
    Value::Object(doc)
}

pub(crate) fn started_event(s: &PipelineStart) -> PipelineEvent {
    PipelineEvent::PipelineStarted {
        card_id: s.card_id.clone(),
        total_stages: s.total_stages.into(),
        timestamp: format_naive(s.at.naive_utc()),
        metadata: s.metadata.clone(),
    }
}

pub(crate) fn stage_doc(r: &StageReport) -> StageDoc {
    StageDoc {
        stage_name: r.stage_name.as_str().into(),
        status: r.status,
        progress_percent: r.progress_percent.map(i64::from),
        message: r.message.clone(),
        timestamp: format_naive(r.at.naive_utc()).into(),
        metadata: r.metadata.clone().into(),
    }
}

pub(crate) fn stage_event(r: &StageReport) -> PipelineEvent {
    PipelineEvent::StageUpdated {
        card_id: r.card_id.clone(),
        stage_name: r.stage_name.clone(),
        status: r.status,
        progress_percent: r.progress_percent.map(i64::from),
        message: r.message.clone(),
        timestamp: format_naive(r.at.naive_utc()),
    }
}

/// Serializes a wire value; these types always serialize, the fallback only keeps a bug from
/// becoming a panic in a pipeline.
pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Microseconds from the document's `start_time` to `end`, if the start time parses.
pub(crate) fn duration_micros(start_time: &str, end: DateTime<Utc>) -> Option<i64> {
    let start = crate::model::parse_timestamp(start_time)?;
    end.naive_utc()
        .signed_duration_since(start)
        .num_microseconds()
}

// ---- Reading documents, shared by both backends ----

/// Parses one stored document, refusing oversized ones before parsing.
pub(crate) fn parse_doc_value(key: &str, raw: &[u8]) -> std::result::Result<Value, Malformed> {
    if raw.len() > MAX_DOC_BYTES {
        return Err(Malformed {
            key: key.to_owned(),
            reason: too_big(raw.len()),
        });
    }
    crate::model::parse_json::<Value>(key, raw)
}

/// A parsed pipeline document with the extension fields a reader uses.
#[derive(Debug, Clone)]
pub(crate) struct ParsedDoc {
    pub doc: PipelineDoc,
    /// `_stages`, when the document has it (written by this crate).
    pub stage_order: Option<Vec<String>>,
}

pub(crate) fn parse_pipeline(
    key: &str,
    value: &Value,
) -> std::result::Result<ParsedDoc, Malformed> {
    use serde::Deserialize;
    let doc = PipelineDoc::deserialize(value).map_err(|e| Malformed {
        key: key.to_owned(),
        reason: format!("not a pipeline document: {e}"),
    })?;
    let stage_order = value.get("_stages").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    });
    Ok(ParsedDoc { doc, stage_order })
}

pub(crate) fn parse_stage(key: &str, raw: &[u8]) -> std::result::Result<StageDoc, Malformed> {
    let bad = |reason: String| Malformed {
        key: key.to_owned(),
        reason,
    };
    if raw.len() > MAX_DOC_BYTES {
        return Err(bad(too_big(raw.len())));
    }
    // Straight into the type, no intermediate tree: the dashboard reads tens of thousands.
    let text = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8".into()))?;
    serde_json::from_str::<StageDoc>(text).map_err(|e| {
        bad(match e.classify() {
            serde_json::error::Category::Data => format!("not a stage document: {e}"),
            _ => format!("invalid JSON: {e}"),
        })
    })
}

fn too_big(len: usize) -> String {
    format!("document is {len} bytes, over the {MAX_DOC_BYTES} byte limit")
}

/// The stage names to fetch for a card: its recorded order, then names found otherwise
/// (SCAN, `current_stage`) that the order lacks.
pub(crate) fn stage_names(parsed: &ParsedDoc, found: Option<&BTreeSet<String>>) -> Vec<String> {
    let mut names: Vec<String> = parsed.stage_order.clone().unwrap_or_default();
    let mut seen: BTreeSet<String> = names.iter().cloned().collect();
    let extra = found
        .into_iter()
        .flatten()
        .cloned()
        .chain(parsed.doc.current_stage.as_deref().map(str::to_owned));
    for name in extra {
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    names
}

/// Parses an event payload (pub/sub message or history entry).
pub(crate) fn parse_event(
    source: &str,
    raw: &[u8],
) -> std::result::Result<PipelineEvent, Malformed> {
    if raw.len() > MAX_DOC_BYTES {
        return Err(Malformed {
            key: source.to_owned(),
            reason: format!("event is {} bytes, over the limit", raw.len()),
        });
    }
    crate::model::parse_json(source, raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05.5Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn start_doc_is_the_python_shape() {
        let doc = start_doc(&PipelineStart {
            card_id: "c1".into(),
            total_stages: 3,
            metadata: serde_json::json!({"title": "T"})
                .as_object()
                .unwrap()
                .clone(),
            at: at(),
        });
        assert_eq!(doc["status"], "running");
        assert_eq!(doc["start_time"], "2026-01-02T03:04:05.500000");
        assert_eq!(doc["current_stage"], Value::Null);
        assert_eq!(doc["end_time"], Value::Null);
        assert_eq!(doc["completed_stages"], 0);
        let parsed = parse_pipeline("k", &doc).unwrap();
        assert_eq!(parsed.doc.total_stages, 3);
        assert_eq!(parsed.stage_order, Some(vec![]));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let r = StageReport {
            card_id: "c".into(),
            stage_name: "s".into(),
            status: StageStatus::Running,
            progress_percent: Some(101),
            message: None,
            metadata: Map::new(),
            at: at(),
        };
        assert!(r.validate().unwrap_err().to_string().contains("above 100"));
        let c = PipelineCompletion {
            card_id: "c".into(),
            status: PipelineStatus::Running,
            message: None,
            at: at(),
        };
        assert!(c.validate().is_err());
        let s = PipelineStart {
            card_id: "a:stage:b".into(),
            total_stages: 1,
            metadata: Map::new(),
            at: at(),
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn oversized_and_broken_documents_are_malformed() {
        let big = vec![b' '; MAX_DOC_BYTES + 1];
        assert!(
            parse_doc_value("k", &big)
                .unwrap_err()
                .reason
                .contains("limit")
        );
        assert!(parse_doc_value("k", b"\xff\xfe").is_err());
        let wrong = serde_json::json!({"card_id": 1});
        assert!(parse_pipeline("k", &wrong).is_err());
        assert!(parse_stage("k", b"{\"stage_name\": \"x\"}").is_err());
    }

    #[test]
    fn stages_keep_their_recorded_order() {
        let mut doc = start_doc(&PipelineStart {
            card_id: "c".into(),
            total_stages: 3,
            metadata: Map::new(),
            at: at(),
        });
        doc["_stages"] = serde_json::json!(["b", "a"]);
        doc["current_stage"] = "z".into();
        let parsed = parse_pipeline("k", &doc).unwrap();
        let found: BTreeSet<String> = ["py".to_string()].into();
        assert_eq!(stage_names(&parsed, Some(&found)), ["b", "a", "py", "z"]);
        let mk = |name: &str, ts: &str| StageDoc {
            stage_name: name.into(),
            status: StageStatus::Completed,
            progress_percent: None,
            message: None,
            timestamp: ts.into(),
            metadata: Map::new().into(),
        };
        let stages = [
            ("a", mk("a", "2026-01-01T00:00:03")),
            ("b", mk("b", "2026-01-01T00:00:09")),
            ("py", mk("py", "2026-01-01T00:00:02")),
            ("z", mk("z", "2026-01-01T00:00:01")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let card = assemble_card(parsed.clone(), stages);
        let names: Vec<_> = card.stages.iter().map(|s| s.stage_name.as_str()).collect();
        assert_eq!(names, ["b", "a", "z", "py"]);
        assert_eq!(card.cost_usd, None, "no cost anywhere: unknown, not zero");

        // A card's cost: its own metadata, else the sum of its stages' `cost_usd`.
        let costed = |name: &str, cost: Value| {
            let mut s = mk(name, "2026-01-01T00:00:01");
            s.metadata.insert("cost_usd".into(), cost);
            (name.to_string(), s)
        };
        let stages: HashMap<String, StageDoc> = [
            costed("a", 0.25.into()),
            costed("b", 0.5.into()),
            costed("py", "not a number".into()),
        ]
        .into_iter()
        .collect();
        let card = assemble_card(parsed.clone(), stages.clone());
        assert_eq!(card.cost_usd, Some(0.75));
        let mut own = parsed;
        own.doc.metadata.insert("cost_usd".into(), 2.0.into());
        assert_eq!(assemble_card(own, stages).cost_usd, Some(2.0));
    }
}
