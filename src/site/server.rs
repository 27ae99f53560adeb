//! The HTTP server: routes, API key check, metering, persistence of counters, graceful shutdown.

use super::SiteError;
use super::clock::{Clock, SystemClock, rfc3339};
use super::config::{KeyHash, SiteConfig};
use super::meter::{Decision, Meter, Quota, retry_after_secs};
use super::page;
use super::throttle::FailedKeys;
use super::usage::{Counters, UsageStore};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

/// Connections served at once; more wait in the listen backlog (bounded memory under a flood).
const MAX_CONNECTIONS: usize = 1024;
/// A client has this long to send a request's headers (slow clients must not pin connections).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests in flight get this long after SIGTERM; Docker kills at 10 s, and counters must be
/// saved before that.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

type Body = Full<Bytes>;

/// The header the usage meter sends on `/usage` instead of the key it never sees: the key's
/// SHA-256 as the container's `TENANT_API_KEY_SHA256` holds it (hex).
pub const KEY_DIGEST_HEADER: &str = "x-tenant-key-sha256";

struct State {
    config: SiteConfig,
    clock: Arc<dyn Clock>,
    meter: Mutex<Meter>,
    failed_keys: Mutex<FailedKeys>,
    page: Bytes,
    started_at: String,
    persisted: bool,
}

impl State {
    fn meter(&self) -> MutexGuard<'_, Meter> {
        // Counters are plain numbers: a panic elsewhere cannot leave them half-updated.
        self.meter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failed_keys(&self) -> MutexGuard<'_, FailedKeys> {
        self.failed_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the site on `0.0.0.0:$PORT` until `shutdown` completes.
pub async fn serve(
    config: SiteConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SiteError> {
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SiteError::Bind { addr, source })?;
    serve_on(listener, config, Arc::new(SystemClock::new()), shutdown).await
}

/// Serves the site on an already bound `listener` (its address, not `config.port`, is used),
/// reading time from `clock`, until `shutdown` completes; then stops accepting, lets requests in
/// flight finish (up to 5 s), saves the counters and returns.
pub async fn serve_on(
    listener: TcpListener,
    config: SiteConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), SiteError> {
    let local = listener.local_addr().map_err(SiteError::LocalAddr)?;
    let now = clock.unix_seconds();
    let (store, counters) = open_store(&config);
    let mut meter = Meter::new(counters, config.limits, config.rate_window);
    let first = meter.snapshot(now);
    // Writing once at start proves the directory is writable before any call is counted.
    let store = store.and_then(|s| match s.save(&first, &rfc3339(now)) {
        Ok(()) => Some(s),
        Err(e) => {
            warn!(path = %s.path().display(), error = %e, "usage counters will not persist: cannot write");
            None
        }
    });
    let saved_generation = meter.generation();
    let (page, warnings) = page::render(&config);
    for w in warnings {
        warn!("{w}");
    }
    info!(
        address = %local,
        tenant = %config.tenant_slug,
        plan = %config.plan,
        api = if config.api_key_sha256.is_some() { "enabled" } else { "disabled: TENANT_API_KEY_SHA256 is not set" },
        "site listening"
    );
    let state = Arc::new(State {
        persisted: store.is_some(),
        config,
        meter: Mutex::new(meter),
        failed_keys: Mutex::new(FailedKeys::default()),
        page: Bytes::from(page),
        started_at: rfc3339(now),
        clock,
    });

    let (stop_flusher, stopped) = watch::channel(false);
    let flusher = store
        .map(|store| tokio::spawn(flush_loop(state.clone(), store, saved_generation, stopped)));

    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let st = state.clone();
        let service = service_fn(move |req| handle(st.clone(), peer.ip(), req));
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }

    drop(listener);
    info!("shutting down: no new connections; finishing requests in flight");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            "requests still in flight after {}s; closing them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    if let Some(flusher) = flusher {
        let _ = stop_flusher.send(true);
        if let Err(e) = flusher.await {
            warn!(error = %e, "the usage flusher failed");
        }
    }
    info!("stopped");
    Ok(())
}

/// Opens the counters file in the data directory and loads it; without a usable directory the
/// site still runs, counting in memory only.
fn open_store(config: &SiteConfig) -> (Option<UsageStore>, Counters) {
    let Some(dir) = &config.data_dir else {
        info!("usage persistence disabled: SITE_DATA_DIR is empty");
        return (None, Counters::default());
    };
    let store = match UsageStore::open(dir, &config.tenant_slug) {
        Ok(s) => s,
        Err(e) => {
            warn!("usage counters will not persist: {e}");
            return (None, Counters::default());
        }
    };
    if let Err(e) = store.check_writable() {
        // Still served and counted in memory; the reason is said once, clearly, at start.
        warn!("usage counters will not persist: {e}");
    }
    let counters = match store.load() {
        Ok(Some(c)) => {
            info!(path = %store.path().display(), api_calls_total = c.api_calls_total, "loaded usage counters");
            c
        }
        Ok(None) => Counters::default(),
        Err(e) => {
            warn!("{e}");
            Counters::default()
        }
    };
    (Some(store), counters)
}

