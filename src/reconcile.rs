//! The one reconcile path every command goes through: plan a revision (the trial rule, then the
//! planner, then the trial notes), and apply an approved plan under the apply lock.
//!
//! `plan`, `apply`, `keys rotate`, `status`, `watch` and the dashboard plan with
//! [`plan_revision`]; `apply`, `keys rotate` and every watch pass (the dashboard's syncs are
//! watch passes) apply with [`apply`] or [`apply_after`]. What differs between them is said in
//! an [`ApplyRequest`], never written out again.

use crate::apply::lock::{ApplyLock, LockError};
use crate::apply::{self, Applier, ApplyConfig, ApplyError, Progress, Report};
use crate::model::DesiredState;
use crate::plan::trial::{self, TrialEnded};
use crate::plan::{self, ObservedState, Plan, PlanOptions};
use crate::runtime::probe::ProbeTarget;
use crate::runtime::{ObservedRuntime, Runtime, RuntimeError};
use crate::store::{Store, StoreError};
use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A revision planned against one observation.
#[derive(Debug)]
pub struct Planned<'a> {
    pub plan: Plan,
    /// The desired state with the trial rule applied (borrowed when no trial has ended).
    pub effective: Cow<'a, DesiredState>,
    /// The trials the rule suspends, whether or not `opts.tenants` names them.
    pub ended: Vec<TrialEnded>,
}

/// The plan of `desired` against `observed` at `now` (unix seconds): an ended, unconverted trial
/// suspends its tenant (the rule the loop converges to), and the plan says so in a note. No IO.
pub fn plan_revision<'a>(
    desired: &'a DesiredState,
    observed: &ObservedState,
    opts: &PlanOptions,
    now: i64,
) -> Planned<'a> {
    let (effective, ended) = trial::apply_trials(desired, &observed.db, now);
    let plan = plan_effective(&effective, &ended, observed, opts);
    Planned {
        plan,
        effective,
        ended,
    }
}

/// The second half of [`plan_revision`], for a caller that already holds the effective desired
/// state and its ended trials (the dashboard plans one tenant of its last observation).
pub fn plan_effective(
    effective: &DesiredState,
    ended: &[TrialEnded],
    observed: &ObservedState,
    opts: &PlanOptions,
) -> Plan {
    let mut plan = plan::compute(effective, observed, opts);
    for e in ended
        .iter()
        .filter(|e| opts.tenants.is_empty() || opts.tenants.contains(&e.slug))
    {
        plan.notes.push(format!(
            "the trial of `{}` ended on {}: it stays suspended until `billing: {{converted: true}}` is committed",
            e.slug,
            trial::date(e.ended_at)
        ));
    }
    plan
}

/// The engine and the database, observed at once; with `probe`, what a customer reaches of each
/// of its tenants' running containers too (see [`probe`]).
pub async fn observe(
    runtime: &Runtime,
    store: &Store,
    probe: Option<&DesiredState>,
) -> Result<ObservedState, ReconcileError> {
    let (containers, db) = tokio::join!(runtime.observe(), store.observe());
    let mut observed = ObservedState {
        runtime: containers?,
        db: db?,
    };
    if let Some(desired) = probe {
        self::probe(&mut observed.runtime, runtime.namespace(), desired).await;
        edge_routes(runtime, &mut observed.runtime, desired).await;
    }
    tracing::debug!(
        containers = observed.runtime.containers.len(),
        networks = observed.runtime.networks.len(),
        volumes = observed.runtime.volumes.len(),
        tenant_rows = observed.db.tenants.len(),
        database = %store.redacted_url(),
        "observed actual state"
    );
    Ok(observed)
}

/// Where each tenant of `desired` that has a container in `observed` answers inside it: its
/// theme's port and health path. Only the observed tenants: the applier probes one tenant's
/// share at a time, and a map of every tenant per tenant would grow with the square of them.
pub fn probe_targets(
    desired: &DesiredState,
    observed: &ObservedRuntime,
) -> HashMap<String, ProbeTarget> {
    let present: std::collections::BTreeSet<&str> = observed
        .containers
        .iter()
        .filter_map(|c| c.tenant.as_deref())
        .collect();
    present
        .into_iter()
        .filter_map(|slug| Some((slug, desired.tenants.get(slug)?)))
        .filter_map(|(slug, t)| {
            let theme = desired.themes.get(&t.theme)?;
            Some((
                slug.to_string(),
                ProbeTarget {
                    port: theme.port,
                    path: theme.health_path.clone(),
                },
            ))
        })
        .collect()
}

