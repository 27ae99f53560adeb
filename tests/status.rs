//! `tenantctl status` and `tenantctl logs` against the real engine and both databases.

use crate::support::{
    Db, Env, Repo, collect_output, docker, http, interrupt_follow, wait_for_text,
};
use serde_json::Value;
use std::process::{Command as Std, Stdio};
use std::time::{Duration, Instant};

/// The status tests' deployment: the example repository with acme logging at debug.
fn new_env(db: Db) -> Option<Env> {
    let repo = Repo::example();
    // The built-in site logs nothing at its default level (warn): debug makes it log its
    // start and every request, which the logs tests can then trigger and look for.
    repo.edit(
        "tenants/us/acme.yaml",
        "env: { LOG_LEVEL: info }",
        "env: { LOG_LEVEL: info, RUST_LOG: debug }",
    )
    .commit("acme logs at debug");
    Env::new(repo, db)
}

trait StatusEnv {
    fn status(&self) -> Value;
    fn status_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value;
    fn edit_row(&self, slug: &str, edit: impl FnOnce(&mut tenantctl::store::TenantRow));
}

impl StatusEnv for Env {
    fn status(&self) -> Value {
        let text = self.ok(&["status", "--output", "json"]);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["format_version"], 1, "{text}");
        v
    }

    /// Polls `status` until `done` holds for it (the engine's health checks take a while).
    fn status_until(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let s = self.status();
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what} never happened: {s:#}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn edit_row(&self, slug: &str, edit: impl FnOnce(&mut tenantctl::store::TenantRow)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = tenantctl::store::Store::open(&self.url()).await.unwrap();
            let mut row = store.observe().await.unwrap().tenants[slug].clone();
            edit(&mut row);
            store.upsert_tenant(&row).await.unwrap();
            store.close().await;
        });
    }
}

fn tenant<'a>(status: &'a Value, slug: &str) -> &'a Value {
    status["tenants"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["slug"] == slug))
        .unwrap_or_else(|| panic!("{slug} not in {status:#}"))
}

fn pair(status: &Value, slug: &str) -> (String, String) {
    let t = tenant(status, slug);
    (
        t["sync"].as_str().unwrap_or("").to_string(),
        t["health"].as_str().unwrap_or("").to_string(),
    )
}

