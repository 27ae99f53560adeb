//! The proxy: pingora's `ProxyHttp` with routing by Host, the edge's own pages (404, 503
//! suspended, 502), `X-Forwarded-*`, ACME HTTP-01 answers, the access log and the metrics.

use super::Shared;
use super::accesslog::field;
use super::metrics::HostSeries;
use super::routes::{RouteState, Target, normalize_host};
use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, Result};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorSource};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds a suspended tenant's visitors are asked to wait before trying again.
pub const SUSPENDED_RETRY_AFTER: u64 = 3600;
/// How long the edge waits for a tenant's site to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const ACME_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

pub struct EdgeProxy {
    pub shared: Arc<Shared>,
}

pub struct Ctx {
    start: Instant,
    host: String,
    target: Option<Arc<Target>>,
    /// The host's metric series (the unknown host's when no route matched).
    series: Option<Arc<HostSeries>>,
    tls: bool,
    /// The client's address, asked of the connection once per request (for X-Forwarded-For
    /// and the access log).
    client: Option<std::net::IpAddr>,
}

fn page(title: &str, text: &str) -> Bytes {
    Bytes::from(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}</style>\
         </head><body><h1>{title}</h1><p>{text}</p></body></html>\n"
    ))
}

/// Writes one of the edge's own pages as the whole answer.
async fn respond(
    session: &mut Session,
    status: u16,
    body: Bytes,
    retry_after: Option<u64>,
) -> Result<()> {
    let mut header = ResponseHeader::build(status, Some(5))?;
    header.insert_header("content-type", "text/html; charset=utf-8")?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("cache-control", "no-store")?;
    if let Some(secs) = retry_after {
        header.insert_header("retry-after", secs.to_string())?;
    }
    let head = session.req_header().method == pingora::http::Method::HEAD;
    session
        .write_response_header(Box::new(header), head)
        .await?;
    if !head {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// The host a request names: the Host header, or the URI's authority (HTTP/2).
fn request_host(req: &RequestHeader) -> Option<&str> {
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()))
}

fn is_tls(session: &Session) -> bool {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .is_some()
}

#[async_trait]
impl ProxyHttp for EdgeProxy {
    type CTX = Ctx;

