//! `tenantctl site-health URL`: the Docker health check of a shell-less image. A bare HTTP/1.1
//! GET over a TCP stream, so the image needs nothing but the binary.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the health check may take in all (connect, send, first line of the answer).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The status line is read up to this many bytes; a server that sends more without a line end
/// is not speaking HTTP.
const MAX_STATUS_LINE: usize = 8 * 1024;

/// The parts of an `http://host[:port][/path]` URL that a GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

pub(crate) fn parse_url(url: &str) -> Result<HttpUrl, String> {
    let rest = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{url}: only http:// URLs are supported, not {scheme}://"
            ));
        }
        None => return Err(format!("{url}: not a URL; expected http://host:port/path")),
    };
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let target = target.split('#').next().unwrap_or("/").to_string();
    if target
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "{url}: the path must not hold spaces or control characters"
        ));
    }
    if authority.contains('@') {
        return Err(format!("{url}: user names and passwords are not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: unclosed `[` in the host"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("{url}: unexpected `{p}` after the host"))?,
                ),
            ),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{url}: `{p}` is not a port number"))?,
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        target,
    })
}

/// GETs `url` and succeeds with the status code when it is 2xx; otherwise says why in one line.
/// The whole exchange must fit in `timeout`.
pub async fn health_check(url: &str, timeout: Duration) -> Result<u16, String> {
    let parsed = parse_url(url)?;
    match tokio::time::timeout(timeout, get_status(&parsed)).await {
        Err(_) => Err(format!(
            "{url}: no answer within {}s",
            timeout.as_secs_f32()
        )),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Ok(Ok((code, _))) if (200..300).contains(&code) => Ok(code),
        Ok(Ok((_, line))) => Err(format!("{url}: {line}")),
    }
}

/// Connects, sends the GET and returns the status code and the status line.
async fn get_status(url: &HttpUrl) -> Result<(u16, String), String> {
    let mut stream = connect(url).await?;
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: tenantctl-site-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.target
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;

    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let line_end = loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            break i;
        }
        if buf.len() > MAX_STATUS_LINE {
            return Err("the answer's first line is too long to be an HTTP status line".into());
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "the connection closed without an answer".into()
            } else {
                "the connection closed in the middle of the status line".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(code) if version.starts_with("HTTP/1.") && (100..600).contains(&code) => Ok((
            code,
            format!("HTTP {}", line.trim_start_matches(version).trim()),
        )),
        _ => Err(format!("not an HTTP/1.x status line: {line:?}")),
    }
}

async fn connect(url: &HttpUrl) -> Result<TcpStream, String> {
    // A literal address needs no resolver: the image has no /etc/hosts or resolv.conf to consult.
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        let addr = SocketAddr::new(ip, url.port);
        return TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut last = format!("{} resolves to no address", url.host);
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}
