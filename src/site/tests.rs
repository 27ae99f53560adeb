use super::clock::{civil, days_from_civil, month_key, next_month_start, rfc3339};
use super::health::parse_url;
use super::meter::{Decision, Meter, Quota, SlidingWindow, retry_after_secs};
use super::page::{css_class, css_color, css_font_stack, render};
use super::server::{KEY_DIGEST_HEADER, key_matches, presented_key};
use super::throttle::FailedKeys;
use super::usage::UsageStore;
use super::*;
use hyper::header::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const KEY: &str = "tk_live_0123456789abcdef0123456789abcdef";
/// 2025-01-31T23:59:00Z: a minute before a month boundary.
const JAN_31_23_59: i64 = 1_738_367_940;
/// 2025-02-01T00:00:00Z.
const FEB_1: i64 = 1_738_368_000;

fn key_hash() -> String {
    hex::encode(Sha256::digest(KEY.as_bytes()))
}

/// The environment `desired_env` gives a professional tenant on the modern theme.
fn env() -> Vec<(String, String)> {
    [
        ("PORT", "8080"),
        ("TENANT_SLUG", "acme"),
        ("TENANT_NAME", "Acme & Co"),
        ("TENANT_PLAN", "professional"),
        ("TENANT_THEME", "modern"),
        ("TENANT_DOMAIN", "acme.example.com"),
        ("TENANT_FEATURES", "beta-checkout,custom-domain,webhooks"),
        ("PLAN_RATE_LIMIT_RPM", "300"),
        ("PLAN_API_CALLS_PER_MONTH", "100000"),
        ("PLAN_AI_INTERACTIONS_PER_MONTH", "10000"),
        ("PLAN_USERS", "100"),
        ("THEME_NAME", "modern"),
        ("THEME_DISPLAY_NAME", "Upfront Modern"),
        ("THEME_VERSION", "1.2.0"),
        ("THEME_PRIMARY_COLOR", "#0f62fe"),
        ("THEME_FONT", "Inter"),
        ("THEME_LAYOUT", "grid"),
        ("SITE_DATA_DIR", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `env()` with `changes` applied: `Some(v)` sets, `None` removes.
fn env_with(changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut vars = env();
    for (k, v) in changes {
        vars.retain(|(name, _)| name != k);
        if let Some(v) = v {
            vars.push((k.to_string(), v.to_string()));
        }
    }
    vars
}

fn config(changes: &[(&str, Option<&str>)]) -> SiteConfig {
    let hash = key_hash();
    let mut all = vec![("TENANT_API_KEY_SHA256", Some(hash.as_str()))];
    all.extend_from_slice(changes);
    SiteConfig::from_vars(env_with(&all)).expect("valid config")
}

fn problems(changes: &[(&str, Option<&str>)]) -> Vec<String> {
    SiteConfig::from_vars(env_with(changes))
        .expect_err("invalid config")
        .problems
}

// ---- configuration ----

#[test]
fn config_reads_the_desired_env_contract() {
    let c = config(&[]);
    assert_eq!(c.port, 8080);
    assert_eq!(c.tenant_slug, "acme");
    assert_eq!(c.tenant_name, "Acme & Co");
    assert_eq!(c.plan, "professional");
    assert_eq!(c.theme, "modern");
    assert_eq!(c.domain.as_deref(), Some("acme.example.com"));
    assert_eq!(c.features, ["beta-checkout", "custom-domain", "webhooks"]);
    assert_eq!(
        c.limits,
        Limits {
            rate_limit_rpm: Some(300),
            api_calls_per_month: Some(100_000),
            ai_interactions_per_month: Some(10_000),
            users: Some(100),
        }
    );
    assert_eq!(c.theme_display_name, "Upfront Modern");
    assert_eq!(c.theme_version, "1.2.0");
    assert_eq!(
        c.theme_config.keys().collect::<Vec<_>>(),
        ["font", "layout", "primary_color"],
        "name, display name and version are not look settings"
    );
    assert_eq!(c.theme_value("primary_color"), Some("#0f62fe"));
    assert_eq!(
        c.api_key_sha256,
        Some(KeyHash(Sha256::digest(KEY.as_bytes()).into()))
    );
    assert_eq!(
        c.data_dir, None,
        "SITE_DATA_DIR set empty disables persistence"
    );
    assert_eq!(c.rate_window, Duration::from_secs(60));
    assert!(
        !format!("{c:?}").contains(&key_hash()),
        "Debug never shows the key hash"
    );
}

#[test]
fn config_defaults_for_optional_values() {
    let c = SiteConfig::from_vars([
        ("PORT", "9000"),
        ("TENANT_SLUG", "solo"),
        ("TENANT_PLAN", "starter"),
        ("TENANT_THEME", "minimal"),
        ("TENANT_FEATURES", " a, ,b,,"),
    ])
    .expect("valid");
    assert_eq!(c.tenant_name, "solo", "the name falls back to the slug");
    assert_eq!(c.theme_name, "minimal");
    assert_eq!(c.features, ["a", "b"]);
    assert_eq!(c.limits, Limits::default(), "no PLAN_* means unlimited");
    assert_eq!(c.api_key_sha256, None);
    assert_eq!(c.domain, None);
    assert_eq!(c.data_dir.as_deref(), Some(Path::new("/data")));
}

#[test]
fn config_reports_every_problem_at_once() {
    let p = problems(&[
        ("PORT", None),
        ("TENANT_SLUG", None),
        ("TENANT_PLAN", Some("")),
    ]);
    assert_eq!(
        p,
        [
            "PORT is not set",
            "TENANT_SLUG is not set",
            "TENANT_PLAN is empty"
        ]
    );
    let e = SiteConfig::from_vars(env_with(&[("PORT", None)])).expect_err("invalid");
    assert_eq!(e.to_string(), "invalid site configuration: PORT is not set");
}

#[test]
fn config_rejects_invalid_numbers_clearly() {
    let cases: [(&str, &str, &str); 9] = [
        (
            "PORT",
            "http",
            "PORT: `http` is not a port number (1-65535)",
        ),
        ("PORT", "0", "PORT: `0` is not a port number (1-65535)"),
        (
            "PORT",
            "70000",
            "PORT: `70000` is not a port number (1-65535)",
        ),
        (
            "PLAN_RATE_LIMIT_RPM",
            "fast",
            "PLAN_RATE_LIMIT_RPM: `fast` is not a whole number",
        ),
        (
            "PLAN_RATE_LIMIT_RPM",
            "0",
            "PLAN_RATE_LIMIT_RPM: `0` is below the minimum of 1",
        ),
        (
            "PLAN_RATE_LIMIT_RPM",
            "99999999999",
            "PLAN_RATE_LIMIT_RPM: `99999999999` is too large",
        ),
        (
            "PLAN_API_CALLS_PER_MONTH",
            "-1",
            "PLAN_API_CALLS_PER_MONTH: `-1` is not a whole number",
        ),
        (
            "PLAN_AI_INTERACTIONS_PER_MONTH",
            "1e6",
            "PLAN_AI_INTERACTIONS_PER_MONTH: `1e6` is not a whole number",
        ),
        (
            "PLAN_USERS",
            "",
            "PLAN_USERS is set but empty; unset it for no limit, or give a whole number",
        ),
    ];
    for (key, value, message) in cases {
        assert_eq!(problems(&[(key, Some(value))]), [message], "{key}={value}");
    }
    let zero = config(&[("PLAN_AI_INTERACTIONS_PER_MONTH", Some("0"))]);
    assert_eq!(
        zero.limits.ai_interactions_per_month,
        Some(0),
        "a zero quota is a real limit: none allowed"
    );
}

#[test]
fn config_checks_the_key_hash_without_echoing_it() {
    let p = problems(&[("TENANT_API_KEY_SHA256", Some("not-a-hash-zzz"))]);
    assert_eq!(
        p,
        ["TENANT_API_KEY_SHA256 is not a SHA-256 in hex (64 hex digits; got 14 characters)"]
    );
    let c = config(&[("TENANT_API_KEY_SHA256", Some(""))]);
    assert_eq!(
        c.api_key_sha256, None,
        "empty means no key: the API answers 503"
    );
}

// ---- the page ----

#[test]
fn html_escape_covers_markup_and_attributes() {
    assert_eq!(
        html_escape(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
        "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
    );
    assert_eq!(html_escape("Café ☕"), "Café ☕");
}

#[test]
fn page_shows_the_theme_and_the_plan() {
    let (page, warnings) = render(&config(&[]));
    assert!(warnings.is_empty(), "{warnings:?}");
    for expected in [
        "<title>Acme &amp; Co</title>",
        "<h1>Acme &amp; Co</h1>",
        "--primary: #0f62fe",
        "--on-primary: #ffffff",
        "font-family: \"Inter\", system-ui, sans-serif",
        "class=\"theme-modern layout-grid\"",
        "<p class=\"plan\">professional</p>",
        "<li>beta-checkout</li><li>custom-domain</li><li>webhooks</li>",
        "<strong>300 requests per minute</strong>",
        "acme.example.com",
        "Upfront Modern 1.2.0",
    ] {
        assert!(page.contains(expected), "missing {expected:?} in\n{page}");
    }
}

#[test]
fn page_cannot_be_injected() {
    let (page, warnings) = render(&config(&[
        ("TENANT_NAME", Some("<script>alert(1)</script>")),
        ("TENANT_PLAN", Some("pro\"><img src=x>")),
        ("TENANT_FEATURES", Some("<b>bold</b>")),
        (
            "THEME_PRIMARY_COLOR",
            Some("red;}</style><script>alert(2)</script>"),
        ),
        ("THEME_FONT", Some("Inter, x}</style><script>")),
        ("THEME_LAYOUT", Some("\"><script>")),
        ("THEME_DISPLAY_NAME", Some("<i>")),
    ]));
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(!page.contains("<i>"), "{page}");
    assert!(page.contains("<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>"));
    assert!(page.contains("--primary: #334155"), "bad colour → default");
    assert!(page.contains("font-family: \"Inter\", system-ui, sans-serif"));
    assert!(page.contains("layout-script\""));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn css_values_are_checked() {
    for ok in [
        "#0f62fe",
        "#fff",
        "#0f62fe80",
        "rebeccapurple",
        "rgb(15, 98, 254)",
        "hsl(120deg 50% 50% / .5)",
    ] {
        assert_eq!(css_color(ok), Some(ok), "{ok}");
    }
    for bad in [
        "#12345",
        "#ggg",
        "red;}",
        "url(x)",
        "rgb(1,2,3));x",
        "expression(alert(1))",
        "",
        "light blue",
    ] {
        assert_eq!(css_color(bad), None, "{bad}");
    }
    assert_eq!(
        css_font_stack("'IBM Plex Sans', Serif").0,
        "\"IBM Plex Sans\", serif, system-ui, sans-serif"
    );
    assert_eq!(css_font_stack("system-ui").0, "system-ui, sans-serif");
    assert_eq!(css_font_stack("").0, "system-ui, sans-serif");
    assert_eq!(
        css_font_stack("a\";}b").1,
        ["a\";}b"],
        "unsafe family reported"
    );
    assert_eq!(css_class("Grid"), "grid");
    assert_eq!(css_class("Two Columns!"), "two-columns");
    assert_eq!(css_class("  "), "default");
    assert_eq!(css_class("<b>"), "b");
}

#[test]
fn light_primary_colour_gets_dark_text() {
    let (page, _) = render(&config(&[("THEME_PRIMARY_COLOR", Some("#ffeecc"))]));
    assert!(page.contains("--on-primary: #111111"));
}

// ---- time ----

#[test]
fn calendar_arithmetic() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_709_208_000), "2024-02-29T12:00:00Z");
    assert_eq!(rfc3339(FEB_1 - 1), "2025-01-31T23:59:59Z");
    assert_eq!(month_key(JAN_31_23_59), "2025-01");
    assert_eq!(month_key(FEB_1), "2025-02");
    assert_eq!(next_month_start(JAN_31_23_59), FEB_1);
    assert_eq!(
        rfc3339(next_month_start(1_734_000_000)),
        "2025-01-01T00:00:00Z"
    );
    assert_eq!(
        rfc3339(next_month_start(1_709_208_000)),
        "2024-03-01T00:00:00Z"
    );
    for day in (-800_000..800_000).step_by(997) {
        let c = civil(day * 86_400 + 3_723);
        assert_eq!(days_from_civil(c.year, c.month, c.day), day);
        assert_eq!((c.hour, c.minute, c.second), (1, 2, 3));
    }
}

// ---- rate limit, quotas, month ----

#[test]
fn sliding_window_admits_limit_per_window_and_says_when() {
    let s = Duration::from_secs;
    let mut w = SlidingWindow::new(3, s(60));
    assert_eq!(w.try_acquire(s(0)), Ok(()));
    assert_eq!(w.try_acquire(s(10)), Ok(()));
    assert_eq!(w.try_acquire(s(20)), Ok(()));
    assert_eq!(w.try_acquire(s(30)), Err(s(30)), "the first leaves at 60 s");
    assert_eq!(
        w.try_acquire(Duration::from_millis(59_500)),
        Err(Duration::from_millis(500))
    );
    assert_eq!(w.try_acquire(s(60)), Ok(()), "the first has left");
    assert_eq!(w.try_acquire(s(61)), Err(s(9)), "next the one from 10 s");

    // The sliding window has no boundary to burst across, unlike a fixed one.
    let mut w = SlidingWindow::new(2, s(60));
    assert_eq!(w.try_acquire(s(59)), Ok(()));
    assert_eq!(w.try_acquire(s(59)), Ok(()));
    assert_eq!(w.try_acquire(s(61)), Err(s(58)));
}

#[test]
fn retry_after_rounds_up_to_at_least_a_second() {
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1_200)), 2);
    assert_eq!(retry_after_secs(Duration::from_secs(57)), 57);
}

