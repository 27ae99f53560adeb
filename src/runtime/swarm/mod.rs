//! The swarm backend: each tenant is a replicated service of the swarm this engine manages, on
//! its own attachable overlay network, with the plan's limits and reservations and a
//! rolling-update policy that rolls back by itself.
//!
//! A service is observed as an [`ObservedContainer`] whose `service` field carries replicas,
//! tasks and update state, so the planner, status and the dashboard read one shape in both modes.

mod observe;
mod service;
mod spec;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use futures_util::stream::BoxStream;
use ipnet::Ipv4Net;

use super::backend::{Backend, EngineEvents, Say};
use super::engine::{Engine, LogOrigin, StatsTarget, log_stream, loopback_counters};
use super::types::{
    Applied, ContainerDetail, ContainerStats, EnsuredNetwork, EventObject, LogEvent, LogOptions,
    ObservedContainer, ObservedRuntime, Reach, RuntimeKind, SiteQuery, StatsMode, StatsSource,
    Target, Workload, combine, container_name,
};
use super::types::{Phase, phase};
use super::{RuntimeError, ServiceShape};
use crate::usage::site::{SiteCounters, parse_site_usage};

pub use spec::service_spec;

/// How long removing a service waits for its tasks to stop (its network is removable after).
const REMOVE_WAIT: Duration = Duration::from_secs(30);
/// How long an overlay network's removal waits out endpoints its stopped tasks still hold.
const NETWORK_RELEASE: Duration = Duration::from_secs(20);
/// A rolling update may take this long beyond the health timeout of each of its tasks.
const UPDATE_SLACK: Duration = Duration::from_secs(30);

/// Tenants as services of the swarm this engine manages.
#[derive(Debug, Clone)]
pub struct SwarmBackend {
    engine: Engine,
}

impl SwarmBackend {
    /// Fails unless the engine is an active swarm manager: a command fails at once with what to
    /// do rather than half-way through an apply.
    pub async fn new(engine: Engine) -> Result<SwarmBackend, RuntimeError> {
        service::check_manager(engine.docker()).await?;
        Ok(SwarmBackend { engine })
    }

    fn docker(&self) -> &Docker {
        self.engine.docker()
    }

    fn namespace(&self) -> &str {
        self.engine.namespace()
    }

    /// The whole service request for a workload, keeping a published port the mesh already chose.
    fn service_body(
        &self,
        workload: &Workload,
        published_port: Option<u16>,
    ) -> bollard::models::ServiceSpec {
        let shape = ServiceShape {
            published_port,
            ..workload.shape.clone()
        };
        service_spec(
            &workload.spec,
            &workload.labels,
            &workload.extra_env,
            &shape,
            &self.engine.body_options(),
        )
    }

    /// Waits until `replicas` tasks of service `name` run, a health timeout per task.
    async fn wait_tasks(
        &self,
        name: &str,
        replicas: u32,
        health_timeout: Duration,
    ) -> Result<ObservedContainer, RuntimeError> {
        let timeout = health_timeout * replicas.max(1);
        self.wait_service_ready(name, replicas, timeout).await
    }

    /// A service's tasks on this node read as one tenant: CPU, network and I/O summed, memory
    /// the largest task's (each task has the plan's limit, so that is the one near its cap).
    async fn service_stats(
        &self,
        service: &str,
        tasks: &[String],
        mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError> {
        if tasks.is_empty() {
            return Err(RuntimeError::NotFound {
                kind: "running task on this node of service",
                name: service.to_string(),
            });
        }
        let mut readings = Vec::new();
        for id in tasks {
            readings.push(self.engine.container_stats(id, mode).await?);
        }
        Ok(combine(readings))
    }

    /// The counters of the site in a local task, read by `tenantctl site-usage` run inside it.
    async fn task_counters(
        &self,
        workload: &ObservedContainer,
        query: &SiteQuery,
    ) -> Result<SiteCounters, String> {
        // Only the built-in image carries tenantctl to run inside the task.
        let Some(port) = query.theme_port.filter(|_| query.builtin_image) else {
            return Err(
                "no published port, and the theme's own image has no counters to read".into(),
            );
        };
        let container = workload
            .service
            .as_ref()
            .and_then(|s| s.local_containers.first())
            .ok_or("no task of this service runs on this node")?;
        let cmd = vec![
            "/tenantctl".to_string(),
            "site-usage".to_string(),
            port.to_string(),
        ];
        let (out, _) = self
            .exec_capture(container, cmd, query.timeout + Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string())?;
        let counters = parse_site_usage(&out)?;
        match &counters.tenant {
            Some(t) if *t != query.tenant => {
                Err(format!("task {container} answers for tenant `{t}`"))
            }
            _ => Ok(counters),
        }
    }
}

/// Where a service answers: its mesh port on this host, else "no published port".
fn service_url(seen: &ObservedContainer) -> Option<String> {
    let port = seen.published_ports.first()?;
    Some(format!("http://127.0.0.1:{}/", port.host_port))
}

/// ` at URL` when there is a URL to give.
fn at_url(url: Option<&str>) -> String {
    url.filter(|u| !u.is_empty())
        .map(|u| format!(" at {u}"))
        .unwrap_or_default()
}

#[async_trait]
impl Backend for SwarmBackend {
    fn namespace(&self) -> &str {
        self.engine.namespace()
    }

