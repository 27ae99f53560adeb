//! The service request of a tenant: its container's shape plus replicas, reservations,
//! placement and a rolling-update policy that rolls back by itself.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, Limit, Mount, MountType, MountVolumeOptions, NetworkAttachmentConfig,
    ResourceObject, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecPrivileges, TaskSpecLogDriver, TaskSpecPlacement,
    TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};

use crate::runtime::engine::{
    BodyOptions, DATA_MOUNT_PATH, SITE_CMD, health_config, log_limits, owned_labels,
};
use crate::runtime::types::{
    ContainerSpec, LABEL_MANAGED, LABEL_NAMESPACE, LABEL_TENANT, ServiceShape, publishes,
};

/// Failures of a new task within this time after it starts make the update roll back.
const UPDATE_MONITOR: Duration = Duration::from_secs(5);

/// The service request for `spec`: the container's shape (image, env, limits, health check,
/// capabilities, volume, network) plus replicas, reservations, placement and update policy.
pub fn service_spec(
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    extra_env: &BTreeMap<String, String>,
    shape: &ServiceShape,
    options: &BodyOptions,
) -> ServiceSpec {
    let namespace = options.namespace.as_str();
    let mut env = spec.env.clone();
    env.extend(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let memory = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
    let owned = owned_labels(labels, namespace);
    let volume_labels: HashMap<String, String> = owned
        .iter()
        .filter(|(k, _)| [LABEL_MANAGED, LABEL_NAMESPACE, LABEL_TENANT].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let args = (spec.image == options.site_image).then(|| vec![SITE_CMD.to_string()]);
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    // Swarm cannot bind a published port to one address: only a theme that publishes on every
    // address gets one (through the routing mesh); loopback-only themes get none.
    let ports = publishes(spec).then(|| {
        vec![EndpointPortConfig {
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(spec.port)),
            published_port: shape.published_port.map(i64::from),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
            ..Default::default()
        }]
    });
    ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(owned),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(spec.image.clone()),
                args,
                user: spec.user.clone(),
                read_only: Some(spec.read_only_rootfs),
                env: Some(env),
                mounts: Some(vec![Mount {
                    target: Some(DATA_MOUNT_PATH.to_string()),
                    source: Some(spec.volume.clone()),
                    typ: Some(MountType::VOLUME),
                    read_only: Some(false),
                    // A node that makes the volume itself labels it as ours.
                    volume_options: Some(MountVolumeOptions {
                        labels: Some(volume_labels),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                // A task counts as running only once healthy: probing often while it starts
                // (API 1.44+) is what keeps a rollout from waiting a whole interval per task.
                health_check: health_config(spec, options.start_interval),
                capability_drop: Some(vec!["ALL".to_string()]),
                capability_add: Some(spec.cap_add.clone()),
                // Honoured from API 1.46; older engines ignore the field (said in the README).
                privileges: Some(TaskSpecContainerSpecPrivileges {
                    no_new_privileges: Some(true),
                    ..Default::default()
                }),
                stop_grace_period: Some(nanos(Duration::from_secs(10))),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    nano_cpus: Some(spec.nano_cpus),
                    memory_bytes: Some(memory),
                    pids: Some(i64::from(spec.pids)),
                }),
                reservations: Some(ResourceObject {
                    nano_cpus: shape.reserved_nano_cpus,
                    memory_bytes: shape.reserved_memory_bytes,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(Duration::from_secs(1))),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(shape.constraints.clone()),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(spec.network.clone()),
                ..Default::default()
            }]),
            log_driver: Some(TaskSpecLogDriver {
                name: Some("json-file".to_string()),
                options: Some(log_limits()),
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(shape.replicas)),
            }),
            ..Default::default()
        }),
        // One task at a time, the new one up (and healthy) before the old one stops; a task
        // that fails within the monitor window rolls the whole service back.
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(UPDATE_MONITOR)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(nanos(UPDATE_MONITOR)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        endpoint_spec: Some(EndpointSpec {
            ports,
            ..Default::default()
        }),
        ..Default::default()
    }
}
