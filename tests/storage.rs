//! Storage metering: the meter measures each tenant's data volume through the engine's
//! disk-usage API, stores it with the other samples, shows it in `usage`, `status` and `meter`,
//! and records `usage.threshold` events at 80 % and 100 % of the plan's storage. The real
//! binary, engine and both databases.

use crate::support::{Db, Env, Repo, docker, events, shell_site_image};

/// One tenant on a theme image with a shell (to write into its volume), its plan's storage 1Mi.
fn repo() -> Repo {
    let repo = Repo::example_with_tenants(&[("shop", "starter", "shelly")]);
    repo.write(
        "themes/shelly.yaml",
        &format!(
            "kind: Theme\nname: shelly\nspec:\n  displayName: Shelly\n  version: 1.0.0\n  image: {}\n  health: {{ path: /health, intervalSeconds: 2 }}\n",
            shell_site_image()
        ),
    )
    .edit("plans/starter.yaml", "storage: 5Gi", "storage: 1Mi")
    .commit("a theme with a shell; 1Mi of storage");
    repo
}

/// Writes `kib` KiB to /data/`file` in the tenant's container (the image has only a shell).
fn fill(container: &str, file: &str, kib: usize) {
    docker(&[
        "exec",
        container,
        "sh",
        "-c",
        &format!(
            "i=0; while [ $i -lt {kib} ]; do printf '%01024d' 0; i=$((i+1)); done > /data/{file}"
        ),
    ]);
}

fn usage_storage(env: &Env) -> serde_json::Value {
    let usage: serde_json::Value =
        serde_json::from_str(&env.ok(&["usage", "shop", "-o", "json"])).unwrap();
    usage["tenants"][0]["storage"].clone()
}

fn thresholds(env: &Env) -> Vec<String> {
    events(&env.url(), "shop")
        .into_iter()
        .filter(|e| e.kind == "usage.threshold" && e.message.starts_with("storage"))
        .map(|e| e.message)
        .collect()
}

fn the_data_volume_is_measured_and_its_thresholds_recorded(backend: Db) {
    let Some(env) = Env::new(repo(), backend) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("shop");
    let metered = env.ok(&["meter"]);
    assert!(metered.contains(" disk "), "{metered}");
    let storage = usage_storage(&env);
    assert_eq!(storage["limit_bytes"], 1 << 20, "{storage}");
    let small = storage["bytes"].as_i64().expect("measured");
    assert!(small < 512 * 1024, "{storage}");
    assert!(thresholds(&env).is_empty());

    // 850 KiB: over 80 % of 1Mi.
    fill(&name, "a.bin", 850);
    env.ok(&["meter"]);
    let storage = usage_storage(&env);
    let bytes = storage["bytes"].as_i64().unwrap();
    assert!(bytes >= 850 * 1024, "{storage}");
    let pct = storage["percent"].as_u64().unwrap();
    assert!((80..100).contains(&pct), "{storage}");
    assert_eq!(
        thresholds(&env),
        [format!("storage at {pct}% of 1Mi")],
        "one event at 80 %"
    );
    let text = env.ok(&["usage", "shop"]);
    assert!(text.contains(&format!("of 1.0Mi ({pct}%)")), "{text}");
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["tenants"][0]["storage_bytes"], bytes, "{status}");
    assert_eq!(status["tenants"][0]["storage_limit_bytes"], 1 << 20);
    let text = env.ok(&["status"]);
    assert!(
        text.contains(&format!("storage at {pct}% of 1.0Mi")),
        "{text}"
    );

    // Measured again at the same level: no second event; past 100 %: one more.
    env.ok(&["meter"]);
    assert_eq!(thresholds(&env).len(), 1);
    fill(&name, "b.bin", 300);
    env.ok(&["meter"]);
    let all = thresholds(&env);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter()
            .any(|m| m.starts_with("storage at 1") && m.ends_with("% of 1Mi")),
        "{all:?}"
    );
}

on_both_databases!(the_data_volume_is_measured_and_its_thresholds_recorded);

/// The meter sizes volumes from their directories on this host; the engine's disk-usage API is
/// the reference: on a volume with nested files, a hard link, a symbolic link and an empty file
/// both must say the same number of bytes.
#[test]
fn volume_sizes_read_from_the_directories_match_the_engines_disk_usage() {
    let Some(env) = Env::new(repo(), Db::Sqlite) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("shop");
    fill(&name, "a.bin", 37);
    // The image has no mkdir or ln: the rest is made in the volume's directory on this host
    // (where the engine keeps it; the tests run where the engine does).
    let volume = format!("{}-shop-data", env.ns);
    let dir = std::path::PathBuf::from(
        docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &volume]).trim(),
    );
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("sub/deeper/b.txt"), "hello").unwrap();
    std::fs::hard_link(dir.join("a.bin"), dir.join("sub/a-again.bin")).unwrap();
    std::os::unix::fs::symlink("../a.bin", dir.join("sub/link")).unwrap();
    std::fs::write(dir.join("empty"), "").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (read, engine) = rt.block_on(async {
        let engine = tenantctl::runtime::engine::Engine::connect_default(&env.ns)
            .await
            .unwrap();
        (
            engine.volume_sizes().await.unwrap(),
            engine.volume_sizes_from_engine().await.unwrap(),
        )
    });
    let bytes = read.get(&volume).copied();
    assert!(
        bytes.is_some_and(|b| b >= 37 * 1024 + 5),
        "{volume} in {read:?}"
    );
    assert_eq!(bytes, engine.get(&volume).copied(), "files {read:?}");
    assert_eq!(read.len(), 1, "only this namespace's volumes: {read:?}");
}
