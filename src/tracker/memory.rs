//! The tracker in process memory: the same documents, extension fields, TTLs, history and
//! events as on Redis, each write one step under the tracker's lock.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use super::{
    CardsRead, EventStream, HistoryEntry, PipelineCompletion, PipelineStart, StageReport,
    TrackerStore, assemble_card, duration_micros, parse_pipeline, sort_cards, stage_doc,
    stage_event, stage_names, start_doc, started_event,
};
use crate::error::{Error, Result};
use crate::model::{PipelineEvent, StageDoc, StageStatus, format_naive};
use crate::store::{MemoryCore, delegate_store};
use crate::tracker::Card;

/// Events buffered per subscriber before it starts missing some (it is told, see below).
const EVENT_CHANNEL: usize = 4096;

struct Expiring<T> {
    value: T,
    expires: Instant,
    written: Instant,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration) -> Self {
        let now = Instant::now();
        Self {
            value,
            expires: now + ttl,
            written: now,
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires > now
    }

    fn touch(&mut self, ttl: Duration) {
        self.written = Instant::now();
        self.expires = self.written + ttl;
    }
}

/// A history entry id like a stream's: (milliseconds, sequence).
type EntryId = (u64, u64);

/// The tracker's documents, history and event channel.
struct TrackerState {
    /// Pipeline documents as JSON objects (with the extension fields), by card id.
    docs: HashMap<String, Expiring<Map<String, Value>>>,
    stages: HashMap<String, HashMap<String, Expiring<StageDoc>>>,
    history: HashMap<String, Expiring<VecDeque<(EntryId, PipelineEvent)>>>,
    last_id: EntryId,
    events: broadcast::Sender<PipelineEvent>,
}

impl Default for TrackerState {
    fn default() -> Self {
        Self {
            docs: HashMap::new(),
            stages: HashMap::new(),
            history: HashMap::new(),
            last_id: (0, 0),
            events: broadcast::channel(EVENT_CHANNEL).0,
        }
    }
}

impl std::fmt::Debug for TrackerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackerState")
            .field("cards", &self.docs.len())
            .finish_non_exhaustive()
    }
}

impl TrackerState {
    /// Forgets everything expired (run on each start, so memory stays bounded by the TTL).
    fn sweep(&mut self, now: Instant) {
        self.docs.retain(|_, d| d.live(now));
        self.history.retain(|_, h| h.live(now));
        self.stages.retain(|_, s| {
            s.retain(|_, d| d.live(now));
            !s.is_empty()
        });
    }

    fn live_doc_mut(
        &mut self,
        card_id: &str,
        now: Instant,
    ) -> Option<&mut Expiring<Map<String, Value>>> {
        if self.docs.get(card_id).is_some_and(|d| !d.live(now)) {
            self.docs.remove(card_id);
        }
        self.docs.get_mut(card_id)
    }

    /// A stream-like id: milliseconds, then a sequence within the millisecond.
    fn next_id(&mut self, at: DateTime<Utc>) -> EntryId {
        let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        self.last_id = if ms > self.last_id.0 {
            (ms, 0)
        } else {
            (self.last_id.0, self.last_id.1 + 1)
        };
        self.last_id
    }

    fn emit(
        &mut self,
        event: PipelineEvent,
        at: DateTime<Utc>,
        settings: &crate::config::TrackerSettings,
    ) {
        let ttl = Duration::from_secs(settings.ttl_seconds);
        let id = self.next_id(at);
        let now = Instant::now();
        let card = event.card_id().to_owned();
        if self.history.get(&card).is_some_and(|h| !h.live(now)) {
            self.history.remove(&card);
        }
        let h = self
            .history
            .entry(card)
            .or_insert_with(|| Expiring::new(VecDeque::new(), ttl));
        h.value.push_back((id, event.clone()));
        let max = usize::try_from(settings.history_max_events).unwrap_or(usize::MAX);
        while h.value.len() > max {
            h.value.pop_front();
        }
        h.touch(ttl);
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }
}

