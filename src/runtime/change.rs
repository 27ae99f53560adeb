//! The Engine-API mutations `apply` carries out. Every one is idempotent (a re-run after a crash
//! converges instead of failing or duplicating) and touches only objects that carry
//! `tenantctl.managed=true` and this runtime's namespace; anything else is refused by name.
//!
//! Volumes are only ever created here; the one way to delete data is [`Runtime::purge_volume`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerUpdateBody, CreateImageInfo,
    HealthConfig, HealthStatusEnum, HostConfig, HostConfigLogConfig, Ipam, IpamConfig, Mount,
    MountType, Network, NetworkCreateRequest, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use ipnet::Ipv4Net;

use super::error::describe;
use super::observe::from_inspect;
use super::types::{
    ContainerSpec, EnsuredNetwork, HealthOutcome, LABEL_MANAGED, LABEL_NAMESPACE, RuntimeKind,
    builtin_site_image, is_managed_by,
};
use super::{Runtime, RuntimeError, build_self_image, status_code};

/// Where a tenant's data volume is mounted.
pub const DATA_MOUNT_PATH: &str = "/data";
/// The built-in site image's entrypoint is `/tenantctl`; this command runs the site server.
pub const SITE_CMD: &str = "site";
/// Per-file cap of the json-file log driver, so a chatty tenant cannot fill the disk.
pub const LOG_MAX_SIZE: &str = "10m";
/// Rotated log files kept per container (at most 30 MB per tenant).
pub const LOG_MAX_FILES: &str = "3";
/// A probe that has not answered in this time counts as failed.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive failed probes before the engine calls a container unhealthy.
pub const HEALTH_RETRIES: i64 = 3;
/// Failures in the first seconds after start do not count: the server is still starting.
pub const HEALTH_START_PERIOD: Duration = Duration::from_secs(5);
/// Probe interval during the start period (honoured from API 1.44; older engines ignore it).
pub const HEALTH_START_INTERVAL: Duration = Duration::from_secs(1);
/// How often `wait_healthy` inspects the container.
const HEALTH_POLL: Duration = Duration::from_millis(250);
/// Log lines returned with an exited container.
const EXIT_LOG_LINES: usize = 20;
/// Image label with the size, mtime and inode of the binary the site image was built from.
pub const LABEL_EXE_FINGERPRINT: &str = "tenantctl.exe-fingerprint";

/// Inputs of [`container_body`] that come from the engine and the build, not from the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyOptions {
    /// This runtime's namespace: its managed labels are always set.
    pub namespace: String,
    /// The built-in site image tag: containers of it get `cmd: ["site"]`.
    pub site_image: String,
    /// The engine's API is 1.44 or newer and takes `Healthcheck.StartInterval`.
    pub start_interval: bool,
}

