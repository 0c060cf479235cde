//! The dashboard's state and everything that changes it: messages from the source tasks
//! ([`App::apply`]) and keys ([`App::handle_key`]).
//!
//! The UI task owns this struct alone (no lock, no sharing), so every change is a plain
//! method call that tests can drive directly: feed a snapshot, press keys, assert on fields.
//! Rendering reads it and never changes anything but the scroll offsets it needs to keep the
//! selection visible.
//!
//! `App` composes one part per job and dispatches messages to them: the chart series
//! (`charts.rs`), the live-event log (`events.rs`), the card table patched by events
//! (`cards.rs`, with the tracker's own rule for an event,
//! [`crate::tracker::Card::apply_event`]), the overview's rows (`rows.rs`), the drilldown
//! (`drilldown.rs`) and key handling (`keys.rs`).
//!
//! Memory stays bounded whatever Redis holds: history series are capped rings, events seen
//! live are capped per card and in total and dropped when the card leaves Redis.
//!
//! **Cost follows what changes.** An incremental read ([`Message::Delta`]) changes the live
//! cards in place, proportionally to its size (`cards.rs`), and the rows re-place only the
//! cards that changed (`rows.rs`); a live event re-places only its card. Only a full read, a
//! sort or filter change, and a freeze or thaw key and sort every card. Nothing a frame draws
//! walks every card: the rows are kept, the header's counts per status are kept as cards
//! change, and the drilldown finds its card by id.
//!
//! **One copy of each card.** The live snapshot holds the cards; the rows hold indices into
//! it, and the card table an id → index map. The frozen screen is the only second copy: while
//! frozen it holds the cards as they were at the freeze (with their index and counts), and
//! drops them when thawed. The drilldown keeps one more copy of its one card, for when the
//! card leaves Redis while open.

mod cards;
pub mod charts;
mod drilldown;
mod events;
mod keys;
mod rows;

pub use self::cards::{CARDS_FROM_EVENTS, EVENT_CARD_GRACE_SECS};
pub use self::charts::{HISTORY_SAMPLES, History, Ring};
pub use self::drilldown::{CardView, HistoryResult};
pub use self::events::{
    EVENTS_PER_CARD, LIVE_EVENTS_TOTAL, LiveEvents, RATE_WINDOW_SECS, SeenEvent, TRACKED_CARDS,
};
pub use self::rows::{RECENT_FAILURE_SECS, Row, STATUS_FILTERS, SortKey};

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::connection::{ConnState, Health};
use crate::model::PipelineEvent;
use crate::snapshot::{Snapshot, SnapshotDelta};
use crate::tracker::Card;

use self::cards::{CardTable, StatusCounts, TableChange};
use super::keymap::{KeyMap, Scope};
use super::message::Message;
use super::theme::Theme;

/// What the main area shows.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    /// The card table and the panels.
    Overview,
    /// Everything the metrics know, as `--once` prints it: totals, averages, code reviews,
    /// recent pipelines, the per-day table (Tab switches between it and the overview).
    Metrics,
    /// One card's drilldown.
    Card(Box<CardView>),
}

/// The last mouse click, to tell a double click from two clicks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Click {
    /// When it happened (the app's clock).
    pub at: DateTime<Utc>,
    /// The screen cell clicked.
    pub column: u16,
    /// The screen row clicked.
    pub row: u16,
}

/// Two clicks on the same cell at most this far apart are a double click (the common desktop
/// default).
pub const DOUBLE_CLICK_MS: i64 = 400;

/// What a frozen screen shows: a copy of everything displayed at the moment of freezing.
#[derive(Debug, Clone)]
pub struct Frozen {
    /// The snapshot on screen when frozen.
    pub snapshot: Option<Snapshot>,
    /// The chart series when frozen.
    pub history: History,
    /// When the screen was frozen.
    pub at: DateTime<Utc>,
    /// Where each card of `snapshot` is.
    index: HashMap<String, usize>,
    /// The cards of `snapshot` per status.
    counts: StatusCounts,
}

/// From this many cards on, a replaced snapshot is dropped on a thread of its own.
const DROP_ASIDE_CARDS: usize = 50_000;

