//! The command line: [`args`] holds every flag, [`Context`](context::Context) resolves the
//! global ones, and one module per command does its work, planning and applying only through
//! [`crate::reconcile`]. `src/main.rs` parses the arguments and calls [`run`].

pub mod args;
mod context;
mod output;

mod adopt;
mod apply;
mod events;
mod invoices;
mod keys;
mod live;
mod logs;
mod meter;
mod plan;
mod site;
mod status;
mod tui;
mod usage;
mod validate;
mod watch;

pub use args::Cli;
use args::Command;
use context::Context;
pub use output::color_enabled;

use anyhow::{Result, bail};
use std::future::Future;
use std::io::IsTerminal;
use std::process::ExitCode;

/// Sends `tracing` to stderr, coloured as `--color` and the environment say for stderr, or
/// nowhere for the dashboard, which owns the terminal: a stray log line would tear the screen,
/// and what matters reaches it as activity and faults instead. The level is RUST_LOG's when it
/// is set, else `warn`, `error` with `-q`, and `info`, `debug`, `trace` with `-v`, `-vv`, `-vvv`.
pub fn init_tracing(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(log_level(&cli.conventions)));
    if matches!(cli.command, Command::Tui(_)) {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::sink)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Inside containers stderr is a log file: no colour codes there.
            .with_ansi(output::color_enabled(
                cli.conventions.color,
                |name| std::env::var_os(name),
                std::io::stderr().is_terminal(),
            ))
            .init();
    }
}

/// The log filter `-q` and `-v` ask for (when RUST_LOG is not set).
pub fn log_level(conventions: &args::Conventions) -> &'static str {
    match (conventions.quiet, conventions.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

/// Runs the command; an error is for the caller to print.
pub fn run(cli: Cli) -> Result<ExitCode> {
    // The site runs inside tenant containers: it reads only its own env, never the namespace.
    if let Some(code) = site::run(&cli.command)? {
        return Ok(code);
    }
    output::set_conventions(&cli.conventions);
    match &cli.command {
        Command::Completions { shell } => {
            let mut command = args::command();
            clap_complete::generate(*shell, &mut command, "tenantctl", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => {
            clap_mangen::Man::new(args::command()).render(&mut std::io::stdout())?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Some(problem) = crate::model::slug_problem(&cli.namespace) {
        bail!("--namespace: {problem}");
    }
    if cli.namespace.len() > 40 {
        bail!(
            "--namespace is {} characters long; keep it to 40 so tenant names fit",
            cli.namespace.len()
        );
    }
    crate::runtime::probe::set_timeout(cli.probe_timeout);
    let ctx = Context::new(&cli);
    match &cli.command {
        Command::Validate { r#ref, output } => validate::run(&ctx, r#ref.as_deref(), *output),
        Command::Plan(args) => block_on(plan::run(&ctx, args)),
        Command::Apply(args) => block_on(apply::run(&ctx, args)),
        Command::Watch(args) => block_on(watch::run(&ctx, args)),
        Command::Meter(args) => block_on(meter::run(&ctx, args)),
        Command::Usage(args) => block_on(usage::run(&ctx, args)),
        Command::Status(args) => block_on(status::run(&ctx, args)),
        Command::Logs(args) => block_on(logs::run(&ctx, args)),
        Command::Events(args) => block_on(events::run(&ctx, args)),
        Command::Invoices(args) => block_on(invoices::run(&ctx, args)),
        Command::Tui(args) => block_on(tui::run(&ctx, args)),
        Command::Keys { command } => block_on(keys::run(&ctx, command)),
        Command::Site
        | Command::SiteHealth { .. }
        | Command::SiteUsage { .. }
        | Command::SiteDataOwner { .. }
        | Command::Edge
        | Command::EdgeHealth
        | Command::Completions { .. }
        | Command::Man => Ok(ExitCode::SUCCESS),
    }
}

/// Runs an async command to its end on a multi-threaded tokio executor.
fn block_on(command: impl Future<Output = Result<ExitCode>>) -> Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(command)
}
