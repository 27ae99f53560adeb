//! `tenantctl events`: the audit log with before/after of what changed, its filters, JSON and
//! `--follow`, against the real engine and both databases.

use crate::support::{Db, Env, Repo, collect_output, interrupt_follow, wait_for_text};
use serde_json::Value;
use std::process::{Child, Command as Std, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_SECRET: &str = "first-s3cret-value";
const SECOND_SECRET: &str = "second-s3cret-value";

/// The example, with acme carrying a secret-looking env value, applied.
fn applied(db: Db) -> Option<Env> {
    let repo = Repo::example();
    repo.edit(
        "tenants/us/acme.yaml",
        "env: { LOG_LEVEL: info }",
        &format!("env: {{ LOG_LEVEL: info, API_TOKEN: {FIRST_SECRET} }}"),
    )
    .commit("acme has a token");
    let env = Env::new(repo, db)?;
    env.apply_ok(&[]);
    Some(env)
}

/// The starter plan's memory, acme's owner and acme's token edited, committed and applied.
fn edit_and_apply(env: &Env) {
    env.repo
        .edit("plans/starter.yaml", "memory: 128Mi", "memory: 256Mi")
        .edit(
            "tenants/us/acme.yaml",
            "owner: ops@acme.example",
            "owner: it@acme.example",
        )
        .edit("tenants/us/acme.yaml", FIRST_SECRET, SECOND_SECRET)
        .commit("starter gets more memory; acme changes hands");
    env.apply_ok(&[]);
}

/// The lines of `events ARGS` whose kind column is `kind` (and tenant column `tenant`).
fn lines<'a>(text: &'a str, tenant: &str, kind: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&tenant) && cols.get(2) == Some(&kind)
        })
        .collect()
}

