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
            None => {
                eprintln!("artemis-top: the dashboard is not built yet; try `artemis-top check`");
                ExitCode::FAILURE
            }
        }
    })
}
