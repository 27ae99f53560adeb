//! The engine's event stream, narrowed to what may mean drift for this namespace: the engine
//! filters by object type and action, and each event is then told ours by its labels
//! (containers) or its name (networks and services, whose events carry no labels).

use std::collections::HashMap;

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, future};

use super::{CONNECT_TIMEOUT, Engine};
use crate::runtime::RuntimeError;
use crate::runtime::types::{
    CONTAINER_ACTIONS, EngineEvent, EventObject, LABEL_TENANT, NETWORK_ACTIONS, SERVICE_ACTIONS,
    is_managed_by, tenant_of_name,
};

impl Engine {
    /// Pings the engine, so the caller knows it answers, then follows its events about `objects`
    /// of this namespace. Events between the ping and the subscription may be missed: a caller
    /// that (re)subscribes runs a full pass afterwards.
    pub(crate) async fn events(
        &self,
        objects: &[EventObject],
    ) -> Result<BoxStream<'static, Result<EngineEvent, RuntimeError>>, RuntimeError> {
        let unreachable = |reason: String| RuntimeError::Unreachable {
            target: "the engine's event stream".to_string(),
            reason,
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, self.docker().ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(crate::runtime::error::describe(&e))),
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let options = EventsOptionsBuilder::new()
            .filters(&filters(objects))
            .build();
        let namespace = self.namespace().to_string();
        let objects = objects.to_vec();
        let stream = self.docker().events(Some(options)).filter_map(move |item| {
            future::ready(match item {
                Ok(message) => classify(&namespace, &objects, &message).map(Ok),
                Err(e) => Some(Err(RuntimeError::api("follow the engine's events", e))),
            })
        });
        Ok(stream.boxed())
    }
}

/// The engine-side filter: these object types, these actions (the engine ORs values of one
/// key and ANDs keys; `health_status` matches `health_status: <state>`).
fn filters(objects: &[EventObject]) -> HashMap<String, Vec<String>> {
    let mut actions: Vec<String> = Vec::new();
    for object in objects {
        for action in actions_of(*object) {
            if !actions.iter().any(|a| a == action) {
                actions.push((*action).to_string());
            }
        }
    }
    HashMap::from([
        (
            "type".to_string(),
            objects.iter().map(|o| o.as_str().to_string()).collect(),
        ),
        ("event".to_string(), actions),
    ])
}

fn actions_of(object: EventObject) -> &'static [&'static str] {
    match object {
        EventObject::Container => CONTAINER_ACTIONS,
        EventObject::Network => NETWORK_ACTIONS,
        EventObject::Service => SERVICE_ACTIONS,
    }
}