/// Saves the counters every `persist_interval` when they changed, and once more when stopped.
async fn flush_loop(
    state: Arc<State>,
    store: UsageStore,
    mut saved: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(state.config.persist_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        flush(&state, &store, &mut saved, &mut failing).await;
        if last {
            if !failing {
                info!(path = %store.path().display(), "usage counters saved");
            }
            return;
        }
    }
}

async fn flush(state: &State, store: &UsageStore, saved: &mut u64, failing: &mut bool) {
    let now = state.clock.unix_seconds();
    let (generation, counters) = {
        let mut meter = state.meter();
        let counters = meter.snapshot(now);
        (meter.generation(), counters)
    };
    if generation == *saved {
        return;
    }
    let writer = store.clone();
    let at = rfc3339(now);
    let result = tokio::task::spawn_blocking(move || writer.save(&counters, &at)).await;
    match result {
        Ok(Ok(())) => {
            *saved = generation;
            if *failing {
                info!(path = %store.path().display(), "usage counters are saved again");
                *failing = false;
            }
        }
        Ok(Err(e)) => {
            // Said once per failing spell, not every few seconds.
            if !*failing {
                warn!(path = %store.path().display(), error = %e, "cannot save usage counters; will retry");
                *failing = true;
            }
        }
        Err(e) => warn!(error = %e, "saving usage counters panicked"),
    }
}

async fn handle(
    state: Arc<State>,
    peer: IpAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let response = route(&state, peer, &req);
    // The path only: never headers (they carry the key) nor the query.
    debug!(
        method = %req.method(),
        path = %req.uri().path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    Ok(response)
}

fn route(state: &State, peer: IpAddr, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return match authorize(state, peer, req.headers(), Credential::Key) {
            None => api(state, req.method(), path),
            Some(refusal) => refusal,
        };
    }
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    match path {
        "/" | "/health" | "/usage" if !readable => method_not_allowed(),
        "/" => html(state.page.clone()),
        "/health" => json(
            StatusCode::OK,
            &json!({"status": "ok", "tenant": state.config.tenant_slug}),
        ),
        "/usage" => match authorize(state, peer, req.headers(), Credential::KeyOrDigest) {
            None => json(StatusCode::OK, &usage(state)),
            Some(refusal) => refusal,
        },
        _ => json(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found", "path": path}),
        ),
    }
}

/// `/usage`: counters and limits, no secrets.
fn usage(state: &State) -> Value {
    let now = state.clock.unix_seconds();
    let c = state.meter().snapshot(now);
    json!({
        "tenant": state.config.tenant_slug,
        "plan": state.config.plan,
        "month": c.month,
        "api_calls_total": c.api_calls_total,
        "api_calls_month": c.api_calls_month,
        "ai_interactions_month": c.ai_interactions_month,
        "rate_limited_total": c.rate_limited_total,
        "unauthorized_total": c.unauthorized_total,
        "quota_rejections_total": c.quota_rejections_total,
        "started_at": state.started_at,
        "as_of": rfc3339(now),
        "limits": state.config.limits,
        "rate_limit_window": {
            "kind": "sliding",
            "seconds": state.config.rate_window.as_secs(),
        },
        "persisted": state.persisted,
    })
}

/// The key the client presents: `Authorization: Bearer <key>` first, else `X-API-Key: <key>`.
pub(crate) fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| {
        let b = v.as_bytes();
        (b.len() > 7 && b[..7].eq_ignore_ascii_case(b"bearer ")).then(|| b[7..].trim_ascii())
    });
    bearer
        .filter(|k| !k.is_empty())
        .or_else(|| headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii()))
        .filter(|k| !k.is_empty())
}

/// Compares hashes in constant time, so response timing says nothing about how close a guess was.
pub(crate) fn key_matches(key: &[u8], expected: &KeyHash) -> bool {
    let digest: [u8; 32] = Sha256::digest(key).into();
    bool::from(digest.ct_eq(&expected.0))
}

/// The key's digest the meter presents on `/usage`, if it is the configured one (compared in
/// constant time); `None` when the header is absent.
pub(crate) fn digest_matches(headers: &HeaderMap, expected: &KeyHash) -> Option<bool> {
    let presented = headers.get(KEY_DIGEST_HEADER)?.as_bytes().trim_ascii();
    let mut digest = [0u8; 32];
    Some(
        hex::decode_to_slice(presented, &mut digest).is_ok()
            && bool::from(digest.ct_eq(&expected.0)),
    )
}