/// Asks each running container of `desired`'s tenants for its health path through its
/// loopback published port (docker backend), within the process's probe timeout, and keeps
/// the answer in the container's `probe`, where the planner and status read it. Only the
/// commands that plan call this; `logs` and the meter never wait for it.
pub async fn probe(observed: &mut ObservedRuntime, namespace: &str, desired: &DesiredState) {
    let targets = probe_targets(desired, observed);
    crate::runtime::probe::probe_runtime(
        observed,
        namespace,
        &targets,
        crate::runtime::probe::timeout(),
    )
    .await;
    // Behind an edge, also what a customer reaches at the tenant's host (status judges by it).
    let Some(edge) = &desired.edge else { return };
    let Ok(addr) = edge.http.parse::<std::net::SocketAddr>() else {
        return;
    };
    // An edge on every address is asked on loopback, never elsewhere.
    let addr = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => {
            std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    };
    let hosts: HashMap<String, (String, String)> = targets
        .keys()
        .filter_map(|slug| {
            let t = desired.tenants.get(slug)?;
            let host = edge.hosts_of(t).into_iter().next()?;
            let path = desired.themes.get(&t.theme)?.health_path.clone();
            Some((slug.clone(), (host, path)))
        })
        .collect();
    crate::runtime::probe::probe_via_edge(
        observed,
        namespace,
        addr,
        &hosts,
        crate::runtime::probe::timeout(),
    )
    .await;
}

/// Asks the namespace's running edge which routes it holds (`GET /routes`, with the token read
/// from its container), for the planner to compare with the routes it wants. Only with an edge
/// in git; a failure is kept and shown as a note.
pub async fn edge_routes(
    runtime: &Runtime,
    observed: &mut ObservedRuntime,
    desired: &DesiredState,
) {
    let (Some(edge), Some(found)) = (&desired.edge, observed.edge.as_mut()) else {
        return;
    };
    if !found.container.state.is_running() {
        return;
    }
    let answer = crate::apply::connect_edge(runtime, found, &edge.admin).await;
    found.routes = Some(answer.map(|(_, table)| table));
}

/// Which of the fresh plan's changes are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// All of them (plan and theme records included).
    Plan,
    /// Only the changes of the tenants `opts.tenants` names, not the plan and theme records
    /// (`keys rotate` replaces one tenant's container and nothing else).
    TenantsOnly,
}

/// How many tenants' containers (services) one apply may remove: a count, or a share of the
/// tenants running in the namespace. Removing every one is refused whatever the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyLimit {
    Count(usize),
    Percent(u8),
}

impl Default for DestroyLimit {
    /// More than half is refused.
    fn default() -> DestroyLimit {
        DestroyLimit::Percent(50)
    }
}

impl std::str::FromStr for DestroyLimit {
    type Err = String;

    /// `50%` or `3`.
    fn from_str(text: &str) -> Result<DestroyLimit, String> {
        let t = text.trim();
        let bad =
            || format!("`{text}`: write a share such as 50% (0% to 100%) or a count such as 3");
        match t.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(DestroyLimit::Percent(p)),
                _ => Err(bad()),
            },
            None => t.parse().map(DestroyLimit::Count).map_err(|_| bad()),
        }
    }
}

impl std::fmt::Display for DestroyLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DestroyLimit::Count(n) => write!(f, "{n}"),
            DestroyLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl DestroyLimit {
    /// How many of `running` tenants may lose their container in one apply.
    pub fn allows(self, running: usize) -> usize {
        match self {
            DestroyLimit::Count(n) => n,
            DestroyLimit::Percent(p) => running * usize::from(p) / 100,
        }
    }
}

/// A plan that removes the containers of too many tenants (a revision without `tenants/`, a
/// bad merge, a wrong `--repo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MassDestroy {
    /// The tenants whose container (service) the plan removes, by slug.
    pub tenants: Vec<String>,
    /// The tenants with a container (service) in the namespace now.
    pub running: usize,
    pub limit: DestroyLimit,
}

