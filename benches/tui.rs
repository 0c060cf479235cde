//! Dashboard benchmark (`cargo bench --bench tui`): what a frame costs, and what the real
//! binary costs in CPU and memory while it watches a real Redis.
//!
//! 1. Frame build time (ratatui `TestBackend`, 160x48) with 1,000 and 10,000 cards, against
//!    the same frame with no cards as the baseline: steady redraw, redraw after a new
//!    snapshot (filter + sort again), and redraw after one live event; and each view's steady
//!    frame (metrics view, help, drilldown) against the overview's with the same 1,000 cards.
//! 2. The release binary in tmux against its own `redis-server`: CPU while idle and while
//!    1,000 events/s are published, with the Redis server's own CPU in the same window as the
//!    baseline; resident memory with 0, 1,000 and 10,000 cards.
//!
//! 3. Reads at scale (`-- scale`): with 100,000 cards, what applying a read and drawing the next
//!    frame costs on the UI task: a full snapshot (the baseline), a delta of 1,000 and of 10
//!    changed cards, one frame's worth of live events at 1,000 events/s, and a steady frame.
//!
//! Medians of several runs; every figure is printed with the ratio to its baseline.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/tui_fixtures/mod.rs"]
mod tui_fixtures;

use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use artemis::model::{PipelineEvent, PipelineStatus, StageStatus};
use artemis::snapshot::SnapshotDelta;
use artemis::tui::message::Message;
use artemis::tui::render;
use common::{cpu_secs, median, redis_cpu, rss_mib};
use support::tmux::{Tmux, binary_line, child_of};

// ---------------------------------------------------------------- frames

#[derive(Clone, Copy)]
enum Mode {
    Steady,
    AfterSnapshot,
    AfterEvent,
}

/// Median microseconds per frame over `runs` runs of `frames` frames.
fn frame_us(cards: usize, mode: Mode) -> f64 {
    let snap = tui_fixtures::many_cards(cards);
    let mut app = tui_fixtures::app();
    app.apply(Message::Snapshot(Box::new(snap.clone())));
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let frames = if cards >= 10_000 { 30 } else { 100 };
    for _ in 0..10 {
        term.draw(|f| render::draw(f, &mut app)).unwrap();
    }
    let mut runs = Vec::new();
    for _ in 0..7 {
        let mut total = Duration::ZERO;
        for i in 0..frames {
            // Preparing the input is not part of the frame.
            let msg = match mode {
                Mode::Steady => None,
                Mode::AfterSnapshot => Some(Message::Snapshot(Box::new(snap.clone()))),
                Mode::AfterEvent => Some(Message::Event(PipelineEvent::StageUpdated {
                    card_id: format!("card-{:06}", i % cards.max(1)),
                    stage_name: "development".into(),
                    status: StageStatus::Running,
                    progress_percent: Some((i % 100) as i64),
                    message: None,
                    timestamp: "2025-10-22T20:30:44".into(),
                })),
            };
            let t = Instant::now();
            if let Some(m) = msg {
                app.apply(m);
            }
            term.draw(|f| render::draw(f, &mut app)).unwrap();
            total += t.elapsed();
        }
        runs.push(total.as_secs_f64() * 1e6 / frames as f64);
    }
    median(runs)
}

fn frames() {
    println!("## Frame build time (160x48, TestBackend, median of 7 runs)\n");
    println!("| cards | mode | µs/frame | × baseline (0 cards, same mode) |");
    println!("|---:|---|---:|---:|");
    for (mode, name) in [
        (Mode::Steady, "steady redraw"),
        (Mode::AfterSnapshot, "new snapshot + redraw"),
        (Mode::AfterEvent, "live event + redraw"),
    ] {
        let base = frame_us(0, mode);
        println!("| 0 | {name} | {base:.0} | 1.0 |");
        for n in [1_000, 10_000] {
            let us = frame_us(n, mode);
            println!("| {n} | {name} | {us:.0} | {:.1} |", us / base);
        }
    }
    println!();
}

