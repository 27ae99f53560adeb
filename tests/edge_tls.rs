//! TLS of the edge through the reconciler: `tls: files` with certificates and keys committed
//! under `edge/` (served, checked at validation, a changed certificate planned and pushed with
//! no route changed), and `tls: acme` against Pebble with real HTTP-01 validation. Real
//! binary, engine, database and curl.

use crate::support::pebble::{Pebble, free_port};
use crate::support::{Db, Env, Repo, wait_for};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A certificate authority of the test, for `curl --cacert`.
struct TestCa {
    cert: X509,
    key: PKey<Private>,
}

fn ec_key() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

impl TestCa {
    fn new() -> TestCa {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name("tenantctl test CA")).unwrap();
        b.set_issuer_name(&name("tenantctl test CA")).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        TestCa {
            cert: b.build(),
            key,
        }
    }

    fn pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }

    /// A leaf for `host` signed by this CA, with a serial of its own: (cert PEM, key PEM).
    fn issue(&self, host: &str, serial: u32) -> (String, String) {
        let key = ec_key();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name(host)).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns(host)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        (
            String::from_utf8(b.build().to_pem().unwrap()).unwrap(),
            String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        )
    }
}

/// curl of `https://HOST:PORT/` resolved to loopback, trusting `cacert` only: (status, body,
/// the serial number of the certificate served, as curl's `%{certs}` writes it).
fn https(host: &str, port: u16, cacert: &Path) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let body_file = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--resolve"])
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(cacert)
        .arg("-o")
        .arg(&body_file)
        .args(["-w", "%{http_code}\n%{certs}"])
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let serial = text
        .lines()
        .find_map(|l| l.strip_prefix("Serial Number:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let body = std::fs::read_to_string(&body_file).unwrap_or_default();
    (status, body, serial)
}

const EDGE_FILES: &str = "kind: Edge
name: edge
spec:
  http: 127.0.0.1:HTTP
  https: 127.0.0.1:HTTPS
  admin: 127.0.0.1:ADMIN
  tls:
    mode: files
    certificates:
      - hosts: [shop.example.test]
        cert: edge/certs/shop.pem
        key: edge/certs/shop.key
";

/// `shop` at shop.example.test behind an edge with `tls: files` on free loopback ports, its
/// certificate (serial 1) committed under edge/certs; the CA and the https port.
fn files_env(ca: &TestCa) -> (Repo, u16) {
    let repo = Repo::example_with_tenants(&[("shop", "starter", "modern")]);
    repo.edit(
        "tenants/shop.yaml",
        "  env:",
        "  domain: shop.example.test\n  env:",
    );
    let https = free_port();
    repo.write(
        "edge/edge.yaml",
        &EDGE_FILES
            .replace("HTTPS", &https.to_string())
            .replace("HTTP", &free_port().to_string())
            .replace("ADMIN", &free_port().to_string()),
    );
    let (cert, key) = ca.issue("shop.example.test", 1);
    repo.write("edge/certs/shop.pem", &cert)
        .write("edge/certs/shop.key", &key)
        .commit("an edge with shop's certificate");
    (repo, https)
}

#[test]
fn tls_files_serves_the_committed_certificate_and_pushes_a_renewed_one() {
    let ca = TestCa::new();
    let (repo, https_port) = files_env(&ca);
    let Some(env) = Env::new(repo, Db::Sqlite) else {
        return;
    };
    let ca_file = env.repo.path().join("test-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let out = env.apply_ok(&[]);
    assert!(out.contains("(tls files)"), "{out}");
    let (status, body, serial) = https("shop.example.test", https_port, &ca_file);
    assert_eq!(status, 200, "{body}\n{out}");
    assert!(body.contains("shop"), "{body}");
    assert_eq!(serial, "01", "the committed certificate is served");
    assert_eq!(env.plan_exit(), 0, "converged");

    // A renewed certificate, committed alone: no route changes, yet plan shows it with its
    // reason, apply pushes it and the edge serves it from the next handshake.
    let (cert, key) = ca.issue("shop.example.test", 2);
    env.repo
        .write("edge/certs/shop.pem", &cert)
        .write("edge/certs/shop.key", &key)
        .commit("shop's certificate renewed");
    let plan = env.cmd(&["plan", "--detailed-exitcode"]).output().unwrap();
    let text = String::from_utf8_lossy(&plan.stdout).to_string();
    assert_eq!(plan.status.code(), Some(2), "{text}");
    assert!(
        text.contains("certificate of shop.example.test changed (edge/certs/shop.pem)"),
        "{text}"
    );
    assert!(text.contains("edge-routes."), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let out = env.apply_ok(&[]);
    assert!(out.contains("acknowledged"), "{out}");
    let (status, _, serial) = https("shop.example.test", https_port, &ca_file);
    assert_eq!((status, serial.as_str()), (200, "02"), "{out}");
    assert_eq!(env.plan_exit(), 0, "converged again");
}

#[test]
fn tls_files_mistakes_are_refused_with_file_and_line() {
    let ca = TestCa::new();
    let (repo, _) = files_env(&ca);
    let validate = |repo: &Repo| {
        let out = repo.tenantctl().arg("validate").output().unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    assert_eq!(validate(&repo).0, Some(0), "{}", validate(&repo).1);
    // The key of another certificate.
    let (_, other) = ca.issue("shop.example.test", 3);
    repo.write("edge/certs/shop.key", &other)
        .commit("a wrong key");
    let (code, text) = validate(&repo);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("edge/edge.yaml:12:14")
            && text.contains(
                "key `edge/certs/shop.key` does not belong to certificate `edge/certs/shop.pem`"
            ),
        "{text}"
    );
    // A missing file.
    repo.remove("edge/certs/shop.key").commit("no key");
    let (code, text) = validate(&repo);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("edge/edge.yaml:12:14")
            && text.contains("key file `edge/certs/shop.key` is not in the repository"),
        "{text}"
    );
    // A domain without a certificate.
    let (cert, key) = ca.issue("shop.example.test", 4);
    repo.write("edge/certs/shop.key", &key)
        .write("edge/certs/shop.pem", &cert)
        .edit(
            "tenants/shop.yaml",
            "domain: shop.example.test",
            "domain: www.example.test",
        )
        .commit("shop moves to another domain");
    let (code, text) = validate(&repo);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("tenants/shop.yaml:")
            && text.contains("host `www.example.test` of tenant `shop` has no certificate"),
        "{text}"
    );
}

#[test]
fn tls_acme_gets_each_tenant_a_pebble_certificate_through_the_reconciler() {
    let work = tempfile::tempdir().unwrap();
    let (http, https_port) = (free_port(), free_port());
    let pebble = Pebble::start(work.path(), http);
    let repo = Repo::example_with_tenants(&[("shop", "starter", "modern")]);
    repo.edit(
        "tenants/shop.yaml",
        "  env:",
        "  domain: shop.example.test\n  env:",
    );
    repo.write(
        "edge/edge.yaml",
        &format!(
            "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:{http}\n  https: 127.0.0.1:{https_port}\n  admin: 127.0.0.1:{}\n  tls:\n    mode: acme\n    email: ops@example.test\n    directory: {}\n    caFile: {}\n",
            free_port(),
            pebble.directory,
            pebble.tls_cert_file.display()
        ),
    )
    .commit("an edge with certificates from an ACME directory");
    let Some(env) = Env::new(repo, Db::Sqlite) else {
        return;
    };
    let out = env.apply_ok(&[]);
    assert!(out.contains("(tls acme)"), "{out}");
    assert!(
        out.contains(&format!("https://shop.example.test:{https_port}/")),
        "{out}"
    );
    let root = pebble.root_to(&work.path().join("pebble-root.pem"));
    let edge = format!("{}-edge", env.ns);
    wait_for(
        "shop's certificate from pebble",
        Duration::from_secs(120),
        || {
            format!(
                "edge:\n{}\npebble:\n{}",
                crate::support::docker(&["logs", "--tail", "40", &edge]),
                pebble.log_text()
            )
        },
        || https("shop.example.test", https_port, &root).0 == 200,
    );
    let (_, body, _) = https("shop.example.test", https_port, &root);
    assert!(body.contains("shop"), "{body}");
    // Pebble's validator fetched the challenge from the edge's http listener.
    let log = crate::support::docker(&["logs", &edge]);
    assert!(
        log.lines()
            .any(|l| l.contains("path=/.well-known/acme-challenge/") && l.contains(" status=200 ")),
        "{log}"
    );
    assert_eq!(env.plan_exit(), 0, "converged");
}