fn reasons(status: &Value, slug: &str) -> Vec<String> {
    tenant(status, slug)["sync_reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const SLUGS: [&str; 6] = ["acme", "globex", "hooli", "initech", "stark", "umbrella"];

fn converged(s: &Value) -> bool {
    SLUGS.iter().all(|slug| {
        let want = if *slug == "initech" {
            "Suspended"
        } else {
            "Healthy"
        };
        pair(s, slug) == ("Synced".into(), want.into())
    })
}

fn status_tells_sync_and_health_through_drift(backend: Db) {
    let Some(env) = new_env(backend) else {
        return;
    };
    env.ok(&["apply", "--auto-approve"]);
    let head = env.repo.head();

    // Everything is Synced and Healthy, but the suspended tenant.
    let s = env.status_until("every site healthy", converged);
    assert_eq!(s["revision"], head.as_str());
    assert_eq!(s["namespace"], env.ns.as_str());
    assert_eq!(s["error"], Value::Null);
    assert_eq!(s["summary"]["tenants"], 6);
    assert_eq!(s["summary"]["sync"]["Synced"], 6);
    assert_eq!(s["summary"]["health"]["Healthy"], 5);
    assert_eq!(s["summary"]["health"]["Suspended"], 1);
    let acme = tenant(&s, "acme");
    assert_eq!(acme["plan"], "professional");
    assert_eq!(acme["theme"], "modern");
    assert_eq!(acme["state"], "active");
    assert_eq!(acme["applied_revision"], head.as_str());
    assert_eq!(acme["last_error"], Value::Null);
    assert!(
        acme["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{acme}"
    );
    // Professional has a 14-day trial; Enterprise none.
    assert!(
        acme["trial_ends_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(tenant(&s, "globex")["trial_ends_at"], Value::Null);
    assert_eq!(tenant(&s, "initech")["state"], "suspended");
    assert_eq!(tenant(&s, "initech")["url"], Value::Null);
    let text = env.ok(&["status"]);
    assert!(
        text.contains("6 tenants. Sync: 6 Synced. Health: 5 Healthy, 1 Suspended."),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
    assert!(!text.contains('\x1b'), "NO_COLOR is honoured: {text}");
    let only = env.ok(&["status", "--tenant", "stark", "--output", "json"]);
    let only: Value = serde_json::from_str(&only).unwrap();
    assert_eq!(only["tenants"].as_array().map(Vec::len), Some(1));
    let bad = env.run(&["status", "--tenant", "nobody"]);
    assert_eq!(bad.status.code(), Some(1));

    // Drift by hand: a stopped container, a removed one, an edited row.
    docker(&["stop", &env.container("globex")]);
    docker(&["rm", "-f", &env.container("hooli")]);
    env.edit_row("umbrella", |r| r.plan = "starter".into());
    let s = env.status();
    assert_eq!(pair(&s, "globex"), ("OutOfSync".into(), "Degraded".into()));
    assert_eq!(
        reasons(&s, "globex"),
        [format!(
            "container.{} will be started: tenant is active; container is exited",
            env.container("globex")
        )]
    );
    assert!(
        tenant(&s, "globex")["health_reason"]
            .as_str()
            .is_some_and(|r| r.contains("exited") && r.contains("while the tenant is active")),
        "{s:#}"
    );
    assert_eq!(pair(&s, "hooli"), ("OutOfSync".into(), "Missing".into()));
    assert_eq!(
        reasons(&s, "hooli"),
        [format!(
            "container.{} will be created: new tenant",
            env.container("hooli")
        )]
    );
    assert_eq!(pair(&s, "umbrella"), ("OutOfSync".into(), "Healthy".into()));
    assert_eq!(
        reasons(&s, "umbrella"),
        ["tenant-record.umbrella will be updated in place: plan changed"]
    );
    assert_eq!(pair(&s, "acme"), ("Synced".into(), "Healthy".into()));
    let text = env.ok(&["status"]);
    assert!(
        text.contains(
            "6 tenants. Sync: 3 Synced, 3 OutOfSync. Health: 3 Healthy, 1 Degraded, 1 Suspended, 1 Missing."
        ),
        "{text}"
    );
    assert!(
        text.contains("hooli:\n  out of sync: container.")
            && text.contains("  Missing: active in git but there is no container"),
        "{text}"
    );

    // A tenant removed from git still shows, on its way out; after apply it is cancelled and in sync.
    env.repo
        .remove("tenants/eu/stark.yaml")
        .commit("stark leaves");
    let s = env.status();
    assert_eq!(tenant(&s, "stark")["state"], "cancelled");
    assert_eq!(tenant(&s, "stark")["sync"], "OutOfSync");
    assert!(
        reasons(&s, "stark")
            .iter()
            .any(|r| r.contains("will be destroyed: tenant is no longer in git")),
        "{s:#}"
    );
    env.ok(&["apply", "--auto-approve"]);
    let s = env.status_until("converged again", |s| {
        ["acme", "globex", "hooli", "umbrella"]
            .iter()
            .all(|slug| pair(s, slug) == ("Synced".into(), "Healthy".into()))
    });
    assert_eq!(pair(&s, "stark"), ("Synced".into(), "Suspended".into()));
    assert_eq!(tenant(&s, "stark")["state"], "cancelled");

    // An invalid HEAD: every sync Unknown, the problem said once, health still observed.
    env.repo
        .write("plans/broken.yaml", "kind: Plan\nname: broken\nspec: {}\n")
        .commit("broken");
    let out = env.run(&["status", "--output", "json"]);
    assert!(out.status.success());
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        s["error"]
            .as_str()
            .is_some_and(|e| e.contains("is invalid (")),
        "{s:#}"
    );
    assert_eq!(s["summary"]["sync"]["Unknown"], 6);
    assert_eq!(pair(&s, "acme"), ("Unknown".into(), "Healthy".into()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plans/broken.yaml:"));
}

fn logs_show_tail_and_follow(backend: Db) {
    let Some(env) = new_env(backend) else {
        return;
    };
    env.ok(&["apply", "--auto-approve"]);
    let s = env.status();
    let site = tenant(&s, "acme")["url"]
        .as_str()
        .expect("acme has a URL")
        .trim_end_matches('/')
        .to_string();
    let everything = env.ok(&["logs", "acme", "--tail", "all"]);
    assert!(everything.contains("site listening"), "{everything}");
    assert_eq!(http("GET", &format!("{site}/tail-marker"), &[]).0, 404);
    let wait = Instant::now() + Duration::from_secs(10);
    let tail = loop {
        let tail = env.ok(&["logs", "acme", "--tail", "5"]);
        if tail.contains("/tail-marker") || Instant::now() > wait {
            break tail;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(tail.contains("/tail-marker"), "{tail}");
    assert!(tail.lines().count() <= 5, "{tail}");
    let stamped = env.ok(&["logs", "acme", "--tail", "1", "--timestamps"]);
    assert!(
        stamped.starts_with("20") && stamped.contains('T'),
        "{stamped}"
    );
    let recent = env.ok(&["logs", "acme", "--tail", "all", "--since", "1h"]);
    assert!(recent.contains("site listening"), "{recent}");
    let future = env.ok(&["logs", "acme", "--since", "2100-01-01T00:00:00Z"]);
    assert_eq!(future, "");

    // -f streams a line made after it started, and Ctrl-C ends it with exit 0.
    let mut child = Std::new(env!("CARGO_BIN_EXE_tenantctl"))
        .current_dir(env.repo.path())
        .args(env.args())
        .args(["logs", "acme", "-f", "--tail", "0"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let seen = collect_output(child.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http("GET", &format!("{site}/follow-marker"), &[]).0, 404);
    assert!(
        wait_for_text(&seen, "/follow-marker", Duration::from_secs(10)),
        "no new line: {}",
        seen.lock().unwrap()
    );
    interrupt_follow(child, "logs -f");

    // A suspended tenant's stopped container still has (past) logs; one without a container fails.
    assert!(env.run(&["logs", "initech"]).status.success());
    docker(&["rm", "-f", &env.container("hooli")]);
    let out = env.run(&["logs", "hooli"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "tenant hooli has no container; is it applied? suspended tenants keep their container stopped"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["logs", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant nobody"));
    let out = env.run(&["logs", "acme", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(1));
}

/// While following, an apply replaces the container (its env changed): the stream says so and
/// follows the new one.
fn logs_follow_the_replacement_container(backend: Db) {
    let Some(env) = new_env(backend) else {
        return;
    };
    env.ok(&["apply", "--auto-approve"]);
    let mut child = Std::new(env!("CARGO_BIN_EXE_tenantctl"))
        .current_dir(env.repo.path())
        .args(env.args())
        .args(["logs", "acme", "-f", "--tail", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect_output(child.stdout.take().unwrap());
    let err = collect_output(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "RUST_LOG: debug }",
            "RUST_LOG: debug, FOLLOW: replaced }",
        )
        .commit("acme: a new env var replaces its container");
    env.apply_ok(&[]);
    assert!(
        wait_for_text(&err, "was replaced by", Duration::from_secs(20)),
        "stderr: {}",
        err.lock().unwrap()
    );
    // The new container's first lines (its start) arrive on the same stream.
    assert!(
        wait_for_text(&out, "site listening", Duration::from_secs(20)),
        "stdout: {}",
        out.lock().unwrap()
    );
    let pid = child.id().to_string();
    assert!(
        Std::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "logs -f did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

on_both_databases!(status_tells_sync_and_health_through_drift);

#[test]
fn logs_tail_follow_and_errors() {
    logs_show_tail_and_follow(Db::Sqlite);
}

#[test]
fn logs_follow_a_replaced_container() {
    logs_follow_the_replacement_container(Db::Sqlite);
}

/// An ended, unconverted trial: status counts the suspension the loop will make as pending, and
/// once it is made, the stopped tenant as in sync (status applies the trial rule like apply).
#[test]
fn status_applies_the_trial_rule() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    env.apply_ok(&[]);
    let later = (tenantctl::store::now_unix() + 31 * 86_400).to_string();
    let status_later = || -> Value {
        let out = env
            .cmd(&["status", "--output", "json"])
            .env("TENANTCTL_NOW", &later)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // acme is on a plan with a 14-day trial and has not converted.
    let s = status_later();
    assert_eq!(pair(&s, "acme").0, "OutOfSync", "{s}");
    assert!(
        reasons(&s, "acme").iter().any(|r| r.contains("stopped")),
        "{:?}",
        reasons(&s, "acme")
    );
    let out = env
        .cmd(&["apply", "--auto-approve"])
        .env("TENANTCTL_NOW", &later)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = status_later();
    assert_eq!(
        pair(&s, "acme"),
        ("Synced".to_string(), "Suspended".to_string()),
        "{s}"
    );
}

/// The host port `docker port` shows for the container's only published port, once it runs.
fn published_host_port(container: &str) -> Option<String> {
    let out = Std::new("docker").args(["port", container]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let port = text.lines().next()?.rsplit(':').next()?.trim().to_string();
    (!port.is_empty()).then_some(port)
}

/// `docker restart` gives the site a new host port: status shows (and the site answers at) the
/// new URL at once, and a watch pass records it in the row, with an event saying old → new.
fn status_follows_the_port_a_restart_publishes(backend: Db) {
    let repo = Repo::example();
    for other in ["us/acme", "us/initech", "eu/stark", "eu/umbrella"] {
        repo.remove(&format!("tenants/{other}.yaml"));
    }
    repo.commit("globex alone");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    env.apply_ok(&[]);
    let before = env.status_until("globex healthy", |s| {
        pair(s, "globex") == ("Synced".into(), "Healthy".into())
    });
    let recorded = format!("{}/", env.site("globex"));
    assert_eq!(tenant(&before, "globex")["url"], recorded.as_str());

    let container = env.container("globex");
    docker(&["restart", &container]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = loop {
        if env.running("globex")
            && let Some(port) = published_host_port(&container)
        {
            break port;
        }
        assert!(Instant::now() < deadline, "{container} never ran again");
        std::thread::sleep(Duration::from_millis(200));
    };
    let now = format!("http://127.0.0.1:{port}/");
    assert_ne!(now, recorded, "the engine published the same port again");

    let after = env.status_until("the new URL shown", |s| {
        tenant(s, "globex")["url"] == now.as_str()
            && pair(s, "globex") == ("Synced".into(), "Healthy".into())
    });
    assert_eq!(tenant(&after, "globex")["url"], now.as_str());
    let (code, _, body) = http("GET", &now, &[]);
    assert_eq!(code, 200, "{now} answers: {body}");
    // status only reads: the row still holds the old URL until a watch pass sees the new one.
    assert_eq!(format!("{}/", env.site("globex")), recorded);

    let mut watch = crate::watch::Watch::start(
        &env.repo,
        &env.ns,
        &env.pool,
        &["--interval", "1s"],
        &[("TENANTCTL_DATABASE_URL", env.url())],
    );
    crate::watch::eventually(&watch, Duration::from_secs(60), "the row's new URL", || {
        format!("{}/", env.site("globex")) == now
    });
    let events = crate::support::events(&env.url(), "globex");
    let changed: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "tenant.url-changed")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(changed, [format!("{recorded} → {now}")], "{events:#?}");
    watch.stop_cleanly();
}

on_both_databases!(status_follows_the_port_a_restart_publishes);
