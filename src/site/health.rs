//! `tenantctl site-health URL`: the Docker health check of a shell-less image. One HTTP/1.1 GET
//! through hyper's client over a TCP stream of our own (a literal address needs no resolver), so
//! the image needs nothing but the binary.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;

/// How long the health check may take in all (connect, send, first line of the answer).
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

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

/// Connects, sends the GET through hyper's HTTP/1.1 client and returns the status code and the
/// status line as `HTTP CODE REASON` (the server's own reason phrase when it sent one). The body
/// is never read: the status decides.
async fn get_status(url: &HttpUrl) -> Result<(u16, String), String> {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper::header::{ACCEPT, CONNECTION, HOST, USER_AGENT};
    let stream = connect(url).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("cannot start HTTP: {e}"))?;
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = hyper::Request::get(url.target.as_str())
        .header(HOST, host_header)
        .header(USER_AGENT, "tenantctl-site-health")
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = sender.send_request(request);
    // The connection is driven beside the exchange and dropped with the answer's head: a
    // server that sends a body forever (or never closes) does not hold the check. A connection
    // that ends (`Connection: close`) may have handed the answer over first.
    tokio::pin!(conn);
    tokio::pin!(exchange);
    let response = tokio::select! {
        biased;
        answer = &mut exchange => answer,
        ended = &mut conn => match ended {
            Err(e) => return Err(describe(&e)),
            Ok(()) => exchange.await,
        },
    }
    .map_err(|e| describe(&e))?;
    let status = response.status();
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    let line = format!("HTTP {} {reason}", status.as_u16());
    Ok((status.as_u16(), line.trim_end().to_string()))
}

/// One line for what went wrong in the exchange, in the words of the check.
fn describe(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "the connection closed without a complete answer".to_string()
    } else if e.is_parse() || e.is_parse_status() {
        format!("not an HTTP/1.x answer: {e}")
    } else {
        format!("the request failed: {e}")
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
