//! `--once --format json` streamed from Redis (`headless::write_json`): the same bytes as the
//! report of a snapshot read at the same moment, on a server and on a 3-master Cluster, with
//! library-written cards (indexed), Python-written ones (found by SCAN), costs attributed from
//! the metrics and malformed documents; and read in chunks, holding a few chunks of documents
//! at a time whatever the number of cards.

mod support;
mod tui_fixtures;

use std::collections::BTreeSet;

use artemis::Backend;
use artemis::headless::write_json;
use artemis::metrics::{HistoryWindow, Metrics, PipelineCompletionRecord};
use artemis::model::{PipelineStatus, StageStatus};
use artemis::report::Report;
use artemis::store::Store;
use artemis::tracker::{StageUpdate, Tracker};
use support::{RedisCluster, RedisServer};

/// Raw SET through the library's connection (routed on a Cluster), as Python writes.
async fn set(backend: &Backend, key: &str, value: &str) {
    let redis = backend.redis().expect("a Redis backend");
    let _: () = redis
        .query(redis::cmd("SET").arg(key).arg(value).arg("EX").arg(86400))
        .await
        .unwrap();
}

fn naive(secs_ago: i64) -> String {
    artemis::model::format_naive(
        (chrono::Utc::now() - chrono::Duration::seconds(secs_ago)).naive_utc(),
    )
}

/// `n` library cards (a stage each, one finished with a cost from the metrics) and one
/// Python card with two stages, outside the index.
async fn seed(backend: &Backend, n: usize) {
    let tracker = Tracker::new(backend.tracker().clone());
    for i in 0..n {
        let id = format!("card-{i:04}");
        let mut meta = serde_json::Map::new();
        meta.insert("title".into(), format!("Card {i}").into());
        tracker.start_pipeline(&id, 3, meta).await.unwrap();
        tracker
            .update_stage(
                &id,
                "build",
                StageUpdate::new(StageStatus::Running)
                    .progress((i % 100) as u8)
                    .message("compiling"),
            )
            .await
            .unwrap();
    }
    tracker
        .complete_pipeline("card-0000", PipelineStatus::Completed, Some("done"))
        .await
        .unwrap();
    Metrics::new(backend.metrics().clone())
        .track_pipeline_completion(PipelineCompletionRecord {
            card_id: "card-0000".into(),
            duration_seconds: 3.0,
            status: "completed".into(),
            cost: 0.4,
            metadata: serde_json::Map::new(),
            at: None,
        })
        .await
        .unwrap();
    let doc = format!(
        r#"{{"card_id": "card-py", "status": "running", "total_stages": 2, "completed_stages": 1, "current_stage": "review", "start_time": "{}", "end_time": null, "metadata": {{"title": "Python card"}}}}"#,
        naive(30)
    );
    set(backend, "artemis:pipeline:card-py", &doc).await;
    for (name, status) in [("plan", "completed"), ("review", "running")] {
        let stage = format!(
            r#"{{"stage_name": "{name}", "status": "{status}", "progress_percent": 50, "message": null, "timestamp": "{}", "metadata": {{}}}}"#,
            naive(10)
        );
        set(
            backend,
            &format!("artemis:pipeline:card-py:stage:{name}"),
            &stage,
        )
        .await;
    }
}

/// (the snapshot's report line, the streamed report line) at one moment.
async fn both(backend: &Backend, chunk: usize) -> (String, String) {
    let now = chrono::Utc::now();
    let snap = artemis::snapshot::read_snapshot_for(backend, now, HistoryWindow::default())
        .await
        .unwrap();
    let expected = serde_json::to_string(&Report::from_snapshot(&snap)).unwrap() + "\n";
    let mut out = Vec::new();
    write_json(backend, now, chunk, &mut out).await.unwrap();
    (expected, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn streamed_json_is_the_snapshot_json_on_a_server() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    seed(&backend, 23).await;
    let (expected, streamed) = both(&backend, 4).await;
    assert!(expected.contains("\"card_id\":\"card-py\""), "{expected}");
    assert!(expected.contains("\"cost_usd\":0.4"), "{expected}");
    assert_eq!(streamed, expected);
}

#[tokio::test]
async fn streamed_json_is_the_snapshot_json_on_a_cluster() {
    let cluster = RedisCluster::start();
    let backend = Backend::redis(cluster.settings()).await.unwrap();
    seed(&backend, 23).await;
    let (expected, streamed) = both(&backend, 4).await;
    assert!(expected.contains("\"card_id\":\"card-py\""), "{expected}");
    assert_eq!(streamed, expected);
}

#[tokio::test]
async fn streamed_json_lists_the_malformed_documents_the_snapshot_lists() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    seed(&backend, 5).await;
    set(&backend, "artemis:pipeline:card-broken", "{not json").await;
    set(&backend, "artemis:pipeline:card-py:stage:bad", "[1, 2]").await;
    let (expected, streamed) = both(&backend, 2).await;
    let malformed = |line: &str| -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["malformed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let want: BTreeSet<String> = [
        "artemis:pipeline:card-broken",
        "artemis:pipeline:card-py:stage:bad",
    ]
    .map(String::from)
    .into();
    assert_eq!(malformed(&expected), want);
    assert_eq!(malformed(&streamed), want);
    let without = |line: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["malformed"] = serde_json::Value::Null;
        v
    };
    assert_eq!(without(&streamed), without(&expected));
}

#[tokio::test]
async fn streamed_json_holds_a_few_chunks_of_documents_not_every_card() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    seed(&backend, 300).await;
    let mut out = Vec::new();
    let done = write_json(&backend, chrono::Utc::now(), 10, &mut out)
        .await
        .unwrap();
    assert_eq!(done.cards, 301);
    // The sorting pass keeps four chunks in flight; the cards are built one chunk at a time.
    assert!(
        done.most_held <= 40,
        "held {} documents at once with chunks of 10",
        done.most_held
    );
}

#[test]
fn stream_framing_writes_the_bytes_serde_writes_for_a_full_report() {
    let snap = tui_fixtures::snapshot();
    assert!(!snap.cards.is_empty() && !snap.malformed.is_empty() && !snap.limits.is_empty());
    let report = Report::from_snapshot(&snap);
    let mut out = Vec::new();
    let mut written = 0;
    artemis::report::stream::write_head(&mut out, &report).unwrap();
    let (a, b) = snap.cards.split_at(snap.cards.len() / 2);
    artemis::report::stream::write_cards(&mut out, a.to_vec(), &mut written).unwrap();
    artemis::report::stream::write_cards(&mut out, b.to_vec(), &mut written).unwrap();
    artemis::report::stream::write_tail(&mut out, &report).unwrap();
    assert_eq!(written, snap.cards.len());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        serde_json::to_string(&report).unwrap() + "\n"
    );
}
