//! Entry points over every parser of what artemis-top reads from Redis or from the user, for
//! property tests (below) and the `cargo fuzz` targets in `fuzz/`. Each takes arbitrary input
//! and must return without panicking, whatever a buggy or hostile writer left in Redis.
//!
//! Compiled for tests and with the `fuzzing` feature only; not part of the library's API.

use std::collections::BTreeSet;
use std::path::Path;

use redis::Value;

/// Pipeline and stage documents, events, their timestamps, and the cards they assemble into
/// (bytes as stored under a key or published on a channel).
pub fn documents(data: &[u8]) {
    let key = "artemis:pipeline:fuzz";
    let _ = crate::tracker::parse_event(key, data);
    let stage = crate::tracker::parse_stage(key, data);
    if let Ok(value) = crate::tracker::parse_doc_value(key, data)
        && let Ok(parsed) = crate::tracker::parse_pipeline(key, &value)
    {
        let _ = crate::model::parse_timestamp(&parsed.doc.start_time);
        let found: BTreeSet<String> = stage.iter().map(|s| s.stage_name.to_string()).collect();
        let names = crate::tracker::stage_names(&parsed, Some(&found));
        let stages = names.into_iter().zip(stage).collect();
        let mut cards = vec![crate::tracker::assemble_card(parsed, stages)];
        crate::tracker::sort_cards(&mut cards);
    }
    let text = String::from_utf8_lossy(data);
    let _ = crate::model::parse_timestamp(&text);
    let _ = crate::metrics::parse_recent(key, &text, &mut Vec::new());
    let _ = crate::cache::entry::decode(data);
}

/// Replies of any shape where the readers expect hashes, sets, counters, stream entries,
/// `CLUSTER SLOTS` and the limiter's usage reads.
pub fn replies(reply: &Value) {
    use crate::metrics::redis::Reply;
    let reply_of = |v: &Value| Reply {
        key: "artemis:metrics:fuzz".into(),
        value: v.clone(),
    };
    let mut malformed = Vec::new();
    let fields = reply_of(reply).hash(&mut malformed);
    let mut reader = crate::metrics::FieldReader {
        key: "artemis:metrics:fuzz",
        malformed: &mut malformed,
    };
    for name in fields.keys() {
        let _ = reader.int(&fields, name);
        let _ = reader.float(&fields, name);
    }
    let _ = reply_of(reply).strings(&mut malformed);
    let _ = reply_of(reply).counter(&mut malformed);
    let _ = crate::tracker::redis::parse_stream_reply("artemis:fuzz", reply.clone());
    let _ = crate::connection::cluster::SlotMap::parse(reply.clone());
    if let Value::Array(items) = reply {
        for now_us in [0, 1_700_000_000_000_000, i64::MAX] {
            let _ = crate::limiter::redis::decode_usage(items, now_us);
        }
    }
    if let Ok(text) = redis::from_redis_value::<String>(reply.clone()) {
        text_replies(&text);
    }
}

/// [`replies`] for bytes in the Redis wire protocol (what a fuzzer produces best).
pub fn resp(data: &[u8]) {
    if let Ok(v) = redis::parse_redis_value(data) {
        replies(&v);
    }
}

/// Text the readers split themselves: `CLUSTER NODES`, sorted-set members of the limiter,
/// key names.
pub fn text_replies(text: &str) {
    let _ = crate::connection::cluster::parse_cluster_masters(text);
    let _ = crate::limiter::redis::entry_weight(text);
    let keys = crate::keys::KeySpace::default();
    let _ = keys.card_id_of_pipeline_key(text);
    let _ = keys.card_and_stage_of_stage_key(text);
    let _ = crate::keys::validate_card_id(text);
}

