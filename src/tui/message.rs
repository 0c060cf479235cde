//! What flows between the background tasks and the UI task.
//!
//! Data moves one way: Redis → source tasks → [`Message`] → app state → view. Tasks own
//! nothing the UI reads, and the UI never waits on Redis; it asks for work with a
//! [`Command`] and gets the answer later as a message.

use crate::connection::{ConnState, Health};
use crate::model::{Malformed, PipelineEvent};
use crate::snapshot::{Snapshot, SnapshotDelta};

/// From the source tasks to the UI.
#[derive(Debug, Clone)]
pub enum Message {
    /// A complete, fresh read of everything: the truth, replacing what events patched in.
    Snapshot(Box<Snapshot>),
    /// An incremental read: the cards changed and removed since the previous read, and
    /// everything else in full. Applied to the data held, it gives what a full read would.
    Delta(Box<SnapshotDelta>),
    /// A live pipeline event from pub/sub: patches the displayed card until the next snapshot.
    Event(PipelineEvent),
    /// Live events that arrived together, oldest first, each applied as an [`Message::Event`]
    /// (the subscriber sends them so under a storm: one wake-up of the UI for many events).
    Events(Vec<PipelineEvent>),
    /// The connection state changed.
    Connection(ConnState),
    /// Whether the server accepts writes changed (a refusal learnt or over).
    Health(Health),
    /// A snapshot read failed; the previous data stays on screen, marked as old.
    ReadFailed(String),
    /// A card's stored event history, for the drilldown. `Ok(None)`: the writer keeps no
    /// history for this card (Python-written data), so only events seen live are shown.
    History {
        card_id: String,
        result: Result<Option<Vec<PipelineEvent>>, String>,
    },
    /// A payload on an events channel that is not a pipeline event.
    BadEvent(Malformed),
    /// The live event subscription is (re)established (`true`) or lost (`false`).
    Subscribed(bool),
    /// Subscribing failed for this reason (e.g. the ACL user may not PSUBSCRIBE); retried.
    SubscribeFailed(String),
}

/// From the UI to the source tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Read everything now instead of at the next poll, the SCANs for what Python wrote
    /// included.
    Refresh,
    /// Fetch a card's event history.
    LoadHistory(String),
    /// Read the charts' time buckets over this window from now on (and at once).
    Window(crate::metrics::HistoryWindow),
}
