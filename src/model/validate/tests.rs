use super::*;
use crate::model::ConfigScalar;

const PLAN: &str = "kind: Plan
name: starter
spec:
  displayName: Starter
  price: { amount: 9.99, currency: USD, cycle: monthly }
  trialDays: 14
  resources: { cpus: 0.5, memory: 256Mi, pids: 128, storage: 5Gi }
  quotas: { apiCallsPerMonth: 10000, users: 5 }
  rateLimit: { requestsPerMinute: 60 }
  features: [webhooks]
";

const THEME: &str = "kind: Theme
name: modern
spec:
  displayName: Upfront Modern
  version: 1.2.0
  port: 8080
  health: { path: /health, intervalSeconds: 10 }
  config: { primaryColor: \"#0f62fe\", font: Inter, layout: grid }
";

const TENANT: &str = "kind: Tenant
name: acme
spec:
  displayName: Acme Corp
  owner: ops@acme.example
  plan: starter
  theme: modern
  state: active
  domain: acme.example.com
  env: { LOG_LEVEL: info }
";

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.into(),
        content: SourceContent::Bytes(text.as_bytes().to_vec()),
    }
}

fn base() -> Vec<SourceFile> {
    vec![
        file("plans/starter.yaml", PLAN),
        file("themes/modern.yaml", THEME),
        file("tenants/acme.yaml", TENANT),
    ]
}

/// Loads `base()` with `path` replaced (or added) by `text`, expecting errors.
fn errors_with(path: &str, text: &str) -> Vec<Diagnostic> {
    let mut files: Vec<SourceFile> = base().into_iter().filter(|f| f.path != path).collect();
    files.push(file(path, text));
    load(&files).expect_err("expected validation errors")
}

/// The state `base()` loads to with `path` replaced (or added) by `text`, which must be valid.
fn state_with(path: &str, text: &str) -> DesiredState {
    let mut files: Vec<SourceFile> = base().into_iter().filter(|f| f.path != path).collect();
    files.push(file(path, text));
    load(&files).unwrap_or_else(|d| panic!("{path} should load: {d:#?}"))
}

fn one(diags: &[Diagnostic]) -> &Diagnostic {
    assert_eq!(
        diags.len(),
        1,
        "expected exactly one diagnostic, got: {diags:#?}"
    );
    &diags[0]
}

fn assert_at(d: &Diagnostic, path: &str, line: u64, column: u64, needle: &str) {
    assert_eq!(
        (d.path.as_str(), d.line, d.column),
        (path, line, column),
        "{d}"
    );
    assert!(
        d.message.contains(needle),
        "message {:?} lacks {:?}",
        d.message,
        needle
    );
}

#[test]
fn valid_repository_loads_with_resolved_values() {
    let state = load(&base()).unwrap();
    let plan = &state.plans["starter"];
    assert_eq!(plan.price_cents, 999);
    assert_eq!(plan.resources.memory_bytes, 256 << 20);
    assert_eq!(plan.resources.nano_cpus, 500_000_000);
    assert_eq!(plan.resources.storage_bytes, Some(5 << 30));
    assert_eq!(plan.rate_limit_rpm, Some(60));
    let theme = &state.themes["modern"];
    assert_eq!(
        theme.config["primaryColor"],
        ConfigScalar::String("#0f62fe".into())
    );
    assert_eq!(theme.publish_address, "127.0.0.1");
    let tenant = &state.tenants["acme"];
    assert_eq!(tenant.origin.to_string(), "tenants/acme.yaml:2:7");
    assert_eq!(tenant.env["LOG_LEVEL"], "info");
    assert_eq!(tenant.domain.as_deref(), Some("acme.example.com"));
}

