//! Scale run (`cargo bench --bench scale`): the release dashboard and `--once` against 10,000
//! and 100,000 live cards, on one Redis server and on a local 3-master Redis Cluster, each
//! figure printed beside its issue-16 target with PASS or MISS.
//!
//! Why a bench and not a timed test: the figures depend on the machine (two shared cores,
//! others compiling), so they are reported as medians and as ratios to what redis-server itself
//! spends in the same windows, never asserted.
//!
//! What one backend's run does, in order:
//! 1. seeds 10,000 cards through the library (64 concurrent writers: indexed documents, a
//!    stage each, exactly what pipelines write), starts the dashboard in tmux, waits until the
//!    header counts them all, and measures its CPU idle over one audit cycle in 10 s windows
//!    (from just after the first periodic audit to just after the next, at least 6 windows):
//!    the target is judged on the mean (what `top` averages; the audit falls in one window,
//!    which a median would hide), and the median and every window's figure are printed too;
//! 2. seeds up to 100,000 cards, measures Redis's CPU serving 1,000 stage updates per second
//!    with no dashboard (the writers' baseline), then starts a fresh dashboard and measures the
//!    cold start (launch → header counting every card), its idle CPU and its RSS;
//! 3. sends 1,000 updates/s (each a real write and a pub/sub event) for 60 s (`-- long`: 10
//!    minutes) while pressing Enter every 1.5 s and timing the drill-down through tmux (a tmux
//!    capture alone is the baseline); the UI loop's frame times come from its `loop_stats`
//!    log; RSS is sampled after every 10 s window (it must stay flat);
//! 4. runs `artemis-top --once --format json` three times under `/usr/bin/time -v`: wall time,
//!    peak RSS (its VmHWM) and the size of the JSON, checking that it lists every card; the
//!    text report, which still reads the whole snapshot at once, is the baseline.
//!
//! Choosing parts: `-- standalone` / `-- cluster` pick the backend; `-- idle`, `-- storm`,
//! `-- once` pick the parts (`-- cold` alone measures the cold start); `-- long` makes the
//! storm 10 minutes; `-- cards=N` replaces 100,000 (a quick try); `-- hold` seeds, prints the
//! dashboard's arguments and keeps the server up until killed (to profile the dashboard by hand;
//! `-- hold storm` keeps the 1,000 updates/s going meanwhile).

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use artemis::Backend;
use common::{cpu_secs, max, mean, median, redis_cpu, rss_mib};

use std::time::{Duration, Instant};

use artemis::model::StageStatus;
use artemis::tracker::{StageUpdate, Tracker};
use support::tmux::{Tmux, child_of};

const SMALL: usize = 10_000;
const LARGE: usize = 100_000;
const EVENTS_PER_SEC: u64 = 1_000;
const RUN: Duration = Duration::from_secs(60);
const LONG_RUN: Duration = Duration::from_secs(600);
const WINDOW: Duration = Duration::from_secs(10);
/// At least 60 s of idle windows (`tracker.full_read_interval_seconds`, 60 by default), and
/// as many more as one audit cycle takes.
const IDLE_WINDOWS: usize = 6;
/// The longest wait for an audit, and the longest idle measurement.
const AUDIT_CYCLE_MAX: Duration = Duration::from_secs(900);
const ONCE_RUNS: usize = 3;

/// What to run, from the bench's arguments.
struct Opts {
    standalone: bool,
    cluster: bool,
    idle: bool,
    storm: bool,
    cold: bool,
    once: bool,
    run: Duration,
    large: usize,
    hold: bool,
}

impl Opts {
    fn parse() -> Self {
        let args: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with("--"))
            .collect();
        let has = |name: &str| args.iter().any(|a| a == name);
        let backends = has("standalone") || has("cluster");
        let parts = has("idle") || has("storm") || has("once") || has("cold");
        let large = args
            .iter()
            .find_map(|a| a.strip_prefix("cards=")?.parse().ok())
            .unwrap_or(LARGE);
        Self {
            standalone: !backends || has("standalone"),
            cluster: !backends || has("cluster"),
            idle: !parts || has("idle"),
            storm: !parts || has("storm"),
            cold: !parts || has("cold"),
            once: !parts || has("once"),
            run: if has("long") { LONG_RUN } else { RUN },
            large,
            hold: has("hold"),
        }
    }
}

/// One line of the results table.
struct Row {
    situation: String,
    value: String,
    baseline: String,
    ratio: String,
    target: String,
    pass: Option<bool>,
}