fn the_log_shows_each_change_with_before_and_after(db: Db) {
    let Some(env) = applied(db) else {
        return;
    };
    let first = env.repo.head();
    edit_and_apply(&env);
    let head = env.repo.head();
    let rev = format!("rev {}", &head[..7]);

    let all = env.ok(&["events", "--limit", "1000"]);
    assert!(
        !all.contains(FIRST_SECRET) && !all.contains(SECOND_SECRET),
        "{all}"
    );

    let plan = lines(&all, "-", "plan-record.update");
    assert_eq!(plan.len(), 1, "{all}");
    assert!(plan[0].contains(&rev), "{all}");
    assert!(
        plan[0].ends_with("resources.memory: 128Mi → 256Mi"),
        "{all}"
    );

    let owner = lines(&all, "acme", "tenant-record.update");
    assert_eq!(owner.len(), 1, "{all}");
    assert!(owner[0].contains(&rev), "{all}");
    assert!(
        owner[0].ends_with("owner: ops@acme.example → it@acme.example"),
        "{all}"
    );

    // The containers replaced: which spec fields changed, the token only as fingerprints.
    let hooli = lines(&all, "hooli", "container.replace");
    assert_eq!(hooli.len(), 1, "{all}");
    assert!(hooli[0].contains("memory: 128Mi → 256Mi"), "{all}");
    let acme = lines(&all, "acme", "container.replace");
    assert_eq!(acme.len(), 1, "{all}");
    assert!(
        acme[0].contains("env.API_TOKEN: (sensitive, sha256:"),
        "{all}"
    );

    // Newest last; the first apply's events (no before/after) print their message as before.
    let created = lines(&all, "acme", "tenant-record.create");
    assert_eq!(created.len(), 1, "{all}");
    assert!(
        created[0].contains(&format!("rev {}", &first[..7])),
        "{all}"
    );
    assert!(created[0].ends_with("tenant-record.acme"), "{all}");
    let pos = |line: &str| all.find(line).unwrap();
    assert!(pos(created[0]) < pos(owner[0]), "{all}");
    // The newest event is of the last apply.
    assert!(all.lines().last().unwrap().contains(&rev), "{all}");

    // --tenant
    let acme_only = env.ok(&["events", "--tenant", "acme"]);
    assert!(acme_only.lines().count() >= 4, "{acme_only}");
    for l in acme_only.lines() {
        assert_eq!(l.split_whitespace().nth(1), Some("acme"), "{acme_only}");
    }

    // --kind, as a glob and exactly
    let records = env.ok(&["events", "--kind", "tenant-record.*"]);
    let kinds: std::collections::BTreeSet<&str> = records
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["tenant-record.create", "tenant-record.update"],
        "{records}"
    );
    let exact = env.ok(&["events", "--kind", "tenant-record.update"]);
    assert_eq!(exact.lines().count(), 1, "{exact}");

    // --since: a duration and an RFC 3339 time
    let recent = env.ok(&["events", "--since", "1h", "--tenant", "acme"]);
    assert_eq!(recent, acme_only);
    let future = env.ok(&["events", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(future, "");

    // --limit keeps the most recent (the columns fit the lines shown, so compare words)
    let words = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let last_two = env.ok(&["events", "--limit", "2"]);
    let tail: Vec<String> = all.lines().rev().take(2).map(words).collect();
    assert_eq!(last_two.lines().rev().map(words).collect::<Vec<_>>(), tail);

    // -o json
    let text = env.ok(&["events", "-o", "json", "--tenant", "acme"]);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(doc["format_version"], 1);
    let events = doc["events"].as_array().unwrap();
    assert_eq!(events.len(), acme_only.lines().count());
    let update = events
        .iter()
        .find(|e| e["kind"] == "tenant-record.update")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(update["tenant"], "acme");
    assert_eq!(update["revision"], head.as_str());
    assert_eq!(update["term"], Value::Null);
    assert!(update["time"].as_str().unwrap().ends_with('Z'), "{update}");
    assert_eq!(
        update["changes"],
        serde_json::json!([{"field": "owner", "before": "ops@acme.example", "after": "it@acme.example"}])
    );
    let create = events
        .iter()
        .find(|e| e["kind"] == "tenant-record.create")
        .unwrap();
    assert_eq!(create["changes"], Value::Null);
    assert_eq!(create["revision"], first.as_str());
    assert!(!text.contains(FIRST_SECRET) && !text.contains(SECOND_SECRET));
}

fn follow(env: &Env, extra: &[&str]) -> (Child, Arc<Mutex<String>>) {
    let mut child = Std::new(env!("CARGO_BIN_EXE_tenantctl"))
        .current_dir(env.repo.path())
        .env_remove("TENANTCTL_DATABASE_URL")
        .env("NO_COLOR", "1")
        .args(env.args())
        .args(["events", "-f"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = collect_output(child.stdout.take().unwrap());
    (child, out)
}

fn follow_prints_events_of_a_later_apply(db: Db) {
    let Some(env) = applied(db) else {
        return;
    };
    let (text, text_out) = follow(&env, &["--tenant", "acme"]);
    let (json, json_out) = follow(&env, &["-o", "json", "--kind", "tenant-record.*"]);
    // The past first, then only what is new.
    assert!(
        wait_for_text(&text_out, "tenant-record.create", Duration::from_secs(20)),
        "{}",
        text_out.lock().unwrap()
    );
    assert!(
        wait_for_text(&json_out, "tenant-record.create", Duration::from_secs(20)),
        "{}",
        json_out.lock().unwrap()
    );
    let before = text_out.lock().unwrap().clone();
    assert!(!before.contains("owner:"), "{before}");

    edit_and_apply(&env);
    assert!(
        wait_for_text(
            &text_out,
            "owner: ops@acme.example → it@acme.example",
            Duration::from_secs(20)
        ),
        "{}",
        text_out.lock().unwrap()
    );
    assert!(
        wait_for_text(&json_out, "it@acme.example", Duration::from_secs(20)),
        "{}",
        json_out.lock().unwrap()
    );
    interrupt_follow(text, "events -f");
    interrupt_follow(json, "events -f");

    let text = text_out.lock().unwrap().clone();
    assert!(text.starts_with(&before), "{text}");
    assert_eq!(
        lines(&text, "acme", "tenant-record.create").len(),
        1,
        "{text}"
    );
    assert!(!text.contains(SECOND_SECRET), "{text}");
    // JSON lines: one event per line, each versioned.
    let json = json_out.lock().unwrap().clone();
    let events: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(events.iter().all(|e| e["format_version"] == 1), "{json}");
    assert!(
        events
            .iter()
            .all(|e| e["kind"].as_str().unwrap().starts_with("tenant-record.")),
        "{json}"
    );
    let update = events.last().unwrap();
    assert_eq!(update["kind"], "tenant-record.update");
    assert_eq!(update["changes"][0]["field"], "owner");
    assert_eq!(update["revision"], env.repo.head().as_str());
}

on_both_databases!(
    the_log_shows_each_change_with_before_and_after,
    follow_prints_events_of_a_later_apply,
);

#[test]
fn events_never_create_a_database_and_refuse_bad_filters() {
    let repo = Repo::example();
    let out = repo.tenantctl().args(["events"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no state database"));
    let json = repo
        .tenantctl()
        .args(["events", "-o", "json"])
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc, serde_json::json!({"format_version": 1, "events": []}));
    assert!(!repo.path().join(".tenantctl").exists());

    let bad = repo
        .tenantctl()
        .args(["events", "--since", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("--since") && err.contains("RFC 3339"), "{err}");
    // A date that does not exist is refused, by `events` and `logs` alike; `1h30m` is a duration.
    for command in ["events", "logs"] {
        let mut args = vec![command];
        if command == "logs" {
            args.push("acme");
        }
        args.extend(["--since", "2026-02-31T10:00:00Z"]);
        let bad = repo.tenantctl().args(&args).output().unwrap();
        assert_eq!(bad.status.code(), Some(1), "{command}");
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            err.contains("`2026-02-31T10:00:00Z` is not a time that exists")
                && err.contains("1..=28"),
            "{command}: {err}"
        );
    }
    let ok = repo
        .tenantctl()
        .args(["events", "--since", "1h30m"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let bad = repo
        .tenantctl()
        .args(["events", "--tenant", "Not A Slug"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(!repo.path().join(".tenantctl").exists());
}

/// `events -f` before the first apply: it makes no database, and shows the apply's events once
/// the apply has made one.
#[test]
fn follow_waits_for_the_first_apply_without_making_a_database() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    let (child, out) = follow(&env, &["--kind", "tenant-record.create"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!env.repo.path().join(".tenantctl").exists());
    assert_eq!(out.lock().unwrap().as_str(), "");
    env.apply_ok(&[]);
    // One line per tenant of the example (made in parallel, in any order).
    let deadline = Instant::now() + Duration::from_secs(20);
    while out.lock().unwrap().lines().count() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    interrupt_follow(child, "events -f");
    let text = out.lock().unwrap().clone();
    assert_eq!(text.lines().count(), 6, "{text}");
    for slug in ["acme", "globex", "hooli", "initech", "stark", "umbrella"] {
        assert_eq!(
            lines(&text, slug, "tenant-record.create").len(),
            1,
            "{text}"
        );
    }
}
