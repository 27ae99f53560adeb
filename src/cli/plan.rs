//! `plan`: what apply would change, as text, JSON or Markdown, changing nothing; `--offline
//! --against REF` compares two revisions from git alone.

use super::args::{PlanArgs, PlanOutput};
use super::context::{Access, Context};
use super::output::{note_uncommitted, text_style};
use super::validate::check;
use crate::plan::render;
use crate::plan::{ObservedState, Plan, PlanOptions, offline};
use crate::reconcile;
use crate::source::Snapshot;
use anyhow::{Result, bail};
use std::process::ExitCode;

pub async fn run(ctx: &Context<'_>, args: &PlanArgs) -> Result<ExitCode> {
    if let Some(against) = args.against.as_deref().filter(|_| args.offline) {
        return run_offline(ctx, args, against);
    }
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
    print(args, &plan, &observed)?;
    loaded.store.close().await;
    if !args.worktree {
        note_uncommitted(&loaded.repo)?;
    }
    Ok(exit_code(args, &plan))
}

/// `plan --offline --against REF`: the revision planned (`--ref` or `--worktree`) against REF
/// as if REF had been applied; no engine, no database.
fn run_offline(ctx: &Context<'_>, args: &PlanArgs, against: &str) -> Result<ExitCode> {
    let repo = ctx.repo()?;
    let after = if args.worktree {
        repo.snapshot_worktree()?
    } else {
        repo.snapshot_at(&args.r#ref)?
    };
    let before = repo.snapshot_at(against)?;
    let (Ok(old), Ok(new)) = (
        check(&before.files, &label(&before, Some(against))),
        check(&after.files, &label(&after, None)),
    ) else {
        return Ok(ExitCode::from(1));
    };
    for slug in &args.tenants {
        if !old.tenants.contains_key(slug) && !new.tenants.contains_key(slug) {
            bail!("--tenant {slug}: no tenant of that name at either revision");
        }
    }
    let opts = PlanOptions {
        namespace: ctx.namespace().to_string(),
        revision: revision(&after),
        prune: args.prune,
        tenants: args.tenants.clone(),
    };
    let (plan, observed) =
        offline::compare(&old, &new, &revision(&before), &opts, ctx.runtime_kind());
    print(args, &plan, &observed)?;
    if !args.worktree {
        note_uncommitted(&repo)?;
    }
    Ok(exit_code(args, &plan))
}

fn label(snapshot: &Snapshot, against: Option<&str>) -> String {
    match against {
        Some(r) => format!("revision {} (--against {r})", snapshot.short_revision()),
        None => format!("revision {}", snapshot.short_revision()),
    }
}

/// The revision plans name: the commit id, or the short id of the commit under worktree edits.
fn revision(snapshot: &Snapshot) -> String {
    match &snapshot.base_revision {
        Some(_) => snapshot.short_revision(),
        None => snapshot.revision.clone(),
    }
}

/// The plan in the output asked for, then the mass-destruction warning if it is one.
fn print(args: &PlanArgs, plan: &Plan, observed: &ObservedState) -> Result<()> {
    let out = std::io::stdout();
    match args.output {
        PlanOutput::Json => render::write_json(out, plan)?,
        PlanOutput::Text => render::write_text(out, plan, text_style(args.no_color))?,
        PlanOutput::Markdown => render::write_markdown(out, plan)?,
    }
    if let Some(refused) = reconcile::mass_destroy(plan, observed, args.destroy.max_destroy) {
        let warning = format!("Warning: {refused}; apply and watch refuse it as it is.");
        match args.output {
            // JSON on stdout stays one document: the warning goes to stderr then.
            PlanOutput::Json => eprintln!("{warning}"),
            PlanOutput::Text => println!(
                "\n{}",
                text_style(args.no_color).paint(render::YELLOW, &warning)
            ),
            PlanOutput::Markdown => println!("> **{}**\n", render::md_text(&warning)),
        }
    }
    Ok(())
}

fn exit_code(args: &PlanArgs, plan: &Plan) -> ExitCode {
    if args.detailed_exitcode && !plan.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
