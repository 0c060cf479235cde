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

/// Significant digits every money figure keeps, on every face.
pub const MONEY_DIGITS: i32 = 3;

/// Decimals beyond which a non-zero amount is shown as `<$0.000001` rather than rounded to a
/// zero it is not.
const MONEY_MAX_DECIMALS: i32 = 6;

/// US dollars, one format for the whole app: [`MONEY_DIGITS`] significant digits, never fewer
/// than cents, trailing zeros past the cents dropped: `$0.42`, `$0.0427`, `$0.0027`,
/// `$0.000012`, `$12.35`, `$123.45`; thousands and up keep the same three digits with a
/// suffix: `$1.23k`, `$45.6k`, `$7.89M`. A non-zero amount never shows as zero (`<$0.000001`
/// below a millionth). Non-finite input gives `-`. Negative amounts keep their sign (`-$0.42`).
pub fn usd(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a == 0.0 {
        return "$0.00".into();
    }
    if a < 0.5 * 10f64.powi(-MONEY_MAX_DECIMALS) {
        return format!(
            "{sign}<${:.*}",
            MONEY_MAX_DECIMALS as usize,
            10f64.powi(-MONEY_MAX_DECIMALS)
        );
    }
    // Rounded first, so that $999.999 becomes $1.00k, not $1000.00.
    let below_thousand = {
        let decimals = money_decimals(a);
        let rounded = round_to(a, decimals);
        (rounded < 1_000.0).then(|| trim_past_cents(format!("{rounded:.*}", decimals as usize)))
    };
    if let Some(figure) = below_thousand {
        return format!("{sign}${figure}");
    }
    const SUFFIXES: [(f64, &str); 4] = [(1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")];
    for (i, (unit, suffix)) in SUFFIXES.iter().enumerate() {
        let scaled = a / unit;
        let digits_for = |x: f64| (MONEY_DIGITS - 1 - x.log10().floor() as i32).max(0);
        let mut decimals = digits_for(scaled);
        let mut rounded = round_to(scaled, decimals);
        if digits_for(rounded) < decimals {
            // 0.9996 rounded to 1.000: one decimal fewer keeps three digits.
            decimals = digits_for(rounded);
            rounded = round_to(scaled, decimals);
        }
        if rounded < 1_000.0 || i == SUFFIXES.len() - 1 {
            if rounded >= 1_000.0 {
                return format!("{sign}${:.*e}", (MONEY_DIGITS - 1) as usize, a);
            }
            return format!("{sign}${rounded:.*}{suffix}", decimals as usize);
        }
    }
    unreachable!("the last suffix returns")
}

/// Decimals that give `a` (below a thousand) [`MONEY_DIGITS`] significant digits, and at
/// least cents.
fn money_decimals(a: f64) -> i32 {
    let magnitude = a.log10().floor() as i32;
    (MONEY_DIGITS - 1 - magnitude).clamp(2, MONEY_MAX_DECIMALS)
}

fn round_to(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// `0.420` → `0.42`: zeros past the cents say nothing about a price.
fn trim_past_cents(mut s: String) -> String {
    if let Some(point) = s.find('.') {
        while s.len() > point + 3 && s.ends_with('0') {
            s.pop();
        }
    }
    s
}

/// A column of figures aligned on their decimal point: the integer parts right-aligned, the
/// fractions left-aligned, so that `$0.42`, `$0.0027` and `$12.35` read as one column. Sized
/// from the figures it will show; a figure without a point (`-`) ends where the points are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecimalColumn {
    /// Cells before the point (sign, `$` and integer digits).
    pub int_w: usize,
    /// Cells from the point on (the point itself, the decimals, a `k` suffix).
    pub frac_w: usize,
}

impl DecimalColumn {
    /// The column that fits every figure in `figures`.
    pub fn fit<'a>(figures: impl IntoIterator<Item = &'a str>) -> Self {
        figures.into_iter().fold(Self::default(), |c, f| {
            let (int, frac) = split_point(f);
            Self {
                int_w: c.int_w.max(text::width(int)),
                frac_w: c.frac_w.max(text::width(frac)),
            }
        })
    }

    /// Cells the column takes.
    pub fn width(&self) -> usize {
        self.int_w + self.frac_w
    }

    /// `figure` placed in the column: exactly [`Self::width`] cells when the figure fits
    /// (it was among those the column was fitted to), else the figure as is.
    pub fn cell(&self, figure: &str) -> String {
        let (int, frac) = split_point(figure);
        format!(
            "{}{}",
            text::pad_left(int, self.int_w.max(text::width(int))),
            text::pad(frac, self.frac_w.max(text::width(frac)))
        )
    }
}

/// The part of a figure before its decimal point, and the rest (point included).
fn split_point(figure: &str) -> (&str, &str) {
    figure.split_at(figure.find('.').unwrap_or(figure.len()))
}

/// A window length as people say it: `60s`, `5m`, `1h`, `1h30m`, `2.5s`; `-` for a
/// non-positive or non-finite one.
pub fn window(secs: f64) -> String {
    if !secs.is_finite() || secs <= 0.0 {
        return "-".into();
    }
    let s = secs.round() as u64;
    if (secs - s as f64).abs() > 1e-9 {
        return format!("{secs:.1}s");
    }
    if s < 120 {
        return format!("{s}s");
    }
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        duration(secs)
    }
}