/// What a route accepts as proof.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// The tenant's API key.
    Key,
    /// The key, or its digest in [`KEY_DIGEST_HEADER`] (the usage meter).
    KeyOrDigest,
}

/// Checks the request's credential: `None` when it is good, else the refusal to send. An
/// address with too many wrong keys within the throttle's window is refused 429 without its
/// key being checked.
fn authorize(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
    accepts: Credential,
) -> Option<Response<Body>> {
    let Some(expected) = &state.config.api_key_sha256 else {
        return Some(json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "the API is not configured for this tenant: no API key is set",
                "hint": "tenantctl apply sets TENANT_API_KEY_SHA256 when it creates the tenant's key",
            }),
        ));
    };
    let now = state.clock.monotonic();
    if let Some(wait) = state.failed_keys().refused(peer, now) {
        state.meter().unauthorized();
        let secs = retry_after_secs(wait);
        return Some(too_many(
            secs,
            &json!({
                "error": "too many invalid API keys from this address; try again later",
                "retry_after_seconds": secs,
            }),
        ));
    }
    let digest = match accepts {
        Credential::KeyOrDigest => digest_matches(headers, expected),
        Credential::Key => None,
    };
    let refusal = match (presented_key(headers), digest) {
        (_, Some(true)) => return None,
        (Some(key), _) if key_matches(key, expected) => return None,
        (None, None) => json!({
            "error": "missing API key",
            "hint": "send Authorization: Bearer <key> or X-API-Key: <key>",
        }),
        _ => {
            state.failed_keys().failed(peer, now);
            json!({"error": "invalid API key"})
        }
    };
    state.meter().unauthorized();
    let mut r = json(StatusCode::UNAUTHORIZED, &refusal);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tenantctl\""),
    );
    Some(r)
}

/// An authorized API call: metered against the rate limit and quotas, then answered.
fn api(state: &State, method: &Method, path: &str) -> Response<Body> {
    let ai = path == "/api/ai" || path.starts_with("/api/ai/");
    let now = state.clock.unix_seconds();
    let decision = state.meter().admit(state.clock.monotonic(), now, ai);
    match decision {
        Decision::RateLimited { limit, retry_after } => {
            let secs = retry_after_secs(retry_after);
            too_many(
                secs,
                &json!({
                    "error": "rate limit exceeded",
                    "limit": limit,
                    "window_seconds": state.config.rate_window.as_secs(),
                    "retry_after_seconds": secs,
                }),
            )
        }
        Decision::QuotaExhausted {
            quota,
            limit,
            used,
            month,
            resets_at,
        } => {
            let secs = u64::try_from(resets_at - now).unwrap_or(0).max(1);
            let (error, name) = match quota {
                Quota::ApiCalls => ("monthly API quota exhausted", "api_calls_per_month"),
                Quota::AiInteractions => (
                    "monthly AI interaction quota exhausted",
                    "ai_interactions_per_month",
                ),
            };
            too_many(
                secs,
                &json!({
                    "error": error,
                    "quota": name,
                    "limit": limit,
                    "used": used,
                    "month": month,
                    "resets_at": rfc3339(resets_at),
                    "retry_after_seconds": secs,
                }),
            )
        }
        Decision::Allowed {
            api_calls_month,
            ai_interactions_month,
        } => {
            let c = &state.config;
            match path {
                "/api/ping" if matches!(*method, Method::GET | Method::HEAD) => json(
                    StatusCode::OK,
                    &json!({"ok": true, "tenant": c.tenant_slug, "plan": c.plan}),
                ),
                "/api/ping" => method_not_allowed(),
                _ if ai => json(
                    StatusCode::OK,
                    &json!({
                        "ok": true,
                        "tenant": c.tenant_slug,
                        "ai_interactions_month": ai_interactions_month,
                        "ai_interactions_per_month": c.limits.ai_interactions_per_month,
                        "api_calls_month": api_calls_month,
                    }),
                ),
                _ => json(
                    StatusCode::NOT_FOUND,
                    &json!({"error": "no such API endpoint", "path": path}),
                ),
            }
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No page of the site may be framed (clickjacking) nor leak its URL to other sites.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let mut bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes.push(b'\n');
    respond(status, "application/json", Bytes::from(bytes))
}

fn html(page: Bytes) -> Response<Body> {
    let mut r = respond(StatusCode::OK, "text/html; charset=utf-8", page);
    // The page has no script; the policy makes sure none could run even if one slipped in.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    r
}

fn too_many(retry_after_secs: u64, body: &Value) -> Response<Body> {
    let mut r = json(StatusCode::TOO_MANY_REQUESTS, body);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn method_not_allowed() -> Response<Body> {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({"error": "method not allowed"}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}
