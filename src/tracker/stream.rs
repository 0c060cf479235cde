//! Every card, read a chunk at a time: what `artemis-top --once --format json` prints, in
//! memory that does not follow the number of cards.
//!
//! Why a reader of its own: [`TrackerStore::read_cards`](super::TrackerStore::read_cards)
//! holds every document, every stage and every built card at once (the dashboard keeps them
//! all anyway), which at 100,000 cards is several times the JSON `--once` prints. `--once`
//! only passes the cards through, so [`CardStream`] holds, besides the card ids and their sort
//! keys, at most a few chunks of documents at a time, and hands out the cards in the order a
//! snapshot lists them (newest start first, as `sort_cards` orders them) so that the output is the
//! same as the snapshot's.
//!
//! How: [`CardStream::open`] reads the index, then every indexed card's document once, chunk
//! by chunk, keeping only the start time and card id it sorts by, while the SCAN for
//! Python-written cards (the same sources as `read_cards`) walks the keyspace; the cards only
//! the SCAN found are sorted after it. [`CardStream::next_chunk`] then reads the documents
//! again a chunk at a time, in that order, with their stages. Reading the documents twice
//! costs one more pass of round trips but never holds them all. A card rewritten between the
//! two passes is shown as read in the second (its place follows the first, within its chunk);
//! one gone by then is left out, as a card that expires during any read.
//!
//! What stays in memory for the whole read: the ids and their sort keys, and the stage names
//! the SCAN found, packed into one string (`StageHints`); measured in `docs/BENCHMARKS.md`
//! ("Scale"), peak RSS at 100,000 cards is well under the JSON's size.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::StreamExt;

use super::hints::StageHints;
use super::{
    Card, assemble_card, parse_doc_value, parse_pipeline, parse_stage, sort_cards, stage_names,
};
use crate::config::Settings;
use crate::connection::Redis;
use crate::connection::cluster::SlotMap;
use crate::error::Result;
use crate::keys::KeySpace;
use crate::model::Malformed;

/// Cards per chunk `--once` reads and writes at a time: one MGET's worth, so a chunk costs two
/// round trips (documents, then stages).
pub const STREAM_CHUNK: usize = 1000;

/// Chunks of documents the sorting pass keeps in flight at once (they are only scanned for
/// their start time, so more in flight only saves round-trip waits).
const SORT_IN_FLIGHT: usize = 4;

/// Most keys the SCAN for Python-written cards collects, as for the dashboard's read.
const SCAN_LIMIT: usize = 1_000_000;

/// Unreadable key names listed one by one; the rest are counted in one entry (as the
/// dashboard's read does).
const UNREADABLE_SHOWN: usize = 100;

/// The sort key of one card: its start time (unparsable last), then its card id.
type SortKey = (std::cmp::Reverse<Option<NaiveDateTime>>, String);

/// Every live card of a Redis backend, in snapshot order, a chunk at a time.
pub struct CardStream {
    redis: Redis,
    keys: KeySpace,
    slots: Option<SlotMap>,
    /// Card ids in output order (their document's sort key, then the key's id).
    order: Vec<String>,
    next: usize,
    chunk: usize,
    /// Stage names a SCAN found per card (Python-written stages).
    stage_hints: StageHints,
    malformed: Vec<Malformed>,
    most_held: usize,
}

impl std::fmt::Debug for CardStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardStream")
            .field("cards", &self.order.len())
            .field("next", &self.next)
            .field("chunk", &self.chunk)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct SortFields<'a> {
    #[serde(borrow, default)]
    card_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    start_time: Option<Cow<'a, str>>,
}

