//! The container backend: each tenant is one container on this engine, on its own bridge
//! network, published on loopback, replaced blue/green when its spec changes.

pub mod bluegreen;
mod body;
mod containers;
pub mod edge;
pub(crate) mod observe;
pub mod owner;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt, stream};
use ipnet::Ipv4Net;

use super::backend::{Backend, EngineEvents, Say};
use super::engine::{BodyOptions, Engine, LogOrigin, StatsTarget, log_stream, loopback_counters};
use super::types::{
    Applied, ContainerDetail, ContainerState, ContainerStats, EnsuredNetwork, EventObject,
    LogEvent, LogOptions, ObservedContainer, ObservedRuntime, Reach, RuntimeKind, SiteQuery,
    StatsMode, StatsSource, Target, Workload, container_name,
};
use super::types::{EdgeSpec, LABEL_ROLE, ObservedEdge, ROLE_EDGE, edge_name};
use super::types::{Phase, phase};
use super::{RuntimeError, is_not_found};
use crate::usage::site::SiteCounters;

pub use body::container_body;

/// The progress line, with what handing the data volume over did when it ran.
fn with_handed(
    applied: Result<Applied, RuntimeError>,
    handed: Option<String>,
) -> Result<Applied, RuntimeError> {
    let mut applied = applied?;
    if let Some(handed) = handed {
        applied.line = format!(
            "{} (data volume handed to the site user: {handed})",
            applied.line
        );
    }
    Ok(applied)
}

/// How long a stopped container has to exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How many stopped containers are inspected at once for their details.
const DETAIL_CONCURRENCY: usize = 8;

/// Tenants as containers on one engine.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    engine: Engine,
    /// Volumes this backend created: new, so they took the site image's `/data` ownership.
    created_volumes: Arc<Mutex<HashSet<String>>>,
}

impl DockerBackend {
    pub fn new(engine: Engine) -> DockerBackend {
        DockerBackend {
            engine,
            created_volumes: Arc::default(),
        }
    }

    fn created_volume(&self, name: &str) -> bool {
        self.created_volumes
            .lock()
            .map(|set| set.contains(name))
            .unwrap_or(false)
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        self.engine.docker()
    }

    pub fn namespace(&self) -> &str {
        self.engine.namespace()
    }

    /// The inputs of [`container_body`] for this engine.
    pub fn body_options(&self) -> BodyOptions {
        self.engine.body_options()
    }

    fn check_ours(
        &self,
        kind: &'static str,
        name: &str,
        labels: Option<&HashMap<String, String>>,
    ) -> Result<(), RuntimeError> {
        self.engine.check_ours(kind, name, labels)
    }

