//! One-shot resource statistics of managed containers (`docker stats --no-stream`), for the
//! usage meter.
//!
//! CPU is reported as percent of one CPU (100 = one core busy), computed as the Docker CLI does
//! from the difference between `cpu_stats` and `precpu_stats`. With `one-shot` the engine skips
//! its second read and sends no usable `precpu_stats`; then the percent is `None`, and callers
//! can compute it from two samples with [`cpu_percent_between`].

use std::time::Duration;

use super::Engine;
use crate::runtime::RuntimeError;
use crate::runtime::types::{ContainerStats, ReadFrom, StatsMode, cpu_percent_from};
use bollard::models::{ContainerBlkioStats, ContainerCpuStats, ContainerStatsResponse};
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt;

/// How many stats requests run at once (each holds an engine connection for about a second).
pub const STATS_CONCURRENCY: usize = 8;
/// A container whose stats take longer than this is skipped for this pass.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(10);

/// Percent of one CPU between two readings, the Docker CLI's formula:
/// `container delta / host delta × online CPUs × 100`. None when the host delta is unknown or zero.
pub fn cpu_percent(cpu: &ContainerCpuStats, precpu: &ContainerCpuStats) -> Option<f64> {
    let total = cpu.cpu_usage.as_ref()?.total_usage?;
    let pre_total = precpu
        .cpu_usage
        .as_ref()
        .and_then(|u| u.total_usage)
        .unwrap_or(0);
    let system = cpu.system_cpu_usage?;
    // A one-shot answer carries an empty precpu: no host delta to divide by.
    let pre_system = precpu.system_cpu_usage.filter(|&s| s > 0)?;
    let online = cpu
        .online_cpus
        .filter(|&n| n > 0)
        .map(f64::from)
        .or_else(|| {
            cpu.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|v| v.len() as f64)
                .filter(|&n| n > 0.0)
        })
        .unwrap_or(1.0);
    cpu_percent_from(total, pre_total, system, pre_system, online)
}

/// Turns the engine's answer into the numbers the meter stores.
pub fn parse_stats(s: &ContainerStatsResponse) -> ContainerStats {
    let empty = ContainerCpuStats::default();
    let cpu = s.cpu_stats.as_ref().unwrap_or(&empty);
    let precpu = s.precpu_stats.as_ref().unwrap_or(&empty);
    let (memory_bytes, memory_limit_bytes) = match &s.memory_stats {
        Some(m) => {
            let usage = m.usage.unwrap_or(0);
            // The Docker CLI's rule: cgroup v1 reports total_inactive_file, v2 inactive_file;
            // older engines only `cache`. Reclaimable page cache is not the tenant's memory.
            let reclaimable = m.stats.as_ref().and_then(|st| {
                st.get("total_inactive_file")
                    .or_else(|| st.get("inactive_file"))
                    .or_else(|| st.get("cache"))
                    .copied()
            });
            let used = match reclaimable {
                Some(r) if r < usage => usage - r,
                _ => usage,
            };
            (used, m.limit.unwrap_or(0))
        }
        None => (0, 0),
    };
    let (net_rx_bytes, net_tx_bytes) = s
        .networks
        .as_ref()
        .map(|nets| {
            nets.values().fold((0u64, 0u64), |(rx, tx), n| {
                (
                    rx.saturating_add(n.rx_bytes.unwrap_or(0)),
                    tx.saturating_add(n.tx_bytes.unwrap_or(0)),
                )
            })
        })
        .unwrap_or((0, 0));
    let (blk_read_bytes, blk_write_bytes) = s.blkio_stats.as_ref().map(blkio).unwrap_or((0, 0));
    ContainerStats {
        cpu_percent: cpu_percent(cpu, precpu),
        cpu_total_ns: cpu
            .cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0),
        system_cpu_ns: cpu.system_cpu_usage,
        online_cpus: cpu.online_cpus,
        memory_bytes,
        memory_limit_bytes,
        net_rx_bytes,
        net_tx_bytes,
        blk_read_bytes,
        blk_write_bytes,
        read_from: ReadFrom::Engine,
        fallback: None,
    }
}

