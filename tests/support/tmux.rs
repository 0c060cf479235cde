//! Driving the real binary in a real terminal: a tmux server on a private socket, its screen,
//! its keys, and whether the program left the terminal as it found it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server on a private socket, killed (only it) on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A session `t` of `width` x `height` running `line`.
    pub fn start(tag: &str, width: u16, height: u16, line: &str) -> Self {
        let tmux = Self::new(tag);
        tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            line,
        ]);
        tmux
    }

    pub fn new(tag: &str) -> Self {
        Self {
            socket: format!("artemis-test-{}-{tag}", std::process::id()),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (is it installed?)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Polls the screen until `want` holds, at most 15 s; returns that screen.
    pub fn wait_for(&self, what: &str, want: impl Fn(&str) -> bool) -> String {
        self.wait_within(what, Duration::from_secs(15), want)
    }

    /// [`Tmux::wait_for`] with its own time limit.
    pub fn wait_within(&self, what: &str, limit: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen();
            if want(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }
}

/// Quotes one shell word.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The shell line that runs the binary with `args` in a clean environment (`HOME` = `dir`, a
/// minimal `PATH`, `TERM=xterm-256color`, plus `env`), then prints `EXIT=<code>` and writes
/// `stty -a` to the returned file, so a test can check how the terminal was left.
pub fn binary_line(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, PathBuf) {
    let stty = dir.join("stty.txt");
    let env: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    let args: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let line = format!(
        "env -i HOME={home} PATH=/usr/bin:/bin TERM=xterm-256color {env} {bin} {args}; \
         echo EXIT=$?; stty -a > {stty}; sleep 120",
        home = quote(&dir.display().to_string()),
        env = env.join(" "),
        bin = env!("CARGO_BIN_EXE_artemis-top"),
        args = args.join(" "),
        stty = quote(&stty.display().to_string()),
    );
    (line, stty)
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

/// Asserts the terminal is back to normal: main screen, cursor shown, and (from the `stty -a`
/// the test's shell line wrote to `stty` after the program exited) cooked mode with echo.
pub fn assert_restored(tmux: &Tmux, stty: &Path) {
    let modes = tmux.cmd(&["display", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"]);
    assert_eq!(
        modes.trim(),
        "0 1",
        "alternate screen left and cursor shown"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stty.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let modes = std::fs::read_to_string(stty).expect("stty output");
    let words: Vec<&str> = modes.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        assert!(words.contains(&flag), "{flag} not restored: {modes}");
    }
}

/// The one child process of `ppid` (read from /proc, no external tool needed).
pub fn child_of(ppid: u32) -> Option<u32> {
    let mut found = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        if rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok())
            == Some(ppid)
        {
            found = Some(pid);
        }
    }
    found
}