fn row(
    situation: impl Into<String>,
    value: impl Into<String>,
    baseline: impl Into<String>,
    ratio: impl Into<String>,
    target: impl Into<String>,
    pass: Option<bool>,
) -> Row {
    Row {
        situation: situation.into(),
        value: value.into(),
        baseline: baseline.into(),
        ratio: ratio.into(),
        target: target.into(),
        pass,
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "—".into()
    }
}

/// The nearest-rank percentile `p` (0–1) of `v`.
fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Cards `from..to` through the library, 64 writers at once: each card started with a title
/// and given one running stage, as a pipeline writes it (document, stage, index, history).
async fn seed(tracker: &Tracker, from: usize, to: usize) {
    let writers = 64;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let t = tracker.clone();
        tasks.spawn(async move {
            for i in (from + w..to).step_by(writers) {
                let id = format!("scale-{i:06}");
                let mut meta = serde_json::Map::new();
                meta.insert("title".into(), format!("Scale card {i}").into());
                t.start_pipeline(&id, 8, meta).await.unwrap();
                t.update_stage(
                    &id,
                    "development",
                    StageUpdate::new(StageStatus::Running).progress(10),
                )
                .await
                .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// `EVENTS_PER_SEC` stage updates per second spread over `cards` cards, paced against the
/// clock, until `stop`. Returns how many were sent.
async fn storm(tracker: Tracker, cards: usize, stop: Instant) -> u64 {
    let writers = 16u64;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let t = tracker.clone();
        tasks.spawn(async move {
            let started = Instant::now();
            let per_writer = EVENTS_PER_SEC / writers;
            let mut sent = 0u64;
            while Instant::now() < stop {
                let due = (started.elapsed().as_secs_f64() * per_writer as f64) as u64;
                if sent >= due {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let k = sent * writers + w;
                let id = format!("scale-{:06}", (k as usize * 7919) % cards);
                t.update_stage(
                    &id,
                    "development",
                    StageUpdate::new(StageStatus::Running).progress((k % 100) as u8),
                )
                .await
                .unwrap();
                sent += 1;
            }
            sent
        });
    }
    let mut total = 0;
    while let Some(n) = tasks.join_next().await {
        total += n.unwrap();
    }
    total
}

fn wait_screen(tmux: &Tmux, want: &str, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if tmux.screen().contains(want) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// (ms from Enter to the drill-down on screen, baseline ms of one capture round trip).
fn key_latency(tmux: &Tmux) -> (f64, f64) {
    let t0 = Instant::now();
    let _ = tmux.screen();
    let capture = t0.elapsed().as_secs_f64() * 1e3;
    tmux.keys(&["Enter"]);
    let t0 = Instant::now();
    let mut took = f64::INFINITY;
    while t0.elapsed() < Duration::from_secs(10) {
        if tmux.screen().contains("Stages (") {
            took = t0.elapsed().as_secs_f64() * 1e3;
            break;
        }
    }
    tmux.keys(&["Escape"]);
    let _ = wait_screen(tmux, "Cards ", Duration::from_secs(10));
    (took, capture)
}

/// The release dashboard running in tmux, its loop statistics logged to a file.
struct Dashboard {
    tmux: Tmux,
    pid: Option<u32>,
    log: std::path::PathBuf,
    _home: tempfile::TempDir,
}

impl Dashboard {
    /// Starts the dashboard with `args` and waits until its header counts `cards` cards;
    /// returns it and the time that took (`None`: not within the limit).
    fn start(tag: &str, args: &str, cards: usize) -> (Self, Option<Duration>) {
        let home = tempfile::tempdir().unwrap();
        let log = home.path().join("loop.log");
        let tmux = Tmux::new(tag);
        let line = format!(
            "env -i HOME={home} PATH=/usr/bin:/bin TERM=xterm-256color \
             ARTEMIS_TOP_LOG=artemis::tui=info,artemis::feed=info ARTEMIS_TOP_LOG_FILE={log} {bin} {args}; sleep 900",
            home = home.path().display(),
            log = log.display(),
            bin = env!("CARGO_BIN_EXE_artemis-top"),
        );
        let t0 = Instant::now();
        tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "48",
            &line,
        ]);
        let want = format!("│ {cards} cards");
        let mut shown = None;
        while t0.elapsed() < Duration::from_secs(120) {
            if tmux.screen().contains(&want) {
                shown = Some(t0.elapsed());
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if shown.is_none() {
            eprintln!(
                "{tag}: the dashboard never showed {cards} cards:\n{}",
                tmux.screen()
            );
        }
        let shell = tmux.cmd(&["display", "-p", "-t", "t", "#{pane_pid}"]);
        let pid = shell.trim().parse().ok().and_then(child_of);
        let d = Self {
            tmux,
            pid,
            log,
            _home: home,
        };
        (d, shown)
    }

    fn shows(&self, cards: usize) -> bool {
        self.tmux.screen().contains(&format!("│ {cards} cards"))
    }

    /// The loop statistics field `name` of every `ui loop` line logged so far.
    fn loop_field(&self, name: &str) -> Vec<f64> {
        let stats = std::fs::read_to_string(&self.log).unwrap_or_default();
        stats
            .lines()
            .filter(|l| l.contains("ui loop"))
            .filter_map(|line| {
                let at = line.find(&format!("{name}="))? + name.len() + 1;
                let rest = line[at..].trim_start_matches('"');
                rest.split(['"', ' ']).next()?.parse().ok()
            })
            .collect()
    }

    /// How many periodic audits the dashboard has logged.
    fn audits(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" audit ") && l.contains("next_in_s="))
            .count()
    }

    fn quit(self) {
        self.tmux.keys(&["q"]);
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The dashboard's and Redis's CPU (% of a core) idle, one figure per 10 s window.
struct Idle {
    dashboard: Vec<f64>,
    redis: Vec<f64>,
}

impl Idle {
    /// Windows over one whole audit cycle: from just after an audit (the dashboard logs each
    /// one) to just after the next, and at least `min_windows` of them. The periodic audit is
    /// the one read whose cost follows how many cards exist, and its interval stretches with
    /// its duration (`tracker.audit_share_percent`), so a fixed minute would hold one audit at
    /// 10,000 cards but overstate (or, started after one, miss) it at 100,000.
    fn measure(
        pid: u32,
        nodes: &[&support::RedisServer],
        d: &Dashboard,
        min_windows: usize,
    ) -> Self {
        let give_up = Instant::now() + AUDIT_CYCLE_MAX;
        while d.audits() == 0 && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(200));
        }
        let after = d.audits();
        let mut dashboard = Vec::new();
        let mut redis = Vec::new();
        while dashboard.len() < min_windows || (d.audits() <= after && Instant::now() < give_up) {
            let (d0, r0, t0) = (cpu_secs(pid), redis_cpu(nodes), Instant::now());
            std::thread::sleep(WINDOW);
            let wall = t0.elapsed().as_secs_f64();
            dashboard.push((cpu_secs(pid) - d0) / wall * 100.0);
            redis.push((redis_cpu(nodes) - r0) / wall * 100.0);
        }
        if d.audits() <= after {
            eprintln!("no audit logged within {AUDIT_CYCLE_MAX:?}: the windows hold none");
        }
        Self { dashboard, redis }
    }

    /// The table row: judged on the mean (what a user's `top` shows over a minute), with the
    /// median and each window's figure beside it so an audit window stands out.
    fn row(&self, cards: usize, limit: f64) -> Row {
        let (cpu, redis) = (mean(&self.dashboard), mean(&self.redis));
        let windows: Vec<String> = self.dashboard.iter().map(|c| format!("{c:.1}")).collect();
        row(
            format!(
                "idle, {cards} cards: dashboard CPU (mean of {} × 10 s: one audit cycle)",
                self.dashboard.len()
            ),
            format!(
                "{cpu:.2}% (median {:.2}%; windows {})",
                median(self.dashboard.clone()),
                windows.join(", ")
            ),
            format!("Redis {redis:.2}%"),
            ratio(cpu, redis),
            format!("< {limit}% of a core"),
            Some(cpu < limit),
        )
    }
}

/// One `--once --format <format>` under `/usr/bin/time -v`: (seconds, peak RSS MiB, bytes
/// written, cards listed when it is JSON).
fn once_run(format: &str, args: &[String]) -> (f64, f64, u64, Option<usize>) {
    let home = tempfile::tempdir().unwrap();
    let out_path = home.path().join("once.json");
    let out = std::fs::File::create(&out_path).unwrap();
    let t0 = Instant::now();
    let run = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_artemis-top"))
        .args(["--once", "--format", format])
        .args(args)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", "/usr/bin:/bin")
        .stdout(out)
        .output()
        .expect("run /usr/bin/time (GNU time)");
    let secs = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let peak_kib: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes):")
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(f64::NAN);
    if !run.status.success() {
        eprintln!("--once failed: {stderr}");
    }
    let size = std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0);
    #[derive(serde::Deserialize)]
    struct Listed {
        cards: Vec<serde::de::IgnoredAny>,
    }
    let cards = std::fs::File::open(&out_path)
        .ok()
        .and_then(|f| serde_json::from_reader::<_, Listed>(std::io::BufReader::new(f)).ok())
        .map(|l| l.cards.len());
    (secs, peak_kib / 1024.0, size, cards)
}

struct Target<'a> {
    label: &'a str,
    dashboard_args: String,
    once_args: Vec<String>,
    settings: artemis::config::Settings,
    nodes: Vec<&'a support::RedisServer>,
}

