//! The tracker on Redis.
//!
//! Every write is one step of `scripts/tracker.lua`, which does the read-modify-write of the
//! pipeline document, appends the event to the card's history stream and publishes it, all
//! atomically. On a standalone server the same script also writes the stage document and the
//! card index: one command, one round trip. Writes that arrive while two calls are in flight
//! wait and then go together, as one call that runs them in order (`StepQueue`): the
//! script's fixed cost (the call, its set-up, `TIME`, the index's `ZADD` and `EXPIRE`) is then
//! paid once per batch, which is most of what a step costs the server beyond its own commands.
//! A lone write is sent at once, by its caller. On Cluster a script may only touch one slot
//! (the document and its history share it by construction, see [`crate::keys::slot_tag`]), so
//! the stage document (a SET) and the index (`scripts/index.lua`) are written by commands sent
//! at the same time as the script (still one round-trip time), and writes are not batched:
//! two cards rarely share a slot.
//!
//! Scripts are sent as EVALSHA; a server that lost its script cache (restart, failover, SCRIPT
//! FLUSH) answers NOSCRIPT, and the call is repeated at once as EVAL, which caches it again.
//!
//! Reads are pipelined: the dashboard's [`TrackerStore::read_cards`] costs three round trips
//! whatever the number of cards (index, documents, stage documents; MGETs of at most
//! [`MGET_CHUNK`](crate::connection::cluster::MGET_CHUNK) keys; on Cluster one pipeline of GETs per master, placed with the slot map
//! read alongside the index), plus a SCAN for Python-written cards at most every
//! `tracker.scan_interval_seconds`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use redis::Value;

use super::hints::StageHints;
use super::landed::LandedScripts;
use super::mirror::{DocMirror, Known, Mirrors};
use super::{
    CardsRead, EventStream, HistoryEntry, ParsedDoc, PipelineCompletion, PipelineStart,
    StageReport, TrackerStore, assemble_card, parse_doc_value, parse_event, parse_pipeline,
    parse_stage, sort_cards, stage_doc, stage_event, stage_names, started_event, to_json,
};
use crate::connection::cluster::SlotMap;
use crate::error::{Error, Result};
use crate::model::{Malformed, format_naive};
use crate::store::{RedisCore, delegate_store};
use crate::tracker::Card;

const SCRIPT_SOURCE: &str = include_str!("scripts/tracker.lua");
static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT_SOURCE));
const INDEX_SCRIPT_SOURCE: &str = include_str!("scripts/index.lua");
static INDEX_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(INDEX_SCRIPT_SOURCE));

/// Most keys one SCAN for Python-written cards collects.
const SCAN_LIMIT: usize = 1_000_000;

/// What a SCAN found that the index does not list: Python-written cards and stage names.
#[derive(Debug, Default)]
pub(super) struct Discovered {
    /// Card ids of the pipeline documents found, sorted, each once (indexed ones too: the
    /// readers skip those; a sorted list costs one string per card, a set a tree node more).
    pub(super) cards: Vec<String>,
    /// Stage names per card (packed: at 100,000 cards a map of sets took ~38 MB).
    pub(super) stages: StageHints,
    /// Matching key names that are not UTF-8, shown lossily (the first
    /// [`UNREADABLE_SHOWN`]): no card id can address them.
    pub(super) unreadable: Vec<String>,
    /// How many such names there were in all.
    pub(super) unreadable_total: usize,
}

/// Unreadable key names listed one by one; the rest are counted in one entry.
const UNREADABLE_SHOWN: usize = 100;

/// When the last SCAN for Python-written cards ran, and what it found.
type LastScan = (Instant, Arc<Discovered>);

/// The tracker on Redis (standalone or Cluster).
#[derive(Clone)]
pub struct RedisTracker {
    pub(super) core: RedisCore,
    /// The last SCAN for Python-written cards, reused for `tracker.scan_interval_seconds`.
    discovered: Arc<tokio::sync::Mutex<Option<LastScan>>>,
    /// Writes waiting for a script call (standalone only).
    steps: Arc<StepBatches>,
    /// The documents this handle wrote, for stage updates that need no decode on the server.
    mirrors: Arc<Mirrors>,
    /// On Cluster, the writes whose script landed while a command beside it failed.
    landed: Arc<LandedScripts>,
}

