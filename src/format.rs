//! Number, time, money and state formatting shared by the dashboard and the `--once` text
//! report, so that both faces print the same figures the same way. It sits below both faces
//! and knows neither.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::connection::ConnState;
use crate::model::{PipelineDoc, parse_timestamp};
use crate::text;

/// `4m12s`, `1h02m`, `12.3s`, `2d04h`; negative or non-finite input gives `-`.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "-".into();
    }
    if secs < 10.0 {
        return format!("{secs:.1}s");
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// US dollars: `$0.0042`, `$0.42`, `$12.34`, `$1.2k`, `$3.4M`.
pub fn usd(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    let sign = if v < 0.0 { "-" } else { "" };
    if a == 0.0 {
        "$0.00".into()
    } else if a < 0.01 {
        format!("{sign}${a:.4}")
    } else if a < 1_000.0 {
        format!("{sign}${a:.2}")
    } else if a < 1_000_000.0 {
        format!("{sign}${:.1}k", a / 1_000.0)
    } else {
        format!("{sign}${:.1}M", a / 1_000_000.0)
    }
}

/// Counts: `950`, `12.3k`, `4.5M`.
#[cfg(feature = "tui")] // only the dashboard shows it
pub fn count(v: u64) -> String {
    match v {
        0..10_000 => v.to_string(),
        10_000..10_000_000 => format!("{:.1}k", v as f64 / 1_000.0),
        _ => format!("{:.1}M", v as f64 / 1_000_000.0),
    }
}

/// Percentage with one decimal: `72.3%`.
pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "-".into();
    }
    format!("{:.1}%", ratio * 100.0)
}

/// A Python naive UTC timestamp as a UTC instant.
pub fn utc(ts: &str) -> Option<DateTime<Utc>> {
    parse_timestamp(ts).map(|n: NaiveDateTime| n.and_utc())
}

/// `HH:MM:SS` of a naive UTC timestamp, or the raw text (sanitized by the caller) when it does
/// not parse.
#[cfg(feature = "tui")] // only the dashboard shows it
pub fn clock(ts: &str) -> String {
    match parse_timestamp(ts) {
        Some(t) => t.format("%H:%M:%S").to_string(),
        None => ts.to_owned(),
    }
}

/// How long a pipeline has run (running) or ran (finished), in seconds.
pub fn elapsed(doc: &PipelineDoc, now: DateTime<Utc>) -> Option<f64> {
    if let Some(d) = doc.duration_seconds.filter(|d| d.is_finite()) {
        return Some(d);
    }
    let start = utc(&doc.start_time)?;
    let end = match &doc.end_time {
        Some(e) => utc(e)?,
        None if doc.status.is_final() => return None,
        None => now,
    };
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

/// Age of something taken at `then`, e.g. `0.4s`, never negative.
#[cfg(feature = "tui")] // only the dashboard shows it
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ms = (now - then).num_milliseconds().max(0);
    duration(ms as f64 / 1000.0)
}

/// Symbol and words for a connection state; the bool says whether it is healthy.
pub fn conn_label(c: &ConnState) -> (String, bool) {
    match c {
        ConnState::Connecting => ("◌ connecting".into(), false),
        ConnState::Connected { .. } => ("● connected".into(), true),
        ConnState::InProcess => ("● in-process".into(), true),
        ConnState::Reconnecting { .. } => ("↻ reconnecting".into(), false),
        ConnState::Unreachable { .. } => ("✖ unreachable".into(), false),
    }
}

/// One line describing a connection state: its label, since when, and the last error
/// (sanitized: it may quote what a server sent).
pub fn describe_conn(c: &ConnState) -> String {
    let (label, _) = conn_label(c);
    match c {
        ConnState::Reconnecting { since, error, .. }
        | ConnState::Unreachable { since, error, .. } => {
            format!(
                "{label} since {} UTC: {}",
                since.format("%H:%M:%S"),
                text::sanitize(error)
            )
        }
        ConnState::Connected { since } => format!("{label} since {} UTC", since.format("%H:%M:%S")),
        _ => label,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(3.25), "3.2s");
        assert_eq!(duration(42.0), "42s");
        assert_eq!(duration(252.0), "4m12s");
        assert_eq!(duration(3720.0), "1h02m");
        assert_eq!(duration(190_000.0), "2d04h");
        assert_eq!(duration(-1.0), "-");
        assert_eq!(duration(f64::NAN), "-");
    }

    #[test]
    fn money_keeps_small_amounts_visible() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(1234.0), "$1.2k");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(percent(0.7234), "72.3%");
    }
}
