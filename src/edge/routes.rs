//! The routes table: the document `PUT /routes` takes, its validation, the lookup the proxy does
//! per request, and its persistence in `routes.json`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The file in the data directory that holds the last accepted document (0600: it may hold the
/// private keys of `tls: files`).
pub const ROUTES_FILE: &str = "routes.json";

/// What `PUT /routes` takes and `routes.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RoutesDoc {
    /// Opaque to the edge: tenantctl compares it with what it wants.
    pub generation: String,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub certificates: Vec<CertificateDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub tenant: String,
    pub hosts: Vec<String>,
    /// `127.0.0.1:PORT`, the tenant container's loopback published port; null when not running.
    #[serde(default)]
    pub upstream: Option<String>,
    pub state: RouteState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteState {
    Active,
    Suspended,
    Cancelled,
}

impl RouteState {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Active => "active",
            RouteState::Suspended => "suspended",
            RouteState::Cancelled => "cancelled",
        }
    }
}

/// A certificate and its key for some hosts (`tls: files`), PEM text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateDoc {
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where a request for one host goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub tenant: Arc<str>,
    pub upstream: Option<SocketAddr>,
    pub state: RouteState,
}

/// One host of the table: its tenant's target, and the host's metric series once a request
/// has resolved them (so later requests cost atomic adds, not a label lookup).
#[derive(Debug)]
pub struct HostRoute {
    pub target: Arc<Target>,
    pub series: std::sync::OnceLock<Arc<super::metrics::HostSeries>>,
}

/// A validated document, indexed by host. Replaced whole (never edited) so that a request sees
/// one table or the next, never a mix.
#[derive(Debug, Default)]
pub struct Table {
    pub doc: RoutesDoc,
    hosts: HashMap<String, HostRoute>,
    /// Certificates by host (`tls: files`), parsed.
    pub certificates: HashMap<String, Arc<super::tls::CertifiedKey>>,
}

impl Table {
    /// Validates `doc` (every problem is reported with where it is) and indexes it.
    /// `certificates_allowed` is false unless the edge runs with `tls: files`.
    pub fn build(doc: RoutesDoc, certificates_allowed: bool) -> Result<Table, String> {
        let mut hosts: HashMap<String, HostRoute> = HashMap::new();
        let mut owner: HashMap<&str, usize> = HashMap::new();
        if doc.generation.len() > 256 {
            return Err("generation: longer than 256 characters".into());
        }
        for (i, route) in doc.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if route.tenant.is_empty() || route.tenant.len() > 128 {
                return Err(format!("{at}.tenant: must be 1 to 128 characters"));
            }
            if route.hosts.is_empty() {
                return Err(format!(
                    "{at}.hosts: empty; a route needs at least one host name"
                ));
            }
            let upstream = match &route.upstream {
                None => None,
                Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                    format!("{at}.upstream: {text:?} is not an address; expected IP:PORT such as 127.0.0.1:49153, or null")
                })?),
            };
            let target = Arc::new(Target {
                tenant: Arc::from(route.tenant.as_str()),
                upstream,
                state: route.state,
            });
            for (j, host) in route.hosts.iter().enumerate() {
                check_host(host).map_err(|why| format!("{at}.hosts[{j}]: {why}"))?;
                if let Some(&other) = owner.get(host.as_str()) {
                    return Err(format!(
                        "{at}.hosts[{j}]: {host:?} is already routed by routes[{other}] (tenant {:?}); a host goes to one tenant",
                        doc.routes[other].tenant
                    ));
                }
                owner.insert(host, i);
                hosts.insert(
                    host.clone(),
                    HostRoute {
                        target: target.clone(),
                        series: std::sync::OnceLock::new(),
                    },
                );
            }
        }
        let mut certificates = HashMap::new();
        if !doc.certificates.is_empty() && !certificates_allowed {
            return Err(
                "certificates: only taken when the edge runs with TENANTCTL_EDGE_TLS=files".into(),
            );
        }
        for (i, cert) in doc.certificates.iter().enumerate() {
            let at = format!("certificates[{i}]");
            if cert.hosts.is_empty() {
                return Err(format!("{at}.hosts: empty"));
            }
            let parsed = Arc::new(
                super::tls::CertifiedKey::from_pem(&cert.cert_pem, &cert.key_pem)
                    .map_err(|why| format!("{at}: {why}"))?,
            );
            for (j, host) in cert.hosts.iter().enumerate() {
                check_host(host).map_err(|why| format!("{at}.hosts[{j}]: {why}"))?;
                if certificates.insert(host.clone(), parsed.clone()).is_some() {
                    return Err(format!(
                        "{at}.hosts[{j}]: {host:?} has a certificate already"
                    ));
                }
            }
        }
        Ok(Table {
            doc,
            hosts,
            certificates,
        })
    }

    /// The route for a Host header value or SNI name (any case, with or without port).
    pub fn lookup(&self, host: &str) -> Option<&Arc<Target>> {
        self.route(host).map(|r| &r.target)
    }

    /// The host's entry, with its metric series.
    pub fn route(&self, host: &str) -> Option<&HostRoute> {
        let host = normalize_host(host);
        self.hosts.get(host.as_ref())
    }

    pub fn hosts(&self) -> impl Iterator<Item = (&String, &Arc<Target>)> {
        self.hosts.iter().map(|(host, route)| (host, &route.target))
    }

    /// What `GET /routes` answers: the document without key PEMs (certificates by hosts and
    /// the SHA-256 of their PEM text, so a changed certificate shows).
    pub fn public_json(&self) -> serde_json::Value {
        let certificates: Vec<_> = self
            .doc
            .certificates
            .iter()
            .map(|c| {
                serde_json::json!({
                    "hosts": c.hosts,
                    "cert_sha256": hex::encode(Sha256::digest(c.cert_pem.as_bytes())),
                })
            })
            .collect();
        serde_json::json!({
            "generation": self.doc.generation,
            "routes": self.doc.routes,
            "certificates": certificates,
        })
    }
}

/// A host name as routes hold it: lowercase letters, digits, `-` and `.`; labels of 1 to 63
/// characters; no port, no trailing dot.
pub fn check_host(host: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{host:?} is not a host name: {why}"));
    if host.is_empty() || host.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return bad("must be lowercase");
    }
    if host.contains(':') {
        return bad("no port (the edge routes by name on every listener)");
    }
    for label in host.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return bad("only a-z, 0-9, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label must not start or end with '-'");
        }
    }
    Ok(())
}

/// A Host header value (or SNI name) as a route key: port stripped, lowercased, trailing dot
/// dropped. `[v6]:port` keeps the brackets' content.
pub fn normalize_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let raw = raw.trim();
    let name = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match raw.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => raw,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Reads `routes.json` from `dir`; `None` when there is none yet.
pub fn load(dir: &Path) -> Result<Option<RoutesDoc>, String> {
    let path = dir.join(ROUTES_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes `doc` to `routes.json` in `dir` atomically (temporary file, fsync, rename), 0600.
pub fn save(dir: &Path, doc: &RoutesDoc) -> std::io::Result<()> {
    write_private(&dir.join(ROUTES_FILE), &serde_json::to_vec_pretty(doc)?)
}

/// Replaces `path` with `bytes` atomically, readable by the owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = std::fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}
