//! Real databases, no mocks: every check runs against a SQLite file in a temporary directory and
//! against a fresh PostgreSQL database named uniquely for the test, dropped afterwards.
//!
//! PostgreSQL comes from `TENANTCTL_TEST_POSTGRES_URL` (a role allowed to create databases, e.g.
//! postgres://tenantctl:tenantctl@127.0.0.1:5432/postgres). Unset: the PostgreSQL tests fail when
//! `CI` is set and are skipped with a note otherwise.

use super::*;
use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Executor};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

const PG_ENV: &str = "TENANTCTL_TEST_POSTGRES_URL";

fn pg_base_url(test: &str) -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: {PG_ENV} is not set, and CI is: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!("{test}: skipped, set {PG_ENV} to run it against PostgreSQL");
            None
        }
    }
}

/// `url` with its database path replaced by `/db`, keeping userinfo, host and parameters.
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.find('?') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let (scheme, rest) = head.split_at(head.find("://").expect("a URL with a scheme") + 3);
    let host_start = rest.rfind('@').map_or(0, |at| at + 1);
    let authority_end = rest[host_start..]
        .find('/')
        .map_or(rest.len(), |i| host_start + i);
    format!("{scheme}{}/{db}{query}", &rest[..authority_end])
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `body` with the URL of a new, empty PostgreSQL database, and drops it afterwards even
/// when `body` panics.
async fn with_pg<F, Fut>(test: &str, body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(base) = pg_base_url(test) else {
        return;
    };
    let name = unique_name("tenantctl_test");
    let mut admin = PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", redact(&base)));
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create the test database");
    let outcome = AssertUnwindSafe(body(with_database(&base, &name)))
        .catch_unwind()
        .await;
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .expect("drop the test database");
    let _ = admin.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `body` with the URL of a SQLite file in a new temporary repository.
async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    body(Store::default_url(dir.path())).await;
}

/// One test per backend for a check written once.
macro_rules! on_both_backends {
    ($check:ident, $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            with_sqlite(|url| async move { $check(&url).await }).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            with_pg(
                stringify!($postgres),
                |url| async move { $check(&url).await },
            )
            .await;
        }
    };
}

async fn open(url: &str) -> Store {
    Store::open(url)
        .await
        .unwrap_or_else(|e| panic!("open {}: {e}", redact(url)))
}

fn full_plan(name: &str) -> PlanRow {
    PlanRow {
        name: name.into(),
        display_name: "Professional ✓ \"quoted\" 'single'".into(),
        price_cents: 7999,
        currency: "USD".into(),
        cycle: "monthly".into(),
        trial_days: 14,
        nano_cpus: 1_000_000_000,
        memory_bytes: 512 * 1024 * 1024,
        pids: 256,
        storage_bytes: Some(50 * 1024 * 1024 * 1024),
        api_calls_per_month: Some(i64::MAX),
        ai_interactions_per_month: Some(0),
        users: Some(-1),
        rate_limit_rpm: Some(300),
        features: r#"["custom-domain","webhooks","ü"]"#.into(),
        revision: "0123456789abcdef0123456789abcdef01234567".into(),
        updated_at: 1_764_000_000,
    }
}

fn bare_plan(name: &str) -> PlanRow {
    PlanRow {
        name: name.into(),
        display_name: String::new(),
        price_cents: 0,
        currency: "EUR".into(),
        cycle: "yearly".into(),
        trial_days: 0,
        nano_cpus: 0,
        memory_bytes: i64::MIN,
        pids: 0,
        storage_bytes: None,
        api_calls_per_month: None,
        ai_interactions_per_month: None,
        users: None,
        rate_limit_rpm: None,
        features: "[]".into(),
        revision: String::new(),
        updated_at: 0,
    }
}

fn full_theme(name: &str) -> ThemeRow {
    ThemeRow {
        name: name.into(),
        display_name: "Upfront Modern".into(),
        version: "1.2.0".into(),
        image: Some("registry.example/storefront:4.2".into()),
        port: 8080,
        health_path: "/health".into(),
        health_interval_seconds: 10,
        config: r##"{"primaryColor":"#0f62fe","font":"Inter","nested":{"a":[1,2]}}"##.into(),
        revision: "r1".into(),
        updated_at: 1,
    }
}

fn bare_theme(name: &str) -> ThemeRow {
    ThemeRow {
        image: None,
        config: "{}".into(),
        ..full_theme(name)
    }
}

fn full_tenant(slug: &str) -> TenantRow {
    TenantRow {
        slug: slug.into(),
        display_name: "Acme Corp".into(),
        owner: format!("ops@{slug}.example"),
        plan: "professional".into(),
        theme: "modern".into(),
        state: "active".into(),
        domain: Some(format!("{slug}.example.com")),
        features: r#"["beta-checkout"]"#.into(),
        trial_ends_at: Some(1_765_000_000),
        api_key_sha256: Some(
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        ),
        applied_revision: Some("abc123".into()),
        applied_spec_hash: Some("sha256:feed".into()),
        url: Some("http://127.0.0.1:49153".into()),
        last_error: Some("line one\nline two\ttabbed".into()),
        desired_revision: Some("def456".into()),
        created_at: 100,
        updated_at: 200,
        progress_step: None,
        progress_percent: None,
        progress_at: None,
        error_step: None,
    }
}

fn bare_tenant(slug: &str) -> TenantRow {
    TenantRow {
        domain: None,
        trial_ends_at: None,
        api_key_sha256: None,
        applied_revision: None,
        applied_spec_hash: None,
        url: None,
        last_error: None,
        desired_revision: None,
        state: "cancelled".into(),
        features: "[]".into(),
        ..full_tenant(slug)
    }
}

