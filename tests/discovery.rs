//! The walks for what only Python writes without an index (metric names, rate-limit windows)
//! advance a bounded SCAN step per read instead of walking the whole keyspace every 30 s: a
//! name Python writes is found by the polls within one pass, a name that vanished leaves after
//! one, the first read (so `--once`) and the first after `r` walk whole, and an ordinary poll
//! sends one SCAN per walk per master. Real redis-server and a local 3-master Cluster;
//! Python's writes by redis-py (`tests/python/original/`) on the server, by the same commands
//! (PROTOCOL.md's layout) on the Cluster, which the Python helper does not reach.

mod support;

use artemis::Backend;
use artemis::config::Settings;
use artemis::store::Store;
use serde_json::{Value, json};
use support::python::run_python;
use support::{RedisCluster, RedisServer};

/// Keys that match no pattern of either walk: the haystack a pass has to cross.
const FILLER: usize = 3_000;
/// The `COUNT` of one step in these tests, small so a pass takes many polls.
const COUNT: u64 = 100;

/// Calls `method` of one of the original's modules with keyword arguments.
fn py(server: &RedisServer, module: &str, method: &str, kwargs: Value) {
    run_python(
        &format!("original/{module}.py"),
        &server.url(),
        &[method, &kwargs.to_string()],
    );
}

/// The original's rate limiter driver (`tests/python/ratelimit_drive.py`).
fn drive(server: &RedisServer, args: &[&str]) {
    run_python("ratelimit_drive.py", &server.url(), args);
}

fn settings(mut s: Settings) -> Settings {
    s.tracker.scan_count_per_poll = COUNT;
    s
}

/// Most polls one pass can take: SCAN visits about `COUNT` hash-table buckets per call, and
/// a table holding `keys` keys has the next power of two of buckets (one more step for the
/// last, partial one, and one for a rehash under way).
fn polls_per_pass(keys: usize) -> usize {
    keys.next_power_of_two() / COUNT as usize + 2
}

async fn fill(backend: &Backend) {
    let redis = backend.redis().unwrap();
    for chunk in (0..FILLER).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for i in chunk {
            p.set(format!("filler:{{{i}}}"), "x").ignore();
        }
        redis.query_pipe_ok(&p).await.unwrap();
    }
}

async fn model_names(backend: &Backend) -> Vec<String> {
    let m = backend.metrics().read_metrics(1, 0).await.unwrap().metrics;
    m.models.into_iter().map(|b| b.name).collect()
}

async fn window_keys(backend: &Backend) -> Vec<String> {
    let l = backend.limiter().read_limits().await.unwrap();
    l.limits.into_iter().map(|l| l.key).collect()
}

/// Polls with `read` until `done` holds, at most `polls` times; how many polls it took.
async fn poll_until<T, F: std::future::Future<Output = T>>(
    polls: usize,
    mut read: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> Option<usize> {
    for i in 1..=polls {
        if done(&read().await) {
            return Some(i);
        }
    }
    None
}

/// `SCAN` calls each node served since its stats were reset.
fn scan_calls(infos: &[String]) -> Vec<u64> {
    infos
        .iter()
        .map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
                .and_then(|rest| rest.split(',').next())
                .map(|n| n.parse().unwrap())
                .unwrap_or(0)
        })
        .collect()
}

#[tokio::test]
async fn python_written_metric_names_are_found_by_the_polls_within_one_pass() {
    let server = RedisServer::start();
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    fill(&backend).await;
    assert!(model_names(&backend).await.is_empty());
    py(
        &server,
        "metrics",
        "track_llm_request",
        json!({"provider": "py-provider", "model": "py-model", "prompt_tokens": 1,
               "completion_tokens": 1, "cost": 0.0}),
    );
    py(
        &server,
        "metrics",
        "track_pipeline_completion",
        json!({"card_id": "c1", "duration_seconds": 1.0, "status": "py_status"}),
    );
    let found = poll_until(
        polls_per_pass(FILLER + 10),
        || async { backend.metrics().read_metrics(1, 0).await.unwrap().metrics },
        |m| {
            m.models.iter().any(|b| b.name == "py-model")
                && m.providers.iter().any(|b| b.name == "py-provider")
                && m.pipelines.by_status.contains_key("py_status")
        },
    )
    .await;
    assert!(found.is_some(), "not found within one pass");
}

