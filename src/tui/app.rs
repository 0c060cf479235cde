//! The dashboard's state and everything that changes it: messages from the source tasks
//! ([`App::apply`]) and keys ([`App::handle_key`]).
//!
//! The UI task owns this struct alone (no lock, no sharing), so every change is a plain
//! method call that tests can drive directly: feed a snapshot, press keys, assert on fields.
//! Rendering reads it and never changes anything but the scroll offsets it needs to keep the
//! selection visible.
//!
//! Memory stays bounded whatever Redis holds: history series are capped rings, events seen
//! live are capped per card and dropped when the card leaves Redis.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::connection::ConnState;
use crate::model::{PipelineDoc, PipelineEvent, PipelineStatus, StageDoc, StageStatus};
use crate::snapshot::Snapshot;
use crate::tracker::Card;

use super::keymap::{Action, KeyMap, Scope};
use super::message::{Command, Message};
use super::theme::Theme;

/// Samples kept per history series (polls: 10 minutes at the default 1 s interval).
pub const HISTORY_SAMPLES: usize = 600;
/// Events kept per card for the drilldown when the writer keeps no history stream.
pub const EVENTS_PER_CARD: usize = 200;
/// Cards whose live events are tracked at once; beyond it new cards' events are counted only.
pub const TRACKED_CARDS: usize = 20_000;
/// Live events kept over all cards (oldest dropped first), so that memory stays bounded under
/// a long event storm over many cards (200 per card × 10,000 cards would be gigabytes).
pub const LIVE_EVENTS_TOTAL: usize = 20_000;
/// Cards that live events may add before a snapshot lists them (a storm of unknown ids cannot
/// grow the table without bound).
pub const CARDS_FROM_EVENTS: usize = 5_000;
/// How long a card known only from its start event stays without appearing in a snapshot.
pub const EVENT_CARD_GRACE_SECS: i64 = 60;
/// Seconds over which the events-per-second figure is averaged.
pub const RATE_WINDOW_SECS: i64 = 5;

/// A card's stored history as the source task delivered it.
pub type HistoryResult = Result<Option<Vec<PipelineEvent>>, String>;

/// A fixed-capacity ring: pushing onto a full ring drops the oldest entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    pub fn last(&self) -> Option<&T> {
        self.items.back()
    }

    fn last_mut(&mut self) -> Option<&mut T> {
        self.items.back_mut()
    }
}

/// Series derived from successive snapshots, for the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    /// Cache hit rate within each poll interval (`None`: no lookups in that interval).
    pub hit_rate: Ring<Option<f64>>,
    /// (time, cumulative LLM cost) per snapshot, for the spend rate.
    pub spend: Ring<(DateTime<Utc>, f64)>,
    /// Cumulative (hits, misses) of the previous snapshot.
    last_lookups: Option<(i64, i64)>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            hit_rate: Ring::new(HISTORY_SAMPLES),
            spend: Ring::new(HISTORY_SAMPLES),
            last_lookups: None,
        }
    }
}

/// Window over which the spend rate is computed.
pub const SPEND_WINDOW_SECS: i64 = 300;

impl History {
    fn record(&mut self, snap: &Snapshot) {
        let llm = &snap.metrics.llm;
        let now = (llm.cache_hits, llm.cache_misses);
        let sample = match self.last_lookups {
            Some((h, m)) if now.0 >= h && now.1 >= m => {
                let (dh, dm) = (now.0 - h, now.1 - m);
                (dh + dm > 0).then(|| dh as f64 / (dh + dm) as f64)
            }
            // First sample, or counters were reset: the cumulative rate is the best we know.
            _ => llm.hit_rate,
        };
        self.hit_rate.push(sample);
        self.last_lookups = Some(now);
        self.spend.push((snap.taken_at, llm.total_cost));
    }

    /// USD per hour over the last [`SPEND_WINDOW_SECS`] (or as much of it as was observed),
    /// with the seconds actually covered. `None` until two samples span at least 1 s.
    pub fn spend_per_hour(&self) -> Option<(f64, i64)> {
        let (t1, c1) = *self.spend.last()?;
        let (t0, c0) = *self
            .spend
            .iter()
            .find(|(t, _)| (t1 - *t).num_seconds() <= SPEND_WINDOW_SECS)?;
        let secs = (t1 - t0).num_milliseconds() as f64 / 1000.0;
        if secs < 1.0 || c1 < c0 {
            return None;
        }
        Some(((c1 - c0) / secs * 3600.0, secs.round() as i64))
    }
}

