//! Changes to one tenant's service (create, update, scale, restart, remove) and the waits for
//! its tasks and for a rolling update's end.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    LocalNodeState, Service, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task,
    TaskState,
};
use bollard::query_parameters::UpdateServiceOptionsBuilder;

use super::SwarmBackend;
use super::observe::{from_service, local_task_containers, tasks_of};
use crate::runtime::types::{ObservedContainer, is_managed_by};
use crate::runtime::{RuntimeError, is_not_found, status_code};

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

impl SwarmBackend {
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
            Err(e) if status_code(&e) == Some(409) => {
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
