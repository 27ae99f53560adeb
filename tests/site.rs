//! The built-in site runs unprivileged on a read-only root and still meters usage on its
//! volume; a volume a root process wrote into is handed over when the site moves onto it; an
//! image theme's health check (a shell without a shell string) passes on the real engine.

use crate::support::{Db, Env, Repo, docker, http, inspect, shell_site_image, wait_for};
use std::time::Duration;

const PLAN: &str = "kind: Plan
name: pro
spec:
  displayName: Pro
  price: { amount: 9.99, currency: USD, cycle: monthly }
  resources: { cpus: 0.5, memory: 128Mi, pids: 64 }
  quotas: { apiCallsPerMonth: 1000 }
";

const BUILTIN: &str = "kind: Theme
name: shop
spec:
  displayName: Shop
  version: 1.0.0
  health: { path: /health, intervalSeconds: 2 }
";

fn image_theme(image: &str, path: &str) -> String {
    format!(
        "kind: Theme\nname: shop\nspec:\n  displayName: Shop\n  version: 1.0.0\n  image: {image}\n  health: {{ path: {path}, intervalSeconds: 2 }}\n"
    )
}

const TENANT: &str = "kind: Tenant
name: acme
spec:
  displayName: Acme
  owner: ops@acme.example
  plan: pro
  theme: shop
";

fn repo(theme: &str) -> Repo {
    let repo = Repo::new();
    repo.write("plans/pro.yaml", PLAN)
        .write("themes/shop.yaml", theme)
        .write("tenants/acme.yaml", TENANT)
        .commit("one tenant");
    repo
}

fn key_of(applied: &str) -> String {
    applied
        .lines()
        .find(|l| l.trim_start().starts_with("acme") && l.contains("tk_"))
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("a key for acme in:\n{applied}"))
        .to_string()
}

/// Where the site answers now: a restart publishes it on a new loopback port.
fn site(env: &Env) -> String {
    let port = docker(&["port", &env.container("acme"), "8080/tcp"]);
    let addr = port.lines().next().unwrap_or_default().trim().to_string();
    format!("http://{addr}")
}

fn call(env: &Env, key: &str) {
    let auth = format!("Bearer {key}");
    let (status, _, body) = http(
        "GET",
        &format!("{}/api/ping", site(env)),
        &[("Authorization", &auth)],
    );
    assert_eq!(status, 200, "{body}");
}

/// The site's own count of API calls (its /usage, asked with the key).
fn calls(env: &Env, key: &str) -> Option<u64> {
    let (status, _, body) = http(
        "GET",
        &format!("{}/usage", site(env)),
        &[("X-API-Key", key)],
    );
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["api_calls_total"]
        .as_u64()
        .or_else(|| v["counters"]["api_calls_total"].as_u64())
}

/// Counters survive a restart only if the site could write them to its volume (saved every
/// 5 s and once more on a graceful stop).
fn restart_and_expect(env: &Env, key: &str, want: u64) {
    let name = env.container("acme");
    docker(&["restart", "--time", "10", &name]);
    wait_for(
        "the restarted site to answer",
        Duration::from_secs(30),
        || docker(&["logs", "--tail", "20", &name]),
        || inspect(&name, "{{.State.Health.Status}}") == "healthy",
    );
    wait_for(
        "the restarted site to report its saved counters",
        Duration::from_secs(30),
        || docker(&["logs", "--tail", "20", &env.container("acme")]),
        || calls(env, key) == Some(want),
    );
}

