//! Every Redis key and channel name this project reads or writes, in one place.
//!
//! The Python original's layout (`shared/PROTOCOL.md`, section A) is reproduced byte for byte.
//! The extensions this project adds (section B) must match none of the patterns the original
//! scans, or its tools would count, read or delete them as their own:
//! - under the cache and pipeline prefixes, which the original scans (`<cache>:*` in its cache
//!   stats and `invalidate_all`; `<pipeline>:*` is how a Python reader finds cards, which the
//!   original keeps no list of), extension keys start with `<prefix>#` ([`EXTENSION_MARK`]):
//!   no key that starts with `<prefix>:` can equal one, and no `<prefix>:…` glob matches one;
//! - under the metrics and rate-limit prefixes, which the original reads only by exact key
//!   names, they live under an empty path segment (`<prefix>::…`), which no name produces.
//!
//! On Redis Cluster a script may only touch keys of one hash slot. The Python key names carry no
//! hash tags, so extension keys that a script must touch together with a Python key embed that
//! key's slot-deciding part as their own hash tag (see [`slot_tag`]). That is why names that go
//! into keys may not contain `{` or `}` (see [`validate_name`]).

use serde::{Deserialize, Serialize};

/// Default prefixes of the Python original.
pub const DEFAULT_CACHE_PREFIX: &str = "artemis:llm:cache";
/// Python's pipeline tracker prefix: documents, stages and event channels live under it.
pub const DEFAULT_PIPELINE_PREFIX: &str = "artemis:pipeline";
/// Python's rate limiter prefix: sliding-window sorted sets live under it.
pub const DEFAULT_RATELIMIT_PREFIX: &str = "artemis:ratelimit";
/// Python's metrics prefix: totals, daily hashes, counters and the time series live under it.
pub const DEFAULT_METRICS_PREFIX: &str = "artemis:metrics";

/// Longest card id, stage name, resource or identifier accepted for writing.
pub const MAX_NAME_BYTES: usize = 512;

/// What follows the cache or pipeline prefix in an extension key instead of the original's
/// `:`, so that none of the original's `<prefix>:*` patterns reaches it.
pub const EXTENSION_MARK: &str = "#";

/// A glob that matches exactly 64 lowercase hex digits (a sha256 in a cache key).
fn hex64_glob() -> String {
    "[0-9a-f]".repeat(64)
}

/// The four key prefixes; everything else is derived from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Prefixes {
    /// LLM response cache prefix (default [`DEFAULT_CACHE_PREFIX`]); must not contain `{` or `}`.
    pub cache: String,
    /// Pipeline tracker prefix (default [`DEFAULT_PIPELINE_PREFIX`]); must not contain `{` or `}`.
    pub pipeline: String,
    /// Rate limiter prefix (default [`DEFAULT_RATELIMIT_PREFIX`]); must not contain `{` or `}`.
    pub ratelimit: String,
    /// Metrics prefix (default [`DEFAULT_METRICS_PREFIX`]); must not contain `{` or `}`.
    pub metrics: String,
}

impl Default for Prefixes {
    fn default() -> Self {
        Self {
            cache: DEFAULT_CACHE_PREFIX.into(),
            pipeline: DEFAULT_PIPELINE_PREFIX.into(),
            ratelimit: DEFAULT_RATELIMIT_PREFIX.into(),
            metrics: DEFAULT_METRICS_PREFIX.into(),
        }
    }
}

/// A name that cannot be used in a key, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {name:?}: {reason}")]
pub struct InvalidName {
    /// What the name was meant to be (`"card id"`, `"stage name"`, `"model"`, …).
    pub kind: &'static str,
    /// The offending name, already made safe to print (control characters escaped).
    pub name: String,
    /// Which rule it broke, in words.
    pub reason: &'static str,
}

