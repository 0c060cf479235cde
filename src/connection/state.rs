//! The connection state the dashboard shows, and the one rule for how it changes: the
//! "connection lost" path (a failed command) and the reconnect attempts both go through
//! [`ConnState::after`], so "since" and the attempt count are kept the same way on both.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Whether Redis can be reached right now, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnState {
    /// The first connection attempt has not finished.
    Connecting,
    /// Connected.
    Connected {
        /// When the connection was made.
        since: DateTime<Utc>,
    },
    /// Was connected, lost it; retrying.
    Reconnecting {
        /// When the connection was lost.
        since: DateTime<Utc>,
        /// Failed reconnect attempts so far.
        attempts: u32,
        /// Why the last attempt (or the connection) failed, safe to show.
        error: String,
    },
    /// Never reached; retrying.
    Unreachable {
        /// When the first attempt failed.
        since: DateTime<Utc>,
        /// Failed attempts so far.
        attempts: u32,
        /// Why the last attempt failed, safe to show.
        error: String,
    },
    /// An in-process backend: always available.
    InProcess,
}

impl ConnState {
    /// Whether commands can be sent now.
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Connected { .. } | Self::InProcess)
    }

    /// The state after `event` at `now`; `None` leaves it as it is (a loss noticed while a
    /// reconnect is already counting attempts changes nothing).
    pub(crate) fn after(&self, event: &Event<'_>, now: DateTime<Utc>) -> Option<ConnState> {
        let (why, counted, lost) = match event {
            Event::Connected => return Some(ConnState::Connected { since: now }),
            Event::Lost(why) => (*why, 0, true),
            Event::AttemptFailed(why) => (*why, 1, false),
        };
        let error = why.to_owned();
        Some(match self {
            ConnState::Reconnecting { .. } | ConnState::Unreachable { .. } if lost => return None,
            ConnState::Reconnecting {
                since, attempts, ..
            } => ConnState::Reconnecting {
                since: *since,
                attempts: attempts + counted,
                error,
            },
            ConnState::Unreachable {
                since, attempts, ..
            } => ConnState::Unreachable {
                since: *since,
                attempts: attempts + counted,
                error,
            },
            ConnState::Connected { .. } => ConnState::Reconnecting {
                since: now,
                attempts: counted,
                error,
            },
            ConnState::Connecting | ConnState::InProcess => ConnState::Unreachable {
                since: now,
                attempts: counted,
                error,
            },
        })
    }
}

/// What happened to the connection.
pub(crate) enum Event<'a> {
    /// A connection attempt succeeded.
    Connected,
    /// A command found the connection broken (why, safe to show).
    Lost(&'a str),
    /// A connection attempt failed (why, safe to show).
    AttemptFailed(&'a str),
}

/// Publishes the state after `event` (watchers are woken either way, as they always were).
pub(crate) fn publish(state: &watch::Sender<ConnState>, event: Event<'_>) {
    let now = Utc::now();
    state.send_modify(|s| {
        if let Some(next) = s.after(&event, now) {
            *s = next;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn losing_a_live_connection_starts_reconnecting_with_no_attempt_yet() {
        let s = ConnState::Connected { since: at(1) };
        assert_eq!(
            s.after(&Event::Lost("gone"), at(5)),
            Some(ConnState::Reconnecting {
                since: at(5),
                attempts: 0,
                error: "gone".into()
            })
        );
    }

    #[test]
    fn a_loss_noticed_while_reconnecting_changes_nothing() {
        let s = ConnState::Reconnecting {
            since: at(1),
            attempts: 3,
            error: "x".into(),
        };
        assert_eq!(s.after(&Event::Lost("again"), at(9)), None);
    }

    #[test]
    fn failed_attempts_count_and_keep_since() {
        let s = ConnState::Unreachable {
            since: at(1),
            attempts: 2,
            error: "x".into(),
        };
        assert_eq!(
            s.after(&Event::AttemptFailed("refused"), at(9)),
            Some(ConnState::Unreachable {
                since: at(1),
                attempts: 3,
                error: "refused".into()
            })
        );
        assert_eq!(
            ConnState::Connecting.after(&Event::AttemptFailed("refused"), at(9)),
            Some(ConnState::Unreachable {
                since: at(9),
                attempts: 1,
                error: "refused".into()
            })
        );
    }

    #[test]
    fn a_failed_attempt_after_being_connected_is_reconnecting() {
        let s = ConnState::Connected { since: at(1) };
        assert_eq!(
            s.after(&Event::AttemptFailed("refused"), at(4)),
            Some(ConnState::Reconnecting {
                since: at(4),
                attempts: 1,
                error: "refused".into()
            })
        );
    }

    #[test]
    fn connecting_succeeds_from_any_state() {
        let s = ConnState::Reconnecting {
            since: at(1),
            attempts: 3,
            error: "x".into(),
        };
        assert_eq!(
            s.after(&Event::Connected, at(7)),
            Some(ConnState::Connected { since: at(7) })
        );
    }
}