impl std::fmt::Debug for RedisTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTracker")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

delegate_store!(RedisTracker);

/// Most steps one script call runs.
const MAX_BATCH: usize = 128;
/// Script calls in flight at most per tracker handle on a standalone server. Two, so that
/// the server runs one batch while the next one forms and travels (the script runs one batch
/// at a time; the steps' effects do not depend on this number, only how they group).
const MAX_IN_FLIGHT: usize = 2;

/// One tracker write, as the script's record of it.
struct Step {
    /// `start`, `stage` or `complete`.
    op: &'static str,
    card_id: String,
    /// The op's own arguments (see `scripts/tracker.lua`).
    args: Vec<String>,
    /// A stage update's stage key and document.
    stage: Option<(String, String)>,
    /// A `stage_known` step's expected and new document texts (after the stage document).
    known: Option<Known>,
}

impl Step {
    /// Appends its keys and its record to a script call's (with the stage document when it
    /// still has one: on Cluster that is written apart).
    fn push(self, k: &crate::keys::KeySpace, keys: &mut Vec<String>, args: &mut Vec<String>) {
        keys.push(k.pipeline(&self.card_id));
        keys.push(k.event_history(&self.card_id));
        args.push(self.op.to_owned());
        args.push(k.events_channel(&self.card_id));
        args.push(self.card_id);
        args.extend(self.args);
        if let Some((stage_key, stage_doc)) = self.stage {
            keys.push(stage_key);
            args.push(stage_doc);
        }
        if let Some((expected, new)) = self.known {
            args.push(expected);
            args.push(new);
        }
    }
}

/// One step waiting for its batch.
struct Waiting {
    step: Step,
    reply: tokio::sync::oneshot::Sender<Result<Value>>,
}

/// The steps waiting to be sent, and how many script calls are in flight.
#[derive(Default)]
struct StepQueue {
    waiting: std::collections::VecDeque<Waiting>,
    in_flight: usize,
}

/// The batches of one tracker handle (shared by its clones).
#[derive(Default)]
struct StepBatches(std::sync::Mutex<StepQueue>);

impl StepBatches {
    fn lock(&self) -> std::sync::MutexGuard<'_, StepQueue> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An in-flight slot a lone caller holds while its step is sent; given back on drop, also
/// when the caller gives up.
struct Slot<'a>(&'a RedisTracker);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release_slot();
    }
}

/// Whether a `stage_known` step's reply says the writer's copy of the document was stale.
fn is_stale(v: &Value) -> bool {
    match v {
        Value::Array(items) => matches!(
            items.get(1),
            Some(Value::BulkString(b)) if b == b"stale"
        ),
        _ => false,
    }
}

/// A script reply code: 1 written, 0 no pipeline document, -1 document left alone (not a JSON
/// object).
fn reply_code(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Array(items) => items.first().and_then(reply_code),
        _ => None,
    }
}

impl RedisTracker {
    /// The tracker over `core`'s connection.
    pub fn new(core: RedisCore) -> Self {
        Self {
            core,
            discovered: Default::default(),
            steps: Default::default(),
            mirrors: Default::default(),
            landed: Default::default(),
        }
    }

    /// Runs one tracker step: on a standalone server through the batches, on Cluster alone.
    async fn tracker_step(&self, step: Step) -> Result<Value> {
        if self.core.redis.is_cluster() {
            return self.cluster_step(step).await;
        }
        let lone = {
            let mut q = self.steps.lock();
            let lone = q.in_flight < MAX_IN_FLIGHT && q.waiting.is_empty();
            q.in_flight += usize::from(lone);
            lone
        };
        if !lone {
            return self.queue_step(step).await;
        }
        // Nothing waits: sent at once by the caller, no task hop. The guard hands the slot (and
        // whatever queued meanwhile) on even if the caller gives up while it is in flight.
        let _slot = Slot(self);
        let mut replies = self.send_batch(vec![step]).await?;
        replies.pop().unwrap_or_else(|| {
            Err(Error::UnexpectedReply(
                "the tracker script answered nothing".into(),
            ))
        })
    }

