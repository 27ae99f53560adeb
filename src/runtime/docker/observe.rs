//! Managed containers as observed: listed with label filters, then inspected one by one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, PortMap};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::runtime::types::{
    ContainerState, Env, LABEL_HASH_VERSION, LABEL_INSTALLATION, LABEL_MANAGED, LABEL_NAMESPACE,
    LABEL_REVISION, LABEL_ROLE, LABEL_SPEC_HASH, LABEL_TENANT, ObservedContainer, PublishedPort,
    is_managed_by,
};
use crate::runtime::{RuntimeError, is_not_found};

/// How many container inspects run at once.
const INSPECT_CONCURRENCY: usize = 16;

pub(crate) async fn observe_containers(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedContainer>, RuntimeError> {
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(filters)
        .build();
    let summaries = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list containers", e))?;
    let ids: Vec<String> = summaries
        .into_iter()
        .filter(|s| {
            s.labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, namespace))
        })
        .filter_map(|s| s.id)
        .collect();
    let inspected: Vec<Option<ObservedContainer>> = stream::iter(ids)
        .map(|id| async move { inspect_observed(docker, &id).await })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .try_collect()
        .await?;
    let mut containers: Vec<ObservedContainer> = inspected
        .into_iter()
        .flatten()
        .filter_map(|c| ours(c, namespace))
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(containers)
}

/// `container` as an observation shows it when `namespace` manages it, else `None`.
pub(crate) fn ours(mut container: ObservedContainer, namespace: &str) -> Option<ObservedContainer> {
    let label = |key: &str| container.labels.get(key).map(String::as_str);
    if label(LABEL_MANAGED) != Some("true") || label(LABEL_NAMESPACE) != Some(namespace) {
        return None;
    }
    // tenantctl's own labels are parsed into fields; the rest stay (memory on large hosts).
    // The installation label stays: a writing command compares it with its database's.
    // So does the role: the edge is told apart from tenants by it.
    container
        .labels
        .retain(|k, _| !k.starts_with("tenantctl.") || k == LABEL_INSTALLATION || k == LABEL_ROLE);
    Some(container)
}

/// Inspect one container; `None` when it vanished since it was listed.
pub(crate) async fn inspect_observed(
    docker: &Docker,
    id: &str,
) -> Result<Option<ObservedContainer>, RuntimeError> {
    match docker.inspect_container(id, None).await {
        Ok(response) => Ok(from_inspect(response)),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(RuntimeError::api(format!("inspect container {id}"), error)),
    }
}

/// Turn an inspect answer into our view; `None` when it has no id.
pub(crate) fn from_inspect(response: ContainerInspectResponse) -> Option<ObservedContainer> {
    let id = response.id?;
    let config = response.config.unwrap_or_default();
    let host_config = response.host_config.unwrap_or_default();
    let state = response.state.unwrap_or_default();
    let labels: BTreeMap<String, String> = config.labels.unwrap_or_default().into_iter().collect();
    let label = |key: &str| labels.get(key).cloned();

    let health = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| matches!(s.as_str(), "healthy" | "unhealthy" | "starting"));
    // A container that never started reports the zero time (year 1): not a start.
    let started_at = state
        .started_at
        .as_deref()
        .and_then(crate::status::time::parse_rfc3339)
        .filter(|t| *t > 0);
    let container_state = state
        .status
        .map(|s| ContainerState::parse(s.as_ref()))
        .unwrap_or_else(|| ContainerState::Unknown(String::new()));

    let network_settings = response.network_settings.unwrap_or_default();
    let live = network_settings
        .ports
        .map(|ports| published_ports(&ports))
        .unwrap_or_default();
    let mut attached_networks: Vec<String> = network_settings
        .networks
        .map(|n| n.into_keys().collect())
        .unwrap_or_default();
    attached_networks.sort();
    let published_ports = if live.is_empty() {
        host_config
            .port_bindings
            .as_ref()
            .map(published_ports)
            .unwrap_or_default()
    } else {
        live
    };

    Some(ObservedContainer {
        id,
        name: response
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        tenant: label(LABEL_TENANT),
        spec_hash: label(LABEL_SPEC_HASH),
        hash_version: label(LABEL_HASH_VERSION),
        revision: label(LABEL_REVISION),
        state: container_state,
        health,
        image: config.image.unwrap_or_default(),
        env: Env::from_entries(config.env.as_deref().unwrap_or_default()),
        nano_cpus: host_config.nano_cpus.filter(|v| *v > 0),
        memory_bytes: host_config.memory.filter(|v| *v > 0),
        pids_limit: host_config.pids_limit.filter(|v| *v > 0),
        published_ports,
        labels,
        started_at,
        attached_networks: Some(attached_networks),
        service: None,
        probe: None,
        edge_probe: None,
        // The engine reports 0 for a container that does not run.
        pid: state
            .pid
            .filter(|&p| p > 0)
            .and_then(|p| u32::try_from(p).ok()),
    })
}

