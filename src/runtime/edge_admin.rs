//! The client of the edge's admin API (`tenantctl edge`, on a loopback address): its health,
//! the route table (`GET`/`PUT /routes`, bearer token) and the internal CA (`GET /ca.pem`).
//! The token is read from the edge's container by the backend ([`super::Backend::edge_token`]);
//! it lives only in this client's memory, never in a log, the database or output.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::describe;
use super::types::EdgeTable;

/// How long one admin request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer read (a route table of many tenants fits).
const MAX_ANSWER: usize = 64 << 20;

/// The edge's admin API at `addr`, authorised by its token.
#[derive(Clone)]
pub struct EdgeAdmin {
    addr: SocketAddr,
    token: String,
}

impl std::fmt::Debug for EdgeAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeAdmin")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl EdgeAdmin {
    pub fn new(addr: SocketAddr, token: String) -> EdgeAdmin {
        EdgeAdmin {
            addr,
            token: token.trim().to_string(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The table the edge serves.
    pub async fn routes(&self) -> Result<EdgeTable, String> {
        let (status, body) =
            request(self.addr, "GET", "/routes", Some(&self.token), None, None).await?;
        if status != 200 {
            return Err(answer("GET /routes", status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("GET /routes: the edge's answer is not a route table: {e}"))
    }

    /// Hands the edge `table`; Ok once the edge acknowledged its generation (live and persisted).
    pub async fn put_routes(&self, table: &EdgeTable) -> Result<(), String> {
        let body = serde_json::to_vec(table).map_err(|e| e.to_string())?;
        let (status, answer_body) = request(
            self.addr,
            "PUT",
            "/routes",
            Some(&self.token),
            Some(body),
            None,
        )
        .await?;
        if status != 200 {
            return Err(answer("PUT /routes", status, &answer_body));
        }
        #[derive(serde::Deserialize)]
        struct Ack {
            generation: String,
        }
        let ack: Ack = serde_json::from_slice(&answer_body).map_err(|e| {
            format!("PUT /routes: the edge's answer is not an acknowledgement: {e}")
        })?;
        if ack.generation != table.generation {
            return Err(format!(
                "PUT /routes: the edge acknowledged generation {} instead of {}",
                short(&ack.generation),
                short(&table.generation)
            ));
        }
        Ok(())
    }

    /// The internal CA's certificate (PEM); None when the edge has none (not `tls: internal`).
    pub async fn ca_pem(&self) -> Result<Option<String>, String> {
        let (status, body) = request(self.addr, "GET", "/ca.pem", None, None, None).await?;
        match status {
            200 => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
            404 => Ok(None),
            _ => Err(answer("GET /ca.pem", status, &body)),
        }
    }
}

/// `GET /healthz` of the admin API at `addr`: Ok when it says 200.
pub async fn healthz(addr: SocketAddr) -> Result<(), String> {
    let (status, body) = request(addr, "GET", "/healthz", None, None, None).await?;
    match status {
        200 => Ok(()),
        _ => Err(answer("GET /healthz", status, &body)),
    }
}

/// One GET of `path` from the edge's listener `addr` as a browser of `host` would send it:
/// the status code and the body.
pub async fn get_via(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, Bytes), String> {
    request(addr, "GET", path, None, None, Some(host)).await
}

fn short(generation: &str) -> &str {
    generation.get(..12).unwrap_or(generation)
}

fn answer(what: &str, status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(200).collect();
    format!(
        "{what}: the edge answered {status}{}",
        if text.is_empty() {
            String::new()
        } else {
            format!(" ({})", crate::model::printable(&text))
        }
    )
}

/// One HTTP/1.1 request to `addr` (loopback only), `Connection: close`, within [`TIMEOUT`].
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
    host: Option<&str>,
) -> Result<(u16, Bytes), String> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address"));
    }
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| describe(&e))?;
        tokio::spawn(conn);
        let host = host.map_or_else(|| addr.to_string(), str::to_string);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tenantctl")
            .header(hyper::header::CONNECTION, "close");
        if let Some(token) = token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!(
                "{method} {path} on {addr}: no answer within {}s",
                TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("{method} {path} on {addr}: {e}"))
}
