//! `--runtime swarm`: every tenant a replicated service of the swarm this engine manages, on its
//! own overlay network, rolled in place and rolled back by the engine. Real binary, real engine
//! (made a single-node swarm manager by `support::swarm()` when it is not one).
//!
//! Themes publish on loopback only, which swarm cannot do: the services have no published port,
//! and these tests never reach the sites over the network; health comes from the tasks.

use crate::support::{Db, Env, FailingImage, Repo, db, docker, events, names, swarm, wait_for};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

const SLUGS: [&str; 6] = ["acme", "globex", "hooli", "initech", "stark", "umbrella"];

/// `docker service inspect --format`.
fn service(name: &str, format: &str) -> String {
    docker(&["service", "inspect", "--format", format, name])
        .trim()
        .to_string()
}

/// The namespace's services, by name.
fn services(ns: &str) -> Vec<String> {
    let filter = format!("label=tenantctl.namespace={ns}");
    let out = docker(&[
        "service",
        "ls",
        "--filter",
        &filter,
        "--format",
        "{{.Name}}",
    ]);
    let mut v: Vec<String> = out.split_whitespace().map(String::from).collect();
    v.sort();
    v
}

/// Ids of the service's tasks that are meant to run and do.
fn running_tasks(name: &str) -> Vec<String> {
    let out = docker(&[
        "service",
        "ps",
        name,
        "--filter",
        "desired-state=running",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.CurrentState}}",
    ]);
    let mut ids: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, state)| state.starts_with("Running"))
        .map(|(id, _)| id.to_string())
        .collect();
    ids.sort();
    ids
}