/// An event as the dashboard saw it arrive.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenEvent {
    pub received: DateTime<Utc>,
    pub event: PipelineEvent,
}

/// The card table's sort columns, in the order `s` cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Start time, newest first.
    Started,
    Id,
    /// Attention first: failed, running, queued, cancelled, completed.
    Status,
    /// Furthest along first.
    Progress,
    /// Longest first.
    Elapsed,
    /// Most expensive first.
    Cost,
}

impl SortKey {
    pub const ALL: [SortKey; 6] = [
        SortKey::Started,
        SortKey::Id,
        SortKey::Status,
        SortKey::Progress,
        SortKey::Elapsed,
        SortKey::Cost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Started => "started",
            SortKey::Id => "id",
            SortKey::Status => "status",
            SortKey::Progress => "progress",
            SortKey::Elapsed => "time",
            SortKey::Cost => "cost",
        }
    }

    fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// One row of the overview table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// Index into the displayed snapshot's cards.
    Card(usize),
    /// Index into the displayed snapshot's malformed documents.
    Malformed(usize),
}

/// The drilldown of one card.
#[derive(Debug, Clone, PartialEq)]
pub struct CardView {
    pub card_id: String,
    /// First event row shown.
    pub scroll: usize,
    /// The card as last seen, kept when it expires from Redis while open.
    pub last_seen: Option<Card>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Overview,
    Card(Box<CardView>),
}

/// What a frozen screen shows: a copy of everything displayed at the moment of freezing.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub snapshot: Option<Snapshot>,
    pub history: History,
    pub at: DateTime<Utc>,
}

/// The whole state of the dashboard.
#[derive(Debug)]
pub struct App {
    pub keymap: KeyMap,
    pub theme: Theme,
    /// `NO_COLOR` is set: themes stay mono.
    pub no_color: bool,
    /// Where the data comes from (no credentials).
    pub endpoint: String,
    /// The latest data, patched by live events.
    pub live: Option<Snapshot>,
    pub history: History,
    pub frozen: Option<Box<Frozen>>,
    pub view: View,
    pub help: bool,
    pub filter: String,
    pub filter_editing: bool,
    pub sort: SortKey,
    pub reverse: bool,
    /// Selected row among [`App::rows`].
    pub selected: usize,
    selected_id: Option<String>,
    /// First table row on screen (kept by the renderer).
    pub offset: usize,
    /// Table rows that fit on screen (set by the renderer, used by PgUp/PgDn).
    pub page: usize,
    rows: Vec<Row>,
    rows_stale: bool,
    card_index: HashMap<String, usize>,
    /// Cards added by a start event and not yet seen in a snapshot, with when they came.
    /// A reader may find a new card only later (the tracker finds Python-written cards by a
    /// SCAN it repeats every `tracker.scan_interval_seconds`); such a card stays on screen
    /// for [`EVENT_CARD_GRACE_SECS`] instead of vanishing at the next poll.
    from_events: HashMap<String, DateTime<Utc>>,
    pub conn: ConnState,
    pub subscribed: bool,
    /// Why the last subscription attempt failed, until one succeeds.
    pub subscribe_error: Option<String>,
    /// The last failed read, while no later read succeeded.
    pub read_error: Option<(DateTime<Utc>, String)>,
    /// Events seen live, per card.
    pub live_events: HashMap<String, VecDeque<SeenEvent>>,
    /// Card ids in the order their live events arrived, one entry per kept event (at most
    /// [`LIVE_EVENTS_TOTAL`]): the front names the card holding the oldest event.
    live_order: VecDeque<String>,
    /// Per-second event counts (epoch second, count), for the rate.
    event_buckets: Ring<(i64, u32)>,
    pub events_total: u64,
    /// Payloads on event channels that were not events.
    pub bad_events: u64,
    pub last_bad_event: Option<crate::model::Malformed>,
    /// The drilldown card's stored history, once loaded.
    pub card_history: Option<(String, HistoryResult)>,
    /// Warnings shown until the next key press (key config problems, theme refusals).
    pub notices: Vec<String>,
    /// The clock, set by the run loop before handling anything (injected in tests).
    pub now: DateTime<Utc>,
    /// Something changed since the last frame.
    pub dirty: bool,
    pub quit: bool,
}