#[test]
fn several_documents_in_one_file_keep_their_line_numbers() {
    let text = format!(
        "# tenants of the EU shard\n---\n{TENANT}---\n{}",
        TENANT.replace("acme", "globex")
    );
    let state = load(&[
        file("plans/starter.yaml", PLAN),
        file("themes/modern.yaml", THEME),
        file("tenants/eu.yaml", &text),
    ]);
    let state = state.unwrap();
    assert_eq!(state.tenants["acme"].origin.line, 4);
    assert_eq!(state.tenants["globex"].origin.line, 15);
    let bad = text.replace(
        "plan: starter\n  theme: modern\n  state: active\n  domain: globex",
        "plan: startr\n  theme: modern\n  state: active\n  domain: globex",
    );
    let d = errors_with("tenants/acme.yaml", &bad);
    assert_at(
        one(&d),
        "tenants/acme.yaml",
        19,
        9,
        "plan `startr` does not exist",
    );
    assert!(
        d[0].hint
            .as_deref()
            .unwrap()
            .contains("did you mean `starter`")
    );
}

#[test]
fn yaml_syntax_error_points_at_the_line() {
    let d = errors_with(
        "tenants/acme.yaml",
        "kind: Tenant\nname: acme\nspec:\n  displayName: [Acme\n",
    );
    let d = one(&d);
    assert_eq!((d.line, d.path.as_str()), (4, "tenants/acme.yaml"), "{d}");
}

#[test]
fn unknown_field_is_an_error_with_a_suggestion() {
    let d = errors_with(
        "plans/starter.yaml",
        &PLAN.replace("memory: 256Mi", "memroy: 256Mi"),
    );
    let d = one(&d);
    assert_at(d, "plans/starter.yaml", 7, 27, "unknown field `memroy`");
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean `memory`?"),
        "{d}"
    );
}

#[test]
fn wrong_type_is_reported_where_it_stands() {
    let d = errors_with(
        "plans/starter.yaml",
        &PLAN.replace("trialDays: 14", "trialDays: two weeks"),
    );
    assert_at(
        one(&d),
        "plans/starter.yaml",
        6,
        14,
        "expected a whole number, 0 or more",
    );
    let d = errors_with(
        "tenants/acme.yaml",
        &TENANT.replace("state: active", "state: paused"),
    );
    assert_at(
        one(&d),
        "tenants/acme.yaml",
        8,
        10,
        "unknown variant `paused`",
    );
}

#[test]
fn missing_field_names_the_field() {
    let d = errors_with(
        "tenants/acme.yaml",
        &TENANT.replace("  owner: ops@acme.example\n", ""),
    );
    let d = one(&d);
    assert!(d.message.contains("missing field `owner`"), "{d}");
    assert_eq!(d.path, "tenants/acme.yaml");
}

#[test]
fn bad_quantity_suggests_the_right_unit() {
    let d = errors_with("plans/starter.yaml", &PLAN.replace("256Mi", "512Mb"));
    let d = one(&d);
    assert_at(d, "plans/starter.yaml", 7, 35, "unknown unit `Mb`");
    assert!(
        d.hint.as_deref().unwrap().contains("did you mean 512Mi?"),
        "{d}"
    );
}

#[test]
fn bad_slugs_are_refused() {
    for (name, needle) in [
        ("Acme", "contains `A`"),
        ("../x", "contains `.`"),
        ("-acme", "starts or ends with `-`"),
        (&"a".repeat(64), "64 characters long"),
        ("ac_me", "contains `_`"),
    ] {
        let d = errors_with(
            "tenants/acme.yaml",
            &TENANT.replace("name: acme", &format!("name: \"{name}\"")),
        );
        assert_at(one(&d), "tenants/acme.yaml", 2, 7, needle);
    }
    assert!(
        load(&{
            let mut f = base();
            f.push(file(
                "tenants/x.yaml",
                &TENANT
                    .replace("name: acme", &format!("name: {}", "a".repeat(63)))
                    .replace("ops@", "x@")
                    .replace("acme.example.com", "x.example.com"),
            ));
            f
        })
        .is_ok()
    );
}