impl CardStream {
    /// Reads which cards of `redis` (with the key prefixes and tracker settings of
    /// `settings`) are live and their order, `chunk` documents at a time (at least 1).
    pub async fn open(
        redis: &Redis,
        settings: &Settings,
        now: DateTime<Utc>,
        chunk: usize,
    ) -> Result<Self> {
        let keys = KeySpace::new(settings.prefixes.clone());
        let chunk = chunk.max(1);
        let mut malformed = Vec::new();

        let min = now.timestamp_micros() as f64 / 1e6 - settings.tracker.ttl_seconds as f64;
        let index_key = keys.pipeline_index();
        let mut zrange = redis::cmd("ZRANGEBYSCORE");
        zrange.arg(&index_key).arg(min).arg("+inf");
        let index = async {
            match redis.query::<Vec<Vec<u8>>>(&zrange).await {
                Err(e) if e.is_wrong_type() => Ok((Vec::new(), true)),
                other => other.map(|ids| (ids, false)),
            }
        };
        let ((indexed, wrong_type), slots) = futures::try_join!(index, redis.slot_map())?;
        if wrong_type {
            malformed.push(Malformed {
                key: index_key.clone(),
                reason: "not a sorted set (overwritten with another type?)".into(),
            });
        }
        let ids = crate::model::utf8_members(&index_key, indexed, &mut malformed);
        let mut stream = Self {
            redis: redis.clone(),
            keys,
            slots,
            order: Vec::new(),
            next: 0,
            chunk,
            stage_hints: StageHints::default(),
            malformed,
            most_held: 0,
        };
        // The SCAN walks the whole keyspace in sequential round trips: the indexed cards are
        // sorted meanwhile.
        let scan = async {
            if !settings.tracker.scan_python_cards {
                return Ok(None);
            }
            redis
                .scan_match_raw(
                    &stream.keys.pipeline_scan_pattern(),
                    Some("string"),
                    SCAN_LIMIT,
                )
                .await
                .map(Some)
        };
        let (scanned, (mut keyed, most)) = futures::try_join!(scan, stream.sort_keys(&ids))?;
        stream.most_held = most;
        let mut python = Vec::new();
        if let Some(raw_keys) = scanned {
            python = stream.take_scanned(raw_keys, &ids);
        }
        drop(ids);
        let (extra, most) = stream.sort_keys(&python).await?;
        stream.most_held = stream.most_held.max(most);
        keyed.extend(extra);
        keyed.sort_unstable();
        stream.order = keyed.into_iter().map(|(_, id)| id).collect();
        Ok(stream)
    }

    /// Keeps what a SCAN of the pipeline keys found that the index lacks: the cards only
    /// Python wrote (returned) and every stage name (kept as hints); names that are not
    /// UTF-8 are listed as malformed, the first [`UNREADABLE_SHOWN`] one by one.
    fn take_scanned(&mut self, raw_keys: Vec<Vec<u8>>, indexed: &[String]) -> Vec<String> {
        if raw_keys.len() >= SCAN_LIMIT {
            tracing::warn!(
                limit = SCAN_LIMIT,
                "SCAN for Python-written cards stopped at its limit; some cards may be missing"
            );
        }
        // Only the cards the index lacks are kept: a set of every card would cost more than
        // the ids themselves.
        let mut indexed: Vec<&str> = indexed.iter().map(String::as_str).collect();
        indexed.sort_unstable();
        let mut cards = BTreeSet::new();
        let mut unreadable = 0usize;
        for raw in raw_keys {
            let key = match String::from_utf8(raw) {
                Ok(k) => k,
                Err(e) => {
                    if unreadable < UNREADABLE_SHOWN {
                        self.malformed.push(Malformed {
                            key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                            reason: "key name is not UTF-8, so no card id can address it".into(),
                        });
                    }
                    unreadable += 1;
                    continue;
                }
            };
            if let Some(card) = self.keys.card_id_of_pipeline_key(&key) {
                if indexed.binary_search(&card).is_err() {
                    cards.insert(card.to_owned());
                }
            } else if let Some((card, stage)) = self.keys.card_and_stage_of_stage_key(&key) {
                self.stage_hints.push(card, stage);
            }
        }
        if unreadable > UNREADABLE_SHOWN {
            self.malformed.push(Malformed {
                key: self.keys.pipeline_scan_pattern(),
                reason: format!(
                    "{} more key names that are not UTF-8",
                    unreadable - UNREADABLE_SHOWN
                ),
            });
        }
        self.stage_hints.finish();
        cards.into_iter().collect()
    }

