//! Preset limits chosen by provider and model id, from configuration data.
//!
//! The original looked models up by exact name, so a dated model id such as
//! `claude-sonnet-4-5-20250929` fell through to the provider's fallback limit. Here a preset
//! names a model-id *prefix* and the longest matching prefix wins; `""` is the provider's
//! fallback.

use crate::config::LimitPreset;

/// The preset for `model` of `provider` (provider compared case-insensitively, model prefix
/// case-sensitively as ids are), or `None` when neither a prefix nor a fallback matches.
pub fn find_preset<'p>(
    presets: &'p [LimitPreset],
    provider: &str,
    model: &str,
) -> Option<&'p LimitPreset> {
    presets
        .iter()
        .filter(|p| p.provider.eq_ignore_ascii_case(provider) && model.starts_with(&p.model_prefix))
        // Longest prefix wins; among equal prefixes the first listed wins.
        .fold(None, |best: Option<&LimitPreset>, p| match best {
            Some(b) if b.model_prefix.len() >= p.model_prefix.len() => Some(b),
            _ => Some(p),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LimiterSettings;

    fn rpm(provider: &str, model: &str) -> Option<u64> {
        find_preset(&LimiterSettings::default().presets, provider, model)
            .map(|p| p.requests_per_window)
    }

    #[test]
    fn originals_figures_by_longest_prefix() {
        assert_eq!(rpm("openai", "gpt-4o"), Some(100));
        assert_eq!(rpm("openai", "gpt-4o-2024-08-06"), Some(100));
        assert_eq!(rpm("openai", "gpt-4o-mini"), Some(300));
        assert_eq!(rpm("openai", "gpt-4o-mini-2024-07-18"), Some(300));
        assert_eq!(rpm("openai", "gpt-5"), Some(50));
        assert_eq!(rpm("anthropic", "claude-sonnet-4-5"), Some(50));
        // The original gave this one the fallback (30): it must get the model's limit.
        assert_eq!(rpm("anthropic", "claude-sonnet-4-5-20250929"), Some(50));
        assert_eq!(rpm("anthropic", "claude-haiku-4-5"), Some(30));
        assert_eq!(rpm("OpenAI", "gpt-4o"), Some(100));
        assert_eq!(rpm("mistral", "large"), None);
    }

    #[test]
    fn order_of_the_list_does_not_matter() {
        let mut presets = LimiterSettings::default().presets;
        presets.reverse();
        let p = find_preset(&presets, "openai", "gpt-4o-mini-x").unwrap();
        assert_eq!(p.requests_per_window, 300);
    }
}
