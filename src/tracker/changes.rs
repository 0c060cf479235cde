//! Reading only the cards that changed since the previous read, so that a dashboard polling
//! every second costs what changes, not what exists (a fleet keeps every card of the last day).
//!
//! The card index is scored by the server's `TIME` at each write (see `scripts/`), so a reader
//! compares it with one clock whatever the writers' clocks say. A full read
//! ([`TrackerStore::read_cards_tracked`]) starts a [`ReadCursor`]: the index node's time of
//! the read, every listed card id with its index score, the Python-written cards known, and
//! the stage names a card's documents do not list. Each later read
//! ([`TrackerStore::read_changes`]) then costs a fixed number of round trips:
//!
//! 1. on the index key's node, `TIME` then `ZRANGEBYSCORE index (previous time − overlap) +inf
//!    WITHSCORES` (in that order, so every write after the `TIME` is seen by the next read),
//!    beside one bounded `SCAN` step per master for Python-written cards and the slot map;
//! 2. the pipeline documents of the cards to read (new or re-scored index entries, Python cards
//!    the step found or a live event named, cards whose cost attribution moved);
//! 3. their stage documents.
//!
//! Cards whose index score is older than the server's time minus the TTL leave as removed, as a
//! full read would leave them out. The overlap (`tracker.poll_overlap_seconds`) covers a server
//! clock that steps back (a write then scores below the previous read's time, and its new
//! score is what makes it read). On Cluster an index write may land before its card's
//! documents (they are written by commands in flight together), so a new score is read by the
//! first read that starts [`CLUSTER_WRITE_SKEW_SECONDS`] after it (its live event shows the
//! write meanwhile), and an entry a full read found within that time is read again; on a
//! standalone server one script writes documents and index together, so every entry is read
//! once, at the first read that lists its score.
//!
//! What a poll of changes cannot see is left to the next full read: a card deleted by hand
//! (its index entry stays), a Python-written stage of a card this crate writes, a Python card
//! that expired. The periodic one is an audit ([`RedisTracker::audit`]): it reads every card
//! in chunks and sends only those whose fingerprint differs from the cursor's, and the cards
//! it no longer finds as removed. The cursor holds ids, scores, a few names and a fingerprint
//! per card, never card copies.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::Hasher;

use redis::Value;

use super::hints::StageHints;
use super::redis::{Discovered, RedisTracker};
use super::{Card, CardsRead, ParsedDoc, parse_doc_value, parse_pipeline, sort_cards};
use crate::connection::ScanCursor;
use crate::error::Result;
use crate::model::Malformed;

/// How long after its index entry a card's documents may land on Cluster, where the write
/// sends them as commands in flight together (they land within milliseconds of each other;
/// one second leaves room for a redirect). A read of changes leaves a score younger than
/// this for a later read, so each write costs one read; a full read reads such an entry again
/// at the next read. A document later still (a command retried for longer) is seen at the
/// card's next write or the next full read.
pub const CLUSTER_WRITE_SKEW_SECONDS: f64 = 1.0;

/// Where an incremental reader stands after a read: enough to read only what changed next
/// time, and to know what left. Made by a full read, advanced by each read of changes.
#[derive(Debug, Clone, Default)]
pub struct ReadCursor {
    /// The index node's `TIME` at the previous read, seconds.
    pub(crate) server_time: f64,
    /// Card ids listed by the index, with their scores (the server time of their last write).
    pub(crate) indexed: HashMap<String, f64>,
    /// Cards found without an index entry (written by Python).
    pub(crate) python: HashSet<String>,
    /// Stage names found by SCAN or events that a card's `_stages` does not list (all of a
    /// Python card's): the documents alone would not name them.
    pub(crate) stage_hints: HashMap<String, BTreeSet<String>>,
    /// A card whose document names another card id than its key: the id it is shown under.
    pub(crate) shown_as: HashMap<String, String>,
    /// What did not parse, per card id (its document or stages).
    pub(crate) card_malformed: HashMap<String, Vec<Malformed>>,
    /// What did not parse and belongs to no card (the index, key names).
    pub(crate) other_malformed: Vec<Malformed>,
    /// The bounded walk for Python-written cards.
    pub(crate) scan: ScanCursor,
    /// Per card shown (by key id): the [`fingerprint`] of the card as last read, so the
    /// periodic audit sends only the cards that differ. Eight bytes a card, not a copy.
    pub(crate) fingerprints: HashMap<String, u64>,
    /// On Cluster, cards with a write that no read has seen once
    /// [`CLUSTER_WRITE_SKEW_SECONDS`] had passed since its score (the documents may have come
    /// after the read): the oldest such score. The cards written in the last second or two.
    pub(crate) unsettled: HashMap<String, f64>,
}

impl ReadCursor {
    /// Cards the cursor knows (listed or found), shown or not.
    pub fn len(&self) -> usize {
        self.indexed.len() + self.python.len()
    }

    /// Whether the cursor knows no card.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many passes the bounded walk for Python-written cards has finished.
    pub fn scan_passes(&self) -> u64 {
        self.scan.passes()
    }

    /// Every malformed entry known: the whole list a full read would give.
    fn all_malformed(&self) -> Vec<Malformed> {
        let mut all = self.other_malformed.clone();
        let mut ids: Vec<&String> = self.card_malformed.keys().collect();
        ids.sort();
        for id in ids {
            all.extend(self.card_malformed[id].iter().cloned());
        }
        all
    }

