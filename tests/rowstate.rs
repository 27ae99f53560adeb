//! What the `tenants` row says is what runs: a failed change keeps the row on the running
//! settings with the error and the revision tried; the error stays until the tenant converges.
//! And the installation id: a database refuses a namespace another database's objects run in,
//! unless `--adopt`. The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, db, docker, http, inspect};

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
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
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
    let repo = Repo::example_with_tenants(&[
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
    // A fast start can still beat the millisecond: then shop is left as that failure leaves a
    // tenant (its error recorded, nothing applied), written through tenantctl's own store.
    let shop = db(&env.url()).tenants["shop"].clone();
    if shop.last_error.is_none() {
        let row = tenantctl::store::TenantRow {
            last_error: Some("no answer within 1ms".into()),
            applied_revision: None,
            ..shop
        };
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = tenantctl::store::Store::open(&env.url()).await.unwrap();
            store.upsert_tenant(&row).await.unwrap();
            store.close().await;
        });
    }
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

/// The installation id of the database at `url`.
fn installation(url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = tenantctl::store::Store::open(url).await.unwrap();
        let id = store.installation_id().to_string();
        store.close().await;
        id
    })
}

/// tenantctl in `env`'s namespace with another database.
fn with_database(env: &Env, url: &str, args: &[&str]) -> std::process::Output {
    env.repo
        .tenantctl()
        .args(["--namespace", &env.ns, "--database-url", url])
        .env("TENANTCTL_SUBNET_POOL", &env.pool)
        .args(args)
        .timeout(std::time::Duration::from_secs(180))
        .output()
        .unwrap()
}

fn ids(env: &Env, slugs: &[&str]) -> Vec<String> {
    slugs.iter().map(|s| env.id(s)).collect()
}

/// Every object is labelled with its database's installation id. Another database that
/// manages another namespace is refused in front of this one (nothing changes); `--adopt`
/// takes the tenants over with their keys, and once a container is replaced under the new
/// database, the old database is refused in turn.
fn another_installation_is_refused_and_adopt_takes_over(backend: Db) {
    let Some(first) = Env::new(
        Repo::example_with_tenants(&[
            ("acme", "starter", "minimal"),
            ("globex", "starter", "minimal"),
        ]),
        backend,
    ) else {
        return;
    };
    let Some(second) = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        backend,
    ) else {
        return;
    };
    let applied = first.apply_ok(&[]);
    second.apply_ok(&[]);
    let (one, two) = (installation(&first.url()), installation(&second.url()));
    assert_ne!(one, two);
    assert_eq!(one.len(), 32, "{one}");
    let label = "{{index .Config.Labels \"tenantctl.installation\"}}";
    assert_eq!(inspect(&first.container("acme"), label), one);
    for kind in ["network", "volume"] {
        let name = match kind {
            "network" => first.container("acme"),
            _ => format!("{}-data", first.container("acme")),
        };
        let seen = docker(&[
            kind,
            "inspect",
            "--format",
            "{{index .Labels \"tenantctl.installation\"}}",
            &name,
        ]);
        assert_eq!(seen.trim(), one, "{kind}");
    }
    let key = applied
        .lines()
        .find(|l| l.trim_start().starts_with("acme") && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("acme's key in:\n{applied}"))
        .to_string();
    let before = ids(&first, &["acme", "globex"]);
    let digests = db(&first.url()).tenants["acme"].api_key_sha256.clone();

    // The second database, pointed at the first namespace: every writing command refuses it,
    // and nothing changes.
    for (args, hint) in [
        (&["apply", "--auto-approve"][..], "pass --adopt"),
        (&["keys", "rotate", "acme"], "run `tenantctl apply --adopt`"),
        (
            &["watch", "--interval", "1s"],
            "run `tenantctl apply --adopt`",
        ),
    ] {
        let out = with_database(&first, &second.url(), args);
        let err = output_text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "namespace {} has 2 managed containers made with another database (installation {one}), but the database at",
                first.ns
            )) && err.contains(&format!("belongs to installation {two} (1 tenant row)"))
                && err.contains(hint),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ids(&first, &["acme", "globex"]), before);
    assert!(!db(&second.url()).tenants.contains_key("acme"));

    // Adopting into a database whose own tenant still runs elsewhere would cancel its row.
    let out = with_database(
        &first,
        &second.url(),
        &["apply", "--auto-approve", "--adopt"],
    );
    let err = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("also holds active tenants that are neither in this revision nor in the namespace (shop)"),
        "{err}"
    );
    assert_eq!(ids(&first, &["acme", "globex"]), before);
    assert!(!db(&second.url()).tenants.contains_key("acme"));
    assert_eq!(db(&second.url()).tenants["shop"].state, "active");

    // The second repository cancels shop: its database keeps the row, and may adopt now.
    second
        .repo
        .remove("tenants/shop.yaml")
        .commit("shop leaves");
    second.apply_ok(&["--allow-destroy"]);
    assert_eq!(db(&second.url()).tenants["shop"].state, "cancelled");
    let out = with_database(
        &first,
        &second.url(),
        &["apply", "--auto-approve", "--adopt"],
    );
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "Took over the objects of installation {one} into installation {two}"
        )) && text.contains("Adopted 2 tenant rows"),
        "{text}"
    );
    assert!(!text.contains("tk_"), "no new key: {text}");
    assert_eq!(
        ids(&first, &["acme", "globex"]),
        before,
        "nothing recreated"
    );
    let rows = db(&second.url()).tenants;
    assert_eq!(rows["acme"].api_key_sha256, digests, "the key is kept");
    assert_eq!(rows["shop"].state, "cancelled", "its own row stays");
    let (code, _, _) = http(
        "GET",
        &format!("{}/api/ping", first.site("acme")),
        &[("X-API-Key", &key)],
    );
    assert_eq!(code, 200);
    // The adopting database goes on with the first namespace.
    let out = with_database(&first, &second.url(), &["plan", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));

    // acme replaced under the second database: it carries installation two now, and the
    // first database is refused in front of it.
    first
        .repo
        .edit("tenants/acme.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
        .commit("acme debug");
    let out = with_database(&first, &second.url(), &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(inspect(&first.container("acme"), label), two);
    let out = first.apply(&[]);
    let err = output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "has 1 managed containers made with another database (installation {two})"
        )),
        "{err}"
    );
}

on_both_databases!(another_installation_is_refused_and_adopt_takes_over);
