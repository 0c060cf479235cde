//! Closed periods read once: a dashboard polls every second, and each poll used to re-read
//! every time bucket of the charts' window (60 HGETALL for the last hour, up to 720) and every
//! past day's hash (the last `metrics.snapshot_days`, 30 by default) although a period that
//! has ended is not written any more. [`ClosedPeriods`] keeps what a closed period's key held
//! when read, so a poll reads only the open periods, plus, once every `tracker.full_read_interval_seconds` (the interval
//! at which the dashboard audits every card: everything is read again at least that often),
//! every closed one again.
//!
//! "Closed" means ended more than [`CLOSED_GRACE`] ago: a write in flight when the period
//! ended, or from a writer whose clock is a little behind, still lands before the period is
//! cached. Writes made later still (the outage buffer replays operations with their original
//! times; a Python writer may be far behind) show within that interval plus one poll, as
//! does anything the `r` key or a reconnect should make visible at once: both drop the
//! cache (`r` through [`crate::store::Store::forget_scans`], a reconnect because the server
//! may have been replaced). That staleness bound is stated in docs/RELIABILITY.md.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::Malformed;

/// How long a closed period must have ended before it is cached.
pub(crate) const CLOSED_GRACE: Duration = Duration::from_secs(120);

/// A closed period's hash as read: its fields and what in it did not parse.
#[derive(Debug, Clone, Default)]
pub(crate) struct Held {
    pub fields: HashMap<String, String>,
    pub malformed: Vec<Malformed>,
}

/// The closed periods of one kind of read (the time buckets, or the daily hashes), by key.
#[derive(Debug, Default)]
pub(crate) struct ClosedPeriods {
    held: HashMap<String, Held>,
    /// When `held` was started (every entry is at most this old).
    since: Option<Instant>,
    /// The connection `held` was read on.
    connection: Option<DateTime<Utc>>,
}

impl ClosedPeriods {
    /// Forgets everything when it is due to be read again: held for `reread` or longer, read
    /// on another connection than `connection` (its `since`; `None`: not connected), or
    /// before a forget (`still_valid` answers whether a read made at a time may be reused).
    pub fn expire(
        &mut self,
        now: Instant,
        reread: Duration,
        connection: Option<DateTime<Utc>>,
        still_valid: impl Fn(Instant) -> bool,
    ) {
        let fresh = self
            .since
            .is_some_and(|at| now.saturating_duration_since(at) < reread && still_valid(at))
            && self.connection == connection
            && connection.is_some();
        if !fresh {
            self.held.clear();
            self.since = Some(now);
            self.connection = connection;
        }
    }

    /// How many periods are held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.held.len()
    }
    /// Which of `keys` (each with whether its period is closed) a read must fetch: the open
    /// ones and the closed ones not held.
    pub fn to_read(&self, keys: &[(String, bool)]) -> Vec<bool> {
        keys.iter()
            .map(|(key, closed)| !closed || !self.held.contains_key(key))
            .collect()
    }

    /// Every key's hash, in `keys`' order: from `read` where it was fetched (`Some`), else
    /// as held. The closed ones fetched are kept; keys no longer asked for are dropped (the
    /// window or the days moved on).
    pub fn merge(&mut self, keys: &[(String, bool)], read: Vec<Option<Held>>) -> Vec<Held> {
        let out: Vec<Held> = keys
            .iter()
            .zip(read)
            .map(|((key, closed), fetched)| match fetched {
                Some(h) => {
                    if *closed {
                        self.held.insert(key.clone(), h.clone());
                    }
                    h
                }
                None => self.held.get(key).cloned().unwrap_or_default(),
            })
            .collect();
        let wanted: HashSet<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        self.held.retain(|k, _| wanted.contains(k.as_str()));
        out
    }
}

/// Whether the time bucket starting at `start` (Unix seconds), `seconds` long, is closed at
/// `now`.
pub(crate) fn bucket_closed(start: i64, seconds: i64, now: DateTime<Utc>) -> bool {
    start + seconds + CLOSED_GRACE.as_secs() as i64 <= now.timestamp()
}

