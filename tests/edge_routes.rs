//! The edge (`edge/edge.yaml`): apply brings up `<ns>-edge` on the host's network and routes
//! each tenant's domain and `<slug>.<baseDomain>` to its container's loopback port, against the
//! real engine and both databases. Every test gives its edge its own free loopback ports.

use crate::support::{Db, Env, Repo, db, docker, inspect, wait_for};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A loopback port nothing listens on now (bound to port 0, then let go).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The edge's addresses in one test.
struct Ports {
    http: SocketAddr,
    admin: SocketAddr,
}

/// `shop` (domain shop.example.test) and `blog` (no domain) on the example's plans and themes,
/// behind an edge on free loopback ports with baseDomain `t.localhost`.
fn edge_env(db: Db) -> Option<(Env, Ports)> {
    let repo =
        Repo::example_with_tenants(&[("shop", "starter", "modern"), ("blog", "starter", "modern")]);
    repo.edit(
        "tenants/shop.yaml",
        "  env:",
        "  domain: shop.example.test\n  env:",
    );
    let ports = Ports {
        http: SocketAddr::from(([127, 0, 0, 1], free_port())),
        admin: SocketAddr::from(([127, 0, 0, 1], free_port())),
    };
    repo.write(
        "edge/edge.yaml",
        &format!(
            "kind: Edge\nname: edge\nspec:\n  http: {}\n  admin: {}\n  baseDomain: t.localhost\n",
            ports.http, ports.admin
        ),
    );
    repo.commit("an edge");
    Some((Env::new(repo, db)?, ports))
}

/// One GET of `path` through the edge as a browser of `host` sends it: status, head, body.
fn via(edge: SocketAddr, host: &str, path: &str) -> (u16, String, String) {
    crate::support::request(&edge.to_string(), host, "GET", path, &[])
}

fn answers(edge: SocketAddr, host: &str) -> bool {
    via(edge, host, "/health").0 == 200
}