fn limits(rpm: Option<u32>, api: Option<u64>, ai: Option<u64>) -> Limits {
    Limits {
        rate_limit_rpm: rpm,
        api_calls_per_month: api,
        ai_interactions_per_month: ai,
        users: None,
    }
}

#[test]
fn meter_rate_limits_before_quotas() {
    let mut m = Meter::new(
        Counters::default(),
        limits(Some(2), Some(100), None),
        Duration::from_secs(60),
    );
    let t = Duration::from_secs(1);
    assert!(matches!(m.admit(t, FEB_1, false), Decision::Allowed { .. }));
    assert!(matches!(m.admit(t, FEB_1, false), Decision::Allowed { .. }));
    assert_eq!(
        m.admit(t, FEB_1, false),
        Decision::RateLimited {
            limit: 2,
            retry_after: Duration::from_secs(60)
        }
    );
    let c = m.snapshot(FEB_1);
    assert_eq!(
        (c.api_calls_total, c.api_calls_month, c.rate_limited_total),
        (2, 2, 1),
        "a rate-limited request is not a call"
    );
}

#[test]
fn meter_monthly_quotas_and_rollover() {
    let mut m = Meter::new(
        Counters::default(),
        limits(None, Some(3), Some(1)),
        Duration::from_secs(60),
    );
    let t = Duration::ZERO;
    assert_eq!(
        m.admit(t, JAN_31_23_59, true),
        Decision::Allowed {
            api_calls_month: 1,
            ai_interactions_month: 1
        }
    );
    assert_eq!(
        m.admit(t, JAN_31_23_59, true),
        Decision::QuotaExhausted {
            quota: Quota::AiInteractions,
            limit: 1,
            used: 1,
            month: "2025-01".into(),
            resets_at: FEB_1,
        }
    );
    assert!(
        matches!(
            m.admit(t, JAN_31_23_59, false),
            Decision::Allowed {
                api_calls_month: 2,
                ..
            }
        ),
        "a plain call still fits"
    );
    assert!(matches!(
        m.admit(t, JAN_31_23_59, false),
        Decision::Allowed { .. }
    ));
    assert!(matches!(
        m.admit(t, JAN_31_23_59, false),
        Decision::QuotaExhausted {
            quota: Quota::ApiCalls,
            limit: 3,
            used: 3,
            ..
        }
    ));
    let before = m.generation();
    m.unauthorized();
    assert!(m.generation() > before, "every change is a new generation");

    let jan = m.snapshot(FEB_1 - 1);
    assert_eq!(
        jan,
        Counters {
            month: "2025-01".into(),
            api_calls_total: 3,
            api_calls_month: 3,
            ai_interactions_month: 1,
            rate_limited_total: 0,
            unauthorized_total: 1,
            quota_rejections_total: 2,
        }
    );
    // A new month: month counters start again, totals carry on.
    assert!(matches!(
        m.admit(t, FEB_1, true),
        Decision::Allowed {
            api_calls_month: 1,
            ai_interactions_month: 1
        }
    ));
    let feb = m.snapshot(FEB_1);
    assert_eq!(feb.month, "2025-02");
    assert_eq!(feb.api_calls_total, 4);
    assert_eq!(feb.quota_rejections_total, 2);
}

