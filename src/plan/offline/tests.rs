use super::*;
use crate::model::{SourceContent, SourceFile, load};
use crate::plan::render::{self, Style};

const PLANS: &str = "kind: Plan
name: starter
spec:
  displayName: Starter
  price: { amount: 9.99, currency: USD, cycle: monthly }
  resources: { cpus: 0.5, memory: 256Mi, pids: 128 }
---
kind: Plan
name: professional
spec:
  displayName: Professional
  price: { amount: 79.99, currency: USD, cycle: monthly }
  resources: { cpus: 1.0, memory: MEM, pids: 256 }
";

fn theme(color: &str) -> String {
    format!(
        "kind: Theme\nname: modern\nspec:\n  displayName: Modern\n  version: 1.2.0\n  config: {{ primaryColor: \"{color}\" }}\n"
    )
}

fn tenant(slug: &str, plan: &str, extra: &str) -> String {
    format!(
        "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug} inc\n  owner: ops@{slug}.example\n  plan: {plan}\n  theme: modern\n{extra}"
    )
}

fn state(memory: &str, color: &str, tenants: &[String]) -> DesiredState {
    let mut files = vec![
        SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(PLANS.replace("MEM", memory).into_bytes()),
        },
        SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(theme(color).into_bytes()),
        },
    ];
    for (i, t) in tenants.iter().enumerate() {
        files.push(SourceFile {
            path: format!("tenants/t{i}.yaml"),
            content: SourceContent::Bytes(t.clone().into_bytes()),
        });
    }
    load(&files).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn opts() -> PlanOptions {
    PlanOptions {
        namespace: "tenantctl".into(),
        revision: "bbbbbbbbbbbbbbbb".into(),
        prune: false,
        tenants: vec![],
    }
}

fn shown(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.changes
        .iter()
        .map(|c| (c.address(), c.action.symbol()))
        .collect()
}

#[test]
fn the_same_content_at_two_revisions_changes_nothing() {
    let d = state("512Mi", "#0f62fe", &[tenant("acme", "professional", "")]);
    let (plan, _) = compare(&d, &d, "aaaaaaaaaaaaaaaa", &opts(), RuntimeKind::Docker);
    assert!(plan.is_empty(), "{:?}", shown(&plan));
    assert!(plan.notes[0].contains("compared with aaaaaaaaaaaa (--against)"));
}

#[test]
fn plan_memory_new_and_removed_tenants_and_a_theme_change_are_exactly_what_is_planned() {
    let before = state(
        "512Mi",
        "#0f62fe",
        &[
            tenant("acme", "professional", ""),
            tenant("globex", "starter", ""),
            tenant("gone", "starter", ""),
        ],
    );
    let after = state(
        "1Gi",
        "#ff0000",
        &[
            tenant("acme", "professional", ""),
            tenant("globex", "starter", ""),
            tenant("hooli", "starter", ""),
        ],
    );
    let (plan, observed) = compare(&before, &after, "aaaa", &opts(), RuntimeKind::Docker);
    assert_eq!(
        observed.runtime.containers.len(),
        3,
        "the earlier revision runs"
    );
    assert_eq!(
        shown(&plan),
        [
            ("plan-record.professional".to_string(), "~"),
            ("theme-record.modern".to_string(), "~"),
            ("container.tenantctl-acme".to_string(), "-/+"),
            ("container.tenantctl-globex".to_string(), "-/+"),
            ("container.tenantctl-gone".to_string(), "-"),
            ("tenant-record.gone".to_string(), "~"),
            ("network.tenantctl-hooli".to_string(), "+"),
            ("volume.tenantctl-hooli-data".to_string(), "+"),
            ("container.tenantctl-hooli".to_string(), "+"),
            ("tenant-record.hooli".to_string(), "+"),
        ]
        .map(|(a, s)| (a, s))
        .to_vec()
    );
    let acme = &plan.changes[2];
    assert!(
        acme.reasons
            .iter()
            .any(|r| r.starts_with("container would be replaced: spec hash ")),
        "{:?}",
        acme.reasons
    );
    let text = render::text(&plan, Style { color: false });
    assert!(text.contains("-  memory: 512Mi\n"), "{text}");
    assert!(text.contains("+  memory: 1Gi\n"), "{text}");
    assert!(text.contains("Plan: 4 to create, 3 to update, 2 to replace, 1 to destroy."));
}

#[test]
fn a_change_that_leaves_the_container_alone_is_no_replacement() {
    let before = state("512Mi", "#0f62fe", &[tenant("acme", "professional", "")]);
    let after = state(
        "512Mi",
        "#0f62fe",
        &[tenant("acme", "professional", "").replace("ops@acme.example", "billing@acme.example")],
    );
    let (plan, _) = compare(&before, &after, "aaaa", &opts(), RuntimeKind::Docker);
    assert_eq!(
        shown(&plan),
        [("tenant-record.acme".to_string(), "~")].to_vec()
    );
    assert!(!render::text(&plan, Style { color: false }).contains("would be replaced"));
}

#[test]
fn in_swarm_mode_a_new_spec_rolls_the_service() {
    let before = state("512Mi", "#0f62fe", &[tenant("acme", "professional", "")]);
    let after = state("1Gi", "#0f62fe", &[tenant("acme", "professional", "")]);
    let (plan, _) = compare(&before, &after, "aaaa", &opts(), RuntimeKind::Swarm);
    assert_eq!(
        shown(&plan),
        [
            ("plan-record.professional".to_string(), "~"),
            ("service.tenantctl-acme".to_string(), "~"),
        ]
        .to_vec()
    );
    assert!(
        plan.changes[1]
            .reasons
            .iter()
            .any(|r| r.starts_with("service would roll out new tasks: spec hash ")),
        "{:?}",
        plan.changes[1].reasons
    );
}