/// Both host forms route to their tenant's page; an unknown host gets the edge's 404, never a
/// tenant's page; every URL shown is the edge's; a second plan has nothing to do.
fn both_host_forms_route_and_unknown_hosts_are_refused(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    let out = env.apply_ok(&[]);
    assert!(
        out.contains(&format!("edge.{}-edge: + created", env.ns)),
        "{out}"
    );
    assert!(out.contains("edge-routes."), "{out}");
    let shop_url = format!("http://shop.example.test:{}/", ports.http.port());
    let blog_url = format!("http://blog.t.localhost:{}/", ports.http.port());
    assert!(out.contains(&shop_url), "{out}");
    assert!(out.contains(&blog_url), "{out}");
    for host in ["shop.example.test", "shop.t.localhost"] {
        let (status, _, body) = via(ports.http, host, "/");
        assert_eq!(status, 200, "{host}: {body}");
        assert!(body.contains("shop"), "{host}: {body}");
    }
    let (status, _, body) = via(ports.http, "blog.t.localhost", "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("blog") && !body.contains(">shop<"), "{body}");
    let (status, _, body) = via(ports.http, "nobody.example.test", "/");
    assert_eq!(status, 404, "{body}");
    assert!(!body.contains("shop") && !body.contains("blog"), "{body}");
    // The rows the SaaS app reads, and status, name the edge URLs.
    let rows = db(&env.url()).tenants;
    assert_eq!(rows["shop"].url.as_deref(), Some(shop_url.as_str()));
    assert_eq!(rows["blog"].url.as_deref(), Some(blog_url.as_str()));
    let status = env.ok(&["status", "--output", "json"]);
    assert!(status.contains(&shop_url), "{status}");
    // The edge: host network, unprivileged, read-only, its role label, restarted unless stopped.
    let edge = format!("{}-edge", env.ns);
    assert_eq!(inspect(&edge, "{{.HostConfig.NetworkMode}}"), "host");
    assert_eq!(inspect(&edge, "{{.Config.User}}"), "10001:10001");
    assert_eq!(inspect(&edge, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(
        inspect(&edge, "{{index .Config.Labels \"tenantctl.role\"}}"),
        "edge"
    );
    assert_eq!(
        inspect(&edge, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    // The token is nowhere in output or the database.
    assert_eq!(env.plan_exit(), 0);
    let logs = env.ok(&["logs", "edge"]);
    assert!(logs.contains("shop.example.test"), "{logs}");
}

/// A blue/green replace (an env change) under steady load through the edge: zero failed
/// requests, counted; the URL is the same before and after.
fn a_replace_under_load_drops_no_request(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    let before = (env.id("shop"), db(&env.url()).tenants["shop"].url.clone());
    assert!(answers(ports.http, "shop.example.test"));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, failures) =
                (stop.clone(), ok.clone(), failed.clone(), failures.clone());
            let edge = ports.http;
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let (status, _, body) = via(edge, "shop.example.test", "/health");
                    if status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut f) = failures.lock() {
                            f.push(format!("{status}: {body}"));
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    env.repo
        .edit("tenants/shop.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug")
        .commit("shop logs more");
    let out = env.apply_ok(&[]);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.join();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(out.contains("-/+ replaced"), "{out}");
    assert_ne!(env.id("shop"), before.0, "the container was replaced");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed: {:?}\n{out}",
        ok + failed,
        failures.lock().map(|f| f.clone()).unwrap_or_default()
    );
    assert!(ok > 50, "only {ok} requests were made");
    assert_eq!(
        db(&env.url()).tenants["shop"].url,
        before.1,
        "the URL is stable"
    );
}

/// `docker restart` of a tenant (its published port changes) heals under `watch` through the
/// engine's event; `docker restart` of the edge heals by itself (routes kept in its volume).
fn restarts_of_a_tenant_and_of_the_edge_heal(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"));
    child
        .current_dir(env.repo.path())
        .args(env.args())
        .args(["watch", "--interval", "10m"])
        .env("TENANTCTL_SUBNET_POOL", &env.pool)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut watch = child.spawn().expect("watch starts");
    let healed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let port = || inspect(&env.container("shop"), "{{json .NetworkSettings.Ports}}");
        let before = port();
        docker(&["restart", "-t", "1", &env.container("shop")]);
        assert_ne!(port(), before, "a restart publishes another port");
        wait_for(
            "watch to route shop to its new port",
            Duration::from_secs(60),
            port,
            || answers(ports.http, "shop.example.test"),
        );
        docker(&["restart", "-t", "1", &format!("{}-edge", env.ns)]);
        wait_for(
            "the restarted edge to serve its routes again",
            Duration::from_secs(60),
            || docker(&["logs", "--tail", "20", &format!("{}-edge", env.ns)]),
            || answers(ports.http, "shop.example.test") && answers(ports.http, "blog.t.localhost"),
        );
    }));
    let _ = watch.kill();
    let _ = watch.wait();
    if let Err(panic) = healed {
        std::panic::resume_unwind(panic);
    }
}

/// A suspended tenant gets the edge's 503 "suspended" page with Retry-After at its domain.
fn a_suspended_tenant_gets_the_suspended_page(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    env.repo
        .edit("tenants/shop.yaml", "  env:", "  state: suspended\n  env:")
        .commit("shop suspended");
    env.apply_ok(&[]);
    let (status, head, body) = via(ports.http, "shop.example.test", "/");
    assert_eq!(status, 503, "{head}\n{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after"), "{head}");
    assert!(body.to_ascii_lowercase().contains("suspended"), "{body}");
    assert!(answers(ports.http, "blog.t.localhost"));
}

