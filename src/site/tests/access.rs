//! The access file (keys and flags learned while running), the rate-limit headers and request
//! ids, over real sockets.

use super::*;
use crate::access::{ACCESS_FILE, AccessFeature, AccessFile, AccessKey, FORMAT};
use crate::site::server::{REQUEST_ID_HEADER, request_id};

const CI: &str = "tk_ci_0123456789abcdef0123456789abcdef0123";

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn key(name: &str, k: &str, expires_at: Option<i64>, revoked_at: Option<i64>) -> AccessKey {
    AccessKey {
        id: digest(k)[..16].to_string(),
        name: name.into(),
        sha256: digest(k),
        expires_at,
        revoked_at,
    }
}

fn write(dir: &Path, keys: Vec<AccessKey>, flags: &[(&str, &str)]) {
    let file = AccessFile {
        format: FORMAT,
        tenant: "acme".into(),
        keys,
        features: flags
            .iter()
            .map(|(f, s)| AccessFeature {
                flag: f.to_string(),
                source: s.to_string(),
            })
            .collect(),
    };
    // As the engine's extraction does: the old file goes, the new one is written.
    let path = dir.join(ACCESS_FILE);
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
}

/// Polls `/api/features` with `key` (a live one: polling with a wrong key would trip the
/// throttle) until the site serves `flag`, i.e. has read the newest file.
async fn until_flag(site: &Running, key: &str, flag: &str) {
    for _ in 0..50 {
        if site
            .get("/api/features", &[("X-API-Key", key)])
            .await
            .body
            .contains(flag)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the site never served flag {flag}");
}

#[tokio::test]
async fn keys_and_flags_come_from_the_access_file_and_change_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().unwrap();
    write(
        dir.path(),
        vec![key("default", KEY, None, None)],
        &[("beta", "tenant"), ("webhooks", "plan")],
    );
    let site = Running::start(config(&[("SITE_DATA_DIR", Some(data))])).await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        200
    );
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", CI)]).await.status,
        401
    );
    let f = site.get("/api/features", &[("X-API-Key", KEY)]).await;
    assert_eq!(f.status, 200);
    assert_eq!(
        f.json()["features"],
        serde_json::json!([
            {"flag": "beta", "source": "tenant"},
            {"flag": "webhooks", "source": "plan"},
        ])
    );
    assert_eq!(f.json()["from"], "access-file");
    assert_eq!(site.get("/api/features", &[]).await.status, 401);

    // A second key, then the first revoked: learned without a restart.
    write(
        dir.path(),
        vec![key("default", KEY, None, None), key("ci", CI, None, None)],
        &[("second", "tenant")],
    );
    until_flag(&site, KEY, "second").await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", CI)]).await.status,
        200
    );
    write(
        dir.path(),
        vec![
            key("default", KEY, None, Some(JAN_31_23_59 - 1)),
            key("ci", CI, None, None),
        ],
        &[("third", "tenant")],
    );
    until_flag(&site, CI, "third").await;
    let r = site.get("/api/ping", &[("X-API-Key", KEY)]).await;
    assert_eq!(r.json()["error"], "API key revoked");

    // A half-written file leaves the last one in force.
    std::fs::write(dir.path().join(ACCESS_FILE), b"{\"format\": 1, \"ten").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", CI)]).await.status,
        200
    );
    // Another tenant's file too.
    let other =
        serde_json::json!({"format": FORMAT, "tenant": "globex", "keys": [], "features": []});
    std::fs::write(dir.path().join(ACCESS_FILE), other.to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", CI)]).await.status,
        200
    );

    // A key expires and a rotation's grace ends by the clock, with no new file.
    write(
        dir.path(),
        vec![
            key("ci", CI, Some(JAN_31_23_59 + 30), None),
            key("default", KEY, None, Some(JAN_31_23_59 + 60)),
        ],
        &[("fourth", "tenant")],
    );
    until_flag(&site, CI, "fourth").await;
    site.clock.set_unix_seconds(JAN_31_23_59 + 30);
    let r = site.get("/api/ping", &[("X-API-Key", CI)]).await;
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (401, "API key expired".into())
    );
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        200
    );
    site.clock.set_unix_seconds(JAN_31_23_59 + 60);
    assert_eq!(
        site.get("/api/ping", &[("X-API-Key", KEY)]).await.status,
        401
    );

    // Last use per key id, for the meter (which sends the container's own digest).
    let u = site
        .get("/usage", &[(KEY_DIGEST_HEADER, key_hash().as_str())])
        .await;
    assert_eq!(u.status, 200, "{}", u.body);
    let used = &u.json()["keys_last_used"];
    assert_eq!(used[&digest(CI)[..16]], JAN_31_23_59);
    assert!(used[&digest(KEY)[..16]].as_i64().is_some());
    assert!(!u.body.contains(&digest(CI)), "ids only, never a digest");
    site.stop().await;
}

