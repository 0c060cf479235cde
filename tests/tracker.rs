//! The pipeline tracker against real Redis (standalone and Cluster) and the memory backend:
//! the same behaviour suite runs on all three, then the Python-compatibility, outage and
//! malformed-data cases that only make sense on Redis.

mod support;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use artemis::Backend;
use artemis::buffer::WriteOutcome;
use artemis::config::Settings;
use artemis::model::{PipelineEvent, PipelineStatus, StageStatus};
use artemis::store::Store;
use artemis::tracker::{StageReport, StageUpdate, Tracker};
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use support::{RedisCluster, RedisServer};

/// A raw connection to the test server(s), to seed and inspect data as another process would.
struct Raw(Mutex<Box<dyn redis::ConnectionLike + Send>>);

impl Raw {
    fn server(s: &RedisServer) -> Self {
        Self(Mutex::new(Box::new(s.raw())))
    }

    fn cluster(c: &RedisCluster) -> Self {
        Self(Mutex::new(Box::new(c.raw())))
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        let mut c = self.0.lock().unwrap();
        cmd.query(&mut **c).expect("raw command")
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.query(redis::cmd("GET").arg(key))
    }

    fn get_json(&self, key: &str) -> Value {
        let raw = self.get(key).unwrap_or_else(|| panic!("{key} is missing"));
        serde_json::from_slice(&raw).unwrap()
    }

    fn set_ex(&self, key: &str, value: &[u8]) {
        self.query::<()>(redis::cmd("SET").arg(key).arg(value).arg("EX").arg(86_400));
    }

    fn ttl(&self, key: &str) -> i64 {
        self.query(redis::cmd("TTL").arg(key))
    }
}

struct Env {
    storage: Backend,
    tracker: Tracker,
    raw: Option<Raw>,
}

impl Env {
    fn new(storage: Backend, raw: Option<Raw>) -> Self {
        Self {
            tracker: Tracker::new(storage.tracker().clone()),
            storage,
            raw,
        }
    }
}

fn meta(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn is_naive(ts: &str) -> bool {
    let b = ts.as_bytes();
    let base = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':';
    let frac = match b.len() {
        19 => true,
        26 => b[19] == b'.' && b[20..].iter().all(u8::is_ascii_digit),
        _ => false,
    };
    base && frac && !ts.contains(['Z', '+'])
}

/// Python's reading rules for a pipeline document (field names, types, naive UTC times,
/// lowercase statuses).
fn assert_python_pipeline(doc: &Value) {
    let o = doc.as_object().expect("pipeline document is an object");
    assert!(o["card_id"].is_string(), "{doc}");
    let status = o["status"].as_str().unwrap();
    assert!(
        ["queued", "running", "completed", "failed", "cancelled"].contains(&status),
        "{doc}"
    );
    let total = o["total_stages"].as_i64().expect("total_stages is an int");
    let done = o["completed_stages"]
        .as_i64()
        .expect("completed_stages is an int");
    assert!(done >= 0 && done <= total, "{doc}");
    assert!(o["current_stage"].is_string() || o["current_stage"].is_null());
    assert!(is_naive(o["start_time"].as_str().unwrap()), "{doc}");
    match &o["end_time"] {
        Value::Null => assert!(!["completed", "failed", "cancelled"].contains(&status)),
        Value::String(s) => assert!(is_naive(s), "{doc}"),
        other => panic!("end_time {other}"),
    }
    assert!(o["metadata"].is_object());
    if status != "running" {
        assert!(o["duration_seconds"].is_f64(), "{doc}");
    }
}

fn assert_python_stage(doc: &Value) {
    let o = doc.as_object().expect("stage document is an object");
    assert!(o["stage_name"].is_string());
    assert!(
        ["pending", "running", "completed", "failed", "skipped"]
            .contains(&o["status"].as_str().unwrap())
    );
    assert!(o["progress_percent"].is_i64() || o["progress_percent"].is_null());
    assert!(o["message"].is_string() || o["message"].is_null());
    assert!(is_naive(o["timestamp"].as_str().unwrap()), "{doc}");
    assert!(o["metadata"].is_object());
}

/// Runs Python's own parsing (json.loads, datetime.fromisoformat and the naive arithmetic of
/// its completion step) over raw documents, when a python3 is installed.
fn python_accepts(docs: &[Vec<u8>]) {
    let script = r#"
import json, sys
from datetime import datetime
for raw in json.load(sys.stdin):
    d = json.loads(raw)
    if "event" in d:
        assert d["event"] in ("pipeline_started", "stage_updated", "pipeline_completed"), d
        datetime.fromisoformat(d["timestamp"])
        continue
    if "stage_name" in d:
        datetime.fromisoformat(d["timestamp"])
        assert d["status"] in ("pending", "running", "completed", "failed", "skipped")
        continue
    start = datetime.fromisoformat(d["start_time"])
    (datetime.utcnow() - start).total_seconds()
    assert type(d["total_stages"]) is int and type(d["completed_stages"]) is int
    assert d["status"] in ("queued", "running", "completed", "failed", "cancelled")
    if d["end_time"] is not None:
        (datetime.fromisoformat(d["end_time"]) - start).total_seconds()
        assert type(d["duration_seconds"]) is float
print("ok")
"#;
    let texts: Vec<String> = docs
        .iter()
        .map(|d| String::from_utf8(d.clone()).unwrap())
        .collect();
    let child = std::process::Command::new("python3")
        .args(["-W", "ignore", "-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        eprintln!("python3 not installed: Python's own parsing not exercised");
        return;
    };
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&texts).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Python rejected our documents: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The behaviour suite: every backend.
// ---------------------------------------------------------------------------------------------

async fn lifecycle(env: &Env, p: &str) {
    let card = format!("{p}-life");
    let t = &env.tracker;
    let metadata = meta(json!({"title": "User auth", "priority": "high"}));
    assert_eq!(
        t.start_pipeline(&card, 3, metadata.clone()).await.unwrap(),
        WriteOutcome::Written
    );
    t.update_stage(
        &card,
        "analysis",
        StageUpdate::new(StageStatus::Running).progress(10),
    )
    .await
    .unwrap();
    t.update_stage(
        &card,
        "analysis",
        StageUpdate::new(StageStatus::Completed).progress(100),
    )
    .await
    .unwrap();
    t.update_stage(
        &card,
        "development",
        StageUpdate::new(StageStatus::Running)
            .progress(45)
            .message("Developer A writing code...")
            .metadata(meta(json!({"worker": "a"}))),
    )
    .await
    .unwrap();
    let c = t.get_card(&card).await.unwrap().expect("card exists");
    assert_eq!(c.pipeline.status, PipelineStatus::Running);
    assert_eq!(c.pipeline.completed_stages, 1);
    assert_eq!(c.pipeline.total_stages, 3);
    assert_eq!(c.pipeline.current_stage.as_deref(), Some("development"));
    assert_eq!(c.pipeline.metadata, metadata.into());
    assert_eq!(c.title(), Some("User auth"));
    let names: Vec<_> = c.stages.iter().map(|s| s.stage_name.as_str()).collect();
    assert_eq!(names, ["analysis", "development"]);
    assert_eq!(c.stages[1].progress_percent, Some(45));
    assert_eq!(
        c.stages[1].message.as_deref(),
        Some("Developer A writing code...")
    );
    assert_eq!(c.stages[1].metadata["worker"], "a");
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.complete_pipeline(&card, PipelineStatus::Completed, Some("done"))
        .await
        .unwrap();
    let c = t.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.status, PipelineStatus::Completed);
    let end = c.pipeline.end_time.clone().expect("end_time set");
    assert!(is_naive(&end) && is_naive(&c.pipeline.start_time));
    let d = c.pipeline.duration_seconds.expect("duration set");
    assert!((0.02..60.0).contains(&d), "{d}");
    assert!(t.list_cards().await.unwrap().contains(&card));
    let none = t.get_card(&format!("{p}-never-started")).await.unwrap();
    assert!(none.is_none());

    let h = t.history(&card, None, 100).await.unwrap();
    let kinds: Vec<&str> = h
        .iter()
        .map(|e| match e.event.as_ref().unwrap() {
            PipelineEvent::PipelineStarted { .. } => "started",
            PipelineEvent::StageUpdated { .. } => "stage",
            PipelineEvent::PipelineCompleted { .. } => "completed",
        })
        .collect();
    assert_eq!(kinds, ["started", "stage", "stage", "stage", "completed"]);
    match h[4].event.as_ref().unwrap() {
        PipelineEvent::PipelineCompleted {
            duration_seconds,
            message,
            status,
            ..
        } => {
            assert_eq!(*duration_seconds, Some(d));
            assert_eq!(message.as_deref(), Some("done"));
            assert_eq!(*status, PipelineStatus::Completed);
        }
        other => panic!("{other:?}"),
    }
    // Catching up after the second entry gives exactly the rest, in order.
    let rest = t.history(&card, Some(&h[1].id), 100).await.unwrap();
    assert_eq!(rest, h[2..].to_vec());
    let last_two = t.history(&card, None, 2).await.unwrap();
    assert_eq!(last_two, h[3..].to_vec());
}

async fn repeated_completed_counts_once(env: &Env, p: &str) {
    let card = format!("{p}-repeat");
    let t = &env.tracker;
    t.start_pipeline(&card, 2, Map::new()).await.unwrap();
    for _ in 0..3 {
        t.update_stage(&card, "build", StageUpdate::new(StageStatus::Completed))
            .await
            .unwrap();
    }
    let c = t.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 1);
    // Running again and completing again still counts once.
    t.update_stage(&card, "build", StageUpdate::new(StageStatus::Running))
        .await
        .unwrap();
    t.update_stage(&card, "build", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    for stage in ["test", "deploy", "extra"] {
        t.update_stage(&card, stage, StageUpdate::new(StageStatus::Completed))
            .await
            .unwrap();
    }
    let c = t.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 2, "never above total_stages");
    assert_eq!(c.stages.len(), 4);
    // A new run starts the count again.
    t.start_pipeline(&card, 2, Map::new()).await.unwrap();
    t.update_stage(&card, "build", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    let c = t.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 1);
}

