//! The engine client both backends share: connecting (API negotiation, ping), the labels and
//! shape every tenant object gets, and the networks, volumes, images, stats and log streams that
//! containers and swarm services need alike. Only the backends call it.

mod df;
mod events;
pub mod image;
mod logs;
mod network;
mod observe;
mod self_files;
mod site;
mod stats;
mod stats_pass;
mod volume;
mod volume_size;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bollard::models::HealthConfig;
use bollard::{API_DEFAULT_VERSION, Docker};

use super::RuntimeError;
use super::cgroup::CgroupReader;
use super::error::describe;
use super::types::{
    ContainerSpec, LABEL_MANAGED, LABEL_NAMESPACE, builtin_site_image, is_managed_by,
};

pub use image::{
    LABEL_CONTEXT_HASH, LABEL_EXE_FINGERPRINT, SELF_PATH_IN_IMAGE, build_scratch_image,
    build_self_image, image_exists, progress_line, pull_reference,
};
pub(crate) use logs::{LogOrigin, log_stream};
pub(crate) use network::engine_message;
pub use self_files::self_image_files;
pub(crate) use site::loopback_counters;
pub use stats::{STATS_CONCURRENCY, STATS_TIMEOUT, cpu_percent, parse_stats};
pub use stats_pass::{CPU_WINDOW, StatsTarget};

/// The default engine address on Unix.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long connecting (version negotiation and ping) may take before we give up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout for the response head of later requests (streams are not cut by it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a tenant's data volume is mounted.
pub const DATA_MOUNT_PATH: &str = "/data";
/// The built-in site image's entrypoint is `/tenantctl`; this command runs the site server.
pub const SITE_CMD: &str = "site";
/// Per-file cap of the json-file log driver, so a chatty tenant cannot fill the disk.
pub const LOG_MAX_SIZE: &str = "10m";
/// Rotated log files kept per container (at most 30 MB per tenant).
pub const LOG_MAX_FILES: &str = "3";

/// The json-file log driver's options every container and service of ours gets: at most
/// [`LOG_MAX_FILES`] files of [`LOG_MAX_SIZE`].
pub fn log_limits() -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
        ("max-file".to_string(), LOG_MAX_FILES.to_string()),
    ])
}
/// A probe that has not answered in this time counts as failed.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive failed probes before the engine calls a container unhealthy.
pub const HEALTH_RETRIES: i64 = 3;
/// Failures in the first seconds after start do not count: the server is still starting.
pub const HEALTH_START_PERIOD: Duration = Duration::from_secs(5);
/// Probe interval during the start period (honoured from API 1.44; older engines ignore it).
pub const HEALTH_START_INTERVAL: Duration = Duration::from_secs(1);

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

/// A connection to the Docker engine, scoped to one namespace.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    namespace: String,
    /// The engine's unix socket, when it is reached through one (the disk-usage request).
    socket: Option<std::path::PathBuf>,
    /// This host's cgroup reader, found on first use (shared by the clones of this engine).
    cgroups: Arc<OnceLock<Result<Arc<CgroupReader>, String>>>,
}

impl Engine {
    /// Connect to `host` (`unix:///path` or `tcp://host:port`); `target` names it in errors.
    pub async fn connect(
        host: &str,
        target: &str,
        namespace: &str,
    ) -> Result<Engine, RuntimeError> {
        connect_to(host, target, namespace).await
    }

    /// Connect using DOCKER_HOST or the local socket.
    pub async fn connect_default(namespace: &str) -> Result<Engine, RuntimeError> {
        // An empty DOCKER_HOST means "unset" to the docker CLI too.
        match std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
        {
            Some(host) => connect_to(&host, &format!("DOCKER_HOST={host}"), namespace).await,
            None => {
                let target = format!("{DEFAULT_DOCKER_HOST} (the default; DOCKER_HOST is not set)");
                connect_to(DEFAULT_DOCKER_HOST, &target, namespace).await
            }
        }
    }

    /// Wrap an already connected client (its API version should be negotiated).
    pub fn from_docker(docker: Docker, namespace: &str) -> Result<Engine, RuntimeError> {
        validate_namespace(namespace)?;
        Ok(Engine {
            docker,
            namespace: namespace.to_string(),
            socket: None,
            cgroups: Arc::default(),
        })
    }

