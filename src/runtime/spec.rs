//! The container a tenant should have, as the planner computes it and the runtime creates it.

use serde::Serialize;
use std::collections::BTreeMap;

/// The image the built-in site runs from; tenantctl builds it locally from its own binary.
pub fn builtin_site_image() -> String {
    format!("tenantctl-site:{}", env!("CARGO_PKG_VERSION"))
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
}
