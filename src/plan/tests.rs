use super::converged::converged;
use super::render::{self, Style, json, text};
use super::*;
use crate::model::{SourceContent, SourceFile, load};
use crate::runtime::types::ContainerState;

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
  trialDays: 14
  resources: { cpus: 1.0, memory: 512Mi, pids: 256, storage: 50Gi }
  quotas: { apiCallsPerMonth: 100000 }
  rateLimit: { requestsPerMinute: 300 }
  features: [custom-domain, webhooks]
";

const THEMES: &str = "kind: Theme
name: modern
spec:
  displayName: Upfront Modern
  version: 1.2.0
  config: { primaryColor: \"#0f62fe\" }
";

fn tenant(slug: &str, plan: &str, extra: &str) -> String {
    format!(
        "kind: Tenant\nname: {slug}\nspec:\n  displayName: {slug} inc\n  owner: ops@{slug}.example\n  plan: {plan}\n  theme: modern\n{extra}"
    )
}

fn desired(tenants: &[String]) -> DesiredState {
    let mut files = vec![
        SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(PLANS.into()),
        },
        SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(THEMES.into()),
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

fn base() -> Vec<String> {
    vec![
        tenant("acme", "professional", ""),
        tenant("globex", "professional", ""),
        tenant("initech", "starter", "  env: { LOG_LEVEL: info }\n"),
    ]
}

fn opts() -> PlanOptions {
    PlanOptions {
        namespace: "tenantctl".into(),
        revision: "0123456789abcdef".into(),
        prune: false,
        tenants: vec![],
    }
}

fn actions(plan: &Plan) -> Vec<(String, &'static str)> {
    plan.changes
        .iter()
        .map(|c| (c.address(), c.action.symbol()))
        .collect()
}

#[test]
fn an_empty_world_creates_everything_in_apply_order() {
    let d = desired(&base());
    let plan = compute(&d, &ObservedState::default(), &opts());
    let s = plan.summary();
    assert_eq!(
        (s.create, s.update, s.replace, s.destroy),
        (2 + 1 + 3 * 4, 0, 0, 0)
    );
    let acme: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.tenant.as_deref() == Some("acme"))
        .map(Change::address)
        .collect();
    assert_eq!(
        acme,
        [
            "network.tenantctl-acme",
            "volume.tenantctl-acme-data",
            "container.tenantctl-acme",
            "tenant-record.acme"
        ]
    );
    assert_eq!(plan.changes[0].address(), "plan-record.professional");
    assert!(
        text(&plan, Style { color: false })
            .ends_with("Plan: 15 to create, 0 to update, 0 to replace, 0 to destroy.\n")
    );
}

#[test]
fn a_converged_world_needs_nothing() {
    let d = desired(&base());
    let observed = converged(&d, &opts());
    let plan = compute(&d, &observed, &opts());
    assert!(plan.is_empty(), "{}", text(&plan, Style { color: false }));
    assert!(text(&plan, Style { color: false }).starts_with("No changes."));
    // A new revision with the same content is still converged: revisions are not compared.
    let mut o2 = opts();
    o2.revision = "fedcba".into();
    assert!(compute(&d, &observed, &o2).is_empty());
}

#[test]
fn one_tenants_env_change_replaces_only_that_tenant() {
    let before = desired(&base());
    let observed = converged(&before, &opts());
    let mut t = base();
    t[2] = tenant("initech", "starter", "  env: { LOG_LEVEL: debug }\n");
    let plan = compute(&desired(&t), &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-initech".to_string(), "-/+")]
    );
    let c = &plan.changes[0];
    assert_eq!(c.reasons, ["env.LOG_LEVEL changed (tenant env)"]);
    assert_eq!(c.container_id.as_deref(), Some("id-initech"));
    let out = text(&plan, Style { color: false });
    assert!(out.contains("-/+ container.tenantctl-initech"), "{out}");
    assert!(
        out.contains("--- observed\n") && out.contains("+++ desired\n"),
        "{out}"
    );
    assert!(
        out.contains("-  LOG_LEVEL: info\n") && out.contains("+  LOG_LEVEL: debug\n"),
        "{out}"
    );
    assert!(
        out.ends_with("Plan: 0 to create, 0 to update, 1 to replace, 0 to destroy.\n"),
        "{out}"
    );
}

#[test]
fn a_plans_memory_change_replaces_every_tenant_on_it_with_the_reason() {
    let before = desired(&base());
    let observed = converged(&before, &opts());
    let after = desired(&base());
    let mut after = after;
    after
        .plans
        .get_mut("professional")
        .unwrap()
        .resources
        .memory_bytes = 1 << 30;
    let plan = compute(&after, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("plan-record.professional".to_string(), "~"),
            ("container.tenantctl-acme".to_string(), "-/+"),
            ("container.tenantctl-globex".to_string(), "-/+"),
        ]
    );
    assert_eq!(plan.changes[0].reasons, ["resources.memory changed"]);
    assert_eq!(
        plan.changes[1].reasons,
        ["memory changed (plan `professional` resources.memory)"]
    );
    let out = text(&plan, Style { color: false });
    assert!(
        out.contains("-memory: 512Mi\n") && out.contains("+memory: 1Gi\n"),
        "{out}"
    );
}