/// Drops what a full read replaced (the previous snapshot and its index) off the UI task when
/// it is large: freeing a hundred thousand cards' allocations takes tens of milliseconds,
/// which the next frame would otherwise wait for. Small ones (and any the thread cannot be
/// started for) are dropped here.
fn drop_aside(old: (Option<Snapshot>, HashMap<String, usize>)) {
    if old.1.len() < DROP_ASIDE_CARDS {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("drop-snapshot".into())
        .spawn(move || drop(old));
}

/// The whole state of the dashboard.
#[derive(Debug)]
pub struct App {
    /// Key bindings.
    pub keymap: KeyMap,
    /// Colours in use.
    pub theme: Theme,
    /// `NO_COLOR` is set: themes stay mono.
    pub no_color: bool,
    /// Where the data comes from (no credentials).
    pub endpoint: String,
    /// The latest data, changed in place by incremental reads and patched by live events.
    /// Its cards are in the card table's order (a removed card's slot takes the last card),
    /// not sorted: [`App::rows`] gives the order. Change it only through [`App::apply`], which
    /// keeps the table's index, counts and rows in step.
    pub live: Option<Snapshot>,
    /// Chart series of the live data.
    pub history: History,
    /// The frozen copy on screen, while frozen.
    pub frozen: Option<Box<Frozen>>,
    /// Overview or drilldown.
    pub view: View,
    /// The help popup is open.
    pub help: bool,
    /// First help line on screen (the renderer clamps it to the text's length).
    pub help_scroll: usize,
    /// First line of the metrics view on screen (clamped by the renderer).
    pub metrics_scroll: usize,
    /// Where the cards table was last drawn (set by the renderer; a click maps to a row).
    pub table_area: ratatui::layout::Rect,
    /// The last click, for double clicks.
    pub last_click: Option<Click>,
    /// Mouse capture is on (`dashboard.mouse`): the help says what the mouse does.
    pub mouse: bool,
    /// The overview's filter text.
    pub filter: String,
    /// The quick status filter (`f` / `F` cycle it): only cards of this status are listed.
    pub status_filter: Option<crate::model::PipelineStatus>,
    /// The filter is being typed (keys edit it instead of acting).
    pub filter_editing: bool,
    /// The overview's sort column.
    pub sort: SortKey,
    /// The sort is reversed.
    pub reverse: bool,
    /// Selected row among [`App::rows`].
    pub selected: usize,
    selected_id: Option<String>,
    /// The selection stays on the first row (until the user moves it; `Home` again).
    follow_top: bool,
    /// The rows were rebuilt: the renderer scrolls no further than the selection needs.
    pub(crate) settle_offset: bool,
    /// First table row on screen (kept by the renderer).
    pub offset: usize,
    /// Table rows that fit on screen (set by the renderer, used by PgUp/PgDn).
    pub page: usize,
    order: rows::Order,
    rows_stale: bool,
    cards: CardTable,
    /// The connection state the source tasks last reported.
    pub conn: ConnState,
    /// Whether the server accepts writes, as last reported (the header shows a refusal).
    pub health: Health,
    /// The live-event subscription is up.
    pub subscribed: bool,
    /// Why the last subscription attempt failed, until one succeeds.
    pub subscribe_error: Option<String>,
    /// The last failed read, while no later read succeeded.
    pub read_error: Option<(DateTime<Utc>, String)>,
    /// Events seen live, per card.
    pub live_events: LiveEvents,
    /// Live events received since start.
    pub events_total: u64,
    /// Payloads on event channels that were not events.
    pub bad_events: u64,
    /// The last of those, with why it was refused.
    pub last_bad_event: Option<crate::model::Malformed>,
    /// The charts' time window (`+` / `-`); the source tasks read its buckets.
    pub window: crate::metrics::HistoryWindow,
    /// The drilldown card's stored history, once loaded.
    pub card_history: Option<(String, HistoryResult)>,
    /// Warnings shown until the next key press (key config problems, theme refusals).
    pub notices: Vec<String>,
    /// A note (not a warning) shown in the footer until the next key press: the theme now on.
    pub flash: Option<String>,
    /// The clock, set by the run loop before handling anything (injected in tests).
    pub now: DateTime<Utc>,
    /// Something changed since the last frame.
    pub dirty: bool,
    /// Reads applied that changed nothing on screen (so drew no frame): an idle dashboard's
    /// polls.
    pub quiet_reads: u64,
    /// The user asked to quit.
    pub quit: bool,
}

impl App {
    /// A dashboard with no data yet.
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
            help_scroll: 0,
            metrics_scroll: 0,
            table_area: ratatui::layout::Rect::default(),
            last_click: None,
            mouse: false,
            filter: String::new(),
            status_filter: None,
            filter_editing: false,
            sort: SortKey::Attention,
            reverse: false,
            selected: 0,
            selected_id: None,
            follow_top: true,
            settle_offset: false,
            offset: 0,
            page: 10,
            order: rows::Order::default(),
            rows_stale: true,
            cards: CardTable::default(),
            conn: ConnState::Connecting,
            health: Health::default(),
            subscribed: false,
            subscribe_error: None,
            read_error: None,
            live_events: LiveEvents::default(),
            events_total: 0,
            bad_events: 0,
            last_bad_event: None,
            card_history: None,
            window: crate::metrics::HistoryWindow::default(),
            notices,
            flash: None,
            now: Utc::now(),
            dirty: true,
            quiet_reads: 0,
            quit: false,
        }
    }

    /// From the dashboard settings (and whether `NO_COLOR` is set).
    pub fn from_settings(
        dash: &crate::config::DashboardSettings,
        no_color: bool,
        endpoint: String,
    ) -> Self {
        let mut app = Self::new(
            KeyMap::from_config(&dash.keys),
            Theme::by_name(&dash.theme),
            no_color,
            endpoint,
        );
        app.mouse = dash.mouse;
        app
    }

    /// Puts on the theme `auto` chose (unless `NO_COLOR` keeps mono) and says so in the footer.
    pub fn set_auto_theme(
        &mut self,
        background: super::theme::Background,
        source: super::theme::BackgroundSource,
    ) {
        if self.no_color {
            return;
        }
        self.theme = background.theme();
        self.flash = Some(format!(
            "theme {} (auto, {}) · {} switches",
            self.theme.name,
            source.describe(),
            self.keymap.label(super::keymap::Action::Theme)
        ));
        self.dirty = true;
    }

    /// The snapshot on screen: the frozen copy when frozen, else the live one.
    pub fn shown(&self) -> Option<&Snapshot> {
        match &self.frozen {
            Some(f) => f.snapshot.as_ref(),
            None => self.live.as_ref(),
        }
    }

    /// The shown snapshot's cards per status, in the header strip's order (kept as cards
    /// change, so that no frame counts them).
    pub fn status_counts(&self) -> StatusCounts {
        match &self.frozen {
            Some(f) => f.counts,
            None => self.cards.counts(),
        }
    }

    /// The shown card with this id, found by the index (never a walk over the cards).
    pub fn shown_card(&self, card_id: &str) -> Option<&Card> {
        self.shown()?.cards.get(self.shown_position(card_id)?)
    }

    /// A copy of everything on screen now, for a freeze.
    fn freeze(&self) -> Frozen {
        Frozen {
            snapshot: self.live.clone(),
            history: self.history.clone(),
            at: self.now,
            index: self.cards.index().clone(),
            counts: self.cards.counts(),
        }
    }

    /// The history series on screen.
    pub fn shown_history(&self) -> &History {
        match &self.frozen {
            Some(f) => &f.history,
            None => &self.history,
        }
    }

    /// The time buckets the charts draw: the shown snapshot's, when they are of the chosen
    /// window or when the store holds none (the charts then fall back to the polls); `None`
    /// while the chosen window's buckets are still being read.
    pub fn chart_series(&self) -> Option<&crate::metrics::Series> {
        let series = &self.shown()?.history;
        (!series.found || series.window == self.window).then_some(series)
    }

    /// Whether the screen is frozen.
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
                View::Metrics => Scope::Metrics,
                View::Card(_) => Scope::Card,
            }
        }
    }

    /// Live events per second over the last few whole seconds.
    pub fn events_per_sec(&self) -> f64 {
        self.live_events.per_sec(self.now)
    }

    /// Applies one message from the source tasks.
    pub fn apply(&mut self, msg: Message) {
        // A delta that changes nothing on screen (an idle poll) draws no frame: only the data
        // age moved, and the loop's once-a-second clock redraws that.
        let was_dirty = self.dirty;
        if !matches!(msg, Message::Delta(_)) {
            self.dirty = true;
        }
        match msg {
            // An event that changed nothing on screen draws no frame (the header's event
            // rate follows at the next tick of the clock).
            Message::Event(e) => {
                if !self.apply_event(e) {
                    self.dirty = was_dirty;
                }
            }
            Message::Events(events) => {
                let mut shows = false;
                for e in events {
                    shows |= self.apply_event(e);
                }
                if !shows {
                    self.dirty = was_dirty;
                }
            }
            Message::Snapshot(s) => self.apply_snapshot(*s),
            Message::Delta(d) => {
                if self.apply_delta(*d) {
                    self.dirty = true;
                } else {
                    self.quiet_reads += 1;
                }
            }
            Message::Connection(c) => self.conn = c,
            Message::Health(h) => self.health = h,
            Message::ReadFailed(e) => {
                self.read_error = Some((self.now, crate::text::sanitize(&e).into_owned()));
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
        self.health = snap.health.clone();
        self.history.record(&snap);
        if !self.is_frozen() {
            // The rows index the snapshot being replaced: keep what a vanished selection
            // needs, and rebuild.
            self.keep_order_before_replacing();
            self.order.forget_changes();
            self.rows_stale = true;
        }
        let old_index = self
            .cards
            .take_snapshot(&mut snap, self.live.as_ref(), self.now);
        let old = self.live.replace(snap);
        drop_aside((old, old_index));
        self.after_read(None);
    }

    /// Applies an incremental read in place: only the cards it names change, and only their
    /// rows move. Says whether it changed anything a frame shows besides the data age.
    fn apply_delta(&mut self, delta: SnapshotDelta) -> bool {
        // Without a full read to apply it to, a delta cannot be placed; the source tasks
        // always start with a full read.
        let Some(live) = self.live.as_mut() else {
            return false;
        };
        let health = delta.health.clone();
        let (changed, removed, taken) = live.take_delta_fields(delta);
        let mut shows = !changed.is_empty()
            || !removed.is_empty()
            || self.read_error.is_some()
            || self.health != health
            || taken.differ;
        self.read_error = None;
        self.health = health;
        if taken.malformed && self.frozen.is_none() {
            self.order.malformed_changed();
        }
        self.history.record(live);
        let cards = live.cards.len();
        let gone = self.cards.apply_delta(live, changed, removed, self.now);
        shows |= !gone.is_empty() || self.live.as_ref().is_some_and(|l| l.cards.len() != cards);
        self.note_table_changes();
        self.after_read(Some(&gone));
        // The charts drawn from this dashboard's own polls (no buckets in the store) took a
        // point: the next clock tick, within a second, draws it with the data age.
        shows
    }

    /// After a read: the open drilldown keeps the card as last seen, and cards that left
    /// (all those the table no longer holds, or only `gone`) take their live events with them.
    fn after_read(&mut self, gone: Option<&[String]>) {
        let open = match &mut self.view {
            View::Card(v) => {
                let i = self.cards.position(&v.card_id);
                if let Some(c) = i.and_then(|i| self.live.as_ref()?.cards.get(i)) {
                    v.last_seen = Some(c.clone());
                }
                Some(v.card_id.clone())
            }
            View::Overview | View::Metrics => None,
        };
        if gone.is_some_and(|g| g.is_empty()) {
            return;
        }
        let cards = &self.cards;
        self.live_events
            .retain(|id| cards.contains(id) || open.as_deref() == Some(id));
    }

    /// Applies a live event; `false` when nothing on screen changed: the overview shows its
    /// card's row off screen, in the same place, with the same status counts.
    fn apply_event(&mut self, event: PipelineEvent) -> bool {
        self.events_total += 1;
        let listed = self.cards.contains(event.card_id());
        // Only the overview can leave an event unseen (the drilldown lists its card's
        // events; the other views are not worth the bookkeeping).
        let overview = matches!(self.view, View::Overview);
        let Some(snap) = self.live.as_mut() else {
            self.live_events.record(event, self.now, listed);
            return true;
        };
        let change = self.cards.apply_event(snap, &event, self.now);
        // Kept after it is applied, so that it is moved in, not copied.
        self.live_events.record(event, self.now, listed);
        match change {
            TableChange::Patched { slot, same_status } => {
                // Asked before the change is noted: noting it marks a card that moved stale.
                let unseen = overview && same_status && self.patched_off_screen(slot);
                self.note_table_changes();
                if unseen {
                    return false;
                }
            }
            // Only its card moves (or, new, is placed).
            TableChange::Added => self.note_table_changes(),
            TableChange::None => return !overview,
        }
        true
    }
}
