//! The applier against the in-memory backend: retries, rollbacks, the fence, blue/green,
//! isolation of failing tenants, bounded parallelism, and what it records. No engine.

use super::*;
use crate::model::DesiredState;
use crate::reconcile::{self, Announce, ApplyRequest, ReconcileError, Scope};
use crate::runtime::fake::{FakeBackend, Op, Times};
use crate::store::{EventRow, Fence};
use crate::testing::{Lines, desired, scratch_store};

const NS: &str = "ns";

fn config(revision: &str) -> ApplyConfig {
    ApplyConfig {
        namespace: NS.into(),
        revision: revision.into(),
        parallelism: 4,
        attempts: 3,
        backoff: Duration::from_millis(100),
        health_timeout: Duration::from_secs(1),
        subnet_pool: "10.99.0.0/16".parse().expect("a subnet"),
        prune: false,
    }
}

/// A scratch store, a fake engine and a progress sink for one test.
struct Scene {
    _dir: tempfile::TempDir,
    store: Store,
    fake: Arc<FakeBackend>,
    lines: Arc<Lines>,
}

async fn scene(fake: Arc<FakeBackend>) -> Scene {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = scratch_store(dir.path()).await;
    Scene {
        _dir: dir,
        store,
        fake,
        lines: Arc::new(Lines::default()),
    }
}

impl Scene {
    /// One apply through the reconcile path, as `tenantctl apply --auto-approve` makes it.
    async fn apply_with(
        &self,
        store: &Store,
        desired: &DesiredState,
        config: ApplyConfig,
    ) -> Result<crate::reconcile::Applied, ReconcileError> {
        let request = ApplyRequest {
            desired,
            opts: PlanOptions {
                namespace: NS.into(),
                revision: config.revision.clone(),
                prune: false,
                tenants: Vec::new(),
            },
            config,
            lock_wait: Duration::ZERO,
            approved: None,
            scope: Scope::Plan,
            record_trial_ends: true,
            announce: Announce::Nothing,
            max_destroy: Some(crate::reconcile::DestroyLimit::default()),
        };
        reconcile::apply(&self.fake.runtime(), store, self.lines.clone(), request).await
    }

    /// The report of an apply that ran to its end.
    async fn report(&self, desired: &DesiredState, config: ApplyConfig) -> Report {
        match self.apply_with(&self.store, desired, config).await {
            Ok(applied) => applied.report,
            Err(e) => panic!("the apply failed as a whole: {e}"),
        }
    }

    /// The tenant's events, oldest first, as `kind: message`.
    async fn events(&self, tenant: &str) -> Vec<String> {
        let rows: Vec<EventRow> = self.store.events(Some(tenant), 1000).await.expect("events");
        rows.into_iter()
            .rev()
            .map(|e| format!("{}: {}", e.kind, e.message))
            .collect()
    }

    async fn row(&self, slug: &str) -> TenantRow {
        let db = self.store.observe().await.expect("observe the store");
        db.tenants.get(slug).cloned().expect("the tenant's row")
    }
}

/// The kinds of the events that tell how a tenant's attempts ended.
fn outcome_kinds(events: &[String]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| e.split(':').next())
        .filter(|k| k.starts_with("tenant.") || k.ends_with(".rollback"))
        // A new tenant's first API key is an event of its own, not an outcome.
        .filter(|k| !k.starts_with("tenant.key-"))
        .collect()
}

/// Calls about `tenant` from the `from`-th on, without the observations.
fn changes_of(fake: &FakeBackend, tenant: &str, from: usize) -> Vec<String> {
    fake.calls_of(tenant)
        .into_iter()
        .skip(from)
        .filter(|c| c != "observe")
        .collect()
}