#[test]
fn zero_quota_refuses_every_call() {
    let mut m = Meter::new(
        Counters::default(),
        limits(None, Some(0), None),
        Duration::from_secs(60),
    );
    assert!(matches!(
        m.admit(Duration::ZERO, FEB_1, false),
        Decision::QuotaExhausted { .. }
    ));
}

// ---- API keys ----

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

#[test]
fn key_is_read_from_either_header() {
    let k = |pairs| presented_key(&headers(pairs)).map(|b| String::from_utf8_lossy(b).into_owned());
    assert_eq!(
        k(&[("authorization", "Bearer abc")]).as_deref(),
        Some("abc")
    );
    assert_eq!(
        k(&[("authorization", "bearer  abc ")]).as_deref(),
        Some("abc")
    );
    assert_eq!(k(&[("x-api-key", "xyz")]).as_deref(), Some("xyz"));
    assert_eq!(
        k(&[("authorization", "Bearer abc"), ("x-api-key", "xyz")]).as_deref(),
        Some("abc"),
        "Authorization first"
    );
    assert_eq!(
        k(&[("authorization", "Basic dXNlcg=="), ("x-api-key", "xyz")]).as_deref(),
        Some("xyz"),
        "another scheme is not a key"
    );
    assert_eq!(k(&[("authorization", "Basic dXNlcg==")]), None);
    assert_eq!(k(&[("authorization", "Bearer ")]), None);
    assert_eq!(k(&[("x-api-key", "")]), None);
    assert_eq!(k(&[]), None);
}