#[tokio::test]
async fn a_python_written_window_is_found_by_the_polls_within_one_pass() {
    let server = RedisServer::start();
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    fill(&backend).await;
    assert!(window_keys(&backend).await.is_empty());
    drive(&server, &["generic", "search", "team-a", "10", "60", "4"]);
    let found = poll_until(
        polls_per_pass(FILLER + 10),
        || window_keys(&backend),
        |keys| keys.iter().any(|k| k == "artemis:ratelimit:search:team-a"),
    )
    .await;
    assert!(found.is_some(), "not found within one pass");
}

#[tokio::test]
async fn a_name_that_vanished_stays_until_a_pass_ends_without_it_then_leaves() {
    let server = RedisServer::start();
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    fill(&backend).await;
    py(
        &server,
        "metrics",
        "track_llm_request",
        json!({"provider": "p", "model": "gone-model", "prompt_tokens": 1,
               "completion_tokens": 1, "cost": 0.0}),
    );
    assert!(model_names(&backend).await.contains(&"gone-model".into()));
    server.cli(&["DEL", "artemis:metrics:llm:model:gone-model"]);
    // The pass under way started with the whole walk; one step cannot end it.
    assert!(model_names(&backend).await.contains(&"gone-model".into()));
    let gone = poll_until(
        polls_per_pass(FILLER + 10),
        || model_names(&backend),
        |names| !names.contains(&"gone-model".into()),
    )
    .await;
    assert!(gone.is_some(), "still shown after a whole pass");
}

#[tokio::test]
async fn once_finds_python_written_names_and_windows_at_once() {
    let server = RedisServer::start();
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    fill(&backend).await;
    py(
        &server,
        "metrics",
        "track_llm_request",
        json!({"provider": "once-provider", "model": "once-model", "prompt_tokens": 1,
               "completion_tokens": 1, "cost": 0.0}),
    );
    drive(&server, &["generic", "crawl", "default", "5", "60", "2"]);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    // A step of 1 key would find neither in one read: only a whole walk does.
    std::fs::write(&config, "[tracker]\nscan_count_per_poll = 1\n").unwrap();
    let mut cmd = support::artemis_top(home.path());
    cmd.args(["--redis-url", &server.url(), "--once", "--format", "json"])
        .arg("--config")
        .arg(&config);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = json.to_string();
    assert!(text.contains("once-model"), "{text}");
    assert!(text.contains("once-provider"), "{text}");
    assert!(text.contains("artemis:ratelimit:crawl:default"), "{text}");
}

#[tokio::test]
async fn after_forget_scans_the_next_read_walks_whole_and_finds_what_python_wrote() {
    let server = RedisServer::start();
    let mut s = settings(server.settings());
    s.tracker.scan_count_per_poll = 1;
    let backend = Backend::redis(s).await.unwrap();
    fill(&backend).await;
    assert!(model_names(&backend).await.is_empty());
    py(
        &server,
        "metrics",
        "track_llm_request",
        json!({"provider": "p", "model": "after-r", "prompt_tokens": 1,
               "completion_tokens": 1, "cost": 0.0}),
    );
    backend.forget_scans();
    server.cli(&["CONFIG", "RESETSTAT"]);
    assert!(model_names(&backend).await.contains(&"after-r".into()));
    let calls = scan_calls(&[server.cli(&["INFO", "commandstats"])])[0];
    assert!(
        calls > 1,
        "one bounded step ({calls} SCAN), not a whole walk"
    );
}

