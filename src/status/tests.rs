use super::render::{json, summary_line, text};
use super::*;
use crate::model::{SourceContent, SourceFile, load};
use crate::plan::converged::converged;
use crate::plan::render::Style;
use crate::plan::{PlanOptions, compute as plan_compute};

const FILES: &[(&str, &str)] = &[
    (
        "plans/all.yaml",
        "kind: Plan
name: starter
spec:
  displayName: Starter
  price: { amount: 9.99, currency: USD, cycle: monthly }
  trialDays: 30
  resources: { cpus: 0.5, memory: 256Mi, pids: 128 }
---
kind: Plan
name: professional
spec:
  displayName: Professional
  price: { amount: 79.99, currency: USD, cycle: monthly }
  trialDays: 14
  resources: { cpus: 1.0, memory: 512Mi, pids: 256 }
",
    ),
    (
        "themes/modern.yaml",
        "kind: Theme\nname: modern\nspec:\n  displayName: Modern\n  version: 1.0.0\n",
    ),
];

fn tenant(slug: &str, plan: &str, state: &str) -> String {
    format!(
        "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug} inc\n  owner: ops@{slug}.example\n  plan: {plan}\n  theme: modern\n  state: {state}\n"
    )
}

fn desired_with(tenants: &[String], price: &str) -> DesiredState {
    let mut files: Vec<SourceFile> = FILES
        .iter()
        .map(|(p, c)| SourceFile {
            path: p.to_string(),
            content: SourceContent::Bytes(c.replace("79.99", price).into_bytes()),
        })
        .collect();
    for (i, t) in tenants.iter().enumerate() {
        files.push(SourceFile {
            path: format!("tenants/t{i}.yaml"),
            content: SourceContent::Bytes(t.clone().into_bytes()),
        });
    }
    load(&files).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn base() -> Vec<String> {
    vec![
        tenant("acme", "professional", "active"),
        tenant("globex", "starter", "active"),
        tenant("initech", "starter", "suspended"),
    ]
}

fn desired() -> DesiredState {
    desired_with(&base(), "79.99")
}

fn opts() -> PlanOptions {
    PlanOptions {
        namespace: "tenantctl".into(),
        revision: "0123456789abcdef".into(),
        prune: false,
        tenants: vec![],
    }
}

/// Status of every tenant for `desired` against `observed`, the plan computed as `status` does.
fn statuses(
    desired: Option<&DesiredState>,
    observed: &ObservedState,
    details: &HashMap<String, ContainerDetail>,
) -> Vec<TenantStatus> {
    let plan = desired.map(|d| plan_compute(d, observed, &opts()));
    compute(&Inputs {
        desired,
        observed,
        plan: plan.as_ref(),
        details,
        namespace: "tenantctl",
        tenants: &[],
    })
}

fn one<'a>(all: &'a [TenantStatus], slug: &str) -> &'a TenantStatus {
    all.iter()
        .find(|t| t.slug == slug)
        .unwrap_or_else(|| panic!("{slug} not in {all:#?}"))
}

fn container_mut<'a>(o: &'a mut ObservedState, slug: &str) -> &'a mut ObservedContainer {
    o.runtime
        .containers
        .iter_mut()
        .find(|c| c.tenant.as_deref() == Some(slug))
        .unwrap_or_else(|| panic!("no container for {slug}"))
}

fn converged_world() -> (DesiredState, ObservedState) {
    let d = desired();
    let o = converged(&d, &opts());
    (d, o)
}

