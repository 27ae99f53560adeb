//! What the `tenants` row says is what runs: a failed change keeps the row on the running
//! settings with the error and the revision tried; the error stays until the tenant converges.
//! The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, db, http};

/// The example's plans and themes with only the given tenants: `(slug, plan, theme)`.
fn repo_with_tenants(tenants: &[(&str, &str, &str)]) -> Repo {
    let repo = Repo::example();
    for file in [
        "tenants/us/acme.yaml",
        "tenants/us/globex.yaml",
        "tenants/us/initech.yaml",
        "tenants/eu/stark.yaml",
        "tenants/eu/umbrella.yaml",
    ] {
        repo.remove(file);
    }
    for (slug, plan, theme) in tenants {
        repo.write(
            &format!("tenants/{slug}.yaml"),
            &format!(
                "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug}\n  owner: ops@{slug}.example\n  plan: {plan}\n  theme: {theme}\n  env: {{ LOG_LEVEL: info }}\n"
            ),
        );
    }
    repo.commit("only these tenants");
    repo
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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

/// A tenant moved to a theme whose health path fails: the blue/green replace keeps the old
/// container, and the row keeps the theme that runs, with the error and the revision tried;
/// status says what is wanted beside what runs. Fixing the theme converges it: the row moves and
/// the error is cleared.
fn a_failed_theme_change_leaves_the_row_on_what_runs(backend: Db) {
    let Some(env) = Env::new(
        repo_with_tenants(&[("shop", "starter", "minimal")]),
        backend,
    ) else {
        return;
    };
    env.apply_ok(&[]);
    let first = env.repo.head();
    let before = env.id("shop");
    let row = db(&env.url()).tenants["shop"].clone();
    assert_eq!(row.theme, "minimal");
    assert_eq!(row.applied_revision.as_deref(), Some(first.as_str()));

    env.repo
        .edit("themes/classic.yaml", "path: /health", "path: /not-there")
        .edit("tenants/shop.yaml", "theme: minimal", "theme: classic")
        .commit("shop to classic, whose health path the site does not serve");
    let wanted = env.repo.head();
    // Twice: a second failing apply changes nothing of it either.
    for _ in 0..2 {
        let out = env.apply(&["--health-timeout", "3s", "--attempts", "1"]);
        let text = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert_eq!(env.id("shop"), before, "the old container is kept:\n{text}");
        assert!(env.running("shop"));
        let row = db(&env.url()).tenants["shop"].clone();
        assert_eq!(row.theme, "minimal", "the row names the theme that runs");
        assert_eq!(row.applied_revision.as_deref(), Some(first.as_str()));
        assert_eq!(row.desired_revision.as_deref(), Some(wanted.as_str()));
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|e| e.contains("/not-there")),
            "{row:?}"
        );
    }
    let shop = status_of(&env, "shop");
    assert_eq!(shop["sync"], "OutOfSync", "{shop}");
    assert_eq!(shop["desired_revision"], wanted.as_str(), "{shop}");
    let pending = shop["pending"].as_str().unwrap_or_default();
    assert!(
        pending.starts_with(&format!(
            "wants theme `classic` (revision {}), runs theme `minimal`: last error: ",
            &wanted[..7]
        )) && pending.contains("/not-there"),
        "{shop}"
    );
    let text = env.ok(&["status"]);
    assert!(text.contains("wants theme `classic`"), "{text}");
    // The page still shows the running theme's look.
    let (code, _, _) = http("GET", &format!("{}/", env.site("shop")), &[]);
    assert_eq!(code, 200);

    env.repo
        .edit("themes/classic.yaml", "path: /not-there", "path: /health")
        .commit("fix classic");
    let fixed = env.repo.head();
    env.apply_ok(&["--health-timeout", "20s"]);
    assert_ne!(env.id("shop"), before, "replaced now");
    let row = db(&env.url()).tenants["shop"].clone();
    assert_eq!(row.theme, "classic");
    assert_eq!(row.last_error, None);
    assert_eq!(row.applied_revision.as_deref(), Some(fixed.as_str()));
    assert_eq!(row.desired_revision.as_deref(), Some(fixed.as_str()));
    assert_eq!(status_of(&env, "shop")["pending"], serde_json::Value::Null);
    assert_eq!(env.plan_exit(), 0);
}

on_both_databases!(a_failed_theme_change_leaves_the_row_on_what_runs);

/// Tenants whose apply failed although their container ended at its spec: the next plan is
/// not "no changes" (the error stands until the tenant converges). An apply that finds one
/// answering clears its error without touching its container; one that still does not answer
/// keeps its error, and fixing it clears the error.
fn last_error_stays_until_the_tenant_converges(backend: Db) {
    let repo = repo_with_tenants(&[
        ("shop", "starter", "minimal"),
        ("shed", "starter", "classic"),
    ]);
    repo.edit("themes/classic.yaml", "path: /health", "path: /not-there")
        .commit("a health path the site does not serve");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    // No site answers within a millisecond of its start: both containers are made, both fail.
    let out = env.apply(&["--health-timeout", "1ms", "--attempts", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let made = ids(&env, &["shop", "shed"]);
    for slug in ["shop", "shed"] {
        let row = db(&env.url()).tenants[slug].clone();
        assert!(row.last_error.is_some(), "{row:?}");
        assert_eq!(row.applied_revision, None, "nothing converged yet");
    }
    let plan = env.ok(&["plan"]);
    assert!(
        plan.contains("Plan: 0 to create, 2 to update, 0 to replace, 0 to destroy.")
            && plan.contains("failed: tried again until the tenant converges"),
        "a failing tenant is not `no changes`:\n{plan}"
    );

    let out = env.apply(&["--health-timeout", "3s", "--attempts", "1"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        ids(&env, &["shop", "shed"]),
        made,
        "nothing recreated:\n{text}"
    );
    let rows = db(&env.url()).tenants;
    assert_eq!(rows["shop"].last_error, None, "shop answers: {text}");
    assert_eq!(
        rows["shop"].applied_revision.as_deref(),
        Some(env.repo.head().as_str())
    );
    assert!(
        rows["shed"]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("/not-there")),
        "shed still fails: {:?}",
        rows["shed"]
    );
    assert_eq!(rows["shed"].applied_revision, None);
    assert_eq!(env.plan_exit(), 2);

    env.repo
        .edit("themes/classic.yaml", "path: /not-there", "path: /health")
        .commit("fix classic");
    env.apply_ok(&["--health-timeout", "20s"]);
    let rows = db(&env.url()).tenants;
    assert_eq!(rows["shed"].last_error, None);
    assert_eq!(
        rows["shed"].applied_revision.as_deref(),
        Some(env.repo.head().as_str())
    );
    assert_eq!(env.plan_exit(), 0);
    assert!(env.apply_ok(&[]).contains("Nothing to do"));
}

on_both_databases!(last_error_stays_until_the_tenant_converges);

fn ids(env: &Env, slugs: &[&str]) -> Vec<String> {
    slugs.iter().map(|s| env.id(s)).collect()
}
