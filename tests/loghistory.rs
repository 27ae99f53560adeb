//! Log history: `tenantctl logs sync` and `watch` copy each tenant container's output into the
//! database, each line once however often it is synced, across a container restart, and after
//! the container is gone; `tenantctl logs` shows history and live lines as one. The real
//! binary, engine and both databases.

use crate::support::{
    Db, Env, Repo, collect_output, docker, interrupt_follow, shell_site_image, wait_for,
    wait_for_text,
};
use crate::watch::Watch;
use std::time::Duration;

/// An image theme whose image has a shell, so a test can write to the site's stdout/stderr.
fn repo() -> Repo {
    let repo = Repo::example_with_tenants(&[("shop", "starter", "shelly")]);
    repo.write(
        "themes/shelly.yaml",
        &format!(
            "kind: Theme\nname: shelly\nspec:\n  displayName: Shelly\n  version: 1.0.0\n  image: {}\n  health: {{ path: /health, intervalSeconds: 2 }}\n",
            shell_site_image()
        ),
    )
    .commit("a theme with a shell");
    repo
}

/// Writes `n` lines `<tag>-<i>` to the container's stdout, as its main process would; with
/// `stderr`, every fifth also to stderr as `<tag>-err-<i>` (the engine stamps the two streams
/// as it reads them, so their lines may interleave in time).
fn emit(container: &str, tag: &str, n: usize, stderr: bool) {
    let err = if stderr {
        format!("if [ $((i % 5)) -eq 0 ]; then echo {tag}-err-$i > /proc/1/fd/2; fi; ")
    } else {
        String::new()
    };
    let script = format!(
        "i=0; while [ $i -lt {n} ]; do echo {tag}-$i > /proc/1/fd/1; {err}i=$((i+1)); done"
    );
    docker(&["exec", container, "sh", "-c", &script]);
}

/// Every stored line of `slug`, oldest first, through tenantctl's own store.
fn stored(env: &Env, slug: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = tenantctl::store::Store::open(&env.url()).await.unwrap();
        let rows = store.log_lines(slug, 0, None).await.unwrap();
        store.close().await;
        rows.into_iter().map(|r| r.line).collect()
    })
}

/// Each of `<tag>-<i>` for i < n (and, with `stderr`, `<tag>-err-<i>` for every fifth) is in
/// `lines` exactly once.
fn assert_each_once(lines: &[String], tag: &str, n: usize, stderr: bool, what: &str) {
    for i in 0..n {
        let mut wanted = vec![format!("{tag}-{i}")];
        if stderr && i % 5 == 0 {
            wanted.push(format!("{tag}-err-{i}"));
        }
        for want in wanted {
            let count = lines.iter().filter(|l| **l == want).count();
            assert_eq!(count, 1, "{want} in {what}: {count} times");
        }
    }
}

fn sync(env: &Env) -> String {
    env.ok(&["logs", "sync"])
}