fn builtin_site_runs_unprivileged_and_meters(db: Db) {
    let Some(env) = Env::new(repo(BUILTIN), db) else {
        return;
    };
    let applied = env.apply_ok(&[]);
    let key = key_of(&applied);
    let name = env.container("acme");
    assert_eq!(inspect(&name, "{{.Config.User}}"), "10001:10001");
    assert_eq!(inspect(&name, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect(&name, "{{json .HostConfig.SecurityOpt}}"),
        r#"["no-new-privileges:true"]"#
    );
    assert_eq!(inspect(&name, "{{json .HostConfig.CapDrop}}"), r#"["ALL"]"#);
    // The process itself, as the host's kernel sees it.
    let top = docker(&["top", &name, "-o", "pid,uid,gid,args"]);
    let site_line = top
        .lines()
        .find(|l| l.contains("/tenantctl site"))
        .unwrap_or_else(|| panic!("no site process in:\n{top}"));
    let ids: Vec<&str> = site_line.split_whitespace().skip(1).take(2).collect();
    assert_eq!(ids, ["10001", "10001"], "{top}");
    // It serves and counts; the counts reach its volume (a fresh one took the image's owner).
    call(&env, &key);
    call(&env, &key);
    assert_eq!(calls(&env, &key), Some(2));
    restart_and_expect(&env, &key, 2);
    let logs = docker(&["logs", &name]);
    assert!(!logs.contains("not writable"), "{logs}");
    let metered = env.ok(&["meter"]);
    assert!(metered.contains("Stored 1 sample"), "{metered}");
    assert_eq!(env.plan_exit(), 0, "converged");
}

fn a_volume_root_wrote_is_handed_to_the_site_user(db: Db) {
    let image = shell_site_image();
    let Some(env) = Env::new(repo(&image_theme(&image, "/health")), db) else {
        return;
    };
    let applied = env.apply_ok(&[]);
    let key = key_of(&applied);
    let name = env.container("acme");
    // The theme's image runs as root (its own user) and writes its counters as root.
    assert_eq!(inspect(&name, "{{.Config.User}}"), "");
    assert_eq!(inspect(&name, "{{.HostConfig.ReadonlyRootfs}}"), "false");
    for _ in 0..3 {
        call(&env, &key);
    }
    restart_and_expect(&env, &key, 3);

    // The theme moves to the built-in site: it runs as 10001 on the volume root wrote.
    env.repo
        .write("themes/shop.yaml", BUILTIN)
        .commit("built-in site");
    let plan = env.ok(&["plan"]);
    assert!(plan.contains("-/+ container."), "{plan}");
    let applied = env.apply_ok(&[]);
    assert!(
        applied.contains("data volume handed to the site user"),
        "{applied}"
    );
    assert_eq!(inspect(&name, "{{.Config.User}}"), "10001:10001");
    assert_eq!(calls(&env, &key), Some(3), "root's counters were read");
    call(&env, &key);
    // Written by the unprivileged site: the count survives its restart.
    restart_and_expect(&env, &key, 4);
    let logs = docker(&["logs", &name]);
    assert!(!logs.contains("not writable"), "{logs}");
    // No helper container is left behind.
    let left = docker(&["ps", "-a", "--filter", &format!("name={name}_owner"), "-q"]);
    assert_eq!(left.trim(), "");
    assert_eq!(env.plan_exit(), 0, "converged");
}

fn image_theme_health_check_runs_without_a_shell_string(db: Db) {
    let image = shell_site_image();
    let Some(env) = Env::new(repo(&image_theme(&image, "/health")), db) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("acme");
    let test: Vec<String> =
        serde_json::from_str(&inspect(&name, "{{json .Config.Healthcheck.Test}}")).unwrap();
    assert_eq!(
        test[..5],
        [
            "CMD",
            "sh",
            "-c",
            tenantctl::plan::container::IMAGE_HEALTH_SCRIPT,
            "sh"
        ]
    );
    assert!(test[5].ends_with(":8080/health"), "{test:?}");
    wait_for(
        "the engine to call the image theme healthy",
        Duration::from_secs(60),
        || inspect(&name, "{{json .State.Health}}"),
        || inspect(&name, "{{.State.Health.Status}}") == "healthy",
    );
    assert_eq!(env.plan_exit(), 0, "converged");
}

/// The upgrade itself: a container as an older tenantctl left it (spec-hash version 1, the site
/// running as root, its counters written by root into a root-owned volume) is planned for
/// replacement for the security change alone, and apply hands the volume over on the way.
fn an_upgrade_replaces_a_root_site_and_hands_its_volume_over(db: Db) {
    let Some(env) = Env::new(repo(BUILTIN), db) else {
        return;
    };
    let key = key_of(&env.apply_ok(&[]));
    let name = env.container("acme");
    let source = tenantctl::source::Repo::discover(env.repo.path()).unwrap();
    let snap = source.snapshot_at("HEAD").unwrap();
    let desired = tenantctl::model::load(&snap.files).expect("valid");
    let t = &desired.tenants["acme"];
    let spec = tenantctl::plan::container::desired_container(
        &env.ns,
        t,
        &desired.plans[&t.plan],
        &desired.themes[&t.theme],
    );
    let digest = crate::support::db(&env.url()).tenants["acme"]
        .api_key_sha256
        .clone()
        .expect("a key digest");

    // The older world: the volume root's (as the old image, without /data, left it) ...
    docker(&["rm", "-f", &name]);
    let mount = format!("{}:/data", spec.volume);
    docker(&[
        "run",
        "--rm",
        "--user",
        "0:0",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--cap-add",
        "FOWNER",
        "--cap-add",
        "DAC_READ_SEARCH",
        "--network",
        "none",
        "-v",
        &mount,
        &spec.image,
        "site-data-owner",
        "/data",
        "0:0",
    ]);
    // ... and the site running as root, labelled as version 1 labelled it.
    let mut args: Vec<String> = [
        "create",
        "--name",
        &name,
        "--user",
        "0:0",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--network",
        &spec.network,
        "-p",
        "127.0.0.1::8080",
        "-v",
        &mount,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--cpus".to_string(),
        format!("{}", spec.nano_cpus as f64 / 1e9),
        "--memory".to_string(),
        spec.memory_bytes.to_string(),
        "--memory-swap".to_string(),
        spec.memory_bytes.to_string(),
        "--pids-limit".to_string(),
        spec.pids.to_string(),
    ]);
    let hash_v1 = tenantctl::plan::container::spec_hash(&spec, "1").unwrap();
    for (k, v) in [
        ("tenantctl.managed", "true"),
        ("tenantctl.namespace", env.ns.as_str()),
        ("tenantctl.tenant", "acme"),
        ("tenantctl.spec-hash", hash_v1.as_str()),
        ("tenantctl.spec-hash-version", "1"),
        ("tenantctl.revision", snap.revision.as_str()),
    ] {
        args.extend(["--label".to_string(), format!("{k}={v}")]);
    }
    for (k, v) in spec
        .env
        .iter()
        .chain([(&"TENANT_API_KEY_SHA256".to_string(), &digest)])
    {
        args.extend(["-e".to_string(), format!("{k}={v}")]);
    }
    args.extend([spec.image.clone(), "site".to_string()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&refs);
    docker(&["start", &name]);
    assert_eq!(inspect(&name, "{{.Config.User}}"), "0:0");
    // Docker's proxy accepts before the site listens: wait for its answer.
    wait_for(
        "the old site to answer",
        Duration::from_secs(30),
        || docker(&["logs", "--tail", "20", &name]),
        || http("GET", &format!("{}/health", site(&env)), &[]).0 == 200,
    );
    for _ in 0..2 {
        call(&env, &key);
    }
    // Saved by root: the count survives a restart of the old container.
    docker(&["restart", "--time", "10", &name]);
    wait_for(
        "the old site to report its saved counters",
        Duration::from_secs(30),
        || docker(&["logs", "--tail", "20", &name]),
        || {
            std::net::TcpStream::connect(site(&env).trim_start_matches("http://")).is_ok()
                && calls(&env, &key) == Some(2)
        },
    );

    // The plan says why, and nothing else changes: the hash input of version 1 matches.
    let plan = env.ok(&["plan", "--no-color"]);
    assert!(plan.contains(&format!("-/+ container.{name}")), "{plan}");
    assert!(
        plan.contains("security: the built-in site now runs as uid:gid 10001:10001"),
        "{plan}"
    );
    assert!(
        plan.contains("Plan: 0 to create, 0 to update, 1 to replace, 0 to destroy."),
        "{plan}"
    );
    assert!(
        !plan.contains(" changed"),
        "only the security reason: {plan}"
    );

    let applied = env.apply_ok(&[]);
    assert!(
        applied.contains("data volume handed to the site user"),
        "{applied}"
    );
    assert_eq!(inspect(&name, "{{.Config.User}}"), "10001:10001");
    assert_eq!(inspect(&name, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect(
            &name,
            "{{index .Config.Labels \"tenantctl.spec-hash-version\"}}"
        ),
        "2"
    );
    assert_eq!(calls(&env, &key), Some(2), "root's counters were read");
    call(&env, &key);
    restart_and_expect(&env, &key, 3);
    assert_eq!(env.plan_exit(), 0, "converged");
}

on_both_databases!(an_upgrade_replaces_a_root_site_and_hands_its_volume_over,);

on_both_databases!(
    builtin_site_runs_unprivileged_and_meters,
    a_volume_root_wrote_is_handed_to_the_site_user,
    image_theme_health_check_runs_without_a_shell_string,
);
