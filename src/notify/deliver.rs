//! Sending the outbox: claim what is due, POST it (hyper; https through rustls with the
//! Mozilla roots of `webpki-roots`), settle each row and record what happened as an event.

use super::{EventView, MAX_ATTEMPTS, Route, Routes, SIGNATURE_HEADER, backoff, body, sign};
use crate::store::outbox::OutboxRow;
use crate::store::{Store, StoreError, now_unix};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// How long a row is held by the deliverer that claimed it before another may try.
pub const CLAIM_SECS: i64 = 60;
/// How long one POST may take (connect, TLS, request, status line).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at with nothing queued (rows queued by another process).
const IDLE: Duration = Duration::from_secs(30);
/// Rows sent at once per round.
const BATCH: i64 = 32;

/// What became of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Delivered {
        status: u16,
    },
    Failed {
        error: String,
    },
    /// The notification is no longer in git: the row is given up.
    Gone,
}

/// The deliverer of a leading watch loop: stopped (aborted) when dropped. A row it was sending
/// stays claimed a minute, then is sent again: at least once.
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts [`run`] in the background until the returned handle is dropped.
pub fn spawn(store: Store) -> Running {
    Running(tokio::spawn(run(store, std::future::pending())))
}

/// Sends what is due until `stop` resolves; a pass never waits for it. Errors are logged and
/// retried; a fenced store (a deposed leader) ends it.
pub async fn run(store: Store, stop: impl Future<Output = ()>) {
    let notifier = store.notifier();
    tokio::pin!(stop);
    loop {
        match round(&store).await {
            Ok(_) => {}
            Err(e) if e.is_fenced() => return,
            Err(e) => tracing::warn!("sending notifications failed: {e}"),
        }
        let wait = match store.next_notification_at().await {
            Ok(Some(at)) => Duration::from_secs(u64::try_from(at - now_unix()).unwrap_or(0))
                .min(IDLE)
                .max(Duration::from_millis(200)),
            _ => IDLE,
        };
        tokio::select! {
            () = &mut stop => return,
            () = notifier.woken() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends what is pending until nothing is due, or `within` passed (what is left stays queued for
/// the next apply or watch); the number of rows still pending.
pub async fn drain(store: &Store, within: Duration) -> Result<usize, StoreError> {
    let until = tokio::time::Instant::now() + within;
    loop {
        round(store).await?;
        let Some(next) = store.next_notification_at().await? else {
            return Ok(0);
        };
        let wait = Duration::from_secs(u64::try_from(next - now_unix()).unwrap_or(0))
            .max(Duration::from_millis(200));
        if tokio::time::Instant::now() + wait > until {
            return Ok(store
                .outbox(10_000)
                .await?
                .iter()
                .filter(|r| r.state == "pending")
                .count());
        }
        tokio::time::sleep(wait).await;
    }
}

/// One round: claim the due rows and send them all at once. The number sent (or tried).
pub async fn round(store: &Store) -> Result<usize, StoreError> {
    let routes = store.notifier().routes();
    if !routes.loaded {
        return Ok(0);
    }
    let rows = store
        .claim_notifications(now_unix(), CLAIM_SECS, BATCH)
        .await?;
    let n = rows.len();
    let sends = rows.into_iter().map(|row| {
        let routes = routes.clone();
        async move {
            let sent = send(&routes, &row).await;
            (row, sent)
        }
    });
    for (row, sent) in futures_util::future::join_all(sends).await {
        settle(store, &row, sent).await?;
    }
    Ok(n)
}

/// The row's POST, or why it was not made.
async fn send(routes: &Arc<Routes>, row: &OutboxRow) -> Sent {
    let Some(route) = routes.routes.get(&row.notification) else {
        return Sent::Gone;
    };
    let event = row.event();
    match post_event(route, &event).await {
        Ok(status) if (200..300).contains(&status) => Sent::Delivered { status },
        Ok(status) => Sent::Failed {
            error: format!("the receiver answered HTTP {status}"),
        },
        Err(error) => Sent::Failed { error },
    }
}

/// POSTs `event` to `route` (signed when it names a `secretEnv`); the answer's status.
pub async fn post_event(route: &Route, event: &EventView) -> Result<u16, String> {
    let payload = body(route.format, &route.name, event);
    let signature = match &route.secret_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(secret) if !secret.is_empty() => Some(sign(secret.as_bytes(), payload.as_bytes())),
            _ => {
                return Err(format!(
                    "secretEnv `{var}` is not set in tenantctl's environment; set it where tenantctl runs (nothing is sent unsigned)"
                ));
            }
        },
    };
    let mut headers = vec![("X-Tenantctl-Event", event.kind.clone())];
    if let Some(s) = signature {
        headers.push((SIGNATURE_HEADER, s));
    }
    post(&route.url, payload, &headers).await
}

/// Settles a row after its attempt and records what happened.
async fn settle(store: &Store, row: &OutboxRow, sent: Sent) -> Result<(), StoreError> {
    let attempt = row.attempts + 1;
    let what = match &row.event_tenant {
        Some(t) => format!("{}: {} of {t}", row.notification, row.kind),
        None => format!("{}: {}", row.notification, row.kind),
    };
    let now = now_unix();
    match sent {
        Sent::Delivered { status } => {
            let message = format!("{what} delivered (HTTP {status}, attempt {attempt})");
            store
                .settle_notification(
                    row,
                    "delivered",
                    now,
                    None,
                    ("notification.delivered", &message),
                )
                .await
        }
        Sent::Gone => {
            let message = format!(
                "{what} not sent: notification `{}` is no longer in git",
                row.notification
            );
            store
                .settle_notification(
                    row,
                    "abandoned",
                    now,
                    Some("the notification is no longer in git"),
                    ("notification.abandoned", &message),
                )
                .await
        }
        Sent::Failed { error } if attempt >= MAX_ATTEMPTS => {
            let message = format!("{what} given up after {attempt} attempts: {error}");
            store
                .settle_notification(
                    row,
                    "abandoned",
                    now,
                    Some(&error),
                    ("notification.abandoned", &message),
                )
                .await
        }
        Sent::Failed { error } => {
            let delay = backoff(attempt);
            let message = format!(
                "{what} not delivered (attempt {attempt}): {error}; trying again in {delay}s"
            );
            store
                .settle_notification(
                    row,
                    "pending",
                    now + delay,
                    Some(&error),
                    ("notification.failed", &message),
                )
                .await
        }
    }
}

/// One POST of `payload` (JSON) to `url` within [`TIMEOUT`]: the answer's status, or why there
/// is none. The URL itself is never part of an error (a webhook URL may hold a token).
pub async fn post(url: &str, payload: String, headers: &[(&str, String)]) -> Result<u16, String> {
    match tokio::time::timeout(TIMEOUT, post_unbounded(url, payload, headers)).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {}s", TIMEOUT.as_secs())),
    }
}

async fn post_unbounded(
    url: &str,
    payload: String,
    headers: &[(&str, String)],
) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let stream = TcpStream::connect((bare.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .unwrap_or(host.clone());
    let mut request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("tenantctl/", env!("CARGO_PKG_VERSION")),
        )
        .header(hyper::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(payload)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    if https {
        let tls = tls_connector()
            .connect(
                rustls::pki_types::ServerName::try_from(bare.clone())
                    .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?,
                stream,
            )
            .await
            .map_err(|e| format!("TLS with {host}:{port} failed: {e}"))?;
        exchange(TokioIo::new(tls), request).await
    } else {
        exchange(TokioIo::new(stream), request).await
    }
}

async fn exchange<T>(io: T, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let mut conn = std::pin::pin!(conn);
    let mut send = std::pin::pin!(sender.send_request(request));
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        _ = &mut conn => send.await,
    };
    response
        .map(|r| r.status().as_u16())
        .map_err(|e| format!("the request failed: {e}"))
}

fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    });
    tokio_rustls::TlsConnector::from(config.clone())
}
