//! `artemis-top`'s live terminal dashboard.
//!
//! The flow is one way, as in bottom: Redis → [`source`] tasks → [`message::Message`] →
//! [`app::App`] (owned by the UI task alone) → [`render`] → terminal. The UI task wakes only
//! for a key, a resize, a message or the once-a-second clock (the data age in the header), and
//! redraws only when something changed, at most `max_fps` times a second, each frame inside a
//! synchronized-output bracket so terminals that support it never show half a frame.
//!
//! The terminal is restored however the dashboard ends: normal quit, error, panic (a panic
//! hook restores before the message prints), or any catchable signal that ends a process
//! ([`ENDING_SIGNALS`]: restored, then the signal is raised again with its default action).
//! Ctrl-Z and SIGTSTP suspend with the terminal restored; `fg` (SIGCONT) takes it back and
//! redraws. Keys are read on their own thread and every pending one is handled in one
//! wake-up (see `spawn_input_thread`).

pub mod app;
pub mod keymap;
mod loop_stats;
pub mod message;
pub mod render;
pub mod source;
pub mod theme;
mod trim;

use std::io::{self, BufWriter, IsTerminal, Stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute, queue};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use signal_hook::consts::signal::{
    SIGABRT, SIGALRM, SIGCONT, SIGHUP, SIGINT, SIGIO, SIGPROF, SIGQUIT, SIGTERM, SIGTSTP, SIGUSR1,
    SIGUSR2, SIGVTALRM, SIGXCPU, SIGXFSZ,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::config::Settings;

use crate::feed::{Feed, StorageFeed};

use self::app::App;

/// Messages buffered between the source tasks and the UI before senders wait.
const CHANNEL: usize = 4096;
/// Messages applied per wake-up before the UI looks at keys again.
const BATCH: usize = 4096;
/// Terminal events handled per wake-up before the UI draws and looks at messages again (a
/// paste of this many keys costs one frame, not one frame per key).
const INPUT_BATCH: usize = 65_536;
/// How long the input thread waits for the terminal before looking at its stop flag. Long on
/// purpose: crossterm passes poll(2) the time left in whole milliseconds, so the last
/// millisecond of every wait is spent calling poll(2) with 0 in a loop; at 100 ms that was two
/// thirds of an idle dashboard's CPU (~0.7% of a core, docs/BENCHMARKS.md).
const INPUT_POLL: Duration = Duration::from_secs(1);

/// Bytes of terminal output held until a frame is complete. Rust's stdout flushes every
/// 1,024 bytes (a line buffer, and a frame's cursor moves hold no newline), so a frame that
/// changed much of the screen was tens of write(2) calls into the terminal's pty, each of
/// which can wait for the terminal to read; in one buffer the frame is one write. A frame
/// larger than this (a full redraw of a very large terminal) is written in more than one.
const FRAME_BUFFER: usize = 256 * 1024;

/// The signals whose default action ends the process and that can be caught: each restores the
/// terminal, then is raised again with its default action, so the process ends as it would have
/// (the shell sees 128 + the signal's number, and SIGQUIT/SIGABRT/SIGXCPU/SIGXFSZ still dump
/// core where cores are enabled). SIGPIPE is not among them: Rust starts every program with
/// SIGPIPE ignored (a write to a closed socket is an error, not death), and the dashboard
/// keeps it so: a Redis connection that drops must not end it. SIGKILL and SIGSTOP cannot be
/// caught; SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP and SIGSYS are faults of the process
/// itself, where returning from a handler is not safe.
pub const ENDING_SIGNALS: &[i32] = &[
    SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGIO,
    SIGXCPU, SIGXFSZ, SIGABRT,
];

/// Runs the dashboard on the real terminal until the user quits or a signal arrives.
pub async fn run(backend: Backend, settings: Settings) -> color_eyre::Result<()> {
    let feed: Arc<dyn Feed> = Arc::new(StorageFeed::new(backend));
    run_feed(feed, settings).await
}

/// [`run`] with any data source (the demo and tests use scripted feeds).
pub async fn run_feed(feed: Arc<dyn Feed>, settings: Settings) -> color_eyre::Result<()> {
    let dash = &settings.dashboard;
    let mut app = App::from_settings(dash, theme::no_color_env(), feed.endpoint());
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let poll = Duration::from_secs_f64(dash.poll_interval.clamp(0.05, 86_400.0));
    let _sources = source::spawn(feed, poll, tx, cmd_rx);
    trim::spawn();

    let (job_tx, mut job_rx) = mpsc::unbounded_channel();
    let signals = spawn_signal_thread(job_tx)?;

    let guard = TerminalGuard::enter(dash.mouse)?;
    // In raw mode (so the answer is neither echoed nor held for a line end) and before the
    // input thread reads anything (so the answer is not taken for keys).
    if dash.theme == "auto" && !app.no_color {
        let osc11 = theme::query_terminal_background(theme::BACKGROUND_QUERY_TIMEOUT);
        let colorfgbg = std::env::var("COLORFGBG").ok();
        let (background, source) = theme::resolve_auto(osc11, colorfgbg.as_deref());
        app.set_auto_theme(background, source);
    }
    let out = BufWriter::with_capacity(FRAME_BUFFER, io::stdout());
    let mut terminal = Terminal::new(CrosstermBackend::new(out))?;
    terminal.clear()?;
    let (input_tx, mut input) = mpsc::unbounded_channel();
    let input_stop = Arc::new(AtomicBool::new(false));
    spawn_input_thread(input_tx, input_stop.clone());
    let frame_gap = Duration::from_secs_f64(1.0 / f64::from(dash.max_fps.clamp(1, 240)));
    let mut last_frame: Option<Instant> = None;
    let mut stats = loop_stats::LoopStats::new();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result: color_eyre::Result<()> = async {
        loop {
            app.now = chrono::Utc::now();
            // Draw now, or note when the frame cap allows the next one.
            let mut next_frame = None;
            if app.dirty {
                let ready = last_frame.is_none_or(|t| t.elapsed() >= frame_gap);
                if ready {
                    let started = std::time::Instant::now();
                    draw(&mut terminal, &mut app)?;
                    stats.draw(started.elapsed());
                    // Debug builds only: lets the terminal test check the restore after a
                    // panic in the UI task (release builds have no such switch).
                    #[cfg(debug_assertions)]
                    if std::env::var_os("TEST_PANIC_ARTEMIS_TOP").is_some() {
                        panic!("test panic after the first frame (TEST_PANIC_ARTEMIS_TOP)");
                    }
                    app.dirty = false;
                    last_frame = Some(Instant::now());
                } else if let Some(t) = last_frame {
                    next_frame = Some(t + frame_gap);
                }
            }
            tokio::select! {
                // SIGTSTP from outside (`kill -TSTP`), or SIGCONT after someone else stopped
                // the process (SIGSTOP): suspend properly, or take the terminal back.
                Some(sig) = job_rx.recv() => {
                    if sig == SIGTSTP {
                        suspend(&mut terminal, dash.mouse)?;
                    } else {
                        resume(&mut terminal, dash.mouse)?;
                    }
                    app.dirty = true;
                }
                ev = input.recv() => {
                    // Every event already read is handled now: a long paste is one wake-up.
                    let mut next = ev;
                    let mut n = 0;
                    loop {
                        match next {
                            Some(Ok(ev)) => {
                                if on_event(&mut app, ev, &cmd_tx) == Input::Suspend {
                                    suspend(&mut terminal, dash.mouse)?;
                                }
                            }
                            // stdin is gone (terminal closed): nothing more can be read.
                            Some(Err(_)) | None => return Ok(()),
                        }
                        n += 1;
                        if n >= INPUT_BATCH || app.quit {
                            break;
                        }
                        match input.try_recv() {
                            Ok(ev) => next = Some(ev),
                            Err(mpsc::error::TryRecvError::Empty) => break,
                            Err(mpsc::error::TryRecvError::Disconnected) => next = None,
                        }
                    }
                }
                Some(msg) = rx.recv() => {
                    let started = std::time::Instant::now();
                    app.now = chrono::Utc::now();
                    app.apply(msg);
                    let mut n = 1;
                    while n < BATCH {
                        match rx.try_recv() {
                            Ok(m) => { app.apply(m); n += 1; }
                            Err(_) => break,
                        }
                    }
                    stats.apply(n as u64, started.elapsed());
                }
                _ = async { tokio::time::sleep_until(next_frame.unwrap_or_else(Instant::now)).await },
                    if next_frame.is_some() => {}
                _ = clock.tick() => {
                    // The data age in the header moves with the clock.
                    if app.shown().is_some() { app.dirty = true; }
                }
            }
            if app.quit {
                break;
            }
        }
        Ok(())
    }
    .await;
    input_stop.store(true, Ordering::SeqCst);
    signals.close();
    drop(terminal);
    drop(guard);
    result
}

/// What one terminal event asks of the loop beyond the app's own state.
#[derive(Debug, PartialEq, Eq)]
enum Input {
    Handled,
    /// Ctrl-Z: raw mode turns it into a key, so the dashboard suspends itself.
    Suspend,
}

/// Applies one terminal event to the app.
fn on_event(app: &mut App, ev: Event, cmd_tx: &mpsc::Sender<message::Command>) -> Input {
    match ev {
        Event::Key(k) if is_suspend_key(&k) => return Input::Suspend,
        Event::Key(k) => {
            app.now = chrono::Utc::now();
            for key in app.keymap.split_escape(k, app.scope(), app.filter_editing) {
                for cmd in app.handle_key(key) {
                    let _ = cmd_tx.try_send(cmd);
                }
                if app.quit {
                    break;
                }
            }
        }
        Event::Resize(..) => app.dirty = true,
        // Only with `dashboard.mouse = true`.
        Event::Mouse(m) => {
            app.now = chrono::Utc::now();
            for cmd in app.handle_mouse(m) {
                let _ = cmd_tx.try_send(cmd);
            }
        }
        _ => {}
    }
    Input::Handled
}

/// Ctrl-Z, which a terminal in raw mode delivers as a key instead of SIGTSTP.
fn is_suspend_key(k: &KeyEvent) -> bool {
    k.kind != KeyEventKind::Release
        && k.modifiers.contains(KeyModifiers::CONTROL)
        && matches!(k.code, KeyCode::Char('z' | 'Z'))
}

/// Reads the terminal on a thread of its own and sends every event as soon as it is parsed, so
/// the UI task can take all that is pending in one wake-up. (crossterm's `use-dev-tty` source
/// polls the terminal level-triggered: bytes past its 1,024-byte read buffer are read on the
/// next call, not when the next key arrives.) Ends within [`INPUT_POLL`] of `stop` being set,
/// or when the UI is gone.
fn spawn_input_thread(tx: mpsc::UnboundedSender<io::Result<Event>>, stop: Arc<AtomicBool>) {
    let run = move || {
        while !stop.load(Ordering::SeqCst) {
            let ev = match crossterm::event::poll(INPUT_POLL) {
                Ok(false) => continue,
                Ok(true) => crossterm::event::read(),
                Err(e) => Err(e),
            };
            let failed = ev.is_err();
            if tx.send(ev).is_err() || failed {
                return;
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("artemis-top-input".into())
        .spawn(run)
    {
        tracing::error!("cannot start the terminal input thread: {e}");
    }
}

/// Listens for every signal the dashboard handles, on a thread of its own so that a signal is
/// acted on even if the UI task is busy. An ending signal ([`ENDING_SIGNALS`]) is handled right
/// there: the terminal is restored and the signal raised again with its default action. SIGTSTP
/// and SIGCONT go to the UI task, which owns the terminal.
fn spawn_signal_thread(
    tx: mpsc::UnboundedSender<i32>,
) -> io::Result<signal_hook::iterator::Handle> {
    let mut wanted = ENDING_SIGNALS.to_vec();
    wanted.extend([SIGTSTP, SIGCONT]);
    let mut signals = signal_hook::iterator::Signals::new(&wanted)?;
    let handle = signals.handle();
    std::thread::Builder::new()
        .name("artemis-top-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if sig == SIGTSTP || sig == SIGCONT {
                    let _ = tx.send(sig);
                } else {
                    end_by_signal(sig);
                }
            }
        })?;
    Ok(handle)
}

/// Restores the terminal, then ends the process the way `sig` would have without a handler.
fn end_by_signal(sig: i32) -> ! {
    restore_terminal();
    let _ = signal_hook::low_level::emulate_default_handler(sig);
    // Only if the default action did not end the process (the signal is blocked somewhere).
    std::process::exit(128 + sig)
}

/// Ctrl-Z or SIGTSTP: gives the terminal back to the shell as it was, stops the process
/// (SIGSTOP: the shell reports the job stopped) and, once continued (`fg`), takes the terminal
/// again and redraws everything.
fn suspend(terminal: &mut Term, mouse: bool) -> io::Result<()> {
    restore_terminal();
    signal_hook::low_level::raise(signal_hook::consts::signal::SIGSTOP)?;
    resume(terminal, mouse)
}

/// Puts the terminal (back) in dashboard mode after the process was stopped, and makes the next
/// frame a full redraw (the shell drew over the screen meanwhile, and may have changed the
/// terminal's modes: raw mode is set afresh, not assumed).
fn resume(terminal: &mut Term, mouse: bool) -> io::Result<()> {
    if ACTIVE.load(Ordering::SeqCst) {
        // A stop we did not do ourselves (SIGSTOP): crossterm still believes raw mode is on,
        // so it is switched off and on to apply it again.
        let _ = disable_raw_mode();
        ACTIVE.store(false, Ordering::SeqCst);
    }
    enter_dashboard_mode(mouse)?;
    terminal.clear()
}

type Term = Terminal<CrosstermBackend<BufWriter<Stdout>>>;

/// One frame, bracketed by synchronized-output markers.
fn draw(terminal: &mut Term, app: &mut App) -> io::Result<()> {
    // The signal thread may have just restored the terminal on its way out: nothing more may be
    // drawn over the shell's screen.
    if !ACTIVE.load(Ordering::SeqCst) {
        return Ok(());
    }
    queue!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    terminal.draw(|f| render::draw(f, app))?;
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    Ok(())
}

/// Whether the terminal is in dashboard mode (raw, alternate screen) and needs restoring.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUSE: AtomicBool = AtomicBool::new(false);
static HOOK: std::sync::Once = std::sync::Once::new();

/// Puts the terminal back as the shell had it. Safe to call more than once and from a panic
/// hook: only the first call after `TerminalGuard::enter` does anything.
pub fn restore_terminal() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = io::stdout();
    // A panic may strike mid-frame, inside the synchronized-output bracket.
    let _ = execute!(out, EndSynchronizedUpdate);
    if MOUSE.load(Ordering::SeqCst) {
        let _ = execute!(out, DisableMouseCapture);
    }
    let _ = execute!(out, LeaveAlternateScreen, cursor::Show);
    let _ = disable_raw_mode();
}