#[tokio::test]
async fn a_poll_sends_one_scan_per_walk() {
    let server = RedisServer::start();
    let backend = Backend::redis(settings(server.settings())).await.unwrap();
    fill(&backend).await;
    window_keys(&backend).await;
    model_names(&backend).await;
    for _ in 0..5 {
        server.cli(&["CONFIG", "RESETSTAT"]);
        window_keys(&backend).await;
        model_names(&backend).await;
        let calls = scan_calls(&[server.cli(&["INFO", "commandstats"])]);
        assert_eq!(calls, [2], "SCAN calls of one poll of metrics and limits");
    }
}

/// Writes what the original's `track_llm_request` writes for one model (PROTOCOL.md A).
async fn cluster_python_model(backend: &Backend, model: &str) {
    let mut cmd = redis::cmd("HINCRBY");
    cmd.arg(format!("artemis:metrics:llm:model:{model}"))
        .arg("requests")
        .arg(1);
    backend.redis().unwrap().query::<i64>(&cmd).await.unwrap();
}

#[tokio::test]
async fn on_cluster_a_python_written_model_is_found_by_the_polls_within_one_pass() {
    let cluster = RedisCluster::start();
    let backend = Backend::redis(settings(cluster.settings())).await.unwrap();
    fill(&backend).await;
    assert!(model_names(&backend).await.is_empty());
    cluster_python_model(&backend, "cluster-model").await;
    // Every master is stepped at once: a pass takes as long as the fullest master's.
    let found = poll_until(
        polls_per_pass(FILLER),
        || model_names(&backend),
        |names| names.contains(&"cluster-model".into()),
    )
    .await;
    assert!(found.is_some(), "not found within one pass");
}

#[tokio::test]
async fn on_cluster_a_poll_sends_one_scan_per_walk_per_master() {
    let cluster = RedisCluster::start();
    let backend = Backend::redis(settings(cluster.settings())).await.unwrap();
    fill(&backend).await;
    window_keys(&backend).await;
    model_names(&backend).await;
    for _ in 0..5 {
        cluster.cli_all(&["CONFIG", "RESETSTAT"]);
        window_keys(&backend).await;
        model_names(&backend).await;
        let calls = scan_calls(&cluster.cli_all(&["INFO", "commandstats"]));
        assert_eq!(calls, [2, 2, 2], "SCAN calls of one poll, per master");
    }
}

#[tokio::test]
async fn the_metrics_walk_matches_the_originals_keys_and_none_of_our_extension_keys() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    // Our writes make extension keys (`::index:…`, `::bucket:…`) beside the original's layout.
    backend
        .metrics()
        .track_llm_request(&artemis::metrics::LlmRequestRecord {
            provider: "ours".into(),
            model: "our-model".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            cost: 0.0,
            saved_cost: 0.0,
            latency_ms: 1.0,
            cache_hit: false,
            at: None,
        })
        .await
        .unwrap();
    let k = artemis::keys::KeySpace::new(backend.settings().prefixes.clone());
    let all = backend
        .redis()
        .unwrap()
        .scan_match("artemis:metrics:*", None, 1_000)
        .await
        .unwrap();
    assert!(
        all.iter().any(|key| key.starts_with("artemis:metrics::")),
        "{all:?}"
    );
    let walked = backend
        .redis()
        .unwrap()
        .scan_match(&k.metrics_names_scan_pattern(), None, 1_000)
        .await
        .unwrap();
    assert!(
        walked.contains(&"artemis:metrics:llm:model:our-model".to_owned()),
        "{walked:?}"
    );
    assert!(
        walked.contains(&"artemis:metrics:llm:ours".to_owned()),
        "{walked:?}"
    );
    assert!(
        walked
            .iter()
            .all(|key| !key.starts_with("artemis:metrics::")),
        "{walked:?}"
    );
}