/// Routes changed behind tenantctl's back (a PUT with the edge's own token) are drift: plan
/// shows `~ edge-routes` and exits 2, apply pushes them back.
fn plan_shows_and_apply_repairs_tampered_routes(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    env.apply_ok(&[]);
    // The token, as someone with engine access can read it.
    let edge = format!("{}-edge", env.ns);
    let tar = std::process::Command::new("docker")
        .args(["cp", &format!("{edge}:/data/admin-token"), "-"])
        .output()
        .expect("docker cp");
    let mut archive = tar::Archive::new(tar.stdout.as_slice());
    let mut token = String::new();
    archive
        .entries()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .read_to_string(&mut token)
        .unwrap();
    let body = r#"{"generation":"tampered","routes":[]}"#;
    let mut s = TcpStream::connect(ports.admin).unwrap();
    write!(
        s,
        "PUT /routes HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token.trim(),
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(via(ports.http, "shop.example.test", "/").0, 404);
    let plan = env.run(&["plan", "--detailed-exitcode", "--no-color"]);
    let text = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(text.contains(&format!("~ edge-routes.{edge}")), "{text}");
    assert!(
        text.contains("shop.example.test → shop at 127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains(token.trim()), "the token is never shown");
    env.apply_ok(&[]);
    assert!(answers(ports.http, "shop.example.test"));
    assert_eq!(env.plan_exit(), 0);
}

on_both_databases!(both_host_forms_route_and_unknown_hosts_are_refused);
on_both_databases!(a_replace_under_load_drops_no_request);
on_both_databases!(restarts_of_a_tenant_and_of_the_edge_heal);
on_both_databases!(a_suspended_tenant_gets_the_suspended_page);
on_both_databases!(plan_shows_and_apply_repairs_tampered_routes);

/// The project's own example, edge included, is valid; a tenant's domain that is another
/// tenant's `<slug>.<baseDomain>` is refused with its file, line and column.
#[test]
fn the_projects_own_example_edge_is_valid_and_shared_hosts_are_refused() {
    let repo = Repo::example();
    repo.write("edge/edge.yaml", include_str!("../edge/edge.yaml"))
        .commit("the example's edge");
    let out = repo.tenantctl().arg("validate").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Valid: 3 plans, 3 themes, 6 tenants, an edge"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    repo.edit(
        "tenants/us/acme.yaml",
        "domain: shop.acme.example",
        "domain: globex.tenants.localhost",
    );
    let out = repo.tenantctl().arg("validate").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("tenants/us/acme.yaml:")
            && stderr.contains(
                "domain `globex.tenants.localhost` of tenant `acme` is the edge host of tenant `globex`"
            ),
        "{stderr}"
    );
}

/// Before the first apply, the plan shows the edge made and the routes it will hold, in text,
/// JSON and Markdown, without asking any engine for the edge (there is none yet).
fn the_first_plan_shows_the_edge_and_its_routes(backend: Db) {
    let Some((env, ports)) = edge_env(backend) else {
        return;
    };
    let edge = format!("{}-edge", env.ns);
    let text = env.ok(&["plan", "--no-color"]);
    assert!(text.contains(&format!("+ edge.{edge}")), "{text}");
    assert!(
        text.contains(&format!(
            "edge edge/edge.yaml:2:7 is new in git: listens on {}",
            ports.http
        )),
        "{text}"
    );
    assert!(text.contains(&format!("~ edge-routes.{edge}")), "{text}");
    assert!(
        text.contains("+shop.example.test: shop (not running)"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["plan", "--output", "json"])).expect("JSON");
    let changes = json["changes"].as_array().expect("changes");
    // After the plan and theme records, before any tenant's change.
    let first = changes
        .iter()
        .position(|c| c["tenant"].is_string())
        .expect("tenant changes");
    assert_eq!(
        (
            changes[first - 1]["resource"].as_str(),
            changes[first - 1]["action"].as_str()
        ),
        (Some("edge"), Some("create")),
        "{json:#}"
    );
    let last = changes.last().expect("a change");
    assert_eq!(last["resource"], "edge-routes", "{json:#}");
    assert_eq!(last["after"]["blog.t.localhost"], "blog (not running)");
    let md = env.ok(&["plan", "--output", "markdown"]);
    assert!(md.contains(&format!("edge.{edge}")), "{md}");
}

on_both_databases!(the_first_plan_shows_the_edge_and_its_routes);