#[test]
fn a_price_change_touches_only_the_database() {
    let before = desired(&base());
    let observed = converged(&before, &opts());
    let mut after = before.clone();
    after.plans.get_mut("starter").unwrap().price_cents = 1299;
    let plan = compute(&after, &observed, &opts());
    assert_eq!(actions(&plan), [("plan-record.starter".to_string(), "~")]);
    let out = text(&plan, Style { color: false });
    assert!(
        out.contains("-price: 9.99 USD monthly\n") && out.contains("+price: 12.99 USD monthly\n"),
        "{out}"
    );
}

#[test]
fn suspend_stops_and_resume_starts() {
    let d = desired(&base());
    let observed = converged(&d, &opts());
    let mut t = base();
    t[0] = tenant("acme", "professional", "  state: suspended\n");
    let plan = compute(&desired(&t), &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-acme".to_string(), "."),
            ("tenant-record.acme".to_string(), "~")
        ]
    );

    let mut stopped = observed.clone();
    stopped.runtime.containers[0].state = ContainerState::Exited;
    let plan = compute(&d, &stopped, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme".to_string(), ">")]
    );
    assert!(text(&plan, Style { color: false }).contains("State: 1 to start, 0 to stop."));
}

#[test]
fn removing_a_tenant_destroys_its_container_and_keeps_data_and_record() {
    let d = desired(&base());
    let observed = converged(&d, &opts());
    let remaining = desired(&base()[..2]);
    let plan = compute(&remaining, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-initech".to_string(), "-"),
            ("tenant-record.initech".to_string(), "~")
        ]
    );
    assert_eq!(
        plan.changes[1].after.as_ref().unwrap()["state"],
        "cancelled"
    );

    let mut pruning = opts();
    pruning.prune = true;
    let plan = compute(&remaining, &observed, &pruning);
    assert!(actions(&plan).contains(&("network.tenantctl-initech".to_string(), "-")));
    assert!(
        !plan.changes.iter().any(|c| c.resource == Resource::Volume),
        "data volumes are never destroyed"
    );

    let mut t = base();
    t[2] = tenant("initech", "starter", "  state: cancelled\n");
    let plan = compute(&desired(&t), &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-initech".to_string(), "-"),
            ("tenant-record.initech".to_string(), "~")
        ]
    );
}

#[test]
fn duplicate_containers_are_removed_and_unknown_hash_versions_left_alone() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    let mut dup = observed.runtime.containers[0].clone();
    dup.name = "tenantctl-acme-old".into();
    dup.id = "dup".into();
    observed.runtime.containers.push(dup);
    observed.runtime.containers[1].hash_version = Some("9".into());
    observed.runtime.containers[1].spec_hash = Some("from-the-future".into());
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme-old".to_string(), "-")]
    );
    assert_eq!(plan.notes.len(), 1);
    assert!(
        plan.notes[0].contains("spec-hash version 9"),
        "{:?}",
        plan.notes
    );
}

#[test]
fn a_leftover_temporary_goes_only_when_its_label_names_the_tenant() {
    // `shop-next` is a tenant of its own: its container is never `shop`'s leftover.
    let d = desired(&[
        tenant("shop", "starter", ""),
        tenant("shop-next", "starter", ""),
    ]);
    let converged_world = converged(&d, &opts());
    assert!(compute(&d, &converged_world, &opts()).is_empty());

    // Temporaries of `shop` from this version (`_next`) and older ones (`-next`) carry its label.
    let d = desired(&[tenant("shop", "starter", "")]);
    let mut observed = converged(&d, &opts());
    for (id, name) in [
        ("new", "tenantctl-shop_next"),
        ("old", "tenantctl-shop-next"),
    ] {
        let mut leftover = observed.runtime.containers[0].clone();
        leftover.id = id.into();
        leftover.name = name.into();
        observed.runtime.containers.push(leftover);
    }
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-shop-next".to_string(), "-"),
            ("container.tenantctl-shop_next".to_string(), "-"),
        ]
    );
}