#[tokio::test]
async fn a_retry_observes_afresh_and_does_only_what_is_still_missing() {
    let scene = scene(FakeBackend::new(NS)).await;
    let (fake, lines) = (&scene.fake, &scene.lines);
    fake.fail(Some("a"), Op::Create, Times::Once, || {
        RuntimeError::Unreachable {
            target: "fake".into(),
            reason: "connection reset".into(),
        }
    });

    let report = scene.report(&desired(&[("a", "A")]), config("r1")).await;

    assert!(matches!(
        report.outcomes.get("a"),
        Some(Outcome::Converged { url: Some(_) })
    ));
    assert_eq!(
        fake.calls_of("a"),
        [
            "observe",
            "ensure-network ns-a",
            "ensure-volume ns-a-data",
            "create ns-a",
            // Attempt 2: network and volume are there now; only the container is made.
            "observe",
            "create ns-a",
            "start ns-a",
            "wait-ready ns-a",
            // The built-in site's container, found to write its access file (keys, flags).
            "observe",
        ]
    );
    let calls = fake.calls();
    let failed_at = calls
        .iter()
        .find(|c| c.op == Op::Create)
        .map(|c| c.at)
        .expect("a create");
    let observed_again = calls
        .iter()
        .filter(|c| c.op == Op::Observe && c.tenant.as_deref() == Some("a"))
        .nth(1)
        .map(|c| c.at)
        .expect("a second observation");
    assert!(
        observed_again - failed_at >= Duration::from_millis(100),
        "attempt 2 waits the backoff first"
    );
    assert_eq!(
        lines.with("retrying"),
        ["a: retrying in 0.1s (attempt 2 of 3)"]
    );
    let events = scene.events("a").await;
    assert!(events.contains(&"tenant.attempt-failed: attempt 1: cannot reach the Docker engine at fake: connection reset. Is the Docker engine running (`docker info`)? Start it, or set DOCKER_HOST to its address (unix:///path/to/docker.sock or tcp://host:2375)".to_string()), "{events:?}");
    assert!(!events.iter().any(|e| e.starts_with("tenant.failed")));
    let row = scene.row("a").await;
    assert_eq!(row.last_error, None);
    assert_eq!(row.applied_revision.as_deref(), Some("r1"));
    assert!(row.url.is_some());
}

#[tokio::test]
async fn what_apply_made_is_observed_as_converged() {
    let scene = scene(FakeBackend::new(NS)).await;
    let fake = &scene.fake;
    let desired = desired(&[("a", "A"), ("b", "B")]);
    let first = scene.report(&desired, config("r1")).await;
    assert_eq!(first.failed(), 0);
    let calls = fake.calls().len();

    let again = match scene.apply_with(&scene.store, &desired, config("r1")).await {
        Ok(applied) => applied,
        Err(e) => panic!("{e}"),
    };
    assert!(again.plan.is_empty(), "{:?}", again.plan.changes);
    assert_eq!(again.report.changes_applied, 0);
    assert!(
        fake.calls()[calls..].iter().all(|c| c.op == Op::Observe),
        "a converged apply changes nothing"
    );
}

#[tokio::test]
async fn a_rolled_back_update_is_not_retried_and_the_previous_spec_keeps_running() {
    let scene = scene(FakeBackend::swarm(NS)).await;
    let (fake, lines) = (&scene.fake, &scene.lines);
    let first = scene.report(&desired(&[("a", "A")]), config("r1")).await;
    assert_eq!(first.failed(), 0);
    let before = fake.container("ns-a").expect("the service");
    let from = fake.calls_of("a").len();
    fake.fail(Some("a"), Op::Update, Times::Always, || {
        RuntimeError::RolledBack {
            service: "ns-a".into(),
            message: "task: non-zero exit (1)".into(),
        }
    });

    let report = scene.report(&desired(&[("a", "A2")]), config("r2")).await;

    let Some(Outcome::Failed { reason }) = report.outcomes.get("a") else {
        panic!("a rolled back: {:?}", report.outcomes);
    };
    assert!(reason.contains("rolled back"), "{reason}");
    assert_eq!(changes_of(fake, "a", from), ["update ns-a"]);
    assert!(lines.with("retrying").is_empty());
    let after = fake.container("ns-a").expect("the service");
    assert_eq!(after.spec_hash, before.spec_hash, "the old spec runs");
    assert!(after.service.as_ref().is_some_and(|s| s.rolled_back()));
    let events = scene.events("a").await;
    assert_eq!(
        outcome_kinds(&events),
        ["service.rollback", "tenant.failed"]
    );
    assert_eq!(
        scene.row("a").await.last_error.as_deref(),
        Some(reason.as_str())
    );
}

#[tokio::test]
async fn a_deposed_leader_stops_the_pass_at_once() {
    let scene = scene(FakeBackend::new(NS)).await;
    let (fake, lines) = (&scene.fake, &scene.lines);
    let lease = scene
        .store
        .acquire_leader("me", "here", Duration::from_secs(60))
        .await
        .expect("the lease query")
        .expect("a free lease");
    let fence = Fence::new(lease.term, "me", Instant::now() + Duration::from_secs(60));
    let fenced = scene.store.fenced(fence.clone());
    // The lease is lost while the first tenant's volume is being made.
    fake.on(None, Op::EnsureVolume, Times::Once, move || fence.revoke());
    let mut config = config("r1");
    config.parallelism = 1;

    let desired = desired(&[("a", "A"), ("b", "B"), ("c", "C")]);
    let result = scene.apply_with(&fenced, &desired, config).await;

    match result {
        Err(ReconcileError::Apply(ApplyError::Store(e))) => assert!(e.is_fenced(), "{e}"),
        other => panic!("the pass should stop as fenced: {other:?}"),
    }
    let calls = fake.calls();
    let revoked = calls
        .iter()
        .position(|c| c.op == Op::EnsureVolume)
        .expect("the volume call");
    let after: Vec<String> = calls[revoked + 1..]
        .iter()
        .filter(|c| c.op != Op::Observe)
        .map(ToString::to_string)
        .collect();
    assert_eq!(after, Vec::<String>::new(), "nothing changes once deposed");
    assert!(lines.with("retrying").is_empty());
    let runs = scene.store.runs(10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status, "running",
        "a deposed leader cannot finish its run"
    );
}