#[test]
fn a_converged_world_is_synced_and_healthy_but_the_suspended_tenant() {
    let (d, o) = converged_world();
    let all = statuses(Some(&d), &o, &HashMap::new());
    let got: Vec<(&str, SyncStatus, Health)> = all
        .iter()
        .map(|t| (t.slug.as_str(), t.sync, t.health))
        .collect();
    assert_eq!(
        got,
        [
            ("acme", SyncStatus::Synced, Health::Healthy),
            ("globex", SyncStatus::Synced, Health::Healthy),
            ("initech", SyncStatus::Synced, Health::Suspended),
        ]
    );
    let acme = one(&all, "acme");
    assert_eq!(acme.plan.as_deref(), Some("professional"));
    assert_eq!(acme.theme.as_deref(), Some("modern"));
    assert_eq!(acme.state.as_deref(), Some("active"));
    assert_eq!(acme.applied_revision.as_deref(), Some("0123456789abcdef"));
    assert!(acme.sync_reasons.is_empty());
    assert_eq!(
        one(&all, "initech").health_reason.as_deref(),
        Some("suspended: container stopped")
    );
}

#[test]
fn a_container_stopped_by_hand_is_out_of_sync_and_degraded() {
    let (d, mut o) = converged_world();
    let c = container_mut(&mut o, "acme");
    c.state = ContainerState::Exited;
    let id = c.id.clone();
    let details = HashMap::from([(
        id,
        ContainerDetail {
            exit_code: Some(0),
            ..Default::default()
        },
    )]);
    let all = statuses(Some(&d), &o, &details);
    let acme = one(&all, "acme");
    assert_eq!(
        (acme.sync, acme.health),
        (SyncStatus::OutOfSync, Health::Degraded)
    );
    assert_eq!(
        acme.sync_reasons,
        ["container.tenantctl-acme will be started: tenant is active; container is exited"]
    );
    assert_eq!(
        acme.health_reason.as_deref(),
        Some("exited (code 0) while the tenant is active")
    );
    assert_eq!(one(&all, "globex").sync, SyncStatus::Synced);
}

#[test]
fn a_removed_container_is_out_of_sync_and_missing() {
    let (d, mut o) = converged_world();
    o.runtime
        .containers
        .retain(|c| c.tenant.as_deref() != Some("globex"));
    let all = statuses(Some(&d), &o, &HashMap::new());
    let globex = one(&all, "globex");
    assert_eq!(
        (globex.sync, globex.health),
        (SyncStatus::OutOfSync, Health::Missing)
    );
    assert_eq!(
        globex.sync_reasons,
        ["container.tenantctl-globex will be created: new tenant"]
    );
    // A suspended tenant without its (stopped) container is missing it too.
    o.runtime
        .containers
        .retain(|c| c.tenant.as_deref() != Some("initech"));
    let all = statuses(Some(&d), &o, &HashMap::new());
    assert_eq!(one(&all, "initech").health, Health::Missing);
}

#[test]
fn a_hand_edited_row_is_out_of_sync() {
    let (d, mut o) = converged_world();
    if let Some(row) = o.db.tenants.get_mut("globex") {
        row.plan = "professional".into();
    }
    let all = statuses(Some(&d), &o, &HashMap::new());
    let globex = one(&all, "globex");
    assert_eq!(
        (globex.sync, globex.health),
        (SyncStatus::OutOfSync, Health::Healthy)
    );
    assert_eq!(
        globex.sync_reasons,
        ["tenant-record.globex will be updated in place: plan changed"]
    );
    assert_eq!(
        globex.plan.as_deref(),
        Some("starter"),
        "git's plan is shown"
    );
}

#[test]
fn a_new_commit_not_yet_applied_is_out_of_sync_where_it_matters() {
    let (_, o) = converged_world();
    // Only the professional plan's price changed: only its tenants read a stale plan row.
    let d = desired_with(&base(), "89.99");
    let all = statuses(Some(&d), &o, &HashMap::new());
    let acme = one(&all, "acme");
    assert_eq!(acme.sync, SyncStatus::OutOfSync);
    assert_eq!(
        acme.sync_reasons,
        ["plan-record.professional will be updated in place: price changed"]
    );
    assert_eq!(one(&all, "globex").sync, SyncStatus::Synced);
    // A changed tenant spec shows as the container it replaces.
    let mut tenants = base();
    tenants[1] = tenant("globex", "professional", "active");
    let d = desired_with(&tenants, "79.99");
    let all = statuses(Some(&d), &o, &HashMap::new());
    let globex = one(&all, "globex");
    assert_eq!(globex.sync, SyncStatus::OutOfSync);
    assert!(
        globex
            .sync_reasons
            .iter()
            .any(|r| r.starts_with("container.tenantctl-globex must be replaced: ")),
        "{:?}",
        globex.sync_reasons
    );
}

