//! `watch --metrics-addr`: health, readiness and signed push webhooks against a real remote,
//! engine and database.

use crate::support::{Db, Env, Repo, http};
use crate::watch::{Watch, eventually};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "s3cret-for-hooks";

/// `sha256=<hex HMAC-SHA256 of body>`, as GitHub signs, computed by openssl (not by the code
/// under test).
fn github_signature(secret: &str, body: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-hex", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256={}", text.split_whitespace().next().unwrap())
}

/// A POST with a body; (status, head, body). The server may answer (and close) before the
/// whole body is sent: a failed write is not an error here.
fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap();
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let _ = stream
        .write_all(req.as_bytes())
        .and_then(|()| stream.write_all(body));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The `http://127.0.0.1:PORT` the watch printed for its endpoints.
fn base(watch: &Watch) -> String {
    let out = watch.output();
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/metrics"))
        .expect("endpoints address printed");
    url.split("/metrics").next().unwrap().to_string()
}

/// Whether the container runs; a container that does not exist does not (no panic).
fn running(env: &Env, slug: &str) -> bool {
    Command::new("docker")
        .args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Running}}",
        ])
        .arg(env.container(slug))
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// A counter's value in the metrics text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.parse().ok())
        .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
}

/// Waits until every health check answered, then until no pass runs and none started for 3 s: every pass fetches the remote (an engine
/// event's among them), so a push meant for a webhook must come after those an apply's own
/// events start. Passes started (the first, the engine's, the webhooks'; the timer is 10 min
/// away) must equal passes ended.
fn settled(watch: &Watch, base: &str, ns: &str) {
    // A container turning healthy is an engine event too: wait for every health check first.
    crate::watch::eventually(
        watch,
        Duration::from_secs(90),
        "health checks settled",
        || {
            let out = Command::new("docker")
                .args(["ps", "--filter", &format!("label=tenantctl.namespace={ns}")])
                .args(["--format", "{{.Status}}"])
                .output()
                .unwrap();
            out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("starting")
        },
    );
    let ended = || {
        let m = http("GET", &format!("{base}/metrics"), &[]).2;
        let started = 1
            + counter(&m, "tenantctl_reconcile_event_passes_total")
            + counter(&m, "tenantctl_reconcile_hook_passes_total");
        let ended = counter(&m, "tenantctl_reconcile_passes_total");
        (started == ended).then_some(ended)
    };
    let mut last = None;
    let mut still = std::time::Instant::now();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while last.is_none() || still.elapsed() < Duration::from_secs(3) {
        assert!(
            std::time::Instant::now() < deadline,
            "passes never settled:\n{}",
            watch.output()
        );
        std::thread::sleep(Duration::from_millis(200));
        let now = ended();
        if now != last || now.is_none() {
            last = now;
            still = std::time::Instant::now();
        }
    }
}

fn tenant(slug: &str) -> String {
    format!(
        "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug}\n  owner: ops@{slug}.example\n  plan: starter\n  theme: modern\n  state: active\n  domain: shop.{slug}.example\n"
    )
}

fn push_event(branch: &str) -> String {
    format!(
        r#"{{"ref":"refs/heads/{branch}","before":"0","after":"1","repository":{{"name":"tenants"}}}}"#
    )
}