    /// No downstream modules: Pingora's default is a disabled compression module, whose
    /// per-request context is pure cost (the edge passes bodies through as they are).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn new_ctx(&self) -> Ctx {
        Ctx {
            start: Instant::now(),
            host: String::new(),
            target: None,
            series: None,
            tls: false,
            client: None,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Ctx) -> Result<bool> {
        ctx.tls = is_tls(session);
        ctx.client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let req = session.req_header();
        if !ctx.tls
            && let Some(token) = req.uri.path().strip_prefix(ACME_CHALLENGE_PREFIX)
            && let Some(answer) = self.shared.acme_challenge(token)
        {
            let mut header = ResponseHeader::build(200, Some(3))?;
            header.insert_header("content-type", "application/octet-stream")?;
            header.insert_header("content-length", answer.len().to_string())?;
            session
                .write_response_header(Box::new(header), false)
                .await?;
            session
                .write_response_body(Some(Bytes::from(answer)), true)
                .await?;
            return Ok(true);
        }
        let host = request_host(req).map(normalize_host).unwrap_or_default();
        let table = self.shared.table();
        let route = table.route(&host);
        let metrics = &self.shared.metrics;
        ctx.series = Some(match route {
            Some(r) => r
                .series
                .get_or_init(|| metrics.host_series(&host, &r.target.tenant))
                .clone(),
            None => metrics.host_series("", ""),
        });
        let target = route.map(|r| r.target.clone());
        ctx.host = host.into_owned();
        let Some(target) = target else {
            respond(
                session,
                404,
                page(
                    "No site here",
                    "This address is not served here. Check the address, or ask whoever gave it to you.",
                ),
                None,
            )
            .await?;
            return Ok(true);
        };
        ctx.target = Some(target.clone());
        match target.state {
            RouteState::Suspended | RouteState::Cancelled => {
                respond(
                    session,
                    503,
                    page(
                        "Suspended",
                        "This site is suspended. Its owner can restore it; please try again later.",
                    ),
                    Some(SUSPENDED_RETRY_AFTER),
                )
                .await?;
                Ok(true)
            }
            RouteState::Active if target.upstream.is_none() => {
                respond(session, 502, unavailable_page(), None).await?;
                Ok(true)
            }
            RouteState::Active => Ok(false),
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let addr = ctx
            .target
            .as_ref()
            .and_then(|t| t.upstream)
            .ok_or_else(|| Error::explain(pingora::ErrorType::InternalError, "no upstream"))?;
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(CONNECT_TIMEOUT);
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        // The edge is where clients connect: what they claim in X-Forwarded-* is replaced, not
        // extended, so a tenant can trust these headers.
        if let Some(ip) = ctx.client {
            upstream_request.insert_header("x-forwarded-for", ip.to_string())?;
        } else {
            upstream_request.remove_header("x-forwarded-for");
        }
        upstream_request
            .insert_header("x-forwarded-proto", if ctx.tls { "https" } else { "http" })?;
        if let Some(host) = request_host(session.req_header()).map(str::to_owned) {
            upstream_request.insert_header("x-forwarded-host", host)?;
        }
        Ok(())
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, _ctx: &mut Ctx) -> FailToProxy {
        let code = match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                pingora::ErrorType::WriteError
                | pingora::ErrorType::ReadError
                | pingora::ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            _ => match e.etype() {
                pingora::ErrorType::HTTPStatus(code) => *code,
                pingora::ErrorType::ConnectTimedout
                | pingora::ErrorType::ConnectRefused
                | pingora::ErrorType::ConnectError => 502,
                _ => 500,
            },
        };
        if code == 502 && session.response_written().is_none() {
            let _ = respond(session, 502, unavailable_page(), None).await;
        } else if code > 0 && session.response_written().is_none() {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut Ctx) {
        let status = session
            .response_written()
            .map(|r| r.status.as_u16())
            .unwrap_or(0);
        let elapsed = ctx.start.elapsed();
        let tenant = ctx.target.as_ref().map(|t| &*t.tenant).unwrap_or("");
        let metrics = &self.shared.metrics;
        let upstream_failed = e.is_some_and(|e| {
            e.esource() == &ErrorSource::Upstream
                || matches!(
                    e.etype(),
                    pingora::ErrorType::ConnectTimedout
                        | pingora::ErrorType::ConnectRefused
                        | pingora::ErrorType::ConnectError
                )
        });
        match &ctx.series {
            Some(series) => series.record(metrics, status, elapsed, upstream_failed),
            None => metrics
                .host_series("", "")
                .record(metrics, status, elapsed, upstream_failed),
        }
        let req = session.req_header();
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "{} host={} tenant={} method={} path={} status={} duration_ms={}.{:03} upstream=",
            humantime::format_rfc3339_millis(std::time::SystemTime::now()),
            field(if ctx.host.is_empty() { "-" } else { &ctx.host }),
            field(if tenant.is_empty() { "-" } else { tenant }),
            req.method,
            // The query is left out: it may carry keys.
            field(req.uri.path()),
            status,
            elapsed.as_millis(),
            elapsed.subsec_micros() % 1000,
        );
        let _ = match ctx.target.as_ref().and_then(|t| t.upstream) {
            Some(addr) if status != 503 => write!(line, "{addr}"),
            _ => write!(line, "-"),
        };
        // A request refused before the filters ran (malformed) has no address in the context.
        let client = ctx.client.or_else(|| {
            session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip())
        });
        let _ = match client {
            Some(ip) => write!(line, " client={ip}"),
            None => write!(line, " client=-"),
        };
        if let Some(e) = e.filter(|_| upstream_failed) {
            let _ = write!(line, " error={}", field(e.etype().as_str()));
        }
        line.push('\n');
        if !self.shared.access_log.log(line) {
            metrics.log_lines_dropped.inc();
        }
    }
}

fn unavailable_page() -> Bytes {
    page(
        "Site unavailable",
        "This site cannot be reached right now. Please try again in a moment.",
    )
}
