//! The HTTP server: routes, API key check, metering, persistence of counters, graceful shutdown.

use super::SiteError;
use super::access::{self, Access};
use super::clock::{Clock, SystemClock, rfc3339};
use super::config::{KeyHash, SiteConfig};
use super::meter::{Decision, Meter, Quota, RateState, retry_after_secs};
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

/// The request id a client may send, echoed on the answer (or one made up when it sends none
/// or one that is not 1 to 128 visible ASCII characters), and written in the request's log line.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID: usize = 128;

struct State {
    config: SiteConfig,
    clock: Arc<dyn Clock>,
    meter: Mutex<Meter>,
    failed_keys: Mutex<FailedKeys>,
    access: Arc<Access>,
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
    let (grants, access_file, access_seen) = access::initial(&config);
    let granted = grants.get();
    info!(
        address = %local,
        tenant = %config.tenant_slug,
        plan = %config.plan,
        api = if !granted.keys.is_empty() || granted.from_file { "enabled" } else { "disabled: no access file and TENANT_API_KEY_SHA256 is not set" },
        keys_from = if granted.from_file { "access file" } else { "environment" },
        "site listening"
    );
    let shared = Arc::new(grants);
    let state = Arc::new(State {
        persisted: store.is_some(),
        config,
        meter: Mutex::new(meter),
        failed_keys: Mutex::new(FailedKeys::default()),
        access: shared.clone(),
        page: Bytes::from(page),
        started_at: rfc3339(now),
        clock,
    });

    let (stop_flusher, stopped) = watch::channel(false);
    let poller = access_file.map(|file| {
        let tenant = state.config.tenant_slug.clone();
        tokio::spawn(access::poll_loop(
            shared,
            file,
            tenant,
            access_seen,
            stop_flusher.subscribe(),
        ))
    });
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
    let _ = stop_flusher.send(true);
    if let Some(poller) = poller {
        let _ = poller.await;
    }
    if let Some(flusher) = flusher
        && let Err(e) = flusher.await
    {
        warn!(error = %e, "the usage flusher failed");
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
    let id = request_id(req.headers());
    let mut response = route(&state, peer, &req);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    // The path only: never headers (they carry the key) nor the query.
    debug!(
        method = %req.method(),
        path = %req.uri().path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        request_id = %id,
        "request"
    );
    Ok(response)
}

/// The client's request id when it is 1 to 128 visible ASCII characters, else a new one
/// (128 random bits in hex).
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    let sent = headers.get(REQUEST_ID_HEADER).map(HeaderValue::as_bytes);
    match sent {
        Some(b)
            if !b.is_empty()
                && b.len() <= MAX_REQUEST_ID
                && b.iter().all(|c| (0x21..=0x7e).contains(c)) =>
        {
            String::from_utf8_lossy(b).into_owned()
        }
        _ => {
            let mut bytes = [0u8; 16];
            // Without randomness the id is still unique enough within one process.
            if getrandom::fill(&mut bytes).is_err() {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                bytes[..8].copy_from_slice(&n.to_be_bytes());
            }
            hex::encode(bytes)
        }
    }
}

