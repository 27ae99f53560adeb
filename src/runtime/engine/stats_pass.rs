//! Stats of many containers in one pass: from their cgroup files where this host can read
//! them ([`CgroupReader`]), from the engine's stats endpoint where it cannot (per container,
//! saying why), so a meter pass costs the engine almost nothing however many tenants run.
//!
//! CPU percent needs two readings. A two-read pass reads every container's CPU time once,
//! waits [`CPU_WINDOW`] (what the engine waits between its own two reads, so a stored percent
//! means what it meant when the engine computed it), then reads all counters: one window for
//! the whole pass, not one per container. Containers that go to the engine are asked meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, stream};

use super::Engine;
use super::stats::STATS_CONCURRENCY;
use crate::runtime::RuntimeError;
use crate::runtime::cgroup::{CgroupReader, ContainerCgroup, HostCpu};
use crate::runtime::types::{ContainerStats, StatsMode, StatsSource, cpu_percent_from};

/// A container read from its cgroup files: its place in the pass, its cgroup, its first CPU
/// reading (usage in ns, the host's CPU) when one was taken.
type FileRoute = (usize, ContainerCgroup, Option<(u64, HostCpu)>);

/// Between the two CPU readings of a two-read pass.
pub const CPU_WINDOW: Duration = Duration::from_secs(1);
/// Containers inspected at once for their process (swarm tasks: observation has none).
const PID_CONCURRENCY: usize = 16;

/// A container to read: its full id, and its main process when the caller already knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsTarget {
    pub id: String,
    pub pid: Option<u32>,
}

/// What the pass does for one container.
enum Route {
    /// Its files, with the first CPU reading of a two-read pass.
    Files(ContainerCgroup, Option<(u64, HostCpu)>),
    /// The engine's stats endpoint; why, when the files were wanted.
    Engine(Option<String>),
    /// The files were demanded (`StatsSource::Cgroup`) and cannot be read.
    Refused(String),
}

impl Engine {
    /// This host's cgroup reader, found once per engine; why not when the engine's containers
    /// are not on this host (a remote `DOCKER_HOST`) or no cgroup file system is mounted.
    pub(crate) fn cgroup_reader(&self) -> Result<Arc<CgroupReader>, String> {
        self.cgroups
            .get_or_init(|| {
                if self.socket.is_none() {
                    return Err(
                        "the engine is not reached through a unix socket, so its containers' files are not on this host"
                            .into(),
                    );
                }
                CgroupReader::discover().map(Arc::new)
            })
            .clone()
    }

    /// One reading of each target, in the order given. One failing container does not fail
    /// the others.
    pub async fn stats_pass(
        &self,
        targets: &[StatsTarget],
        mode: StatsMode,
        source: StatsSource,
    ) -> Vec<Result<ContainerStats, RuntimeError>> {
        let reader = match source {
            StatsSource::Engine => Err(String::new()),
            StatsSource::Auto | StatsSource::Cgroup => self.cgroup_reader(),
        };
        let routes = match reader.clone() {
            Ok(reader) => {
                let pids = self.pids_of(targets).await;
                let two_reads = mode == StatsMode::TwoReads;
                let located = tokio::task::spawn_blocking(move || {
                    pids.into_iter()
                        .map(|(id, pid)| first_reading(&reader, &id, pid, two_reads))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap_or_else(|e| {
                    vec![Err(format!("the file reader failed: {e}")); targets.len()]
                });
                located
                    .into_iter()
                    .map(|r| match (r, source) {
                        (Ok((cgroup, first)), _) => Route::Files(cgroup, first),
                        (Err(why), StatsSource::Cgroup) => Route::Refused(why),
                        (Err(why), _) => Route::Engine(Some(why)),
                    })
                    .collect::<Vec<_>>()
            }
            Err(why) if source == StatsSource::Cgroup => targets
                .iter()
                .map(|_| Route::Refused(why.clone()))
                .collect(),
            Err(why) => {
                let why = (!why.is_empty()).then_some(why);
                targets.iter().map(|_| Route::Engine(why.clone())).collect()
            }
        };
        let window_ends = tokio::time::Instant::now() + CPU_WINDOW;

        // The engine's answers are asked for while the window passes.
        let asked: Vec<(usize, Option<String>)> = routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Route::Engine(why) => Some((i, why.clone())),
                _ => None,
            })
            .collect();
        let files: Vec<FileRoute> = routes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r {
                Route::Files(c, first) => Some((i, c.clone(), *first)),
                _ => None,
            })
            .collect();
        let read_files = async {
            if files.is_empty() {
                return Vec::new();
            }
            if mode == StatsMode::TwoReads {
                tokio::time::sleep_until(window_ends).await;
            }
            let Ok(reader) = reader.clone() else {
                return Vec::new();
            };
            tokio::task::spawn_blocking(move || {
                files
                    .into_iter()
                    .map(|(i, c, first)| (i, second_reading(&reader, &c, first)))
                    .collect::<Vec<_>>()
            })
            .await
            .unwrap_or_default()
        };
        let (from_engine, from_files) =
            tokio::join!(self.ask_engine(targets, asked, mode), read_files);