impl std::fmt::Display for MassDestroy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const SHOWN: usize = 20;
        let mut names = self
            .tenants
            .iter()
            .take(SHOWN)
            .map(|t| crate::model::printable(t).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        if self.tenants.len() > SHOWN {
            names.push_str(&format!(" and {} more", self.tenants.len() - SHOWN));
        }
        let why = if self.tenants.len() >= self.running {
            "every tenant".to_string()
        } else {
            format!("more than --max-destroy {} allows", self.limit)
        };
        write!(
            f,
            "this plan removes the containers of {} of the {} tenants in the namespace ({names}): {why}. A revision without tenants/ (a bad merge, a wrong --repo)? If it is meant, apply it with --allow-destroy",
            self.tenants.len(),
            self.running
        )
    }
}

/// The plan's removals of tenants' containers (services), if they are more than `limit` allows
/// of the tenants that have one now, or all of them. A blue/green `-next` leftover is not its
/// tenant's container. No IO.
pub fn mass_destroy(
    plan: &Plan,
    observed: &ObservedState,
    limit: DestroyLimit,
) -> Option<MassDestroy> {
    use crate::plan::{Action, Resource};
    use std::collections::BTreeSet;
    let primary = |slug: &str| format!("{}-{slug}", plan.namespace);
    let running: BTreeSet<&str> = observed
        .runtime
        .containers
        .iter()
        .filter_map(|c| c.tenant.as_deref().filter(|t| c.name == primary(t)))
        .collect();
    let removed: BTreeSet<&str> = plan
        .changes
        .iter()
        .filter(|c| {
            matches!(c.resource, Resource::Container | Resource::Service)
                && c.action == Action::Destroy
        })
        .filter_map(|c| c.tenant.as_deref().filter(|t| c.name == primary(t)))
        .collect();
    let too_many = removed.len() > limit.allows(running.len()) || removed.len() >= running.len();
    (!removed.is_empty() && too_many).then(|| MassDestroy {
        tenants: removed.iter().map(|t| t.to_string()).collect(),
        running: running.len(),
        limit,
    })
}

/// What the caller's output says as the apply starts; each command keeps its own wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announce {
    Nothing,
    /// A blank line before any progress (`apply`: it sets the progress apart from the plan shown).
    BlankLine,
    /// `{why}: applying N changes`, once the trial ends are recorded (a watch pass).
    Applying {
        why: String,
    },
}

/// One apply through the shared path: what to plan, how to apply it, and how the caller differs.
#[derive(Debug)]
pub struct ApplyRequest<'a> {
    /// The revision's desired state as loaded (the trial rule is applied under the lock).
    pub desired: &'a DesiredState,
    pub opts: PlanOptions,
    pub config: ApplyConfig,
    /// How long to wait for another holder of the apply lock; zero tries once.
    pub lock_wait: Duration,
    /// The plan a person approved: a fresh plan with other changes is refused, not applied.
    pub approved: Option<&'a Plan>,
    pub scope: Scope,
    /// Record a `tenant.trial-ended` event for each ended trial the plan acts on.
    pub record_trial_ends: bool,
    pub announce: Announce,
    /// A plan removing more tenants' containers than this is refused
    /// ([`ReconcileError::MassDestroy`]); `None` allows it (`--allow-destroy`).
    pub max_destroy: Option<DestroyLimit>,
}

/// What an apply did.
#[derive(Debug)]
pub struct Applied {
    /// The plan made under the lock, as applied.
    pub plan: Plan,
    pub report: Report,
    /// The effective desired state it was applied towards.
    pub effective: Arc<DesiredState>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The apply lock is held by someone else (`LockError::Locked`), or could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(
        "the actual state changed while the plan was shown (another apply or a manual change); nothing was applied. Run apply again to see the new plan"
    )]
    Changed,
    /// The plan removes too many tenants' containers; nothing was applied.
    #[error("refusing to apply: {0}; nothing was applied")]
    MassDestroy(MassDestroy),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The caller's own first step under the lock failed.
    #[error(transparent)]
    First(anyhow::Error),
}

/// Applies `request` under the apply lock: take it, re-observe, re-plan, refuse a plan other
/// than the approved one or one that removes too many tenants ([`mass_destroy`]), record trial
/// ends, run the [`Applier`], release it.
pub async fn apply(
    runtime: &Runtime,
    store: &Store,
    progress: Arc<dyn Progress>,
    request: ApplyRequest<'_>,
) -> Result<Applied, ReconcileError> {
    apply_after(runtime, store, progress, request, async { Ok(()) }).await
}

