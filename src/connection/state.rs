//! The connection state the dashboard shows, and the one rule for how it changes: the
//! "connection lost" path (a failed command) and the reconnect attempts both go through
//! [`ConnState::after`], so "since" and the attempt count are kept the same way on both.
//!
//! Beside it, [`Health`]: whether a *reachable* server accepts writes (it may be at
//! `maxmemory`, a read-only replica after a failover, loading its dataset). Connected and
//! refusing are different things to show and to act on, so they are two values; the health
//! changes by one rule too ([`Health::after`]), whether the news comes from a refused reply or
//! from the server's own `INFO`.

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

/// Whether the server accepts writes, as far as this process has learnt: from the replies to
/// its own commands (a refused write says so at once) and, where permitted, from a periodic
/// `INFO` probe (the dashboard barely writes, so it asks the server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Why the server refuses requests now, if it does.
    pub refusal: Option<Refusal>,
    /// The probe may not run `INFO` (a least-privilege ACL user): only refused replies tell.
    #[serde(default)]
    pub probe_denied: bool,
}

/// A server refusing requests for a reason that passes (see
/// [`crate::error::ServerCode::is_transient`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The reply code (`OOM`, `READONLY`, `LOADING`, …), or the one the probe inferred.
    pub code: String,
    /// When it was first seen.
    pub since: DateTime<Utc>,
    /// When it was last confirmed.
    pub seen: DateTime<Utc>,
    /// Who said so.
    pub source: HealthSource,
}

/// Where a [`Refusal`] was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthSource {
    /// A reply to one of this process's commands.
    Reply,
    /// The server's `INFO` (memory, replication, persistence).
    Probe,
}

/// A refusal learnt from replies alone is taken as over once no reply has repeated it for this
/// long: nothing else would tell a process without the probe that writes pass again (the outage
/// buffer retries at least every 2 s while it holds writes, so a lasting refusal is repeated).
pub const REPLY_REFUSAL_HOLD: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

impl Health {
    /// The refusal in force at `now` (one learnt from replies fades after
    /// [`REPLY_REFUSAL_HOLD`] without a repeat; the probe's holds until the next probe).
    pub fn refusal_at(&self, now: DateTime<Utc>) -> Option<&Refusal> {
        self.refusal
            .as_ref()
            .filter(|r| r.source == HealthSource::Probe || now - r.seen <= REPLY_REFUSAL_HOLD)
    }

    /// The health after `event` at `now`; `None` leaves it as it is.
    pub(crate) fn after(&self, event: &HealthEvent<'_>, now: DateTime<Utc>) -> Option<Health> {
        let mut next = self.clone();
        match event {
            HealthEvent::Refused(code) | HealthEvent::Probed(Some(code)) => {
                let source = match event {
                    HealthEvent::Refused(_) => HealthSource::Reply,
                    _ => HealthSource::Probe,
                };
                let current = self.refusal_at(now).filter(|r| r.code == *code);
                // A reply confirms what the probe said without demoting it: the probe's word
                // holds until the next probe, a reply's fades.
                let source = match current {
                    Some(r) if r.source == HealthSource::Probe => HealthSource::Probe,
                    _ => source,
                };
                next.refusal = Some(Refusal {
                    code: (*code).to_owned(),
                    since: current.map_or(now, |r| r.since),
                    seen: now,
                    source,
                });
                // Only a change wakes the watchers; a repeat within a second is no news.
                if let (Some(old), Some(new)) = (&self.refusal, &next.refusal)
                    && old.code == new.code
                    && old.source == new.source
                    && old.since == new.since
                    && (new.seen - old.seen) < chrono::TimeDelta::seconds(1)
                {
                    return None;
                }
            }
            HealthEvent::Probed(None) => next.refusal = None,
            HealthEvent::ProbeDenied => next.probe_denied = true,
        }
        (next != *self).then_some(next)
    }
}

impl Refusal {
    /// What the dashboard shows: "Redis refuses writes: OOM", "read-only replica", "loading".
    pub fn label(&self) -> String {
        match self.code.as_str() {
            "OOM" => "Redis refuses writes: OOM (maxmemory reached)".into(),
            "READONLY" => "read-only replica: writes refused".into(),
            "LOADING" => "loading its dataset".into(),
            "MASTERDOWN" => "replica lost its master".into(),
            "BUSY" => "busy running a script".into(),
            "CLUSTERDOWN" => "cluster down".into(),
            "TRYAGAIN" | "MOVED" | "ASK" => "cluster slots moving".into(),
            other => format!("Redis refuses requests: {other}"),
        }
    }
}

/// What was learnt about the server's health.
pub(crate) enum HealthEvent<'a> {
    /// A reply refused a request with this transient code.
    Refused(&'a str),
    /// The probe read the server's state: the code it would refuse writes with, if any.
    Probed(Option<&'a str>),
    /// The probe may not run `INFO`.
    ProbeDenied,
}

/// Publishes the health after `event`, waking watchers only when it changed.
pub(crate) fn publish_health(health: &watch::Sender<Health>, event: HealthEvent<'_>) {
    let now = Utc::now();
    health.send_if_modified(|h| match h.after(&event, now) {
        Some(next) => {
            *h = next;
            true
        }
        None => false,
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
    #[test]
    fn a_refused_reply_starts_a_refusal_that_fades_without_repeats() {
        let h = Health::default()
            .after(&HealthEvent::Refused("OOM"), at(10))
            .unwrap();
        let r = h.refusal_at(at(12)).expect("in force");
        assert_eq!(
            (r.code.as_str(), r.since, r.source),
            ("OOM", at(10), HealthSource::Reply)
        );
        assert!(h.refusal_at(at(16)).is_none(), "faded after the hold");
        // A repeat keeps `since` and pushes the fade back.
        let h = h.after(&HealthEvent::Refused("OOM"), at(14)).unwrap();
        let r = h.refusal_at(at(18)).expect("confirmed at 14");
        assert_eq!(r.since, at(10));
    }

    #[test]
    fn the_probe_sets_and_clears_a_refusal() {
        let h = Health::default()
            .after(&HealthEvent::Probed(Some("READONLY")), at(1))
            .unwrap();
        assert!(h.refusal_at(at(100)).is_some(), "the probe's word holds");
        let h = h.after(&HealthEvent::Probed(None), at(101)).unwrap();
        assert_eq!(h.refusal, None);
        assert_eq!(h.after(&HealthEvent::Probed(None), at(102)), None);
    }

    #[test]
    fn a_new_code_restarts_since() {
        let h = Health::default()
            .after(&HealthEvent::Refused("LOADING"), at(1))
            .unwrap()
            .after(&HealthEvent::Refused("OOM"), at(3))
            .unwrap();
        let r = h.refusal.unwrap();
        assert_eq!((r.code.as_str(), r.since), ("OOM", at(3)));
    }
}