/// Checks a name (card id, stage name, model, resource, identifier) before it goes into a key
/// this project writes. Reading never validates: Python may have written anything.
pub fn validate_name(kind: &'static str, name: &str) -> Result<(), InvalidName> {
    let fail = |reason| {
        Err(InvalidName {
            kind,
            name: name.escape_debug().take(80).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return fail("longer than 512 bytes");
    }
    if name.chars().any(char::is_control) {
        return fail("contains control characters");
    }
    if name.contains(['{', '}']) {
        return fail("contains '{' or '}' (reserved for Redis Cluster hash tags)");
    }
    Ok(())
}

/// Validates a card id: a name that also may not contain `:stage:` (it would alias a stage key
/// of another card) nor start with `:` (the extension namespace).
pub fn validate_card_id(card_id: &str) -> Result<(), InvalidName> {
    validate_name("card id", card_id)?;
    let fail = |reason| {
        Err(InvalidName {
            kind: "card id",
            name: card_id.escape_debug().take(80).collect(),
            reason,
        })
    };
    if card_id.contains(":stage:") {
        return fail("contains ':stage:' (it would collide with a stage key)");
    }
    if card_id.starts_with(':') {
        return fail("starts with ':' (reserved for artemis-top's extension keys)");
    }
    Ok(())
}

/// The providers whose preset windows (`artemis:ratelimit:<p>:<p>:<model>:<identifier>`) the
/// original limits itself, with its own table (PROTOCOL A).
pub const ORIGINAL_RATELIMIT_PROVIDERS: [&str; 2] = ["openai", "anthropic"];

/// Whether `provider` is one of [`ORIGINAL_RATELIMIT_PROVIDERS`] (case-insensitive).
pub fn is_original_ratelimit_provider(provider: &str) -> bool {
    ORIGINAL_RATELIMIT_PROVIDERS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(provider))
}

/// Escapes the glob characters `* ? [ ] \` so that `s` matches only itself in a SCAN MATCH or
/// PSUBSCRIBE pattern.
pub fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The part of `key` that decides its Redis Cluster hash slot: the first non-empty `{…}` hash
/// tag, else the whole key. Wrapping the result in braces inside another key puts that key in
/// the same slot, provided the result contains no `}` (guaranteed for keys built from validated
/// names and brace-free prefixes).
pub fn slot_tag(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The Redis Cluster hash slot of `key` (CRC16/XMODEM of its [`slot_tag`], mod 16384), as
/// the driver computes it, to group keys by node for pipelined reads.
pub fn hash_slot(key: &str) -> u16 {
    use redis::cluster_routing::Slot;
    // The driver's `Slot` has no public number; a table built once from its public
    // constructor reads it back.
    static NUMBERS: std::sync::LazyLock<std::collections::HashMap<Slot, u16>> =
        std::sync::LazyLock::new(|| {
            (0..16_384)
                .filter_map(|n| Slot::new(n).map(|s| (s, n)))
                .collect()
        });
    NUMBERS
        .get(&Slot::for_key(key.as_bytes()))
        .copied()
        .unwrap_or_default()
}

/// Builds every key and channel name from the configured prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySpace {
    prefixes: Prefixes,
}

impl KeySpace {
    /// Key names under the given prefixes (not validated here: the configuration checks them).
    pub fn new(prefixes: Prefixes) -> Self {
        Self { prefixes }
    }

    /// The prefixes every name is built from.
    pub fn prefixes(&self) -> &Prefixes {
        &self.prefixes
    }

    // ---- LLM cache (PROTOCOL A) ----

    /// `artemis:llm:cache:<sha256 hex>`: one cached response.
    pub fn cache_entry(&self, hash_hex: &str) -> String {
        format!("{}:{hash_hex}", self.prefixes.cache)
    }

    /// Extension: `artemis:llm:cache#ns:<namespace>:<sha256 hex>`, a cached response that only
    /// requests of that namespace share. The plain key stays the Python one; the namespace is a
    /// key segment so one SCAN pattern finds exactly one namespace's entries (see
    /// [`Self::cache_namespace_scan_pattern`]). `namespace` must pass [`validate_name`].
    pub fn cache_namespaced_entry(&self, namespace: &str, hash_hex: &str) -> String {
        format!(
            "{}{EXTENSION_MARK}ns:{namespace}:{hash_hex}",
            self.prefixes.cache
        )
    }

    /// The original's SCAN pattern under the cache prefix (its `get_stats` counts and its
    /// `invalidate_all` deletes every match): no extension key may match it.
    pub fn cache_scan_pattern(&self) -> String {
        format!("{}:*", escape_glob(&self.prefixes.cache))
    }

    /// SCAN pattern for exactly the plain (Python-shared) entries: the prefix, one `:`, and 64
    /// lowercase hex digits, so namespaced entries, leases and foreign keys never match.
    pub fn cache_plain_scan_pattern(&self) -> String {
        format!("{}:{}", escape_glob(&self.prefixes.cache), hex64_glob())
    }

    /// SCAN pattern for exactly one namespace's entries. The fixed 64-hex-digit tail keeps
    /// namespace `a` from matching the entries of namespace `a:b`.
    pub fn cache_namespace_scan_pattern(&self, namespace: &str) -> String {
        format!(
            "{}{EXTENSION_MARK}ns:{}:{}",
            escape_glob(&self.prefixes.cache),
            escape_glob(namespace),
            hex64_glob()
        )
    }

    /// SCAN pattern for the entries of every namespace (again ending in exactly one hash).
    pub fn cache_all_namespaces_scan_pattern(&self) -> String {
        format!(
            "{}{EXTENSION_MARK}ns:*:{}",
            escape_glob(&self.prefixes.cache),
            hex64_glob()
        )
    }

    /// Extension: `artemis:llm:cache#lease:{<entry key>}`, the short lease that lets one
    /// process fetch an answer while others wait. Same slot as the entry.
    pub fn cache_lease(&self, hash_hex: &str) -> String {
        self.cache_lease_for(&self.cache_entry(hash_hex))
    }

    /// The lease of any entry key, plain or namespaced; same slot as the entry.
    pub fn cache_lease_for(&self, entry_key: &str) -> String {
        format!(
            "{}{EXTENSION_MARK}lease:{{{}}}",
            self.prefixes.cache,
            slot_tag(entry_key)
        )
    }

    // ---- Pipeline tracker (PROTOCOL A) ----

    /// `artemis:pipeline:<card_id>`: the pipeline document.
    pub fn pipeline(&self, card_id: &str) -> String {
        format!("{}:{card_id}", self.prefixes.pipeline)
    }

    /// `artemis:pipeline:<card_id>:stage:<stage>`: one stage document.
    pub fn stage(&self, card_id: &str, stage: &str) -> String {
        format!("{}:{card_id}:stage:{stage}", self.prefixes.pipeline)
    }

    /// SCAN pattern for all stage documents of one card (glob characters in the id escaped).
    pub fn stage_scan_pattern(&self, card_id: &str) -> String {
        format!(
            "{}:{}:stage:*",
            escape_glob(&self.prefixes.pipeline),
            escape_glob(card_id)
        )
    }

    /// SCAN pattern that finds Python-written pipeline documents (and stage documents, which the
    /// reader filters out). A Python reader finds cards with the same pattern, which is why no
    /// extension key starts with `<pipeline>:`.
    pub fn pipeline_scan_pattern(&self) -> String {
        format!("{}:*", escape_glob(&self.prefixes.pipeline))
    }

    /// If `key` is a pipeline document key, the card id in it (stage and extension keys give
    /// `None`).
    pub fn card_id_of_pipeline_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        let rest = key
            .strip_prefix(&self.prefixes.pipeline)?
            .strip_prefix(':')?;
        if rest.is_empty() || rest.starts_with(':') || rest.contains(":stage:") {
            return None;
        }
        Some(rest)
    }

    /// If `key` is a stage document key, its card id and stage name (split at the first
    /// `:stage:`, which card ids this project writes cannot contain).
    pub fn card_and_stage_of_stage_key<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key
            .strip_prefix(&self.prefixes.pipeline)?
            .strip_prefix(':')?;
        if rest.starts_with(':') {
            return None;
        }
        let (card, stage) = rest.split_once(":stage:")?;
        if card.is_empty() || stage.is_empty() {
            return None;
        }
        Some((card, stage))
    }

    /// `artemis:pipeline:events:<card_id>`: the pub/sub channel of one card.
    pub fn events_channel(&self, card_id: &str) -> String {
        format!("{}:events:{card_id}", self.prefixes.pipeline)
    }

    /// PSUBSCRIBE pattern for every card's events channel.
    pub fn events_channel_pattern(&self) -> String {
        format!("{}:events:*", escape_glob(&self.prefixes.pipeline))
    }

    /// The card id in an events channel name.
    pub fn card_id_of_channel<'c>(&self, channel: &'c str) -> Option<&'c str> {
        channel
            .strip_prefix(&self.prefixes.pipeline)?
            .strip_prefix(":events:")
    }

    /// Extension: `artemis:pipeline#index`, sorted set of card ids written by this project,
    /// score = the card's last write (epoch s), so an entry leaves the index when the card's
    /// documents expire.
    pub fn pipeline_index(&self) -> String {
        format!("{}{EXTENSION_MARK}index", self.prefixes.pipeline)
    }

    /// Extension: `artemis:pipeline#history:{artemis:pipeline:<card>}`, capped stream of one
    /// card's events, in the slot of its pipeline document so that one script can update the
    /// document and append the event.
    pub fn event_history(&self, card_id: &str) -> String {
        let doc = self.pipeline(card_id);
        format!(
            "{}{EXTENSION_MARK}history:{{{}}}",
            self.prefixes.pipeline,
            slot_tag(&doc)
        )
    }

    // ---- Rate limiter (PROTOCOL A) ----

    /// `artemis:ratelimit:<resource>:<identifier>`: the sliding-window log.
    pub fn ratelimit(&self, resource: &str, identifier: &str) -> String {
        format!("{}:{resource}:{identifier}", self.prefixes.ratelimit)
    }

    /// `artemis:ratelimit:<provider>:<provider>:<model>:<identifier>`: the window of a preset
    /// limit. The original's preset limiters use the prefix `artemis:ratelimit:<provider>` and
    /// the resource `<provider>:<model>`, hence the doubled provider segment; reproducing it is
    /// what lets Python and Rust processes share one window.
    pub fn ratelimit_preset(&self, provider: &str, model: &str, identifier: &str) -> String {
        format!(
            "{}:{provider}:{provider}:{model}:{identifier}",
            self.prefixes.ratelimit
        )
    }

    /// Extension: the token weights of a window's requests (same slot as the window): a sorted
    /// set, score = admission time like the window's, member = `<request id>:<tokens>`.
    pub fn ratelimit_tokens(&self, window_key: &str) -> String {
        format!(
            "{}::tokens:{{{}}}",
            self.prefixes.ratelimit,
            slot_tag(window_key)
        )
    }

    /// Extension: the running sum of the weights in [`Self::ratelimit_tokens`] (an integer
    /// string, same slot), so a check never has to add up the whole window.
    pub fn ratelimit_token_sum(&self, window_key: &str) -> String {
        format!(
            "{}::tokensum:{{{}}}",
            self.prefixes.ratelimit,
            slot_tag(window_key)
        )
    }

    /// Extension: hash of the limits in force, field = window key, value = JSON limits.
    pub fn ratelimit_registry(&self) -> String {
        format!("{}::registry", self.prefixes.ratelimit)
    }

    /// Extension: sorted set of the limiter processes seen recently, member = a random
    /// instance id, score = when it last checked (epoch seconds): the default `local`
    /// failure-policy share is 1/its count.
    pub fn ratelimit_presence(&self) -> String {
        format!("{}::processes", self.prefixes.ratelimit)
    }

    /// SCAN pattern of every window under the rate-limit prefix (extension keys included:
    /// filter them with [`Self::is_ratelimit_extension`]).
    pub fn ratelimit_scan_pattern(&self) -> String {
        format!("{}:*", escape_glob(&self.prefixes.ratelimit))
    }

    /// Whether `key` is one of the limiter's extension keys (`<prefix>::…`), never a window.
    pub fn is_ratelimit_extension(&self, key: &str) -> bool {
        key.strip_prefix(self.prefixes.ratelimit.as_str())
            .is_some_and(|rest| rest.starts_with("::"))
    }

    // ---- Metrics (PROTOCOL A) ----

    /// `<metrics>:timeseries:pipelines`: sorted set of completed pipelines, member JSON, score
    /// epoch seconds.
    pub fn metrics_timeseries(&self) -> String {
        format!("{}:timeseries:pipelines", self.prefixes.metrics)
    }

    /// `<metrics>:total`: hash of all-time pipeline totals (`pipelines_completed`, `total_cost`,
    /// `total_duration`).
    pub fn metrics_total(&self) -> String {
        format!("{}:total", self.prefixes.metrics)
    }

    /// `daily:<YYYY-MM-DD>` on the local date.
    pub fn metrics_daily(&self, date: chrono::NaiveDate) -> String {
        format!(
            "{}:daily:{}",
            self.prefixes.metrics,
            date.format("%Y-%m-%d")
        )
    }

    /// `<metrics>:status:<status>`: string counter of pipelines that ended in `status`
    /// (lowercased here, as Python does).
    pub fn metrics_status(&self, status: &str) -> String {
        format!("{}:status:{}", self.prefixes.metrics, status.to_lowercase())
    }

    /// SCAN pattern for the pipeline status counters (`status:<status>`), whose names the
    /// original keeps no index of.
    pub fn metrics_status_scan_pattern(&self) -> String {
        format!("{}:status:*", escape_glob(&self.prefixes.metrics))
    }

    /// `<metrics>:llm`: hash of all-time LLM request, token, cache and cost totals.
    pub fn metrics_llm(&self) -> String {
        format!("{}:llm", self.prefixes.metrics)
    }

    /// `<metrics>:llm:<provider>`: hash of `requests` and `cost` for one provider.
    pub fn metrics_llm_provider(&self, provider: &str) -> String {
        format!("{}:llm:{provider}", self.prefixes.metrics)
    }

    /// `<metrics>:llm:model:<model>`: hash of `requests` and `cost` for one model.
    pub fn metrics_llm_model(&self, model: &str) -> String {
        format!("{}:llm:model:{model}", self.prefixes.metrics)
    }

    /// SCAN pattern for the per-provider and per-model LLM hashes.
    pub fn metrics_llm_scan_pattern(&self) -> String {
        format!("{}:llm:*", escape_glob(&self.prefixes.metrics))
    }

    /// Extension: set of the names of one kind (`providers`, `models`, `developers`,
    /// `statuses`, `review_statuses`) that this project has written, so readers need no SCAN.
    pub fn metrics_index(&self, kind: &str) -> String {
        format!("{}::index:{kind}", self.prefixes.metrics)
    }

    /// Extension: marks that the metrics write `op_id` has been applied to the keys of one slot,
    /// the slot of `key` (so a replay of the same write after a lost reply changes nothing).
    /// Short-lived (the metrics' replay guard, one hour).
    pub fn metrics_op_marker(&self, key: &str, op_id: &str) -> String {
        format!(
            "{}::op:{{{}}}:{op_id}",
            self.prefixes.metrics,
            slot_tag(key)
        )
    }

    /// Extension: `<metrics>::bucket:<resolution>:<start>`, the hash of one time bucket
    /// (`resolution` is `m` for a minute, `h` for an hour; `start` is the bucket's first second,
    /// Unix time), with one field per measure and name (see `metrics::history`). One key per
    /// period, so the number of keys is bounded by the retention (EXPIRE) whatever the traffic.
    pub fn metrics_bucket(&self, resolution: &str, start_epoch: i64) -> String {
        format!(
            "{}::bucket:{resolution}:{start_epoch}",
            self.prefixes.metrics
        )
    }

    /// `<metrics>:code_review:<developer>`: hash of one developer's review totals.
    pub fn metrics_code_review(&self, developer: &str) -> String {
        format!("{}:code_review:{developer}", self.prefixes.metrics)
    }

    /// `<metrics>:code_review:status:<status>`: string counter of reviews that ended in
    /// `status` (lowercased here, as Python does).
    pub fn metrics_code_review_status(&self, status: &str) -> String {
        format!(
            "{}:code_review:status:{}",
            self.prefixes.metrics,
            status.to_lowercase()
        )
    }

    /// SCAN pattern for every key of the original's layout under the metrics prefix (one `:`,
    /// then anything but `:`): one walk finds the status counters, the provider and model
    /// hashes and the code review keys, and skips this project's extension keys (`<metrics>::…`,
    /// e.g. the time buckets and write markers).
    pub fn metrics_names_scan_pattern(&self) -> String {
        format!("{}:[^:]*", escape_glob(&self.prefixes.metrics))
    }

    /// SCAN pattern for code review hashes and counters.
    pub fn metrics_code_review_scan_pattern(&self) -> String {
        format!("{}:code_review:*", escape_glob(&self.prefixes.metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_layout_is_reproduced() {
        let k = KeySpace::default();
        assert_eq!(k.cache_entry("ab"), "artemis:llm:cache:ab");
        assert_eq!(k.pipeline("card-1"), "artemis:pipeline:card-1");
        assert_eq!(
            k.stage("card-1", "development"),
            "artemis:pipeline:card-1:stage:development"
        );
        assert_eq!(k.events_channel("c"), "artemis:pipeline:events:c");
        assert_eq!(
            k.ratelimit("openai:gpt-4o", "default"),
            "artemis:ratelimit:openai:gpt-4o:default"
        );
        assert_eq!(k.metrics_total(), "artemis:metrics:total");
        assert_eq!(
            k.metrics_daily(chrono::NaiveDate::from_ymd_opt(2026, 1, 2).unwrap()),
            "artemis:metrics:daily:2026-01-02"
        );
        assert_eq!(
            k.metrics_status("COMPLETED"),
            "artemis:metrics:status:completed"
        );
        assert_eq!(
            k.metrics_llm_model("gpt-4o"),
            "artemis:metrics:llm:model:gpt-4o"
        );
        assert_eq!(
            k.metrics_code_review_status("PASS"),
            "artemis:metrics:code_review:status:pass"
        );
    }

    #[test]
    fn cache_namespaces_are_key_segments_that_scan_exactly() {
        let k = KeySpace::default();
        let h = "a".repeat(64);
        assert_eq!(k.cache_entry(&h), format!("artemis:llm:cache:{h}"));
        assert_eq!(
            k.cache_namespaced_entry("t:1", &h),
            format!("artemis:llm:cache#ns:t:1:{h}")
        );
        assert_eq!(
            k.cache_lease(&h),
            format!("artemis:llm:cache#lease:{{artemis:llm:cache:{h}}}")
        );
        let ns_key = k.cache_namespaced_entry("a", &h);
        assert_eq!(slot_tag(&k.cache_lease_for(&ns_key)), ns_key);
        assert!(
            k.cache_namespace_scan_pattern("a*")
                .starts_with(r"artemis:llm:cache#ns:a\*:[0-9a-f]")
        );
        assert!(
            k.cache_plain_scan_pattern()
                .ends_with(&"[0-9a-f]".repeat(64))
        );
    }

    #[test]
    fn no_extension_key_is_under_a_prefix_the_original_scans() {
        // The original scans `artemis:llm:cache:*` (cache stats, invalidate_all),
        // `artemis:pipeline:<card>:stage:*`, and a Python reader finds cards with
        // `artemis:pipeline:*`: every such match starts with `<prefix>:`.
        let k = KeySpace::default();
        let h = "a".repeat(64);
        let ns = k.cache_namespaced_entry("team", &h);
        for key in [
            ns.clone(),
            k.cache_lease(&h),
            k.cache_lease_for(&ns),
            k.pipeline_index(),
            k.event_history("card-1"),
            k.event_history(""),
        ] {
            assert!(!key.starts_with("artemis:llm:cache:"), "{key}");
            assert!(!key.starts_with("artemis:pipeline:"), "{key}");
        }
        // Our own patterns still find exactly our keys.
        assert!(
            k.cache_all_namespaces_scan_pattern()
                .starts_with("artemis:llm:cache#ns:")
        );
        assert_eq!(slot_tag(&k.cache_lease(&h)), k.cache_entry(&h));
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(escape_glob(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
        let k = KeySpace::default();
        assert_eq!(k.stage_scan_pattern("c*"), r"artemis:pipeline:c\*:stage:*");
    }

    #[test]
    fn extension_keys_share_the_slot_of_their_partner() {
        let k = KeySpace::default();
        assert_eq!(
            k.event_history("card-1"),
            "artemis:pipeline#history:{artemis:pipeline:card-1}"
        );
        assert_eq!(slot_tag(&k.event_history("card-1")), k.pipeline("card-1"));
        let window = k.ratelimit("openai:gpt-4o", "u1");
        assert_eq!(slot_tag(&k.ratelimit_tokens(&window)), window);
        assert_eq!(slot_tag(&k.ratelimit_token_sum(&window)), window);
        assert_eq!(
            k.ratelimit_preset("openai", "gpt-4o", "default"),
            "artemis:ratelimit:openai:openai:gpt-4o:default"
        );
        assert_eq!(slot_tag("a{}b{c}"), "a{}b{c}");
        assert_eq!(slot_tag("a{x}b"), "x");
    }

    #[test]
    fn hash_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot("foo"), 12182);
        assert_eq!(hash_slot("123456789"), 12739);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        // The tag this module wraps into other keys decides the slot as the driver sees it.
        for key in ["a{}b{c}", "a{x}b", "{", "}{", "{a}{b}", "plain"] {
            assert_eq!(hash_slot(slot_tag(key)), hash_slot(key), "{key}");
        }
        let k = KeySpace::default();
        assert_eq!(
            hash_slot(&k.event_history("card-1")),
            hash_slot(&k.pipeline("card-1"))
        );
    }

    #[test]
    fn card_ids_that_would_collide_are_refused() {
        assert!(validate_card_id("card-1").is_ok());
        assert!(validate_card_id("a:stage:b").is_err());
        assert!(validate_card_id(":index").is_err());
        assert!(validate_card_id("x{y}").is_err());
        assert!(validate_card_id("bad\u{1b}[31m").is_err());
        assert!(validate_card_id("").is_err());
        assert!(validate_card_id(&"x".repeat(513)).is_err());
        let err = validate_card_id("bad\u{1b}").unwrap_err().to_string();
        assert!(!err.contains('\u{1b}'), "{err}");
    }

    #[test]
    fn keys_parse_back() {
        let k = KeySpace::default();
        assert_eq!(k.card_id_of_pipeline_key("artemis:pipeline:c1"), Some("c1"));
        assert_eq!(
            k.card_id_of_pipeline_key("artemis:pipeline:c1:stage:x"),
            None
        );
        assert_eq!(k.card_id_of_pipeline_key("artemis:pipeline::index"), None);
        assert_eq!(k.card_id_of_pipeline_key(&k.pipeline_index()), None);
        assert_eq!(k.card_id_of_pipeline_key(&k.event_history("c1")), None);
        assert_eq!(
            k.card_and_stage_of_stage_key("artemis:pipeline:c1:stage:dev:x"),
            Some(("c1", "dev:x"))
        );
        assert_eq!(k.card_and_stage_of_stage_key("artemis:pipeline:c1"), None);
        assert_eq!(
            k.card_id_of_channel("artemis:pipeline:events:c1"),
            Some("c1")
        );
    }
}