/// TCP bindings with a real host port, deduplicated and sorted.
pub(crate) fn published_ports(ports: &PortMap) -> Vec<PublishedPort> {
    let mut out = BTreeSet::new();
    for (key, bindings) in ports {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        if proto != "tcp" {
            continue;
        }
        for binding in bindings.iter().flatten() {
            let host_port = binding
                .host_port
                .as_deref()
                .and_then(|p| p.parse::<u16>().ok())
                .unwrap_or(0);
            // Port 0 (or empty) means "let the engine choose": nothing is published yet.
            if host_port == 0 {
                continue;
            }
            out.insert(PublishedPort {
                container_port,
                host_ip: binding.host_ip.clone().unwrap_or_default(),
                host_port,
            });
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use bollard::models::{
        ContainerConfig, ContainerStateStatusEnum, Health, HealthStatusEnum, HostConfig,
        NetworkSettings, PortBinding,
    };

    #[test]
    fn every_bollard_state_maps_to_our_names() {
        // Guards against bollard renaming its enum's Display output.
        assert_eq!(
            ContainerState::parse(ContainerStateStatusEnum::EXITED.as_ref()),
            ContainerState::Exited
        );
        assert_eq!(
            ContainerState::parse(ContainerStateStatusEnum::CREATED.as_ref()),
            ContainerState::Created
        );
    }

    fn binding(ip: &str, port: &str) -> PortBinding {
        PortBinding {
            host_ip: Some(ip.to_string()),
            host_port: Some(port.to_string()),
        }
    }

    #[test]
    fn ports_keep_tcp_with_real_host_port() {
        let ports: PortMap = HashMap::from([
            (
                "8080/tcp".to_string(),
                Some(vec![
                    binding("127.0.0.1", "49153"),
                    binding("127.0.0.1", "49153"),
                ]),
            ),
            (
                "53/udp".to_string(),
                Some(vec![binding("127.0.0.1", "5353")]),
            ),
            ("9000/tcp".to_string(), None),
            (
                "9001/tcp".to_string(),
                Some(vec![binding("127.0.0.1", "0")]),
            ),
            ("9002/tcp".to_string(), Some(vec![binding("", "")])),
            (
                "80/tcp".to_string(),
                Some(vec![binding("0.0.0.0", "8000"), binding("::", "8000")]),
            ),
        ]);
        assert_eq!(
            published_ports(&ports),
            vec![
                PublishedPort {
                    container_port: 80,
                    host_ip: "0.0.0.0".into(),
                    host_port: 8000
                },
                PublishedPort {
                    container_port: 80,
                    host_ip: "::".into(),
                    host_port: 8000
                },
                PublishedPort {
                    container_port: 8080,
                    host_ip: "127.0.0.1".into(),
                    host_port: 49153
                },
            ]
        );
    }

    fn inspect_fixture() -> ContainerInspectResponse {
        ContainerInspectResponse {
            id: Some("abc123".into()),
            name: Some("/tenantctl-acme".into()),
            config: Some(ContainerConfig {
                image: Some("tenantctl-site:1".into()),
                env: Some(vec!["TENANT_SLUG=acme".into(), "PATH=/bin".into()]),
                labels: Some(HashMap::from([
                    (LABEL_MANAGED.to_string(), "true".to_string()),
                    (LABEL_NAMESPACE.to_string(), "tenantctl".to_string()),
                    (LABEL_TENANT.to_string(), "acme".to_string()),
                    (LABEL_SPEC_HASH.to_string(), "h".to_string()),
                    (LABEL_HASH_VERSION.to_string(), "1".to_string()),
                    (LABEL_REVISION.to_string(), "deadbeef".to_string()),
                ])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                nano_cpus: Some(500_000_000),
                memory: Some(0),
                pids_limit: Some(-1),
                port_bindings: Some(HashMap::from([(
                    "8080/tcp".to_string(),
                    Some(vec![binding("127.0.0.1", "18080")]),
                )])),
                ..Default::default()
            }),
            state: Some(bollard::models::ContainerState {
                status: Some(ContainerStateStatusEnum::RUNNING),
                health: Some(Health {
                    status: Some(HealthStatusEnum::HEALTHY),
                    ..Default::default()
                }),
                started_at: Some("2026-01-02T03:04:05.123456789Z".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn inspect_maps_labels_limits_and_ports() {
        let Some(c) = from_inspect(inspect_fixture()) else {
            panic!("fixture has an id");
        };
        assert_eq!(c.id, "abc123");
        assert_eq!(c.name, "tenantctl-acme");
        assert_eq!(c.tenant.as_deref(), Some("acme"));
        assert_eq!(c.spec_hash.as_deref(), Some("h"));
        assert_eq!(c.hash_version.as_deref(), Some("1"));
        assert_eq!(c.revision.as_deref(), Some("deadbeef"));
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.health.as_deref(), Some("healthy"));
        assert_eq!(c.image, "tenantctl-site:1");
        assert_eq!(
            c.started_at,
            crate::status::time::parse_rfc3339("2026-01-02T03:04:05Z")
        );
        assert_eq!(c.env.get("TENANT_SLUG"), Some("acme"));
        assert_eq!(c.nano_cpus, Some(500_000_000));
        assert_eq!(c.memory_bytes, None, "0 means unlimited");
        assert_eq!(c.pids_limit, None, "-1 means unlimited");
        // Not running yet in the engine's eyes: the configured bindings are reported.
        assert_eq!(
            c.published_ports,
            vec![PublishedPort {
                container_port: 8080,
                host_ip: "127.0.0.1".into(),
                host_port: 18080
            }]
        );
    }

    #[test]
    fn live_ports_win_over_configured_ones() {
        let mut response = inspect_fixture();
        response.network_settings = Some(NetworkSettings {
            ports: Some(HashMap::from([(
                "8080/tcp".to_string(),
                Some(vec![binding("127.0.0.1", "49000")]),
            )])),
            ..Default::default()
        });
        let observed = from_inspect(response);
        assert_eq!(
            observed.as_ref().and_then(|c| c.attached_networks.clone()),
            Some(vec![]),
            "no network in the answer: attached to none"
        );
        let ports = observed.map(|c| c.published_ports);
        assert_eq!(
            ports,
            Some(vec![PublishedPort {
                container_port: 8080,
                host_ip: "127.0.0.1".into(),
                host_port: 49000
            }])
        );
    }

    #[test]
    fn health_none_and_missing_state_are_handled() {
        let mut response = inspect_fixture();
        response.state = Some(bollard::models::ContainerState {
            status: Some(ContainerStateStatusEnum::CREATED),
            health: Some(Health {
                status: Some(HealthStatusEnum::NONE),
                ..Default::default()
            }),
            ..Default::default()
        });
        let Some(c) = from_inspect(response) else {
            panic!("fixture has an id");
        };
        assert_eq!(c.health, None);
        assert_eq!(c.state, ContainerState::Created);
        assert_eq!(c.started_at, None, "no StartedAt: never started");

        let mut response = inspect_fixture();
        response.network_settings = Some(NetworkSettings {
            networks: Some(HashMap::from([
                ("tenantctl-acme".to_string(), Default::default()),
                ("bridge".to_string(), Default::default()),
            ])),
            ..Default::default()
        });
        assert_eq!(
            from_inspect(response).and_then(|c| c.attached_networks),
            Some(vec!["bridge".to_string(), "tenantctl-acme".to_string()])
        );

        let mut response = inspect_fixture();
        response.state = None;
        response.id = None;
        assert!(from_inspect(response).is_none());
    }
}