/// Owns the terminal's dashboard mode; dropping it restores the terminal.
struct TerminalGuard;

impl TerminalGuard {
    fn enter(mouse: bool) -> io::Result<Self> {
        if !io::stdout().is_terminal() {
            return Err(io::Error::other(
                "stdout is not a terminal: use --once for a text or JSON report",
            ));
        }
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let was_active = ACTIVE.load(Ordering::SeqCst);
                restore_terminal();
                previous(info);
                // A panic in any task (the runtime would catch one in a background task and
                // keep the UI drawing into a restored terminal) ends the dashboard, loudly.
                if was_active {
                    std::process::exit(101);
                }
            }));
        });
        enter_dashboard_mode(mouse)?;
        Ok(Self)
    }
}

/// Raw mode, alternate screen, hidden cursor (and mouse capture when asked for); on failure the
/// terminal is restored.
fn enter_dashboard_mode(mouse: bool) -> io::Result<()> {
    enable_raw_mode()?;
    ACTIVE.store(true, Ordering::SeqCst);
    MOUSE.store(mouse, Ordering::SeqCst);
    let mut out = io::stdout();
    let entered = execute!(out, EnterAlternateScreen, cursor::Hide).and_then(|_| {
        if mouse {
            execute!(out, EnableMouseCapture)
        } else {
            Ok(())
        }
    });
    if let Err(e) = entered {
        restore_terminal();
        return Err(e);
    }
    Ok(())
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Whether the dashboard should print a report instead of starting: asked for (`--once`), or
/// stdout is not a terminal (piped into a file or another program).
pub fn should_run_headless(once: bool) -> bool {
    once || !io::stdout().is_terminal()
}