#[test]
fn a_trial_recorded_on_a_plan_without_trials_ends_with_a_record_update() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    // acme is on `professional` (14 trial days), initech on `starter` (none).
    for slug in ["acme", "initech"] {
        observed.db.tenants.get_mut(slug).unwrap().trial_ends_at = Some(1_000);
    }
    let plan = compute(&d, &observed, &opts());
    assert_eq!(actions(&plan), [("tenant-record.initech".to_string(), "~")]);
    assert_eq!(
        plan.changes[0].reasons,
        ["the trial ends: plan `starter` has no trial (trialDays: 0)"]
    );
}

#[test]
fn a_missing_network_is_made_again_and_the_container_replaced_onto_it() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed
        .runtime
        .networks
        .retain(|n| n.name != "tenantctl-acme");
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("network.tenantctl-acme".to_string(), "+"),
            ("container.tenantctl-acme".to_string(), "-/+"),
        ]
    );
    assert_eq!(
        plan.changes[1].reasons,
        ["network tenantctl-acme is missing"]
    );
    assert_eq!(plan.changes[1].container_id.as_deref(), Some("id-acme"));

    // Swarm services attach their network through the spec: no replace is planned there.
    let mut observed = swarm(&d);
    observed
        .runtime
        .networks
        .retain(|n| n.name != "tenantctl-acme");
    assert_eq!(
        actions(&compute(&d, &observed, &opts())),
        [("network.tenantctl-acme".to_string(), "+")]
    );
}

#[test]
fn a_container_disconnected_from_its_network_is_reconnected_in_place() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].attached_networks = Some(vec!["bridge".into()]);
    // A backend that does not observe attachments never causes a repair.
    observed.runtime.containers[1].attached_networks = None;
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme".to_string(), "~")]
    );
    assert_eq!(
        plan.changes[0].reasons,
        ["not attached to its network tenantctl-acme"]
    );
}

fn probed(result: crate::runtime::types::ProbeResult) -> Option<crate::runtime::types::Probe> {
    Some(crate::runtime::types::Probe {
        url: Some("http://127.0.0.1:40001/health".into()),
        result,
        latency_ms: None,
        attempts: 2,
    })
}

#[test]
fn a_running_container_without_its_published_port_is_replaced() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].published_ports.clear();
    // Another port published is not the theme's.
    observed.runtime.containers[1].published_ports[0].container_port = 9999;
    // Stopped: nothing is published while it does not run; start is the repair.
    observed.runtime.containers[2].published_ports.clear();
    observed.runtime.containers[2].state = ContainerState::Exited;
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-acme".to_string(), "-/+"),
            ("container.tenantctl-globex".to_string(), "-/+"),
            ("container.tenantctl-initech".to_string(), ">"),
        ]
    );
    assert_eq!(plan.changes[0].reasons, ["port 8080 not published"]);
    let shown = text(&plan, Style { color: false });
    assert!(shown.contains("#   port 8080 not published"), "{shown}");
    // Disconnected from its network: reconnected in place first, not replaced.
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].published_ports.clear();
    observed.runtime.containers[0].attached_networks = Some(vec![]);
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme".to_string(), "~")]
    );
}

#[test]
fn a_healthy_container_that_does_not_answer_through_its_port_is_replaced() {
    use crate::runtime::types::ProbeResult;
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].probe = probed(ProbeResult::Refused);
    // No health check at all counts as the engine's word too.
    observed.runtime.containers[1].health = None;
    observed.runtime.containers[1].probe = probed(ProbeResult::Answered { status: 503 });
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-acme".to_string(), "-/+"),
            ("container.tenantctl-globex".to_string(), "-/+"),
        ]
    );
    assert_eq!(
        plan.changes[0].reasons,
        ["does not answer on 127.0.0.1:40001/health: connection refused"]
    );
    assert_eq!(
        plan.changes[1].reasons,
        ["does not answer on 127.0.0.1:40001/health: answered 503"]
    );
}