    /// Queues a step for the next batch (sent by a driver task, started here if a slot is
    /// free) and waits for its reply.
    async fn queue_step(&self, step: Step) -> Result<Value> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let lead = {
            let mut q = self.steps.lock();
            q.waiting.push_back(Waiting { step, reply });
            let lead = q.in_flight < MAX_IN_FLIGHT;
            q.in_flight += usize::from(lead);
            lead
        };
        if lead {
            self.spawn_driver();
        }
        rx.await.unwrap_or_else(|_| {
            Err(Error::UnexpectedReply(
                "the tracker's batch ended without an answer".into(),
            ))
        })
    }

    /// Starts a task that sends the queued steps (its caller took an in-flight slot for it).
    fn spawn_driver(&self) {
        let driver = self.clone().drive();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn(driver)),
            // Not on a runtime (a caller dropped after its runtime shut down): the slot is
            // given back, and the next caller's write starts a driver for the queue.
            Err(_) => self.steps.lock().in_flight -= 1,
        }
    }

    /// Gives an in-flight slot back; if steps are waiting, a driver takes it over.
    fn release_slot(&self) {
        let mut q = self.steps.lock();
        q.in_flight -= 1;
        if !q.waiting.is_empty() && q.in_flight < MAX_IN_FLIGHT {
            q.in_flight += 1;
            drop(q);
            self.spawn_driver();
        }
    }

    /// Sends the queued steps, batch after batch, until none is left. Its own task, so that a
    /// caller giving up cannot strand the steps queued behind its call.
    async fn drive(self) {
        loop {
            let batch: Vec<Waiting> = {
                let mut q = self.steps.lock();
                // A caller that gave up before its step was sent: not written, as when a lone
                // caller gives up before sending.
                q.waiting.retain(|w| !w.reply.is_closed());
                if q.waiting.is_empty() {
                    q.in_flight -= 1;
                    return;
                }
                let n = q.waiting.len().min(MAX_BATCH);
                q.waiting.drain(..n).collect()
            };
            let (steps, replies): (Vec<Step>, Vec<_>) =
                batch.into_iter().map(|w| (w.step, w.reply)).unzip();
            match self.send_batch(steps).await {
                Ok(results) => {
                    for (tx, r) in replies.into_iter().zip(results) {
                        let _ = tx.send(r);
                    }
                }
                Err(e) => {
                    for tx in replies {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// One script call running `steps` in order on a standalone server; each step's reply or
    /// error (a step's error does not fail the others).
    async fn send_batch(&self, steps: Vec<Step>) -> Result<Vec<Result<Value>>> {
        let k = &self.core.keys;
        let t = &self.core.settings.tracker;
        let mut keys = Vec::with_capacity(1 + 3 * steps.len());
        keys.push(k.pipeline_index());
        let mut args = Vec::with_capacity(3 + 9 * steps.len());
        args.extend([
            t.ttl_seconds.to_string(),
            t.history_max_events.to_string(),
            "1".to_owned(),
        ]);
        let n = steps.len();
        for step in steps {
            step.push(k, &mut keys, &mut args);
        }
        let reply = self
            .core
            .eval_script(&SCRIPT, SCRIPT_SOURCE, &keys, &args)
            .await?;
        let Value::Array(items) = reply else {
            return Err(Error::UnexpectedReply(format!(
                "tracker script: {reply:?} is not a list of replies"
            )));
        };
        if items.len() != n {
            return Err(Error::UnexpectedReply(format!(
                "tracker script: {} replies for {n} steps",
                items.len(),
            )));
        }
        Ok(items.into_iter().map(|v| self.step_reply(v)).collect())
    }

    /// A step's item of the script's reply: a status reply carries the step's error.
    fn step_reply(&self, v: Value) -> Result<Value> {
        let Value::SimpleString(msg) = v else {
            return Ok(v);
        };
        let raw = format!("-{}\r\n", msg.replace(['\r', '\n'], " "));
        match redis::parse_redis_value(raw.as_bytes()) {
            Ok(Value::ServerError(e)) => Err(self.core.redis.classify(e.into())),
            _ => Err(Error::UnexpectedReply(format!(
                "tracker script: a step failed with {:?}",
                msg.escape_debug().take(200).collect::<String>()
            ))),
        }
    }

    /// One step on Cluster: the script (document and history, one slot) with the stage
    /// document and the index written by commands of their own, all in flight at once: one
    /// round-trip time, and each one gets the driver's redirect and retry handling. When the
    /// script lands but another of the three fails, the step fails (the outage buffer replays
    /// it) and the script's reply is remembered, so that the replay sends only the other two
    /// and the event is recorded and published once (see [`LandedScripts`]).
    async fn cluster_step(&self, mut step: Step) -> Result<Value> {
        let k = &self.core.keys;
        let t = &self.core.settings.tracker;
        let ttl = t.ttl_seconds;
        // What identifies the write across its replays: a known stage step replayed after a
        // failure goes by the general path, with the same arguments.
        let kind = if step.op == "stage_known" {
            "stage"
        } else {
            step.op
        };
        let id = format!("{kind}\0{}\0{}", step.card_id, step.args.join("\0"));
        let landed = self.landed.take(&id);
        let index_args = vec![
            step.card_id.clone(),
            String::new(),
            ttl.to_string(),
            if step.op == "start" { "1" } else { "0" }.to_owned(),
        ];
        // Written apart here; the script's record keeps an empty placeholder.
        let stage = step.stage.take();
        if stage.is_some() {
            step.args.push(String::new());
        }
        let mut keys = Vec::with_capacity(2);
        let mut args = vec![
            ttl.to_string(),
            t.history_max_events.to_string(),
            "0".to_owned(),
        ];
        step.push(k, &mut keys, &mut args);
        let stage_write = async {
            match &stage {
                Some((stage_key, stage_doc)) => {
                    let mut set = redis::cmd("SET");
                    set.arg(stage_key).arg(stage_doc).arg("EX").arg(ttl);
                    self.core.redis.query::<()>(&set).await
                }
                None => Ok(()),
            }
        };
        let index_keys = [k.pipeline_index()];
        let script = async {
            if let Some(reply) = landed {
                return Ok(reply);
            }
            let reply = self
                .core
                .eval_script(&SCRIPT, SCRIPT_SOURCE, &keys, &args)
                .await?;
            let mut replies = match reply {
                Value::Array(items) if items.len() == 1 => items,
                other => {
                    return Err(Error::UnexpectedReply(format!(
                        "tracker script: {other:?} is not one reply"
                    )));
                }
            };
            replies.pop().map_or_else(
                || Err(Error::UnexpectedReply("tracker script: no reply".into())),
                |v| self.step_reply(v),
            )
        };
        let (reply, stage, index) = futures::join!(
            script,
            stage_write,
            self.core
                .eval_script(&INDEX_SCRIPT, INDEX_SCRIPT_SOURCE, &index_keys, &index_args),
        );
        let reply = reply?;
        if let Err(e) = stage.and(index.map(drop)) {
            self.landed.remember(id, reply);
            return Err(e);
        }
        Ok(reply)
    }

    fn report_code(&self, op: &str, card_id: &str, reply: &Value) {
        match reply_code(reply) {
            Some(1) => {}
            Some(0) if op == "complete" => tracing::debug!(
                card_id = %card_id.escape_debug(),
                "no pipeline document for this card; nothing written or published, as in the \
                 original"
            ),
            Some(0) => tracing::debug!(
                card_id = %card_id.escape_debug(),
                op,
                "no pipeline document for this card; event recorded, document not created"
            ),
            Some(-1) => tracing::warn!(
                card_id = %card_id.escape_debug(),
                op,
                "the card's pipeline document is not a JSON object; left unchanged"
            ),
            _ => tracing::warn!(op, "unexpected reply from the tracker script"),
        }
    }

    /// The values of any number of string keys in one round-trip time (`None`: missing or
    /// not a string); see [`crate::connection::Redis::get_many`].
    pub(super) async fn get_many(
        &self,
        keys: &[String],
        slots: Option<&SlotMap>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        self.core.redis.get_many(keys, slots).await
    }

    /// The Cluster's slot map (one `CLUSTER SLOTS`), `None` on a standalone server.
    pub(super) async fn slot_map(&self) -> Result<Option<SlotMap>> {
        self.core.redis.slot_map().await
    }

    /// Python-written cards and stage names, from a SCAN at most every
    /// `tracker.scan_interval_seconds` (`None` when the fallback is turned off).
    pub(super) async fn discovered(&self) -> Result<Option<Arc<Discovered>>> {
        let t = &self.core.settings.tracker;
        if !t.scan_python_cards {
            return Ok(None);
        }
        let mut cached = self.discovered.lock().await;
        if let Some((at, d)) = &*cached
            && at.elapsed().as_secs() < t.scan_interval_seconds
            && self.core.scan_still_valid(*at)
        {
            return Ok(Some(d.clone()));
        }
        let raw_keys = self
            .core
            .redis
            .scan_match_raw(
                &self.core.keys.pipeline_scan_pattern(),
                Some("string"),
                SCAN_LIMIT,
            )
            .await?;
        if raw_keys.len() >= SCAN_LIMIT {
            tracing::warn!(
                limit = SCAN_LIMIT,
                "SCAN for Python-written cards stopped at its limit; some cards may be missing"
            );
        }
        let mut d = Discovered::default();
        let mut keys = Vec::with_capacity(raw_keys.len());
        for raw in raw_keys {
            match String::from_utf8(raw) {
                Ok(k) => keys.push(k),
                Err(e) => {
                    d.unreadable_total += 1;
                    if d.unreadable.len() < UNREADABLE_SHOWN {
                        d.unreadable
                            .push(String::from_utf8_lossy(e.as_bytes()).into_owned());
                    }
                }
            }
        }
        for key in &keys {
            if let Some(card) = self.core.keys.card_id_of_pipeline_key(key) {
                d.cards.push(card.to_owned());
            } else if let Some((card, stage)) = self.core.keys.card_and_stage_of_stage_key(key) {
                d.stages.push(card, stage);
            }
        }
        drop(keys);
        d.cards.sort_unstable();
        d.cards.dedup();
        d.cards.shrink_to_fit();
        d.stages.finish();
        let d = Arc::new(d);
        *cached = Some((Instant::now(), d.clone()));
        Ok(Some(d))
    }

    /// The key names a SCAN found that are not UTF-8, as malformed entries (the first ones
    /// one by one, the rest counted in one).
    pub(super) fn unreadable_malformed(&self, d: &Discovered) -> Vec<Malformed> {
        let mut out: Vec<Malformed> = d
            .unreadable
            .iter()
            .map(|name| Malformed {
                key: name.clone(),
                reason: "key name is not UTF-8, so no card id can address it".into(),
            })
            .collect();
        if d.unreadable_total > d.unreadable.len() {
            out.push(Malformed {
                key: self.core.keys.pipeline_scan_pattern(),
                reason: format!(
                    "{} more key names that are not UTF-8",
                    d.unreadable_total - d.unreadable.len()
                ),
            });
        }
        out
    }

    /// Fetches and parses the stage documents of parsed cards, then builds the cards.
    pub(super) async fn fetch_stages(
        &self,
        parsed: Vec<(String, ParsedDoc)>,
        found: Option<&Discovered>,
        slots: Option<&SlotMap>,
        malformed: &mut Vec<Malformed>,
    ) -> Result<Vec<Card>> {
        let mut wanted: Vec<(usize, String, String)> = Vec::new();
        for (i, (card_id, p)) in parsed.iter().enumerate() {
            let hints = found.and_then(|d| d.stages.of(card_id));
            for name in stage_names(p, hints.as_ref()) {
                let key = self.core.keys.stage(card_id, &name);
                wanted.push((i, name, key));
            }
        }
        let keys: Vec<String> = wanted.iter().map(|(_, _, k)| k.clone()).collect();
        let raws = self.get_many(&keys, slots).await?;
        let mut stages: Vec<HashMap<String, crate::model::StageDoc>> =
            vec![HashMap::new(); parsed.len()];
        for ((i, name, key), raw) in wanted.into_iter().zip(raws) {
            let Some(raw) = raw else { continue };
            match parse_stage(&key, &raw) {
                Ok(s) => {
                    stages[i].insert(name, s);
                }
                Err(m) => malformed.push(m),
            }
        }
        Ok(parsed
            .into_iter()
            .zip(stages)
            .map(|((_, p), s)| assemble_card(p, s))
            .collect())
    }
}

/// Card ids a reader must not look up: they would read another card's stage or an extension
/// key instead of a pipeline document.
pub(super) fn check_readable_card_id(card_id: &str) -> Result<()> {
    if card_id.is_empty() || card_id.starts_with(':') || card_id.contains(":stage:") {
        return Err(Error::InvalidInput(format!(
            "card id {:?} cannot name a pipeline document",
            card_id.escape_debug().take(80).collect::<String>()
        )));
    }
    Ok(())
}

/// A stream entry id as Redis prints it (`<ms>-<seq>`).
fn check_stream_id(id: &str) -> Result<()> {
    let ok = id
        .split_once('-')
        .is_some_and(|(a, b)| a.parse::<u64>().is_ok() && b.parse::<u64>().is_ok());
    if !ok {
        return Err(Error::InvalidInput(format!(
            "{:?} is not a history entry id (<ms>-<seq>)",
            id.escape_debug().take(40).collect::<String>()
        )));
    }
    Ok(())
}

/// Entries of an XRANGE / XREVRANGE reply.
pub(crate) fn parse_stream_reply(key: &str, reply: Value) -> Vec<HistoryEntry> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let Value::Array(mut parts) = entry else {
            continue;
        };
        if parts.len() != 2 {
            continue;
        }
        let fields = parts.pop();
        let id = match parts.pop() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(Value::SimpleString(s)) => s,
            _ => continue,
        };
        let mut payload = None;
        if let Some(Value::Array(fv)) = fields {
            let mut it = fv.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                if matches!(&f, Value::BulkString(b) if b == b"event")
                    && let Value::BulkString(bytes) = v
                {
                    payload = Some(bytes);
                }
            }
        }
        let source = format!("{key} {id}");
        let event = match payload {
            Some(bytes) => parse_event(&source, &bytes),
            None => Err(Malformed {
                key: source,
                reason: "history entry has no event field".into(),
            }),
        };
        out.push(HistoryEntry { id, event });
    }
    out
}

