//! The cache key's preimage against Python's `json.dumps(obj, sort_keys=True)` rules.
//!
//! The property test compares the library's preimage with a reference serializer written here
//! from the rules alone (UTF-16 code units, code-point key order, Python float `repr` rebuilt
//! from positional digits), over random Unicode (astral characters, controls, quotes,
//! backslashes, 0x7F), random floats and random extra parameters. A second test checks a
//! sample against CPython itself when `python3` is on the machine; the property test does not
//! depend on it.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use artemis::cache::key::preimage;
use artemis::cache::{LlmRequest, Message, Temperature};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Number, Value};

// ---- the reference ----

fn ref_string(out: &mut String, s: &str) {
    out.push('"');
    for unit in s.encode_utf16() {
        match unit {
            0x22 => out.push_str("\\\""),
            0x5C => out.push_str("\\\\"),
            0x0A => out.push_str("\\n"),
            0x0D => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0C => out.push_str("\\f"),
            0x20..=0x7E => out.push(unit as u8 as char),
            _ => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
}

/// Python's float repr, rebuilt from Rust's positional (never exponential) `Display`.
fn ref_float(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let shown = format!("{}", f.abs());
    let (int_part, frac_part) = shown.split_once('.').unwrap_or((&shown, ""));
    let all: String = format!("{int_part}{frac_part}");
    let lead = all.len() - all.trim_start_matches('0').len();
    let digits = all
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_string();
    // value = 0.DIGITS × 10^decpt
    let decpt = int_part.len() as i64 - lead as i64;
    let sign = if f < 0.0 { "-" } else { "" };
    if decpt <= -4 || decpt > 16 {
        let exp = decpt - 1;
        let mantissa = if digits.len() == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        let esign = if exp < 0 { "-" } else { "+" };
        format!("{sign}{mantissa}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt as usize >= digits.len() {
        format!(
            "{sign}{digits}{}.0",
            "0".repeat(decpt as usize - digits.len())
        )
    } else {
        let (a, b) = digits.split_at(decpt as usize);
        format!("{sign}{a}.{b}")
    }
}

fn ref_dumps(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            _ => out.push_str(&ref_float(n.as_f64().unwrap())),
        },
        Value::String(s) => ref_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                ref_dumps(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| k.chars().map(u32::from).collect::<Vec<u32>>());
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                ref_string(out, k);
                out.push_str(": ");
                ref_dumps(out, &map[k]);
            }
            out.push('}');
        }
    }
}

/// The object Python would hash for the request, built from its parts.
fn python_object(r: &LlmRequest) -> Value {
    let mut obj = Map::new();
    for (k, v) in &r.extra {
        obj.insert(k.clone(), v.clone());
    }
    obj.insert("max_tokens".into(), Value::from(r.max_tokens));
    obj.insert("model".into(), Value::from(r.model.clone()));
    obj.insert(
        "temperature".into(),
        match r.temperature {
            Temperature::Int(i) => Value::from(i),
            Temperature::Float(f) => Value::Number(Number::from_f64(f).unwrap()),
        },
    );
    let messages = r
        .messages
        .iter()
        .map(|m| {
            let mut o = Map::new();
            for (k, v) in &m.extra {
                o.insert(k.clone(), v.clone());
            }
            o.insert("role".into(), Value::from(m.role.clone()));
            o.insert("content".into(), Value::from(m.content.clone()));
            Value::Object(o)
        })
        .collect();
    obj.insert("messages".into(), Value::Array(messages));
    Value::Object(obj)
}

// ---- generators ----

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => (0x20u8..0x7F).prop_map(char::from),
        1 => (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
        1 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{80}', '\u{2028}', '\u{fffd}', '\u{ffff}']),
        1 => (0x10000u32..=0x10FFFF).prop_filter_map("scalar", char::from_u32),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any_char(), 0..24).prop_map(|cs| cs.into_iter().collect())
}