    fn shown_id(&self, id: &str) -> String {
        self.shown_ref(id).to_owned()
    }

    /// The id a card is shown under, borrowed (the audit looks it up for every card).
    fn shown_ref<'a>(&'a self, id: &'a str) -> &'a str {
        self.shown_as.get(id).map_or(id, String::as_str)
    }

    fn knows(&self, id: &str) -> bool {
        self.indexed.contains_key(id) || self.python.contains(id)
    }

    /// Records a card's index score as read now. On Cluster (`landed_by` the read's time less
    /// the skew) a score younger than that stays unsettled: its documents may have come after.
    fn record_read_score(&mut self, id: String, score: f64, landed_by: Option<f64>) {
        if landed_by.is_some_and(|t| score > t) {
            self.unsettled.insert(id.clone(), score);
        } else {
            self.unsettled.remove(&id);
        }
        self.indexed.insert(id, score);
    }
}

/// What the caller knows should be read again besides what the index says.
#[derive(Debug, Clone, Default)]
pub struct ChangeHints {
    /// Cards a live event named, with the stage names the events gave: a Python-written card
    /// changes without touching the index, so its events are the quick way to learn of it.
    pub named: HashMap<String, BTreeSet<String>>,
    /// Cards to read again whatever the index says (e.g. their attributed cost moved).
    pub recheck: HashSet<String>,
}

/// The cards changed since a cursor's previous read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CardChanges {
    /// Cards written since, each whole: each replaces the card of its id, or is new.
    pub changed: Vec<Card>,
    /// Ids of cards gone since (expired, or their document went or stopped parsing).
    pub removed: Vec<String>,
    /// Every malformed entry known, not only what this read found (as a full read lists).
    pub malformed: Vec<Malformed>,
}

/// One read of the index with its node's clock.
struct IndexRead {
    /// `TIME` on the index node, seconds.
    time: f64,
    /// Members and scores.
    entries: Vec<(Vec<u8>, f64)>,
    /// The index key holds another type.
    wrong_type: bool,
}

fn bulk_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A score, parsed in place (a full read or an audit parses one per card).
fn score_of(v: &Value) -> Option<f64> {
    match v {
        Value::Double(d) => Some(*d),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        other => bulk_text(other)?.parse().ok(),
    }
}

/// A `TIME` reply as seconds.
fn parse_time(v: &Value) -> Option<f64> {
    let Value::Array(parts) = v else { return None };
    let secs: f64 = bulk_text(parts.first()?)?.parse().ok()?;
    let micros: f64 = bulk_text(parts.get(1)?)?.parse().ok()?;
    Some(secs + micros / 1e6)
}

/// A `ZRANGEBYSCORE … WITHSCORES` reply (flat on RESP2, pairs on RESP3); entries that do not
/// parse are skipped.
fn parse_scored(v: Value) -> Vec<(Vec<u8>, f64)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let Some(item) = it.next() {
        match item {
            Value::Array(pair) if pair.len() == 2 => {
                if let (Value::BulkString(m), Some(s)) = (&pair[0], score_of(&pair[1])) {
                    out.push((m.clone(), s));
                }
            }
            Value::BulkString(m) => {
                if let Some(s) = it.next().as_ref().and_then(score_of) {
                    out.push((m, s));
                }
            }
            _ => {}
        }
    }
    out
}