async fn concurrent_updates_lose_nothing(env: &Env, p: &str) {
    let card = format!("{p}-parallel");
    env.tracker
        .start_pipeline(&card, 40, Map::new())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let t = env.tracker.clone();
        let card = card.clone();
        tasks.push(tokio::spawn(async move {
            t.update_stage(
                &card,
                &format!("stage-{i:02}"),
                StageUpdate::new(StageStatus::Completed).progress(100),
            )
            .await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), WriteOutcome::Written);
    }
    let c = env.tracker.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 32);
    let names: BTreeSet<_> = c.stages.iter().map(|s| s.stage_name.clone()).collect();
    assert_eq!(names.len(), 32);
    let h = env.tracker.history(&card, None, 1000).await.unwrap();
    assert_eq!(h.len(), 33);

    // 32 workers reporting the same stage completed: counted once.
    let card = format!("{p}-same-stage");
    env.tracker
        .start_pipeline(&card, 5, Map::new())
        .await
        .unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let t = env.tracker.clone();
            let card = card.clone();
            tokio::spawn(async move {
                t.update_stage(&card, "review", StageUpdate::new(StageStatus::Completed))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let c = env.tracker.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 1);
}

async fn glob_card_ids_stay_apart(env: &Env, p: &str) {
    let t = &env.tracker;
    let ids = [
        format!("{p}-g*"),
        format!("{p}-g?"),
        format!("{p}-g[ab]"),
        format!("{p}-ga"),
        format!("{p}-g\\x"),
    ];
    for (i, id) in ids.iter().enumerate() {
        t.start_pipeline(id, 1, Map::new()).await.unwrap();
        t.update_stage(
            id,
            &format!("own-{i}"),
            StageUpdate::new(StageStatus::Running),
        )
        .await
        .unwrap();
    }
    for (i, id) in ids.iter().enumerate() {
        let c = t.get_card(id).await.unwrap().unwrap();
        assert_eq!(&c.pipeline.card_id, id);
        let names: Vec<_> = c.stages.iter().map(|s| s.stage_name.clone()).collect();
        assert_eq!(
            names,
            [format!("own-{i}")],
            "card {id} sees only its stages"
        );
        let h = t.history(id, None, 10).await.unwrap();
        assert!(h.iter().all(|e| e.event.as_ref().unwrap().card_id() == id));
    }
    let listed = t.list_cards().await.unwrap();
    for id in &ids {
        assert!(listed.contains(id), "{id} listed");
    }
    // Names that would collide are refused before anything is written.
    assert!(t.start_pipeline("x:stage:y", 1, Map::new()).await.is_err());
    assert!(
        t.update_stage(&ids[0], "bad{tag}", StageUpdate::new(StageStatus::Running))
            .await
            .is_err()
    );
    assert!(
        t.update_stage(
            &ids[0],
            "s",
            StageUpdate::new(StageStatus::Running).progress(101)
        )
        .await
        .is_err()
    );
    assert!(
        t.complete_pipeline(&ids[0], PipelineStatus::Running, None)
            .await
            .is_err()
    );
}

