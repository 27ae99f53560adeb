//! The hidden commands the built-in site image runs inside tenant containers: they read only
//! their own environment, never the namespace, the repository or the database.

use super::args::Command;
use anyhow::Result;
use std::process::ExitCode;

/// The exit code of `command` when it is one of the site's, else `None`.
pub fn run(command: &Command) -> Result<Option<ExitCode>> {
    Ok(match command {
        Command::Site => Some(crate::site::run()?),
        Command::SiteHealth { url } => Some(crate::site::run_health(url)),
        Command::SiteUsage { port } => Some(crate::usage::site::run_site_usage(*port)),
        Command::SiteDataOwner { dir, owner } => Some(crate::site::owner::run(dir, owner)),
        Command::Edge => Some(crate::edge::run().map_err(anyhow::Error::msg)?),
        Command::EdgeHealth => Some(crate::edge::run_health()),
        _ => None,
    })
}
