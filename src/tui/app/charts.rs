//! The chart series: capped rings of figures derived from successive snapshots, so that the
//! charts have a past without memory growing with uptime.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::snapshot::Snapshot;

/// Samples kept per history series (polls: 10 minutes at the default 1 s interval).
pub const HISTORY_SAMPLES: usize = 600;

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
}

/// Where a chart's points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartSource {
    /// The metrics' time buckets in Redis (or memory): the whole window, whoever wrote it.
    Buckets,
    /// No bucket exists (a Python-only fleet writes none): what this dashboard saw since it
    /// started, from its own polls.
    SinceStart,
}

/// One line of a chart: its name and its (x = Unix seconds, y) points, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The legend's name (a provider, a rate-limit key, "all providers").
    pub name: String,
    /// Points, oldest first.
    pub points: Vec<(f64, f64)>,
}

/// What a chart draws: lines over a time span, and what one point stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// The lines, most important first.
    pub lines: Vec<Line>,
    /// The time span of the x axis, Unix seconds.
    pub x: [f64; 2],
    /// Largest y of any point (0 when there are none).
    pub max_y: f64,
    /// Where the points come from.
    pub source: ChartSource,
    /// What one point covers: "per minute", "per hour" or "per poll".
    pub per: &'static str,
}

/// Lines per chart beyond which the rest are summed into "other" (legends stay readable).
pub const MAX_LINES: usize = 3;

impl ChartData {
    fn new(lines: Vec<Line>, x: [f64; 2], source: ChartSource, per: &'static str) -> Self {
        let max_y = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0f64, f64::max);
        Self {
            lines,
            x,
            max_y,
            source,
            per,
        }
    }
}

fn bucket_x(b: &crate::metrics::Bucket) -> f64 {
    b.start.timestamp() as f64
}

fn per_label(series: &crate::metrics::Series) -> &'static str {
    match series.resolution {
        Some(crate::metrics::Resolution::Hour) => "per hour",
        _ => "per minute",
    }
}

fn span(series: &crate::metrics::Series) -> [f64; 2] {
    let first = series.buckets.first().map_or(0.0, bucket_x);
    let step = series.resolution.map_or(60, |r| r.seconds()) as f64;
    let last = series.buckets.last().map_or(0.0, bucket_x) + step;
    [first, last]
}

/// The polls of the in-process rings within the last `span` seconds: (time, hit rate,
/// cumulative cost).
fn polls(history: &History, span: i64) -> Vec<(DateTime<Utc>, Option<f64>, f64)> {
    let polls: Vec<_> = history
        .spend
        .iter()
        .zip(history.hit_rate.iter())
        .map(|((t, cost), rate)| (*t, *rate, *cost))
        .collect();
    let Some(last) = polls.last().map(|p| p.0) else {
        return polls;
    };
    polls
        .into_iter()
        .filter(|p| (last - p.0).num_seconds() <= span)
        .collect()
}

fn poll_span(polls: &[(DateTime<Utc>, Option<f64>, f64)]) -> [f64; 2] {
    let first = polls.first().map_or(0.0, |p| p.0.timestamp() as f64);
    let last = polls.last().map_or(0.0, |p| p.0.timestamp() as f64);
    [first, last.max(first + 1.0)]
}

/// Spend per bucket, one line per provider (the [`MAX_LINES`] biggest, the rest as
/// "other"); from the polls (all providers, the spend between two polls) when the store holds
/// no buckets.
pub fn spend(
    series: &crate::metrics::Series,
    window: crate::metrics::HistoryWindow,
    history: &History,
) -> ChartData {
    if series.found {
        let ranked = series.providers_by_cost();
        let mut names: Vec<String> = ranked.iter().map(|(n, _)| n.clone()).collect();
        let other = names.len() > MAX_LINES;
        names.truncate(if other { MAX_LINES - 1 } else { MAX_LINES });
        let mut lines: Vec<Line> = names
            .iter()
            .map(|name| Line {
                name: name.clone(),
                points: series
                    .buckets
                    .iter()
                    .map(|b| (bucket_x(b), b.providers.get(name).map_or(0.0, |f| f.cost)))
                    .collect(),
            })
            .collect();
        if other {
            lines.push(Line {
                name: "other".into(),
                points: series
                    .buckets
                    .iter()
                    .map(|b| {
                        let rest: f64 = b
                            .providers
                            .iter()
                            .filter(|(n, _)| !names.contains(n))
                            .map(|(_, f)| f.cost)
                            .sum();
                        (bucket_x(b), rest)
                    })
                    .collect(),
            });
        }
        return ChartData::new(lines, span(series), ChartSource::Buckets, per_label(series));
    }
    let polls = polls(history, window.span_seconds());
    // What was spent between two polls, at the later one.
    let points = polls
        .windows(2)
        .map(|pair| {
            (
                pair[1].0.timestamp() as f64,
                (pair[1].2 - pair[0].2).max(0.0),
            )
        })
        .collect();
    ChartData::new(
        vec![Line {
            name: "all providers".into(),
            points,
        }],
        poll_span(&polls),
        ChartSource::SinceStart,
        "per poll",
    )
}

/// Cache hit rate per bucket, in percent (buckets without lookups left out); per poll when
/// the store holds no buckets.
pub fn hit_rate(
    series: &crate::metrics::Series,
    window: crate::metrics::HistoryWindow,
    history: &History,
) -> ChartData {
    if series.found {
        let points = series
            .buckets
            .iter()
            .filter_map(|b| b.hit_rate().map(|r| (bucket_x(b), r * 100.0)))
            .collect();
        return ChartData::new(
            vec![Line {
                name: "hit rate".into(),
                points,
            }],
            span(series),
            ChartSource::Buckets,
            per_label(series),
        );
    }
    let polls = polls(history, window.span_seconds());
    let points = polls
        .iter()
        .filter_map(|(t, r, _)| r.map(|r| (t.timestamp() as f64, r * 100.0)))
        .collect();
    ChartData::new(
        vec![Line {
            name: "hit rate".into(),
            points,
        }],
        poll_span(&polls),
        ChartSource::SinceStart,
        "per poll",
    )
}

/// Checks admitted per bucket for the [`MAX_LINES`] busiest rate-limit keys, with each key's
/// refusals over the window; `None` when the store holds no buckets (only limiters of this
/// project count them).
pub fn limit_use(series: &crate::metrics::Series) -> Option<(ChartData, Vec<(String, i64)>)> {
    if !series.found {
        return None;
    }
    let mut keys: Vec<(String, i64, i64)> = series
        .limit_keys()
        .into_iter()
        .map(|k| {
            let (adm, refused) = series.buckets.iter().fold((0, 0), |(a, r), b| {
                b.limits
                    .get(&k)
                    .map_or((a, r), |f| (a + f.admitted, r + f.refused))
            });
            (k, adm, refused)
        })
        .collect();
    keys.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
    keys.truncate(MAX_LINES);
    let lines = keys
        .iter()
        .map(|(k, _, _)| Line {
            name: k.clone(),
            points: series
                .buckets
                .iter()
                .map(|b| {
                    (
                        bucket_x(b),
                        b.limits.get(k).map_or(0.0, |f| f.admitted as f64),
                    )
                })
                .collect(),
        })
        .collect();
    let refusals = keys.into_iter().map(|(k, _, r)| (k, r)).collect();
    Some((
        ChartData::new(lines, span(series), ChartSource::Buckets, per_label(series)),
        refusals,
    ))
}
