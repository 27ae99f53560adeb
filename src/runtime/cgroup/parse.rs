//! The kernel's text formats the cgroup reader reads, parsed without IO: `/proc/self/mountinfo`,
//! `/proc/<pid>/cgroup`, `/proc/<pid>/net/dev`, `/proc/stat`, `/proc/meminfo`, and the cgroup
//! controllers' files (flat keyed like `memory.stat`, nested keyed like `io.stat`, and v1's
//! `blkio.*io_service_bytes*` rows).

use std::path::PathBuf;

/// One cgroup file system mount (a line of `mountinfo` whose type is `cgroup` or `cgroup2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// The path inside the hierarchy that is mounted (`/` unless a cgroup namespace or a bind
    /// mount shows only part of it).
    pub root: String,
    pub point: PathBuf,
    /// `None` for the v2 unified hierarchy; the v1 controllers (and `name=`s) otherwise.
    pub controllers: Option<Vec<String>>,
}

/// The cgroup mounts of a `mountinfo` file, in its order.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // `id parent major:minor root point options [optional…] - type source super-options`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let controllers = match *fstype {
            "cgroup2" => None,
            "cgroup" => Some(
                right
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            ),
            _ => continue,
        };
        out.push(CgroupMount {
            root: unescape(root),
            point: PathBuf::from(unescape(point)),
            controllers,
        });
    }
    out
}

/// `mountinfo` writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A process's cgroup per hierarchy, from `/proc/<pid>/cgroup` (`id:controllers:path` lines;
/// v2's line is `0::path`): (controllers, path), controllers empty for v2.
pub fn proc_cgroups(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            let controllers = controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((controllers, path.to_string()))
        })
        .collect()
}

/// Bytes received and sent, summed over every interface of a `net/dev` table but loopback.
pub fn net_dev(text: &str) -> Option<(u64, u64)> {
    let mut rx = 0u64;
    let mut tx = 0u64;
    let mut rows = 0;
    // Two header lines, then `  name: rx_bytes packets errs drop fifo frame compressed
    // multicast tx_bytes …`.
    for line in text.lines().skip(2) {
        let (name, counters) = line.split_once(':')?;
        if name.trim() == "lo" {
            rows += 1;
            continue;
        }
        let fields: Vec<&str> = counters.split_whitespace().collect();
        rx = rx.saturating_add(fields.first()?.parse().ok()?);
        tx = tx.saturating_add(fields.get(8)?.parse().ok()?);
        rows += 1;
    }
    (rows > 0).then_some((rx, tx))
}

/// The host's busy-or-idle CPU time (the `cpu` line's user … softirq, in clock ticks, as the
/// engine adds them up) and the number of online CPUs (`cpuN` lines), from `/proc/stat`.
pub fn proc_stat(text: &str) -> Option<(u64, u32)> {
    let mut ticks = None;
    let mut online = 0u32;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values: Vec<u64> = fields
                    .take(7)
                    .map(|f| f.parse().ok())
                    .collect::<Option<_>>()?;
                if values.len() < 7 {
                    return None;
                }
                ticks = Some(values.iter().sum());
            }
            Some(name)
                if name.len() > 3
                    && name.starts_with("cpu")
                    && name[3..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                online += 1;
            }
            _ => {}
        }
    }
    Some((ticks?, online))
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// One value of a flat keyed file (`key value` lines: `memory.stat`, `cpu.stat`).
pub fn flat_keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A single number (`cpuacct.usage`, `memory.usage_in_bytes`); `max` (v2's "no limit") reads
/// as `u64::MAX`.
pub fn single_value(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => Some(u64::MAX),
        v => v.parse().ok(),
    }
}

/// Bytes read and written from a v1 `blkio.*io_service_bytes*` file (`major:minor Op bytes`
/// rows and a `Total` line), summed over devices; `None` when it lists no device.
pub fn blkio_v1(text: &str) -> Option<(u64, u64)> {
    let mut read = 0u64;
    let mut write = 0u64;
    let mut devices = false;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_device, op, value] = fields.as_slice() else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        devices = true;
        match *op {
            "Read" => read = read.saturating_add(value),
            "Write" => write = write.saturating_add(value),
            _ => {}
        }
    }
    devices.then_some((read, write))
}

/// Bytes read and written from v2's `io.stat` (`major:minor rbytes=… wbytes=… …` lines),
/// summed over devices.
pub fn io_stat_v2(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        for pair in line.split_whitespace().skip(1) {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value: u64 = value.parse().unwrap_or(0);
            match key {
                "rbytes" => read = read.saturating_add(value),
                "wbytes" => write = write.saturating_add(value),
                _ => {}
            }
        }
    }
    (read, write)
}