#[tokio::test]
async fn a_failed_replacement_is_removed_and_the_old_container_never_touched() {
    let scene = scene(FakeBackend::new(NS)).await;
    let (fake, lines) = (&scene.fake, &scene.lines);
    scene.report(&desired(&[("a", "A")]), config("r1")).await;
    let old = fake.container("ns-a").expect("the container");
    let from = fake.calls_of("a").len();
    fake.fail(Some("a"), Op::WaitReady, Times::N(2), || {
        RuntimeError::NotAnswering {
            reason: "GET /health: connection refused".into(),
        }
    });
    let mut failing = config("r2");
    failing.attempts = 2;

    let report = scene.report(&desired(&[("a", "A2")]), failing).await;

    assert_eq!(
        report.outcomes.get("a"),
        Some(&Outcome::Failed {
            reason: "GET /health: connection refused".into()
        })
    );
    let attempt = [
        "remove ns-a_next",
        "create ns-a_next",
        "start ns-a_next",
        "wait-ready ns-a_next",
        "remove ns-a_next",
    ];
    assert_eq!(changes_of(fake, "a", from), [attempt, attempt].concat());
    assert_eq!(
        fake.container("ns-a"),
        Some(old),
        "the old container is as it was"
    );
    assert_eq!(fake.container_names(), ["ns-a"]);
    assert_eq!(
        lines.with("did not come up").first().map(String::as_str),
        Some("a: container.ns-a: new container did not come up; the previous one keeps running")
    );
    let events = scene.events("a").await;
    assert_eq!(
        outcome_kinds(&events),
        [
            "container.rollback",
            "tenant.attempt-failed",
            "container.rollback",
            "tenant.attempt-failed",
            "tenant.failed"
        ]
    );
    let row = scene.row("a").await;
    assert_eq!(
        row.last_error.as_deref(),
        Some("GET /health: connection refused")
    );
    assert_eq!(row.applied_revision.as_deref(), Some("r1"));
    assert_eq!(row.display_name, "A", "the row names what runs");
    assert_eq!(row.desired_revision.as_deref(), Some("r2"));

    // The replacement answers now: the row moves to git's settings and its error is cleared.
    let report = scene.report(&desired(&[("a", "A2")]), config("r3")).await;
    assert_eq!(report.failed(), 0);
    let row = scene.row("a").await;
    assert_eq!(row.display_name, "A2");
    assert_eq!(row.last_error, None);
    assert_eq!(row.applied_revision.as_deref(), Some("r3"));
    assert_eq!(row.desired_revision.as_deref(), Some("r3"));
}

#[tokio::test]
async fn a_failing_tenant_does_not_stop_the_others_and_the_report_names_it() {
    let scene = scene(FakeBackend::new(NS)).await;
    let fake = &scene.fake;
    fake.fail(Some("b"), Op::Create, Times::N(2), || {
        RuntimeError::NotAnswering {
            reason: "no space left on device".into(),
        }
    });
    let desired = desired(&[("a", "A"), ("b", "B"), ("c", "C")]);
    let mut config = config("r1");
    config.attempts = 2;
    config.backoff = Duration::from_millis(10);

    let report = scene.report(&desired, config.clone()).await;

    assert_eq!(report.failed(), 1);
    assert_eq!(
        report.outcomes.get("b"),
        Some(&Outcome::Failed {
            reason: "no space left on device".into()
        })
    );
    for slug in ["a", "c"] {
        assert!(matches!(
            report.outcomes.get(slug),
            Some(Outcome::Converged { url: Some(_) })
        ));
        assert!(
            fake.container(&format!("ns-{slug}"))
                .is_some_and(|c| c.state.is_running())
        );
        assert_eq!(scene.row(slug).await.last_error, None);
    }
    assert_eq!(fake.container("ns-b"), None);
    assert_eq!(
        scene.row("b").await.last_error.as_deref(),
        Some("no space left on device")
    );
    let runs = scene.store.runs(1).await.expect("runs");
    assert_eq!(runs[0].status, "failed");
    assert!(
        runs[0].summary.contains("2 tenants converged, 1 failed"),
        "{}",
        runs[0].summary
    );

    // The failure was transient: the next apply converges b and clears its error.
    let report = scene.report(&desired, config).await;
    assert_eq!(report.failed(), 0);
    assert_eq!(scene.row("b").await.last_error, None);
}