async fn check_open_is_idempotent(url: &str) {
    let store = open(url).await;
    assert_eq!(store.observe().await.unwrap(), ObservedDb::default());
    assert!(store.events(None, 10).await.unwrap().is_empty());
    assert!(store.runs(10).await.unwrap().is_empty());
    store.upsert_plan(&full_plan("pro")).await.unwrap();
    // A second handle while the first is open, then a reopen after both close: no migration reruns.
    let again = open(url).await;
    assert_eq!(again.observe().await.unwrap().plans.len(), 1);
    again.close().await;
    store.close().await;
    let reopened = open(url).await;
    assert_eq!(
        reopened.observe().await.unwrap().plans["pro"],
        full_plan("pro")
    );
    let applied: i64 = with_pool!(reopened, |pool| {
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await
            .unwrap()
    });
    // Each migration exactly once: as many rows as files (both dialects ship the same set).
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied, files as i64);
    reopened.close().await;
}
on_both_backends!(
    check_open_is_idempotent,
    sqlite_open_is_idempotent,
    postgres_open_is_idempotent
);

async fn check_concurrent_opens(url: &str) {
    // Processes starting together (watch and tui) must not race each other's migration; 16 opens
    // reliably made two apply 0001 at once ("table plans already exists") before BEGIN IMMEDIATE.
    let opens: Vec<_> = (0..16)
        .map(|_| {
            let url = url.to_string();
            tokio::spawn(async move { Store::open(&url).await.map(|s| s.backend()) })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
}
on_both_backends!(
    check_concurrent_opens,
    sqlite_concurrent_opens,
    postgres_concurrent_opens
);

async fn check_rows_round_trip(url: &str) {
    let store = open(url).await;
    let plans = [full_plan("professional"), bare_plan("free")];
    let themes = [full_theme("modern"), bare_theme("classic")];
    let tenants = [full_tenant("acme"), bare_tenant("globex")];
    for p in &plans {
        store.upsert_plan(p).await.unwrap();
    }
    for t in &themes {
        store.upsert_theme(t).await.unwrap();
    }
    for t in &tenants {
        store.upsert_tenant(t).await.unwrap();
    }
    let expected = ObservedDb {
        plans: plans.iter().map(|r| (r.name.clone(), r.clone())).collect(),
        themes: themes.iter().map(|r| (r.name.clone(), r.clone())).collect(),
        tenants: tenants
            .iter()
            .map(|r| (r.slug.clone(), r.clone()))
            .collect(),
        features: Default::default(),
    };
    assert_eq!(store.observe().await.unwrap(), expected);
    store.close().await;
}
on_both_backends!(
    check_rows_round_trip,
    sqlite_rows_round_trip,
    postgres_rows_round_trip
);

async fn check_upsert_updates_in_place(url: &str) {
    let store = open(url).await;
    store.upsert_plan(&full_plan("p")).await.unwrap();
    store.upsert_theme(&full_theme("t")).await.unwrap();
    store.upsert_tenant(&full_tenant("acme")).await.unwrap();

    // Every column changes, including Some to None.
    let plan = PlanRow {
        name: "p".into(),
        ..bare_plan("p")
    };
    let theme = ThemeRow {
        display_name: "Classic".into(),
        version: "2.0.0".into(),
        port: 80,
        health_path: "/".into(),
        health_interval_seconds: 30,
        revision: "r2".into(),
        updated_at: 2,
        ..bare_theme("t")
    };
    let tenant = TenantRow {
        display_name: "Acme Inc".into(),
        owner: "new@acme.example".into(),
        plan: "free".into(),
        theme: "classic".into(),
        state: "suspended".into(),
        created_at: 999,
        updated_at: 300,
        ..bare_tenant("acme")
    };
    store.upsert_plan(&plan).await.unwrap();
    store.upsert_theme(&theme).await.unwrap();
    store.upsert_tenant(&tenant).await.unwrap();

    let seen = store.observe().await.unwrap();
    assert_eq!(seen.plans.len(), 1);
    assert_eq!(seen.plans["p"], plan);
    assert_eq!(seen.themes.len(), 1);
    assert_eq!(seen.themes["t"], theme);
    assert_eq!(seen.tenants.len(), 1);
    // created_at records the first write; everything else follows the latest.
    assert_eq!(
        seen.tenants["acme"],
        TenantRow {
            created_at: 100,
            ..tenant
        }
    );

    // And back from None to Some.
    store.upsert_plan(&full_plan("p")).await.unwrap();
    assert_eq!(store.observe().await.unwrap().plans["p"], full_plan("p"));
    store.close().await;
}
on_both_backends!(
    check_upsert_updates_in_place,
    sqlite_upsert_updates_in_place,
    postgres_upsert_updates_in_place
);

async fn check_deletes(url: &str) {
    let store = open(url).await;
    store.upsert_plan(&full_plan("a")).await.unwrap();
    store.upsert_plan(&full_plan("b")).await.unwrap();
    store.upsert_theme(&full_theme("t")).await.unwrap();
    store.upsert_tenant(&full_tenant("x")).await.unwrap();
    assert!(store.delete_plan("a").await.unwrap());
    assert!(!store.delete_plan("a").await.unwrap());
    assert!(store.delete_theme("t").await.unwrap());
    assert!(!store.delete_theme("t").await.unwrap());
    assert!(store.delete_tenant("x").await.unwrap());
    assert!(!store.delete_tenant("x").await.unwrap());
    let seen = store.observe().await.unwrap();
    assert_eq!(seen.plans.keys().collect::<Vec<_>>(), ["b"]);
    assert!(seen.themes.is_empty());
    assert!(seen.tenants.is_empty());
    store.close().await;
}
on_both_backends!(check_deletes, sqlite_deletes, postgres_deletes);

async fn check_runs_and_events(url: &str) {
    let store = open(url).await;
    let before = now_unix();
    let first = store.start_run("rev-1").await.unwrap();
    let second = store.start_run("rev-2").await.unwrap();
    assert!(second > first);

    store
        .record_event(Some(first), Some("acme"), "create", "created container")
        .await
        .unwrap();
    store
        .record_event(None, None, "lock", "apply lock taken by host:42")
        .await
        .unwrap();
    store
        .record_event(
            Some(second),
            Some("globex"),
            "failed",
            "health: 503\nretrying",
        )
        .await
        .unwrap();

    let all = store.events(None, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["failed", "lock", "create"],
        "newest first"
    );
    let acme = &store.events(Some("acme"), 100).await.unwrap();
    assert_eq!(acme.len(), 1);
    let e = &acme[0];
    assert_eq!(
        (
            e.run_id,
            e.tenant.as_deref(),
            e.kind.as_str(),
            e.message.as_str()
        ),
        (Some(first), Some("acme"), "create", "created container")
    );
    assert!(e.at >= before && e.at <= now_unix());
    assert_eq!(all[1].run_id, None);
    assert_eq!(all[1].tenant, None);
    assert_eq!(all[0].message, "health: 503\nretrying");
    assert_eq!(store.events(None, 1).await.unwrap(), all[..1].to_vec());

    let runs = store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].id, first);
    assert_eq!(
        (
            runs[1].revision.as_str(),
            runs[1].status.as_str(),
            runs[1].finished_at
        ),
        ("rev-1", "running", None)
    );
    store
        .finish_run(
            first,
            "succeeded",
            "Plan: 1 to create, 0 to update, 0 to replace, 0 to destroy.",
        )
        .await
        .unwrap();
    let done = store.runs(10).await.unwrap().remove(1);
    assert_eq!(done.status, "succeeded");
    assert!(done.summary.starts_with("Plan: 1 to create"));
    assert!(done.finished_at.is_some_and(|t| t >= done.started_at));
    assert!(done.started_at >= before);

    let missing = store.finish_run(second + 1000, "failed", "").await;
    assert!(
        matches!(missing, Err(StoreError::NoSuchRun { id, .. }) if id == second + 1000),
        "{missing:?}"
    );
    store.close().await;
}
on_both_backends!(
    check_runs_and_events,
    sqlite_runs_and_events,
    postgres_runs_and_events
);

