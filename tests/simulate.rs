//! `artemis-top simulate` against a real Redis, through the real binary: what its report says
//! it did is what a second `artemis-top --once` reads back (cards, stages, LLM requests, cache
//! hits, costs, code reviews, rate-limit keys, event history); the same seed makes the same
//! decisions on two fresh servers; Ctrl-C cancels the cards in flight and still reports, with
//! every write landed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use artemis::demo::report::{EndedBy, SimReport};
use artemis::keys::KeySpace;
use artemis::model::PipelineStatus;
use artemis::snapshot::Snapshot;
use support::RedisServer;

use support::wait_output;

/// The binary in a clean environment: no config file, no REDIS_* variables of the caller.
fn bin(server: &RedisServer) -> Command {
    let mut c = support::artemis_top(server.dir.path());
    c.args(["--redis-url", &server.url()]);
    c
}

fn spawn_simulate(server: &RedisServer, args: &[&str]) -> Child {
    bin(server)
        .args(["simulate", "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start artemis-top simulate")
}

fn report_of(out: &Output) -> SimReport {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "simulate failed ({:?}); stderr:\n{}\nstdout:\n{stdout}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}"))
}

fn simulate(server: &RedisServer, args: &[&str]) -> SimReport {
    let out = wait_output(
        spawn_simulate(server, args),
        Duration::from_secs(120),
        "simulate",
    );
    report_of(&out)
}

/// `artemis-top --once --format json` against the server: the raw JSON and the snapshot.
fn snapshot(server: &RedisServer) -> (Value, Snapshot) {
    let child = bin(server)
        .args(["--once", "--format", "json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start artemis-top --once");
    let out = wait_output(child, Duration::from_secs(30), "--once");
    assert!(
        out.status.success(),
        "--once failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let raw: Value = serde_json::from_str(text.trim()).expect("snapshot JSON");
    let snap: Snapshot = serde_json::from_value(raw.clone()).expect("snapshot shape");
    (raw, snap)
}

fn assert_schema_valid(v: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/snapshot.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).unwrap();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-6 + 1e-9 * b.abs(),
        "{what}: {a} in the snapshot, {b} in the report"
    );
}

