//! What `watch` serves on `--metrics-addr`: `/metrics` (Prometheus), `/healthz` (the process
//! lives), `/readyz` (engine and database answer, and this loop leads or stands by cleanly) and
//! `POST /hooks/git` (a signed push webhook: fetch and sync now, see [`super::hooks`]).

use super::hooks;
use super::leader::Role;
use super::metrics::Metrics;
use crate::apply::Progress;
use crate::runtime::Runtime;
use crate::store::Store;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

/// How long `/readyz` waits for the engine's ping and the database's `SELECT 1`.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a readiness answer is reused: scrapers cannot turn into a load on either.
const CHECK_CACHE: Duration = Duration::from_secs(1);

/// Shared between the loop and the endpoints: the loop's standing in the election, and the
/// "sync now" a verified webhook asks for.
#[derive(Default)]
pub struct Control {
    roles: Mutex<Option<watch::Receiver<Role>>>,
    hook: Notify,
}

impl Control {
    /// The loop follows the election through `roles` from now on.
    pub(crate) fn follow(&self, roles: watch::Receiver<Role>) {
        *self.roles.lock().unwrap_or_else(|e| e.into_inner()) = Some(roles);
    }

    /// What the election last said; `None` before the loop runs.
    pub fn role(&self) -> Option<Role> {
        self.roles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|r| r.borrow().clone())
    }

    /// Asks the loop for a pass now (at most one is kept while a pass runs).
    pub fn ask(&self) {
        self.hook.notify_one();
    }

    /// Resolves when a pass was asked for.
    pub(crate) async fn asked(&self) {
        self.hook.notified().await;
    }
}

/// Everything the endpoints answer from.
pub struct Endpoints {
    pub metrics: Arc<Metrics>,
    pub control: Arc<Control>,
    pub runtime: Runtime,
    pub store: Store,
    /// The webhooks' secret; `None`: `/hooks/git` is off (404).
    pub secret: Option<Vec<u8>>,
    /// The remote branch followed; pushes to other refs are ignored. `None`: a local repository.
    pub branch: Option<String>,
    pub progress: Arc<dyn Progress>,
    checked: tokio::sync::Mutex<Option<(Instant, Checks)>>,
}

#[derive(Clone)]
struct Checks {
    engine: Result<(), String>,
    database: Result<(), String>,
}

type Answer = Response<Full<Bytes>>;

fn text(status: StatusCode, body: impl Into<String>) -> Answer {
    let mut body = body.into();
    body.push('\n');
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

impl Endpoints {
    pub fn new(
        metrics: Arc<Metrics>,
        control: Arc<Control>,
        runtime: Runtime,
        store: Store,
        secret: Option<Vec<u8>>,
        branch: Option<String>,
        progress: Arc<dyn Progress>,
    ) -> Endpoints {
        Endpoints {
            metrics,
            control,
            runtime,
            store,
            secret,
            branch,
            progress,
            checked: tokio::sync::Mutex::new(None),
        }
    }

    /// Serves until the process ends.
    pub async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let this = this.clone();
                    async move { Ok::<_, std::convert::Infallible>(this.answer(req, peer).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    }

    async fn answer(&self, req: Request<Incoming>, peer: std::net::SocketAddr) -> Answer {
        match req.uri().path() {
            "/metrics" => Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(Full::new(Bytes::from(self.metrics.render())))
                .expect("a valid response"),
            "/healthz" => text(StatusCode::OK, "ok"),
            "/readyz" => self.ready().await,
            "/hooks/git" => self.hook(req, peer).await,
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    /// 200 when the engine and the database answer and this loop leads or stands by cleanly;
    /// 503 otherwise. JSON either way, with the reasons.
    async fn ready(&self) -> Answer {
        let checks = {
            // Held while checking: concurrent scrapers wait for one check rather than each
            // making their own.
            let mut cached = self.checked.lock().await;
            match &*cached {
                Some((at, checks)) if at.elapsed() < CHECK_CACHE => checks.clone(),
                _ => {
                    let checks = self.check().await;
                    *cached = Some((Instant::now(), checks.clone()));
                    checks
                }
            }
        };
        let (ready, body) = readiness(&checks, self.control.role().as_ref());
        Response::builder()
            .status(if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            })
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(format!("{body}\n"))))
            .expect("a valid response")
    }

    async fn check(&self) -> Checks {
        let database = async {
            match tokio::time::timeout(CHECK_TIMEOUT, self.store.ping()).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer to SELECT 1 within {}s",
                    CHECK_TIMEOUT.as_secs()
                )),
            }
        };
        let engine = async {
            self.runtime
                .ping(CHECK_TIMEOUT)
                .await
                .map_err(|e| e.to_string())
        };
        let (engine, database) = tokio::join!(engine, database);
        Checks { engine, database }
    }

    /// `POST /hooks/git`: verified, then a pass now (202); see the README for every answer.
    async fn hook(&self, req: Request<Incoming>, peer: std::net::SocketAddr) -> Answer {
        if req.method() != Method::POST {
            let mut answer = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "send push webhooks with POST",
            );
            answer
                .headers_mut()
                .insert("allow", hyper::header::HeaderValue::from_static("POST"));
            return answer;
        }
        let Some(secret) = &self.secret else {
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "webhooks are off: start watch with {} set to the webhook's secret",
                    hooks::SECRET_ENV
                ),
            );
        };
        let too_large = || {
            text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} bytes", hooks::MAX_BODY),
            )
        };
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > hooks::MAX_BODY as u64) {
            return too_large();
        }
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, hooks::MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading the body: {e}")),
        };
        let header = |name: &str| parts.headers.get(name).map(|v| v.as_bytes());
        let sender = match hooks::verify(
            secret,
            &body,
            header("x-hub-signature-256"),
            header("x-gitlab-token"),
        ) {
            Ok(sender) => sender,
            Err(refused) => {
                self.metrics.hook_refused();
                self.progress
                    .line(None, &format!("webhook from {peer} refused: {refused}"));
                return text(StatusCode::UNAUTHORIZED, refused.to_string());
            }
        };
        let event = match sender {
            hooks::Sender::GitHub => header("x-github-event"),
            hooks::Sender::GitLab => header("x-gitlab-event"),
        }
        .map(|v| String::from_utf8_lossy(v).into_owned());
        match event.as_deref() {
            // GitHub's first delivery when a hook is made: say the secret works.
            Some("ping") => return text(StatusCode::OK, "pong: the signature is valid"),
            None | Some("push") | Some("Push Hook") => {}
            Some(other) => {
                return text(
                    StatusCode::ACCEPTED,
                    format!("ignored: a `{other}` event, not a push"),
                );
            }
        }
        if let Some(branch) = &self.branch
            && let Some(pushed) = hooks::pushed_ref(&body)
            && !hooks::concerns(&pushed, branch)
        {
            return text(
                StatusCode::ACCEPTED,
                format!("ignored: a push to {pushed}; this loop follows {branch}"),
            );
        }
        match self.control.role() {
            Some(Role::Leader { fence, .. }) if fence.is_valid() => {
                self.control.ask();
                text(
                    StatusCode::ACCEPTED,
                    format!(
                        "syncing: {} now (leader, term {})",
                        if self.branch.is_some() {
                            "fetching and applying"
                        } else {
                            "applying"
                        },
                        fence.term
                    ),
                )
            }
            role => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not syncing: {}; only the leader syncs (send the webhook to it, or let the leader's resync timer pick the push up)",
                    describe(role.as_ref())
                ),
            ),
        }
    }
}

