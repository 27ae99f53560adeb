//! The workload a tenant should have, as the planner computes it and a backend creates it.

use serde::Serialize;
use std::collections::BTreeMap;

/// The image the built-in site runs from; tenantctl builds it locally from its own binary.
pub fn builtin_site_image() -> String {
    format!("tenantctl-site:{}", env!("CARGO_PKG_VERSION"))
}

/// The uid the built-in site runs as (`tenantctl site`), never root.
pub const SITE_UID: u32 = 10001;
/// The gid the built-in site runs as.
pub const SITE_GID: u32 = 10001;

/// `uid:gid` of the built-in site, as the engine's `User` field takes it.
pub fn site_user() -> String {
    format!("{SITE_UID}:{SITE_GID}")
}

/// Everything that shapes one tenant's container. Its canonical JSON is the spec-hash input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub nano_cpus: i64,
    pub memory_bytes: u64,
    pub pids: u32,
    pub port: u16,
    pub publish_address: String,
    pub health_cmd: Vec<String>,
    pub health_interval_seconds: u32,
    pub cap_add: Vec<String>,
    pub network: String,
    pub volume: String,
    /// `uid:gid` the process runs as; None keeps the image's own user (themes with an image).
    pub user: Option<String>,
    /// The root filesystem is mounted read-only (the built-in site writes only to its volume).
    pub read_only_rootfs: bool,
}

/// The parts of a service that are not in the container spec (and not in its hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceShape {
    /// 0 runs no task (a suspended tenant).
    pub replicas: u32,
    pub constraints: Vec<String>,
    pub reserved_nano_cpus: Option<i64>,
    pub reserved_memory_bytes: Option<i64>,
    /// Keep this published port across updates (the routing mesh chose it at create).
    pub published_port: Option<u16>,
}

/// Whether `spec` asks for a port swarm can publish: on every address, not loopback only.
pub fn publishes(spec: &ContainerSpec) -> bool {
    matches!(spec.publish_address.as_str(), "0.0.0.0" | "::" | "")
}