#[test]
fn every_health_state() {
    let (d, o) = converged_world();
    let check = |slug: &str,
                 state: ContainerState,
                 health: Option<&str>,
                 detail: ContainerDetail,
                 want: Health,
                 reason: &str| {
        let mut o = o.clone();
        let c = container_mut(&mut o, slug);
        c.state = state.clone();
        c.health = health.map(str::to_string);
        let details = HashMap::from([(c.id.clone(), detail)]);
        let all = statuses(Some(&d), &o, &details);
        let t = one(&all, slug);
        assert_eq!(t.health, want, "{slug} {state} {health:?}: {t:#?}");
        assert!(
            t.health_reason.as_deref().unwrap_or("").contains(reason),
            "{slug} {state}: {:?} lacks {reason:?}",
            t.health_reason
        );
    };
    let none = ContainerDetail::default;
    use ContainerState as S;
    check(
        "acme",
        S::Running,
        Some("healthy"),
        none(),
        Health::Healthy,
        "",
    );
    check(
        "acme",
        S::Running,
        None,
        none(),
        Health::Healthy,
        "no health check",
    );
    check(
        "acme",
        S::Running,
        Some("starting"),
        none(),
        Health::Progressing,
        "starting",
    );
    check(
        "acme",
        S::Running,
        Some("unhealthy"),
        none(),
        Health::Degraded,
        "health check fails",
    );
    check(
        "acme",
        S::Restarting,
        None,
        none(),
        Health::Progressing,
        "restarting",
    );
    let looping = ContainerDetail {
        restart_count: 5,
        exit_code: Some(2),
        ..none()
    };
    check(
        "acme",
        S::Restarting,
        None,
        looping,
        Health::Degraded,
        "restarted 5 times, last exit code 2",
    );
    let oom = ContainerDetail {
        oom_killed: true,
        exit_code: Some(137),
        ..none()
    };
    check(
        "acme",
        S::Exited,
        None,
        oom.clone(),
        Health::Degraded,
        "OOM-killed: the container hit its memory limit (512Mi)",
    );
    check(
        "acme",
        S::Restarting,
        None,
        oom.clone(),
        Health::Degraded,
        "OOM-killed",
    );
    check(
        "acme",
        S::Created,
        None,
        none(),
        Health::Progressing,
        "not started",
    );
    let failed = ContainerDetail {
        error: Some("port is already allocated".into()),
        ..none()
    };
    check(
        "acme",
        S::Created,
        None,
        failed,
        Health::Degraded,
        "failed to start: port is already allocated",
    );
    check(
        "acme",
        S::Exited,
        None,
        none(),
        Health::Degraded,
        "exited while the tenant is active",
    );
    check("acme", S::Dead, None, none(), Health::Degraded, "dead");
    check("acme", S::Paused, None, none(), Health::Degraded, "paused");
    check(
        "acme",
        S::Removing,
        None,
        none(),
        Health::Progressing,
        "removed",
    );
    check(
        "acme",
        S::Unknown("stopping".into()),
        None,
        none(),
        Health::Unknown,
        "stopping",
    );
    // Suspended and stopped is what was asked for, whatever the exit.
    check(
        "initech",
        S::Exited,
        None,
        oom,
        Health::Suspended,
        "suspended",
    );
    check(
        "initech",
        S::Created,
        None,
        none(),
        Health::Suspended,
        "suspended",
    );
    // Suspended but running: it serves (sync says it should stop).
    check(
        "initech",
        S::Running,
        Some("healthy"),
        none(),
        Health::Healthy,
        "",
    );
}

