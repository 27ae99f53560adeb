//! The observed state a fully successful apply of a desired state leaves behind.
//!
//! Used to reason about idempotence (planning against it must give no changes) and to build
//! large synthetic states for benchmarks.

use super::container::desired_shape;
use super::container::{desired_container, labels};
use super::records::{plan_row, tenant_row, theme_row};
use super::{ObservedState, PlanOptions};
use crate::model::{DesiredState, TenantState};
use crate::runtime::types::{
    ContainerState, Env, ObservedContainer, ObservedNetwork, ObservedService, ObservedVolume,
    PublishedPort, RuntimeKind,
};

pub fn converged(desired: &DesiredState, opts: &PlanOptions) -> ObservedState {
    converged_as(desired, opts, RuntimeKind::Docker)
}

/// [`converged`] for a runtime mode: in swarm mode each tenant has a service with its replicas,
/// placement and reservations, and no published port for a loopback-only theme.
pub fn converged_as(
    desired: &DesiredState,
    opts: &PlanOptions,
    kind: RuntimeKind,
) -> ObservedState {
    let mut o = ObservedState::default();
    o.runtime.kind = kind;
    let rev = &opts.revision;
    for (name, p) in &desired.plans {
        o.db.plans.insert(name.clone(), plan_row(p, rev, 0));
    }
    for (name, t) in &desired.themes {
        o.db.themes.insert(name.clone(), theme_row(t, rev, 0));
    }
    for (slug, t) in &desired.tenants {
        o.db.tenants.insert(slug.clone(), tenant_row(t, rev, 0));
        if let Some(plan) = desired.plans.get(&t.plan) {
            o.db.features.insert(
                slug.clone(),
                crate::model::effective_features(plan, t)
                    .into_iter()
                    .map(|(f, s)| (f, s.to_string()))
                    .collect(),
            );
        }
        if t.state == TenantState::Cancelled {
            continue;
        }
        let (Some(plan), Some(theme)) = (desired.plans.get(&t.plan), desired.themes.get(&t.theme))
        else {
            continue;
        };
        let spec = desired_container(&opts.namespace, t, plan, theme);
        o.runtime.networks.push(ObservedNetwork {
            id: format!("net-{slug}"),
            name: spec.network.clone(),
            tenant: Some(slug.clone()),
            subnet: None,
        });
        o.runtime.volumes.push(ObservedVolume {
            name: spec.volume.clone(),
            tenant: Some(slug.clone()),
        });
        let labels = labels(&opts.namespace, slug, &spec, rev);
        let shape = desired_shape(t, plan);
        let service = (kind == RuntimeKind::Swarm).then(|| ObservedService {
            replicas: shape.replicas,
            running: shape.replicas,
            constraints: shape.constraints.clone(),
            reserved_nano_cpus: shape.reserved_nano_cpus,
            reserved_memory_bytes: shape.reserved_memory_bytes,
            update_state: Some("completed".into()),
            ..Default::default()
        });
        let published_ports = match &service {
            Some(_) if !crate::runtime::types::publishes(&spec) => vec![],
            _ => vec![PublishedPort {
                container_port: spec.port,
                host_ip: spec.publish_address.clone(),
                host_port: 0,
            }],
        };
        o.runtime.containers.push(ObservedContainer {
            id: format!("id-{slug}"),
            name: spec.name.clone(),
            tenant: Some(slug.clone()),
            spec_hash: labels.get(crate::runtime::types::LABEL_SPEC_HASH).cloned(),
            hash_version: labels
                .get(crate::runtime::types::LABEL_HASH_VERSION)
                .cloned(),
            revision: Some(rev.clone()),
            state: if t.state == TenantState::Active {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            health: Some("healthy".into()),
            image: spec.image.clone(),
            env: Env::from_pairs(&spec.env),
            nano_cpus: Some(spec.nano_cpus),
            memory_bytes: Some(spec.memory_bytes as i64),
            pids_limit: Some(i64::from(spec.pids)),
            published_ports,
            labels,
            started_at: None,
            attached_networks: (kind == RuntimeKind::Docker).then(|| vec![spec.network.clone()]),
            service,
            probe: None,
            edge_probe: None,
            pid: None,
        });
    }
    if let Some(edge) = desired
        .edge
        .as_ref()
        .filter(|_| kind == RuntimeKind::Docker)
    {
        let spec = super::edge::desired_edge(&opts.namespace, edge);
        let labels = super::edge::edge_labels(&opts.namespace, &spec, rev);
        let table = super::edge::desired_table(desired, &o.runtime, &opts.namespace);
        o.runtime.edge = Some(crate::runtime::types::ObservedEdge {
            container: ObservedContainer {
                id: "id-edge".into(),
                name: spec.name.clone(),
                tenant: None,
                spec_hash: labels.get(crate::runtime::types::LABEL_SPEC_HASH).cloned(),
                hash_version: labels
                    .get(crate::runtime::types::LABEL_HASH_VERSION)
                    .cloned(),
                revision: Some(rev.clone()),
                state: ContainerState::Running,
                health: Some("healthy".into()),
                image: spec.image.clone(),
                env: Env::from_pairs(&spec.env),
                nano_cpus: None,
                memory_bytes: None,
                pids_limit: None,
                published_ports: vec![],
                labels,
                started_at: None,
                attached_networks: Some(vec!["host".into()]),
                service: None,
                probe: None,
                edge_probe: None,
                pid: None,
            },
            routes: Some(Ok(table)),
        });
    }
    o
}