async fn check_networks(url: &str) {
    let store = open(url).await;
    assert!(store.assign_network("acme", "10.123.0.0/28").await.unwrap());
    assert!(
        store.assign_network("acme", "10.123.0.0/28").await.unwrap(),
        "idempotent"
    );
    assert!(
        !store
            .assign_network("globex", "10.123.0.0/28")
            .await
            .unwrap(),
        "subnet taken"
    );
    assert!(
        !store
            .assign_network("acme", "10.123.0.16/28")
            .await
            .unwrap(),
        "slug already has a subnet"
    );
    assert!(
        store
            .assign_network("globex", "10.123.0.16/28")
            .await
            .unwrap()
    );
    let all = store.networks().await.unwrap();
    assert_eq!(
        all.into_iter().collect::<Vec<_>>(),
        [
            ("acme".to_string(), "10.123.0.0/28".to_string()),
            ("globex".to_string(), "10.123.0.16/28".to_string())
        ]
    );
    assert!(store.release_network("acme").await.unwrap());
    assert!(!store.release_network("acme").await.unwrap());
    assert!(
        store
            .assign_network("initech", "10.123.0.0/28")
            .await
            .unwrap()
    );
    store.close().await;
}
on_both_backends!(check_networks, sqlite_networks, postgres_networks);