#[test]
fn a_suspended_tenant_running_is_out_of_sync() {
    let (d, mut o) = converged_world();
    container_mut(&mut o, "initech").state = ContainerState::Running;
    let all = statuses(Some(&d), &o, &HashMap::new());
    let t = one(&all, "initech");
    assert_eq!(t.sync, SyncStatus::OutOfSync);
    assert_eq!(
        t.sync_reasons,
        ["container.tenantctl-initech will be stopped: tenant is suspended"]
    );
}

#[test]
fn tenants_removed_from_git_still_show() {
    let (_, mut o) = converged_world();
    let d = desired_with(&base()[..2], "79.99");
    // Removed from git, container still there: apply will remove it.
    let all = statuses(Some(&d), &o, &HashMap::new());
    let t = one(&all, "initech");
    assert_eq!(t.sync, SyncStatus::OutOfSync);
    assert_eq!(t.state.as_deref(), Some("cancelled"));
    assert_eq!(t.plan.as_deref(), Some("starter"), "from the row");
    assert!(
        t.sync_reasons.iter().any(|r| r.starts_with(
            "container.tenantctl-initech will be destroyed: tenant is no longer in git"
        )),
        "{:?}",
        t.sync_reasons
    );
    assert_eq!(t.health, Health::Suspended, "stopped, and on its way out");
    // After apply: no container, row cancelled: in sync, nothing to serve.
    o.runtime
        .containers
        .retain(|c| c.tenant.as_deref() != Some("initech"));
    if let Some(r) = o.db.tenants.get_mut("initech") {
        r.state = "cancelled".into();
    }
    let all = statuses(Some(&d), &o, &HashMap::new());
    let t = one(&all, "initech");
    assert_eq!((t.sync, t.health), (SyncStatus::Synced, Health::Suspended));
    assert_eq!(t.state.as_deref(), Some("cancelled"));
    // A container whose tenant has no row and is not in git shows as well.
    let mut stray = o.runtime.containers[0].clone();
    stray.id = "stray".into();
    stray.name = "tenantctl-ghost".into();
    stray.tenant = Some("ghost".into());
    o.runtime.containers.push(stray);
    let all = statuses(Some(&d), &o, &HashMap::new());
    let t = one(&all, "ghost");
    assert_eq!((t.sync, t.health), (SyncStatus::OutOfSync, Health::Healthy));
}

#[test]
fn an_invalid_revision_makes_every_sync_unknown_but_health_still_shows() {
    let (_, mut o) = converged_world();
    container_mut(&mut o, "acme").state = ContainerState::Exited;
    let all = statuses(None, &o, &HashMap::new());
    assert!(
        all.iter()
            .all(|t| t.sync == SyncStatus::Unknown && t.sync_reasons.is_empty())
    );
    assert_eq!(one(&all, "acme").health, Health::Degraded);
    // The database's state stands in for git's.
    assert_eq!(one(&all, "initech").health, Health::Suspended);
    assert_eq!(one(&all, "initech").state.as_deref(), Some("suspended"));
}

#[test]
fn the_tenant_filter_keeps_only_those_tenants() {
    let (d, o) = converged_world();
    let plan = plan_compute(&d, &o, &opts());
    let only = vec!["globex".to_string()];
    let all = compute(&Inputs {
        desired: Some(&d),
        observed: &o,
        plan: Some(&plan),
        details: &HashMap::new(),
        namespace: "tenantctl",
        tenants: &only,
    });
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].slug, "globex");
}

fn report(all: Vec<TenantStatus>) -> Report {
    Report {
        revision: Some("0123456789abcdef0123".into()),
        namespace: "tenantctl".into(),
        runtime: crate::runtime::RuntimeKind::Docker,
        error: None,
        summary: Summary::of(&all),
        tenants: all,
        reconciler: None,
    }
}

