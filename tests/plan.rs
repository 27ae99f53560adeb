//! `tenantctl plan` against real git repositories, the real Docker engine and both databases.

use crate::support::{Cleanup, Postgres, Repo, converge, docker, sqlite_url, unique_namespace};
use predicates::prelude::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}
fn stderr(out: &std::process::Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn a_fresh_host_plans_every_example_tenant() {
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    let out = repo
        .tenantctl()
        .args(["--namespace", &ns, "plan", "--detailed-exitcode"])
        .assert()
        .code(2)
        .get_output()
        .clone();
    let text = stdout(&out);
    for line in [
        format!("  + network.{ns}-acme"),
        format!("  + volume.{ns}-acme-data"),
        format!("  + container.{ns}-acme"),
        "  + tenant-record.acme".to_string(),
        "  + plan-record.enterprise".to_string(),
        "  + theme-record.modern".to_string(),
    ] {
        assert!(
            text.contains(&format!("{line}\n")),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("new tenant; created stopped because it is suspended"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 30 to create, 0 to update, 0 to replace, 0 to destroy.\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("revision {}", &repo.head()[..12])),
        "{text}"
    );
    // A plan creates no database (nor its folder): nothing has been applied, and it says so.
    assert!(!repo.path().join(".tenantctl").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no state database at") && err.contains("nothing has been applied with it"),
        "{err}"
    );
    let status = std::process::Command::new("git")
        .args(["status", "--porcelain"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert_eq!(stdout(&status), "", "a plan leaves no untracked file");
}

#[test]
fn converged_state_plans_nothing_and_each_commit_shows_exactly_its_change() {
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    let ids = converge(&repo, &ns, &sqlite_url(&repo), true);
    assert_eq!(ids.len(), 6);

    let plan = |extra: &[&str]| {
        let mut args = vec!["--namespace", ns.as_str(), "plan", "--detailed-exitcode"];
        args.extend(extra);
        repo.tenantctl().args(&args).output().unwrap()
    };
    let out = plan(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).starts_with("No changes."), "{}", stdout(&out));

    // One tenant's env: only that tenant's container is replaced, with a diff of the field.
    repo.edit(
        "tenants/us/acme.yaml",
        "LOG_LEVEL: info",
        "LOG_LEVEL: debug",
    )
    .commit("acme: debug logs");
    let out = plan(&[]);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("-/+ container.{ns}-acme\n")),
        "{text}"
    );
    assert!(
        text.contains("#   env.LOG_LEVEL changed (tenant env)"),
        "{text}"
    );
    assert!(
        text.contains("      -  LOG_LEVEL: info\n      +  LOG_LEVEL: debug\n"),
        "{text}"
    );
    assert!(
        text.ends_with("Plan: 0 to create, 0 to update, 1 to replace, 0 to destroy.\n"),
        "{text}"
    );

    let out = plan(&["--output", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(v["revision"], repo.head());
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v:#}");
    assert_eq!(changes[0]["tenant"], "acme");
    assert_eq!(changes[0]["resource"], "container");
    assert_eq!(changes[0]["action"], "replace");
    assert_eq!(changes[0]["before"]["env"]["LOG_LEVEL"], "info");
    assert_eq!(changes[0]["after"]["env"]["LOG_LEVEL"], "debug");

    // A plan's memory: every tenant on that plan, and only those, with the reason.
    repo.edit("plans/professional.yaml", "memory: 512Mi", "memory: 1Gi")
        .commit("professional: 1Gi");
    let text = stdout(&plan(&[]));
    assert!(text.contains("  ~ plan-record.professional\n"), "{text}");
    for slug in ["acme", "umbrella"] {
        assert!(
            text.contains(&format!("-/+ container.{ns}-{slug}\n")),
            "{slug}: {text}"
        );
    }
    for slug in ["globex", "initech", "hooli", "stark"] {
        assert!(
            !text.contains(&format!("container.{ns}-{slug}")),
            "{slug} must be untouched: {text}"
        );
    }
    assert!(
        text.contains("#   memory changed (plan `professional` resources.memory)"),
        "{text}"
    );
    assert!(
        text.contains("-memory: 512Mi") && text.contains("+memory: 1Gi"),
        "{text}"
    );

    // Uncommitted edits are not planned, but plan says they exist; --worktree includes them.
    repo.edit(
        "tenants/eu/stark.yaml",
        "features: [beta-checkout]",
        "features: [beta-checkout]\n  env: { LOG_LEVEL: debug }",
    );
    let out = plan(&[]);
    assert!(!stdout(&out).contains(&format!("container.{ns}-stark")));
    assert!(stderr(&out).contains("1 uncommitted edit under plans/, themes/ or tenants/ is not included (tenants/eu/stark.yaml)"), "{}", stderr(&out));
    let out = plan(&["--worktree"]);
    assert!(
        stdout(&out).contains(&format!("-/+ container.{ns}-stark")),
        "{}",
        stdout(&out)
    );
    assert!(!stderr(&out).contains("uncommitted"));

    // --tenant narrows the plan.
    let text = stdout(&plan(&["--tenant", "umbrella"]));
    assert!(
        text.contains(&format!("container.{ns}-umbrella"))
            && !text.contains(&format!("container.{ns}-acme")),
        "{text}"
    );
    let out = plan(&["--tenant", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--tenant nobody: no tenant of that name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stopped_and_running_containers_follow_the_tenant_state() {
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    let ids = converge(&repo, &ns, &sqlite_url(&repo), false);
    let out = repo
        .tenantctl()
        .args(["--namespace", &ns, "plan"])
        .assert()
        .success()
        .get_output()
        .clone();
    let text = stdout(&out);
    for slug in ["acme", "globex", "umbrella", "hooli", "stark"] {
        assert!(
            text.contains(&format!("  > container.{ns}-{slug}\n")),
            "{slug}: {text}"
        );
    }
    assert!(
        !text.contains(&format!("container.{ns}-initech")),
        "a suspended tenant stays stopped: {text}"
    );
    assert!(text.contains("State: 5 to start, 0 to stop."), "{text}");

    // Someone starts the suspended tenant by hand: plan stops it again.
    docker(&["start", &ids["initech"]]);
    let text = stdout(
        &repo
            .tenantctl()
            .args(["--namespace", &ns, "plan", "--tenant", "initech"])
            .output()
            .unwrap(),
    );
    assert!(
        text.contains(&format!("  . container.{ns}-initech\n")),
        "{text}"
    );
    assert!(text.contains("#   tenant is suspended"), "{text}");
}

#[test]
fn removing_a_tenant_keeps_its_data_and_prune_removes_its_network() {
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    converge(&repo, &ns, &sqlite_url(&repo), true);
    repo.remove("tenants/us/globex.yaml")
        .edit(
            "tenants/eu/stark.yaml",
            "theme: modern",
            "theme: modern\n  state: cancelled",
        )
        .commit("globex leaves, stark cancels");
    let text = stdout(
        &repo
            .tenantctl()
            .args(["--namespace", &ns, "plan"])
            .output()
            .unwrap(),
    );
    assert!(
        text.contains(&format!("  - container.{ns}-globex\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  - container.{ns}-stark\n")),
        "{text}"
    );
    assert!(
        text.contains("  ~ tenant-record.globex\n") && text.contains("+state: cancelled"),
        "{text}"
    );
    assert!(
        !text.contains("volume."),
        "data volumes are never destroyed: {text}"
    );
    assert!(
        !text.contains("- network."),
        "networks go only with --prune: {text}"
    );
    let text = stdout(
        &repo
            .tenantctl()
            .args(["--namespace", &ns, "plan", "--prune"])
            .output()
            .unwrap(),
    );
    assert!(
        text.contains(&format!("  - network.{ns}-globex\n"))
            && text.contains(&format!("  - network.{ns}-stark\n")),
        "{text}"
    );
    assert!(!text.contains("volume."), "{text}");
}

#[test]
fn objects_of_other_namespaces_and_unmanaged_objects_are_never_touched() {
    let repo = Repo::example();
    let (ns, other) = (unique_namespace(), unique_namespace());
    let mut cleanup = Cleanup::new(&ns);
    let _other_cleanup = Cleanup::new(&other);
    let image = crate::support::fixture_image();
    let label = |k: &str, v: &str| format!("{k}={v}");
    docker(&[
        "create",
        "--name",
        &format!("{other}-acme"),
        "--label",
        "tenantctl.managed=true",
        "--label",
        &label("tenantctl.namespace", &other),
        "--label",
        "tenantctl.tenant=acme",
        &image,
    ]);
    let unmanaged = docker(&[
        "create",
        "--name",
        &format!("{ns}-lookalike"),
        "--label",
        &label("tenantctl.namespace", &ns),
        "--label",
        "tenantctl.tenant=ghost",
        &image,
    ]);
    cleanup.extra_containers.push(unmanaged.trim().to_string());
    let text = stdout(
        &repo
            .tenantctl()
            .args(["--namespace", &ns, "plan", "--prune"])
            .output()
            .unwrap(),
    );
    assert!(
        !text.contains("ghost") && !text.contains("lookalike") && !text.contains(&other),
        "{text}"
    );
    assert!(
        text.contains("Plan: 30 to create, 0 to update, 0 to replace, 0 to destroy."),
        "{text}"
    );
}

#[test]
fn an_unreachable_engine_is_a_clear_error() {
    let repo = Repo::example();
    repo.tenantctl()
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["plan"])
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicate::str::contains("/nonexistent/docker.sock"));
}

#[test]
fn an_invalid_commit_blocks_the_plan_and_bad_refs_are_explained() {
    let repo = Repo::example();
    repo.tenantctl()
        .args(["plan", "--ref", "no-such-branch"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`no-such-branch` does not name a commit",
        ));
    repo.edit("tenants/us/acme.yaml", "theme: modern", "theme: retro")
        .commit("typo");
    repo.tenantctl()
        .args(["plan", "--detailed-exitcode"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "tenants/us/acme.yaml:7:10: theme `retro` does not exist",
        ));
    assert!(
        !repo.path().join(".tenantctl").exists(),
        "nothing is touched when the revision is invalid"
    );
    let empty = Repo::new();
    empty
        .tenantctl()
        .arg("plan")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no commits yet"));
}

#[test]
fn postgres_state_store_shows_database_drift() {
    let Some(pg) = Postgres::create() else { return };
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    converge(&repo, &ns, &pg.url, true);
    let plan = || {
        repo.tenantctl()
            .args([
                "--namespace",
                &ns,
                "--database-url",
                &pg.url,
                "plan",
                "--detailed-exitcode",
            ])
            .output()
            .unwrap()
    };
    let out = plan();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // Someone edits the price in the database by hand: plan puts git's value back.
    pg.query("UPDATE plans SET price_cents = 1 WHERE name = 'starter'");
    let out = plan();
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.contains("  ~ plan-record.starter\n"), "{text}");
    assert!(
        text.contains("-price: 0.01 USD monthly\n") && text.contains("+price: 19.00 USD monthly\n"),
        "{text}"
    );
    assert!(!text.contains("container."), "{text}");
    assert!(
        !stderr(&out).contains("tenantctl@"),
        "no credentials in output"
    );
    // And the SQLite default was never created.
    assert!(!repo.path().join(".tenantctl/state.db").exists());
}

#[test]
fn namespace_comes_from_the_environment_too() {
    let repo = Repo::example();
    let ns = unique_namespace();
    let _cleanup = Cleanup::new(&ns);
    repo.tenantctl()
        .env("TENANTCTL_NAMESPACE", &ns)
        .arg("plan")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("+ container.{ns}-acme\n")));
    repo.tenantctl()
        .args(["--namespace", "Bad_NS", "plan"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--namespace"));
}