#[test]
fn missing_references_list_what_exists() {
    let d = errors_with(
        "tenants/acme.yaml",
        &TENANT.replace("theme: modern", "theme: retro"),
    );
    let d = one(&d);
    assert_at(
        d,
        "tenants/acme.yaml",
        7,
        10,
        "theme `retro` does not exist",
    );
    assert!(
        d.hint.as_deref().unwrap().contains("known themes: modern"),
        "{d}"
    );
}

#[test]
fn duplicate_names_point_at_both_places() {
    let mut files = base();
    files.insert(2, file("tenants/acme-copy.yaml", TENANT));
    let d = load(&files).unwrap_err();
    let names: Vec<&Diagnostic> = d
        .iter()
        .filter(|x| x.message.contains("defined twice"))
        .collect();
    assert_eq!(names.len(), 1, "{d:#?}");
    // Files are read in path order, so the second one read names the first.
    assert_eq!(names[0].path, "tenants/acme.yaml");
    assert!(
        names[0]
            .message
            .contains("first at tenants/acme-copy.yaml:2:7"),
        "{d:#?}"
    );
    // The copy also repeats the owner and domain.
    assert!(
        d.iter().any(|x| x
            .message
            .contains("owner `ops@acme.example` already owns tenant `acme`")),
        "{d:#?}"
    );
    assert!(
        d.iter().any(|x| x
            .message
            .contains("domain `acme.example.com` is already used")),
        "{d:#?}"
    );
}

#[test]
fn duplicate_owner_and_domain_across_tenants() {
    let other = TENANT
        .replace("name: acme", "name: globex")
        .replace("acme.example.com", "ACME.example.com.");
    let d = errors_with("tenants/globex.yaml", &other);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(
        d.iter()
            .all(|x| x.path == "tenants/globex.yaml" || x.path == "tenants/acme.yaml")
    );
    assert!(
        d.iter().any(|x| x.line == 5 && x.message.contains("owner")),
        "{d:#?}"
    );
    assert!(
        d.iter()
            .any(|x| x.line == 9 && x.message.contains("domain")),
        "{d:#?}"
    );
}

#[test]
fn duplicate_keys_are_errors() {
    let d = errors_with(
        "tenants/acme.yaml",
        &TENANT.replace("  state: active\n", "  state: active\n  state: suspended\n"),
    );
    assert_at(one(&d), "tenants/acme.yaml", 9, 3, "appears twice");
}

#[test]
fn every_error_is_reported_at_once() {
    let mut files = base();
    files.push(file(
        "plans/pro.yaml",
        &PLAN
            .replace("name: starter", "name: pro")
            .replace("256Mi", "1GB")
            .replace("currency: USD", "currency: usd"),
    ));
    files.push(file(
        "tenants/bad.yaml",
        &TENANT
            .replace("name: acme", "name: Bad")
            .replace("ops@", "bad@")
            .replace("acme.example.com", "bad.example"),
    ));
    files.push(file(
        "themes/x.yaml",
        "kind: Theme\nname: x\nspec: {displayName: X, version: one}\n",
    ));
    let d = load(&files).unwrap_err();
    let paths: std::collections::BTreeSet<&str> = d.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(paths.len(), 3, "{d:#?}");
    assert!(d.len() >= 4, "{d:#?}");
}

#[test]
fn kind_must_match_its_directory() {
    let d = errors_with("plans/modern.yaml", THEME);
    assert_at(
        one(&d),
        "plans/modern.yaml",
        1,
        7,
        "a Theme does not belong under plans/",
    );
    let d = errors_with("plans/x.yaml", "name: x\nspec: {}\n");
    assert_at(one(&d), "plans/x.yaml", 1, 1, "no `kind`");
    let d = errors_with("plans/x.yaml", "kind: Plna\nname: x\n");
    assert_at(one(&d), "plans/x.yaml", 1, 7, "unknown kind `Plna`");
}

