//! Making untrusted text safe and the right width for a terminal cell, for both faces (the
//! dashboard and the `--once` text report).
//!
//! Everything either face shows about a card (id, title, stage names, messages, metadata)
//! comes from Redis, where any process may have written anything. A title holding `ESC [ 2 J`
//! must not clear the user's screen, and a title full of emoji must not push the next column
//! off by one. So every string passes through [`sanitize`] before it reaches a buffer or
//! stdout, and is cut by display width ([`fit`]), never by bytes or chars.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// What a truncated string ends with.
pub const ELLIPSIS: char = '…';

/// Whether `c` could change the terminal's state or the visual order of text if printed raw:
/// C0 and C1 controls, DEL, and the Unicode bidirectional overrides/isolates (which can make
/// a card id read backwards, the "Trojan Source" trick).
fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Replaces every control character with a visible stand-in: C0 controls become the matching
/// Unicode "control picture" (`ESC` → `␛`, `\n` → `␊`), DEL becomes `␡` and everything else
/// dangerous becomes `�`. The result can be printed as is; nothing in it is interpreted by a
/// terminal.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_dangerous) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(visible).collect())
}

fn visible(c: char) -> char {
    match c {
        '\u{0}'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{FFFD}'),
        '\u{7f}' => '\u{2421}',
        c if is_dangerous(c) => '\u{FFFD}',
        c => c,
    }
}

/// Display width of `s` in terminal cells (after sanitizing, which keeps widths stable:
/// control pictures are one cell wide).
pub fn width(s: &str) -> usize {
    sanitize(s).width()
}

/// `s` sanitized and cut to at most `max` cells, ending with `…` when something was cut.
/// A wide character that would straddle the limit is dropped whole, never split.
pub fn fit(s: &str, max: usize) -> String {
    let clean = sanitize(s);
    if clean.width() <= max {
        return clean.into_owned();
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1; // room for the ellipsis
    let mut out = String::with_capacity(budget + 3);
    let mut used = 0;
    for c in clean.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push(ELLIPSIS);
    out
}

/// Like [`fit`] but keeps the end of `s` (`…pipeline:card-7`): for keys, whose distinctive
/// part is last.
#[cfg(feature = "tui")] // only the dashboard shows it
pub fn fit_tail(s: &str, max: usize) -> String {
    let clean = sanitize(s);
    if clean.width() <= max {
        return clean.into_owned();
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1;
    let mut used = 0;
    let mut tail: Vec<char> = Vec::new();
    for c in clean.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > budget {
            break;
        }
        used += w;
        tail.push(c);
    }
    let mut out = String::with_capacity(tail.len() + 3);
    out.push(ELLIPSIS);
    out.extend(tail.into_iter().rev());
    out
}

/// `s` fitted to exactly `width` cells: cut with [`fit`] or padded with spaces on the right.
pub fn pad(s: &str, width: usize) -> String {
    let mut out = fit(s, width);
    let w = out.width();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// Same as [`pad`] but right-aligned.
pub fn pad_left(s: &str, width: usize) -> String {
    let cut = fit(s, width);
    let w = cut.width();
    let mut out: String = std::iter::repeat_n(' ', width.saturating_sub(w)).collect();
    out.push_str(&cut);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        let s = sanitize("evil\u{1b}[2J\u{7}title\r\n\u{9b}31m\u{202E}abc");
        assert!(!s.chars().any(is_dangerous), "{s:?}");
        assert_eq!(s, "evil␛[2J␇title␍␊�31m�abc");
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(sanitize("plain ünïcode 🚀"), Cow::Borrowed(_)));
    }

    #[test]
    fn fit_counts_cells_not_chars() {
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(width(&fit("日本語テキスト", 7)), 7);
        // A wide char that would straddle the last cell is dropped, the cut stays short.
        assert_eq!(fit("ab日本", 4), "ab…");
        assert_eq!(fit("🚀🚀🚀", 4), "🚀…");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("anything", 0), "");
        assert_eq!(fit("ab", 1), "…");
        assert_eq!(fit_tail("artemis:pipeline:card-7", 10), "…ne:card-7");
        assert_eq!(width(&fit_tail("日本語テキスト", 6)), 5);
    }

    #[test]
    fn pad_fills_to_the_exact_width() {
        assert_eq!(pad("日本", 5), "日本 ");
        assert_eq!(pad("日本語", 5), "日本…");
        assert_eq!(pad_left("42", 4), "  42");
        assert_eq!(width(&pad("🚀x", 6)), 6);
    }
}