    /// Volume name → bytes used, for this namespace's volumes: read from their directories on
    /// this host where the engine keeps them (`volume_size`), and from the engine's disk-usage
    /// API (slow: it walks every volume of the host) for any that cannot be read here. Empty
    /// when the engine is not reached through a unix socket.
    pub async fn volume_sizes(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, RuntimeError> {
        let Some(socket) = &self.socket else {
            return Ok(std::collections::BTreeMap::new());
        };
        let filters = observe::tenant_filters(self.namespace(), None);
        let ours = observe::managed_volumes(&self.docker, self.namespace(), &filters).await?;
        let local: Vec<(String, std::path::PathBuf)> = ours
            .iter()
            .filter(|v| v.driver == "local" && !v.mountpoint.is_empty())
            .map(|v| (v.name.clone(), std::path::PathBuf::from(&v.mountpoint)))
            .collect();
        let (mut sized, unread) = tokio::task::spawn_blocking(move || volume_size::sizes(&local))
            .await
            .map_err(|e| RuntimeError::DiskUsage {
                reason: format!("the volume reader failed: {e}"),
            })?;
        if sized.len() == ours.len() {
            return Ok(sized);
        }
        for (name, why) in &unread {
            tracing::debug!("volume {name} is sized by the engine: {why}");
        }
        let engine = df::volume_sizes(socket).await?;
        for v in &ours {
            if !sized.contains_key(&v.name)
                && let Some(bytes) = engine.get(&v.name)
            {
                sized.insert(v.name.clone(), *bytes);
            }
        }
        Ok(sized)
    }

    /// This namespace's volumes sized by the engine's disk-usage API alone (what
    /// [`Engine::volume_sizes`] falls back to; tests compare the two).
    pub async fn volume_sizes_from_engine(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, RuntimeError> {
        match &self.socket {
            Some(socket) => df::volume_sizes(socket).await,
            None => Ok(std::collections::BTreeMap::new()),
        }
    }

    /// Extracts `tar` into the data directory (`/data`, the tenant's volume) of container `id`,
    /// running or not. The engine allows it on a read-only root filesystem, since the target is
    /// a volume.
    pub async fn put_data_files(&self, id: &str, tar: &[u8]) -> Result<(), RuntimeError> {
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path(DATA_MOUNT_PATH)
            .build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.to_vec().into()))
            .await
            .map_err(|e| RuntimeError::api(format!("write into the data volume of {id}"), e))
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The namespace: name prefix and value of the `tenantctl.namespace` label.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The inputs of a create request for this engine.
    pub fn body_options(&self) -> BodyOptions {
        let version = self.docker().client_version();
        BodyOptions {
            namespace: self.namespace().to_string(),
            site_image: builtin_site_image(),
            start_interval: (version.major_version, version.minor_version) >= (1, 44),
        }
    }

    /// Refuse an object that exists without this namespace's managed labels.
    pub(crate) fn check_ours(
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
}

/// A namespace must be usable as the start of a Docker object name.
pub fn validate_namespace(namespace: &str) -> Result<(), RuntimeError> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let ok = !namespace.is_empty()
        && namespace.len() <= 63
        && namespace.starts_with(|c: char| c.is_ascii_alphanumeric())
        && namespace.chars().all(valid_char);
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidNamespace {
            namespace: namespace.to_string(),
        })
    }
}

/// Make a client for `host` without talking to it yet.
fn client_for(host: &str, target: &str) -> Result<Docker, RuntimeError> {
    let timeout = CONNECT_TIMEOUT.as_secs();
    let unsupported = |reason: &str| RuntimeError::UnsupportedHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    let result = if host.starts_with("unix://") {
        Docker::connect_with_unix(host, timeout, API_DEFAULT_VERSION)
    } else if host.starts_with("tcp://") || host.starts_with("http://") {
        Docker::connect_with_http(host, timeout, API_DEFAULT_VERSION)
    } else if host.starts_with("https://") {
        return Err(unsupported("TLS is not built into tenantctl"));
    } else if host.starts_with("ssh://") {
        return Err(unsupported(
            "ssh is not built into tenantctl; forward the socket (ssh -L) and use unix:// or tcp://",
        ));
    } else if host.starts_with('/') {
        return Err(unsupported("a bare path needs the unix:// scheme"));
    } else {
        return Err(unsupported("unknown scheme"));
    };
    result.map_err(|error| match error {
        bollard::errors::Error::SocketNotFoundError(path) => RuntimeError::Unreachable {
            target: target.to_string(),
            reason: format!("no socket at {path}"),
        },
        other => RuntimeError::Unreachable {
            target: target.to_string(),
            reason: describe(&other),
        },
    })
}

async fn connect_to(host: &str, target: &str, namespace: &str) -> Result<Engine, RuntimeError> {
    validate_namespace(namespace)?;
    let docker = client_for(host, target)?;
    let unreachable = |reason: String| RuntimeError::Unreachable {
        target: target.to_string(),
        reason,
    };
    // bollard's own timeout covers only the response head; this bounds the whole handshake.
    let handshake = async {
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        Ok::<Docker, bollard::errors::Error>(docker)
    };
    let docker = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
        Ok(Ok(docker)) => docker,
        Ok(Err(error)) => return Err(unreachable(connect_reason(&error))),
        Err(_) => {
            return Err(unreachable(format!(
                "no answer within {}s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
    };
    Ok(Engine {
        docker: docker.with_timeout(REQUEST_TIMEOUT),
        namespace: namespace.to_string(),
        socket: host.strip_prefix("unix://").map(std::path::PathBuf::from),
        cgroups: Arc::default(),
    })
}

/// The reason a handshake failed, with a hint for the common permission problem.
fn connect_reason(error: &bollard::errors::Error) -> String {
    let text = describe(error);
    if text.contains("Permission denied") {
        format!("{text} (is your user in the docker group?)")
    } else if matches!(error, bollard::errors::Error::RequestTimeoutError) {
        format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())
    } else {
        text
    }
}