#[test]
fn the_report_matches_what_redis_holds() {
    let server = RedisServer::start();
    let report = simulate(
        &server,
        &[
            "--seed",
            "7",
            "--cards",
            "12",
            "--speed",
            "50",
            "--duration",
            "3",
            "--failure-rate",
            "0.3",
        ],
    );
    let (raw, snap) = snapshot(&server);
    assert_schema_valid(&raw);

    // Cards: every one the report names, with its status and stage count, and nothing else.
    let c = &report.cards;
    assert!(matches!(
        report.ended_by,
        EndedBy::Cards | EndedBy::Duration
    ));
    assert!(c.started >= 8 && c.started <= 12, "{c:?}");
    assert_eq!(c.started, report.card_list.len() as u64);
    assert_eq!(c.completed + c.failed + c.cancelled, c.started, "{c:?}");
    assert_eq!(c.aborted, 0);
    let ids: BTreeSet<&str> = report
        .card_list
        .iter()
        .map(|c| c.card_id.as_str())
        .collect();
    let in_redis: BTreeSet<&str> = snap
        .cards
        .iter()
        .map(|c| c.pipeline.card_id.as_str())
        .collect();
    assert_eq!(ids, in_redis);
    let keys = KeySpace::new(artemis::config::Settings::default().prefixes);
    let mut stage_updates = 0;
    for (i, card) in report.card_list.iter().enumerate() {
        assert_eq!(card.card_id, format!("sim-7-{}", i + 1));
        artemis::keys::validate_card_id(&card.card_id).unwrap();
        let s = snap
            .cards
            .iter()
            .find(|s| s.pipeline.card_id == card.card_id)
            .unwrap();
        assert!(card.status.is_final());
        assert_eq!(s.pipeline.status, card.status, "{}", card.card_id);
        assert_eq!(
            s.pipeline.completed_stages,
            i64::from(card.completed_stages),
            "{}",
            card.card_id
        );
        assert_eq!(s.pipeline.total_stages, i64::from(card.total_stages));
        assert!(s.pipeline.end_time.is_some());
        assert_eq!(s.title(), Some(card.title.as_str()));
        // The card's cost, from its pipeline completion in the metrics.
        close(s.cost_usd.unwrap_or(f64::NAN), card.cost_usd, &card.card_id);
        if card.status == PipelineStatus::Completed {
            assert_eq!(card.completed_stages, card.total_stages);
            assert!(s.stages.iter().all(|st| st.progress_percent == Some(100)));
        }
        // One recorded event per write: the start, each stage update, the completion.
        let events: u64 = server
            .cli(&["XLEN", &keys.event_history(&card.card_id)])
            .parse()
            .unwrap();
        assert_eq!(events, card.stage_updates + 2, "{}", card.card_id);
        stage_updates += card.stage_updates;
    }
    assert_eq!(stage_updates, report.stages.updates);

    // LLM requests, cache hits and money: the cache's figures as the metrics hold them.
    let llm = &snap.metrics.llm;
    let r = &report.llm;
    assert!(r.calls > 50, "{r:?}");
    assert!(r.cache_hits > 0, "prompts repeat across cards: {r:?}");
    assert_eq!(llm.total_requests as u64, r.calls);
    assert_eq!(llm.cache_hits as u64, r.cache_hits);
    assert_eq!(llm.cache_misses as u64, r.cache_misses);
    assert_eq!(r.cache_misses, r.provider_calls);
    assert_eq!(llm.prompt_tokens as u64, r.prompt_tokens);
    assert_eq!(llm.completion_tokens as u64, r.completion_tokens);
    close(llm.total_cost, r.cost_usd, "LLM cost");
    close(llm.saved_cost, r.saved_usd, "saved cost");
    assert!(r.cost_usd > 0.0 && r.saved_usd > 0.0);
    let per_card: u64 = report.card_list.iter().map(|c| c.llm_calls).sum();
    assert_eq!(per_card, r.calls);
    let per_card_cost: f64 = report.card_list.iter().map(|c| c.cost_usd).sum();
    close(per_card_cost, r.cost_usd, "sum of card costs");
    let requests_by_model: i64 = snap.metrics.models.iter().map(|m| m.requests).sum();
    assert_eq!(requests_by_model as u64, r.calls);

    // Completions: one per card, each with the card's own LLM cost.
    let p = &snap.metrics.pipelines;
    assert_eq!(p.completed as u64, c.started);
    close(p.total_cost, r.cost_usd, "pipeline cost");
    let by_status = |s: &str| p.by_status.get(s).copied().unwrap_or(0) as u64;
    assert_eq!(
        (
            by_status("completed"),
            by_status("failed"),
            by_status("cancelled")
        ),
        (c.completed, c.failed, c.cancelled)
    );
    assert_eq!(snap.metrics.recent.len() as u64, c.started);
    for recent in &snap.metrics.recent {
        let card = report
            .card_list
            .iter()
            .find(|c| c.card_id == recent.card_id)
            .unwrap();
        close(recent.cost, card.cost_usd, &recent.card_id);
        assert_eq!(recent.status, card.status.as_str());
    }

    // Code reviews.
    let reviews: i64 = snap
        .metrics
        .code_review
        .developers
        .iter()
        .map(|d| d.total_reviews)
        .sum();
    assert_eq!(reviews as u64, report.code_reviews);
    let by_review_status: i64 = snap.metrics.code_review.by_status.values().sum();
    assert_eq!(by_review_status as u64, report.code_reviews);
    assert!(
        report.code_reviews
            >= report
                .card_list
                .iter()
                .filter(|c| c.status == PipelineStatus::Completed)
                .count() as u64
    );

    // Rate limits: one registered key per simulated model, never over its limit.
    let sim_limits: Vec<_> = snap
        .limits
        .iter()
        .filter(|l| l.identifier == "sim")
        .collect();
    assert_eq!(
        sim_limits.len(),
        artemis::demo::script::MODELS.len(),
        "{:?}",
        snap.limits
    );
    for l in &sim_limits {
        close(l.window_seconds, 60.0 / 50.0, "window");
        assert!(
            l.requests_limit
                .is_some_and(|limit| l.requests_used <= limit),
            "{l:?}"
        );
    }
    let lim = &report.limiter;
    assert_eq!(lim.refused, lim.waited + lim.errors, "{lim:?}");
    assert_eq!(lim.errors, 0);

    // Every write landed, directly.
    let w = &report.writes;
    assert!(w.drained && !w.lost_any(), "{w:?}");
    assert_eq!(w.buffered, 0);
}

/// Card id, title, status, total and completed stages, stage updates, LLM calls, reviews.
type Decision = (String, String, PipelineStatus, u32, u32, u64, u64, u64);

