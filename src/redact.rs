//! Hiding secrets in what is shown: a Redis URL may carry a password, and both the settings
//! (`config`, when printing or reporting a bad value) and the connection (when naming the
//! endpoint it failed to reach) show URLs. Kept apart from both so neither imports the other.
//!
//! Redaction is textual and errs on the side of hiding: anything between the start of a URL's
//! authority and its last `@` is treated as credentials, whether the URL parses or not
//! (`redis:/:pw@h:1`, `user:pw@host:port`, a password holding `@`, `:` or `/`), and a `pass`,
//! `password` or `auth` query parameter (redis-rs's unix-socket form) loses its value. The user
//! name before the first `:` is kept, as every other place shows it.

/// The marker written in place of a secret.
pub const MARKER: &str = "<redacted>";

/// Schemes that may precede credentials without `//` (`redis:pw@host` is still a URL to a
/// careless parser, and to the reader).
const SCHEMES: &[&str] = &["redis", "rediss", "unix", "redis+unix", "valkey", "valkeys"];

/// Query parameters whose value is a credential.
const SECRET_PARAMS: &[&str] = &["pass", "password", "auth", "requirepass"];

/// Removes any password from a Redis URL (or a bare `user:pw@host:port` node) so it can be
/// shown; a string without credentials comes back unchanged.
pub fn redact_url(raw: &str) -> String {
    let (start, well_formed) = authority_start(raw);
    let redacted = match raw[start..].rfind('@') {
        Some(at) => {
            let at = start + at;
            let creds = &raw[start..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:{MARKER}@{}", &raw[..start], &raw[at + 1..]),
                // `redis://name@host`: a user name alone, which is no secret. Without the `//`
                // (`redis:secret@host`) or holding a `/`, `?` or `#`, it is no user name a
                // parser would take, and more likely a password typed in the wrong place.
                None if well_formed && !creds.contains(['/', '?', '#']) => raw.to_owned(),
                None => format!("{}{MARKER}@{}", &raw[..start], &raw[at + 1..]),
            }
        }
        None => raw.to_owned(),
    };
    redact_params(&redacted)
}

/// Where a URL's credentials would start, and whether what precedes them is well formed:
/// after `scheme://` (well formed), after `scheme:` for a known scheme (not), else at the
/// beginning (a bare node `user:pw@host:port`, well formed).
fn authority_start(raw: &str) -> (usize, bool) {
    if let Some(i) = raw.find("://") {
        let scheme = &raw[..i];
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return (i + 3, true);
        }
    }
    if let Some((scheme, _)) = raw.split_once(':')
        && SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return (scheme.len() + 1, false);
    }
    (0, true)
}

/// `…?pass=secret&db=1` → `…?pass=<redacted>&db=1`.
fn redact_params(raw: &str) -> String {
    let Some((head, query)) = raw.split_once('?') else {
        return raw.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(k)) => {
                format!("{k}={MARKER}")
            }
            _ => p.to_owned(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
}

/// A node list (`--cluster-nodes`, `redis.cluster_nodes`) with every node redacted.
pub fn redact_nodes<S: AsRef<str>>(nodes: &[S]) -> Vec<String> {
    nodes.iter().map(|n| redact_url(n.as_ref())).collect()
}

/// Free text that may quote URLs or nodes (a driver's error message, a config value in an
/// error): every whitespace-separated word that holds an `@` or a `://` is redacted.
pub fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') || word.contains("://") {
            // Quotes and brackets around a URL are not part of it.
            let core = word
                .find(|c: char| !"\"'([{<`".contains(c))
                .unwrap_or(word.len());
            out.push_str(&word[..core]);
            out.push_str(&redact_url(&word[core..]));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form a URL or node can take; `secret` must be gone and `shown` kept.
    #[test]
    fn every_form_of_url_and_node_is_redacted() {
        let table: &[(&str, &str)] = &[
            // well-formed
            (
                "redis://user:hunter2@host:6379/1",
                "redis://user:<redacted>@host:6379/1",
            ),
            (
                "redis://:hunter2@host:6379",
                "redis://:<redacted>@host:6379",
            ),
            (
                "rediss://u:hunter2@h:6380/0",
                "rediss://u:<redacted>@h:6380/0",
            ),
            ("valkey://u:hunter2@h:1", "valkey://u:<redacted>@h:1"),
            // no credentials: unchanged
            ("redis://host:6379", "redis://host:6379"),
            ("redis://host:6379/2", "redis://host:6379/2"),
            ("unix:///tmp/redis.sock", "unix:///tmp/redis.sock"),
            ("host:7000", "host:7000"),
            // user only: no secret, kept
            ("redis://bob@host:1", "redis://bob@host:1"),
            // malformed
            ("redis:/:hunter2@h:1", "redis:/:<redacted>@h:1"),
            ("redis::hunter2@h:1", "redis::<redacted>@h:1"),
            ("redis:hunter2@h:1", "redis:<redacted>@h:1"),
            ("redis://u:hun/ter2@h:1/0", "redis://u:<redacted>@h:1/0"),
            ("redis://u:hunter2@", "redis://u:<redacted>@"),
            ("garbage:hunter2@x", "garbage:<redacted>@x"),
            // password holding @ and :
            ("redis://u:hun@ter:2@h:1", "redis://u:<redacted>@h:1"),
            ("redis://:a:b@c@h:1/0", "redis://:<redacted>@h:1/0"),
            // percent-encoded
            ("redis://u:hun%40ter2@h:1", "redis://u:<redacted>@h:1"),
            ("redis://u%3Ax:hunter2@h:1", "redis://u%3Ax:<redacted>@h:1"),
            // IPv6
            (
                "redis://u:hunter2@[::1]:6379/0",
                "redis://u:<redacted>@[::1]:6379/0",
            ),
            ("redis://[::1]:6379", "redis://[::1]:6379"),
            // unix sockets: credentials in the query
            (
                "unix:///tmp/r.sock?db=1&pass=hunter2",
                "unix:///tmp/r.sock?db=1&pass=<redacted>",
            ),
            (
                "redis+unix:///tmp/r.sock?password=hunter2&user=bob",
                "redis+unix:///tmp/r.sock?password=<redacted>&user=bob",
            ),
            // bare cluster nodes
            ("user:hunter2@host:7000", "user:<redacted>@host:7000"),
            (":hunter2@host:7000", ":<redacted>@host:7000"),
            ("a/b@host:7000", "<redacted>@host:7000"),
        ];
        for (raw, shown) in table {
            let got = redact_url(raw);
            assert_eq!(&got, shown, "redact_url({raw:?})");
            assert!(
                !got.contains("hunter2") && !got.contains("ter2"),
                "{raw:?} → {got}"
            );
        }
    }

    #[test]
    fn node_lists_are_redacted_node_by_node() {
        let nodes = ["a:1", "u:hunter2@b:2", "redis://:hunter2@c:3"];
        assert_eq!(
            redact_nodes(&nodes),
            ["a:1", "u:<redacted>@b:2", "redis://:<redacted>@c:3"]
        );
    }

    #[test]
    fn urls_inside_free_text_are_redacted() {
        let got = redact_text(
            "failed to connect to \"redis://u:hunter2@h:1/0\" (node u:hunter2@h2:2): refused",
        );
        assert!(!got.contains("hunter2"), "{got}");
        assert!(got.contains("redis://u:<redacted>@h:1/0"), "{got}");
        assert!(got.contains("u:<redacted>@h2:2"), "{got}");
        assert_eq!(
            redact_text("mail bob@example.com now"),
            "mail bob@example.com now"
        );
    }
}
