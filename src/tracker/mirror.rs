//! What a writer knows of the pipeline documents it wrote: the fast path of a stage update.
//!
//! Inside `scripts/tracker.lua` the general stage edit decodes the stored document with
//! `cjson.decode` and edits its text in Lua; that was most of the Lua time of an update, and
//! the Lua VM was most of the server's time (docs/BENCHMARKS.md, "Tracker"). A card's writer is
//! usually the process that started it, so it can know the document's exact text: the start
//! document it sent, then its own edits of it. It keeps that text per card ([`Mirrors`]),
//! computes a stage update's edit itself, the same edit the script's general path makes
//! (`stage_edit`), and sends the text it expects to find with the new one (op `stage_known`).
//! The script writes the new text only when the stored text is exactly the expected one, a
//! string comparison; otherwise it takes the general path and answers that the copy was stale,
//! and the writer drops it. A document another writer changed (Python's read-modify-write, a
//! second process), one that expired, or one that is not JSON at all is therefore handled
//! exactly as without this module: the fast path only ever replaces a text this project
//! produced, which is a JSON object by construction.
//!
//! Limits: a card is known only to the handle (and its clones) that started it, from its
//! start on; after a stale answer, a failed write, a completion or eviction (at most
//! [`MIRROR_CARDS`] cards, documents up to [`MAX_MIRROR_TEXT`] bytes) its updates take the
//! general path until it is started again. The texts are byte for byte what the general path
//! writes (`tests/tracker.rs`, `known_documents_are_written_as_the_script_would_edit_them`).

use std::collections::HashMap;

use super::{PipelineStart, to_json};
use crate::model::format_naive;

/// Cards whose document text a tracker handle keeps at most (one entry is dropped to make room).
pub(super) const MIRROR_CARDS: usize = 4096;
/// Longest document text kept; a card with more metadata takes the general path.
pub(super) const MAX_MIRROR_TEXT: usize = 64 * 1024;

/// One card's pipeline document as this writer last wrote it, in parts: the fields a stage
/// update changes and the fixed text between them. The layout is that of
/// `to_json(&start_doc(..))` (keys sorted, compact), so the start document is unchanged.
#[derive(Debug, Clone)]
pub(super) struct DocMirror {
    /// `_completed` names, and the list as JSON.
    completed: Vec<String>,
    completed_json: String,
    /// `_stages` names, and the list as JSON.
    stages: Vec<String>,
    stages_json: String,
    /// `,"card_id":<id>,"completed_stages":`
    mid: String,
    completed_stages: i64,
    total_stages: i64,
    /// `current_stage`'s name and its JSON (`null` when none).
    current: Option<String>,
    current_json: String,
    /// `,"end_time":null,"metadata":…,"start_time":…,"status":"running","total_stages":N}`
    tail: String,
    /// The whole text, as stored.
    text: String,
}

impl DocMirror {
    /// The start document of `s`, which is what `start_pipeline` stores.
    pub(super) fn start(s: &PipelineStart) -> Self {
        let mid = format!(",\"card_id\":{},\"completed_stages\":", to_json(&s.card_id));
        let tail = format!(
            ",\"end_time\":null,\"metadata\":{},\"start_time\":{},\"status\":\"running\",\
             \"total_stages\":{}}}",
            to_json(&s.metadata),
            to_json(&format_naive(s.at.naive_utc())),
            s.total_stages
        );
        let mut m = Self {
            completed: Vec::new(),
            completed_json: "[]".into(),
            stages: Vec::new(),
            stages_json: "[]".into(),
            mid,
            completed_stages: 0,
            total_stages: i64::from(s.total_stages),
            current: None,
            current_json: "null".into(),
            tail,
            text: String::new(),
        };
        m.text = m.render();
        m
    }

    /// The stored text.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut t = String::with_capacity(self.text.len() + 64);
        t.push_str("{\"_completed\":");
        t.push_str(&self.completed_json);
        t.push_str(",\"_stages\":");
        t.push_str(&self.stages_json);
        t.push_str(&self.mid);
        let _ = write!(t, "{}", self.completed_stages);
        t.push_str(",\"current_stage\":");
        t.push_str(&self.current_json);
        t.push_str(&self.tail);
        t
    }

    /// Applies stage `name` (`name_json` its JSON) reporting `status`, as `stage_edit` in the
    /// script does: `current_stage` set, the name appended to `_stages` if new, and on the
    /// first `completed` of the stage appended to `_completed` with `completed_stages` raised
    /// by one, capped at `total_stages`. The previous text, or `None` when nothing in the text
    /// changes (the script then only refreshes the TTL). In place: no copy of the lists.
    pub(super) fn stage(&mut self, name: &str, name_json: &str, status: &str) -> Option<String> {
        let mut changed = false;
        if self.current.as_deref() != Some(name) {
            self.current = Some(name.to_owned());
            self.current_json.clear();
            self.current_json.push_str(name_json);
            changed = true;
        }
        if !self.stages.iter().any(|s| s == name) {
            self.stages.push(name.to_owned());
            append(&mut self.stages_json, name_json);
            changed = true;
        }
        if status == "completed" && !self.completed.iter().any(|s| s == name) {
            self.completed.push(name.to_owned());
            append(&mut self.completed_json, name_json);
            self.completed_stages = (self.completed_stages + 1).min(self.total_stages).max(0);
            changed = true;
        }
        if !changed {
            return None;
        }
        let text = self.render();
        Some(std::mem::replace(&mut self.text, text))
    }
}