/// Whether the local day `date` (the original keys daily figures on local time) is closed at
/// `now`.
pub(crate) fn day_closed(date: NaiveDate, now: DateTime<Utc>) -> bool {
    let grace = chrono::Duration::from_std(CLOSED_GRACE).unwrap_or_default();
    date < super::local_date(now - grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(k, c)| (k.to_string(), *c)).collect()
    }

    fn held(field: &str) -> Held {
        Held {
            fields: HashMap::from([(field.to_owned(), "1".to_owned())]),
            malformed: Vec::new(),
        }
    }

    fn since() -> Option<DateTime<Utc>> {
        Some(DateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_closed_period_once_read_is_not_read_again() {
        let mut c = ClosedPeriods::default();
        let t0 = Instant::now();
        c.expire(t0, Duration::from_secs(60), since(), |_| true);
        let ks = keys(&[("old", true), ("open", false)]);
        assert_eq!(c.to_read(&ks), vec![true, true]);
        c.merge(&ks, vec![Some(held("a")), Some(held("b"))]);
        c.expire(
            t0 + Duration::from_secs(1),
            Duration::from_secs(60),
            since(),
            |_| true,
        );
        assert_eq!(c.to_read(&ks), vec![false, true]);
        let out = c.merge(&ks, vec![None, Some(held("c"))]);
        assert!(out[0].fields.contains_key("a"));
        assert!(out[1].fields.contains_key("c"));
    }

    /// Periods holding one closed key, `old`, read at the returned instant on `since()`'s
    /// connection.
    fn holding_one_closed_period() -> (ClosedPeriods, Instant, Vec<(String, bool)>) {
        let mut c = ClosedPeriods::default();
        let t0 = Instant::now();
        let ks = keys(&[("old", true)]);
        c.expire(t0, Duration::from_secs(60), since(), |_| true);
        c.merge(&ks, vec![Some(held("a"))]);
        (c, t0, ks)
    }

    #[test]
    fn closed_periods_are_read_again_after_the_interval() {
        let (mut c, t0, ks) = holding_one_closed_period();
        c.expire(
            t0 + Duration::from_secs(60),
            Duration::from_secs(60),
            since(),
            |_| true,
        );
        assert_eq!(c.to_read(&ks), vec![true]);
    }

    #[test]
    fn a_reconnect_drops_what_is_held() {
        let (mut c, t0, ks) = holding_one_closed_period();
        let other = Some(DateTime::UNIX_EPOCH + chrono::Duration::seconds(5));
        c.expire(t0, Duration::from_secs(60), other, |_| true);
        assert_eq!(c.to_read(&ks), vec![true]);
    }

    #[test]
    fn a_forget_drops_what_is_held() {
        let (mut c, t0, ks) = holding_one_closed_period();
        c.expire(t0, Duration::from_secs(60), since(), |_| false);
        assert_eq!(c.to_read(&ks), vec![true]);
    }

    #[test]
    fn keys_no_longer_asked_for_are_dropped() {
        let mut c = ClosedPeriods::default();
        c.expire(Instant::now(), Duration::from_secs(60), since(), |_| true);
        c.merge(
            &keys(&[("a", true), ("b", true)]),
            vec![Some(held("x")), Some(held("y"))],
        );
        c.merge(&keys(&[("b", true)]), vec![None]);
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_bucket_closes_only_after_the_grace_margin() {
        let start = 1_000_000_020; // a minute boundary (a multiple of 60)
        let end = start + 60;
        let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
        let grace = CLOSED_GRACE.as_secs() as i64;
        assert!(!bucket_closed(start, 60, at(end)));
        assert!(!bucket_closed(start, 60, at(end + grace - 1)));
        assert!(bucket_closed(start, 60, at(end + grace)));
    }

    #[test]
    fn today_is_never_closed() {
        let now = Utc::now();
        assert!(!day_closed(super::super::local_date(now), now));
        let long_ago = super::super::local_date(now) - chrono::Days::new(2);
        assert!(day_closed(long_ago, now));
    }
}
