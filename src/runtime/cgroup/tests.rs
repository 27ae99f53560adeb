//! The reader on fixture trees: a proc file system and cgroup hierarchies in a temporary
//! directory, laid out as a cgroup v1 host (cgroupfs driver, like this project's test engine)
//! and a cgroup v2 host (systemd driver) write them.

use super::*;
use std::fs;

const ID: &str = "3f1e5a9c0d2b4e6f8a1c3e5d7b9f0a2c4e6d8b0a1f3e5c7d9b2a4c6e8f0d1b3a";
const OTHER: &str = "9c0d2b4e6f8a1c3e5d7b9f0a2c4e6d8b0a1f3e5c7d9b2a4c6e8f0d1b3a3f1e5a";
const PID: u32 = 4242;

/// A host in a temporary directory: `proc/` and `cgroup/`.
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        Host {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn write(&self, rel: &str, text: &str) -> &Host {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }
    /// `self/mountinfo` with one line per `(root, point under the tree, type, super options)`.
    fn mounts(&self, mounts: &[(&str, &str, &str, &str)]) -> &Host {
        let mut text = String::from(
            "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n\
             25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n",
        );
        for (i, (root, point, fstype, options)) in mounts.iter().enumerate() {
            let point = self.path(point);
            // mountinfo escapes spaces in paths.
            let point = point.display().to_string().replace(' ', "\\040");
            text.push_str(&format!(
                "{} 31 0:{} {root} {point} rw,nosuid,nodev,noexec,relatime shared:{} - {fstype} {fstype} {options}\n",
                40 + i,
                29 + i,
                9 + i
            ));
        }
        self.write("proc/self/mountinfo", &text)
    }
    /// `/proc/stat` of a 2-CPU host with this many clock ticks in the first 7 fields.
    fn stat(&self, ticks: u64) -> &Host {
        let (user, rest) = (ticks - 600, 100);
        self.write(
            "proc/stat",
            &format!(
                "cpu  {user} {rest} {rest} {rest} {rest} {rest} {rest} 77 0 0\n\
                 cpu0 1 1 1 1 1 1 1 0 0 0\ncpu1 1 1 1 1 1 1 1 0 0 0\nintr 1 2 3\nctxt 99\nbtime 1700000000\n"
            ),
        )
    }
    fn reader(&self) -> CgroupReader {
        CgroupReader::discover_in(&self.path("proc")).unwrap()
    }
}

const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:    5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0\n  \
eth0:   15000     100    0    0    0     0          0         0     9000      80    0    0    0     0       0          0\n  \
eth1:     500       5    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n";

const MEMINFO: &str = "MemTotal:        8000000 kB\nMemFree:         1000000 kB\n";

