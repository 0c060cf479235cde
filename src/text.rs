//! Making untrusted text safe and the right width for a terminal cell, for both faces (the
//! dashboard and the `--once` text report). It is the one display sanitizer: every string read
//! from Redis passes through it before it reaches a ratatui buffer or stdout.
//!
//! Everything either face shows about a card (id, title, stage names, messages, metadata)
//! comes from Redis, where any process may have written anything. A title holding `ESC [ 2 J`
//! must not clear the user's screen, a zero-width space must not make two different ids look
//! the same, a bidi override must not make an id read backwards, and a title full of emoji or a
//! thousand combining marks must not push the next column off by one. So:
//!
//! * Every character that is not shown as itself by a terminal (categories Cc, Cf, Zl, Zp, the
//!   spaces other than U+0020, the default-ignorable code points, bidi controls, tag characters,
//!   variation selectors standing alone, noncharacters) becomes a visible placeholder: C0
//!   controls and DEL their Unicode "control picture" (`ESC` → `␛`, `\n` → `␊`), everything
//!   else `⟨U+200B⟩`. The characters the placeholders are made of (`⟨` and the control
//!   pictures) become placeholders themselves when they come from Redis, so the mapping is
//!   one-to-one: two different strings never look the same.
//! * The sequences emoji are made of stay intact where they are emoji: a ZWJ between two
//!   pictographs (family emoji), tag characters after a black flag ending with CANCEL TAG
//!   (England's flag), a variation selector after its base.
//! * Width is counted per grapheme cluster by ratatui's own rule ([`cluster_width`]), so a
//!   string [`pad`]ded to 20 cells takes exactly 20 cells in ratatui's buffer, and every
//!   cluster is at least one cell wide after sanitizing (no zero-width cluster that ratatui
//!   would drop or glue to its neighbour).
//! * A cluster longer than [`MAX_CLUSTER_CHARS`] code points (a thousand combining marks on
//!   one letter) keeps its first [`MAX_CLUSTER_CHARS`].
//!
//! Cutting ([`fit`], [`fit_tail`]) is by cells and by whole clusters, never by bytes or chars.

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// What a truncated string ends with.
pub const ELLIPSIS: char = '…';

/// Code points kept of one grapheme cluster. The longest emoji sequences in use (a family with
/// skin tones, a subdivision flag) have 11 to 13; Zalgo text stacks far more marks than any
/// terminal draws.
pub const MAX_CLUSTER_CHARS: usize = 16;

/// Opens a `⟨U+XXXX⟩` placeholder (U+27E8, one cell wide everywhere, East Asian width Na).
const OPEN: char = '\u{27E8}';
const CLOSE: char = '\u{27E9}';

/// Whether `c` is never shown as itself, wherever it stands: controls, format characters,
/// line and paragraph separators, spaces other than U+0020 (they look like a space but are
/// not one), default-ignorable code points, noncharacters, and the characters placeholders are
/// made of. (ZWJ, variation selectors and tag characters are judged with their cluster, in
/// [`keep_in_cluster`].)
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Spaces other than U+0020, and Cf / Zl / Zp (Unicode 15).
            '\u{A0}'
                | '\u{AD}'
                | '\u{600}'..='\u{605}'
                | '\u{61C}'
                | '\u{6DD}'
                | '\u{70F}'
                | '\u{890}'..='\u{891}'
                | '\u{8E2}'
                | '\u{1680}'
                | '\u{180E}'
                | '\u{2000}'..='\u{200C}'
                | '\u{200E}'..='\u{200F}'
                | '\u{2028}'..='\u{202F}'
                | '\u{205F}'..='\u{206F}'
                | '\u{3000}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E001F}'
                | '\u{E0080}'..='\u{E00FF}'
                | '\u{E01F0}'..='\u{E0FFF}'
                // Other default-ignorable or blank-looking code points: combining grapheme
                // joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors,
                // the braille blank.
                | '\u{34F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180D}'
                | '\u{180F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                // Noncharacters.
                | '\u{FDD0}'..='\u{FDEF}'
                // What placeholders are made of, so no string can forge one.
                | OPEN
                | '\u{2400}'..='\u{2421}'
        )
        || (c as u32 & 0xFFFE) == 0xFFFE
}

const ZWJ: char = '\u{200D}';
const CANCEL_TAG: char = '\u{E007F}';
const BLACK_FLAG: char = '\u{1F3F4}';

fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

