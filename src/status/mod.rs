//! Per-tenant sync state and health, the way Argo CD shows applications.
//!
//! Sync says whether the planner, run against the HEAD revision, would change anything for the
//! tenant; health says whether its container serves. [`compute`] is a pure function of the
//! desired state, the observed state and the plan; [`gather`] does the IO around it.

/// The version of this command's `-o json` document (`format_version`).
pub const FORMAT_VERSION: u32 = 1;

mod gather;
pub mod render;
pub mod time;

#[cfg(test)]
mod tests;

pub use gather::{StatusError, container_details, gather};

use crate::model::quantity::format_bytes;
use crate::model::{DesiredState, TenantState};
use crate::plan::{Change, ObservedState, Plan, Resource};
pub use crate::runtime::types::ContainerDetail;
use crate::runtime::types::{ContainerState, ObservedContainer, container_name};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Does the observed state match git at HEAD?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SyncStatus {
    Synced,
    OutOfSync,
    /// The revision is invalid (or could not be read): nothing to compare with.
    Unknown,
}

/// Does the tenant's site serve?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Health {
    /// Running, and its health check passes (or it has none).
    Healthy,
    /// Health check starting, restarting, or created and not started yet.
    Progressing,
    /// Unhealthy, exited while active, dead, OOM-killed, crash-looping or paused.
    Degraded,
    /// Suspended (or cancelled) on purpose and its container is stopped (or gone, if cancelled).
    Suspended,
    /// Active (or suspended) in git but there is no container.
    Missing,
    Unknown,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Synced => "Synced",
            SyncStatus::OutOfSync => "OutOfSync",
            SyncStatus::Unknown => "Unknown",
        }
    }
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::Progressing => "Progressing",
            Health::Degraded => "Degraded",
            Health::Suspended => "Suspended",
            Health::Missing => "Missing",
            Health::Unknown => "Unknown",
        }
    }
}

/// One tenant's row of `tenantctl status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantStatus {
    pub slug: String,
    pub sync: SyncStatus,
    /// The planner's changes for this tenant, one line each: address, verb, reasons.
    pub sync_reasons: Vec<String>,
    pub health: Health,
    pub health_reason: Option<String>,
    pub plan: Option<String>,
    pub theme: Option<String>,
    /// Lifecycle state: git's (`cancelled` once removed from git), else the database row's.
    pub state: Option<String>,
    /// The commit last applied to this tenant (full id).
    pub applied_revision: Option<String>,
    pub url: Option<String>,
    pub last_error: Option<String>,
    #[serde(serialize_with = "serialize_time")]
    pub trial_ends_at: Option<i64>,
    /// What a customer reaches: the GET of the health path through the loopback published
    /// port (docker backend, running containers; `None` when not probed).
    pub probe: Option<crate::runtime::types::Probe>,
    /// The commit the last apply tried for this tenant (full id); differs from
    /// `applied_revision` while a change is pending or failed.
    pub desired_revision: Option<String>,
    /// What git wants beside what runs (the row's settings), when they differ or the last
    /// apply failed: `wants theme `classic` (revision abc1234), runs theme `modern`: last error: …`.
    pub pending: Option<String>,
    /// Provisioning progress from the row: the step an apply is at (`network` … `record`),
    /// `done` or `failed`; none before any apply changed the tenant on the engine.
    pub progress_step: Option<String>,
    /// 0..=100: the share of the tenant's provisioning steps finished.
    pub progress_percent: Option<i64>,
    /// The step the last failure happened at (beside `last_error`).
    pub error_step: Option<String>,
    /// The data volume's size as the meter last measured it (filled by `gather`).
    pub storage_bytes: Option<i64>,
    /// The plan's `storage` (None: unlimited).
    pub storage_limit_bytes: Option<i64>,
}

fn serialize_time<S: serde::Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&time::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// Everything [`compute`] reads; nothing here does IO.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `None` when the revision is invalid: every tenant's sync is Unknown.
    pub desired: Option<&'a DesiredState>,
    pub observed: &'a ObservedState,
    /// The planner's output for `desired` against `observed` (`None` with `desired`).
    pub plan: Option<&'a Plan>,
    /// By container id; see [`ContainerDetail`].
    pub details: &'a HashMap<String, ContainerDetail>,
    pub namespace: &'a str,
    /// Only these tenants; empty means every tenant in git, the database or the engine.
    pub tenants: &'a [String],
}