/// A cgroup v1 host with the cgroupfs driver: `cpu` and `cpuacct` on separate hierarchies
/// (as on the test engine's host), a hybrid empty v2 hierarchy beside them.
fn v1_host() -> Host {
    let h = Host::new();
    h.mounts(&[
        ("/", "cgroup/cpu", "cgroup", "rw,cpu"),
        ("/", "cgroup/cpuacct", "cgroup", "rw,cpuacct"),
        ("/", "cgroup/memory", "cgroup", "rw,memory"),
        ("/", "cgroup/blkio", "cgroup", "rw,blkio"),
        ("/", "cgroup/systemd", "cgroup", "rw,name=systemd"),
        ("/", "cgroup/unified", "cgroup2", "rw"),
    ]);
    h.write("proc/meminfo", MEMINFO).stat(400_000);
    h.write(
        &format!("proc/{PID}/cgroup"),
        &format!(
            "9:name=systemd:/docker/{ID}\n8:pids:/docker/{ID}\n7:blkio:/docker/{ID}\n\
             4:memory:/docker/{ID}\n2:cpuacct:/docker/{ID}\n1:cpu:/docker/{ID}\n0::/\n"
        ),
    );
    h.write(&format!("proc/{PID}/net/dev"), NET_DEV);
    let g = |f: &str| format!("cgroup/{f}/docker/{ID}");
    h.write(&format!("{}/cpuacct.usage", g("cpuacct")), "1200000000\n");
    h.write(
        &format!("{}/memory.usage_in_bytes", g("memory")),
        "20971520\n",
    );
    h.write(
        &format!("{}/memory.limit_in_bytes", g("memory")),
        "536870912\n",
    );
    h.write(
        &format!("{}/memory.stat", g("memory")),
        "cache 6291456\nrss 5242880\ninactive_file 4000000\ntotal_cache 6291456\n\
         total_rss 5242880\ntotal_inactive_file 4194304\ntotal_active_file 2097152\n",
    );
    // No CFQ scheduler: its file lists no device, the throttle layer's does.
    h.write(
        &format!("{}/blkio.io_service_bytes_recursive", g("blkio")),
        "Total 0\n",
    );
    h.write(
        &format!("{}/blkio.throttle.io_service_bytes_recursive", g("blkio")),
        "8:0 Read 4096000\n8:0 Write 8192\n8:0 Sync 4104192\n8:0 Async 0\n8:0 Discard 0\n\
         8:0 Total 4104192\n8:16 Read 1000\n8:16 Write 24\n8:16 Total 1024\nTotal 4105216\n",
    );
    h
}

/// A cgroup v2 host with the systemd driver (`system.slice/docker-<id>.scope`).
fn v2_host() -> Host {
    let h = Host::new();
    h.mounts(&[(
        "/",
        "cgroup",
        "cgroup2",
        "rw,nsdelegate,memory_recursiveprot",
    )]);
    h.write("proc/meminfo", MEMINFO).stat(900_000);
    h.write(
        &format!("proc/{PID}/cgroup"),
        &format!("0::/system.slice/docker-{ID}.scope\n"),
    );
    h.write(&format!("proc/{PID}/net/dev"), NET_DEV);
    let dir = format!("cgroup/system.slice/docker-{ID}.scope");
    h.write(
        &format!("{dir}/cpu.stat"),
        "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\nnr_periods 0\n",
    );
    h.write(&format!("{dir}/memory.current"), "10485760\n");
    h.write(&format!("{dir}/memory.max"), "max\n");
    h.write(
        &format!("{dir}/memory.stat"),
        "anon 8388608\nfile 2097152\nactive_file 1048576\ninactive_file 1048576\n",
    );
    h.write(
        &format!("{dir}/io.stat"),
        "259:0 rbytes=2048 wbytes=1024 rios=2 wios=1 dbytes=0 dios=0\n\
         8:0 rbytes=100 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    );
    h
}

#[test]
fn v1_reads_what_the_engine_reports() {
    let h = v1_host();
    let r = h.reader();
    assert_eq!(r.version(), 1);
    let c = r.locate(PID, ID).unwrap();
    let host = r.host_cpu().unwrap();
    // 400 000 ticks at USER_HZ 100 is 4 000 s; two cpuN lines.
    assert_eq!(host.system_ns, 4_000_000_000_000);
    assert_eq!(host.online_cpus, 2);
    let s = r.read(&c, host).unwrap();
    assert_eq!(s.cpu_total_ns, 1_200_000_000);
    assert_eq!(s.cpu_percent, None, "one reading has no percent");
    // usage minus total_inactive_file (not inactive_file: v1's own group only).
    assert_eq!(s.memory_bytes, 20_971_520 - 4_194_304);
    assert_eq!(s.memory_limit_bytes, 512 << 20);
    // lo is not counted.
    assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (15_500, 9_100));
    // Read/Write rows summed over devices; Sync/Total and the CFQ file without devices ignored.
    assert_eq!((s.blk_read_bytes, s.blk_write_bytes), (4_097_000, 8_216));
    assert_eq!(s.read_from, ReadFrom::Cgroup);
    assert_eq!(s.system_cpu_ns, Some(4_000_000_000_000));
}

