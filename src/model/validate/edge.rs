//! `kind: Edge`: one document per repository, its addresses, base domain and TLS, and the hosts
//! it routes, which no two tenants may share.

use super::{Chunk, Kind, Validator, is_email, is_hostname, locate};
use crate::model::spec::{Document, EdgeSpec};
use crate::model::{EDGE_ADMIN_DEFAULT, Edge, EdgeCertFiles, EdgeTls, Origin};
use serde_saphyr::{Location, Spanned};
use std::net::SocketAddr;

/// `ip:port` with a port above 0, written back canonically (IPv6 in brackets).
fn socket_address(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an address and port"))?;
    if addr.port() == 0 {
        return Err(format!("`{text}` has port 0"));
    }
    Ok(addr)
}

impl Validator {
    pub(super) fn edge(&mut self, path: &str, chunk: &Chunk<'_>, doc: Document<EdgeSpec>) {
        let at = |loc: Location| locate(path, chunk, loc);
        let name_at = at(doc.name.referenced);
        self.named
            .insert((Kind::Edge.name(), doc.name.value.clone()));
        if let Some(first) = self.state.edge.as_ref().map(|e| e.origin.clone()) {
            self.error(
                &name_at,
                format!("a second Edge; the first is at {first}"),
                Some("a repository has exactly one `kind: Edge` document: remove one".into()),
            );
            return;
        }
        let before = self.diagnostics.len();
        if let Some(problem) = crate::model::slug_problem(&doc.name.value) {
            self.error(
                &name_at,
                format!("invalid edge name: {problem}"),
                Some("write `name: edge`".into()),
            );
        }
        let s = doc.spec;
        let address = |v: &mut Validator, field: &str, value: &Spanned<String>| match socket_address(
            &value.value,
        ) {
            Ok(a) => Some(a),
            Err(why) => {
                v.error(
                    &at(value.referenced),
                    format!("{field}: {why}"),
                    Some(format!(
                        "write IP:PORT, e.g. {}",
                        match field {
                            "https" => "127.0.0.1:8443 (0.0.0.0:443 in production)",
                            "admin" => "127.0.0.1:9180",
                            _ => "127.0.0.1:8080 (0.0.0.0:80 in production)",
                        }
                    )),
                );
                None
            }
        };
        let http = address(self, "http", &s.http);
        let https = s.https.as_ref().map(|h| (address(self, "https", h), h));
        let admin = match &s.admin {
            None => EDGE_ADMIN_DEFAULT.parse().ok(),
            Some(a) => {
                let parsed = address(self, "admin", a);
                if let Some(addr) = parsed
                    && !addr.ip().is_loopback()
                {
                    self.error(
                        &at(a.referenced),
                        format!("admin: `{}` is not a loopback address", a.value),
                        Some(
                            "the admin API reconfigures the edge: keep it on 127.0.0.1 (or ::1)"
                                .into(),
                        ),
                    );
                }
                parsed
            }
        };
        // No two listeners on one address.
        let mut seen: Vec<(SocketAddr, &str)> = Vec::new();
        for (field, addr, value) in [
            ("http", http, Some(&s.http)),
            ("https", https.as_ref().and_then(|h| h.0), s.https.as_ref()),
            ("admin", admin, s.admin.as_ref()),
        ] {
            let Some(addr) = addr else { continue };
            if let Some((_, other)) = seen.iter().find(|(a, _)| *a == addr) {
                let where_ = value.map_or(name_at.clone(), |v| at(v.referenced));
                self.error(
                    &where_,
                    format!("{field} listens on {addr}, as {other} does"),
                    Some("give each listener its own port".into()),
                );
            }
            seen.push((addr, field));
        }
        let base_domain = s.base_domain.as_ref().and_then(|b| {
            let value = b.value.trim().trim_end_matches('.').to_lowercase();
            if is_hostname(&value) {
                Some(value)
            } else {
                self.error(
                    &at(b.referenced),
                    format!("baseDomain `{}` is not a host name", b.value),
                    Some("write a domain such as tenants.example.com (tenants answer at <slug>.<baseDomain>)".into()),
                );
                None
            }
        });
        let tls = self.edge_tls(path, chunk, &s, &name_at);
        if self.diagnostics.len() != before {
            return;
        }
        let (Some(http), Some(admin), Some(tls)) = (http, admin, tls) else {
            return;
        };
        self.state.edge = Some(Edge {
            name: doc.name.value,
            origin: name_at,
            http: http.to_string(),
            https: https.and_then(|h| h.0).map(|a| a.to_string()),
            admin: admin.to_string(),
            base_domain,
            tls,
        });
    }