/// The event as ours, or None: another namespace's, another kind, or an action we do not follow.
pub(crate) fn classify(
    namespace: &str,
    objects: &[EventObject],
    message: &EventMessage,
) -> Option<EngineEvent> {
    let object = match message.typ? {
        EventMessageTypeEnum::CONTAINER => EventObject::Container,
        EventMessageTypeEnum::NETWORK => EventObject::Network,
        EventMessageTypeEnum::SERVICE => EventObject::Service,
        _ => return None,
    };
    if !objects.contains(&object) {
        return None;
    }
    let action = message.action.as_deref()?;
    // `health_status: healthy` is followed as `health_status`.
    let verb = action.split(':').next().unwrap_or(action).trim();
    if !actions_of(object).contains(&verb) {
        return None;
    }
    let empty = HashMap::new();
    let attributes = message
        .actor
        .as_ref()
        .and_then(|a| a.attributes.as_ref())
        .unwrap_or(&empty);
    let name = attributes
        .get("name")
        .map(|n| n.trim_start_matches('/').to_string())?;
    let tenant = match object {
        // A container's event carries its labels.
        EventObject::Container => {
            if !is_managed_by(attributes, namespace) {
                return None;
            }
            attributes.get(LABEL_TENANT).cloned()
        }
        EventObject::Network | EventObject::Service => Some(tenant_of_name(namespace, &name)?),
    };
    Some(EngineEvent {
        object,
        action: action.to_string(),
        name,
        tenant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::EventActor;

    fn message(
        typ: EventMessageTypeEnum,
        action: &str,
        attributes: &[(&str, &str)],
    ) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some("0123456789ab".into()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    const ALL: &[EventObject] = &[EventObject::Container, EventObject::Network];

    fn ours(action: &str) -> EventMessage {
        message(
            EventMessageTypeEnum::CONTAINER,
            action,
            &[
                ("name", "ns-acme"),
                ("image", "tenantctl-site:x"),
                ("tenantctl.managed", "true"),
                ("tenantctl.namespace", "ns"),
                ("tenantctl.tenant", "acme"),
            ],
        )
    }

    #[test]
    fn a_container_of_this_namespace_is_told_by_its_labels() {
        let e = classify("ns", ALL, &ours("destroy")).expect("ours");
        assert_eq!(
            (
                e.object,
                e.action.as_str(),
                e.name.as_str(),
                e.tenant.as_deref()
            ),
            (EventObject::Container, "destroy", "ns-acme", Some("acme"))
        );
        let health = classify("ns", ALL, &ours("health_status: unhealthy")).expect("ours");
        assert_eq!(health.action, "health_status: unhealthy");
        // Another namespace, or unmanaged: not ours, whatever the name says.
        assert_eq!(classify("other", ALL, &ours("destroy")), None);
        let unmanaged = message(
            EventMessageTypeEnum::CONTAINER,
            "destroy",
            &[("name", "ns-acme"), ("tenantctl.namespace", "ns")],
        );
        assert_eq!(classify("ns", ALL, &unmanaged), None);
    }

    #[test]
    fn actions_that_cannot_mean_drift_are_dropped() {
        for action in ["create", "attach", "exec_start: sh", "top", "resize"] {
            assert_eq!(classify("ns", ALL, &ours(action)), None, "{action}");
        }
        for action in [
            "die",
            "stop",
            "kill",
            "oom",
            "destroy",
            "start",
            "health_status: healthy",
        ] {
            assert!(classify("ns", ALL, &ours(action)).is_some(), "{action}");
        }
    }

    #[test]
    fn a_network_is_told_by_its_name_and_only_when_followed() {
        let disconnect = message(
            EventMessageTypeEnum::NETWORK,
            "disconnect",
            &[
                ("name", "ns-acme"),
                ("type", "bridge"),
                ("container", "abc"),
            ],
        );
        let e = classify("ns", ALL, &disconnect).expect("ours");
        assert_eq!(
            (e.object, e.tenant.as_deref()),
            (EventObject::Network, Some("acme"))
        );
        assert_eq!(classify("ns", &[EventObject::Container], &disconnect), None);
        assert_eq!(classify("other", ALL, &disconnect), None);
        let connect = message(
            EventMessageTypeEnum::NETWORK,
            "connect",
            &[("name", "ns-acme"), ("type", "bridge")],
        );
        assert_eq!(classify("ns", ALL, &connect), None);
        let image = message(
            EventMessageTypeEnum::IMAGE,
            "delete",
            &[("name", "ns-acme")],
        );
        assert_eq!(classify("ns", ALL, &image), None);
    }

    #[test]
    fn a_service_is_told_by_its_name() {
        let remove = message(
            EventMessageTypeEnum::SERVICE,
            "remove",
            &[("name", "ns-acme")],
        );
        let e = classify("ns", &[EventObject::Service], &remove).expect("ours");
        assert_eq!(
            (e.object, e.tenant.as_deref()),
            (EventObject::Service, Some("acme"))
        );
        assert_eq!(classify("ns", ALL, &remove), None);
    }

    #[test]
    fn the_engine_filter_names_every_type_and_action_once() {
        let f = filters(&[EventObject::Container, EventObject::Network]);
        assert_eq!(f["type"], ["container", "network"]);
        let actions = &f["event"];
        assert!(actions.contains(&"disconnect".to_string()));
        assert!(actions.contains(&"health_status".to_string()));
        // `destroy` is both a container's and a network's action: named once.
        assert_eq!(actions.iter().filter(|a| *a == "destroy").count(), 1);
    }
}