impl RedisTracker {
    /// `TIME`, then the index entries scored from `min` (`None`: all), on the index key's
    /// node. `None` when the server refuses `TIME` (an ACL without it): no server clock, no
    /// reads of changes.
    async fn read_index(&self, min: Option<f64>) -> Result<Option<IndexRead>> {
        let index = self.core.keys.pipeline_index();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("TIME");
        let min = match min {
            Some(m) => format!("{m:.6}"),
            None => "-inf".into(),
        };
        pipe.cmd("ZRANGEBYSCORE")
            .arg(&index)
            .arg(min)
            .arg("+inf")
            .arg("WITHSCORES");
        let mut replies = self
            .core
            .redis
            .query_pipe_on_node_of(&pipe, &index)
            .await?
            .into_iter();
        let (Some(time), Some(range)) = (replies.next(), replies.next()) else {
            return Ok(None);
        };
        let time = match time {
            Value::ServerError(e) => {
                tracing::debug!(code = ?e.code(), "TIME refused; polls read in full");
                return Ok(None);
            }
            t => match parse_time(&t) {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        let (entries, wrong_type) = match range {
            Value::ServerError(e)
                if crate::error::ServerCode::parse(e.code())
                    == crate::error::ServerCode::WrongType =>
            {
                (Vec::new(), true)
            }
            Value::ServerError(e) => {
                return Err(self.core.redis.classify(redis::RedisError::from(e)));
            }
            v => (parse_scored(v), false),
        };
        Ok(Some(IndexRead {
            time,
            entries,
            wrong_type,
        }))
    }

    /// Reads the pipeline documents of `ids` and then their stages. Returns the cards read
    /// (by key id) with their [`raw_fingerprint`]s, the ids whose document is missing, and
    /// what did not parse by key id.
    ///
    /// With `known` (the cursor whose reads the caller's cards came from), a card whose
    /// documents read back byte for byte as when `known` recorded its fingerprint is not
    /// parsed: it goes to `unchanged` (the same bytes make the same card and the same
    /// malformed entries). Cards in `force` are parsed whatever their bytes.
    async fn read_ids(
        &self,
        ids: Vec<String>,
        hints: Hints<'_>,
        slots: Option<&crate::connection::SlotMap>,
        known: Option<(&ReadCursor, &HashSet<String>)>,
    ) -> Result<IdsRead> {
        let keys = &self.core.keys;
        let doc_keys: Vec<String> = ids.iter().map(|id| keys.pipeline(id)).collect();
        let raws = self.get_many(&doc_keys, slots).await?;
        let mut out = IdsRead::default();
        // Per document: the stage names to read, from a scan of the document that builds
        // nothing but them, or from its full parse where that scan fails.
        let mut docs: Vec<DocRead> = Vec::with_capacity(ids.len());
        for ((id, key), raw) in ids.into_iter().zip(doc_keys).zip(raws) {
            let Some(raw) = raw else {
                out.missing.push(id);
                continue;
            };
            let refs = (raw.len() <= super::MAX_DOC_BYTES)
                .then(|| serde_json::from_slice::<StageRefs>(&raw).ok())
                .flatten();
            let (order, current, parsed) = match refs {
                Some(r) => (r.order(), r.current(), None),
                None => match parse_doc_value(&key, &raw).and_then(|v| parse_pipeline(&key, &v)) {
                    Ok(p) => (
                        p.stage_order.clone(),
                        p.doc.current_stage.as_deref().map(str::to_owned),
                        Some(p),
                    ),
                    Err(m) => {
                        out.malformed.entry(id).or_default().push(m);
                        continue;
                    }
                },
            };
            let found: Vec<&str> = hints.of(&id).collect();
            let names = names_to_read(order.as_deref(), current.as_deref(), found.iter().copied());
            docs.push(DocRead {
                id,
                key,
                raw,
                order,
                names,
                found,
                parsed,
            });
        }
        let stage_keys: Vec<String> = docs
            .iter()
            .flat_map(|d| d.names.iter().map(|n| keys.stage(&d.id, n)))
            .collect();
        let mut stage_raws = self.get_many(&stage_keys, slots).await?.into_iter();
        let mut stage_keys = stage_keys.into_iter();
        for d in docs {
            let stages: Vec<(String, String, Option<Vec<u8>>)> = d
                .names
                .iter()
                .map(|n| {
                    let key = stage_keys.next().unwrap_or_default();
                    (n.clone(), key, stage_raws.next().flatten())
                })
                .collect();
            let print = raw_fingerprint(&d.raw, &stages);
            // Hints the document itself lists are not needed any more.
            let listed = d.order.as_deref().unwrap_or_default();
            let left: BTreeSet<String> = d
                .found
                .iter()
                .copied()
                .filter(|s| !listed.iter().any(|l| l == s))
                .map(str::to_owned)
                .collect();
            if !left.is_empty() {
                out.hints.insert(d.id.clone(), left);
            }
            if let Some((cursor, force)) = known
                && cursor.fingerprints.get(&d.id) == Some(&print)
                && !force.contains(&d.id)
                && !force.contains(cursor.shown_ref(&d.id))
            {
                out.unchanged.push((d.id, print));
                continue;
            }
            let parsed = match d.parsed {
                Some(p) => p,
                None => {
                    match parse_doc_value(&d.key, &d.raw).and_then(|v| parse_pipeline(&d.key, &v)) {
                        Ok(p) => p,
                        Err(m) => {
                            out.malformed.entry(d.id).or_default().push(m);
                            continue;
                        }
                    }
                }
            };
            let mut stages = stages;
            let names = names_to_read(
                parsed.stage_order.as_deref(),
                parsed.doc.current_stage.as_deref(),
                d.found.iter().copied(),
            );
            if known.is_none() && names == d.names {
                for name in d.order.iter().flatten() {
                    out.listed.push(&d.id, name);
                }
            }
            if names != d.names {
                // The scan and the parse disagree on the names (a document serde reads two
                // ways, e.g. a repeated field): read what the parse names.
                let again: Vec<String> = names.iter().map(|n| keys.stage(&d.id, n)).collect();
                let raws = self.get_many(&again, slots).await?;
                stages = names
                    .into_iter()
                    .zip(again)
                    .zip(raws)
                    .map(|((n, k), r)| (n, k, r))
                    .collect();
            }
            let mut docs_of_stages: HashMap<String, crate::model::StageDoc> = HashMap::new();
            for (name, key, raw) in stages {
                let Some(raw) = raw else { continue };
                match super::parse_stage(&key, &raw) {
                    Ok(s) => {
                        docs_of_stages.insert(name, s);
                    }
                    Err(m) => out.malformed.entry(d.id.clone()).or_default().push(m),
                }
            }
            out.cards
                .push((d.id, super::assemble_card(parsed, docs_of_stages), print));
        }
        Ok(out)
    }
}

/// One pipeline document read, waiting for its stages.
struct DocRead<'h> {
    id: String,
    key: String,
    raw: Vec<u8>,
    /// `_stages`, as a full parse reads it.
    order: Option<Vec<String>>,
    /// The stage documents to read.
    names: Vec<String>,
    /// The stage names found apart from the document (looked up once).
    found: Vec<&'h str>,
    /// The full parse, where the scan for stage names needed it.
    parsed: Option<ParsedDoc>,
}

/// The two fields of a pipeline document that name its stages, read without building the
/// rest (a read that finds the bytes unchanged parses nothing else). Anything serde cannot
/// read this way (invalid JSON, a repeated field) is parsed in full instead.
#[derive(serde::Deserialize)]
struct StageRefs {
    #[serde(rename = "_stages", default)]
    stages: Option<serde_json::Value>,
    #[serde(default)]
    current_stage: Option<serde_json::Value>,
}

impl StageRefs {
    /// `_stages` as [`parse_pipeline`] reads it: the strings of an array.
    fn order(&self) -> Option<Vec<String>> {
        self.stages.as_ref()?.as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
    }

