//! `tenantctl edge` as a real process on loopback ports, in front of small upstream servers of
//! the test, checked with curl: routing by both host forms, the edge's own 404/503/502 pages,
//! X-Forwarded-*, the admin API's token, routes across a restart, TLS (internal CA, pushed
//! files, ACME against Pebble), the access log and the metrics.

use crate::support::pebble::Pebble;
use crate::support::{collect_output, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A loopback port nothing listens on right now (bound to port 0, then let go).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny upstream: answers every request with its name, the request line and the headers it
/// got (lowercased names), one request per connection.
pub struct Upstream {
    pub addr: String,
}

impl Upstream {
    pub fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer(name, stream));
            }
        });
        Upstream { addr }
    }
}

fn answer(name: &str, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let line = match line.split_once(':') {
            Some((k, v)) if !seen.is_empty() => format!("{}:{v}", k.to_ascii_lowercase()),
            _ => line,
        };
        seen.push_str(line.trim_end());
        seen.push('\n');
    }
    let body = format!("upstream={name}\n{seen}");
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A running `tenantctl edge`, stopped (SIGTERM, then kill) on drop.
pub struct Edge {
    child: Option<Child>,
    pub data: PathBuf,
    pub http: u16,
    pub https: Option<u16>,
    pub admin: u16,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    env: Vec<(String, String)>,
}

impl Edge {
    /// Starts an edge with plain HTTP only, data in `data`.
    pub fn start(data: &Path) -> Edge {
        Edge::start_with(data, &[])
    }

    /// Starts an edge; `env` adds or overrides TENANTCTL_EDGE_* variables. An https port is
    /// picked when TENANTCTL_EDGE_TLS is given.
    pub fn start_with(data: &Path, env: &[(&str, &str)]) -> Edge {
        Edge::start_on(free_port(), data, env)
    }

    /// [`Edge::start_with`] on a given http port.
    pub fn start_on(http: u16, data: &Path, env: &[(&str, &str)]) -> Edge {
        let tls = env.iter().any(|(k, _)| *k == "TENANTCTL_EDGE_TLS");
        let mut edge = Edge {
            child: None,
            data: data.to_path_buf(),
            http,
            https: tls.then(free_port),
            admin: free_port(),
            stdout: Arc::default(),
            stderr: Arc::default(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        edge.spawn();
        edge
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantctl"));
        cmd.arg("edge")
            .env("TENANTCTL_EDGE_HTTP", format!("127.0.0.1:{}", self.http))
            .env("TENANTCTL_EDGE_ADMIN", format!("127.0.0.1:{}", self.admin))
            .env("TENANTCTL_EDGE_DATA", &self.data)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(https) = self.https {
            cmd.env("TENANTCTL_EDGE_HTTPS", format!("127.0.0.1:{https}"));
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("tenantctl edge starts");
        self.stdout = collect_output(child.stdout.take().unwrap());
        self.stderr = collect_output(child.stderr.take().unwrap());
        self.child = Some(child);
        let admin = self.admin_url("/healthz");
        wait_for(
            "the edge's /healthz",
            Duration::from_secs(20),
            || self.output(),
            || curl(&["-s", &admin]).1 == "ok\n",
        );
    }

    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the edge did not stop on SIGTERM:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the same edge again (same ports and data).
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "{status:?}\n{}", self.output());
        self.spawn();
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin)
    }

    /// PUT /routes with the edge's token; status and body.
    pub fn put_routes(&self, doc: &serde_json::Value) -> (u16, String) {
        self.put_routes_as(doc, &format!("Bearer {}", self.token()))
    }

    pub fn put_routes_as(&self, doc: &serde_json::Value, authorization: &str) -> (u16, String) {
        let body = self.data.with_extension("body.json");
        std::fs::write(&body, doc.to_string()).unwrap();
        let auth = format!("Authorization: {authorization}");
        let (status, out) = curl(&[
            "-s",
            "-X",
            "PUT",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", body.display()),
            &self.admin_url("/routes"),
        ]);
        (status, out)
    }

    pub fn get_routes(&self) -> serde_json::Value {
        let auth = format!("Authorization: Bearer {}", self.token());
        let (status, out) = curl(&["-s", "-H", &auth, &self.admin_url("/routes")]);
        assert_eq!(status, 200, "{out}");
        serde_json::from_str(&out).unwrap()
    }

