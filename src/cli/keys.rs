//! `keys rotate`: a tenant's new API key, stored as its digest, shown once, and its site
//! restarted with it through the reconcile path.

use super::args::{ApplyTuning, Output};
use super::context::{Access, Context};
use super::output::{ErrPrinter, Printer};
use crate::apply;
use crate::plan::PlanOptions;
use crate::reconcile::{self, Announce, ApplyRequest, Scope};
use anyhow::{Result, bail};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The version of `keys rotate -o json`'s document.
pub const FORMAT_VERSION: u32 = 1;

pub async fn rotate(
    ctx: &Context<'_>,
    slug: &str,
    lock_timeout: Duration,
    output: Output,
) -> Result<ExitCode> {
    let Some(loaded) = ctx
        .load("HEAD", false, Access::Write { adopt: false })
        .await?
    else {
        return Ok(ExitCode::from(1));
    };
    let (key, digest) = apply::keys::generate()?;
    let store = &loaded.store;
    // Under the lock, before the re-plan: the plan then sees the container's stale digest and
    // replaces the container.
    let store_digest = async {
        let db = store.observe().await?;
        let Some(mut row) = db.tenants.get(slug).cloned() else {
            bail!("tenant `{slug}` has no record yet; apply it first");
        };
        row.api_key_sha256 = Some(digest);
        row.updated_at = crate::store::now_unix();
        store.upsert_tenant(&row).await?;
        store
            .record_event(None, Some(slug), "tenant.key-rotated", "API key rotated")
            .await?;
        Ok(())
    };
    let request = ApplyRequest {
        desired: &loaded.desired,
        opts: PlanOptions {
            namespace: ctx.namespace().to_string(),
            revision: loaded.revision(),
            prune: false,
            tenants: vec![slug.to_string()],
        },
        config: ApplyTuning::defaults()?.config(ctx.namespace(), loaded.revision()),
        lock_wait: lock_timeout,
        approved: None,
        scope: Scope::TenantsOnly,
        record_trial_ends: false,
        announce: Announce::Nothing,
        // A key rotation replaces one container and never removes one.
        max_destroy: Some(ApplyTuning::defaults()?.destroy.max_destroy),
    };
    let progress: Arc<dyn crate::apply::Progress> = match output {
        Output::Text => Arc::new(Printer),
        Output::Json => Arc::new(ErrPrinter),
    };
    let applied =
        reconcile::apply_after(&loaded.runtime, store, progress, request, store_digest).await?;
    let restarted = applied.report.failed() == 0;
    match output {
        Output::Text => {
            println!("\nNew API key for {slug} (shown once; only its SHA-256 is stored):\n  {key}")
        }
        Output::Json => {
            let url = match applied.report.outcomes.get(slug) {
                Some(apply::Outcome::Converged { url }) => url.clone(),
                _ => None,
            };
            let document = serde_json::json!({
                "format_version": FORMAT_VERSION,
                "tenant": slug,
                "key": key,
                "rotated_at": crate::calendar::rfc3339(crate::store::now_unix()),
                "revision": loaded.revision(),
                "restarted": restarted,
                "url": url,
            });
            println!("{}", serde_json::to_string_pretty(&document)?);
        }
    }
    if !restarted {
        eprintln!(
            "the key is stored, but the tenant's site did not restart with it: run `tenantctl apply`"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