fn parse_id(id: &str) -> Option<EntryId> {
    let (a, b) = id.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Appends `name` to the extension list `field` unless present; whether it was added.
fn list_add(doc: &mut Map<String, Value>, field: &str, name: &str) -> bool {
    let entry = doc
        .entry(field.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    let Value::Array(list) = entry else {
        return false;
    };
    if list.iter().any(|v| v.as_str() == Some(name)) {
        return false;
    }
    list.push(Value::String(name.to_owned()));
    true
}

/// The tracker in this process's memory.
pub struct MemoryTracker {
    core: MemoryCore,
    state: std::sync::Mutex<TrackerState>,
}

impl std::fmt::Debug for MemoryTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTracker").finish_non_exhaustive()
    }
}

delegate_store!(MemoryTracker);

impl MemoryTracker {
    /// An empty tracker using `core`'s key names and settings.
    pub fn new(core: MemoryCore) -> Self {
        Self {
            core,
            state: Default::default(),
        }
    }

    fn tracker_state(&self) -> std::sync::MutexGuard<'_, TrackerState> {
        // Every step leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ttl(&self) -> Duration {
        Duration::from_secs(self.core.settings.tracker.ttl_seconds)
    }

    fn card_of(
        &self,
        st: &TrackerState,
        card_id: &str,
        doc: &Map<String, Value>,
        now: Instant,
    ) -> Option<Card> {
        let key = self.core.keys.pipeline(card_id);
        let parsed = match parse_pipeline(&key, &Value::Object(doc.clone())) {
            Ok(p) => p,
            Err(m) => {
                tracing::warn!(key = %m.key, reason = %m.reason, "malformed pipeline document");
                return None;
            }
        };
        let live: HashMap<String, StageDoc> = st
            .stages
            .get(card_id)
            .into_iter()
            .flatten()
            .filter(|(_, s)| s.live(now))
            .map(|(n, s)| (n.clone(), s.value.clone()))
            .collect();
        // Same selection as on Redis: recorded order, then every other live stage.
        let names = stage_names(&parsed, Some(&live.keys().cloned().collect()));
        let stages = names
            .into_iter()
            .filter_map(|n| live.get(&n).cloned().map(|s| (n, s)))
            .collect();
        Some(assemble_card(parsed, stages))
    }
}

#[async_trait::async_trait]
impl TrackerStore for MemoryTracker {
    async fn start_pipeline(&self, s: &PipelineStart) -> Result<()> {
        s.validate()?;
        let ttl = self.ttl();
        let Value::Object(doc) = start_doc(s) else {
            return Err(Error::InvalidInput(
                "pipeline document is not an object".into(),
            ));
        };
        let mut st = self.tracker_state();
        st.sweep(Instant::now());
        st.docs.insert(s.card_id.clone(), Expiring::new(doc, ttl));
        st.emit(started_event(s), s.at, &self.core.settings.tracker);
        Ok(())
    }

    async fn update_stage(&self, r: &StageReport) -> Result<()> {
        r.validate()?;
        let ttl = self.ttl();
        let now = Instant::now();
        let mut st = self.tracker_state();
        st.stages
            .entry(r.card_id.clone())
            .or_default()
            .insert(r.stage_name.clone(), Expiring::new(stage_doc(r), ttl));
        if let Some(d) = st.live_doc_mut(&r.card_id, now) {
            let doc = &mut d.value;
            doc.insert("current_stage".into(), Value::String(r.stage_name.clone()));
            list_add(doc, "_stages", &r.stage_name);
            if r.status == StageStatus::Completed && list_add(doc, "_completed", &r.stage_name) {
                let done = doc
                    .get("completed_stages")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    + 1;
                let total = doc.get("total_stages").and_then(Value::as_i64);
                let done = total.map_or(done, |t| done.min(t)).max(0);
                doc.insert("completed_stages".into(), done.into());
            }
            d.touch(ttl);
        }
        st.emit(stage_event(r), r.at, &self.core.settings.tracker);
        Ok(())
    }