/// Bytes read and written, summed over devices (`Read`/`Write` on cgroup v1, lowercase on v2).
fn blkio(b: &ContainerBlkioStats) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for e in b.io_service_bytes_recursive.iter().flatten() {
        let value = e.value.unwrap_or(0);
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read = read.saturating_add(value),
            Some("write") => write = write.saturating_add(value),
            _ => {}
        }
    }
    (read, write)
}

impl Engine {
    /// One stats reading of a container (by name or id).
    pub async fn container_stats(
        &self,
        container: &str,
        mode: StatsMode,
    ) -> Result<ContainerStats, RuntimeError> {
        let options = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(mode == StatsMode::OneShot)
            .build();
        let action = || format!("reading the stats of container {container}");
        let mut answers = self.docker().stats(container, Some(options));
        let read = tokio::time::timeout(STATS_TIMEOUT, answers.next()).await;
        match read {
            Err(_) => Err(RuntimeError::api(
                action(),
                bollard::errors::Error::RequestTimeoutError,
            )),
            Ok(None) => Err(RuntimeError::NotFound {
                kind: "stats of container",
                name: container.to_string(),
            }),
            Ok(Some(Err(e))) => Err(RuntimeError::api(action(), e)),
            Ok(Some(Ok(s))) => Ok(parse_stats(&s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::cpu_percent_between;

    /// `GET /containers/{id}/stats?stream=false` from a cgroup v1 engine (20.10, API 1.41),
    /// trimmed to the fields the meter reads, with the engine's second read in `precpu_stats`.
    const TWO_READS_V1: &str = r#"{
      "read": "2025-06-01T12:00:01.000000000Z",
      "preread": "2025-06-01T12:00:00.000000000Z",
      "pids_stats": {"current": 4},
      "blkio_stats": {
        "io_service_bytes_recursive": [
          {"major": 8, "minor": 0, "op": "Read", "value": 4096000},
          {"major": 8, "minor": 0, "op": "Write", "value": 8192},
          {"major": 8, "minor": 0, "op": "Sync", "value": 4104192},
          {"major": 8, "minor": 0, "op": "Async", "value": 0},
          {"major": 8, "minor": 0, "op": "Total", "value": 4104192},
          {"major": 8, "minor": 16, "op": "Read", "value": 1000},
          {"major": 8, "minor": 16, "op": "Write", "value": 24}
        ],
        "io_serviced_recursive": [], "io_queue_recursive": [], "io_service_time_recursive": [],
        "io_wait_time_recursive": [], "io_merged_recursive": [], "io_time_recursive": [],
        "sectors_recursive": []
      },
      "num_procs": 0,
      "storage_stats": {},
      "cpu_stats": {
        "cpu_usage": {"total_usage": 1200000000, "percpu_usage": [700000000, 500000000],
                      "usage_in_kernelmode": 200000000, "usage_in_usermode": 900000000},
        "system_cpu_usage": 400002000000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "precpu_stats": {
        "cpu_usage": {"total_usage": 1100000000, "percpu_usage": [650000000, 450000000],
                      "usage_in_kernelmode": 190000000, "usage_in_usermode": 850000000},
        "system_cpu_usage": 400000000000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "memory_stats": {
        "usage": 20971520,
        "max_usage": 25165824,
        "stats": {"active_anon": 5242880, "active_file": 2097152, "cache": 6291456,
                  "inactive_file": 4194304, "total_inactive_file": 4194304, "rss": 5242880,
                  "total_cache": 6291456, "total_rss": 5242880},
        "limit": 536870912
      },
      "name": "/tenantctl-acme",
      "id": "3f1e5a",
      "networks": {
        "eth0": {"rx_bytes": 15000, "rx_packets": 100, "rx_errors": 0, "rx_dropped": 0,
                 "tx_bytes": 9000, "tx_packets": 80, "tx_errors": 0, "tx_dropped": 0},
        "eth1": {"rx_bytes": 500, "rx_packets": 5, "rx_errors": 0, "rx_dropped": 0,
                 "tx_bytes": 100, "tx_packets": 2, "tx_errors": 0, "tx_dropped": 0}
      }
    }"#;

    /// A one-shot answer from a cgroup v2 engine: empty `precpu_stats`, lowercase block ops,
    /// `inactive_file` instead of `cache`.
    const ONE_SHOT_V2: &str = r#"{
      "read": "2025-06-01T12:00:01.000000000Z",
      "preread": "0001-01-01T00:00:00Z",
      "blkio_stats": {"io_service_bytes_recursive": [
        {"major": 259, "minor": 0, "op": "read", "value": 2048},
        {"major": 259, "minor": 0, "op": "write", "value": 1024}
      ]},
      "cpu_stats": {
        "cpu_usage": {"total_usage": 5000000000, "usage_in_kernelmode": 1000000000,
                      "usage_in_usermode": 4000000000},
        "system_cpu_usage": 900000000000000,
        "online_cpus": 4,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                       "usage_in_usermode": 0}, "throttling_data": {"periods": 0,
                       "throttled_periods": 0, "throttled_time": 0}},
      "memory_stats": {"usage": 10485760, "stats": {"anon": 8388608, "file": 2097152,
                       "inactive_file": 1048576}, "limit": 134217728},
      "name": "/tenantctl-hooli",
      "id": "9c0d",
      "networks": {"eth0": {"rx_bytes": 700, "tx_bytes": 300}}
    }"#;

    fn parse(json: &str) -> ContainerStats {
        let r: ContainerStatsResponse = serde_json::from_str(json).expect("valid stats JSON");
        parse_stats(&r)
    }

    #[test]
    fn cpu_percent_from_the_engines_two_reads() {
        let s = parse(TWO_READS_V1);
        // 0.1 s of container CPU over 2 s of host CPU time on 2 CPUs: 10% of one CPU.
        let cpu = s.cpu_percent.expect("precpu present");
        assert!((cpu - 10.0).abs() < 1e-9, "{cpu}");
        assert_eq!(s.online_cpus, Some(2));
    }

    #[test]
    fn memory_net_and_block_io_from_cgroup_v1() {
        let s = parse(TWO_READS_V1);
        // usage minus total_inactive_file, as `docker stats` shows it.
        assert_eq!(s.memory_bytes, 20_971_520 - 4_194_304);
        assert_eq!(s.memory_limit_bytes, 512 << 20);
        assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (15_500, 9_100));
        // Only Read/Write rows count (Sync/Async/Total repeat them), summed over devices.
        assert_eq!((s.blk_read_bytes, s.blk_write_bytes), (4_097_000, 8_216));
    }

    #[test]
    fn one_shot_has_no_cpu_percent_until_a_second_sample() {
        let first = parse(ONE_SHOT_V2);
        assert_eq!(first.cpu_percent, None, "empty precpu gives no percent");
        assert_eq!(first.memory_bytes, 10_485_760 - 1_048_576);
        assert_eq!(first.memory_limit_bytes, 128 << 20);
        assert_eq!((first.blk_read_bytes, first.blk_write_bytes), (2048, 1024));
        assert_eq!((first.net_rx_bytes, first.net_tx_bytes), (700, 300));
        // A second one-shot 10 s later: 2 s of CPU over 40 s of host time on 4 CPUs = 20%.
        let mut second = first.clone();
        second.cpu_total_ns += 2_000_000_000;
        second.system_cpu_ns = first.system_cpu_ns.map(|s| s + 40_000_000_000);
        let cpu = cpu_percent_between(&first, &second).expect("two samples");
        assert!((cpu - 20.0).abs() < 1e-9, "{cpu}");
        // A restarted container's counter went backwards: no percent rather than a wrong one.
        assert_eq!(cpu_percent_between(&second, &first), None);
    }

    #[test]
    fn missing_sections_read_as_zero() {
        let s = parse(r#"{"id": "x", "name": "/y"}"#);
        assert_eq!(s, ContainerStats::default());
    }
}
