//! `artemis-top --demo` in a real terminal (tmux), with no Redis at all: simulated cards appear
//! within moments and move through their stages, LLM calls fill the cache and rate-limit
//! panels, Enter drills into a card, Esc goes back, `q` quits with exit code 0 and the
//! terminal is restored.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::tmux::{Tmux, assert_restored, binary_line};

/// Card rows of the overview: card id → (`done/total`, running stage's percent if shown).
fn progress(screen: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for line in screen.lines() {
        let row = line.trim_start_matches('│');
        let mut words = row.split_whitespace();
        let Some(id) = words.next().filter(|w| w.starts_with("sim-")) else {
            continue;
        };
        let words: Vec<&str> = words.collect();
        let Some(i) = words.iter().position(|w| {
            w.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.bytes().all(|c| c.is_ascii_digit())
                    && b.bytes().all(|c| c.is_ascii_digit())
            })
        }) else {
            continue;
        };
        let percent = words
            .get(i + 1)
            .filter(|w| w.ends_with('%'))
            .map(|w| w.to_string())
            .unwrap_or_default();
        out.insert(id.to_owned(), (words[i].to_owned(), percent));
    }
    out
}

/// The number right after `label` on the screen (`hits 3  misses 12`).
fn count_after(screen: &str, label: &str) -> Option<u64> {
    let rest = &screen[screen.find(label)? + label.len()..];
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn stages_done(p: &(String, String)) -> u32 {
    p.0.split_once('/')
        .and_then(|(a, _)| a.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_demo_runs_without_redis_drills_in_and_quits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // A clean environment: no REDIS_URL, no config file; nothing listens for it anyway.
    let (line, stty) = binary_line(dir.path(), &[], &["--demo"]);
    let tmux = Tmux::start("demo", 110, 34, &line);

    // Cards appear at once, several running.
    let first = tmux.wait_for("running simulated cards", |s| {
        progress(s).len() >= 3 && s.contains("running")
    });
    assert!(first.contains("in-process"), "{first}");
    let before = progress(&first);

    // Their progress moves: some card's stage count or percent changes.
    tmux.wait_within("progress to change", Duration::from_secs(20), |s| {
        let now = progress(s);
        now.iter()
            .any(|(id, p)| before.get(id).is_some_and(|b| b != p))
    });
    // Cards get through stages, and LLM calls show in the cache and rate-limit panels.
    let s = tmux.wait_within("a card two stages in", Duration::from_secs(30), |s| {
        progress(s).values().any(|p| stages_done(p) >= 2)
    });
    let s = if s.contains(":sim") {
        s
    } else {
        tmux.wait_for("the simulator's rate limits", |s| s.contains(":sim"))
    };
    assert!(
        count_after(&s, "misses ").is_some_and(|n| n > 0),
        "LLM calls reached the provider:\n{s}"
    );
    assert!(!s.contains("no rate-limit windows"), "{s}");

    // Enter opens the selected card: its summary, stages and events.
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the drilldown", |s| {
        s.contains("Card sim-") && s.contains("Stages (") && s.contains("Events (")
    });
    assert!(s.contains("requirements"), "{s}");
    // Esc goes back to the overview.
    tmux.keys(&["Escape"]);
    tmux.wait_for("the overview", |s| {
        s.contains("Cards ") && !s.contains("Stages (")
    });

    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        !s.contains("Cards "),
        "the dashboard's screen is gone:\n{s}"
    );
    assert_restored(&tmux, &stty);
}
