//! The mouse in a real terminal (tmux): with `--mouse` the dashboard captures it while it runs
//! and only then (given back on quit, on suspend, on an ending signal; taken again on resume),
//! and a double click a terminal sends (SGR mouse reports, as bytes into the pane) opens the
//! card under it. Without the flag the terminal keeps the mouse (its own text selection).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::tmux::{Tmux, assert_restored, binary_line, child_of};

/// Whether the pane's program asked for mouse reports (any of the modes crossterm enables).
fn mouse_captured(tmux: &Tmux) -> bool {
    let flags = tmux.cmd(&[
        "display",
        "-p",
        "-t",
        "t",
        "#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}",
    ]);
    flags.contains('1')
}

fn wait_until(what: &str, want: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !want() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn demo(tag: &str, args: &[&str]) -> (Tmux, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec!["--demo"];
    all.extend_from_slice(args);
    let (line, stty) = binary_line(dir.path(), &[], &all);
    let tmux = Tmux::start(tag, 120, 30, &line);
    tmux.wait_for("the first cards", |s| s.contains("sim-"));
    (tmux, stty, dir)
}

fn dashboard_pid(tmux: &Tmux) -> u32 {
    let shell: u32 = tmux
        .cmd(&["display", "-p", "-t", "t", "#{pane_pid}"])
        .trim()
        .parse()
        .unwrap();
    child_of(shell).expect("the dashboard runs under the pane's shell")
}

fn kill(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

/// Sends the bytes of an SGR mouse report (1-based cell) as a terminal would.
fn sgr(tmux: &Tmux, button: u8, column: u16, row: u16, press: bool) {
    let report = format!(
        "\x1b[<{button};{column};{row}{}",
        if press { 'M' } else { 'm' }
    );
    let hex: Vec<String> = report.bytes().map(|b| format!("{b:02x}")).collect();
    let mut args = vec!["send-keys", "-t", "t", "-H"];
    args.extend(hex.iter().map(String::as_str));
    tmux.cmd(&args);
}

#[test]
fn with_mouse_the_capture_lasts_only_while_the_dashboard_runs() {
    let (tmux, stty, _dir) = demo("mouse-on", &["--mouse"]);
    assert!(mouse_captured(&tmux));
    let pid = dashboard_pid(&tmux);
    kill("TSTP", pid);
    wait_until("the mouse given back while stopped", || {
        !mouse_captured(&tmux)
    });
    kill("CONT", pid);
    wait_until("the mouse taken again", || mouse_captured(&tmux));
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(!mouse_captured(&tmux));
    assert_restored(&tmux, &stty);
}

#[test]
fn an_ending_signal_gives_the_mouse_back() {
    let (tmux, stty, _dir) = demo("mouse-term", &["--mouse"]);
    assert!(mouse_captured(&tmux));
    kill("TERM", dashboard_pid(&tmux));
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=143"), "{s}");
    assert!(!mouse_captured(&tmux));
    assert_restored(&tmux, &stty);
}

#[test]
fn without_the_flag_the_terminal_keeps_the_mouse() {
    let (tmux, _stty, _dir) = demo("mouse-off", &[]);
    assert!(!mouse_captured(&tmux));
    tmux.keys(&["q"]);
    tmux.wait_for("the exit", |s| s.contains("EXIT=0"));
}

#[test]
fn a_double_click_on_a_card_row_opens_it() {
    let (tmux, stty, _dir) = demo("mouse-click", &["--mouse"]);
    // Freeze first so the rows stay where they were clicked.
    tmux.keys(&["p"]);
    let s = tmux.wait_for("the frozen screen", |s| s.contains("FROZEN"));
    // Header, the table's border and its column header above the first card row.
    let first_row = s.lines().nth(3).unwrap_or_default().to_owned();
    let id = first_row
        .trim_start_matches('│')
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(id.starts_with("sim-"), "{s}");
    for _ in 0..2 {
        sgr(&tmux, 0, 10, 4, true);
        sgr(&tmux, 0, 10, 4, false);
    }
    tmux.wait_for("the drilldown of the clicked card", |s| {
        s.contains(&format!("Card {id}"))
    });
    tmux.keys(&["q"]);
    tmux.wait_for("the exit", |s| s.contains("EXIT=0"));
    assert_restored(&tmux, &stty);
}
