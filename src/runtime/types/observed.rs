//! What the engine reports, in plain types every reader shares: the planner, status, the meter
//! and the dashboard read these whatever the backend.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::env::Env;
use super::{LABEL_MANAGED, LABEL_NAMESPACE, LABEL_TENANT, RuntimeKind};

/// Everything one namespace manages, each list sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObservedRuntime {
    /// Docker: `containers` are containers. Swarm: they are services (one per tenant).
    pub kind: RuntimeKind,
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<ObservedNetwork>,
    pub volumes: Vec<ObservedVolume>,
    /// The namespace's edge (`tenantctl.role=edge`), never among `containers`.
    pub edge: Option<super::ObservedEdge>,
    /// Set by the reachability probe when this host's neighbour (ARP) table overflowed while it
    /// asked and some sites did not answer: those failures are the host's, and the planner
    /// replaces no container for them (a new container cannot fix the host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_host_fault: Option<String>,
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
    /// Names of the networks the container is attached to, sorted; None when the backend does
    /// not observe it (a swarm service's networks are in its spec).
    pub attached_networks: Option<Vec<String>>,
    /// Swarm mode: the service's replicas, tasks and rolling-update state.
    pub service: Option<ObservedService>,
    /// What a customer reaches through the published loopback port; None when not probed
    /// (not running, swarm, or a command that does not plan).
    pub probe: Option<super::Probe>,
    /// What a customer reaches through the namespace's edge (its HTTP listener, the tenant's
    /// host in `Host`); None without an edge or when not probed. Status judges health by it.
    pub edge_probe: Option<super::Probe>,
    /// The container's main process on the engine's host while it runs (inspect's `State.Pid`):
    /// the meter finds its cgroup and network namespace through it. None when not running, or
    /// for a swarm service (its task containers are inspected when read).
    #[serde(skip)]
    pub pid: Option<u32>,
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
            attached_networks: None,
            service: None,
            probe: None,
            edge_probe: None,
            pid: None,
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

/// What the engine says about a container beyond its state; fetched only for containers
/// that are not running, since only they need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDetail {
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub restart_count: i64,
    /// The engine's error for a container that failed to start.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