/// The create request for `spec`: limits, security defaults, health check, port, volume, network.
pub fn container_body(
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    extra_env: &BTreeMap<String, String>,
    options: &BodyOptions,
) -> ContainerCreateBody {
    let mut env = spec.env.clone();
    env.extend(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let port_key = format!("{}/tcp", spec.port);
    // HostPort "" lets the engine pick a free port; the address keeps it on loopback by default.
    let port_bindings = HashMap::from([(
        port_key.clone(),
        Some(vec![PortBinding {
            host_ip: Some(spec.publish_address.clone()),
            host_port: Some(String::new()),
        }]),
    )]);
    let memory = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
    let cmd = (spec.image == options.site_image).then(|| vec![SITE_CMD.to_string()]);

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd,
        env: Some(env),
        labels: Some(owned_labels(labels, &options.namespace)),
        exposed_ports: Some(vec![port_key]),
        healthcheck: health_config(spec, options.start_interval),
        host_config: Some(HostConfig {
            nano_cpus: Some(spec.nano_cpus),
            memory: Some(memory),
            // Equal to Memory: swap adds nothing beyond the plan's limit.
            memory_swap: Some(memory),
            pids_limit: Some(i64::from(spec.pids)),
            port_bindings: Some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(spec.cap_add.clone()),
            mounts: Some(vec![Mount {
                target: Some(DATA_MOUNT_PATH.to_string()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            network_mode: Some(spec.network.clone()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                    ("max-file".to_string(), LOG_MAX_FILES.to_string()),
                ])),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The health check of `spec`, durations in nanoseconds; None leaves the image's own.
pub(crate) fn health_config(spec: &ContainerSpec, start_interval: bool) -> Option<HealthConfig> {
    if spec.health_cmd.is_empty() {
        return None;
    }
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    Some(HealthConfig {
        test: Some(spec.health_cmd.clone()),
        // 0 asks the engine for its default (30s).
        interval: Some(nanos(Duration::from_secs(u64::from(
            spec.health_interval_seconds,
        )))),
        timeout: Some(nanos(HEALTH_TIMEOUT)),
        retries: Some(HEALTH_RETRIES),
        start_period: Some(nanos(HEALTH_START_PERIOD)),
        start_interval: start_interval.then(|| nanos(HEALTH_START_INTERVAL)),
    })
}

/// `labels` with this namespace's managed labels forced, so nothing we create is unmanageable.
pub(crate) fn owned_labels(
    labels: &BTreeMap<String, String>,
    namespace: &str,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = labels.clone().into_iter().collect();
    out.insert(LABEL_MANAGED.to_string(), "true".to_string());
    out.insert(LABEL_NAMESPACE.to_string(), namespace.to_string());
    out
}

/// `fromImage` and `tag` for a pull: without them the engine would pull every tag.
pub fn pull_reference(reference: &str) -> (String, Option<String>) {
    if reference.contains('@') {
        return (reference.to_string(), None);
    }
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => {
            let at = name_start + colon;
            (
                reference[..at].to_string(),
                Some(reference[at + 1..].to_string()),
            )
        }
        None => (reference.to_string(), Some("latest".to_string())),
    }
}

/// One human line of pull progress, e.g. `a1b2c3: Downloading 1048576/5242880`.
pub fn progress_line(info: &CreateImageInfo) -> Option<String> {
    let status = info.status.as_deref()?.trim();
    if status.is_empty() {
        return None;
    }
    let mut line = match info.id.as_deref() {
        Some(id) if !id.is_empty() => format!("{id}: {status}"),
        _ => status.to_string(),
    };
    if let Some(detail) = &info.progress_detail
        && let (Some(current), Some(total)) = (detail.current, detail.total)
        && total > 0
    {
        line.push_str(&format!(" {current}/{total}"));
    }
    Some(line)
}

/// What one inspect says about a container being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HealthStep {
    Done(HealthOutcome),
    Exited { code: Option<i64>, oom_killed: bool },
    Waiting(String),
}

/// Classify one inspect; `restarted` is true when the restart count grew while waiting.
fn health_step(response: &ContainerInspectResponse, restarted: bool) -> HealthStep {
    let state = response.state.clone().unwrap_or_default();
    let status = state.status.map(|s| s.to_string()).unwrap_or_default();
    let oom_killed = state.oom_killed.unwrap_or(false);
    match status.as_str() {
        "exited" | "dead" | "restarting" => {
            return HealthStep::Exited {
                code: state.exit_code,
                oom_killed,
            };
        }
        // Restarted between two polls: the exit code was reset when it ran again.
        "running" if restarted => {
            return HealthStep::Exited {
                code: None,
                oom_killed,
            };
        }
        "running" => {}
        other => return HealthStep::Waiting(other.to_string()),
    }
    let health = state.health.unwrap_or_default();
    match health.status {
        Some(HealthStatusEnum::HEALTHY) => HealthStep::Done(HealthOutcome::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => {
            let last = health.log.unwrap_or_default().pop().unwrap_or_default();
            let output = last.output.unwrap_or_default().trim().to_string();
            let output = if output.is_empty() {
                format!("probe exit code {}", last.exit_code.unwrap_or(-1))
            } else {
                output
            };
            HealthStep::Done(HealthOutcome::Unhealthy(output))
        }
        Some(HealthStatusEnum::STARTING) => HealthStep::Waiting("starting".to_string()),
        // No health check: running is all we can know.
        _ => HealthStep::Done(HealthOutcome::Healthy),
    }
}

/// True when the engine's error says the requested subnet overlaps an existing network.
fn is_overlap(error: &bollard::errors::Error) -> bool {
    engine_message(error).is_some_and(|m| m.to_ascii_lowercase().contains("overlap"))
}

/// The message of an engine error answer.
fn engine_message(error: &bollard::errors::Error) -> Option<&str> {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    }
}

/// A sortable form of the engine's RFC 3339 creation time: Go drops trailing zeros of the
/// fraction, so "…:51.1875Z" would sort after "…:51.18751238Z" as plain text.
fn created_key(created: &str) -> String {
    // The zone starts at the first 'Z', '+' or '-' after the 'T'.
    let time_start = created.find('T').map_or(0, |t| t + 1);
    let zone_start = created[time_start..]
        .find(['Z', '+', '-'])
        .map_or(created.len(), |z| time_start + z);
    let (main, zone) = created.split_at(zone_start);
    let (seconds, fraction) = main.split_once('.').unwrap_or((main, ""));
    format!("{seconds}.{fraction:0<9}{zone}")
}

/// `len-mtime.nsec-inode` of the running binary; None when it cannot be read (replaced on disk).
fn exe_fingerprint() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().ok()?;
    let meta = std::fs::metadata(exe).ok()?;
    Some(format!(
        "{}-{}.{:09}-{}",
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino()
    ))
}

impl Runtime {
    /// The inputs of [`container_body`] for this engine.
    pub fn body_options(&self) -> BodyOptions {
        let version = self.docker().client_version();
        BodyOptions {
            namespace: self.namespace().to_string(),
            site_image: builtin_site_image(),
            start_interval: (version.major_version, version.minor_version) >= (1, 44),
        }
    }

    /// Refuse an object that exists without this namespace's managed labels.
    fn check_ours(
        &self,
        kind: &'static str,
        name: &str,
        labels: Option<&HashMap<String, String>>,
    ) -> Result<(), RuntimeError> {
        if labels.is_some_and(|l| is_managed_by(l, self.namespace())) {
            Ok(())
        } else {
            Err(RuntimeError::NotManaged {
                kind,
                name: name.to_string(),
                namespace: self.namespace().to_string(),
            })
        }
    }

    // ---------------------------------------------------------------- networks

    /// Every IPv4 subnet of every network on the engine, ours or not, so a new one overlaps none.
    pub async fn existing_subnets(&self) -> Result<BTreeSet<Ipv4Net>, RuntimeError> {
        let networks = self
            .docker()
            .list_networks(None)
            .await
            .map_err(|e| RuntimeError::api("list networks", e))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam.and_then(|ipam| ipam.config))
            .flatten()
            .filter_map(|config| config.subnet?.parse::<Ipv4Net>().ok())
            .map(|net| net.trunc())
            .collect())
    }

    /// Every network called exactly `name` (listed, not inspected: duplicates make the
    /// engine's inspect-by-name fail), oldest first.
    async fn networks_named(&self, name: &str) -> Result<Vec<Network>, RuntimeError> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut networks: Vec<Network> = self
            .docker()
            .list_networks(Some(options))
            .await
            .map_err(|e| RuntimeError::api(format!("list networks named {name}"), e))?
            .into_iter()
            // The engine's name filter matches substrings.
            .filter(|n| n.name.as_deref() == Some(name))
            .collect();
        networks.sort_by_cached_key(|n| {
            (
                n.created.as_deref().map(created_key).unwrap_or_default(),
                n.id.clone().unwrap_or_default(),
            )
        });
        Ok(networks)
    }

    /// The one network called `name`: the oldest. Younger duplicates of ours (left by a
    /// concurrent create) are removed, so every caller converges on the same network.
    async fn settle_network(&self, name: &str) -> Result<Option<Network>, RuntimeError> {
        let mut networks = self.networks_named(name).await?.into_iter();
        let Some(oldest) = networks.next() else {
            return Ok(None);
        };
        for duplicate in networks {
            let ours = duplicate
                .labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, self.namespace()));
            if let (true, Some(id)) = (ours, duplicate.id.as_deref()) {
                match self.docker().remove_network(id).await {
                    Ok(()) => tracing::info!(network = name, id, "removed a duplicate network"),
                    Err(error) => {
                        tracing::warn!(network = name, id, %error, "could not remove a duplicate network")
                    }
                }
            }
        }
        Ok(Some(oldest))
    }

    fn ensured(
        &self,
        name: &str,
        network: Network,
        created: bool,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        self.check_ours("network", name, network.labels.as_ref())?;
        let subnet = network
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| c.subnet?.parse::<Ipv4Net>().ok());
        Ok(EnsuredNetwork {
            id: network.id.unwrap_or_default(),
            subnet,
            created,
        })
    }

    /// Create the bridge network `name` with exactly `subnet`, attachable, with `labels` (the
    /// managed labels of this namespace are always set). If ours already exists it is returned
    /// as it is; a foreign one of that name is [`RuntimeError::NotManaged`]; a subnet the
    /// engine finds overlapping is [`RuntimeError::SubnetOverlap`] (pick another and retry).
    pub async fn create_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        if let Some(existing) = self.settle_network(name).await? {
            return self.ensured(name, existing, false);
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            // Swarm: an overlay the tenant's tasks join on every node (attachable for debugging).
            driver: Some(match self.kind() {
                RuntimeKind::Docker => "bridge".to_string(),
                RuntimeKind::Swarm => "overlay".to_string(),
            }),
            attachable: Some(true),
            labels: Some(owned_labels(labels, self.namespace())),
            ipam: Some(Ipam {
                driver: Some("default".to_string()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.trunc().to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created_id = match self.docker().create_network(request).await {
            Ok(response) => Some(response.id),
            Err(error) if is_overlap(&error) => {
                return Err(RuntimeError::SubnetOverlap {
                    network: name.to_string(),
                    subnet: subnet.to_string(),
                    message: engine_message(&error).unwrap_or_default().to_string(),
                });
            }
            // API 1.44+ refuses duplicate names itself: somebody made it since we looked.
            Err(error) if status_code(&error) == Some(409) => None,
            Err(error) => return Err(RuntimeError::api(format!("create network {name}"), error)),
        };
        // Before API 1.44 a second network of the same name is created with only a warning
        // (bollard cannot send CheckDuplicate): settle on the oldest, as every racer will.
        let winner = self
            .settle_network(name)
            .await?
            .ok_or_else(|| RuntimeError::NotFound {
                kind: "network",
                name: name.to_string(),
            })?;
        let created = created_id.is_some() && winner.id == created_id;
        self.ensured(name, winner, created)
    }

    /// Remove our network `name` (every copy, should there be duplicates); true when removed,
    /// false when absent. Fails while containers are attached (remove them first).
    pub async fn remove_network(&self, name: &str) -> Result<bool, RuntimeError> {
        let networks = self.networks_named(name).await?;
        if networks.is_empty() {
            return Ok(false);
        }
        let (ours, foreign): (Vec<Network>, Vec<Network>) = networks.into_iter().partition(|n| {
            n.labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, self.namespace()))
        });
        if ours.is_empty() {
            return self
                .check_ours("network", name, foreign[0].labels.as_ref())
                .map(|()| false);
        }
        for network in ours {
            let id = network.id.unwrap_or_else(|| name.to_string());
            // An overlay's endpoints are released a little after its service's tasks stop.
            let patience = match self.kind() {
                RuntimeKind::Docker => Duration::ZERO,
                RuntimeKind::Swarm => Duration::from_secs(20),
            };
            let started = Instant::now();
            loop {
                match self.docker().remove_network(&id).await {
                    Ok(()) => break,
                    Err(error) if super::is_not_found(&error) => break,
                    Err(error)
                        if started.elapsed() < patience
                            && engine_message(&error)
                                .is_some_and(|m| m.contains("active endpoints")) =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(error) => {
                        return Err(RuntimeError::api(format!("remove network {name}"), error));
                    }
                }
            }
        }
        Ok(true)
    }

    // ---------------------------------------------------------------- volumes

    async fn inspect_volume_named(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::Volume>, RuntimeError> {
        match self.docker().inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume)),
            Err(error) if super::is_not_found(&error) => Ok(None),
            Err(error) => Err(RuntimeError::api(format!("inspect volume {name}"), error)),
        }
    }

    /// Create our volume `name` with `labels` (managed labels always set); true when created,
    /// false when ours already existed. A foreign volume of that name is refused.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        if let Some(existing) = self.inspect_volume_named(name).await? {
            self.check_ours("volume", name, Some(&existing.labels))?;
            return Ok(false);
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".to_string()),
            labels: Some(owned_labels(labels, self.namespace())),
            ..Default::default()
        };
        let volume = self
            .docker()
            .create_volume(request)
            .await
            .map_err(|e| RuntimeError::api(format!("create volume {name}"), e))?;
        // The engine returns an existing volume of that name unchanged: someone raced us.
        self.check_ours("volume", name, Some(&volume.labels))?;
        Ok(true)
    }

    /// DELETES A TENANT'S DATA: remove our volume `name`. Only for an explicit purge; nothing
    /// in apply or prune calls it. True when removed, false when absent; fails while in use.
    pub async fn purge_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        let Some(volume) = self.inspect_volume_named(name).await? else {
            return Ok(false);
        };
        self.check_ours("volume", name, Some(&volume.labels))?;
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        match self.docker().remove_volume(name, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if super::is_not_found(&error) => Ok(false),
            Err(error) => Err(RuntimeError::api(format!("purge volume {name}"), error)),
        }
    }

    // ---------------------------------------------------------------- containers

    /// Inspect a container by id or name; None when it does not exist.
    async fn inspect_container_opt(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
        match self.docker().inspect_container(id, None).await {
            Ok(response) => Ok(Some(response)),
            Err(error) if super::is_not_found(&error) => Ok(None),
            Err(error) => Err(RuntimeError::api(format!("inspect container {id}"), error)),
        }
    }

    /// Inspect one of our containers; NotFound or NotManaged otherwise.
    async fn inspect_ours(&self, id: &str) -> Result<ContainerInspectResponse, RuntimeError> {
        let response =
            self.inspect_container_opt(id)
                .await?
                .ok_or_else(|| RuntimeError::NotFound {
                    kind: "container",
                    name: id.to_string(),
                })?;
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id, labels)?;
        Ok(response)
    }

    /// Create (not start) container `name` from `spec` (see [`container_body`]) with `labels`
    /// and `extra_env` merged over the spec's env. Returns its id. A taken name is
    /// [`RuntimeError::NameConflict`]; a missing image, network or volume is NotFound (the
    /// volume is checked first: the engine would silently create an unlabeled one).
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
        extra_env: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<String, RuntimeError> {
        match self.inspect_volume_named(&spec.volume).await? {
            Some(volume) => self.check_ours("volume", &spec.volume, Some(&volume.labels))?,
            None => {
                return Err(RuntimeError::NotFound {
                    kind: "volume",
                    name: spec.volume.clone(),
                });
            }
        }
        let body = container_body(spec, labels, extra_env, &self.body_options());
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match self.docker().create_container(Some(options), body).await {
            Ok(response) => Ok(response.id),
            Err(error) if status_code(&error) == Some(409) => Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: engine_message(&error).unwrap_or_default().to_string(),
            }),
            Err(error) if super::is_not_found(&error) => {
                let message = engine_message(&error)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let (kind, missing) = if message.contains("image") {
                    ("image", spec.image.clone())
                } else if message.contains("network") {
                    ("network", spec.network.clone())
                } else {
                    return Err(RuntimeError::api(format!("create container {name}"), error));
                };
                Err(RuntimeError::NotFound {
                    kind,
                    name: missing,
                })
            }
            Err(error) => Err(RuntimeError::api(format!("create container {name}"), error)),
        }
    }

    /// Start our container; nothing to do when it already runs (a paused one is unpaused).
    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let state = response.state.unwrap_or_default();
        if state.paused == Some(true) {
            return self
                .docker()
                .unpause_container(id)
                .await
                .map_err(|e| RuntimeError::api(format!("unpause container {id}"), e));
        }
        if state.running == Some(true) {
            return Ok(());
        }
        // 304 (already started by a concurrent call) is success in bollard.
        self.docker()
            .start_container(id, None)
            .await
            .map_err(|e| RuntimeError::api(format!("start container {id}"), e))
    }

    /// Stop our container, killing it after `timeout`; fine when it is stopped or absent.
    /// Stopping also ends a restart loop (the policy is `unless-stopped`).
    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let Some(response) = self.inspect_container_opt(id).await? else {
            return Ok(());
        };
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id, labels)?;
        let state = response.state.unwrap_or_default();
        let live = state.running == Some(true) || state.restarting == Some(true);
        if !live {
            return Ok(());
        }
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        match self.docker().stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if super::is_not_found(&error) => Ok(()),
            Err(error) => Err(RuntimeError::api(format!("stop container {id}"), error)),
        }
    }

    /// Restart our running container: stop it (killed after `timeout`) and start it again, in
    /// place (same id, same spec). Not a desired-state change: nothing in git or the database
    /// moves. A stopped container is refused, so a suspended tenant is never started this way.
    pub async fn restart_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let state = response.state.unwrap_or_default();
        if state.running != Some(true) {
            let status = state.status.map(|s| s.to_string()).unwrap_or_default();
            return Err(RuntimeError::NotRunning {
                name: response
                    .name
                    .unwrap_or_else(|| id.to_string())
                    .trim_start_matches('/')
                    .to_string(),
                state: status,
            });
        }
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = RestartContainerOptionsBuilder::default().t(seconds).build();
        self.docker()
            .restart_container(id, Some(options))
            .await
            .map_err(|e| RuntimeError::api(format!("restart container {id}"), e))
    }

    /// Remove our container (by id or name); `force` kills a running one first. True when
    /// removed, false when it was not there. Its data volume is never removed with it.
    pub async fn remove_container(
        &self,
        id_or_name: &str,
        force: bool,
    ) -> Result<bool, RuntimeError> {
        let Some(response) = self.inspect_container_opt(id_or_name).await? else {
            return Ok(false);
        };
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id_or_name, labels)?;
        let id = response.id.unwrap_or_else(|| id_or_name.to_string());
        // v=false: anonymous volumes stay too; named ones never go with a container anyway.
        let options = RemoveContainerOptionsBuilder::default()
            .force(force)
            .v(false)
            .build();
        match self.docker().remove_container(&id, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if super::is_not_found(&error) => Ok(false),
            Err(error) => Err(RuntimeError::api(
                format!("remove container {id_or_name}"),
                error,
            )),
        }
    }

    /// Rename our container; nothing to do when it already has that name. A taken name is
    /// [`RuntimeError::NameConflict`].
    pub async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let current = response.name.unwrap_or_default();
        if current.trim_start_matches('/') == new_name {
            return Ok(());
        }
        let options = RenameContainerOptionsBuilder::default()
            .name(new_name)
            .build();
        match self.docker().rename_container(id, options).await {
            Ok(()) => Ok(()),
            Err(error) if status_code(&error) == Some(409) => Err(RuntimeError::NameConflict {
                kind: "container",
                name: new_name.to_string(),
                message: engine_message(&error).unwrap_or_default().to_string(),
            }),
            Err(error) => Err(RuntimeError::api(
                format!("rename container {id} to {new_name}"),
                error,
            )),
        }
    }

    /// `docker update`: new CPU, memory (swap kept equal) and pids limits, without a restart.
    pub async fn update_limits(
        &self,
        id: &str,
        nano_cpus: i64,
        memory_bytes: u64,
        pids: u32,
    ) -> Result<(), RuntimeError> {
        self.inspect_ours(id).await?;
        let memory = i64::try_from(memory_bytes).unwrap_or(i64::MAX);
        let body = ContainerUpdateBody {
            nano_cpus: Some(nano_cpus),
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(i64::from(pids)),
            ..Default::default()
        };
        self.docker()
            .update_container(id, body)
            .await
            .map_err(|e| RuntimeError::api(format!("update limits of container {id}"), e))
    }

    /// Poll our started container until its health check passes, it is declared unhealthy,
    /// it exits (or crashes into a restart), or `timeout` passes.
    pub async fn wait_healthy(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<HealthOutcome, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let mut first_restart_count = None;
        loop {
            let response = self.inspect_ours(id).await?;
            let restarts = response.restart_count.unwrap_or(0);
            let initial = *first_restart_count.get_or_insert(restarts);
            match health_step(&response, restarts > initial) {
                HealthStep::Done(outcome) => return Ok(outcome),
                HealthStep::Exited { code, oom_killed } => {
                    let logs = self.container_logs_tail(id, EXIT_LOG_LINES).await?;
                    return Ok(HealthOutcome::Exited {
                        code,
                        oom_killed,
                        logs,
                    });
                }
                HealthStep::Waiting(status) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(HealthOutcome::TimedOut(status));
                    }
                    tokio::time::sleep(HEALTH_POLL.min(deadline - now)).await;
                }
            }
        }
    }

    /// The host address and port where our container's `container_port/tcp` is published
    /// while it runs; None when it is not (yet) published.
    pub async fn published_port(
        &self,
        id: &str,
        container_port: u16,
    ) -> Result<Option<(String, u16)>, RuntimeError> {
        let response = self.inspect_ours(id).await?;
        Ok(from_inspect(response).and_then(|c| {
            c.published_ports
                .into_iter()
                .find(|p| p.container_port == container_port)
                .map(|p| (p.host_ip, p.host_port))
        }))
    }

    /// The last `n` lines our container wrote (stdout and stderr interleaved as written).
    pub async fn container_logs_tail(
        &self,
        id: &str,
        n: usize,
    ) -> Result<Vec<String>, RuntimeError> {
        self.inspect_ours(id).await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let mut stream = self.docker().logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => text.push_str(&String::from_utf8_lossy(&output.into_bytes())),
                Err(error) => {
                    return Err(RuntimeError::api(format!("logs of container {id}"), error));
                }
            }
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(n);
        Ok(lines.into_iter().skip(skip).collect())
    }

    // ---------------------------------------------------------------- images

    /// Make sure `reference` is on this host: nothing when present, else pull it, telling
    /// `progress` each status line. Without a registry the error says to build or load it.
    pub async fn ensure_image(
        &self,
        reference: &str,
        mut progress: impl FnMut(&str),
    ) -> Result<(), RuntimeError> {
        if super::image_exists(self.docker(), reference).await? {
            return Ok(());
        }
        let unavailable = |reason: String| RuntimeError::ImageUnavailable {
            reference: reference.to_string(),
            reason,
        };
        let (from_image, tag) = pull_reference(reference);
        let mut options = CreateImageOptionsBuilder::default().from_image(&from_image);
        if let Some(tag) = &tag {
            options = options.tag(tag);
        }
        let mut stream = self
            .docker()
            .create_image(Some(options.build()), None, None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(message) =
                        info.error_detail.as_ref().and_then(|d| d.message.clone())
                    {
                        return Err(unavailable(message));
                    }
                    if let Some(line) = progress_line(&info) {
                        progress(&line);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(unavailable(error));
                }
                Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                    return Err(unavailable(message));
                }
                Err(error) => return Err(unavailable(describe(&error))),
            }
        }
        if super::image_exists(self.docker(), reference).await? {
            Ok(())
        } else {
            Err(unavailable(
                "the pull finished but the image is not there".to_string(),
            ))
        }
    }

    /// Build image `tag` (the built-in site image; the tag comes from the planner) from the
    /// running binary unless it was already built from this very binary. Returns the image id.
    /// Cheap when present: one stat and one inspect, no hashing of the binary.
    pub async fn ensure_site_image(&self, tag: &str) -> Result<String, RuntimeError> {
        let fingerprint = exe_fingerprint();
        if let Some(fingerprint) = &fingerprint {
            match self.docker().inspect_image(tag).await {
                Ok(image) => {
                    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
                    if labels.get(LABEL_EXE_FINGERPRINT) == Some(fingerprint) {
                        return Ok(image.id.unwrap_or_default());
                    }
                }
                Err(error) if super::is_not_found(&error) => {}
                Err(error) => return Err(RuntimeError::api(format!("inspect image {tag}"), error)),
            }
        }
        // Without a fingerprint the build's own content hash still avoids needless rebuilds.
        let labels: BTreeMap<String, String> = fingerprint
            .map(|f| (LABEL_EXE_FINGERPRINT.to_string(), f))
            .into_iter()
            .collect();
        build_self_image(self.docker(), tag, &labels).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerState, ContainerStateStatusEnum, Health, HealthcheckResult, ProgressDetail,
    };

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            name: "ns-acme".into(),
            image: image.into(),
            env: BTreeMap::from([
                ("PORT".to_string(), "8080".to_string()),
                ("TENANT_SLUG".to_string(), "acme".to_string()),
            ]),
            nano_cpus: 500_000_000,
            memory_bytes: 256 << 20,
            pids: 128,
            port: 8080,
            publish_address: "127.0.0.1".into(),
            health_cmd: vec![
                "CMD".into(),
                "/tenantctl".into(),
                "site-health".into(),
                "http://127.0.0.1:8080/health".into(),
            ],
            health_interval_seconds: 10,
            cap_add: vec!["NET_BIND_SERVICE".into()],
            network: "ns-acme".into(),
            volume: "ns-acme-data".into(),
        }
    }

    fn options(start_interval: bool) -> BodyOptions {
        BodyOptions {
            namespace: "ns".into(),
            site_image: "tenantctl-site:9.9.9".into(),
            start_interval,
        }
    }

    fn body_json(spec: &ContainerSpec, start_interval: bool) -> serde_json::Value {
        let labels = BTreeMap::from([
            ("tenantctl.tenant".to_string(), "acme".to_string()),
            // A wrong namespace from the caller is overridden, never trusted.
            (LABEL_NAMESPACE.to_string(), "other".to_string()),
        ]);
        let extra = BTreeMap::from([
            ("TENANT_API_KEY_SHA256".to_string(), "abc".to_string()),
            ("PORT".to_string(), "9090".to_string()),
        ]);
        let body = container_body(spec, &labels, &extra, &options(start_interval));
        serde_json::to_value(body).unwrap()
    }

    #[test]
    fn body_carries_the_security_defaults() {
        let json = body_json(&spec("registry.example/shop:4"), false);
        let host = &json["HostConfig"];
        assert_eq!(
            host["SecurityOpt"],
            serde_json::json!(["no-new-privileges:true"])
        );
        assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
        assert_eq!(host["CapAdd"], serde_json::json!(["NET_BIND_SERVICE"]));
        assert_eq!(host["RestartPolicy"]["Name"], "unless-stopped");
        assert_eq!(host["LogConfig"]["Type"], "json-file");
        assert_eq!(host["LogConfig"]["Config"]["max-size"], "10m");
        assert_eq!(host["LogConfig"]["Config"]["max-file"], "3");
    }

    #[test]
    fn body_carries_limits_with_swap_equal_to_memory() {
        let json = body_json(&spec("x:1"), false);
        let host = &json["HostConfig"];
        assert_eq!(host["NanoCpus"], 500_000_000);
        assert_eq!(host["Memory"], 256 << 20);
        assert_eq!(host["MemorySwap"], 256 << 20);
        assert_eq!(host["PidsLimit"], 128);
    }

    #[test]
    fn body_publishes_on_loopback_with_an_engine_chosen_port() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(json["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
        assert_eq!(
            json["HostConfig"]["PortBindings"],
            serde_json::json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]})
        );
    }

    #[test]
    fn body_mounts_the_volume_and_joins_the_network() {
        let json = body_json(&spec("x:1"), false);
        let host = &json["HostConfig"];
        assert_eq!(
            host["Mounts"],
            serde_json::json!([{
                "Target": "/data", "Source": "ns-acme-data", "Type": "volume", "ReadOnly": false
            }])
        );
        assert_eq!(host["NetworkMode"], "ns-acme");
    }

    #[test]
    fn body_health_check_is_in_nanoseconds() {
        let json = body_json(&spec("x:1"), false);
        let health = &json["Healthcheck"];
        assert_eq!(
            health["Test"],
            serde_json::json!([
                "CMD",
                "/tenantctl",
                "site-health",
                "http://127.0.0.1:8080/health"
            ])
        );
        assert_eq!(health["Interval"], 10_000_000_000i64);
        assert_eq!(health["Timeout"], 3_000_000_000i64);
        assert_eq!(health["Retries"], 3);
        assert_eq!(health["StartPeriod"], 5_000_000_000i64);
        // API 1.41 has no StartInterval: it is not sent.
        assert!(health.get("StartInterval").is_none(), "{health}");
        let newer = body_json(&spec("x:1"), true);
        assert_eq!(newer["Healthcheck"]["StartInterval"], 1_000_000_000i64);

        let mut no_check = spec("x:1");
        no_check.health_cmd.clear();
        assert!(body_json(&no_check, false).get("Healthcheck").is_none());
    }

    #[test]
    fn body_env_merges_extra_env_over_the_spec() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(
            json["Env"],
            serde_json::json!(["PORT=9090", "TENANT_API_KEY_SHA256=abc", "TENANT_SLUG=acme"])
        );
    }

    #[test]
    fn body_labels_always_carry_this_namespace() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(json["Labels"][LABEL_MANAGED], "true");
        assert_eq!(json["Labels"][LABEL_NAMESPACE], "ns");
        assert_eq!(json["Labels"]["tenantctl.tenant"], "acme");
    }

    #[test]
    fn only_the_builtin_site_image_gets_a_cmd() {
        let builtin = body_json(&spec("tenantctl-site:9.9.9"), false);
        assert_eq!(builtin["Cmd"], serde_json::json!(["site"]));
        assert_eq!(builtin["Image"], "tenantctl-site:9.9.9");
        let custom = body_json(&spec("registry.example/shop:4"), false);
        assert!(custom.get("Cmd").is_none(), "{custom}");
        // The entrypoint always comes from the image.
        assert!(builtin.get("Entrypoint").is_none());
        assert!(custom.get("Entrypoint").is_none());
    }

    #[test]
    fn pull_reference_never_pulls_all_tags() {
        let split = |r: &str| pull_reference(r);
        assert_eq!(split("alpine"), ("alpine".into(), Some("latest".into())));
        assert_eq!(split("alpine:3.20"), ("alpine".into(), Some("3.20".into())));
        assert_eq!(
            split("localhost:5000/shop"),
            ("localhost:5000/shop".into(), Some("latest".into()))
        );
        assert_eq!(
            split("localhost:5000/team/shop:4.2"),
            ("localhost:5000/team/shop".into(), Some("4.2".into()))
        );
        let digest = "shop@sha256:0123456789abcdef";
        assert_eq!(split(digest), (digest.into(), None));
    }

    #[test]
    fn progress_lines_are_readable() {
        let info = CreateImageInfo {
            id: Some("a1b2c3".into()),
            status: Some("Downloading".into()),
            progress_detail: Some(ProgressDetail {
                current: Some(1024),
                total: Some(4096),
            }),
            ..Default::default()
        };
        assert_eq!(
            progress_line(&info).as_deref(),
            Some("a1b2c3: Downloading 1024/4096")
        );
        let plain = CreateImageInfo {
            status: Some("Pulling from library/alpine".into()),
            ..Default::default()
        };
        assert_eq!(
            progress_line(&plain).as_deref(),
            Some("Pulling from library/alpine")
        );
        assert_eq!(progress_line(&CreateImageInfo::default()), None);
    }

    fn inspect(
        status: ContainerStateStatusEnum,
        health: Option<HealthStatusEnum>,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(ContainerState {
                status: Some(status),
                exit_code: Some(3),
                oom_killed: Some(false),
                health: health.map(|status| Health {
                    status: Some(status),
                    failing_streak: Some(3),
                    log: Some(vec![
                        HealthcheckResult {
                            exit_code: Some(1),
                            output: Some("first\n".into()),
                            ..Default::default()
                        },
                        HealthcheckResult {
                            exit_code: Some(1),
                            output: Some("connection refused\n".into()),
                            ..Default::default()
                        },
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn health_steps_follow_the_engine() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::HEALTHY)), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::UNHEALTHY)), false),
            HealthStep::Done(HealthOutcome::Unhealthy("connection refused".into()))
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::STARTING)), false),
            HealthStep::Waiting("starting".into())
        );
        // No health check at all: running is healthy.
        assert_eq!(
            health_step(&inspect(S::RUNNING, None), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::NONE)), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        for status in [S::EXITED, S::DEAD, S::RESTARTING] {
            assert_eq!(
                health_step(&inspect(status, Some(H::STARTING)), false),
                HealthStep::Exited {
                    code: Some(3),
                    oom_killed: false
                }
            );
        }
        // Crashed and already running again: the exit code is gone.
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::STARTING)), true),
            HealthStep::Exited {
                code: None,
                oom_killed: false
            }
        );
        assert_eq!(
            health_step(&inspect(S::CREATED, None), false),
            HealthStep::Waiting("created".into())
        );
    }

    #[test]
    fn overlap_errors_are_recognised() {
        let overlap = bollard::errors::Error::DockerResponseServerError {
            status_code: 403,
            message: "Pool overlaps with other one on this address space".into(),
        };
        assert!(is_overlap(&overlap));
        let other = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "something else".into(),
        };
        assert!(!is_overlap(&other));
    }

    #[test]
    fn creation_times_sort_by_instant_not_text() {
        let early = created_key("2026-11-26T23:20:51.1875Z");
        let late = created_key("2026-11-26T23:20:51.18751238Z");
        assert!(early < late, "{early} {late}");
        assert!(created_key("2026-11-26T23:20:51Z") < early);
        assert_eq!(
            created_key("2026-11-26T23:20:51.5+01:00"),
            "2026-11-26T23:20:51.500000000+01:00"
        );
    }

    #[test]
    fn the_exe_fingerprint_is_stable() {
        let a = exe_fingerprint();
        assert!(a.is_some());
        assert_eq!(a, exe_fingerprint());
    }
}