#[test]
fn reserved_and_invalid_env_names() {
    let d = errors_with(
        "tenants/acme.yaml",
        &TENANT.replace("LOG_LEVEL: info", "TENANT_SLUG: evil"),
    );
    assert!(one(&d).message.contains("reserved"), "{d:#?}");
    assert_eq!(d[0].line, 10);
}

#[test]
fn oversized_files_and_links_are_refused_unread() {
    let mut files = base();
    files.push(SourceFile {
        path: "tenants/huge.yaml".into(),
        content: SourceContent::TooLarge(5 << 20),
    });
    files.push(SourceFile {
        path: "tenants/link.yaml".into(),
        content: SourceContent::Symlink,
    });
    let d = load(&files).unwrap_err();
    assert_eq!(d.len(), 2);
    assert_at(
        &d[0],
        "tenants/huge.yaml",
        1,
        1,
        "files over 1048576 bytes (1 MiB) are refused",
    );
    assert_at(&d[1], "tenants/link.yaml", 1, 1, "symbolic link");
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let mut bomb = String::from(
        "kind: Tenant\nname: acme\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..12 {
        let p = i - 1;
        bomb.push_str(&format!(
            "x{i}: &x{i} [*x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}, *x{p}]\n"
        ));
    }
    bomb.push_str("spec: *x11\n");
    let started = std::time::Instant::now();
    let d = errors_with("tenants/acme.yaml", &bomb);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(d[0].path, "tenants/acme.yaml");
    assert!(d[0].message.starts_with("refused"), "{d:#?}");
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!(
        "kind: Tenant\nname: acme\nspec: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let d = errors_with("tenants/acme.yaml", &deep);
    assert_eq!(d[0].path, "tenants/acme.yaml");
}

#[test]
fn invalid_utf8_points_at_the_byte() {
    let mut files = base();
    files.push(SourceFile {
        path: "tenants/bin.yaml".into(),
        content: SourceContent::Bytes(b"kind: Tenant\nname: \xff\n".to_vec()),
    });
    let d = load(&files).unwrap_err();
    assert_at(one(&d), "tenants/bin.yaml", 2, 7, "not valid UTF-8");
}

#[test]
fn files_outside_the_three_directories_are_ignored() {
    let mut files = base();
    files.push(file("docs/notes.yaml", "anything: [goes"));
    assert!(load(&files).is_ok());
}

#[test]
fn theme_checks() {
    let d = errors_with(
        "themes/modern.yaml",
        &THEME
            .replace("version: 1.2.0", "version: latest")
            .replace("path: /health", "path: health"),
    );
    assert_eq!(d.len(), 2, "{d:#?}");
    let d = errors_with(
        "themes/modern.yaml",
        &format!("{THEME}  capabilities: [NET_BIND_SERVICE, CAP_FLY]\n"),
    );
    assert_at(
        one(&d),
        "themes/modern.yaml",
        9,
        36,
        "`CAP_FLY` is not a Linux capability",
    );
}

#[test]
fn swarm_fields_are_checked_where_they_stand() {
    // Replicas: 1 to 5 (each is a task in the tenant's /28), default 1.
    let plan = PLAN.replace(
        "features: [webhooks]",
        "features: [webhooks]\n  replicas: 9",
    );
    let diags = errors_with("plans/starter.yaml", &plan);
    assert_at(
        one(&diags),
        "plans/starter.yaml",
        11,
        13,
        "replicas 9 is out of range",
    );

    // A reservation above the cap is refused at the reservation.
    let plan = PLAN.replace(
        "storage: 5Gi }",
        "storage: 5Gi,\n    reservations: { cpus: 0.25, memory: 1Gi } }",
    );
    let diags = errors_with("plans/starter.yaml", &plan);
    assert_at(
        one(&diags),
        "plans/starter.yaml",
        8,
        41,
        "reserved memory 1Gi is above the memory limit 256Mi",
    );

    // Placement constraints: a node attribute, `==` or `!=`, one value.
    let tenant = format!(
        "{TENANT}  placement:\n    constraints: [\"node.role == manager\", \"node.hostname = a\"]\n"
    );
    let diags = errors_with("tenants/acme.yaml", &tenant);
    assert_at(
        one(&diags),
        "tenants/acme.yaml",
        12,
        43,
        "constraint `node.hostname = a` has no `==` or `!=`",
    );
    let tenant = format!("{TENANT}  placement: {{ constraints: [\"disk == ssd\"] }}\n");
    let diags = errors_with("tenants/acme.yaml", &tenant);
    assert!(
        one(&diags)
            .message
            .contains("`disk` is not a node attribute"),
        "{diags:?}"
    );

    // Valid ones load, written the canonical way; replicas default to 1.
    let tenant = format!("{TENANT}  placement: {{ constraints: [\"node.labels.zone!=eu-2\"] }}\n");
    let mut files: Vec<SourceFile> = base()
        .into_iter()
        .filter(|f| f.path != "tenants/acme.yaml")
        .collect();
    files.push(file("tenants/acme.yaml", &tenant));
    let state = load(&files).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(
        state.tenants["acme"].constraints,
        ["node.labels.zone != eu-2"]
    );
    assert_eq!(state.plans["starter"].replicas, 1);
}

/// Hostile input: every class an adversarial probe found, several variants each.
mod adversarial;

#[test]
fn a_notification_is_read_with_its_defaults() {
    let state = state_with(
        "notifications/ops.yaml",
        "kind: Notification\nname: ops\nspec:\n  url: http://127.0.0.1:9000/hook\n  events: [tenant.failed, \"tenant.*\", tenant.failed]\n",
    );
    let n = &state.notifications["ops"];
    assert_eq!(n.url, "http://127.0.0.1:9000/hook");
    assert_eq!(
        n.events,
        vec!["tenant.failed", "tenant.*"],
        "duplicates dropped"
    );
    assert_eq!(
        (n.secret_env.as_deref(), n.format),
        (None, crate::model::NotificationFormat::Json)
    );
    assert_eq!(
        (n.origin.path.as_str(), n.origin.line),
        ("notifications/ops.yaml", 2)
    );
    let slack = state_with(
        "notifications/chat.yaml",
        "kind: Notification\nname: chat\nspec:\n  url: https://hooks.example/x\n  events: [drift]\n  secretEnv: CHAT_SECRET\n  format: slack\n",
    );
    let n = &slack.notifications["chat"];
    assert_eq!(n.secret_env.as_deref(), Some("CHAT_SECRET"));
    assert_eq!(n.format, crate::model::NotificationFormat::Slack);
}

#[test]
fn a_bad_notification_is_refused_where_it_stands() {
    let path = "notifications/ops.yaml";
    let d = errors_with(
        path,
        "kind: Notification\nname: ops\nspec:\n  url: ftp://hooks.example/x\n  events: [tenant.failed, Tenant.Degraded]\n  secretEnv: my secret\n  format: teams\n",
    );
    assert_eq!(d.len(), 4, "{d:#?}");
    assert_at(&d[0], path, 4, 8, "scheme `ftp`");
    assert_at(&d[1], path, 5, 27, "event `Tenant.Degraded`");
    assert_at(&d[2], path, 6, 14, "secretEnv `my secret`");
    assert_at(&d[3], path, 7, 11, "format `teams`");
    let d = errors_with(
        path,
        "kind: Notification\nname: ops\nspec:\n  url: http://x.example/\n  events: []\n  colour: red\n",
    );
    assert_at(one(&d), path, 6, 3, "unknown field `colour`");
    let d = errors_with(
        path,
        "kind: Notification\nname: ops\nspec:\n  url: http://x.example/\n  events: []\n",
    );
    assert_at(one(&d), path, 2, 7, "events is empty");
    // A notification under tenants/ is in the wrong place.
    let d = errors_with(
        "tenants/ops.yaml",
        "kind: Notification\nname: ops\nspec:\n  url: http://x.example/\n  events: [drift]\n",
    );
    assert!(
        one(&d).message.contains("does not belong under tenants/"),
        "{d:#?}"
    );
}

const EDGE: &str = "kind: Edge
name: edge
spec:
  http: 127.0.0.1:8080
  https: 127.0.0.1:8443
  baseDomain: tenants.localhost
  tls: { mode: internal }
";

#[test]
fn an_edge_loads_with_its_defaults_and_urls() {
    let state = state_with("edge/edge.yaml", EDGE);
    let edge = state.edge.as_ref().expect("an edge");
    assert_eq!(edge.http, "127.0.0.1:8080");
    assert_eq!(edge.https.as_deref(), Some("127.0.0.1:8443"));
    assert_eq!(edge.admin, crate::model::EDGE_ADMIN_DEFAULT);
    assert_eq!(edge.tls, crate::model::EdgeTls::Internal);
    let acme = &state.tenants["acme"];
    assert_eq!(
        edge.hosts_of(acme),
        ["acme.example.com", "acme.tenants.localhost"]
    );
    assert_eq!(
        edge.url_of(acme).as_deref(),
        Some("https://acme.example.com:8443/")
    );
    // Without an edge file, nothing has one.
    assert!(load(&base()).unwrap().edge.is_none());
    // HTTP only, on the scheme's own port: no port in the URL.
    let plain = state_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec: { http: 0.0.0.0:80, baseDomain: t.example }\n",
    );
    let edge = plain.edge.as_ref().expect("an edge");
    assert_eq!(edge.tls, crate::model::EdgeTls::None);
    assert_eq!(
        edge.url_of(&plain.tenants["acme"]).as_deref(),
        Some("http://acme.example.com/")
    );
}