/// Counts by sync state and by health, every key present (zero or not) so scripts can index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub tenants: usize,
    pub sync: SyncCounts,
    pub health: HealthCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncCounts {
    #[serde(rename = "Synced")]
    pub synced: usize,
    #[serde(rename = "OutOfSync")]
    pub out_of_sync: usize,
    #[serde(rename = "Unknown")]
    pub unknown: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HealthCounts {
    #[serde(rename = "Healthy")]
    pub healthy: usize,
    #[serde(rename = "Progressing")]
    pub progressing: usize,
    #[serde(rename = "Degraded")]
    pub degraded: usize,
    #[serde(rename = "Suspended")]
    pub suspended: usize,
    #[serde(rename = "Missing")]
    pub missing: usize,
    #[serde(rename = "Unknown")]
    pub unknown: usize,
}

impl Summary {
    pub fn of(tenants: &[TenantStatus]) -> Summary {
        Summary::of_counts(tenants.iter().map(|t| (Some(t.sync), Some(t.health))))
    }

    /// Counts (sync, health) pairs; a missing value counts as Unknown.
    pub fn of_counts(
        tenants: impl IntoIterator<Item = (Option<SyncStatus>, Option<Health>)>,
    ) -> Summary {
        let mut s = Summary::default();
        for (sync, health) in tenants {
            s.tenants += 1;
            *match sync.unwrap_or(SyncStatus::Unknown) {
                SyncStatus::Synced => &mut s.sync.synced,
                SyncStatus::OutOfSync => &mut s.sync.out_of_sync,
                SyncStatus::Unknown => &mut s.sync.unknown,
            } += 1;
            *match health.unwrap_or(Health::Unknown) {
                Health::Healthy => &mut s.health.healthy,
                Health::Progressing => &mut s.health.progressing,
                Health::Degraded => &mut s.health.degraded,
                Health::Suspended => &mut s.health.suspended,
                Health::Missing => &mut s.health.missing,
                Health::Unknown => &mut s.health.unknown,
            } += 1;
        }
        s
    }
}

/// The whole answer of `tenantctl status`: what `--output json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The HEAD commit compared against (full id); `None` if it could not be read.
    pub revision: Option<String>,
    pub namespace: String,
    /// What tenants run as: `docker` containers or `swarm` services.
    pub runtime: crate::runtime::RuntimeKind,
    /// Why sync is Unknown for every tenant (an invalid revision), shown once.
    pub error: Option<String>,
    pub tenants: Vec<TenantStatus>,
    pub summary: Summary,
    /// Who reconciles: the leader lease and the loops standing by (`None`: not read).
    pub reconciler: Option<Reconciler>,
}

/// The reconcile loops of this database: the leader lease, and who stands by.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciler {
    /// The lease as it stands, live or lapsed; `None` if no loop ever led here.
    pub leader: Option<LeaderStatus>,
    /// Loops present (alive) that do not hold the lease, by holder (`host:pid:start:role`).
    pub standbys: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaderStatus {
    pub holder: String,
    pub host: String,
    pub term: i64,
    /// The lease has not lapsed (by the database's clock).
    pub live: bool,
    #[serde(serialize_with = "serialize_ms")]
    pub acquired_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub renewed_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub expires_at: i64,
    /// Milliseconds until the lease lapses (negative: since it lapsed), by the database's clock.
    pub expires_in_ms: i64,
    /// Milliseconds since the last renewal, by the database's clock.
    pub renewed_ms_ago: i64,
}

fn serialize_ms<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&time::rfc3339(ms.div_euclid(1000)))
}

impl Reconciler {
    /// From the lease row and the presence rows of live loops. Pure.
    pub fn of(leader: Option<&crate::store::LeaderRow>, present: &[String]) -> Reconciler {
        let leader = leader.map(|l| LeaderStatus {
            holder: l.holder.clone(),
            host: l.host.clone(),
            term: l.term,
            live: l.live(),
            acquired_at: l.acquired_at_ms,
            renewed_at: l.renewed_at_ms,
            expires_at: l.expires_at_ms,
            expires_in_ms: l.expires_in_ms(),
            renewed_ms_ago: l.now_ms - l.renewed_at_ms,
        });
        let leading = leader
            .as_ref()
            .filter(|l| l.live)
            .map(|l| l.holder.as_str());
        let mut standbys: Vec<String> = present
            .iter()
            .filter(|h| Some(h.as_str()) != leading)
            .cloned()
            .collect();
        standbys.sort();
        standbys.dedup();
        Reconciler { leader, standbys }
    }
}