fn is_tag(c: char) -> bool {
    matches!(c, '\u{E0020}'..='\u{E007F}')
}

/// Whether the `i`th code point of a cluster is shown as itself. Joiners, variation selectors
/// and tag characters are legitimate only where they build an emoji or modify a base.
fn keep_in_cluster(cluster: &[char], i: usize) -> bool {
    let c = cluster[i];
    if c == ZWJ {
        // Between two visible code points of an emoji ZWJ sequence (GB11 only joins a
        // pictograph after a ZWJ into the cluster).
        return i > 0
            && cluster
                .get(i + 1)
                .is_some_and(|n| n.width().unwrap_or(0) > 0 && !is_hidden(*n));
    }
    if is_variation_selector(c) {
        return i > 0 && !is_hidden(cluster[i - 1]);
    }
    if is_tag(c) {
        // An emoji tag sequence: a black flag, tags, CANCEL TAG last.
        return cluster.first() == Some(&BLACK_FLAG)
            && cluster.last() == Some(&CANCEL_TAG)
            && cluster[1..].iter().all(|t| is_tag(*t));
    }
    !is_hidden(c)
}

/// Appends the placeholder for a code point that is not shown as itself.
fn push_placeholder(out: &mut String, c: char) {
    match c {
        '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
        '\u{7f}' => out.push('\u{2421}'),
        c => {
            let _ = write!(out, "{OPEN}U+{:04X}{CLOSE}", c as u32);
        }
    }
}

/// Whether `s` is already what [`sanitize`] would make of it, decided cheaply for the common
/// case (printable ASCII).
fn plain_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Appends the sanitized form of one grapheme cluster of the input.
fn push_cluster(out: &mut String, cluster: &str) {
    let chars: Vec<char> = cluster.chars().take(MAX_CLUSTER_CHARS).collect();
    let start = out.len();
    for i in 0..chars.len() {
        if keep_in_cluster(&chars, i) {
            out.push(chars[i]);
        } else {
            push_placeholder(out, chars[i]);
        }
    }
    // What is left may still be zero cells wide (a combining mark at the very start, or after
    // a control): ratatui would drop it or glue it to the previous cell. Shown as placeholders.
    let kept = &out[start..];
    if !kept.is_empty()
        && kept
            .graphemes(true)
            .next()
            .is_some_and(|g| cluster_width(g) == 0)
    {
        let kept: Vec<char> = kept.chars().collect();
        out.truncate(start);
        let mut rest = kept.into_iter().peekable();
        while let Some(c) = rest.next_if(|c| c.width().unwrap_or(0) == 0) {
            push_placeholder(out, c);
        }
        out.extend(rest);
    }
}

/// Replaces everything a terminal would not show as itself with a visible placeholder (see the
/// module doc for the rule) and cuts over-long grapheme clusters. The result can be printed as
/// is: nothing in it is interpreted by a terminal, and every cluster in it is at least one cell
/// wide.
pub fn sanitize(s: &str) -> Cow<'_, str> {
    if plain_ascii(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for g in s.graphemes(true) {
        push_cluster(&mut out, g);
    }
    if out == s {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(out)
    }
}

/// Cells one grapheme cluster takes in a ratatui buffer: exactly ratatui's own rule
/// (`ratatui::buffer::CellWidth` for `str`), so what this module pads is what ratatui draws.
pub fn cluster_width(g: &str) -> usize {
    if g.len() == 1 {
        return 1;
    }
    // ratatui counts the halfwidth (han)dakuten as one cell each, where unicode-width says 0.
    let marks = g
        .chars()
        .filter(|c| matches!(c, '\u{FF9E}' | '\u{FF9F}'))
        .count();
    g.width() + marks
}

/// The clusters of `s` after sanitizing, with their widths.
fn clusters(clean: &str) -> impl DoubleEndedIterator<Item = (&str, usize)> {
    clean.graphemes(true).map(|g| (g, cluster_width(g)))
}

/// Display width of `s` in terminal cells, as ratatui will draw it (after sanitizing).
pub fn width(s: &str) -> usize {
    cells(&sanitize(s))
}

/// Cells that already sanitized text (what [`sanitize`], [`fit`] and [`pad`] return) takes.
/// (Not [`width`]: sanitizing twice would turn the placeholders' own `⟨` into placeholders.)
pub fn cells(clean: &str) -> usize {
    clusters(clean).map(|(_, w)| w).sum()
}

