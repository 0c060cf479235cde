//! Data planted in Redis by hand, as a buggy or hostile writer could leave it: invalid JSON,
//! wrong JSON types, keys of the wrong Redis type, 10 MB values, non-UTF-8 bytes, terminal
//! escape sequences and control characters in card ids, stage names and messages, 100,000
//! stages on one card. `--once` (text and JSON) and the live dashboard stay up, keep showing
//! the good data, say what is wrong, and never pass an escape sequence to the terminal.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::RedisServer;
use support::tmux::{Tmux, assert_restored, binary_line};

const TEN_MB: usize = 10 * 1024 * 1024;

fn now_naive(ago: i64) -> String {
    artemis::model::format_naive((chrono::Utc::now() - chrono::Duration::seconds(ago)).naive_utc())
}

fn set(c: &mut redis::Connection, key: impl redis::ToRedisArgs, value: impl redis::ToRedisArgs) {
    let _: () = redis::cmd("SET").arg(key).arg(value).query(c).unwrap();
}

fn pipeline_doc(card: &str, title: &str, stage: &str) -> String {
    serde_json::json!({
        "card_id": card, "status": "running", "total_stages": 3, "completed_stages": 1,
        "current_stage": stage, "start_time": now_naive(60), "end_time": null,
        "metadata": {"title": title},
    })
    .to_string()
}

fn stage_doc(stage: &str, message: &str) -> String {
    serde_json::json!({
        "stage_name": stage, "status": "running", "progress_percent": 40,
        "message": message, "timestamp": now_naive(5), "metadata": {},
    })
    .to_string()
}

