//! `tenantctl watch`: the GitOps loop against a real repository, engine and database.

use crate::support::{
    Cleanup, Db, Env, Postgres, Repo, db, docker, http, inspect, sqlite_url, unique_namespace,
    unique_pool,
};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A running `tenantctl watch` whose output goes to a file; SIGTERM and reaped on drop.
pub(crate) struct Watch {
    pub(crate) child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Watch {
    pub(crate) fn start(
        repo: &Repo,
        ns: &str,
        pool: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Watch {
        Watch::start_in(repo.path(), ns, pool, args, env)
    }

    fn start_in(
        cwd: &std::path::Path,
        ns: &str,
        pool: &str,
        args: &[&str],
        env: &[(&str, String)],
    ) -> Watch {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("watch.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantctl"));
        cmd.current_dir(cwd)
            .args(["--namespace", ns, "watch"])
            .args(args)
            .env("TENANTCTL_SUBNET_POOL", pool)
            .env("NO_COLOR", "1")
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Watch {
            child: cmd.spawn().unwrap(),
            log,
            _dir: dir,
        }
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then asserts the loop stopped with exit 0 (saying how it ended, and its output).
    pub(crate) fn stop_cleanly(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "watch did not stop cleanly on SIGTERM ({status}):\n{}",
            self.output()
        );
    }

    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "watch did not stop after SIGTERM:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds, failing with the watch output after `within`.
pub(crate) fn eventually(
    watch: &Watch,
    within: Duration,
    what: &str,
    check: impl Fn() -> bool,
) -> Duration {
    crate::support::wait_for(
        what,
        within,
        || format!("watch output:\n{}", watch.output()),
        check,
    )
}

fn state(name: &str) -> String {
    std::process::Command::new("docker")
        .args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Status}} {{.Id}}",
            name,
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn running(name: &str) -> bool {
    state(name).starts_with("running")
}

#[test]
fn commits_are_applied_in_seconds_and_drift_is_repaired() {
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    let mut watch = Watch::start(
        &repo,
        &ns,
        &pool,
        &[
            "--interval",
            "3s",
            "--self-heal",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    let c = |slug: &str| format!("{ns}-{slug}");
    eventually(&watch, Duration::from_secs(120), "the first apply", || {
        watch.output().contains("changes applied")
            && ["acme", "globex", "umbrella", "hooli", "stark"]
                .iter()
                .all(|s| running(&c(s)))
    });

    // A commit: applied within a second plus container start, far below the resync interval.
    let before = state(&c("acme"));
    repo.edit(
        "tenants/us/acme.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: debug",
    )
    .commit("acme debug");
    let took = eventually(
        &watch,
        Duration::from_secs(30),
        "applying the commit",
        || {
            running(&c("acme"))
                && inspect(&c("acme"), "{{json .Config.Env}}").contains("LOG_LEVEL=debug")
        },
    );
    assert_ne!(state(&c("acme")), before);
    assert!(
        took < Duration::from_secs(10),
        "commit to running took {took:?}"
    );

    // Drift: stopped and removed by hand; self-heal repairs both on the next pass.
    docker(&["stop", "-t", "1", &c("stark")]);
    docker(&["rm", "-f", &c("hooli")]);
    eventually(&watch, Duration::from_secs(60), "self-heal", || {
        running(&c("stark")) && running(&c("hooli"))
    });
    let events = db(&sqlite_url(&repo));
    assert_eq!(
        events.tenants["acme"].applied_revision.as_deref(),
        Some(repo.head().as_str())
    );

    // Metrics on the address it printed.
    let out = watch.output();
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/metrics"))
        .expect("metrics address printed");
    let (status, _, body) = http("GET", url, &[]);
    assert_eq!(status, 200);
    assert!(
        body.contains("tenantctl_reconcile_passes_total")
            && body.contains("tenantctl_tenants{sync=\"Synced\"}"),
        "{body}"
    );
    assert!(body.contains("tenantctl_changes_applied_total"), "{body}");
    // The meter runs beside the loop: per-tenant usage appears in the metrics.
    eventually(&watch, Duration::from_secs(30), "usage gauges", || {
        http("GET", url, &[]).2.contains(&format!(
            "tenantctl_tenant_memory_bytes{{tenant=\"{}\"}}",
            "acme"
        ))
    });

    // SIGTERM: the loop stops cleanly.
    watch.stop_cleanly();
}

#[test]
fn without_self_heal_drift_is_reported_not_repaired() {
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    let watch = Watch::start(&repo, &ns, &pool, &["--interval", "1s"], &[]);
    let name = format!("{ns}-globex");
    eventually(&watch, Duration::from_secs(120), "the first apply", || {
        running(&name) && watch.output().contains("changes applied")
    });
    docker(&["stop", "-t", "1", &name]);
    eventually(&watch, Duration::from_secs(20), "the drift report", || {
        watch.output().contains("out of sync")
    });
    assert!(!running(&name), "without --self-heal nothing is repaired");
}

#[test]
fn an_ended_trial_suspends_until_converted_and_bad_commits_change_nothing() {
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    repo.tenantctl()
        .args(["--namespace", &ns, "apply", "--auto-approve"])
        .env("TENANTCTL_SUBNET_POOL", &pool)
        .assert()
        .success();
    // 31 days later: the starter (30 days) and professional (14 days) trials have ended.
    let later = (tenantctl::store::now_unix() + 31 * 86_400).to_string();
    let watch = Watch::start(
        &repo,
        &ns,
        &pool,
        &["--interval", "2s"],
        &[("TENANTCTL_NOW", later)],
    );
    let c = |slug: &str| format!("{ns}-{slug}");
    // The containers stop before the applier records the new state, so
    // wait for both: the row, not just the engine, says "suspended".
    eventually(&watch, Duration::from_secs(60), "trial suspensions", || {
        ["acme", "umbrella", "hooli"]
            .iter()
            .all(|s| !running(&c(s)))
            && db(&sqlite_url(&repo)).tenants["hooli"].state == "suspended"
    });
    assert!(
        running(&c("globex")) && running(&c("stark")),
        "enterprise has no trial"
    );
    assert!(
        watch.output().contains("trial ended on"),
        "{}",
        watch.output()
    );

    // A broken commit: reported, nothing changes.
    repo.write("tenants/broken.yaml", "kind: Tenant\nname: Broken\n")
        .commit("broken");
    eventually(
        &watch,
        Duration::from_secs(20),
        "the invalid revision report",
        || watch.output().contains("is invalid"),
    );
    assert!(running(&c("globex")));
    repo.remove("tenants/broken.yaml").commit("fix");

    // Converting in git brings the tenant back.
    repo.edit(
        "tenants/eu/umbrella.yaml",
        "  plan: starter\n  theme: modern\n",
        "  plan: starter\n  theme: modern\n  billing: { converted: true }\n",
    )
    .commit("hooli pays");
    eventually(
        &watch,
        Duration::from_secs(60),
        "the converted tenant starting",
        || running(&c("hooli")),
    );
    assert!(!running(&c("acme")));
}

#[test]
fn an_unreachable_engine_is_waited_for_not_fatal() {
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let mut watch = Watch::start(
        &repo,
        &ns,
        &pool,
        &["--interval", "1s"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock".to_string())],
    );
    eventually(&watch, Duration::from_secs(20), "two retries", || {
        watch.output().matches("retrying in").count() >= 2
    });
    assert!(watch.child.try_wait().unwrap().is_none(), "still running");
    watch.stop_cleanly();
}

/// SIGTERM as soon as the loop has started (connect done, the first pass about to run or
/// running) stops it cleanly: the signal is handled from the start, never its default action.
#[test]
fn sigterm_at_start_stops_cleanly() {
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    let mut watch = Watch::start(&repo, &ns, &pool, &["--interval", "1s"], &[]);
    eventually(&watch, Duration::from_secs(30), "the loop starting", || {
        watch.output().contains("watching ")
    });
    watch.stop_cleanly();
    let out = watch.output();
    assert!(out.contains("stopping:"), "{out}");
}

/// The connect backoff never exceeds `--interval` (README: "up to the interval").
fn the_connect_backoff_is_capped_at_the_interval(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let mut args = vec!["--interval", "2s"];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let mut watch = Watch::start(
        &env.repo,
        &env.ns,
        &env.pool,
        &args,
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock".to_string())],
    );
    eventually(&watch, Duration::from_secs(30), "five retries", || {
        watch.output().matches("retrying in").count() >= 5
    });
    let output = watch.output();
    let delays: Vec<&str> = output
        .split("retrying in ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(
        delays.iter().all(|d| *d == "1s" || *d == "2s"),
        "{delays:?}\n{output}"
    );
    watch.stop_cleanly();
}

on_both_databases!(the_connect_backoff_is_capped_at_the_interval);

#[test]
fn a_remote_branch_is_followed_through_a_local_cache() {
    let origin = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(origin.path())
        .status()
        .unwrap();
    assert!(status.success());
    let work = Repo::example();
    let url = format!("file://{}", origin.path().display());
    work.git(&["remote", "add", "origin", &url]);
    work.git(&["push", "-q", "origin", "main"]);
    // The reconciler runs where nobody commits: a plain directory.
    let host = tempfile::tempdir().unwrap();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    let mut watch = Watch::start_in(
        host.path(),
        &ns,
        &pool,
        &["--remote", &url, "--branch", "main", "--interval", "2s"],
        &[],
    );
    let acme = format!("{ns}-acme");
    eventually(&watch, Duration::from_secs(120), "the first apply", || {
        running(&acme) && watch.output().contains("changes applied")
    });
    assert!(host.path().join(".tenantctl/state.db").exists());

    work.edit(
        "tenants/us/acme.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: debug",
    )
    .commit("acme debug");
    work.git(&["push", "-q", "origin", "main"]);
    // SIGHUP fetches now rather than at the next interval.
    Command::new("kill")
        .args(["-HUP", &watch.child.id().to_string()])
        .status()
        .unwrap();
    eventually(
        &watch,
        Duration::from_secs(30),
        "the pushed commit applied",
        || running(&acme) && inspect(&acme, "{{json .Config.Env}}").contains("LOG_LEVEL=debug"),
    );
    // A pass an engine event started (every pass fetches) may have applied the push first; the
    // signal is then answered as soon as that pass ends.
    eventually(
        &watch,
        Duration::from_secs(30),
        "the SIGHUP answered",
        || watch.output().contains("SIGHUP: syncing now"),
    );
    watch.stop_cleanly();

    // A remote that cannot be fetched is reported and retried, not fatal.
    let mut bad = Watch::start_in(
        host.path(),
        &ns,
        &pool,
        &[
            "--remote",
            "file:///nonexistent/repo.git",
            "--interval",
            "1s",
        ],
        &[],
    );
    eventually(&bad, Duration::from_secs(20), "the fetch error", || {
        bad.output()
            .contains("fetching branch `main` of file:///nonexistent/repo.git failed")
    });
    bad.stop_cleanly();
}

#[test]
fn a_database_outage_is_reported_and_waited_out() {
    let Some(pg) = Postgres::create() else { return };
    let repo = Repo::example();
    let (ns, pool) = (unique_namespace(), unique_pool());
    let _cleanup = Cleanup::new(&ns);
    let mut watch = Watch::start(
        &repo,
        &ns,
        &pool,
        &[
            "--database-url",
            &pg.url,
            "--interval",
            "1s",
            "--meter-interval",
            "0s",
        ],
        &[],
    );
    let acme = format!("{ns}-acme");
    eventually(&watch, Duration::from_secs(120), "the first apply", || {
        running(&acme) && watch.output().contains("changes applied")
    });

    pg.set_available(false);
    let before = watch.output().matches("pass failed").count();
    eventually(
        &watch,
        Duration::from_secs(30),
        "the outage reported",
        || watch.output().matches("pass failed").count() > before,
    );
    assert!(
        watch.child.try_wait().unwrap().is_none(),
        "the loop must not exit on a transient fault"
    );
    // A commit made during the outage is applied once the database is back.
    repo.edit(
        "tenants/us/acme.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: debug",
    )
    .commit("during the outage");
    std::thread::sleep(Duration::from_secs(2));
    pg.set_available(true);
    eventually(
        &watch,
        Duration::from_secs(90),
        "recovery and the commit applied",
        || running(&acme) && inspect(&acme, "{{json .Config.Env}}").contains("LOG_LEVEL=debug"),
    );
    watch.stop_cleanly();
}
