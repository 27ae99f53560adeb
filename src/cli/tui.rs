//! `tui`: the dashboard, with the reconcile loop in-process unless another one runs.

use super::args::TuiArgs;
use super::context::{Access, Context};
use crate::tui::{self, TuiConfig};
use crate::watch::{WatchConfig, leader, presence};
use anyhow::Result;
use std::process::ExitCode;
use std::time::Duration;

/// Connects to the engine and the database first (so "engine unreachable" fails as in every
/// other command), decides who reconciles, then hands the terminal to the dashboard. Errors
/// are printed by `main`, after the terminal is restored.
pub async fn run(ctx: &Context<'_>, args: &TuiArgs) -> Result<ExitCode> {
    let repo = ctx.repo()?;
    // A mistyped ref fails here, not as a header line.
    repo.resolve(&args.r#ref)?;
    let root = repo.root().to_path_buf();
    // Read-only never writes, so it never makes a database; the in-process loop applies.
    let access = if args.read_only {
        Access::Read
    } else {
        Access::Write { adopt: false }
    };
    let (runtime, store) = ctx.connect(&root, access).await?;
    // Another loop already runs against this database: attach to it read-only (the header says so).
    let attach = !args.read_only && presence::present(&store).await?.is_some();
    let watch = (!args.read_only && !attach).then(|| WatchConfig {
        repo: root.clone(),
        reference: args.r#ref.clone(),
        interval: args.interval.max(Duration::from_secs(1)),
        resync: crate::watch::DEFAULT_RESYNC,
        debounce: Duration::from_millis(200),
        self_heal: args.self_heal,
        apply: args.tuning.config(ctx.namespace(), String::new()),
        remote: None,
        meter_interval: (!args.meter_interval.is_zero()).then_some(args.meter_interval),
        // The log history is `watch`'s (or `tenantctl logs sync`'s) to keep.
        log_sync_interval: None,
        log_retention: Duration::from_secs(90 * 86_400),
        lease_ttl: leader::DEFAULT_TTL,
        max_destroy: args.tuning.destroy.max_destroy,
        keys_file: crate::store::keys_file::default_path(&root),
    });
    let config = TuiConfig {
        repo: root,
        reference: args.r#ref.clone(),
        runtime,
        store: store.clone(),
        watch,
        refresh: args.refresh,
        log_lines: usize::try_from(args.log_lines).unwrap_or(usize::MAX),
        color: super::output::text_style(args.no_color).color,
    };
    let result = tui::run(config).await;
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