#[test]
fn key_check_compares_hashes() {
    let expected = KeyHash(Sha256::digest(KEY.as_bytes()).into());
    assert!(key_matches(KEY.as_bytes(), &expected));
    assert!(!key_matches(b"tk_live_wrong", &expected));
    assert!(!key_matches(b"", &expected));
    assert!(
        !key_matches(key_hash().as_bytes(), &expected),
        "the hash itself is not the key"
    );
}

// ---- persistence ----

#[test]
fn counters_file_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = UsageStore::open(dir.path(), "acme").expect("dir exists");
    assert_eq!(store.load(), Ok(None), "no file yet");
    let counters = Counters {
        month: "2025-02".into(),
        api_calls_total: 41,
        api_calls_month: 7,
        ai_interactions_month: 3,
        rate_limited_total: 2,
        unauthorized_total: 5,
        quota_rejections_total: 1,
    };
    store
        .save(&counters, "2025-02-03T04:05:06Z")
        .expect("writable");
    assert_eq!(store.load(), Ok(Some(counters.clone())));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["usage.json"], "no temporary file left behind");

    let other = UsageStore::open(dir.path(), "globex").expect("dir exists");
    let e = other.load().expect_err("another tenant's file");
    assert!(e.contains("tenant `acme`, not `globex`"), "{e}");

    std::fs::write(dir.path().join("usage.json"), b"{ half").expect("write");
    let e = store.load().expect_err("corrupt");
    assert!(e.contains("moved to"), "{e}");
    assert!(dir.path().join("usage.json.corrupt").exists());
    assert_eq!(store.load(), Ok(None));

    let missing = dir.path().join("nope");
    assert!(UsageStore::open(&missing, "acme").is_err());
    let file = dir.path().join("usage.json.corrupt");
    assert!(
        UsageStore::open(&file, "acme")
            .expect_err("a file")
            .contains("not a directory")
    );
}

