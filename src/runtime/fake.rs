//! An in-memory [`Backend`] for unit tests of apply and watch, with no engine: containers,
//! networks and volumes with their labels, states and published ports, observed from that state.
//! A test scripts failures, delays and hooks per tenant and per operation, reads back the calls
//! in order, and how many of one operation ran at once. A create and a replace run the real
//! [`bluegreen::create`] and [`bluegreen::replace`] over the fake's container steps, so tests
//! exercise their order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use ipnet::Ipv4Net;
use tokio::sync::mpsc;

use super::backend::{Backend, EngineEvents, Say};
use super::docker::bluegreen::{self, ReplaceSteps};
use super::types::{
    Applied, ContainerDetail, ContainerState, ContainerStats, EngineEvent, EnsuredNetwork, Env,
    EventObject, LABEL_HASH_VERSION, LABEL_MANAGED, LABEL_NAMESPACE, LABEL_REVISION,
    LABEL_SPEC_HASH, LABEL_TENANT, LogEvent, LogOptions, ObservedContainer, ObservedNetwork,
    ObservedRuntime, ObservedService, ObservedVolume, PublishedPort, Reach, RuntimeKind,
    ServiceShape, SiteQuery, StatsMode, Target, Workload, publishes,
};
use super::{Runtime, RuntimeError};
use crate::usage::site::SiteCounters;

mod script;
use script::Rule;
pub use script::{Call, Op, Times};

struct Container {
    id: String,
    name: String,
    labels: BTreeMap<String, String>,
    state: ContainerState,
    image: String,
    env: Env,
    nano_cpus: i64,
    memory_bytes: i64,
    pids: i64,
    published_ports: Vec<PublishedPort>,
    shape: ServiceShape,
    /// Swarm: the last rolling update's state (`rollback_completed` after a rollback).
    update_state: Option<String>,
    update_message: Option<String>,
}

struct Network {
    id: String,
    labels: BTreeMap<String, String>,
    subnet: Ipv4Net,
}

#[derive(Default)]
struct State {
    containers: BTreeMap<String, Container>,
    networks: BTreeMap<String, Network>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
    next_id: u64,
    next_port: u16,
    calls: Vec<Call>,
    rules: Vec<Rule>,
    in_flight: HashMap<Op, usize>,
    most_in_flight: HashMap<Op, usize>,
    /// Whoever follows the events: each gets every event until [`FakeBackend::drop_events`].
    subscribers: Vec<mpsc::UnboundedSender<Result<EngineEvent, RuntimeError>>>,
}

impl State {
    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("fake-{}", self.next_id)
    }

    /// Tells every follower; one whose stream was dropped is forgotten.
    fn emit(&mut self, event: EngineEvent) {
        self.subscribers
            .retain(|tx| tx.send(Ok(event.clone())).is_ok());
    }

    fn by_id_or_name(&self, id_or_name: &str) -> Option<&Container> {
        self.containers
            .get(id_or_name)
            .or_else(|| self.containers.values().find(|c| c.name == id_or_name))
    }
}

/// The in-memory backend; share it as `Arc<FakeBackend>` and hand [`FakeBackend::runtime`] to
/// the code under test.
pub struct FakeBackend {
    namespace: String,
    kind: RuntimeKind,
    state: Mutex<State>,
}

impl fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBackend")
            .field("namespace", &self.namespace)
            .field("kind", &self.kind)
            .finish()
    }
}

impl FakeBackend {
    /// Containers on one engine, like the docker backend.
    pub fn new(namespace: &str) -> Arc<FakeBackend> {
        FakeBackend::of_kind(namespace, RuntimeKind::Docker)
    }

    /// Services of a swarm, like the swarm backend: changed in place, observed with their shape.
    pub fn swarm(namespace: &str) -> Arc<FakeBackend> {
        FakeBackend::of_kind(namespace, RuntimeKind::Swarm)
    }

