//! `plan`: what apply would change, as text or JSON, changing nothing.

use super::args::{Output, PlanArgs};
use super::context::{Access, Context};
use super::output::{note_uncommitted, text_style};
use crate::plan::PlanOptions;
use crate::plan::render;
use crate::reconcile;
use anyhow::{Result, bail};
use std::process::ExitCode;

pub async fn run(ctx: &Context<'_>, args: &PlanArgs) -> Result<ExitCode> {
    let Some(loaded) = ctx.load(&args.r#ref, args.worktree, Access::Read).await? else {
        return Ok(ExitCode::from(1));
    };
    let observed = loaded.observe().await?;
    let desired = &loaded.desired;
    for slug in &args.tenants {
        let known = desired.tenants.contains_key(slug)
            || observed.db.tenants.contains_key(slug)
            || observed
                .runtime
                .containers
                .iter()
                .any(|c| c.tenant.as_deref() == Some(slug.as_str()));
        if !known {
            bail!("--tenant {slug}: no tenant of that name in git, the database or the engine");
        }
    }
    let opts = PlanOptions {
        namespace: ctx.namespace().to_string(),
        revision: loaded.revision(),
        prune: args.prune,
        tenants: args.tenants.clone(),
    };
    let plan = loaded.plan(&observed, &opts).plan;
    tracing::debug!(changes = plan.changes.len(), "computed plan");
    match args.output {
        Output::Json => render::write_json(std::io::stdout(), &plan)?,
        Output::Text => render::write_text(std::io::stdout(), &plan, text_style(args.no_color))?,
    }
    if let Some(refused) = reconcile::mass_destroy(&plan, &observed, args.destroy.max_destroy) {
        let warning = format!("Warning: {refused}; apply and watch refuse it as it is.");
        // JSON on stdout stays one document: the warning goes to stderr then.
        match args.output {
            Output::Json => eprintln!("{warning}"),
            Output::Text => println!(
                "\n{}",
                text_style(args.no_color).paint(render::YELLOW, &warning)
            ),
        }
    }
    loaded.store.close().await;
    if !args.worktree {
        note_uncommitted(&loaded.repo)?;
    }
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