/// Waits until exactly `n` of the service's tasks run (the engine settles a moment after apply).
fn wait_running(name: &str, n: usize) -> Vec<String> {
    let context = || {
        docker(&["service", "ps", name, "--no-trunc"]) + &service(name, "{{json .UpdateStatus}}")
    };
    wait_for(
        &format!("{n} running tasks of {name}"),
        Duration::from_secs(60),
        context,
        || running_tasks(name).len() == n,
    );
    running_tasks(name)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status(env: &Env) -> Value {
    let text = env.ok(&["status", "--output", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Polls `status --output json` until `done` holds for it.
fn status_until(env: &Env, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(env);
        if done(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn tenant<'a>(status: &'a Value, slug: &str) -> &'a Value {
    status["tenants"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["slug"] == slug))
        .unwrap_or_else(|| panic!("{slug} not in {status:#}"))
}

/// `(sync, health, health_reason)` of one tenant.
fn health(status: &Value, slug: &str) -> (String, String, String) {
    let t = tenant(status, slug);
    let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
    (s("sync"), s("health"), s("health_reason"))
}

/// The example repository cut down to `keep`, with health checks every second, so rolling
/// updates (which wait for new tasks to be healthy) take seconds rather than half a minute.
fn fast_example(keep: &[&str]) -> Repo {
    let repo = Repo::example();
    // Tenant files may hold several documents (umbrella.yaml also holds hooli).
    for dir in ["tenants/us", "tenants/eu"] {
        for entry in std::fs::read_dir(repo.path().join(dir)).unwrap() {
            let rel = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            let kept: Vec<String> = repo
                .read(&rel)
                .split("---\n")
                .filter(|doc| {
                    doc.lines()
                        .find_map(|l| l.strip_prefix("name: "))
                        .is_some_and(|name| keep.contains(&name.trim()))
                })
                .map(String::from)
                .collect();
            if kept.is_empty() {
                repo.remove(&rel);
            } else {
                repo.write(&rel, &kept.join("---\n"));
            }
        }
    }
    for theme in ["classic", "minimal", "modern"] {
        let rel = format!("themes/{theme}.yaml");
        let text = repo.read(&rel);
        let start = text.find("intervalSeconds: ").expect("an interval") + 17;
        let end = start + text[start..].find(' ').unwrap();
        repo.write(&rel, &format!("{}1{}", &text[..start], &text[end..]));
    }
    repo.commit("fast health checks, fewer tenants");
    repo
}

fn the_example_runs_as_one_service_per_tenant(backend: Db) {
    let _swarm = swarm();
    let Some(env) = Env::swarm(Repo::example(), backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    assert!(
        out.contains("publish on loopback only, which swarm cannot do"),
        "the plan says why there is no port: {out}"
    );
    for slug in ["acme", "globex", "hooli", "stark", "umbrella"] {
        assert!(
            out.contains(&format!("  {slug:<24} running (no published port)")),
            "{slug}: {out}"
        );
    }
    assert!(
        out.contains(&format!("  {:<24} (not running)", "initech")),
        "{out}"
    );

    // One service per tenant, labelled; tasks are not managed containers.
    assert_eq!(services(&env.ns), SLUGS.map(|s| env.container(s)));
    assert_eq!(names("container", &env.ns), Vec::<String>::new());
    let head = env.repo.head();
    let pool: ipnet::Ipv4Net = env.pool.parse().unwrap();
    let mut subnets = std::collections::BTreeSet::new();
    for slug in SLUGS {
        let name = env.container(slug);
        let labels: BTreeMap<String, String> =
            serde_json::from_str(&service(&name, "{{json .Spec.Labels}}")).unwrap();
        assert_eq!(labels["tenantctl.managed"], "true", "{labels:?}");
        assert_eq!(labels["tenantctl.namespace"], env.ns, "{labels:?}");
        assert_eq!(labels["tenantctl.tenant"], slug, "{labels:?}");
        assert_eq!(labels["tenantctl.revision"], head, "{labels:?}");
        let hash = &labels["tenantctl.spec-hash"];
        assert!(
            hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{labels:?}"
        );
        assert!(!labels["tenantctl.spec-hash-version"].is_empty());
        // The built-in site's tasks run unprivileged on a read-only root.
        assert_eq!(
            service(&name, "{{.Spec.TaskTemplate.ContainerSpec.User}}"),
            "10001:10001",
            "{slug}"
        );
        assert_eq!(
            service(&name, "{{.Spec.TaskTemplate.ContainerSpec.ReadOnly}}"),
            "true",
            "{slug}"
        );
        let want = if slug == "initech" { 0 } else { 1 };
        assert_eq!(
            service(&name, "{{.Spec.Mode.Replicated.Replicas}}"),
            want.to_string(),
            "{slug}"
        );
        assert_eq!(wait_running(&name, want).len(), want);

        // Its own attachable overlay network with a /28 from the pool, and its data volume.
        assert_eq!(
            docker(&[
                "network",
                "inspect",
                "--format",
                "{{.Driver}} {{.Attachable}} {{.Scope}} {{index .Labels \"tenantctl.tenant\"}}",
                &name,
            ])
            .trim(),
            format!("overlay true swarm {slug}")
        );
        let subnet: ipnet::Ipv4Net = docker(&[
            "network",
            "inspect",
            "--format",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            &name,
        ])
        .trim()
        .parse()
        .unwrap();
        assert!(
            subnet.prefix_len() == 28 && pool.contains(&subnet),
            "{subnet} is not a /28 of {pool}"
        );
        subnets.insert(subnet);
        let network_id = docker(&["network", "inspect", "--format", "{{.ID}}", &name]);
        assert_eq!(
            service(
                &name,
                "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}"
            ),
            network_id.trim()
        );
        assert_eq!(
            service(
                &name,
                "{{range .Spec.TaskTemplate.ContainerSpec.Mounts}}{{.Type}} {{.Source}} {{.Target}}{{end}}"
            ),
            format!("volume {name}-data /data")
        );
    }
    assert_eq!(subnets.len(), 6, "each network has its own subnet");
    assert_eq!(
        names("network", &env.ns),
        SLUGS.map(|s| env.container(s)),
        "no network but the tenants'"
    );
    assert_eq!(
        names("volume", &env.ns),
        SLUGS.map(|s| format!("{}-data", env.container(s)))
    );

    // The plan's limits; the update policy rolls one task at a time and back on failure.
    for slug in ["acme", "umbrella"] {
        assert_eq!(
            service(
                &env.container(slug),
                "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}"
            ),
            "536870912",
            "professional is 512Mi"
        );
    }
    let acme = env.container("acme");
    assert_eq!(
        service(
            &acme,
            "{{.Spec.TaskTemplate.Resources.Limits.NanoCPUs}} {{.Spec.TaskTemplate.Resources.Limits.Pids}}"
        ),
        "1000000000 256"
    );
    assert_eq!(
        service(
            &env.container("hooli"),
            "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}"
        ),
        (128u64 << 20).to_string(),
        "starter is 128Mi"
    );
    assert_eq!(
        service(
            &acme,
            "{{with .Spec.UpdateConfig}}{{.Parallelism}} {{.Order}} {{.FailureAction}} {{.Monitor}}{{end}}"
        ),
        "1 start-first rollback 5s"
    );

    // The database holds what the SaaS reads, as in docker mode.
    let state = db(&env.url());
    assert_eq!(state.tenants.len(), 6);
    for (slug, row) in &state.tenants {
        assert_eq!(
            row.applied_revision.as_deref(),
            Some(head.as_str()),
            "{slug}"
        );
        assert!(
            row.api_key_sha256.is_some() && row.last_error.is_none(),
            "{row:?}"
        );
    }

    // Health from the tasks.
    let s = status_until(&env, "5 Healthy and initech Suspended", |s| {
        SLUGS.iter().all(|slug| {
            let (sync, health, _) = health(s, slug);
            let want = if *slug == "initech" {
                "Suspended"
            } else {
                "Healthy"
            };
            sync == "Synced" && health == want
        })
    });
    assert_eq!(s["runtime"], "swarm", "{s:#}");
    assert_eq!(s["summary"]["health"]["Healthy"], 5, "{s:#}");
    assert_eq!(s["summary"]["health"]["Suspended"], 1, "{s:#}");
    assert_eq!(health(&s, "acme").2, "1/1 tasks running");
    assert_eq!(tenant(&s, "acme")["url"], Value::Null);
    let text = env.ok(&["status"]);
    assert!(
        text.contains(&format!("namespace {}, swarm services.", env.ns))
            && text.contains("6 tenants. Sync: 6 Synced. Health: 5 Healthy, 1 Suspended."),
        "{text}"
    );

    // Converged: the plan and a second apply change nothing.
    let ids: Vec<String> = SLUGS
        .iter()
        .map(|s| service(&env.container(s), "{{.ID}} {{.Version.Index}}"))
        .collect();
    assert_eq!(env.plan_exit(), 0);
    let again = env.apply_ok(&[]);
    assert!(again.contains("No changes."), "{again}");
    let after: Vec<String> = SLUGS
        .iter()
        .map(|s| service(&env.container(s), "{{.ID}} {{.Version.Index}}"))
        .collect();
    assert_eq!(after, ids, "nothing was updated");
}

on_both_databases!(the_example_runs_as_one_service_per_tenant);

/// An env change rolls the service in place; more replicas scale it; a broken image is rolled
/// back by the engine, reported, recorded, and shown as Degraded.
#[test]
fn updates_roll_in_place_scale_and_roll_back_by_themselves() {
    let _swarm = swarm();
    let broken = FailingImage::build(&format!(
        "tenantctl-test-failing:{}",
        crate::support::unique_namespace()
    ));
    let Some(env) = Env::swarm(fast_example(&["acme", "umbrella"]), Db::Sqlite) else {
        return;
    };
    env.apply_ok(&[]);
    let acme = env.container("acme");
    let umbrella = env.container("umbrella");
    let id = service(&acme, "{{.ID}}");
    let umbrella_version = service(&umbrella, "{{.Version.Index}}");
    let before = wait_running(&acme, 1);

    // An env change: one update in place, which rolls the same service to a new task.
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "LOG_LEVEL: info",
            "LOG_LEVEL: debug",
        )
        .commit("acme debug");
    let plan = env.ok(&["plan"]);
    assert!(plan.contains(&format!("  ~ service.{acme}\n")), "{plan}");
    assert!(
        plan.contains("env.LOG_LEVEL changed (tenant env)"),
        "{plan}"
    );
    assert!(
        plan.contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to destroy."),
        "{plan}"
    );
    let out = env.apply_ok(&[]);
    assert!(
        out.contains(&format!("service.{acme}: ~ rolled out")),
        "{out}"
    );
    assert_eq!(service(&acme, "{{.ID}}"), id, "the same service");
    assert!(
        service(&acme, "{{json .Spec.TaskTemplate.ContainerSpec.Env}}")
            .contains("\"LOG_LEVEL=debug\""),
    );
    assert_eq!(service(&acme, "{{.UpdateStatus.State}}"), "completed");
    let after = wait_running(&acme, 1);
    assert_ne!(after, before, "a new task runs");
    assert_eq!(
        docker(&[
            "inspect",
            "--type",
            "task",
            "--format",
            "{{.DesiredState}}",
            &before[0]
        ])
        .trim(),
        "shutdown",
        "the task that ran before is shut down"
    );
    assert_eq!(
        service(&umbrella, "{{.Version.Index}}"),
        umbrella_version,
        "umbrella is untouched"
    );
    assert_eq!(env.plan_exit(), 0);

    // Two replicas on the plan: both of its tenants scale, and are healthy.
    env.repo
        .edit(
            "plans/professional.yaml",
            "  features: [custom-domain, webhooks]\n",
            "  features: [custom-domain, webhooks]\n  replicas: 2\n",
        )
        .commit("two replicas");
    env.apply_ok(&[]);
    for name in [&acme, &umbrella] {
        assert_eq!(service(name, "{{.Spec.Mode.Replicated.Replicas}}"), "2");
        assert_eq!(wait_running(name, 2).len(), 2);
    }
    assert_eq!(service(&acme, "{{.ID}}"), id);
    let s = status_until(&env, "acme and umbrella healthy with 2 tasks", |s| {
        ["acme", "umbrella"].iter().all(|slug| {
            health(s, slug)
                == (
                    "Synced".into(),
                    "Healthy".into(),
                    "2/2 tasks running".into(),
                )
        })
    });
    assert_eq!(s["summary"]["health"]["Healthy"], 2);

    // A theme whose image cannot run: the engine rolls acme back by itself.
    env.repo
        .write(
            "themes/failing.yaml",
            &format!(
                "kind: Theme\nname: failing\nspec:\n  displayName: Failing\n  version: 1.0.0\n  \
                 image: {}\n  port: 8080\n  health: {{ path: /health, intervalSeconds: 1 }}\n",
                broken.tag
            ),
        )
        .edit("tenants/us/acme.yaml", "theme: modern", "theme: failing")
        .commit("acme on a failing image");
    let out = env.apply(&[]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("rolled back"), "{printed}");
    assert!(
        printed.contains("swarm rolled the service back to its previous spec, which keeps running"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("  {:<24} FAILED:", "acme")),
        "{printed}"
    );
    assert!(
        service(&acme, "{{.Spec.TaskTemplate.ContainerSpec.Image}}").starts_with("tenantctl-site:"),
        "the previous spec is back"
    );
    assert_eq!(service(&acme, "{{.ID}}"), id);
    for task in wait_running(&acme, 2) {
        let image = docker(&[
            "inspect",
            "--type",
            "task",
            "--format",
            "{{.Spec.ContainerSpec.Image}}",
            &task,
        ]);
        assert!(image.starts_with("tenantctl-site:"), "{task} runs {image}");
    }
    let recorded = events(&env.url(), "acme");
    assert!(
        recorded.iter().any(|e| e.kind == "service.rollback"),
        "{recorded:#?}"
    );
    assert!(
        db(&env.url()).tenants["acme"]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("rolled back")),
    );
    let s = status_until(&env, "acme Degraded by the rollback", |s| {
        let (sync, health, reason) = health(s, "acme");
        sync == "OutOfSync" && health == "Degraded" && reason.contains("rolled back")
    });
    assert_eq!(
        health(&s, "umbrella"),
        (
            "Synced".into(),
            "Healthy".into(),
            "2/2 tasks running".into()
        )
    );
}

/// Suspended is 0 replicas (nothing deleted); resumed runs again; removed from git, the service
/// goes and the volume stays; `--prune` removes the network.
#[test]
fn suspend_resume_and_remove_a_tenant() {
    let _swarm = swarm();
    let Some(env) = Env::swarm(fast_example(&["acme", "umbrella"]), Db::Sqlite) else {
        return;
    };
    env.apply_ok(&[]);
    let acme = env.container("acme");
    let umbrella = env.container("umbrella");
    let id = service(&acme, "{{.ID}}");
    let umbrella_version = service(&umbrella, "{{.Version.Index}}");

    env.repo
        .edit("tenants/us/acme.yaml", "state: active", "state: suspended")
        .commit("suspend acme");
    let out = env.apply_ok(&[]);
    assert!(
        out.contains(&format!("service.{acme}: . scaled to 0 (nothing deleted)")),
        "{out}"
    );
    assert_eq!(service(&acme, "{{.Spec.Mode.Replicated.Replicas}}"), "0");
    wait_running(&acme, 0);
    assert_eq!(service(&acme, "{{.ID}}"), id);
    assert!(names("volume", &env.ns).contains(&format!("{acme}-data")));
    let s = status_until(&env, "acme Suspended", |s| {
        health(s, "acme")
            == (
                "Synced".into(),
                "Suspended".into(),
                "suspended: scaled to 0".into(),
            )
    });
    assert_eq!(tenant(&s, "acme")["state"], "suspended");
    assert_eq!(db(&env.url()).tenants["acme"].state, "suspended");

    env.repo
        .edit("tenants/us/acme.yaml", "state: suspended", "state: active")
        .commit("resume acme");
    let out = env.apply_ok(&[]);
    assert!(
        out.contains(&format!("service.{acme}: > scaled to 1")),
        "{out}"
    );
    assert_eq!(wait_running(&acme, 1).len(), 1);
    assert_eq!(service(&acme, "{{.ID}}"), id);
    status_until(&env, "acme Healthy", |s| health(s, "acme").1 == "Healthy");

    env.repo
        .remove("tenants/us/acme.yaml")
        .commit("acme leaves");
    let out = env.apply_ok(&[]);
    assert!(
        out.contains(&format!("service.{acme}: - destroyed (data volume kept)")),
        "{out}"
    );
    assert_eq!(services(&env.ns), [umbrella.as_str()]);
    assert!(names("volume", &env.ns).contains(&format!("{acme}-data")));
    assert!(
        names("network", &env.ns).contains(&acme),
        "networks stay without --prune"
    );
    assert_eq!(db(&env.url()).tenants["acme"].state, "cancelled");
    env.apply_ok(&["--prune"]);
    assert!(!names("network", &env.ns).contains(&acme));
    assert_eq!(names("volume", &env.ns).len(), 2, "even --prune keeps data");
    assert_eq!(
        service(&umbrella, "{{.Version.Index}}"),
        umbrella_version,
        "umbrella is untouched throughout"
    );
    assert_eq!(
        env.cmd(&["plan", "--detailed-exitcode", "--prune"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(0)
    );
}

/// A plan on the engine's CPUs such that exactly two of its three tasks fit, and a tenant no
/// node may run: `big` (heavy plan) and `pinned` (a placement constraint no node satisfies).
fn degraded_repo() -> Repo {
    // Reserve 45% of the node's CPUs per task: two fit, three do not, on any number of CPUs.
    let ncpu: f64 = docker(&["info", "--format", "{{.NCPU}}"])
        .trim()
        .parse()
        .unwrap();
    let cpus = (ncpu * 0.45 * 100.0).floor() / 100.0;
    let repo = Repo::new();
    repo.write(
        "plans/heavy.yaml",
        &format!(
            "kind: Plan\nname: heavy\nspec:\n  displayName: Heavy\n  \
             price: {{ amount: 10, currency: USD, cycle: monthly }}\n  \
             resources: {{ cpus: {cpus}, memory: 64Mi, pids: 64, reservations: {{ cpus: {cpus}, memory: 32Mi }} }}\n  \
             replicas: 3\n"
        ),
    )
    .write(
        "plans/small.yaml",
        "kind: Plan\nname: small\nspec:\n  displayName: Small\n  \
         price: { amount: 1, currency: USD, cycle: monthly }\n  \
         resources: { cpus: 0.1, memory: 64Mi, pids: 64 }\n",
    )
    .write(
        "themes/plain.yaml",
        "kind: Theme\nname: plain\nspec:\n  displayName: Plain\n  version: 1.0.0\n  port: 8080\n  \
         health: { path: /health, intervalSeconds: 1 }\n",
    )
    .write(
        "tenants/big.yaml",
        "kind: Tenant\nname: big\nspec:\n  displayName: Big\n  owner: ops@big.example\n  \
         plan: heavy\n  theme: plain\n",
    )
    .write(
        "tenants/pinned.yaml",
        "kind: Tenant\nname: pinned\nspec:\n  displayName: Pinned\n  owner: ops@pinned.example\n  \
         plan: small\n  theme: plain\n  \
         placement: { constraints: [\"node.labels.tenantctl-test == nowhere\"] }\n",
    )
    .commit("tenants the node cannot run in full");
    repo
}

#[test]
fn tasks_the_scheduler_cannot_place_are_degraded_with_its_reason() {
    let _swarm = swarm();
    let Some(env) = Env::swarm(degraded_repo(), Db::Sqlite) else {
        return;
    };
    // One attempt: see unschedulable_tasks_fail_the_apply_even_after_a_retry for the retries.
    // Two attempts: the retry finds the service at its spec and must still wait for its tasks.
    let out = env.apply(&["--health-timeout", "5s", "--attempts", "2"]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    for slug in ["big", "pinned"] {
        assert!(
            printed.contains(&format!("  {slug:<24} FAILED:")),
            "{printed}"
        );
    }
    assert!(printed.contains("insufficient resources"), "{printed}");
    assert!(
        printed.contains("scheduling constraints not satisfied"),
        "{printed}"
    );

    let big = env.container("big");
    let reserved: f64 = service(
        &big,
        "{{.Spec.TaskTemplate.Resources.Reservations.NanoCPUs}}",
    )
    .parse()
    .unwrap();
    assert!(reserved > 0.0);
    assert_eq!(
        service(
            &big,
            "{{.Spec.TaskTemplate.Resources.Reservations.MemoryBytes}}"
        ),
        (32u64 << 20).to_string()
    );
    assert_eq!(
        service(
            &env.container("pinned"),
            "{{json .Spec.TaskTemplate.Placement.Constraints}}"
        ),
        "[\"node.labels.tenantctl-test == nowhere\"]"
    );
    let s = status_until(&env, "big and pinned Degraded", |s| {
        let (_, big, big_reason) = health(s, "big");
        let (_, pinned, pinned_reason) = health(s, "pinned");
        big == "Degraded"
            && big_reason.contains("2/3 tasks running")
            && big_reason.contains("insufficient resources")
            && pinned == "Degraded"
            && pinned_reason.contains("0/1 tasks running")
            && pinned_reason.contains("scheduling constraints not satisfied")
    });
    assert_eq!(s["summary"]["health"]["Degraded"], 2, "{s:#}");
    assert_eq!(running_tasks(&big).len(), 2);
}

#[test]
fn a_malformed_placement_constraint_is_a_validation_error() {
    let repo = fast_example(&["acme"]);
    repo.edit(
        "tenants/us/acme.yaml",
        "  env: { LOG_LEVEL: info }\n",
        "  env: { LOG_LEVEL: info }\n  placement: { constraints: [\"node.hostname = a\"] }\n",
    );
    let out = repo
        .tenantctl()
        .args(["--runtime", "swarm", "validate"])
        .output()
        .unwrap();
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains(
            "tenants/us/acme.yaml:11:30: constraint `node.hostname = a` has no `==` or `!=`\n  \
             hint: write e.g. `node.hostname == host-a`"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("1 problem in 1 file (files on disk)"),
        "{printed}"
    );

    // Committed, the swarm plan refuses it the same way, before anything is touched.
    repo.commit("malformed constraint");
    let _swarm = swarm();
    let Some(env) = Env::swarm(repo, Db::Sqlite) else {
        return;
    };
    let out = env.run(&["plan"]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        printed.contains("tenants/us/acme.yaml:11:30: constraint `node.hostname = a`"),
        "{printed}"
    );
    assert_eq!(services(&env.ns), Vec::<String>::new());
}
