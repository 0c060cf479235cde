//! Cache keys that are byte-for-byte the Python original's.
//!
//! The original hashes `json.dumps(obj, sort_keys=True)` of `{max_tokens, messages, model,
//! temperature}`. To share entries with Python processes the preimage has to be reproduced
//! exactly, escaping and number formatting included (`shared/PROTOCOL.md`, section A):
//! separators `", "` and `": "`, keys sorted by code point at every level, everything outside
//! printable ASCII escaped as `\uxxxx` (astral characters as a surrogate pair, 0x7F too, `/`
//! not), and floats as Python's `repr`. Parameters the original ignored (`extra`) join the same
//! object under the same rules, so a request that has none still hashes like Python's while
//! requests that differ only in, say, `response_format` no longer share an answer.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::client::{LlmError, LlmRequest, Message, Temperature};

/// Top-level fields of the original's preimage; `extra` may not repeat them.
const CORE_FIELDS: [&str; 4] = ["max_tokens", "messages", "model", "temperature"];
/// Fields of the original's messages; a message's `extra` may not repeat them.
const MESSAGE_FIELDS: [&str; 2] = ["content", "role"];

/// The exact bytes the cache key hashes (ASCII, since every other character is escaped).
pub fn preimage(request: &LlmRequest) -> Result<String, LlmError> {
    let mut out = String::with_capacity(128 + approx_len(request));
    write_request(&mut out, request)?;
    Ok(out)
}

/// The 64-hex-digit sha256 of the request's preimage: the part after `<prefix>:` in the key.
pub fn request_hash(request: &LlmRequest) -> Result<String, LlmError> {
    Ok(sha256_hex(preimage(request)?.as_bytes()))
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn approx_len(request: &LlmRequest) -> usize {
    request
        .messages
        .iter()
        .map(|m| m.content.len() + m.role.len() + 32)
        .sum::<usize>()
        + request.model.len()
}

/// One value of the top-level object, before sorting by key.
enum Field<'a> {
    MaxTokens(u64),
    Messages(&'a [Message]),
    Model(&'a str),
    Temperature(Temperature),
    Extra(&'a Value),
}

fn write_request(out: &mut String, r: &LlmRequest) -> Result<(), LlmError> {
    if let Some(k) = r.extra.keys().find(|k| CORE_FIELDS.contains(&k.as_str())) {
        return Err(LlmError::InvalidRequest(format!(
            "extra parameter {k:?} repeats a core field; set it on the request itself"
        )));
    }
    let mut fields: Vec<(&str, Field<'_>)> = vec![
        ("max_tokens", Field::MaxTokens(r.max_tokens)),
        ("messages", Field::Messages(&r.messages)),
        ("model", Field::Model(&r.model)),
        ("temperature", Field::Temperature(r.temperature)),
    ];
    fields.extend(r.extra.iter().map(|(k, v)| (k.as_str(), Field::Extra(v))));
    // Rust orders `str` by UTF-8 bytes, which is code-point order: Python's `sorted`.
    fields.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (name, field)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(out, name);
        out.push_str(": ");
        match field {
            Field::MaxTokens(n) => {
                let _ = write!(out, "{n}");
            }
            Field::Messages(messages) => write_messages(out, messages)?,
            Field::Model(m) => write_str(out, m),
            Field::Temperature(Temperature::Int(i)) => {
                let _ = write!(out, "{i}");
            }
            Field::Temperature(Temperature::Float(f)) => {
                if !f.is_finite() {
                    return Err(LlmError::InvalidRequest(format!(
                        "temperature must be a finite number, not {f}"
                    )));
                }
                write_float(out, *f);
            }
            Field::Extra(v) => write_value(out, v),
        }
    }
    out.push('}');
    Ok(())
}

fn write_messages(out: &mut String, messages: &[Message]) -> Result<(), LlmError> {
    out.push('[');
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if m.extra.is_empty() {
            // The original's shape; the common case needs no sorting.
            out.push_str("{\"content\": ");
            write_str(out, &m.content);
            out.push_str(", \"role\": ");
            write_str(out, &m.role);
            out.push('}');
            continue;
        }
        if let Some(k) = m
            .extra
            .keys()
            .find(|k| MESSAGE_FIELDS.contains(&k.as_str()))
        {
            return Err(LlmError::InvalidRequest(format!(
                "message extra field {k:?} repeats role or content"
            )));
        }
        let content = Value::String(m.content.clone());
        let role = Value::String(m.role.clone());
        let mut fields: Vec<(&str, &Value)> = vec![("content", &content), ("role", &role)];
        fields.extend(m.extra.iter().map(|(k, v)| (k.as_str(), v)));
        fields.sort_by(|a, b| a.0.cmp(b.0));
        write_object(out, fields.into_iter());
    }
    out.push(']');
    Ok(())
}

/// Writes any JSON value as `json.dumps(v, sort_keys=True)` would.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(f) = n.as_f64() {
                // serde_json numbers are always finite.
                write_float(out, f);
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // Sorted here, whatever order the map keeps (serde_json's `preserve_order` may be
            // switched on by another crate in the build).
            let mut fields: Vec<(&str, &Value)> =
                map.iter().map(|(k, v)| (k.as_str(), v)).collect();
            fields.sort_by(|a, b| a.0.cmp(b.0));
            write_object(out, fields.into_iter());
        }
    }
}

fn write_object<'a>(out: &mut String, fields: impl Iterator<Item = (&'a str, &'a Value)>) {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(out, k);
        out.push_str(": ");
        write_value(out, v);
    }
    out.push('}');
}