#[test]
fn edge_mistakes_point_at_their_line() {
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: localhost\n",
    );
    assert_at(
        one(&d),
        "edge/edge.yaml",
        4,
        9,
        "http: `localhost` is not an address",
    );
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  admin: 0.0.0.0:9180\n",
    );
    assert_at(one(&d), "edge/edge.yaml", 5, 10, "not a loopback address");
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  https: 127.0.0.1:8080\n",
    );
    assert_at(one(&d), "edge/edge.yaml", 5, 10, "as http does");
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  tls: { mode: acme }\n",
    );
    assert!(
        d.iter().any(|d| d.message.contains("needs `email`")),
        "{d:#?}"
    );
    assert!(
        d.iter().any(|d| d.message.contains("needs an `https`")),
        "{d:#?}"
    );
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  https: 127.0.0.1:8443\n  tls: { mode: selfsigned }\n",
    );
    assert_at(
        one(&d),
        "edge/edge.yaml",
        6,
        16,
        "not one of none, internal, files, acme",
    );
    let d = errors_with(
        "edge/edge.yaml",
        "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  port: 1\n",
    );
    assert_eq!(one(&d).path, "edge/edge.yaml");
}

/// An edge with `tls: files` naming edge/acme.pem and edge/acme.key for acme's two hosts.
const EDGE_FILES: &str = "kind: Edge
name: edge
spec:
  http: 127.0.0.1:8080
  https: 127.0.0.1:8443
  baseDomain: tenants.localhost
  tls:
    mode: files
    certificates:
      - hosts: [acme.example.com, acme.tenants.localhost]
        cert: edge/acme.pem
        key: edge/acme.key
