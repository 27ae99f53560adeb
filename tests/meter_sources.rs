//! Where the meter reads container counters: each container's cgroup files (found through the
//! engine's process id for it) against the engine's stats endpoint, on a real running tenant;
//! the fallback to the engine when the files cannot be read; and `tenantctl meter` saying which
//! source it used.

use crate::support::{Db, Env, Repo, http};
use std::time::Duration;
use tenantctl::runtime::{
    ContainerStats, ObservedContainer, ReadFrom, Runtime, StatsMode, StatsSource,
};

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// One reading of `c` from `source`.
async fn read(
    runtime: &Runtime,
    c: &ObservedContainer,
    mode: StatsMode,
    source: StatsSource,
) -> Result<ContainerStats, String> {
    let mut out = runtime
        .stats_of(std::slice::from_ref(c), mode, source)
        .await;
    assert_eq!(out.len(), 1);
    out.pop().unwrap().1.map_err(|e| e.to_string())
}

/// Within `pct` percent of each other.
fn close(a: u64, b: u64, pct: f64) -> bool {
    let (a, b) = (a as f64, b as f64);
    (a - b).abs() <= a.max(b) * pct / 100.0
}

#[test]
fn the_cgroup_files_and_the_stats_endpoint_agree_on_a_running_tenant() {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[("acme", "professional", "modern")]),
        Db::Sqlite,
    ) else {
        return;
    };
    env.apply_ok(&[]);
    let site = env.site("acme");
    block_on(async {
        let runtime = Runtime::connect(&env.ns).await.unwrap();
        let observed = runtime.observe().await.unwrap();
        let acme = observed
            .containers
            .iter()
            .find(|c| c.name == env.container("acme"))
            .expect("acme's container")
            .clone();
        assert!(
            acme.pid.is_some(),
            "a running container's process is observed"
        );

        // The engine's one-shot reading and the files', taken one right after the other.
        let engine = read(&runtime, &acme, StatsMode::OneShot, StatsSource::Engine)
            .await
            .unwrap();
        let files = read(&runtime, &acme, StatsMode::OneShot, StatsSource::Cgroup)
            .await
            .unwrap();
        assert_eq!(engine.read_from, ReadFrom::Engine);
        assert_eq!(files.read_from, ReadFrom::Cgroup);
        assert_eq!(files.fallback, None);
        assert!(files.memory_bytes > 0, "{files:?}");
        assert!(
            close(engine.memory_bytes, files.memory_bytes, 3.0),
            "memory: engine {} B, cgroup files {} B",
            engine.memory_bytes,
            files.memory_bytes
        );
        // The plan's 512Mi, both ways.
        assert_eq!(files.memory_limit_bytes, 512 << 20);
        assert_eq!(engine.memory_limit_bytes, files.memory_limit_bytes);
        assert_eq!(engine.online_cpus, files.online_cpus);
        // Cumulative counters read later are never smaller, and not far off.
        assert!(
            files.cpu_total_ns >= engine.cpu_total_ns,
            "{engine:?} {files:?}"
        );
        assert!(
            files.net_rx_bytes >= engine.net_rx_bytes,
            "{engine:?} {files:?}"
        );
        assert!(
            files.net_tx_bytes >= engine.net_tx_bytes,
            "{engine:?} {files:?}"
        );
        assert!(files.net_rx_bytes - engine.net_rx_bytes < 64 << 10);
        assert!(
            close(
                engine.system_cpu_ns.unwrap(),
                files.system_cpu_ns.unwrap(),
                1.0
            ),
            "host CPU time: {engine:?} {files:?}"
        );

        // The site serves some requests: its CPU time and traffic move forward.
        for _ in 0..20 {
            assert_eq!(http("GET", &format!("{site}/health"), &[]).0, 200);
        }
        let later = read(&runtime, &acme, StatsMode::TwoReads, StatsSource::Cgroup)
            .await
            .unwrap();
        assert!(
            later.cpu_total_ns > files.cpu_total_ns,
            "{files:?} {later:?}"
        );
        assert!(
            later.net_rx_bytes > files.net_rx_bytes,
            "{files:?} {later:?}"
        );
        assert!(
            later.net_tx_bytes > files.net_tx_bytes,
            "{files:?} {later:?}"
        );
        // Two readings a second apart give a percent of one CPU, as the engine's two reads do.
        let cpu = later
            .cpu_percent
            .expect("a two-read pass has a CPU percent");
        assert!((0.0..=200.0).contains(&cpu), "{cpu}");

        // A process that is not the container's (here: the host's init) is refused: `auto`
        // asks the engine instead and says why, `cgroup` does not sample it.
        let wrong = ObservedContainer {
            pid: Some(1),
            ..acme.clone()
        };
        let fell_back = read(&runtime, &wrong, StatsMode::OneShot, StatsSource::Auto)
            .await
            .unwrap();
        assert_eq!(fell_back.read_from, ReadFrom::Engine);
        let why = fell_back.fallback.expect("the reason is kept");
        assert!(why.contains("process 1 is not in container"), "{why}");
        assert!(fell_back.memory_bytes > 0);
        let refused = read(&runtime, &wrong, StatsMode::OneShot, StatsSource::Cgroup)
            .await
            .unwrap_err();
        assert!(
            refused.contains("cannot read container") && refused.contains("--stats-source auto"),
            "{refused}"
        );
        // Without a known process the engine is asked for it (swarm tasks are read this way).
        let unknown = ObservedContainer {
            pid: None,
            ..acme.clone()
        };
        let asked = read(&runtime, &unknown, StatsMode::OneShot, StatsSource::Auto)
            .await
            .unwrap();
        assert_eq!(asked.read_from, ReadFrom::Cgroup);
    });
}

#[test]
fn meter_says_where_it_read_each_tenant() {
    let Some(env) = Env::new(
        Repo::example_with_tenants(&[
            ("acme", "professional", "modern"),
            ("hooli", "starter", "classic"),
        ]),
        Db::Sqlite,
    ) else {
        return;
    };
    env.apply_ok(&[]);
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["meter", "--output", "json"];
        all.extend(args);
        serde_json::from_str(&env.ok(&all)).unwrap()
    };
    let auto = json(&[]);
    assert_eq!(auto["read_from"]["acme"], "cgroup", "{auto}");
    assert_eq!(auto["read_from"]["hooli"], "cgroup", "{auto}");
    assert!(auto.get("fallbacks").is_none(), "{auto}");
    assert_eq!(auto["samples"].as_array().unwrap().len(), 2);
    for s in auto["samples"].as_array().unwrap() {
        assert!(s["memory_bytes"].as_i64().unwrap() > 0, "{s}");
        assert!(s["cpu_percent"].is_number(), "a two-read pass: {s}");
    }
    let engine = json(&["--stats-source", "engine"]);
    assert_eq!(engine["read_from"]["acme"], "engine", "{engine}");
    assert_eq!(engine["samples"].as_array().unwrap().len(), 2);
    for s in engine["samples"].as_array().unwrap() {
        assert!(s["cpu_percent"].is_number(), "{s}");
    }
    // The flag's variable, like every flag's.
    let out = env
        .cmd(&["meter"])
        .env("TENANTCTL_STATS_SOURCE", "cgroup")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Stored 2 samples"), "{text}");
    assert!(
        text.contains("Counters read from the cgroup files (2 tenants)."),
        "{text}"
    );
    let text = env.ok(&["meter", "--stats-source", "engine"]);
    assert!(
        text.contains("Counters read from the engine's stats endpoint (2 tenants)."),
        "{text}"
    );
}