/// What git wants for the tenant's lifecycle, as far as it can be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Active,
    Suspended,
    /// Cancelled in git, or removed from it.
    Gone,
}

/// Sync and health of every tenant (sorted by slug). Pure.
pub fn compute(inputs: &Inputs<'_>) -> Vec<TenantStatus> {
    let observed = inputs.observed;
    let mut by_tenant: HashMap<&str, Vec<&ObservedContainer>> = HashMap::new();
    for c in &observed.runtime.containers {
        if let Some(t) = c.tenant.as_deref() {
            by_tenant.entry(t).or_default().push(c);
        }
    }
    let mut changes: HashMap<&str, Vec<&Change>> = HashMap::new();
    let mut records: BTreeMap<(Resource, &str), Vec<&Change>> = BTreeMap::new();
    for c in inputs
        .plan
        .map(|p| p.changes.as_slice())
        .unwrap_or_default()
    {
        match (&c.tenant, c.resource) {
            (Some(t), _) => changes.entry(t.as_str()).or_default().push(c),
            (None, r @ (Resource::PlanRecord | Resource::ThemeRecord)) => {
                records.entry((r, c.name.as_str())).or_default().push(c)
            }
            // Unlabelled leftovers (--prune) belong to no tenant.
            (None, _) => {}
        }
    }

    let mut slugs: BTreeSet<&str> = BTreeSet::new();
    if let Some(d) = inputs.desired {
        slugs.extend(d.tenants.keys().map(String::as_str));
    }
    slugs.extend(observed.db.tenants.keys().map(String::as_str));
    slugs.extend(by_tenant.keys().copied());
    slugs.extend(
        observed
            .runtime
            .networks
            .iter()
            .filter_map(|n| n.tenant.as_deref()),
    );
    slugs
        .into_iter()
        .filter(|s| inputs.tenants.is_empty() || inputs.tenants.iter().any(|t| t == s))
        .map(|slug| {
            let wanted = inputs.desired.and_then(|d| d.tenants.get(slug));
            let row = observed.db.tenants.get(slug);
            let intent = match (inputs.desired, wanted) {
                (Some(_), Some(t)) => match t.state {
                    TenantState::Active => Intent::Active,
                    TenantState::Suspended => Intent::Suspended,
                    TenantState::Cancelled => Intent::Gone,
                },
                (Some(_), None) => Intent::Gone,
                // No valid revision: the database holds the last state applied.
                (None, _) => match row.map(|r| r.state.as_str()) {
                    Some("suspended") => Intent::Suspended,
                    Some("cancelled") => Intent::Gone,
                    _ => Intent::Active,
                },
            };
            let (sync, sync_reasons) = match inputs.desired {
                None => (SyncStatus::Unknown, Vec::new()),
                Some(_) => {
                    let mut own: Vec<&Change> = Vec::new();
                    // A plan or theme row the SaaS reads for this tenant is out of date too.
                    if let Some(t) = wanted {
                        for key in [
                            (Resource::PlanRecord, t.plan.as_str()),
                            (Resource::ThemeRecord, t.theme.as_str()),
                        ] {
                            own.extend(records.get(&key).into_iter().flatten());
                        }
                    }
                    own.extend(changes.get(slug).into_iter().flatten());
                    let reasons: Vec<String> = own.iter().map(|c| describe(c)).collect();
                    let sync = if reasons.is_empty() {
                        SyncStatus::Synced
                    } else {
                        SyncStatus::OutOfSync
                    };
                    (sync, reasons)
                }
            };
            let primary = container_name(inputs.namespace, slug);
            let mut mine = by_tenant.get(slug).cloned().unwrap_or_default();
            mine.sort_by_key(|c| (c.name != primary, c.name.clone()));
            let container = mine.first().copied();
            let detail = container.and_then(|c| inputs.details.get(&c.id));
            let (health, health_reason) = match container.and_then(|c| c.service.as_ref()) {
                Some(service) => service_health(intent, service, sync == SyncStatus::OutOfSync),
                None => reached(health(intent, container, detail), container),
            };
            let theme = wanted
                .map(|t| t.theme.clone())
                .or_else(|| row.map(|r| r.theme.clone()));
            let theme_port = theme_port(theme.as_deref(), inputs.desired, &observed.db);
            let direct = current_url(container, theme_port, row.and_then(|r| r.url.as_deref()));
            // Behind an edge, a running tenant is at its edge URL, whatever port it publishes.
            let edge_url = inputs
                .desired
                .and_then(|d| d.edge.as_ref())
                .zip(wanted)
                .and_then(|(edge, t)| edge.url_of(t));
            let url = match (direct, edge_url) {
                (Some(_), Some(edge)) if container.is_some_and(|c| c.state.is_running()) => {
                    Some(edge)
                }
                (direct, _) => direct,
            };
            let state = match (inputs.desired, wanted) {
                (Some(_), Some(t)) => Some(t.state.as_str().to_string()),
                (Some(_), None) => Some("cancelled".to_string()),
                (None, _) => row.map(|r| r.state.clone()),
            };
            TenantStatus {
                slug: slug.to_string(),
                sync,
                sync_reasons,
                health,
                health_reason,
                plan: wanted
                    .map(|t| t.plan.clone())
                    .or_else(|| row.map(|r| r.plan.clone())),
                theme,
                state,
                applied_revision: row.and_then(|r| r.applied_revision.clone()),
                url,
                last_error: row.and_then(|r| r.last_error.clone()),
                trial_ends_at: row.and_then(|r| r.trial_ends_at),
                probe: container.and_then(|c| c.probe.clone()),
                desired_revision: row.and_then(|r| r.desired_revision.clone()),
                pending: row.and_then(|r| pending(r, wanted)),
                progress_step: row.and_then(|r| r.progress_step.clone()),
                progress_percent: row.and_then(|r| r.progress_percent),
                error_step: row.and_then(|r| r.error_step.clone()),
                storage_bytes: None,
                storage_limit_bytes: row
                    .and_then(|r| inputs.observed.db.plans.get(&r.plan))
                    .and_then(|p| p.storage_bytes),
            }
        })
        .collect()
}