    /// `tls`: `none` without `https`, `internal` with it unless said otherwise.
    fn edge_tls(
        &mut self,
        path: &str,
        chunk: &Chunk<'_>,
        s: &EdgeSpec,
        name_at: &Origin,
    ) -> Option<EdgeTls> {
        let at = |loc: Location| locate(path, chunk, loc);
        let Some(t) = &s.tls else {
            return Some(match s.https {
                Some(_) => EdgeTls::Internal,
                None => EdgeTls::None,
            });
        };
        let mode_at = at(t.mode.referenced);
        let before = self.diagnostics.len();
        let unused = |v: &mut Validator, field: &str, loc: Option<Location>, mode: &str| {
            if let Some(loc) = loc {
                v.error(
                    &at(loc),
                    format!("tls.{field} is not used by tls mode `{mode}`"),
                    Some("remove it, or pick the mode it belongs to (files: certificates; acme: email, directory, caFile)".into()),
                );
            }
        };
        let mode = t.mode.value.trim();
        let certs_at = t.certificates.first().map(|c| c.cert.referenced);
        let acme_at = [&t.email, &t.directory, &t.ca_file]
            .into_iter()
            .flatten()
            .map(|v| v.referenced)
            .next();
        let tls = match mode {
            "none" => {
                unused(self, "certificates", certs_at, mode);
                unused(self, "email/directory/caFile", acme_at, mode);
                EdgeTls::None
            }
            "internal" => {
                unused(self, "certificates", certs_at, mode);
                unused(self, "email/directory/caFile", acme_at, mode);
                EdgeTls::Internal
            }
            "files" => {
                unused(self, "email/directory/caFile", acme_at, mode);
                if t.certificates.is_empty() {
                    self.error(
                        &mode_at,
                        "tls mode `files` lists no certificates",
                        Some("add `certificates: [{hosts: [shop.acme.example], cert: certs/shop.pem, key: certs/shop.key}]`".into()),
                    );
                }
                let mut out = Vec::new();
                for c in &t.certificates {
                    let mut hosts = Vec::new();
                    for h in &c.hosts {
                        let value = h.value.trim().trim_end_matches('.').to_lowercase();
                        if is_hostname(&value) {
                            hosts.push(value);
                        } else {
                            self.error(
                                &at(h.referenced),
                                format!("certificate host `{}` is not a host name", h.value),
                                Some(
                                    "write the host the certificate is for, e.g. shop.acme.example"
                                        .into(),
                                ),
                            );
                        }
                    }
                    let mut paths = Vec::new();
                    for (field, file) in [("cert", &c.cert), ("key", &c.key)] {
                        let value = file.value.trim();
                        let path = value.strip_prefix("./").unwrap_or(value);
                        if !crate::model::is_edge_pem(path) {
                            self.error(
                                &at(file.referenced),
                                format!("certificate {field} `{value}` is not a PEM file under edge/ in the repository"),
                                Some("commit the file under edge/ (a .pem, .crt or .key file) and give its path from the repository's root, e.g. edge/certs/shop.pem: it is read from the same commit as this file".into()),
                            );
                        }
                        paths.push(path.to_string());
                    }
                    self.edge_cert_at.push(super::edge_certs::CertAt {
                        cert: at(c.cert.referenced),
                        key: at(c.key.referenced),
                        hosts: c.hosts.iter().map(|h| at(h.referenced)).collect(),
                    });
                    out.push(EdgeCertFiles {
                        hosts,
                        cert: paths[0].clone(),
                        key: paths[1].clone(),
                        cert_pem: String::new(),
                        key_pem: String::new(),
                    });
                }
                EdgeTls::Files(out)
            }
            "acme" => {
                unused(self, "certificates", certs_at, mode);
                let email = match &t.email {
                    Some(e) if is_email(e.value.trim()) => e.value.trim().to_string(),
                    Some(e) => {
                        self.error(
                            &at(e.referenced),
                            format!("tls.email `{}` is not an email address", e.value),
                            Some("the ACME account's contact, e.g. ops@example.com".into()),
                        );
                        String::new()
                    }
                    None => {
                        self.error(
                            &mode_at,
                            "tls mode `acme` needs `email`",
                            Some(
                                "add `email: ops@example.com` (the ACME account's contact)".into(),
                            ),
                        );
                        String::new()
                    }
                };
                let directory = match &t.directory {
                    Some(d) if d.value.trim().starts_with("https://") => d.value.trim().to_string(),
                    Some(d) => {
                        self.error(
                            &at(d.referenced),
                            format!("tls.directory `{}` is not an https:// URL", d.value),
                            Some("e.g. https://acme-v02.api.letsencrypt.org/directory".into()),
                        );
                        String::new()
                    }
                    None => {
                        self.error(
                            &mode_at,
                            "tls mode `acme` needs `directory`",
                            Some(
                                "add `directory: https://acme-v02.api.letsencrypt.org/directory`"
                                    .into(),
                            ),
                        );
                        String::new()
                    }
                };
                let ca_file = t.ca_file.as_ref().map(|c| c.value.trim().to_string());
                EdgeTls::Acme {
                    email,
                    directory,
                    ca_file,
                }
            }
            other => {
                self.error(
                    &mode_at,
                    format!("tls mode `{other}` is not one of none, internal, files, acme"),
                    Some("internal: the edge's own CA; files: your certificates; acme: Let's Encrypt or another ACME directory".into()),
                );
                return None;
            }
        };
        match (&tls, &s.https) {
            (EdgeTls::None, Some(h)) => self.error(
                &at(h.referenced),
                "https is set but tls mode is `none`",
                Some("pick a tls mode (internal, files, acme) or remove https".into()),
            ),
            (EdgeTls::None, None) => {}
            (_, None) => self.error(
                &mode_at,
                format!("tls mode `{mode}` needs an `https` address to listen on"),
                Some("add e.g. `https: 127.0.0.1:8443`".into()),
            ),
            _ => {}
        }
        let _ = name_at;
        (self.diagnostics.len() == before).then_some(tls)
    }

    /// No host routed to two tenants: a tenant's domain may not be another tenant's
    /// `<slug>.<baseDomain>`.
    pub(super) fn check_edge_hosts(&mut self) {
        if self.state.edge.is_some()
            && let Some(t) = self.state.tenants.get("edge")
        {
            let at = t.origin.clone();
            self.error(
                &at,
                "tenant name `edge` is the edge's: its container and volume are <namespace>-edge and <namespace>-edge-data",
                Some("rename the tenant (its slug), e.g. `edge-shop`".into()),
            );
        }
        let Some(base) = self.state.edge.as_ref().and_then(|e| e.base_domain.clone()) else {
            return;
        };
        let mut problems = Vec::new();
        for slug in self.state.tenants.keys() {
            let host = format!("{slug}.{base}");
            if let Some((owner, at)) = self.domains.get(&host)
                && owner != slug
            {
                problems.push((
                    at.clone(),
                    format!(
                        "domain `{host}` of tenant `{owner}` is the edge host of tenant `{slug}` (<slug>.<baseDomain>)"
                    ),
                ));
            }
        }
        for (at, message) in problems {
            self.error(
                &at,
                message,
                Some("a host routes to one tenant: pick another domain".into()),
            );
        }
    }
}
