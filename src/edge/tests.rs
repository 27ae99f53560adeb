use super::routes::{RouteState, RoutesDoc, Table, check_host, normalize_host};
use super::tls::{CertifiedKey, InternalCa};
use super::token::AdminToken;
use super::{EdgeConfig, TlsMode};
use std::collections::HashMap;

fn doc(json: &str) -> RoutesDoc {
    serde_json::from_str(json).expect("routes document")
}

const TWO: &str = r#"{"generation":"g1","routes":[
  {"tenant":"acme","hosts":["shop.acme.example","acme.tenants.localhost"],"upstream":"127.0.0.1:49153","state":"active"},
  {"tenant":"globex","hosts":["globex.tenants.localhost"],"upstream":null,"state":"suspended"}]}"#;

#[test]
fn both_host_forms_of_a_route_find_it_in_any_case_and_with_a_port() {
    let table = Table::build(doc(TWO), false).unwrap();
    for host in [
        "shop.acme.example",
        "SHOP.Acme.Example:8080",
        "acme.tenants.localhost.",
        "acme.tenants.localhost:443",
    ] {
        let target = table.lookup(host).unwrap_or_else(|| panic!("{host}"));
        assert_eq!(&*target.tenant, "acme");
        assert_eq!(target.upstream, Some("127.0.0.1:49153".parse().unwrap()));
    }
    let globex = table.lookup("globex.tenants.localhost").unwrap();
    assert_eq!(globex.state, RouteState::Suspended);
    assert_eq!(globex.upstream, None);
    assert!(table.lookup("other.example").is_none());
    assert!(table.lookup("").is_none());
    assert!(table.lookup("acme").is_none());
}

#[test]
fn normalize_host_strips_ports_and_brackets_and_lowercases() {
    assert_eq!(normalize_host("A.Example:80"), "a.example");
    assert_eq!(normalize_host("a.example"), "a.example");
    assert_eq!(normalize_host("[::1]:8080"), "::1");
    assert_eq!(normalize_host("a.example."), "a.example");
    assert_eq!(normalize_host(" a.example "), "a.example");
}

#[test]
fn a_host_routed_twice_is_refused_with_both_places() {
    let err = Table::build(
        doc(r#"{"generation":"g","routes":[
      {"tenant":"a","hosts":["x.example"],"upstream":"127.0.0.1:1","state":"active"},
      {"tenant":"b","hosts":["y.example","x.example"],"upstream":"127.0.0.1:2","state":"active"}]}"#),
        false,
    )
    .unwrap_err();
    assert!(err.contains("routes[1].hosts[1]"), "{err}");
    assert!(err.contains("routes[0]"), "{err}");
}