fn log_history_keeps_each_line_once_across_syncs_restarts_and_removal(backend: Db) {
    let Some(env) = Env::new(repo(), backend) else {
        return;
    };
    env.apply_ok(&[]);
    let name = env.container("shop");
    emit(&name, "first", 300, true);

    // Synced twice: the second stores nothing new.
    let once = sync(&env);
    assert!(once.contains("from 1 container"), "{once}");
    let after_one = stored(&env, "shop");
    assert_each_once(&after_one, "first", 300, true, "the history after one sync");
    let twice = sync(&env);
    assert!(twice.contains(": 0 new,"), "{twice}");
    assert_eq!(
        stored(&env, "shop"),
        after_one,
        "a second sync changed nothing"
    );

    // A restart: the engine's log still holds the old lines, read again by the next sync.
    docker(&["restart", "-t", "1", &name]);
    emit(&name, "second", 200, true);
    sync(&env);
    sync(&env);
    let lines = stored(&env, "shop");
    assert_each_once(&lines, "first", 300, true, "the history after a restart");
    assert_each_once(&lines, "second", 200, true, "the history after a restart");

    // `logs` shows the history and the live lines as one, each line once.
    emit(&name, "live", 20, false);
    let shown = env.ok(&["logs", "shop", "--tail", "all"]);
    let shown: Vec<String> = shown.lines().map(str::to_string).collect();
    assert_each_once(&shown, "first", 300, true, "logs --tail all");
    assert_each_once(&shown, "second", 200, true, "logs --tail all");
    assert_each_once(
        &shown,
        "live",
        20,
        false,
        "logs --tail all (not synced yet)",
    );
    let last = env.ok(&["logs", "shop", "--tail", "3"]);
    assert_eq!(last.lines().count(), 3, "{last}");
    assert!(last.ends_with("live-19\n"), "{last}");

    // -f goes on with new lines, none repeated.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tenantctl"));
    child
        .current_dir(env.repo.path())
        .args(env.args())
        .args(["logs", "shop", "--tail", "2", "-f"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = child.spawn().unwrap();
    let seen = collect_output(child.stdout.take().unwrap());
    assert!(wait_for_text(&seen, "live-19", Duration::from_secs(20)));
    emit(&name, "followed", 5, false);
    assert!(
        wait_for_text(&seen, "followed-4", Duration::from_secs(20)),
        "{}",
        seen.lock().unwrap()
    );
    interrupt_follow(child, "logs -f");
    let followed = seen.lock().unwrap().clone();
    let followed: Vec<String> = followed.lines().map(str::to_string).collect();
    assert_each_once(&followed, "followed", 5, false, "logs -f");
    assert_eq!(followed.iter().filter(|l| *l == "live-19").count(), 1);

    // The tenant is cancelled: its container goes, its history stays and `logs` shows it.
    sync(&env);
    env.repo.remove("tenants/shop.yaml").commit("cancel shop");
    env.apply_ok(&["--allow-destroy"]);
    assert!(
        docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")])
            .trim()
            .is_empty()
    );
    let gone = sync(&env);
    assert!(gone.contains("from 0 containers"), "{gone}");
    let lines = stored(&env, "shop");
    assert_each_once(
        &lines,
        "first",
        300,
        true,
        "the history of a cancelled tenant",
    );
    assert_each_once(
        &lines,
        "second",
        200,
        true,
        "the history of a cancelled tenant",
    );
    assert_each_once(
        &lines,
        "live",
        20,
        false,
        "the history of a cancelled tenant",
    );
    assert_each_once(
        &lines,
        "followed",
        5,
        false,
        "the history of a cancelled tenant",
    );
    let shown = env.ok(&["logs", "shop", "--tail", "all"]);
    let shown: Vec<String> = shown.lines().map(str::to_string).collect();
    assert_each_once(&shown, "first", 300, true, "logs of a cancelled tenant");
    assert_each_once(&shown, "followed", 5, false, "logs of a cancelled tenant");

    // Retention: lines older than it are deleted.
    std::thread::sleep(Duration::from_secs(2));
    let pruned = env.ok(&["logs", "sync", "--log-retention", "1s"]);
    assert!(
        pruned.contains(&format!("{} older than 1s deleted", lines.len())),
        "{pruned}"
    );
    assert!(stored(&env, "shop").is_empty());
}

on_both_databases!(log_history_keeps_each_line_once_across_syncs_restarts_and_removal);

/// `watch` copies new lines beside its loop, and says nothing of it when all is well.
fn watch_keeps_the_log_history(backend: Db) {
    let Some(env) = Env::new(repo(), backend) else {
        return;
    };
    env.apply_ok(&[]);
    let mut args = vec![
        "--interval",
        "10m",
        "--meter-interval",
        "0s",
        "--log-sync-interval",
        "1s",
    ];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    let mut watch = Watch::start(&env.repo, &env.ns, &env.pool, &args, &[]);
    emit(&env.container("shop"), "watched", 50, true);
    wait_for(
        "watch to store the lines",
        Duration::from_secs(30),
        || watch.output(),
        || stored(&env, "shop").iter().any(|l| l == "watched-49"),
    );
    // A few more syncs go by: still once each.
    std::thread::sleep(Duration::from_secs(3));
    watch.stop_cleanly();
    assert_each_once(
        &stored(&env, "shop"),
        "watched",
        50,
        true,
        "what watch stored",
    );
    assert!(
        !watch.output().contains("log history sync failed"),
        "{}",
        watch.output()
    );
}

on_both_databases!(watch_keeps_the_log_history);
