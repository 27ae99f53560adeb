//! A container's CPU, memory, network and block I/O counters read where the kernel keeps them
//! (its cgroup's files and its network namespace's `net/dev`), as cAdvisor does, instead of
//! asking the engine's stats endpoint, which costs the engine about a second and some CPU per
//! container.
//!
//! The container's cgroup is found through what the engine reports: its main process
//! (`State.Pid`), whose `/proc/<pid>/cgroup` names the cgroup on each hierarchy, joined to where
//! that hierarchy is mounted (`/proc/self/mountinfo`). So the engine's cgroup driver (cgroupfs
//! or systemd) and any `--cgroup-parent` need no guessing. The path must name the container's id,
//! or the process is not the container's (it restarted, or the engine is on another host) and
//! the reader refuses it: the caller then asks the engine.
//!
//! The numbers mean what the engine's answer means (`engine::parse_stats`): memory is the usage
//! minus the inactive file cache (the Docker CLI's rule), the limit is the host's memory when
//! the cgroup has none, block I/O sums `Read`/`Write` over devices, network sums every interface
//! but loopback, and the host CPU time is `/proc/stat`'s as the engine adds it up.

mod parse;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use super::types::{ContainerStats, ReadFrom};
use parse::CgroupMount;

/// `/proc/stat` counts in USER_HZ, which Linux fixes at 100 for user space on every
/// architecture (what `sysconf(_SC_CLK_TCK)` answers, and what the engine divides by).
const USER_HZ: u64 = 100;
/// The v1 files with bytes read and written, in the order runc prefers them: the CFQ and BFQ
/// schedulers' own counters when the kernel keeps them, else the throttling layer's.
const BLKIO_V1_FILES: [&str; 4] = [
    "blkio.io_service_bytes_recursive",
    "blkio.bfq.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
];

/// Reads containers' counters from this host's cgroup file systems.
#[derive(Debug, Clone)]
pub struct CgroupReader {
    /// `/proc`, or a fixture tree in tests.
    proc: PathBuf,
    layout: Layout,
    /// `MemTotal`: the limit reported for a container without one, as the engine does.
    host_memory: Option<u64>,
}

/// Where the controllers the meter reads are mounted.
#[derive(Debug, Clone)]
enum Layout {
    /// cgroup v1: one hierarchy per controller (or a few controllers together).
    V1 {
        cpuacct: CgroupMount,
        memory: CgroupMount,
        blkio: Option<CgroupMount>,
    },
    /// cgroup v2: the one unified hierarchy.
    V2 { unified: CgroupMount },
}

/// One container's cgroup directories and its process (whose network namespace is the
/// container's), checked to belong to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerCgroup {
    pub pid: u32,
    cpu: PathBuf,
    memory: PathBuf,
    blkio: Option<PathBuf>,
    v2: bool,
}

/// The host's CPU time at one moment, to divide a container's CPU time by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    /// Nanoseconds of CPU time the host spent (all CPUs, busy or idle).
    pub system_ns: u64,
    pub online_cpus: u32,
}

impl CgroupReader {
    /// The reader of this host (`/proc`).
    pub fn discover() -> Result<CgroupReader, String> {
        CgroupReader::discover_in(Path::new("/proc"))
    }