    fn of_kind(namespace: &str, kind: RuntimeKind) -> Arc<FakeBackend> {
        Arc::new(FakeBackend {
            namespace: namespace.to_string(),
            kind,
            state: Mutex::new(State {
                next_port: 32_000,
                ..State::default()
            }),
        })
    }

    /// A runtime over this fake.
    pub fn runtime(self: &Arc<Self>) -> Runtime {
        Runtime::from_backend(self.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; its state still reads.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container (or service) `name` as it is observed now.
    pub fn container(&self, name: &str) -> Option<ObservedContainer> {
        let s = self.state();
        s.containers
            .values()
            .find(|c| c.name == name)
            .map(|c| self.observed(c))
    }

    /// Names of every container, in order.
    pub fn container_names(&self) -> Vec<String> {
        let s = self.state();
        let mut names: Vec<String> = s.containers.values().map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    /// Removes container `name` behind tenantctl's back (`docker rm -f`); not a recorded call.
    /// Followers of the events are told (`destroy`), as the engine would.
    pub fn remove_outside(&self, name: &str) -> bool {
        let mut s = self.state();
        let Some(id) = s.by_id_or_name(name).map(|c| c.id.clone()) else {
            return false;
        };
        if let Some(c) = s.containers.remove(&id) {
            s.emit(container_event(&c, "destroy"));
        }
        true
    }

    /// An event as the engine would send it to whoever follows them now.
    pub fn emit(&self, event: EngineEvent) {
        self.state().emit(event);
    }

    /// Ends every event stream, as an engine restart or a dropped connection does.
    pub fn drop_events(&self) {
        self.state().subscribers.clear();
    }

    /// How many event streams are followed now.
    pub fn event_followers(&self) -> usize {
        let mut s = self.state();
        s.subscribers.retain(|tx| !tx.is_closed());
        s.subscribers.len()
    }

    // ------------------------------------------------------------ the model

    fn ours(&self, labels: &BTreeMap<String, String>) -> bool {
        labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && labels.get(LABEL_NAMESPACE) == Some(&self.namespace)
    }

    fn observed(&self, c: &Container) -> ObservedContainer {
        let label = |key: &str| c.labels.get(key).cloned();
        let running = c.state.is_running();
        let service = (self.kind == RuntimeKind::Swarm).then(|| {
            let replicas = if running { c.shape.replicas } else { 0 };
            ObservedService {
                replicas,
                running: replicas,
                constraints: c.shape.constraints.clone(),
                reserved_nano_cpus: c.shape.reserved_nano_cpus,
                reserved_memory_bytes: c.shape.reserved_memory_bytes,
                update_state: c.update_state.clone(),
                update_message: c.update_message.clone(),
                ..ObservedService::default()
            }
        });
        let mut others = c.labels.clone();
        others.retain(|k, _| !k.starts_with("tenantctl."));
        ObservedContainer {
            id: c.id.clone(),
            name: c.name.clone(),
            tenant: label(LABEL_TENANT),
            spec_hash: label(LABEL_SPEC_HASH),
            hash_version: label(LABEL_HASH_VERSION),
            revision: label(LABEL_REVISION),
            state: c.state.clone(),
            health: running.then(|| "healthy".to_string()),
            image: c.image.clone(),
            env: c.env.clone(),
            nano_cpus: Some(c.nano_cpus).filter(|v| *v > 0),
            memory_bytes: Some(c.memory_bytes).filter(|v| *v > 0),
            pids_limit: Some(c.pids).filter(|v| *v > 0),
            published_ports: c.published_ports.clone(),
            labels: others,
            started_at: None,
            attached_networks: None,
            service,
            probe: None,
            edge_probe: None,
            pid: None,
        }
    }

    /// The tenant a call is about: the object's label, else the tenant part of its name.
    fn tenant_of(&self, id_or_name: &str) -> Option<String> {
        if let Some(c) = self.state().by_id_or_name(id_or_name) {
            return c.labels.get(LABEL_TENANT).cloned();
        }
        let slug = id_or_name.strip_prefix(&format!("{}-", self.namespace))?;
        Some(slug.strip_suffix("_next").unwrap_or(slug).to_string())
    }

    fn name_of(&self, id_or_name: &str) -> String {
        self.state()
            .by_id_or_name(id_or_name)
            .map_or_else(|| id_or_name.to_string(), |c| c.name.clone())
    }

    /// Sets a container's spec, labels and shape from `workload` (a create, or a swarm update).
    fn shape_from(&self, c: &mut Container, workload: &Workload, port: u16) {
        let spec = &workload.spec;
        c.labels = workload.labels.clone();
        c.image = spec.image.clone();
        c.env = Env::from_pairs(spec.env.iter().chain(&workload.extra_env));
        c.nano_cpus = spec.nano_cpus;
        c.memory_bytes = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
        c.pids = i64::from(spec.pids);
        c.shape = workload.shape.clone();
        // Swarm cannot publish on loopback only.
        let published = self.kind == RuntimeKind::Docker || publishes(spec);
        c.published_ports = match published {
            true => vec![PublishedPort {
                container_port: spec.port,
                host_ip: spec.publish_address.clone(),
                host_port: port,
            }],
            false => Vec::new(),
        };
    }

    async fn create_container(
        &self,
        workload: &Workload,
        name: &str,
    ) -> Result<String, RuntimeError> {
        let _flight = self.enter(Op::Create, Some(&workload.tenant), name).await?;
        let mut s = self.state();
        if s.by_id_or_name(name).is_some() {
            return Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: "the fake already has it".into(),
            });
        }
        let id = s.fresh_id();
        s.next_port += 1;
        let port = s.next_port;
        let mut c = Container {
            id: id.clone(),
            name: name.to_string(),
            labels: BTreeMap::new(),
            state: ContainerState::Created,
            image: String::new(),
            env: Env::default(),
            nano_cpus: 0,
            memory_bytes: 0,
            pids: 0,
            published_ports: Vec::new(),
            shape: ServiceShape::default(),
            update_state: None,
            update_message: None,
        };
        self.shape_from(&mut c, workload, port);
        if self.kind == RuntimeKind::Swarm {
            // A service runs its tasks from the start, or none when suspended.
            c.state = match workload.running {
                true => ContainerState::Running,
                false => ContainerState::Exited,
            };
        }
        s.containers.insert(id.clone(), c);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let (tenant, name) = (self.tenant_of(id), self.name_of(id));
        let _flight = self.enter(Op::Start, tenant.as_deref(), &name).await?;
        let mut s = self.state();
        let c = s
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        c.state = ContainerState::Running;
        Ok(())
    }

    async fn wait_until_ready(
        &self,
        workload: &Workload,
        id: &str,
    ) -> Result<String, RuntimeError> {
        let name = self.name_of(id);
        let _flight = self
            .enter(Op::WaitReady, Some(&workload.tenant), &name)
            .await?;
        let s = self.state();
        let c = s
            .containers
            .get(id)
            .ok_or_else(|| not_found("container", id))?;
        match (c.state.is_running(), url_of(c)) {
            (true, Some(url)) => Ok(url),
            _ => Err(RuntimeError::NotAnswering {
                reason: format!("container {name} is {} and does not answer", c.state),
            }),
        }
    }

    async fn remove_container(&self, id_or_name: &str) -> Result<bool, RuntimeError> {
        let (tenant, name) = (self.tenant_of(id_or_name), self.name_of(id_or_name));
        let _flight = self.enter(Op::Remove, tenant.as_deref(), &name).await?;
        let mut s = self.state();
        let id = s.by_id_or_name(id_or_name).map(|c| c.id.clone());
        let removed = id.and_then(|id| s.containers.remove(&id));
        if let Some(c) = &removed {
            s.emit(container_event(c, "destroy"));
        }
        Ok(removed.is_some())
    }
}

fn not_found(kind: &'static str, name: &str) -> RuntimeError {
    RuntimeError::NotFound {
        kind,
        name: name.to_string(),
    }
}

/// An event about container `c`, as the engine reports it.
fn container_event(c: &Container, action: &str) -> EngineEvent {
    EngineEvent {
        object: EventObject::Container,
        action: action.to_string(),
        name: c.name.clone(),
        tenant: c.labels.get(LABEL_TENANT).cloned(),
    }
}

/// Where a running container answers: its first published port on loopback.
fn url_of(c: &Container) -> Option<String> {
    let port = c.published_ports.first()?;
    Some(format!("http://127.0.0.1:{}/", port.host_port))
}

#[async_trait]
impl ReplaceSteps for FakeBackend {
    async fn remove(&self, id_or_name: &str) -> Result<bool, RuntimeError> {
        self.remove_container(id_or_name).await
    }