#[async_trait::async_trait]
impl TrackerStore for RedisTracker {
    async fn start_pipeline(&self, s: &PipelineStart) -> Result<()> {
        s.validate()?;
        // The same text as `to_json(&start_doc(s))` (a unit test holds them equal), kept so
        // that this card's stage updates can take the fast path.
        let doc = DocMirror::start(s);
        let step = Step {
            op: "start",
            card_id: s.card_id.clone(),
            args: vec![doc.text().to_owned(), to_json(&started_event(s))],
            stage: None,
            known: None,
        };
        match self.tracker_step(step).await {
            Ok(reply) => {
                self.mirrors.started(&s.card_id, doc);
                self.report_code("start", &s.card_id, &reply);
                Ok(())
            }
            Err(e) => {
                self.mirrors.forget(&s.card_id);
                Err(e)
            }
        }
    }

    async fn update_stage(&self, r: &StageReport) -> Result<()> {
        r.validate()?;
        let name_json = to_json(&r.stage_name);
        let status = r.status.as_str();
        let known = self
            .mirrors
            .stage(&r.card_id, &r.stage_name, &name_json, status);
        let args = vec![
            r.stage_name.clone(),
            name_json,
            status.to_owned(),
            to_json(&stage_event(r)),
        ];
        let stage = (
            self.core.keys.stage(&r.card_id, &r.stage_name),
            to_json(&stage_doc(r)),
        );
        let step = Step {
            op: if known.is_some() {
                "stage_known"
            } else {
                "stage"
            },
            card_id: r.card_id.clone(),
            args,
            stage: Some(stage),
            known,
        };
        let reply = self.tracker_step(step).await;
        // A copy that did not match, or a write whose effect is unknown: the card's later
        // updates take the general path (still exact, only slower).
        match &reply {
            Ok(v) if !is_stale(v) => {}
            _ => self.mirrors.forget(&r.card_id),
        }
        let reply = reply?;
        self.report_code("stage", &r.card_id, &reply);
        Ok(())
    }

