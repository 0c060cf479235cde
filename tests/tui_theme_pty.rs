//! The `auto` theme in real terminals: the real binary (`--demo`, no Redis) asks the terminal
//! for its background (OSC 11, then DA1) before reading keys. tmux answers OSC 11 when it knows
//! the pane's background (`window-style`) and DA1 always; a bare pseudo-terminal (`script`)
//! answers nothing at all. In each case the dashboard starts promptly, names the theme it
//! chose in the footer, takes no answer byte for a key, quits with `q` and restores the
//! terminal.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::tmux::{Tmux, assert_restored, binary_line};

/// Starts the demo in tmux after `setup` ran on the server (so the pane's background is set
/// before the program asks for it).
fn demo_in_tmux(
    tag: &str,
    env: &[(&str, &str)],
    setup: &[&[&str]],
) -> (Tmux, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), env, &["--demo"]);
    let tmux = Tmux::new(tag);
    // The pane waits a moment so that the options below are in force when the program asks.
    let delayed = format!("sleep 0.5; {line}");
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "120",
        "-y",
        "30",
        &delayed,
    ]);
    for args in setup {
        tmux.cmd(args);
    }
    (tmux, stty, dir)
}

/// Quits with `q` and checks the exit status and the terminal's modes.
fn quit_cleanly(tmux: &Tmux, stty: &std::path::Path) {
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(tmux, stty);
}

/// Nothing the terminal answered was taken for keys: no help popup, no filter prompt, the
/// overview as it starts.
fn assert_no_answer_became_keys(screen: &str) {
    assert!(
        !screen.contains("Help"),
        "an answer opened the help:\n{screen}"
    );
    assert!(
        !screen.contains("filter:"),
        "an answer opened the filter:\n{screen}"
    );
    assert!(screen.contains("Cards"), "{screen}");
}

#[test]
fn auto_is_light_where_the_terminal_reports_a_light_background() {
    let (tmux, stty, _dir) = demo_in_tmux(
        "osc11-light",
        &[],
        &[&["set", "-g", "window-style", "bg=colour231"]],
    );
    let s = tmux.wait_for("the first snapshot with the theme note", |s| {
        s.contains("Cards") && s.contains("theme light (auto, from the terminal's background)")
    });
    assert_no_answer_became_keys(&s);
    quit_cleanly(&tmux, &stty);
}

#[test]
fn auto_is_dark_where_the_terminal_reports_a_dark_background() {
    let (tmux, stty, _dir) = demo_in_tmux(
        "osc11-dark",
        // COLORFGBG says light: the terminal's own answer wins.
        &[("COLORFGBG", "0;15")],
        &[&["set", "-g", "window-style", "bg=colour16"]],
    );
    let s = tmux.wait_for("the first snapshot with the theme note", |s| {
        s.contains("Cards") && s.contains("theme dark (auto, from the terminal's background)")
    });
    assert_no_answer_became_keys(&s);
    quit_cleanly(&tmux, &stty);
}

#[test]
fn without_an_osc11_answer_colorfgbg_decides() {
    // No window-style: tmux does not know the background and answers only DA1.
    let (tmux, stty, _dir) = demo_in_tmux("colorfgbg", &[("COLORFGBG", "0;15")], &[]);
    let s = tmux.wait_for("the first snapshot with the theme note", |s| {
        s.contains("Cards") && s.contains("theme light (auto, from COLORFGBG)")
    });
    assert_no_answer_became_keys(&s);
    quit_cleanly(&tmux, &stty);
}

#[test]
fn without_any_answer_dark_is_assumed_at_once() {
    let started = Instant::now();
    let (tmux, stty, _dir) = demo_in_tmux("no-answer", &[], &[]);
    let s = tmux.wait_for("the first snapshot with the theme note", |s| {
        s.contains("Cards")
            && s.contains("theme dark (auto, the terminal reported no background: dark assumed)")
    });
    assert_no_answer_became_keys(&s);
    // tmux answers DA1, which ends the wait without running into the timeout.
    assert!(started.elapsed() < Duration::from_secs(10));
    quit_cleanly(&tmux, &stty);
}

/// A pseudo-terminal that answers neither OSC 11 nor DA1 (`script` only copies bytes; the
/// test answers the one query ratatui cannot start without, the cursor position): the query
/// times out quickly, the dashboard draws, and `q` still quits.
#[test]
fn a_terminal_that_answers_neither_query_costs_only_the_timeout() {
    let home = tempfile::tempdir().unwrap();
    let inner = format!(
        "stty cols 100 rows 30; exec {} --demo",
        env!("CARGO_BIN_EXE_artemis-top")
    );
    let started = Instant::now();
    let mut child = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home.path())
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script(1) from util-linux");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let note = "theme dark (auto, the terminal reported no background: dark assumed)";
    let mut seen = Vec::new();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !String::from_utf8_lossy(&seen).contains(note) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => {
                seen.extend(bytes);
                let asked = seen.windows(4).filter(|w| w == b"\x1b[6n").count();
                let stdin = child.stdin.as_mut().unwrap();
                for _ in answered..asked {
                    stdin.write_all(b"\x1b[1;1R").unwrap();
                }
                answered = asked;
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no frame with the theme note; output: {:?}",
                    String::from_utf8_lossy(&seen)
                );
            }
        }
    }
    let drawn_after = started.elapsed();
    let out = String::from_utf8_lossy(&seen);
    assert!(out.contains("\x1b]11;?"), "the query was sent");
    assert!(
        drawn_after < Duration::from_secs(5),
        "the first frame took {drawn_after:?}"
    );
    child.stdin.as_mut().unwrap().write_all(b"q").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("q did not quit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
