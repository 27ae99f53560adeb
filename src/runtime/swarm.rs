//! Swarm mode: each tenant is a replicated service of the swarm this engine manages, on its own
//! attachable overlay network, with the plan's limits and reservations and a rolling-update
//! policy that rolls back by itself.
//!
//! A service is observed as an [`ObservedContainer`] whose `service` field carries replicas,
//! tasks and update state, so the planner, status and the dashboard read one shape in both modes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, Limit, LocalNodeState, Mount, MountType, MountVolumeOptions,
    NetworkAttachmentConfig, ResourceObject, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, Task, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecPrivileges, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    UpdateServiceOptionsBuilder,
};

use super::change::{
    DATA_MOUNT_PATH, LOG_MAX_FILES, LOG_MAX_SIZE, SITE_CMD, health_config, owned_labels,
};
use super::types::{
    ContainerSpec, ContainerState, Env, LABEL_HASH_VERSION, LABEL_MANAGED, LABEL_NAMESPACE,
    LABEL_REVISION, LABEL_SPEC_HASH, LABEL_TENANT, ObservedContainer, ObservedService,
    PublishedPort, ServiceShape, is_managed_by, publishes,
};
use super::{Runtime, RuntimeError, is_not_found};

/// The label swarm puts on every task container: the id of its service.
const LABEL_SERVICE_ID: &str = "com.docker.swarm.service.id";
/// How often a wait inspects the service and its tasks: soon at first, then every second (many
/// tenants wait at once during a large apply; each poll costs the engine two requests).
fn poll_delay(waited: Duration) -> Duration {
    if waited < Duration::from_secs(3) {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(1)
    }
}
/// A new task that keeps failing is given up on after this many failed tasks in one wait.
const FAILED_TASKS_LIMIT: usize = 3;
/// Failures of a new task within this time after it starts make the update roll back.
const UPDATE_MONITOR: Duration = Duration::from_secs(5);

/// Fails unless the engine is an active swarm manager.
pub(crate) async fn check_manager(docker: &Docker) -> Result<(), RuntimeError> {
    let info = docker
        .info()
        .await
        .map_err(|e| RuntimeError::api("read the engine's swarm state", e))?;
    let swarm = info.swarm.unwrap_or_default();
    let state = swarm
        .local_node_state
        .unwrap_or(LocalNodeState::EMPTY)
        .to_string();
    let manager = swarm.control_available.unwrap_or(false);
    if state == "active" && manager {
        return Ok(());
    }
    let detail = if state == "active" {
        " (a worker node: services are managed on managers)".to_string()
    } else {
        swarm
            .error
            .filter(|e| !e.is_empty())
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    };
    Err(RuntimeError::NotSwarmManager {
        state: if state.is_empty() {
            "inactive".into()
        } else {
            state
        },
        detail,
    })
}

