//! Provisioning progress on the tenants row: the step an apply is at and the percent, seen
//! while it runs (a replacement waiting on its health check), kept with the error when it
//! fails, `done` at 100 % once the tenant converges. The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, db, wait_for};
use std::time::Duration;

/// `status -o json`'s entry for `slug`.
fn status_of(env: &Env, slug: &str) -> serde_json::Value {
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "--output", "json"])).unwrap();
    status["tenants"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["slug"] == slug))
        .cloned()
        .unwrap_or_default()
}

fn progress_of(env: &Env, slug: &str) -> (Option<String>, Option<i64>, Option<String>) {
    let row = db(&env.url()).tenants[slug].clone();
    (row.progress_step, row.progress_percent, row.error_step)
}

fn provisioning_is_on_the_row_while_it_runs_and_where_it_failed(backend: Db) {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        backend,
    ) else {
        return;
    };
    // A new tenant goes through every step and ends done.
    env.apply_ok(&[]);
    assert_eq!(
        progress_of(&env, "shop"),
        (Some("done".into()), Some(100), None)
    );
    let shop = status_of(&env, "shop");
    assert_eq!(shop["progress_step"], "done", "{shop}");
    assert_eq!(shop["progress_percent"], 100, "{shop}");

    // A replacement whose new container never answers: while the apply waits on it, the row
    // says `health` (71 %); status (text and JSON) says so too.
    env.repo
        .edit("themes/classic.yaml", "path: /health", "path: /not-there")
        .edit("tenants/shop.yaml", "theme: minimal", "theme: classic")
        .commit("shop to classic, whose health path the site does not serve");
    let mut apply = env.spawn_apply(&["--health-timeout", "30s", "--attempts", "1"]);
    wait_for(
        "the row to say the health step",
        Duration::from_secs(60),
        || format!("{:?}", progress_of(&env, "shop")),
        || progress_of(&env, "shop").0.as_deref() == Some("health"),
    );
    assert_eq!(progress_of(&env, "shop").1, Some(71));
    let shop = status_of(&env, "shop");
    assert_eq!(shop["progress_step"], "health", "{shop}");
    assert_eq!(shop["progress_percent"], 71, "{shop}");
    let text = env.ok(&["status"]);
    assert!(
        text.contains("provisioning: at step health (71%)"),
        "{text}"
    );
    let status = apply.wait().unwrap();
    assert_eq!(status.code(), Some(1));

    // It failed at the health step: kept beside last_error.
    let row = db(&env.url()).tenants["shop"].clone();
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("/not-there")),
        "{row:?}"
    );
    assert_eq!(
        progress_of(&env, "shop"),
        (Some("failed".into()), Some(71), Some("health".into()))
    );
    let shop = status_of(&env, "shop");
    assert_eq!(shop["error_step"], "health", "{shop}");
    let text = env.ok(&["status"]);
    assert!(
        text.contains("provisioning failed at step health (71%)"),
        "{text}"
    );

    // Fixed: converged, done, and the error step cleared with the error.
    env.repo
        .edit("themes/classic.yaml", "path: /not-there", "path: /health")
        .commit("fix classic");
    env.apply_ok(&["--health-timeout", "20s"]);
    let row = db(&env.url()).tenants["shop"].clone();
    assert_eq!(row.last_error, None);
    assert_eq!(
        progress_of(&env, "shop"),
        (Some("done".into()), Some(100), None)
    );
    let text = env.ok(&["status"]);
    assert!(!text.contains("provisioning"), "{text}");
}

on_both_databases!(provisioning_is_on_the_row_while_it_runs_and_where_it_failed);
