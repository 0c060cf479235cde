//! The faults a reachable server brings, against real servers: a server at `maxmemory` under
//! `noeviction` (OOM replies), a server turned into a replica and back (READONLY replies, what
//! a failover looks like to a client still talking to the old master), a server frozen by
//! SIGSTOP, one Cluster master refusing while the others accept, writes Redis rejects for good
//! (NOPERM), and a server idle `timeout` shorter than the dashboard's poll interval.
//!
//! What must hold: every write made while writes are refused is kept and lands once they pass
//! again (the writers' own counts equal what Redis holds, metrics exactly once); a rejection
//! that waiting cannot cure is counted per code and never queued; the state is shown (the
//! connection's health, `--once --format json`, the dashboard's header); live events keep
//! arriving through the command connection's reconnects.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use artemis::Backend;
use artemis::buffer::OutageBuffer;
use artemis::config::Settings;
use artemis::connection::ConnState;
use artemis::feed::StorageFeed;
use artemis::metrics::{LlmRequestRecord, Metrics};
use artemis::model::{PipelineStatus, StageStatus};
use artemis::store::Store;
use artemis::tracker::{StageUpdate, Tracker};
use artemis::tui::app::App;
use artemis::tui::message::Message;
use artemis::tui::source;
use support::{RedisCluster, RedisServer, ServerOptions};
use tokio::sync::mpsc;

/// A tracker and a metrics handle sharing one outage buffer, as a pipeline process has them.
async fn writers(settings: Settings) -> (Backend, Tracker, Metrics, OutageBuffer) {
    let backend = Backend::redis(settings).await.unwrap();
    let buffer = OutageBuffer::for_store(&backend);
    let tracker = Tracker::with_buffer(backend.tracker().clone(), buffer.clone());
    let metrics = Metrics::with_buffer(backend.metrics().clone(), buffer.clone());
    (backend, tracker, metrics, buffer)
}

fn request(i: u64) -> LlmRequestRecord {
    LlmRequestRecord {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        prompt_tokens: 10 + i % 7,
        completion_tokens: 5,
        cost: 0.25,
        cache_hit: i.is_multiple_of(3),
        latency_ms: 12.0,
        saved_cost: 0.0,
        at: None,
    }
}

/// What writers wrote, by their own count.
#[derive(Debug, Default)]
struct Written {
    cards: Vec<String>,
    requests: u64,
    prompt_tokens: u64,
}

/// Four writer tasks, each running cards of three stages with one LLM request per stage,
/// until `run_for` has passed. Every call must succeed (buffered or written).
async fn write_for(tracker: &Tracker, metrics: &Metrics, tag: &str, run_for: Duration) -> Written {
    let deadline = Instant::now() + run_for;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (tracker, metrics, tag) = (tracker.clone(), metrics.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut out = Written::default();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let card = format!("{tag}-{w}-{n}");
                tracker
                    .start_pipeline(&card, 3, Default::default())
                    .await
                    .unwrap();
                for stage in ["plan", "build", "test"] {
                    // A pipeline's pace: a buffered write returns at once, so an unpaced
                    // loop would only measure how fast the buffer fills.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    tracker
                        .update_stage(&card, stage, StageUpdate::new(StageStatus::Running))
                        .await
                        .unwrap();
                    let r = request(n);
                    out.prompt_tokens += r.prompt_tokens;
                    metrics.track_llm_request(r).await.unwrap();
                    out.requests += 1;
                    tracker
                        .update_stage(&card, stage, StageUpdate::new(StageStatus::Completed))
                        .await
                        .unwrap();
                }
                tracker
                    .complete_pipeline(&card, PipelineStatus::Completed, None)
                    .await
                    .unwrap();
                out.cards.push(card);
                n += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            out
        }));
    }
    let mut all = Written::default();
    for t in tasks {
        let w = t.await.unwrap();
        all.cards.extend(w.cards);
        all.requests += w.requests;
        all.prompt_tokens += w.prompt_tokens;
    }
    all
}

/// [`write_for`] in a task of its own, so that the test can fault the server meanwhile.
fn spawn_writers(
    tracker: &Tracker,
    metrics: &Metrics,
    tag: &str,
    run_for: Duration,
) -> tokio::task::JoinHandle<Written> {
    let (tracker, metrics, tag) = (tracker.clone(), metrics.clone(), tag.to_owned());
    tokio::spawn(async move { write_for(&tracker, &metrics, &tag, run_for).await })
}