    async fn observe(&self, tenant: Option<&str>) -> Result<ObservedRuntime, RuntimeError> {
        let docker = self.docker();
        let namespace = self.namespace();
        self.engine
            .observe(RuntimeKind::Swarm, tenant, |filters| async move {
                observe::observe_services(docker, namespace, &filters).await
            })
            .await
    }

    async fn details(
        &self,
        _workloads: &[ObservedContainer],
    ) -> Result<HashMap<String, ContainerDetail>, RuntimeError> {
        // A service reports its tasks' failures itself (`ObservedService::task_error`).
        Ok(HashMap::new())
    }

    async fn stats(
        &self,
        workload: &ObservedContainer,
        mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError> {
        let tasks = workload
            .service
            .as_ref()
            .map(|s| s.local_containers.as_slice())
            .unwrap_or_default();
        self.service_stats(&workload.name, tasks, mode).await
    }

    async fn stats_pass(
        &self,
        workloads: &[ObservedContainer],
        mode: StatsMode,
        source: StatsSource,
    ) -> Vec<Result<ContainerStats, RuntimeError>> {
        // Every local task of every service in one pass (their processes are inspected: a
        // service's observation has none), then each service's tasks read as one tenant.
        let tasks_of = |w: &ObservedContainer| {
            w.service
                .as_ref()
                .map(|s| s.local_containers.clone())
                .unwrap_or_default()
        };
        let targets: Vec<StatsTarget> = workloads
            .iter()
            .flat_map(tasks_of)
            .map(|id| StatsTarget { id, pid: None })
            .collect();
        let mut readings = self
            .engine
            .stats_pass(&targets, mode, source)
            .await
            .into_iter();
        workloads
            .iter()
            .map(|w| {
                let n = tasks_of(w).len();
                if n == 0 {
                    return Err(RuntimeError::NotFound {
                        kind: "running task on this node of service",
                        name: w.name.clone(),
                    });
                }
                // All n taken before looking at them: the next service's readings follow.
                let mine: Vec<_> = readings.by_ref().take(n).collect();
                mine.into_iter()
                    .collect::<Result<Vec<ContainerStats>, RuntimeError>>()
                    .map(combine)
            })
            .collect()
    }

    async fn volume_sizes(&self) -> Result<std::collections::BTreeMap<String, u64>, RuntimeError> {
        self.engine.volume_sizes().await
    }

    async fn put_data_files(
        &self,
        workload: &ObservedContainer,
        tar: &[u8],
    ) -> Result<usize, RuntimeError> {
        // Volumes are node-local: only the tasks on this engine's node can be reached.
        let tasks = workload
            .service
            .as_ref()
            .map(|s| s.local_containers.as_slice())
            .unwrap_or_default();
        for id in tasks {
            self.engine.put_data_files(id, tar).await?;
        }
        Ok(tasks.len())
    }

    async fn site_counters(
        &self,
        workload: &ObservedContainer,
        query: &SiteQuery,
    ) -> Result<SiteCounters, String> {
        if workload.published_ports.is_empty() {
            self.task_counters(workload, query).await
        } else {
            loopback_counters(workload, query).await
        }
    }

    async fn events(&self) -> Result<EngineEvents, RuntimeError> {
        // Services changed or removed behind our back. Task containers carry no namespace labels,
        // and swarm replaces a failed task itself: its service's state is what a pass reads.
        self.engine.events(&[EventObject::Service]).await
    }

    fn logs<'a>(
        &'a self,
        workload: &ObservedContainer,
        options: &LogOptions,
    ) -> BoxStream<'a, Result<LogEvent, RuntimeError>> {
        log_stream(
            self.docker(),
            LogOrigin::Service,
            &workload.id,
            &workload.name,
            options,
        )
    }