#[test]
fn failed_probes_are_not_replaced_while_the_host_neighbour_table_overflowed() {
    use crate::runtime::types::ProbeResult;
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].probe = probed(ProbeResult::TimedOut { timeout_ms: 2000 });
    observed.runtime.containers[1].probe = probed(ProbeResult::Refused);
    // Not a probe failure: no published port is still repaired by a replace.
    observed.runtime.containers[2].published_ports.clear();
    observed.runtime.probe_host_fault = Some(
        "this host's neighbour (ARP) table overflowed while the sites were probed (its limit here: 8)"
            .into(),
    );
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-initech".to_string(), "-/+")]
    );
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    let note = &plan.notes[0];
    assert!(
        note.starts_with("2 site(s) did not answer, and this host's neighbour (ARP) table overflowed while the sites were probed (its limit here: 8): no container is replaced"),
        "{note}"
    );
    assert!(note.contains("gc_thresh3=8192"), "{note}");
    // The same failures without the host's fault are the site's: replaced.
    observed.runtime.probe_host_fault = None;
    let plan = compute(&d, &observed, &opts());
    assert_eq!(plan.changes.len(), 3, "{:?}", actions(&plan));
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn a_probe_is_not_drift_while_starting_unhealthy_answering_or_unasked() {
    use crate::runtime::types::ProbeResult;
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    // Still starting: the engine's own check decides first.
    observed.runtime.containers[0].health = Some("starting".into());
    observed.runtime.containers[0].probe = probed(ProbeResult::Refused);
    // Already unhealthy: Degraded by the engine's word, not a replace loop.
    observed.runtime.containers[1].health = Some("unhealthy".into());
    observed.runtime.containers[1].probe = probed(ProbeResult::TimedOut { timeout_ms: 2000 });
    // Published on another address only: not asked, not drift.
    observed.runtime.containers[2].probe = probed(ProbeResult::NotLoopback {
        address: "192.0.2.1".into(),
    });
    assert!(compute(&d, &observed, &opts()).is_empty());
    // Answering, or never asked (a command that does not probe): nothing either.
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].probe = probed(ProbeResult::Answered { status: 204 });
    assert!(compute(&d, &observed, &opts()).is_empty());
}

#[test]
fn limits_changed_by_hand_are_updated_in_place() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[0].memory_bytes = Some(1 << 30);
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme".to_string(), "~")]
    );
    assert!(plan.changes[0].reasons[0].contains("memory on the engine differs"));
}

#[test]
fn tenant_filter_limits_the_plan() {
    let d = desired(&base());
    let mut o = opts();
    o.tenants = vec!["globex".into()];
    let plan = compute(&d, &ObservedState::default(), &o);
    assert!(
        plan.changes
            .iter()
            .all(|c| c.tenant.is_none() || c.tenant.as_deref() == Some("globex"))
    );
    assert_eq!(
        plan.changes.iter().filter(|c| c.tenant.is_some()).count(),
        4
    );
}

#[test]
fn sensitive_env_values_never_appear() {
    let mut t = base();
    t[0] = tenant(
        "acme",
        "professional",
        "  env: { STRIPE_SECRET_KEY: sk_live_hunter2 }\n",
    );
    let d = desired(&t);
    let plan = compute(&d, &ObservedState::default(), &opts());
    let out = text(&plan, Style { color: false });
    let js = json(&plan).to_string();
    assert!(!out.contains("hunter2") && !js.contains("hunter2"), "{out}");
    assert!(
        out.contains("STRIPE_SECRET_KEY: (sensitive, sha256:"),
        "{out}"
    );
}

#[test]
fn json_has_revision_and_changes_with_before_and_after() {
    let before = desired(&base());
    let observed = converged(&before, &opts());
    let mut t = base();
    t[2] = tenant("initech", "starter", "  env: { LOG_LEVEL: debug }\n");
    let v = json(&compute(&desired(&t), &observed, &opts()));
    assert_eq!(v["revision"], "0123456789abcdef");
    let c = &v["changes"][0];
    assert_eq!(
        (
            c["tenant"].as_str(),
            c["resource"].as_str(),
            c["action"].as_str()
        ),
        (Some("initech"), Some("container"), Some("replace"))
    );
    assert_eq!(c["before"]["env"]["LOG_LEVEL"], "info");
    assert_eq!(c["after"]["env"]["LOG_LEVEL"], "debug");
    assert_eq!(v["summary"]["replace"], 1);
}

#[test]
fn planning_is_deterministic() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers.reverse();
    let a = json(&compute(&d, &observed, &opts()));
    observed.runtime.containers.reverse();
    let b = json(&compute(&d, &observed, &opts()));
    assert_eq!(a, b);
}

