//! How long the UI loop's work takes, logged every 10 s at `info` (target
//! `artemis::tui::loop_stats`) so responsiveness can be measured on the real binary under real
//! load (`ARTEMIS_TOP_LOG=artemis::tui=info ARTEMIS_TOP_LOG_FILE=…`): frame draw times, and the longest
//! stretch spent applying messages (e.g. a new 10,000-card snapshot), during which keys wait.
//!
//! What a "draw" holds: building the frame (the overview's rows are brought up to date then,
//! lazily, so the row upkeep after a delta or a full read is in the draw), ratatui's diff and
//! the write to the terminal (which waits when the terminal reads slowly). Applying messages
//! is not in it: that is `longest_apply_ms`, so what a user waits from a message to its frame
//! is at most the apply plus the draw (plus the frame cap's wait, `dashboard.max_fps`).

use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_secs(10);

pub(crate) struct LoopStats {
    draws: Vec<Duration>,
    longest_apply: Duration,
    messages: u64,
    since: Instant,
}

impl LoopStats {
    pub fn new() -> Self {
        Self {
            draws: Vec::new(),
            longest_apply: Duration::ZERO,
            messages: 0,
            since: Instant::now(),
        }
    }

    pub fn draw(&mut self, took: Duration) {
        self.draws.push(took);
        self.maybe_log();
    }

    pub fn apply(&mut self, messages: u64, took: Duration) {
        self.messages += messages;
        self.longest_apply = self.longest_apply.max(took);
        self.maybe_log();
    }

    fn maybe_log(&mut self) {
        if self.since.elapsed() < PERIOD {
            return;
        }
        let secs = self.since.elapsed().as_secs_f64();
        self.draws.sort_unstable();
        let pick = |q: f64| -> f64 {
            if self.draws.is_empty() {
                return 0.0;
            }
            let i = ((self.draws.len() - 1) as f64 * q).round() as usize;
            self.draws[i].as_secs_f64() * 1e3
        };
        tracing::info!(
            target: "artemis::tui::loop_stats",
            frames = self.draws.len(),
            fps = format!("{:.1}", self.draws.len() as f64 / secs),
            draw_p50_ms = format!("{:.2}", pick(0.5)),
            draw_p99_ms = format!("{:.2}", pick(0.99)),
            draw_max_ms = format!("{:.2}", pick(1.0)),
            messages_per_s = format!("{:.0}", self.messages as f64 / secs),
            longest_apply_ms = format!("{:.2}", self.longest_apply.as_secs_f64() * 1e3),
            "ui loop"
        );
        *self = Self::new();
    }
}