#[test]
fn summary_counts_by_sync_and_health() {
    let (d, mut o) = converged_world();
    container_mut(&mut o, "acme").state = ContainerState::Exited;
    let r = report(statuses(Some(&d), &o, &HashMap::new()));
    assert_eq!(r.summary.tenants, 3);
    assert_eq!((r.summary.sync.synced, r.summary.sync.out_of_sync), (2, 1));
    assert_eq!(
        (
            r.summary.health.healthy,
            r.summary.health.degraded,
            r.summary.health.suspended
        ),
        (1, 1, 1)
    );
    assert_eq!(
        summary_line(&r),
        "3 tenants. Sync: 2 Synced, 1 OutOfSync. Health: 1 Healthy, 1 Degraded, 1 Suspended."
    );
}

#[test]
fn json_has_the_documented_shape() {
    let (d, mut o) = converged_world();
    if let Some(r) = o.db.tenants.get_mut("acme") {
        r.trial_ends_at = Some(1_765_324_800);
    }
    let theme_port = d.themes["modern"].port;
    publish(&mut o, "acme", theme_port, 49153);
    let v = json(&report(statuses(Some(&d), &o, &HashMap::new())));
    assert_eq!(v["revision"], "0123456789abcdef0123");
    assert_eq!(v["namespace"], "tenantctl");
    assert_eq!(v["summary"]["sync"]["Synced"], 3);
    assert_eq!(v["summary"]["health"]["Missing"], 0);
    let acme = &v["tenants"][0];
    let keys: Vec<&str> = acme
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(
        keys,
        [
            "slug",
            "sync",
            "sync_reasons",
            "health",
            "health_reason",
            "plan",
            "theme",
            "state",
            "applied_revision",
            "url",
            "last_error",
            "trial_ends_at",
            "probe",
            "desired_revision",
            "pending",
            "progress_step",
            "progress_percent",
            "error_step",
            "storage_bytes",
            "storage_limit_bytes"
        ]
    );
    assert_eq!(acme["sync"], "Synced");
    assert_eq!(acme["health"], "Healthy");
    assert_eq!(acme["trial_ends_at"], "2025-12-10T00:00:00Z");
    assert_eq!(acme["url"], "http://127.0.0.1:49153/");
}

#[test]
fn text_is_an_aligned_table_within_100_columns() {
    let (d, mut o) = converged_world();
    container_mut(&mut o, "acme").state = ContainerState::Exited;
    for (slug, r) in o.db.tenants.iter_mut() {
        r.url = Some(format!("http://127.0.0.1:4915{}/", slug.len()));
    }
    if let Some(r) = o.db.tenants.get_mut("globex") {
        r.trial_ends_at = Some(1_000 + 86_400 * 3);
        r.last_error = Some("health check timed out".into());
    }
    let r = report(statuses(Some(&d), &o, &HashMap::new()));
    let out = text(&r, Style { color: false }, 1_000);
    // The table fits; a tenant's note lines below it (reasons, errors) are as long as they are.
    assert!(
        out.lines()
            .filter(|l| !l.starts_with("  "))
            .all(|l| l.chars().count() <= 100 || !l.contains("  ")),
        "{out}"
    );
    let table: Vec<&str> = out.lines().skip(2).take(4).collect();
    assert!(
        table[0].starts_with("TENANT   SYNC       HEALTH     PLAN"),
        "{out}"
    );
    let col = table[0].find("HEALTH");
    assert!(
        table
            .iter()
            .skip(1)
            .all(|l| l.get(col.unwrap_or(0)..).is_some())
    );
    assert_eq!(table[1].find("Degraded"), col, "{out}");
    assert_eq!(table[2].find("Healthy"), col, "{out}");
    assert!(
        table[1].contains("OutOfSync") && table[1].contains("0123456 "),
        "{out}"
    );
    assert!(
        out.contains("acme:\n  out of sync: container.tenantctl-acme will be started"),
        "{out}"
    );
    assert!(
        out.contains("  Degraded: exited while the tenant is active\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "globex:\n  out of sync: tenant-record.globex will be updated in place: the last apply at 0123456 failed: tried again until the tenant converges\n  last error: health check timed out\n  trial ends 1970-01-04 (in 3 days)\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("Health: 1 Healthy, 1 Degraded, 1 Suspended.\n"),
        "{out}"
    );
    assert!(!out.contains('\x1b'));
    let coloured = text(&r, Style { color: true }, 1_000);
    assert!(
        coloured.contains("\x1b[33mOutOfSync\x1b[0m")
            && coloured.contains("\x1b[31mDegraded\x1b[0m")
    );
    // Colour codes do not shift the columns.
    let plain: Vec<usize> = out.lines().map(|l| l.chars().count()).collect();
    let stripped: Vec<usize> = coloured
        .lines()
        .map(|l| {
            l.replace("\x1b[33m", "")
                .replace("\x1b[31m", "")
                .replace("\x1b[0m", "")
                .chars()
                .count()
        })
        .collect();
    assert_eq!(plain, stripped);
}

#[test]
fn long_urls_are_cut_to_fit() {
    let (d, mut o) = converged_world();
    if let Some(r) = o.db.tenants.get_mut("acme") {
        r.url = Some(format!("http://{}.example/", "x".repeat(120)));
    }
    // No container: the row's URL is the one shown.
    o.runtime
        .containers
        .retain(|c| c.tenant.as_deref() != Some("acme"));
    let out = text(
        &report(statuses(Some(&d), &o, &HashMap::new())),
        Style { color: false },
        0,
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("acme "))
            .all(|l| l.chars().count() <= 100 && l.ends_with('…')),
        "{out}"
    );
}