    async fn complete_pipeline(&self, c: &PipelineCompletion) -> Result<()> {
        c.validate()?;
        let ts = format_naive(c.at.naive_utc());
        let args = vec![
            c.status.as_str().to_owned(),
            to_json(&ts),
            c.at.timestamp_micros().to_string(),
            to_json(&c.card_id),
            to_json(&c.message),
            to_json(&ts),
        ];
        // A finished card's document is edited by the general path only (once per card).
        self.mirrors.forget(&c.card_id);
        let step = Step {
            op: "complete",
            card_id: c.card_id.clone(),
            args,
            stage: None,
            known: None,
        };
        let reply = self.tracker_step(step).await?;
        self.report_code("complete", &c.card_id, &reply);
        Ok(())
    }

    async fn get_card(&self, card_id: &str) -> Result<Option<Card>> {
        check_readable_card_id(card_id)?;
        let key = self.core.keys.pipeline(card_id);
        let raw: Option<Vec<u8>> = self.core.redis.query(redis::cmd("GET").arg(&key)).await?;
        let Some(raw) = raw else { return Ok(None) };
        let value = parse_doc_value(&key, &raw).map_err(Error::Malformed)?;
        let parsed = parse_pipeline(&key, &value).map_err(Error::Malformed)?;
        // A card without `_stages` was started by Python: only SCAN finds its stages. A card we
        // started may still have stages a Python worker added: the periodic SCAN the
        // dashboard's reads share (at most one per `tracker.scan_interval_seconds`) finds them.
        let mut found = Discovered::default();
        if parsed.stage_order.is_some()
            && let Some(d) = self.discovered().await?
        {
            for stage in d.stages.names(card_id) {
                found.stages.push(card_id, stage);
            }
        }
        if parsed.stage_order.is_none() && self.core.settings.tracker.scan_python_cards {
            let keys = self
                .core
                .redis
                .scan_match(
                    &self.core.keys.stage_scan_pattern(card_id),
                    Some("string"),
                    SCAN_LIMIT,
                )
                .await?;
            for k in keys {
                if let Some((c, stage)) = self.core.keys.card_and_stage_of_stage_key(&k)
                    && c == card_id
                {
                    found.stages.push(card_id, stage);
                }
            }
        }
        found.stages.finish();
        let mut malformed = Vec::new();
        let mut cards = self
            .fetch_stages(
                vec![(card_id.to_owned(), parsed)],
                Some(&found),
                None,
                &mut malformed,
            )
            .await?;
        for m in malformed {
            tracing::warn!(key = %m.key.escape_debug(), reason = %m.reason, "malformed stage document left out");
        }
        Ok(cards.pop())
    }