/// Appends `item_json` to JSON list text `list`, as the script's `list_add` writes it.
fn append(list: &mut String, item_json: &str) {
    list.pop();
    if list.len() > 1 {
        list.push(',');
    }
    list.push_str(item_json);
    list.push(']');
}

/// The known documents of one tracker handle (shared by its clones), by card id.
#[derive(Debug, Default)]
pub(super) struct Mirrors(std::sync::Mutex<HashMap<String, DocMirror>>);

/// A stage step's knowledge of the document: the text expected, and the new text (`""` when
/// the step changes nothing in it).
pub(super) type Known = (String, String);

impl Mirrors {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DocMirror>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `card_id`'s start document (replacing what was known of the card).
    pub(super) fn started(&self, card_id: &str, doc: DocMirror) {
        let mut m = self.lock();
        if doc.text.len() > MAX_MIRROR_TEXT {
            m.remove(card_id);
            return;
        }
        if m.len() >= MIRROR_CARDS && !m.contains_key(card_id) {
            // Any one: a writer of more than this many live cards loses the fast path for
            // the dropped card only.
            if let Some(k) = m.keys().next().cloned() {
                m.remove(&k);
            }
        }
        m.insert(card_id.to_owned(), doc);
    }

    /// The known texts for a stage step of `card_id`, if its document is known; the copy
    /// moves on to the new text at once, so that the next step of the card expects it.
    pub(super) fn stage(
        &self,
        card_id: &str,
        name: &str,
        name_json: &str,
        status: &str,
    ) -> Option<Known> {
        let mut m = self.lock();
        let doc = m.get_mut(card_id)?;
        match doc.stage(name, name_json, status) {
            None => Some((doc.text.clone(), String::new())),
            Some(_) if doc.text.len() > MAX_MIRROR_TEXT => {
                m.remove(card_id);
                None
            }
            Some(old) => Some((old, doc.text.clone())),
        }
    }

    /// Forgets `card_id`: its stored text is no longer known (stale, a failed write, done).
    pub(super) fn forget(&self, card_id: &str) {
        self.lock().remove(card_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::start_doc;
    use chrono::TimeZone;
    use serde_json::json;

    fn start(meta: serde_json::Value) -> PipelineStart {
        PipelineStart {
            card_id: "c/1 \"q\"".into(),
            total_stages: 2,
            metadata: meta.as_object().unwrap().clone(),
            at: chrono::Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .unwrap()
                .checked_add_signed(chrono::Duration::microseconds(500_000))
                .unwrap(),
        }
    }

    #[test]
    fn the_start_text_is_the_start_documents_json() {
        for meta in [
            json!({}),
            json!({"title": "T", "z": [1, {"a": null}], "é": "\u{1}"}),
        ] {
            let s = start(meta);
            assert_eq!(DocMirror::start(&s).text(), to_json(&start_doc(&s)));
        }
    }

    #[test]
    fn stage_edits_follow_the_scripts_rules() {
        let s = start(json!({"title": "T"}));
        let mut d = DocMirror::start(&s);
        let first = d.text().to_owned();
        assert_eq!(d.stage("a", "\"a\"", "running"), Some(first));
        assert!(d.stage("a", "\"a\"", "completed").is_some());
        assert!(d.stage("a", "\"a\"", "completed").is_none(), "counted once");
        assert!(
            d.stage("a", "\"a\"", "running").is_none(),
            "nothing changes"
        );
        assert!(d.stage("b", "\"b\"", "completed").is_some());
        assert!(d.stage("c", "\"c\"", "completed").is_some());
        let v: serde_json::Value = serde_json::from_str(d.text()).unwrap();
        assert_eq!(v["current_stage"], "c");
        assert_eq!(v["_stages"], json!(["a", "b", "c"]));
        assert_eq!(v["_completed"], json!(["a", "b", "c"]));
        assert_eq!(v["completed_stages"], 2, "capped at total_stages");
        assert_eq!(v["metadata"], json!({"title": "T"}));
        assert_eq!(v["status"], "running");
    }

    #[test]
    fn a_known_card_moves_on_and_a_forgotten_one_is_unknown() {
        let s = start(json!({}));
        let m = Mirrors::default();
        m.started(&s.card_id, DocMirror::start(&s));
        let (old, new) = m.stage(&s.card_id, "a", "\"a\"", "running").unwrap();
        assert_eq!(old, to_json(&start_doc(&s)));
        let (old2, same) = m.stage(&s.card_id, "a", "\"a\"", "running").unwrap();
        assert_eq!((old2, same.as_str()), (new, ""));
        m.forget(&s.card_id);
        assert!(m.stage(&s.card_id, "a", "\"a\"", "running").is_none());
    }

    #[test]
    fn oversized_documents_are_not_kept() {
        let s = start(json!({"blob": "x".repeat(MAX_MIRROR_TEXT)}));
        let m = Mirrors::default();
        m.started(&s.card_id, DocMirror::start(&s));
        assert!(m.stage(&s.card_id, "a", "\"a\"", "running").is_none());
    }
}
