//! Resource statistics of one tenant's workload, as the meter stores them.

use serde::Serialize;

/// What the engine reports about one container at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContainerStats {
    /// Percent of one CPU over the engine's sampling interval; None without a previous read.
    pub cpu_percent: Option<f64>,
    /// Cumulative CPU time of the container, in nanoseconds.
    pub cpu_total_ns: u64,
    /// Cumulative CPU time of the host, in nanoseconds (Linux only).
    pub system_cpu_ns: Option<u64>,
    pub online_cpus: Option<u32>,
    /// Memory in use, minus the page cache the kernel can reclaim (as `docker stats` shows it).
    pub memory_bytes: u64,
    /// The container's memory limit (the host's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Summed over every interface.
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    pub blk_read_bytes: u64,
    pub blk_write_bytes: u64,
    /// Where the counters were read.
    pub read_from: ReadFrom,
    /// Why the engine was asked although the cgroup files were wanted (`StatsSource::Auto`).
    pub fallback: Option<String>,
}

/// Where a reading's counters come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// The engine's stats endpoint (`GET /containers/{id}/stats`).
    #[default]
    Engine,
    /// The container's cgroup files and its network namespace's `net/dev`, on this host.
    Cgroup,
}

impl ReadFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadFrom::Engine => "engine",
            ReadFrom::Cgroup => "cgroup",
        }
    }
}

/// Where to read counters from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StatsSource {
    /// The cgroup files where they can be read (the engine on this host, as root), else the
    /// engine's stats endpoint, per container.
    #[default]
    Auto,
    /// Only the cgroup files: a container whose files cannot be read is not sampled.
    Cgroup,
    /// Only the engine's stats endpoint.
    Engine,
}

/// How to ask the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsMode {
    /// The engine reads twice about a second apart and sends both: CPU percent is known.
    TwoReads,
    /// One read, returned at once (API ≥ 1.41); CPU percent only from two of our samples.
    OneShot,
}

/// Percent of one CPU between two of our own samples of the same container.
pub fn cpu_percent_between(before: &ContainerStats, after: &ContainerStats) -> Option<f64> {
    let online = f64::from(after.online_cpus.filter(|&n| n > 0).unwrap_or(1));
    cpu_percent_from(
        after.cpu_total_ns,
        before.cpu_total_ns,
        after.system_cpu_ns?,
        before.system_cpu_ns?,
        online,
    )
}

/// Percent of one CPU from cumulative container and host CPU times at two moments.
pub fn cpu_percent_from(
    total: u64,
    pre_total: u64,
    system: u64,
    pre_system: u64,
    online: f64,
) -> Option<f64> {
    // A restart resets the container's counter: no meaningful delta then.
    let cpu_delta = total.checked_sub(pre_total)?;
    let system_delta = system.checked_sub(pre_system).filter(|&d| d > 0)?;
    Some(cpu_delta as f64 / system_delta as f64 * online * 100.0)
}

/// Several tasks' readings as one: sums, except memory (the largest task, with its limit).
pub fn combine(readings: Vec<ContainerStats>) -> ContainerStats {
    let mut out = ContainerStats {
        read_from: readings.first().map_or(ReadFrom::Engine, |r| r.read_from),
        ..ContainerStats::default()
    };
    for r in readings {
        out.cpu_percent = match (out.cpu_percent, r.cpu_percent) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        out.cpu_total_ns += r.cpu_total_ns;
        out.system_cpu_ns = out.system_cpu_ns.or(r.system_cpu_ns);
        out.online_cpus = out.online_cpus.or(r.online_cpus);
        if r.memory_bytes >= out.memory_bytes {
            out.memory_bytes = r.memory_bytes;
            out.memory_limit_bytes = r.memory_limit_bytes;
        }
        out.net_rx_bytes += r.net_rx_bytes;
        out.net_tx_bytes += r.net_tx_bytes;
        out.blk_read_bytes += r.blk_read_bytes;
        out.blk_write_bytes += r.blk_write_bytes;
        // One task read through the engine makes the whole reading the engine's.
        if r.read_from == ReadFrom::Engine {
            out.read_from = ReadFrom::Engine;
        }
        out.fallback = out.fallback.or(r.fallback);
    }
    out
}
