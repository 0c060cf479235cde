//! Preset limits chosen by provider and model id.
//!
//! Why it exists: the same window key must get the same limit in every process of a mixed
//! fleet, or one side refuses what the other admits. The original enforces its preset keys
//! (`artemis:ratelimit:<provider>:<provider>:<model>:<id>` for `openai` and `anthropic`) with a
//! table matched on the *exact* model string (PROTOCOL A): a dated id such as
//! `gpt-4o-2024-08-06` is "another OpenAI model" (50). So those two providers get exactly that
//! table, here and when a reader shows a Python-written window. Configured presets
//! (`[[limiter.presets]]`, longest model-id prefix wins, `""` the provider's fallback) exist
//! only for other providers, whose keys the original does not enforce.

use crate::config::LimitPreset;

pub use crate::keys::ORIGINAL_RATELIMIT_PROVIDERS as ORIGINAL_PROVIDERS;

/// Window of the original's presets, seconds.
pub const ORIGINAL_WINDOW_SECONDS: f64 = 60.0;

/// Whether `provider` is one the original enforces (case-insensitive).
pub fn is_original_provider(provider: &str) -> bool {
    crate::keys::is_original_ratelimit_provider(provider)
}

/// The original's requests per minute for `model` of `provider`, the model matched exactly;
/// `None` when the provider is not one of the original's.
pub fn original_requests_per_minute(provider: &str, model: &str) -> Option<u64> {
    if provider.eq_ignore_ascii_case("openai") {
        Some(match model {
            "gpt-4o" => 100,
            "gpt-4o-mini" => 300,
            _ => 50,
        })
    } else if provider.eq_ignore_ascii_case("anthropic") {
        Some(match model {
            "claude-sonnet-4-5" => 50,
            _ => 30,
        })
    } else {
        None
    }
}

/// The preset for `model` of `provider`: the original's exact table for `openai` and
/// `anthropic` (provider spelled lowercase, as the original writes its keys), else the longest
/// matching `model_prefix` among `presets` (provider compared case-insensitively, model prefix
/// case-sensitively as ids are); `None` when neither matches.
pub fn find_preset(presets: &[LimitPreset], provider: &str, model: &str) -> Option<LimitPreset> {
    if let Some(rpm) = original_requests_per_minute(provider, model) {
        return Some(LimitPreset {
            provider: provider.to_ascii_lowercase(),
            model_prefix: model.to_owned(),
            requests_per_window: rpm,
            tokens_per_window: None,
            window_seconds: ORIGINAL_WINDOW_SECONDS,
        });
    }
    presets
        .iter()
        .filter(|p| p.provider.eq_ignore_ascii_case(provider) && model.starts_with(&p.model_prefix))
        // Longest prefix wins; among equal prefixes the first listed wins.
        .fold(None, |best: Option<&LimitPreset>, p| match best {
            Some(b) if b.model_prefix.len() >= p.model_prefix.len() => Some(b),
            _ => Some(p),
        })
        .cloned()
}

/// The limit the original applies to a window key under the rate-limit prefix `prefix`, if
/// the key is one of its preset keys (`<prefix>:<provider>:<provider>:<model>:<identifier>`,
/// provider `openai` or `anthropic`): `(provider, model, identifier, requests per minute)`.
pub fn original_preset_of_key<'k>(
    prefix: &str,
    key: &'k str,
) -> Option<(&'k str, &'k str, &'k str, u64)> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(':')?;
    ORIGINAL_PROVIDERS.iter().find_map(|provider| {
        let after = rest
            .strip_prefix(provider)?
            .strip_prefix(':')?
            .strip_prefix(provider)?
            .strip_prefix(':')?;
        let (model, identifier) = after.rsplit_once(':')?;
        if model.is_empty() || identifier.is_empty() {
            return None;
        }
        let rpm = original_requests_per_minute(provider, model)?;
        Some((*provider, model, identifier, rpm))
    })
}

/// The first `[[limiter.limits]]` entry whose pattern matches the full window `key`.
pub fn configured_limit<'l>(
    limits: &'l [crate::config::WindowLimit],
    key: &str,
) -> Option<&'l crate::config::WindowLimit> {
    limits.iter().find(|l| glob_match(&l.pattern, key))
}