fn route(state: &State, peer: IpAddr, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        let mut response = match authorize(state, peer, req.headers(), Credential::Key) {
            Ok(key) => api(state, req.method(), path, key.as_deref()),
            Err(refusal) => refusal,
        };
        let rate = state.meter().rate_state(state.clock.monotonic());
        rate_headers(response.headers_mut(), rate);
        return response;
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
            Ok(_) => json(StatusCode::OK, &usage(state)),
            Err(refusal) => refusal,
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
    let (c, keys_last_used, rate) = {
        let mut meter = state.meter();
        (
            meter.snapshot(now),
            meter.key_last_used().clone(),
            meter.rate_state(state.clock.monotonic()),
        )
    };
    let grants = state.access.get();
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
            "limit": rate.limit,
        },
        "keys_last_used": keys_last_used,
        "access": {
            "from": if grants.from_file { "access-file" } else { "environment" },
            "live_keys": grants.keys.iter().filter(|k| k.live_at(now)).count(),
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

/// The `X-RateLimit-*` headers: the limit per window, what is left, and the seconds until
/// one more call fits (0 when the window is empty).
fn rate_headers(h: &mut HeaderMap, rate: RateState) {
    h.insert("x-ratelimit-limit", HeaderValue::from(rate.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(rate.remaining));
    let reset = if rate.reset.is_zero() {
        0
    } else {
        retry_after_secs(rate.reset)
    };
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
}

/// What a route accepts as proof.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// The tenant's API key.
    Key,
    /// The key, or its digest in [`KEY_DIGEST_HEADER`] (the usage meter).
    KeyOrDigest,
}

/// Checks the request's credential: `Ok` with the id of the key used (`None` for the meter's
/// digest), else the refusal to send. The keys are those of the access file, or the
/// environment's one key when there is no file. An address with too many wrong keys within
/// the throttle's window is refused 429 without its key being checked.
// The refusal is the answer sent at once, on the rare path; boxing it would buy nothing.
#[allow(clippy::result_large_err)]
fn authorize(
    state: &State,
    peer: IpAddr,
    headers: &HeaderMap,
    accepts: Credential,
) -> Result<Option<String>, Response<Body>> {
    let grants = state.access.get();
    if grants.keys.is_empty() && !grants.from_file {
        return Err(json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({
                "error": "the API is not configured for this tenant: no API key is set",
                "hint": "tenantctl apply sets TENANT_API_KEY_SHA256 when it creates the tenant's key",
            }),
        ));
    }
    let now = state.clock.monotonic();
    if let Some(wait) = state.failed_keys().refused(peer, now) {
        state.meter().unauthorized();
        let secs = retry_after_secs(wait);
        return Err(too_many(
            secs,
            &json!({
                "error": "too many invalid API keys from this address; try again later",
                "retry_after_seconds": secs,
            }),
        ));
    }
    let unix = state.clock.unix_seconds();
    if accepts == Credential::KeyOrDigest {
        // The meter's digest is the container's own (its environment), or a live key's.
        let own = state.config.api_key_sha256.iter();
        let live = grants
            .keys
            .iter()
            .filter(|k| k.live_at(unix))
            .map(|k| &k.hash);
        let mut presented = None;
        for expected in own.chain(live) {
            match digest_matches(headers, expected) {
                Some(true) => return Ok(None),
                found => presented = presented.or(found),
            }
        }
        if presented.is_some() && presented_key(headers).is_none() {
            state.failed_keys().failed(peer, now);
            state.meter().unauthorized();
            return Err(unauthorized(json!({"error": "invalid API key"})));
        }
    }
    let refusal = match presented_key(headers) {
        Some(key) => match matching_key(key, &grants.keys) {
            Some(k) if k.live_at(unix) => return Ok(Some(k.id.clone())),
            Some(k) => {
                state.failed_keys().failed(peer, now);
                let why = if k.revoked_at.is_some_and(|t| t <= unix) {
                    "API key revoked"
                } else {
                    "API key expired"
                };
                json!({"error": why, "key_id": k.id})
            }
            None => {
                state.failed_keys().failed(peer, now);
                json!({"error": "invalid API key"})
            }
        },
        None => json!({
            "error": "missing API key",
            "hint": "send Authorization: Bearer <key> or X-API-Key: <key>",
        }),
    };
    state.meter().unauthorized();
    Err(unauthorized(refusal))
}

/// The key among `keys` whose digest is the presented key's: every one is compared, in
/// constant time, so timing tells neither which nor how close.
fn matching_key<'k>(key: &[u8], keys: &'k [access::Key]) -> Option<&'k access::Key> {
    let mut found = None;
    for k in keys {
        if key_matches(key, &k.hash) {
            found = Some(k);
        }
    }
    found
}

fn unauthorized(body: Value) -> Response<Body> {
    let mut r = json(StatusCode::UNAUTHORIZED, &body);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tenantctl\""),
    );
    r
}

/// An authorized API call: metered against the rate limit and quotas, then answered.
fn api(state: &State, method: &Method, path: &str, key: Option<&str>) -> Response<Body> {
    let ai = path == "/api/ai" || path.starts_with("/api/ai/");
    let now = state.clock.unix_seconds();
    let decision = {
        let mut meter = state.meter();
        if let Some(id) = key {
            meter.key_used(id, now);
        }
        meter.admit(state.clock.monotonic(), now, ai)
    };
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
                "/api/features" if matches!(*method, Method::GET | Method::HEAD) => {
                    let grants = state.access.get();
                    let features: Vec<Value> = grants
                        .features
                        .iter()
                        .map(|(flag, source)| json!({"flag": flag, "source": source}))
                        .collect();
                    json(
                        StatusCode::OK,
                        &json!({
                            "tenant": c.tenant_slug,
                            "plan": c.plan,
                            "features": features,
                            "from": if grants.from_file { "access-file" } else { "environment" },
                        }),
                    )
                }
                "/api/features" => method_not_allowed(),
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