/// Nothing left, dropped or failed: every write the buffer kept was replayed.
fn assert_every_buffered_write_replayed(s: &artemis::buffer::BufferStats) {
    assert_eq!((s.dropped, s.failed, s.pending), (0, 0, 0), "{s:?}");
    assert_eq!(s.replayed, s.buffered, "{s:?}");
}

/// Every card the writers made is in Redis, completed with its three stages, and the LLM
/// totals are exactly the writers' (each request counted once).
async fn assert_all_landed(backend: &Backend, written: &Written) {
    let snap = artemis::snapshot::read_snapshot(backend, chrono::Utc::now())
        .await
        .unwrap();
    for card in &written.cards {
        let c = snap
            .cards
            .iter()
            .find(|c| &c.pipeline.card_id == card)
            .unwrap_or_else(|| panic!("card {card} is missing"));
        assert_eq!(c.pipeline.status, PipelineStatus::Completed, "{card}");
        assert_eq!(c.pipeline.completed_stages, 3, "{card}");
    }
    assert_eq!(snap.cards.len(), written.cards.len());
    let llm = &snap.metrics.llm;
    assert_eq!(llm.total_requests as u64, written.requests, "LLM requests");
    assert_eq!(llm.prompt_tokens as u64, written.prompt_tokens, "tokens");
}

/// Polls `f` every 50 ms until it holds, at most `limit`.
async fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The server's count of connections accepted so far.
fn connections_received(server: &RedisServer) -> u64 {
    let info = server.cli(&["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("INFO stats has total_connections_received")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_with_oom_for_six_seconds_all_land_exactly_once() {
    let server = RedisServer::start();
    let (backend, tracker, metrics, buffer) = writers(server.settings()).await;
    let redis = backend.redis().unwrap().clone();
    let writing = spawn_writers(&tracker, &metrics, "oom", Duration::from_secs(9));
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let refused_at = Instant::now();
    // The writers see OOM replies: the health says so, while the connection stays up.
    eventually(
        "the OOM refusal in the health",
        Duration::from_secs(3),
        || {
            redis
                .current_health()
                .refusal_at(chrono::Utc::now())
                .is_some_and(|r| r.code == "OOM")
        },
    )
    .await;
    assert!(
        redis.current_state().is_up(),
        "a refusal is not a lost connection"
    );
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(refused_at.elapsed())).await;
    let during = buffer.stats();
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    let accepted_at = Instant::now();
    // The backlog starts landing at the drain's next retry (at most MAX_RETRY_PAUSE later).
    eventually("the backlog landing", Duration::from_secs(10), || {
        buffer.stats().replayed > 0
    })
    .await;
    let first_replay = accepted_at.elapsed();
    let written = writing.await.unwrap();
    assert!(buffer.wait_drained(Duration::from_secs(20)).await);
    eprintln!(
        "backlog at the end of the refusal: {}; first replay {:.2} s after writes passed again; {:?}",
        during.pending,
        first_replay.as_secs_f64(),
        buffer.stats()
    );
    assert!(
        first_replay <= artemis::buffer::MAX_RETRY_PAUSE + Duration::from_millis(500),
        "{first_replay:?}"
    );
    let s = buffer.stats();
    assert!(
        during.pending > 0,
        "the refusal buffered writes: {during:?}"
    );
    assert_every_buffered_write_replayed(&s);
    assert!(s.rejected.is_empty(), "{s:?}");
    assert_all_landed(&backend, &written).await;
}

/// A server frozen by SIGSTOP (a stalled host, a paused VM) keeps its connections open and
/// answers nothing; on SIGCONT it runs what it was sent meanwhile. Writes made during the
/// freeze return within the command timeout, are kept, and land once; what the frozen server
/// runs late (writes whose replies timed out) lands too, and counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_to_a_server_frozen_by_sigstop_all_land_exactly_once() {
    let server = RedisServer::start();
    let mut settings = server.settings();
    settings.redis.timeout = 1.0;
    let (backend, tracker, metrics, buffer) = writers(settings).await;
    let writing = spawn_writers(&tracker, &metrics, "frozen", Duration::from_secs(8));
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.signal("STOP");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked = Instant::now();
    let outcome = metrics.track_llm_request(request(0)).await.unwrap();
    let waited = asked.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = buffer.stats();
    server.signal("CONT");
    let written = writing.await.unwrap();
    assert!(buffer.wait_drained(Duration::from_secs(20)).await);
    let s = buffer.stats();
    eprintln!(
        "backlog at the end of the freeze: {}; a write during it returned in {waited:?}; {} cards; {s:?}",
        during.pending,
        written.cards.len()
    );
    assert!(during.pending > 0, "the freeze buffered writes: {during:?}");
    assert_eq!(outcome, artemis::buffer::WriteOutcome::Buffered);
    assert!(
        waited <= Duration::from_millis(1_500),
        "a write during the freeze waited {waited:?}"
    );
    assert_every_buffered_write_replayed(&s);
    let mut written = written;
    written.requests += 1;
    written.prompt_tokens += request(0).prompt_tokens;
    assert_all_landed(&backend, &written).await;
}

