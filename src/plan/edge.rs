//! The edge in the plan: its container's spec and hash (`+ edge`, `-/+ edge`, `> edge`), and
//! the routes tenantctl wants it to hold (`~ edge-routes` when its `GET /routes` differs). Pure.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Action, Resource, change};
use crate::model::{DesiredState, Edge, EdgeTls, TenantState};
use crate::runtime::types::{
    EDGE_DATA, EDGE_HASH_VERSION, EdgeCertificate, EdgeRoute, EdgeSpec, EdgeTable, HeldCertificate,
    LABEL_HASH_VERSION, LABEL_REVISION, LABEL_ROLE, LABEL_SPEC_HASH, ObservedRuntime, ROLE_EDGE,
    builtin_site_image, container_name, edge_name, edge_volume_name, site_user,
};

/// The edge's container as `edge` asks for it.
pub fn desired_edge(namespace: &str, edge: &Edge) -> EdgeSpec {
    let mut env = BTreeMap::from([
        ("TENANTCTL_EDGE_HTTP".to_string(), edge.http.clone()),
        ("TENANTCTL_EDGE_ADMIN".to_string(), edge.admin.clone()),
        ("TENANTCTL_EDGE_DATA".to_string(), EDGE_DATA.to_string()),
        (
            "TENANTCTL_EDGE_TLS".to_string(),
            edge.tls.mode().to_string(),
        ),
    ]);
    if let Some(https) = &edge.https {
        env.insert("TENANTCTL_EDGE_HTTPS".into(), https.clone());
    }
    if let EdgeTls::Acme {
        email, directory, ..
    } = &edge.tls
    {
        env.insert("TENANTCTL_EDGE_ACME_EMAIL".into(), email.clone());
        env.insert("TENANTCTL_EDGE_ACME_DIRECTORY".into(), directory.clone());
    }
    EdgeSpec {
        name: edge_name(namespace),
        image: builtin_site_image(),
        env,
        volume: edge_volume_name(namespace),
        health_cmd: vec![
            "CMD".into(),
            "/tenantctl".into(),
            "site-health".into(),
            format!("http://{}/healthz", edge.admin),
        ],
        user: site_user(),
        read_only_rootfs: true,
        admin: edge.admin.clone(),
    }
}

/// The labels of the edge's container: managed, role, spec hash, revision.
pub fn edge_labels(namespace: &str, spec: &EdgeSpec, revision: &str) -> BTreeMap<String, String> {
    let mut labels = crate::runtime::types::managed_labels(namespace, "");
    labels.remove(crate::runtime::types::LABEL_TENANT);
    labels.insert(LABEL_ROLE.into(), ROLE_EDGE.into());
    labels.insert(LABEL_SPEC_HASH.into(), spec.hash());
    labels.insert(LABEL_HASH_VERSION.into(), EDGE_HASH_VERSION.into());
    labels.insert(LABEL_REVISION.into(), revision.into());
    labels
}

/// The routes tenantctl wants the edge to hold: each tenant of `desired` with a host, to its
/// running container's loopback published port (none while it does not run), with its state.
pub fn desired_routes(
    desired: &DesiredState,
    runtime: &ObservedRuntime,
    namespace: &str,
) -> Vec<EdgeRoute> {
    let Some(edge) = &desired.edge else {
        return Vec::new();
    };
    let mut routes: Vec<EdgeRoute> = desired
        .tenants
        .values()
        .filter_map(|t| {
            let hosts = edge.hosts_of(t);
            if hosts.is_empty() {
                return None;
            }
            let port = desired.themes.get(&t.theme).map(|th| th.port);
            let name = container_name(namespace, &t.slug);
            let upstream = runtime
                .containers
                .iter()
                .find(|c| c.name == name && c.state.is_running())
                .and_then(|c| {
                    c.published_ports
                        .iter()
                        .find(|p| Some(p.container_port) == port && p.host_port != 0)
                })
                .and_then(crate::usage::site::loopback_addr)
                .map(|a| a.to_string());
            let state = match t.state {
                TenantState::Active => "active",
                TenantState::Suspended => "suspended",
                TenantState::Cancelled => "cancelled",
            };
            Some(EdgeRoute {
                tenant: t.slug.clone(),
                hosts,
                upstream: if t.state == TenantState::Active {
                    upstream
                } else {
                    None
                },
                state: state.into(),
            })
        })
        .collect();
    routes.sort();
    routes
}

