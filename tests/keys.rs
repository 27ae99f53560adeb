//! Named API keys (`keys create|list|revoke|rotate`) against the real engine and both
//! databases: the site learns new and revoked keys from its access file within seconds, with
//! the same container; the X-RateLimit-* and X-Request-Id headers on its API.

use crate::support::{Db, Env, Repo, http, wait_for};
use serde_json::Value;
use std::time::{Duration, Instant};

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The key `apply` printed for `slug`.
fn applied_key(out: &str, slug: &str) -> String {
    out.lines()
        .find(|l| l.trim_start().starts_with(slug) && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .expect("apply printed the new key")
        .to_string()
}

fn keys(env: &Env, slug: &str) -> Vec<Value> {
    let doc = json_of(&env.run(&["keys", "list", slug, "-o", "json"]));
    doc["keys"].as_array().unwrap().clone()
}

/// Polls the site's `/usage` with a good key until it counts `n` live keys: the site has read
/// the newest access file. (Polling with a key the site does not know yet would count as wrong
/// keys, and ten within a minute throttle the address.)
fn until_live_keys(env: &Env, slug: &str, good: &str, n: u64) -> Duration {
    let usage = format!("{}/usage", env.site(slug));
    let last = std::cell::RefCell::new(String::new());
    wait_for(
        &format!("the site counting {n} live keys"),
        Duration::from_secs(10),
        || last.borrow().clone(),
        || {
            let (_, _, body) = http("GET", &usage, &[("X-API-Key", good)]);
            let live = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["access"]["live_keys"].as_u64());
            *last.borrow_mut() = body;
            live == Some(n)
        },
    )
}

/// Polls the site's `/api/ping` with `key` until it answers `want`; how long that took.
fn until_status(env: &Env, slug: &str, key: &str, want: u16, within: Duration) -> Duration {
    let api = format!("{}/api/ping", env.site(slug));
    let last = std::cell::Cell::new(0);
    wait_for(
        &format!("the site answering {want} to key {}…", &key[..8]),
        within,
        || format!("last status {}", last.get()),
        || {
            let s = http("GET", &api, &[("X-API-Key", key)]).0;
            last.set(s);
            if s != want {
                std::thread::sleep(Duration::from_millis(150));
            }
            s == want
        },
    )
}

