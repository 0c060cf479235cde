//! What a request costs, from a versioned price table matched by model name.
//!
//! The cache reports spend on a miss and money saved on a hit, so every answer needs a price.
//! Guessing a price for a model nobody listed would make those figures quietly wrong; an unknown
//! model is priced at zero and reported as unpriced instead. The table ships in
//! `assets/prices.toml` (list prices with an effective date) and a deployment replaces it with
//! `cache.price_file`.

use std::path::Path;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::client::Usage;
use crate::error::Error;

/// The table shipped with the crate.
const SHIPPED: &str = include_str!("../../assets/prices.toml");

/// A price table: which models cost what, as of when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceTable {
    /// The date the prices were taken from the providers' lists.
    pub effective_date: NaiveDate,
    /// Where the prices come from.
    pub source: Option<String>,
    /// The priced models; the most specific pattern that matches wins.
    pub models: Vec<ModelPrice>,
}

/// The price of the models matching one pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// A model name, or a prefix ending in `*`; case is ignored.
    pub pattern: String,
    /// The provider the pattern belongs to, for display; matching ignores it.
    #[serde(default)]
    pub provider: Option<String>,
    /// USD per million input (prompt) tokens.
    pub input_per_million: f64,
    /// USD per million output (completion) tokens.
    pub output_per_million: f64,
}

impl ModelPrice {
    /// USD for the given usage.
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_million
            + usage.completion_tokens as f64 * self.output_per_million)
            / 1_000_000.0
    }

    /// How specific a match is: an exact name beats any prefix, a longer prefix a shorter one.
    fn specificity(&self, model_lower: &str) -> Option<usize> {
        let pattern = self.pattern.to_ascii_lowercase();
        match pattern.strip_suffix('*') {
            Some(prefix) => model_lower.starts_with(prefix).then_some(prefix.len()),
            None => (pattern == model_lower).then_some(usize::MAX),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    effective_date: DateText,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    model: Vec<ModelPrice>,
}

/// A date written as a TOML date (`2025-11-25`) or a string (`"2025-11-25"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum DateText {
    Date(toml::value::Datetime),
    Text(String),
}

impl PriceTable {
    /// The shipped table (`assets/prices.toml`).
    pub fn shipped() -> Result<Self, Error> {
        Self::from_toml(SHIPPED, "the shipped assets/prices.toml")
    }

    /// The table the settings name: `cache.price_file`, else the shipped one.
    pub fn load(price_file: Option<&Path>) -> Result<Self, Error> {
        match price_file {
            None => Self::shipped(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!(
                        "cache.price_file: cannot read {}: {e}",
                        path.display()
                    ))
                })?;
                Self::from_toml(&text, &format!("cache.price_file {}", path.display()))
            }
        }
    }

    /// Parses and checks a table; `origin` names it in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::Config(format!("{origin}: {why}"));
        let file: File =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        let date_text = match file.effective_date {
            DateText::Date(d) => d.to_string(),
            DateText::Text(s) => s,
        };
        let effective_date = NaiveDate::parse_from_str(&date_text, "%Y-%m-%d")
            .map_err(|_| bad(format!("effective_date {date_text:?} is not YYYY-MM-DD")))?;
        let mut seen = std::collections::HashSet::new();
        for m in &file.model {
            let p = &m.pattern;
            if p.is_empty() || p.trim_end_matches('*').contains('*') || p == "*" {
                return Err(bad(format!(
                    "pattern {p:?}: expected a model name or a non-empty prefix ending in '*'"
                )));
            }
            if !seen.insert(p.to_ascii_lowercase()) {
                return Err(bad(format!("pattern {p:?} appears twice")));
            }
            for (what, v) in [
                ("input_per_million", m.input_per_million),
                ("output_per_million", m.output_per_million),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(bad(format!(
                        "{what} of {p:?} must be a number >= 0, not {v}"
                    )));
                }
            }
        }
        Ok(Self {
            effective_date,
            source: file.source,
            models: file.model,
        })
    }

    /// The price of `model`, if any pattern matches.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        let lower = model.to_ascii_lowercase();
        self.models
            .iter()
            .filter_map(|m| m.specificity(&lower).map(|s| (s, m)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, m)| m)
    }

    /// The cost of a response: the answering model's price, else the requested model's. `None`
    /// when neither is in the table.
    pub fn cost(&self, answered_by: &str, requested: &str, usage: &Usage) -> Option<f64> {
        self.lookup(answered_by)
            .or_else(|| self.lookup(requested))
            .map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_parses_and_prices_common_models() {
        let t = PriceTable::shipped().unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            total_tokens: 2_000_000,
        };
        let cost = |m: &str| t.cost(m, m, &usage);
        assert_eq!(cost("gpt-4o"), Some(12.5));
        assert_eq!(cost("gpt-4o-2024-08-06"), Some(12.5));
        assert_eq!(cost("gpt-4o-2024-05-13"), Some(20.0));
        assert_eq!(cost("gpt-4o-mini-2024-07-18"), Some(0.75));
        assert_eq!(cost("GPT-5"), Some(11.25));
        assert_eq!(cost("gpt-5-mini-2025-08-07"), Some(2.25));
        assert_eq!(cost("claude-sonnet-4-5-20250929"), Some(18.0));
        assert_eq!(cost("claude-haiku-4-5"), Some(6.0));
        assert_eq!(cost("claude-opus-4-1-20250805"), Some(90.0));
        assert_eq!(cost("claude-opus-4-5"), Some(30.0));
        assert_eq!(cost("my-local-llama"), None);
        // The requested model prices a response whose model name is unknown.
        assert_eq!(t.cost("deployment-17", "gpt-4o", &usage), Some(12.5));
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        let e = PriceTable::from_toml("effective_date = \"2025-13-01\"", "t").unwrap_err();
        assert!(e.to_string().contains("effective_date"), "{e}");
        let e = PriceTable::from_toml(
            "effective_date = 2025-01-01\n[[model]]\npattern = \"a*b\"\ninput_per_million = 1\noutput_per_million = 1\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("a*b"), "{e}");
        let e = PriceTable::from_toml(
            "effective_date = 2025-01-01\n[[model]]\npattern = \"a\"\ninput_per_million = -1\noutput_per_million = 1\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains(">= 0"), "{e}");
        assert!(PriceTable::from_toml("effective_date = 2025-01-01\nbogus = 1", "t").is_err());
    }
}