impl App {
    pub fn new(keymap: KeyMap, theme: Theme, no_color: bool, endpoint: String) -> Self {
        let theme = if no_color { Theme::mono() } else { theme };
        let notices = keymap.warnings.clone();
        Self {
            keymap,
            theme,
            no_color,
            endpoint,
            live: None,
            history: History::default(),
            frozen: None,
            view: View::Overview,
            help: false,
            filter: String::new(),
            filter_editing: false,
            sort: SortKey::Started,
            reverse: false,
            selected: 0,
            selected_id: None,
            offset: 0,
            page: 10,
            rows: Vec::new(),
            rows_stale: true,
            card_index: HashMap::new(),
            from_events: HashMap::new(),
            conn: ConnState::Connecting,
            subscribed: false,
            subscribe_error: None,
            read_error: None,
            live_events: HashMap::new(),
            live_order: VecDeque::new(),
            event_buckets: Ring::new(60),
            events_total: 0,
            bad_events: 0,
            last_bad_event: None,
            card_history: None,
            notices,
            now: Utc::now(),
            dirty: true,
            quit: false,
        }
    }

    /// From the dashboard settings (and whether `NO_COLOR` is set).
    pub fn from_settings(
        dash: &crate::config::DashboardSettings,
        no_color: bool,
        endpoint: String,
    ) -> Self {
        Self::new(
            KeyMap::from_config(&dash.keys),
            Theme::by_name(&dash.theme),
            no_color,
            endpoint,
        )
    }

    /// The snapshot on screen: the frozen copy when frozen, else the live one.
    pub fn shown(&self) -> Option<&Snapshot> {
        match &self.frozen {
            Some(f) => f.snapshot.as_ref(),
            None => self.live.as_ref(),
        }
    }