/// What git wants for a tenant beside what runs, as the row records it (its settings move only
/// once the tenant converges): `None` when they agree and the last apply did not fail. Pure.
pub fn pending(
    row: &crate::store::TenantRow,
    wanted: Option<&crate::model::Tenant>,
) -> Option<String> {
    let short = |r: &str| r.chars().take(7).collect::<String>();
    let mut wants = Vec::new();
    let mut runs = Vec::new();
    if let Some(t) = wanted {
        for (what, want, run) in [
            ("plan", t.plan.as_str(), row.plan.as_str()),
            ("theme", t.theme.as_str(), row.theme.as_str()),
            ("state", t.state.as_str(), row.state.as_str()),
        ] {
            if want != run {
                wants.push(format!("{what} `{}`", crate::model::printable(want)));
                runs.push(format!("{what} `{}`", crate::model::printable(run)));
            }
        }
        if wants.is_empty() && !crate::plan::records::tenant_matches(row, t) {
            wants.push("new settings (display name, owner, domain or features)".to_string());
        }
    }
    let tried = row
        .desired_revision
        .as_deref()
        .filter(|d| Some(*d) != row.applied_revision.as_deref());
    if wants.is_empty() && row.last_error.is_none() {
        return None;
    }
    let mut text = match (wants.is_empty(), tried) {
        (true, Some(d)) => format!("wants revision {}", short(d)),
        (true, None) => String::new(),
        (false, Some(d)) => format!("wants {} (revision {})", wants.join(", "), short(d)),
        (false, None) => format!("wants {} (not applied yet)", wants.join(", ")),
    };
    let running = match (&row.applied_revision, runs.is_empty()) {
        (None, _) => "runs nothing yet".to_string(),
        (Some(_), false) => format!("runs {}", runs.join(", ")),
        (Some(a), true) if tried.is_some() => format!("runs revision {}", short(a)),
        (Some(_), true) => String::new(),
    };
    if !running.is_empty() {
        if !text.is_empty() {
            text.push_str(", ");
        }
        text.push_str(&running);
    }
    if let Some(e) = &row.last_error {
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&format!("last error: {e}"));
    }
    Some(text)
}