#[tokio::test]
async fn without_a_file_the_environment_key_and_flags_count() {
    let site = Running::start(config(&[])).await;
    let f = site.get("/api/features", &[("X-API-Key", KEY)]).await;
    assert_eq!(f.status, 200);
    assert_eq!(f.json()["from"], "environment");
    assert_eq!(
        f.json()["features"][0],
        serde_json::json!({"flag": "beta-checkout", "source": null})
    );
    site.stop().await;
}

#[tokio::test]
async fn api_answers_carry_rate_limit_headers_and_request_ids() {
    let site = Running::start(config(&[("PLAN_RATE_LIMIT_RPM", Some("2"))])).await;
    let k = [("X-API-Key", KEY)];
    let first = site.get("/api/ping", &k).await;
    assert_eq!(
        (
            first.header("x-ratelimit-limit"),
            first.header("x-ratelimit-remaining"),
            first.header("x-ratelimit-reset"),
        ),
        (Some("2"), Some("1"), Some("60"))
    );
    site.clock.advance(Duration::from_secs(20));
    let second = site.get("/api/ping", &k).await;
    assert_eq!(second.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(
        second.header("x-ratelimit-reset"),
        Some("40"),
        "the first leaves in 40 s"
    );
    let refused = site.get("/api/ping", &k).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("40"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    let missing = site.get("/api/ping", &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("x-ratelimit-limit"), Some("2"));
    assert!(
        site.get("/health", &[])
            .await
            .header("x-ratelimit-limit")
            .is_none()
    );

    let echoed = site.get("/health", &[("X-Request-Id", "abc-123")]).await;
    assert_eq!(echoed.header(REQUEST_ID_HEADER), Some("abc-123"));
    let made = site.get("/", &[]).await;
    let id = made.header(REQUEST_ID_HEADER).expect("an id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    site.stop().await;
}

#[test]
fn request_ids_are_echoed_only_when_sane() {
    let sent = |v: &'static str| {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static(v));
        request_id(&h)
    };
    assert_eq!(sent("req-1/2:3"), "req-1/2:3");
    assert_ne!(sent("two words"), "two words");
    let long: &'static str = Box::leak("x".repeat(129).into_boxed_str());
    assert_eq!(sent(long).len(), 32);
    let max: &'static str = Box::leak("x".repeat(128).into_boxed_str());
    assert_eq!(sent(max), max);
    assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
}

#[test]
fn rate_state_counts_what_is_in_the_window() {
    let s = Duration::from_secs;
    let mut w = SlidingWindow::new(3, s(60));
    let st = w.state(s(0));
    assert_eq!((st.limit, st.remaining, st.reset), (3, 3, Duration::ZERO));
    w.try_acquire(s(0)).unwrap();
    w.try_acquire(s(30)).unwrap();
    let st = w.state(s(45));
    assert_eq!((st.remaining, st.reset), (1, s(15)));
    let st = w.state(s(60));
    assert_eq!((st.remaining, st.reset), (2, s(30)), "the first has left");
    let mut m = Meter::new(Counters::default(), limits(None, None, None), s(60));
    assert_eq!(
        m.rate_state(s(0)).limit,
        super::super::meter::DEFAULT_RATE_LIMIT_RPM
    );
    m.key_used("a", 10);
    m.key_used("a", 5);
    assert_eq!(m.key_last_used()["a"], 10, "only forward");
}