    /// The history series on screen.
    pub fn shown_history(&self) -> &History {
        match &self.frozen {
            Some(f) => &f.history,
            None => &self.history,
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// Which binding scope keys are looked up in.
    pub fn scope(&self) -> Scope {
        if self.help {
            Scope::Help
        } else {
            match self.view {
                View::Overview => Scope::Overview,
                View::Card(_) => Scope::Card,
            }
        }
    }

    /// Live events per second over the last few whole seconds.
    pub fn events_per_sec(&self) -> f64 {
        let now = self.now.timestamp();
        let sum: u32 = self
            .event_buckets
            .iter()
            .filter(|(s, _)| *s < now && *s >= now - RATE_WINDOW_SECS)
            .map(|(_, n)| *n)
            .sum();
        f64::from(sum) / RATE_WINDOW_SECS as f64
    }

    // ---- messages ----

    /// Applies one message from the source tasks.
    pub fn apply(&mut self, msg: Message) {
        self.dirty = true;
        match msg {
            Message::Snapshot(s) => self.apply_snapshot(*s),
            Message::Event(e) => self.apply_event(e),
            Message::Connection(c) => self.conn = c,
            Message::ReadFailed(e) => {
                self.read_error = Some((self.now, super::text::sanitize(&e).into_owned()));
            }
            Message::History { card_id, result } => {
                if matches!(&self.view, View::Card(v) if v.card_id == card_id) {
                    self.card_history = Some((card_id, result));
                }
            }
            Message::Subscribed(up) => {
                self.subscribed = up;
                if up {
                    self.subscribe_error = None;
                }
            }
            Message::SubscribeFailed(why) => {
                self.subscribed = false;
                self.subscribe_error = Some(why);
            }
            Message::BadEvent(m) => {
                self.bad_events += 1;
                self.last_bad_event = Some(m);
            }
        }
    }

    fn apply_snapshot(&mut self, mut snap: Snapshot) {
        self.read_error = None;
        self.history.record(&snap);
        // Carry over cards that only events have shown so far, within their grace period.
        if !self.from_events.is_empty() {
            let listed: std::collections::HashSet<&str> = snap
                .cards
                .iter()
                .map(|c| c.pipeline.card_id.as_str())
                .collect();
            let now = self.now;
            let mut keep = Vec::new();
            self.from_events.retain(|id, since| {
                let wait = !listed.contains(id.as_str())
                    && (now - *since).num_seconds() < EVENT_CARD_GRACE_SECS;
                if wait {
                    keep.push(id.clone());
                }
                wait
            });
            if let Some(old) = &self.live {
                snap.cards.extend(
                    old.cards
                        .iter()
                        .filter(|c| keep.contains(&c.pipeline.card_id))
                        .cloned(),
                );
            }
        }
        self.card_index = snap
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| (c.pipeline.card_id.clone(), i))
            .collect();
        let open = match &mut self.view {
            View::Card(v) => {
                if let Some(c) = snap.cards.iter().find(|c| c.pipeline.card_id == v.card_id) {
                    v.last_seen = Some(c.clone());
                }
                Some(v.card_id.clone())
            }
            View::Overview => None,
        };
        // A card that left Redis leaves the table and takes its live events with it.
        let index = &self.card_index;
        self.live_events
            .retain(|id, _| index.contains_key(id) || open.as_deref() == Some(id));
        let kept = &self.live_events;
        self.live_order.retain(|id| kept.contains_key(id));
        self.live = Some(snap);
        if !self.is_frozen() {
            self.rows_stale = true;
        }
    }

    fn apply_event(&mut self, event: PipelineEvent) {
        self.events_total += 1;
        let sec = self.now.timestamp();
        match self.event_buckets.last_mut() {
            Some((s, n)) if *s == sec => *n = n.saturating_add(1),
            _ => self.event_buckets.push((sec, 1)),
        }
        let id = event.card_id().to_owned();
        // Cards in Redis are always tracked; a storm of unknown ids only fills the spare room.
        let known = self.card_index.contains_key(&id) || self.live_events.contains_key(&id);
        if known || self.live_events.len() < TRACKED_CARDS {
            let seen = self.live_events.entry(id.clone()).or_default();
            if seen.len() == EVENTS_PER_CARD {
                seen.pop_front();
            }
            seen.push_back(SeenEvent {
                received: self.now,
                event: event.clone(),
            });
            self.live_order.push_back(id.clone());
            // Over the total budget: drop the globally oldest events. (An entry can name a
            // card whose event the per-card cap already dropped; it then drops that card's
            // oldest, which keeps the bound.)
            while self.live_order.len() > LIVE_EVENTS_TOTAL {
                let Some(old) = self.live_order.pop_front() else {
                    break;
                };
                if let Some(q) = self.live_events.get_mut(&old) {
                    q.pop_front();
                    if q.is_empty() {
                        self.live_events.remove(&old);
                    }
                }
            }
        }
        let Some(snap) = self.live.as_mut() else {
            return;
        };
        let idx = match self.card_index.get(&id) {
            Some(&i) => i,
            None => {
                let PipelineEvent::PipelineStarted {
                    total_stages,
                    timestamp,
                    metadata,
                    ..
                } = &event
                else {
                    return; // the next snapshot brings the card with its documents
                };
                if self.from_events.len() >= CARDS_FROM_EVENTS {
                    return;
                }
                self.from_events.insert(id.clone(), self.now);
                snap.cards.push(Card {
                    pipeline: PipelineDoc {
                        card_id: id.clone(),
                        status: PipelineStatus::Running,
                        total_stages: *total_stages,
                        completed_stages: 0,
                        current_stage: None,
                        start_time: timestamp.clone(),
                        end_time: None,
                        metadata: metadata.clone(),
                        duration_seconds: None,
                    },
                    stages: Vec::new(),
                    cost_usd: None,
                });
                self.card_index.insert(id.clone(), snap.cards.len() - 1);
                if !self.is_frozen() {
                    self.rows_stale = true;
                }
                return;
            }
        };
        let card = &mut snap.cards[idx];
        patch_card(card, &event);
        if !self.is_frozen() && self.sort != SortKey::Id {
            self.rows_stale = true;
        }
    }

    // ---- rows ----

    /// The overview's rows after filter and sort (recomputed only when something changed).
    pub fn rows(&mut self) -> &[Row] {
        if self.rows_stale {
            self.rebuild_rows();
        }
        &self.rows
    }

    /// Up to `n` rows from `offset`, as last computed by [`App::rows`].
    pub fn rows_slice(&self, offset: usize, n: usize) -> &[Row] {
        let end = offset.saturating_add(n).min(self.rows.len());
        &self.rows[offset.min(end)..end]
    }

    fn rebuild_rows(&mut self) {
        self.rows_stale = false;
        let now = self.now;
        let sort = self.sort;
        let reverse = self.reverse;
        let needle = self.filter.to_lowercase();
        let snap = match &self.frozen {
            Some(f) => f.snapshot.as_ref(),
            None => self.live.as_ref(),
        };
        let Some(snap) = snap else {
            self.rows.clear();
            return;
        };
        let matches = |id: &str, title: Option<&str>| {
            needle.is_empty()
                || id.to_lowercase().contains(&needle)
                || title.is_some_and(|t| t.to_lowercase().contains(&needle))
        };
        let mut cards: Vec<usize> = (0..snap.cards.len())
            .filter(|&i| matches(&snap.cards[i].pipeline.card_id, snap.cards[i].title()))
            .collect();
        let cards_ref = &snap.cards;
        cards.sort_by(|&a, &b| {
            let (x, y) = (&cards_ref[a], &cards_ref[b]);
            let ord = match sort {
                SortKey::Started => y.pipeline.start_time.cmp(&x.pipeline.start_time),
                SortKey::Id => x.pipeline.card_id.cmp(&y.pipeline.card_id),
                SortKey::Status => {
                    status_rank(x.pipeline.status).cmp(&status_rank(y.pipeline.status))
                }
                SortKey::Progress => progress(y).total_cmp(&progress(x)),
                SortKey::Elapsed => super::format::elapsed(&y.pipeline, now)
                    .unwrap_or(-1.0)
                    .total_cmp(&super::format::elapsed(&x.pipeline, now).unwrap_or(-1.0)),
                SortKey::Cost => y
                    .cost_usd
                    .unwrap_or(-1.0)
                    .total_cmp(&x.cost_usd.unwrap_or(-1.0)),
            }
            .then_with(|| x.pipeline.card_id.cmp(&y.pipeline.card_id));
            if reverse { ord.reverse() } else { ord }
        });
        self.rows = cards.into_iter().map(Row::Card).collect();
        self.rows.extend(
            snap.malformed
                .iter()
                .enumerate()
                .filter(|(_, m)| matches(&m.key, Some(&m.reason)))
                .map(|(i, _)| Row::Malformed(i)),
        );
        // Keep the same card selected when rows move under it.
        if let Some(id) = &self.selected_id
            && let Some(pos) = self.rows.iter().position(|r| match r {
                Row::Card(i) => &snap.cards[*i].pipeline.card_id == id,
                Row::Malformed(_) => false,
            })
        {
            self.selected = pos;
        }
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        self.remember_selection();
    }

    fn remember_selection(&mut self) {
        let snap = match &self.frozen {
            Some(f) => f.snapshot.as_ref(),
            None => self.live.as_ref(),
        };
        self.selected_id = match (self.rows.get(self.selected), snap) {
            (Some(Row::Card(i)), Some(s)) => s.cards.get(*i).map(|c| c.pipeline.card_id.clone()),
            _ => None,
        };
    }

    /// The card under the cursor.
    pub fn selected_card(&mut self) -> Option<&Card> {
        let sel = self.selected;
        let row = *self.rows().get(sel)?;
        match row {
            Row::Card(i) => self.shown()?.cards.get(i),
            Row::Malformed(_) => None,
        }
    }

    /// The card the drilldown shows: the displayed copy, else the last one seen.
    pub fn open_card(&self) -> Option<(&Card, bool)> {
        let View::Card(v) = &self.view else {
            return None;
        };
        if let Some(c) = self
            .shown()
            .and_then(|s| s.cards.iter().find(|c| c.pipeline.card_id == v.card_id))
        {
            return Some((c, true));
        }
        v.last_seen.as_ref().map(|c| (c, false))
    }

    /// The drilldown's event list, newest first: the stored history when there is one, plus
    /// anything seen live that it does not contain yet. The flag says whether a stored history
    /// was used.
    pub fn open_card_events(&self) -> (Vec<PipelineEvent>, bool) {
        let View::Card(v) = &self.view else {
            return (Vec::new(), false);
        };
        let mut out: Vec<PipelineEvent> = Vec::new();
        let mut stored = false;
        if let Some((id, Ok(Some(h)))) = &self.card_history
            && id == &v.card_id
        {
            out.extend(h.iter().cloned());
            stored = true;
        }
        if let Some(seen) = self.live_events.get(&v.card_id) {
            for s in seen {
                if !out.contains(&s.event) {
                    out.push(s.event.clone());
                }
            }
        }
        // Oldest first by timestamp (stable: equal stamps keep arrival order), then reversed.
        out.sort_by(|a, b| {
            super::format::utc(a.timestamp()).cmp(&super::format::utc(b.timestamp()))
        });
        out.reverse();
        (out, stored)
    }

    // ---- keys ----

    /// Handles one key press; returns work for the source tasks.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        self.dirty = true;
        self.notices.clear();
        if self.filter_editing {
            return self.edit_filter(key);
        }
        let Some(action) = self.keymap.action(&key, self.scope()) else {
            return Vec::new();
        };
        self.perform(action)
    }

