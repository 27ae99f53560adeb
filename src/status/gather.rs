//! The IO around [`compute`](super::compute): observe the engine and the database, plan, and
//! inspect the containers whose state needs explaining.

use super::{ContainerDetail, Inputs, Report, Summary, compute};
use crate::model::DesiredState;
use crate::plan::{ObservedState, PlanOptions};
use crate::runtime::types::ObservedContainer;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Store, StoreError};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Exit code, OOM kill, restart count and start error of every container that is not running
/// (a running one needs none of them), by container id. A container gone meanwhile is skipped.
pub async fn container_details(
    runtime: &Runtime,
    containers: &[ObservedContainer],
) -> Result<HashMap<String, ContainerDetail>, RuntimeError> {
    runtime.backend().details(containers).await
}

/// Observes everything once and computes the status of every tenant (or of `tenants`), with
/// the trial rule applied as `apply` and `watch` apply it.
///
/// `desired` is `None` when the revision is invalid; `error` then says why, once.
pub async fn gather(
    runtime: &Runtime,
    store: &Store,
    desired: Option<&DesiredState>,
    revision: Option<&str>,
    error: Option<String>,
    tenants: &[String],
) -> Result<Report, StatusError> {
    let (containers, db) = tokio::join!(runtime.observe(), store.observe());
    let mut observed = ObservedState {
        runtime: containers?,
        db: db?,
    };
    if let Some(d) = desired {
        crate::reconcile::probe(&mut observed.runtime, runtime.namespace(), d).await;
    }
    let details = container_details(runtime, &observed.runtime.containers).await?;
    // The trial rule is part of what the loop converges to: an ended, unconverted trial is
    // suspended, and a suspended container is then in sync, not drift.
    let opts = PlanOptions {
        namespace: runtime.namespace().to_string(),
        revision: revision.unwrap_or_default().to_string(),
        prune: false,
        tenants: tenants.to_vec(),
    };
    let planned = desired
        .map(|d| crate::reconcile::plan_revision(d, &observed, &opts, crate::plan::trial::now()));
    let desired = planned.as_ref().map(|p| &*p.effective);
    let plan = planned.as_ref().map(|p| &p.plan);
    let mut statuses = compute(&Inputs {
        desired,
        observed: &observed,
        plan,
        details: &details,
        namespace: runtime.namespace(),
        tenants,
    });
    let storage = store.latest_storage(None).await?;
    for s in &mut statuses {
        s.storage_bytes = storage.get(&s.slug).map(|(_, bytes)| *bytes);
    }
    let (leader, loops) = tokio::join!(store.leader(), crate::watch::presence::loops(store));
    let present: Vec<String> = loops?.into_iter().map(|r| r.holder).collect();
    let reconciler = super::Reconciler::of(leader?.as_ref(), &present);
    Ok(Report {
        revision: revision.map(str::to_string),
        namespace: runtime.namespace().to_string(),
        runtime: observed.runtime.kind,
        error,
        summary: Summary::of(&statuses),
        tenants: statuses,
        reconciler: Some(reconciler),
    })
}