";

/// `base()`, the files-mode edge (with `edge` as its text) and these PEM files.
fn load_files_edge(edge: &str, pems: &[(&str, &str)]) -> Result<DesiredState, Vec<Diagnostic>> {
    let mut files = base();
    files.push(file("edge/edge.yaml", edge));
    for (path, text) in pems {
        files.push(file(path, text));
    }
    load(&files)
}

#[test]
fn tls_files_reads_the_certificates_from_the_revision() {
    let (cert, key) = crate::testing::self_signed(&["acme.example.com", "*.tenants.localhost"]);
    let state = load_files_edge(
        EDGE_FILES,
        &[("edge/acme.pem", &cert), ("edge/acme.key", &key)],
    )
    .unwrap_or_else(|d| panic!("{d:#?}"));
    let crate::model::EdgeTls::Files(files) = &state.edge.as_ref().expect("edge").tls else {
        panic!("files mode");
    };
    assert_eq!(
        (files[0].cert.as_str(), files[0].key.as_str()),
        ("edge/acme.pem", "edge/acme.key")
    );
    assert_eq!(
        (files[0].cert_pem.as_str(), files[0].key_pem.as_str()),
        (cert.as_str(), key.as_str())
    );
    assert!(
        !format!("{state:?}").contains("PRIVATE KEY"),
        "a key never reaches Debug"
    );
}