/// `s` sanitized and cut to at most `max` cells, ending with `…` when something was cut.
/// A wide cluster that would straddle the limit is dropped whole, never split.
pub fn fit(s: &str, max: usize) -> String {
    let clean = sanitize(s);
    let mut out = String::with_capacity(clean.len().min(max * 4 + 3));
    let mut used = 0;
    // Where the text stood when it last had room for an ellipsis after it.
    let mut cut_at = None;
    for (g, w) in clusters(&clean) {
        if used + w > max {
            let (len, _) = cut_at.unwrap_or((0, 0));
            out.truncate(len);
            if max > 0 {
                out.push(ELLIPSIS);
            }
            return out;
        }
        if used + w < max {
            cut_at = Some((out.len() + g.len(), used + w));
        }
        out.push_str(g);
        used += w;
    }
    out
}

/// Like [`fit`] but keeps the end of `s` (`…pipeline:card-7`): for keys, whose distinctive
/// part is last.
#[cfg(feature = "tui")] // only the dashboard shows it
pub fn fit_tail(s: &str, max: usize) -> String {
    let clean = sanitize(s);
    if cells(&clean) <= max {
        return clean.into_owned();
    }
    if max == 0 {
        return String::new();
    }
    let budget = max - 1;
    let mut used = 0;
    let mut tail: Vec<&str> = Vec::new();
    for (g, w) in clusters(&clean).rev() {
        if used + w > budget {
            break;
        }
        used += w;
        tail.push(g);
    }
    let mut out = String::with_capacity(tail.iter().map(|g| g.len()).sum::<usize>() + 3);
    out.push(ELLIPSIS);
    out.extend(tail.into_iter().rev());
    out
}

/// `s` fitted to exactly `width` cells: cut with [`fit`] or padded with spaces on the right.
pub fn pad(s: &str, width: usize) -> String {
    let mut out = fit(s, width);
    let w = cells(&out);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(w)));
    out
}