/// Redis-style glob: `*` any run, `?` one character, `\` escapes the next character.
/// Iterative with one backtrack point, so no pattern can make it exponential.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        let (lit, width) = match p.get(pi) {
            Some('\\') if pi + 1 < p.len() => (Some(p[pi + 1]), 2),
            Some('?') => (None, 1),
            Some(c) => (Some(*c), 1),
            None => (Some('\0'), 0),
        };
        let matches = pi < p.len() && lit.is_none_or(|c| c == t[ti]);
        if matches {
            pi += width;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpm(provider: &str, model: &str) -> Option<u64> {
        find_preset(&[], provider, model).map(|p| p.requests_per_window)
    }

    #[test]
    fn original_table_matches_the_model_exactly() {
        // (provider, model, the original's requests per minute)
        let table = [
            ("openai", "gpt-4o", 100),
            ("openai", "gpt-4o-mini", 300),
            ("openai", "gpt-4o-2024-08-06", 50),
            ("openai", "gpt-4o-mini-2024-07-18", 50),
            ("openai", "gpt-4", 50),
            ("openai", "gpt-5", 50),
            ("openai", "GPT-4o", 50),
            ("openai", "", 50),
            ("OpenAI", "gpt-4o", 100),
            ("anthropic", "claude-sonnet-4-5", 50),
            ("anthropic", "claude-sonnet-4-5-20250929", 30),
            ("anthropic", "claude-haiku-4-5", 30),
            ("anthropic", "claude-opus-4-1", 30),
            ("Anthropic", "claude-sonnet-4-5", 50),
        ];
        for (provider, model, want) in table {
            assert_eq!(rpm(provider, model), Some(want), "{provider} {model}");
            let p = find_preset(&[], provider, model).unwrap();
            assert_eq!(p.window_seconds, 60.0);
            assert_eq!(p.tokens_per_window, None);
        }
        assert_eq!(rpm("mistral", "large"), None);
    }

    #[test]
    fn configured_presets_serve_other_providers_by_longest_prefix() {
        let preset = |model_prefix: &str, rpm| LimitPreset {
            provider: "mistral".into(),
            model_prefix: model_prefix.into(),
            requests_per_window: rpm,
            tokens_per_window: None,
            window_seconds: 60.0,
        };
        let mut presets = vec![preset("", 10), preset("large", 20), preset("large-2", 30)];
        for _ in 0..2 {
            let find = |m: &str| find_preset(&presets, "Mistral", m).map(|p| p.requests_per_window);
            assert_eq!(find("large-2-2411"), Some(30));
            assert_eq!(find("large-latest"), Some(20));
            assert_eq!(find("small"), Some(10));
            presets.reverse();
        }
        // A configured preset never reaches the original's providers.
        let mut openai = preset("gpt-4o", 1);
        openai.provider = "openai".into();
        assert_eq!(
            find_preset(&[openai], "openai", "gpt-4o").map(|p| p.requests_per_window),
            Some(100)
        );
    }

    #[test]
    fn globs_match_like_redis() {
        for (pattern, text, want) in [
            (
                "artemis:ratelimit:search:*",
                "artemis:ratelimit:search:default",
                true,
            ),
            (
                "artemis:ratelimit:search:*",
                "artemis:ratelimit:searches:x",
                false,
            ),
            ("*:team-?", "a:b:team-1", true),
            ("*:team-?", "a:b:team-12", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*", "", true),
            ("", "x", false),
            ("**x*y", "aaxbby", true),
        ] {
            assert_eq!(glob_match(pattern, text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn preset_keys_give_the_originals_limit() {
        let p = "artemis:ratelimit";
        assert_eq!(
            original_preset_of_key(p, "artemis:ratelimit:openai:openai:gpt-4o:default"),
            Some(("openai", "gpt-4o", "default", 100))
        );
        assert_eq!(
            original_preset_of_key(
                p,
                "artemis:ratelimit:anthropic:anthropic:claude-sonnet-4-5-20250929:team"
            ),
            Some(("anthropic", "claude-sonnet-4-5-20250929", "team", 30))
        );
        assert_eq!(
            original_preset_of_key(p, "artemis:ratelimit:openai:gpt-4o:default"),
            None
        );
        assert_eq!(
            original_preset_of_key(p, "artemis:ratelimit:search:default"),
            None
        );
        assert_eq!(original_preset_of_key(p, "other:openai:openai:m:d"), None);
    }
}
