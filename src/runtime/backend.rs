//! The one interface to whatever runs tenants: a [`Backend`] per runtime kind, each owning its
//! engine calls. Callers hold a [`Runtime`](super::Runtime) (a cloneable `Arc<dyn Backend>`) and
//! never learn which kind it is; only the planner reads `ObservedRuntime::kind` to word its plan.
//!
//! The methods are shaped for apply's steps and for the readers (status, meter, dashboard), so a
//! fake backend for tests is a map of tenants to observed containers and a log of calls.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use ipnet::Ipv4Net;

use super::RuntimeError;
use super::types::{
    Applied, ContainerDetail, ContainerStats, EdgeSpec, EngineEvent, EnsuredNetwork, LogEvent,
    LogOptions, ObservedContainer, ObservedRuntime, Reach, SiteQuery, StatsMode, StatsSource,
    Target, Workload,
};
use crate::usage::site::SiteCounters;

/// A progress line from inside a workload change (the text after the change's address).
pub type Say<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// The engine's events about a namespace's objects; ends (or errs) when the connection drops.
pub type EngineEvents = BoxStream<'static, Result<EngineEvent, RuntimeError>>;

/// What runs tenants: containers on one engine, or services of a swarm.
///
/// Every method is idempotent where apply retries it, and touches only objects carrying this
/// namespace's managed labels. Workload changes return the progress text for the change and,
/// when the tenant was started and checked, its URL.
#[async_trait]
pub trait Backend: std::fmt::Debug + Send + Sync {
    /// The namespace: name prefix and value of the `tenantctl.namespace` label.
    fn namespace(&self) -> &str;

    // ---------------------------------------------------------------- observing

    /// Everything this namespace manages (or one tenant's share), each list sorted by name.
    async fn observe(&self, tenant: Option<&str>) -> Result<ObservedRuntime, RuntimeError>;

    /// The tenant's workload called `name`, when this namespace has one. By default from the
    /// tenant's observation; a backend that can look one up by name overrides it (the engine
    /// answers an inspect without walking every network and volume of the host).
    async fn workload_named(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<ObservedContainer>, RuntimeError> {
        Ok(self
            .observe(Some(tenant))
            .await?
            .containers
            .into_iter()
            .find(|c| c.name == name))
    }

    /// Exit code, OOM kill, restart count and start error of each workload that is not running,
    /// by id; a backend whose workloads report that themselves returns none.
    async fn details(
        &self,
        workloads: &[ObservedContainer],
    ) -> Result<HashMap<String, ContainerDetail>, RuntimeError>;

    /// One resource reading of a running workload, from the engine's stats endpoint.
    async fn stats(
        &self,
        workload: &ObservedContainer,
        mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError>;

    /// One reading of each running workload, in the order given, from `source`; one failing
    /// does not fail the others. By default [`Backend::stats`] of each, a few at once.
    async fn stats_pass(
        &self,
        workloads: &[ObservedContainer],
        mode: StatsMode,
        _source: StatsSource,
    ) -> Vec<Result<ContainerStats, RuntimeError>> {
        use futures_util::StreamExt;
        futures_util::stream::iter(workloads.to_vec())
            .map(|w| async move { self.stats(&w, mode).await })
            .buffered(super::engine::STATS_CONCURRENCY)
            .collect()
            .await
    }

    /// The site's usage counters, checked to be `query.tenant`'s; the error says why not in one line.
    async fn site_counters(
        &self,
        workload: &ObservedContainer,
        query: &SiteQuery,
    ) -> Result<SiteCounters, String>;

    /// Volume name → bytes used, every volume the engine can size, in one request (the disk-usage
    /// API walks every volume: call it once per meter pass, never per tenant). A backend that
    /// cannot tell answers none.
    async fn volume_sizes(&self) -> Result<BTreeMap<String, u64>, RuntimeError> {
        Ok(BTreeMap::new())
    }

    /// The workload's log lines as the engine sends them; the stream ends with the workload
    /// (following) or with the lines asked for.
    fn logs<'a>(
        &'a self,
        workload: &ObservedContainer,
        options: &LogOptions,
    ) -> BoxStream<'a, Result<LogEvent, RuntimeError>>;

    /// Follows the engine's events about this namespace's objects that may mean drift (a
    /// workload died, stopped, was removed or changed; its network was disconnected or removed).
    /// Resolves once the engine answered; the stream ends or errs when the connection drops.
    /// Events while nobody follows are lost: a caller that subscribes again re-observes.
    async fn events(&self) -> Result<EngineEvents, RuntimeError>;

    // ---------------------------------------------------------------- networks, volumes, images

    /// Every IPv4 subnet in use on the engine, ours or not, so a new one overlaps none.
    async fn existing_subnets(&self) -> Result<BTreeSet<Ipv4Net>, RuntimeError>;

    /// Create the tenant network `name` with exactly `subnet` (ours already there: as it is).
    /// An overlap the engine refuses is [`RuntimeError::SubnetOverlap`]: pick another.
    async fn ensure_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
    ) -> Result<EnsuredNetwork, RuntimeError>;