    async fn complete_pipeline(&self, c: &PipelineCompletion) -> Result<()> {
        c.validate()?;
        let ttl = self.ttl();
        let now = Instant::now();
        let end = format_naive(c.at.naive_utc());
        let mut st = self.tracker_state();
        // The original publishes nothing for a card that has no document.
        let Some(d) = st.live_doc_mut(&c.card_id, now) else {
            return Ok(());
        };
        let duration;
        {
            let doc = &mut d.value;
            doc.insert("status".into(), c.status.as_str().into());
            doc.insert("end_time".into(), Value::String(end.clone()));
            // A finished card is in no stage any more, as in the original.
            doc.insert("current_stage".into(), Value::Null);
            let start = doc.get("start_time").and_then(Value::as_str);
            duration = start
                .and_then(|s| duration_micros(s, c.at))
                .map(|us| us as f64 / 1e6);
            if let Some(secs) = duration {
                doc.insert("duration_seconds".into(), secs.into());
            }
            d.touch(ttl);
        }
        let event = PipelineEvent::PipelineCompleted {
            card_id: c.card_id.clone(),
            status: c.status,
            duration_seconds: duration,
            message: c.message.clone(),
            timestamp: end,
        };
        st.emit(event, c.at, &self.core.settings.tracker);
        Ok(())
    }

    async fn get_card(&self, card_id: &str) -> Result<Option<Card>> {
        let now = Instant::now();
        let st = self.tracker_state();
        let Some(d) = st.docs.get(card_id).filter(|d| d.live(now)) else {
            return Ok(None);
        };
        Ok(self.card_of(&st, card_id, &d.value, now))
    }

    async fn list_cards(&self) -> Result<Vec<String>> {
        let now = Instant::now();
        let st = self.tracker_state();
        let mut live: Vec<(&String, Instant)> = st
            .docs
            .iter()
            .filter(|(_, d)| d.live(now))
            .map(|(id, d)| (id, d.written))
            .collect();
        live.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        Ok(live.into_iter().map(|(id, _)| id.clone()).collect())
    }

    async fn read_cards(&self, _now: DateTime<Utc>) -> Result<CardsRead> {
        let now = Instant::now();
        let st = self.tracker_state();
        let mut cards: Vec<Card> = st
            .docs
            .iter()
            .filter(|(_, d)| d.live(now))
            .filter_map(|(id, d)| self.card_of(&st, id, &d.value, now))
            .collect();
        sort_cards(&mut cards);
        Ok(CardsRead {
            cards,
            malformed: Vec::new(),
        })
    }

    async fn history(
        &self,
        card_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>> {
        let after = match after {
            Some(a) => Some(parse_id(a).ok_or_else(|| {
                Error::InvalidInput(format!(
                    "{:?} is not a history entry id (<ms>-<seq>)",
                    a.escape_debug().take(40).collect::<String>()
                ))
            })?),
            None => None,
        };
        let now = Instant::now();
        let st = self.tracker_state();
        let Some(h) = st.history.get(card_id).filter(|h| h.live(now)) else {
            return Ok(Vec::new());
        };
        let entry = |(id, e): &(EntryId, PipelineEvent)| HistoryEntry {
            id: format!("{}-{}", id.0, id.1),
            event: Ok(e.clone()),
        };
        Ok(match after {
            Some(a) => h
                .value
                .iter()
                .filter(|(id, _)| *id > a)
                .take(limit)
                .map(entry)
                .collect(),
            None => {
                let skip = h.value.len().saturating_sub(limit);
                h.value.iter().skip(skip).map(entry).collect()
            }
        })
    }

    async fn subscribe(&self, card_id: Option<&str>) -> Result<EventStream> {
        let rx = self.tracker_state().events.subscribe();
        let card = card_id.map(str::to_owned);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((Ok(event), rx)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        // Like a pub/sub client that fell behind: say so, the history has them.
                        tracing::warn!(missed = n, "event subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .filter(move |e| {
            let keep = match (&card, e) {
                (Some(c), Ok(ev)) => ev.card_id() == c,
                _ => true,
            };
            futures::future::ready(keep)
        });
        Ok(stream.boxed())
    }
}