/// Everything hostile except the huge card (which has its own test).
fn plant_garbage(server: &RedisServer) {
    let mut c = server.raw();
    // One good card, which must stay visible through all of it.
    set(
        &mut c,
        "artemis:pipeline:good-card",
        pipeline_doc("good-card", "Good card", "build"),
    );
    set(
        &mut c,
        "artemis:pipeline:good-card:stage:build",
        stage_doc("build", "compiling"),
    );

    // Escape sequences and control characters in ids, names, titles and messages: clear the
    // screen, set the window title, ring the bell, move the cursor, carriage return.
    let evil = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\r-card";
    let evil_stage = "st\u{1b}[31mage\u{8}\u{8}";
    set(
        &mut c,
        format!("artemis:pipeline:{evil}"),
        pipeline_doc(evil, "title\u{1b}[H\u{1b}[2Jgone\u{0}\t\u{7f}", evil_stage),
    );
    set(
        &mut c,
        format!("artemis:pipeline:{evil}:stage:{evil_stage}"),
        stage_doc(
            evil_stage,
            "line1\r\nline2\u{1b}[1A\u{1b}[Koverwritten\u{9b}31m",
        ),
    );
    // Wrong JSON and wrong types.
    set(
        &mut c,
        "artemis:pipeline:bad-json",
        "{\"card_id\": \"bad-json\", ",
    );
    set(&mut c, "artemis:pipeline:bad-array", "[1, 2, 3]");
    set(
        &mut c,
        "artemis:pipeline:bad-types",
        r#"{"card_id": 42, "status": ["running"], "total_stages": "four", "completed_stages": -3, "current_stage": {}, "start_time": 7, "end_time": false, "metadata": "x"}"#,
    );
    set(
        &mut c,
        "artemis:pipeline:good-card:stage:broken",
        "\"just a string\"",
    );
    // Keys of the wrong Redis type where documents belong.
    let _: () = redis::cmd("HSET")
        .arg("artemis:pipeline:a-hash")
        .arg("card_id")
        .arg("a-hash")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("LPUSH")
        .arg("artemis:pipeline:a-list")
        .arg("x")
        .query(&mut c)
        .unwrap();
    // Non-UTF-8 bytes, in a value and in a key name.
    set(
        &mut c,
        "artemis:pipeline:latin1",
        b"{\"card_id\": \"latin1\", \"status\": \"running\xff\xfe\"}".as_slice(),
    );
    set(
        &mut c,
        b"artemis:pipeline:bin\xff\xfecard".as_slice(),
        pipeline_doc("bin", "binary key", "x"),
    );
    // 10 MB values: a document and a stage message.
    let huge_title = "A".repeat(TEN_MB);
    set(
        &mut c,
        "artemis:pipeline:huge-doc",
        pipeline_doc("huge-doc", &huge_title, "x"),
    );
    set(
        &mut c,
        "artemis:pipeline:good-card:stage:huge",
        stage_doc("huge", &"m".repeat(TEN_MB)),
    );
    // The extension keys: garbage in the card index and the history stream, and a bad event.
    let _: () = redis::cmd("ZADD")
        .arg("artemis:pipeline#index")
        .arg(chrono::Utc::now().timestamp())
        .arg("no-such-card")
        .arg(chrono::Utc::now().timestamp())
        .arg("idx\u{1b}[2Jcard")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("XADD")
        .arg("artemis:pipeline#history:{artemis:pipeline:good-card}")
        .arg("*")
        .arg("garbage")
        .arg(b"\xff\x00\x1b[2J".as_slice())
        .query(&mut c)
        .unwrap();
    // Metrics of the wrong type and with unparsable fields.
    set(&mut c, "artemis:metrics:total", "not a hash");
    let _: () = redis::cmd("HSET")
        .arg("artemis:metrics:llm")
        .arg("total_requests")
        .arg("many")
        .arg("total_cost")
        .arg("NaN")
        .arg("cache_hits")
        .arg("3")
        .arg("cache_misses")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("artemis:metrics:llm:prov\u{1b}[2Jider")
        .arg("requests")
        .arg("1")
        .arg("cost")
        .arg("1e400")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("artemis:metrics:timeseries:pipelines")
        .arg(chrono::Utc::now().timestamp())
        .arg("{broken")
        .arg(chrono::Utc::now().timestamp())
        .arg("B".repeat(TEN_MB))
        .query(&mut c)
        .unwrap();
    set(&mut c, "artemis:metrics:status:completed", "twelve");
    // Non-UTF-8 bytes in hash fields, hash values, set members and sorted-set members.
    let _: () = redis::cmd("HSET")
        .arg("artemis:metrics:llm:model:bin-model")
        .arg("requests")
        .arg(b"\xff\xfe".as_slice())
        .arg(b"\xffname".as_slice())
        .arg("1")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("artemis:metrics::index:models")
        .arg(b"bad\xff".as_slice())
        .arg("bin-model")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("ZADD")
        .arg("artemis:pipeline#index")
        .arg(chrono::Utc::now().timestamp())
        .arg(b"idx\xffcard".as_slice())
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg("artemis:ratelimit::registry")
        .arg(b"artemis:ratelimit:llm:\xff".as_slice())
        .arg(b"\xff{}".as_slice())
        .query(&mut c)
        .unwrap();
    // The limiter's registry and a window of the wrong type.
    let _: () = redis::cmd("HSET")
        .arg("artemis:ratelimit::registry")
        .arg("artemis:ratelimit:llm:broken")
        .arg("{not json")
        .arg("artemis:ratelimit:llm:\u{1b}[2J")
        .arg(r#"{"resource": 1, "limits": "x"}"#)
        .query(&mut c)
        .unwrap();
    set(&mut c, "artemis:ratelimit:llm:broken", "not a zset");
}

fn bin() -> Command {
    support::artemis_top(&std::env::temp_dir())
}

fn once(server: &RedisServer, format: &str) -> (String, Duration) {
    let started = Instant::now();
    let out = bin()
        .args(["--redis-url", &server.url(), "--once", "--format", format])
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--once {format} failed: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        String::from_utf8(out.stdout).expect("output is UTF-8"),
        took,
    )
}

/// No byte that a terminal would act on, except newlines.
fn assert_inert(text: &str) {
    if let Some(bad) = text
        .chars()
        .find(|c| (c.is_control() && *c != '\n') || ('\u{80}'..='\u{9f}').contains(c))
    {
        let at = text.find(bad).unwrap_or(0);
        let around: String = text[..at]
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .chain(text[at..].chars().take(20))
            .collect();
        panic!("control character {bad:?} reached the output near: {around:?}");
    }
}

