//! Whatever runs the tenants, behind one interface: connect to the engine, pick a backend
//! (containers on this engine, or services of its swarm), and hand out a cheap [`Runtime`]
//! handle. Only the backends (`docker/`, `swarm/`, and the `engine/` client they share) know the
//! engine; everything else reads the plain types of [`types`].
//!
//! Everything here only ever sees objects carrying `tenantctl.managed=true` and this
//! reconciler's `tenantctl.namespace`, so several reconcilers can share one engine.

pub mod backend;
pub mod cgroup;
pub mod docker;
pub mod edge_admin;
pub mod engine;
mod error;
#[cfg(test)]
pub mod fake;
pub mod pool;
pub mod probe;
pub mod swarm;
pub mod types;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

pub use backend::{Backend, EngineEvents, Say};
pub use docker::container_body;
pub use engine::{BodyOptions, DATA_MOUNT_PATH, image};
pub use engine::{
    CONNECT_TIMEOUT, DEFAULT_DOCKER_HOST, Engine, REQUEST_TIMEOUT, validate_namespace,
};
pub use error::{RuntimeError, is_conflict, is_not_found, status_code};
pub use pool::{DEFAULT_SUBNET_POOL, DEFAULT_SUBNET_PREFIX, SubnetPool};
pub use types::*;

use docker::DockerBackend;
use swarm::SwarmBackend;

/// How long a following log stream waits for a restarting container to run again.
const RESTART_WAIT: Duration = Duration::from_secs(30);

/// A cheap, cloneable handle on the backend that runs this namespace's tenants.
#[derive(Debug, Clone)]
pub struct Runtime {
    backend: Arc<dyn Backend>,
    /// The engine connection, to pick another backend kind; None for a backend made elsewhere.
    engine: Option<Engine>,
}

impl Runtime {
    /// Connect using DOCKER_HOST or the local socket, negotiate the API version and ping.
    /// Fails within about [`CONNECT_TIMEOUT`] with a message naming the address tried.
    /// Tenants run as containers until [`Runtime::with_kind`] says otherwise.
    pub async fn connect(namespace: &str) -> Result<Runtime, RuntimeError> {
        let engine = Engine::connect_default(namespace).await?;
        Ok(Runtime::on(engine))
    }

    /// Connect to `host` (`unix:///path` or `tcp://host:port`), or to the default local
    /// socket when `None`, ignoring DOCKER_HOST.
    pub async fn connect_with(
        host: Option<&str>,
        namespace: &str,
    ) -> Result<Runtime, RuntimeError> {
        let engine = match host {
            Some(host) => Engine::connect(host, host, namespace).await?,
            None => Engine::connect(DEFAULT_DOCKER_HOST, DEFAULT_DOCKER_HOST, namespace).await?,
        };
        Ok(Runtime::on(engine))
    }

    /// Containers on an already connected engine.
    pub fn on(engine: Engine) -> Runtime {
        Runtime {
            backend: Arc::new(DockerBackend::new(engine.clone())),
            engine: Some(engine),
        }
    }

