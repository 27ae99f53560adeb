//! Why a change is planned, in words a reviewer reads: a running container customers cannot
//! reach, the fields of a view that differ, and where a changed container field comes from.

use super::container::ContainerSpec;
use crate::runtime::types::ObservedContainer;
use serde_json::Value;
use std::collections::BTreeSet;

/// Why a customer cannot reach the tenant's running container although nothing else differs
/// (docker backend): the engine publishes no host port for the theme's port, or the site does
/// not answer its health path through it while the engine calls it healthy (or has no check).
/// A container still starting, one the engine already calls unhealthy, or one disconnected from
/// its network (reconnected in place first) is not this drift; a probe failure counts only once
/// confirmed (the probe asks twice). `None` also when nothing was probed.
pub fn unreachable(current: &ObservedContainer, spec: &ContainerSpec) -> Option<String> {
    if !current.state.is_running() || current.service.is_some() {
        return None;
    }
    if current
        .attached_networks
        .as_ref()
        .is_none_or(|attached| !attached.contains(&spec.network))
    {
        return None;
    }
    if !current
        .published_ports
        .iter()
        .any(|p| p.container_port == spec.port)
    {
        return Some(format!("port {} not published", spec.port));
    }
    if !matches!(current.health.as_deref(), None | Some("healthy")) {
        return None;
    }
    let probe = current.probe.as_ref()?;
    let why = probe.failure()?;
    let at = probe
        .url
        .as_deref()
        .map(|u| u.trim_start_matches("http://"))
        .unwrap_or("its published port");
    Some(format!("does not answer on {at}: {why}"))
}

/// Dotted paths of the leaves that differ between two JSON objects.
pub fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    fn walk(prefix: &str, b: Option<&Value>, a: Option<&Value>, out: &mut Vec<String>) {
        match (b, a) {
            (Some(Value::Object(bo)), Some(Value::Object(ao))) => {
                let keys: BTreeSet<&String> = bo.keys().chain(ao.keys()).collect();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, bo.get(k), ao.get(k), out);
                }
            }
            (b, a) if b != a => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// Says where a changed container field comes from, so a reviewer sees the cause.
pub(super) fn explain_field(field: &str, plan: &str, spec: &ContainerSpec) -> String {
    match field {
        "cpus" | "memory" | "pids" => format!("{field} changed (plan `{plan}` resources.{field})"),
        "image" => "image changed (theme image)".to_string(),
        "port" | "publish" => format!("{field} changed (theme)"),
        f if f.starts_with("env.THEME_") => format!("{f} changed (theme config)"),
        f if f.starts_with("env.PLAN_") => format!("{f} changed (plan `{plan}`)"),
        f if f.starts_with("env.")
            && !f.starts_with("env.TENANT_")
            && spec.env.contains_key(&f[4..]) =>
        {
            format!("{f} changed (tenant env)")
        }
        f => format!("{f} changed"),
    }
}