#[test]
fn once_survives_planted_garbage_and_says_what_is_wrong() {
    let server = RedisServer::start();
    plant_garbage(&server);

    let (json, took) = once(&server, "json");
    assert!(took < Duration::from_secs(30), "--once took {took:?}");
    let v: Value = serde_json::from_str(&json).expect("valid JSON");
    let cards = v["cards"].as_array().unwrap();
    let ids: Vec<&str> = cards.iter().filter_map(|c| c["card_id"].as_str()).collect();
    assert!(ids.contains(&"good-card"), "{ids:?}");
    let evil = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\r-card";
    assert!(ids.contains(&evil), "JSON keeps the exact id: {ids:?}");
    let malformed: Vec<String> = v["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{} {}", m["key"].as_str().unwrap(), m["reason"]))
        .collect();
    let all = malformed.join("\n");
    eprintln!("malformed:\n{all}");
    for key in [
        "artemis:pipeline:bad-json",
        "artemis:pipeline:bad-array",
        "artemis:pipeline:bad-types",
        "artemis:pipeline:latin1",
        "artemis:pipeline:huge-doc",
        "artemis:pipeline:good-card:stage:broken",
        "artemis:pipeline:good-card:stage:huge",
        "artemis:metrics:llm",
        "artemis:metrics::index:models",
        "artemis:metrics:llm:model:bin-model",
        "artemis:pipeline#index",
        "artemis:ratelimit::registry",
    ] {
        assert!(all.contains(key), "{key} not reported as malformed:\n{all}");
    }
    for m in &malformed {
        assert!(
            m.len() < 2048,
            "a report echoes a huge value: {} bytes",
            m.len()
        );
    }
    // The good card's valid stage is still read next to its broken ones.
    let good = cards.iter().find(|c| c["card_id"] == "good-card").unwrap();
    let stages: Vec<&str> = good["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["stage_name"].as_str())
        .collect();
    assert!(stages.contains(&"build"), "{stages:?}");
    assert_eq!(v["metrics"]["llm"]["cache_hits"], 3);

    let (text, took) = once(&server, "text");
    assert!(took < Duration::from_secs(30), "--once took {took:?}");
    assert_inert(&text);
    assert!(text.contains("good-card"), "{text}");
    assert!(text.contains("MALFORMED ("), "{text}");
    assert!(text.len() < 1 << 20, "text output is {} bytes", text.len());
}