fn lease(holder: &str, term: i64, expires_in_ms: i64) -> crate::store::LeaderRow {
    crate::store::LeaderRow {
        name: "watch".into(),
        term,
        holder: holder.into(),
        host: holder.split(':').next().unwrap_or_default().into(),
        acquired_at_ms: 1_700_000_000_000,
        renewed_at_ms: 1_700_000_002_000,
        expires_at_ms: 1_700_000_004_000 + expires_in_ms,
        now_ms: 1_700_000_004_000,
    }
}

#[test]
fn the_reconciler_line_names_the_leader_and_who_stands_by() {
    use super::render::reconciler_line;
    let present = ["b:2:1:watch".to_string(), "a:1:1:watch".to_string()];
    let live = Reconciler::of(Some(&lease("a:1:1:watch", 3, 8_000)), &present);
    assert_eq!(live.standbys, ["b:2:1:watch"]);
    assert_eq!(
        reconciler_line(&live),
        "Reconciler: a:1:1:watch leads (term 3; lease renewed 2s ago, lapses in 8s). Standing by: b:2:1:watch."
    );
    let lapsed = Reconciler::of(Some(&lease("a:1:1:watch", 3, -3_000)), &present[..1]);
    assert_eq!(
        reconciler_line(&lapsed),
        "Reconciler: no leader (the last, a:1:1:watch in term 3, let its lease lapse 3s ago). Standing by: b:2:1:watch."
    );
    assert_eq!(
        reconciler_line(&Reconciler::of(None, &[])),
        "Reconciler: none (no `tenantctl watch` runs against this database)."
    );
    let mut r = report(Vec::new());
    r.reconciler = Some(live);
    let v = json(&r);
    let leader = &v["reconciler"]["leader"];
    assert_eq!(leader["holder"], "a:1:1:watch");
    assert_eq!(leader["term"], 3);
    assert_eq!(leader["live"], true);
    assert_eq!(leader["expires_at"], "2023-11-14T22:13:32Z");
    assert_eq!(leader["expires_in_ms"], 8000);
    assert_eq!(v["reconciler"]["standbys"][0], "b:2:1:watch");
    assert!(
        text(&r, Style { color: false }, 0).starts_with(
            "Revision 0123456789ab, namespace tenantctl.\nReconciler: a:1:1:watch leads"
        )
    );
}