/// The port a theme's site listens on inside its container: git's, else the database row's.
pub fn theme_port(
    theme: Option<&str>,
    desired: Option<&DesiredState>,
    db: &crate::store::ObservedDb,
) -> Option<u16> {
    let theme = theme?;
    desired
        .and_then(|d| d.themes.get(theme))
        .map(|t| t.port)
        .or_else(|| {
            db.themes
                .get(theme)
                .and_then(|t| u16::try_from(t.port).ok())
        })
}

/// Where a tenant answers now: the loopback URL of the port its running workload publishes for
/// the theme's port; none once it stops or publishes nothing (a loopback-only theme on swarm);
/// the `recorded` URL only when the engine shows no workload at all. Pure.
pub fn current_url(
    workload: Option<&ObservedContainer>,
    theme_port: Option<u16>,
    recorded: Option<&str>,
) -> Option<String> {
    let Some(workload) = workload else {
        return recorded.map(str::to_string);
    };
    if !workload.state.is_running() {
        return None;
    }
    // Host port 0: configured for the engine to pick, not bound (yet).
    let bound: Vec<_> = workload
        .published_ports
        .iter()
        .filter(|p| p.host_port != 0)
        .collect();
    let port = bound
        .iter()
        .find(|p| Some(p.container_port) == theme_port)
        .or_else(|| bound.first())?;
    Some(format!("http://127.0.0.1:{}/", port.host_port))
}

/// A tenant's recorded URL that is no longer where its running workload answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlChange {
    pub slug: String,
    pub recorded: Option<String>,
    pub published: String,
}

/// Rows to refresh: in-sync tenants whose workload answers at another URL than their row says.
/// Out-of-sync ones are left to apply, which writes the URL once it converges. Pure.
pub fn url_changes(statuses: &[TenantStatus], db: &crate::store::ObservedDb) -> Vec<UrlChange> {
    statuses
        .iter()
        .filter(|s| s.sync == SyncStatus::Synced)
        .filter_map(|s| {
            let row = db.tenants.get(&s.slug)?;
            let published = s.url.clone()?;
            (row.url.as_ref() != Some(&published)).then(|| UrlChange {
                slug: s.slug.clone(),
                recorded: row.url.clone(),
                published,
            })
        })
        .collect()
}

/// One line for a planned change: `container.tenantctl-acme will be started: tenant is active; …`.
fn describe(c: &Change) -> String {
    if c.reasons.is_empty() {
        format!("{} {}", c.address(), c.action.verb())
    } else {
        format!(
            "{} {}: {}",
            c.address(),
            c.action.verb(),
            c.reasons.join("; ")
        )
    }
}

/// Swarm mode: health from the service's tasks and its last rolling update.
fn service_health(
    intent: Intent,
    s: &crate::runtime::ObservedService,
    out_of_sync: bool,
) -> (Health, Option<String>) {
    let tasks = format!("{}/{} tasks running", s.running, s.replicas);
    let error = s
        .task_error
        .as_deref()
        .map(|e| format!("; last task error: {e}"))
        .unwrap_or_default();
    if s.replicas == 0 {
        return match intent {
            Intent::Active => (
                Health::Degraded,
                Some("scaled to 0 while the tenant is active".into()),
            ),
            Intent::Suspended => (Health::Suspended, Some("suspended: scaled to 0".into())),
            Intent::Gone => (
                Health::Suspended,
                Some("cancelled: scaled to 0 (apply removes the service)".into()),
            ),
        };
    }
    // The engine put the previous spec back: it may run, but not what git asks for.
    if s.rolled_back() && out_of_sync {
        return (
            Health::Degraded,
            Some(format!(
                "the last rolling update failed and was rolled back{} ({tasks})",
                s.update_message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            )),
        );
    }
    if s.update_state.as_deref() == Some("updating") {
        return (
            Health::Progressing,
            Some(format!("rolling update in progress ({tasks})")),
        );
    }
    match s.running {
        n if n >= s.replicas => (Health::Healthy, Some(tasks)),
        0 => (Health::Degraded, Some(format!("{tasks}{error}"))),
        _ => (Health::Degraded, Some(format!("{tasks}{error}"))),
    }
}

