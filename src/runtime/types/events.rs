//! What the engine says happened to a managed object that may mean drift: a container died or
//! was removed, a network was disconnected, a service was changed. The watch loop follows these
//! to reconcile at once instead of at the next resync.

use std::fmt;

/// What kind of object an [`EngineEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventObject {
    Container,
    Network,
    /// A swarm service.
    Service,
}

impl EventObject {
    pub fn as_str(self) -> &'static str {
        match self {
            EventObject::Container => "container",
            EventObject::Network => "network",
            EventObject::Service => "service",
        }
    }
}

/// One event about an object of this namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineEvent {
    pub object: EventObject,
    /// The engine's action, e.g. `die`, `destroy`, `disconnect`, `health_status: unhealthy`.
    pub action: String,
    /// The object's name (a container's without Docker's leading '/').
    pub name: String,
    /// The tenant it belongs to, when known (its label, or its network's name).
    pub tenant: Option<String>,
}

impl fmt::Display for EngineEvent {
    /// `acme: container destroy (ns-acme)`, or `network destroy (ns-x)` without a tenant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = &self.tenant {
            write!(f, "{t}: ")?;
        }
        write!(
            f,
            "{} {} ({})",
            self.object.as_str(),
            self.action,
            self.name
        )
    }
}

/// Container actions that may leave a tenant's container other than apply left it.
pub const CONTAINER_ACTIONS: &[&str] = &[
    "die",
    "destroy",
    "stop",
    "kill",
    "oom",
    "start",
    "restart",
    "pause",
    "unpause",
    "update",
    "rename",
    "health_status",
];

/// Network actions that cut a tenant's container off its network.
pub const NETWORK_ACTIONS: &[&str] = &["disconnect", "destroy"];

/// Swarm service actions (a service changed or removed behind tenantctl's back).
pub const SERVICE_ACTIONS: &[&str] = &["update", "remove"];

/// The tenant a network or service name `<namespace>-<slug>` belongs to, when it has that
/// shape. Their events carry only the name (no labels), so this is how they are told ours; a
/// namespace that is a prefix of another (`a`, `a-b`) may see the other's network events, which
/// costs a pass that finds nothing to do, never a change.
pub fn tenant_of_name(namespace: &str, name: &str) -> Option<String> {
    let slug = name.strip_prefix(namespace)?.strip_prefix('-')?;
    let shaped = !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    shaped.then(|| slug.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_ours_only_by_its_namespace_prefix_and_a_slug() {
        assert_eq!(tenant_of_name("ns", "ns-acme"), Some("acme".into()));
        assert_eq!(tenant_of_name("ns", "ns-a-b"), Some("a-b".into()));
        assert_eq!(tenant_of_name("ns", "ns"), None);
        assert_eq!(tenant_of_name("ns", "ns-"), None);
        assert_eq!(tenant_of_name("ns", "nsx-acme"), None);
        assert_eq!(tenant_of_name("ns", "other-acme"), None);
        assert_eq!(tenant_of_name("ns", "ns-Acme"), None);
        assert_eq!(tenant_of_name("ns", "bridge"), None);
    }

    #[test]
    fn an_event_reads_as_tenant_object_action_and_name() {
        let e = EngineEvent {
            object: EventObject::Container,
            action: "destroy".into(),
            name: "ns-acme".into(),
            tenant: Some("acme".into()),
        };
        assert_eq!(e.to_string(), "acme: container destroy (ns-acme)");
        let e = EngineEvent {
            tenant: None,
            object: EventObject::Network,
            action: "disconnect".into(),
            ..e
        };
        assert_eq!(e.to_string(), "network disconnect (ns-acme)");
    }
}