    async fn remove_leftover(&self, name: &str, tenant: &str) -> Result<bool, RuntimeError> {
        let owner = {
            let s = self.state();
            s.by_id_or_name(name)
                .map(|c| c.labels.get(LABEL_TENANT).cloned())
        };
        match owner {
            Some(Some(owner)) if owner != tenant => Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: format!("it is not {tenant}'s"),
            }),
            // Absent or ours: the call is recorded like any removal.
            None | Some(Some(_)) => self.remove_container(name).await,
            Some(None) => Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: format!("it is not {tenant}'s"),
            }),
        }
    }

    async fn create(&self, workload: &Workload, name: &str) -> Result<String, RuntimeError> {
        self.create_container(workload, name).await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.start_container(id).await
    }

    async fn wait_ready(&self, workload: &Workload, id: &str) -> Result<String, RuntimeError> {
        self.wait_until_ready(workload, id).await
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let tenant = self.tenant_of(id);
        let object = format!("{} as {name}", self.name_of(id));
        let _flight = self.enter(Op::Rename, tenant.as_deref(), &object).await?;
        let mut s = self.state();
        if s.containers.values().any(|c| c.name == name && c.id != id) {
            return Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: "the fake already has it".into(),
            });
        }
        let c = s
            .containers
            .get_mut(id)
            .ok_or_else(|| not_found("container", id))?;
        c.name = name.to_string();
        Ok(())
    }

    async fn drain(&self, id: &str) -> Result<(), RuntimeError> {
        let _ = id;
        Ok(())
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    async fn observe(&self, tenant: Option<&str>) -> Result<ObservedRuntime, RuntimeError> {
        let _flight = self.enter(Op::Observe, tenant, "").await?;
        let s = self.state();
        let wanted = |labels: &BTreeMap<String, String>| {
            self.ours(labels)
                && tenant.is_none_or(|t| labels.get(LABEL_TENANT).map(String::as_str) == Some(t))
        };
        let mut containers: Vec<ObservedContainer> = s
            .containers
            .values()
            .filter(|c| wanted(&c.labels))
            .map(|c| self.observed(c))
            .collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        let networks = s
            .networks
            .iter()
            .filter(|(_, n)| wanted(&n.labels))
            .map(|(name, n)| ObservedNetwork {
                id: n.id.clone(),
                name: name.clone(),
                tenant: n.labels.get(LABEL_TENANT).cloned(),
                subnet: Some(n.subnet.to_string()),
            })
            .collect();
        let volumes = s
            .volumes
            .iter()
            .filter(|(_, labels)| wanted(labels))
            .map(|(name, labels)| ObservedVolume {
                name: name.clone(),
                tenant: labels.get(LABEL_TENANT).cloned(),
            })
            .collect();
        Ok(ObservedRuntime {
            kind: self.kind,
            containers,
            networks,
            volumes,
            edge: None,
            probe_host_fault: None,
        })
    }

    async fn details(
        &self,
        _workloads: &[ObservedContainer],
    ) -> Result<HashMap<String, ContainerDetail>, RuntimeError> {
        Ok(HashMap::new())
    }

    async fn stats(
        &self,
        _workload: &ObservedContainer,
        _mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError> {
        Ok(ContainerStats::default())
    }

    async fn put_data_files(
        &self,
        _workload: &ObservedContainer,
        _tar: &[u8],
    ) -> Result<usize, RuntimeError> {
        // The fake runs no site; a file written nowhere is still written.
        Ok(1)
    }

    async fn site_counters(
        &self,
        _workload: &ObservedContainer,
        _query: &SiteQuery,
    ) -> Result<SiteCounters, String> {
        Err("the fake backend runs no site".into())
    }

    async fn events(&self) -> Result<EngineEvents, RuntimeError> {
        let _flight = self.enter(Op::Events, None, "").await?;
        let (tx, rx) = mpsc::unbounded_channel();
        self.state().subscribers.push(tx);
        Ok(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        })
        .boxed())
    }

    fn logs<'a>(
        &'a self,
        _workload: &ObservedContainer,
        _options: &LogOptions,
    ) -> BoxStream<'a, Result<LogEvent, RuntimeError>> {
        futures_util::stream::empty().boxed()
    }

    async fn existing_subnets(&self) -> Result<BTreeSet<Ipv4Net>, RuntimeError> {
        Ok(self.state().networks.values().map(|n| n.subnet).collect())
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        let tenant = labels.get(LABEL_TENANT).map(String::as_str);
        let _flight = self.enter(Op::EnsureNetwork, tenant, name).await?;
        let mut s = self.state();
        if let Some(n) = s.networks.get(name) {
            return Ok(EnsuredNetwork {
                id: n.id.clone(),
                subnet: Some(n.subnet),
                created: false,
                left_in_use: Vec::new(),
            });
        }
        if s.networks
            .values()
            .any(|n| n.subnet.contains(&subnet.network()) || subnet.contains(&n.subnet.network()))
        {
            return Err(RuntimeError::SubnetOverlap {
                network: name.to_string(),
                subnet: subnet.to_string(),
                message: "the fake has a network there".into(),
            });
        }
        let id = s.fresh_id();
        s.networks.insert(
            name.to_string(),
            Network {
                id: id.clone(),
                labels: labels.clone(),
                subnet,
            },
        );
        Ok(EnsuredNetwork {
            id,
            subnet: Some(subnet),
            created: true,
            left_in_use: Vec::new(),
        })
    }

    async fn remove_network(&self, name: &str) -> Result<bool, RuntimeError> {
        let tenant = self
            .state()
            .networks
            .get(name)
            .and_then(|n| n.labels.get(LABEL_TENANT).cloned());
        let _flight = self
            .enter(Op::RemoveNetwork, tenant.as_deref(), name)
            .await?;
        let removed = self.state().networks.remove(name).is_some();
        Ok(removed)
    }

    async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        let tenant = labels.get(LABEL_TENANT).map(String::as_str);
        let _flight = self.enter(Op::EnsureVolume, tenant, name).await?;
        let mut s = self.state();
        if s.volumes.contains_key(name) {
            return Ok(false);
        }
        s.volumes.insert(name.to_string(), labels.clone());
        Ok(true)
    }

    async fn ensure_image(&self, reference: &str, _progress: Say<'_>) -> Result<(), RuntimeError> {
        let _flight = self.enter(Op::EnsureImage, None, reference).await?;
        Ok(())
    }

    async fn ensure_site_image(
        &self,
        tag: &str,
        _progress: Say<'_>,
    ) -> Result<String, RuntimeError> {
        let _flight = self.enter(Op::EnsureImage, None, tag).await?;
        Ok(format!("sha256:fake-{tag}"))
    }

    async fn create(&self, workload: &Workload, name: &str) -> Result<Applied, RuntimeError> {
        if self.kind == RuntimeKind::Docker {
            return bluegreen::create(self, workload, name).await;
        }
        // A service's tasks start with it; a loopback-only port is not published.
        let id = self.create_container(workload, name).await?;
        let url = self.state().containers.get(&id).and_then(url_of);
        Ok(Applied::new("+ created", url))
    }

    async fn replace(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError> {
        bluegreen::replace(self, workload, target.id, why).await
    }

    async fn update(
        &self,
        workload: &Workload,
        target: Target<'_>,
        _why: &str,
    ) -> Result<Applied, RuntimeError> {
        let id_or_name = target.id.unwrap_or(target.name);
        let entered = self
            .enter(Op::Update, Some(&workload.tenant), target.name)
            .await;
        let mut s = self.state();
        let id = s
            .by_id_or_name(id_or_name)
            .map(|c| c.id.clone())
            .ok_or_else(|| not_found("container", id_or_name))?;
        let c = s
            .containers
            .get_mut(&id)
            .ok_or_else(|| not_found("container", id_or_name))?;
        if let Err(e) = entered {
            // The engine put the previous spec back: the service says so, as swarm's does.
            if let RuntimeError::RolledBack { message, .. } = &e {
                c.update_state = Some("rollback_completed".into());
                c.update_message = Some(message.clone());
            }
            return Err(e);
        }
        if self.kind == RuntimeKind::Swarm {
            let port = c.published_ports.first().map_or(0, |p| p.host_port);
            self.shape_from(c, workload, port);
            c.update_state = Some("completed".into());
            c.update_message = None;
            return Ok(Applied::new("~ rolled out", None));
        }
        let spec = &workload.spec;
        c.nano_cpus = spec.nano_cpus;
        c.memory_bytes = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
        c.pids = i64::from(spec.pids);
        Ok(Applied::new("~ limits updated in place", None))
    }

    async fn start(
        &self,
        workload: &Workload,
        target: Target<'_>,
        _say: Say<'_>,
    ) -> Result<Applied, RuntimeError> {
        let id = target.id.unwrap_or(target.name).to_string();
        self.start_container(&id).await?;
        let url = self.wait_until_ready(workload, &id).await?;
        Ok(Applied::new(
            format!("> started, healthy at {url}"),
            Some(url),
        ))
    }

    async fn stop(&self, target: Target<'_>, _patience: Duration) -> Result<Applied, RuntimeError> {
        let id_or_name = target.id.unwrap_or(target.name);
        let tenant = self.tenant_of(id_or_name);
        let _flight = self.enter(Op::Stop, tenant.as_deref(), target.name).await?;
        let mut s = self.state();
        let id = s
            .by_id_or_name(id_or_name)
            .map(|c| c.id.clone())
            .ok_or_else(|| not_found("container", id_or_name))?;
        let mut stopped = None;
        if let Some(c) = s.containers.get_mut(&id) {
            c.state = ContainerState::Exited;
            stopped = Some(container_event(c, "stop"));
        }
        if let Some(event) = stopped {
            s.emit(event);
        }
        Ok(Applied::new(". stopped (nothing deleted)", None))
    }

    async fn remove(&self, target: Target<'_>) -> Result<bool, RuntimeError> {
        self.remove_container(target.id.unwrap_or(target.name))
            .await
    }

    async fn reach(&self, workload: &Workload, url: Option<String>) -> Result<Reach, RuntimeError> {
        if let Some(url) = url {
            return Ok(Reach::At(url));
        }
        let name = super::container_name(&self.namespace, &workload.tenant);
        let s = self.state();
        Ok(match s.by_id_or_name(&name) {
            Some(c) if c.state.is_running() => url_of(c).map_or(Reach::Unpublished, Reach::At),
            _ => Reach::Nowhere,
        })
    }

    async fn restart(
        &self,
        workload: &ObservedContainer,
        _timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let _flight = self
            .enter(Op::Restart, workload.tenant.as_deref(), &workload.name)
            .await?;
        Ok(format!("container {} restarted", workload.name))
    }
}