    async fn inspect_volume_named(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::Volume>, RuntimeError> {
        self.engine.inspect_volume_named(name).await
    }

    /// Containers (all states), networks and volumes of this namespace, or of one tenant.
    pub async fn observe_scope(
        &self,
        tenant: Option<&str>,
    ) -> Result<ObservedRuntime, RuntimeError> {
        let docker = self.docker();
        let namespace = self.namespace();
        let mut observed = self
            .engine
            .observe(RuntimeKind::Docker, tenant, |filters| async move {
                observe::observe_containers(docker, namespace, &filters).await
            })
            .await?;
        // The edge is the namespace's, no tenant's: it is observed beside them.
        let (edge, containers): (Vec<_>, Vec<_>) = std::mem::take(&mut observed.containers)
            .into_iter()
            .partition(|c| c.labels.get(LABEL_ROLE).map(String::as_str) == Some(ROLE_EDGE));
        observed.containers = containers;
        observed.edge = edge
            .into_iter()
            .find(|c| c.name == edge_name(namespace))
            .map(|container| ObservedEdge {
                container,
                routes: None,
            });
        Ok(observed)
    }

    /// Waits until the site answers its health path on the loopback published port.
    async fn wait_ready(&self, workload: &Workload, id: &str) -> Result<String, RuntimeError> {
        let not_answering = |reason: String| RuntimeError::NotAnswering { reason };
        let port = workload.spec.port;
        let deadline = Instant::now() + workload.health_timeout;
        let host_port = loop {
            if let Some((_, host_port)) = self.published_port(id, port).await? {
                break host_port;
            }
            if Instant::now() > deadline {
                return Err(not_answering(format!(
                    "container {id} never published port {port}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let base = format!("http://127.0.0.1:{host_port}");
        let health = format!("{base}{}", workload.health_path);
        let mut delay = Duration::from_millis(20);
        loop {
            match crate::site::health_check(&health, Duration::from_secs(2)).await {
                Ok(_) => return Ok(format!("{base}/")),
                Err(why) => {
                    // One inspect of this container, not a listing of everything the tenant
                    // has: the engine answers it without walking every network and volume.
                    let seen = match self.inspect_ours(id).await {
                        Ok(response) => observe::from_inspect(response),
                        Err(RuntimeError::NotFound { .. }) => None,
                        Err(e) => return Err(e),
                    };
                    if let Some(o) = seen
                        && !o.state.is_running()
                    {
                        let logs = self.container_logs_tail(id, 5).await.unwrap_or_default();
                        return Err(not_answering(format!(
                            "the container exited ({}) before answering {}: {}",
                            o.state,
                            workload.health_path,
                            logs.join(" | ")
                        )));
                    }
                    if Instant::now() > deadline {
                        return Err(not_answering(format!(
                            "{} did not answer within {}s: {why}",
                            health,
                            workload.health_timeout.as_secs()
                        )));
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

#[async_trait]
impl bluegreen::ReplaceSteps for DockerBackend {
    async fn remove(&self, id_or_name: &str) -> Result<bool, RuntimeError> {
        self.remove_container(id_or_name, true).await
    }

    async fn remove_leftover(&self, name: &str, tenant: &str) -> Result<bool, RuntimeError> {
        self.remove_tenants_container(name, tenant).await
    }

    async fn create(&self, workload: &Workload, name: &str) -> Result<String, RuntimeError> {
        self.create_container(&workload.spec, &workload.labels, &workload.extra_env, name)
            .await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.start_container(id).await
    }

    async fn wait_ready(&self, workload: &Workload, id: &str) -> Result<String, RuntimeError> {
        DockerBackend::wait_ready(self, workload, id).await
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        self.rename_container(id, name).await
    }

    async fn drain(&self, id: &str) -> Result<(), RuntimeError> {
        self.stop_container(id, STOP_TIMEOUT).await
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn namespace(&self) -> &str {
        self.engine.namespace()
    }

    async fn observe(&self, tenant: Option<&str>) -> Result<ObservedRuntime, RuntimeError> {
        self.observe_scope(tenant).await
    }

    async fn workload_named(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<ObservedContainer>, RuntimeError> {
        let seen = observe::inspect_observed(self.docker(), name).await?;
        Ok(seen
            .and_then(|c| observe::ours(c, self.namespace()))
            .filter(|c| c.tenant.as_deref() == Some(tenant)))
    }

    async fn details(
        &self,
        workloads: &[ObservedContainer],
    ) -> Result<HashMap<String, ContainerDetail>, RuntimeError> {
        let docker = self.docker();
        // Owned ids and names, so the stream's future is Send (the dashboard runs this in a task).
        let stopped: Vec<(String, String)> = workloads
            .iter()
            .filter(|c| !c.state.is_running())
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect();
        stream::iter(stopped)
            .map(|(id, name)| async move {
                match docker.inspect_container(&id, None).await {
                    Ok(r) => {
                        let state = r.state.unwrap_or_default();
                        Ok(Some((
                            id,
                            ContainerDetail {
                                exit_code: state.exit_code,
                                oom_killed: state.oom_killed.unwrap_or(false),
                                restart_count: r.restart_count.unwrap_or(0),
                                error: state.error.filter(|e| !e.is_empty()),
                            },
                        )))
                    }
                    Err(e) if is_not_found(&e) => Ok(None),
                    Err(e) => Err(RuntimeError::api(format!("inspect container {name}"), e)),
                }
            })
            .buffer_unordered(DETAIL_CONCURRENCY)
            .try_filter_map(|x| async move { Ok(x) })
            .try_collect()
            .await
    }

    async fn stats(
        &self,
        workload: &ObservedContainer,
        mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError> {
        self.engine.container_stats(&workload.id, mode).await
    }

    async fn stats_pass(
        &self,
        workloads: &[ObservedContainer],
        mode: StatsMode,
        source: StatsSource,
    ) -> Vec<Result<ContainerStats, RuntimeError>> {
        let targets: Vec<StatsTarget> = workloads
            .iter()
            .map(|w| StatsTarget {
                id: w.id.clone(),
                pid: w.pid,
            })
            .collect();
        self.engine.stats_pass(&targets, mode, source).await
    }

    async fn volume_sizes(&self) -> Result<std::collections::BTreeMap<String, u64>, RuntimeError> {
        self.engine.volume_sizes().await
    }

    async fn site_counters(
        &self,
        workload: &ObservedContainer,
        query: &SiteQuery,
    ) -> Result<SiteCounters, String> {
        loopback_counters(workload, query).await
    }

    async fn events(&self) -> Result<EngineEvents, RuntimeError> {
        // A container dying, stopped or removed, and its network disconnected or removed.
        self.engine
            .events(&[EventObject::Container, EventObject::Network])
            .await
    }

    fn logs<'a>(
        &'a self,
        workload: &ObservedContainer,
        options: &LogOptions,
    ) -> BoxStream<'a, Result<LogEvent, RuntimeError>> {
        log_stream(
            self.docker(),
            LogOrigin::Container,
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
        self.engine
            .create_network(name, subnet, labels, "bridge")
            .await
    }

    async fn remove_network(&self, name: &str) -> Result<bool, RuntimeError> {
        self.engine.remove_network(name, Duration::ZERO).await
    }

    async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        let created = self.engine.create_volume(name, labels).await?;
        if created && let Ok(mut set) = self.created_volumes.lock() {
            set.insert(name.to_string());
        }
        Ok(created)
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
        let handed = self
            .hand_volume_over(&workload.spec, &workload.tenant, None)
            .await?;
        with_handed(bluegreen::create(self, workload, name).await, handed)
    }

    async fn replace(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError> {
        let handed = self
            .hand_volume_over(
                &workload.spec,
                &workload.tenant,
                target.id.or(Some(target.name)),
            )
            .await?;
        with_handed(
            bluegreen::replace(self, workload, target.id, why).await,
            handed,
        )
    }

    async fn update(
        &self,
        workload: &Workload,
        target: Target<'_>,
        _why: &str,
    ) -> Result<Applied, RuntimeError> {
        let spec = &workload.spec;
        let id = target.id.unwrap_or_default();
        self.update_limits(id, spec.nano_cpus, spec.memory_bytes, spec.pids)
            .await?;
        // A container disconnected by hand gets its network back in place.
        if self.attach_network(id, &spec.network).await? {
            return Ok(Applied::new(
                format!(
                    "~ limits updated and reconnected to network {} in place",
                    spec.network
                ),
                None,
            ));
        }
        Ok(Applied::new("~ limits updated in place", None))
    }

    async fn start(
        &self,
        workload: &Workload,
        target: Target<'_>,
        say: Say<'_>,
    ) -> Result<Applied, RuntimeError> {
        let mut id = target.id.unwrap_or_default().to_string();
        phase(Phase::Start);
        if let Err(e) = self.start_container(&id).await {
            // A container that never ran holds nothing: when it cannot start (say its
            // network was replaced after an interrupted apply), make it afresh.
            let never_ran = target
                .observed
                .is_some_and(|o| o.id == id && o.state == ContainerState::Created);
            if !never_ran {
                return Err(e);
            }
            say(&format!("could not start ({e}); recreating it"));
            self.remove_container(&id, true).await?;
            id = self
                .create_container(
                    &workload.spec,
                    &workload.labels,
                    &workload.extra_env,
                    target.name,
                )
                .await?;
            self.start_container(&id).await?;
        }
        phase(Phase::Health);
        let url = self.wait_ready(workload, &id).await?;
        Ok(Applied::new(
            format!("> started, healthy at {url}"),
            Some(url),
        ))
    }

    async fn stop(&self, target: Target<'_>, _patience: Duration) -> Result<Applied, RuntimeError> {
        self.stop_container(target.id.unwrap_or_default(), STOP_TIMEOUT)
            .await?;
        Ok(Applied::new(". stopped (nothing deleted)", None))
    }

    async fn remove(&self, target: Target<'_>) -> Result<bool, RuntimeError> {
        self.remove_container(target.id.unwrap_or(target.name), true)
            .await
    }

    async fn reach(&self, workload: &Workload, url: Option<String>) -> Result<Reach, RuntimeError> {
        if let Some(url) = url {
            return Ok(Reach::At(url));
        }
        // Nothing changed for the container, which proves nothing (an earlier attempt may have
        // left it running without answering): converged means it answers its health path now.
        let name = container_name(self.namespace(), &workload.tenant);
        let observed = self.observe_scope(Some(&workload.tenant)).await?;
        let Some(container) = observed.containers.iter().find(|c| c.name == name) else {
            return Err(RuntimeError::NotAnswering {
                reason: format!("container {name} does not exist"),
            });
        };
        if !container.state.is_running() {
            return Err(RuntimeError::NotAnswering {
                reason: format!("container {name} is {}, not running", container.state),
            });
        }
        self.wait_ready(workload, &container.id)
            .await
            .map(Reach::At)
    }

    async fn restart(
        &self,
        workload: &ObservedContainer,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        self.restart_container(&workload.id, timeout).await?;
        Ok(format!("container {} restarted", workload.name))
    }

    async fn edge_up(
        &self,
        spec: &EdgeSpec,
        labels: &BTreeMap<String, String>,
        old: Option<&str>,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        DockerBackend::edge_up(self, spec, labels, old, timeout).await
    }

    async fn edge_token(&self, edge: &ObservedContainer) -> Result<String, RuntimeError> {
        DockerBackend::edge_token(self, &edge.id).await
    }

    async fn put_data_files(
        &self,
        workload: &ObservedContainer,
        tar: &[u8],
    ) -> Result<usize, RuntimeError> {
        self.engine.put_data_files(&workload.id, tar).await?;
        Ok(1)
    }
}