async fn metadata_survives_untouched(env: &Env, p: &str) {
    let card = format!("{p}-meta");
    // Values a careless JSON round trip (e.g. Lua's cjson) would alter.
    let metadata = meta(json!({
        "empty_list": [],
        "empty_obj": {},
        "big": 9_007_199_254_740_993u64,
        "float": 0.1,
        "precise": 1_234_567.891_011_121_2,
        "url": "https://example.com/a/b",
        "text": "naïve “quotes” \u{1F600} \\ \" \n",
        "nested": {"list": [1, [], {"x": null}]},
    }));
    let t = &env.tracker;
    t.start_pipeline(&card, 2, metadata.clone()).await.unwrap();
    t.update_stage(&card, "a/b", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    t.complete_pipeline(&card, PipelineStatus::Failed, Some("boom"))
        .await
        .unwrap();
    let c = t.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.metadata, metadata.into());
    assert_eq!(c.pipeline.status, PipelineStatus::Failed);
    assert_eq!(c.stages[0].stage_name, "a/b");
    if let Some(raw) = &env.raw {
        let text =
            String::from_utf8(raw.get(&format!("artemis:pipeline:{card}")).unwrap()).unwrap();
        assert!(text.contains("\"empty_list\":[]"), "{text}");
        assert!(text.contains("9007199254740993"), "{text}");
    }
}

async fn subscriptions_deliver_events(env: &Env, p: &str) {
    let one = format!("{p}-sub-one");
    let other = format!("{p}-sub-other");
    let mut mine = env.tracker.subscribe_card(&one).await.unwrap();
    let mut all = env.tracker.subscribe_all().await.unwrap();
    env.tracker
        .start_pipeline(&other, 1, Map::new())
        .await
        .unwrap();
    env.tracker
        .start_pipeline(&one, 1, Map::new())
        .await
        .unwrap();
    env.tracker
        .update_stage(
            &one,
            "s",
            StageUpdate::new(StageStatus::Running).progress(5),
        )
        .await
        .unwrap();
    let e = next(&mut mine).await;
    assert!(
        matches!(e, PipelineEvent::PipelineStarted { ref card_id, total_stages: 1, .. } if card_id == &one)
    );
    let e = next(&mut mine).await;
    assert!(
        matches!(e, PipelineEvent::StageUpdated { ref card_id, progress_percent: Some(5), .. } if card_id == &one)
    );
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = next(&mut all).await;
        if e.card_id().starts_with(p) {
            seen.push(e.card_id().to_owned());
        }
    }
    // One card's events keep their order; on Cluster, cards published from different nodes
    // may interleave differently.
    seen.sort();
    assert_eq!(seen, [one.clone(), one.clone(), other.clone()]);
}

async fn snapshot_lists_cards_newest_first(env: &Env, p: &str) {
    let older = format!("{p}-snap-old");
    let newer = format!("{p}-snap-new");
    env.tracker
        .start_pipeline(&older, 2, Map::new())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    env.tracker
        .start_pipeline(&newer, 2, meta(json!({"cost_usd": 0.25})))
        .await
        .unwrap();
    env.tracker
        .update_stage(&newer, "one", StageUpdate::new(StageStatus::Skipped))
        .await
        .unwrap();
    let snap = artemis::snapshot::read_snapshot(&env.storage, Utc::now())
        .await
        .unwrap();
    let pos = |id: &str| {
        snap.cards
            .iter()
            .position(|c| c.pipeline.card_id == id)
            .unwrap_or_else(|| panic!("{id} in snapshot"))
    };
    assert!(pos(&newer) < pos(&older));
    let c = &snap.cards[pos(&newer)];
    assert_eq!(c.stages.len(), 1);
    assert_eq!(c.cost_usd, Some(0.25));
    assert!(snap.malformed.is_empty(), "{:?}", snap.malformed);
    assert_eq!(snap.source.backend, env.storage.backend());
    // One serializable type for the TUI and --once --format json.
    let text = serde_json::to_string(&snap).unwrap();
    let back: artemis::snapshot::Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back.cards.len(), snap.cards.len());
}