#[tokio::test]
async fn parallelism_bounds_the_creates_running_at_once() {
    let scene = scene(FakeBackend::new(NS)).await;
    let fake = &scene.fake;
    fake.delay(None, Op::Create, Times::Always, Duration::from_millis(100));
    let tenants = [
        ("t1", "T1"),
        ("t2", "T2"),
        ("t3", "T3"),
        ("t4", "T4"),
        ("t5", "T5"),
        ("t6", "T6"),
    ];
    let mut config = config("r1");
    config.parallelism = 2;

    let report = scene.report(&desired(&tenants), config).await;

    assert_eq!(report.failed(), 0);
    assert_eq!(report.outcomes.len(), 6);
    assert_eq!(fake.most_at_once(Op::Create), 2);
}

#[tokio::test]
async fn every_change_is_an_event_and_the_run_is_recorded() {
    let scene = scene(FakeBackend::new(NS)).await;
    let fake = &scene.fake;

    let report = scene.report(&desired(&[("a", "A")]), config("r1")).await;

    assert_eq!(report.changes_applied, 6);
    let (keys, changes): (Vec<String>, Vec<String>) = scene
        .events("a")
        .await
        .into_iter()
        .partition(|e| e.starts_with("tenant.key-created: "));
    assert_eq!(keys.len(), 1, "the new tenant's first key: {keys:?}");
    assert!(keys[0].contains("API key `default`"), "{keys:?}");
    assert_eq!(
        changes,
        [
            "tenant-record.create: tenant-record.a",
            "network.create: network.ns-a",
            "volume.create: volume.ns-a-data",
            "container.create: container.ns-a",
        ]
    );
    let all: Vec<EventRow> = scene.store.events(None, 100).await.expect("events");
    let records: Vec<&str> = all
        .iter()
        .filter(|e| e.tenant.is_none())
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(records, ["theme-record.create", "plan-record.create"]);
    assert!(all.iter().all(|e| e.run_id == Some(report.run_id)));
    let runs = scene.store.runs(1).await.expect("runs");
    assert_eq!(
        (runs[0].id, runs[0].status.as_str()),
        (report.run_id, "succeeded")
    );
    assert_eq!(report.new_keys.keys().collect::<Vec<_>>(), ["a"]);
    let key_digest = scene.row("a").await.api_key_sha256.expect("a key digest");
    let container = fake.container("ns-a").expect("the container");
    assert_eq!(container.env.get(API_KEY_ENV), Some(key_digest.as_str()));
}

#[tokio::test]
async fn change_events_record_what_changed_before_and_after() {
    let scene = scene(FakeBackend::new(NS)).await;
    scene.report(&desired(&[("a", "Old")]), config("r1")).await;
    let report = scene.report(&desired(&[("a", "New")]), config("r2")).await;
    assert!(matches!(
        report.outcomes.get("a"),
        Some(Outcome::Converged { .. })
    ));

    let query = crate::store::AuditQuery {
        tenant: Some("a".into()),
        limit: 1000,
        ..Default::default()
    };
    let rows = scene.store.audit_events(&query).await.expect("events");
    let changes = |kind: &str| {
        let row = rows
            .iter()
            .find(|r| r.kind == kind)
            .unwrap_or_else(|| panic!("no {kind} in {rows:?}"));
        assert_eq!(row.revision.as_deref(), Some("r2"), "{row:?}");
        crate::audit::changes_of(row).unwrap_or_else(|| panic!("no detail: {row:?}"))
    };
    let record = changes("tenant-record.update");
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        serde_json::json!([{"field": "displayName", "before": "Old", "after": "New"}])
    );
    // The container is replaced for the env the name reaches.
    let replaced = changes("container.replace");
    assert!(
        replaced
            .iter()
            .any(|c| c.field == "env.TENANT_NAME" && c.before == "Old" && c.after == "New"),
        "{replaced:?}"
    );
    // The first apply's creations carry no detail.
    let created = rows
        .iter()
        .find(|r| r.kind == "tenant-record.create")
        .unwrap();
    assert_eq!(created.detail, None);
}
