//! `-o json` on validate, apply and `keys rotate`: one document on stdout with
//! `format_version` and RFC 3339 times, progress on stderr.

use crate::support::{Db, Env, Repo};
use serde_json::Value;

fn document(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn is_rfc3339(v: &Value) -> bool {
    let s = v.as_str().unwrap_or("");
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && s.chars().filter(char::is_ascii_digit).count() == 14
}

#[test]
fn validate_json_counts_a_valid_revision_and_lists_every_problem() {
    let repo = Repo::example();
    let out = repo
        .tenantctl()
        .args(["validate", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc = document(&out);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["counts"]["tenants"], 6);
    assert_eq!(doc["counts"]["notifications"], 0);
    assert_eq!(doc["problems"], serde_json::json!([]));
    repo.edit("plans/starter.yaml", "memory: 128Mi", "memory: 128Mb");
    let out = repo
        .tenantctl()
        .args(["validate", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = document(&out);
    assert_eq!(doc["valid"], false);
    let problem = &doc["problems"][0];
    assert_eq!(problem["path"], "plans/starter.yaml");
    assert!(problem["line"].as_u64().unwrap() > 0);
    assert!(
        problem["message"].as_str().unwrap().contains("128Mb"),
        "{doc}"
    );
    assert!(problem["hint"].as_str().unwrap().contains("128Mi"), "{doc}");
}

fn apply_and_keys_rotate_print_one_json_document(backend: Db) {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "minimal")]),
        backend,
    ) else {
        return;
    };
    // Nobody can confirm a plan on a JSON stdout.
    let out = env.run(&["apply", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("run again with --auto-approve"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = env.run(&["apply", "--auto-approve", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = document(&out);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["revision"], env.repo.head());
    assert!(
        is_rfc3339(&doc["started_at"]) && is_rfc3339(&doc["finished_at"]),
        "{doc}"
    );
    assert_eq!(doc["failed"], 0);
    assert!(doc["changes_applied"].as_u64().unwrap() >= 4, "{doc}");
    let shop = &doc["tenants"][0];
    assert_eq!(
        (shop["tenant"].as_str(), shop["outcome"].as_str()),
        (Some("shop"), Some("converged"))
    );
    assert!(
        shop["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{doc}"
    );
    let key = doc["new_keys"][0]["key"].as_str().unwrap().to_string();
    assert_eq!(doc["new_keys"][0]["tenant"], "shop");
    assert!(key.len() >= 32, "{doc}");
    // Progress went to stderr, the plan was not shown.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("shop: "), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Plan:"));

    let out = env.run(&["keys", "rotate", "shop", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = document(&out);
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["tenant"], "shop");
    assert_eq!(doc["name"], "default");
    assert_eq!(doc["site"], "told");
    assert!(is_rfc3339(&doc["rotated_at"]), "{doc}");
    let rotated = doc["key"].as_str().unwrap();
    assert_ne!(rotated, key);
    let ping = |key: &str| {
        crate::support::http(
            "GET",
            &format!("{}/api/ping", env.site("shop")),
            &[("Authorization", &format!("Bearer {key}"))],
        )
        .0
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The old key works until the site reads the new access file, which holds the new one.
    while ping(&key) == 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the site refuses the old key within seconds"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(ping(rotated), 200, "and takes the new one");

    // Nothing to do is a document too.
    let out = env.run(&["apply", "--auto-approve", "-o", "json"]);
    let doc = document(&out);
    assert_eq!(
        (doc["changes_planned"].as_u64(), doc["run_id"].is_null()),
        (Some(0), true)
    );
    assert_eq!(doc["tenants"], serde_json::json!([]));
}

on_both_databases!(apply_and_keys_rotate_print_one_json_document);