/// [`apply`], with `first` run once the lock is held and before anything is observed (`keys
/// rotate` stores the new key's digest there, so the re-plan sees the container's stale one).
pub async fn apply_after(
    runtime: &Runtime,
    store: &Store,
    progress: Arc<dyn Progress>,
    request: ApplyRequest<'_>,
    first: impl Future<Output = anyhow::Result<()>>,
) -> Result<Applied, ReconcileError> {
    let lock = ApplyLock::acquire(store, request.lock_wait).await?;
    let applied = async {
        first.await.map_err(ReconcileError::First)?;
        // The state may have moved since the plan was made or shown: plan again under the lock.
        let observed = observe(runtime, store, Some(request.desired)).await?;
        let Planned {
            mut plan,
            effective,
            ended,
        } = plan_revision(request.desired, &observed, &request.opts, trial::now());
        if request.scope == Scope::TenantsOnly {
            let tenants = &request.opts.tenants;
            plan.changes
                .retain(|c| c.tenant.as_ref().is_some_and(|t| tenants.contains(t)));
        }
        if let Some(approved) = request.approved
            && !plan.same_changes(approved)
        {
            return Err(ReconcileError::Changed);
        }
        if let Some(refused) = request
            .max_destroy
            .and_then(|limit| mass_destroy(&plan, &observed, limit))
        {
            return Err(ReconcileError::MassDestroy(refused));
        }
        if request.announce == Announce::BlankLine {
            progress.line(None, "");
        }
        if request.record_trial_ends {
            apply::record_trial_ends(store, &ended, &plan.changes, &*progress).await;
        }
        if let Announce::Applying { why } = &request.announce {
            progress.line(
                None,
                &format!("{why}: applying {} changes", plan.changes.len()),
            );
        }
        let effective = Arc::new(effective.into_owned());
        let report = Applier::new(
            runtime.clone(),
            store.clone(),
            request.config,
            effective.clone(),
            progress,
        )
        .run(&plan.changes)
        .await?;
        Ok(Applied {
            plan,
            report,
            effective,
        })
    }
    .await;
    lock.release().await;
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SourceContent, SourceFile, TenantState};
    use crate::plan::converged::converged;
    use crate::plan::render;

    /// Plan `p` with a trial, and tenants `a` and `b` on it, neither converted.
    fn desired() -> DesiredState {
        let tenant = |slug: &str| {
            format!(
                "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug}\n  owner: {slug}@a.example\n  plan: p\n  theme: t\n"
            )
        };
        let files = [
            (
                "plans/p.yaml",
                "kind: Plan\nname: p\nspec:\n  displayName: P\n  price: { amount: 1, currency: USD, cycle: monthly }\n  trialDays: 14\n  resources: { cpus: 1, memory: 64Mi }\n".to_string(),
            ),
            (
                "themes/t.yaml",
                "kind: Theme\nname: t\nspec: { displayName: T, version: 1.0.0 }\n".to_string(),
            ),
            ("tenants/a.yaml", tenant("a")),
            ("tenants/b.yaml", tenant("b")),
        ];
        let files: Vec<SourceFile> = files
            .iter()
            .map(|(path, text)| SourceFile {
                path: path.to_string(),
                content: SourceContent::Bytes(text.clone().into_bytes()),
            })
            .collect();
        crate::model::load(&files).unwrap()
    }

    fn opts(tenants: &[&str]) -> PlanOptions {
        PlanOptions {
            namespace: "ns".into(),
            revision: "r".into(),
            prune: false,
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Converged on `desired`, with `a`'s trial ending at 1 000 000.
    fn observed(desired: &DesiredState) -> ObservedState {
        let mut observed = converged(desired, &opts(&[]));
        observed.db.tenants.get_mut("a").unwrap().trial_ends_at = Some(1_000_000);
        observed
    }

    fn addresses(plan: &Plan) -> Vec<String> {
        plan.changes.iter().map(|c| c.address()).collect()
    }

    #[test]
    fn a_running_trial_plans_nothing() {
        let desired = desired();
        let planned = plan_revision(&desired, &observed(&desired), &opts(&[]), 999_999);
        assert!(planned.plan.is_empty() && planned.plan.notes.is_empty());
        assert!(planned.ended.is_empty());
        assert!(matches!(planned.effective, Cow::Borrowed(_)));
    }

    #[test]
    fn an_ended_trial_suspends_its_tenant_with_a_note() {
        let desired = desired();
        let planned = plan_revision(&desired, &observed(&desired), &opts(&[]), 1_000_000);
        assert_eq!(
            planned.ended,
            [TrialEnded {
                slug: "a".into(),
                ended_at: 1_000_000
            }]
        );
        assert_eq!(planned.effective.tenants["a"].state, TenantState::Suspended);
        assert_eq!(planned.effective.tenants["b"].state, TenantState::Active);
        assert_eq!(
            addresses(&planned.plan),
            ["container.ns-a", "tenant-record.a"]
        );
        assert_eq!(
            planned.plan.notes,
            [
                "the trial of `a` ended on 1970-01-12: it stays suspended until `billing: {converted: true}` is committed"
            ]
        );
    }

    #[test]
    fn the_tenant_filter_limits_changes_and_notes_but_not_the_rule() {
        let desired = desired();
        let observed = observed(&desired);

        let other = plan_revision(&desired, &observed, &opts(&["b"]), 2_000_000);
        assert!(other.plan.is_empty() && other.plan.notes.is_empty());
        assert_eq!(other.ended.len(), 1, "the rule still sees every tenant");
        assert_eq!(other.effective.tenants["a"].state, TenantState::Suspended);

        let named = plan_revision(&desired, &observed, &opts(&["a"]), 2_000_000);
        assert_eq!(
            addresses(&named.plan),
            ["container.ns-a", "tenant-record.a"]
        );
        assert_eq!(named.plan.notes.len(), 1);
    }

    #[test]
    fn destroy_limits_read_as_shares_or_counts() {
        assert_eq!("50%".parse(), Ok(DestroyLimit::Percent(50)));
        assert_eq!("3".parse(), Ok(DestroyLimit::Count(3)));
        assert!("101%".parse::<DestroyLimit>().is_err());
        assert!("half".parse::<DestroyLimit>().is_err());
        assert_eq!(DestroyLimit::default().allows(6), 3);
        assert_eq!(DestroyLimit::Percent(50).allows(1), 0);
        assert_eq!(DestroyLimit::Count(2).allows(100), 2);
    }

    /// `desired` with only the tenants named in `keep` (the others removed from git).
    fn without(desired: &DesiredState, keep: &[&str]) -> DesiredState {
        let mut d = desired.clone();
        d.tenants.retain(|slug, _| keep.contains(&slug.as_str()));
        d
    }

    #[test]
    fn removing_every_tenant_or_more_than_the_limit_is_a_mass_destroy() {
        let desired = desired();
        let observed = converged(&desired, &opts(&[]));
        let plan = |d: &DesiredState| plan_revision(d, &observed, &opts(&[]), 0).plan;

        let none = plan(&without(&desired, &[]));
        let refused = mass_destroy(&none, &observed, DestroyLimit::default()).expect("refused");
        assert_eq!(
            (refused.tenants.clone(), refused.running),
            (vec!["a".into(), "b".into()], 2)
        );
        let text = refused.to_string();
        assert!(
            text.contains(
                "removes the containers of 2 of the 2 tenants in the namespace (a, b): every tenant"
            ) && text.contains("--allow-destroy"),
            "{text}"
        );
        // Every tenant is refused whatever the limit.
        assert!(mass_destroy(&none, &observed, DestroyLimit::Count(5)).is_some());

        // One of two is half, not more than half: allowed by default, refused by a count of 0.
        let one = plan(&without(&desired, &["b"]));
        assert!(mass_destroy(&one, &observed, DestroyLimit::default()).is_none());
        let zero = mass_destroy(&one, &observed, DestroyLimit::Count(0)).expect("refused");
        assert!(
            zero.to_string()
                .contains("more than --max-destroy 0 allows"),
            "{zero}"
        );
        // A plan without removals is never refused.
        assert!(mass_destroy(&plan(&desired), &observed, DestroyLimit::Count(0)).is_none());
    }

    #[test]
    fn plan_effective_is_the_second_half_of_plan_revision() {
        let desired = desired();
        let observed = observed(&desired);
        let whole = plan_revision(&desired, &observed, &opts(&["a"]), 1_500_000);
        let half = plan_effective(&whole.effective, &whole.ended, &observed, &opts(&["a"]));
        assert_eq!(render::json(&half), render::json(&whole.plan));
    }
}