    async fn list_cards(&self) -> Result<Vec<String>> {
        let min = Utc::now().timestamp_micros() as f64 / 1e6
            - self.core.settings.tracker.ttl_seconds as f64;
        let mut zrev = redis::cmd("ZREVRANGEBYSCORE");
        zrev.arg(self.core.keys.pipeline_index())
            .arg("+inf")
            .arg(min);
        let (mut ids, found): (Vec<String>, _) =
            futures::try_join!(self.core.redis.query(&zrev), self.discovered())?;
        let mut seen: HashSet<String> = ids.iter().cloned().collect();
        for card in found.iter().flat_map(|d| d.cards.iter()) {
            if seen.insert(card.clone()) {
                ids.push(card.clone());
            }
        }
        Ok(ids)
    }

    async fn read_cards(&self, now: DateTime<Utc>) -> Result<CardsRead> {
        let min =
            now.timestamp_micros() as f64 / 1e6 - self.core.settings.tracker.ttl_seconds as f64;
        let mut zrange = redis::cmd("ZRANGEBYSCORE");
        zrange
            .arg(self.core.keys.pipeline_index())
            .arg(min)
            .arg("+inf");
        let index_key = self.core.keys.pipeline_index();
        let mut malformed = Vec::new();
        let index = async {
            match self.core.redis.query::<Vec<Vec<u8>>>(&zrange).await {
                Err(e) if e.is_wrong_type() => Ok((Vec::new(), true)),
                other => other.map(|ids| (ids, false)),
            }
        };
        let ((indexed, index_wrong_type), found, slots) =
            futures::try_join!(index, self.discovered(), self.slot_map())?;
        if index_wrong_type {
            malformed.push(Malformed {
                key: index_key.clone(),
                reason: "not a sorted set (overwritten with another type?)".into(),
            });
        }
        let mut ids = crate::model::utf8_members(&index_key, indexed, &mut malformed);
        for d in found.iter() {
            malformed.extend(self.unreadable_malformed(d));
        }
        let mut seen: HashSet<String> = ids.iter().cloned().collect();
        for card in found.iter().flat_map(|d| d.cards.iter()) {
            if seen.insert(card.clone()) {
                ids.push(card.clone());
            }
        }
        let doc_keys: Vec<String> = ids.iter().map(|id| self.core.keys.pipeline(id)).collect();
        let raws = self.get_many(&doc_keys, slots.as_ref()).await?;
        let mut parsed = Vec::with_capacity(ids.len());
        for ((id, key), raw) in ids.into_iter().zip(&doc_keys).zip(raws) {
            // Listed but gone: expired since the index entry was written.
            let Some(raw) = raw else { continue };
            match parse_doc_value(key, &raw).and_then(|v| parse_pipeline(key, &v)) {
                Ok(p) => parsed.push((id, p)),
                Err(m) => malformed.push(m),
            }
        }
        let mut cards = self
            .fetch_stages(parsed, found.as_deref(), slots.as_ref(), &mut malformed)
            .await?;
        sort_cards(&mut cards);
        Ok(CardsRead { cards, malformed })
    }