/// One Cluster master frozen by SIGSTOP while the others answer: the writes it holds (and
/// every write whose index lives there) time out, are kept, and land once it runs again;
/// what it runs late from before the freeze lands too, and counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_while_one_cluster_master_is_frozen_by_sigstop_all_land_exactly_once() {
    let cluster = RedisCluster::start();
    let (backend, tracker, metrics, buffer) = writers(cluster.settings()).await;
    let writing = spawn_writers(&tracker, &metrics, "cluster-frozen", Duration::from_secs(9));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let frozen = &cluster.nodes[1];
    frozen.signal("STOP");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = buffer.stats();
    frozen.signal("CONT");
    let written = writing.await.unwrap();
    assert!(buffer.wait_drained(Duration::from_secs(30)).await);
    let s = buffer.stats();
    eprintln!(
        "backlog at the end of the freeze: {}; {} cards; {s:?}",
        during.pending,
        written.cards.len()
    );
    assert!(during.pending > 0, "the freeze buffered writes: {during:?}");
    assert_every_buffered_write_replayed(&s);
    assert_all_landed(&backend, &written).await;
}

/// On Cluster a tracker write is three commands on up to three masters (the card's script,
/// its stage document, the index): one master refusing while the others accept must still
/// leave every card complete, every request counted once and every event recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_by_the_index_master_of_a_cluster_land_once_with_each_event_once() {
    let cluster = RedisCluster::start();
    let (backend, tracker, metrics, buffer) = writers(cluster.settings()).await;
    let writing = spawn_writers(&tracker, &metrics, "cluster-oom", Duration::from_secs(8));
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The master holding the index: every write's index part is refused there while the
    // card's own script lands on another master for two cards in three.
    let refusing = cluster
        .nodes
        .iter()
        .find(|n| n.cli(&["EXISTS", "artemis:pipeline#index"]) == "1")
        .expect("one master holds the index");
    refusing.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    refusing.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = buffer.stats();
    refusing.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    let written = writing.await.unwrap();
    assert!(buffer.wait_drained(Duration::from_secs(20)).await);
    let s = buffer.stats();
    eprintln!(
        "backlog at the end of the refusal: {}; {} cards; {s:?}",
        during.pending,
        written.cards.len()
    );
    assert!(
        during.pending > 0,
        "the refusal buffered writes: {during:?}"
    );
    assert_every_buffered_write_replayed(&s);
    assert!(s.rejected.is_empty(), "{s:?}");
    assert_all_landed(&backend, &written).await;
    // Each event recorded once: start, three stages twice, completion. A write whose script
    // landed while its index write was refused is replayed without its script.
    for card in &written.cards {
        let events = tracker.history(card, None, 1000).await.unwrap();
        assert_eq!(events.len(), 8, "{card}: {events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_refused_by_a_server_turned_replica_for_five_seconds_all_land() {
    let server = RedisServer::start();
    // The master requires a password the replica is not given: the replica never completes a
    // sync, so it keeps its data (as after a failover whose new master holds the same data)
    // and refuses writes with READONLY all the same.
    let master = RedisServer::start_with(ServerOptions {
        password: Some("other".into()),
        ..Default::default()
    });
    let (backend, tracker, metrics, buffer) = writers(server.settings()).await;
    let redis = backend.redis().unwrap().clone();
    let writing = spawn_writers(&tracker, &metrics, "ro", Duration::from_secs(8));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let port = master.port.to_string();
    server.cli(&["REPLICAOF", "127.0.0.1", &port]);
    eventually(
        "the READONLY refusal in the health",
        Duration::from_secs(3),
        || {
            redis
                .current_health()
                .refusal_at(chrono::Utc::now())
                .is_some_and(|r| r.code == "READONLY")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = buffer.stats();
    server.cli(&["REPLICAOF", "NO", "ONE"]);
    let written = writing.await.unwrap();
    assert!(buffer.wait_drained(Duration::from_secs(20)).await);
    let s = buffer.stats();
    eprintln!(
        "backlog at the end of the refusal: {}; {s:?}",
        during.pending
    );
    assert!(
        during.pending > 0,
        "the refusal buffered writes: {during:?}"
    );
    assert_every_buffered_write_replayed(&s);
    assert_all_landed(&backend, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readonly_reply_reconnects_to_re_resolve_the_master_at_most_once_a_second() {
    let server = RedisServer::start();
    let master = RedisServer::start_with(ServerOptions {
        password: Some("other".into()),
        ..Default::default()
    });
    let backend = Backend::redis(server.settings()).await.unwrap();
    let redis = backend.redis().unwrap().clone();
    server.cli(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let before = connections_received(&server);
    let t0 = Instant::now();
    let mut refused = 0;
    while t0.elapsed() < Duration::from_millis(2500) {
        let r = redis.query::<()>(redis::cmd("SET").arg("k").arg("v")).await;
        match r {
            Err(artemis::Error::Refused { code, .. }) => {
                assert_eq!(code.as_str(), "READONLY");
                refused += 1;
            }
            other => panic!("a replica refuses writes: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Let the last re-resolve finish, then count the new connections (redis-cli's own
    // INFO connections count too: one per call, two calls).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let made = connections_received(&server) - before - 1;
    eprintln!("{refused} READONLY replies in 2.5 s, {made} re-resolves");
    assert!(refused > 50, "{refused}");
    assert!(
        (1..=3).contains(&made),
        "{made} new connections for {refused} refusals"
    );
    assert!(redis.current_state().is_up());
    // Back to master: writes pass on the re-resolved connection.
    server.cli(&["REPLICAOF", "NO", "ONE"]);
    redis
        .query::<()>(redis::cmd("SET").arg("k").arg("v"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_lua_script_refused_with_oom_keeps_its_code() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    let redis = backend.redis().unwrap().clone();
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    // A write after a read inside the script: the refusal comes from inside the script.
    let mut eval = redis::cmd("EVAL");
    eval.arg("redis.call('GET', KEYS[1]); return redis.call('SET', KEYS[1], 'v')")
        .arg(1)
        .arg("k");
    match redis.query::<()>(&eval).await {
        Err(artemis::Error::Refused { code, .. }) => assert_eq!(code.as_str(), "OOM"),
        other => panic!("expected an OOM refusal, got {other:?}"),
    }
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    redis.query::<()>(&eval).await.unwrap();
}

#[tokio::test]
async fn writes_rejected_with_noperm_are_counted_per_code_and_never_buffered() {
    let server = RedisServer::start_with(ServerOptions {
        acl_users: vec![
            [
                "writer-ro",
                "on",
                ">pw",
                "~*",
                "&*",
                "+@read",
                "+@connection",
                "+info",
            ]
            .map(String::from)
            .to_vec(),
        ],
        ..Default::default()
    });
    let mut settings = server.settings();
    settings.redis.username = Some("writer-ro".into());
    settings.redis.password = Some("pw".into());
    let backend = Backend::redis(settings).await.unwrap();
    let buffer = OutageBuffer::for_store(&backend);
    let tracker = Tracker::with_buffer(backend.tracker().clone(), buffer.clone());
    for n in 0..3 {
        let e = tracker
            .start_pipeline(&format!("card-{n}"), 2, Default::default())
            .await
            .expect_err("the user may not write");
        assert!(!e.is_outage(), "{e}");
    }
    let s = buffer.stats();
    assert_eq!((s.buffered, s.pending), (0, 0), "{s:?}");
    assert_eq!(s.rejected.get("NOPERM"), Some(&3), "{s:?}");
    // Nothing retries behind the caller's back.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(buffer.stats().rejected.get("NOPERM"), Some(&3));
}

#[test]
fn once_json_reports_an_oom_refusal_while_it_lasts() {
    let server = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let once = || {
        let out = support::artemis_top(home.path())
            .args(["--redis-url", &server.url(), "--once", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(once()["health"]["refusal"], serde_json::Value::Null);
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let v = once();
    assert_eq!(v["connection"]["state"], "connected");
    assert_eq!(v["health"]["refusal"]["code"], "OOM", "{}", v["health"]);
    assert_eq!(v["health"]["refusal"]["source"], "probe");
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(once()["health"]["refusal"], serde_json::Value::Null);
}

#[test]
fn once_json_on_cluster_reports_the_oom_of_one_master_while_it_lasts() {
    let cluster = RedisCluster::start();
    let home = tempfile::tempdir().unwrap();
    let url = cluster.nodes[0].url();
    let once = || {
        let out = support::artemis_top(home.path())
            .args([
                "--redis-url",
                &url,
                "--cluster",
                "--once",
                "--format",
                "json",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(once()["health"]["refusal"], serde_json::Value::Null);
    // Not the seed node: the dashboard reads without writing, so only a probe of every
    // master can tell.
    let refusing = &cluster.nodes[2];
    refusing.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    refusing.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    let v = once();
    assert_eq!(v["connection"]["state"], "connected");
    assert_eq!(v["health"]["refusal"]["code"], "OOM", "{}", v["health"]);
    assert_eq!(v["health"]["refusal"]["source"], "probe");
    refusing.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(once()["health"]["refusal"], serde_json::Value::Null);
}

#[test]
fn once_text_says_the_server_is_a_read_only_replica() {
    let server = RedisServer::start();
    let master = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    server.cli(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    let out = support::artemis_top(home.path())
        .args(["--redis-url", &server.url(), "--once", "--format", "text"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("health: read-only replica")),
        "{text}"
    );
}

#[tokio::test]
async fn the_header_shows_the_refusal_while_redis_is_out_of_memory() {
    let server = RedisServer::start();
    let backend = Backend::redis(server.settings()).await.unwrap();
    let feed = Arc::new(StorageFeed::new(backend));
    let (tx, mut rx) = mpsc::channel(1024);
    let (_cmd_tx, cmd_rx) = mpsc::channel(16);
    let _sources = source::spawn(feed, Duration::from_millis(500), tx, cmd_rx);
    let mut app = App::new(
        artemis::tui::keymap::KeyMap::default(),
        artemis::tui::theme::Theme::mono(),
        true,
        server.url(),
    );
    let header = |app: &mut App| {
        app.now = chrono::Utc::now();
        let mut t = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 40)).unwrap();
        t.draw(|f| artemis::tui::render::draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.width)
            .map(|x| buf[(x, 0)].symbol().to_owned())
            .collect::<String>()
    };
    let mut pump = async |app: &mut App, until: &dyn Fn(&App) -> bool, what: &str| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !until(app) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => app.apply(m),
                _ => panic!("timed out waiting for {what}"),
            }
        }
    };
    pump(
        &mut app,
        &|a| a.live.is_some() && a.conn.is_up(),
        "a first snapshot",
    )
    .await;
    assert!(
        !header(&mut app).contains("refuses"),
        "{}",
        header(&mut app)
    );
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    pump(
        &mut app,
        &|a| a.health.refusal.is_some(),
        "the refusal reported by the probe",
    )
    .await;
    let line = header(&mut app);
    assert!(line.contains("● connected"), "{line}");
    assert!(line.contains("Redis refuses writes: OOM"), "{line}");
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    pump(
        &mut app,
        &|a| a.health.refusal.is_none(),
        "the refusal over",
    )
    .await;
    assert!(!header(&mut app).contains("refuses"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_keep_arriving_through_a_server_idle_timeout() {
    // The server closes connections idle for 1 s; the dashboard polls every 2.5 s, so its
    // command connection is found closed at (nearly) every poll and reconnects.
    let server = RedisServer::start_with(ServerOptions {
        extra: vec![("timeout".into(), "1".into())],
        ..Default::default()
    });
    let backend = Backend::redis_lazy(server.settings()).unwrap();
    let feed = Arc::new(StorageFeed::new(backend));
    let (tx, mut rx) = mpsc::channel(4096);
    let (_cmd_tx, cmd_rx) = mpsc::channel(16);
    let _sources = source::spawn(feed, Duration::from_millis(2500), tx, cmd_rx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Message::Subscribed(true))) => break,
            Ok(Some(_)) => {}
            _ => panic!("no subscription"),
        }
    }
    // A writer on its own connection publishes one event every 100 ms for 10 s.
    let publisher = {
        let url = server.url();
        tokio::spawn(async move {
            let client = redis::Client::open(url).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let mut sent = 0u32;
            for pct in 0..100 {
                let payload = format!(
                    r#"{{"event": "stage_updated", "card_id": "card-idle", "stage_name": "build", "status": "running", "progress_percent": {pct}, "message": null, "timestamp": "2025-10-22T20:30:44"}}"#
                );
                let _: () = redis::cmd("PUBLISH")
                    .arg("artemis:pipeline:events:card-idle")
                    .arg(payload)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                sent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            sent
        })
    };
    let (mut events, mut lost, mut reconnects) = (0u32, 0u32, 0u32);
    let end = tokio::time::Instant::now() + Duration::from_secs(14);
    while events < 100 {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(Message::Events(batch))) => events += batch.len() as u32,
            Ok(Some(Message::Subscribed(false))) => lost += 1,
            Ok(Some(Message::Connection(ConnState::Reconnecting { .. }))) => reconnects += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let sent = publisher.await.unwrap();
    eprintln!(
        "{events} of {sent} events received; subscription lost {lost} times; {reconnects} command-connection reconnects"
    );
    assert!(
        reconnects > 0,
        "the idle timeout must have closed the command connection (else the test shows nothing)"
    );
    assert_eq!(
        lost, 0,
        "the subscription must not follow the command connection"
    );
    assert_eq!(events, sent);
}

#[test]
fn simulate_through_six_seconds_of_oom_reports_exactly_what_redis_holds() {
    let server = RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let url = server.url();
    let sim = support::artemis_top(home.path())
        .args([
            "--redis-url",
            &url,
            "simulate",
            "--format",
            "json",
            "--seed",
            "5",
        ])
        .args(["--cards", "200", "--speed", "40", "--concurrency", "8"])
        .args(["--duration", "12", "--drain-timeout", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&["CONFIG", "SET", "maxmemory", "1"]);
    std::thread::sleep(Duration::from_secs(6));
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    let out = support::wait_output(sim, Duration::from_secs(120), "simulate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simulate: {stderr}");
    let report: artemis::demo::report::SimReport = serde_json::from_slice(&out.stdout).unwrap();
    let w = &report.writes;
    eprintln!("writes: {w:?}");
    assert!(w.buffered > 0, "the refusal buffered writes: {w:?}");
    assert_eq!(w.replayed, w.buffered, "{w:?}");
    assert!(w.drained && !w.lost_any(), "{w:?}");

    let once = support::artemis_top(home.path())
        .args(["--redis-url", &url, "--once", "--format", "json"])
        .output()
        .unwrap();
    assert!(once.status.success());
    let snap: artemis::snapshot::Snapshot = serde_json::from_slice(&once.stdout).unwrap();
    assert_eq!(snap.cards.len(), report.card_list.len());
    for card in &report.card_list {
        let c = snap
            .cards
            .iter()
            .find(|c| c.pipeline.card_id == card.card_id)
            .unwrap_or_else(|| panic!("{} missing", card.card_id));
        assert_eq!(c.pipeline.status, card.status, "{}", card.card_id);
        assert_eq!(
            c.pipeline.completed_stages,
            i64::from(card.completed_stages),
            "{}",
            card.card_id
        );
    }
    let (llm, r) = (&snap.metrics.llm, &report.llm);
    assert_eq!(llm.total_requests as u64, r.calls, "LLM requests");
    assert_eq!(llm.cache_hits as u64, r.cache_hits, "cache hits");
    assert_eq!(llm.prompt_tokens as u64, r.prompt_tokens, "prompt tokens");
    assert!((llm.total_cost - r.cost_usd).abs() <= 1e-6, "cost");
    assert_eq!(
        snap.metrics.pipelines.completed as u64, report.cards.started,
        "pipeline completions"
    );
}