#[test]
fn planning_in_parallel_gives_the_same_plan_as_one_thread() {
    let many: Vec<String> = (0..2500)
        .map(|i| {
            tenant(
                &format!("t{i:04}"),
                if i % 2 == 0 {
                    "starter"
                } else {
                    "professional"
                },
                "",
            )
        })
        .collect();
    let before = desired(&many);
    let mut observed = converged(&before, &opts());
    observed.runtime.containers[7].state = ContainerState::Exited;
    observed.runtime.containers.remove(1234);
    let mut after = before.clone();
    after.plans.get_mut("starter").unwrap().resources.pids = 64;
    let one = compute_with_threads(&after, &observed, &opts(), 1);
    let four = compute_with_threads(&after, &observed, &opts(), 4);
    assert_eq!(
        one.summary().replace,
        1249,
        "every starter tenant but the missing one"
    );
    assert_eq!(one.summary().create, 1);
    assert_eq!(one.summary().start, 1);
    assert_eq!(json(&one), json(&four));
}

#[test]
fn a_rotated_api_key_replaces_the_container_without_showing_the_key() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.db.tenants.get_mut("acme").unwrap().api_key_sha256 = Some("new-digest".into());
    let mut env: Vec<(String, String)> = observed.runtime.containers[0]
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.push(("TENANT_API_KEY_SHA256".into(), "old-digest".into()));
    observed.runtime.containers[0].env = crate::runtime::types::Env::from_pairs(env);
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("container.tenantctl-acme".to_string(), "-/+")]
    );
    assert_eq!(
        plan.changes[0].reasons,
        ["the tenant's API key was rotated"]
    );
    let out = text(&plan, Style { color: false }) + &json(&plan).to_string();
    assert!(!out.contains("digest"), "{out}");
}

#[test]
fn duplicate_networks_of_one_name_are_repaired() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    let mut twin = observed.runtime.networks[0].clone();
    twin.id = "twin".into();
    observed.runtime.networks.push(twin);
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("network.tenantctl-acme".to_string(), "~")]
    );
    assert!(plan.changes[0].reasons[0].contains("2 networks share this name"));
}

fn swarm(d: &DesiredState) -> ObservedState {
    super::converged::converged_as(d, &opts(), crate::runtime::types::RuntimeKind::Swarm)
}

fn service_mut<'a>(o: &'a mut ObservedState, slug: &str) -> &'a mut ObservedContainer {
    o.runtime
        .containers
        .iter_mut()
        .find(|c| c.tenant.as_deref() == Some(slug))
        .expect("the tenant has a service")
}

#[test]
fn swarm_mode_creates_services_and_a_converged_swarm_needs_nothing() {
    let d = desired(&base());
    let mut empty = ObservedState::default();
    empty.runtime.kind = crate::runtime::types::RuntimeKind::Swarm;
    let plan = compute(&d, &empty, &opts());
    assert!(
        actions(&plan).contains(&("service.tenantctl-acme".to_string(), "+")),
        "{:?}",
        actions(&plan)
    );
    assert!(
        plan.changes
            .iter()
            .all(|c| c.resource != Resource::Container)
    );
    // The default theme publishes on loopback only, which swarm cannot do: said once.
    assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    assert!(plan.notes[0].contains("theme `modern`"), "{:?}", plan.notes);
    let plan = compute(&d, &swarm(&d), &opts());
    assert!(plan.is_empty(), "{}", text(&plan, Style { color: false }));
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
}

#[test]
fn swarm_mode_rolls_a_changed_service_in_place_instead_of_replacing_it() {
    let d = desired(&base());
    let observed = swarm(&d);
    let mut tenants = base();
    tenants[0] = tenant("acme", "professional", "  env: { LOG_LEVEL: debug }\n");
    let plan = compute(&desired(&tenants), &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("service.tenantctl-acme".to_string(), "~")],
        "{}",
        text(&plan, Style { color: false })
    );
    let c = &plan.changes[0];
    assert!(
        c.reasons.iter().any(|r| r.contains("env.LOG_LEVEL")),
        "{:?}",
        c.reasons
    );
    let s = plan.summary();
    assert_eq!((s.update, s.replace), (1, 0));
    // A plan's memory rolls every service on it, still in place.
    let bigger = PLANS.replace("memory: 512Mi", "memory: 1Gi");
    let mut d2 = desired(&base());
    d2.plans = {
        let files = vec![SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(bigger.into()),
        }];
        let mut all = files;
        all.push(SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(THEMES.into()),
        });
        load(&all).unwrap_or_else(|e| panic!("{e:#?}")).plans
    };
    let plan = compute(&d2, &observed, &opts());
    let services: Vec<_> = actions(&plan)
        .into_iter()
        .filter(|(a, _)| a.starts_with("service."))
        .collect();
    assert_eq!(
        services,
        [
            ("service.tenantctl-acme".to_string(), "~"),
            ("service.tenantctl-globex".to_string(), "~")
        ]
    );
}

