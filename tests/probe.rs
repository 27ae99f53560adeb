//! The reachability probe: what a customer reaches through the loopback published port, its
//! drift (no published port; healthy to the engine but not answering through the port) and
//! their repairs, against the real engine and both databases.

use crate::support::{Db, Env, Repo, docker, http, inspect, wait_for};
use bollard::models::{ContainerCreateBody, HealthConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use serde_json::Value;
use std::time::Duration;

/// One tenant, `shop`, on the starter plan and the modern theme (health checked every 10 s).
fn shop_env(db: Db) -> Option<Env> {
    Env::new(
        Repo::example_with_tenants(&[("shop", "starter", "modern")]),
        db,
    )
}

fn status(env: &Env) -> Value {
    let text = env.ok(&["status", "--output", "json", "--tenant", "shop"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn shop(status: &Value) -> Value {
    status["tenants"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["slug"] == "shop"))
        .cloned()
        .unwrap_or_else(|| panic!("shop not in {status:#}"))
}

/// Replaces `name` by hand through the Engine API, as a person (or a restore after an engine
/// failure) could: the same image, command, env, labels, health check and host config (limits,
/// network, volume, ports), changed by `edit`, then started.
fn recreate_by_hand(name: &str, edit: impl FnOnce(&mut ContainerCreateBody)) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        let seen = docker.inspect_container(name, None).await.unwrap();
        let config = seen.config.unwrap_or_default();
        let mut body = ContainerCreateBody {
            image: config.image,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            env: config.env,
            labels: config.labels,
            exposed_ports: config.exposed_ports,
            healthcheck: config.healthcheck,
            host_config: seen.host_config,
            ..Default::default()
        };
        edit(&mut body);
        let force = RemoveContainerOptionsBuilder::default().force(true).build();
        docker.remove_container(name, Some(force)).await.unwrap();
        let named = CreateContainerOptionsBuilder::default().name(name).build();
        let id = docker.create_container(Some(named), body).await.unwrap().id;
        docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .unwrap();
    });
}

/// The repaired tenant: in sync, healthy, answering through its port, with the probe's latency
/// in `status` (JSON and text), and nothing left to plan.
fn answers_again(env: &Env) {
    // The engine's first health check runs one interval (10 s) after the start.
    let healthy = |s: &Value| s["sync"] == "Synced" && s["health"] == "Healthy";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut s = shop(&status(env));
    while !healthy(&s) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        s = shop(&status(env));
    }
    assert_eq!(
        (s["sync"].as_str(), s["health"].as_str()),
        (Some("Synced"), Some("Healthy")),
        "{s:#}"
    );
    assert_eq!(s["probe"]["result"], "answered", "{s:#}");
    assert_eq!(s["probe"]["status"], 200, "{s:#}");
    assert!(s["probe"]["latency_ms"].is_u64(), "{s:#}");
    let url = s["url"]
        .as_str()
        .expect("a URL")
        .trim_end_matches('/')
        .to_string();
    assert_eq!(s["probe"]["url"], format!("{url}/health"), "{s:#}");
    assert_eq!(http("GET", &format!("{url}/health"), &[]).0, 200);
    let text = env.ok(&["status", "--no-color"]);
    let row = text
        .lines()
        .find(|l| l.starts_with("shop "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("TENANT") && l.contains("PROBE")),
        "{text}"
    );
    let probe = row.split_whitespace().nth(7).unwrap_or_default();
    let latency = row.split_whitespace().nth(8).unwrap_or_default();
    assert_eq!(probe, "200", "{text}");
    assert!(
        latency.ends_with("ms") && latency.trim_end_matches("ms").parse::<u64>().is_ok(),
        "{text}"
    );
    assert_eq!(env.plan_exit(), 0);
}

/// (a) The container runs and its own health check passes, but the engine publishes no port for
/// the theme's 8080 (made again by hand without the binding): status says OutOfSync with the
/// reason, plan shows the replace, apply repairs it, and the URL answers.
fn a_container_without_its_published_port_is_replaced(backend: Db) {
    let Some(env) = shop_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    answers_again(&env);
    let name = env.container("shop");
    recreate_by_hand(&name, |body| {
        if let Some(host) = body.host_config.as_mut() {
            host.port_bindings = None;
        }
    });
    let ports = inspect(&name, "{{json .NetworkSettings.Ports}}");
    assert!(!ports.contains("HostPort"), "{ports}");

    let s = shop(&status(&env));
    assert_eq!(s["sync"], "OutOfSync", "{s:#}");
    let reasons = s["sync_reasons"].to_string();
    assert!(
        reasons.contains("must be replaced: port 8080 not published"),
        "{s:#}"
    );
    assert_eq!(s["probe"]["result"], "no-published-port", "{s:#}");
    let text = env.ok(&["status", "--no-color"]);
    assert!(text.contains("no port"), "{text}");
    let plan = env.ok(&["plan", "--no-color"]);
    assert!(
        plan.contains(&format!("-/+ container.{name}")) && plan.contains("port 8080 not published"),
        "{plan}"
    );
    let id = env.id("shop");
    let out = env.apply_ok(&["--health-timeout", "30s"]);
    assert_ne!(env.id("shop"), id, "{out}");
    answers_again(&env);
}