    fn edit_filter(&mut self, key: KeyEvent) -> Vec<Command> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => self.set_filter(String::new()),
            KeyCode::Esc => {
                self.filter_editing = false;
                self.set_filter(String::new());
            }
            KeyCode::Enter => self.filter_editing = false,
            KeyCode::Backspace => {
                let mut f = self.filter.clone();
                f.pop();
                self.set_filter(f);
            }
            KeyCode::Up => self.move_by(-1),
            KeyCode::Down => self.move_by(1),
            KeyCode::Char(c)
                if !ctrl
                    && !key.modifiers.contains(KeyModifiers::ALT)
                    && !c.is_control()
                    && self.filter.chars().count() < 200 =>
            {
                let mut f = self.filter.clone();
                f.push(c);
                self.set_filter(f);
            }
            _ => {}
        }
        Vec::new()
    }

    fn set_filter(&mut self, f: String) {
        self.filter = f;
        self.selected = 0;
        self.offset = 0;
        self.selected_id = None;
        self.rows_stale = true;
    }

    /// Carries out an action as if its key had been pressed.
    pub fn perform(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        if self.help {
            match action {
                Action::Quit => self.quit = true,
                Action::Help | Action::Back => self.help = false,
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = true,
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.page.max(1) as i64)),
            Action::PageDown => self.move_by(self.page.max(1) as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Open => return self.open_selected(),
            Action::Back => match self.view {
                View::Card(_) => {
                    self.view = View::Overview;
                    self.card_history = None;
                }
                View::Overview => {
                    if !self.filter.is_empty() {
                        self.set_filter(String::new());
                    }
                }
            },
            Action::Filter => self.filter_editing = true,
            Action::Sort => {
                self.sort = self.sort.next();
                self.reverse = false;
                self.rows_stale = true;
            }
            Action::SortReverse => {
                self.reverse = !self.reverse;
                self.rows_stale = true;
            }
            Action::Freeze => {
                if self.frozen.take().is_none() {
                    self.frozen = Some(Box::new(Frozen {
                        snapshot: self.live.clone(),
                        history: self.history.clone(),
                        at: self.now,
                    }));
                }
                self.rows_stale = true;
            }
            Action::Theme => {
                if self.no_color {
                    self.notices
                        .push("NO_COLOR is set: the theme stays mono".to_owned());
                } else {
                    self.theme = self.theme.next();
                }
            }
            Action::Refresh => return vec![Command::Refresh],
        }
        Vec::new()
    }

    fn move_by(&mut self, delta: i64) {
        if let View::Card(v) = &mut self.view {
            // The renderer clamps the scroll to the list length.
            v.scroll = (v.scroll as i64).saturating_add(delta).max(0) as usize;
            return;
        }
        let n = self.rows().len() as i64;
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = (self.selected as i64).saturating_add(delta).clamp(0, n - 1) as usize;
        self.remember_selection();
    }

    fn open_selected(&mut self) -> Vec<Command> {
        let sel = self.selected;
        match self.rows().get(sel).copied() {
            Some(Row::Card(_)) => {
                let Some(card) = self.selected_card().cloned() else {
                    return Vec::new();
                };
                let id = card.pipeline.card_id.clone();
                self.view = View::Card(Box::new(CardView {
                    card_id: id.clone(),
                    scroll: 0,
                    last_seen: Some(card),
                }));
                self.card_history = None;
                vec![Command::LoadHistory(id)]
            }
            Some(Row::Malformed(_)) => {
                self.notices.push(
                    "a malformed document has nothing to open; its reason is shown in the row"
                        .into(),
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    }
}

/// Share of the pipeline done, counting the running stage's percent (0.0–1.0).
pub fn progress(card: &Card) -> f64 {
    let total = card.pipeline.total_stages.max(0) as f64;
    if total == 0.0 {
        return if card.pipeline.status == PipelineStatus::Completed {
            1.0
        } else {
            0.0
        };
    }
    let done = card
        .pipeline
        .completed_stages
        .clamp(0, card.pipeline.total_stages) as f64;
    let running = running_percent(card).unwrap_or(0) as f64 / 100.0;
    ((done + running) / total).clamp(0.0, 1.0)
}

/// Percent of the running (current) stage, when it reports one.
pub fn running_percent(card: &Card) -> Option<i64> {
    let current = card.pipeline.current_stage.as_deref()?;
    card.stages
        .iter()
        .find(|s| s.stage_name == current && s.status == StageStatus::Running)
        .and_then(|s| s.progress_percent)
        .map(|p| p.clamp(0, 100))
}

fn status_rank(s: PipelineStatus) -> u8 {
    match s {
        PipelineStatus::Failed => 0,
        PipelineStatus::Running => 1,
        PipelineStatus::Queued => 2,
        PipelineStatus::Cancelled => 3,
        PipelineStatus::Completed => 4,
    }
}

/// Applies a live event to a card, idempotently (applying it twice changes nothing more).
fn patch_card(card: &mut Card, event: &PipelineEvent) {
    let doc = &mut card.pipeline;
    match event {
        PipelineEvent::PipelineStarted {
            total_stages,
            timestamp,
            ..
        } => {
            if doc.start_time != *timestamp {
                doc.status = PipelineStatus::Running;
                doc.total_stages = *total_stages;
                doc.completed_stages = 0;
                doc.current_stage = None;
                doc.start_time = timestamp.clone();
                doc.end_time = None;
                doc.duration_seconds = None;
                card.stages.clear();
            }
        }
        PipelineEvent::StageUpdated {
            stage_name,
            status,
            progress_percent,
            message,
            timestamp,
            ..
        } => {
            match card.stages.iter_mut().find(|s| &s.stage_name == stage_name) {
                Some(s) => {
                    s.status = *status;
                    s.progress_percent = *progress_percent;
                    s.message = message.clone();
                    s.timestamp = timestamp.clone();
                }
                None => card.stages.push(StageDoc {
                    stage_name: stage_name.clone(),
                    status: *status,
                    progress_percent: *progress_percent,
                    message: message.clone(),
                    timestamp: timestamp.clone(),
                    metadata: Default::default(),
                }),
            }
            if *status == StageStatus::Running {
                doc.current_stage = Some(stage_name.clone());
            }
            let done = card
                .stages
                .iter()
                .filter(|s| s.status == StageStatus::Completed)
                .count() as i64;
            doc.completed_stages = doc.completed_stages.max(done);
            if doc.status == PipelineStatus::Queued {
                doc.status = PipelineStatus::Running;
            }
        }
        PipelineEvent::PipelineCompleted {
            status,
            duration_seconds,
            timestamp,
            ..
        } => {
            doc.status = *status;
            doc.duration_seconds = *duration_seconds;
            doc.end_time = Some(timestamp.clone());
        }
    }
}
