//! The runtime's plain types: what is observed, what is wanted, and the names and labels every
//! managed object carries. No engine client here: the planner, status, the meter and the
//! dashboard import only from this module, whatever backend runs the tenants.

mod edge;
mod env;
mod events;
mod logs;
mod observed;
mod phase;
mod probe;
mod spec;
mod stats;
mod workload;

pub use edge::{
    EDGE_DATA, EDGE_HASH_VERSION, EDGE_TOKEN_PATH, EdgeCertificate, EdgeRoute, EdgeSpec, EdgeTable,
    HeldCertificate, LABEL_ROLE, ObservedEdge, ROLE_EDGE, edge_name, edge_volume_name,
    upstream_of_url,
};
pub use env::Env;
pub use events::{
    CONTAINER_ACTIONS, EngineEvent, EventObject, NETWORK_ACTIONS, SERVICE_ACTIONS, tenant_of_name,
};
pub use logs::{LogEnd, LogEvent, LogOptions, LogSource, Tail, pick_log_container, short_id};
pub use observed::{
    ContainerDetail, ContainerState, ObservedContainer, ObservedNetwork, ObservedRuntime,
    ObservedService, ObservedVolume, PublishedPort, is_managed_by, label_filters, managed_labels,
};
pub use phase::{Phase, PhaseSink, phase, with_phases};
pub use probe::{Probe, ProbeResult};
pub use spec::{
    ContainerSpec, SITE_GID, SITE_UID, ServiceShape, builtin_site_image, publishes, site_user,
};
pub use stats::{
    ContainerStats, ReadFrom, StatsMode, StatsSource, combine, cpu_percent_between,
    cpu_percent_from,
};
pub use workload::{
    Applied, EdgeSwitch, EnsuredNetwork, HealthOutcome, Reach, SiteQuery, SwitchFn, Target,
    Workload,
};

/// `"true"` on every object tenantctl manages; nothing without it is ever touched.
pub const LABEL_MANAGED: &str = "tenantctl.managed";
/// The reconciler namespace that owns the object.
pub const LABEL_NAMESPACE: &str = "tenantctl.namespace";
/// The tenant slug the object belongs to.
pub const LABEL_TENANT: &str = "tenantctl.tenant";
/// Hash of everything that shapes the container.
pub const LABEL_SPEC_HASH: &str = "tenantctl.spec-hash";
/// Version of the hashing scheme, so a scheme change is not mistaken for drift.
pub const LABEL_HASH_VERSION: &str = "tenantctl.spec-hash-version";
/// Git commit that was applied.
pub const LABEL_REVISION: &str = "tenantctl.revision";
/// The installation id of the database the object was made with (see `Store::installation_id`);
/// an object without it predates installation ids and is accepted by any database.
pub const LABEL_INSTALLATION: &str = "tenantctl.installation";

/// What a tenant runs as: a plain container on this engine, or a service of the swarm it manages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Docker,
    Swarm,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Docker => "docker",
            RuntimeKind::Swarm => "swarm",
        }
    }
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<RuntimeKind, String> {
        match s.trim() {
            "docker" => Ok(RuntimeKind::Docker),
            "swarm" => Ok(RuntimeKind::Swarm),
            other => Err(format!("`{other}` is not a runtime: use docker or swarm")),
        }
    }
}

/// `<namespace>-<slug>`: a tenant's container name.
pub fn container_name(namespace: &str, slug: &str) -> String {
    format!("{namespace}-{slug}")
}

/// `<namespace>-<slug>`: a tenant's network name.
pub fn network_name(namespace: &str, slug: &str) -> String {
    format!("{namespace}-{slug}")
}

/// `<namespace>-<slug>-data`: a tenant's data volume name.
pub fn volume_name(namespace: &str, slug: &str) -> String {
    format!("{namespace}-{slug}-data")
}
