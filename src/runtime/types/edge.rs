//! The edge as the runtime sees it: its container's spec and names, and the route table its
//! admin API takes and gives (the contract with `tenantctl edge`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::observed::ObservedContainer;

/// `edge` on the edge's container (beside the managed and namespace labels).
pub const LABEL_ROLE: &str = "tenantctl.role";
pub const ROLE_EDGE: &str = "edge";
/// The version of the edge's spec-hash input.
pub const EDGE_HASH_VERSION: &str = "edge-1";
/// Where the edge keeps its token, routes and CA inside its container.
pub const EDGE_DATA: &str = "/data";
/// The edge's admin token inside its container (written by the edge on first start, 0600).
pub const EDGE_TOKEN_PATH: &str = "/data/admin-token";

/// `<namespace>-edge`: the edge's container.
pub fn edge_name(namespace: &str) -> String {
    format!("{namespace}-edge")
}

/// `<namespace>-edge-data`: the edge's volume (token, routes, internal CA, ACME account).
pub fn edge_volume_name(namespace: &str) -> String {
    format!("{namespace}-edge-data")
}

/// Everything that shapes the edge's container; its canonical JSON is the spec-hash input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeSpec {
    pub name: String,
    pub image: String,
    /// `TENANTCTL_EDGE_*`: listeners, admin address, TLS mode and ACME settings.
    pub env: BTreeMap<String, String>,
    pub volume: String,
    /// Exec form, no shell: `tenantctl site-health http://<admin>/healthz`.
    pub health_cmd: Vec<String>,
    pub user: String,
    pub read_only_rootfs: bool,
    /// Its admin API's address (also in `env`).
    pub admin: String,
}

impl EdgeSpec {
    /// SHA-256 of the spec's canonical JSON.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// How a tenant is routed: `active` is proxied; `suspended` and `cancelled` get the edge's 503.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EdgeRoute {
    pub tenant: String,
    pub hosts: Vec<String>,
    /// `127.0.0.1:PORT`: the tenant container's loopback published port; None when not running.
    pub upstream: Option<String>,
    pub state: String,
}

/// A certificate for `tls: files`, from the repository's revision.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeCertificate {
    pub hosts: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for EdgeCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A private key never reaches a log.
        f.debug_struct("EdgeCertificate")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// The route table as `PUT /routes` takes it and `GET /routes` gives it (no key PEMs back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeTable {
    pub generation: String,
    pub routes: Vec<EdgeRoute>,
    /// Sent with `PUT`; `GET` answers only their hosts and digests (`held_certificates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty", skip_deserializing)]
    pub certificates: Vec<EdgeCertificate>,
    /// What `GET /routes` says of the certificates the edge holds; never sent.
    #[serde(default, rename = "certificates", skip_serializing)]
    pub held_certificates: Vec<HeldCertificate>,
}

/// A certificate as `GET /routes` shows it: its hosts and the SHA-256 of its PEM text.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldCertificate {
    pub hosts: Vec<String>,
    pub cert_sha256: String,
}

impl EdgeCertificate {
    /// How `GET /routes` will show this certificate once pushed.
    pub fn held(&self) -> HeldCertificate {
        HeldCertificate {
            hosts: self.hosts.clone(),
            cert_sha256: hex::encode(Sha256::digest(self.cert_pem.as_bytes())),
        }
    }
}

impl EdgeTable {
    /// A table of `routes` (sorted by tenant) whose generation is the SHA-256 of its canonical
    /// routes and of its certificates' hosts and PEMs.
    pub fn new(mut routes: Vec<EdgeRoute>, certificates: Vec<EdgeCertificate>) -> EdgeTable {
        routes.sort();
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&routes).unwrap_or_default());
        for c in &certificates {
            h.update(serde_json::to_vec(&c.hosts).unwrap_or_default());
            h.update(Sha256::digest(c.cert_pem.as_bytes()));
            h.update(Sha256::digest(c.key_pem.as_bytes()));
        }
        EdgeTable {
            generation: hex::encode(h.finalize()),
            routes,
            held_certificates: certificates.iter().map(EdgeCertificate::held).collect(),
            certificates,
        }
    }

    /// The routes of `tenant` replaced by `route` (a blue/green switch), a new generation.
    pub fn with_route(&self, route: EdgeRoute) -> EdgeTable {
        let mut routes: Vec<EdgeRoute> = self
            .routes
            .iter()
            .filter(|r| r.tenant != route.tenant)
            .cloned()
            .collect();
        routes.push(route);
        EdgeTable::new(routes, self.certificates.clone())
    }
}

/// The edge's container as observed, with what its admin API answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedEdge {
    pub container: ObservedContainer,
    /// `GET /routes`; None when not asked (not running, or a command that does not plan).
    pub routes: Option<Result<EdgeTable, String>>,
}

/// `127.0.0.1:PORT` from a site URL `http://127.0.0.1:PORT/`.
pub fn upstream_of_url(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    (!hostport.is_empty()).then(|| hostport.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(tenant: &str, port: u16) -> EdgeRoute {
        EdgeRoute {
            tenant: tenant.into(),
            hosts: vec![format!("{tenant}.t.example")],
            upstream: Some(format!("127.0.0.1:{port}")),
            state: "active".into(),
        }
    }

    #[test]
    fn a_table_generation_follows_its_routes_not_their_order() {
        let a = EdgeTable::new(vec![route("a", 1), route("b", 2)], vec![]);
        let b = EdgeTable::new(vec![route("b", 2), route("a", 1)], vec![]);
        assert_eq!(a, b);
        let switched = a.with_route(route("b", 3));
        assert_ne!(switched.generation, a.generation);
        assert_eq!(
            switched
                .routes
                .iter()
                .map(|r| r.upstream.clone())
                .collect::<Vec<_>>(),
            [Some("127.0.0.1:1".into()), Some("127.0.0.1:3".into())]
        );
    }

    #[test]
    fn upstreams_come_from_site_urls() {
        assert_eq!(
            upstream_of_url("http://127.0.0.1:49153/").as_deref(),
            Some("127.0.0.1:49153")
        );
        assert_eq!(upstream_of_url("https://x/"), None);
    }

    #[test]
    fn a_certificate_key_is_never_debug_printed() {
        let c = EdgeCertificate {
            hosts: vec!["a.example".into()],
            cert_pem: "CERT".into(),
            key_pem: "SECRET KEY".into(),
        };
        assert!(!format!("{c:?}").contains("SECRET"));
    }
}