/// Median microseconds per steady frame of the view `keys` open, over 7 runs of 100 frames,
/// with 1,000 cards.
fn view_frame_us(keys: &[crossterm::event::KeyCode]) -> f64 {
    let mut app = tui_fixtures::app_with_all_metrics(artemis::tui::theme::Theme::dark(), false);
    app.apply(Message::Snapshot(Box::new(tui_fixtures::many_cards(1_000))));
    for k in keys {
        app.handle_key(crossterm::event::KeyEvent::new(
            *k,
            crossterm::event::KeyModifiers::NONE,
        ));
    }
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for _ in 0..10 {
        term.draw(|f| render::draw(f, &mut app)).unwrap();
    }
    let runs = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..100 {
                term.draw(|f| render::draw(f, &mut app)).unwrap();
            }
            t.elapsed().as_secs_f64() * 1e6 / 100.0
        })
        .collect();
    median(runs)
}

fn views() {
    use crossterm::event::KeyCode;
    println!("## Steady frame per view (160x48, 1,000 cards, median of 7 runs)\n");
    println!("| view | µs/frame | × baseline (overview) |");
    println!("|---|---:|---:|");
    let base = view_frame_us(&[]);
    println!("| overview | {base:.0} | 1.0 |");
    for (name, keys) in [
        ("metrics (Tab)", &[KeyCode::Tab][..]),
        ("help (?)", &[KeyCode::Char('?')][..]),
        ("drilldown (Enter)", &[KeyCode::Enter][..]),
    ] {
        let us = view_frame_us(keys);
        println!("| {name} | {us:.0} | {:.2} |", us / base);
    }
    println!();
}

// ---------------------------------------------------------------- reads at scale

/// A delta changing `n` of the cards of `snap` (spread over the table): the development stage
/// reports progress `step`, and every tenth card finishes, so rows move.
fn changing(snap: &artemis::snapshot::Snapshot, n: usize, step: usize) -> SnapshotDelta {
    let stride = (snap.cards.len() / n.max(1)).max(1);
    let at = artemis::model::format_naive(
        (tui_fixtures::now() + chrono::Duration::milliseconds(step as i64)).naive_utc(),
    );
    let changed = (0..n)
        .map(|k| {
            let mut c = snap.cards[(k * stride + step) % snap.cards.len()].clone();
            if let Some(s) = c.stages.last_mut() {
                s.progress_percent = Some((step % 100) as i64);
                s.timestamp = at.clone().into();
            }
            if k % 10 == 0 {
                c.pipeline.status = PipelineStatus::Completed;
                c.pipeline.end_time = Some(at.clone().into());
            }
            c
        })
        .collect();
    SnapshotDelta {
        taken_at: snap.taken_at,
        source: snap.source.clone(),
        connection: snap.connection.clone(),
        health: snap.health.clone(),
        changed,
        removed: Vec::new(),
        metrics: snap.metrics.clone(),
        limits: snap.limits.clone(),
        history: snap.history.clone(),
        malformed: snap.malformed.clone(),
    }
}

#[derive(Clone, Copy)]
enum Read {
    Full,
    Delta(usize),
    /// One frame's worth of events at 1,000 events/s and 30 frames a second.
    Events,
    Steady,
    /// The clock moves 1 s under the time sort: every running card is measured again.
    ElapsedTick,
}

