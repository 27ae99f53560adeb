//! Notifications: a real receiver (a hyper server inside the test) that checks each signature,
//! tenants made to fail and to degrade, a receiver that fails first, and no second POST for the
//! same condition at the same revision; both databases.

use crate::support::{Db, Env, Repo, docker};
use crate::watch::{Watch, eventually};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "s3cret-for-the-receiver";
const SECRET_VAR: &str = "NOTIFY_TEST_SECRET";

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    /// The `X-Tenantctl-Signature` header matched the body under [`SECRET`].
    signed: bool,
    unsigned: bool,
    body: Value,
    /// What the receiver answered.
    status: u16,
}

/// An HTTP receiver on 127.0.0.1 that answers 500 to its first `fail_first` requests, then 204.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let failures = Arc::new(AtomicUsize::new(fail_first));
        let seen = got.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, failures) = (seen.clone(), failures.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (seen, failures) = (seen.clone(), failures.clone());
                            async move {
                                let path = req.uri().path().to_string();
                                let signature = req
                                    .headers()
                                    .get("x-tenantctl-signature")
                                    .and_then(|v| v.to_str().ok())
                                    .map(String::from);
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let mut mac =
                                    Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                                mac.update(&body);
                                let expected =
                                    format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                                let fail = failures
                                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                                        n.checked_sub(1)
                                    })
                                    .is_ok();
                                let status = if fail { 500 } else { 204 };
                                seen.lock().unwrap().push(Received {
                                    path,
                                    signed: signature.as_deref() == Some(expected.as_str()),
                                    unsigned: signature.is_none(),
                                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                                    status,
                                });
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            port,
            got,
            runtime: Some(runtime),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The JSON payloads received at `path` for events of `kind`.
    fn of(&self, path: &str, kind: &str) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| r.path == path && r.body["event"]["kind"] == kind)
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// `tenantctl ARGS` in the test's environment with the receiver's secret set.
fn with_secret(env: &crate::support::Env, args: &[&str]) -> std::process::Output {
    env.cmd(args).env(SECRET_VAR, SECRET).output().unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn failed_tenants_degraded_tenants_and_drift_are_notified_once_per_revision(backend: Db) {
    let receiver = Receiver::start(1);
    let repo = Repo::example_with_tenants(&[
        ("shop", "starter", "minimal"),
        ("broken", "starter", "gone"),
    ]);
    repo.write(
        "themes/gone.yaml",
        "kind: Theme\nname: gone\nspec:\n  displayName: Gone\n  version: 1.0.0\n  image: registry.invalid/storefront:9.9\n  port: 8080\n",
    )
    .write(
        "notifications/ops.yaml",
        &format!(
            "kind: Notification\nname: ops\nspec:\n  url: {}\n  events: [tenant.failed, \"tenant.degr*\"]\n  secretEnv: {SECRET_VAR}\n",
            receiver.url("/ops")
        ),
    )
    .write(
        "notifications/chat.yaml",
        &format!(
            "kind: Notification\nname: chat\nspec:\n  url: {}\n  events: [drift]\n  format: slack\n",
            receiver.url("/chat")
        ),
    )
    .commit("a tenant that cannot start, and two notifications");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };

    // The failed tenant is sent to `ops`, signed; the receiver's first 500 is retried.
    let out = with_secret(&env, &["apply", "--auto-approve", "--attempts", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failed = receiver.of("/ops", "tenant.failed");
    assert_eq!(failed.len(), 2, "{failed:#?}\n{}", text(&out));
    assert!(failed.iter().all(|r| r.signed), "{failed:#?}");
    assert_eq!((failed[0].status, failed[1].status), (500, 204));
    assert_eq!(failed[0].body, failed[1].body, "the same event again");
    let event = &failed[1].body;
    assert_eq!(event["format_version"], 1);
    assert_eq!(event["notification"], "ops");
    assert_eq!(event["event"]["tenant"], "broken");
    assert_eq!(event["event"]["revision"], env.repo.head());
    assert!(
        event["event"]["message"]
            .as_str()
            .unwrap()
            .contains("registry.invalid/storefront:9.9"),
        "{event}"
    );
    assert!(
        event["event"]["time"].as_str().unwrap().ends_with('Z'),
        "{event}"
    );
    let log = env.ok(&["events", "--kind", "notification.*"]);
    assert!(
        log.contains("ops: tenant.failed of broken not delivered (attempt 1): the receiver answered HTTP 500; trying again in 1s"),
        "{log}"
    );
    assert!(
        log.contains("ops: tenant.failed of broken delivered (HTTP 204, attempt 2)"),
        "{log}"
    );

    // The same failure at the same revision is recorded again, not sent again.
    let out = with_secret(&env, &["apply", "--auto-approve", "--attempts", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let failures = env.ok(&["events", "--tenant", "broken", "--kind", "tenant.failed"]);
    assert_eq!(failures.lines().count(), 2, "{failures}");
    assert_eq!(receiver.of("/ops", "tenant.failed").len(), 2);

    // A new revision is a new condition; without its secret it is not sent (never unsigned),
    // and the error is recorded; once the secret is there, the queued row goes out.
    env.repo
        .edit("tenants/broken.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")
        .commit("touch broken");
    let out = env
        .cmd(&["apply", "--auto-approve", "--attempts", "1"])
        .env_remove(SECRET_VAR)
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("1 notification not delivered yet; the next apply or watch sends it"),
        "{said}"
    );
    assert_eq!(receiver.of("/ops", "tenant.failed").len(), 2);
    let log = env.ok(&["events", "--kind", "notification.failed"]);
    assert!(
        log.contains(&format!(
            "secretEnv `{SECRET_VAR}` is not set in tenantctl's environment"
        )),
        "{log}"
    );
    // Fixed: the theme is the built-in site now. The queued failure goes out from a later
    // apply or watch once its next attempt is due (the attempts without the secret backed it
    // off: 1, 2, 4 … s, longer the longer that apply ran), so it is awaited below, while
    // watch runs.
    env.repo
        .edit(
            "themes/gone.yaml",
            "  image: registry.invalid/storefront:9.9\n",
            "",
        )
        .commit("fix the theme");
    let out = with_secret(&env, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));

    // watch: a stopped container is a Degraded tenant (to `ops`) and drift (to `chat`, as Slack text).
    let mut args = vec!["--interval", "1s"];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let mut watch = Watch::start(
        &env.repo,
        &env.ns,
        &env.pool,
        &args,
        &[(SECRET_VAR, SECRET.to_string())],
    );
    eventually(&watch, Duration::from_secs(60), "the first pass", || {
        watch.output().contains("in sync")
    });
    eventually(
        &watch,
        Duration::from_secs(120),
        "the queued failure, signed this time",
        || receiver.of("/ops", "tenant.failed").len() >= 3,
    );
    let failed = receiver.of("/ops", "tenant.failed");
    assert_eq!(failed.len(), 3, "{failed:#?}");
    assert!(failed[2].signed && !failed[2].unsigned);
    assert_ne!(
        failed[2].body["event"]["revision"],
        failed[1].body["event"]["revision"]
    );
    docker(&["stop", "-t", "1", &env.container("shop")]);
    eventually(
        &watch,
        Duration::from_secs(30),
        "the degraded tenant's notification",
        || !receiver.of("/ops", "tenant.degraded").is_empty(),
    );
    eventually(
        &watch,
        Duration::from_secs(30),
        "the drift notification",
        || receiver.got().iter().any(|r| r.path == "/chat"),
    );
    let degraded = receiver.of("/ops", "tenant.degraded");
    assert_eq!(degraded[0].body["event"]["tenant"], "shop");
    assert!(degraded[0].signed);
    assert!(
        degraded[0].body["event"]["message"]
            .as_str()
            .unwrap()
            .contains("Degraded: its container is exited"),
        "{degraded:#?}"
    );
    let chat: Vec<Received> = receiver
        .got()
        .into_iter()
        .filter(|r| r.path == "/chat")
        .collect();
    let text_of = chat[0].body["text"].as_str().unwrap().to_string();
    assert_eq!(chat[0].body.as_object().unwrap().len(), 1, "{chat:#?}");
    assert!(chat[0].unsigned, "chat names no secretEnv");
    assert!(
        text_of.starts_with("tenantctl: shop drift at ") && text_of.contains("outside git"),
        "{text_of}"
    );
    // More passes at the same revision (the timer runs every second) send nothing more.
    let passes = |w: &Watch| w.output().matches("out of sync").count();
    let seen = passes(&watch);
    eventually(&watch, Duration::from_secs(30), "three more passes", || {
        passes(&watch) >= seen + 3
    });
    assert_eq!(receiver.of("/ops", "tenant.degraded").len(), 1);
    assert_eq!(
        receiver.got().iter().filter(|r| r.path == "/chat").count(),
        1
    );
    watch.stop_cleanly();
}

on_both_databases!(failed_tenants_degraded_tenants_and_drift_are_notified_once_per_revision);

/// Every kind of event reaches the notifications that want it, also those recorded by commands
/// that do not apply: `keys create` and `keys revoke` send their events themselves.
fn key_events_are_notified_by_the_keys_commands(backend: Db) {
    let receiver = Receiver::start(0);
    let repo = Repo::example_with_tenants(&[("shop", "starter", "minimal")]);
    repo.write(
        "notifications/security.yaml",
        &format!(
            "kind: Notification\nname: security\nspec:\n  url: {}\n  events: [\"tenant.key-*\"]\n  secretEnv: {SECRET_VAR}\n",
            receiver.url("/security")
        ),
    )
    .commit("tell security about keys");
    let Some(env) = Env::new(repo, backend) else {
        return;
    };
    let out = with_secret(&env, &["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = with_secret(&env, &["keys", "create", "shop", "--name", "ci"]);
    assert!(out.status.success(), "{}", text(&out));
    let created: Vec<Received> = receiver
        .of("/security", "tenant.key-created")
        .into_iter()
        .filter(|r| {
            r.body["event"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("`ci`")
        })
        .collect();
    assert_eq!(created.len(), 1, "{:#?}\n{}", receiver.got(), text(&out));
    assert!(created[0].signed, "{created:#?}");
    assert_eq!(created[0].body["event"]["tenant"], "shop");
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("tk_").map(|k| format!("tk_{k}")))
        .unwrap_or_default();
    let sent = receiver
        .got()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<String>();
    assert!(
        !key.is_empty() && !sent.contains(&key),
        "the key itself is never sent"
    );

    let out = with_secret(&env, &["keys", "revoke", "shop", "ci"]);
    assert!(out.status.success(), "{}", text(&out));
    let revoked = receiver.of("/security", "tenant.key-revoked");
    assert_eq!(revoked.len(), 1, "{:#?}\n{}", receiver.got(), text(&out));
    assert!(
        revoked[0].body["event"]["message"]
            .as_str()
            .unwrap()
            .contains("`ci`"),
        "{revoked:#?}"
    );
}

on_both_databases!(key_events_are_notified_by_the_keys_commands);