fn named_keys_are_learned_revoked_rotated_and_expire_without_a_restart(backend: Db) {
    let repo = Repo::example_with_tenants(&[("acme", "professional", "modern")]);
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    let first = applied_key(&out, "acme");
    let id = env.id("acme");
    let api = format!("{}/api/ping", env.site("acme"));
    assert_eq!(http("GET", &api, &[("X-API-Key", &first)]).0, 200);

    // The first key is `default`, listed without any secret.
    let listed = keys(&env, "acme");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "default");
    assert_eq!(listed[0]["status"], "live");
    assert!(listed[0]["last_used_at"].is_null());
    let text = env.ok(&["keys", "list", "acme"]);
    assert!(text.starts_with("TENANT"), "{text}");
    assert!(!text.contains(&first[3..]), "no key in the list");
    let digest = tenantctl::apply::keys::digest(&first);
    assert!(!text.contains(&digest[..20]), "no digest in the list");

    // A second key works within seconds, on the same container.
    let created = json_of(&env.run(&[
        "keys",
        "create",
        "acme",
        "--name",
        "ci",
        "--expires",
        "1h",
        "-o",
        "json",
    ]));
    assert_eq!(created["site"], "told", "{created}");
    let ci = created["key"].as_str().unwrap().to_string();
    let took = until_live_keys(&env, "acme", &first, 2);
    eprintln!("new key learned after {took:?}");
    assert_eq!(http("GET", &api, &[("X-API-Key", &ci)]).0, 200);
    assert_eq!(http("GET", &api, &[("X-API-Key", &first)]).0, 200);
    assert_eq!(env.id("acme"), id, "no restart for a new key");
    let again = env.run(&["keys", "create", "acme", "--name", "ci"]);
    assert!(!again.status.success(), "a live name is unique");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has a live key named `ci`"));

    // Rate-limit headers and request ids on API answers.
    let (status, head, _) = http(
        "GET",
        &api,
        &[("X-API-Key", &ci), ("X-Request-Id", "trace-42.abc")],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&head, "x-request-id"), Some("trace-42.abc"));
    assert_eq!(header(&head, "x-ratelimit-limit"), Some("300"), "{head}");
    let remaining: u32 = header(&head, "x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 300, "{head}");
    let reset: u64 = header(&head, "x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{head}");
    let (_, head, _) = http("GET", &api, &[("X-Request-Id", "has space")]);
    let made = header(&head, "x-request-id").unwrap();
    assert!(
        made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()),
        "a made-up id for an unfit one: {head}"
    );
    assert!(
        header(&head, "x-ratelimit-limit").is_some(),
        "on a 401 too: {head}"
    );

    // Revoked: refused within seconds, same container; the other keys still work.
    let out = env.run(&["keys", "revoke", "acme", "ci"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = until_live_keys(&env, "acme", &first, 1);
    eprintln!("revocation learned after {took:?}");
    let (status, _, body) = http("GET", &api, &[("X-API-Key", &ci)]);
    assert_eq!(status, 401);
    assert!(body.contains("API key revoked"), "{body}");
    assert_eq!(http("GET", &api, &[("X-API-Key", &first)]).0, 200);
    assert_eq!(env.id("acme"), id, "no restart for a revocation");
    let missing = env.run(&["keys", "revoke", "acme", "ci"]);
    assert_eq!(missing.status.code(), Some(1));
    let last = env.run(&["keys", "revoke", "acme", "default"]);
    assert_eq!(
        last.status.code(),
        Some(1),
        "the last live key needs --force"
    );
    assert!(String::from_utf8_lossy(&last.stderr).contains("--force"));

    // Rotated with a grace: both keys work, then only the new one.
    let grace = 10;
    let started = Instant::now();
    let rotated = json_of(&env.run(&[
        "keys",
        "rotate",
        "acme",
        "--grace",
        &format!("{grace}s"),
        "-o",
        "json",
    ]));
    assert_eq!(rotated["format_version"], 2);
    assert_eq!(rotated["name"], "default");
    assert_eq!(rotated["site"], "told", "{rotated}");
    let new = rotated["key"].as_str().unwrap().to_string();
    until_live_keys(&env, "acme", &first, 2);
    assert_eq!(http("GET", &api, &[("X-API-Key", &new)]).0, 200);
    assert!(
        started.elapsed() < Duration::from_secs(grace - 2),
        "rotation and learning took {:?}",
        started.elapsed()
    );
    assert_eq!(
        http("GET", &api, &[("X-API-Key", &first)]).0,
        200,
        "the old key works during the grace"
    );
    until_status(&env, "acme", &first, 401, Duration::from_secs(grace + 10));
    assert!(
        started.elapsed() >= Duration::from_secs(grace - 1),
        "refused only after the grace ({:?})",
        started.elapsed()
    );
    assert_eq!(http("GET", &api, &[("X-API-Key", &new)]).0, 200);
    assert_eq!(env.id("acme"), id, "no restart for a rotation");

    // An expiring key works until it expires.
    let short = json_of(&env.run(&[
        "keys",
        "create",
        "acme",
        "--name",
        "short",
        "--expires",
        "5s",
        "-o",
        "json",
    ]));
    let short_key = short["key"].as_str().unwrap().to_string();
    until_live_keys(&env, "acme", &new, 2);
    assert_eq!(http("GET", &api, &[("X-API-Key", &short_key)]).0, 200);
    until_status(&env, "acme", &short_key, 401, Duration::from_secs(10));
    let (_, _, body) = http("GET", &api, &[("X-API-Key", &new)]);
    assert!(body.contains("\"ok\":true"), "{body}");
    let (_, _, body) = http("GET", &api, &[("X-API-Key", &short_key)]);
    assert!(body.contains("API key expired"), "{body}");

    // The meter brings last use into the table.
    env.ok(&["meter"]);
    let listed = keys(&env, "acme");
    let status_of = |name: &str| -> Vec<String> {
        listed
            .iter()
            .filter(|k| k["name"] == name)
            .map(|k| k["status"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(status_of("ci"), ["revoked"]);
    assert_eq!(status_of("short"), ["expired"]);
    assert_eq!(status_of("default").len(), 2, "{listed:?}");
    let new_row = listed
        .iter()
        .find(|k| k["id"] == rotated["id"])
        .expect("the rotated key is listed");
    assert_eq!(new_row["status"], "live");
    assert!(
        new_row["last_used_at"].as_i64().is_some(),
        "last use recorded: {new_row}"
    );
    assert!(new_row["last_used_at_rfc3339"].is_string());
    let text = env.ok(&["keys", "list", "acme"]);
    eprintln!("{text}");

    // Every change is in the audit log, without a key.
    let events = env.ok(&["events", "--tenant", "acme", "--kind", "tenant.key-*"]);
    for kind in [
        "tenant.key-created",
        "tenant.key-revoked",
        "tenant.key-rotated",
    ] {
        assert!(events.contains(kind), "{kind} in {events}");
    }
    for key in [&first, &ci, &new, &short_key] {
        assert!(!events.contains(&key[3..]), "no key in events");
    }
    assert_eq!(env.plan_exit(), 0, "nothing left to apply");
}

on_both_databases!(named_keys_are_learned_revoked_rotated_and_expire_without_a_restart);

fn the_api_answers_429_with_rate_limit_headers_after_the_limit(backend: Db) {
    let repo = Repo::example_with_tenants(&[("acme", "starter", "modern")]);
    repo.edit(
        "plans/starter.yaml",
        "requestsPerMinute: 60",
        "requestsPerMinute: 3",
    )
    .commit("tight limit");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let key = applied_key(&env.apply_ok(&[]), "acme");
    let api = format!("{}/api/ping", env.site("acme"));
    for remaining in ["2", "1", "0"] {
        let (status, head, _) = http("GET", &api, &[("X-API-Key", &key)]);
        assert_eq!(status, 200, "{head}");
        assert_eq!(header(&head, "x-ratelimit-limit"), Some("3"));
        assert_eq!(header(&head, "x-ratelimit-remaining"), Some(remaining));
    }
    let (status, head, body) = http("GET", &api, &[("X-API-Key", &key)]);
    assert_eq!(status, 429, "{body}");
    assert_eq!(header(&head, "x-ratelimit-remaining"), Some("0"));
    let reset: u64 = header(&head, "x-ratelimit-reset").unwrap().parse().unwrap();
    let retry: u64 = header(&head, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset) && reset == retry, "{head}");
    assert!(header(&head, "x-request-id").is_some());
    // Not on the page: only the API carries the limit.
    let (_, head, _) = http("GET", &format!("{}/health", env.site("acme")), &[]);
    assert!(header(&head, "x-ratelimit-limit").is_none(), "{head}");
    assert!(header(&head, "x-request-id").is_some(), "{head}");
}

on_both_databases!(the_api_answers_429_with_rate_limit_headers_after_the_limit);