#[test]
fn bad_routes_are_refused_with_where_and_why() {
    let cases = [
        (
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":["X.example"],"upstream":null,"state":"active"}]}"#,
            "routes[0].hosts[0]",
            "lowercase",
        ),
        (
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":["x.example:80"],"upstream":null,"state":"active"}]}"#,
            "routes[0].hosts[0]",
            "no port",
        ),
        (
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":[],"upstream":null,"state":"active"}]}"#,
            "routes[0].hosts",
            "empty",
        ),
        (
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":["a.example"],"upstream":"localhost","state":"active"}]}"#,
            "routes[0].upstream",
            "IP:PORT",
        ),
        (
            r#"{"generation":"g","routes":[{"tenant":"","hosts":["a.example"],"upstream":null,"state":"active"}]}"#,
            "routes[0].tenant",
            "1 to 128",
        ),
        (
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":["a..example"],"upstream":null,"state":"active"}]}"#,
            "routes[0].hosts[0]",
            "label",
        ),
    ];
    for (json, at, why) in cases {
        let err = Table::build(doc(json), false).unwrap_err();
        assert!(err.contains(at) && err.contains(why), "{json}: {err}");
    }
    // Unknown states and fields are refused by the parser.
    assert!(
        serde_json::from_str::<RoutesDoc>(
            r#"{"generation":"g","routes":[{"tenant":"a","hosts":["a.example"],"upstream":null,"state":"paused"}]}"#
        )
        .is_err()
    );
    assert!(serde_json::from_str::<RoutesDoc>(r#"{"generation":"g","route":[]}"#).is_err());
}

#[test]
fn check_host_accepts_ordinary_names() {
    for host in [
        "a.example",
        "shop-1.acme.example",
        "localhost",
        "x1.tenants.localhost",
    ] {
        check_host(host).unwrap();
    }
    for host in ["-a.example", "a-.example", "a_b.example", "a example", ""] {
        assert!(check_host(host).is_err(), "{host}");
    }
}

#[test]
fn certificates_are_refused_unless_the_edge_takes_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = InternalCa::load_or_create(dir.path()).unwrap();
    let leaf = ca.leaf("a.example").unwrap();
    let pem = String::from_utf8(leaf.to_pem().unwrap()).unwrap();
    let json = serde_json::json!({"generation":"g","routes":[],
        "certificates":[{"hosts":["a.example"],"cert_pem":pem,"key_pem":pem}]});
    let d: RoutesDoc = serde_json::from_value(json).unwrap();
    let err = Table::build(d.clone(), false).unwrap_err();
    assert!(err.contains("TENANTCTL_EDGE_TLS=files"), "{err}");
    let table = Table::build(d, true).unwrap();
    assert!(table.certificates.contains_key("a.example"));
    // GET /routes shows the certificate's digest, never its key.
    let public = table.public_json().to_string();
    assert!(!public.contains("PRIVATE KEY"), "{public}");
    assert!(public.contains("cert_sha256"), "{public}");
}

#[test]
fn a_key_that_does_not_belong_to_the_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = InternalCa::load_or_create(dir.path()).unwrap();
    let a = ca.leaf("a.example").unwrap();
    let b = ca.leaf("b.example").unwrap();
    let cert = String::from_utf8(a.leaf.to_pem().unwrap()).unwrap();
    let key = String::from_utf8(b.key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let err = CertifiedKey::from_pem(&cert, &key).unwrap_err();
    assert!(err.contains("does not belong"), "{err}");
    assert!(CertifiedKey::from_pem("junk", &key).is_err());
}

#[test]
fn the_internal_ca_is_kept_across_starts_and_signs_leaves_for_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let first = InternalCa::load_or_create(dir.path()).unwrap();
    let again = InternalCa::load_or_create(dir.path()).unwrap();
    assert_eq!(first.cert_pem, again.cert_pem);
    let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
        .unwrap()
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600);
    let leaf = again.leaf("shop.acme.example").unwrap();
    let ca = openssl::x509::X509::from_pem(first.cert_pem.as_bytes()).unwrap();
    assert!(leaf.leaf.verify(&ca.public_key().unwrap()).unwrap());
    let names: Vec<String> = leaf
        .leaf
        .subject_alt_names()
        .unwrap()
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_string))
        .collect();
    assert_eq!(names, ["shop.acme.example"]);
    // Cached: the same leaf the second time.
    let same = again.leaf("shop.acme.example").unwrap();
    assert_eq!(leaf.leaf.to_der().unwrap(), same.leaf.to_der().unwrap());
    assert!(!leaf.due_for_renewal(std::time::SystemTime::now()));
}

#[test]
fn the_token_is_made_once_private_and_checked_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let token = AdminToken::load_or_create(dir.path()).unwrap();
    let text = std::fs::read_to_string(dir.path().join("admin-token")).unwrap();
    let text = text.trim();
    assert_eq!(text.len(), 64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = AdminToken::load_or_create(dir.path()).unwrap();
    let header = format!("Bearer {text}");
    assert!(token.accepts(Some(header.as_bytes())));
    assert!(again.accepts(Some(header.as_bytes())));
    assert!(!token.accepts(None));
    assert!(!token.accepts(Some(text.as_bytes())));
    assert!(!token.accepts(Some(format!("Bearer {text}x").as_bytes())));
    assert!(!token.accepts(Some(&header.as_bytes()[..header.len() - 1])));
    assert!(!format!("{token:?}").contains(text));
    let t = AdminToken::for_test("x".repeat(40).as_str());
    assert!(t.accepts(Some(format!("Bearer {}", "x".repeat(40)).as_bytes())));
}