fn publish(o: &mut ObservedState, slug: &str, container_port: u16, host_port: u16) {
    container_mut(o, slug)
        .published_ports
        .push(crate::runtime::types::PublishedPort {
            container_port,
            host_ip: "127.0.0.1".into(),
            host_port,
        });
}

#[test]
fn a_running_tenant_shows_where_its_theme_port_is_published_now_not_the_row() {
    let (d, mut o) = converged_world();
    let theme_port = d.themes["modern"].port;
    container_mut(&mut o, "acme").published_ports.clear();
    // A sidecar port first: the theme's port is the one that serves the site.
    publish(&mut o, "acme", theme_port + 1, 40001);
    publish(&mut o, "acme", theme_port, 40002);
    for r in o.db.tenants.values_mut() {
        r.url = Some("http://127.0.0.1:32768/".into());
    }
    o.db.tenants.remove("globex").map(|mut r| {
        r.url = Some("http://127.0.0.1:32769/".into());
        o.db.tenants.insert("globex".into(), r)
    });
    o.runtime
        .containers
        .retain(|c| c.tenant.as_deref() != Some("globex"));
    let all = statuses(Some(&d), &o, &HashMap::new());
    assert_eq!(
        one(&all, "acme").url.as_deref(),
        Some("http://127.0.0.1:40002/")
    );
    // Nothing observed: the row is all there is to show.
    assert_eq!(
        one(&all, "globex").url.as_deref(),
        Some("http://127.0.0.1:32769/")
    );
    // Stopped: it answers nowhere, whatever the row says.
    assert_eq!(one(&all, "initech").url, None);
    let changes = url_changes(&all, &o.db);
    assert_eq!(
        changes,
        [UrlChange {
            slug: "acme".into(),
            recorded: Some("http://127.0.0.1:32768/".into()),
            published: "http://127.0.0.1:40002/".into(),
        }]
    );
}

#[test]
fn a_service_with_no_published_port_shows_no_url_and_asks_for_no_refresh() {
    let (d, mut o) = converged_world();
    let acme = container_mut(&mut o, "acme");
    acme.published_ports.clear();
    acme.service = Some(crate::runtime::ObservedService {
        replicas: 1,
        running: 1,
        ..Default::default()
    });
    if let Some(r) = o.db.tenants.get_mut("acme") {
        r.url = Some("http://127.0.0.1:32768/".into());
    }
    let all = statuses(Some(&d), &o, &HashMap::new());
    assert_eq!(one(&all, "acme").url, None);
    assert!(url_changes(&all, &o.db).is_empty());
}

#[test]
fn an_out_of_sync_tenant_is_left_to_apply_and_a_matching_row_is_not_rewritten() {
    let (d, mut o) = converged_world();
    let theme_port = d.themes["modern"].port;
    for slug in ["acme", "globex"] {
        container_mut(&mut o, slug).published_ports.clear();
        publish(&mut o, slug, theme_port, 40010 + slug.len() as u16);
    }
    if let Some(row) = o.db.tenants.get_mut("acme") {
        row.plan = "starter".into();
    }
    if let Some(r) = o.db.tenants.get_mut("globex") {
        r.url = Some(format!("http://127.0.0.1:{}/", 40010 + "globex".len()));
    }
    let all = statuses(Some(&d), &o, &HashMap::new());
    assert_eq!(one(&all, "acme").sync, SyncStatus::OutOfSync);
    assert!(url_changes(&all, &o.db).is_empty(), "{all:#?}");
}