// ---- the server, over real sockets ----

struct Running {
    addr: std::net::SocketAddr,
    clock: Arc<ManualClock>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), SiteError>>,
}

impl Running {
    async fn start(config: SiteConfig) -> Running {
        Self::start_at(config, JAN_31_23_59).await
    }

    async fn start_at(config: SiteConfig, unix: i64) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let clock = Arc::new(ManualClock::new(unix));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(
            listener,
            config,
            clock.clone() as Arc<dyn Clock>,
            async move {
                let _ = stopped.await;
            },
        ));
        Running {
            addr,
            clock,
            stop,
            task,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.addr, "GET", path, headers).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("stops promptly")
            .expect("no panic")
            .expect("serve returns Ok");
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// One request on a fresh connection, read to its close.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

#[tokio::test]
async fn serves_page_health_api_and_usage() {
    let site = Running::start(config(&[])).await;

    let page = site.get("/", &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("<h1>Acme &amp; Co</h1>"));
    assert!(page.body.contains("layout-grid"));
    assert!(page.header("content-security-policy").is_some());

    let health = site.get("/health", &[]).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    assert_eq!(health.body, "{\"status\":\"ok\",\"tenant\":\"acme\"}\n");

    let missing = site.get("/api/ping", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"], "missing API key");
    assert!(missing.header("www-authenticate").is_some());
    let wrong = site
        .get("/api/ping", &[("Authorization", "Bearer nope")])
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"], "invalid API key");

    let bearer = format!("Bearer {KEY}");
    let ping = site
        .get("/api/ping", &[("Authorization", bearer.as_str())])
        .await;
    assert_eq!(ping.status, 200);
    assert_eq!(
        ping.json(),
        serde_json::json!({"ok": true, "tenant": "acme", "plan": "professional"})
    );
    let ping = site.get("/api/ping", &[("X-API-Key", KEY)]).await;
    assert_eq!(ping.status, 200);
    let unknown = site.get("/api/nothing", &[("X-API-Key", KEY)]).await;
    assert_eq!(unknown.status, 404, "known key, unknown endpoint");
    let ai = request(site.addr, "POST", "/api/ai/chat", &[("X-API-Key", KEY)]).await;
    assert_eq!(ai.status, 200);
    assert_eq!(ai.json()["ai_interactions_month"], 1);

    assert_eq!(site.get("/nope", &[]).await.status, 404);
    let post = request(site.addr, "POST", "/", &[]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = request(site.addr, "HEAD", "/", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "", "HEAD has no body");

    let usage = site.get("/usage", &[("X-API-Key", KEY)]).await;
    assert_eq!(usage.status, 200);
    let u = usage.json();
    assert_eq!(u["tenant"], "acme");
    assert_eq!(u["month"], "2025-01");
    assert_eq!(u["api_calls_total"], 4);
    assert_eq!(u["api_calls_month"], 4);
    assert_eq!(u["ai_interactions_month"], 1);
    assert_eq!(u["unauthorized_total"], 2);
    assert_eq!(u["rate_limited_total"], 0);
    assert_eq!(u["quota_rejections_total"], 0);
    assert_eq!(u["started_at"], "2025-01-31T23:59:00Z");
    assert_eq!(u["limits"]["rate_limit_rpm"], 300);
    assert_eq!(u["limits"]["api_calls_per_month"], 100_000);
    assert_eq!(u["persisted"], false);
    assert!(!usage.body.contains(&key_hash()), "no secrets in /usage");
    site.stop().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let site = Running::start(config(&[("PLAN_RATE_LIMIT_RPM", Some("3"))])).await;
    let key = [("X-API-Key", KEY)];
    for _ in 0..3 {
        assert_eq!(site.get("/api/ping", &key).await.status, 200);
    }
    let limited = site.get("/api/ping", &key).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("60"));
    assert_eq!(limited.json()["error"], "rate limit exceeded");
    assert_eq!(limited.json()["limit"], 3);

    site.clock.advance(Duration::from_secs(45));
    let limited = site.get("/api/ping", &key).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("15"));

    site.clock.advance(Duration::from_secs(15));
    assert_eq!(site.get("/api/ping", &key).await.status, 200);

    let u = site.get("/usage", &[("X-API-Key", KEY)]).await.json();
    assert_eq!(u["api_calls_total"], 4);
    assert_eq!(u["rate_limited_total"], 2);
    site.stop().await;
}