    /// The reader of the host whose proc file system is at `proc` (a fixture tree in tests;
    /// the mount points in its `self/mountinfo` are used as they are written).
    pub fn discover_in(proc: &Path) -> Result<CgroupReader, String> {
        let mountinfo = read(&proc.join("self/mountinfo"))?;
        let mounts = parse::cgroup_mounts(&mountinfo);
        let v1 = |controller: &str| {
            // A hierarchy can be mounted more than once (bind mounts): prefer its whole root.
            let mut found = mounts.iter().filter(|m| {
                m.controllers
                    .as_ref()
                    .is_some_and(|c| c.iter().any(|c| c == controller))
            });
            let first = found.next()?;
            Some(
                std::iter::once(first)
                    .chain(found)
                    .find(|m| m.root == "/")
                    .unwrap_or(first)
                    .clone(),
            )
        };
        // The memory controller on a v1 hierarchy means the engine puts containers there (a
        // hybrid host also mounts an empty v2 hierarchy beside it).
        let layout = match (v1("memory"), v1("cpuacct")) {
            (Some(memory), Some(cpuacct)) => Layout::V1 {
                cpuacct,
                memory,
                blkio: v1("blkio"),
            },
            (Some(_), None) => {
                return Err("cgroup v1 without the cpuacct controller mounted".into());
            }
            _ => match mounts.iter().find(|m| m.controllers.is_none()) {
                Some(unified) => Layout::V2 {
                    unified: unified.clone(),
                },
                None => return Err("no cgroup file system is mounted".into()),
            },
        };
        let host_memory = std::fs::read_to_string(proc.join("meminfo"))
            .ok()
            .as_deref()
            .and_then(parse::mem_total);
        Ok(CgroupReader {
            proc: proc.to_path_buf(),
            layout,
            host_memory,
        })
    }

    /// 1 or 2.
    pub fn version(&self) -> u8 {
        match self.layout {
            Layout::V1 { .. } => 1,
            Layout::V2 { .. } => 2,
        }
    }

    /// The cgroup of container `id` (its full id) through its main process `pid`.
    pub fn locate(&self, pid: u32, id: &str) -> Result<ContainerCgroup, String> {
        if pid == 0 {
            return Err("the engine reports no process for it".into());
        }
        let file = self.proc.join(format!("{pid}/cgroup"));
        let groups = parse::proc_cgroups(&read(&file)?);
        let path_on = |mount: &CgroupMount, controller: Option<&str>| {
            let (_, path) = groups
                .iter()
                .find(|(controllers, _)| match controller {
                    Some(c) => controllers.iter().any(|x| x == c),
                    None => controllers.is_empty(),
                })
                .ok_or_else(|| match controller {
                    Some(c) => format!("{} names no {c} cgroup", file.display()),
                    None => format!("{} names no cgroup v2 group", file.display()),
                })?;
            // The engine names every container's cgroup after its id (`/docker/<id>`,
            // `/system.slice/docker-<id>.scope`, `<parent>/<id>`): any other process is not it.
            if id.is_empty() || !path.contains(id) {
                return Err(format!(
                    "process {pid} is not in container {}'s cgroup ({path}); it restarted, or the engine runs on another host",
                    short(id)
                ));
            }
            under(mount, path).ok_or_else(|| {
                format!(
                    "{path} is outside the part of its hierarchy mounted at {}",
                    mount.point.display()
                )
            })
        };
        match &self.layout {
            Layout::V1 {
                cpuacct,
                memory,
                blkio,
            } => Ok(ContainerCgroup {
                pid,
                cpu: path_on(cpuacct, Some("cpuacct"))?,
                memory: path_on(memory, Some("memory"))?,
                blkio: match blkio {
                    Some(m) => path_on(m, Some("blkio")).ok(),
                    None => None,
                },
                v2: false,
            }),
            Layout::V2 { unified } => {
                let dir = path_on(unified, None)?;
                Ok(ContainerCgroup {
                    pid,
                    cpu: dir.clone(),
                    memory: dir.clone(),
                    blkio: Some(dir),
                    v2: true,
                })
            }
        }
    }

    /// The host's CPU time now.
    pub fn host_cpu(&self) -> Result<HostCpu, String> {
        let file = self.proc.join("stat");
        let (ticks, online) = parse::proc_stat(&read(&file)?)
            .ok_or_else(|| format!("{}: no `cpu` line", file.display()))?;
        Ok(HostCpu {
            system_ns: ticks.saturating_mul(1_000_000_000 / USER_HZ),
            online_cpus: online,
        })
    }

