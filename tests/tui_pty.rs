//! The real binary in a real terminal (tmux): it shows Python-written cards from a real
//! Redis, drills into one with Enter, goes back with Esc, survives a resize to a tiny window,
//! quits with `q` — and leaves the terminal as it found it (main screen, cursor shown,
//! canonical mode and echo back on). The same after every signal that ends it (with the
//! signal's own exit status) and after a panic; Ctrl-Z / SIGTSTP suspend with the terminal
//! restored and `fg` / SIGCONT redraw; a long paste and `ESC q` in one read are handled as
//! typed; a Redis frozen by SIGSTOP leaves the dashboard answering keys and saying so.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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

/// The dashboard process inside the tmux pane (the pane's shell's one child).
fn dashboard_pid(tmux: &Tmux) -> u32 {
    let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let pid = child_of(shell.trim().parse().unwrap()).expect("the dashboard process");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "artemis-top");
    pid
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// The process state letter from /proc (`T` = stopped).
fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .and_then(|i| stat[i + 2..].chars().next())
        .unwrap_or('?')
}

fn modes(tmux: &Tmux) -> String {
    tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"])
        .trim()
        .to_owned()
}

fn wait_until(what: &str, want: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !want() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A signal that ends the process: the terminal is restored, and the process ends as the
/// signal's default action would have it (the shell sees 128 + its number).
fn signal_restores_the_terminal(signal: &str, number: i32) {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    // SIGQUIT and SIGABRT dump core by default: not into the test's working directory.
    let line = format!("ulimit -c 0; {line}");
    let tmux = Tmux::start(signal, 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    kill(signal, dashboard_pid(&tmux));
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains(&format!("EXIT={}", 128 + number)), "{s}");
    assert_restored(&tmux, &stty);
}

#[test]
fn sigterm_restores_the_terminal() {
    signal_restores_the_terminal("TERM", 15);
}

#[test]
fn sighup_restores_the_terminal() {
    signal_restores_the_terminal("HUP", 1);
}

#[test]
fn sigint_restores_the_terminal() {
    signal_restores_the_terminal("INT", 2);
}

#[test]
fn sigquit_restores_the_terminal() {
    signal_restores_the_terminal("QUIT", 3);
}

#[test]
fn sigusr1_restores_the_terminal() {
    signal_restores_the_terminal("USR1", 10);
}

#[test]
fn sigusr2_restores_the_terminal() {
    signal_restores_the_terminal("USR2", 12);
}

#[test]
fn sigalrm_restores_the_terminal() {
    signal_restores_the_terminal("ALRM", 14);
}

/// SIGPIPE stays ignored (Rust's default, which the dashboard keeps so that a dropped Redis
/// socket is an error and not death): the dashboard keeps running and drawing.
#[test]
fn sigpipe_is_ignored_and_the_dashboard_keeps_running() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start("pipe", 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    kill("PIPE", dashboard_pid(&tmux));
    std::thread::sleep(std::time::Duration::from_millis(700));
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the drilldown", |s| s.contains("Stages (1)"));
    assert!(!s.contains("EXIT="), "{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

/// SIGTSTP from outside (`kill -TSTP`): the terminal is given back (main screen, cursor shown)
/// and the process stops; SIGCONT takes the terminal again and redraws the whole screen.
#[test]
fn sigtstp_suspends_with_the_terminal_restored_and_sigcont_redraws() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start("tstp", 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    let pid = dashboard_pid(&tmux);
    kill("TSTP", pid);
    wait_until("the process to stop", || state(pid) == 'T');
    assert_eq!(modes(&tmux), "0 1", "main screen and cursor while stopped");
    // Scribble over the screen as a shell would meanwhile: the redraw must cover it.
    tmux.cmd(&["send-keys", "-t", "t", "-l", "scribble"]);
    kill("CONT", pid);
    wait_until("the alternate screen again", || modes(&tmux) == "1 0");
    let s = tmux.wait_for("the dashboard redrawn", |s| {
        s.contains("card-pty-1") && s.contains("● connected")
    });
    assert!(!s.contains("scribble"), "{s}");
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

/// Ctrl-Z in the dashboard (a key in raw mode) suspends it in an interactive shell with the
/// terminal restored (cooked mode with echo, main screen, cursor); `fg` takes the terminal
/// again, redraws, and the keys work.
#[test]
fn ctrl_z_suspends_to_the_shell_and_fg_resumes_and_redraws() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let stty = dir.path().join("stty-suspended.txt");
    let shell = format!(
        "env -i HOME={home} PATH=/usr/bin:/bin TERM=xterm-256color PS1='PROMPT> ' \
         bash --norc --noprofile -i",
        home = dir.path().display()
    );
    let tmux = Tmux::start("ctrlz", 100, 30, &shell);
    tmux.wait_for("the prompt", |s| s.contains("PROMPT>"));
    let cmd = format!(
        "{} --redis-url {}",
        env!("CARGO_BIN_EXE_artemis-top"),
        server.url()
    );
    tmux.cmd(&["send-keys", "-t", "t", "-l", &cmd]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    let pid = dashboard_pid(&tmux);
    tmux.keys(&["C-z"]);
    wait_until("the process to stop", || state(pid) == 'T');
    let s = tmux.wait_for("the shell's job report", |s| s.contains("Stopped"));
    assert_eq!(modes(&tmux), "0 1", "main screen and cursor:\n{s}");
    tmux.cmd(&[
        "send-keys",
        "-t",
        "t",
        "-l",
        &format!("stty -a > {}", stty.display()),
    ]);
    tmux.keys(&["Enter"]);
    wait_until("stty's report", || {
        std::fs::read_to_string(&stty).is_ok_and(|s| s.contains("speed"))
    });
    let words = std::fs::read_to_string(&stty).unwrap();
    let words: Vec<&str> = words.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(words.contains(&flag), "{flag} not restored while suspended");
    }
    tmux.cmd(&["send-keys", "-t", "t", "-l", "fg"]);
    tmux.keys(&["Enter"]);
    wait_until("the alternate screen again", || modes(&tmux) == "1 0");
    tmux.wait_for("the dashboard redrawn", |s| {
        s.contains("card-pty-1") && s.contains("● connected") && !s.contains("Stopped")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the drilldown (raw mode works)", |s| {
        s.contains("Stages (1)")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the overview", |s| s.contains("Cards 1/1"));
    tmux.keys(&["q"]);
    tmux.wait_for("the prompt after the exit", |s| {
        s.lines().any(|l| l.trim() == "PROMPT>")
    });
    assert_eq!(modes(&tmux), "0 1");
}

/// A paste far beyond crossterm's 1,024-byte read buffer is handled at once: the keys at its
/// end (a filter) show without another key press.
#[test]
fn a_long_paste_is_handled_without_another_key() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start("paste", 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    // 3,000 keys bound to nothing, then a filter.
    let paste = format!("{}/pty-1", "x".repeat(3000));
    tmux.cmd(&["send-keys", "-t", "t", "-l", &paste]);
    let s = tmux.wait_within(
        "the filter typed at the end of the paste",
        std::time::Duration::from_secs(5),
        |s| s.contains("filter \"pty-1\""),
    );
    assert!(s.contains("card-pty-1"), "{s}");
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

/// Escape and the key after it, arriving in one read (as `ESC q`, the bytes of Alt-q), are
/// Escape then q: out of the drilldown, then quit.
#[test]
fn escape_then_q_in_one_read_is_not_alt_q() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = script(&server, dir.path());
    let tmux = Tmux::start("escq", 100, 30, &line);
    tmux.wait_for("the card", |s| s.contains("card-pty-1"));
    tmux.keys(&["Enter"]);
    tmux.wait_for("the drilldown", |s| s.contains("Stages (1)"));
    // One write of both bytes.
    tmux.cmd(&["send-keys", "-t", "t", "-H", "1b", "71"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
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

/// A Redis frozen by SIGSTOP (a stalled host) answers nothing and closes nothing: the
/// dashboard must still answer keys at once, say that Redis does not answer, and come back
/// by itself on SIGCONT.
#[test]
fn a_frozen_redis_leaves_the_dashboard_answering_keys_and_sigcont_brings_it_back() {
    let server = RedisServer::start();
    seed(&server);
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(
        dir.path(),
        &[("REDIS_TIMEOUT", "1")],
        &["--redis-url", &server.url()],
    );
    let tmux = Tmux::start("frozen", 100, 30, &line);
    tmux.wait_for("the card", |s| {
        s.contains("card-pty-1") && s.contains("● connected")
    });
    server.signal("STOP");
    let s = tmux.wait_within("the outage shown", Duration::from_secs(8), |s| {
        s.contains("Redis unreachable") && !s.contains("● connected")
    });
    assert!(
        s.contains("card-pty-1"),
        "the last data stays on screen:\n{s}"
    );
    tmux.keys(&["?"]);
    tmux.wait_within("help, while Redis is frozen", Duration::from_secs(1), |s| {
        s.contains("Help ·")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_within("the overview again", Duration::from_secs(1), |s| {
        s.contains("Cards 1/1")
    });
    server.signal("CONT");
    tmux.wait_within("connected again", Duration::from_secs(10), |s| {
        s.contains("● connected") && !s.contains("Redis unreachable")
    });
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}
