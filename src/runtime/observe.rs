//! What this namespace manages on the engine, read with label filters and per-container inspects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use bollard::Docker;
use bollard::models::{ContainerInspectResponse, PortMap};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use super::env::Env;
use super::{
    LABEL_HASH_VERSION, LABEL_MANAGED, LABEL_NAMESPACE, LABEL_REVISION, LABEL_SPEC_HASH,
    LABEL_TENANT, RuntimeError,
};

/// How many container inspects run at once.
const INSPECT_CONCURRENCY: usize = 16;

/// Everything one namespace manages, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedRuntime {
    /// Docker: `containers` are containers. Swarm: they are services (one per tenant).
    pub kind: super::RuntimeKind,
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<ObservedNetwork>,
    pub volumes: Vec<ObservedVolume>,
}

impl ObservedRuntime {
    /// The container of a tenant, if any (by label, not by name).
    pub fn container_of(&self, tenant: &str) -> Option<&ObservedContainer> {
        self.containers
            .iter()
            .find(|c| c.tenant.as_deref() == Some(tenant))
    }

    /// The network of a tenant, if any.
    pub fn network_of(&self, tenant: &str) -> Option<&ObservedNetwork> {
        self.networks
            .iter()
            .find(|n| n.tenant.as_deref() == Some(tenant))
    }

    /// The volume of a tenant, if any.
    pub fn volume_of(&self, tenant: &str) -> Option<&ObservedVolume> {
        self.volumes
            .iter()
            .find(|v| v.tenant.as_deref() == Some(tenant))
    }
}

/// One managed container as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    pub id: String,
    /// Without Docker's leading '/'.
    pub name: String,
    pub tenant: Option<String>,
    pub spec_hash: Option<String>,
    pub hash_version: Option<String>,
    pub revision: Option<String>,
    pub state: ContainerState,
    /// "healthy", "unhealthy" or "starting"; None without a health check.
    pub health: Option<String>,
    /// The image reference the container was created from (Config.Image), not the image id.
    pub image: String,
    /// The container's whole environment, including what the image sets.
    pub env: Env,
    /// None when unlimited (the engine reports 0).
    pub nano_cpus: Option<i64>,
    /// None when unlimited (the engine reports 0).
    pub memory_bytes: Option<i64>,
    /// None when unlimited (the engine reports 0, -1 or null).
    pub pids_limit: Option<i64>,
    /// TCP ports published on the host: the live bindings while running, else the configured ones.
    pub published_ports: Vec<PublishedPort>,
    /// Labels other than tenantctl's own (those are parsed into the fields above).
    pub labels: BTreeMap<String, String>,
    /// Unix time the container last started (inspect's `State.StartedAt`); None if it never did.
    pub started_at: Option<i64>,
    /// Swarm mode: the service's replicas, tasks and rolling-update state.
    pub service: Option<ObservedService>,
}

/// What a swarm service reports beyond what a container does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedService {
    /// Replicas asked for (0 when the tenant is suspended).
    pub replicas: u32,
    /// Tasks running (a task with a health check runs only once it is healthy).
    pub running: u32,
    /// Placement constraints, as the service spec holds them.
    pub constraints: Vec<String>,
    pub reserved_nano_cpus: Option<i64>,
    pub reserved_memory_bytes: Option<i64>,
    /// The rolling update's state: updating, paused, completed, rollback_started,
    /// rollback_paused, rollback_completed; None before any update.
    pub update_state: Option<String>,
    pub update_message: Option<String>,
    /// When the last update began (RFC 3339, as the engine reports it).
    pub update_started: Option<String>,
    /// The newest error of a task that is not running, e.g. "task: non-zero exit (1)".
    pub task_error: Option<String>,
    /// Running task containers on this node (stats, logs, usage counters read from these).
    pub local_containers: Vec<String>,
}

impl ObservedService {
    /// The last rolling update failed and the engine put the previous spec back.
    pub fn rolled_back(&self) -> bool {
        matches!(
            self.update_state.as_deref(),
            Some("rollback_started" | "rollback_paused" | "rollback_completed")
        )
    }
}

#[cfg(test)]
impl ObservedContainer {
    /// A bare container of `tenant` for unit tests: no labels, hash, limits, ports or env.
    pub(crate) fn bare(
        id: &str,
        name: &str,
        tenant: &str,
        state: ContainerState,
    ) -> ObservedContainer {
        ObservedContainer {
            id: id.into(),
            name: name.into(),
            tenant: Some(tenant.into()),
            spec_hash: None,
            hash_version: None,
            revision: None,
            state,
            health: None,
            image: String::new(),
            env: Env::from_entries(&[]),
            nano_cpus: None,
            memory_bytes: None,
            pids_limit: None,
            published_ports: vec![],
            labels: Default::default(),
            started_at: None,
            service: None,
        }
    }
}