#[test]
fn the_probe_shows_with_its_latency_and_a_failure_is_degraded_and_out_of_sync() {
    use crate::runtime::types::{Probe, ProbeResult};
    let (d, mut o) = converged_world();
    let probe = |result, latency_ms| {
        Some(Probe {
            url: Some("http://127.0.0.1:40001/health".into()),
            result,
            latency_ms,
            attempts: 1,
        })
    };
    container_mut(&mut o, "acme").probe = probe(ProbeResult::Answered { status: 200 }, Some(3));
    container_mut(&mut o, "globex").probe = probe(ProbeResult::Refused, None);
    let all = statuses(Some(&d), &o, &HashMap::new());
    let acme = one(&all, "acme");
    assert_eq!(
        (acme.sync, acme.health),
        (SyncStatus::Synced, Health::Healthy)
    );
    let globex = one(&all, "globex");
    assert_eq!(
        (globex.sync, globex.health),
        (SyncStatus::OutOfSync, Health::Degraded)
    );
    assert_eq!(
        globex.sync_reasons,
        [
            "container.tenantctl-globex must be replaced: does not answer on 127.0.0.1:40001/health: connection refused"
        ]
    );
    assert_eq!(
        globex.health_reason.as_deref(),
        Some("runs, but does not answer on 127.0.0.1:40001/health: connection refused")
    );
    let r = report(all);
    let out = text(&r, Style { color: false }, 0);
    let row = |slug: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{slug} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        out.lines()
            .nth(2)
            .is_some_and(|h| h.contains("APPLIED  PROBE")),
        "{out}"
    );
    assert!(row("acme").contains("200 3ms"), "{out}");
    assert!(row("globex").contains("refused"), "{out}");
    assert!(
        out.lines()
            .skip(2)
            .take(4)
            .all(|l| l.chars().count() <= 100),
        "{out}"
    );
    let v = json(&r);
    let tenants = v["tenants"].as_array().cloned().unwrap_or_default();
    let acme = tenants.iter().find(|t| t["slug"] == "acme");
    assert_eq!(
        acme.map(|t| t["probe"].clone()),
        Some(serde_json::json!({
            "url": "http://127.0.0.1:40001/health",
            "result": "answered",
            "status": 200,
            "latency_ms": 3,
            "attempts": 1
        }))
    );
    // Not probed (stopped): null, the field still there for scripts.
    let initech = tenants.iter().find(|t| t["slug"] == "initech");
    assert!(initech.is_some_and(|t| t.get("probe") == Some(&serde_json::Value::Null)));
}

#[test]
fn a_failed_change_shows_what_is_wanted_beside_what_runs() {
    let (d, mut o) = converged_world();
    if let Some(r) = o.db.tenants.get_mut("acme") {
        // The row names what runs: the apply of the new theme at 4f2a9c1 failed.
        r.theme = "classic".into();
        r.desired_revision = Some("4f2a9c1e0000".into());
        r.last_error = Some("GET /health: 404".into());
    }
    let all = statuses(Some(&d), &o, &HashMap::new());
    let acme = one(&all, "acme");
    assert_eq!(acme.sync, SyncStatus::OutOfSync);
    assert_eq!(
        acme.pending.as_deref(),
        Some(
            "wants theme `modern` (revision 4f2a9c1), runs theme `classic`: last error: GET /health: 404"
        )
    );
    assert_eq!(acme.desired_revision.as_deref(), Some("4f2a9c1e0000"));
    assert_eq!(
        one(&all, "globex").pending,
        None,
        "converged: nothing pending"
    );
    let out = text(&report(all.clone()), Style { color: false }, 1_000);
    assert!(
        out.contains("\n  wants theme `modern` (revision 4f2a9c1), runs theme `classic`: last error: GET /health: 404\n"),
        "{out}"
    );

    // Not tried yet, and a tenant that never converged.
    let mut row = o.db.tenants["acme"].clone();
    row.desired_revision = row.applied_revision.clone();
    row.last_error = None;
    assert_eq!(
        pending(&row, d.tenants.get("acme")).as_deref(),
        Some("wants theme `modern` (not applied yet), runs theme `classic`")
    );
    row.theme = "modern".into();
    row.applied_revision = None;
    row.desired_revision = Some("4f2a9c1e0000".into());
    row.last_error = Some("no answer".into());
    assert_eq!(
        pending(&row, d.tenants.get("acme")).as_deref(),
        Some("wants revision 4f2a9c1, runs nothing yet: last error: no answer")
    );
}