    async fn existing_subnets(&self) -> Result<BTreeSet<Ipv4Net>, RuntimeError> {
        self.engine.existing_subnets().await
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        // An overlay the tenant's tasks join on every node (attachable for debugging).
        self.engine
            .create_network(name, subnet, labels, "overlay")
            .await
    }

    async fn remove_network(&self, name: &str) -> Result<bool, RuntimeError> {
        self.engine.remove_network(name, NETWORK_RELEASE).await
    }

    async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        self.engine.create_volume(name, labels).await
    }

    async fn ensure_image(&self, reference: &str, progress: Say<'_>) -> Result<(), RuntimeError> {
        self.engine.ensure_image(reference, progress).await
    }

    async fn ensure_site_image(
        &self,
        tag: &str,
        progress: Say<'_>,
    ) -> Result<String, RuntimeError> {
        self.engine.ensure_site_image(tag, progress).await
    }

    async fn create(&self, workload: &Workload, name: &str) -> Result<Applied, RuntimeError> {
        phase(Phase::Container);
        self.create_service(self.service_body(workload, None))
            .await?;
        let replicas = workload.shape.replicas;
        if replicas == 0 {
            return Ok(Applied::new(
                "+ created with 0 replicas (tenant is suspended)",
                None,
            ));
        }
        phase(Phase::Health);
        let seen = self
            .wait_tasks(name, replicas, workload.health_timeout)
            .await?;
        let url = service_url(&seen);
        let line = format!(
            "+ created, {replicas} of {replicas} tasks running and healthy{}",
            at_url(url.as_deref())
        );
        Ok(Applied::new(line, url))
    }

    async fn replace(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError> {
        // A service changes in place: its rolling update is the replacement.
        self.update(workload, target, why).await
    }

    /// A rolling update to the desired spec; the engine rolls it back by itself when the new
    /// tasks fail, which is [`RuntimeError::RolledBack`].
    async fn update(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError> {
        let port = target
            .observed
            .and_then(|o| o.published_ports.first().map(|p| p.host_port));
        phase(Phase::Container);
        let before = self
            .update_service(target.name, self.service_body(workload, port))
            .await?;
        let replicas = workload.shape.replicas;
        let timeout = workload.health_timeout * replicas.max(1) + UPDATE_SLACK;
        phase(Phase::Health);
        let seen = self
            .wait_service_updated(target.name, before.as_deref(), replicas, timeout)
            .await?;
        let url = (replicas > 0).then(|| service_url(&seen)).flatten();
        let line = format!("~ rolled out ({why}){}", at_url(url.as_deref()));
        Ok(Applied::new(line, url))
    }

    async fn start(
        &self,
        workload: &Workload,
        target: Target<'_>,
        _say: Say<'_>,
    ) -> Result<Applied, RuntimeError> {
        let replicas = workload.shape.replicas;
        phase(Phase::Start);
        self.scale_service(target.name, replicas).await?;
        phase(Phase::Health);
        let seen = self
            .wait_tasks(target.name, replicas, workload.health_timeout)
            .await?;
        let url = service_url(&seen);
        let line = format!(
            "> scaled to {replicas}, tasks running and healthy{}",
            at_url(url.as_deref())
        );
        Ok(Applied::new(line, url))
    }

    async fn stop(&self, target: Target<'_>, patience: Duration) -> Result<Applied, RuntimeError> {
        self.scale_service(target.name, 0).await?;
        self.wait_tasks(target.name, 0, patience).await?;
        Ok(Applied::new(". scaled to 0 (nothing deleted)", None))
    }

    async fn remove(&self, target: Target<'_>) -> Result<bool, RuntimeError> {
        self.remove_service(target.name, REMOVE_WAIT).await
    }

    async fn reach(&self, workload: &Workload, url: Option<String>) -> Result<Reach, RuntimeError> {
        // A service left by an earlier attempt may be at its spec with tasks that never
        // came up: converged means its tasks run, not merely that nothing is left to change.
        let name = container_name(self.namespace(), &workload.tenant);
        let seen = self
            .wait_tasks(&name, workload.shape.replicas, workload.health_timeout)
            .await?;
        // Swarm cannot publish on loopback only: a running service may have no URL to show.
        Ok(url
            .or_else(|| service_url(&seen))
            .map_or(Reach::Unpublished, Reach::At))
    }

    async fn restart(
        &self,
        workload: &ObservedContainer,
        _timeout: Duration,
    ) -> Result<String, RuntimeError> {
        // A rolling restart: one task at a time, the new one healthy before the old stops.
        self.restart_service(&workload.name).await?;
        Ok(format!(
            "service {} is restarting, one task at a time",
            workload.name
        ))
    }
}
