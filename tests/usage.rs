//! Usage metering: the store's usage rows on SQLite and PostgreSQL, and `tenantctl meter` /
//! `tenantctl usage` against tenants applied on the real engine.

use crate::support::{Cleanup, Postgres, Repo, http, sqlite_url, unique_namespace, unique_pool};
use std::time::Duration;
use tenantctl::store::{DAY, HOUR, Rollup, Store, UsageSample};

// 2025-06-01T10:00:00Z
const T0: i64 = 1_748_772_000;

fn sample(tenant: &str, at: i64, mem: i64, rx: i64, api: Option<i64>) -> UsageSample {
    UsageSample {
        tenant: tenant.into(),
        at,
        cpu_percent: Some(mem as f64 / 10.0),
        memory_bytes: mem,
        memory_limit_bytes: 1 << 30,
        net_rx_bytes: rx,
        net_tx_bytes: 0,
        blk_read_bytes: 0,
        blk_write_bytes: rx * 2,
        api_calls_month: api,
        ai_interactions_month: api.map(|_| 0),
        month: api.map(|_| "2025-06".into()),
        storage_bytes: None,
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

async fn check_rollup_is_idempotent_and_prune_keeps_rollups(url: &str) {
    let store = Store::open(url).await.unwrap();
    let samples: Vec<UsageSample> = (0..6)
        .map(|i| sample("acme", T0 + i * 1_200, 100 + i, 1_000 * i, Some(i)))
        .chain([sample("globex", T0 + 30, 7, 0, None)])
        .collect();
    store.insert_usage_samples(&samples).await.unwrap();
    let first = store.rollup_usage_from(T0).await.unwrap();
    let hourly = store.usage_buckets(Rollup::Hourly, None, 0).await.unwrap();
    let daily = store.usage_buckets(Rollup::Daily, None, 0).await.unwrap();
    assert_eq!(first.hourly, 3, "acme in two hours, globex in one");
    assert_eq!(first.daily, 2);
    assert_eq!(hourly.len(), 3);
    assert_eq!(hourly[0].samples, 3);
    assert_eq!(hourly[0].net_rx_delta, 2_000);
    assert_eq!(
        hourly[1].net_rx_delta, 3_000,
        "growth across the hour boundary counts"
    );
    assert_eq!(hourly[1].api_calls_max, Some(5));
    assert_eq!(daily[0].samples, 6);
    assert_eq!(daily[0].net_rx_delta, 5_000);
    assert_eq!(daily[0].blk_write_delta, 10_000);
    assert_eq!(daily[0].mem_max, 105);
    // Re-running (as every pass does) and the per-pass rollup leave the same rows.
    store.rollup_usage_from(T0).await.unwrap();
    store.rollup_usage(T0 + 2 * HOUR).await.unwrap();
    assert_eq!(
        store.usage_buckets(Rollup::Hourly, None, 0).await.unwrap(),
        hourly
    );
    assert_eq!(
        store.usage_buckets(Rollup::Daily, None, 0).await.unwrap(),
        daily
    );
    assert_eq!(
        store
            .usage_buckets(Rollup::Hourly, Some("globex"), 0)
            .await
            .unwrap()
            .len(),
        1
    );
    // The newest month counters per tenant.
    let counters = store.usage_month_counters("2025-06", None).await.unwrap();
    assert_eq!(counters["acme"].0, 5);
    assert!(!counters.contains_key("globex"), "globex never answered");
    // Pruning drops raw samples only.
    assert_eq!(store.prune_usage_samples(T0 + HOUR).await.unwrap(), 4);
    assert_eq!(
        store.usage_samples(None, 0, i64::MAX).await.unwrap().len(),
        3
    );
    assert_eq!(
        store
            .usage_buckets(Rollup::Daily, None, T0 - DAY)
            .await
            .unwrap(),
        daily
    );
    store.close().await;
}

async fn check_thresholds_are_raised_once_per_period(url: &str) {
    let store = Store::open(url).await.unwrap();
    let raise = |level: i64, period: &'static str| {
        let store = store.clone();
        async move {
            store
                .raise_usage_threshold(
                    "acme",
                    "api_calls",
                    period,
                    level,
                    T0,
                    &format!("API calls at {level}% of 5 this month"),
                )
                .await
                .unwrap()
        }
    };
    assert!(raise(80, "2025-06").await);
    assert!(!raise(80, "2025-06").await, "80 again: quiet");
    assert!(raise(100, "2025-06").await);
    assert!(!raise(80, "2025-06").await, "lower again: quiet");
    assert!(!raise(100, "2025-06").await);
    assert!(raise(80, "2025-07").await, "a new month starts over");
    let levels = store.usage_threshold_levels().await.unwrap();
    assert_eq!(
        levels[&("acme".into(), "api_calls".into(), "2025-06".into())],
        100
    );
    let events = store.events(Some("acme"), 100).await.unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.message.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("usage.threshold", "API calls at 80% of 5 this month"),
            ("usage.threshold", "API calls at 100% of 5 this month"),
            ("usage.threshold", "API calls at 80% of 5 this month"),
        ]
    );
    assert_eq!(events[0].at, T0);
    store.close().await;
}