        let mut out: Vec<Option<Result<ContainerStats, RuntimeError>>> =
            (0..targets.len()).map(|_| None).collect();
        for (i, r) in from_engine {
            out[i] = Some(r);
        }
        // A container whose files went away during the window (it stopped or restarted).
        let mut late = Vec::new();
        for (i, r) in from_files {
            match (r, source) {
                (Ok(s), _) => out[i] = Some(Ok(s)),
                (Err(why), StatsSource::Cgroup) => out[i] = Some(Err(refused(&targets[i], why))),
                (Err(why), _) => late.push((i, Some(why))),
            }
        }
        for (i, r) in self.ask_engine(targets, late, mode).await {
            out[i] = Some(r);
        }
        for (i, r) in routes.into_iter().enumerate() {
            if let Route::Refused(why) = r {
                out[i] = Some(Err(refused(&targets[i], why)));
            }
        }
        out.into_iter()
            .zip(targets)
            .map(|(r, t)| {
                r.unwrap_or_else(|| {
                    Err(RuntimeError::NotFound {
                        kind: "stats of container",
                        name: t.id.clone(),
                    })
                })
            })
            .collect()
    }

    /// Each target's process: the one given, else the engine's `State.Pid` (0 when it does not
    /// run; the reader refuses that).
    async fn pids_of(&self, targets: &[StatsTarget]) -> Vec<(String, u32)> {
        stream::iter(targets.to_vec())
            .map(|t| async move {
                let pid = match t.pid {
                    Some(pid) => pid,
                    None => self
                        .docker()
                        .inspect_container(&t.id, None)
                        .await
                        .ok()
                        .and_then(|r| r.state?.pid)
                        .and_then(|p| u32::try_from(p).ok())
                        .unwrap_or(0),
                };
                (t.id, pid)
            })
            .buffered(PID_CONCURRENCY)
            .collect()
            .await
    }

    /// The stats endpoint's reading of each `(index, why)`, [`STATS_CONCURRENCY`] at once.
    async fn ask_engine(
        &self,
        targets: &[StatsTarget],
        asked: Vec<(usize, Option<String>)>,
        mode: StatsMode,
    ) -> Vec<(usize, Result<ContainerStats, RuntimeError>)> {
        stream::iter(asked)
            .map(|(i, why)| async move {
                let id = &targets[i].id;
                if let Some(why) = &why {
                    tracing::debug!(container = %id, "stats from the engine: {why}");
                }
                let r = self.container_stats(id, mode).await.map(|mut s| {
                    s.fallback = why;
                    s
                });
                (i, r)
            })
            .buffer_unordered(STATS_CONCURRENCY)
            .collect()
            .await
    }
}

/// Locates the container's cgroup and, for a two-read pass, reads its CPU time the first time.
fn first_reading(
    reader: &CgroupReader,
    id: &str,
    pid: u32,
    two_reads: bool,
) -> Result<(ContainerCgroup, Option<(u64, HostCpu)>), String> {
    let cgroup = reader.locate(pid, id)?;
    let first = if two_reads {
        let host = reader.host_cpu()?;
        Some((reader.cpu_ns(&cgroup)?, host))
    } else {
        None
    };
    Ok((cgroup, first))
}

/// Every counter, with the CPU percent since `first` when there is one.
fn second_reading(
    reader: &CgroupReader,
    cgroup: &ContainerCgroup,
    first: Option<(u64, HostCpu)>,
) -> Result<ContainerStats, String> {
    let host = reader.host_cpu()?;
    let mut s = reader.read(cgroup, host)?;
    if let Some((pre_total, pre_host)) = first {
        s.cpu_percent = cpu_percent_from(
            s.cpu_total_ns,
            pre_total,
            host.system_ns,
            pre_host.system_ns,
            f64::from(host.online_cpus.max(1)),
        );
    }
    tracing::trace!(pid = cgroup.pid, "stats from the cgroup files");
    Ok(s)
}

fn refused(target: &StatsTarget, reason: String) -> RuntimeError {
    RuntimeError::CgroupFiles {
        name: target
            .id
            .get(..12)
            .unwrap_or(target.id.as_str())
            .to_string(),
        reason,
    }
}
