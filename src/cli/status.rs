//! `status`: per tenant, sync and health, as a table or JSON.

use super::args::{Output, StatusArgs};
use super::context::{Access, Context};
use super::output::{plural, text_style};
use crate::model;
use crate::status;
use anyhow::{Result, bail};
use std::process::ExitCode;

/// Reads HEAD (an invalid one makes every sync Unknown, with the problems shown once on
/// stderr), observes the engine and the database, and prints the table or JSON.
pub async fn run(ctx: &Context<'_>, args: &StatusArgs) -> Result<ExitCode> {
    let repo = ctx.repo()?;
    let snapshot = repo.snapshot_at("HEAD")?;
    let (desired, error) = match model::load(&snapshot.files) {
        Ok(d) => (Some(d), None),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let why = format!(
                "revision {} is invalid ({} problem{}; `tenantctl validate --ref HEAD` lists them)",
                snapshot.short_revision(),
                diags.len(),
                plural(diags.len())
            );
            (None, Some(why))
        }
    };
    let (runtime, store) = ctx.connect(repo.root(), Access::Read).await?;
    let report = status::gather(
        &runtime,
        &store,
        desired.as_ref(),
        Some(&snapshot.revision),
        error,
        &args.tenants,
    )
    .await;
    store.close().await;
    let report = report?;
    for slug in &args.tenants {
        if !report.tenants.iter().any(|t| &t.slug == slug) {
            bail!("--tenant {slug}: no tenant of that name in git, the database or the engine");
        }
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                status::render::json(&report),
                status::FORMAT_VERSION
            ))?
        ),
        Output::Text => print!(
            "{}",
            status::render::text(&report, text_style(args.no_color), crate::store::now_unix())
        ),
    }
    Ok(ExitCode::SUCCESS)
}