    /// Remove our network `name`; false when absent.
    async fn remove_network(&self, name: &str) -> Result<bool, RuntimeError>;

    /// Create our volume `name`; false when ours already existed.
    async fn ensure_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError>;

    /// Make sure `reference` is on this host, pulling it when it is not (each status line to `progress`).
    async fn ensure_image(&self, reference: &str, progress: Say<'_>) -> Result<(), RuntimeError>;

    /// Build the built-in site image `tag` from this binary unless it already was (saying so to
    /// `progress` only when it builds). Returns its id.
    async fn ensure_site_image(&self, tag: &str, progress: Say<'_>)
    -> Result<String, RuntimeError>;

    // ---------------------------------------------------------------- a tenant's workload

    /// Create the workload `name` (started and checked when the tenant is active).
    async fn create(&self, workload: &Workload, name: &str) -> Result<Applied, RuntimeError>;

    /// Replace `target` with a workload of the new spec, the old one kept until the new one
    /// answers. A replacement that does not come up is [`RuntimeError::ReplacementFailed`].
    async fn replace(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError>;

    /// Bring `target` to the spec in place. An update the engine rolled back is
    /// [`RuntimeError::RolledBack`] (not worth retrying).
    async fn update(
        &self,
        workload: &Workload,
        target: Target<'_>,
        why: &str,
    ) -> Result<Applied, RuntimeError>;

    /// Start `target` (an active tenant's stopped workload) and wait until it answers.
    async fn start(
        &self,
        workload: &Workload,
        target: Target<'_>,
        say: Say<'_>,
    ) -> Result<Applied, RuntimeError>;

    /// Stop `target`, deleting nothing; `patience` bounds waiting for it to be stopped.
    async fn stop(&self, target: Target<'_>, patience: Duration) -> Result<Applied, RuntimeError>;

    /// Remove `target` (never its data volume); false when it was not there.
    async fn remove(&self, target: Target<'_>) -> Result<bool, RuntimeError>;

    /// Where the converged, active tenant answers; `url` is what this attempt's changes found
    /// (checked by them). Without it, checks that the workload answers now (containers: its
    /// health path on the loopback port; services: tasks running, which swarm counts only once
    /// healthy), waiting up to the health timeout; one that does not is an error saying why.
    async fn reach(&self, workload: &Workload, url: Option<String>) -> Result<Reach, RuntimeError>;

    /// Restart a running workload in place (not a desired-state change); says what it did.
    async fn restart(
        &self,
        workload: &ObservedContainer,
        timeout: Duration,
    ) -> Result<String, RuntimeError>;

    // ---------------------------------------------------------------- the edge

    /// Makes the namespace's edge of `spec` run (its volume, its container, answering its admin
    /// `/healthz` within `timeout`), removing `old` (a container of another spec) first.
    /// Returns the new container's id. Only the container backend runs an edge.
    async fn edge_up(
        &self,
        spec: &EdgeSpec,
        labels: &BTreeMap<String, String>,
        old: Option<&str>,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let _ = (spec, labels, old, timeout);
        Err(RuntimeError::NotAnswering {
            reason: "the edge runs only with --runtime docker".into(),
        })
    }

    /// Writes the files of `tar` into the workload's data volume (the access file), through the
    /// engine; returns into how many containers (swarm: the service's tasks on this node).
    async fn put_data_files(
        &self,
        workload: &ObservedContainer,
        tar: &[u8],
    ) -> Result<usize, RuntimeError>;

    /// The edge's admin token, read from its container through the engine.
    async fn edge_token(&self, edge: &ObservedContainer) -> Result<String, RuntimeError> {
        let _ = edge;
        Err(RuntimeError::NotAnswering {
            reason: "the edge runs only with --runtime docker".into(),
        })
    }
}