    fn current(&self) -> Option<String> {
        self.current_stage.as_ref()?.as_str().map(str::to_owned)
    }
}

/// The stage names to read for a card (as `tracker::stage_names`): its recorded order, then
/// names found otherwise (SCAN, events, `current_stage`) that the order lacks.
fn names_to_read<'a>(
    order: Option<&[String]>,
    current: Option<&'a str>,
    found: impl Iterator<Item = &'a str>,
) -> Vec<String> {
    let mut names: Vec<String> = order.map(<[String]>::to_vec).unwrap_or_default();
    // Most cards name one to three stages: a look through them costs less than a set of
    // copies; a card with many (a Python card's SCAN hints) gets the set.
    let mut seen: Option<HashSet<String>> = None;
    for name in found.chain(current) {
        if names.len() > NAMES_SCANNED {
            let seen = seen.get_or_insert_with(|| names.iter().cloned().collect());
            if seen.insert(name.to_owned()) {
                names.push(name.to_owned());
            }
        } else if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Stage names [`names_to_read`] looks through one by one before it builds a set.
const NAMES_SCANNED: usize = 16;

/// Stage names found apart from a card's documents, per card id.
#[derive(Clone, Copy)]
enum Hints<'a> {
    /// A SCAN's, for every card (full reads and audits), when one ran.
    Scan(Option<&'a StageHints>),
    /// The few cards a read of changes reads: the cursor's hints and the live events'.
    Map(&'a HashMap<String, BTreeSet<String>>),
}

impl<'a> Hints<'a> {
    /// The names found for `id`, sorted.
    fn of<'c>(self, id: &'c str) -> impl Iterator<Item = &'a str> + use<'a, 'c> {
        let (scan, map) = match self {
            Hints::Scan(s) => (s, None),
            Hints::Map(m) => (None, m.get(id)),
        };
        scan.into_iter()
            .flat_map(move |s| s.names(id))
            .chain(map.into_iter().flatten().map(String::as_str))
    }
}

/// A hash of a card's documents as read: the pipeline document's bytes and, for every stage
/// name read, its bytes or their absence. A card is a function of these (the names come from
/// the document and the hints, and are hashed too), so equal fingerprints mean the same card
/// and the same malformed entries, and a read that finds them equal need not parse.
/// `DefaultHasher::new` has fixed keys, so fingerprints of one process compare.
pub(crate) fn raw_fingerprint(doc: &[u8], stages: &[(String, String, Option<Vec<u8>>)]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_usize(doc.len());
    h.write(doc);
    for (name, _, raw) in stages {
        h.write_usize(name.len());
        h.write(name.as_bytes());
        match raw {
            Some(b) => {
                h.write_u8(1);
                h.write_usize(b.len());
                h.write(b);
            }
            None => h.write_u8(0),
        }
    }
    h.finish()
}

/// What [`RedisTracker::read_ids`] read.
#[derive(Default)]
struct IdsRead {
    /// Cards parsed, by key id, with their [`raw_fingerprint`].
    cards: Vec<(String, Card, u64)>,
    /// Cards whose bytes matched the known cursor's fingerprint (not parsed), by key id.
    unchanged: Vec<(String, u64)>,
    missing: Vec<String>,
    malformed: HashMap<String, Vec<Malformed>>,
    /// Per card read: the hints its document does not list (empty: none needed).
    hints: HashMap<String, BTreeSet<String>>,
    /// A full read's (no known cursor): per card parsed, the stage names its `_stages`
    /// lists, when the scan of the document and its parse agreed on them (unsorted).
    listed: StageHints,
}

/// Ids per [`RedisTracker::read_ids`] in an audit: the cards of one chunk are held at a time
/// (plus the ones that differ), not a second copy of every card.
pub const AUDIT_CHUNK: usize = 2_000;

/// The cards a full read has built so far, by key id, and what their documents list.
#[derive(Default)]
struct FullRead {
    cards: Vec<Card>,
    /// The key id of each card in `cards`.
    keys: Vec<String>,
    /// Per card parsed, the stage names its `_stages` lists.
    listed: StageHints,
}

impl FullRead {
    fn with_capacity(n: usize) -> Self {
        Self {
            cards: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            listed: StageHints::default(),
        }
    }

    /// Drops what was read of `ids` (cards, and the cursor's record of them), so that they
    /// can be read again as if for the first time.
    fn forget(&mut self, ids: &[String], cursor: &mut ReadCursor) {
        if ids.is_empty() {
            return;
        }
        let gone: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut keep = self.keys.iter().map(|k| !gone.contains(k.as_str()));
        self.cards.retain(|_| keep.next().unwrap_or(true));
        self.keys.retain(|k| !gone.contains(k.as_str()));
        for id in ids {
            cursor.card_malformed.remove(id);
            cursor.stage_hints.remove(id);
            cursor.shown_as.remove(id);
            cursor.fingerprints.remove(id);
            cursor.unsettled.remove(id);
        }
    }
}

/// Ids per `RedisTracker::read_ids` in a full read: the temporaries of one chunk (replies,
/// documents, stage maps) are held at a time beside the cards built, not those of every card.
pub const FULL_READ_CHUNK: usize = AUDIT_CHUNK;

impl RedisTracker {
    /// On Cluster, how long a card's documents may land after its index entry
    /// ([`CLUSTER_WRITE_SKEW_SECONDS`], within the poll overlap); on a server none.
    fn cluster_write_skew(&self) -> Option<f64> {
        let overlap = self.core.settings.tracker.poll_overlap_seconds as f64;
        self.core
            .redis
            .is_cluster()
            .then(|| CLUSTER_WRITE_SKEW_SECONDS.min(overlap))
    }

    /// A cursor as a full read starts it from the index, the discovered keys and the walk
    /// `scan`, with the ids to read (listed ones, then Python cards); the stage hints are
    /// read from `found` itself (the reads narrow them into the cursor).
    fn start_cursor(
        &self,
        index: IndexRead,
        found: Option<&Discovered>,
        scan: ScanCursor,
    ) -> (ReadCursor, Vec<String>) {
        let keys = &self.core.keys;
        let index_key = keys.pipeline_index();
        let ttl = self.core.settings.tracker.ttl_seconds as f64;
        let live_min = index.time - ttl;
        let mut cursor = ReadCursor {
            server_time: index.time,
            scan,
            ..Default::default()
        };
        if index.wrong_type {
            cursor.other_malformed.push(Malformed {
                key: index_key.clone(),
                reason: "not a sorted set (overwritten with another type?)".into(),
            });
        }
        // A card written within the skew may have been read before its documents landed.
        let landed_by = self.cluster_write_skew().map(|skew| index.time - skew);
        let mut ids = Vec::with_capacity(index.entries.len());
        for (member, score) in index.entries {
            if score < live_min {
                continue;
            }
            match String::from_utf8(member) {
                Ok(id) => {
                    cursor.record_read_score(id.clone(), score, landed_by);
                    ids.push(id);
                }
                Err(e) => {
                    let member = vec![e.into_bytes()];
                    crate::model::utf8_members(&index_key, member, &mut cursor.other_malformed);
                }
            }
        }
        if let Some(d) = found {
            cursor.other_malformed.extend(self.unreadable_malformed(d));
            for card in &d.cards {
                if !cursor.indexed.contains_key(card) && cursor.python.insert(card.clone()) {
                    ids.push(card.clone());
                }
            }
        }
        (cursor, ids)
    }

    /// Records one read of a starting cursor's ids in it, as a full read does: what went,
    /// what did not parse, the hints still needed, the ids cards are shown under and their
    /// fingerprints. A card the read found unchanged against `known` keeps what `known`
    /// recorded of it (the same bytes gave it). Returns the cards read, by key id.
    fn absorb_read(
        cursor: &mut ReadCursor,
        read: IdsRead,
        known: Option<&ReadCursor>,
    ) -> Vec<(String, Card)> {
        for id in &read.missing {
            cursor.python.remove(id);
        }
        for (id, bad) in read.malformed {
            if id.is_empty() {
                cursor.other_malformed.extend(bad);
            } else {
                cursor.card_malformed.entry(id).or_default().extend(bad);
            }
        }
        for (id, h) in read.hints {
            if !h.is_empty() {
                cursor.stage_hints.insert(id, h);
            }
        }
        if let Some(known) = known {
            for (id, print) in read.unchanged {
                if let Some(shown) = known.shown_as.get(&id) {
                    cursor.shown_as.insert(id.clone(), shown.clone());
                }
                if let Some(bad) = known.card_malformed.get(&id) {
                    cursor.card_malformed.insert(id.clone(), bad.clone());
                }
                cursor.fingerprints.insert(id, print);
            }
        }
        let mut cards = Vec::with_capacity(read.cards.len());
        for (id, card, print) in read.cards {
            if card.pipeline.card_id != id {
                cursor
                    .shown_as
                    .insert(id.clone(), card.pipeline.card_id.clone());
            }
            cursor.fingerprints.insert(id.clone(), print);
            cards.push((id, card));
        }
        cards
    }

    /// A full read of every live card (as [`TrackerStore::read_cards`], with the index read on
    /// its node's clock), and the cursor a reader of changes continues from; `None` for the
    /// cursor when the server refuses `TIME`.
    ///
    /// The SCAN for Python-written cards walks the whole keyspace in sequential round trips
    /// (~300,000 keys at 100,000 cards, the longest part of a cold start), and the indexed
    /// cards need nothing from it unless a Python worker added a stage their `_stages` does not
    /// list. So they are read while it runs ([`FULL_READ_CHUNK`] at a time, two chunks in
    /// flight), and once it is done only the cards it adds to are read (again): the Python
    /// cards, and the indexed cards with a stage key their documents do not list. The result
    /// is the cards, malformed entries and cursor a read after the SCAN would give.
    pub(crate) async fn full_read_tracked(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        scan: ScanCursor,
    ) -> Result<(CardsRead, Option<ReadCursor>)> {
        use super::TrackerStore;
        let indexed = async {
            let (index, slots) = futures::try_join!(self.read_index(None), self.slot_map())?;
            let Some(index) = index else {
                return Ok(None);
            };
            let (mut cursor, ids) = self.start_cursor(index, None, scan);
            let mut read = FullRead::with_capacity(ids.len());
            self.read_chunks(
                ids,
                Hints::Scan(None),
                slots.as_ref(),
                &mut cursor,
                &mut read,
            )
            .await?;
            Ok::<_, crate::error::Error>(Some((cursor, read, slots)))
        };
        let (found, indexed) = futures::try_join!(self.discovered(), indexed)?;
        let Some((mut cursor, mut read, slots)) = indexed else {
            return Ok((self.read_cards(now).await?, None));
        };
        if let Some(d) = found.as_deref() {
            cursor.other_malformed.extend(self.unreadable_malformed(d));
            let mut listed = std::mem::take(&mut read.listed);
            listed.finish();
            let mut again: Vec<String> = Vec::new();
            for (card, stage) in d.stages.pairs() {
                let unlisted = cursor.indexed.contains_key(card)
                    && !listed.names(card).any(|n| n == stage)
                    && again.last().map(String::as_str) != Some(card);
                if unlisted {
                    again.push(card.to_owned());
                }
            }
            drop(listed);
            read.forget(&again, &mut cursor);
            for card in &d.cards {
                if !cursor.indexed.contains_key(card) && cursor.python.insert(card.clone()) {
                    again.push(card.clone());
                }
            }
            let hints = Hints::Scan(Some(&d.stages));
            self.read_chunks(again, hints, slots.as_ref(), &mut cursor, &mut read)
                .await?;
        }
        let FullRead { mut cards, .. } = read;
        sort_cards(&mut cards);
        let malformed = cursor.all_malformed();
        Ok((CardsRead { cards, malformed }, Some(cursor)))
    }

    /// Reads `ids` a chunk at a time, two chunks in flight (the next one's replies travel
    /// while this one is parsed), into a full read's cursor and cards (`out.listed` is left
    /// unsorted).
    async fn read_chunks(
        &self,
        ids: Vec<String>,
        hints: Hints<'_>,
        slots: Option<&crate::connection::SlotMap>,
        cursor: &mut ReadCursor,
        out: &mut FullRead,
    ) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        let mut ids = ids.into_iter();
        let chunks = std::iter::from_fn(move || {
            let chunk: Vec<String> = ids.by_ref().take(FULL_READ_CHUNK).collect();
            (!chunk.is_empty()).then_some(chunk)
        });
        let mut reads = futures::stream::iter(chunks)
            .map(|chunk: Vec<String>| self.read_ids(chunk, hints, slots, None))
            .buffered(2);
        while let Some(read) = reads.try_next().await? {
            for (card, stage) in read.listed.pairs() {
                out.listed.push(card, stage);
            }
            for (id, card) in Self::absorb_read(cursor, read, None) {
                out.keys.push(id);
                out.cards.push(card);
            }
        }
        Ok(())
    }

    /// The periodic full read as an audit: every live card is read as
    /// [`RedisTracker::full_read_tracked`] reads them (index, Python cards, SCAN discoveries),
    /// [`AUDIT_CHUNK`] ids at a time, and only the cards whose fingerprint differs from
    /// `cursor`'s (new ones, ones changed behind the index's back, ones in `recheck`: their
    /// attributed cost moved) are kept; cards the cursor showed that the audit no longer finds
    /// go to `removed`. The cursor becomes the one a full read would start, so reads of changes
    /// continue from it. `None`: no server clock or the index is not a sorted set (read in
    /// full). A failed audit leaves the cursor as it was.
    pub(crate) async fn audit(
        &self,
        cursor: &mut ReadCursor,
        recheck: &HashSet<String>,
    ) -> Result<Option<CardChanges>> {
        let (index, found, slots) =
            futures::try_join!(self.read_index(None), self.discovered(), self.slot_map())?;
        let Some(index) = index else { return Ok(None) };
        if index.wrong_type {
            return Ok(None);
        }
        let (mut fresh, ids) = self.start_cursor(index, found.as_deref(), cursor.scan.clone());
        let hints = Hints::Scan(found.as_deref().map(|d| &d.stages));
        let mut changed = Vec::new();
        // The ids shown by cards found unchanged, borrowed from the cursor (nothing copied per
        // card), and those of the cards parsed.
        let mut shown: HashSet<&str> = HashSet::with_capacity(cursor.fingerprints.len());
        let mut shown_parsed: HashSet<String> = HashSet::new();
        let known: &ReadCursor = cursor;
        let mut ids = ids.into_iter();
        loop {
            let chunk: Vec<String> = ids.by_ref().take(AUDIT_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            // Cards whose documents read back byte for byte as the cursor recorded are not
            // parsed: they are what the reader holds.
            let read = self
                .read_ids(chunk, hints, slots.as_ref(), Some((known, recheck)))
                .await?;
            for (id, _) in &read.unchanged {
                // Unchanged: its fingerprint is the cursor's, so the cursor holds its id.
                if let Some((id, _)) = known.fingerprints.get_key_value(id) {
                    shown.insert(known.shown_ref(id));
                }
            }
            for (id, card) in Self::absorb_read(&mut fresh, read, Some(known)) {
                let differs = known.fingerprints.get(&id) != fresh.fingerprints.get(&id)
                    || known.shown_ref(&id) != card.pipeline.card_id
                    || recheck.contains(&id)
                    || recheck.contains(&card.pipeline.card_id);
                shown_parsed.insert(card.pipeline.card_id.clone());
                if differs {
                    changed.push(card);
                }
            }
        }
        let mut removed: Vec<String> = known
            .fingerprints
            .keys()
            .map(|id| known.shown_ref(id))
            .filter(|s| !shown.contains(s) && !shown_parsed.contains(*s))
            .map(str::to_owned)
            .collect();
        drop(shown);
        removed.sort();
        removed.dedup();
        // Nothing fails from here: the cursor becomes the audit's.
        sort_cards(&mut changed);
        *cursor = fresh;
        let malformed = cursor.all_malformed();
        Ok(Some(CardChanges {
            changed,
            removed,
            malformed,
        }))
    }

    /// The cards changed since `cursor`'s read, advancing it; `None` when no read of changes
    /// can be made (no server clock, or the index is not a sorted set): read in full. A read
    /// that fails leaves the cursor as it was, so the next one still sees everything since:
    /// everything is read first, and the cursor changed in place only once nothing can fail
    /// (a copy of it per poll would cost what the whole read avoids).
    pub(crate) async fn changes_since(
        &self,
        cursor: &mut ReadCursor,
        hints: ChangeHints,
    ) -> Result<Option<CardChanges>> {
        let t = &self.core.settings.tracker;
        let keys = &self.core.keys;
        let skew = self.cluster_write_skew();
        let since = cursor.server_time - t.poll_overlap_seconds as f64;
        let mut scan = cursor.scan.clone();
        let scan_step = async {
            if !t.scan_python_cards {
                return Ok(Vec::new());
            }
            let count = usize::try_from(t.scan_count_per_poll).unwrap_or(usize::MAX);
            self.core
                .redis
                .scan_step(
                    &mut scan,
                    &keys.pipeline_scan_pattern(),
                    Some("string"),
                    count,
                )
                .await
        };
        let (index, found, slots) =
            futures::try_join!(self.read_index(Some(since)), scan_step, self.slot_map())?;
        let Some(index) = index else { return Ok(None) };
        if index.wrong_type {
            return Ok(None);
        }
        let index_key = keys.pipeline_index();
        let live_min = index.time - t.ttl_seconds as f64;

        // What to read, decided against the cursor as it is.
        let mut wanted: Vec<String> = Vec::new();
        let mut want: HashSet<String> = HashSet::new();
        let mut add = |id: String, wanted: &mut Vec<String>| {
            if want.insert(id.clone()) {
                wanted.push(id);
            }
        };
        let mut scores: Vec<(String, f64)> = Vec::new();
        // On Cluster: entries not read now, with the oldest score not yet read once landed,
        // and the time by which a write scored earlier has surely landed.
        let mut deferred: Vec<(String, f64)> = Vec::new();
        let landed_by = skew.map(|skew| index.time - skew);
        let mut bad_members: Vec<Malformed> = Vec::new();
        for (member, score) in index.entries {
            if score < live_min {
                continue;
            }
            // Most entries of a busy index are the overlap's, read again at the score the
            // cursor holds: they change nothing, and are passed over without a copy.
            if let Ok(id) = std::str::from_utf8(&member)
                && cursor.indexed.get(id) == Some(&score)
                && !cursor.unsettled.contains_key(id)
                && !cursor.python.contains(id)
            {
                continue;
            }
            let Some(id) =
                crate::model::utf8_members(&index_key, vec![member], &mut bad_members).pop()
            else {
                continue;
            };
            if let Some(landed_by) = landed_by
                && !cursor.python.contains(&id)
            {
                // The documents may land after the index entry: a card is read once its
                // oldest unread write is the skew old, not before and again after, so a write
                // costs one read (its live event has shown it meanwhile). A card written
                // faster than that is still read every poll, its newest write left unsettled.
                let oldest = cursor.unsettled.get(&id).copied().unwrap_or(score);
                if oldest > landed_by {
                    deferred.push((id, oldest));
                    continue;
                }
                add(id.clone(), &mut wanted);
                scores.push((id, score));
                continue;
            }
            // On a server one script wrote documents and index: a score read once is settled.
            if cursor.indexed.get(&id) != Some(&score) || cursor.python.contains(&id) {
                add(id.clone(), &mut wanted);
            }
            scores.push((id, score));
        }
        let listed: HashSet<&str> = scores
            .iter()
            .map(|(id, _)| id.as_str())
            .chain(deferred.iter().map(|(id, _)| id.as_str()))
            .collect();
        let unindexed = |id: &str| !cursor.indexed.contains_key(id) && !listed.contains(id);
        let mut new_hints: HashMap<String, BTreeSet<String>> = HashMap::new();
        for id in &hints.recheck {
            if cursor.knows(id) {
                add(id.clone(), &mut wanted);
            }
        }
        for (id, stages) in hints.named {
            if !unindexed(&id) || super::redis::check_readable_card_id(&id).is_err() {
                continue;
            }
            new_hints.entry(id.clone()).or_default().extend(stages);
            add(id, &mut wanted);
        }
        for raw in found {
            let Ok(key) = String::from_utf8(raw) else {
                continue;
            };
            if let Some(id) = keys.card_id_of_pipeline_key(&key) {
                if unindexed(id) {
                    add(id.to_owned(), &mut wanted);
                }
            } else if let Some((id, stage)) = keys.card_and_stage_of_stage_key(&key)
                && unindexed(id)
            {
                new_hints
                    .entry(id.to_owned())
                    .or_default()
                    .insert(stage.to_owned());
                add(id.to_owned(), &mut wanted);
            }
        }
        let mut read_hints: HashMap<String, BTreeSet<String>> = HashMap::new();
        for id in &wanted {
            let mut h = cursor.stage_hints.get(id).cloned().unwrap_or_default();
            h.extend(new_hints.remove(id).unwrap_or_default());
            if !h.is_empty() {
                read_hints.insert(id.clone(), h);
            }
        }
        // A card whose documents read back as the cursor last recorded them is not parsed
        // nor sent again: the reader holds that card.
        let read = self
            .read_ids(
                wanted.clone(),
                Hints::Map(&read_hints),
                slots.as_ref(),
                Some((&*cursor, &hints.recheck)),
            )
            .await?;
        let unchanged: HashSet<String> = read.unchanged.iter().map(|(id, _)| id.clone()).collect();

        // Nothing fails from here: the cursor moves on.
        let was_known: HashSet<String> = wanted
            .iter()
            .filter(|id| cursor.knows(id))
            .cloned()
            .collect();
        cursor.server_time = index.time;
        cursor.scan = scan;
        for m in bad_members {
            if !cursor.other_malformed.contains(&m) {
                cursor.other_malformed.push(m);
            }
        }
        cursor.unsettled.extend(deferred);
        // Expired: the index score is older than the TTL, as a full read would leave it out
        // (a card with a newer write waiting to be read is not).
        let mut removed: Vec<String> = Vec::new();
        let expired: Vec<String> = cursor
            .indexed
            .iter()
            // Listed again at a live score with the same bytes: it stays as it is.
            .filter(|(id, s)| {
                **s < live_min && !unchanged.contains(*id) && !cursor.unsettled.contains_key(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            cursor.indexed.remove(&id);
            cursor.card_malformed.remove(&id);
            cursor.stage_hints.remove(&id);
            cursor.fingerprints.remove(&id);
            removed.push(cursor.shown_as.remove(&id).unwrap_or(id));
        }
        for (id, score) in scores {
            cursor.python.remove(&id);
            cursor.record_read_score(id, score, landed_by);
        }
        for id in &wanted {
            if !unchanged.contains(id) {
                cursor.card_malformed.remove(id);
            }
            cursor.stage_hints.remove(id);
        }
        for (id, h) in read.hints {
            if !h.is_empty() {
                cursor.stage_hints.insert(id, h);
            }
        }
        let mut gone_now: HashSet<String> = HashSet::new();
        for id in read.missing {
            // Listed but without a document (deleted, expired, never written): not shown.
            cursor.python.remove(&id);
            cursor.stage_hints.remove(&id);
            cursor.fingerprints.remove(&id);
            if was_known.contains(&id) {
                gone_now.insert(id.clone());
                removed.push(cursor.shown_as.remove(&id).unwrap_or(id));
            }
        }
        for (id, bad) in read.malformed {
            if id.is_empty() {
                cursor.other_malformed.extend(bad);
                continue;
            }
            if bad.iter().any(|m| m.key == keys.pipeline(&id)) && !gone_now.contains(&id) {
                // Its document stopped parsing: a full read shows it as malformed, not a card.
                removed.push(cursor.shown_id(&id));
                cursor.fingerprints.remove(&id);
            }
            cursor.card_malformed.insert(id, bad);
        }
        let mut changed = Vec::with_capacity(read.cards.len());
        for (id, card, print) in read.cards {
            if !cursor.indexed.contains_key(&id) {
                cursor.python.insert(id.clone());
            }
            match cursor.shown_as.get(&id) {
                Some(old) if *old != card.pipeline.card_id => removed.push(old.clone()),
                _ => {}
            }
            if card.pipeline.card_id == id {
                cursor.shown_as.remove(&id);
            } else {
                cursor
                    .shown_as
                    .insert(id.clone(), card.pipeline.card_id.clone());
            }
            cursor.fingerprints.insert(id, print);
            changed.push(card);
        }
        for id in &unchanged {
            if !cursor.indexed.contains_key(id) {
                cursor.python.insert(id.clone());
            }
        }
        let still: Vec<String> = unchanged.iter().map(|id| cursor.shown_id(id)).collect();
        let shown: HashSet<&str> = changed
            .iter()
            .map(|c| c.pipeline.card_id.as_str())
            .chain(still.iter().map(String::as_str))
            .collect();
        removed.retain(|id| !shown.contains(id.as_str()));
        removed.sort();
        removed.dedup();
        let malformed = cursor.all_malformed();
        Ok(Some(CardChanges {
            changed,
            removed,
            malformed,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scored_replies_parse_in_both_protocols() {
        let flat = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"1.5".to_vec()),
            Value::BulkString(b"b".to_vec()),
            Value::BulkString(b"oops".to_vec()),
        ]);
        assert_eq!(parse_scored(flat), vec![(b"a".to_vec(), 1.5)]);
        let pairs = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"c".to_vec()),
            Value::Double(2.25),
        ])]);
        assert_eq!(parse_scored(pairs), vec![(b"c".to_vec(), 2.25)]);
    }

    #[test]
    fn time_replies_are_seconds_with_microseconds() {
        let t = Value::Array(vec![
            Value::BulkString(b"1700000000".to_vec()),
            Value::BulkString(b"250000".to_vec()),
        ]);
        assert_eq!(parse_time(&t), Some(1_700_000_000.25));
        assert_eq!(parse_time(&Value::Nil), None);
    }
}
