//! `usage`: usage against each tenant's plan over a window, from the database alone.

use super::args::{Output, UsageArgs};
use super::context::Context;
use crate::usage;
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(ctx: &Context<'_>, args: &UsageArgs) -> Result<ExitCode> {
    // Only the database is needed: plan limits and prices are in its rows.
    let store = ctx.store().await?;
    let now = crate::store::now_unix();
    let report = usage::report(&store, args.slug.as_deref(), args.since, now).await;
    store.close().await;
    let report = report?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&super::output::versioned(
                serde_json::to_value(&report)?,
                usage::FORMAT_VERSION
            ))?
        ),
        Output::Text => print!("{}", usage::render_text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
