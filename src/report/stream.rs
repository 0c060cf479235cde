//! The JSON [`Report`] written a piece at a time: the fields before the cards, the cards as
//! they arrive, then the fields after them.
//!
//! Why: `--once --format json` at 100,000 cards would otherwise build every card, then the
//! whole report, then its whole text before writing a byte. Written in pieces, the output is
//! byte for byte what `serde_json::to_string(&report)` gives (compact JSON: the same fields in
//! the same order, each value serialized by the same derive), which the tests check on a
//! report with every field filled, so the schema and the readers see no difference.

use std::io::{self, Write};

use super::{Card, Report};

/// Writes `{` and every field before `cards`, then `"cards":[`; `report.cards` is not read.
pub fn write_head(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    out.write_all(b"{\"version\":")?;
    serde_json::to_writer(&mut *out, &report.version)?;
    out.write_all(b",\"taken_at\":")?;
    serde_json::to_writer(&mut *out, &report.taken_at)?;
    out.write_all(b",\"source\":")?;
    serde_json::to_writer(&mut *out, &report.source)?;
    out.write_all(b",\"connection\":")?;
    serde_json::to_writer(&mut *out, &report.connection)?;
    out.write_all(b",\"health\":")?;
    serde_json::to_writer(&mut *out, &report.health)?;
    out.write_all(b",\"cards\":[")?;
    Ok(())
}

/// Writes `cards` as report cards (each converted by move), after the `written` already
/// written (a comma between two); adds them to `written`.
pub fn write_cards(
    out: &mut dyn Write,
    cards: impl IntoIterator<Item = crate::tracker::Card>,
    written: &mut usize,
) -> io::Result<()> {
    for c in cards {
        if *written > 0 {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, &Card::from(c))?;
        *written += 1;
    }
    Ok(())
}

/// Closes the cards and writes every field after them, then `}` and a newline (one report per
/// line); `report.cards` is not read.
pub fn write_tail(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    out.write_all(b"],\"metrics\":")?;
    serde_json::to_writer(&mut *out, &report.metrics)?;
    out.write_all(b",\"limits\":")?;
    serde_json::to_writer(&mut *out, &report.limits)?;
    out.write_all(b",\"malformed\":")?;
    serde_json::to_writer(&mut *out, &report.malformed)?;
    out.write_all(b"}\n")?;
    Ok(())
}