#[tokio::test]
async fn monthly_quotas_answer_429_until_the_month_turns() {
    let site = Running::start(config(&[
        ("PLAN_API_CALLS_PER_MONTH", Some("3")),
        ("PLAN_AI_INTERACTIONS_PER_MONTH", Some("1")),
    ]))
    .await;
    let key = [("X-API-Key", KEY)];
    assert_eq!(site.get("/api/ai/complete", &key).await.status, 200);
    let ai = site.get("/api/ai/complete", &key).await;
    assert_eq!(ai.status, 429);
    assert_eq!(ai.json()["error"], "monthly AI interaction quota exhausted");
    assert_eq!(site.get("/api/ping", &key).await.status, 200);
    assert_eq!(site.get("/api/ping", &key).await.status, 200);
    let over = site.get("/api/ping", &key).await;
    assert_eq!(over.status, 429);
    let body = over.json();
    assert_eq!(body["error"], "monthly API quota exhausted");
    assert_eq!(body["limit"], 3);
    assert_eq!(body["used"], 3);
    assert_eq!(body["month"], "2025-01");
    assert_eq!(body["resets_at"], "2025-02-01T00:00:00Z");
    assert_eq!(
        over.header("retry-after"),
        Some("60"),
        "until the month ends"
    );

    site.clock.set_unix_seconds(FEB_1 + 5);
    assert_eq!(site.get("/api/ai/complete", &key).await.status, 200);
    let u = site.get("/usage", &[("X-API-Key", KEY)]).await.json();
    assert_eq!(u["month"], "2025-02");
    assert_eq!(u["api_calls_month"], 1);
    assert_eq!(u["ai_interactions_month"], 1);
    assert_eq!(u["api_calls_total"], 4);
    assert_eq!(u["quota_rejections_total"], 2);
    site.stop().await;
}

#[tokio::test]
async fn usage_needs_the_key_or_its_digest() {
    let site = Running::start(config(&[])).await;
    let anonymous = site.get("/usage", &[]).await;
    assert_eq!(anonymous.status, 401);
    assert!(!anonymous.body.contains("api_calls"), "{}", anonymous.body);
    assert_eq!(
        site.get("/usage", &[("X-API-Key", "tk_wrong")])
            .await
            .status,
        401
    );
    let digest = key_hash();
    let by_digest = site
        .get("/usage", &[(KEY_DIGEST_HEADER, digest.as_str())])
        .await;
    assert_eq!(by_digest.status, 200);
    assert_eq!(by_digest.json()["tenant"], "acme");
    let wrong_digest = "0".repeat(64);
    assert_eq!(
        site.get("/usage", &[(KEY_DIGEST_HEADER, wrong_digest.as_str())])
            .await
            .status,
        401
    );
    assert_eq!(
        site.get("/api/ping", &[(KEY_DIGEST_HEADER, digest.as_str())])
            .await
            .status,
        401,
        "the digest opens /usage only, never the API"
    );
    site.stop().await;
}

#[tokio::test]
async fn every_response_forbids_framing_and_sniffing() {
    let site = Running::start(config(&[])).await;
    let bearer = format!("Bearer {KEY}");
    let replies = [
        site.get("/", &[]).await,
        site.get("/health", &[]).await,
        site.get("/nope", &[]).await,
        site.get("/usage", &[]).await,
        site.get("/api/ping", &[("Authorization", bearer.as_str())])
            .await,
        request(site.addr, "POST", "/", &[]).await,
    ];
    for r in &replies {
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{r:?}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{r:?}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{r:?}");
        assert!(
            r.header("content-security-policy")
                .is_some_and(|c| c.contains("frame-ancestors 'none'")),
            "{r:?}"
        );
    }
    site.stop().await;
}

#[tokio::test]
async fn wrong_keys_from_one_address_are_throttled_without_checking_the_key() {
    let site = Running::start(config(&[])).await;
    for _ in 0..super::throttle::FAILURES {
        let r = site.get("/api/ping", &[("X-API-Key", "tk_guess")]).await;
        assert_eq!(r.status, 401);
    }
    // Now even the right key is not looked at: the address waits out the window.
    for path in ["/api/ping", "/usage"] {
        let r = site.get(path, &[("X-API-Key", KEY)]).await;
        assert_eq!(r.status, 429, "{path}");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    assert_eq!(
        site.get("/health", &[]).await.status,
        200,
        "the site serves"
    );
    assert_eq!(site.get("/", &[]).await.status, 200);
    site.clock.advance(super::throttle::WINDOW);
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        200
    );
    site.stop().await;
}