/// The service request for `spec`: the container's shape (image, env, limits, health check,
/// capabilities, volume, network) plus replicas, reservations, placement and update policy.
pub fn service_spec(
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    extra_env: &BTreeMap<String, String>,
    shape: &ServiceShape,
    options: &super::BodyOptions,
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
                options: Some(HashMap::from([
                    ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                    ("max-file".to_string(), LOG_MAX_FILES.to_string()),
                ])),
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

/// Every service of this namespace (or of one tenant, by the filters), with its tasks, as
/// observed containers sorted by name.
pub(crate) async fn observe_services(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedContainer>, RuntimeError> {
    let options = ListServicesOptionsBuilder::default()
        .filters(filters)
        .status(true)
        .build();
    let services = docker
        .list_services(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list services", e))?;
    let services: Vec<Service> = services
        .into_iter()
        .filter(|s| {
            s.spec
                .as_ref()
                .and_then(|spec| spec.labels.as_ref())
                .is_some_and(|l| is_managed_by(l, namespace))
        })
        .collect();
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let ids: HashSet<String> = services.iter().filter_map(|s| s.id.clone()).collect();
    let (tasks, local) =
        tokio::try_join!(tasks_of(docker, &services), local_task_containers(docker))?;
    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in &tasks {
        if let Some(id) = t.service_id.as_deref()
            && ids.contains(id)
        {
            by_service.entry(id).or_default().push(t);
        }
    }
    let mut out: Vec<ObservedContainer> = services
        .iter()
        .filter_map(|s| {
            let id = s.id.as_deref()?;
            let tasks = by_service.get(id).map(Vec::as_slice).unwrap_or_default();
            let local = local.get(id).cloned().unwrap_or_default();
            Some(from_service(s, tasks, local))
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

/// Tasks of the given services: by service name when there are few, else all tasks at once.
async fn tasks_of(docker: &Docker, services: &[Service]) -> Result<Vec<Task>, RuntimeError> {
    let names: Vec<String> = services
        .iter()
        .filter_map(|s| s.spec.as_ref().and_then(|spec| spec.name.clone()))
        .collect();
    let options = (names.len() <= 20).then(|| {
        let filters = HashMap::from([("service".to_string(), names)]);
        ListTasksOptionsBuilder::default().filters(&filters).build()
    });
    docker
        .list_tasks(options)
        .await
        .map_err(|e| RuntimeError::api("list tasks", e))
}

/// Running task containers on this node, by service id.
async fn local_task_containers(
    docker: &Docker,
) -> Result<HashMap<String, Vec<String>>, RuntimeError> {
    let filters = HashMap::from([
        ("label".to_string(), vec![LABEL_SERVICE_ID.to_string()]),
        ("status".to_string(), vec!["running".to_string()]),
    ]);
    let options = ListContainersOptionsBuilder::default()
        .filters(&filters)
        .build();
    let containers = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list task containers", e))?;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for c in containers {
        if let (Some(id), Some(service)) = (
            c.id,
            c.labels
                .as_ref()
                .and_then(|l| l.get(LABEL_SERVICE_ID))
                .cloned(),
        ) {
            out.entry(service).or_default().push(id);
        }
    }
    for ids in out.values_mut() {
        ids.sort();
    }
    Ok(out)
}

/// One service and its tasks in the shape of an observed container.
pub(crate) fn from_service(s: &Service, tasks: &[&Task], local: Vec<String>) -> ObservedContainer {
    let spec = s.spec.clone().unwrap_or_default();
    let template = spec.task_template.unwrap_or_default();
    let container = template.container_spec.unwrap_or_default();
    let resources = template.resources.unwrap_or_default();
    let limits = resources.limits.unwrap_or_default();
    let reservations = resources.reservations.unwrap_or_default();
    let labels: BTreeMap<String, String> = spec.labels.unwrap_or_default().into_iter().collect();
    let label = |key: &str| labels.get(key).cloned();
    let replicas = spec
        .mode
        .and_then(|m| m.replicated)
        .and_then(|r| r.replicas)
        .unwrap_or(1)
        .clamp(0, i64::from(u32::MAX)) as u32;

    let current: Vec<&&Task> = tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .collect();
    let state_of = |t: &Task| t.status.as_ref().and_then(|s| s.state);
    let running = current
        .iter()
        .filter(|t| state_of(t) == Some(TaskState::RUNNING))
        .count() as u32;
    let starting = current.iter().any(|t| {
        matches!(
            state_of(t),
            Some(
                TaskState::NEW
                    | TaskState::ALLOCATED
                    | TaskState::PENDING
                    | TaskState::ASSIGNED
                    | TaskState::ACCEPTED
                    | TaskState::PREPARING
                    | TaskState::READY
                    | TaskState::STARTING
            )
        )
    });
    // The newest reason a task is not running: a failure, or why the scheduler cannot place it.
    let mut troubled: Vec<&&Task> = tasks
        .iter()
        .filter(|t| {
            let failed = matches!(state_of(t), Some(TaskState::FAILED | TaskState::REJECTED));
            let stuck = state_of(t) == Some(TaskState::PENDING)
                && t.status.as_ref().and_then(|s| s.err.as_deref()).is_some();
            failed || stuck
        })
        .collect();
    troubled.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    let task_error = troubled.first().and_then(|t| {
        let status = t.status.as_ref()?;
        let err = status.err.clone().filter(|e| !e.is_empty());
        let message = status.message.clone().filter(|m| !m.is_empty());
        match (err, message) {
            (Some(e), Some(m)) => Some(format!("{m}: {e}")),
            (e, m) => e.or(m),
        }
    });
    let started_at = current
        .iter()
        .filter(|t| state_of(t) == Some(TaskState::RUNNING))
        .filter_map(|t| t.status.as_ref()?.timestamp.as_deref())
        .filter_map(crate::status::time::parse_rfc3339)
        .max();
    let update = s.update_status.clone().unwrap_or_default();
    let update_state = update
        .state
        .map(|st| st.to_string())
        .filter(|st| !st.is_empty());
    let health = if replicas == 0 {
        None
    } else if running >= replicas {
        Some("healthy".to_string())
    } else if starting || update_state.as_deref() == Some("updating") {
        Some("starting".to_string())
    } else {
        Some("unhealthy".to_string())
    };
    let published_ports = s
        .endpoint
        .as_ref()
        .and_then(|e| e.ports.as_ref())
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| {
                    Some(PublishedPort {
                        container_port: u16::try_from(p.target_port?).ok()?,
                        host_ip: "0.0.0.0".to_string(),
                        host_port: u16::try_from(p.published_port?).ok().filter(|p| *p > 0)?,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let image = container.image.unwrap_or_default();
    // A manager that resolved the tag records `name:tag@sha256:…`; compare by what was asked.
    let image = image
        .split_once('@')
        .map(|(name, _)| name.to_string())
        .unwrap_or(image);
    let mut others = labels.clone();
    others.retain(|k, _| !k.starts_with("tenantctl."));
    ObservedContainer {
        id: s.id.clone().unwrap_or_default(),
        name: spec.name.unwrap_or_default(),
        tenant: label(LABEL_TENANT),
        spec_hash: label(LABEL_SPEC_HASH),
        hash_version: label(LABEL_HASH_VERSION),
        revision: label(LABEL_REVISION),
        // "Running" means the service is meant to run tasks; how many do is in `service`.
        state: if replicas > 0 {
            ContainerState::Running
        } else {
            ContainerState::Exited
        },
        health,
        image,
        env: Env::from_entries(container.env.as_deref().unwrap_or_default()),
        nano_cpus: limits.nano_cpus.filter(|v| *v > 0),
        memory_bytes: limits.memory_bytes.filter(|v| *v > 0),
        pids_limit: limits.pids.filter(|v| *v > 0),
        published_ports,
        labels: others,
        started_at,
        service: Some(ObservedService {
            replicas,
            running,
            constraints: template
                .placement
                .and_then(|p| p.constraints)
                .unwrap_or_default(),
            reserved_nano_cpus: reservations.nano_cpus.filter(|v| *v > 0),
            reserved_memory_bytes: reservations.memory_bytes.filter(|v| *v > 0),
            update_state,
            update_message: update.message.filter(|m| !m.is_empty()),
            update_started: update.started_at,
            task_error,
            local_containers: local,
        }),
    }
}

impl Runtime {
    /// Runs `cmd` in a running container (a local task) and returns its stdout and exit code,
    /// within `timeout`.
    pub async fn exec_capture(
        &self,
        container: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<(String, Option<i64>), RuntimeError> {
        use bollard::exec::StartExecResults;
        use bollard::models::ExecConfig;
        use futures_util::StreamExt;
        let run = async {
            let created = self
                .docker()
                .create_exec(
                    container,
                    ExecConfig {
                        cmd: Some(cmd),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        ..Default::default()
                    },
                )
                .await?;
            let mut out = String::new();
            if let StartExecResults::Attached { mut output, .. } =
                self.docker().start_exec(&created.id, None).await?
            {
                while let Some(chunk) = output.next().await {
                    out.push_str(&chunk?.to_string());
                }
            }
            let code = self.docker().inspect_exec(&created.id).await?.exit_code;
            Ok::<_, bollard::errors::Error>((out, code))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(e)) => Err(RuntimeError::api(
                format!("exec in container {container}"),
                e,
            )),
            Err(_) => Err(RuntimeError::api(
                format!("exec in container {container}"),
                bollard::errors::Error::RequestTimeoutError,
            )),
        }
    }

    /// Inspect our service `name`; None when absent. A same-named service that is not ours is refused.
    async fn our_service(&self, name: &str) -> Result<Option<Service>, RuntimeError> {
        match self.docker().inspect_service(name, None).await {
            Ok(s) => {
                let labels = s.spec.as_ref().and_then(|spec| spec.labels.as_ref());
                if labels.is_some_and(|l| is_managed_by(l, self.namespace())) {
                    Ok(Some(s))
                } else {
                    Err(RuntimeError::NotManaged {
                        kind: "service",
                        name: name.to_string(),
                        namespace: self.namespace().to_string(),
                    })
                }
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(RuntimeError::api(format!("inspect service {name}"), e)),
        }
    }

    /// Our service `name`, which must exist.
    async fn existing_service(&self, name: &str) -> Result<Service, RuntimeError> {
        self.our_service(name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                kind: "service",
                name: name.to_string(),
            })
    }

    /// The service and its tasks, observed now.
    pub async fn observe_service(
        &self,
        name: &str,
    ) -> Result<Option<ObservedContainer>, RuntimeError> {
        let Some(service) = self.our_service(name).await? else {
            return Ok(None);
        };
        let (tasks, local) = tokio::try_join!(
            tasks_of(self.docker(), std::slice::from_ref(&service)),
            local_task_containers(self.docker())
        )?;
        let id = service.id.clone().unwrap_or_default();
        let mine: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
            .collect();
        let local = local.get(&id).cloned().unwrap_or_default();
        Ok(Some(from_service(&service, &mine, local)))
    }

    /// Creates the service (idempotent: an existing one of ours is updated to the spec instead).
    /// Returns its id.
    pub async fn create_service(&self, spec: ServiceSpec) -> Result<String, RuntimeError> {
        let name = spec.name.clone().unwrap_or_default();
        if let Some(existing) = self.our_service(&name).await? {
            self.update_service_to(&existing, spec).await?;
            return Ok(existing.id.unwrap_or_default());
        }
        match self.docker().create_service(spec.clone(), None).await {
            Ok(created) => Ok(created.id.unwrap_or_default()),
            // Made by a racer since we looked: ours by name, so bring it to the spec.
            Err(e) if super::status_code(&e) == Some(409) => {
                let existing =
                    self.our_service(&name)
                        .await?
                        .ok_or_else(|| RuntimeError::NotFound {
                            kind: "service",
                            name: name.clone(),
                        })?;
                self.update_service_to(&existing, spec).await?;
                Ok(existing.id.unwrap_or_default())
            }
            Err(e) => Err(RuntimeError::api(format!("create service {name}"), e)),
        }
    }

    /// Replaces the service's spec (a rolling update when the task template changes).
    /// Returns the update-start stamp that was current before, to tell the new update apart.
    pub async fn update_service(
        &self,
        name: &str,
        spec: ServiceSpec,
    ) -> Result<Option<String>, RuntimeError> {
        let existing = self.existing_service(name).await?;
        let before = existing
            .update_status
            .as_ref()
            .and_then(|u| u.started_at.clone());
        self.update_service_to(&existing, spec).await?;
        Ok(before)
    }

    async fn update_service_to(
        &self,
        existing: &Service,
        mut spec: ServiceSpec,
    ) -> Result<(), RuntimeError> {
        let name = spec.name.clone().unwrap_or_default();
        let version = existing
            .version
            .as_ref()
            .and_then(|v| v.index)
            .unwrap_or_default();
        // Keep the restart counter: a lower ForceUpdate is not a change, a higher one restarts.
        if let (Some(t), Some(old)) = (
            spec.task_template.as_mut(),
            existing
                .spec
                .as_ref()
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.force_update),
        ) && t.force_update.is_none()
        {
            t.force_update = Some(old);
        }
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        self.docker()
            .update_service(&name, spec, options, None)
            .await
            .map_err(|e| RuntimeError::api(format!("update service {name}"), e))?;
        Ok(())
    }

    /// Sets the replica count only (suspend is 0; resume is the plan's count).
    pub async fn scale_service(&self, name: &str, replicas: u32) -> Result<(), RuntimeError> {
        let existing = self.existing_service(name).await?;
        let mut spec = existing.spec.clone().unwrap_or_default();
        spec.mode = Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(replicas)),
            }),
            ..Default::default()
        });
        self.update_service_to(&existing, spec).await
    }

    /// A rolling restart of every task (the dashboard's restart): bumps ForceUpdate.
    pub async fn restart_service(&self, name: &str) -> Result<(), RuntimeError> {
        let existing = self.existing_service(name).await?;
        let mut spec = existing.spec.clone().unwrap_or_default();
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|m| m.replicated.as_ref())
            .and_then(|r| r.replicas)
            .unwrap_or(1);
        if replicas == 0 {
            return Err(RuntimeError::NotRunning {
                name: name.to_string(),
                state: "scaled to 0".into(),
            });
        }
        if let Some(t) = spec.task_template.as_mut() {
            t.force_update = Some(t.force_update.unwrap_or(0) + 1);
        }
        self.update_service_to(&existing, spec).await
    }

    /// Removes our service `name`; true when removed, false when absent. Waits (up to `timeout`)
    /// for its tasks to be gone, so the tenant's network can be removed after it.
    pub async fn remove_service(
        &self,
        name: &str,
        timeout: Duration,
    ) -> Result<bool, RuntimeError> {
        let Some(existing) = self.our_service(name).await? else {
            return Ok(false);
        };
        let id = existing.id.unwrap_or_default();
        match self.docker().delete_service(&id).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(RuntimeError::api(format!("remove service {name}"), e)),
        }
        let started = Instant::now();
        while started.elapsed() < timeout {
            let local = local_task_containers(self.docker()).await?;
            if !local.contains_key(&id) {
                break;
            }
            tokio::time::sleep(poll_delay(started.elapsed())).await;
        }
        Ok(true)
    }

    /// Waits until `replicas` tasks of the service run (healthy, when it has a health check).
    /// Fails early when tasks keep failing, and says why.
    pub async fn wait_service_ready(
        &self,
        name: &str,
        replicas: u32,
        timeout: Duration,
    ) -> Result<ObservedContainer, RuntimeError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut failures: HashSet<String> = HashSet::new();
        let mut baseline: Option<HashSet<String>> = None;
        loop {
            let (observed, failed_now) = self.observe_with_failures(name).await?;
            let Some(observed) = observed else {
                return Err(RuntimeError::NotFound {
                    kind: "service",
                    name: name.to_string(),
                });
            };
            // Failures from before this wait are history; only new ones count against it.
            let known = baseline.get_or_insert_with(|| failed_now.clone());
            failures.extend(failed_now.difference(known).cloned());
            let service = observed.service.clone().unwrap_or_default();
            if service.running == replicas {
                // Read once at the end: which task containers run on this node.
                let local = local_task_containers(self.docker()).await?;
                let mut observed = observed;
                let mine = local.get(&observed.id).cloned().unwrap_or_default();
                if replicas > 0 || mine.is_empty() {
                    if let Some(s) = observed.service.as_mut() {
                        s.local_containers = mine;
                    }
                    return Ok(observed);
                }
            }
            let why = service
                .task_error
                .clone()
                .unwrap_or_else(|| format!("{} of {replicas} tasks running", service.running));
            if replicas > 0 && failures.len() >= FAILED_TASKS_LIMIT {
                return Err(RuntimeError::ServiceNotReady {
                    service: name.to_string(),
                    reason: format!("{} tasks failed: {why}", failures.len()),
                });
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::ServiceNotReady {
                    service: name.to_string(),
                    reason: format!("not ready within {}s: {why}", timeout.as_secs()),
                });
            }
            tokio::time::sleep(poll_delay(started.elapsed())).await;
        }
    }

    /// Waits for the rolling update that began after `before` to end. Completed: the service
    /// once `replicas` tasks run. Rolled back (or paused): [`RuntimeError::RolledBack`].
    /// When the change did not touch the tasks no update begins: readiness decides then.
    pub async fn wait_service_updated(
        &self,
        name: &str,
        before: Option<&str>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<ObservedContainer, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let began = Instant::now();
        loop {
            let observed =
                self.observe_service(name)
                    .await?
                    .ok_or_else(|| RuntimeError::NotFound {
                        kind: "service",
                        name: name.to_string(),
                    })?;
            let service = observed.service.clone().unwrap_or_default();
            let new_update =
                service.update_started.is_some() && service.update_started.as_deref() != before;
            if new_update {
                match service.update_state.as_deref() {
                    Some("completed") => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        return self.wait_service_ready(name, replicas, left).await;
                    }
                    Some(
                        "rollback_started" | "rollback_completed" | "rollback_paused" | "paused",
                    ) => {
                        return Err(RuntimeError::RolledBack {
                            service: name.to_string(),
                            message: service
                                .update_message
                                .clone()
                                .or(service.task_error.clone())
                                .unwrap_or_else(|| "no reason given".into()),
                        });
                    }
                    _ => {}
                }
            } else if began.elapsed() > Duration::from_secs(2) && service.running == replicas {
                // No update began: the change did not touch the tasks (e.g. only a label).
                return Ok(observed);
            }
            if Instant::now() > deadline {
                return Err(RuntimeError::ServiceNotReady {
                    service: name.to_string(),
                    reason: format!(
                        "the rolling update did not finish within {}s ({}, {} of {replicas} tasks running)",
                        timeout.as_secs(),
                        service.update_state.as_deref().unwrap_or("not started"),
                        service.running
                    ),
                });
            }
            tokio::time::sleep(poll_delay(began.elapsed())).await;
        }
    }

    /// The service observed (without its local task containers), and the ids of its failed or
    /// rejected tasks.
    async fn observe_with_failures(
        &self,
        name: &str,
    ) -> Result<(Option<ObservedContainer>, HashSet<String>), RuntimeError> {
        let Some(service) = self.our_service(name).await? else {
            return Ok((None, HashSet::new()));
        };
        let tasks = tasks_of(self.docker(), std::slice::from_ref(&service)).await?;
        let id = service.id.clone().unwrap_or_default();
        let mine: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.service_id.as_deref() == Some(id.as_str()))
            .collect();
        let failed = mine
            .iter()
            .filter(|t| {
                matches!(
                    t.status.as_ref().and_then(|s| s.state),
                    Some(TaskState::FAILED | TaskState::REJECTED)
                )
            })
            .filter_map(|t| t.id.clone())
            .collect();
        Ok((Some(from_service(&service, &mine, Vec::new())), failed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::builtin_site_image;
    use bollard::models::{ServiceUpdateStatus, ServiceUpdateStatusStateEnum, TaskStatus};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "ns-acme".into(),
            image: builtin_site_image(),
            env: BTreeMap::from([("TENANT_SLUG".to_string(), "acme".to_string())]),
            nano_cpus: 500_000_000,
            memory_bytes: 256 << 20,
            pids: 128,
            port: 8080,
            publish_address: "127.0.0.1".into(),
            health_cmd: vec!["CMD".into(), "/tenantctl".into(), "site-health".into()],
            health_interval_seconds: 10,
            cap_add: vec![],
            network: "ns-acme".into(),
            volume: "ns-acme-data".into(),
        }
    }

    fn options() -> super::super::BodyOptions {
        super::super::BodyOptions {
            namespace: "ns".into(),
            site_image: builtin_site_image(),
            start_interval: false,
        }
    }

    fn shape(replicas: u32) -> ServiceShape {
        ServiceShape {
            replicas,
            constraints: vec!["node.role == manager".into()],
            reserved_nano_cpus: Some(100_000_000),
            reserved_memory_bytes: Some(64 << 20),
            published_port: None,
        }
    }

    #[test]
    fn the_service_carries_limits_reservations_policy_and_no_loopback_port() {
        let labels = BTreeMap::from([("tenantctl.tenant".to_string(), "acme".to_string())]);
        let extra = BTreeMap::from([("TENANT_API_KEY_SHA256".to_string(), "d".to_string())]);
        let s = service_spec(&spec(), &labels, &extra, &shape(3), &options());
        let labels = s.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
        assert_eq!(labels.get(LABEL_NAMESPACE).map(String::as_str), Some("ns"));
        let t = s.task_template.clone().unwrap_or_default();
        let c = t.container_spec.clone().unwrap_or_default();
        assert_eq!(c.args, Some(vec!["site".to_string()]));
        let env = c.env.unwrap_or_default();
        assert!(env.contains(&"TENANT_API_KEY_SHA256=d".to_string()));
        assert_eq!(c.capability_drop, Some(vec!["ALL".to_string()]));
        let mount = &c.mounts.unwrap_or_default()[0];
        assert_eq!(mount.source.as_deref(), Some("ns-acme-data"));
        let r = t.resources.unwrap_or_default();
        assert_eq!(
            r.limits.as_ref().and_then(|l| l.memory_bytes),
            Some(256 << 20)
        );
        assert_eq!(r.limits.as_ref().and_then(|l| l.pids), Some(128));
        assert_eq!(
            r.reservations.as_ref().and_then(|l| l.nano_cpus),
            Some(100_000_000)
        );
        assert_eq!(
            t.placement.and_then(|p| p.constraints),
            Some(vec!["node.role == manager".to_string()])
        );
        let mode = s.mode.and_then(|m| m.replicated).and_then(|r| r.replicas);
        assert_eq!(mode, Some(3));
        let update = s.update_config.unwrap_or_default();
        assert_eq!(
            update.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        // Loopback-only cannot be done by swarm: no port at all rather than every address.
        assert_eq!(s.endpoint_spec.and_then(|e| e.ports), None);
        let mut open = spec();
        open.publish_address = "0.0.0.0".into();
        let s = service_spec(
            &open,
            &BTreeMap::new(),
            &BTreeMap::new(),
            &shape(1),
            &options(),
        );
        let ports = s.endpoint_spec.and_then(|e| e.ports).unwrap_or_default();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].target_port, Some(8080));
    }

    fn task(id: &str, desired: TaskState, state: TaskState, err: Option<&str>, at: &str) -> Task {
        Task {
            id: Some(id.into()),
            service_id: Some("svc".into()),
            desired_state: Some(desired),
            updated_at: Some(at.into()),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(str::to_string),
                timestamp: Some(at.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn tasks_give_replicas_health_and_the_newest_error() {
        let labels = BTreeMap::from([("tenantctl.tenant".to_string(), "acme".to_string())]);
        let body = service_spec(&spec(), &labels, &BTreeMap::new(), &shape(3), &options());
        let service = Service {
            id: Some("svc".into()),
            spec: Some(body),
            update_status: Some(ServiceUpdateStatus {
                state: Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
                message: Some("rollback completed".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let tasks = [
            task(
                "a",
                TaskState::RUNNING,
                TaskState::RUNNING,
                None,
                "2026-01-01T00:00:03Z",
            ),
            task(
                "b",
                TaskState::RUNNING,
                TaskState::RUNNING,
                None,
                "2026-01-01T00:00:04Z",
            ),
            task(
                "c",
                TaskState::SHUTDOWN,
                TaskState::FAILED,
                Some("old"),
                "2026-01-01T00:00:01Z",
            ),
            task(
                "d",
                TaskState::SHUTDOWN,
                TaskState::FAILED,
                Some("task: non-zero exit (2)"),
                "2026-01-01T00:00:05Z",
            ),
        ];
        let refs: Vec<&Task> = tasks.iter().collect();
        let c = from_service(&service, &refs, vec!["cid".into()]);
        assert_eq!(c.tenant.as_deref(), Some("acme"));
        assert_eq!(c.state, ContainerState::Running);
        let s = c.service.clone().unwrap_or_default();
        assert_eq!((s.replicas, s.running), (3, 2));
        assert_eq!(c.health.as_deref(), Some("unhealthy"));
        assert_eq!(s.task_error.as_deref(), Some("task: non-zero exit (2)"));
        assert!(s.rolled_back());
        assert_eq!(s.local_containers, vec!["cid".to_string()]);
        assert_eq!(c.memory_bytes, Some(256 << 20));
        assert_eq!(
            c.started_at,
            crate::status::time::parse_rfc3339("2026-01-01T00:00:04Z")
        );
    }
}
