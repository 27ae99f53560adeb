//! `watch`: the GitOps loop in the foreground, until SIGINT or SIGTERM.

use super::args::WatchArgs;
use super::context::Context;
use super::output::TimedPrinter;
use crate::apply::Progress;
use crate::source::remote::RemoteSource;
use crate::watch::endpoints::Endpoints;
use crate::watch::{WatchConfig, Watcher, hooks};
use anyhow::{Context as _, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(ctx: &Context<'_>, args: &WatchArgs) -> Result<ExitCode> {
    let dir = ctx.dir()?;
    // With --remote nobody commits here: the state directory is the current (or --repo) directory.
    let root = match &args.remote {
        Some(_) => dir.clone(),
        None => ctx.repo()?.root().to_path_buf(),
    };
    let remote = args.remote.as_ref().map(|url| {
        let base = args
            .cache_dir
            .clone()
            .unwrap_or_else(|| root.join(".tenantctl").join("remote"));
        RemoteSource {
            url: url.clone(),
            branch: args.branch.clone(),
            cache: RemoteSource::default_cache(&base, url),
        }
    });
    let progress = Arc::new(TimedPrinter);
    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    // The engine or the database may be down when the loop starts: wait for them, never give up.
    let Some((runtime, store)) = ctx
        .connect_retrying(&root, &*progress, args.interval, shutdown.as_mut())
        .await?
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let config = WatchConfig {
        repo: root.clone(),
        reference: args.r#ref.clone(),
        interval: args.interval.max(Duration::from_secs(1)),
        resync: args.resync.max(Duration::from_secs(1)),
        debounce: args.debounce,
        self_heal: args.self_heal,
        apply: args.tuning.config(ctx.namespace(), String::new()),
        remote,
        meter_interval: (!args.meter_interval.is_zero()).then_some(args.meter_interval),
        log_sync_interval: (!args.log_sync_interval.is_zero()).then_some(args.log_sync_interval),
        log_retention: args.log_retention,
        lease_ttl: args.lease_ttl,
        max_destroy: args.tuning.destroy.max_destroy,
        keys_file: args
            .keys_file
            .clone()
            .unwrap_or_else(|| crate::store::keys_file::default_path(&root)),
    };
    let runtime_handle = runtime.clone();
    let watcher = Watcher::new(config, runtime, store.clone(), progress.clone());
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
        let at = listener.local_addr()?;
        // The secret only ever comes from the environment (never argv, never printed).
        let secret = std::env::var(hooks::SECRET_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .map(String::into_bytes);
        progress.line(None, &format!("metrics on http://{at}/metrics"));
        progress.line(
            None,
            &format!(
                "health on http://{at}/healthz and /readyz; push webhooks at http://{at}/hooks/git: {}",
                if secret.is_some() {
                    format!("on (verified with {})", hooks::SECRET_ENV)
                } else {
                    format!("off (set {} to turn them on)", hooks::SECRET_ENV)
                }
            ),
        );
        let endpoints = Arc::new(Endpoints::new(
            watcher.metrics.clone(),
            watcher.control.clone(),
            runtime_handle,
            store.clone(),
            secret,
            args.remote.as_ref().map(|_| args.branch.clone()),
            progress.clone(),
        ));
        tokio::spawn(endpoints.serve(listener));
    }
    progress.line(
        None,
        &format!(
            "watching {} ({}), resync every {}s, self-heal {}",
            args.remote
                .as_deref()
                .map_or_else(|| dir.display().to_string(), |u| u.to_string()),
            if args.remote.is_some() {
                &args.branch
            } else {
                &args.r#ref
            },
            args.interval.as_secs(),
            if args.self_heal { "on" } else { "off" }
        ),
    );
    watcher.run(shutdown).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed here, before the future is first
/// polled: until then (the connect, the first pass) a signal would otherwise take the default
/// action and kill the loop in the middle of an apply.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