#[test]
fn swarm_mode_scales_replicas_suspends_to_zero_and_follows_placement() {
    let d = desired(&base());
    let mut observed = swarm(&d);
    // Someone scaled acme to 3 by hand: back to the plan's 1, in place.
    if let Some(s) = service_mut(&mut observed, "acme").service.as_mut() {
        s.replicas = 3;
    }
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("service.tenantctl-acme".to_string(), "~")]
    );
    assert!(
        plan.changes[0].reasons[0].contains("replicas 3 → 1"),
        "{:?}",
        plan.changes[0].reasons
    );

    // Suspended: scaled to 0 (a stop); active again: started (scaled back).
    let mut tenants = base();
    tenants[1] = tenant("globex", "professional", "  state: suspended\n");
    let suspended = desired(&tenants);
    let plan = compute(&suspended, &swarm(&d), &opts());
    assert!(actions(&plan).contains(&("service.tenantctl-globex".to_string(), ".")));
    let mut stopped = swarm(&suspended);
    let plan = compute(&suspended, &stopped, &opts());
    assert!(plan.is_empty(), "{}", text(&plan, Style { color: false }));
    let plan = compute(&d, &stopped, &opts());
    assert!(actions(&plan).contains(&("service.tenantctl-globex".to_string(), ">")));
    let c = service_mut(&mut stopped, "globex");
    assert_eq!(c.service.as_ref().map(|s| s.replicas), Some(0));

    // A placement constraint in the tenant's file moves the service in place.
    let mut tenants = base();
    tenants[0] = tenant(
        "acme",
        "professional",
        "  placement: { constraints: [\"node.labels.zone==eu-1\"] }\n",
    );
    let plan = compute(&desired(&tenants), &swarm(&d), &opts());
    assert_eq!(
        actions(&plan),
        [("service.tenantctl-acme".to_string(), "~")]
    );
    assert!(plan.changes[0].reasons[0].contains("placement"));
    let after = plan.changes[0]
        .after
        .as_ref()
        .and_then(|a| a.get("constraints"))
        .cloned();
    assert_eq!(after, Some(serde_json::json!(["node.labels.zone == eu-1"])));
}

#[test]
fn docker_mode_says_replicas_and_placement_need_swarm() {
    let plans = PLANS.replace(
        "features: [custom-domain, webhooks]",
        "features: [custom-domain, webhooks]\n  replicas: 3",
    );
    let mut files = vec![
        SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(plans.into()),
        },
        SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(THEMES.into()),
        },
    ];
    files.push(SourceFile {
        path: "tenants/acme.yaml".into(),
        content: SourceContent::Bytes(
            tenant(
                "acme",
                "professional",
                "  placement: { constraints: [\"node.role == manager\"] }\n",
            )
            .into_bytes(),
        ),
    });
    let d = load(&files).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(d.plans["professional"].replicas, 3);
    let plan = compute(&d, &converged(&d, &opts()), &opts());
    assert!(plan.is_empty());
    assert_eq!(plan.notes.len(), 2, "{:?}", plan.notes);
    assert!(plan.notes[0].contains("3 replicas") && plan.notes[1].contains("--runtime swarm"));
}

/// Creations, a replacement with a diff and a start: every kind of body a plan prints.
fn mixed_plan() -> Plan {
    let mut observed = converged(&desired(&base()), &opts());
    observed.runtime.containers[1].state = ContainerState::Exited;
    let mut t = base();
    t[2] = tenant("initech", "starter", "  env: { LOG_LEVEL: debug }\n");
    t.push(tenant("hooli", "starter", ""));
    compute(&desired(&t), &observed, &opts())
}

/// A writer that keeps what it is given and the size of the largest single write.
#[derive(Default)]
struct Sink {
    bytes: Vec<u8>,
    largest_write: usize,
}

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.largest_write = self.largest_write.max(buf.len());
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn written_json_is_the_pretty_document_with_keys_in_format_order() {
    let plan = mixed_plan();
    let s = plan.summary();
    assert_eq!((s.create, s.replace, s.start), (4, 1, 1));
    let mut sink = Sink::default();
    render::write_json(&mut sink, &plan).unwrap();
    let out = String::from_utf8(sink.bytes).unwrap();
    assert_eq!(
        out,
        serde_json::to_string_pretty(&json(&plan)).unwrap() + "\n"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&v),
        [
            "format_version",
            "revision",
            "namespace",
            "summary",
            "changes",
            "notes"
        ]
    );
    let replace = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "replace")
        .unwrap();
    assert_eq!(
        keys(replace),
        [
            "address", "tenant", "resource", "name", "action", "reasons", "before", "after"
        ]
    );
    assert_eq!(replace["before"]["env"]["LOG_LEVEL"], "info");
    assert_eq!(replace["after"]["env"]["LOG_LEVEL"], "debug");
}

