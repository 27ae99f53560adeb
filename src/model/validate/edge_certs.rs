//! `tls: files`: the certificates and keys edge.yaml names are PEM files of the same revision
//! under `edge/`. Each must be there, be a certificate chain and a private key, the key the
//! certificate's, the certificate valid for the hosts it is listed for; and every host the edge
//! routes must have one. Checked once the whole revision is read (the files may come before or
//! after edge.yaml). Parsing only, with OpenSSL; no IO.

use super::Validator;
use crate::model::{EdgeTls, Origin};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

/// Where one `certificates` entry names its files and hosts.
pub(super) struct CertAt {
    pub cert: Origin,
    pub key: Origin,
    pub hosts: Vec<Origin>,
}

/// The DNS names a certificate is valid for: its subject alternative names, else its common name.
fn names_of(cert: &X509) -> Vec<String> {
    let sans: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.dnsname().map(str::to_lowercase))
                .collect()
        })
        .unwrap_or_default();
    if !sans.is_empty() {
        return sans;
    }
    cert.subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok().map(|s| s.to_lowercase()))
        .collect()
}

/// Whether certificate name `name` (maybe `*.example.com`) covers `host`.
pub(crate) fn name_covers(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

impl Validator {
    pub(super) fn check_edge_certificates(&mut self) {
        let Some(EdgeTls::Files(files)) = self.state.edge.as_ref().map(|e| e.tls.clone()) else {
            return;
        };
        let places = std::mem::take(&mut self.edge_cert_at);
        if places.len() != files.len() {
            return;
        }
        let mut read = files.clone();
        for (file, at) in read.iter_mut().zip(&places) {
            let cert = self.pem_text(&file.cert, &at.cert, "certificate");
            let key = self.pem_text(&file.key, &at.key, "key");
            let (Some(cert_pem), Some(key_pem)) = (cert, key) else {
                continue;
            };
            let chain = X509::stack_from_pem(cert_pem.as_bytes()).unwrap_or_default();
            let Some(leaf) = chain.first() else {
                self.error(
                    &at.cert,
                    format!("`{}` holds no PEM certificate", file.cert),
                    Some("give the certificate chain, leaf first, in PEM (-----BEGIN CERTIFICATE-----)".into()),
                );
                continue;
            };
            let key: Option<PKey<Private>> = PKey::private_key_from_pem(key_pem.as_bytes()).ok();
            let Some(key) = key else {
                self.error(
                    &at.key,
                    format!("`{}` holds no PEM private key", file.key),
                    Some("give the certificate's private key in PEM (-----BEGIN PRIVATE KEY-----), unencrypted".into()),
                );
                continue;
            };
            if !leaf.public_key().is_ok_and(|public| public.public_eq(&key)) {
                self.error(
                    &at.key,
                    format!(
                        "key `{}` does not belong to certificate `{}`",
                        file.key, file.cert
                    ),
                    Some("pair each certificate with the key it was issued for".into()),
                );
                continue;
            }
            let names = names_of(leaf);
            for (host, host_at) in file.hosts.iter().zip(&at.hosts) {
                if !names.iter().any(|n| name_covers(n, host)) {
                    self.error(
                        host_at,
                        format!(
                            "certificate `{}` is not valid for `{host}` (it names {})",
                            file.cert,
                            if names.is_empty() {
                                "no host".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                        Some("list the hosts the certificate names, or give a certificate for this host".into()),
                    );
                }
            }
            file.cert_pem = cert_pem;
            file.key_pem = key_pem;
        }
        self.check_every_host_has_a_certificate(&read);
        if let Some(edge) = self.state.edge.as_mut() {
            edge.tls = EdgeTls::Files(read);
        }
    }

    /// The text of PEM file `path` of this revision, or an error at `at`.
    fn pem_text(&mut self, path: &str, at: &Origin, what: &str) -> Option<String> {
        if !crate::model::is_edge_pem(path) {
            return None; // refused where it was read
        }
        let Some(bytes) = self.edge_pems.get(path) else {
            self.error(
                at,
                format!("{what} file `{path}` is not in the repository at this revision"),
                Some(format!(
                    "commit it (it is read from the same commit as this file){}",
                    if what == "key" {
                        "; a private key in git is readable by everyone who can read the repository: keep the repository private"
                    } else {
                        ""
                    }
                )),
            );
            return None;
        };
        match String::from_utf8(bytes.clone()) {
            Ok(text) => Some(text),
            Err(_) => {
                self.error(
                    at,
                    format!("{what} file `{path}` is not PEM text"),
                    Some("convert it to PEM, e.g. `openssl x509 -inform der -in cert.der -out cert.pem`".into()),
                );
                None
            }
        }
    }

    /// Under `tls: files` a host without a certificate would fail every TLS handshake.
    fn check_every_host_has_a_certificate(&mut self, files: &[crate::model::EdgeCertFiles]) {
        let Some(edge) = self.state.edge.clone() else {
            return;
        };
        let mut problems = Vec::new();
        for tenant in self.state.tenants.values() {
            for host in edge.hosts_of(tenant) {
                if files.iter().any(|f| f.hosts.contains(&host)) {
                    continue;
                }
                let at = self
                    .domains
                    .get(&host)
                    .map(|(_, at)| at.clone())
                    .unwrap_or_else(|| tenant.origin.clone());
                problems.push((
                    at,
                    format!(
                        "host `{host}` of tenant `{}` has no certificate; the edge serves tls mode `files` ({})",
                        tenant.slug, edge.origin
                    ),
                ));
            }
        }
        for (at, message) in problems {
            self.error(
                &at,
                message,
                Some("add the host to a certificate's hosts in the edge file (with a certificate valid for it), or use tls mode internal or acme".into()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name_covers;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("shop.example", "shop.example"));
        assert!(name_covers("*.example", "shop.example"));
        assert!(!name_covers("*.example", "a.shop.example"));
        assert!(!name_covers("*.example", "example"));
        assert!(!name_covers("shop.example", "www.shop.example"));
    }
}