#[test]
fn the_throttle_counts_per_address_in_a_window_and_stays_bounded() {
    let s = Duration::from_secs;
    let mut t = FailedKeys::new(3, s(60), 4);
    let a: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let b: std::net::IpAddr = "192.0.2.2".parse().unwrap();
    for _ in 0..3 {
        assert_eq!(t.refused(a, s(1)), None);
        t.failed(a, s(1));
    }
    assert_eq!(t.refused(a, s(11)), Some(s(50)), "until the window ends");
    assert_eq!(t.refused(b, s(11)), None, "others are not refused");
    assert_eq!(t.refused(a, s(61)), None, "the window ended");
    // One host's IPv6 /64 counts as one client.
    let v6 = |x: &str| -> std::net::IpAddr { x.parse().unwrap() };
    for i in 0..3 {
        t.failed(v6(&format!("2001:db8:1:2::{i}")), s(100));
    }
    assert!(t.refused(v6("2001:db8:1:2::ffff"), s(100)).is_some());
    assert!(t.refused(v6("2001:db8:1:3::1"), s(100)).is_none());
    // Many addresses: at most `capacity` are remembered.
    for i in 0..1000u32 {
        t.failed(
            std::net::IpAddr::from(i.to_be_bytes()),
            s(200) + Duration::from_millis(i.into()),
        );
    }
    assert_eq!(t.len(), 4);
}

#[tokio::test]
async fn api_without_a_configured_key_answers_503() {
    let site = Running::start(config(&[("TENANT_API_KEY_SHA256", None)])).await;
    let r = site.get("/api/ping", &[("X-API-Key", KEY)]).await;
    assert_eq!(r.status, 503);
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("no API key is set"))
    );
    assert_eq!(
        site.get("/health", &[]).await.status,
        200,
        "the site still serves"
    );
    site.stop().await;
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("UTF-8 path");
    let cfg = || config(&[("SITE_DATA_DIR", Some(data))]);

    let site = Running::start(cfg()).await;
    assert_eq!(
        site.get("/usage", &[("X-API-Key", KEY)]).await.json()["persisted"],
        true
    );
    for _ in 0..2 {
        assert_eq!(
            site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
            200
        );
    }
    assert_eq!(site.get("/api/ping", &[]).await.status, 401);
    site.stop().await;

    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(USAGE_FILE)).expect("saved"))
            .expect("JSON");
    assert_eq!(saved["tenant"], "acme");
    assert_eq!(saved["counters"]["api_calls_total"], 2);
    assert_eq!(saved["counters"]["unauthorized_total"], 1);
    assert!(!saved.to_string().contains(&key_hash()));

    let site = Running::start_at(cfg(), JAN_31_23_59 + 30).await;
    let u = site.get("/usage", &[("X-API-Key", KEY)]).await.json();
    assert_eq!(u["api_calls_total"], 2);
    assert_eq!(u["api_calls_month"], 2);
    assert_eq!(u["unauthorized_total"], 1);
    assert_eq!(u["started_at"], "2025-01-31T23:59:30Z");
    site.stop().await;

    // Restarted in a new month: the month counters start again.
    let site = Running::start_at(cfg(), FEB_1 + 60).await;
    let u = site.get("/usage", &[("X-API-Key", KEY)]).await.json();
    assert_eq!(
        (u["api_calls_total"].as_u64(), u["api_calls_month"].as_u64()),
        (Some(2), Some(0))
    );
    site.stop().await;
}

#[tokio::test]
async fn counters_are_flushed_while_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("UTF-8 path");
    let mut cfg = config(&[("SITE_DATA_DIR", Some(data))]);
    cfg.persist_interval = Duration::from_millis(50);
    let site = Running::start(cfg).await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        200
    );
    let file = dir.path().join(USAGE_FILE);
    let mut seen = 0;
    for _ in 0..100 {
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).expect("saved")).expect("JSON");
        seen = saved["counters"]["api_calls_total"].as_u64().unwrap_or(0);
        if seen == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 1, "saved without a shutdown");
    site.stop().await;
}

#[tokio::test]
async fn a_missing_data_dir_only_disables_persistence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gone = dir.path().join("not-there");
    let site = Running::start(config(&[(
        "SITE_DATA_DIR",
        Some(gone.to_str().expect("UTF-8")),
    )]))
    .await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        200
    );
    assert_eq!(
        site.get("/usage", &[("X-API-Key", KEY)]).await.json()["persisted"],
        false
    );
    site.stop().await;
    assert!(!gone.exists());
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let site = Running::start(config(&[])).await;
    let mut s = TcpStream::connect(site.addr).await.expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("send");
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.expect("answer");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The connection stays open (keep-alive); stopping must not wait for the client.
    site.stop().await;
    let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closed the idle connection");
}

// ---- site-health ----

