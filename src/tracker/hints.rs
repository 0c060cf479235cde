//! Stage names found apart from the documents (a SCAN's `…:stage:<name>` keys), per card,
//! packed into one string.
//!
//! Why packed: at 100,000 cards with a stage each, a `HashMap<String, BTreeSet<String>>` took
//! ~38 MB (a B-tree leaf of eleven slots per one-name set, a map entry and two heap strings per
//! card) for what is ~3 MB of names. Every SCAN-based reader (the dashboard's full reads and
//! audits, `get_card`, `--once --format json`) holds these for a whole read, so this costs the
//! names' bytes and 8 bytes per stage, and a lookup is a binary search.

use std::collections::BTreeSet;

/// Stage names per card, packed: one string of every card id and stage name end to end, and
/// per entry where its card id starts, where its stage name starts (the id's end) and where
/// that ends, sorted by card (then stage) once [`StageHints::finish`] ran. The offsets are
/// kept rather than found again (a lookup compares ids only, with no search for a separator).
#[derive(Debug, Default, Clone)]
pub(crate) struct StageHints {
    text: String,
    /// (card start, stage start, stage end) of each entry in `text`.
    entries: Vec<(u32, u32, u32)>,
}

impl StageHints {
    /// Adds one name found for `card`; [`StageHints::finish`] must run before lookups.
    pub(crate) fn push(&mut self, card: &str, stage: &str) {
        let start = self.text.len();
        let mid = start + card.len();
        let end = mid + stage.len();
        // Past 4 GiB of names (far beyond any SCAN limit) the hint is dropped, not wrapped.
        if let (Ok(a), Ok(m), Ok(b)) =
            (u32::try_from(start), u32::try_from(mid), u32::try_from(end))
        {
            self.text.push_str(card);
            self.text.push_str(stage);
            self.entries.push((a, m, b));
        }
    }

    fn card(&self, e: &(u32, u32, u32)) -> &str {
        self.text
            .get(e.0 as usize..e.1 as usize)
            .unwrap_or_default()
    }

    fn stage(&self, e: &(u32, u32, u32)) -> &str {
        self.text
            .get(e.1 as usize..e.2 as usize)
            .unwrap_or_default()
    }

    fn entry(&self, e: &(u32, u32, u32)) -> (&str, &str) {
        (self.card(e), self.stage(e))
    }

    /// Sorts the entries by card (then stage) and drops repeats, for the lookups.
    pub(crate) fn finish(&mut self) {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by(|x, y| self.entry(x).cmp(&self.entry(y)));
        entries.dedup_by(|x, y| self.entry(x) == self.entry(y));
        entries.shrink_to_fit();
        self.entries = entries;
        self.text.shrink_to_fit();
    }

    /// The stage names found for `card`, sorted, without building anything.
    pub(crate) fn names<'s, 'c>(
        &'s self,
        card: &'c str,
    ) -> impl Iterator<Item = &'s str> + use<'s, 'c> {
        let first = self.entries.partition_point(|e| self.card(e) < card);
        self.entries[first..]
            .iter()
            .take_while(move |e| self.card(e) == card)
            .map(|e| self.stage(e))
    }

    /// Every (card, stage) pair, in order (sorted once [`StageHints::finish`] ran).
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|e| self.entry(e))
    }

    /// The stage names found for `card` as a set, `None` when none were.
    pub(crate) fn of(&self, card: &str) -> Option<BTreeSet<String>> {
        let names: BTreeSet<String> = self.names(card).map(str::to_owned).collect();
        (!names.is_empty()).then_some(names)
    }

    /// How many (card, stage) pairs are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_hints_give_each_card_its_own_stages_only() {
        let mut h = StageHints::default();
        for (card, stage) in [
            ("b", "review"),
            ("a", "plan"),
            ("a:x", "other"),
            ("a", "build"),
            ("ab", "deploy"),
            ("a", "plan"),
        ] {
            h.push(card, stage);
        }
        h.finish();
        let names = |card: &str| h.of(card).map(|s| s.into_iter().collect::<Vec<_>>());
        assert_eq!(names("a"), Some(vec!["build".into(), "plan".into()]));
        assert_eq!(names("a:x"), Some(vec!["other".into()]));
        assert_eq!(names("ab"), Some(vec!["deploy".into()]));
        assert_eq!(names("b"), Some(vec!["review".into()]));
        assert_eq!(names("c"), None);
        assert_eq!(h.len(), 5, "a repeated SCAN key counts once");
    }

    #[test]
    fn names_borrow_what_the_set_would_hold() {
        let mut h = StageHints::default();
        h.push("card", "z");
        h.push("card", "a");
        h.push("cardinal", "q");
        h.finish();
        assert_eq!(h.names("card").collect::<Vec<_>>(), ["a", "z"]);
        assert_eq!(h.names("car").count(), 0);
        assert_eq!(h.names("").count(), 0);
    }
}
