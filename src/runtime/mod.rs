//! runtime (placeholder types until the bollard module lands)
use std::collections::BTreeMap;

pub const LABEL_MANAGED: &str = "tenantctl.managed";
pub const LABEL_NAMESPACE: &str = "tenantctl.namespace";
pub const LABEL_TENANT: &str = "tenantctl.tenant";
pub const LABEL_SPEC_HASH: &str = "tenantctl.spec-hash";
pub const LABEL_HASH_VERSION: &str = "tenantctl.spec-hash-version";
pub const LABEL_REVISION: &str = "tenantctl.revision";

#[derive(Debug, Clone, Default)]
pub struct ObservedRuntime {
    pub containers: Vec<ObservedContainer>,
    pub networks: Vec<ObservedNetwork>,
    pub volumes: Vec<ObservedVolume>,
}
#[derive(Debug, Clone)]
pub struct ObservedContainer {
    pub id: String,
    pub name: String,
    pub tenant: Option<String>,
    pub spec_hash: Option<String>,
    pub hash_version: Option<String>,
    pub revision: Option<String>,
    pub state: ContainerState,
    pub health: Option<String>,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub nano_cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub pids_limit: Option<i64>,
    pub published_ports: Vec<PublishedPort>,
    pub labels: BTreeMap<String, String>,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Unknown(String),
}
impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Restarting)
    }
}
impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
#[derive(Debug, Clone)]
pub struct PublishedPort {
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}
#[derive(Debug, Clone)]
pub struct ObservedNetwork {
    pub id: String,
    pub name: String,
    pub tenant: Option<String>,
    pub subnet: Option<String>,
}
#[derive(Debug, Clone)]
pub struct ObservedVolume {
    pub name: String,
    pub tenant: Option<String>,
}