/// As the original: a completion clears `current_stage`; completing a card that has no
/// document writes and publishes nothing.
async fn completion_is_the_originals(env: &Env, p: &str) {
    let card = format!("{p}-done");
    let ghost = format!("{p}-ghost");
    let mut mine = env.tracker.subscribe_card(&ghost).await.unwrap();
    env.tracker
        .start_pipeline(&card, 1, Map::new())
        .await
        .unwrap();
    env.tracker
        .update_stage(&card, "deploy", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    env.tracker
        .complete_pipeline(&card, PipelineStatus::Completed, None)
        .await
        .unwrap();
    let c = env.tracker.get_card(&card).await.unwrap().unwrap();
    assert_eq!(c.pipeline.current_stage, None);
    assert_eq!(c.pipeline.status, PipelineStatus::Completed);

    env.tracker
        .complete_pipeline(&ghost, PipelineStatus::Completed, None)
        .await
        .unwrap();
    assert!(env.tracker.get_card(&ghost).await.unwrap().is_none());
    assert!(
        env.tracker
            .history(&ghost, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The next event on the ghost's channel is the start that follows, not a completion.
    env.tracker
        .start_pipeline(&ghost, 1, Map::new())
        .await
        .unwrap();
    assert!(matches!(
        next(&mut mine).await,
        PipelineEvent::PipelineStarted { .. }
    ));
}

async fn next(s: &mut artemis::tracker::EventStream) -> PipelineEvent {
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("event within 5 s")
        .expect("stream open")
        .expect("well-formed event")
}

async fn behaviour_suite(env: &Env) {
    lifecycle(env, "b1").await;
    repeated_completed_counts_once(env, "b2").await;
    concurrent_updates_lose_nothing(env, "b3").await;
    glob_card_ids_stay_apart(env, "b4").await;
    metadata_survives_untouched(env, "b5").await;
    subscriptions_deliver_events(env, "b6").await;
    snapshot_lists_cards_newest_first(env, "b7").await;
    completion_is_the_originals(env, "b8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behaviour_on_memory() {
    behaviour_suite(&Env::new(Backend::memory(Settings::default()), None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behaviour_on_standalone_redis() {
    let server = RedisServer::start();
    let env = Env::new(
        Backend::redis(server.settings()).await.unwrap(),
        Some(Raw::server(&server)),
    );
    behaviour_suite(&env).await;
    python_reads_what_we_write(&env, "w").await;
    we_read_and_drive_python_cards(&env, "py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behaviour_on_cluster() {
    let cluster = RedisCluster::start();
    let env = Env::new(
        Backend::redis(cluster.settings()).await.unwrap(),
        Some(Raw::cluster(&cluster)),
    );
    assert_eq!(env.storage.backend(), "cluster");
    behaviour_suite(&env).await;
    python_reads_what_we_write(&env, "w").await;
    we_read_and_drive_python_cards(&env, "py").await;
}

// ---------------------------------------------------------------------------------------------
// Python compatibility (Redis only).
// ---------------------------------------------------------------------------------------------

/// What this crate writes satisfies Python's reading rules; TTLs are the original's.
async fn python_reads_what_we_write(env: &Env, p: &str) {
    let raw = env.raw.as_ref().unwrap();
    let card = format!("{p}-pyreads");
    let t = &env.tracker;
    t.start_pipeline(&card, 2, meta(json!({"title": "T"})))
        .await
        .unwrap();
    let key = format!("artemis:pipeline:{card}");
    let doc = raw.get_json(&key);
    assert_python_pipeline(&doc);
    assert_eq!(doc["status"], "running");
    assert_eq!(doc["completed_stages"], 0);
    assert!(raw.ttl(&key) > 86_000);
    t.update_stage(
        &card,
        "dev",
        StageUpdate::new(StageStatus::Completed)
            .progress(100)
            .message("ok"),
    )
    .await
    .unwrap();
    let stage_key = format!("artemis:pipeline:{card}:stage:dev");
    let stage = raw.get_json(&stage_key);
    assert_python_stage(&stage);
    assert_eq!(stage["status"], "completed");
    assert_eq!(stage["progress_percent"], 100);
    assert!(raw.ttl(&stage_key) > 86_000);
    t.complete_pipeline(&card, PipelineStatus::Cancelled, None)
        .await
        .unwrap();
    let doc = raw.get_json(&key);
    assert_python_pipeline(&doc);
    assert_eq!(doc["status"], "cancelled");
    assert!(raw.ttl(&key) > 86_000);
    let history = format!("artemis:pipeline#history:{{artemis:pipeline:{card}}}");
    assert!(raw.ttl(&history) > 86_000);
    assert!(raw.ttl("artemis:pipeline#index") > 86_000);
    type Entries = Vec<(String, Vec<(String, Vec<u8>)>)>;
    let events: Entries = raw.query(redis::cmd("XRANGE").arg(&history).arg("-").arg("+"));
    assert_eq!(events.len(), 3);
    let mut docs = vec![raw.get(&key).unwrap(), raw.get(&stage_key).unwrap()];
    for (_, fields) in &events {
        let payload: Value = serde_json::from_slice(&fields[0].1).unwrap();
        assert!(is_naive(payload["timestamp"].as_str().unwrap()));
        docs.push(fields[0].1.clone());
    }
    let done: Value = serde_json::from_slice(&events[2].1[0].1).unwrap();
    assert_eq!(done["event"], "pipeline_completed");
    assert_eq!(done["status"], "cancelled");
    assert!(done["duration_seconds"].is_f64());
    python_accepts(&docs);
}

/// Cards written by Python (exactly as its json.dumps prints them, no index, no extension
/// fields) are listed, read and can be driven further by this crate.
async fn we_read_and_drive_python_cards(env: &Env, p: &str) {
    let raw = env.raw.as_ref().unwrap();
    let card = format!("{p}-python-card");
    let key = format!("artemis:pipeline:{card}");
    let metadata_text = r#"{"title": "Legacy \u00e9 / card", "priority": "high", "tags": [], "ratio": 0.30000000000000004}"#;
    let doc = format!(
        r#"{{"card_id": "{card}", "status": "running", "total_stages": 3, "completed_stages": 1, "current_stage": "review", "start_time": "2025-10-22T20:30:45", "end_time": null, "metadata": {metadata_text}}}"#
    );
    raw.set_ex(&key, doc.as_bytes());
    let stage = |name: &str, status: &str, ts: &str| {
        format!(
            r#"{{"stage_name": "{name}", "status": "{status}", "progress_percent": 100, "message": null, "timestamp": "{ts}", "metadata": {{}}}}"#
        )
    };
    raw.set_ex(
        &format!("{key}:stage:review"),
        stage("review", "running", "2025-10-22T20:40:00.000001").as_bytes(),
    );
    raw.set_ex(
        &format!("{key}:stage:analysis"),
        stage("analysis", "completed", "2025-10-22T20:31:00").as_bytes(),
    );

    // A fresh handle, so the SCAN for Python cards is not an earlier cached one.
    let reader_backend = Backend::redis(env.storage.settings().clone())
        .await
        .unwrap();
    let reader = Tracker::new(reader_backend.tracker().clone());
    assert!(reader.list_cards().await.unwrap().contains(&card));
    let c = reader
        .get_card(&card)
        .await
        .unwrap()
        .expect("Python card read");
    assert_eq!(c.pipeline.completed_stages, 1);
    assert_eq!(c.pipeline.start_time, "2025-10-22T20:30:45");
    assert_eq!(c.pipeline.metadata["ratio"], json!(0.30000000000000004));
    let names: Vec<_> = c.stages.iter().map(|s| s.stage_name.as_str()).collect();
    assert_eq!(names, ["analysis", "review"], "ordered by time");
    let snap = artemis::snapshot::read_snapshot(&reader_backend, Utc::now())
        .await
        .unwrap();
    let sc = snap
        .cards
        .iter()
        .find(|c| c.pipeline.card_id == card)
        .expect("Python card in the snapshot");
    assert_eq!(sc.stages.len(), 2);

    // Python cards whose ids hold glob characters: the stage SCAN matches only their own.
    for (id, stage_name) in [(format!("{p}-glob*"), "star"), (format!("{p}-globX"), "x")] {
        let k = format!("artemis:pipeline:{id}");
        raw.set_ex(&k, doc.replace(&card, &id).as_bytes());
        raw.set_ex(
            &format!("{k}:stage:{stage_name}"),
            stage(stage_name, "running", "2025-10-22T20:40:00").as_bytes(),
        );
    }
    let g = reader
        .get_card(&format!("{p}-glob*"))
        .await
        .unwrap()
        .unwrap();
    let names: Vec<_> = g.stages.iter().map(|s| s.stage_name.as_str()).collect();
    assert_eq!(
        names,
        ["star"],
        "only its own stages, plus its current stage if any"
    );

    // Drive it: Python's own fields are kept byte for byte, ours are added.
    reader
        .update_stage(&card, "review", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    reader
        .complete_pipeline(&card, PipelineStatus::Completed, Some("ok"))
        .await
        .unwrap();
    let text = String::from_utf8(raw.get(&key).unwrap()).unwrap();
    assert!(text.contains(metadata_text), "metadata rewritten: {text}");
    let now_doc: Value = serde_json::from_str(&text).unwrap();
    assert_python_pipeline(&now_doc);
    assert_eq!(now_doc["completed_stages"], 2);
    assert_eq!(
        now_doc["current_stage"],
        Value::Null,
        "a finished card is in no stage, as the original writes it"
    );
    let d = now_doc["duration_seconds"].as_f64().unwrap();
    let expected = (Utc::now().naive_utc()
        - chrono::NaiveDateTime::parse_from_str("2025-10-22T20:30:45", "%Y-%m-%dT%H:%M:%S")
            .unwrap())
    .num_milliseconds() as f64
        / 1000.0;
    assert!((d - expected).abs() < 5.0, "{d} vs {expected}");
    python_accepts(&[text.into_bytes()]);

    // And Python can keep driving a card we started: its read-modify-write keeps our fields.
    let ours = format!("{p}-ours");
    env.tracker
        .start_pipeline(&ours, 3, Map::new())
        .await
        .unwrap();
    env.tracker
        .update_stage(&ours, "a", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    let okey = format!("artemis:pipeline:{ours}");
    let mut py: Value = raw.get_json(&okey);
    py["current_stage"] = "b".into();
    py["completed_stages"] = (py["completed_stages"].as_i64().unwrap() + 1).into();
    raw.set_ex(&okey, serde_json::to_string(&py).unwrap().as_bytes());
    raw.set_ex(
        &format!("{okey}:stage:b"),
        stage("b", "completed", "2030-01-01T00:00:00").as_bytes(),
    );
    env.tracker
        .update_stage(&ours, "c", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    // A reader finds the stage Python added by its periodic SCAN (this one's last SCAN is
    // older than stage b; a new reader scans at once).
    let reader = support::tracker(env.storage.settings().clone()).await;
    let c = reader.get_card(&ours).await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 3);
    let names: Vec<_> = c.stages.iter().map(|s| s.stage_name.as_str()).collect();
    assert_eq!(
        names,
        ["a", "c", "b"],
        "our order first, then the stage Python added"
    );
}

// ---------------------------------------------------------------------------------------------
// Outages, script cache loss, malformed data (Redis only).
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_during_an_outage_are_replayed_in_order() {
    let mut server = RedisServer::start();
    let storage = Backend::redis(server.settings()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    tracker
        .start_pipeline("before", 1, Map::new())
        .await
        .unwrap();
    server.kill();

    let started = Instant::now();
    let mut outcomes = Vec::new();
    outcomes.push(
        tracker
            .start_pipeline("during", 3, meta(json!({"title": "x"})))
            .await
            .unwrap(),
    );
    for (i, stage) in ["one", "two", "three"].iter().enumerate() {
        outcomes.push(
            tracker
                .update_stage(
                    "during",
                    stage,
                    StageUpdate::new(StageStatus::Completed).progress(100),
                )
                .await
                .unwrap(),
        );
        outcomes.push(
            tracker
                .update_stage(
                    "before",
                    &format!("late-{i}"),
                    StageUpdate::new(StageStatus::Running),
                )
                .await
                .unwrap(),
        );
    }
    outcomes.push(
        tracker
            .complete_pipeline("during", PipelineStatus::Completed, Some("done offline"))
            .await
            .unwrap(),
    );
    assert!(
        outcomes.iter().all(|o| *o == WriteOutcome::Buffered),
        "{outcomes:?}"
    );
    // Never longer than the command timeout (2 s in tests) for the whole batch.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(tracker.buffer().stats().pending, 8);
    // Reads say Redis is unreachable instead of returning nothing.
    let err = artemis::snapshot::read_snapshot(&storage, Utc::now())
        .await
        .unwrap_err();
    assert!(err.is_outage(), "{err}");

    let restarted_at = Utc::now().naive_utc();
    server.start_again();
    assert!(tracker.buffer().wait_drained(Duration::from_secs(15)).await);
    let s = tracker.buffer().stats();
    assert_eq!((s.buffered, s.replayed, s.dropped, s.failed), (8, 8, 0, 0));

    let raw = Raw::server(&server);
    let doc = raw.get_json("artemis:pipeline:during");
    assert_python_pipeline(&doc);
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["completed_stages"], 3);
    assert_eq!(doc["metadata"]["title"], "x");
    for stage in ["one", "two", "three"] {
        assert!(
            raw.get(&format!("artemis:pipeline:during:stage:{stage}"))
                .is_some()
        );
    }
    for i in 0..3 {
        assert!(
            raw.get(&format!("artemis:pipeline:before:stage:late-{i}"))
                .is_some()
        );
    }
    // In order: the history holds the events as they were made.
    let h = tracker.history("during", None, 100).await.unwrap();
    let stages: Vec<String> = h
        .iter()
        .filter_map(|e| match e.event.as_ref().unwrap() {
            PipelineEvent::StageUpdated { stage_name, .. } => Some(stage_name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stages, ["one", "two", "three"]);
    assert!(matches!(
        h.last().unwrap().event.as_ref().unwrap(),
        PipelineEvent::PipelineCompleted { .. }
    ));
    // The replayed completion kept the time it was made, not the replay time.
    let end = doc["end_time"].as_str().unwrap();
    let end = chrono::NaiveDateTime::parse_from_str(end, "%Y-%m-%dT%H:%M:%S%.f").unwrap();
    assert!(end < restarted_at, "{end} vs {restarted_at}");
    // Back to direct writes.
    assert_eq!(
        tracker
            .update_stage("during", "after", StageUpdate::new(StageStatus::Running))
            .await
            .unwrap(),
        WriteOutcome::Written
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_is_counted_not_silent() {
    let mut server = RedisServer::start();
    let mut settings = server.settings();
    settings.tracker.outage_buffer = 3;
    let tracker = Tracker::new(Backend::redis(settings).await.unwrap().tracker().clone());
    server.kill();
    let mut outcomes = Vec::new();
    for i in 0..5 {
        outcomes.push(
            tracker
                .start_pipeline(&format!("c{i}"), 1, Map::new())
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        outcomes,
        [
            WriteOutcome::Buffered,
            WriteOutcome::Buffered,
            WriteOutcome::Buffered,
            WriteOutcome::Dropped,
            WriteOutcome::Dropped
        ]
    );
    server.start_again();
    assert!(tracker.buffer().wait_drained(Duration::from_secs(15)).await);
    let s = tracker.buffer().stats();
    assert_eq!((s.buffered, s.replayed, s.dropped), (3, 3, 2));
    let raw = Raw::server(&server);
    assert!(raw.get("artemis:pipeline:c2").is_some());
    assert!(raw.get("artemis:pipeline:c3").is_none());
}

#[tokio::test]
async fn a_flushed_script_cache_is_reloaded() {
    let server = RedisServer::start();
    let tracker = support::tracker(server.settings()).await;
    tracker.start_pipeline("c", 2, Map::new()).await.unwrap();
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    tracker
        .update_stage("c", "s", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    let c = tracker.get_card("c").await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 1);
    assert_eq!(tracker.buffer().stats().buffered, 0);
}

#[tokio::test]
async fn malformed_documents_are_reported_not_fatal() {
    let server = RedisServer::start();
    let storage = Backend::redis(server.settings()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    tracker.start_pipeline("good", 2, Map::new()).await.unwrap();
    tracker
        .update_stage("good", "s", StageUpdate::new(StageStatus::Running))
        .await
        .unwrap();
    let raw = Raw::server(&server);
    raw.set_ex("artemis:pipeline:bad-json", b"{not json");
    raw.set_ex(
        "artemis:pipeline:bad-types",
        br#"{"card_id": "bad-types", "status": "running", "total_stages": "eight", "completed_stages": 0, "current_stage": null, "start_time": "2025-10-22T20:30:45", "end_time": null, "metadata": {}}"#,
    );
    raw.set_ex("artemis:pipeline:bad-utf8", b"\xff\xfe{}");
    let mut huge = br#"{"card_id": "huge", "metadata": {"blob": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    huge.extend(br#""}}"#);
    raw.set_ex("artemis:pipeline:huge", &huge);
    raw.set_ex("artemis:pipeline:good:stage:broken", b"[]");
    raw.query::<()>(
        redis::cmd("HSET")
            .arg("artemis:pipeline:a-hash")
            .arg("f")
            .arg("v"),
    );
    let mut events = tracker.subscribe_all().await.unwrap();
    raw.query::<()>(
        redis::cmd("PUBLISH")
            .arg("artemis:pipeline:events:x")
            .arg("not an event"),
    );
    let bad = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bad.unwrap_err().key, "artemis:pipeline:events:x");
    let snap = artemis::snapshot::read_snapshot(&storage, Utc::now())
        .await
        .unwrap();
    assert_eq!(snap.cards.len(), 1, "{:?}", snap.cards);
    assert_eq!(snap.cards[0].stages.len(), 1);
    let bad: BTreeSet<&str> = snap.malformed.iter().map(|m| m.key.as_str()).collect();
    // The SCAN also found a stage document next to one of our cards: fetched and reported.
    assert_eq!(
        bad,
        [
            "artemis:pipeline:bad-json",
            "artemis:pipeline:bad-types",
            "artemis:pipeline:bad-utf8",
            "artemis:pipeline:good:stage:broken",
            "artemis:pipeline:huge",
        ]
        .into_iter()
        .collect(),
        "{:?}",
        snap.malformed
    );
    // Reading that card by id follows its own stage list and still works.
    assert_eq!(
        tracker
            .get_card("good")
            .await
            .unwrap()
            .unwrap()
            .stages
            .len(),
        1
    );
    let err = tracker.get_card("bad-types").await.unwrap_err();
    assert!(err.to_string().contains("malformed"), "{err}");

    // Our card whose script target was corrupted: left alone, the event is still recorded.
    raw.set_ex("artemis:pipeline:good", b"[1, 2]");
    tracker
        .update_stage("good", "s2", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    assert_eq!(raw.get("artemis:pipeline:good").unwrap(), b"[1, 2]");
    assert_eq!(tracker.history("good", None, 10).await.unwrap().len(), 3);
}

#[tokio::test]
async fn snapshot_costs_a_fixed_number_of_round_trips() {
    let server = RedisServer::start();
    let storage = Backend::redis(server.settings()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    for i in 0..1500 {
        let card = format!("card-{i}");
        tracker.start_pipeline(&card, 2, Map::new()).await.unwrap();
        tracker
            .update_stage(&card, "a", StageUpdate::new(StageStatus::Completed))
            .await
            .unwrap();
    }
    let calls = |name: &str| -> u64 {
        let stats = server.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let before = (calls("mget"), calls("scan"), calls("zrangebyscore"));
    let read = storage.tracker().read_cards(Utc::now()).await.unwrap();
    assert_eq!(read.cards.len(), 1500);
    assert!(read.cards.iter().all(|c| c.stages.len() == 1));
    let after = (calls("mget"), calls("scan"), calls("zrangebyscore"));
    // 2 MGETs of ≤1000 keys for documents, 2 for stages; the first read also scans once
    // for Python-written cards (a handful of SCAN calls over this small keyspace).
    assert_eq!(after.0 - before.0, 4);
    assert_eq!(after.2 - before.2, 1);
    let scans = after.1 - before.1;
    assert!((1..=10).contains(&scans), "{scans}");
    // The next read reuses that SCAN.
    storage.tracker().read_cards(Utc::now()).await.unwrap();
    assert_eq!(calls("scan"), after.1);
    assert_eq!(calls("mget"), after.0 + 4);
}

#[tokio::test]
async fn stage_report_replays_through_the_store_trait() {
    // The buffer's Replay objects are plain values: the same write applied twice is harmless
    // for the document (a stage counts once), which is what a replay after a timeout needs.
    let server = RedisServer::start();
    let storage = Backend::redis(server.settings()).await.unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    tracker.start_pipeline("r", 3, Map::new()).await.unwrap();
    let report = StageReport {
        card_id: "r".into(),
        stage_name: "s".into(),
        status: StageStatus::Completed,
        progress_percent: Some(100),
        message: None,
        metadata: Map::new(),
        at: Utc::now(),
    };
    storage.tracker().update_stage(&report).await.unwrap();
    storage.tracker().update_stage(&report).await.unwrap();
    let c = tracker.get_card("r").await.unwrap().unwrap();
    assert_eq!(c.pipeline.completed_stages, 1);
}

/// The script edits documents in place whatever their shape: the quick path (unique key text)
/// and the general scan (names that also occur nested or as values, duplicate keys, `\u`
/// escapes) give the same fields, and nothing outside the script's own fields changes.
#[tokio::test]
async fn documents_of_any_shape_are_edited_in_place() {
    let server = RedisServer::start();
    let tracker = support::tracker(server.settings()).await;
    let raw = Raw::server(&server);
    let text = |card: &str| {
        String::from_utf8(raw.get(&format!("artemis:pipeline:{card}")).unwrap()).unwrap()
    };

    // Our field names nested in the metadata.
    let nested = meta(json!({
        "status": "nested", "current_stage": "nested", "completed_stages": 99,
        "_stages": ["n"], "_completed": [], "end_time": "x", "duration_seconds": 1
    }));
    tracker
        .start_pipeline("nested", 2, nested.clone())
        .await
        .unwrap();
    tracker
        .update_stage("nested", "s1", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    tracker
        .complete_pipeline("nested", PipelineStatus::Failed, None)
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&text("nested")).unwrap();
    assert_python_pipeline(&doc);
    assert_eq!(doc["metadata"], Value::Object(nested));
    assert_eq!(
        doc["current_stage"],
        Value::Null,
        "cleared by the completion"
    );
    assert_eq!(doc["completed_stages"], 1);
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["_stages"], json!(["s1"]));

    // Stage names equal to field names (the key text is no longer unique).
    tracker
        .start_pipeline("names", 3, Map::new())
        .await
        .unwrap();
    for stage in ["status", "current_stage", "_completed"] {
        tracker
            .update_stage("names", stage, StageUpdate::new(StageStatus::Completed))
            .await
            .unwrap();
    }
    let doc: Value = serde_json::from_str(&text("names")).unwrap();
    assert_python_pipeline(&doc);
    assert_eq!(doc["status"], "running");
    assert_eq!(doc["current_stage"], "_completed");
    assert_eq!(doc["completed_stages"], 3);
    assert_eq!(
        doc["_stages"],
        json!(["status", "current_stage", "_completed"])
    );
    assert_eq!(
        doc["_completed"],
        json!(["status", "current_stage", "_completed"])
    );

    // Python's spacing, no extension fields: untouched parts stay byte for byte.
    let python = r#"  {"card_id": "py", "status": "running", "total_stages": 2, "completed_stages": 0, "current_stage": null, "start_time": "2026-01-01T00:00:00", "end_time": null, "metadata": {"title": "A/B", "n": 1.0, "l": []}}  "#;
    raw.set_ex("artemis:pipeline:py", python.as_bytes());
    tracker
        .update_stage("py", "dev", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    let t = text("py");
    assert!(t.starts_with(r#"  {"card_id": "py", "status": "running", "total_stages": 2, "completed_stages": 1, "current_stage": "dev", "start_time": "2026-01-01T00:00:00", "end_time": null, "metadata": {"title": "A/B", "n": 1.0, "l": []}"#), "{t}");
    let doc: Value = serde_json::from_str(&t).unwrap();
    assert_eq!(doc["_stages"], json!(["dev"]));

    // Duplicate top-level keys (Python's json.loads keeps the last): both are set.
    raw.set_ex(
        "artemis:pipeline:dup",
        br#"{"card_id":"dup","status":"running","total_stages":2,"completed_stages":0,"current_stage":"a","start_time":"2026-01-01T00:00:00","end_time":null,"metadata":{},"current_stage":"b"}"#,
    );
    tracker
        .update_stage("dup", "c", StageUpdate::new(StageStatus::Running))
        .await
        .unwrap();
    let t = text("dup");
    assert_eq!(t.matches(r#""current_stage":"c""#).count(), 2, "{t}");

    // An escaped key spelling (\u) goes through the general scan.
    raw.set_ex(
        "artemis:pipeline:esc",
        br#"{"card_id":"esc","st\u0061tus":"running","total_stages":2,"completed_stages":0,"current_stage":null,"start_time":"2026-01-01T00:00:00","end_time":null,"metadata":{"status":"keep"}}"#,
    );
    tracker
        .complete_pipeline("esc", PipelineStatus::Cancelled, None)
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&text("esc")).unwrap();
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["metadata"]["status"], "keep");
    assert!(doc["duration_seconds"].as_f64().unwrap() > 0.0);

    // An empty object gets the fields it lacks.
    raw.set_ex("artemis:pipeline:empty", b" {} ");
    tracker
        .update_stage("empty", "s", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&text("empty")).unwrap();
    assert_eq!(doc["current_stage"], "s");
    assert_eq!(doc["completed_stages"], 1);
}

/// Calls of the tracker script the server has run so far (EVALSHA and EVAL).
fn script_calls(server: &RedisServer) -> u64 {
    server
        .cli(&["INFO", "commandstats"])
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Many writers on one connection: their writes share script calls (fewer calls than
/// writes), and every card's history is exactly the order its writer made them in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_script_calls_and_keep_each_cards_order() {
    let server = RedisServer::start();
    let tracker = support::tracker(server.settings()).await;
    let (writers, stages) = (16, 12);
    for w in 0..writers {
        tracker
            .start_pipeline(&format!("w{w}"), stages, Map::new())
            .await
            .unwrap();
    }
    let before = script_calls(&server);
    // The first writes held for a moment, so that they are certainly made concurrently.
    assert_eq!(server.cli(&["CLIENT", "PAUSE", "200", "WRITE"]), "OK");
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let t = tracker.clone();
            tokio::spawn(async move {
                for s in 0..stages {
                    let outcome = t
                        .update_stage(
                            &format!("w{w}"),
                            &format!("s{s:02}"),
                            StageUpdate::new(StageStatus::Completed).progress(100),
                        )
                        .await
                        .unwrap();
                    assert_eq!(outcome, WriteOutcome::Written);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let calls = script_calls(&server) - before;
    let writes = u64::from(writers * stages);
    assert!(calls < writes, "{calls} script calls for {writes} writes");
    for w in 0..writers {
        let card = format!("w{w}");
        let c = tracker.get_card(&card).await.unwrap().unwrap();
        assert_eq!(c.pipeline.completed_stages, i64::from(stages));
        let h = tracker.history(&card, None, 1000).await.unwrap();
        let order: Vec<String> = h
            .iter()
            .filter_map(|e| match e.event.as_ref().unwrap() {
                PipelineEvent::StageUpdated { stage_name, .. } => Some(stage_name.clone()),
                _ => None,
            })
            .collect();
        let want: Vec<String> = (0..stages).map(|s| format!("s{s:02}")).collect();
        assert_eq!(order, want, "history of {card}");
    }
}

/// A write that Redis rejects (here: the card's history overwritten with a string) fails
/// alone: the writes batched with it, before and after it, are all stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_write_fails_alone_in_its_batch() {
    let server = RedisServer::start();
    let tracker = support::tracker(server.settings()).await;
    for card in ["good", "bad"] {
        tracker.start_pipeline(card, 100, Map::new()).await.unwrap();
    }
    server.cli(&[
        "SET",
        "artemis:pipeline#history:{artemis:pipeline:bad}",
        "not a stream",
    ]);
    let before = script_calls(&server);
    // Writes held for a moment, so that all of them are made while the first ones are in
    // flight (otherwise a fast server may answer each before the next is made).
    assert_eq!(server.cli(&["CLIENT", "PAUSE", "300", "WRITE"]), "OK");
    let writes = (0..60).map(|i| {
        let t = tracker.clone();
        async move {
            let card = if i % 3 == 1 { "bad" } else { "good" };
            let r = t
                .update_stage(
                    card,
                    &format!("s{i:02}"),
                    StageUpdate::new(StageStatus::Running),
                )
                .await;
            (card, r)
        }
    });
    let results = futures::future::join_all(writes).await;
    assert!(
        script_calls(&server) - before < 60,
        "the writes were not batched"
    );
    for (card, r) in &results {
        match *card {
            "good" => assert_eq!(r.as_ref().unwrap(), &WriteOutcome::Written),
            _ => assert!(
                r.as_ref().is_err_and(|e| e.is_wrong_type()),
                "a write to the bad card: {r:?}"
            ),
        }
    }
    let h = tracker.history("good", None, 1000).await.unwrap();
    assert_eq!(h.len(), 1 + 40, "start and the 40 stage updates");
    assert_eq!(tracker.buffer().stats().buffered, 0);
}

/// A stage update that changes nothing in the pipeline document (a progress report) leaves
/// its text byte for byte and still refreshes its TTL, as a rewrite would.
#[tokio::test]
async fn a_progress_report_keeps_the_document_and_refreshes_its_ttl() {
    let server = RedisServer::start();
    let raw = Raw::server(&server);
    let tracker = support::tracker(server.settings()).await;
    tracker
        .start_pipeline("p", 3, meta(json!({"url": "a/b", "list": []})))
        .await
        .unwrap();
    tracker
        .update_stage("p", "build", StageUpdate::new(StageStatus::Running))
        .await
        .unwrap();
    let key = "artemis:pipeline:p";
    let before = raw.get(key).unwrap();
    raw.query::<()>(redis::cmd("EXPIRE").arg(key).arg(100));
    tracker
        .update_stage(
            "p",
            "build",
            StageUpdate::new(StageStatus::Running).progress(40),
        )
        .await
        .unwrap();
    assert_eq!(raw.get(key).unwrap(), before);
    assert!(raw.ttl(key) > 86_000, "TTL {}", raw.ttl(key));
    let stage = raw.get_json("artemis:pipeline:p:stage:build");
    assert_eq!(stage["progress_percent"], 40);
}

/// The tracker script's ops in the order the server ran them, from the slow log (every call
/// logged, see `slow_log_every_call`): one script call per write when writes are sequential.
fn script_ops(server: &RedisServer) -> Vec<String> {
    let log = server.cli(&["SLOWLOG", "GET", "100000"]);
    let mut ops: Vec<String> = log
        .lines()
        .filter(|l| matches!(*l, "start" | "stage" | "stage_known" | "complete"))
        .map(str::to_owned)
        .collect();
    // The slow log lists the newest call first.
    ops.reverse();
    ops
}

fn slow_log_every_call(server: &RedisServer) {
    server.cli(&["CONFIG", "SET", "slowlog-max-len", "100000"]);
    server.cli(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    server.cli(&["SLOWLOG", "RESET"]);
}

/// A writer that started a card knows its document and sends its own edit of it, which the
/// script stores without decoding it (`stage_known`): the stored text is byte for byte what
/// the script's general edit makes of the same document for the same updates, including
/// stage names that are also field names and metadata that forces the general scan.
#[tokio::test]
async fn known_documents_are_written_as_the_script_would_edit_them() {
    use artemis::tracker::PipelineStart;
    let known_server = RedisServer::start();
    let general_server = RedisServer::start();
    let known = Backend::redis(known_server.settings()).await.unwrap();
    // Loads the script, so that the log holds no NOSCRIPT attempt.
    Tracker::new(known.tracker().clone())
        .start_pipeline("warm", 1, Map::new())
        .await
        .unwrap();
    slow_log_every_call(&known_server);
    let starter = Backend::redis(general_server.settings()).await.unwrap();
    // A second handle did not start the card: it knows nothing and takes the general path.
    let general = Backend::redis(general_server.settings()).await.unwrap();
    let at = Utc::now();
    let metas = [
        json!({}),
        json!({"title": "T/1", "current_stage": "x", "_stages": [], "ctl": "\u{1}é"}),
    ];
    let updates = [
        ("a", StageStatus::Running),
        ("a", StageStatus::Running),
        ("a", StageStatus::Completed),
        ("a", StageStatus::Completed),
        ("current_stage", StageStatus::Completed),
        ("b \"q\"", StageStatus::Failed),
        ("c", StageStatus::Completed),
        ("a", StageStatus::Running),
    ];
    for (i, meta) in metas.iter().enumerate() {
        let card = format!("card-{i}");
        let key = format!("artemis:pipeline:{card}");
        let start = PipelineStart {
            card_id: card.clone(),
            total_stages: 3,
            metadata: meta.as_object().unwrap().clone(),
            at,
        };
        known.tracker().start_pipeline(&start).await.unwrap();
        starter.tracker().start_pipeline(&start).await.unwrap();
        for (stage, status) in updates {
            let report = StageReport {
                card_id: card.clone(),
                stage_name: stage.into(),
                status,
                progress_percent: Some(10),
                message: None,
                metadata: Map::new(),
                at,
            };
            known.tracker().update_stage(&report).await.unwrap();
            general.tracker().update_stage(&report).await.unwrap();
            let a = known_server.cli(&["GET", &key]);
            let b = general_server.cli(&["GET", &key]);
            assert_eq!(a, b, "{card} after {stage} {status:?}");
        }
        let doc: Value = serde_json::from_str(&known_server.cli(&["GET", &key])).unwrap();
        assert_python_pipeline(&doc);
        assert_eq!(doc["completed_stages"], 3);
    }
    let ops = script_ops(&known_server);
    let mut want = Vec::new();
    for _ in &metas {
        want.push("start");
        want.extend(std::iter::repeat_n("stage_known", updates.len()));
    }
    assert_eq!(ops, want);
}

/// When the stored document is not the text the writer expects (here another writer changed
/// it), the script takes the general path: the other writer's edit is kept, this one is
/// applied to it, and the writer's later updates of the card use the general path.
#[tokio::test]
async fn a_document_changed_by_another_writer_is_edited_by_the_general_path() {
    let server = RedisServer::start();
    let raw = Raw::server(&server);
    let tracker = support::tracker(server.settings()).await;
    tracker.start_pipeline("warm", 1, Map::new()).await.unwrap();
    slow_log_every_call(&server);
    tracker.start_pipeline("c", 4, Map::new()).await.unwrap();
    tracker
        .update_stage("c", "a", StageUpdate::new(StageStatus::Completed))
        .await
        .unwrap();
    // Another writer's read-modify-write, as Python does it (its spacing, a field it adds).
    let mut doc = raw.get_json("artemis:pipeline:c");
    doc["metadata"] = json!({"by": "python"});
    raw.set_ex("artemis:pipeline:c", python_dumps(&doc).as_bytes());
    for stage in ["b", "c"] {
        tracker
            .update_stage("c", stage, StageUpdate::new(StageStatus::Completed))
            .await
            .unwrap();
    }
    let text = String::from_utf8(raw.get("artemis:pipeline:c").unwrap()).unwrap();
    assert!(text.contains(r#""metadata": {"by": "python"}"#), "{text}");
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["completed_stages"], 3);
    assert_eq!(doc["_completed"], json!(["a", "b", "c"]));
    assert_eq!(doc["current_stage"], "c");
    assert_eq!(
        script_ops(&server),
        ["start", "stage_known", "stage_known", "stage"],
        "the stale copy is dropped after its first miss"
    );
}

/// JSON as Python's `json.dumps` prints it by default (`", "` and `": "` separators).
fn python_dumps(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let fields: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), python_dumps(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_dumps).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// The history is trimmed approximately (whole stream nodes): it keeps at least the last
/// `tracker.history_max_events` events and at most one node (100 entries) more, and a reader
/// asking for the last N still gets exactly the last N, in order.
#[tokio::test]
async fn the_history_keeps_at_least_the_last_n_events_and_at_most_a_node_more() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    settings.tracker.history_max_events = 10;
    let tracker = support::tracker(settings).await;
    tracker.start_pipeline("h", 1000, Map::new()).await.unwrap();
    let key = "artemis:pipeline#history:{artemis:pipeline:h}";
    let node = 100;
    for i in 0..(3 * node) {
        tracker
            .update_stage(
                "h",
                &format!("s{i:03}"),
                StageUpdate::new(StageStatus::Running),
            )
            .await
            .unwrap();
        let len: u64 = server.cli(&["XLEN", key]).parse().unwrap();
        let written = i as u64 + 2;
        assert!(
            len >= written.min(10) && len <= 10 + node as u64,
            "{len} events kept after {written}"
        );
    }
    let last = tracker.history("h", None, 10).await.unwrap();
    let names: Vec<String> = last
        .iter()
        .map(|e| match e.event.as_ref().unwrap() {
            PipelineEvent::StageUpdated { stage_name, .. } => stage_name.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    let want: Vec<String> = (290..300).map(|i| format!("s{i:03}")).collect();
    assert_eq!(names, want);
}