    /// The container's cumulative CPU time in nanoseconds.
    pub fn cpu_ns(&self, c: &ContainerCgroup) -> Result<u64, String> {
        if c.v2 {
            let file = c.cpu.join("cpu.stat");
            parse::flat_keyed(&read(&file)?, "usage_usec")
                .map(|us| us.saturating_mul(1000))
                .ok_or_else(|| format!("{}: no usage_usec", file.display()))
        } else {
            number(&c.cpu.join("cpuacct.usage"))
        }
    }

    /// Every counter of the container, with `host` read just before (no CPU percent: that
    /// takes two readings).
    pub fn read(&self, c: &ContainerCgroup, host: HostCpu) -> Result<ContainerStats, String> {
        let cpu_total_ns = self.cpu_ns(c)?;
        // v1's `total_` keys include the group's descendants, as v2's keys always do.
        let (usage, limit, inactive_key) = if c.v2 {
            ("memory.current", "memory.max", "inactive_file")
        } else {
            (
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "total_inactive_file",
            )
        };
        let usage = number(&c.memory.join(usage))?;
        let stat = read(&c.memory.join("memory.stat"))?;
        let memory_bytes = match parse::flat_keyed(&stat, inactive_key) {
            Some(inactive) if inactive < usage => usage - inactive,
            _ => usage,
        };
        let mut memory_limit_bytes = number(&c.memory.join(limit))?;
        // No limit: the engine reports the host's memory.
        if let Some(host_memory) = self.host_memory.filter(|&m| m > 0) {
            memory_limit_bytes = memory_limit_bytes.min(host_memory);
        }
        let (blk_read_bytes, blk_write_bytes) = match &c.blkio {
            None => (0, 0),
            Some(dir) if c.v2 => match std::fs::read_to_string(dir.join("io.stat")) {
                Ok(text) => parse::io_stat_v2(&text),
                // The io controller is not enabled for the group: no I/O is accounted.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, 0),
                Err(e) => {
                    return Err(format!(
                        "cannot read {}: {e}",
                        dir.join("io.stat").display()
                    ));
                }
            },
            Some(dir) => blkio_v1(dir)?,
        };
        let net = self.proc.join(format!("{}/net/dev", c.pid));
        let (net_rx_bytes, net_tx_bytes) = parse::net_dev(&read(&net)?)
            .ok_or_else(|| format!("{}: not a net/dev table", net.display()))?;
        Ok(ContainerStats {
            cpu_percent: None,
            cpu_total_ns,
            system_cpu_ns: Some(host.system_ns),
            online_cpus: Some(host.online_cpus),
            memory_bytes,
            memory_limit_bytes,
            net_rx_bytes,
            net_tx_bytes,
            blk_read_bytes,
            blk_write_bytes,
            read_from: ReadFrom::Cgroup,
            fallback: None,
        })
    }
}

/// `path` (a cgroup as `/proc/<pid>/cgroup` names it) as a directory under `mount`, or None
/// when the mount shows only another part of the hierarchy.
fn under(mount: &CgroupMount, path: &str) -> Option<PathBuf> {
    let rest = if mount.root == "/" {
        path
    } else {
        let rest = path.strip_prefix(mount.root.as_str())?;
        if !rest.is_empty() && !rest.starts_with('/') {
            return None;
        }
        rest
    };
    let rest = rest.trim_start_matches('/');
    // A `..` would leave the mount: the kernel never writes one, a fixture or a bug might.
    if rest.split('/').any(|part| part == "..") {
        return None;
    }
    Some(mount.point.join(rest))
}

/// The first v1 block I/O file the kernel keeps with device rows; no rows anywhere is no I/O.
fn blkio_v1(dir: &Path) -> Result<(u64, u64), String> {
    for name in BLKIO_V1_FILES {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) => {
                if let Some(bytes) = parse::blkio_v1(&text) {
                    return Ok(bytes);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", dir.join(name).display())),
        }
    }
    Ok((0, 0))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn number(path: &Path) -> Result<u64, String> {
    parse::single_value(&read(path)?).ok_or_else(|| format!("{}: not a number", path.display()))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}