/// A container's lifecycle state, as Docker names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    /// A state this version does not know (e.g. "stopping" from newer engines).
    Unknown(String),
}

impl ContainerState {
    /// Parse Docker's lowercase state name; anything else is kept as Unknown.
    pub fn parse(state: &str) -> ContainerState {
        match state {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            other => ContainerState::Unknown(other.to_string()),
        }
    }

    /// Docker's lowercase name of the state.
    pub fn as_str(&self) -> &str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown(other) => other,
        }
    }

    /// True only for `Running`: a paused or restarting container is not serving.
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running)
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContainerState {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ContainerState::parse(s))
    }
}

impl Serialize for ContainerState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A TCP port published on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PublishedPort {
    pub container_port: u16,
    /// As the engine reports it ("127.0.0.1", "0.0.0.0", "::", or "" for all addresses).
    pub host_ip: String,
    pub host_port: u16,
}

/// One managed network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub tenant: Option<String>,
    /// The first IPAM subnet, e.g. "10.213.0.0/28".
    pub subnet: Option<String>,
}

/// One managed volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedVolume {
    pub name: String,
    pub tenant: Option<String>,
}

/// The labels every object of `tenant` in `namespace` carries.
pub fn managed_labels(namespace: &str, tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_NAMESPACE.to_string(), namespace.to_string()),
        (LABEL_TENANT.to_string(), tenant.to_string()),
    ])
}

/// The engine-side list filter: both labels must match (the engine ANDs label filters).
pub fn label_filters(namespace: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_NAMESPACE}={namespace}"),
        ],
    )])
}

/// The same check on our side, so a lax filter can never hand us a foreign object.
pub fn is_managed_by<K, V>(labels: &HashMap<K, V>, namespace: &str) -> bool
where
    K: std::borrow::Borrow<str> + std::hash::Hash + Eq,
    V: AsRef<str>,
{
    labels.get(LABEL_MANAGED).map(AsRef::as_ref) == Some("true")
        && labels.get(LABEL_NAMESPACE).map(AsRef::as_ref) == Some(namespace)
}

pub(crate) async fn observe(
    docker: &Docker,
    namespace: &str,
    kind: super::RuntimeKind,
    tenant: Option<&str>,
) -> Result<ObservedRuntime, RuntimeError> {
    let mut filters = label_filters(namespace);
    if let Some(slug) = tenant {
        // The engine ANDs label filters: only this tenant's objects.
        filters
            .entry("label".to_string())
            .or_default()
            .push(format!("{LABEL_TENANT}={slug}"));
    }
    let workloads = async {
        match kind {
            super::RuntimeKind::Docker => observe_containers(docker, namespace, &filters).await,
            super::RuntimeKind::Swarm => {
                super::swarm::observe_services(docker, namespace, &filters).await
            }
        }
    };
    let (containers, networks, volumes) = tokio::try_join!(
        workloads,
        observe_networks(docker, namespace, &filters),
        observe_volumes(docker, namespace, &filters),
    )?;
    Ok(ObservedRuntime {
        kind,
        containers,
        networks,
        volumes,
    })
}