    /// A GET through the edge's http listener with `Host: host`: status, headers, body.
    pub fn get(&self, host: &str, path: &str) -> (u16, String, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.http);
        get_with(&url, &[&format!("Host: {host}")])
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs curl with `-w '\n%{http_code}'` appended; (status, body). Status 0: no HTTP answer.
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(args)
        .args(["--max-time", "10", "-w", "\n%{http_code}"])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A curl GET of `url` with extra arguments: status, response headers (lowercased), body.
pub fn get_with(url: &str, headers: &[&str]) -> (u16, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    let mut args: Vec<String> = vec!["-s".into(), "-D".into(), head.display().to_string()];
    for h in headers {
        args.push("-H".into());
        args.push(h.to_string());
    }
    args.push(url.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, body) = curl(&args);
    let head = std::fs::read_to_string(&head)
        .unwrap_or_default()
        .to_ascii_lowercase();
    (status, head, body)
}

fn routes(generation: &str, routes: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "generation": generation, "routes": routes })
}

#[test]
fn routes_by_both_host_forms_and_answers_unknown_suspended_and_down_hosts_itself() {
    let acme = Upstream::start("acme");
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start(data.path());
    let down = format!("127.0.0.1:{}", free_port());
    let (status, body) = edge.put_routes(&routes(
        "g1",
        serde_json::json!([
            {"tenant":"acme","hosts":["shop.acme.example","acme.tenants.localhost"],"upstream":acme.addr,"state":"active"},
            {"tenant":"globex","hosts":["globex.tenants.localhost"],"upstream":acme.addr,"state":"suspended"},
            {"tenant":"umbrella","hosts":["umbrella.tenants.localhost"],"upstream":acme.addr,"state":"cancelled"},
            {"tenant":"initech","hosts":["initech.tenants.localhost"],"upstream":down,"state":"active"},
            {"tenant":"hooli","hosts":["hooli.tenants.localhost"],"upstream":null,"state":"active"}
        ]),
    ));
    assert_eq!((status, body.trim()), (200, r#"{"generation":"g1"}"#));

    for host in [
        "shop.acme.example",
        "acme.tenants.localhost",
        "SHOP.ACME.EXAMPLE",
    ] {
        let (status, _, body) = edge.get(host, "/some/page?q=1");
        assert_eq!(status, 200, "{host}: {body}\n{}", edge.output());
        assert!(
            body.starts_with("upstream=acme\nGET /some/page?q=1 HTTP/1.1\n"),
            "{body}"
        );
        assert!(body.contains("x-forwarded-for: 127.0.0.1\n"), "{body}");
        assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
        assert!(
            body.contains(&format!("x-forwarded-host: {host}\n")),
            "{body}"
        );
    }
    // What a client claims in X-Forwarded-For is replaced, not passed on.
    let url = format!("http://127.0.0.1:{}/", edge.http);
    let (_, _, body) = get_with(
        &url,
        &["Host: shop.acme.example", "X-Forwarded-For: 203.0.113.9"],
    );
    assert!(!body.contains("203.0.113.9"), "{body}");

    let (status, head, body) = edge.get("nobody.example", "/");
    assert_eq!(status, 404, "{head}{body}");
    assert!(
        body.contains("No site here") && !body.contains("upstream="),
        "{body}"
    );
    let (status, _, body) = edge.get("", "/");
    assert_eq!(status, 404, "{body}");

    for host in ["globex.tenants.localhost", "umbrella.tenants.localhost"] {
        let (status, head, body) = edge.get(host, "/");
        assert_eq!(status, 503, "{head}{body}");
        assert!(head.contains("retry-after: 3600\r\n"), "{head}");
        assert!(
            body.contains("suspended") && !body.contains("upstream="),
            "{body}"
        );
    }
    for host in ["initech.tenants.localhost", "hooli.tenants.localhost"] {
        let (status, head, body) = edge.get(host, "/");
        assert_eq!(status, 502, "{host}: {head}{body}");
        assert!(body.contains("Site unavailable"), "{body}");
    }

    // One access-log line per request on stdout, with host, tenant, status and upstream.
    // Lines are written by the edge's log thread in batches (every 20 ms at most).
    let lines = [
        "host=shop.acme.example tenant=acme method=GET path=/some/page status=200",
        "host=globex.tenants.localhost tenant=globex method=GET path=/ status=503",
        "host=nobody.example tenant=- method=GET path=/ status=404",
        "host=initech.tenants.localhost tenant=initech method=GET path=/ status=502",
    ];
    wait_for(
        "the access log lines",
        Duration::from_secs(5),
        || edge.output(),
        || {
            let out = edge.stdout.lock().unwrap();
            lines.iter().all(|l| out.contains(l))
        },
    );
    let out = edge.stdout.lock().unwrap().clone();
    assert!(
        !out.contains("q=1"),
        "the query stays out of the log:\n{out}"
    );
    assert!(out.contains(&format!("upstream={} ", acme.addr)), "{out}");
    assert!(
        out.contains("host=globex.tenants.localhost tenant=globex method=GET path=/ status=503"),
        "{out}"
    );
    assert!(
        out.contains("host=nobody.example tenant=- method=GET path=/ status=404"),
        "{out}"
    );
    assert!(
        out.contains("host=initech.tenants.localhost tenant=initech method=GET path=/ status=502")
            && out.contains("error="),
        "{out}"
    );

    // Metrics: per host and tenant, by status class; the upstream error counted.
    let (status, metrics) = curl(&["-s", &edge.admin_url("/metrics")]);
    assert_eq!(status, 200);
    for series in [
        r#"tenantctl_edge_requests_total{host="shop.acme.example",tenant="acme",code="2xx"} 3"#,
        r#"tenantctl_edge_requests_total{host="acme.tenants.localhost",tenant="acme",code="2xx"} 1"#,
        r#"tenantctl_edge_requests_total{host="globex.tenants.localhost",tenant="globex",code="5xx"} 1"#,
        r#"tenantctl_edge_requests_total{host="",tenant="",code="4xx"} 2"#,
        r#"tenantctl_edge_upstream_errors_total{host="initech.tenants.localhost",tenant="initech"} 1"#,
        r#"tenantctl_edge_request_duration_seconds_count{host="shop.acme.example",tenant="acme"} 3"#,
    ] {
        assert!(metrics.contains(series), "{series} in:\n{metrics}");
    }
    promtool_check(&metrics);
}

/// `promtool check metrics` (Debian's prometheus) finds nothing to complain about.
fn promtool_check(metrics: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool is not installed: the exposition format is not linted");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_token_or_a_bad_body_changes_nothing() {
    let acme = Upstream::start("acme");
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start(data.path());
    let good = routes(
        "g1",
        serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example"],"upstream":acme.addr,"state":"active"}]),
    );
    assert_eq!(edge.put_routes(&good).0, 200);
    let hijack = routes(
        "evil",
        serde_json::json!([{"tenant":"evil","hosts":["shop.acme.example"],"upstream":"127.0.0.1:1","state":"active"}]),
    );
    let token = edge.token();
    for authorization in [
        "Bearer wrong".to_string(),
        format!("Bearer {}", &token[..token.len() - 1]),
        token.clone(),
        format!("Basic {token}"),
    ] {
        let (status, body) = edge.put_routes_as(&hijack, &authorization);
        assert_eq!(status, 401, "{authorization}: {body}");
        assert!(!body.contains(&token), "{body}");
    }
    // No token at all, on GET too.
    let (status, _) = curl(&["-s", &edge.admin_url("/routes")]);
    assert_eq!(status, 401);

    for (bad, why) in [
        (
            serde_json::json!({"generation":"x","routes":[{"tenant":"a","hosts":["Shop.acme.example"],"upstream":null,"state":"active"}]}),
            "routes[0].hosts[0]",
        ),
        (
            serde_json::json!({"generation":"x","routes":[{"tenant":"a","hosts":["a.example"],"upstream":"nowhere","state":"active"}]}),
            "routes[0].upstream",
        ),
        (
            serde_json::json!({"generation":"x","routes":[{"tenant":"a","hosts":["a.example"],"upstream":null,"state":"paused"}]}),
            "unknown variant",
        ),
        (
            serde_json::json!({"generation":"x","routes":[],"certificates":[{"hosts":["a.example"],"cert_pem":"x","key_pem":"y"}]}),
            "TENANTCTL_EDGE_TLS=files",
        ),
        (serde_json::json!([1, 2]), "not a routes document"),
    ] {
        let (status, body) = edge.put_routes(&bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(why), "{why} in {body}");
    }

    let now = edge.get_routes();
    assert_eq!(now["generation"], "g1");
    assert_eq!(now["routes"], good["routes"]);
    let (status, _, body) = edge.get("shop.acme.example", "/");
    assert_eq!(status, 200);
    assert!(body.starts_with("upstream=acme\n"), "{body}");
}

#[test]
fn routes_and_token_survive_a_restart_and_serve_at_once() {
    let acme = Upstream::start("acme");
    let globex = Upstream::start("globex");
    let data = tempfile::tempdir().unwrap();
    let mut edge = Edge::start(data.path());
    let token = edge.token();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(data.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = routes(
        "g1",
        serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example"],"upstream":acme.addr,"state":"active"}]),
    );
    assert_eq!(edge.put_routes(&first).0, 200);
    // A replace: the same host now goes to another upstream, at once.
    let second = routes(
        "g2",
        serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example"],"upstream":globex.addr,"state":"active"}]),
    );
    assert_eq!(edge.put_routes(&second).0, 200);
    let (_, _, body) = edge.get("shop.acme.example", "/");
    assert!(body.starts_with("upstream=globex\n"), "{body}");

    edge.restart();
    assert_eq!(edge.token(), token, "the token is kept");
    let (status, _, body) = edge.get("shop.acme.example", "/");
    assert_eq!(status, 200, "{}", edge.output());
    assert!(body.starts_with("upstream=globex\n"), "{body}");
    assert_eq!(edge.get_routes()["generation"], "g2");
    let mode = std::fs::metadata(data.path().join("routes.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// An https URL on the edge's https port for `host`, resolved to loopback by curl.
fn https_get(edge: &Edge, host: &str, cacert: Option<&Path>) -> (u16, String) {
    let port = edge.https.unwrap();
    let resolve = format!("{host}:{port}:127.0.0.1");
    let url = format!("https://{host}:{port}/");
    let mut args = vec!["-s", "--resolve", &resolve];
    let ca;
    if let Some(path) = cacert {
        ca = path.display().to_string();
        args.extend(["--cacert", &ca]);
    }
    args.push(&url);
    curl(&args)
}

#[test]
fn tls_internal_serves_each_host_a_certificate_of_the_edges_own_ca() {
    let acme = Upstream::start("acme");
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start_with(data.path(), &[("TENANTCTL_EDGE_TLS", "internal")]);
    assert_eq!(
        edge.put_routes(&routes(
            "g1",
            serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example","acme.tenants.localhost"],"upstream":acme.addr,"state":"active"}]),
        ))
        .0,
        200
    );
    let (status, ca) = curl(&["-s", &edge.admin_url("/ca.pem")]);
    assert_eq!(status, 200);
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let ca_file = data.path().join("downloaded-ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    assert_eq!(
        std::fs::read_to_string(data.path().join("ca.pem")).unwrap(),
        ca
    );

    for host in ["shop.acme.example", "acme.tenants.localhost"] {
        let (status, body) = https_get(&edge, host, Some(&ca_file));
        assert_eq!(status, 200, "{host}: {body}\n{}", edge.output());
        assert!(body.starts_with("upstream=acme\n"), "{body}");
        assert!(body.contains("x-forwarded-proto: https\n"), "{body}");
    }
    // Not trusted without the edge's CA; no certificate for a host the edge does not route.
    assert_eq!(https_get(&edge, "shop.acme.example", None).0, 0);
    assert_eq!(https_get(&edge, "nobody.example", Some(&ca_file)).0, 0);
}

/// A self-signed certificate and key (PEM) for `host`.
fn self_signed(host: &str) -> (String, String) {
    self_signed_for(host, None)
}

/// A self-signed certificate and key (PEM) for `host` and, if given, an IP address.
fn self_signed_for(host: &str, ip: Option<&str>) -> (String, String) {
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
    name.append_entry_by_nid(Nid::COMMONNAME, host).unwrap();
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
    // A CA for curl (files mode); an end-entity for rustls (Pebble's listener, trusted by the
    // edge's ACME client), which refuses a CA certificate as a server's.
    let constraints = if ip.is_none() {
        BasicConstraints::new().ca().build()
    } else {
        BasicConstraints::new().build()
    };
    b.append_extension(constraints.unwrap()).unwrap();
    let mut san = SubjectAlternativeName::new();
    san.dns(host);
    if let Some(ip) = ip {
        san.ip(ip);
    }
    let san = san.build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(san).unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let cert = String::from_utf8(b.build().to_pem().unwrap()).unwrap();
    let key = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert, key)
}

#[test]
fn tls_files_serves_the_pushed_certificates_and_takes_new_ones() {
    let acme = Upstream::start("acme");
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start_with(data.path(), &[("TENANTCTL_EDGE_TLS", "files")]);
    let push = |cert: &str, key: &str, generation: &str| {
        let mut doc = routes(
            generation,
            serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example"],"upstream":acme.addr,"state":"active"}]),
        );
        doc["certificates"] =
            serde_json::json!([{"hosts":["shop.acme.example"],"cert_pem":cert,"key_pem":key}]);
        edge.put_routes(&doc)
    };
    let (cert, key) = self_signed("shop.acme.example");
    let (status, body) = push(&cert, &key, "g1");
    assert_eq!(status, 200, "{body}");
    let first = data.path().join("first.pem");
    std::fs::write(&first, &cert).unwrap();
    let (status, body) = https_get(&edge, "shop.acme.example", Some(&first));
    assert_eq!(status, 200, "{body}\n{}", edge.output());
    assert!(body.starts_with("upstream=acme\n"), "{body}");
    // GET /routes shows the certificate by digest, never the key.
    let shown = edge.get_routes().to_string();
    assert!(
        shown.contains("cert_sha256") && !shown.contains("PRIVATE KEY"),
        "{shown}"
    );

    // A key of another certificate is refused and the old certificate stays.
    let (cert2, key2) = self_signed("shop.acme.example");
    let (status, body) = push(&cert2, &key, "bad");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not belong"), "{body}");
    assert_eq!(https_get(&edge, "shop.acme.example", Some(&first)).0, 200);

    // A renewed certificate is served from the next handshake.
    assert_eq!(push(&cert2, &key2, "g2").0, 200);
    let second = data.path().join("second.pem");
    std::fs::write(&second, &cert2).unwrap();
    assert_eq!(https_get(&edge, "shop.acme.example", Some(&second)).0, 200);
    assert_eq!(https_get(&edge, "shop.acme.example", Some(&first)).0, 0);
}

#[test]
fn a_bad_environment_is_refused_with_what_to_set() {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantctl"))
        .arg("edge")
        .env_remove("TENANTCTL_EDGE_HTTP")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TENANTCTL_EDGE_HTTP is not set"), "{err}");

    // A taken port is named with its variable.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tenantctl"))
        .arg("edge")
        .env("TENANTCTL_EDGE_HTTP", &addr)
        .env("TENANTCTL_EDGE_ADMIN", format!("127.0.0.1:{}", free_port()))
        .env("TENANTCTL_EDGE_DATA", data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr} (TENANTCTL_EDGE_HTTP)")),
        "{err}"
    );
}

#[test]
fn edge_health_checks_the_admin_api() {
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start(data.path());
    let health = |admin: String| {
        Command::new(env!("CARGO_BIN_EXE_tenantctl"))
            .arg("edge-health")
            .env("TENANTCTL_EDGE_ADMIN", admin)
            .output()
            .unwrap()
    };
    let out = health(format!("127.0.0.1:{}", edge.admin));
    assert!(out.status.success(), "{out:?}");
    let out = health(format!("127.0.0.1:{}", free_port()));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let mut buf = String::new();
    let _ = (&out.stdout[..]).read_to_string(&mut buf);
    assert!(buf.starts_with("unhealthy:"), "{buf}");
}

#[test]
fn tls_acme_obtains_certificates_from_pebble_by_http_01_and_keeps_them() {
    // Pebble (Debian's ACME test server) validates for real: its DNS is pebble-challtestsrv,
    // which answers 127.0.0.1 for every name, and its HTTP-01 port is the edge's http port.
    let acme = Upstream::start("acme");
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("edge");
    let http = free_port();
    let pebble = Pebble::start(work.path(), http);
    let directory = pebble.directory.clone();

    let mut edge = Edge::start_on(
        http,
        &data,
        &[
            ("TENANTCTL_EDGE_TLS", "acme"),
            ("TENANTCTL_EDGE_ACME_DIRECTORY", &directory),
            ("TENANTCTL_EDGE_ACME_EMAIL", "ops@example.com"),
            ("TENANTCTL_EDGE_ACME_CA", &pebble.tls_cert),
        ],
    );
    let (status, body) = edge.put_routes(&routes(
        "g1",
        serde_json::json!([
            {"tenant":"acme","hosts":["shop.acme.example","acme.tenants.example"],"upstream":acme.addr,"state":"active"},
            {"tenant":"globex","hosts":["globex.tenants.example"],"upstream":acme.addr,"state":"suspended"}
        ]),
    ));
    assert_eq!(status, 200, "{body}");

    // The chain pebble issues ends at a root it makes at start.
    let root_file = pebble.root_to(&work.path().join("pebble-root.pem"));
    for host in ["shop.acme.example", "acme.tenants.example"] {
        wait_for(
            &format!("a certificate for {host} from pebble"),
            Duration::from_secs(90),
            || format!("{}\npebble:\n{}", edge.output(), pebble.log_text()),
            || https_get(&edge, host, Some(&root_file)).0 == 200,
        );
        let (_, body) = https_get(&edge, host, Some(&root_file));
        assert!(body.starts_with("upstream=acme\n"), "{body}");
    }
    // Validation really went over HTTP-01 to the edge's http listener: Pebble's validator
    // fetched the challenge there (two hosts, two fetches at least).
    wait_for(
        "Pebble's challenge fetches in the access log",
        Duration::from_secs(5),
        || edge.output(),
        || {
            edge.stdout
                .lock()
                .unwrap()
                .matches("path=/.well-known/acme-challenge/")
                .count()
                >= 2
        },
    );
    let out = edge.stdout.lock().unwrap().clone();
    assert!(
        out.lines()
            .filter(|l| l.contains("path=/.well-known/acme-challenge/"))
            .all(|l| l.contains(" status=200 ")),
        "{out}"
    );
    // A suspended tenant gets no certificate.
    assert!(!data.join("acme/certs/globex.tenants.example.pem").exists());
    use std::os::unix::fs::PermissionsExt;
    let stored = data.join("acme/certs/shop.acme.example.pem");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // After a restart the stored certificates serve at once, and no new order is made.
    edge.restart();
    assert_eq!(
        https_get(&edge, "shop.acme.example", Some(&root_file)).0,
        200
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(!edge.output().contains("obtained"), "{}", edge.output());
    drop(pebble);
}

/// An upstream that accepts a websocket handshake and then echoes bytes (a websocket server
/// minus the framing, which the edge does not look at).
fn start_upgrading_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut upgrade = false;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    upgrade |= line.to_ascii_lowercase().starts_with("upgrade: websocket");
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut stream = stream;
                if !upgrade {
                    let _ = stream.write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                    return;
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
                );
                let mut buf = [0u8; 1024];
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn a_websocket_upgrade_passes_both_ways() {
    let upstream = start_upgrading_upstream();
    let data = tempfile::tempdir().unwrap();
    let edge = Edge::start(data.path());
    assert_eq!(
        edge.put_routes(&routes(
            "g1",
            serde_json::json!([{"tenant":"acme","hosts":["shop.acme.example"],"upstream":upstream,"state":"active"}]),
        ))
        .0,
        200
    );
    let mut stream = TcpStream::connect(("127.0.0.1", edge.http)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(
            b"GET /socket HTTP/1.1\r\nHost: shop.acme.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(
        status.starts_with("HTTP/1.1 101"),
        "{status}\n{}",
        edge.output()
    );
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    for message in ["hello\n", "and again\n"] {
        stream.write_all(message.as_bytes()).unwrap();
        let mut echoed = String::new();
        reader.read_line(&mut echoed).unwrap();
        assert_eq!(echoed, message);
    }
}
