//! Hiding secrets in what is shown: a Redis URL may carry a password, and both the settings
//! (`config`, when printing or reporting a bad value) and the connection (when naming the
//! endpoint it failed to reach) show URLs. Kept apart from both so neither imports the other.

/// Removes any password (and username) from a Redis URL so it can be shown.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_none() {
                // `scheme:secret@host` without `//` parses with the secret in the path.
                if u.cannot_be_a_base() && raw.contains('@') {
                    return redact_unparsed(raw);
                }
                return u.to_string();
            }
            let _ = u.set_password(Some("REDACTED"));
            // The url crate percent-encodes `<` and `>`; write the marker readably.
            u.to_string().replacen(":REDACTED@", ":<redacted>@", 1)
        }
        Err(_) => redact_unparsed(raw),
    }
}

/// Not a URL: it may still hold a secret before an `@`; show only what follows it.
fn redact_unparsed(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((_, host)) => format!("<redacted>@{host}"),
        None => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("redis://user:hunter2@host:6379/1"),
            "redis://user:<redacted>@host:6379/1"
        );
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert!(!redact_url("garbage:hunter2@x").contains("hunter2"));
    }
}
