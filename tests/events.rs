//! `watch` follows the engine's events: drift made by hand (a container removed, stopped, cut off
//! its network) is repaired (`--self-heal`) or reported at once, not at the next resync; and the
//! event stream survives an engine that goes away and comes back.

use crate::support::proxy::EngineProxy;
use crate::support::{Db, Env, Repo, docker, inspect};
use crate::watch::{Watch, eventually};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The resync timer never fires within a test: whatever happens is the events' doing.
const NEVER: &str = "10m";
/// Generous: the goal is a second or two; a loaded 2-core box can be slow.
const DEADLINE: Duration = Duration::from_secs(20);

/// `watch` with `extra` over `env`'s deployment, after `apply` has converged it.
fn watch(env: &Env, extra: &[&str], vars: &[(&str, String)]) -> Watch {
    env.apply_ok(&[]);
    let mut args = vec!["--interval", NEVER, "--metrics-addr", "127.0.0.1:0"];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    args.extend(extra);
    let watch = Watch::start(&env.repo, &env.ns, &env.pool, &args, vars);
    eventually(&watch, DEADLINE, "the start pass", || {
        watch.output().contains(": in sync")
    });
    watch
}

/// The container's published loopback port, as `docker port` says.
fn port(name: &str) -> Option<u16> {
    let out = std::process::Command::new("docker")
        .args(["port", name, "8080/tcp"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("127.0.0.1:"))?
        .rsplit(':')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The site of container `name` answers `/health` with 200 on its published port now.
fn answers(name: &str) -> bool {
    let Some(port) = port(name) else { return false };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// The value of counter `name` on the metrics address watch printed.
fn counter(watch: &Watch, name: &str) -> u64 {
    let out = watch.output();
    let Some(url) = out
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/metrics"))
    else {
        return 0;
    };
    crate::support::http("GET", url, &[])
        .2
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

fn networks(name: &str) -> String {
    inspect(
        name,
        "{{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}",
    )
}

/// `--self-heal`: `docker rm -f`, `docker stop` and `docker network disconnect` are each
/// repaired on their events, with the resync ten minutes away.
fn drift_made_by_hand_is_repaired_on_its_event(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let watch = watch(&env, &["--self-heal"], &[]);
    let (acme, stark, globex) = (
        env.container("acme"),
        env.container("stark"),
        env.container("globex"),
    );
    let before = env.id("acme");

    docker(&["rm", "-f", &acme]);
    let took = eventually(&watch, DEADLINE, "acme back and answering", || {
        answers(&acme)
    });
    assert_ne!(env.id("acme"), before, "a new container");
    let out = watch.output();
    assert!(
        out.contains("engine event acme: container ") && out.contains(": reconciling now"),
        "{out}"
    );
    eprintln!("rm -f to answering: {took:?}");

    docker(&["stop", "-t", "1", &stark]);
    eventually(&watch, DEADLINE, "stark started again", || {
        env.running("stark") && answers(&stark)
    });

    docker(&["network", "disconnect", &globex, &globex]);
    eventually(&watch, DEADLINE, "globex back on its network", || {
        networks(&globex).split_whitespace().any(|n| n == globex)
    });
    assert!(answers(&globex));
    assert!(
        counter(&watch, "tenantctl_reconcile_event_passes_total") >= 3,
        "{}",
        watch.output()
    );
}

on_both_databases!(drift_made_by_hand_is_repaired_on_its_event);

/// Without `--self-heal` the same drift is reported (log and metrics) on its event, and left.
fn without_self_heal_drift_is_reported_on_its_event(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let watch = watch(&env, &[], &[]);
    let drift_reports = || watch.output().matches("out of sync: ").count();
    let out_of_sync = || counter(&watch, "tenantctl_tenants{sync=\"OutOfSync\"}");
    assert_eq!((drift_reports(), out_of_sync()), (0, 0));

    docker(&["rm", "-f", &env.container("acme")]);
    eventually(&watch, DEADLINE, "the drift reported", || {
        drift_reports() >= 1 && out_of_sync() == 1
    });
    let reports = drift_reports();
    docker(&["stop", "-t", "1", &env.container("stark")]);
    eventually(&watch, DEADLINE, "the stop reported", || {
        drift_reports() > reports && out_of_sync() == 2
    });
    let reports = drift_reports();
    let globex = env.container("globex");
    docker(&["network", "disconnect", &globex, &globex]);
    eventually(&watch, DEADLINE, "the disconnect reported", || {
        drift_reports() > reports && out_of_sync() == 3
    });

    assert!(!env.running("stark"), "nothing is repaired");
    assert!(
        !crate::support::names("container", &env.ns).contains(&env.container("acme")),
        "nothing is repaired"
    );
    // Every report follows a pass the engine's events started, naming the tenants.
    let out = watch.output();
    let lines: Vec<&str> = out.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains("out of sync: ") {
            assert!(
                i > 0 && lines[i - 1].contains(": reconciling now"),
                "{line} after\n{out}"
            );
        }
    }
    // Each tenant's drift is named by the pass its own event started, or by one its event was
    // folded into. An event that comes during a pass makes one more pass, which may begin
    // after the report the test waited for: wait for it.
    let named = |out: &str, tenant: &str| {
        out.lines()
            .filter(|l| l.contains("engine event "))
            .any(|l| {
                l.contains(&format!("engine event {tenant}: "))
                    || l.contains(&format!(", {tenant}"))
                    || l.contains(&format!("(tenants {tenant}"))
            })
    };
    for tenant in ["acme", "stark", "globex"] {
        eventually(
            &watch,
            DEADLINE,
            &format!("{tenant} named by an engine event"),
            || named(&watch.output(), tenant),
        );
    }
}

on_both_databases!(without_self_heal_drift_is_reported_on_its_event);

/// Drift made by hand is seen through the observed-state cache: the event names the tenant,
/// which alone is read again; nothing lists the namespace after the start pass.
fn drift_is_seen_by_reading_the_named_tenant_not_the_namespace(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let watch = watch(&env, &["--resync", NEVER], &[]);
    let listings = || counter(&watch, "tenantctl_observe_full_listings_total");
    let rereads = || counter(&watch, "tenantctl_observe_tenant_rereads_total");
    assert_eq!(listings(), 1, "{}", watch.output());
    let before = rereads();

    docker(&["stop", "-t", "1", &env.container("stark")]);
    eventually(&watch, DEADLINE, "the stop reported", || {
        watch.output().contains("out of sync: ")
            && counter(&watch, "tenantctl_tenants{sync=\"OutOfSync\"}") == 1
    });
    assert!(rereads() > before, "{}", watch.output());
    assert_eq!(listings(), 1, "no listing after the start pass");
    assert!(!env.running("stark"), "nothing is repaired");
}

on_both_databases!(drift_is_seen_by_reading_the_named_tenant_not_the_namespace);

/// The engine goes away (every connection cut, new ones turned away) and comes back: watch keeps
/// running, retries with a capped backoff rather than spinning, follows the events again, and a
/// container removed afterwards is repaired on its event.
fn watch_follows_the_engine_again_after_it_comes_back(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let proxy = EngineProxy::start();
    let watch = watch(
        &env,
        &["--self-heal", "--meter-interval", "0s"],
        &[("DOCKER_HOST", proxy.host())],
    );
    assert!(
        proxy.forwarded() > 0,
        "watch talks to the engine through the proxy"
    );

    proxy.down();
    eventually(&watch, DEADLINE, "the lost stream said", || {
        watch.output().contains("engine events: lost")
    });
    let lines_before = watch.output().lines().count();
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let (attempts, lines_while_down) = (
        proxy.turned_away(),
        watch.output().lines().count() - lines_before,
    );
    // Backoff 0.5, 1, 2, 4 s (capped at 5): about 4 attempts in 6 s; a spinning loop makes thousands.
    assert!(
        (1..=10).contains(&attempts),
        "{attempts} connections in {:?}:\n{}",
        down.elapsed(),
        watch.output()
    );
    assert!(lines_while_down <= 2, "{}", watch.output());
    eprintln!("engine down 6 s: {attempts} connections turned away, {lines_while_down} lines said");

    proxy.up();
    eventually(&watch, DEADLINE, "the stream followed again", || {
        watch
            .output()
            .contains("engine events: following again after")
    });
    eventually(&watch, DEADLINE, "the full pass after it", || {
        watch
            .output()
            .contains("engine events followed again after")
    });
    let acme = env.container("acme");
    let before = env.id("acme");
    docker(&["rm", "-f", &acme]);
    eventually(&watch, DEADLINE, "acme repaired on its event", || {
        answers(&acme)
    });
    assert_ne!(env.id("acme"), before);
    assert!(
        counter(&watch, "tenantctl_engine_event_reconnects_total") >= 1,
        "{}",
        watch.output()
    );
    let mut watch = watch;
    watch.stop_cleanly();
}

on_both_databases!(watch_follows_the_engine_again_after_it_comes_back);

/// The exposition on `--metrics-addr` passes `promtool check metrics` (Debian's prometheus):
/// every family with HELP and TYPE, counters named `_total`, per-tenant usage gauges included.
#[test]
fn the_metrics_pass_promtool() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    let watch = watch(&env, &["--meter-interval", "1s"], &[]);
    let out = watch.output();
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/metrics"))
        .expect("the metrics address is said")
        .to_string();
    eventually(&watch, DEADLINE, "the usage gauges", || {
        crate::support::http("GET", &url, &[])
            .2
            .contains("tenantctl_tenant_memory_bytes{tenant=\"acme\"}")
    });
    let (status, _, body) = crate::support::http("GET", &url, &[]);
    assert_eq!(status, 200);
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), body.as_bytes()).unwrap();
    let result = check.wait_with_output().unwrap();
    assert!(
        result.status.success() && result.stdout.is_empty() && result.stderr.is_empty(),
        "promtool: {}{}\n{body}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    for family in [
        "tenantctl_reconcile_passes_total",
        "tenantctl_tenants",
        "tenantctl_tenant_memory_bytes",
    ] {
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "{family}:\n{body}"
        );
        assert!(
            body.contains(&format!("# TYPE {family} ")),
            "{family}:\n{body}"
        );
    }
}
