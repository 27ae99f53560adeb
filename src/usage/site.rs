//! Reads a tenant site's `GET /usage` counters over loopback, with hyper's HTTP/1.1 client.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

use crate::runtime::PublishedPort;

/// How long one site may take to answer `/usage` (connect, request, whole body).
pub const SITE_TIMEOUT: Duration = Duration::from_secs(2);
/// The counters document is small; anything larger is not the built-in site's answer.
const MAX_RESPONSE: usize = 256 * 1024;

/// The part of the site's `/usage` document the meter stores.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct SiteCounters {
    #[serde(default)]
    pub tenant: Option<String>,
    /// `YYYY-MM` (UTC) the month counters belong to.
    pub month: String,
    pub api_calls_month: u64,
    pub ai_interactions_month: u64,
    /// Key id → the Unix second of its last call (sites before named keys send none).
    #[serde(default)]
    pub keys_last_used: std::collections::BTreeMap<String, i64>,
}

/// The loopback address to reach a published port on, or None when it is published only on
/// another address (never connect to anything but loopback).
pub fn loopback_addr(port: &PublishedPort) -> Option<SocketAddr> {
    let ip: IpAddr = match port.host_ip.as_str() {
        "" | "0.0.0.0" | "127.0.0.1" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "::" | "::1" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => match other.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => ip,
            _ => return None,
        },
    };
    Some(SocketAddr::new(ip, port.host_port))
}

/// `tenantctl site-usage PORT`, run inside a tenant's task: prints the counters of the site on
/// this task's loopback as one JSON line (exit 0), or why not (exit 1).
pub fn run_site_usage(port: u16) -> std::process::ExitCode {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    // The task's own environment holds the digest the site asks for on /usage.
    let digest = std::env::var(crate::plan::container::API_KEY_ENV).ok();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
        .and_then(|rt| rt.block_on(fetch_counters(addr, digest.as_deref(), SITE_TIMEOUT)));
    match result.and_then(|c| serde_json::to_string(&c).map_err(|e| e.to_string())) {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(why) => {
            println!("{why}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Parses what `tenantctl site-usage` printed inside a task.
pub fn parse_site_usage(output: &str) -> Result<SiteCounters, String> {
    let line = output
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(line).map_err(|_| {
        if output.contains("unrecognized subcommand") {
            "the task runs an older site image without `site-usage`; its next rolling update brings it".to_string()
        } else {
            format!("site-usage in the task: {}", line.trim())
        }
    })
}

/// `GET /usage` from `addr` within `timeout`, presenting the tenant's key `digest` (the site
/// answers /usage only to its key or its digest); the error says why in one line.
pub async fn fetch_counters(
    addr: SocketAddr,
    digest: Option<&str>,
    timeout: Duration,
) -> Result<SiteCounters, String> {
    match tokio::time::timeout(timeout, get(addr, "/usage", digest)).await {
        Err(_) => Err(format!(
            "http://{addr}/usage: no answer within {}s",
            timeout.as_secs_f32()
        )),
        Ok(Err(e)) => Err(format!("http://{addr}/usage: {e}")),
        Ok(Ok((200, body))) => serde_json::from_slice(&body)
            .map_err(|e| format!("http://{addr}/usage: not a usage document: {e}")),
        Ok(Ok((code, _))) => Err(format!("http://{addr}/usage: answered {code}")),
    }
}

/// One GET with `Connection: close` through hyper's client; the status and the body (at most
/// [`MAX_RESPONSE`] bytes).
async fn get(addr: SocketAddr, path: &str, digest: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper::body::Bytes;
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot start HTTP: {e}"))?;
    let mut request = hyper::Request::get(path)
        .header(hyper::header::HOST, addr.to_string())
        .header(hyper::header::USER_AGENT, "tenantctl-meter")
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::CONNECTION, "close");
    // Only hex reaches the header: a digest is never a way to inject another line.
    if let Some(d) = digest.filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit())) {
        request = request.header(crate::site::KEY_DIGEST_HEADER, d);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("the request failed: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body.to_vec()))
    };
    // The connection is driven beside the exchange; it ends once the answer is read.
    let (answer, _) = tokio::join!(exchange, conn);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-shot server on loopback that answers `raw` to the first request (and keeps it).
    async fn answering(raw: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(raw).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn reads_length_chunked_and_refused_answers_with_hyper() {
        let doc = br#"{"month":"2026-12","api_calls_month":3,"ai_interactions_month":1}"#;
        let (head, tail) = doc.split_at(20);
        let chunked = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            head.len(),
            String::from_utf8_lossy(head),
            tail.len(),
            String::from_utf8_lossy(tail)
        );
        let (addr, asked) = answering(Box::leak(chunked.into_bytes().into_boxed_slice())).await;
        let got = fetch_counters(addr, Some("abc123"), SITE_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            (
                got.month.as_str(),
                got.api_calls_month,
                got.ai_interactions_month
            ),
            ("2026-12", 3, 1)
        );
        let request = asked.await.unwrap();
        assert!(request.starts_with("GET /usage HTTP/1.1\r\n"), "{request}");
        assert!(
            request
                .to_lowercase()
                .contains("x-tenant-key-sha256: abc123")
                || request.contains("abc123"),
            "{request}"
        );
        let _ = doc;
        // A digest that is not hex is never sent.
        let (addr, asked) =
            answering(b"HTTP/1.1 404 Not Found\r\ncontent-length: 4\r\n\r\nnope").await;
        let e = fetch_counters(addr, Some("x\r\nEvil: 1"), SITE_TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.ends_with("answered 404"), "{e}");
        assert!(!asked.await.unwrap().contains("Evil"));
        // Not HTTP at all.
        let (addr, _) = answering(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        assert!(fetch_counters(addr, None, SITE_TIMEOUT).await.is_err());
    }

    #[test]
    fn only_loopback_is_ever_dialled() {
        let p = |ip: &str| PublishedPort {
            container_port: 8080,
            host_ip: ip.into(),
            host_port: 4000,
        };
        assert_eq!(
            loopback_addr(&p("127.0.0.1")).unwrap().to_string(),
            "127.0.0.1:4000"
        );
        assert_eq!(
            loopback_addr(&p("0.0.0.0")).unwrap().to_string(),
            "127.0.0.1:4000"
        );
        assert_eq!(loopback_addr(&p("")).unwrap().to_string(), "127.0.0.1:4000");
        assert!(loopback_addr(&p("10.0.0.5")).is_none());
        assert!(loopback_addr(&p("192.168.1.2")).is_none());
    }

    #[test]
    fn reads_the_site_usage_document() {
        let doc = r#"{"tenant":"acme","plan":"professional","month":"2025-06","api_calls_total":12,
            "api_calls_month":7,"ai_interactions_month":2,"rate_limited_total":0,"unauthorized_total":1,
            "quota_rejections_total":0,"started_at":"x","as_of":"y","limits":{},"persisted":true}"#;
        let c: SiteCounters = serde_json::from_str(doc).unwrap();
        assert_eq!(c.api_calls_month, 7);
        assert_eq!(c.ai_interactions_month, 2);
        assert_eq!(c.month, "2025-06");
        assert_eq!(c.tenant.as_deref(), Some("acme"));
    }
}