fn finite_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
        prop::sample::select(vec![
            0.0, -0.0, 0.7, 1.0, 2.0, 1e-5, 1e-4, 1e15, 1e16, 1e22, 0.1, 5e-324, 123.456, 1.5
        ]),
        (-1000i32..1000).prop_map(|i| f64::from(i) / 8.0),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite_float().prop_map(|f| Value::Number(Number::from_f64(f).unwrap())),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn extras(reserved: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map(
        prop_oneof![
            text(),
            prop::sample::select(vec![
                "response_format".to_string(),
                "tools".into(),
                "top_p".into(),
                "stop".into(),
                "seed".into(),
                "name".into(),
                "a".into(),
                "z".into(),
            ]),
        ],
        json_value(),
        0..4,
    )
    .prop_map(move |m| {
        m.into_iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .collect()
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![
            prop::sample::select(vec![
                "system".to_string(),
                "user".into(),
                "assistant".into()
            ]),
            text()
        ],
        text(),
        prop_oneof![3 => Just(BTreeMap::new()), 1 => extras(&["role", "content"])],
    )
        .prop_map(|(role, content, extra)| Message {
            role,
            content,
            extra,
        })
}

fn request() -> impl Strategy<Value = LlmRequest> {
    (
        prop::collection::vec(message(), 0..4),
        prop_oneof![
            prop::sample::select(vec![
                "gpt-4o".to_string(),
                "gpt-5".into(),
                "claude-sonnet-4-5".into()
            ]),
            text()
        ],
        prop_oneof![
            finite_float().prop_map(Temperature::Float),
            (-3i64..3).prop_map(Temperature::Int),
        ],
        any::<u64>(),
        prop_oneof![
            2 => Just(BTreeMap::new()),
            1 => extras(&["max_tokens", "messages", "model", "temperature"]),
        ],
    )
        .prop_map(
            |(messages, model, temperature, max_tokens, extra)| LlmRequest {
                messages,
                model,
                temperature,
                max_tokens,
                extra,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn preimage_follows_python_json_dumps_rules(r in request()) {
        let mut want = String::new();
        ref_dumps(&mut want, &python_object(&r));
        prop_assert_eq!(preimage(&r).unwrap(), want);
    }

    #[test]
    fn floats_follow_python_repr(f in finite_float()) {
        let mut got = String::new();
        artemis::cache::key::write_float(&mut got, f);
        prop_assert_eq!(got, ref_float(f));
    }
}

#[test]
fn the_reference_knows_the_rules() {
    // Pin the reference itself to CPython's output, so it cannot drift along with the code.
    let mut s = String::new();
    ref_dumps(
        &mut s,
        &serde_json::json!({"b": ["\u{7f}/\u{2028}\u{1F600}\u{0}é", 1e16, 1e-5, 1e15, 0.0001, 1.5e-7, 100.0], "a": 0}),
    );
    assert_eq!(
        s,
        r#"{"a": 0, "b": ["\u007f/\u2028\ud83d\ude00\u0000\u00e9", 1e+16, 1e-05, 1000000000000000.0, 0.0001, 1.5e-07, 100.0]}"#
    );
}

/// Each request as JSON in, Python's preimage out, one per line.
const PYTHON: &str = r#"
import json, sys
for line in sys.stdin.buffer:
    r = json.loads(line.decode("utf-8"))
    obj = dict(r.get("extra", {}))
    obj.update({"max_tokens": r["max_tokens"], "model": r["model"], "temperature": r["temperature"],
                "messages": [dict(m) for m in r["messages"]]})
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
"#;

#[test]
fn a_sample_matches_cpython() {
    let Ok(mut child) = Command::new("python3")
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    else {
        eprintln!("python3 not found: skipping the CPython cross-check");
        return;
    };
    let mut runner = TestRunner::deterministic();
    let strategy = request();
    let requests: Vec<LlmRequest> = (0..500)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let mut input = String::new();
    for r in &requests {
        input.push_str(&serde_json::to_string(r).unwrap());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "python3 failed");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), requests.len());
    for (r, py) in requests.iter().zip(lines) {
        assert_eq!(preimage(r).unwrap(), py, "request {r:?}");
    }
}