#[test]
fn a_large_plan_is_written_in_pieces_not_as_one_string() {
    let many: Vec<String> = (0..300)
        .map(|i| tenant(&format!("t{i:03}"), "starter", ""))
        .collect();
    let plan = compute(&desired(&many), &ObservedState::default(), &opts());
    let mut text_sink = Sink::default();
    render::write_text(&mut text_sink, &plan, Style { color: false }).unwrap();
    let out = String::from_utf8(text_sink.bytes).unwrap();
    assert!(out.starts_with("tenantctl will perform the following actions"));
    assert!(
        out.ends_with("Plan: 1203 to create, 0 to update, 0 to replace, 0 to destroy.\n"),
        "{}",
        &out[out.len() - 200..]
    );
    let mut json_sink = Sink::default();
    render::write_json(&mut json_sink, &plan).unwrap();
    for (what, size, largest) in [
        ("text", out.len(), text_sink.largest_write),
        ("json", json_sink.bytes.len(), json_sink.largest_write),
    ] {
        assert!(
            size > 200_000 && largest <= 16 * 1024,
            "{what}: {size} bytes written at most {largest} at a time"
        );
    }
}

#[test]
fn a_replan_is_the_same_plan_unless_a_change_differs() {
    let d = desired(&base());
    let mut observed = converged(&d, &opts());
    observed.runtime.containers[1].state = ContainerState::Exited;
    let shown = compute(&d, &observed, &opts());
    // Someone recreated the stopped container meanwhile: the ids differ, the plan reads the same.
    observed.runtime.containers[1].id = "recreated".into();
    let same = compute(&d, &observed, &opts());
    assert_ne!(shown.changes[0].container_id, same.changes[0].container_id);
    observed.runtime.containers[0].state = ContainerState::Exited;
    let more = compute(&d, &observed, &opts());
    let mut t = base();
    t[2] = tenant("initech", "starter", "  env: { LOG_LEVEL: debug }\n");
    let edited = compute(&desired(&t), &converged(&d, &opts()), &opts());
    let mut edited_again = edited.clone();
    edited_again.changes[0].after.as_mut().unwrap()["env"]["LOG_LEVEL"] = "trace".into();
    for (a, b, expected) in [
        (&shown, &same, true),
        (&shown, &more, false),
        (&more, &shown, false),
        (&edited, &edited_again, false),
        (&edited, &edited.clone(), true),
    ] {
        assert_eq!(a.same_changes(b), expected);
        // What apply compared before: the changes as `--output json` shows them.
        assert_eq!(json(a)["changes"] == json(b)["changes"], expected);
    }
}

#[test]
fn a_tenant_whose_last_apply_failed_is_planned_until_it_converges() {
    let d = desired(&base());
    let mut o = converged(&d, &opts());
    if let Some(r) = o.db.tenants.get_mut("acme") {
        r.last_error = Some("GET /health: connection refused".into());
        r.desired_revision = Some("4f2a9c1e0000".into());
    }
    let plan = compute(&d, &o, &opts());
    assert_eq!(actions(&plan), [("tenant-record.acme".to_string(), "~")]);
    let c = &plan.changes[0];
    assert_eq!(
        c.reasons,
        ["the last apply at 4f2a9c1 failed: tried again until the tenant converges"]
    );
    assert_eq!(
        c.before.as_ref().map(|b| b["lastError"].clone()),
        Some(serde_json::json!("GET /health: connection refused"))
    );
    assert_eq!(
        c.after.as_ref().map(|a| a["lastError"].clone()),
        Some(Value::Null)
    );

    // A settings change beside it is one change, with both reasons.
    if let Some(r) = o.db.tenants.get_mut("acme") {
        r.owner = "old@acme.example".into();
    }
    let plan = compute(&d, &o, &opts());
    assert_eq!(actions(&plan), [("tenant-record.acme".to_string(), "~")]);
    assert_eq!(
        plan.changes[0].reasons.len(),
        2,
        "{:?}",
        plan.changes[0].reasons
    );
    assert_eq!(plan.changes[0].reasons[0], "owner changed");
}

/// A theme with its own image, for the health-command and upgrade tests.
const IMAGE_THEME: &str = "kind: Theme
name: modern
spec:
  displayName: Upfront Modern
  version: 1.2.0
  image: registry.example/shop:4