/// Median milliseconds to apply `read` to a dashboard holding `cards` cards and draw the next
/// frame, over `runs` runs (the input is prepared outside the timed part).
fn read_ms(cards: usize, read: Read, runs: usize) -> f64 {
    let snap = tui_fixtures::many_cards(cards);
    let mut app = tui_fixtures::app();
    app.apply(Message::Snapshot(Box::new(snap.clone())));
    if matches!(read, Read::ElapsedTick) {
        for _ in 0..5 {
            app.handle_key(crossterm::event::KeyEvent::new(
                crossterm::event::KeyCode::Char('s'),
                crossterm::event::KeyModifiers::NONE,
            ));
        }
    }
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for _ in 0..3 {
        term.draw(|f| render::draw(f, &mut app)).unwrap();
    }
    let mut times = Vec::new();
    for run in 0..runs {
        let msgs: Vec<Message> = match read {
            Read::Full => vec![Message::Snapshot(Box::new(snap.clone()))],
            Read::Delta(n) => vec![Message::Delta(Box::new(changing(&snap, n, run + 1)))],
            Read::Events => (0..34)
                .map(|i| {
                    Message::Event(PipelineEvent::StageUpdated {
                        card_id: format!("card-{:06}", (run * 7_919 + i * 2_903) % cards),
                        stage_name: "development".into(),
                        status: StageStatus::Running,
                        progress_percent: Some((i % 100) as i64),
                        message: None,
                        timestamp: artemis::model::format_naive(
                            (tui_fixtures::now() + chrono::Duration::seconds(run as i64))
                                .naive_utc(),
                        ),
                    })
                })
                .collect(),
            Read::Steady => Vec::new(),
            Read::ElapsedTick => {
                app.now += chrono::Duration::seconds(1);
                Vec::new()
            }
        };
        let t = Instant::now();
        for m in msgs {
            app.apply(m);
        }
        term.draw(|f| render::draw(f, &mut app)).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    median(times)
}

fn scale() {
    let cards = 100_000;
    println!(
        "## Reads at scale: {cards} cards, apply + next frame (160x48, TestBackend, median of 9 runs)\n"
    );
    println!("| read | ms | × baseline (full snapshot) |");
    println!("|---|---:|---:|");
    let base = read_ms(cards, Read::Full, 9);
    println!("| full snapshot of {cards} cards (baseline) | {base:.2} | 1.00 |");
    for (read, name) in [
        (
            Read::Delta(1_000),
            "delta of 1,000 changed cards".to_owned(),
        ),
        (Read::Delta(10), "delta of 10 changed cards".to_owned()),
        (
            Read::Events,
            "34 live events (one frame at 1,000/s)".to_owned(),
        ),
        (Read::Steady, "no change (steady frame)".to_owned()),
        (
            Read::ElapsedTick,
            "time sort, clock + 1 s (50,000 running cards re-placed)".to_owned(),
        ),
    ] {
        let ms = read_ms(cards, read, 9);
        println!("| {name} | {ms:.2} | {:.4} |", ms / base);
    }
    println!();
}

// ---------------------------------------------------------------- live binary

fn seed(server: &support::RedisServer, from: usize, to: usize) {
    let mut c = server.raw();
    let now = chrono::Utc::now().naive_utc();
    for chunk in (from..to).collect::<Vec<_>>().chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            let start = artemis::model::format_naive(now - chrono::Duration::seconds(i as i64));
            p.cmd("SET")
                .arg(format!("artemis:pipeline:bench-{i:05}"))
                .arg(format!(
                    r#"{{"card_id": "bench-{i:05}", "status": "running", "total_stages": 4, "completed_stages": 1, "current_stage": "dev", "start_time": "{start}", "end_time": null, "metadata": {{"title": "Benchmark card {i}"}}}}"#
                ))
                .arg("EX")
                .arg(86_400)
                .ignore();
            p.cmd("SET")
                .arg(format!("artemis:pipeline:bench-{i:05}:stage:dev"))
                .arg(format!(
                    r#"{{"stage_name": "dev", "status": "running", "progress_percent": 40, "message": null, "timestamp": "{start}", "metadata": {{}}}}"#
                ))
                .arg("EX")
                .arg(86_400)
                .ignore();
        }
        let _: () = p.query(&mut c).unwrap();
    }
}

