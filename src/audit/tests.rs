use super::*;

fn row(id: i64, tenant: Option<&str>, kind: &str, detail: Option<&str>) -> AuditRow {
    AuditRow {
        id,
        at: 1_796_596_803, // 2026-12-06T22:40:03Z
        run_id: Some(3),
        tenant: tenant.map(str::to_string),
        kind: kind.to_string(),
        message: format!("{kind} message"),
        revision: Some("4f2a9c1e0b".into()),
        term: None,
        detail: detail.map(str::to_string),
    }
}

#[test]
fn field_changes_lists_changed_leaves_in_path_order() {
    let before = json!({"owner": "a@x", "resources": {"memory": "256Mi", "cpus": 0.5}, "same": 1});
    let after = json!({"owner": "b@x", "resources": {"memory": "512Mi", "cpus": 0.5}, "same": 1, "new": true});
    let changes = field_changes(Some(&before), Some(&after));
    let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["new", "owner", "resources.memory"]);
    assert_eq!(changes[0].before, Value::Null);
    assert_eq!(changes[2].before, json!("256Mi"));
    assert_eq!(changes[2].after, json!("512Mi"));
    assert!(field_changes(Some(&before), Some(&before)).is_empty());
    assert_eq!(detail_json(&[]), None);
}

#[test]
fn secrets_are_redacted_in_changes() {
    let before = json!({"env": {"DB_PASSWORD": "hunter2", "LOG": "info", "TENANT_API_KEY_SHA256": "abc"},
        "apiKeySha256": "d1g357"});
    let after = json!({"env": {"DB_PASSWORD": "hunter3", "LOG": "debug", "TENANT_API_KEY_SHA256": "def"},
        "apiKeySha256": "0th3r"});
    let changes = field_changes(Some(&before), Some(&after));
    let text = serde_json::to_string(&changes).unwrap();
    for secret in ["hunter2", "hunter3", "abc\"", "def\"", "d1g357", "0th3r"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let pw = changes
        .iter()
        .find(|c| c.field == "env.DB_PASSWORD")
        .unwrap();
    assert!(
        pw.before
            .as_str()
            .unwrap()
            .starts_with("(sensitive, sha256:")
    );
    assert_ne!(
        pw.before, pw.after,
        "a changed secret still shows as changed"
    );
    let log = changes.iter().find(|c| c.field == "env.LOG").unwrap();
    assert_eq!((&log.before, &log.after), (&json!("info"), &json!("debug")));
    // A value the plan already fingerprinted stays as it is.
    let fp = json!({"env": {"API_TOKEN": "(sensitive, sha256:12345678)"}});
    let none = json!({"env": {}});
    let c = field_changes(Some(&none), Some(&fp));
    assert_eq!(c[0].after, json!("(sensitive, sha256:12345678)"));
}

#[test]
fn kind_filter_matches_exactly_or_as_glob() {
    let k = |p: &str| KindFilter::new(p).unwrap();
    assert!(k("tenant.failed").matches("tenant.failed"));
    assert!(!k("tenant.failed").matches("tenant.failed2"));
    assert!(!k("tenant").matches("tenant.failed"));
    assert!(k("tenant-record.*").matches("tenant-record.update"));
    assert!(!k("tenant-record.*").matches("tenant.failed"));
    assert!(k("*.replace").matches("container.replace"));
    assert!(k("tenant.?ailed").matches("tenant.failed"));
    assert!(k("*").matches("anything"));
    assert!(KindFilter::new(" ").is_err());
    assert_eq!(k("tenant-record.*").like(), "tenant-record.%");
    assert_eq!(k("a_b%c?\\").like(), "a\\_b\\%c_\\\\");
}

#[test]
fn since_takes_compound_durations_and_times() {
    let now = 1_000_000;
    assert_eq!(parse_since("30m", now), Ok(now - 1800));
    assert_eq!(parse_since("1h30m", now), Ok(now - 5400));
    assert_eq!(parse_since("2d", now), Ok(now - 172_800));
    assert_eq!(parse_since("45", now), Ok(now - 45));
    assert_eq!(parse_since("1970-01-01T00:01:00Z", now), Ok(60));
    assert!(parse_since("soon", now).is_err_and(|e| e.contains("RFC 3339")));
    assert!(parse_since("", now).is_err());
}

#[test]
fn text_lines_show_changes_or_the_message_aligned() {
    let changes = vec![FieldChange {
        field: "owner".into(),
        before: json!("a@x"),
        after: json!("b@x"),
    }];
    let detail = detail_json(&changes).unwrap();
    let rows = vec![
        row(1, Some("acme"), "tenant-record.update", Some(&detail)),
        row(2, None, "plan-record.create", None),
    ];
    let mut w = Widths::default();
    w.fit(&rows);
    assert_eq!(
        text_line(&rows[0], w),
        "2026-12-06T22:40:03Z  acme  tenant-record.update  rev 4f2a9c1  owner: a@x → b@x"
    );
    assert_eq!(
        text_line(&rows[1], w),
        "2026-12-06T22:40:03Z  -     plan-record.create    rev 4f2a9c1  plan-record.create message"
    );
    // Widths only grow: a later narrower batch keeps the columns.
    let before = w;
    w.fit(&rows[1..]);
    assert_eq!(w, before);
}

#[test]
fn text_lines_escape_control_characters_and_show_missing_values() {
    let changes = vec![FieldChange {
        field: "domain".into(),
        before: Value::Null,
        after: json!("evil\u{1b}[31m.example"),
    }];
    let mut r = row(
        1,
        Some("acme"),
        "tenant-record.update",
        detail_json(&changes).as_deref(),
    );
    r.revision = None;
    let line = text_line(&r, Widths::default());
    assert!(!line.contains('\u{1b}'), "{line}");
    assert!(
        line.contains("rev -        domain: (none) → evil\\u{1b}[31m.example"),
        "{line}"
    );
}

#[test]
fn json_document_shape() {
    let detail = r#"[{"field":"memory","before":"256Mi","after":"512Mi"}]"#;
    let mut with = row(7, Some("acme"), "container.replace", Some(detail));
    with.term = Some(4);
    let old = row(8, Some("acme"), "container.create", None);
    let doc = json_document(&[with, old]);
    assert_eq!(doc["format_version"], 1);
    let e = &doc["events"][0];
    assert_eq!(e["time"], "2026-12-06T22:40:03Z");
    assert_eq!(e["tenant"], "acme");
    assert_eq!(e["kind"], "container.replace");
    assert_eq!(e["revision"], "4f2a9c1e0b");
    assert_eq!(e["term"], 4);
    assert_eq!(e["changes"][0]["field"], "memory");
    assert_eq!(e["changes"][0]["after"], "512Mi");
    assert_eq!(doc["events"][1]["changes"], Value::Null);
    assert_eq!(doc["events"][1]["term"], Value::Null);
}