/// The table of [`desired_routes`] with the certificates of `tls: files`.
pub fn desired_table(
    desired: &DesiredState,
    runtime: &ObservedRuntime,
    namespace: &str,
) -> EdgeTable {
    let certificates = desired
        .edge
        .as_ref()
        .map(|e| desired_certificates(&e.tls))
        .unwrap_or_default();
    EdgeTable::new(desired_routes(desired, runtime, namespace), certificates)
}

/// The certificates of `tls: files`, as the revision holds them (none for other modes).
pub fn desired_certificates(tls: &EdgeTls) -> Vec<EdgeCertificate> {
    let EdgeTls::Files(files) = tls else {
        return Vec::new();
    };
    files
        .iter()
        .map(|f| EdgeCertificate {
            hosts: f.hosts.clone(),
            cert_pem: f.cert_pem.clone(),
            key_pem: f.key_pem.clone(),
        })
        .collect()
}

/// The key of a host's certificate in the routes view (`certificate:shop.acme.example`).
const CERT_KEY: &str = "certificate:";

/// Adds each host's certificate to a routes view: `certificate:HOST` → `sha256:` and the first
/// 16 hex digits of its PEM's digest, the same whether pushed by tenantctl or read back.
fn add_certificates_view(view: &mut Value, held: &[HeldCertificate]) {
    let Value::Object(map) = view else {
        return;
    };
    for c in held {
        for host in &c.hosts {
            let short: String = c.cert_sha256.chars().take(16).collect();
            map.insert(
                format!("{CERT_KEY}{host}"),
                Value::String(format!("sha256:{short}")),
            );
        }
    }
}

/// Routes as a plan shows them: `host → upstream (state)`, by host.
pub fn routes_view(routes: &[EdgeRoute]) -> Value {
    let mut map = serde_json::Map::new();
    let mut hosts: Vec<(&String, &EdgeRoute)> = routes
        .iter()
        .flat_map(|r| r.hosts.iter().map(move |h| (h, r)))
        .collect();
    hosts.sort();
    for (host, r) in hosts {
        let to = match (&r.upstream, r.state.as_str()) {
            (_, "suspended" | "cancelled") => format!("{} ({})", r.tenant, r.state),
            (Some(u), _) => format!("{} at {u}", r.tenant),
            (None, _) => format!("{} (not running)", r.tenant),
        };
        map.insert(host.clone(), Value::String(to));
    }
    Value::Object(map)
}

fn spec_view(spec: &EdgeSpec) -> Value {
    serde_json::json!({
        "image": spec.image,
        "env": spec.env,
        "volume": spec.volume,
        "network": "host",
    })
}

