//! A tmux server on a private socket for terminal tests (the approach of `tests/tui_pty.rs`):
//! run a command in a pane of a fixed size, read the screen, send keys, and check that the
//! program left the terminal as it found it. Only this server is ever killed.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A server for one test; `tag` keeps concurrent tests apart.
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

    /// Starts session `t` running the shell line `line` in a `width`×`height` window.
    pub fn start(&self, width: u16, height: u16, line: &str) {
        let (w, h) = (width.to_string(), height.to_string());
        self.cmd(&["new-session", "-d", "-s", "t", "-x", &w, "-y", &h, line]);
    }

    pub fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Polls the screen until `want` holds (at most `limit`), returning that screen.
    pub fn wait_for_within(
        &self,
        what: &str,
        limit: Duration,
        mut want: impl FnMut(&str) -> bool,
    ) -> String {
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

    pub fn wait_for(&self, what: &str, want: impl FnMut(&str) -> bool) -> String {
        self.wait_for_within(what, Duration::from_secs(15), want)
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.cmd(&args);
    }

    /// Asserts the pane left the alternate screen with the cursor shown, and that the modes
    /// `stty -a` wrote to `stty` after the program ended are the shell's (canonical, echo…).
    pub fn assert_restored(&self, stty: &Path) {
        let modes = self.cmd(&["display", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"]);
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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}