    async fn read_cards_tracked(
        &self,
        now: DateTime<Utc>,
        scan: crate::connection::ScanCursor,
    ) -> Result<(CardsRead, Option<super::ReadCursor>)> {
        self.full_read_tracked(now, scan).await
    }

    async fn read_changes(
        &self,
        cursor: &mut super::ReadCursor,
        hints: super::ChangeHints,
    ) -> Result<Option<super::CardChanges>> {
        self.changes_since(cursor, hints).await
    }

    async fn audit_cards(
        &self,
        cursor: &mut super::ReadCursor,
        recheck: &std::collections::HashSet<String>,
    ) -> Result<Option<super::CardChanges>> {
        self.audit(cursor, recheck).await
    }

    async fn history(
        &self,
        card_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        check_readable_card_id(card_id)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let key = self.core.keys.event_history(card_id);
        let mut entries = match after {
            Some(id) => {
                check_stream_id(id)?;
                let mut c = redis::cmd("XRANGE");
                c.arg(&key)
                    .arg(format!("({id}"))
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit);
                parse_stream_reply(&key, self.core.redis.query(&c).await?)
            }
            None => {
                let mut c = redis::cmd("XREVRANGE");
                c.arg(&key).arg("+").arg("-").arg("COUNT").arg(limit);
                let mut e = parse_stream_reply(&key, self.core.redis.query(&c).await?);
                e.reverse();
                e
            }
        };
        entries.truncate(limit);
        Ok(entries)
    }

    async fn subscribe(&self, card_id: Option<&str>) -> Result<EventStream> {
        // The subscription's own connection: its failures never touch the command connection.
        let subscription = match card_id {
            Some(card) => {
                check_readable_card_id(card)?;
                let channel = self.core.keys.events_channel(card);
                self.core.redis.subscribe(&channel).await?
            }
            None => {
                let pattern = self.core.keys.events_channel_pattern();
                self.core.redis.psubscribe(&pattern).await?
            }
        };
        let stream =
            subscription.map(|msg| parse_event(msg.get_channel_name(), msg.get_payload_bytes()));
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_ids_that_name_other_keys() {
        assert!(check_readable_card_id("a:stage:b").is_err());
        assert!(check_readable_card_id(":index").is_err());
        assert!(check_readable_card_id("py{thing}").is_ok());
        assert!(check_stream_id("1-0").is_ok());
        assert!(check_stream_id("1-0 +").is_err());
    }

    #[test]
    fn stream_replies_parse_and_report_bad_entries() {
        let entry = |id: &str, field: &str, payload: &str| {
            Value::Array(vec![
                Value::BulkString(id.as_bytes().to_vec()),
                Value::Array(vec![
                    Value::BulkString(field.as_bytes().to_vec()),
                    Value::BulkString(payload.as_bytes().to_vec()),
                ]),
            ])
        };
        let reply = Value::Array(vec![
            entry(
                "1-0",
                "event",
                r#"{"event":"pipeline_started","card_id":"c","total_stages":2,"timestamp":"2026-01-01T00:00:00"}"#,
            ),
            entry("2-0", "event", "not json"),
            entry("3-0", "other", "{}"),
        ]);
        let got = parse_stream_reply("h", reply);
        assert_eq!(got.len(), 3);
        assert!(got[0].event.is_ok());
        assert!(got[1].event.is_err());
        assert!(
            got[2]
                .event
                .as_ref()
                .unwrap_err()
                .reason
                .contains("no event")
        );
    }
}