/// Writes a string literal as Python's `json.dumps` with `ensure_ascii=True` does.
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let push_u = |out: &mut String, unit: u32| {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((unit >> shift) & 0xF) as usize] as char);
        }
    };
    out.push('"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7F).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[run_start..i]);
        if b < 0x80 {
            match b {
                b'"' => out.push_str("\\\""),
                b'\\' => out.push_str("\\\\"),
                b'\n' => out.push_str("\\n"),
                b'\r' => out.push_str("\\r"),
                b'\t' => out.push_str("\\t"),
                0x08 => out.push_str("\\b"),
                0x0C => out.push_str("\\f"),
                _ => push_u(out, b.into()),
            }
            i += 1;
        } else {
            // `i` is at a character boundary: every byte before it was ASCII or a whole
            // character skipped below.
            let c = s[i..].chars().next().unwrap_or('\u{FFFD}');
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                push_u(out, (*unit).into());
            }
            i += c.len_utf8();
        }
        run_start = i;
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

/// Writes a finite float as Python's `repr` (and so `json.dumps`) does: the shortest digits
/// that read back to the same double; positional notation when the decimal exponent is in
/// -4..16, else `d.ddde±XX`; a positional integer keeps `.0`.
pub fn write_float(out: &mut String, f: f64) {
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    if negative {
        out.push('-');
    }
    // Python's rule is on `decpt` (value = 0.d1d2… × 10^decpt): exponent form when
    // decpt <= -4 or decpt > 16.
    let decpt = exp + 1;
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - n) as usize));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr(f: f64) -> String {
        let mut s = String::new();
        write_float(&mut s, f);
        s
    }

    #[test]
    fn floats_print_as_python_repr() {
        // (bits as hex float, Python's repr), from CPython 3.11.
        let cases: &[(f64, &str)] = &[
            (0.7, "0.7"),
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1.5e-07, "1.5e-07"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.5e-323, "1.5e-323"),
            (9007199254740993.0, "9007199254740992.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (-2.5, "-2.5"),
            (1e22, "1e+22"),
            (1e21, "1e+21"),
            (2.2250738585072014e-308, "2.2250738585072014e-308"),
            (4.35, "4.35"),
            (999999999999999.9, "999999999999999.9"),
            (9999999999999998.0, "9999999999999998.0"),
        ];
        for (f, want) in cases {
            assert_eq!(repr(*f), *want, "{f:e}");
        }
    }

    #[test]
    fn strings_escape_as_python_ensure_ascii() {
        let mut s = String::new();
        write_str(
            &mut s,
            "\u{7f}/\u{2028}\u{1F600}\u{0}é\"\\\n\r\t\u{8}\u{c}\u{1f} ~",
        );
        assert_eq!(
            s,
            r#""\u007f/\u2028\ud83d\ude00\u0000\u00e9\"\\\n\r\t\b\f\u001f ~""#
        );
    }

    #[test]
    fn protocol_vectors() {
        let hello = LlmRequest::new("gpt-4o", vec![Message::user("Hello")]);
        assert_eq!(
            preimage(&hello).unwrap(),
            r#"{"max_tokens": 4000, "messages": [{"content": "Hello", "role": "user"}], "model": "gpt-4o", "temperature": 0.7}"#
        );
        assert_eq!(
            request_hash(&hello).unwrap(),
            "cf24cce1931be48661fdf416f62a75a0cdda069d535f1cd5f560ff12afa4480f"
        );
        assert_eq!(
            request_hash(&hello.clone().temperature(1.0)).unwrap(),
            "aa5f7b544c39ccef4c6896f5127cf10b95350c21e03fce909a74c7797cdbc9d7"
        );
        let two = LlmRequest::new(
            "gpt-5",
            vec![
                Message::system("You are a helpful assistant"),
                Message::user("Say 'Hello World' and nothing else"),
            ],
        )
        .max_tokens(50);
        assert_eq!(
            request_hash(&two).unwrap(),
            "a8ff65bada3f16123fa72be1f4eb598a7187646668b144d0865551d045957f5b"
        );
    }

    #[test]
    fn integer_zero_and_float_zero_differ() {
        let base = LlmRequest::new("gpt-4o", vec![Message::user("x")]);
        let int = preimage(&base.clone().temperature(0)).unwrap();
        let float = preimage(&base.temperature(0.0)).unwrap();
        assert!(int.ends_with("\"temperature\": 0}"), "{int}");
        assert!(float.ends_with("\"temperature\": 0.0}"), "{float}");
    }

    #[test]
    fn extras_are_sorted_among_the_core_fields() {
        let r = LlmRequest::new("m", vec![])
            .param("seed", serde_json::json!(7))
            .param(
                "response_format",
                serde_json::json!({"type": "json_object"}),
            )
            .param("top_p", serde_json::json!(0.5));
        assert_eq!(
            preimage(&r).unwrap(),
            r#"{"max_tokens": 4000, "messages": [], "model": "m", "response_format": {"type": "json_object"}, "seed": 7, "temperature": 0.7, "top_p": 0.5}"#
        );
    }

    #[test]
    fn bad_requests_are_refused_not_hashed() {
        let r = LlmRequest::new("m", vec![]).param("model", serde_json::json!("x"));
        assert!(matches!(preimage(&r), Err(LlmError::InvalidRequest(_))));
        let r = LlmRequest::new("m", vec![]).temperature(f64::NAN);
        assert!(matches!(preimage(&r), Err(LlmError::InvalidRequest(_))));
        let mut m = Message::user("x");
        m.extra.insert("role".into(), serde_json::json!("system"));
        assert!(preimage(&LlmRequest::new("m", vec![m])).is_err());
    }
}