async fn observe_containers(
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
        .filter(|c| c.labels.get(LABEL_MANAGED).map(String::as_str) == Some("true"))
        .filter(|c| c.labels.get(LABEL_NAMESPACE).map(String::as_str) == Some(namespace))
        .map(|mut c| {
            // tenantctl's own labels are parsed into fields; the rest stay (memory on large hosts).
            c.labels.retain(|k, _| !k.starts_with("tenantctl."));
            c
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(containers)
}

/// Inspect one container; `None` when it vanished since it was listed.
pub(crate) async fn inspect_observed(
    docker: &Docker,
    id: &str,
) -> Result<Option<ObservedContainer>, RuntimeError> {
    match docker.inspect_container(id, None).await {
        Ok(response) => Ok(from_inspect(response)),
        Err(error) if super::is_not_found(&error) => Ok(None),
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

    let live = response
        .network_settings
        .and_then(|n| n.ports)
        .map(|ports| published_ports(&ports))
        .unwrap_or_default();
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
        service: None,
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

async fn observe_networks(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedNetwork>, RuntimeError> {
    let options = ListNetworksOptionsBuilder::default()
        .filters(filters)
        .build();
    let networks = docker
        .list_networks(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list networks", e))?;
    let mut out: Vec<ObservedNetwork> = networks
        .into_iter()
        .filter(|n| {
            n.labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, namespace))
        })
        .map(|n| ObservedNetwork {
            tenant: n.labels.as_ref().and_then(|l| l.get(LABEL_TENANT).cloned()),
            subnet: n
                .ipam
                .and_then(|ipam| ipam.config)
                .and_then(|configs| configs.into_iter().find_map(|c| c.subnet)),
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

async fn observe_volumes(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedVolume>, RuntimeError> {
    let options = ListVolumesOptionsBuilder::default()
        .filters(filters)
        .build();
    let response = docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list volumes", e))?;
    let mut out: Vec<ObservedVolume> = response
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter(|v| is_managed_by(&v.labels, namespace))
        .map(|v| ObservedVolume {
            tenant: v.labels.get(LABEL_TENANT).cloned(),
            name: v.name,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use bollard::models::{
        ContainerConfig, ContainerStateStatusEnum, Health, HealthStatusEnum, HostConfig,
        NetworkSettings, PortBinding,
    };

    #[test]
    fn state_round_trips_through_its_name() {
        for name in [
            "created",
            "running",
            "paused",
            "restarting",
            "removing",
            "exited",
            "dead",
        ] {
            let state = ContainerState::parse(name);
            assert!(!matches!(state, ContainerState::Unknown(_)), "{name}");
            assert_eq!(state.to_string(), name);
        }
        assert_eq!(
            ContainerState::parse("stopping"),
            ContainerState::Unknown("stopping".into())
        );
        assert_eq!(ContainerState::parse("stopping").to_string(), "stopping");
        assert!(ContainerState::Running.is_running());
        assert!(!ContainerState::Paused.is_running());
        assert!(!ContainerState::Restarting.is_running());
        assert_eq!(
            "exited".parse::<ContainerState>(),
            Ok(ContainerState::Exited)
        );
        assert_eq!(
            serde_json::to_string(&ContainerState::Running)
                .ok()
                .as_deref(),
            Some("\"running\"")
        );
    }

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

    #[test]
    fn filters_require_managed_and_namespace() {
        let filters = label_filters("prod");
        assert_eq!(filters.len(), 1);
        assert_eq!(
            filters["label"],
            vec![
                "tenantctl.managed=true".to_string(),
                "tenantctl.namespace=prod".to_string()
            ]
        );
    }

    #[test]
    fn managed_check_needs_both_labels_exactly() {
        let labels = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let ns = "tenantctl";
        assert!(is_managed_by(
            &labels(&[(LABEL_MANAGED, "true"), (LABEL_NAMESPACE, ns)]),
            ns
        ));
        assert!(!is_managed_by(&labels(&[(LABEL_NAMESPACE, ns)]), ns));
        assert!(!is_managed_by(
            &labels(&[(LABEL_MANAGED, "false"), (LABEL_NAMESPACE, ns)]),
            ns
        ));
        assert!(!is_managed_by(
            &labels(&[(LABEL_MANAGED, "True"), (LABEL_NAMESPACE, ns)]),
            ns
        ));
        assert!(!is_managed_by(
            &labels(&[
                (LABEL_MANAGED, "true"),
                (LABEL_NAMESPACE, "tenantctl-staging")
            ]),
            ns
        ));
        assert!(!is_managed_by(&labels(&[(LABEL_MANAGED, "true")]), ns));
    }

    #[test]
    fn managed_labels_carry_tenant() {
        let labels = managed_labels("ns", "acme");
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_NAMESPACE], "ns");
        assert_eq!(labels[LABEL_TENANT], "acme");
        let as_hash: HashMap<String, String> = labels.into_iter().collect();
        assert!(is_managed_by(&as_hash, "ns"));
    }

    #[test]
    fn env_splits_at_first_equals() {
        let env = Env::from_entries(&[
            "A=1".to_string(),
            "B=x=y".to_string(),
            "EMPTY=".to_string(),
            "BARE".to_string(),
        ]);
        assert_eq!(env.get("A"), Some("1"));
        assert_eq!(env.get("B"), Some("x=y"));
        assert_eq!(env.get("EMPTY"), Some(""));
        assert_eq!(env.get("BARE"), Some(""));
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
        let ports = from_inspect(response).map(|c| c.published_ports);
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
        response.state = None;
        response.id = None;
        assert!(from_inspect(response).is_none());
    }
}