#[test]
fn tls_files_mistakes_point_at_the_edge_file_line() {
    let (cert, key) = crate::testing::self_signed(&["acme.example.com", "acme.tenants.localhost"]);
    let (_, other_key) = crate::testing::self_signed(&["acme.example.com"]);
    // The key is not in the repository.
    let d = load_files_edge(EDGE_FILES, &[("edge/acme.pem", &cert)]).expect_err("missing key");
    assert_at(
        one(&d),
        "edge/edge.yaml",
        12,
        14,
        "key file `edge/acme.key` is not in the repository",
    );
    // A key of another certificate.
    let d = load_files_edge(
        EDGE_FILES,
        &[("edge/acme.pem", &cert), ("edge/acme.key", &other_key)],
    )
    .expect_err("foreign key");
    assert_at(
        one(&d),
        "edge/edge.yaml",
        12,
        14,
        "key `edge/acme.key` does not belong to certificate `edge/acme.pem`",
    );
    // Not PEM at all.
    let d = load_files_edge(
        EDGE_FILES,
        &[("edge/acme.pem", "hello"), ("edge/acme.key", &key)],
    )
    .expect_err("not pem");
    assert_at(
        one(&d),
        "edge/edge.yaml",
        11,
        15,
        "holds no PEM certificate",
    );
    // A file outside edge/ (or outside the repository) is refused where it is named.
    let outside = EDGE_FILES.replace("cert: edge/acme.pem", "cert: /etc/ssl/acme.pem");
    let d = load_files_edge(&outside, &[("edge/acme.key", &key)]).expect_err("outside");
    assert_at(
        one(&d),
        "edge/edge.yaml",
        11,
        15,
        "is not a PEM file under edge/",
    );
    // A host the certificate does not name.
    let narrow = crate::testing::self_signed(&["acme.example.com"]);
    let d = load_files_edge(
        EDGE_FILES,
        &[("edge/acme.pem", &narrow.0), ("edge/acme.key", &narrow.1)],
    )
    .expect_err("not valid for the host");
    assert_at(
        one(&d),
        "edge/edge.yaml",
        10,
        35,
        "is not valid for `acme.tenants.localhost` (it names acme.example.com)",
    );
    // A tenant's domain without a certificate: at the tenant's domain line.
    let fewer = EDGE_FILES.replace(
        "hosts: [acme.example.com, acme.tenants.localhost]",
        "hosts: [acme.tenants.localhost]",
    );
    let d = load_files_edge(&fewer, &[("edge/acme.pem", &cert), ("edge/acme.key", &key)])
        .expect_err("a domain without a certificate");
    assert_at(
        one(&d),
        "tenants/acme.yaml",
        9,
        11,
        "host `acme.example.com` of tenant `acme` has no certificate",
    );
}

