//! Pebble, Debian's ACME test server, validating for real: its DNS is pebble-challtestsrv,
//! which answers 127.0.0.1 for every name, and its HTTP-01 port is the edge's http port, so its
//! validator fetches each challenge from the edge. `PEBBLE_VA_ALWAYS_VALID` is not used.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A loopback port nothing listens on now (bound to port 0, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Pebble and its DNS, killed on drop.
pub struct Pebble {
    /// `https://127.0.0.1:PORT/dir`.
    pub directory: String,
    /// Pebble's own TLS certificate (PEM): what the ACME client must trust for the directory.
    pub tls_cert: String,
    /// The same, as a file (for `tls.caFile`).
    pub tls_cert_file: PathBuf,
    pub log: PathBuf,
    management: u16,
    _processes: (Killed, Killed),
}

impl Pebble {
    /// Starts pebble-challtestsrv and pebble in `work`, validating HTTP-01 on `http_port`;
    /// returns once the directory answers.
    pub fn start(work: &Path, http_port: u16) -> Pebble {
        let (dns, dns_mgmt) = (free_port(), free_port());
        let challtestsrv = Killed(
            Command::new("pebble-challtestsrv")
                .args([
                    "-dns01",
                    &format!("127.0.0.1:{dns}"),
                    "-http01",
                    "",
                    "-https01",
                    "",
                    "-tlsalpn01",
                    "",
                    "-management",
                    &format!("127.0.0.1:{dns_mgmt}"),
                    "-defaultIPv4",
                    "127.0.0.1",
                    "-defaultIPv6",
                    "",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble-challtestsrv (Debian package pebble) runs"),
        );
        let (cert, key) = tls_pair();
        let tls_cert_file = work.join("pebble-cert.pem");
        std::fs::write(&tls_cert_file, &cert).unwrap();
        std::fs::write(work.join("pebble-key.pem"), &key).unwrap();
        let (port, management) = (free_port(), free_port());
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": tls_cert_file,
            "privateKey": work.join("pebble-key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        std::fs::write(work.join("pebble.json"), config.to_string()).unwrap();
        let log = work.join("pebble.log");
        let pebble = Killed(
            Command::new("pebble")
                .args(["-config", &work.join("pebble.json").display().to_string()])
                .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble (Debian package pebble) runs"),
        );
        let directory = format!("https://127.0.0.1:{port}/dir");
        let answers = || {
            Command::new("curl")
                .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", &directory])
                .output()
                .is_ok_and(|o| o.stdout == b"200")
        };
        super::wait_for(
            "pebble's directory",
            Duration::from_secs(20),
            || std::fs::read_to_string(&log).unwrap_or_default(),
            answers,
        );
        Pebble {
            directory,
            tls_cert: cert,
            tls_cert_file,
            log,
            management,
            _processes: (pebble, challtestsrv),
        }
    }

    /// The root Pebble issues under (made at its start), written to `path` for `curl --cacert`.
    pub fn root_to(&self, path: &Path) -> PathBuf {
        let out = Command::new("curl")
            .args([
                "-sk",
                &format!("https://127.0.0.1:{}/roots/0", self.management),
            ])
            .output()
            .expect("curl runs");
        let root = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
        std::fs::write(path, root).unwrap();
        path.to_path_buf()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Pebble's listener certificate: an end entity for `localhost` and 127.0.0.1 (rustls, in the
/// edge's ACME client, refuses a CA certificate as a server's).
fn tls_pair() -> (String, String) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509, X509NameBuilder};
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
    let key = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, key)
}
