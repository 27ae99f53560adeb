//! The built-in site: what runs in a tenant's container when its theme names no image
//! (`/tenantctl site`, PID 1 of a FROM-scratch image), and its health check
//! (`/tenantctl site-health URL`).
//!
//! Configured only by the environment of `plan::container::desired_env`. Serves a themed
//! landing page (`/`), `/health`, `/usage` (counters for the usage meter) and `/api/*`, which
//! checks the tenant's API key against `TENANT_API_KEY_SHA256` and meters calls against the
//! plan's rate limit and monthly quotas. `/usage` needs the key too (or, for the meter, its
//! digest); a client address with too many wrong keys is refused for a while ([`throttle`]).
//! Counters persist in `$SITE_DATA_DIR/usage.json`.

mod access;
mod clock;
mod config;
mod health;
mod meter;
pub mod owner;
mod page;
mod server;
mod throttle;
mod usage;

#[cfg(test)]
mod tests;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{ConfigError, DEFAULT_DATA_DIR, KeyHash, Limits, SiteConfig};
pub use health::{HEALTH_TIMEOUT, health_check};
pub use page::{css_color, html_escape};
pub use server::{KEY_DIGEST_HEADER, REQUEST_ID_HEADER, serve, serve_on};
pub use usage::{Counters, USAGE_FILE};

use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the listening address: {0}")]
    LocalAddr(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot handle {signal}: {source}")]
    Signal {
        signal: &'static str,
        source: std::io::Error,
    },
}

/// `tenantctl site`: reads the environment, serves until SIGTERM or SIGINT, exits 0 after a
/// graceful stop.
pub fn run() -> Result<ExitCode, SiteError> {
    let config = SiteConfig::from_env()?;
    // Few threads: the site is small, and plans cap a container's pids (128 on a starter plan).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(SiteError::Runtime)?;
    runtime.block_on(async {
        let stop = shutdown_signal()?;
        serve(config, stop).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on SIGTERM or SIGINT. As PID 1 the process gets no default action for either, so
/// without these handlers `docker stop` would wait its 10 s and then kill.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, SiteError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(|source| SiteError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| SiteError::Signal {
        signal: "SIGINT",
        source,
    })?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name} received");
    })
}

/// `tenantctl site-health URL`: prints one line and exits 0 when the URL answers 2xx within
/// [`HEALTH_TIMEOUT`], 1 otherwise.
pub fn run_health(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            println!("unhealthy: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(health_check(url, HEALTH_TIMEOUT)) {
        Ok(code) => {
            println!("healthy: {url} answered {code}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            println!("unhealthy: {why}");
            ExitCode::from(1)
        }
    }
}
