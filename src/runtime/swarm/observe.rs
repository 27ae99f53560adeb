//! Services of this namespace observed with their tasks, in the shape of observed containers.

use std::collections::{BTreeMap, HashMap, HashSet};

use bollard::Docker;
use bollard::models::{Service, Task, TaskState};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
};

use crate::runtime::RuntimeError;
use crate::runtime::types::{
    ContainerState, Env, LABEL_HASH_VERSION, LABEL_INSTALLATION, LABEL_REVISION, LABEL_SPEC_HASH,
    LABEL_TENANT, ObservedContainer, ObservedService, PublishedPort, is_managed_by,
};

/// The label swarm puts on every task container: the id of its service.
const LABEL_SERVICE_ID: &str = "com.docker.swarm.service.id";

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
pub(crate) async fn tasks_of(
    docker: &Docker,
    services: &[Service],
) -> Result<Vec<Task>, RuntimeError> {
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
pub(crate) async fn local_task_containers(
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
    others.retain(|k, _| !k.starts_with("tenantctl.") || k == LABEL_INSTALLATION);
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
        attached_networks: None,
        probe: None,
        edge_probe: None,
        pid: None,
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
