//! Reads a tenant site's `GET /usage` counters over loopback: a bare HTTP/1.1 GET on a tokio
//! TcpStream (the site's own health client returns only a status line, not a body).

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// One GET with `Connection: close`; returns the status and the (de-chunked) body.
async fn get(addr: SocketAddr, path: &str, digest: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    // Only hex reaches the header: a digest is never a way to inject another line.
    let credential = digest
        .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|d| format!("{}: {d}\r\n", crate::site::KEY_DIGEST_HEADER))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tenantctl-meter\r\nAccept: application/json\r\n{credential}Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;
    let mut raw = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        if raw.len() > MAX_RESPONSE {
            return Err("the answer is too large".into());
        }
    }
    parse_response(&raw)
}

/// Splits an HTTP/1.x response into status and body (Content-Length, chunked, or to EOF).
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the connection closed before the headers ended")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let body = &raw[head_end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().contains("chunked");
            }
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or("the connection closed before the body ended")?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((code, body))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut off")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let piece = data.get(..size).ok_or("a chunk is cut off")?;
        out.extend_from_slice(piece);
        data = data.get(size + 2..).ok_or("a chunk is cut off")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_eof_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r).unwrap(), (200, b"{}".to_vec()));
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, b"abcde".to_vec()));
        let r = b"HTTP/1.0 404 Not Found\r\n\r\nnope";
        assert_eq!(parse_response(r).unwrap(), (404, b"nope".to_vec()));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
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
