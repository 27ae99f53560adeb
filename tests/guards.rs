//! Guards against destructive surprises and leaks: the built-in site's key checks and headers,
//! the mass-destruction guard, read-only commands that never create a database, and secrets
//! kept out of logs. The real binary, engine and both databases.

use crate::support::{Db, Env, Repo, http};

/// The example repository with only `keep` among its tenants.
fn repo_with(keep: &[&str]) -> Repo {
    let repo = Repo::example();
    for file in [
        "us/acme",
        "us/globex",
        "us/initech",
        "eu/stark",
        "eu/umbrella",
    ] {
        let slug = file.rsplit('/').next().unwrap_or(file);
        if !keep.contains(&slug) {
            repo.remove(&format!("tenants/{file}.yaml"));
        }
    }
    // globex.yaml holds hooli too: keep hooli alone when asked.
    if keep.contains(&"hooli") && !keep.contains(&"globex") {
        let hooli = Repo::example().read("tenants/us/globex.yaml");
        let doc = hooli
            .split("\n---\n")
            .find(|d| d.contains("name: hooli"))
            .expect("hooli's document")
            .to_string();
        repo.write("tenants/us/hooli.yaml", &doc);
    }
    repo.commit("fewer tenants");
    repo
}

/// The key apply printed for `slug`.
fn printed_key(output: &str, slug: &str) -> String {
    output
        .lines()
        .find(|l| l.trim_start().starts_with(slug) && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("a key for {slug} in:\n{output}"))
        .to_string()
}

/// The built-in site in a real tenant container, through its loopback port: `/usage` needs the
/// key, every answer forbids framing and sniffing, and a burst of wrong keys is throttled
/// (429 with Retry-After, even for the right key) while the meter still read its counters.
fn the_site_guards_its_key_and_its_frames(db: Db) {
    let Some(env) = Env::new(repo_with(&["acme"]), db) else {
        return;
    };
    let applied = env.apply_ok(&[]);
    let key = printed_key(&applied, "acme");
    let site = env.site("acme");
    let (status, head, body) = http("GET", &format!("{site}/usage"), &[]);
    assert_eq!(status, 401, "{head}\n{body}");
    assert!(!body.contains("api_calls"), "{body}");
    let (status, head, _) = http("GET", &format!("{site}/usage"), &[("X-API-Key", &key)]);
    assert_eq!(status, 200);
    for header in [
        "x-frame-options: deny",
        "content-security-policy: default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
    ] {
        let (_, page, _) = http("GET", &format!("{site}/"), &[]);
        assert!(
            page.to_ascii_lowercase().contains(header),
            "{header}: {page}"
        );
    }
    assert!(
        head.to_ascii_lowercase().contains("x-frame-options: deny"),
        "{head}"
    );
    // The meter reads the counters with the key's digest, not the key.
    let metered = env.ok(&["meter"]);
    assert!(metered.contains("api 0, ai 0"), "{metered}");

    let started = std::time::Instant::now();
    let statuses: Vec<u16> = (0..40)
        .map(|_| {
            http(
                "GET",
                &format!("{site}/api/ping"),
                &[("X-API-Key", "tk_guess")],
            )
            .0
        })
        .collect();
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        10,
        "{statuses:?}"
    );
    assert!(statuses[10..].iter().all(|s| *s == 429), "{statuses:?}");
    let (status, head, _) = http("GET", &format!("{site}/api/ping"), &[("X-API-Key", &key)]);
    assert_eq!(status, 429, "the right key waits too: {head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(http("GET", &format!("{site}/health"), &[]).0, 200);
}

on_both_databases!(the_site_guards_its_key_and_its_frames);
