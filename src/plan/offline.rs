//! `plan --offline --against REF`: what a change in git would do, from git alone.
//!
//! The earlier revision stands in for what runs: [`converged_as`] builds what a fully successful
//! apply of it leaves behind (rows, networks, volumes, containers with their spec-hash labels),
//! and the planner compares the later revision with that. No engine, no database: a plan of the
//! repository's own change, field by field, as a pull request would want to see it.

use super::container::{HASH_VERSION, desired_container, spec_hash};
use super::converged::converged_as;
use super::{Action, ObservedState, Plan, PlanOptions, Resource, compute};
use crate::model::{DesiredState, TenantState};
use crate::runtime::types::RuntimeKind;

/// The plan from `before` (at `before_revision`) to `after` (at `opts.revision`), and the state
/// it was planned against (what `before` runs once applied).
pub fn compare(
    before: &DesiredState,
    after: &DesiredState,
    before_revision: &str,
    opts: &PlanOptions,
    kind: RuntimeKind,
) -> (Plan, ObservedState) {
    let then = PlanOptions {
        revision: before_revision.to_string(),
        ..opts.clone()
    };
    let observed = converged_as(before, &then, kind);
    let mut plan = compute(after, &observed, opts);
    for change in &mut plan.changes {
        // A container is replaced for a new spec; a swarm service rolls its tasks over to it.
        let what = match (change.resource, change.action) {
            (Resource::Container, Action::Replace) => "container would be replaced",
            (Resource::Service, Action::Update) => "service would roll out new tasks",
            _ => continue,
        };
        let Some(slug) = change.tenant.as_deref() else {
            continue;
        };
        if let (Some(old), Some(new)) = (spec_of(before, slug, opts), spec_of(after, slug, opts))
            && old != new
        {
            change.reasons.push(format!(
                "{what}: spec hash {} → {}",
                &old[..old.len().min(12)],
                &new[..new.len().min(12)]
            ));
        }
    }
    plan.notes.push(format!(
        "offline: revision {} compared with {} (--against) as if {} had been applied (`observed` in the diffs); the engine and the database were not asked",
        short(&opts.revision),
        short(before_revision),
        short(before_revision),
    ));
    (plan, observed)
}

/// The spec hash of the container `slug` runs at a revision, if it runs one there.
fn spec_of(desired: &DesiredState, slug: &str, opts: &PlanOptions) -> Option<String> {
    let t = desired.tenants.get(slug)?;
    if t.state == TenantState::Cancelled {
        return None;
    }
    let plan = desired.plans.get(&t.plan)?;
    let theme = desired.themes.get(&t.theme)?;
    spec_hash(
        &desired_container(&opts.namespace, t, plan, theme),
        HASH_VERSION,
    )
}

/// A commit id's first 12 digits; a worktree's revision (`<commit>+worktree`) as it is.
fn short(revision: &str) -> &str {
    if revision.contains('+') {
        revision
    } else {
        &revision[..revision.len().min(12)]
    }
}

#[cfg(test)]
mod tests;