async fn check_locks(url: &str) {
    let store = open(url).await;
    let hour = Duration::from_secs(3600);
    assert_eq!(store.lock_info("apply").await.unwrap(), None);
    assert!(store.try_lock("apply", "a", hour).await.unwrap());
    let held = store.lock_info("apply").await.unwrap().unwrap();
    assert_eq!(held.holder, "a");
    assert!(held.expires_at >= held.acquired_at + 3600);
    assert!(
        !store.try_lock("apply", "b", hour).await.unwrap(),
        "held by a"
    );
    assert!(store.try_lock("apply", "a", hour).await.unwrap(), "renewal");
    assert_eq!(
        store.lock_info("apply").await.unwrap().unwrap().acquired_at,
        held.acquired_at,
        "a renewal keeps acquired_at"
    );
    assert!(
        store.try_lock("other", "b", hour).await.unwrap(),
        "locks are per name"
    );
    assert!(
        !store.unlock("apply", "b").await.unwrap(),
        "not b's to release"
    );
    assert!(store.unlock("apply", "a").await.unwrap());
    assert!(store.try_lock("apply", "b", Duration::ZERO).await.unwrap());
    // A zero lease is expired at once, so another holder may take it over.
    assert!(store.try_lock("apply", "c", hour).await.unwrap());
    assert_eq!(store.lock_info("apply").await.unwrap().unwrap().holder, "c");

    // Many contenders at once: exactly one wins.
    let contenders: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.try_lock("race", &format!("h{i}"), hour).await })
        })
        .collect();
    let mut winners = 0;
    for c in contenders {
        winners += usize::from(c.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
    store.close().await;
}
on_both_backends!(check_locks, sqlite_locks, postgres_locks);

/// Runs one SQL statement on the store's pool (tests only: no typed API).
async fn exec(store: &Store, sql: &str) {
    let sql = AssertSqlSafe(sql.to_string());
    with_pool!(store, |pool| pool.execute(sql).await.map(|_| ())).expect("the statement runs");
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(600)
}

async fn check_leader_lease(url: &str) {
    // Two handles, as two processes would have.
    let (a, b) = (open(url).await, open(url).await);
    let ttl = Duration::from_secs(60);
    assert_eq!(a.leader().await.unwrap(), None);
    let first = a.acquire_leader("a:1:1:watch", "a", ttl).await.unwrap();
    let first = first.expect("a free lease is taken");
    assert_eq!(
        (first.term, first.holder.as_str(), first.host.as_str()),
        (1, "a:1:1:watch", "a")
    );
    assert!(first.live() && (59_000..=60_000).contains(&first.expires_in_ms()));
    assert_eq!(
        b.acquire_leader("b:2:1:watch", "b", ttl).await.unwrap(),
        None,
        "a live lease is never taken"
    );
    // Its own holder (a loop whose fence was lost while the lease lived on, e.g. a renewal whose
    // answer came late) takes it back at once, in a new term, without waiting for the lapse.
    let retaken = a.acquire_leader("a:1:1:watch", "a", ttl).await.unwrap();
    assert_eq!(retaken.map(|r| r.term), Some(2), "its holder takes it back");
    assert_eq!(
        a.renew_leader("a:1:1:watch", 1, ttl).await.unwrap(),
        None,
        "the lost term cannot be renewed"
    );
    let renewed = a.renew_leader("a:1:1:watch", 2, ttl).await.unwrap();
    assert_eq!(renewed.map(|r| r.term), Some(2), "a renewal keeps the term");
    assert_eq!(b.renew_leader("b:2:1:watch", 2, ttl).await.unwrap(), None);
    assert_eq!(a.renew_leader("a:1:1:watch", 3, ttl).await.unwrap(), None);

    // Given back: it lapses at once, and the next holder gets the next term.
    assert!(!b.release_leader("b:2:1:watch", 2).await.unwrap());
    assert!(a.release_leader("a:1:1:watch", 2).await.unwrap());
    assert!(!a.leader().await.unwrap().unwrap().live());
    assert_eq!(a.renew_leader("a:1:1:watch", 2, ttl).await.unwrap(), None);
    let second = b
        .acquire_leader("b:2:1:watch", "b", Duration::from_millis(300))
        .await;
    assert_eq!(second.unwrap().map(|r| r.term), Some(3));

    // Lapsed (not renewed in time): taken over in a new term; the old holder cannot renew it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.renew_leader("b:2:1:watch", 3, ttl).await.unwrap(), None);
    let third = a.acquire_leader("a:1:1:watch", "a", ttl).await.unwrap();
    assert_eq!(third.map(|r| r.term), Some(4));
    let seen = b.leader().await.unwrap().unwrap();
    assert_eq!((seen.term, seen.holder.as_str()), (4, "a:1:1:watch"));

    // Many contenders for a lapsed lease: exactly one wins, with exactly the next term.
    a.release_leader("a:1:1:watch", 4).await.unwrap();
    let contenders: Vec<_> = (0..8)
        .map(|i| {
            let store = a.clone();
            tokio::spawn(async move {
                store
                    .acquire_leader(&format!("h:{i}:1:watch"), "h", ttl)
                    .await
            })
        })
        .collect();
    let mut terms = Vec::new();
    for c in contenders {
        terms.extend(c.await.unwrap().unwrap().map(|r| r.term));
    }
    assert_eq!(terms, [5]);
    a.close().await;
    b.close().await;
}
on_both_backends!(
    check_leader_lease,
    sqlite_leader_lease,
    postgres_leader_lease
);

async fn check_fencing(url: &str) {
    let store = open(url).await;
    let ttl = Duration::from_secs(60);
    let lease = store
        .acquire_leader("a:1:1:watch", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    let leader = store.fenced(Fence::new(lease.term, "a:1:1:watch", far()));
    // The leader writes, and its runs and events carry its term.
    leader.upsert_plan(&full_plan("starter")).await.unwrap();
    let run = leader.start_run("rev1").await.unwrap();
    leader
        .record_event(Some(run), Some("acme"), "container.create", "x")
        .await
        .unwrap();
    assert!(
        leader
            .try_lock("apply", "a:1:1:watch:term=1", ttl)
            .await
            .unwrap()
    );
    let terms: Vec<(Option<i64>,)> = with_pool!(store, |pool| {
        sqlx::query_as("SELECT term FROM events UNION ALL SELECT term FROM reconcile_runs")
            .fetch_all(pool)
            .await
    })
    .unwrap();
    assert_eq!(terms, [(Some(1),), (Some(1),)]);

    // Deposed by force (a higher term, another holder): its next write is refused, and so is
    // every one after it, without asking the database again.
    exec(
        &store,
        "UPDATE leader SET term = term + 1, holder = 'usurper:9:9:watch', host = 'usurper'",
    )
    .await;
    let refused = leader.upsert_plan(&full_plan("late")).await.unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    let text = refused.to_string();
    assert!(
        text.contains("term 1")
            && text.contains("the lease is now term 2, held by usurper:9:9:watch"),
        "{text}"
    );
    assert!(
        !leader.fence().unwrap().is_valid(),
        "a refusal revokes the fence"
    );
    let later = leader.finish_run(run, "succeeded", "").await.unwrap_err();
    assert!(
        later.is_fenced() && later.to_string().contains("not renewed in time here"),
        "{later}"
    );
    for refused in [
        leader.record_event(None, None, "late", "x").await.err(),
        leader.assign_network("acme", "10.0.0.0/28").await.err(),
        leader.delete_plan("starter").await.err(),
        leader.insert_usage_samples(&[]).await.err(),
        leader
            .try_lock("apply", "a:1:1:watch:term=1", ttl)
            .await
            .err(),
    ] {
        assert!(refused.is_some_and(|e| e.is_fenced()));
    }
    let db = store.observe().await.unwrap();
    assert!(db.plans.contains_key("starter") && !db.plans.contains_key("late"));
    assert_eq!(store.networks().await.unwrap().len(), 0);
    assert_eq!(store.runs(10).await.unwrap()[0].status, "running");

    // The usurper's own fence holds; a plain handle (`tenantctl apply`) is not fenced at all.
    let usurper = store.fenced(Fence::new(2, "usurper:9:9:watch", far()));
    usurper.upsert_plan(&full_plan("usurped")).await.unwrap();
    store.upsert_plan(&full_plan("plain")).await.unwrap();
    // It marks the run the deposed leader left running as interrupted.
    assert_eq!(usurper.interrupt_runs_before(2).await.unwrap(), 1);
    assert_eq!(store.runs(10).await.unwrap()[0].status, "interrupted");

    // A lease that lapsed is no right to write, even before anyone takes it over.
    exec(&store, "UPDATE leader SET expires_at_ms = 0").await;
    let lapsed = usurper.upsert_plan(&full_plan("lapsed")).await.unwrap_err();
    assert!(
        lapsed.to_string().contains("lapsed before it was renewed"),
        "{lapsed}"
    );

    // A local deadline that passed refuses without the database.
    let lease = store
        .acquire_leader("b:2:1:watch", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    let past = store.fenced(Fence::new(lease.term, "b:2:1:watch", Instant::now()));
    let local = past.upsert_plan(&full_plan("x")).await.unwrap_err();
    assert!(
        local.to_string().contains("not renewed in time here"),
        "{local}"
    );
    store.close().await;
}
on_both_backends!(check_fencing, sqlite_fencing, postgres_fencing);

#[tokio::test]
async fn fence_deadlines_move_on_until_revoked() {
    let fence = Fence::new(1, "a", Instant::now() + Duration::from_millis(100));
    let lost = tokio::spawn({
        let fence = fence.clone();
        async move {
            let started = Instant::now();
            fence.lost().await;
            started.elapsed()
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fence.extend(Instant::now() + Duration::from_millis(200));
    fence.extend(Instant::now());
    assert!(
        fence.is_valid(),
        "an earlier deadline never replaces a later one"
    );
    let took = lost.await.unwrap();
    assert!(took >= Duration::from_millis(240), "{took:?}");
    assert!(!fence.is_valid());
    let revoked = Fence::new(2, "a", far());
    revoked.revoke();
    revoked.extend(far());
    assert!(!revoked.is_valid(), "a revoked fence stays revoked");
    tokio::time::timeout(Duration::from_secs(1), revoked.lost())
        .await
        .expect("a revoked fence is lost at once");
}

/// PostgreSQL: a takeover in flight makes a fenced write wait, then refuses it; a fenced write
/// in flight makes the takeover wait until it has committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fenced_writes_and_takeovers_are_ordered() {
    with_pg(
        "postgres_fenced_writes_and_takeovers_are_ordered",
        |url| async move {
            let store = open(&url).await;
            let ttl = Duration::from_secs(60);
            store
                .acquire_leader("a:1:1:watch", "a", ttl)
                .await
                .unwrap()
                .unwrap();
            let leader = store.fenced(Fence::new(1, "a:1:1:watch", far()));
            let mut takeover = PgConnection::connect(&url).await.unwrap();
            takeover.execute("BEGIN").await.unwrap();
            takeover
                .execute("UPDATE leader SET term = 2, holder = 'b:2:1:watch'")
                .await
                .unwrap();
            let write = tokio::spawn({
                let leader = leader.clone();
                async move { leader.upsert_plan(&full_plan("late")).await }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !write.is_finished(),
                "the write waits for the takeover in flight"
            );
            takeover.execute("COMMIT").await.unwrap();
            let refused = write.await.unwrap().unwrap_err();
            assert!(refused.to_string().contains("term 2"), "{refused}");
            let _ = takeover.close().await;
            assert!(!store.observe().await.unwrap().plans.contains_key("late"));
            store.close().await;
        },
    )
    .await;
}

#[tokio::test]
async fn sqlite_shared_across_hosts_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&Store::default_url(dir.path())).await;
    let hour = Duration::from_secs(3600);
    store.refuse_other_hosts("here").await.unwrap();
    store
        .try_lock("watch:here:1:1:watch", "here:1:1:watch", hour)
        .await
        .unwrap();
    store
        .try_lock("watch:gone:1:1:watch", "gone:1:1:watch", Duration::ZERO)
        .await
        .unwrap();
    store.refuse_other_hosts("here").await.unwrap();
    store
        .try_lock("watch:there:7:1:watch", "there:7:1:watch", hour)
        .await
        .unwrap();
    let e = store
        .refuse_other_hosts("here")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("in use by host `there` (there:7:1:watch)")
            && e.contains("cannot be shared across hosts")
            && e.contains("--database-url postgres://"),
        "{e}"
    );
    store
        .unlock("watch:there:7:1:watch", "there:7:1:watch")
        .await
        .unwrap();
    store
        .acquire_leader("far:3:1:watch", "far", hour)
        .await
        .unwrap();
    let e = store
        .refuse_other_hosts("here")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("host `far`"), "{e}");
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_dir_and_gitignore_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::default_url(dir.path());
    assert!(url.starts_with("sqlite://"));
    let store = open(&url).await;
    assert_eq!(store.backend(), Backend::Sqlite);
    assert_eq!(store.redacted_url(), url);
    let state = dir.path().join(".tenantctl");
    assert!(state.join("state.db").is_file());
    assert_eq!(
        std::fs::read_to_string(state.join(".gitignore")).unwrap(),
        "*\n"
    );
    store.close().await;

    // An operator's own .gitignore is left alone.
    std::fs::write(state.join(".gitignore"), "state.db\n").unwrap();
    open(&url).await.close().await;
    assert_eq!(
        std::fs::read_to_string(state.join(".gitignore")).unwrap(),
        "state.db\n"
    );
}

#[tokio::test]
async fn sqlite_other_dirs_get_no_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a").join("b").join("x.db");
    open(&format!("sqlite:{}", file.display()))
        .await
        .close()
        .await;
    assert!(file.is_file());
    assert!(!file.with_file_name(".gitignore").exists());
}

#[tokio::test]
async fn sqlite_paths_with_url_syntax_survive() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("my repo?#%41 ü");
    let store = open(&Store::default_url(&repo)).await;
    store.upsert_theme(&full_theme("t")).await.unwrap();
    store.close().await;
    assert!(repo.join(".tenantctl").join("state.db").is_file());
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data() {
    let store = open("sqlite::memory:").await;
    store.upsert_plan(&full_plan("p")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.observe().await.unwrap().plans["p"], full_plan("p"));
    store.close().await;
}

#[tokio::test]
async fn sqlite_modified_migration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::default_url(dir.path());
    let store = open(&url).await;
    with_pool!(store, |pool| {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = X'00'")
            .execute(pool)
            .await
            .unwrap();
    });
    store.close().await;
    let err = Store::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Migrate { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("migrating the database at sqlite://"),
        "{msg}"
    );
    assert!(msg.contains("modified"), "{msg}");
}

