//! What apply asks of a backend for one tenant's workload, and what comes back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use ipnet::Ipv4Net;

use super::observed::ObservedContainer;
use super::spec::{ContainerSpec, ServiceShape};

/// Everything a backend needs to create, update or replace one tenant's workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub tenant: String,
    /// The container a task or container runs (its name is the workload's name).
    pub spec: ContainerSpec,
    /// Labels of the workload (managed labels, spec hash, revision).
    pub labels: BTreeMap<String, String>,
    /// Env merged over the spec's and never hashed (the API key's digest).
    pub extra_env: BTreeMap<String, String>,
    /// Replicas, placement and reservations; a container backend ignores it.
    pub shape: ServiceShape,
    /// The tenant is active: its workload should run and answer.
    pub running: bool,
    /// The site's health path on `spec.port`, e.g. `/health`.
    pub health_path: String,
    /// How long a new workload has to answer its health path.
    pub health_timeout: Duration,
    /// Points the namespace's edge at a new upstream (`127.0.0.1:PORT`); a blue/green replace
    /// calls it once the new container answers and before the old one goes. None: no edge.
    pub switch: Option<EdgeSwitch>,
}

/// What switches the edge to a tenant's new upstream: Ok once the edge acknowledged it.
pub type SwitchFn = dyn Fn(String) -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// A handle on [`SwitchFn`], compared by identity.
#[derive(Clone)]
pub struct EdgeSwitch(pub Arc<SwitchFn>);

impl EdgeSwitch {
    pub async fn to(&self, upstream: String) -> Result<(), String> {
        (self.0)(upstream).await
    }
}

impl std::fmt::Debug for EdgeSwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeSwitch")
    }
}

impl PartialEq for EdgeSwitch {
    fn eq(&self, other: &EdgeSwitch) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// What a workload change did: the progress text after the change's address, and where the
/// tenant answers now (when it was started and checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub line: String,
    pub url: Option<String>,
}

impl Applied {
    pub fn new(line: impl Into<String>, url: Option<String>) -> Applied {
        Applied {
            line: line.into(),
            url,
        }
    }
}

/// Where a converged, running tenant answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// At this URL on this host.
    At(String),
    /// It runs, but its backend publishes no port for it (swarm and a loopback-only theme).
    Unpublished,
    /// No port answers: it does not run.
    Nowhere,
}

impl Reach {
    pub fn url(&self) -> Option<String> {
        match self {
            Reach::At(url) => Some(url.clone()),
            Reach::Unpublished | Reach::Nowhere => None,
        }
    }
}

/// What the meter knows from git about the site whose counters it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteQuery {
    pub tenant: String,
    /// The theme's port inside the container; None when the tenant is not in git.
    pub theme_port: Option<u16>,
    /// The theme runs the built-in site image, which carries `tenantctl site-usage`.
    pub builtin_image: bool,
    /// The digest of the tenant's key, which the site asks for on /usage (the workload's own env).
    pub key_digest: Option<String>,
    pub timeout: Duration,
}

/// A tenant network as it exists after it was ensured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsuredNetwork {
    pub id: String,
    /// The subnet the network really has: differs from the requested one when the network
    /// already existed (a crashed earlier run made it), which is what must be recorded.
    pub subnet: Option<Ipv4Net>,
    /// False when it already existed.
    pub created: bool,
    /// Other networks of this name that could not be removed because containers are attached
    /// to them (their ids): duplicates are left, and the caller must say so.
    pub left_in_use: Vec<String>,
}

/// How waiting for a started container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthOutcome {
    /// The health check passed (or the container runs and has no health check).
    Healthy,
    /// The engine declared it unhealthy; the output of the last probe.
    Unhealthy(String),
    /// The process exited (or crashed and was restarted by the restart policy).
    Exited {
        /// None when it was already running again and the code was gone.
        code: Option<i64>,
        /// Killed for exceeding the plan's memory limit.
        oom_killed: bool,
        /// The last lines of its output.
        logs: Vec<String>,
    },
    /// Still not healthy when the time was up; the last health status seen.
    TimedOut(String),
}

/// The existing workload a change is about, as the plan names it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub name: &'a str,
    /// The engine's id, when the plan saw one.
    pub id: Option<&'a str>,
    /// What the plan observed of it.
    pub observed: Option<&'a ObservedContainer>,
}