/// A config file's text together with environment variables (one `NAME=value` per line of
/// `env`): loading must end in settings or in one clear message, never a panic.
pub fn config(file: &str, env: &str) {
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = crate::config::load_text(Some((file, Path::new("fuzz.toml"))), &env, &Vec::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Any reply Redis could send, nested a few levels.
    fn any_reply() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            Just(Value::Okay),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Double),
            any::<bool>().prop_map(Value::Boolean),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::BulkString),
            "[ -~\u{1b}\u{80}-\u{ff}]{0,30}".prop_map(Value::SimpleString),
            interesting_text().prop_map(|s| Value::BulkString(s.into_bytes())),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Set),
                proptest::collection::vec((inner.clone(), inner), 0..6).prop_map(Value::Map),
            ]
        })
    }

    /// Text near what the readers expect: numbers, ids, JSON fragments, escapes.
    fn interesting_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| f.to_string()),
            Just("NaN".to_string()),
            Just("1e400".to_string()),
            Just("-0".to_string()),
            "[0-9]{1,20}-[0-9]{1,20}",
            "[a-z0-9]{1,8}:[0-9]{0,12}",
            "artemis:pipeline:[a-z\u{1b}:]{0,12}(:stage:[a-z]{0,6})?",
            "[0-9a-f]{40} [0-9.]{7,15}:[0-9]{1,6}@[0-9]{1,6} (master|slave|myself,master|master,fail) [-0-9a-z ]{0,30}",
            "\\PC{0,40}",
        ]
    }

    /// JSON documents of the right rough shape with fields of any type, plus raw bytes.
    fn any_document() -> impl Strategy<Value = Vec<u8>> {
        let json_leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            interesting_text().prop_map(serde_json::Value::from),
        ];
        let json = json_leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z_]{1,16}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        });
        let field_names = [
            "card_id",
            "status",
            "total_stages",
            "completed_stages",
            "current_stage",
            "start_time",
            "end_time",
            "metadata",
            "duration_seconds",
            "_stages",
            "stage_name",
            "progress_percent",
            "message",
            "timestamp",
            "event_type",
            "data",
            "content",
            "model",
            "provider",
            "usage",
            "raw_response",
            "cost",
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::btree_map(
                proptest::sample::select(field_names.to_vec()),
                json,
                0..12
            )
            .prop_map(|m| {
                let obj: serde_json::Map<String, serde_json::Value> =
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::to_vec(&obj).unwrap_or_default()
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn documents_never_panic(data in any_document()) {
            documents(&data);
        }

        #[test]
        fn replies_never_panic(reply in any_reply()) {
            replies(&reply);
        }

        #[test]
        fn wire_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            resp(&data);
        }

        #[test]
        fn text_never_panics(text in interesting_text()) {
            text_replies(&text);
        }
    }

    proptest! {
        // Each case builds a full configuration: fewer, but varied.
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn config_never_panics(
            file in config_text(),
            env in proptest::collection::vec((env_name(), interesting_text()), 0..4),
        ) {
            let env: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            config(&file, &env);
        }
    }

    fn env_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(vec![
                "REDIS_HOST",
                "REDIS_PORT",
                "REDIS_DB",
                "REDIS_PASSWORD",
                "REDIS_TIMEOUT",
                "REDIS_CONNECT_TIMEOUT",
                "REDIS_URL",
                "ARTEMIS_TOP_DASHBOARD_POLL_INTERVAL",
                "ARTEMIS_TOP_TRACKER_OUTAGE_BUFFER",
                "ARTEMIS_TOP_CACHE_TTL_SECONDS",
            ])
            .prop_map(str::to_owned),
            "ARTEMIS_TOP_[A-Z_]{1,20}",
        ]
    }

    /// TOML with the real sections and keys and values of any type, or arbitrary text.
    fn config_text() -> impl Strategy<Value = String> {
        let section = proptest::sample::select(vec![
            "redis",
            "dashboard",
            "tracker",
            "metrics",
            "cache",
            "limiter",
            "prefixes",
            "nope",
        ]);
        let key = proptest::sample::select(vec![
            "url",
            "host",
            "port",
            "db",
            "password",
            "timeout",
            "connect_timeout",
            "cluster",
            "cluster_nodes",
            "poll_interval",
            "theme",
            "outage_buffer",
            "ttl_seconds",
            "scan_interval_seconds",
            "enabled",
            "memory_tier_bytes",
            "failure_policy",
            "snapshot_days",
            "pipeline",
            "cache",
            "unknown",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            interesting_text().prop_map(|s| format!("{s:?}")),
            Just("[1, \"a\", {x = 1}]".to_string()),
            Just("{ a = 1 }".to_string()),
            Just("nan".to_string()),
            Just("-inf".to_string()),
        ];
        prop_oneof![
            proptest::collection::vec(
                (section, proptest::collection::vec((key, value), 0..4)),
                0..4
            )
            .prop_map(|sections| {
                sections
                    .into_iter()
                    .map(|(s, kvs)| {
                        let body: String = kvs
                            .into_iter()
                            .map(|(k, v)| format!("{k} = {v}\n"))
                            .collect();
                        format!("[{s}]\n{body}")
                    })
                    .collect()
            }),
            "\\PC{0,120}",
        ]
    }
}