#[test]
fn v1_unlimited_memory_reads_as_the_hosts_and_combined_cpu_cpuacct_mounts_work() {
    let h = Host::new();
    h.mounts(&[
        ("/", "cgroup/cpu,cpuacct", "cgroup", "rw,cpu,cpuacct"),
        ("/", "cgroup/memory", "cgroup", "rw,memory"),
    ]);
    h.write("proc/meminfo", MEMINFO).stat(1000);
    h.write(
        &format!("proc/{PID}/cgroup"),
        &format!("4:memory:/docker/{ID}\n2:cpu,cpuacct:/docker/{ID}\n"),
    );
    h.write(&format!("proc/{PID}/net/dev"), NET_DEV);
    h.write(
        &format!("cgroup/cpu,cpuacct/docker/{ID}/cpuacct.usage"),
        "7\n",
    );
    let mem = format!("cgroup/memory/docker/{ID}");
    h.write(&format!("{mem}/memory.usage_in_bytes"), "1000\n");
    h.write(
        &format!("{mem}/memory.limit_in_bytes"),
        "9223372036854771712\n",
    );
    h.write(&format!("{mem}/memory.stat"), "total_inactive_file 5000\n");
    let r = h.reader();
    let c = r.locate(PID, ID).unwrap();
    let s = r.read(&c, r.host_cpu().unwrap()).unwrap();
    assert_eq!(s.cpu_total_ns, 7);
    assert_eq!(s.memory_limit_bytes, 8_000_000 * 1024, "MemTotal");
    // More inactive cache than usage (the counters are not read atomically): usage as is.
    assert_eq!(s.memory_bytes, 1000);
    // No blkio hierarchy mounted: no block I/O, not an error.
    assert_eq!((s.blk_read_bytes, s.blk_write_bytes), (0, 0));
}

#[test]
fn v2_reads_the_unified_hierarchy() {
    let h = v2_host();
    let r = h.reader();
    assert_eq!(r.version(), 2);
    let c = r.locate(PID, ID).unwrap();
    let s = r.read(&c, r.host_cpu().unwrap()).unwrap();
    assert_eq!(s.cpu_total_ns, 5_000_000_000, "usage_usec in ns");
    assert_eq!(s.memory_bytes, 10_485_760 - 1_048_576);
    assert_eq!(
        s.memory_limit_bytes,
        8_000_000 * 1024,
        "max is the host's memory"
    );
    assert_eq!((s.blk_read_bytes, s.blk_write_bytes), (2148, 1024));
    assert_eq!((s.net_rx_bytes, s.net_tx_bytes), (15_500, 9_100));
    assert_eq!(s.system_cpu_ns, Some(9_000_000_000_000));
}

#[test]
fn v2_without_the_io_controller_has_no_block_io() {
    let h = v2_host();
    fs::remove_file(h.path(&format!("cgroup/system.slice/docker-{ID}.scope/io.stat"))).unwrap();
    let r = h.reader();
    let c = r.locate(PID, ID).unwrap();
    let s = r.read(&c, r.host_cpu().unwrap()).unwrap();
    assert_eq!((s.blk_read_bytes, s.blk_write_bytes), (0, 0));
}

#[test]
fn cpu_percent_from_two_readings_as_the_engine_computes_it() {
    let h = v2_host();
    let r = h.reader();
    let c = r.locate(PID, ID).unwrap();
    let (first_cpu, first_host) = (r.cpu_ns(&c).unwrap(), r.host_cpu().unwrap());
    // One second later: the container used 0.1 s of CPU, the 2-CPU host 2 s of CPU time.
    h.write(
        &format!("cgroup/system.slice/docker-{ID}.scope/cpu.stat"),
        "usage_usec 5100000\n",
    );
    h.stat(900_200);
    let host = r.host_cpu().unwrap();
    let s = r.read(&c, host).unwrap();
    let pct = crate::runtime::types::cpu_percent_from(
        s.cpu_total_ns,
        first_cpu,
        host.system_ns,
        first_host.system_ns,
        f64::from(host.online_cpus),
    )
    .unwrap();
    assert!((pct - 10.0).abs() < 1e-9, "{pct}");
}