#[tokio::test]
async fn sqlite_unwritable_path_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let err = Store::open(&format!("sqlite://{}/sub/state.db", blocker.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::CreateDir { .. }), "{err:?}");
    assert!(err.to_string().contains("sub"), "{err}");
}

#[tokio::test]
async fn unsupported_schemes_are_refused_without_the_password() {
    for url in [
        "mysql://root:hunter2@localhost/db",
        "http://u:hunter2@example.com/",
        "/tmp/state.db",
        "",
        "POSTGRES://u:hunter2@h/db",
    ] {
        let err = Store::open(url).await.unwrap_err();
        assert!(
            matches!(err, StoreError::UnsupportedUrl { .. }),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("sqlite://PATH"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}

#[tokio::test]
async fn unreachable_postgres_fails_fast_without_the_password() {
    let started = Instant::now();
    let err = Store::open("postgres://tenantctl:s3cret-pw@127.0.0.1:1/tenantctl")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "cannot connect to the database at postgres://tenantctl:***@127.0.0.1:1/tenantctl: "
        ),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(!msg.contains("s3cret-pw"), "{msg}");
    assert!(!format!("{err:?}").contains("s3cret-pw"), "{err:?}");
}

#[tokio::test]
async fn invalid_postgres_url_is_a_clear_error() {
    let err = Store::open("postgres://u:s3cret-pw@h:notaport/db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("s3cret-pw"), "{err}");
}

#[tokio::test]
async fn postgres_wrong_password_and_missing_database_are_clear() {
    let Some(base) = pg_base_url("postgres_wrong_password_and_missing_database_are_clear") else {
        return;
    };
    let opts = PgConnectOptions::from_str(&base).unwrap();
    let host = opts.get_host();
    let port = opts.get_port();
    let user = opts.get_username();

    let bad = format!("postgres://{user}:Wr0ng-pa55word@{host}:{port}/postgres");
    let err = Store::open(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("password authentication failed"), "{msg}");
    assert!(!msg.contains("Wr0ng-pa55word"), "{msg}");

    let missing = unique_name("tenantctl_missing");
    let err = Store::open(&with_database(&base, &missing))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&missing) && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn postgres_test_urls_get_their_database_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    assert_eq!(
        with_database("postgresql://u:a/b@h/db", "x"),
        "postgresql://u:a/b@h/x"
    );
}

#[test]
fn default_url_names_the_state_file() {
    assert_eq!(
        Store::default_url(Path::new("/srv/repo")),
        "sqlite:///srv/repo/.tenantctl/state.db"
    );
}

async fn check_audit_events(url: &str) {
    let store = open(url).await;
    let run = store.start_run("4f2a9c1e").await.unwrap();
    let detail = r#"[{"field":"owner","before":"a@x","after":"b@x"}]"#;
    store
        .record_event_detail(
            Some(run),
            Some("acme"),
            "tenant-record.update",
            "m1",
            Some(detail),
        )
        .await
        .unwrap();
    store
        .record_event(None, Some("acme"), "tenant.trial-ended", "m2")
        .await
        .unwrap();
    store
        .record_event(Some(run), Some("globex"), "tenant-record.create", "m3")
        .await
        .unwrap();
    let q = |tenant: Option<&str>, like: Option<&str>, after: Option<i64>, limit: i64| AuditQuery {
        tenant: tenant.map(str::to_string),
        kind_like: like.map(str::to_string),
        since: None,
        after,
        limit,
    };
    let all = store.audit_events(&q(None, None, None, 100)).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["m1", "m2", "m3"],
        "oldest first"
    );
    assert_eq!(all[0].revision.as_deref(), Some("4f2a9c1e"));
    assert_eq!(all[0].detail.as_deref(), Some(detail));
    assert_eq!(all[0].term, None);
    assert_eq!(
        (all[1].revision.as_deref(), all[1].detail.as_deref()),
        (None, None)
    );
    assert_eq!(store.last_event_id().await.unwrap(), all[2].id);

    // The newest `limit`, still oldest first; after an id, the next ones.
    let newest = store.audit_events(&q(None, None, None, 2)).await.unwrap();
    assert_eq!(
        newest
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["m2", "m3"]
    );
    let after = store
        .audit_events(&q(None, None, Some(all[0].id), 1))
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(),
        ["m2"]
    );

    let acme = store
        .audit_events(&q(Some("acme"), None, None, 100))
        .await
        .unwrap();
    assert_eq!(acme.len(), 2);
    let records = store
        .audit_events(&q(None, Some("tenant-record.%"), None, 100))
        .await
        .unwrap();
    assert_eq!(records.len(), 2);
    // `_` is escaped: a literal underscore, not any character.
    let none = store
        .audit_events(&q(None, Some("tenant\\_record.%"), None, 100))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let mut since = q(None, None, None, 100);
    since.since = Some(now_unix() + 3600);
    assert!(store.audit_events(&since).await.unwrap().is_empty());

    // A leader's events carry its term.
    let lease = store
        .acquire_leader("a:1:1:watch", "a", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let leader = store.fenced(Fence::new(lease.term, "a:1:1:watch", far()));
    leader
        .record_event(None, Some("acme"), "container.create", "m4")
        .await
        .unwrap();
    let led = store
        .audit_events(&q(None, None, Some(all[2].id), 100))
        .await
        .unwrap();
    assert_eq!(led.len(), 1);
    assert_eq!(led[0].term, Some(lease.term));
    store.close().await;
}
on_both_backends!(
    check_audit_events,
    sqlite_audit_events,
    postgres_audit_events
);

fn notification(name: &str, events: &[&str]) -> crate::model::Notification {
    crate::model::Notification {
        name: name.into(),
        origin: crate::model::Origin {
            path: format!("notifications/{name}.yaml"),
            line: 1,
            column: 1,
        },
        url: "http://127.0.0.1:9/hook".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        secret_env: None,
        format: crate::model::NotificationFormat::Json,
    }
}

/// The outbox: an event is queued for each notification that wants it, in its own
/// transaction; the same (notification, tenant, kind, revision) is queued once; a usage threshold
/// at another level is another condition; events about notifications are never queued.
async fn check_outbox_dedupe(url: &str) {
    let store = open(url).await;
    let notifications: BTreeMap<String, crate::model::Notification> = [
        (
            "ops".to_string(),
            notification("ops", &["tenant.*", "drift"]),
        ),
        (
            "billing".to_string(),
            notification("billing", &["usage.threshold"]),
        ),
    ]
    .into_iter()
    .collect();
    // Nothing is queued before notifications are known.
    store
        .record_event(None, Some("acme"), "tenant.failed", "before")
        .await
        .unwrap();
    assert!(store.outbox(100).await.unwrap().is_empty());
    store.set_notifications(crate::notify::Routes::of(&notifications, "rev-1"));
    let run = store.start_run("rev-run").await.unwrap();
    for _ in 0..3 {
        store
            .record_event(Some(run), Some("acme"), "tenant.failed", "boom")
            .await
            .unwrap();
    }
    store
        .record_event(Some(run), Some("globex"), "tenant.failed", "boom")
        .await
        .unwrap();
    store
        .record_event(None, Some("acme"), "drift", "x")
        .await
        .unwrap();
    store
        .record_event(None, Some("acme"), "drift", "x")
        .await
        .unwrap();
    store
        .record_event(None, None, "notification.failed", "never queued")
        .await
        .unwrap();
    store
        .record_event(None, Some("acme"), "revision.invalid", "nobody wants it")
        .await
        .unwrap();
    for level in [80, 80, 100] {
        store
            .raise_usage_threshold("acme", "api_calls", "2026-12", level, now_unix(), "m")
            .await
            .unwrap();
    }
    let mut rows: Vec<(String, String, String, String, String)> = store
        .outbox(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.notification, r.tenant, r.kind, r.revision, r.condition))
        .collect();
    rows.sort();
    let row = |n: &str, t: &str, k: &str, r: &str, c: &str| {
        (
            n.to_string(),
            t.to_string(),
            k.to_string(),
            r.to_string(),
            c.to_string(),
        )
    };
    assert_eq!(
        rows,
        vec![
            row(
                "billing",
                "acme",
                "usage.threshold",
                "rev-1",
                "api_calls/2026-12/100"
            ),
            row(
                "billing",
                "acme",
                "usage.threshold",
                "rev-1",
                "api_calls/2026-12/80"
            ),
            row("ops", "acme", "drift", "rev-1", ""),
            row("ops", "acme", "tenant.failed", "rev-run", ""),
            row("ops", "globex", "tenant.failed", "rev-run", ""),
        ]
    );
    // A new revision is a new condition.
    store.set_notifications(crate::notify::Routes::of(&notifications, "rev-2"));
    store
        .record_event(None, Some("acme"), "drift", "x")
        .await
        .unwrap();
    assert_eq!(store.outbox(100).await.unwrap().len(), 6);
    // Claimed rows are not claimed twice while the claim holds; settling records an event.
    let now = now_unix();
    let claimed = store.claim_notifications(now, 60, 100).await.unwrap();
    assert_eq!(claimed.len(), 6);
    assert!(
        store
            .claim_notifications(now, 60, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let first = &claimed[0];
    store
        .settle_notification(
            first,
            "delivered",
            now,
            None,
            ("notification.delivered", "ok"),
        )
        .await
        .unwrap();
    let settled = store
        .outbox(100)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == first.id)
        .unwrap();
    assert_eq!((settled.state.as_str(), settled.attempts), ("delivered", 1));
    assert!(settled.delivered_at.is_some());
    let delivered = store.events(None, 100).await.unwrap();
    assert_eq!(delivered[0].kind, "notification.delivered");
    assert_eq!(
        store.outbox(100).await.unwrap().len(),
        6,
        "not queued itself"
    );
    store.close().await;
}
on_both_backends!(
    check_outbox_dedupe,
    outbox_dedupe_sqlite,
    outbox_dedupe_postgres
);

async fn check_api_keys_and_features(url: &str) {
    let store = open(url).await;
    let d1 = "a".repeat(64);
    let d2 = "b".repeat(64);
    let k1 = ApiKeyRow::new("acme", "default", &d1, 100, None);
    let k2 = ApiKeyRow::new("acme", "ci", &d2, 110, Some(1_000));
    store
        .insert_api_key(&k1, "tenant.key-created", "API key `default` created")
        .await
        .unwrap();
    store
        .insert_api_key(&k2, "tenant.key-created", "API key `ci` created")
        .await
        .unwrap();
    assert!(
        store
            .insert_api_key(&k2, "tenant.key-created", "again")
            .await
            .is_err(),
        "one row per tenant and id"
    );
    assert_eq!(
        store.api_keys(Some("acme")).await.unwrap(),
        [k1.clone(), k2.clone()]
    );
    assert!(store.api_keys(Some("globex")).await.unwrap().is_empty());

    // Revoked at a time (a rotation's grace): only once, and never later than it was.
    let n = store
        .revoke_api_keys(
            "acme",
            std::slice::from_ref(&k1.id),
            500,
            "tenant.key-rotated",
            "rotated",
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = store
        .revoke_api_keys(
            "acme",
            std::slice::from_ref(&k1.id),
            600,
            "tenant.key-revoked",
            "again",
        )
        .await
        .unwrap();
    assert_eq!(n, 0, "a later revocation does not postpone an earlier one");
    let n = store
        .revoke_api_keys(
            "acme",
            std::slice::from_ref(&k1.id),
            400,
            "tenant.key-revoked",
            "now",
        )
        .await
        .unwrap();
    assert_eq!(n, 1, "an earlier one wins");

    // Last use moves forward by a minute at least.
    let used = |at| vec![("acme".to_string(), k2.id.clone(), at)];
    assert_eq!(store.touch_api_keys(&used(200), 60).await.unwrap(), 1);
    assert_eq!(store.touch_api_keys(&used(230), 60).await.unwrap(), 0);
    assert_eq!(store.touch_api_keys(&used(150), 60).await.unwrap(), 0);
    assert_eq!(store.touch_api_keys(&used(260), 60).await.unwrap(), 1);
    let rows = store.api_keys(None).await.unwrap();
    assert_eq!(rows[0].revoked_at, Some(400));
    assert_eq!(rows[1].last_used_at, Some(260));
    let kinds: Vec<String> = store
        .events(Some("acme"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "tenant.key-created",
        "tenant.key-rotated",
        "tenant.key-revoked",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }

    store
        .set_tenant_features(
            "acme",
            &[
                ("beta".into(), "tenant".into()),
                ("webhooks".into(), "plan".into()),
            ],
        )
        .await
        .unwrap();
    store
        .set_tenant_features("acme", &[("webhooks".into(), "plan".into())])
        .await
        .unwrap();
    let flags = store.tenant_features(None).await.unwrap();
    assert_eq!(
        flags,
        [FeatureRow {
            tenant: "acme".into(),
            flag: "webhooks".into(),
            source: "plan".into()
        }]
    );
    assert_eq!(
        store.observe().await.unwrap().features["acme"]["webhooks"],
        "plan"
    );
    store.close().await;
}
on_both_backends!(
    check_api_keys_and_features,
    sqlite_api_keys_and_features,
    postgres_api_keys_and_features
);

/// Whether `changes` says "changed" within a few seconds (PostgreSQL's notifications arrive
/// after the commit, not with it).
async fn changed_soon(changes: &mut RowChanges) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if changes.changed().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What "no change" looks like: nothing said for a while (long enough for a notification).
async fn unchanged(changes: &mut RowChanges) -> bool {
    tokio::time::sleep(Duration::from_millis(300)).await;
    !changes.changed().await
}

async fn check_row_changes(url: &str) {
    let store = open(url).await;
    let mut changes = store.follow_row_changes().await;
    assert!(changes.changed().await, "nothing seen yet: changed");
    assert!(
        unchanged(&mut changes).await,
        "asked twice with nothing between"
    );

    store.upsert_tenant(&full_tenant("acme")).await.unwrap();
    assert!(changed_soon(&mut changes).await, "a tenant row written");
    assert!(unchanged(&mut changes).await, "said once");

    // Rows a plan does not compare: the events, the leader's lease, usage.
    store
        .record_event(None, Some("acme"), "drift", "a message")
        .await
        .unwrap();
    assert!(
        unchanged(&mut changes).await,
        "an event is no change of the rows"
    );

    // Another program (the SaaS app) writing by hand, each compared table.
    for sql in [
        "UPDATE tenants SET owner = 'someone@else.example' WHERE slug = 'acme'",
        "INSERT INTO tenant_features (tenant, flag, source) VALUES ('acme', 'sso', 'tenant')",
        "DELETE FROM tenant_features WHERE tenant = 'acme'",
    ] {
        exec(&store, sql).await;
        assert!(changed_soon(&mut changes).await, "{sql}");
        assert!(unchanged(&mut changes).await, "{sql}: said once");
    }
    store.upsert_plan(&bare_plan("free")).await.unwrap();
    assert!(changed_soon(&mut changes).await, "a plan row written");
    store.upsert_theme(&bare_theme("classic")).await.unwrap();
    assert!(changed_soon(&mut changes).await, "a theme row written");

    // A write rolled back changed nothing.
    with_pool!(store, |pool| async {
        let mut tx = pool.begin().await?;
        tx.execute("DELETE FROM tenants").await?;
        tx.rollback().await
    }
    .await)
    .unwrap();
    assert!(unchanged(&mut changes).await, "rolled back");

    // Rows read but not kept: the next ask says "changed" whatever happened.
    changes.forget();
    assert!(changes.changed().await, "forgotten");
    drop(changes);
    store.close().await;
}
on_both_backends!(check_row_changes, sqlite_row_changes, postgres_row_changes);