#[tokio::test]
async fn health_check_passes_on_2xx_only() {
    let site = Running::start(config(&[])).await;
    let base = format!("http://{}", site.addr);
    assert_eq!(
        health_check(&format!("{base}/health"), HEALTH_TIMEOUT).await,
        Ok(200)
    );
    let e = health_check(&format!("{base}/missing"), HEALTH_TIMEOUT)
        .await
        .expect_err("404");
    assert!(e.ends_with("HTTP 404 Not Found"), "{e}");
    let e = health_check(&format!("{base}/api/ping"), HEALTH_TIMEOUT)
        .await
        .expect_err("401");
    assert!(e.contains("401"), "{e}");
    site.stop().await;

    // Nothing listens any more.
    let e = health_check(&format!("{base}/health"), HEALTH_TIMEOUT)
        .await
        .expect_err("closed");
    assert!(e.contains("cannot connect"), "{e}");
}

#[tokio::test]
async fn health_check_times_out_on_a_silent_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    });
    let e = health_check(&format!("http://{addr}/health"), Duration::from_millis(200))
        .await
        .expect_err("timeout");
    assert!(e.contains("no answer within 0.2s"), "{e}");
    silent.abort();
}

/// A one-shot server on loopback that answers `raw` to the first request, then closes; the
/// task returns the request it read.
async fn answering_once(raw: &'static [u8]) -> (String, JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap_or(0);
        let _ = s.write_all(raw).await;
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (format!("http://{addr}/health?deep=1"), task)
}

#[tokio::test]
async fn health_check_speaks_http_through_hyper() {
    // The request: the path with its query, Host, the check's user agent, no keep-alive.
    let (url, asked) = answering_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    assert_eq!(health_check(&url, HEALTH_TIMEOUT).await, Ok(200));
    let request = asked.await.expect("server").to_lowercase();
    assert!(
        request.starts_with("get /health?deep=1 http/1.1\r\n"),
        "{request}"
    );
    for header in [
        "host: 127.0.0.1:",
        "user-agent: tenantctl-site-health",
        "connection: close",
    ] {
        assert!(request.contains(header), "{header} in {request}");
    }
    // The server's own reason phrase is kept in the message.
    let (url, _) = answering_once(b"HTTP/1.1 503 Warming Up\r\ncontent-length: 0\r\n\r\n").await;
    let e = health_check(&url, HEALTH_TIMEOUT).await.expect_err("503");
    assert!(e.ends_with("HTTP 503 Warming Up"), "{e}");
    // A 2xx with a body that never ends still passes at once: the status decides.
    let (url, _) =
        answering_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\npartial").await;
    assert_eq!(health_check(&url, HEALTH_TIMEOUT).await, Ok(200));
    // Not HTTP, and no answer at all.
    let (url, _) = answering_once(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
    let e = health_check(&url, HEALTH_TIMEOUT)
        .await
        .expect_err("not http");
    assert!(e.contains("not an HTTP/1.x answer"), "{e}");
    let (url, _) = answering_once(b"").await;
    let e = health_check(&url, HEALTH_TIMEOUT)
        .await
        .expect_err("closed");
    assert!(e.contains("closed without"), "{e}");
}

#[test]
fn health_urls() {
    let u = parse_url("http://127.0.0.1:8080/health").expect("valid");
    assert_eq!(
        (u.host.as_str(), u.port, u.target.as_str()),
        ("127.0.0.1", 8080, "/health")
    );
    let u = parse_url("HTTP://[::1]:9/x?y=1#frag").expect("valid");
    assert_eq!(
        (u.host.as_str(), u.port, u.target.as_str()),
        ("::1", 9, "/x?y=1")
    );
    let u = parse_url("http://localhost").expect("valid");
    assert_eq!((u.port, u.target.as_str()), (80, "/"));
    let u = parse_url("http://h:1?q").expect("valid");
    assert_eq!(u.target, "/?q");
    for (bad, why) in [
        ("https://127.0.0.1/", "only http://"),
        ("127.0.0.1:8080/health", "not a URL"),
        ("http://:8080/", "no host"),
        ("http://h:0/", "not a port number"),
        ("http://h:http/", "not a port number"),
        ("http://u:p@h/", "user names"),
        ("http://[::1/", "unclosed"),
        ("http://h/a b", "spaces"),
    ] {
        let e = parse_url(bad).expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn site_health_exit_codes() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        for answer in [
            "HTTP/1.1 204 No Content\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\n\r\n",
        ] {
            let (mut s, _) = listener.accept().expect("accept");
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    let url = format!("http://{addr}/health");
    assert_eq!(run_health(&url), std::process::ExitCode::SUCCESS);
    assert_eq!(run_health(&url), std::process::ExitCode::from(1));
    server.join().expect("server thread");
    assert_eq!(
        run_health(&url),
        std::process::ExitCode::from(1),
        "nothing listens"
    );
    assert_eq!(run_health("ftp://x/"), std::process::ExitCode::from(1));
}

mod access;