#[test]
fn a_second_edge_is_refused() {
    let mut files = base();
    files.push(file("edge/edge.yaml", EDGE));
    files.push(file(
        "edge/other.yaml",
        "kind: Edge\nname: other\nspec: { http: 127.0.0.1:9090 }\n",
    ));
    let d = load(&files).expect_err("two edges");
    assert!(
        d.iter().any(|d| d.path == "edge/other.yaml"
            && d.message
                .contains("a second Edge; the first is at edge/edge.yaml:2:7")),
        "{d:#?}"
    );
}

#[test]
fn a_domain_that_is_another_tenants_edge_host_is_refused() {
    let mut files = base();
    files.push(file("edge/edge.yaml", EDGE));
    files.push(file(
        "tenants/beta.yaml",
        "kind: Tenant\nname: beta\nspec:\n  displayName: Beta\n  owner: ops@beta.example\n  plan: starter\n  theme: modern\n  domain: acme.tenants.localhost\n",
    ));
    let d = load(&files).expect_err("a shared host");
    assert_at(
        one(&d),
        "tenants/beta.yaml",
        8,
        11,
        "domain `acme.tenants.localhost` of tenant `beta` is the edge host of tenant `acme`",
    );
}

// ---- a tenant's features over its plan's ----

fn tenant_features(features: &str) -> String {
    format!("{TENANT}  features: {features}\n")
}

#[test]
fn tenant_features_add_and_remove_over_the_plan() {
    let state = state_with(
        "tenants/acme.yaml",
        &tenant_features("{ add: [beta, reports], remove: [webhooks] }"),
    );
    let t = &state.tenants["acme"];
    assert_eq!(t.features, ["beta", "reports"]);
    assert_eq!(t.features_removed, ["webhooks"]);
    let effective = crate::model::effective_features(&state.plans["starter"], t);
    assert_eq!(
        effective,
        [
            ("beta".to_string(), "tenant"),
            ("reports".to_string(), "tenant")
        ]
    );
    // The list form adds, as before; a flag the plan has stays the plan's.
    let state = state_with("tenants/acme.yaml", &tenant_features("[beta, webhooks]"));
    let t = &state.tenants["acme"];
    assert!(t.features_removed.is_empty());
    assert_eq!(
        crate::model::effective_features(&state.plans["starter"], t),
        [
            ("beta".to_string(), "tenant"),
            ("webhooks".to_string(), "plan")
        ]
    );
    let state = state_with("tenants/acme.yaml", &tenant_features("{}"));
    assert!(state.tenants["acme"].features.is_empty());
}

#[test]
fn tenant_features_errors_point_at_the_entry() {
    let d = errors_with("tenants/acme.yaml", &tenant_features("{ remove: [sso] }"));
    assert_at(
        one(&d),
        "tenants/acme.yaml",
        11,
        24,
        "tenant `acme` removes feature `sso`, which its plan `starter` does not have",
    );
    assert!(
        one(&d)
            .to_string()
            .contains("plan `starter` has `webhooks`"),
        "{}",
        one(&d)
    );

    let d = errors_with(
        "tenants/acme.yaml",
        &tenant_features("{ add: [beta], remove: [beta] }"),
    );
    assert_at(
        one(&d),
        "tenants/acme.yaml",
        11,
        37,
        "feature `beta` is both added and removed",
    );

    let d = errors_with("tenants/acme.yaml", &tenant_features("{ add: [Beta_1] }"));
    assert!(one(&d).message.contains("invalid feature name"), "{d:?}");

    let d = errors_with("tenants/acme.yaml", &tenant_features("{ add: [a, a] }"));
    assert!(one(&d).message.contains("listed twice"), "{d:?}");

    let d = errors_with(
        "tenants/acme.yaml",
        &tenant_features("{ drop: [webhooks] }"),
    );
    assert!(one(&d).message.contains("drop"), "{d:?}");
    assert_eq!(one(&d).line, 11, "{d:?}");
}
