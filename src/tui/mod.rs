//! `artemis-top`'s live terminal dashboard.
//!
//! The flow is one way, as in bottom: Redis → [`source`] tasks → [`message::Message`] →
//! [`app::App`] (owned by the UI task alone) → [`render`] → terminal. The UI task wakes only
//! for a key, a resize, a message or the once-a-second clock (the data age in the header), and
//! redraws only when something changed, at most `max_fps` times a second, each frame inside a
//! synchronized-output bracket so terminals that support it never show half a frame.
//!
//! The terminal is restored however the dashboard ends: normal quit, error, panic (a panic
//! hook restores before the message prints), SIGTERM, SIGHUP or SIGINT.

pub mod app;
pub mod keymap;
mod loop_stats;
pub mod message;
pub mod render;
pub mod source;
pub mod theme;

use std::io::{self, IsTerminal, Stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, MouseEventKind,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute, queue};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
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

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;

    let guard = TerminalGuard::enter(dash.mouse)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    let mut keys = EventStream::new();
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
                _ = sigterm.recv() => break,
                _ = sighup.recv() => break,
                _ = sigint.recv() => break,
                ev = keys.next() => match ev {
                    Some(Ok(Event::Key(k))) => {
                        app.now = chrono::Utc::now();
                        for cmd in app.handle_key(k) {
                            let _ = cmd_tx.try_send(cmd);
                        }
                    }
                    Some(Ok(Event::Resize(..))) => app.dirty = true,
                    // Only with `dashboard.mouse = true`: the wheel scrolls.
                    Some(Ok(Event::Mouse(m))) => match m.kind {
                        MouseEventKind::ScrollDown => { app.perform(keymap::Action::Down); }
                        MouseEventKind::ScrollUp => { app.perform(keymap::Action::Up); }
                        _ => {}
                    },
                    Some(Ok(_)) => {}
                    // stdin is gone (terminal closed): nothing more can be read.
                    Some(Err(_)) | None => break,
                },
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
    drop(terminal);
    drop(guard);
    result
}

type Term = Terminal<CrosstermBackend<Stdout>>;

/// One frame, bracketed by synchronized-output markers.
fn draw(terminal: &mut Term, app: &mut App) -> io::Result<()> {
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
        Ok(Self)
    }
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