";

fn desired_with_theme(theme: &str, tenants: &[String]) -> DesiredState {
    let mut files = vec![
        SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(PLANS.into()),
        },
        SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(theme.to_string().into_bytes()),
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

/// The world an older tenantctl left: every container labelled with hash version 1.
fn made_by_hash_v1(d: &DesiredState) -> ObservedState {
    let mut observed = converged(d, &opts());
    for c in &mut observed.runtime.containers {
        let slug = c.tenant.clone().unwrap_or_default();
        let t = &d.tenants[&slug];
        let spec =
            container::desired_container("tenantctl", t, &d.plans[&t.plan], &d.themes[&t.theme]);
        c.hash_version = Some("1".into());
        c.spec_hash = spec_hash(&spec, "1");
    }
    observed
}

#[test]
fn built_in_site_containers_of_hash_version_1_are_replaced_for_the_security_change() {
    let d = desired(&base());
    let observed = made_by_hash_v1(&d);
    let plan = compute(&d, &observed, &opts());
    assert_eq!(
        actions(&plan),
        [
            ("container.tenantctl-acme".to_string(), "-/+"),
            ("container.tenantctl-globex".to_string(), "-/+"),
            ("container.tenantctl-initech".to_string(), "-/+"),
        ]
    );
    let shown = text(&plan, Style { color: false });
    assert!(
        shown.contains("security: the built-in site now runs as uid:gid 10001:10001 with a read-only root filesystem"),
        "{shown}"
    );
    // Once replaced (hash version 2), nothing more.
    assert!(compute(&d, &converged(&d, &opts()), &opts()).is_empty());
}

#[test]
fn image_theme_containers_of_hash_version_1_with_the_old_health_command_are_converged() {
    let d = desired_with_theme(IMAGE_THEME, &base());
    let observed = made_by_hash_v1(&d);
    let plan = compute(&d, &observed, &opts());
    assert!(plan.is_empty(), "{}", text(&plan, Style { color: false }));
    // A real change still replaces them, with the new command.
    let mut changed = base();
    changed[0] = tenant("acme", "starter", "");
    let d2 = desired_with_theme(IMAGE_THEME, &changed);
    let plan = compute(&d2, &observed, &opts());
    let containers: Vec<_> = actions(&plan)
        .into_iter()
        .filter(|(a, _)| a.starts_with("container."))
        .collect();
    assert_eq!(
        containers,
        [("container.tenantctl-acme".to_string(), "-/+")]
    );
}

#[test]
fn a_flag_change_updates_the_record_in_place_for_the_builtin_site() {
    let before = desired(&base());
    let observed = converged(&before, &opts());
    // The tenant's own flags and its plan's: neither replaces a built-in site.
    let mut t = base();
    t[0] = tenant(
        "acme",
        "professional",
        "  features: { add: [beta], remove: [webhooks] }\n",
    );
    let plan = compute(&desired(&t), &observed, &opts());
    assert_eq!(
        actions(&plan),
        [("tenant-record.acme".to_string(), "~")],
        "{}",
        text(&plan, Style { color: false })
    );
    let c = &plan.changes[0];
    assert_eq!(
        c.after.as_ref().unwrap()["effectiveFeatures"],
        serde_json::json!({"beta": "tenant", "custom-domain": "plan"})
    );
    assert!(
        c.reasons.iter().any(|r| r.contains("effectiveFeatures")),
        "{:?}",
        c.reasons
    );

    let plans = PLANS.replace(
        "features: [custom-domain, webhooks]",
        "features: [custom-domain]",
    );
    let mut files = vec![
        SourceFile {
            path: "plans/all.yaml".into(),
            content: SourceContent::Bytes(plans.into()),
        },
        SourceFile {
            path: "themes/modern.yaml".into(),
            content: SourceContent::Bytes(THEMES.into()),
        },
    ];
    for (i, t) in base().iter().enumerate() {
        files.push(SourceFile {
            path: format!("tenants/t{i}.yaml"),
            content: SourceContent::Bytes(t.clone().into_bytes()),
        });
    }
    let d = load(&files).unwrap();
    let plan = compute(&d, &observed, &opts());
    let a = actions(&plan);
    assert!(
        a.iter()
            .all(|(addr, sym)| !addr.starts_with("container.") && *sym != "-/+"),
        "{a:?}"
    );
    assert!(
        a.contains(&("tenant-record.acme".to_string(), "~")),
        "{a:?}"
    );
    assert!(
        a.contains(&("tenant-record.globex".to_string(), "~")),
        "{a:?}"
    );
}
