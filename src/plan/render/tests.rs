use super::*;
use serde_json::json;

fn change(tenant: Option<&str>, resource: Resource, name: &str, action: Action) -> Change {
    Change {
        tenant: tenant.map(str::to_string),
        resource,
        name: name.to_string(),
        action,
        reasons: vec![],
        before: None,
        after: None,
        container_id: None,
    }
}

fn plan(changes: Vec<Change>) -> Plan {
    Plan {
        revision: "0123456789abcdef0123".into(),
        namespace: "tenantctl".into(),
        changes,
        notes: vec![],
    }
}

fn markdown(plan: &Plan) -> String {
    let mut out = Vec::new();
    write_markdown(&mut out, plan).unwrap();
    String::from_utf8(out).unwrap()
}

/// The lines outside fenced blocks, as a Markdown reader sees the layout.
fn outside_fences(md: &str) -> Vec<&str> {
    let mut fence: Option<usize> = None;
    let mut out = vec![];
    for line in md.lines() {
        let ticks = line.len() - line.trim_start_matches('`').len();
        match fence {
            None if ticks >= 3 => fence = Some(ticks),
            Some(open) if ticks >= open && line.trim_matches('`').is_empty() => fence = None,
            None => out.push(line),
            Some(_) => {}
        }
    }
    assert_eq!(fence, None, "every fence is closed:\n{md}");
    out
}

#[test]
fn backtick_runs_are_measured() {
    assert_eq!(longest_backtick_run("no ticks"), 0);
    assert_eq!(longest_backtick_run("a `b` ``c`` d"), 2);
    assert_eq!(longest_backtick_run("``````"), 6);
}

#[test]
fn text_outside_code_cannot_open_html_or_markdown() {
    assert_eq!(
        md_text("</details><script>x</script> `a` *b* [c](d) |e| ~f~ & \"g\""),
        "&lt;/details&gt;&lt;script&gt;x&lt;/script&gt; &#96;a&#96; &#42;b&#42; &#91;c&#93;(d) &#124;e&#124; &#126;f&#126; &amp; &quot;g&quot;"
    );
    assert_eq!(md_text("two\nlines"), "two&#92;u{a}lines");
}

#[test]
fn a_summary_then_a_details_block_per_tenant_with_plans_and_themes_first() {
    let mut record = change(None, Resource::PlanRecord, "starter", Action::Update);
    record.before = Some(json!({"memory": "256Mi"}));
    record.after = Some(json!({"memory": "512Mi"}));
    let mut acme_row = change(Some("acme"), Resource::TenantRecord, "acme", Action::Update);
    acme_row.reasons = vec!["owner changed".into()];
    acme_row.before = Some(json!({"owner": "a@acme.example"}));
    acme_row.after = Some(json!({"owner": "b@acme.example"}));
    let mut acme_net = change(
        Some("acme"),
        Resource::Network,
        "tenantctl-acme",
        Action::Update,
    );
    acme_net.before = Some(json!({"attached": false}));
    acme_net.after = Some(json!({"attached": true}));
    let mut globex = change(
        Some("globex"),
        Resource::Container,
        "tenantctl-globex",
        Action::Create,
    );
    globex.after = Some(json!({"image": "tenantctl-site:1"}));
    let md = markdown(&plan(vec![record, acme_net, acme_row, globex]));
    assert!(md.starts_with(
        "### tenantctl plan\n\nRevision <code>0123456789ab</code>, namespace <code>tenantctl</code>: **1** to create, **3** to update, **0** to replace, **0** to destroy.\n"
    ), "{md}");
    let summaries: Vec<&str> = md.lines().filter(|l| l.starts_with("<details>")).collect();
    assert_eq!(
        summaries,
        [
            "<details><summary>plans and themes: ~ 1 change</summary>",
            "<details><summary>acme: ~ 2 changes</summary>",
            "<details><summary>globex: + 1 change</summary>",
        ]
    );
    assert_eq!(md.matches("\n</details>\n").count(), 3);
    assert!(md.contains(
        "+attached: true\n\n# ~ tenant-record.acme will be updated in place\n#   owner changed\n--- observed\n+++ desired\n@@ -1 +1 @@\n-owner: a@acme.example\n+owner: b@acme.example\n```\n"
    ), "{md}");
    assert!(md.contains(
        "# + container.tenantctl-globex will be created\n+ image: tenantctl-site:1\n```"
    ));
    assert!(!md.contains('\x1b'), "no colour codes");
}

#[test]
fn repository_text_cannot_close_the_fence_or_the_details() {
    let mut c = change(Some("acme"), Resource::TenantRecord, "acme", Action::Update);
    c.reasons = vec!["</details> ```` <b>x</b>".into()];
    c.before = Some(json!({"displayName": "Acme"}));
    c.after = Some(json!({"displayName": "```` </details>\n# Heading <img src=x>"}));
    let mut p = plan(vec![c]);
    p.notes = vec!["theme `<b>` </details> *bold*".into()];
    let md = markdown(&p);
    // The fence is longer than the four backticks inside.
    assert!(md.contains("\n`````diff\n"), "{md}");
    let layout = outside_fences(&md);
    assert_eq!(
        layout.iter().filter(|l| l.contains("</details>")).count(),
        1,
        "only the block's own closing tag is outside the fence: {layout:#?}"
    );
    assert!(
        !layout
            .iter()
            .any(|l| l.contains("<b>") || l.contains("<img"))
    );
    assert!(
        layout.contains(&"> **Note:** theme &#96;&lt;b&gt;&#96; &lt;/details&gt; &#42;bold&#42;"),
        "{layout:#?}"
    );
}

#[test]
fn sensitive_values_are_shown_as_the_text_and_json_renderers_show_them() {
    use crate::plan::container::shown_env_value;
    let secret = "hunter2-very-secret";
    let shown = shown_env_value("STRIPE_SECRET", secret);
    let mut c = change(
        Some("acme"),
        Resource::Container,
        "tenantctl-acme",
        Action::Replace,
    );
    c.before = Some(json!({"env": {"STRIPE_SECRET": shown_env_value("STRIPE_SECRET", "old")}}));
    c.after = Some(json!({"env": {"STRIPE_SECRET": shown}}));
    let p = plan(vec![c]);
    let md = markdown(&p);
    let text = text(&p, Style { color: false });
    assert!(!md.contains(secret) && !text.contains(secret));
    assert!(md.contains(&format!("+  STRIPE_SECRET: {shown}\n")), "{md}");
    assert!(
        text.contains(&format!("+  STRIPE_SECRET: {shown}\n")),
        "{text}"
    );
}

#[test]
fn no_changes_says_so() {
    let md = markdown(&plan(vec![]));
    assert_eq!(
        md,
        "### tenantctl plan\n\n**No changes.** Revision <code>0123456789ab</code> matches what is running in namespace <code>tenantctl</code>.\n\n"
    );
}
