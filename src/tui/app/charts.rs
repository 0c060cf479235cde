//! The chart series: capped rings of figures derived from successive snapshots, so that the
//! charts have a past without memory growing with uptime.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::snapshot::Snapshot;

/// Samples kept per history series (polls: 10 minutes at the default 1 s interval).
pub const HISTORY_SAMPLES: usize = 600;
/// Window over which the spend rate is computed.
pub const SPEND_WINDOW_SECS: i64 = 300;

/// A fixed-capacity ring: pushing onto a full ring drops the oldest entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> Ring<T> {
    /// An empty ring holding at most `cap` entries (at least one).
    pub fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::with_capacity(cap.min(64)),
            cap: cap.max(1),
        }
    }

    /// Appends `item`, dropping the oldest entry when the ring is full.
    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Most entries held at once.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// The newest entry.
    pub fn last(&self) -> Option<&T> {
        self.items.back()
    }

    pub(super) fn last_mut(&mut self) -> Option<&mut T> {
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

impl History {
    /// Adds one snapshot's figures to every series.
    pub(super) fn record(&mut self, snap: &Snapshot) {
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
