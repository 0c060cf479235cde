//! The cached value: PROTOCOL A's five-key JSON object, read strictly.
//!
//! Another process (a Python one, an older build, a tool) may have left anything under a cache
//! key. Serving a half-read or foreign value would hand the caller an answer to a question it
//! did not ask, so anything that is not exactly the five keys with the right types is refused
//! with the reason, and the caller treats it as a miss.

use serde::Deserialize;
use serde_json::Value;

use super::client::{LlmResponse, Usage};

/// The stored JSON for a response (compact; Python reads any valid JSON).
pub fn encode(response: &LlmResponse) -> Vec<u8> {
    // Serializing owned strings and a `Value` cannot fail.
    serde_json::to_vec(response).unwrap_or_default()
}

/// Reads a stored value; `Err` says why it is not a usable entry.
pub fn decode(bytes: &[u8]) -> Result<LlmResponse, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        content: String,
        model: String,
        provider: String,
        usage: Usage,
        raw_response: Value,
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8 (byte {})", e.valid_up_to()))?;
    let v: Strict = serde_json::from_str(text).map_err(|e| format!("not a cache entry: {e}"))?;
    Ok(LlmResponse {
        content: v.content,
        model: v.model,
        provider: v.provider,
        usage: v.usage,
        raw_response: v.raw_response,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_python_spelling() {
        let r = LlmResponse {
            content: "Hello World".into(),
            model: "gpt-4o-2024-08-06".into(),
            provider: "openai".into(),
            usage: Usage {
                prompt_tokens: 3,
                completion_tokens: 2,
                total_tokens: 5,
            },
            raw_response: serde_json::json!({"id": "x"}),
        };
        assert_eq!(decode(&encode(&r)).unwrap(), r);
        // As Python's json.dumps writes it (spaces, any key order).
        let py = br#"{"content": "Hi", "model": "gpt-4o", "provider": "openai", "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, "raw_response": null}"#;
        assert_eq!(decode(py).unwrap().content, "Hi");
    }

    #[test]
    fn anything_else_is_refused() {
        let good = r#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"raw_response":{}}"#;
        assert!(decode(good.as_bytes()).is_ok());
        let bad: &[&[u8]] = &[
            b"",
            b"not json",
            &good.as_bytes()[..good.len() - 1],
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"raw_response":{},"x":1}"#,
            br#"{"content":1,"model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2},"raw_response":{}}"#,
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":"1","completion_tokens":1,"total_tokens":2},"raw_response":{}}"#,
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":-1,"completion_tokens":1,"total_tokens":2},"raw_response":{}}"#,
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1.5,"completion_tokens":1,"total_tokens":2},"raw_response":{}}"#,
            br#"{"content":"a","model":"m","provider":"p","usage":{"prompt_tokens":1,"completion_tokens":1},"raw_response":{}}"#,
            br#"["content","model","provider","usage","raw_response"]"#,
            b"{\"content\":\"\xff\",\"model\":\"m\",\"provider\":\"p\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2},\"raw_response\":{}}",
        ];
        for b in bad {
            assert!(decode(b).is_err(), "{}", String::from_utf8_lossy(b));
        }
    }
}