impl super::Planner<'_> {
    /// The edge's own changes: its container (before the tenants, so a replace can switch it).
    pub(super) fn edge(&mut self) {
        let observed = self.observed.runtime.edge.as_ref();
        let ns = &self.opts.namespace;
        let Some(edge) = &self.desired.edge else {
            if let Some(o) = observed {
                let mut c = change(None, Resource::Edge, &o.container.name, Action::Destroy);
                c.reasons
                    .push("edge/edge.yaml is no longer in git; its data volume is kept".into());
                c.container_id = Some(o.container.id.clone());
                self.changes.push(c);
            }
            return;
        };
        if self.swarm() {
            self.notes.push(
                "the edge runs only with --runtime docker (with swarm it would be a service on the managers publishing the edge's ports in host mode); nothing is planned for it".into(),
            );
            return;
        }
        let spec = desired_edge(ns, edge);
        let Some(o) = observed else {
            let mut c = change(None, Resource::Edge, &spec.name, Action::Create);
            c.reasons.push(format!(
                "edge {} is new in git: listens on {}{}",
                edge.origin,
                edge.http,
                edge.https
                    .as_deref()
                    .map(|h| format!(" and {h} (tls {})", edge.tls.mode()))
                    .unwrap_or_default()
            ));
            c.after = Some(spec_view(&spec));
            self.changes.push(c);
            return;
        };
        let current = &o.container;
        let version = current.hash_version.as_deref().unwrap_or("");
        if version != EDGE_HASH_VERSION && current.spec_hash.is_some() {
            self.notes.push(format!(
                "edge {} carries spec-hash version {version}; this tenantctl knows {EDGE_HASH_VERSION}: it is left as it is",
                current.name
            ));
            return;
        }
        if current.spec_hash.as_deref() != Some(spec.hash().as_str()) {
            let before = serde_json::json!({
                "image": current.image,
                "env": current
                    .env
                    .iter()
                    .filter(|(k, _)| k.starts_with("TENANTCTL_EDGE_"))
                    .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                    .collect::<serde_json::Map<_, _>>(),
                "volume": spec.volume,
                "network": "host",
            });
            let after = spec_view(&spec);
            let mut c = change(None, Resource::Edge, &spec.name, Action::Replace);
            c.reasons = super::changed_fields(Some(&before), Some(&after))
                .into_iter()
                .map(|f| format!("{f} changed (edge/edge.yaml)"))
                .collect();
            if c.reasons.is_empty() {
                c.reasons.push(
                    "spec hash differs (a setting the engine does not report changed)".into(),
                );
            }
            c.before = Some(before);
            c.after = Some(after);
            c.container_id = Some(current.id.clone());
            self.changes.push(c);
            return;
        }
        if !current.state.is_running() {
            let mut c = change(None, Resource::Edge, &spec.name, Action::Start);
            c.reasons
                .push(format!("the edge's container is {}", current.state));
            c.container_id = Some(current.id.clone());
            self.changes.push(c);
        }
    }

    /// `~ edge-routes` when the edge holds other routes than tenantctl wants (after the tenants).
    pub(super) fn edge_routes(&mut self) {
        if self.desired.edge.is_none() || self.swarm() {
            return;
        }
        let ns = &self.opts.namespace;
        let wanted = desired_routes(self.desired, &self.observed.runtime, ns);
        let name = edge_name(ns);
        let held = match self.observed.runtime.edge.as_ref() {
            // Made or replaced by this plan: its routes are pushed once it answers.
            None => None,
            Some(o) if self.changes.iter().any(|c| c.resource == Resource::Edge) => {
                let _ = o;
                None
            }
            Some(o) => match &o.routes {
                // Not asked (a command that does not read the edge), or it runs no more.
                None => return,
                Some(Err(why)) => {
                    self.notes.push(format!(
                        "the edge's admin API did not answer ({why}); its routes are pushed once it does"
                    ));
                    return;
                }
                Some(Ok(table)) => Some(table),
            },
        };
        // Under `tls: files` the certificates are compared too, by the digest `GET /routes`
        // gives: a certificate changed in git is pushed even when no route changed.
        let files = match &self.desired.edge {
            Some(Edge {
                tls: EdgeTls::Files(files),
                ..
            }) => Some(files),
            _ => None,
        };
        let view = |routes: &[EdgeRoute], certs: &[HeldCertificate]| {
            let mut v = routes_view(routes);
            if files.is_some() {
                add_certificates_view(&mut v, certs);
            }
            v
        };
        let wanted_certs: Vec<HeldCertificate> = files
            .map(|_| {
                self.desired
                    .edge
                    .as_ref()
                    .map(|e| desired_certificates(&e.tls))
                    .unwrap_or_default()
                    .iter()
                    .map(EdgeCertificate::held)
                    .collect()
            })
            .unwrap_or_default();
        let before = held.map(|t| view(&t.routes, &t.held_certificates));
        let after = view(&wanted, &wanted_certs);
        if before.as_ref() == Some(&after) {
            return;
        }
        let cert_path = |host: &str| {
            files
                .and_then(|f| f.iter().find(|c| c.hosts.iter().any(|h| h == host)))
                .map(|c| c.cert.clone())
                .unwrap_or_default()
        };
        let mut c = change(None, Resource::EdgeRoutes, &name, Action::Update);
        c.reasons = match &before {
            None => vec![format!(
                "the routes of {} tenants, pushed once the edge answers",
                wanted.len()
            )],
            Some(b) => super::changed_fields(Some(b), Some(&after))
                .into_iter()
                .map(|key| {
                    let to = after.get(&key).and_then(Value::as_str);
                    if let Some(host) = key.strip_prefix(CERT_KEY) {
                        return match (b.get(&key), to) {
                            (Some(_), Some(_)) => {
                                format!("certificate of {host} changed ({})", cert_path(host))
                            }
                            (None, Some(_)) => {
                                format!("certificate of {host} is new ({})", cert_path(host))
                            }
                            _ => format!("certificate of {host} is served no more"),
                        };
                    }
                    match to {
                        Some(to) => format!("{key} → {to}"),
                        None => format!("{key} is routed no more"),
                    }
                })
                .collect(),
        };
        // An edge not made yet holds nothing: every route shows as added.
        c.before = Some(before.unwrap_or_else(|| Value::Object(Default::default())));
        c.after = Some(after);
        self.changes.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SourceContent, SourceFile};
    use crate::plan::converged::converged;
    use crate::plan::{PlanOptions, compute};
    use crate::runtime::types::PublishedPort;

    fn desired(edge: bool) -> DesiredState {
        let mut files = crate::testing::state_files(&[("a", "A"), ("b", "B")]);
        if edge {
            files.push((
                "edge/edge.yaml".into(),
                "kind: Edge\nname: edge\nspec: { http: 127.0.0.1:8080, baseDomain: t.example }\n"
                    .into(),
            ));
        }
        let files: Vec<SourceFile> = files
            .into_iter()
            .map(|(path, text)| SourceFile {
                path,
                content: SourceContent::Bytes(text.into_bytes()),
            })
            .collect();
        crate::model::load(&files).expect("valid")
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            namespace: "ns".into(),
            revision: "r".into(),
            prune: true,
            tenants: vec![],
        }
    }

    fn addresses(desired: &DesiredState, observed: &crate::plan::ObservedState) -> Vec<String> {
        compute(desired, observed, &opts())
            .changes
            .iter()
            .map(|c| format!("{} {}", c.action.symbol(), c.address()))
            .collect()
    }

    /// An edge with `tls: files`: a certificate per tenant host, PEM files under edge/.
    fn desired_files(a: &(String, String), b: &(String, String)) -> DesiredState {
        let mut files = crate::testing::state_files(&[("a", "A"), ("b", "B")]);
        files.push((
            "edge/edge.yaml".into(),
            "kind: Edge\nname: edge\nspec:\n  http: 127.0.0.1:8080\n  https: 127.0.0.1:8443\n  baseDomain: t.example\n  tls:\n    mode: files\n    certificates:\n      - { hosts: [a.t.example], cert: edge/a.pem, key: edge/a.key }\n      - { hosts: [b.t.example], cert: ./edge/b.pem, key: edge/b.key }\n".into(),
        ));
        for (name, (cert, key)) in [("a", a), ("b", b)] {
            files.push((format!("edge/{name}.pem"), cert.clone()));
            files.push((format!("edge/{name}.key"), key.clone()));
        }
        let files: Vec<SourceFile> = files
            .into_iter()
            .map(|(path, text)| SourceFile {
                path,
                content: SourceContent::Bytes(text.into_bytes()),
            })
            .collect();
        crate::model::load(&files).unwrap_or_else(|d| panic!("{d:#?}"))
    }

    #[test]
    fn a_certificate_changed_in_git_is_an_edge_routes_change_though_no_route_changed() {
        let a = crate::testing::self_signed(&["a.t.example"]);
        let b = crate::testing::self_signed(&["b.t.example"]);
        let d = desired_files(&a, &b);
        let observed = converged(&d, &opts());
        assert!(addresses(&d, &observed).is_empty(), "converged");
        // a's certificate renewed in git: the edge holds the old one.
        let renewed = desired_files(&crate::testing::self_signed(&["a.t.example"]), &b);
        let plan = compute(&renewed, &observed, &opts());
        let change = plan
            .changes
            .iter()
            .find(|c| c.resource == Resource::EdgeRoutes)
            .expect("a routes change");
        assert_eq!(
            change.reasons,
            ["certificate of a.t.example changed (edge/a.pem)"]
        );
        assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
        // The views show digests, never a key.
        let after = change.after.as_ref().expect("after").to_string();
        assert!(after.contains("certificate:a.t.example"), "{after}");
        assert!(!after.contains("PRIVATE"), "{after}");
        // The table pushed carries both certificates.
        let table = desired_table(&renewed, &observed.runtime, "ns");
        assert_eq!(table.certificates.len(), 2);
    }

    #[test]
    fn a_new_edge_is_created_before_the_tenants_and_routed_after_them() {
        let d = desired(true);
        let mut observed = converged(&d, &opts());
        observed.runtime.edge = None;
        assert_eq!(
            addresses(&d, &observed),
            ["+ edge.ns-edge", "~ edge-routes.ns-edge"]
        );
        // Converged, nothing: the edge holds the routes of what runs.
        assert!(addresses(&d, &converged(&d, &opts())).is_empty());
        // Without an edge file, a converged namespace plans nothing either, even with --prune.
        let plain = desired(false);
        assert!(addresses(&plain, &converged(&plain, &opts())).is_empty());
    }

    #[test]
    fn routes_other_than_wanted_are_drift_named_by_host() {
        let d = desired(true);
        let mut observed = converged(&d, &opts());
        // `a` restarted: the engine published another port.
        let a = observed
            .runtime
            .containers
            .iter_mut()
            .find(|c| c.name == "ns-a")
            .expect("a");
        a.published_ports = vec![PublishedPort {
            container_port: 8080,
            host_ip: "127.0.0.1".into(),
            host_port: 49999,
        }];
        let plan = compute(&d, &observed, &opts());
        let change = plan
            .changes
            .iter()
            .find(|c| c.resource == Resource::EdgeRoutes)
            .expect("routes drift");
        assert_eq!(change.reasons, ["a.t.example → a at 127.0.0.1:49999"]);
        assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    }

    #[test]
    fn an_edge_of_another_spec_is_replaced_and_a_stopped_one_started() {
        let d = desired(true);
        let mut observed = converged(&d, &opts());
        let edge = observed.runtime.edge.as_mut().expect("edge");
        edge.container.spec_hash = Some("old".into());
        edge.container.env = crate::runtime::types::Env::from_entries(&[
            "TENANTCTL_EDGE_HTTP=127.0.0.1:9090".to_string(),
        ]);
        let plan = compute(&d, &observed, &opts());
        assert_eq!(plan.changes[0].address(), "edge.ns-edge");
        assert_eq!(plan.changes[0].action, Action::Replace);
        assert!(
            plan.changes[0]
                .reasons
                .iter()
                .any(|r| r == "env.TENANTCTL_EDGE_HTTP changed (edge/edge.yaml)"),
            "{:?}",
            plan.changes[0].reasons
        );
        let mut observed = converged(&d, &opts());
        observed
            .runtime
            .edge
            .as_mut()
            .expect("edge")
            .container
            .state = crate::runtime::types::ContainerState::Exited;
        observed.runtime.edge.as_mut().expect("edge").routes = None;
        // Its routes are pushed again once it answers.
        assert_eq!(
            addresses(&d, &observed),
            ["> edge.ns-edge", "~ edge-routes.ns-edge"]
        );
    }

    #[test]
    fn an_edge_removed_from_git_is_destroyed_and_suspended_tenants_routed_as_such() {
        let plain = desired(false);
        let mut observed = converged(&plain, &opts());
        observed.runtime.edge = converged(&desired(true), &opts()).runtime.edge;
        assert_eq!(addresses(&plain, &observed), ["- edge.ns-edge"]);

        let mut d = desired(true);
        d.tenants.get_mut("b").expect("b").state = TenantState::Suspended;
        let routes = desired_routes(&d, &converged(&d, &opts()).runtime, "ns");
        let b = routes.iter().find(|r| r.tenant == "b").expect("b");
        assert_eq!(
            (b.state.as_str(), b.upstream.as_deref()),
            ("suspended", None)
        );
    }
}