/// What a run decided for each card, leaving out timing effects (hits, costs, waits).
fn decisions(report: &SimReport) -> Vec<Decision> {
    report
        .card_list
        .iter()
        .map(|c| {
            (
                c.card_id.clone(),
                c.title.clone(),
                c.status,
                c.total_stages,
                c.completed_stages,
                c.stage_updates,
                c.llm_calls,
                c.code_reviews,
            )
        })
        .collect()
}

#[test]
fn the_same_seed_makes_the_same_decisions() {
    let (a, b) = (RedisServer::start(), RedisServer::start());
    let args = [
        "--seed",
        "11",
        "--cards",
        "10",
        "--concurrency",
        "5",
        "--speed",
        "100",
        "--failure-rate",
        "0.4",
    ];
    // Both at once: different timing, same decisions.
    let (ca, cb) = (spawn_simulate(&a, &args), spawn_simulate(&b, &args));
    let ra = report_of(&wait_output(ca, Duration::from_secs(120), "simulate a"));
    let rb = report_of(&wait_output(cb, Duration::from_secs(120), "simulate b"));
    assert_eq!(ra.cards.started, 10);
    assert_eq!(decisions(&ra), decisions(&rb));
    assert_eq!(ra.llm.calls, rb.llm.calls);
    assert_eq!(ra.stages, rb.stages);
    assert_eq!(ra.code_reviews, rb.code_reviews);
    let statuses: BTreeSet<PipelineStatus> = ra.card_list.iter().map(|c| c.status).collect();
    assert!(
        statuses.len() >= 2,
        "a 0.4 failure rate over 10 cards ends some other way: {statuses:?}"
    );

    // And the snapshots agree on it.
    let per_card = |s: &Snapshot| -> BTreeMap<String, (PipelineStatus, i64)> {
        s.cards
            .iter()
            .map(|c| {
                (
                    c.pipeline.card_id.clone(),
                    (c.pipeline.status, c.pipeline.completed_stages),
                )
            })
            .collect()
    };
    let (sa, sb) = (snapshot(&a).1, snapshot(&b).1);
    assert_eq!(per_card(&sa), per_card(&sb));
    assert_eq!(sa.metrics.llm.total_requests, sb.metrics.llm.total_requests);

    // Another seed decides otherwise.
    let other = simulate(
        &a,
        &[
            "--seed",
            "12",
            "--cards",
            "10",
            "--concurrency",
            "10",
            "--speed",
            "100",
            "--failure-rate",
            "0.4",
        ],
    );
    let titles = |r: &SimReport| {
        r.card_list
            .iter()
            .map(|c| c.title.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(titles(&other), titles(&ra));
}

#[test]
fn ctrl_c_cancels_cards_in_flight_and_reports() {
    let server = RedisServer::start();
    // No card limit: it would run until stopped.
    let child = spawn_simulate(
        &server,
        &["--seed", "3", "--speed", "5", "--concurrency", "6"],
    );
    let pid = child.id();
    let keys = KeySpace::new(artemis::config::Settings::default().prefixes);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: u64 = server
            .cli(&["ZCARD", &keys.pipeline_index()])
            .parse()
            .unwrap_or(0);
        let calls = server.cli(&["HGET", "artemis:metrics:llm", "total_requests"]);
        if n >= 6 && calls.parse::<u64>().unwrap_or(0) >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the simulation did not get going"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_output(child, Duration::from_secs(60), "simulate after Ctrl-C");
    let report = report_of(&out);
    assert_eq!(report.ended_by, EndedBy::Interrupted);
    assert!(report.cards.cancelled >= 1, "{:?}", report.cards);
    assert!(report.writes.drained && !report.writes.lost_any());

    let (_, snap) = snapshot(&server);
    assert_eq!(snap.cards.len() as u64, report.cards.started);
    for card in &snap.cards {
        assert!(card.pipeline.status.is_final(), "{:?}", card.pipeline);
        let r = report
            .card_list
            .iter()
            .find(|c| c.card_id == card.pipeline.card_id)
            .unwrap();
        assert_eq!(card.pipeline.status, r.status);
    }
    assert_eq!(
        snap.metrics.pipelines.completed as u64,
        report.cards.started
    );
    assert_eq!(snap.metrics.llm.total_requests as u64, report.llm.calls);
    close(snap.metrics.llm.total_cost, report.llm.cost_usd, "LLM cost");
}
