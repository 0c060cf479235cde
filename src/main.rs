//! `artemis-top`: parses the command line, loads the layered configuration and hands over to
//! the mode asked for. User mistakes end here as one line on stderr and exit code 2; nothing
//! below prints a backtrace for them.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use tokio::signal;

use artemis::cli::{Cli, Command, SimulateArgs};
use artemis::config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Completions and the man page describe the command line only: no configuration (a
    // broken config file must not keep them from working), no logging, no runtime.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            artemis::cli::completions(*shell, &mut out);
            return print_stdout(&out);
        }
        Some(Command::Man) => {
            let mut out = Vec::new();
            if let Err(e) = artemis::cli::man_page(&mut out) {
                eprintln!("artemis-top: cannot render the man page: {e}");
                return ExitCode::FAILURE;
            }
            return print_stdout(&out);
        }
        _ => {}
    }
    // Read once, with `vars_os`: a variable that is not UTF-8 (ours or anyone's) is never a
    // panic; one of ours is a one-line error naming it, anyone else's is ignored.
    let loaded = config::Environment::capture().and_then(|env| {
        let file = config::choose_file(cli.config.as_deref(), &env);
        config::load(&file, env.settings(), &cli.overrides()).map(|s| (env, s))
    });
    let (env, settings) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("artemis-top: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", settings.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    let headless = cli.command.is_some() || artemis::tui::should_run_headless(cli.wants_headless());
    let sink = if headless {
        artemis::logging::Sink::Stderr
    } else {
        artemis::logging::Sink::FileOnly
    };
    artemis::logging::init(sink, &env);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("artemis-top: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Some(Command::Check) => match artemis::check::check(&settings).await {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("artemis-top: {e}");
                    ExitCode::FAILURE
                }
            },
            Some(Command::Simulate(args)) => simulate(cli.demo, args, settings).await,
            // Answered above, before the configuration was read.
            Some(Command::Completions { .. } | Command::Man) => ExitCode::SUCCESS,
            None => dashboard(&cli, settings).await,
        }
    });
    // Background tasks (the Redis client's reconnects, a drain still retrying) must not keep
    // a finished command from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn print_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("artemis-top: cannot write to stdout: {e}");
            ExitCode::from(74)
        }
    }
}

/// How long `--demo --once` lets the simulator run before the snapshot.
const DEMO_WARMUP: std::time::Duration = std::time::Duration::from_millis(1500);

/// `artemis-top simulate`: runs the simulator against Redis (or memory with `--demo`) and
/// prints its report. Exit code 1 when Redis cannot be reached or some write did not land.
async fn simulate(demo: bool, args: SimulateArgs, settings: config::Settings) -> ExitCode {
    use artemis::demo::{SimOptions, Simulation, stop_pair};
    let seed = args
        .seed
        .unwrap_or_else(|| rand::random_range(1..1_000_000));
    let options = SimOptions {
        speed: args.speed,
        cards: args.cards,
        concurrency: usize::try_from(args.concurrency).unwrap_or(usize::MAX),
        failure_rate: args.failure_rate,
        seed,
        duration: args.duration.map(std::time::Duration::from_secs_f64),
        drain_timeout: std::time::Duration::from_secs_f64(args.drain_timeout),
        id_prefix: format!("sim-{seed}"),
    };
    if let Err(e) = options.validate() {
        eprintln!("artemis-top: {e}");
        return ExitCode::from(2);
    }
    let backend = if demo {
        artemis::Backend::memory(settings)
    } else {
        match artemis::Backend::redis(settings).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("artemis-top: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let sim = match Simulation::new(backend, options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("artemis-top: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop, signal) = stop_pair();
    // Watched from before the first card starts, so Ctrl-C never kills a half-written run.
    let (Ok(mut int), Ok(mut term)) = (
        signal::unix::signal(signal::unix::SignalKind::interrupt()),
        signal::unix::signal(signal::unix::SignalKind::terminate()),
    ) else {
        eprintln!("artemis-top: cannot watch for Ctrl-C and SIGTERM");
        return ExitCode::FAILURE;
    };
    let signals = tokio::spawn(async move {
        for first in [true, false] {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            stop.stop();
            if first {
                eprintln!(
                    "artemis-top: stopping: cancelling the cards in flight and waiting for their writes (again to stop waiting)"
                );
            }
        }
        std::future::pending::<()>().await
    });
    let report = sim.run(signal).await;
    signals.abort();
    let printed = match args.format {
        artemis::cli::Format::Text => format!("{report}"),
        artemis::cli::Format::Json => match serde_json::to_string(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("artemis-top: cannot encode the report: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut out = std::io::stdout();
    if let Err(e) = out.write_all(printed.as_bytes()).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("artemis-top: cannot write the report: {e}");
        return ExitCode::FAILURE;
    }
    if report.writes.lost_any() {
        eprintln!(
            "artemis-top: some writes did not land in Redis (see the writes line of the report)"
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The dashboard, or its headless report when asked for or when stdout is not a terminal.
async fn dashboard(cli: &Cli, settings: config::Settings) -> ExitCode {
    let backend = if cli.demo {
        artemis::Backend::memory(settings.clone())
    } else {
        match artemis::Backend::redis_lazy(settings.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("artemis-top: {e}");
                return ExitCode::from(2);
            }
        }
    };
    // The demo: the simulator writes into the same in-process storage the dashboard reads,
    // until it is dropped at the end of this function.
    let _demo = if cli.demo {
        match artemis::demo::start_demo(backend.clone()) {
            Ok(stop) => Some(stop),
            Err(e) => {
                eprintln!("artemis-top: cannot start the demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    if artemis::tui::should_run_headless(cli.wants_headless()) {
        if cli.demo {
            // Let the first cards start, call models and report progress.
            tokio::time::sleep(DEMO_WARMUP).await;
        }
        let opts = artemis::headless::HeadlessOptions {
            format: match cli.format {
                None | Some(artemis::cli::Format::Text) => artemis::headless::Format::Text,
                Some(artemis::cli::Format::Json) => artemis::headless::Format::Json,
            },
            count: cli.count.unwrap_or(1),
            interval: std::time::Duration::from_secs_f64(settings.dashboard.poll_interval),
        };
        let mut out = std::io::stdout();
        return match artemis::headless::run(backend, &settings, opts, &mut out).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("artemis-top: {e}");
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
            }
        };
    }
    match artemis::tui::run(backend, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("artemis-top: {e}");
            ExitCode::FAILURE
        }
    }
}