/// Counts: exact below a thousand, then three significant digits like money (`950`, `5.73k`,
/// `12.3k`, `123k`, `4.50M`), so `5734/60.0k` reads `5.73k/60.0k`.
// Only the dashboard's panels show counts this way; the library alone does not.
#[cfg_attr(not(feature = "tui"), allow(dead_code))]
pub fn count(v: u64) -> String {
    if v < 1_000 {
        return v.to_string();
    }
    let units = [
        (1e3, "k"),
        (1e6, "M"),
        (1e9, "G"),
        (1e12, "T"),
        (1e15, "P"),
        (1e18, "E"),
    ];
    let x = v as f64;
    for (i, (scale, unit)) in units.iter().enumerate() {
        let scaled = x / scale;
        // Rounding 999.6k up is 1.00M, not "1000k".
        let decimals = match scaled {
            s if s < 9.995 => 2,
            s if s < 99.95 => 1,
            _ => 0,
        };
        let shown = format!("{scaled:.decimals$}");
        if shown.parse::<f64>().unwrap_or(0.0) < 999.5 || i + 1 == units.len() {
            return format!("{shown}{unit}");
        }
    }
    unreachable!("the last unit always returns")
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
    fn money_keeps_three_significant_digits_and_cents() {
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.42), "$0.42");
        assert_eq!(usd(0.0427), "$0.0427");
        assert_eq!(usd(0.0042), "$0.0042");
        assert_eq!(usd(0.00271), "$0.00271");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(12.0), "$12.00");
        assert_eq!(usd(123.456), "$123.46");
        assert_eq!(usd(0.5), "$0.50");
    }

    #[test]
    fn money_never_shows_zero_for_a_non_zero_amount() {
        assert_eq!(usd(0.000012), "$0.000012");
        assert_eq!(usd(0.0000004), "<$0.000001");
        assert_eq!(usd(1e-300), "<$0.000001");
        assert_eq!(usd(-0.0000004), "-<$0.000001");
        for v in [1e-7, 3e-6, 0.00001, 0.0049, 0.005, 0.0099] {
            assert_ne!(usd(v), "$0.00", "{v}");
            assert_ne!(usd(v), "$0.0000", "{v}");
        }
    }

    #[test]
    fn large_money_keeps_three_digits_with_a_suffix() {
        assert_eq!(usd(1234.0), "$1.23k");
        assert_eq!(usd(45_678.0), "$45.7k");
        assert_eq!(usd(456_789.0), "$457k");
        assert_eq!(usd(7_890_000.0), "$7.89M");
        assert_eq!(usd(2.5e12), "$2.50T");
        assert_eq!(usd(4.2e18), "$4.20e18");
        // Rounding up crosses into the next unit rather than showing four digits.
        assert_eq!(usd(999.999), "$1.00k");
        assert_eq!(usd(999_600.0), "$1.00M");
    }

    #[test]
    fn odd_money_input_never_panics() {
        assert_eq!(usd(f64::NAN), "-");
        assert_eq!(usd(f64::INFINITY), "-");
        assert_eq!(usd(f64::NEG_INFINITY), "-");
        assert_eq!(usd(-0.42), "-$0.42");
        assert_eq!(usd(-1234.0), "-$1.23k");
        assert_eq!(usd(-0.0), "$0.00");
        for v in [
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
        ] {
            assert!(!usd(v).is_empty(), "{v}");
        }
    }

    #[test]
    fn a_money_column_lines_up_on_the_decimal_point() {
        let figures: Vec<String> = [0.0027, 0.04, 0.000012, 1234.0, 12.0, f64::NAN]
            .into_iter()
            .map(usd)
            .collect();
        let col = DecimalColumn::fit(figures.iter().map(String::as_str));
        let cells: Vec<String> = figures.iter().map(|f| col.cell(f)).collect();
        for c in &cells {
            assert_eq!(text::width(c), col.width(), "{cells:?}");
        }
        let points: Vec<usize> = cells.iter().filter_map(|c| c.find('.')).collect();
        assert_eq!(points.len(), 5, "{cells:?}");
        assert!(points.windows(2).all(|p| p[0] == p[1]), "{cells:?}");
        assert_eq!(cells[5].trim(), "-");
        assert_eq!(
            cells[5].trim_end().len(),
            col.int_w,
            "`-` ends where the points are"
        );
    }

    #[test]
    fn windows_read_as_people_say_them() {
        assert_eq!(window(60.0), "60s");
        assert_eq!(window(300.0), "5m");
        assert_eq!(window(3600.0), "1h");
        assert_eq!(window(2.5), "2.5s");
        assert_eq!(window(0.0), "-");
        assert_eq!(window(f64::NAN), "-");
    }

    #[test]
    fn counts_are_short() {
        assert_eq!(count(999), "999");
        assert_eq!(count(5_734), "5.73k");
        assert_eq!(count(9_999), "10.0k");
        assert_eq!(count(123_456), "123k");
        assert_eq!(count(999_600), "1.00M");
        assert_eq!(count(u64::MAX), "18.4E");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(percent(0.7234), "72.3%");
    }
}
