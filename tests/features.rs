//! A tenant's feature flags over its plan's (`features: {add, remove}`) against the real engine
//! and both databases: `tenant_features` rows with their source, `GET /api/features`, and a
//! flag change applied in place (the same container).

use crate::support::{Db, Env, Repo, db, http, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

const TENANT: &str = "kind: Tenant
name: acme
spec:
  displayName: Acme
  owner: ops@acme.example
  plan: professional
  theme: modern
";

fn flags(env: &Env) -> Vec<(String, String)> {
    db(&env.url())
        .features
        .get("acme")
        .map(|m| m.iter().map(|(f, s)| (f.clone(), s.clone())).collect())
        .unwrap_or_default()
}

fn features_answer(env: &Env, key: &str) -> (u16, Value) {
    let (status, _, body) = http(
        "GET",
        &format!("{}/api/features", env.site("acme")),
        &[("Authorization", &format!("Bearer {key}"))],
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn flags_add_and_remove_over_the_plan_and_change_in_place(backend: Db) {
    let repo = Repo::example_with_tenants(&[]);
    // professional has [custom-domain, webhooks].
    repo.write(
        "tenants/acme.yaml",
        &format!("{TENANT}  features: {{ add: [beta-checkout], remove: [webhooks] }}\n"),
    )
    .commit("acme: flags");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    let key = out
        .lines()
        .find(|l| l.trim_start().starts_with("acme") && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    let pair = |f: &str, s: &str| (f.to_string(), s.to_string());
    assert_eq!(
        flags(&env),
        [
            pair("beta-checkout", "tenant"),
            pair("custom-domain", "plan")
        ]
    );
    // The new site reads the access file within a second of its start (before that, its
    // environment's flags, without their source).
    wait_for(
        "the site reading its access file",
        Duration::from_secs(10),
        || format!("{:?}", features_answer(&env, &key)),
        || features_answer(&env, &key).1["from"] == "access-file",
    );
    let (status, body) = features_answer(&env, &key);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["features"],
        json!([
            {"flag": "beta-checkout", "source": "tenant"},
            {"flag": "custom-domain", "source": "plan"},
        ])
    );
    assert_eq!(body["from"], "access-file");
    let (status, _, _) = http("GET", &format!("{}/api/features", env.site("acme")), &[]);
    assert_eq!(status, 401, "the key is required");

    // A flag change: planned as an in-place update of the record, applied without a new
    // container, learned by the site within seconds.
    let id = env.id("acme");
    env.repo
        .write(
            "tenants/acme.yaml",
            &format!("{TENANT}  features: {{ add: [beta-checkout, reports] }}\n"),
        )
        .commit("acme: webhooks back, reports");
    let plan = env.ok(&["plan", "-o", "json"]);
    let plan: Value = serde_json::from_str(&plan).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    let actions: Vec<(String, String)> = changes
        .iter()
        .map(|c| {
            (
                c["resource"].as_str().unwrap_or_default().to_string(),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [("tenant-record".to_string(), "update".to_string())],
        "{plan}"
    );
    let text = env.ok(&["plan"]);
    assert!(text.contains("effectiveFeatures"), "{text}");
    env.apply_ok(&[]);
    assert_eq!(env.id("acme"), id, "no new container for a flag change");
    assert_eq!(
        flags(&env),
        [
            pair("beta-checkout", "tenant"),
            pair("custom-domain", "plan"),
            pair("reports", "tenant"),
            pair("webhooks", "plan"),
        ]
    );
    wait_for(
        "the site serving the new flags",
        Duration::from_secs(10),
        || format!("{:?}", features_answer(&env, &key)),
        || {
            features_answer(&env, &key).1["features"]
                .as_array()
                .is_some_and(|a| a.len() == 4)
        },
    );
    let events = env.ok(&["events", "--tenant", "acme", "--kind", "tenant.features"]);
    assert!(events.contains("reports (tenant)"), "{events}");

    // A plan's flags reach its tenants the same way.
    env.repo
        .edit(
            "plans/professional.yaml",
            "features: [custom-domain, webhooks]",
            "features: [custom-domain, webhooks, sso]",
        )
        .commit("professional: sso");
    env.apply_ok(&[]);
    assert_eq!(env.id("acme"), id, "no new container for a plan's flag");
    assert!(flags(&env).contains(&pair("sso", "plan")));
    wait_for(
        "the site serving the plan's new flag",
        Duration::from_secs(10),
        || format!("{:?}", features_answer(&env, &key)),
        || {
            features_answer(&env, &key)
                .1
                .to_string()
                .contains("\"sso\"")
        },
    );
    assert_eq!(env.plan_exit(), 0);

    // Removing a flag the plan does not have is refused, at its line.
    env.repo
        .write(
            "tenants/acme.yaml",
            &format!("{TENANT}  features:\n    remove: [nope]\n"),
        )
        .commit("acme: typo");
    let out = env.run(&["validate"]);
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("tenants/acme.yaml:9"), "{said}");
    assert!(
        said.contains("which its plan `professional` does not have"),
        "{said}"
    );
}

on_both_databases!(flags_add_and_remove_over_the_plan_and_change_in_place);
