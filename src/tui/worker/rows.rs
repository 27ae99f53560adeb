//! What one poll shows, without IO: each tenant's status joined with live usage, the plan's
//! limits, uptime and its file in git; and the header.

use crate::model::DesiredState;
use crate::runtime::{ObservedContainer, container_name};
use crate::status::TenantStatus;
use crate::store::{ObservedDb, RunRow};
use crate::tui::data::{BoardRow, Header, LoopRunner};
use std::collections::{BTreeMap, HashMap};

pub(super) fn header(
    namespace: &str,
    revision: Option<String>,
    pending_changes: usize,
    runs: &[RunRow],
    reconciler: LoopRunner,
    error: Option<String>,
) -> Header {
    let last = runs.first();
    Header {
        namespace: namespace.to_string(),
        reference: String::new(),
        revision,
        applied_revision: runs
            .iter()
            .find(|r| r.status == "succeeded")
            .map(|r| r.revision.clone()),
        pending_changes,
        last_reconcile: last.map(|r| r.finished_at.unwrap_or(r.started_at)),
        last_reconcile_status: last.map(|r| r.status.clone()),
        reconciler,
        error,
    }
}

/// A container's usage right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Live {
    pub(super) cpu_percent: Option<f64>,
    pub(super) memory_bytes: Option<u64>,
}

/// What the rows are joined from besides the statuses.
pub(super) struct RowInputs<'a> {
    pub(super) desired: Option<&'a DesiredState>,
    pub(super) db: &'a ObservedDb,
    pub(super) containers: &'a [ObservedContainer],
    pub(super) namespace: &'a str,
    /// By container id.
    pub(super) live: &'a HashMap<String, Live>,
    /// This month's counters by tenant: (API calls, AI interactions, when sampled).
    pub(super) api_calls: &'a BTreeMap<String, (i64, i64, i64)>,
}

/// A plan's limits: CPUs, memory bytes and API calls a month; from git, else the database row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Limits {
    pub(super) cpus: Option<f64>,
    pub(super) memory: Option<u64>,
    pub(super) api_calls: Option<i64>,
}

pub(super) fn limits(
    plan: Option<&str>,
    desired: Option<&DesiredState>,
    db: &ObservedDb,
) -> Limits {
    let Some(name) = plan else {
        return Limits::default();
    };
    if let Some(p) = desired.and_then(|d| d.plans.get(name)) {
        return Limits {
            cpus: Some(p.resources.nano_cpus as f64 / 1e9).filter(|c| *c > 0.0),
            memory: Some(p.resources.memory_bytes).filter(|m| *m > 0),
            api_calls: p
                .quotas
                .api_calls_per_month
                .map(|q| i64::try_from(q).unwrap_or(i64::MAX)),
        };
    }
    match db.plans.get(name) {
        Some(p) => Limits {
            cpus: Some(p.nano_cpus as f64 / 1e9).filter(|c| *c > 0.0),
            memory: u64::try_from(p.memory_bytes).ok().filter(|m| *m > 0),
            api_calls: p.api_calls_per_month,
        },
        None => Limits::default(),
    }
}

/// The container a tenant's live numbers come from: a running one first, then its own name.
fn tenant_container<'a>(
    containers: &'a [ObservedContainer],
    namespace: &str,
    slug: &str,
) -> Option<&'a ObservedContainer> {
    let primary = container_name(namespace, slug);
    containers
        .iter()
        .filter(|c| c.tenant.as_deref() == Some(slug))
        .min_by_key(|c| (!c.state.is_running(), c.name != primary, c.name.clone()))
}

