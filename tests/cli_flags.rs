//! The command line as a user meets it: `--count` and `--format` ask for headless output in a
//! terminal as they do in a pipe (`--interval` alone keeps the dashboard), shell completions
//! load in a real bash, and the man page renders and documents every command and flag.

mod support;

use std::process::Command;
use std::time::Duration;

use support::tmux::{Tmux, assert_restored, binary_line};

fn bin() -> Command {
    support::artemis_top(&std::env::temp_dir().join("artemis-top-cli-flags-test-home"))
}

/// The whole pane, history included, wrapped lines joined.
fn history(tmux: &Tmux) -> String {
    tmux.cmd(&["capture-pane", "-p", "-J", "-S", "-", "-t", "t"])
}

/// Runs `args` in a tmux terminal until it exits; returns everything it printed.
fn in_terminal(tag: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), &[], args);
    let tmux = Tmux::start(tag, 120, 40, &line);
    tmux.cmd(&["set-option", "-t", "t", "history-limit", "50000"]);
    tmux.wait_within("the program to exit", Duration::from_secs(30), |s| {
        s.contains("EXIT=")
    });
    assert_restored(&tmux, &stty);
    history(&tmux)
}

fn exit_code(out: &str) -> &str {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix("EXIT="))
        .unwrap_or("")
}

#[test]
fn count_in_a_terminal_prints_reports_and_exits() {
    let out = in_terminal("count", &["--demo", "--count", "2", "--interval", "0.2"]);
    assert_eq!(exit_code(&out), "0", "{out}");
    assert_eq!(out.matches("artemis-top report ·").count(), 2, "{out}");
}

#[test]
fn format_json_in_a_terminal_prints_one_versioned_json_line() {
    let out = in_terminal("json", &["--demo", "--format", "json"]);
    assert_eq!(exit_code(&out), "0", "{out}");
    let docs: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect();
    assert_eq!(docs.len(), 1, "{out}");
    assert_eq!(docs[0]["version"], artemis::report::REPORT_VERSION);
}

#[test]
fn count_and_format_json_in_a_terminal_print_json_lines() {
    let out = in_terminal(
        "countjson",
        &[
            "--demo",
            "--count",
            "3",
            "--interval",
            "0.1",
            "--format",
            "json",
        ],
    );
    assert_eq!(exit_code(&out), "0", "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("{\"version\":"))
            .count(),
        3,
        "{out}"
    );
}

#[test]
fn interval_alone_in_a_terminal_keeps_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let (line, stty) = binary_line(dir.path(), &[], &["--demo", "--interval", "1"]);
    let tmux = Tmux::start("interval", 120, 40, &line);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while tmux
        .cmd(&["display", "-p", "-t", "t", "#{alternate_on}"])
        .trim()
        != "1"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no dashboard: {}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    tmux.keys(&["q"]);
    let s = tmux.wait_for("the exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert_restored(&tmux, &stty);
}

#[test]
fn count_without_a_terminal_prints_json_lines() {
    let out = bin()
        .args([
            "--demo",
            "--count",
            "2",
            "--interval",
            "0.1",
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
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["version"], artemis::report::REPORT_VERSION);
    }
}

#[test]
fn help_says_count_and_format_imply_once() {
    let out = bin().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = help.lines().collect();
    for flag in ["--count <N>", "--format <FORMAT>"] {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} missing: {help}"));
        // Its description: the lines up to the next flag.
        let text: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with('-'))
            .map(|l| l.trim())
            .collect();
        let text = text.join(" ");
        assert!(text.contains("Implies --once"), "{flag}: {text}");
    }
}

fn stdout_of(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completion_script_loads_and_completes_flags_and_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("artemis-top.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    // Source it in a real bash and ask its completion function what follows a prefix.
    let complete = |words: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "set -e; source {script}; complete -p artemis-top >/dev/null; \
                 COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
                 fn=$(complete -p artemis-top | sed 's/.* -F \\([^ ]*\\) .*/\\1/'); \
                 \"$fn\" artemis-top \"${{COMP_WORDS[COMP_CWORD]}}\" \
                   \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script = script.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let flags = complete("artemis-top --fo");
    assert!(flags.lines().any(|l| l == "--format"), "{flags}");
    let subs = complete("artemis-top si");
    assert!(subs.lines().any(|l| l == "simulate"), "{subs}");
    let sim = complete("artemis-top simulate --fail");
    assert!(sim.lines().any(|l| l == "--failure-rate"), "{sim}");
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand_and_flag() {
    for shell in ["zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for word in [
            "simulate",
            "check",
            "completions",
            "man",
            "once",
            "count",
            "format",
            "interval",
            "redis-url",
            "failure-rate",
        ] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
}

#[test]
fn unknown_shell_is_refused_with_the_choices() {
    let out = bin().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bash") && err.contains("fish"), "{err}");
}

/// Every long flag and subcommand of the command line, from clap itself.
fn every_flag_and_command() -> Vec<String> {
    use clap::CommandFactory as _;
    let cmd = artemis::cli::Cli::command();
    let mut out = Vec::new();
    let push_flags = |c: &clap::Command, out: &mut Vec<String>| {
        for a in c.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = a.get_long() {
                out.push(format!("--{long}"));
            }
        }
    };
    push_flags(&cmd, &mut out);
    for sub in cmd.get_subcommands() {
        out.push(format!("COMMAND: {}", sub.get_name()));
        push_flags(sub, &mut out);
    }
    out
}

#[test]
fn man_page_renders_without_warnings_and_documents_everything() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("artemis-top.1");
    std::fs::write(&page, stdout_of(&["man"])).unwrap();
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "200")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("man is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "warnings: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Strip the overstrike bold/underline man may emit when its output is not a terminal.
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut text = String::new();
    for c in raw.chars() {
        if c == '\u{8}' {
            text.pop();
        } else {
            text.push(c);
        }
    }
    let flat = text.replace(['\u{2010}', '\u{2212}'], "-");
    for word in every_flag_and_command() {
        assert!(
            flat.contains(&word),
            "{word} missing from the man page:\n{flat}"
        );
    }
    assert!(flat.contains("Implies --once"), "{flat}");
}

#[test]
fn completions_and_man_work_with_a_broken_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[redis\nurl = 3").unwrap();
    // The same file stops the dashboard with a config error...
    let out = bin()
        .args(["--once", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // ...but not the commands that only describe the command line.
    for args in [&["completions", "bash"][..], &["man"][..]] {
        let out = bin()
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty());
    }
}