fn sqlite_db() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("state.db").display());
    (dir, url)
}

#[test]
fn rollup_is_idempotent_and_prune_keeps_rollups_sqlite() {
    let (_dir, url) = sqlite_db();
    block_on(check_rollup_is_idempotent_and_prune_keeps_rollups(&url));
}

#[test]
fn rollup_is_idempotent_and_prune_keeps_rollups_postgres() {
    let Some(pg) = Postgres::create() else { return };
    block_on(check_rollup_is_idempotent_and_prune_keeps_rollups(&pg.url));
}

#[test]
fn thresholds_are_raised_once_per_period_sqlite() {
    let (_dir, url) = sqlite_db();
    block_on(check_thresholds_are_raised_once_per_period(&url));
}

#[test]
fn thresholds_are_raised_once_per_period_postgres() {
    let Some(pg) = Postgres::create() else { return };
    block_on(check_thresholds_are_raised_once_per_period(&pg.url));
}

/// Apply the example (with a 5-call monthly quota on the starter plan), call the API, meter
/// twice, and read it all back.
#[test]
fn meter_samples_running_tenants_and_usage_reports_them() {
    let repo = Repo::example();
    repo.edit(
        "plans/starter.yaml",
        "apiCallsPerMonth: 10000",
        "apiCallsPerMonth: 5",
    )
    .commit("tiny starter quota");
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    let pool = unique_pool();
    let run = |args: &[&str]| {
        let out = repo
            .tenantctl()
            .args(["--namespace", &ns])
            .env("TENANTCTL_SUBNET_POOL", &pool)
            .timeout(Duration::from_secs(300))
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "tenantctl {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let applied = run(&["apply", "--auto-approve"]);
    let key = |slug: &str| {
        applied
            .lines()
            .find(|l| l.trim_start().starts_with(slug) && l.contains("tk_"))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("a key for {slug} in:\n{applied}"))
            .to_string()
    };
    let db_url = sqlite_url(&repo);
    let site = |slug: &str| {
        let url = crate::support::db(&db_url).tenants[slug]
            .url
            .clone()
            .expect("a URL is recorded");
        url.trim_end_matches('/').to_string()
    };
    // Three calls on acme (professional), six on hooli (starter, quota 5: the sixth is refused).
    let acme_key = key("acme");
    for _ in 0..3 {
        let auth = format!("Bearer {acme_key}");
        let (status, _, _) = http(
            "GET",
            &format!("{}/api/ping", site("acme")),
            &[("Authorization", &auth)],
        );
        assert_eq!(status, 200);
    }
    let hooli_key = key("hooli");
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            http(
                "GET",
                &format!("{}/api/ping", site("hooli")),
                &[("X-API-Key", &hooli_key)],
            )
            .0
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);

    let first = run(&["meter"]);
    assert!(first.contains("Stored 5 samples"), "{first}");
    assert!(
        first.contains("usage.threshold: API calls at 100% of 5 this month"),
        "{first}"
    );
    let second: serde_json::Value =
        serde_json::from_str(&run(&["meter", "--output", "json"])).unwrap();
    assert_eq!(second["samples"].as_array().unwrap().len(), 5);
    // Versioned, with each Unix time also in RFC 3339.
    assert_eq!(second["format_version"], 1);
    let at = second["at"].as_i64().unwrap();
    assert_eq!(
        second["at_rfc3339"].as_str().unwrap(),
        tenantctl::calendar::rfc3339(at)
    );
    assert!(
        second["samples"][0]["at_rfc3339"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(
        second["events"].as_array().unwrap().len(),
        0,
        "no repeat: {second}"
    );

    // Every running tenant (initech is suspended) has two samples with memory in use.
    let samples = block_on(async {
        let store = Store::open(&db_url).await.unwrap();
        let s = store.usage_samples(None, 0, i64::MAX).await.unwrap();
        let events = store.events(Some("hooli"), 100).await.unwrap();
        store.close().await;
        (s, events)
    });
    let (samples, hooli_events) = samples;
    for slug in ["acme", "globex", "hooli", "stark", "umbrella"] {
        let mine: Vec<&UsageSample> = samples.iter().filter(|s| s.tenant == slug).collect();
        assert_eq!(mine.len(), 2, "{slug}: {samples:?}");
        assert!(mine.iter().all(|s| s.memory_bytes > 0), "{slug}: {mine:?}");
        assert!(mine.iter().all(|s| s.api_calls_month.is_some()), "{slug}");
    }
    assert!(samples.iter().all(|s| s.tenant != "initech"));
    let acme_api = samples
        .iter()
        .filter(|s| s.tenant == "acme")
        .map(|s| s.api_calls_month);
    assert!(acme_api.into_iter().all(|a| a == Some(3)));
    let thresholds: Vec<&str> = hooli_events
        .iter()
        .filter(|e| e.kind == "usage.threshold")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(thresholds, ["API calls at 100% of 5 this month"]);

    // The report: every tenant, counters against quotas, and an invoice preview.
    let report: serde_json::Value =
        serde_json::from_str(&run(&["usage", "--output", "json"])).unwrap();
    let tenants = report["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 6);
    assert_eq!(report["format_version"], 1);
    assert!(
        report["generated_at_rfc3339"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        report["window_start_rfc3339"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let acme = tenants.iter().find(|t| t["tenant"] == "acme").unwrap();
    assert_eq!(acme["samples"], 2);
    assert_eq!(acme["api_calls"]["used"], 3);
    assert_eq!(acme["api_calls"]["quota"], 100_000);
    assert!(acme["memory"]["max_bytes"].as_i64().unwrap() > 0);
    assert_eq!(acme["memory"]["limit_bytes"], 512 << 20);
    // A professional tenant is in its 14-day trial: nothing charged.
    assert_eq!(acme["invoice"]["total_cents"], 0);
    assert!(acme["invoice"]["trial_until"].is_string());
    let hooli = tenants.iter().find(|t| t["tenant"] == "hooli").unwrap();
    assert_eq!(hooli["api_calls"]["percent"], 100);
    // Enterprise has no trial and a yearly price.
    let globex = tenants.iter().find(|t| t["tenant"] == "globex").unwrap();
    assert_eq!(globex["invoice"]["total_cents"], 960_000);
    assert_eq!(globex["invoice"]["cycle"], "yearly");

    let text = run(&["usage", "acme", "--since", "90m"]);
    assert!(text.contains("TENANT") && text.contains("acme"), "{text}");
    assert!(text.contains("3/100000 (0%)"), "{text}");
    assert!(!text.contains("globex"), "{text}");
    assert!(text.contains("Invoice preview"), "{text}");
}