#[test]
fn a_process_outside_the_containers_cgroup_is_refused() {
    let h = v1_host();
    let r = h.reader();
    let e = r.locate(PID, OTHER).unwrap_err();
    assert!(
        e.contains("is not in container 9c0d2b4e6f8a's cgroup"),
        "{e}"
    );
    let e = r.locate(0, ID).unwrap_err();
    assert!(e.contains("no process"), "{e}");
    let e = r.locate(7, ID).unwrap_err();
    assert!(e.contains("cannot read") && e.contains("7/cgroup"), "{e}");
}

#[test]
fn a_cgroup_namespace_root_is_stripped_and_paths_outside_it_refused() {
    // The reader itself in a cgroup namespace: its mounts show the hierarchy from /docker.
    let h = Host::new();
    h.mounts(&[("/docker", "sys fs/cgroup", "cgroup2", "rw")]);
    h.write("proc/meminfo", MEMINFO).stat(1000);
    h.write(&format!("proc/{PID}/cgroup"), &format!("0::/docker/{ID}\n"));
    let r = h.reader();
    let c = r.locate(PID, ID).unwrap();
    assert_eq!(
        c.cpu,
        h.path(&format!("sys fs/cgroup/{ID}")),
        "space unescaped"
    );
    h.write(
        &format!("proc/{PID}/cgroup"),
        &format!("0::/dockerx/{ID}\n"),
    );
    let e = r.locate(PID, ID).unwrap_err();
    assert!(e.contains("outside the part of its hierarchy"), "{e}");
}

#[test]
fn a_file_that_cannot_be_read_is_named() {
    let h = v1_host();
    fs::remove_file(h.path(&format!("cgroup/memory/docker/{ID}/memory.stat"))).unwrap();
    let r = h.reader();
    let c = r.locate(PID, ID).unwrap();
    let e = r.read(&c, r.host_cpu().unwrap()).unwrap_err();
    assert!(
        e.starts_with("cannot read ") && e.contains("/memory.stat: "),
        "{e}"
    );
}

#[test]
fn no_cgroup_file_system_is_an_error() {
    let h = Host::new();
    h.mounts(&[]);
    assert_eq!(
        CgroupReader::discover_in(&h.path("proc")).unwrap_err(),
        "no cgroup file system is mounted"
    );
    let h = Host::new();
    h.mounts(&[("/", "cgroup/memory", "cgroup", "rw,memory")]);
    assert!(
        CgroupReader::discover_in(&h.path("proc"))
            .unwrap_err()
            .contains("cpuacct")
    );
}

#[test]
fn the_parsers_on_odd_input() {
    assert_eq!(parse::net_dev("only\nheaders\n"), None);
    assert_eq!(parse::net_dev("h\nh\n  eth0: x y\n"), None);
    assert_eq!(parse::proc_stat("intr 1\n"), None);
    assert_eq!(parse::proc_stat("cpu 1 2 3\n"), None, "too few fields");
    assert_eq!(parse::mem_total("MemTotal: 4 kB\n"), Some(4096));
    assert_eq!(parse::single_value("max\n"), Some(u64::MAX));
    assert_eq!(parse::single_value("12 \n"), Some(12));
    assert_eq!(parse::single_value("-1"), None);
    assert_eq!(parse::flat_keyed("a 1\nab 2\n", "ab"), Some(2));
    assert_eq!(parse::blkio_v1("Total 0\n"), None);
    assert_eq!(parse::io_stat_v2(""), (0, 0));
    assert_eq!(
        parse::proc_cgroups("0::/\n1:cpu,cpuacct:/a:b\n"),
        vec![
            (vec![], "/".to_string()),
            (
                vec!["cpu".to_string(), "cpuacct".to_string()],
                "/a:b".to_string()
            )
        ]
    );
}