#[test]
fn dashboard_survives_planted_garbage() {
    let server = RedisServer::start();
    plant_garbage(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), &[], &["--redis-url", &server.url()]);
    let tmux = Tmux::start("hostile", 140, 40, &line);
    let s = tmux.wait_for("the good card", |s| s.contains("good-card"));
    assert!(
        s.contains("malformed"),
        "the header says data is malformed:\n{s}"
    );
    // The escape sequences did not act: the window title is unchanged and nothing was cleared.
    let title = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_title}"]);
    assert!(!title.contains("pwned"), "title changed to {title:?}");
    // Hostile pub/sub events: not JSON, not UTF-8, escape sequences, 10 MB, wrong shapes.
    let mut c = server.raw();
    let big = format!(
        r#"{{"event_type": "stage_updated", "card_id": "good-card", "message": "{}"}}"#,
        "x".repeat(TEN_MB)
    );
    let payloads: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        b"\x1b[2J\x1b]0;pwned\x07".to_vec(),
        br#"{"event_type": 42, "card_id": ["x"]}"#.to_vec(),
        br#"{"event_type": "pipeline_started", "card_id": "ev\u001b[2Jil", "data": {}}"#.to_vec(),
        big.into_bytes(),
    ];
    for channel in [
        "artemis:pipeline:events:good-card",
        "artemis:pipeline:events:nope",
    ] {
        for p in &payloads {
            let _: () = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(p)
                .query(&mut c)
                .unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let title = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_title}"]);
    assert!(!title.contains("pwned"), "title changed to {title:?}");
    tmux.wait_for("the good card after the events", |s| {
        s.contains("good-card")
    });
    // Walk every row and drill into each card, including the hostile and the huge ones.
    // (Escape and the next key are sent apart, or the terminal reads them as Alt+key.)
    for _ in 0..20 {
        tmux.keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(150));
        tmux.keys(&["Escape"]);
        std::thread::sleep(Duration::from_millis(100));
        tmux.keys(&["j"]);
    }
    std::thread::sleep(Duration::from_millis(100));
    tmux.keys(&["Escape"]);
    let s = tmux.wait_for("the overview again", |s| s.contains("good-card"));
    assert!(!s.contains("EXIT="), "the dashboard died:\n{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

/// 100,000 stages on one Python-written card: `--once` and the drill-down stay usable.
#[test]
fn a_card_with_100k_stages() {
    let server = RedisServer::start();
    let mut c = server.raw();
    set(
        &mut c,
        "artemis:pipeline:wide",
        pipeline_doc("wide", "Wide card", "s99999"),
    );
    for chunk in (0..100_000).collect::<Vec<u32>>().chunks(5_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET")
                .arg(format!("artemis:pipeline:wide:stage:s{i:05}"))
                .arg(stage_doc(&format!("s{i:05}"), "step"))
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
    let (json, took) = once(&server, "json");
    eprintln!("--once with 100k stages: {took:?}");
    assert!(took < Duration::from_secs(60), "--once took {took:?}");
    let v: Value = serde_json::from_str(&json).unwrap();
    let card = &v["cards"][0];
    assert_eq!(card["card_id"], "wide");
    let shown = card["stages"].as_array().unwrap().len();
    eprintln!("stages shown: {shown}");
    assert!(shown > 0, "the card's stages are read");

    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), &[], &["--redis-url", &server.url()]);
    let tmux = Tmux::start("wide", 120, 40, &line);
    tmux.wait_for("the wide card", |s| s.contains("wide"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the drill-down", |s| s.contains("Stages ("));
    tmux.keys(&["End", "PageUp", "Home", "End"]);
    // Wait for each step to show: a slow reader that finds Escape and `q` queued together reads
    // them as one Alt-q, as a terminal would.
    tmux.wait_for("the end of the list", |s| s.contains("s99999"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the card list", |s| !s.contains("Stages ("));
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

/// This project's own extension keys overwritten with the wrong Redis type: each is reported,
/// the rest of the snapshot is still read.
#[test]
fn extension_keys_of_the_wrong_type() {
    let server = RedisServer::start();
    let mut c = server.raw();
    set(
        &mut c,
        "artemis:pipeline:good-card",
        pipeline_doc("good-card", "Good card", "build"),
    );
    for key in [
        "artemis:pipeline#index",
        "artemis:ratelimit::registry",
        "artemis:metrics::index:models",
        "artemis:metrics:timeseries:pipelines",
    ] {
        set(&mut c, key, "not the right type");
    }
    let (json, _) = once(&server, "json");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cards"][0]["card_id"], "good-card", "{v}");
    let all: Vec<String> = v["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_owned())
        .collect();
    for key in [
        "artemis:pipeline#index",
        "artemis:ratelimit::registry",
        "artemis:metrics::index:models",
        "artemis:metrics:timeseries:pipelines",
    ] {
        assert!(all.iter().any(|k| k == key), "{key} not reported: {all:?}");
    }
}

/// Many key names that are not UTF-8: the first hundred are listed, the rest counted.
#[test]
fn unreadable_key_names_are_listed_then_counted() {
    let server = RedisServer::start();
    let mut c = server.raw();
    set(
        &mut c,
        "artemis:pipeline:good-card",
        pipeline_doc("good-card", "Good card", "build"),
    );
    for i in 0..150u8 {
        let mut key = b"artemis:pipeline:bin\xff".to_vec();
        key.push(i);
        set(&mut c, key.as_slice(), "{}");
    }
    let (json, _) = once(&server, "json");
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cards"][0]["card_id"], "good-card");
    let reasons: Vec<&str> = v["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["reason"].as_str())
        .collect();
    let listed = reasons
        .iter()
        .filter(|r| r.contains("no card id can address"))
        .count();
    assert_eq!(listed, 100);
    assert!(
        reasons.contains(&"50 more key names that are not UTF-8"),
        "{reasons:?}"
    );
}

/// Titles, ids, stage names and messages full of what terminals do not show as itself: line
/// and paragraph separators, a soft hyphen, zero-width and tag characters, bidi controls, a
/// 1,000-code-point combining cluster, flag and family emoji. Planted as Python writes cards.
fn plant_invisible(server: &RedisServer) -> Vec<String> {
    let mut c = server.raw();
    let hostile: Vec<String> = vec![
        "ls\u{2028}sep\u{2029}para".into(),
        "soft\u{AD}hyphen".into(),
        "zero\u{200B}width\u{200C}join\u{2060}".into(),
        "tag\u{E0041}\u{E0042}chars".into(),
        "bidi\u{202E}desrever\u{202C}".into(),
        format!("zalgo{}!", "\u{301}".repeat(1000)),
        "flags 🇫🇷🇩🇪 end".into(),
        "family 👨\u{200D}👩\u{200D}👧 end".into(),
    ];
    let mut ids = Vec::new();
    for (i, h) in hostile.iter().enumerate() {
        let id = format!("inv{i}-{h}");
        set(
            &mut c,
            format!("artemis:pipeline:{id}"),
            pipeline_doc(&id, &format!("{h} title"), h),
        );
        set(
            &mut c,
            format!("artemis:pipeline:{id}:stage:{h}"),
            stage_doc(h, h),
        );
        ids.push(id);
    }
    // Two ids a plain terminal would show identically.
    for id in ["twin", "tw\u{200B}in"] {
        set(
            &mut c,
            format!("artemis:pipeline:{id}"),
            pipeline_doc(id, "twin", "x"),
        );
    }
    ids
}

/// Code points that must not reach the terminal as themselves (outside emoji sequences).
fn hidden_in(s: &str) -> Option<char> {
    s.chars().find(|c| {
        matches!(
            c,
            '\u{AD}'
                | '\u{200B}'..='\u{200C}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'
                | '\u{E0041}'..='\u{E0042}'
        ) || (c.is_control() && *c != '\n')
    })
}

/// `--once` text: every invisible character shows as a placeholder, lookalike ids differ, and
/// every card row is as wide (by grapheme cluster) as the header.
#[test]
fn once_shows_invisible_characters_and_keeps_rows_aligned() {
    let server = RedisServer::start();
    plant_invisible(&server);
    let (text, _) = once(&server, "text");
    assert_inert(&text);
    assert_eq!(hidden_in(&text), None, "{text}");
    for shown in [
        "⟨U+2028⟩",
        "⟨U+00AD⟩",
        "⟨U+200B⟩",
        "⟨U+E0041⟩",
        "⟨U+202E⟩",
        "tw⟨U+200B⟩in",
    ] {
        assert!(text.contains(shown), "{shown} missing:\n{text}");
    }
    let width = |l: &str| -> usize {
        use unicode_segmentation::UnicodeSegmentation;
        l.graphemes(true).map(artemis_width).sum()
    };
    let header = text
        .lines()
        .find(|l| l.trim_start().starts_with("ID "))
        .expect("the card table");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains(" running ")).collect();
    // (An id too wide for the table, the zalgo one, has a line of its own above its row.)
    assert_eq!(rows.len(), 10, "{text}");
    // The STATUS column starts at the same cell in every row.
    let status_at = |l: &str| -> usize {
        let word = if l.trim_start().starts_with("ID ") {
            "STATUS"
        } else {
            "running"
        };
        let at = l.find(word).unwrap();
        width(&l[..at])
    };
    for r in &rows {
        assert_eq!(status_at(r), status_at(header), "{r:?}");
    }
}

/// ratatui's (and the text module's) width of one grapheme cluster.
fn artemis_width(g: &str) -> usize {
    if g.len() == 1 {
        1
    } else {
        unicode_width::UnicodeWidthStr::width(g)
    }
}

/// The live dashboard in a real terminal (tmux) with those cards: placeholders on screen, no
/// invisible character left in the terminal's cells, every row of the card table closed by the
/// panel's right border in the last column, in the overview and in each drilldown.
#[test]
fn dashboard_shows_invisible_characters_and_keeps_rows_aligned() {
    let server = RedisServer::start();
    let ids = plant_invisible(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), &[], &["--redis-url", &server.url()]);
    let (w, h) = (120usize, 40usize);
    let tmux = Tmux::start("invisible", w as u16, h as u16, &line);
    let s = tmux.wait_for("the cards", |s| s.contains("inv7") && s.contains("twin"));
    let check = |s: &str, what: &str| {
        assert_eq!(hidden_in(s), None, "{what}:\n{s}");
        assert_eq!(s.lines().count(), h, "{what}: no row wrapped:\n{s}");
        for (y, l) in s.lines().enumerate() {
            let l = l.trim_end();
            let width: usize = {
                use unicode_segmentation::UnicodeSegmentation;
                l.graphemes(true).map(artemis_width).sum()
            };
            // A row drawn in the table's panel ends at the panel's right border, in the
            // terminal's last column.
            if l.starts_with('│') {
                assert!(
                    l.ends_with('│') || l.ends_with('┃'),
                    "{what} row {y}: {l:?}"
                );
                assert_eq!(width, w, "{what} row {y} is {width} cells: {l:?}");
            }
        }
    };
    check(&s, "overview");
    assert!(s.contains("⟨U+200B⟩"), "{s}");
    assert!(s.contains("tw⟨U+200B⟩in"), "{s}");
    for (i, _) in ids.iter().enumerate() {
        tmux.keys(&["/"]);
        tmux.cmd(&["send-keys", "-t", "t", "-l", &format!("inv{i}-")]);
        tmux.keys(&["Enter"]);
        tmux.wait_for("one card", |s| s.contains("Cards 1/1"));
        tmux.keys(&["Enter"]);
        let s = tmux.wait_for("the drilldown", |s| s.contains("Stages (1)"));
        check(&s, &format!("drilldown of card {i}"));
        tmux.keys(&["Escape"]);
        tmux.wait_for("the overview", |s| !s.contains("Stages ("));
        tmux.keys(&["Escape"]);
        tmux.wait_for("the filter cleared", |s| s.contains("twin"));
    }
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}
