//! The admin API on `TENANTCTL_EDGE_ADMIN` (HTTP/1.1): `/healthz`, `/metrics`, `/ca.pem`, and
//! `GET`/`PUT /routes` behind the bearer token.

use super::Shared;
use super::routes::{RoutesDoc, Table};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A routes document larger than this is refused (certificates included).
const MAX_BODY: usize = 16 * 1024 * 1024;

type Body = Full<Bytes>;

/// Serves the admin API on `listener` until `stop` turns true.
pub async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("admin API: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, req).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    let mut body = serde_json::to_vec(&value).unwrap_or_default();
    body.push(b'\n');
    text(status, "application/json", body)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json(status, serde_json::json!({ "error": message.into() }))
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => {
            // Healthy means a customer's request is taken: every proxy listener accepts.
            let missing = shared.listeners_missing();
            if missing.is_empty() {
                text(StatusCode::OK, "text/plain", "ok\n")
            } else {
                let list: Vec<String> = missing.iter().map(ToString::to_string).collect();
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not listening yet: {}\n", list.join(", ")),
                )
            }
        }
        (&Method::GET, "/metrics") => {
            let openmetrics = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("application/openmetrics-text"));
            if openmetrics {
                text(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    shared.metrics.encode(),
                )
            } else {
                text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    shared.metrics.encode_classic(),
                )
            }
        }
        (&Method::GET, "/ca.pem") => match &shared.internal_ca {
            Some(ca) => text(
                StatusCode::OK,
                "application/x-pem-file",
                ca.cert_pem.clone(),
            ),
            None => error(
                StatusCode::NOT_FOUND,
                "this edge has no internal CA (TENANTCTL_EDGE_TLS is not internal)",
            ),
        },
        (_, "/routes") => {
            let authorization = req
                .headers()
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            if !shared.token.accepts(authorization) {
                let mut resp = error(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong bearer token (Authorization: Bearer <the data directory's admin-token>)",
                );
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return resp;
            }
            match *req.method() {
                Method::GET => json(StatusCode::OK, shared.table().public_json()),
                Method::PUT => put_routes(shared, req).await,
                _ => {
                    let mut resp =
                        error(StatusCode::METHOD_NOT_ALLOWED, "/routes takes GET and PUT");
                    resp.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("GET, PUT"));
                    resp
                }
            }
        }
        (_, "/healthz" | "/metrics" | "/ca.pem") => {
            error(StatusCode::METHOD_NOT_ALLOWED, format!("{path} takes GET"))
        }
        _ => error(StatusCode::NOT_FOUND, format!("no {path} here")),
    }
}

async fn put_routes(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cannot read the body (at most {MAX_BODY} bytes): {e}"),
            );
        }
    };
    let doc: RoutesDoc = match serde_json::from_slice(&body) {
        Ok(doc) => doc,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a routes document: {e}"),
            );
        }
    };
    let table = match Table::build(doc, shared.config.tls == super::TlsMode::Files) {
        Ok(t) => t,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let generation = table.doc.generation.clone();
    match shared.replace_table(table) {
        Ok(()) => {
            tracing::info!(
                "routes generation {generation:?} live ({} hosts)",
                shared.table().hosts().count()
            );
            json(
                StatusCode::OK,
                serde_json::json!({ "generation": generation }),
            )
        }
        Err(why) => error(StatusCode::INTERNAL_SERVER_ERROR, why),
    }
}
