//! The command line: argument parsing and dispatch only; the commands are in `tenantctl::cli`.

use clap::FromArgMatches;
use std::process::ExitCode;
use tenantctl::cli::{self, Cli};

/// mimalloc instead of glibc's malloc: the edge's per-request allocations (Pingora's headers,
/// buffers and tasks) cost measurably less (`bench/edge.sh`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// EX_USAGE (sysexits.h): the command line was wrong; 1 and 2 mean other things here.
const USAGE: u8 = 64;

fn main() -> ExitCode {
    let parsed = cli::args::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version print to stdout and succeed; every other kind is misuse.
            return ExitCode::from(if e.use_stderr() { USAGE } else { 0 });
        }
    };
    cli::init_tracing(&cli);
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
