use super::*;

fn plan_row() -> PlanRow {
    PlanRow {
        name: "pro".into(),
        display_name: "Pro".into(),
        price_cents: 7999,
        currency: "USD".into(),
        cycle: "monthly".into(),
        trial_days: 14,
        nano_cpus: 1_000_000_000,
        memory_bytes: 512 << 20,
        pids: 256,
        storage_bytes: None,
        api_calls_per_month: Some(100_000),
        ai_interactions_per_month: None,
        users: Some(10),
        rate_limit_rpm: None,
        features: "[\"webhooks\"]".into(),
        revision: "abc".into(),
        updated_at: 1_700_000_000,
    }
}

fn theme_row() -> ThemeRow {
    ThemeRow {
        name: "modern".into(),
        display_name: "Modern".into(),
        version: "1.2.0".into(),
        image: None,
        port: 8080,
        health_path: "/health".into(),
        health_interval_seconds: 10,
        config: "{}".into(),
        revision: "abc".into(),
        updated_at: 1,
    }
}

fn tenant_row() -> TenantRow {
    TenantRow {
        slug: "acme".into(),
        display_name: "Acme".into(),
        owner: "ops@acme.example".into(),
        plan: "pro".into(),
        theme: "modern".into(),
        state: "active".into(),
        domain: Some("acme.example".into()),
        features: "[]".into(),
        trial_ends_at: Some(1_800_000_000),
        api_key_sha256: None,
        applied_revision: Some("abc".into()),
        applied_spec_hash: None,
        url: None,
        last_error: None,
        created_at: 1,
        updated_at: 2,
    }
}

async fn round_trip(url: &str) {
    let store = Store::open(url).await.unwrap();
    assert!(store.observe().await.unwrap().plans.is_empty());
    store.upsert_plan(&plan_row()).await.unwrap();
    store.upsert_theme(&theme_row()).await.unwrap();
    store.upsert_tenant(&tenant_row()).await.unwrap();
    let seen = store.observe().await.unwrap();
    assert_eq!(seen.plans["pro"], plan_row());
    assert_eq!(seen.themes["modern"], theme_row());
    assert_eq!(seen.tenants["acme"], tenant_row());

    let mut changed = plan_row();
    changed.price_cents = 1;
    changed.storage_bytes = Some(5 << 30);
    changed.api_calls_per_month = None;
    store.upsert_plan(&changed).await.unwrap();
    let mut t = tenant_row();
    t.domain = None;
    t.state = "suspended".into();
    store.upsert_tenant(&t).await.unwrap();
    let seen = store.observe().await.unwrap();
    assert_eq!(seen.plans.len(), 1);
    assert_eq!(seen.plans["pro"], changed);
    assert_eq!(seen.tenants["acme"], t);
    store.close().await;
    // Opening again runs no migration twice and keeps the rows.
    let again = Store::open(url).await.unwrap();
    assert_eq!(again.observe().await.unwrap().plans["pro"], changed);
    again.close().await;
}

#[tokio::test]
async fn sqlite_creates_its_file_ignored_by_git_and_round_trips_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = Store::default_url(dir.path());
    round_trip(&url).await;
    assert!(dir.path().join(".tenantctl/state.db").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".tenantctl/.gitignore")).unwrap(),
        "*\n"
    );
}

#[tokio::test]
async fn postgres_round_trips_rows() {
    let Ok(admin) = std::env::var("TENANTCTL_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "TENANTCTL_TEST_POSTGRES_URL must be set in CI"
        );
        eprintln!("note: TENANTCTL_TEST_POSTGRES_URL unset; PostgreSQL store test skipped");
        return;
    };
    install_default_drivers();
    let name = format!("tenantctl_store_{}", std::process::id());
    let pool = AnyPool::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name}"
    )))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    round_trip(&format!("{base}/{name}")).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_urls_fail_clearly_without_leaking_the_password() {
    let e = Store::open("mysql://u:pw@host/db")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("unsupported database URL `mysql://u:***@host/db`"),
        "{e}"
    );
    let started = std::time::Instant::now();
    let e = Store::open("postgres://tenantctl:hunter2@127.0.0.1:1/x")
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cannot connect to the database at postgres://tenantctl:***@127.0.0.1:1/x"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn redaction() {
    assert_eq!(redact("postgres://a:b@h/d"), "postgres://a:***@h/d");
    assert_eq!(redact("postgres://a@h/d"), "postgres://a@h/d");
    assert_eq!(redact("sqlite:///x/y.db"), "sqlite:///x/y.db");
}