    /// A runtime over any backend (a fake one in tests).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Runtime {
        Runtime {
            backend,
            engine: None,
        }
    }

    /// Run tenants as `kind`. Swarm mode needs this engine to be a swarm manager: checked here,
    /// so a command fails at once with what to do rather than half-way through an apply.
    /// A runtime made [`from_backend`](Runtime::from_backend) keeps its backend.
    pub async fn with_kind(self, kind: RuntimeKind) -> Result<Runtime, RuntimeError> {
        let Some(engine) = self.engine.clone() else {
            return Ok(self);
        };
        let backend: Arc<dyn Backend> = match kind {
            RuntimeKind::Docker => Arc::new(DockerBackend::new(engine.clone())),
            RuntimeKind::Swarm => Arc::new(SwarmBackend::new(engine.clone()).await?),
        };
        Ok(Runtime {
            backend,
            engine: Some(engine),
        })
    }

    /// The engine client, for tests that set up fixtures beside the backend.
    #[cfg(test)]
    pub(crate) fn docker(&self) -> &bollard::Docker {
        self.engine
            .as_ref()
            .map(Engine::docker)
            .expect("connected to an engine")
    }

    /// Whether the engine answers a ping within `within` (a readiness check). A runtime made
    /// [`from_backend`](Runtime::from_backend) has no engine to ask and counts as reachable.
    pub async fn ping(&self, within: Duration) -> Result<(), RuntimeError> {
        let Some(engine) = &self.engine else {
            return Ok(());
        };
        let unreachable = |reason: String| RuntimeError::Unreachable {
            target: "the engine".to_string(),
            reason,
        };
        match tokio::time::timeout(within, engine.docker().ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(error::describe(&e))),
            Err(_) => Err(unreachable(format!(
                "no answer within {}s",
                within.as_secs_f64()
            ))),
        }
    }

    /// The backend, for the workload, network, volume and image work of apply.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// The namespace: name prefix and value of the `tenantctl.namespace` label.
    pub fn namespace(&self) -> &str {
        self.backend.namespace()
    }

    /// Labels every object of `tenant` in this namespace must carry.
    pub fn labels_for(&self, tenant: &str) -> BTreeMap<String, String> {
        managed_labels(self.namespace(), tenant)
    }

    /// `<namespace>-<slug>`: the tenant's container name.
    pub fn container_name(&self, slug: &str) -> String {
        container_name(self.namespace(), slug)
    }

    /// `<namespace>-<slug>`: the tenant's network name.
    pub fn network_name(&self, slug: &str) -> String {
        network_name(self.namespace(), slug)
    }

    /// `<namespace>-<slug>-data`: the tenant's data volume name.
    pub fn volume_name(&self, slug: &str) -> String {
        volume_name(self.namespace(), slug)
    }

    /// Everything this namespace manages (containers in all states, networks, volumes),
    /// each list sorted by name.
    pub async fn observe(&self) -> Result<ObservedRuntime, RuntimeError> {
        self.backend.observe(None).await
    }

    /// What this namespace manages for one tenant: cheaper than [`Runtime::observe`] when
    /// re-checking a single tenant between apply attempts.
    pub async fn observe_tenant(&self, slug: &str) -> Result<ObservedRuntime, RuntimeError> {
        self.backend.observe(Some(slug)).await
    }

    /// Stats of each given container that is running, in the order given, from `source` (the
    /// cgroup files, the engine's stats endpoint at most [`engine::STATS_CONCURRENCY`] at once, or each
    /// where it works). One failing container does not fail the others.
    pub async fn stats_of(
        &self,
        containers: &[ObservedContainer],
        mode: StatsMode,
        source: StatsSource,
    ) -> Vec<(ObservedContainer, Result<ContainerStats, RuntimeError>)> {
        let running: Vec<ObservedContainer> = containers
            .iter()
            .filter(|c| c.state.is_running())
            .cloned()
            .collect();
        let results = self.backend.stats_pass(&running, mode, source).await;
        running.into_iter().zip(results).collect()
    }

    /// The container to read a tenant's logs from: its own name first, else any it owns
    /// (a `_next` of an interrupted replace), running ones before stopped ones.
    pub async fn log_container(
        &self,
        slug: &str,
    ) -> Result<Option<ObservedContainer>, RuntimeError> {
        let seen = self.observe_tenant(slug).await?;
        Ok(pick_log_container(
            &seen.containers,
            &container_name(self.namespace(), slug),
            None,
        ))
    }

    /// Streams the logs of `container` (a container of `slug`) into `on`, until done, the
    /// consumer breaks, or — when following — the container stops for good or is removed.
    /// When following and the tenant's container is replaced (apply's blue/green), the new
    /// container is followed from its first line, with a [`LogEvent::Note`] saying so.
    pub async fn stream_logs<F>(
        &self,
        slug: &str,
        container: &ObservedContainer,
        options: LogOptions,
        mut on: F,
    ) -> Result<LogEnd, RuntimeError>
    where
        F: FnMut(LogEvent) -> ControlFlow<()>,
    {
        let name = container_name(self.namespace(), slug);
        let mut current = container.clone();
        let mut options = options;
        loop {
            let mut stream = self.backend.logs(&current, &options);
            while let Some(event) = stream.next().await {
                if on(event?).is_break() {
                    return Ok(LogEnd::Cancelled);
                }
            }
            drop(stream);
            if !options.follow {
                return Ok(LogEnd::Done);
            }
            // A follow ends when the container stops: find out whether it comes back or was replaced.
            let ended_at = crate::store::now_unix();
            let deadline = tokio::time::Instant::now() + RESTART_WAIT;
            let next = loop {
                let seen = self.observe_tenant(slug).await?;
                match pick_log_container(&seen.containers, &name, Some(&current.id)) {
                    Some(c) if c.id != current.id && c.state.is_running() => break Some(c),
                    Some(c) if c.id == current.id && c.state.is_running() => break Some(c),
                    Some(c)
                        if c.id == current.id
                            && matches!(c.state, ContainerState::Restarting)
                            && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Some(c) if c.id == current.id => {
                        return Ok(LogEnd::Stopped {
                            state: c.state.to_string(),
                        });
                    }
                    Some(c) => break Some(c),
                    None => break None,
                }
            };
            let Some(next) = next else {
                return Ok(LogEnd::Removed);
            };
            if next.id == current.id {
                // Restarted: carry on from where the stream ended (lines of that second may repeat).
                options.since = Some(ended_at);
                options.tail = Tail::All;
            } else {
                let note = format!(
                    "container {} ({}) was replaced by {} ({}); following the new one",
                    current.name,
                    short_id(&current.id),
                    next.name,
                    short_id(&next.id)
                );
                if on(LogEvent::Note(note)).is_break() {
                    return Ok(LogEnd::Cancelled);
                }
                options.since = None;
                options.tail = Tail::All;
            }
            current = next;
        }
    }
}