fn run(t: Target<'_>, opts: &Opts) {
    let label = t.label;
    let nodes = &t.nodes[..];
    let large = opts.large;
    let mut rows: Vec<Row> = Vec::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let storage = rt.block_on(Backend::redis(t.settings)).unwrap();
    let tracker = Tracker::new(storage.tracker().clone());
    let mut seeded = 0;

    if opts.idle {
        let t0 = Instant::now();
        rt.block_on(seed(&tracker, 0, SMALL));
        seeded = SMALL;
        eprintln!(
            "{label}: seeded {SMALL} cards in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let (d, shown) =
            Dashboard::start(&format!("scale-{label}-small"), &t.dashboard_args, SMALL);
        if let (Some(pid), Some(_)) = (d.pid, shown) {
            std::thread::sleep(Duration::from_secs(3));
            rows.push(Idle::measure(pid, nodes, &d, IDLE_WINDOWS).row(SMALL, 1.0));
        } else {
            rows.push(row(
                format!("idle, {SMALL} cards"),
                "never showed every card",
                "",
                "",
                "< 1%",
                Some(false),
            ));
        }
        d.quit();
    }

    let t0 = Instant::now();
    rt.block_on(seed(&tracker, seeded, large));
    eprintln!(
        "{label}: seeded {} cards in {:.1} s ({large} in all)",
        large - seeded,
        t0.elapsed().as_secs_f64()
    );

    if opts.hold {
        // For profiling by hand (heaptrack, massif): the seeded server stays up until killed.
        eprintln!("{label}: holding; run `artemis-top {}`", t.dashboard_args);
        if opts.storm && std::env::args().any(|a| a == "storm") {
            // `hold storm`: the updates go on while held, to profile the dashboard under them.
            eprintln!("{label}: {EVENTS_PER_SEC} updates/s until killed");
            let forever = Instant::now() + Duration::from_secs(86_400);
            rt.spawn(storm(tracker.clone(), large, forever));
        }
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    if opts.idle || opts.storm || opts.cold {
        // Redis serving the writers alone: the baseline the dashboard's CPU must stay under.
        let writers_redis = if opts.storm {
            let r0 = redis_cpu(nodes);
            let t0 = Instant::now();
            let sent = rt.block_on(storm(tracker.clone(), large, Instant::now() + WINDOW));
            let cpu = (redis_cpu(nodes) - r0) / t0.elapsed().as_secs_f64() * 100.0;
            eprintln!("{label}: writers alone: {sent} updates, Redis {cpu:.1}%");
            Some(cpu)
        } else {
            None
        };

        let (d, shown) =
            Dashboard::start(&format!("scale-{label}-large"), &t.dashboard_args, large);
        rows.push(row(
            format!("cold start to a complete first screen, {large} cards"),
            shown.map_or("not within 120 s".into(), |s| {
                format!("{:.2} s", s.as_secs_f64())
            }),
            "",
            "",
            "< 3 s",
            Some(shown.is_some_and(|s| s < Duration::from_secs(3))),
        ));
        let Some(pid) = d.pid.filter(|_| shown.is_some()) else {
            d.quit();
            print_rows(label, &rows);
            return;
        };
        std::thread::sleep(Duration::from_secs(3));
        if opts.idle {
            rows.push(Idle::measure(pid, nodes, &d, IDLE_WINDOWS).row(large, 2.0));
        }
        let (rss_idle, _) = rss_mib(pid);
        if let Some(writers_redis) = writers_redis {
            storm_part(
                &rt,
                &tracker,
                &d,
                pid,
                nodes,
                writers_redis,
                rss_idle,
                opts,
                &mut rows,
            );
        } else {
            rows.push(row(
                format!("RSS at {large} cards, idle"),
                format!("{rss_idle:.1} MiB"),
                "",
                "",
                "< 250 MiB",
                Some(rss_idle < 250.0),
            ));
        }
        d.quit();
    }

    if opts.once {
        let mut secs = Vec::new();
        let mut peaks = Vec::new();
        let mut sizes = Vec::new();
        let mut complete = true;
        // The baseline in the same run: the text report, which reads the whole snapshot at
        // once (the JSON's way before it was streamed).
        let mut text_secs = Vec::new();
        let mut text_peaks = Vec::new();
        for _ in 0..ONCE_RUNS {
            let (s, peak, size, cards) = once_run("json", &t.once_args);
            secs.push(s);
            peaks.push(peak);
            sizes.push(size as f64 / (1024.0 * 1024.0));
            complete &= cards == Some(large);
            let (s, peak, _, _) = once_run("text", &t.once_args);
            text_secs.push(s);
            text_peaks.push(peak);
        }
        let (s, peak, size) = (median(secs.clone()), median(peaks), median(sizes));
        let (ts, tpeak) = (median(text_secs), median(text_peaks));
        rows.push(row(
            format!(
                "`--once --format json`, {large} cards: wall time (median of {ONCE_RUNS}; max)"
            ),
            format!("{s:.2} s ({:.2})", max(&secs)),
            format!("`--format text` {ts:.2} s"),
            ratio(s, ts),
            "< 3 s",
            Some(s < 3.0),
        ));
        rows.push(row(
            format!("`--once --format json`, {large} cards: peak RSS (median)"),
            format!("{peak:.1} MiB"),
            format!("JSON {size:.1} MiB; `--format text` {tpeak:.1} MiB"),
            format!("{} of the JSON", ratio(peak, size)),
            "< 2× the JSON",
            Some(peak < 2.0 * size),
        ));
        rows.push(row(
            "`--once` lists every card",
            complete.to_string(),
            "",
            "",
            "true",
            Some(complete),
        ));
    }
    print_rows(label, &rows);
}

/// The storm: 1,000 updates/s for the run while timing key presses and sampling RSS.
#[allow(clippy::too_many_arguments)]
fn storm_part(
    rt: &tokio::runtime::Runtime,
    tracker: &Tracker,
    d: &Dashboard,
    pid: u32,
    nodes: &[&support::RedisServer],
    writers_redis: f64,
    rss_idle: f64,
    opts: &Opts,
    rows: &mut Vec<Row>,
) {
    let large = opts.large;
    // The UI loop's windows logged before the storm (the cold start's first frame among them)
    // are not frames under the storm; they are printed apart. The storm waits for the window
    // that holds the cold start to close (when `idle` ran, it closed long ago), so that no
    // window measured under the storm holds it.
    let waited = Instant::now();
    while d.loop_field("draw_p99_ms").is_empty() && waited.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let before = d.loop_field("draw_p99_ms").len();
    let during = |name: &str| {
        let mut all = d.loop_field(name);
        all.split_off(before.min(all.len()))
    };
    let stop = Instant::now() + opts.run;
    let storm = rt.spawn(storm(tracker.clone(), large, stop));
    let mut cpu = Vec::new();
    let mut redis = Vec::new();
    let mut latencies = Vec::new();
    let mut captures = Vec::new();
    let mut rss_windows = Vec::new();
    while Instant::now() + WINDOW <= stop + Duration::from_millis(100) {
        let (d0, r0, t0) = (cpu_secs(pid), redis_cpu(nodes), Instant::now());
        while t0.elapsed() < WINDOW {
            let (l, c) = key_latency(&d.tmux);
            latencies.push(l);
            captures.push(c);
            std::thread::sleep(Duration::from_millis(1500));
        }
        let wall = t0.elapsed().as_secs_f64();
        cpu.push((cpu_secs(pid) - d0) / wall * 100.0);
        redis.push((redis_cpu(nodes) - r0) / wall * 100.0);
        rss_windows.push(rss_mib(pid).0);
    }
    let sent = rt.block_on(storm).unwrap();
    let (_, hwm) = rss_mib(pid);
    let all_shown = d.shows(large);
    let minutes = opts.run.as_secs_f64() / 60.0;
    let (c, r) = (median(cpu.clone()), median(redis.clone()));
    rows.push(row(
        format!(
            "{large} cards, {:.0} updates/s: dashboard CPU (median of {} × 10 s)",
            sent as f64 / opts.run.as_secs_f64(),
            cpu.len()
        ),
        format!("{c:.1}% (worst {:.1}%)", max(&cpu)),
        format!("Redis for the writers alone {writers_redis:.1}% (with the dashboard {r:.1}%)"),
        ratio(c, writers_redis),
        "< 10% and < Redis for the writers",
        Some(c < 10.0 && c < writers_redis),
    ));
    let p99 = percentile(latencies.clone(), 0.99);
    let capture = median(captures);
    rows.push(row(
        format!(
            "key → drill-down drawn, p99 of {} (median)",
            latencies.len()
        ),
        format!("{p99:.0} ms ({:.0})", median(latencies)),
        format!("tmux capture {capture:.0} ms"),
        ratio(p99, capture),
        "p99 < 50 ms",
        Some(p99 < 50.0),
    ));
    // Per 10 s window, so that a window holding the periodic audit shows as one.
    let pre: Vec<f64> = d
        .loop_field("draw_p99_ms")
        .into_iter()
        .take(before)
        .collect();
    eprintln!("before the storm (cold start, idle): draw p99 ms {pre:.1?}");
    eprintln!(
        "storm windows: dashboard CPU % {:.1?}; draw p99 ms {:.1?}; draw p50 ms {:.2?}; longest apply ms {:.1?}",
        cpu,
        during("draw_p99_ms"),
        during("draw_p50_ms"),
        during("longest_apply_ms"),
    );
    eprintln!(
        "storm CPU mean {:.1}%",
        cpu.iter().sum::<f64>() / cpu.len().max(1) as f64
    );
    let frame_p99 = max(&during("draw_p99_ms"));
    rows.push(row(
        "frame draw p99 under the storm (worst 10 s window of the UI loop's log)",
        format!(
            "{frame_p99:.2} ms (p50 {:.2}; before the storm, with the cold start: {:.2})",
            median(during("draw_p50_ms")),
            max(&pre)
        ),
        "",
        "",
        "< 10 ms",
        Some(frame_p99 < 10.0),
    ));
    rows.push(row(
        "longest message-apply stretch of the UI loop under the storm",
        format!("{:.1} ms", max(&during("longest_apply_ms"))),
        "",
        "",
        "",
        None,
    ));
    let first = rss_windows.first().copied().unwrap_or(f64::NAN);
    let last = rss_windows.last().copied().unwrap_or(f64::NAN);
    let list: Vec<String> = rss_windows.iter().map(|r| format!("{r:.0}")).collect();
    rows.push(row(
        format!("RSS at {large} cards over {minutes:.0} min of updates (MiB, each 10 s)"),
        format!("idle {rss_idle:.0} → {} (peak {hwm:.0})", list.join(", ")),
        "",
        format!("last/first {}", ratio(last, first)),
        "< 250 MiB, flat (last ≤ 1.1 × first)",
        Some(hwm < 250.0 && last <= 1.1 * first),
    ));
    rows.push(row(
        "header counts every card at the end",
        all_shown.to_string(),
        "",
        "",
        "true",
        Some(all_shown),
    ));
}

fn print_rows(label: &str, rows: &[Row]) {
    println!("### {label}\n");
    println!("| situation | value | baseline | ratio | target | |");
    println!("|---|---:|---:|---:|---|---|");
    for r in rows {
        let verdict = match r.pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.situation, r.value, r.baseline, r.ratio, r.target, verdict
        );
    }
    println!();
}

fn main() {
    let opts = Opts::parse();
    if opts.standalone {
        let server = support::RedisServer::start();
        run(
            Target {
                label: "standalone",
                dashboard_args: format!("--redis-url {}", server.url()),
                once_args: vec!["--redis-url".into(), server.url()],
                settings: server.settings(),
                nodes: vec![&server],
            },
            &opts,
        );
    }
    if opts.cluster {
        let cluster = support::RedisCluster::start();
        let seeds = cluster.seeds().join(",");
        run(
            Target {
                label: "cluster",
                dashboard_args: format!("--cluster --cluster-nodes {seeds}"),
                once_args: vec!["--cluster".into(), "--cluster-nodes".into(), seeds],
                settings: cluster.settings(),
                nodes: cluster.nodes.iter().collect(),
            },
            &opts,
        );
    }
}
