use super::*;
use crate::model::Origin;
use serde_json::Value;

fn notification(events: &[&str], format: NotificationFormat) -> Notification {
    Notification {
        name: "ops".into(),
        origin: Origin {
            path: "notifications/ops.yaml".into(),
            line: 1,
            column: 1,
        },
        url: "http://127.0.0.1:9000/hook".into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        secret_env: None,
        format,
    }
}

fn event() -> EventView {
    EventView {
        id: 7,
        at: 1_796_000_000,
        tenant: Some("acme".into()),
        kind: "tenant.failed".into(),
        message: "container: image not found".into(),
        revision: Some("0123456789abcdef0123".into()),
    }
}

#[test]
fn globs_and_exact_kinds_pick_the_events() {
    let r = Route::of(&notification(
        &["tenant.*", "drift"],
        NotificationFormat::Json,
    ));
    assert!(r.wants("tenant.failed"));
    assert!(r.wants("tenant.degraded"));
    assert!(r.wants("drift"));
    assert!(!r.wants("drift.more"));
    assert!(!r.wants("usage.threshold"));
    let q = Route::of(&notification(&["tenant.?ailed"], NotificationFormat::Json));
    assert!(q.wants("tenant.failed") && !q.wants("tenant.degraded"));
}

#[test]
fn events_about_notifications_are_never_notified() {
    let all = Route::of(&notification(&["*"], NotificationFormat::Json));
    assert!(all.wants("tenant.failed"));
    assert!(!all.wants("notification.failed"));
    assert!(!all.wants("notification.delivered"));
    let routes = Routes::of(
        &[(
            "ops".to_string(),
            notification(&["*"], NotificationFormat::Json),
        )]
        .into_iter()
        .collect(),
        "rev",
    );
    assert_eq!(routes.matching("drift"), vec!["ops"]);
    assert!(routes.matching("notification.abandoned").is_empty());
    assert!(!Routes::default().loaded);
}

#[test]
fn the_json_payload_carries_the_event_with_an_rfc3339_time() {
    let body = body(NotificationFormat::Json, "ops", &event());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["notification"], "ops");
    assert_eq!(v["event"]["kind"], "tenant.failed");
    assert_eq!(v["event"]["tenant"], "acme");
    assert_eq!(v["event"]["time"], "2026-11-30T00:53:20Z");
    assert_eq!(v["event"]["revision"], "0123456789abcdef0123");
    assert_eq!(v["event"]["message"], "container: image not found");
}

#[test]
fn the_slack_payload_is_one_text() {
    let body = body(NotificationFormat::Slack, "ops", &event());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert_eq!(
        v["text"],
        "tenantctl: acme tenant.failed at 0123456789ab: container: image not found (2026-11-30T00:53:20Z)"
    );
}

#[test]
fn the_signature_is_hex_hmac_sha256_of_the_body() {
    // RFC 4231, test case 2.
    assert_eq!(
        sign(b"Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    let waits: Vec<i64> = (1..=11).map(backoff).collect();
    assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    assert_eq!(backoff(0), 1);
    assert_eq!(backoff(1000), 300);
}

#[test]
fn urls_and_patterns_are_checked() {
    assert!(check_url("http://127.0.0.1:9000/hook").is_ok());
    assert!(check_url("https://hooks.slack.com/services/T/B/X").is_ok());
    assert!(
        check_url("ftp://example.org/x")
            .unwrap_err()
            .contains("scheme `ftp`")
    );
    assert!(check_url("example.org/x").is_err());
    assert!(
        check_url("http://user:pw@example.org/")
            .unwrap_err()
            .contains("secretEnv")
    );
    assert!(check_url("").is_err());
    assert!(check_pattern("tenant.*").is_ok());
    assert!(check_pattern("usage.threshold").is_ok());
    assert!(check_pattern("Tenant.Failed").unwrap_err().contains("`T`"));
    assert!(check_pattern(" ").is_err());
}