    /// The sort key of each id, from one pass over their documents that keeps only that, and
    /// the most documents held at once. A missing document drops its id; one that does not
    /// parse keeps it (the second pass reports it as malformed, as the dashboard's read does).
    async fn sort_keys(&self, ids: &[String]) -> Result<(Vec<(SortKey, String)>, usize)> {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let chunk = self.chunk;
        let this = self;
        // Documents requested and not yet reduced to their sort keys, and the most at once.
        let (current, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (current, most) = (&current, &most);
        let mut reads = futures::stream::iter(ids.chunks(chunk).map(|ids| async move {
            let now = current.fetch_add(ids.len(), Relaxed) + ids.len();
            most.fetch_max(now, Relaxed);
            let keys: Vec<String> = ids.iter().map(|id| this.keys.pipeline(id)).collect();
            let raws = this.redis.get_many(&keys, this.slots.as_ref()).await;
            let raws = match raws {
                Ok(r) => r,
                Err(e) => {
                    current.fetch_sub(ids.len(), Relaxed);
                    return Err(e);
                }
            };
            let mut out: Vec<(SortKey, String)> = Vec::with_capacity(ids.len());
            for (id, raw) in ids.iter().zip(&raws) {
                let Some(raw) = raw else { continue };
                let fields = serde_json::from_slice::<SortFields<'_>>(raw).ok();
                let start = fields
                    .as_ref()
                    .and_then(|f| f.start_time.as_deref())
                    .and_then(crate::model::parse_timestamp);
                let card_id = fields
                    .as_ref()
                    .and_then(|f| f.card_id.as_deref())
                    .unwrap_or(id)
                    .to_owned();
                out.push(((std::cmp::Reverse(start), card_id), id.clone()));
            }
            drop(raws);
            current.fetch_sub(ids.len(), Relaxed);
            Ok::<_, crate::Error>(out)
        }))
        .buffered(SORT_IN_FLIGHT);
        let mut keyed: Vec<(SortKey, String)> = Vec::with_capacity(ids.len());
        while let Some(part) = reads.next().await {
            keyed.extend(part?);
        }
        drop(reads);
        Ok((keyed, most.load(Relaxed)))
    }

    /// How many cards the stream will hand out at most (those whose document existed when it
    /// opened).
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// No live card.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Every card id in output order (e.g. to size a column before the cards arrive).
    pub fn ids(&self) -> &[String] {
        &self.order
    }

    /// The most documents held at once so far, by either pass: it follows the chunk size,
    /// not the number of cards.
    pub fn most_held(&self) -> usize {
        self.most_held
    }

    /// The next chunk of cards, whole (document and stages, in stage order), in snapshot
    /// order; `None` once every card was handed out.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<Card>>> {
        if self.next >= self.order.len() {
            return Ok(None);
        }
        let end = (self.next + self.chunk).min(self.order.len());
        let ids = &self.order[self.next..end];
        let doc_keys: Vec<String> = ids.iter().map(|id| self.keys.pipeline(id)).collect();
        let raws = self.redis.get_many(&doc_keys, self.slots.as_ref()).await?;
        let mut parsed = Vec::with_capacity(ids.len());
        for ((id, key), raw) in ids.iter().zip(&doc_keys).zip(raws) {
            let Some(raw) = raw else { continue };
            match parse_doc_value(key, &raw).and_then(|v| parse_pipeline(key, &v)) {
                Ok(p) => parsed.push((id, p)),
                Err(m) => self.malformed.push(m),
            }
        }
        let mut wanted: Vec<(usize, String, String)> = Vec::new();
        for (i, (id, p)) in parsed.iter().enumerate() {
            let hints = self.stage_hints.of(id);
            for name in stage_names(p, hints.as_ref()) {
                let key = self.keys.stage(id, &name);
                wanted.push((i, name, key));
            }
        }
        let stage_keys: Vec<String> = wanted.iter().map(|(_, _, k)| k.clone()).collect();
        let raws = self
            .redis
            .get_many(&stage_keys, self.slots.as_ref())
            .await?;
        let mut stages: Vec<HashMap<String, crate::model::StageDoc>> =
            vec![HashMap::new(); parsed.len()];
        for ((i, name, key), raw) in wanted.into_iter().zip(raws) {
            let Some(raw) = raw else { continue };
            match parse_stage(&key, &raw) {
                Ok(s) => {
                    stages[i].insert(name, s);
                }
                Err(m) => self.malformed.push(m),
            }
        }
        let mut cards: Vec<Card> = parsed
            .into_iter()
            .zip(stages)
            .map(|((_, p), s)| assemble_card(p, s))
            .collect();
        // The order of the first pass; a card rewritten since takes its new start time's place
        // within its chunk.
        sort_cards(&mut cards);
        self.most_held = self.most_held.max(end - self.next);
        self.next = end;
        Ok(Some(cards))
    }

    /// What did not parse so far (the index, key names, documents and stages), in the order
    /// found; taken, so a second call returns only what was found since.
    pub fn take_malformed(&mut self) -> Vec<Malformed> {
        std::mem::take(&mut self.malformed)
    }
}