#[test]
fn routes_persist_and_load_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    assert!(super::routes::load(dir.path()).unwrap().is_none());
    let d = doc(TWO);
    super::routes::save(dir.path(), &d).unwrap();
    assert_eq!(super::routes::load(dir.path()).unwrap(), Some(d));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("routes.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

fn config(vars: &[(&str, &str)]) -> Result<EdgeConfig, String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    EdgeConfig::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn the_configuration_comes_from_the_environment_with_clear_errors() {
    let c = config(&[("TENANTCTL_EDGE_HTTP", "127.0.0.1:8080")]).unwrap();
    assert_eq!(c.tls, TlsMode::None);
    assert_eq!(c.admin.to_string(), "127.0.0.1:9180");
    assert_eq!(c.data.to_str(), Some("/data"));
    let err = config(&[]).unwrap_err();
    assert!(err.contains("TENANTCTL_EDGE_HTTP"), "{err}");
    let err = config(&[("TENANTCTL_EDGE_HTTP", "8080")]).unwrap_err();
    assert!(err.contains("IP:PORT"), "{err}");
    let err = config(&[
        ("TENANTCTL_EDGE_HTTP", "127.0.0.1:8080"),
        ("TENANTCTL_EDGE_TLS", "internal"),
    ])
    .unwrap_err();
    assert!(err.contains("TENANTCTL_EDGE_HTTPS"), "{err}");
    let err = config(&[
        ("TENANTCTL_EDGE_HTTP", "127.0.0.1:8080"),
        ("TENANTCTL_EDGE_HTTPS", "127.0.0.1:8443"),
        ("TENANTCTL_EDGE_TLS", "acme"),
    ])
    .unwrap_err();
    assert!(err.contains("TENANTCTL_EDGE_ACME_DIRECTORY"), "{err}");
    let err = config(&[
        ("TENANTCTL_EDGE_HTTP", "127.0.0.1:8080"),
        ("TENANTCTL_EDGE_TLS", "letsencrypt"),
    ])
    .unwrap_err();
    assert!(err.contains("none, internal, files or acme"), "{err}");
}

#[test]
fn classic_metrics_name_the_counter_series_in_help_and_type() {
    let m = super::metrics::Metrics::default();
    m.requests
        .get_or_create(&super::metrics::RequestLabels {
            host: "a.example".into(),
            tenant: "a".into(),
            code: "2xx".into(),
        })
        .inc();
    m.duration
        .get_or_create(&super::metrics::HostLabels {
            host: "a.example".into(),
            tenant: "a".into(),
        })
        .observe(0.001);
    let open = m.encode();
    assert!(
        open.contains("# TYPE tenantctl_edge_requests counter\n"),
        "{open}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    let classic = m.encode_classic();
    assert!(
        classic.contains("# TYPE tenantctl_edge_requests_total counter\n"),
        "{classic}"
    );
    assert!(
        classic.contains("# HELP tenantctl_edge_requests_total Requests"),
        "{classic}"
    );
    assert!(
        classic.contains("# TYPE tenantctl_edge_request_duration_seconds histogram\n"),
        "{classic}"
    );
    assert!(classic.contains(
        "tenantctl_edge_requests_total{host=\"a.example\",tenant=\"a\",code=\"2xx\"} 1\n"
    ));
    assert!(
        !classic.contains("# EOF") && !classic.contains("# UNIT"),
        "{classic}"
    );
}
