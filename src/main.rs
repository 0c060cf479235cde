//! `artemis-top`: parses the command line, loads the layered configuration and hands over to
//! the mode asked for. User mistakes end here as one line on stderr and exit code 2; nothing
//! below prints a backtrace for them.

use std::process::ExitCode;

use clap::Parser;

use artemis::cli::{Cli, Command};
use artemis::config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let file = config::choose_file(cli.config.as_deref(), &|k| std::env::var(k).ok());
    let settings = match config::load(&file, &env, &cli.overrides()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("artemis-top: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", settings.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    let headless = cli.command.is_some() || artemis::tui::should_run_headless(cli.once);
    let sink = if headless {
        artemis::logging::Sink::Stderr
    } else {
        artemis::logging::Sink::FileOnly
    };
    artemis::logging::init(sink, &|k| std::env::var(k).ok());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("artemis-top: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
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
            None => dashboard(&cli, settings).await,
        }
    })
}

/// The dashboard, or its headless report when asked for or when stdout is not a terminal.
async fn dashboard(cli: &Cli, settings: config::Settings) -> ExitCode {
    let storage = if cli.demo {
        artemis::storage::open_memory(settings.clone())
    } else {
        match artemis::storage::open_redis_lazy(settings.clone()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("artemis-top: {e}");
                return ExitCode::from(2);
            }
        }
    };
    if artemis::tui::should_run_headless(cli.once) {
        let opts = artemis::headless::HeadlessOptions {
            format: match cli.format {
                artemis::cli::Format::Text => artemis::headless::Format::Text,
                artemis::cli::Format::Json => artemis::headless::Format::Json,
            },
            count: cli.count.unwrap_or(1),
            interval: std::time::Duration::from_secs_f64(settings.dashboard.poll_interval),
        };
        let mut out = std::io::stdout();
        return match artemis::headless::run(storage, &settings, opts, &mut out).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("artemis-top: {e}");
                ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
            }
        };
    }
    match artemis::tui::run(storage, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("artemis-top: {e}");
            ExitCode::FAILURE
        }
    }
}