/// Same as [`pad`] but right-aligned.
pub fn pad_left(s: &str, width: usize) -> String {
    let cut = fit(s, width);
    let w = cells(&cut);
    let mut out: String = std::iter::repeat_n(' ', width.saturating_sub(w)).collect();
    out.push_str(&cut);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escape_sequences_become_visible_text() {
        let s = sanitize("evil\u{1b}[2J\u{7}title\r\n\u{9b}31m\u{202E}abc");
        assert_eq!(s, "evil␛[2J␇title␍␊⟨U+009B⟩31m⟨U+202E⟩abc");
    }

    #[test]
    fn clean_text_is_not_copied() {
        assert!(matches!(sanitize("plain ünïcode 🚀"), Cow::Borrowed(_)));
        assert!(matches!(
            sanitize("e\u{301} 👨\u{200D}👩\u{200D}👧"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn invisible_and_format_characters_become_placeholders() {
        for (raw, shown) in [
            ("a\u{200B}b", "a⟨U+200B⟩b"),
            ("a\u{200C}b", "a⟨U+200C⟩b"),
            ("a\u{2028}b\u{2029}c", "a⟨U+2028⟩b⟨U+2029⟩c"),
            ("soft\u{AD}hyphen", "soft⟨U+00AD⟩hyphen"),
            ("\u{FEFF}bom", "⟨U+FEFF⟩bom"),
            ("\u{2066}rtl\u{2069}", "⟨U+2066⟩rtl⟨U+2069⟩"),
            ("a\u{E0041}b", "a⟨U+E0041⟩b"),
            ("nb\u{A0}sp", "nb⟨U+00A0⟩sp"),
            ("\u{FE0F}alone", "⟨U+FE0F⟩alone"),
            ("\u{301}mark first", "⟨U+0301⟩mark first"),
            ("a\u{200D}b", "a⟨U+200D⟩b"),
        ] {
            assert_eq!(sanitize(raw), shown, "{raw:?}");
        }
    }

    #[test]
    fn lookalikes_stay_different() {
        let ids = [
            "card1",
            "card\u{200B}1",
            "card\u{200C}1",
            "card\u{2060}1",
            "card⟨U+200B⟩1",
            "card\u{1b}1",
            "card␛1",
        ];
        let shown: std::collections::HashSet<String> =
            ids.iter().map(|i| sanitize(i).into_owned()).collect();
        assert_eq!(shown.len(), ids.len(), "{shown:?}");
    }

    #[test]
    fn emoji_sequences_stay_intact() {
        for e in [
            "👨\u{200D}👩\u{200D}👧\u{200D}👦",
            "🇫🇷",
            "🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "❤\u{FE0F}",
            "👍🏽",
        ] {
            assert_eq!(sanitize(e), e, "{e:?}");
            assert!(width(e) >= 1, "{e:?}");
        }
    }

    #[test]
    fn a_huge_combining_cluster_is_cut() {
        let zalgo = format!("a{}b", "\u{301}".repeat(1000));
        let s = sanitize(&zalgo);
        assert_eq!(s.chars().count(), MAX_CLUSTER_CHARS + 1, "{s:?}");
        assert_eq!(width(&zalgo), 2);
        assert_eq!(cells(&pad(&zalgo, 5)), 5);
    }

    #[test]
    fn every_cluster_is_at_least_one_cell() {
        for raw in [
            "\u{301}",
            "\u{1b}\u{301}",
            "\u{200B}\u{302}\u{303}",
            "\u{FE0F}\u{FE0F}",
        ] {
            let s = sanitize(raw);
            assert!(
                s.graphemes(true).all(|g| cluster_width(g) >= 1),
                "{raw:?} → {s:?}"
            );
        }
    }

    #[test]
    fn fit_counts_cells_not_chars() {
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(cells(&fit("日本語テキスト", 7)), 7);
        // A wide char that would straddle the last cell is dropped, the cut stays short.
        assert_eq!(fit("ab日本", 4), "ab…");
        assert_eq!(fit("🚀🚀🚀", 4), "🚀…");
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("anything", 0), "");
        assert_eq!(fit("ab", 1), "…");
        assert_eq!(fit("ab", 2), "ab");
        assert_eq!(fit("abc", 2), "a…");
        assert_eq!(fit_tail("artemis:pipeline:card-7", 10), "…ne:card-7");
        assert_eq!(cells(&fit_tail("日本語テキスト", 6)), 5);
        // A family emoji is one cluster: kept or dropped whole.
        assert_eq!(fit("x👨\u{200D}👩\u{200D}👧y", 3), "x…");
        assert_eq!(cells(&fit("a\u{200B}b", 5)), 5);
    }

    #[test]
    fn pad_fills_to_the_exact_width() {
        assert_eq!(pad("日本", 5), "日本 ");
        assert_eq!(pad("日本語", 5), "日本…");
        assert_eq!(pad_left("42", 4), "  42");
        assert_eq!(cells(&pad("🚀x", 6)), 6);
        for hostile in [
            "🇫🇷🇩🇪 flags",
            "👨\u{200D}👩\u{200D}👧\u{200D}👦 family",
            "rtl\u{202E}olleh",
            "zw\u{200B}\u{200B}\u{200B}sp",
            "tags\u{E0041}\u{E0042}",
        ] {
            for w in 0..30 {
                assert_eq!(cells(&pad(hostile, w)), w, "{hostile:?} at {w}");
                assert_eq!(cells(&pad_left(hostile, w)), w, "{hostile:?} at {w}");
            }
        }
    }

    proptest! {
        /// Any text at all: nothing hidden or zero-width survives, and padding is exact.
        #[test]
        fn any_text_is_inert_and_pads_exactly(s in any::<String>(), w in 0usize..40) {
            let clean = sanitize(&s);
            prop_assert!(!clean.chars().any(|c| c.is_control()));
            prop_assert!(clean.graphemes(true).all(|g| cluster_width(g) >= 1));
            prop_assert!(clean.graphemes(true).all(|g| g.chars().count() <= MAX_CLUSTER_CHARS * 9));
            prop_assert_eq!(cells(&pad(&s, w)), w);
            prop_assert_eq!(cells(&pad_left(&s, w)), w);
            prop_assert!(cells(&fit(&s, w)) <= w);
        }

        /// Two different strings never show the same (but for clusters cut to their first
        /// MAX_CLUSTER_CHARS, which is the point of cutting them): one character inserted
        /// anywhere, even an invisible one, changes what is shown.
        #[test]
        fn different_text_shows_differently(a in any::<String>(), c in any::<char>(), at in 0usize..64) {
            let mut chars: Vec<char> = a.chars().collect();
            chars.insert(at.min(chars.len()), c);
            let b: String = chars.into_iter().collect();
            let short = |s: &str| s.graphemes(true).all(|g| g.chars().count() <= MAX_CLUSTER_CHARS);
            prop_assume!(short(&a) && short(&b));
            prop_assert_ne!(sanitize(&a), sanitize(&b));
        }
    }
}