/// (b) The container runs and the engine says healthy (its check asks the site inside the
/// container), but nothing answers through the published port (the site was started by hand
/// on another port): status says OutOfSync and Degraded with what a customer gets, apply
/// replaces it, and the URL answers.
fn a_healthy_container_that_does_not_answer_is_replaced(backend: Db) {
    let Some(env) = shop_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("shop");
    recreate_by_hand(&name, |body| {
        if let Some(env) = body.env.as_mut() {
            env.retain(|e| !e.starts_with("PORT="));
            env.push("PORT=8081".into());
        }
        body.healthcheck = Some(HealthConfig {
            test: Some(vec![
                "CMD".into(),
                "/tenantctl".into(),
                "site-health".into(),
                "http://127.0.0.1:8081/health".into(),
            ]),
            interval: Some(1_000_000_000),
            timeout: Some(2_000_000_000),
            retries: Some(3),
            ..Default::default()
        });
    });
    wait_for(
        "the engine calls the hand-made container healthy",
        Duration::from_secs(60),
        || inspect(&name, "{{json .State}}"),
        || inspect(&name, "{{.State.Health.Status}}") == "healthy",
    );
    let port = inspect(
        &name,
        "{{(index (index .NetworkSettings.Ports \"8080/tcp\") 0).HostPort}}",
    );
    assert!(port.parse::<u16>().is_ok(), "still published: {port}");

    let s = shop(&status(&env));
    assert_eq!(
        (s["sync"].as_str(), s["health"].as_str()),
        (Some("OutOfSync"), Some("Degraded")),
        "{s:#}"
    );
    let reasons = s["sync_reasons"].to_string();
    assert!(
        reasons.contains(&format!(
            "must be replaced: does not answer on 127.0.0.1:{port}/health"
        )),
        "{s:#}"
    );
    assert!(
        s["health_reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not answer")),
        "{s:#}"
    );
    assert_ne!(s["probe"]["result"], "answered", "{s:#}");
    assert_eq!(s["probe"]["attempts"], 2, "a failure is asked again: {s:#}");
    let plan = env.ok(&["plan", "--no-color"]);
    assert!(
        plan.contains(&format!("-/+ container.{name}"))
            && plan.contains("does not answer on 127.0.0.1:"),
        "{plan}"
    );
    env.apply_ok(&["--health-timeout", "30s"]);
    answers_again(&env);
}

/// (a) again, repaired by `watch --self-heal` instead of apply.
fn watch_self_heal_republishes_a_lost_port(backend: Db) {
    let Some(env) = shop_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("shop");
    recreate_by_hand(&name, |body| {
        if let Some(host) = body.host_config.as_mut() {
            host.port_bindings = None;
        }
    });
    let mut args: Vec<String> = env.args();
    args.extend(
        ["watch", "--self-heal", "--interval", "2s"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut watch = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"))
        .current_dir(env.repo.path())
        .args(&args)
        .env("TENANTCTL_SUBNET_POOL", &env.pool)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("watch starts");
    let healed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "watch --self-heal to publish the port again",
            Duration::from_secs(90),
            || docker(&["ps", "-a", "--filter", &format!("name={name}")]),
            || {
                // Between the old container's removal and the rename there is none by this name.
                let ports = std::process::Command::new("docker")
                    .args([
                        "inspect",
                        "--format",
                        "{{json .NetworkSettings.Ports}}",
                        &name,
                    ])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                ports.contains("HostPort") && shop(&status(&env))["probe"]["result"] == "answered"
            },
        );
    }));
    let _ = watch.kill();
    let _ = watch.wait();
    if let Err(panic) = healed {
        std::panic::resume_unwind(panic);
    }
    answers_again(&env);
}

on_both_databases!(
    a_container_without_its_published_port_is_replaced,
    a_healthy_container_that_does_not_answer_is_replaced,
    watch_self_heal_republishes_a_lost_port,
);