/// Status rows joined with live usage, the plan's limits, uptime and the file in git. Pure.
pub(super) fn join_rows(statuses: Vec<TenantStatus>, inputs: &RowInputs<'_>) -> Vec<BoardRow> {
    statuses
        .into_iter()
        .map(|s| {
            let limits = limits(s.plan.as_deref(), inputs.desired, inputs.db);
            let container = tenant_container(inputs.containers, inputs.namespace, &s.slug)
                .filter(|c| c.state.is_running());
            let live = container
                .and_then(|c| inputs.live.get(&c.id))
                .copied()
                .unwrap_or_default();
            BoardRow {
                file: inputs
                    .desired
                    .and_then(|d| d.tenants.get(&s.slug))
                    .map(|t| t.origin.path.clone()),
                api_calls: inputs.api_calls.get(&s.slug).map(|(api, _, _)| *api),
                api_quota: limits.api_calls,
                cpu_percent: live.cpu_percent,
                cpu_limit: limits.cpus,
                memory_bytes: live.memory_bytes,
                memory_limit: limits.memory,
                started_at: container.and_then(|c| c.started_at),
                progress: crate::status::render::progress_note(&s),
                storage_bytes: s.storage_bytes,
                storage_limit: s.storage_limit_bytes,
                slug: s.slug,
                plan: s.plan,
                theme: s.theme,
                state: s.state,
                sync: Some(s.sync),
                health: Some(s.health),
                health_reason: s.health_reason,
                sync_reasons: s.sync_reasons,
                url: s.url,
                probe: s.probe.as_ref().map(ToString::to_string),
                last_error: s.last_error,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{container, desired};
    use super::*;
    use crate::runtime::ContainerState;
    use crate::status::{Health, SyncStatus};

    fn status_of(slug: &str, plan: Option<&str>) -> TenantStatus {
        TenantStatus {
            slug: slug.into(),
            sync: SyncStatus::Synced,
            sync_reasons: vec![],
            health: Health::Healthy,
            health_reason: None,
            plan: plan.map(str::to_string),
            theme: Some("plain".into()),
            state: Some("active".into()),
            applied_revision: None,
            url: Some(format!("http://127.0.0.1:1/{slug}")),
            last_error: None,
            trial_ends_at: None,
            probe: None,
            desired_revision: None,
            pending: None,
            progress_step: None,
            progress_percent: None,
            error_step: None,
            storage_bytes: None,
            storage_limit_bytes: None,
        }
    }

    #[test]
    fn rows_join_status_usage_limits_and_files() {
        let d = desired();
        let mut db = ObservedDb::default();
        db.plans.insert(
            "legacy".into(),
            crate::store::PlanRow {
                name: "legacy".into(),
                display_name: "Legacy".into(),
                price_cents: 0,
                currency: "USD".into(),
                cycle: "monthly".into(),
                trial_days: 0,
                nano_cpus: 2_000_000_000,
                memory_bytes: 1 << 30,
                pids: 100,
                storage_bytes: None,
                api_calls_per_month: None,
                ai_interactions_per_month: None,
                users: None,
                rate_limit_rpm: None,
                features: "[]".into(),
                revision: "r".into(),
                updated_at: 0,
            },
        );
        let containers = [
            // A stopped leftover and the running replacement: the running one counts.
            container("old", "acme", "ns-acme", ContainerState::Exited),
            container("new", "acme", "ns-acme-next", ContainerState::Running),
            container("h", "hooli", "ns-hooli", ContainerState::Exited),
        ];
        let live = HashMap::from([
            (
                "new".to_string(),
                Live {
                    cpu_percent: Some(12.5),
                    memory_bytes: Some(100),
                },
            ),
            (
                "h".to_string(),
                Live {
                    cpu_percent: Some(99.0),
                    memory_bytes: Some(1),
                },
            ),
        ]);
        let api = BTreeMap::from([("acme".to_string(), (42, 0, 0))]);
        let rows = join_rows(
            vec![
                status_of("acme", Some("starter")),
                status_of("hooli", Some("starter")),
                status_of("gone", Some("legacy")),
            ],
            &RowInputs {
                desired: Some(&d),
                db: &db,
                containers: &containers,
                namespace: "ns",
                live: &live,
                api_calls: &api,
            },
        );
        let acme = &rows[0];
        assert_eq!(acme.slug, "acme");
        assert_eq!(
            (acme.cpu_percent, acme.memory_bytes),
            (Some(12.5), Some(100))
        );
        assert_eq!(acme.cpu_limit, Some(0.5));
        assert_eq!(acme.memory_limit, Some(256 << 20));
        assert_eq!((acme.api_calls, acme.api_quota), (Some(42), Some(10_000)));
        assert_eq!(acme.started_at, Some(1_000));
        assert_eq!(acme.file.as_deref(), Some("tenants/two.yaml"));
        assert_eq!(acme.sync, Some(SyncStatus::Synced));
        // Stopped: no live usage and no uptime, whatever a stale reading says.
        let hooli = &rows[1];
        assert_eq!(
            (hooli.cpu_percent, hooli.memory_bytes, hooli.started_at),
            (None, None, None)
        );
        assert_eq!(hooli.api_calls, None);
        // Not in git: the limits come from the plan's database row, and there is no file.
        let gone = &rows[2];
        assert_eq!(gone.file, None);
        assert_eq!(
            (gone.cpu_limit, gone.memory_limit, gone.api_quota),
            (Some(2.0), Some(1 << 30), None)
        );
    }

    #[test]
    fn the_header_takes_the_newest_run_and_the_newest_success() {
        let run = |id: i64, status: &str, revision: &str| RunRow {
            id,
            started_at: id * 10,
            finished_at: (status != "running").then_some(id * 10 + 5),
            revision: revision.into(),
            status: status.into(),
            summary: String::new(),
        };
        let runs = [run(3, "failed", "c"), run(2, "succeeded", "b")];
        let h = header("ns", Some("c".into()), 4, &runs, LoopRunner::None, None);
        assert_eq!(h.applied_revision.as_deref(), Some("b"));
        assert_eq!(h.last_reconcile, Some(35));
        assert_eq!(h.last_reconcile_status.as_deref(), Some("failed"));
        assert_eq!(h.pending_changes, 4);
        let h = header(
            "ns",
            None,
            0,
            &[run(5, "running", "d")],
            LoopRunner::None,
            None,
        );
        assert_eq!((h.last_reconcile, h.applied_revision), (Some(50), None));
    }
}