/// A container the engine calls healthy serves nobody when its site does not answer through
/// its published port, or it publishes none: that is Degraded, with what a customer gets.
fn reached(
    (health, reason): (Health, Option<String>),
    container: Option<&ObservedContainer>,
) -> (Health, Option<String>) {
    // Through the edge when there is one: what a customer at the tenant's domain gets.
    let probe = container.and_then(|c| c.edge_probe.as_ref().or(c.probe.as_ref()));
    match probe {
        Some(p) if health == Health::Healthy && p.fails() => {
            let at = p
                .url
                .as_deref()
                .map(|u| format!(" on {}", u.trim_start_matches("http://")))
                .unwrap_or_default();
            let why = match p.failure() {
                Some(why) => format!("runs, but does not answer{at}: {why}"),
                None => format!("runs, but {p}"),
            };
            (Health::Degraded, Some(why))
        }
        _ => (health, reason),
    }
}

/// Health from what git wants and what the engine reports.
fn health(
    intent: Intent,
    container: Option<&ObservedContainer>,
    detail: Option<&ContainerDetail>,
) -> (Health, Option<String>) {
    let Some(c) = container else {
        return match intent {
            Intent::Active => (
                Health::Missing,
                Some("active in git but there is no container".into()),
            ),
            Intent::Suspended => (
                Health::Missing,
                Some(
                    "suspended in git but there is no container (apply creates it stopped)".into(),
                ),
            ),
            Intent::Gone => (
                Health::Suspended,
                Some("cancelled: no container; its data volume is kept".into()),
            ),
        };
    };
    let stopped_on_purpose = match intent {
        Intent::Active => None,
        Intent::Suspended => Some("suspended: container stopped"),
        Intent::Gone => Some("cancelled: container stopped (apply removes it)"),
    };
    let detail = detail.cloned().unwrap_or_default();
    let limit = c
        .memory_bytes
        .map(|m| format!(" ({})", format_bytes(m.max(0) as u64)))
        .unwrap_or_default();
    let oom = || {
        (
            Health::Degraded,
            Some(format!(
                "OOM-killed: the container hit its memory limit{limit}"
            )),
        )
    };
    match &c.state {
        ContainerState::Running => match c.health.as_deref() {
            Some("unhealthy") => (
                Health::Degraded,
                Some("running, but its health check fails".into()),
            ),
            Some("starting") => (
                Health::Progressing,
                Some("running; health check starting".into()),
            ),
            Some(_) => (Health::Healthy, None),
            None => (Health::Healthy, Some("running (no health check)".into())),
        },
        ContainerState::Restarting if detail.oom_killed => oom(),
        // Docker backs off between restarts; three or more means it keeps dying.
        ContainerState::Restarting if detail.restart_count >= 3 => (
            Health::Degraded,
            Some(format!(
                "crash-looping: restarted {} times{}",
                detail.restart_count,
                detail
                    .exit_code
                    .map(|c| format!(", last exit code {c}"))
                    .unwrap_or_default()
            )),
        ),
        ContainerState::Restarting => (Health::Progressing, Some("restarting".into())),
        ContainerState::Removing => (Health::Progressing, Some("being removed".into())),
        ContainerState::Dead => (
            Health::Degraded,
            Some("dead: the engine failed to stop or remove it".into()),
        ),
        ContainerState::Created | ContainerState::Exited | ContainerState::Paused => {
            if let Some(why) = stopped_on_purpose {
                return (Health::Suspended, Some(why.into()));
            }
            match &c.state {
                ContainerState::Created => match detail.error.filter(|e| !e.is_empty()) {
                    Some(e) => (Health::Degraded, Some(format!("failed to start: {e}"))),
                    None => (Health::Progressing, Some("created, not started yet".into())),
                },
                ContainerState::Paused => (
                    Health::Degraded,
                    Some("paused while the tenant is active (not serving)".into()),
                ),
                _ if detail.oom_killed => oom(),
                _ => (
                    Health::Degraded,
                    Some(match detail.exit_code {
                        Some(code) => {
                            format!("exited (code {code}) while the tenant is active")
                        }
                        None => "exited while the tenant is active".into(),
                    }),
                ),
            }
        }
        ContainerState::Unknown(s) => (
            Health::Unknown,
            Some(format!("the engine reports state `{s}`")),
        ),
    }
}
