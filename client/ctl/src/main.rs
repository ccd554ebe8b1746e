//! `sessyncctl`: the operator CLI for a sessync cluster.
//!
//! Parses the command line, runs the command on a tokio runtime and turns the outcome into an
//! exit code: 0 ok, 1 failure, 2 usage (clap), 3 the cluster or the network was unavailable.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // `--generate man|complete-SHELL`: the package's man page and completions.
    if let Some(code) = sessync_cli_assets::generate_if_requested(cli::Cli::command()) {
        return code;
    }
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FAILURE);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
