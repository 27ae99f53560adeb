//! Errors of the Docker side, worded so that an operator knows what to do next.

use std::path::PathBuf;

/// Hint appended to every "cannot reach the engine" message.
const REACH_HINT: &str = "Is the Docker engine running (`docker info`)? Start it, or set DOCKER_HOST \
     to its address (unix:///path/to/docker.sock or tcp://host:2375)";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The engine could not be reached or did not answer in time.
    #[error("cannot reach the Docker engine at {target}: {reason}. {REACH_HINT}")]
    Unreachable { target: String, reason: String },

    /// DOCKER_HOST (or the given host) uses a form this build cannot speak.
    #[error(
        "unsupported Docker host {host:?}: {reason}. Use unix:///path/to/docker.sock or tcp://host:port"
    )]
    UnsupportedHost { host: String, reason: String },

    /// The namespace cannot be used as a prefix of Docker object names.
    #[error(
        "invalid namespace {namespace:?}: use 1 to 63 characters from [a-zA-Z0-9_.-], starting with a letter or digit"
    )]
    InvalidNamespace { namespace: String },

    /// A request the engine answered with an error (or a transport failure after connecting).
    #[error("Docker engine: {action}: {}", describe(.error))]
    Api {
        action: String,
        error: bollard::errors::Error,
    },

    /// The image build endpoint reported a failure.
    #[error("Docker engine: reading the disk usage (/system/df): {reason}")]
    DiskUsage { reason: String },

    /// A container's counters could not be read from its cgroup files (`--stats-source cgroup`).
    #[error(
        "cannot read container {name}'s cgroup files: {reason} (--stats-source auto asks the engine instead)"
    )]
    CgroupFiles { name: String, reason: String },

    #[error("building image {tag} failed: {message}")]
    Build { tag: String, message: String },

    /// An invalid argument to the image builder (bad path inside the image, ...).
    #[error("cannot build image {tag}: {message}")]
    InvalidBuildInput { tag: String, message: String },

    /// Reading a host file (binary, shared object) failed.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The shared objects of the executable could not be determined.
    #[error("cannot find the shared libraries of {}: {message}", .exe.display())]
    SharedLibraries { exe: PathBuf, message: String },

    /// An operator-given subnet pool that cannot hand out tenant subnets.
    #[error("invalid subnet pool {pool:?}: {reason}")]
    InvalidSubnetPool { pool: String, reason: String },

    /// The engine refused a network because its subnet overlaps one that exists: pick another.
    #[error("subnet {subnet} for network {network} overlaps an existing network: {message}")]
    SubnetOverlap {
        network: String,
        subnet: String,
        message: String,
    },

    /// The engine answered 409: the name is taken by another object.
    #[error("{kind} name {name:?} is already in use: {message}")]
    NameConflict {
        kind: &'static str,
        name: String,
        message: String,
    },

    /// An object with that name exists but this namespace does not manage it: never touched.
    #[error(
        "{kind} {name:?} exists but is not managed by tenantctl namespace {namespace:?} (labels tenantctl.managed=true and tenantctl.namespace={namespace} are missing); remove or rename it, or use another namespace"
    )]
    NotManaged {
        kind: &'static str,
        name: String,
        namespace: String,
    },

    /// A restart asked of a container that is not running (a suspended tenant's, or a crashed one).
    #[error(
        "container {name} is {state}, not running: only a running container is restarted (a suspended tenant starts with `state: active` in git)"
    )]
    NotRunning { name: String, state: String },

    /// The object an operation needs does not exist.
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },

    /// An image that is neither local nor pullable (this machine has no registry).
    #[error(
        "image {reference} is not on this host and could not be pulled: {reason}; build or load it (docker load) first"
    )]
    ImageUnavailable { reference: String, reason: String },

    /// `--runtime swarm` on an engine that is not a swarm manager.
    #[error(
        "--runtime swarm needs a swarm manager, but this engine's swarm state is `{state}`{detail}; run `docker swarm init` (or point DOCKER_HOST at a manager), or use --runtime docker"
    )]
    NotSwarmManager { state: String, detail: String },

    /// A rolling update failed and the engine put the previous spec back.
    #[error("service {service}: the rolling update failed and was rolled back: {message}")]
    RolledBack { service: String, message: String },

    /// A service's tasks did not reach the wanted count.
    #[error("service {service}: {reason}")]
    ServiceNotReady { service: String, reason: String },

    /// A started container did not answer its health path (the reason says how it failed).
    #[error("{reason}")]
    NotAnswering { reason: String },

    /// A data volume written by an older tenantctl (its site ran as root) could not be handed
    /// to the unprivileged site user; the site is not started on it.
    #[error(
        "data volume {volume} could not be handed to the site user: {reason} (nothing was started on it; the tenant's previous container, if any, keeps running)"
    )]
    VolumeOwner { volume: String, reason: String },

    /// A blue/green replacement did not come up: it was removed and the previous container was
    /// never stopped. Says what went wrong with the replacement.
    #[error("{error}")]
    ReplacementFailed { error: Box<RuntimeError> },
}

impl RuntimeError {
    /// Wrap a bollard error with what we were doing.
    pub fn api(action: impl Into<String>, error: bollard::errors::Error) -> Self {
        RuntimeError::Api {
            action: action.into(),
            error,
        }
    }

    /// The underlying bollard error, when there is one.
    pub fn docker_error(&self) -> Option<&bollard::errors::Error> {
        match self {
            RuntimeError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// What became of the tenant when a change was undone, for the apply report: the previous
    /// workload keeps running. None for any other error.
    pub fn rollback_note(&self) -> Option<&'static str> {
        match self {
            RuntimeError::ReplacementFailed { .. } => {
                Some("new container did not come up; the previous one keeps running")
            }
            RuntimeError::RolledBack { .. } => Some(
                "the new tasks failed; swarm rolled the service back to its previous spec, which keeps running",
            ),
            _ => None,
        }
    }

    /// True when the object does not exist (our check or the engine's 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuntimeError::NotFound { .. })
            || self.docker_error().is_some_and(is_not_found)
    }

    /// True on a conflict (name in use, container running, ...): ours or the engine's 409.
    pub fn is_conflict(&self) -> bool {
        matches!(self, RuntimeError::NameConflict { .. })
            || self.docker_error().is_some_and(is_conflict)
    }
}

/// The HTTP status the engine answered with, if the error is an engine answer.
pub fn status_code(error: &bollard::errors::Error) -> Option<u16> {
    match error {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// True when a bollard error is the engine's 404.
pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    status_code(error) == Some(404)
}

/// True when a bollard error is the engine's 409.
pub fn is_conflict(error: &bollard::errors::Error) -> bool {
    status_code(error) == Some(409)
}

/// An error with its whole source chain on one line; hyper hides the OS error otherwise.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some layers repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