/// A tenant pushed to the remote runs as soon as a signed webhook arrives, with the resync
/// timer ten minutes away; wrongly signed or unsigned hooks change nothing.
fn webhooks_sync_a_pushed_commit_at_once(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let origin = tempfile::tempdir().unwrap();
    let status = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(origin.path())
        .status()
        .unwrap();
    assert!(status.success());
    let url = format!("file://{}", origin.path().display());
    env.repo.git(&["remote", "add", "origin", &url]);
    env.repo.git(&["push", "-q", "origin", "main"]);
    let mut args = vec![
        "--remote",
        &url,
        "--branch",
        "main",
        "--interval",
        "10m",
        "--metrics-addr",
        "127.0.0.1:0",
    ];
    if let Some(db_url) = &env.db_url {
        args.extend(["--database-url", db_url.as_str()]);
    }
    let mut watch = Watch::start(
        &env.repo,
        &env.ns,
        &env.pool,
        &args,
        &[("TENANTCTL_WEBHOOK_SECRET", SECRET.to_string())],
    );
    eventually(&watch, Duration::from_secs(180), "the first apply", || {
        watch.output().contains("changes applied") && env.running("acme")
    });
    let base = base(&watch);
    let hook = format!("{base}/hooks/git");

    let (status, _, body) = http("GET", &format!("{base}/healthz"), &[]);
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    eventually(&watch, Duration::from_secs(20), "ready", || {
        http("GET", &format!("{base}/readyz"), &[]).0 == 200
    });
    let (_, head, body) = http("GET", &format!("{base}/readyz"), &[]);
    assert!(head.contains("application/json"), "{head}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["role"], "leader", "{body}");
    assert_eq!(ready["engine"], "ok", "{body}");
    assert_eq!(ready["database"], "ok", "{body}");
    // GET is not a webhook.
    assert_eq!(http("GET", &hook, &[]).0, 405);

    // Pushed, but the webhook is wrongly signed or unsigned: nothing happens.
    settled(&watch, &base, &env.ns);
    env.repo
        .write("tenants/us/hookone.yaml", &tenant("hookone"))
        .commit("hookone");
    env.repo.git(&["push", "-q", "origin", "main"]);
    let payload = push_event("main");
    let wrong = github_signature("not the secret", &payload);
    let (status, _, body) = post(
        &hook,
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &wrong)],
        payload.as_bytes(),
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("does not match"), "{body}");
    let (status, _, body) = post(&hook, &[("X-GitHub-Event", "push")], payload.as_bytes());
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = post(
        &hook,
        &[("X-Hub-Signature-256", "sha256=not-hex")],
        payload.as_bytes(),
    );
    assert_eq!(status, 401);
    // Too large: refused before anything else.
    let big = vec![b' '; 2 * 1024 * 1024];
    assert_eq!(post(&hook, &[], &big).0, 413);
    // A push to another branch is ignored even when signed.
    let other = push_event("feature");
    let (status, _, body) = post(
        &hook,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &github_signature(SECRET, &other)),
        ],
        other.as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    assert!(body.starts_with("ignored"), "{body}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !running(&env, "hookone"),
        "a refused or ignored hook synced:\n{}",
        watch.output()
    );
    assert!(watch.output().contains("refused"), "{}", watch.output());
    let metrics = http("GET", &format!("{base}/metrics"), &[]).2;
    assert_eq!(counter(&metrics, "tenantctl_webhooks_refused_total"), 3);
    assert_eq!(
        counter(&metrics, "tenantctl_reconcile_hook_passes_total"),
        0
    );

    // Signed: fetched and applied now, the timer being ten minutes away.
    let (status, _, body) = post(
        &hook,
        &[
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", &github_signature(SECRET, &payload)),
        ],
        payload.as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    assert!(body.starts_with("syncing"), "{body}");
    eventually(&watch, Duration::from_secs(20), "hookone running", || {
        running(&env, "hookone")
    });
    eventually(&watch, Duration::from_secs(20), "hookone answering", || {
        crate::support::db(&env.url()).tenants["hookone"]
            .url
            .is_some()
            && http("GET", &format!("{}/", env.site("hookone")), &[]).0 == 200
    });
    assert!(
        watch.output().contains("webhook: fetching and syncing now"),
        "{}",
        watch.output()
    );

    // GitLab: the secret itself as X-Gitlab-Token.
    settled(&watch, &base, &env.ns);
    env.repo
        .write("tenants/us/hooktwo.yaml", &tenant("hooktwo"))
        .commit("hooktwo");
    env.repo.git(&["push", "-q", "origin", "main"]);
    let (status, _, _) = post(
        &hook,
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "wrong")],
        payload.as_bytes(),
    );
    assert_eq!(status, 401);
    std::thread::sleep(Duration::from_secs(3));
    assert!(!running(&env, "hooktwo"), "{}", watch.output());
    let (status, _, body) = post(
        &hook,
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", SECRET)],
        payload.as_bytes(),
    );
    assert_eq!(status, 202, "{body}");
    eventually(&watch, Duration::from_secs(20), "hooktwo running", || {
        running(&env, "hooktwo")
    });
    watch.stop_cleanly();

    // Without a secret the endpoint is off: no hook is accepted, signed or not.
    let mut off = Watch::start(&env.repo, &env.ns, &env.pool, &args, &[]);
    eventually(&off, Duration::from_secs(60), "listening", || {
        off.output()
            .contains("/hooks/git: off (set TENANTCTL_WEBHOOK_SECRET")
    });
    let base = self::base(&off);
    let (status, _, body) = post(
        &format!("{base}/hooks/git"),
        &[("X-Hub-Signature-256", &github_signature(SECRET, &payload))],
        payload.as_bytes(),
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("TENANTCTL_WEBHOOK_SECRET"), "{body}");
    off.stop_cleanly();
}

on_both_databases!(webhooks_sync_a_pushed_commit_at_once);