/// Waits until the dashboard's header counts `n` cards. Python-written cards are found by a
/// SCAN that the tracker repeats only every `tracker.scan_interval_seconds` (30 s by default),
/// so this can take that long.
fn wait_for_cards(tmux: &Tmux, n: usize) {
    let want = format!("│ {n} cards");
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if tmux.screen().contains(&want) {
            // One more poll so that the measurement starts in the steady state.
            std::thread::sleep(Duration::from_secs(2));
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("the dashboard never showed {n} cards");
}

/// CPU % of the dashboard and of redis-server over `secs` seconds, while `during` runs.
fn cpu_window(
    pid: u32,
    server: &support::RedisServer,
    secs: f64,
    during: &mut dyn FnMut(Instant, Duration),
) -> (f64, f64) {
    let (d0, r0, t0) = (cpu_secs(pid), redis_cpu(&[server]), Instant::now());
    during(t0, Duration::from_secs_f64(secs));
    let rest = Duration::from_secs_f64(secs).saturating_sub(t0.elapsed());
    std::thread::sleep(rest);
    let wall = t0.elapsed().as_secs_f64();
    (
        (cpu_secs(pid) - d0) / wall * 100.0,
        (redis_cpu(&[server]) - r0) / wall * 100.0,
    )
}

fn live() {
    let server = support::RedisServer::start();
    let home = tempfile::tempdir().unwrap();
    let (line, _) = binary_line(home.path(), &[], &["--redis-url", &server.url()]);
    let tmux = Tmux::start("bench", 160, 48, &line);
    std::thread::sleep(Duration::from_secs(2));
    let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
    let pid = child_of(shell.trim().parse().unwrap()).expect("the dashboard's pid");
    let idle = |label: &str, runs: usize| {
        let mut d = Vec::new();
        let mut r = Vec::new();
        for _ in 0..runs {
            let (a, b) = cpu_window(pid, &server, 5.0, &mut |_, _| {});
            d.push(a);
            r.push(b);
        }
        let (d, r) = (median(d), median(r));
        println!(
            "| {label} | {d:.2}% | {r:.2}% | {:.2} |",
            if r > 0.0 { d / r } else { f64::NAN }
        );
    };

    println!("## The release binary in tmux (160x48), poll interval 1 s, median of 3 × 5 s\n");
    println!("| situation | artemis-top CPU | redis-server CPU (baseline) | ratio |");
    println!("|---|---:|---:|---:|");
    let (rss0, _) = rss_mib(pid);
    idle("idle, 0 cards", 3);

    seed(&server, 0, 1_000);
    wait_for_cards(&tmux, 1_000);
    let (rss1k, _) = rss_mib(pid);
    idle("idle, 1,000 cards", 3);

    // 1,000 events/s: 10 events every 10 ms, paced against the clock.
    let mut publisher = server.raw();
    let mut storm = |t0: Instant, length: Duration| {
        let mut sent = 0u64;
        while t0.elapsed() < length {
            let due = (t0.elapsed().as_secs_f64() * 1000.0) as u64;
            if sent < due {
                let mut p = redis::pipe();
                for k in sent..due.min(sent + 50) {
                    let card = k % 1_000;
                    p.cmd("PUBLISH")
                        .arg(format!("artemis:pipeline:events:bench-{card:05}"))
                        .arg(format!(
                            r#"{{"event": "stage_updated", "card_id": "bench-{card:05}", "stage_name": "dev", "status": "running", "progress_percent": {}, "message": null, "timestamp": "2025-10-22T20:30:44"}}"#,
                            k % 100
                        ))
                        .ignore();
                }
                let _: () = p.query(&mut publisher).unwrap();
                sent = due.min(sent + 50);
            } else {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    };
    let mut d = Vec::new();
    let mut r = Vec::new();
    for _ in 0..3 {
        let (a, b) = cpu_window(pid, &server, 5.0, &mut storm);
        d.push(a);
        r.push(b);
    }
    let (dm, rm) = (median(d), median(r));
    println!(
        "| 1,000 events/s, 1,000 cards | {dm:.2}% | {rm:.2}% | {:.2} |",
        dm / rm
    );

    seed(&server, 1_000, 10_000);
    wait_for_cards(&tmux, 10_000);
    let (rss10k, hwm10k) = rss_mib(pid);
    idle("idle, 10,000 cards (each poll reads all of them)", 3);
    println!();
    println!("## Memory of the release binary (VmRSS)\n");
    println!("| cards | RSS MiB | × baseline (0 cards) |");
    println!("|---:|---:|---:|");
    println!("| 0 | {rss0:.1} | 1.0 |");
    println!("| 1,000 | {rss1k:.1} | {:.1} |", rss1k / rss0);
    println!(
        "| 10,000 | {rss10k:.1} (peak {hwm10k:.1}) | {:.1} |",
        rss10k / rss0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument limits what runs.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| name.contains(a.as_str()));
    if want("frames") {
        frames();
    }
    if want("views") {
        views();
    }
    if want("scale") {
        scale();
    }
    if want("live") {
        live();
    }
}