/// This loop's standing, said plainly.
fn describe(role: Option<&Role>) -> String {
    match role {
        None | Some(Role::Starting) => "starting: the leader election has not answered yet".into(),
        Some(Role::Leader { fence, .. }) if fence.is_valid() => {
            format!("leading (term {})", fence.term)
        }
        Some(Role::Leader { fence, .. }) => {
            format!("lost the leader lease (term {})", fence.term)
        }
        Some(Role::Standby { error: Some(e), .. }) => {
            format!("the leader election cannot reach the database: {e}")
        }
        Some(Role::Standby {
            leader: Some(l), ..
        }) if l.live() => format!("standing by: {} leads (term {})", l.holder, l.term),
        Some(Role::Standby { .. }) => "standing by: taking over the lapsed lease".into(),
        Some(Role::Refused(why)) => format!("refused: {why}"),
    }
}

/// Whether this loop is ready, and the JSON `/readyz` answers.
fn readiness(checks: &Checks, role: Option<&Role>) -> (bool, serde_json::Value) {
    let mut reasons = Vec::new();
    if let Err(e) = &checks.engine {
        reasons.push(format!("engine: {e}"));
    }
    if let Err(e) = &checks.database {
        reasons.push(format!("database: {e}"));
    }
    let standing = match role {
        Some(Role::Leader { fence, .. }) if fence.is_valid() => "leader",
        Some(Role::Standby { error: None, .. }) => "standby",
        _ => {
            reasons.push(describe(role));
            "not ready"
        }
    };
    let status = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    let ready = reasons.is_empty();
    (
        ready,
        json!({
            "ready": ready,
            "role": standing,
            "detail": describe(role),
            "engine": status(&checks.engine),
            "database": status(&checks.database),
            "reasons": reasons,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Fence;

    fn ok() -> Checks {
        Checks {
            engine: Ok(()),
            database: Ok(()),
        }
    }

    fn leader(valid: bool) -> Role {
        let deadline = if valid {
            Instant::now() + Duration::from_secs(60)
        } else {
            Instant::now() - Duration::from_millis(1)
        };
        Role::Leader {
            fence: Fence::new(3, "me", deadline),
            previous: None,
        }
    }

    #[test]
    fn a_leader_or_clean_standby_with_engine_and_database_is_ready() {
        let (ready, body) = readiness(&ok(), Some(&leader(true)));
        assert!(ready, "{body}");
        assert_eq!(body["role"], "leader");
        assert_eq!(body["engine"], "ok");
        let standby = Role::Standby {
            leader: None,
            error: None,
        };
        let (ready, body) = readiness(&ok(), Some(&standby));
        assert!(ready, "{body}");
        assert_eq!(body["role"], "standby");
    }

    #[test]
    fn an_unreachable_engine_or_database_is_not_ready_and_says_why() {
        let checks = Checks {
            engine: Err("no answer within 2s".into()),
            database: Ok(()),
        };
        let (ready, body) = readiness(&checks, Some(&leader(true)));
        assert!(!ready);
        assert_eq!(body["reasons"][0], "engine: no answer within 2s");
        let checks = Checks {
            engine: Ok(()),
            database: Err("connection refused".into()),
        };
        let (ready, body) = readiness(&checks, Some(&leader(true)));
        assert!(!ready);
        assert_eq!(body["database"], "connection refused");
    }

    #[test]
    fn starting_a_lost_lease_or_a_failing_election_is_not_ready() {
        for role in [
            None,
            Some(Role::Starting),
            Some(leader(false)),
            Some(Role::Standby {
                leader: None,
                error: Some("database locked".into()),
            }),
            Some(Role::Refused("another host".into())),
        ] {
            let (ready, body) = readiness(&ok(), role.as_ref());
            assert!(!ready, "{role:?}: {body}");
            assert_eq!(body["reasons"].as_array().unwrap().len(), 1, "{body}");
        }
    }
}
