//! The real binary in a real terminal (tmux): it shows Python-written cards from a real
//! Redis, drills into one with Enter, goes back with Esc, survives a resize to a tiny window,
//! quits with `q` — and leaves the terminal as it found it (main screen, cursor shown,
//! canonical mode and echo back on). The same after SIGTERM and SIGHUP.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::RedisServer;
use support::tmux::{Tmux, assert_restored, binary_line, child_of};

fn seed(server: &RedisServer) {
    let now = chrono::Utc::now().naive_utc();
    let ts = |ago: i64| artemis::model::format_naive(now - chrono::Duration::seconds(ago));
    let doc = format!(
        r#"{{"card_id": "card-pty-1", "status": "running", "total_stages": 3, "completed_stages": 1, "current_stage": "build", "start_time": "{}", "end_time": null, "metadata": {{"title": "Terminal test card"}}}}"#,
        ts(90)
    );
    server.cli(&["SET", "artemis:pipeline:card-pty-1", &doc, "EX", "86400"]);
    let stage = format!(
        r#"{{"stage_name": "build", "status": "running", "progress_percent": 30, "message": "compiling crates", "timestamp": "{}", "metadata": {{}}}}"#,
        ts(10)
    );
    server.cli(&[
        "SET",
        "artemis:pipeline:card-pty-1:stage:build",
        &stage,
        "EX",
        "86400",
    ]);
}

/// The shell line tmux runs: the dashboard in a clean environment, then a record of how it
/// left the terminal.
fn script(server: &RedisServer, dir: &Path) -> (String, PathBuf) {
    binary_line(dir, &[], &["--redis-url", &server.url()])
}

#[test]
fn drill_into_a_card_and_quit_restores_the_terminal() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start("quit", 100, 30, &line);

    let s = tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    assert!(s.contains("● connected"), "{s}");
    assert!(s.contains("Terminal test card"), "{s}");
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the drilldown", |s| s.contains("Stages (1)"));
    assert!(s.contains("compiling crates"), "{s}");
    assert!(s.contains("Card card-pty-1 · Terminal test card"), "{s}");

    // Resizing to a tiny window and back never breaks the screen.
    tmux.cmd(&["resize-window", "-t", "t", "-x", "40", "-y", "10"]);
    tmux.wait_for("the too-small message", |s| {
        s.contains("Terminal too small")
    });
    tmux.cmd(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    tmux.wait_for("the drilldown again", |s| s.contains("Stages (1)"));

    tmux.keys(&["Escape"]);
    tmux.wait_for("the overview", |s| s.contains("Cards 1/1"));
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(
        !s.contains("Cards 1/1"),
        "the dashboard's screen is gone:\n{s}"
    );
    assert_restored(&tmux, &stty);
}

fn signal_restores_the_terminal(signal: &str) {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start(signal, 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let pid = child_of(shell.trim().parse().unwrap()).expect("the dashboard process");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "artemis-top");
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

#[test]
fn sigterm_restores_the_terminal() {
    signal_restores_the_terminal("TERM");
}

#[test]
fn sighup_restores_the_terminal() {
    signal_restores_the_terminal("HUP");
}

/// A panic in the UI (forced in debug builds by `TEST_PANIC_ARTEMIS_TOP`) restores the terminal
/// before the panic message is printed, and ends the process with the panic exit code.
#[test]
fn a_panic_restores_the_terminal() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let line = line.replace("TERM=", "TEST_PANIC_ARTEMIS_TOP=1 TERM=");
    let tmux = Tmux::start("panic", 100, 30, &line);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=101"), "{s}");
    assert!(
        s.contains("test panic after the first frame"),
        "the message is readable:\n{s}"
    );
    assert_restored(&tmux, &stty);
}
