//! The command line: argument parsing and dispatch only; the commands are in `tenantctl::cli`.

use clap::Parser;
use std::process::ExitCode;
use tenantctl::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(&cli.command);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
