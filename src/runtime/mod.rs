//! The Docker side of the reconciler: connect to the engine, observe what this namespace
//! manages, and build the local images tenants run (there is no registry).
//!
//! Everything here only ever sees objects carrying `tenantctl.managed=true` and this
//! reconciler's `tenantctl.namespace`, so several reconcilers can share one engine.

pub mod change;
mod error;
pub mod image;
mod logs;
mod observe;
pub mod pool;
pub mod stats;
pub mod swarm;
pub mod types;

#[cfg(test)]
mod change_tests;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

pub use change::{
    BodyOptions, DATA_MOUNT_PATH, LABEL_EXE_FINGERPRINT, container_body, pull_reference,
};
pub use error::{RuntimeError, is_conflict, is_not_found, status_code};
pub use image::{build_scratch_image, build_self_image, image_exists, self_image_files};
pub use pool::{DEFAULT_SUBNET_POOL, DEFAULT_SUBNET_PREFIX, SubnetPool};
pub use stats::{cpu_percent, parse_stats};
pub use types::*;

/// The default engine address on Unix.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How long connecting (version negotiation and ping) may take before we give up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout for the response head of later requests (streams are not cut by it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection to the Docker engine, scoped to one namespace.
#[derive(Debug, Clone)]
pub struct Runtime {
    docker: Docker,
    namespace: String,
    kind: RuntimeKind,
}

impl Runtime {
    /// Connect using DOCKER_HOST or the local socket, negotiate the API version and ping.
    /// Fails within about [`CONNECT_TIMEOUT`] with a message naming the address tried.
    pub async fn connect(namespace: &str) -> Result<Runtime, RuntimeError> {
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

    /// Connect to `host` (`unix:///path` or `tcp://host:port`), or to the default local
    /// socket when `None`, ignoring DOCKER_HOST.
    pub async fn connect_with(
        host: Option<&str>,
        namespace: &str,
    ) -> Result<Runtime, RuntimeError> {
        match host {
            Some(host) => connect_to(host, host, namespace).await,
            None => connect_to(DEFAULT_DOCKER_HOST, DEFAULT_DOCKER_HOST, namespace).await,
        }
    }

    /// Wrap an already connected client (its API version should be negotiated).
    pub fn from_docker(docker: Docker, namespace: &str) -> Result<Runtime, RuntimeError> {
        validate_namespace(namespace)?;
        Ok(Runtime {
            docker,
            namespace: namespace.to_string(),
            kind: RuntimeKind::Docker,
        })
    }

    /// Run tenants as `kind`. Swarm mode needs this engine to be a swarm manager: checked here,
    /// so a command fails at once with what to do rather than half-way through an apply.
    pub async fn with_kind(mut self, kind: RuntimeKind) -> Result<Runtime, RuntimeError> {
        if kind == RuntimeKind::Swarm {
            swarm::check_manager(&self.docker).await?;
        }
        self.kind = kind;
        Ok(self)
    }

    /// Containers (docker) or swarm services (swarm).
    pub fn kind(&self) -> RuntimeKind {
        self.kind
    }

    /// The bollard client, for the create/start/stop/remove calls of the reconciler.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The namespace: name prefix and value of the `tenantctl.namespace` label.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Labels every object of `tenant` in this namespace must carry.
    pub fn labels_for(&self, tenant: &str) -> std::collections::BTreeMap<String, String> {
        managed_labels(&self.namespace, tenant)
    }

    /// `<namespace>-<slug>`: the tenant's container name.
    pub fn container_name(&self, slug: &str) -> String {
        container_name(&self.namespace, slug)
    }

    /// `<namespace>-<slug>`: the tenant's network name.
    pub fn network_name(&self, slug: &str) -> String {
        network_name(&self.namespace, slug)
    }

    /// `<namespace>-<slug>-data`: the tenant's data volume name.
    pub fn volume_name(&self, slug: &str) -> String {
        volume_name(&self.namespace, slug)
    }

    /// Everything this namespace manages (containers in all states, networks, volumes),
    /// each list sorted by name.
    pub async fn observe(&self) -> Result<ObservedRuntime, RuntimeError> {
        observe::observe(&self.docker, &self.namespace, self.kind, None).await
    }

    /// What this namespace manages for one tenant: cheaper than [`Runtime::observe`] when
    /// re-checking a single tenant between apply attempts.
    pub async fn observe_tenant(&self, slug: &str) -> Result<ObservedRuntime, RuntimeError> {
        observe::observe(&self.docker, &self.namespace, self.kind, Some(slug)).await
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
            reason: error::describe(&other),
        },
    })
}

async fn connect_to(host: &str, target: &str, namespace: &str) -> Result<Runtime, RuntimeError> {
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
    Ok(Runtime {
        docker: docker.with_timeout(REQUEST_TIMEOUT),
        namespace: namespace.to_string(),
        kind: RuntimeKind::Docker,
    })
}

/// The reason a handshake failed, with a hint for the common permission problem.
fn connect_reason(error: &bollard::errors::Error) -> String {
    let text = error::describe(error);
    if text.contains("Permission denied") {
        format!("{text} (is your user in the docker group?)")
    } else if matches!(error, bollard::errors::Error::RequestTimeoutError) {
        format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())
    } else {
        text
    }
}
