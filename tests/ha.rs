//! High availability: two real `tenantctl watch` processes on one database. Exactly one applies
//! (the leader); the other stands by and takes over within the lease time when the leader is
//! killed, and nothing is applied twice.

use crate::support::{Db, Env, Repo, inspect, wait_for};
use crate::watch::Watch;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Short, so a failover is quick to wait for; the default is 10 s.
const TTL: Duration = Duration::from_secs(5);

fn start(env: &Env) -> Watch {
    let mut args = vec![
        "--lease-ttl",
        "5s",
        "--interval",
        "1m",
        "--meter-interval",
        "3s",
    ];
    if let Some(url) = &env.db_url {
        args.extend(["--database-url", url.as_str()]);
    }
    Watch::start(&env.repo, &env.ns, &env.pool, &args, &[])
}

/// The database as rows of text, through sqlx's Any driver (both backends, one code path).
fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let pool = sqlx::AnyPool::connect(url).await.unwrap();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_all(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        r.try_get::<Option<String>, _>(i)
                            .ok()
                            .flatten()
                            .or_else(|| {
                                r.try_get::<Option<i64>, _>(i)
                                    .ok()
                                    .flatten()
                                    .map(|n| n.to_string())
                            })
                    })
                    .collect()
            })
            .collect()
    })
}

fn cell(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("NULL")
}

/// `revision status term` of every run, oldest first.
fn runs(env: &Env) -> Vec<String> {
    query(
        &env.url(),
        "SELECT revision, status, term FROM reconcile_runs ORDER BY id",
    )
    .iter()
    .map(|r| format!("{} {} {}", cell(&r[0]), cell(&r[1]), cell(&r[2])))
    .collect()
}

/// Every change event of containers and tenant rows as `kind address term`, oldest first.
fn changes(env: &Env) -> Vec<String> {
    query(
        &env.url(),
        "SELECT kind, message, term FROM events \
         WHERE kind LIKE 'container.%' OR kind LIKE 'network.%' OR kind LIKE 'volume.%' ORDER BY id",
    )
    .iter()
    .map(|r| format!("{} {} {}", cell(&r[0]), cell(&r[1]), cell(&r[2])))
    .collect()
}

fn status(env: &Env) -> Value {
    serde_json::from_str(&env.ok(&["status", "--output", "json"])).unwrap()
}

fn env_of(name: &str) -> String {
    inspect(name, "{{json .Config.Env}}")
}

fn running(name: &str) -> bool {
    std::process::Command::new("docker")
        .args([
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Running}}",
            name,
        ])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

fn two_watches_one_applies_and_the_standby_takes_over(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let active = ["acme", "globex", "umbrella", "hooli", "stark"].map(|s| env.container(s));
    let a = start(&env);
    let b = start(&env);
    let both = || format!("--- A ---\n{}--- B ---\n{}", a.output(), b.output());
    wait_for("the first apply", Duration::from_secs(180), both, || {
        let done = |w: &Watch| {
            w.output().contains("leading (term 1)") && w.output().contains("changes applied")
        };
        (done(&a) || done(&b)) && active.iter().all(|c| running(c))
    });
    let (mut leader, standby) = if a.output().contains("leading (term 1)") {
        (a, b)
    } else {
        (b, a)
    };
    let (leader_pid, standby_pid) = (leader.child.id(), standby.child.id());
    let both = || {
        format!(
            "--- leader ---\n{}--- standby ---\n{}",
            leader.output(),
            standby.output()
        )
    };
    // Exactly one leads; the other says who does, and applies nothing.
    wait_for(
        "the standby says who leads",
        Duration::from_secs(10),
        both,
        || standby.output().contains("standing by: leader is "),
    );
    let said = standby.output();
    assert!(
        said.contains(&format!(":{leader_pid}:")) && said.contains("(term 1)"),
        "{}",
        both()
    );
    assert!(
        !said.contains("leading") && !said.contains("applying"),
        "{}",
        both()
    );
    let head0 = env.repo.head();
    assert_eq!(runs(&env), [format!("{head0} succeeded 1")], "{}", both());
    let created = changes(&env);
    assert_eq!(
        created
            .iter()
            .filter(|c| c.starts_with("container.create "))
            .count(),
        6,
        "one container per tenant, suspended initech's too:\n{created:#?}"
    );

    // `status` names the leader, its term and lease, and the loop standing by.
    let s = status(&env);
    let r = &s["reconciler"];
    assert!(
        r["leader"]["holder"]
            .as_str()
            .is_some_and(|h| h.contains(&format!(":{leader_pid}:"))),
        "{r}"
    );
    assert_eq!(r["leader"]["term"], 1);
    assert_eq!(r["leader"]["live"], true);
    let left = r["leader"]["expires_in_ms"].as_i64().unwrap_or(0);
    assert!(left > 0 && left <= 5_000, "{r}");
    let standbys = r["standbys"].as_array().cloned().unwrap_or_default();
    assert_eq!(standbys.len(), 1, "{r}");
    assert!(
        standbys[0]
            .as_str()
            .is_some_and(|h| h.contains(&format!(":{standby_pid}:"))),
        "{r}"
    );
    let text = env.ok(&["status"]);
    assert!(
        text.contains("Reconciler: ")
            && text.contains(" leads (term 1; ")
            && text.contains("Standing by: "),
        "{text}"
    );

    // A commit is applied by the leader only.
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "LOG_LEVEL: info",
            "LOG_LEVEL: debug",
        )
        .commit("acme debug");
    let acme = env.container("acme");
    wait_for(
        "the leader applies the commit",
        Duration::from_secs(60),
        both,
        || running(&acme) && env_of(&acme).contains("LOG_LEVEL=debug"),
    );
    let head1 = env.repo.head();
    // The container runs the commit before the run ends (the site is told its keys and flags,
    // the edge its routes): the run is recorded before the leader is killed below.
    wait_for("the run recorded", Duration::from_secs(30), both, || {
        runs(&env).contains(&format!("{head1} succeeded 1"))
    });
    assert!(!standby.output().contains("applying"), "{}", both());

    // kill -9 the leader; commit at once. The standby takes over within the lease time and
    // applies the commit; nothing the dead leader did is done again.
    leader.child.kill().unwrap();
    let killed = Instant::now();
    leader.child.wait().unwrap();
    env.repo
        .edit(
            "tenants/us/globex.yaml",
            "domain: www.globex.example",
            "domain: www.globex.example\n  env: { LOG_LEVEL: debug }",
        )
        .commit("globex debug");
    let head2 = env.repo.head();
    let standby_out = || standby.output();
    wait_for(
        "the takeover",
        TTL + Duration::from_secs(5),
        standby_out,
        || {
            standby
                .output()
                .contains("leading (term 2): took over from ")
        },
    );
    let took = killed.elapsed();
    let globex = env.container("globex");
    wait_for(
        "the commit applied by the new leader",
        Duration::from_secs(60),
        standby_out,
        || running(&globex) && env_of(&globex).contains("LOG_LEVEL=debug"),
    );
    let applied = killed.elapsed();
    eprintln!("kill -9 → new leader: {took:?}; → commit applied: {applied:?}");
    assert!(
        took <= TTL + Duration::from_secs(2),
        "the takeover took {took:?} (lease {TTL:?}):\n{}",
        standby.output()
    );
    assert!(
        standby.output().contains(&format!(
            "took over from {}",
            said.split("standing by: leader is ")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("?")
        )),
        "{}",
        standby.output()
    );

    // One run per commit, each by the leader of its time; every change recorded once. The new
    // container answering comes before the apply ends (the old one still drains): wait for the
    // run to be recorded as ended, whatever its status.
    wait_for(
        "the run recorded as ended",
        Duration::from_secs(30),
        standby_out,
        || {
            let runs = runs(&env);
            runs.len() == 3 && !runs.iter().any(|r| r.contains(" running "))
        },
    );
    assert_eq!(
        runs(&env),
        [
            format!("{head0} succeeded 1"),
            format!("{head1} succeeded 1"),
            format!("{head2} succeeded 2"),
        ]
    );
    let all = changes(&env);
    let mut once = all
        .iter()
        .map(|c| c.rsplit_once(' ').map_or(c.as_str(), |(k, _)| k))
        .collect::<Vec<_>>();
    once.sort();
    let before = once.len();
    once.dedup();
    assert_eq!(once.len(), before, "a change was recorded twice:\n{all:#?}");
    assert!(
        all.contains(&format!("container.replace container.{acme} 1")),
        "{all:#?}"
    );
    assert!(
        all.contains(&format!("container.replace container.{globex} 2")),
        "{all:#?}"
    );

    // The dead leader is neither leader nor standby any more.
    let r = status(&env)["reconciler"].clone();
    assert!(
        r["leader"]["holder"]
            .as_str()
            .is_some_and(|h| h.contains(&format!(":{standby_pid}:"))),
        "{r}"
    );
    assert_eq!(r["leader"]["term"], 2);
    assert_eq!(r["standbys"], Value::Array(Vec::new()), "{r}");

    let mut standby = standby;
    standby.stop_cleanly();
}

fn a_deposed_leader_stops_and_resumes_only_in_a_new_term(db: Db) {
    let Some(env) = Env::new(Repo::example(), db) else {
        return;
    };
    let watch = start(&env);
    let out = || watch.output();
    wait_for("the first apply", Duration::from_secs(180), out, || {
        watch.output().contains("leading (term 1)") && watch.output().contains("changes applied")
    });
    // Deposed by force: a higher term for another holder (this host's pid 1, so SQLite's
    // one-host rule holds), with a long lease.
    let usurper = format!("{}:1:1:watch", hostname());
    let url = env.url();
    query(
        &url,
        &format!(
            "UPDATE leader SET term = term + 1, holder = '{usurper}', expires_at_ms = expires_at_ms + 3600000"
        ),
    );
    env.repo
        .edit(
            "tenants/us/acme.yaml",
            "LOG_LEVEL: info",
            "LOG_LEVEL: debug",
        )
        .commit("acme debug, made while deposed");
    let head = env.repo.head();
    // It notices at its next renewal (or its first fenced write) and applies nothing more.
    wait_for("the leader steps down", TTL, out, || {
        watch.output().contains("lost the leader lease (term 1)")
    });
    wait_for("it stands by", Duration::from_secs(5), out, || {
        watch
            .output()
            .contains(&format!("standing by: leader is {usurper} (term 2)"))
    });
    std::thread::sleep(Duration::from_secs(2));
    let acme = env.container("acme");
    assert!(!env_of(&acme).contains("LOG_LEVEL=debug"), "{}", out());
    assert!(
        !runs(&env).iter().any(|r| r.starts_with(&head)),
        "{:#?}",
        runs(&env)
    );
    assert!(
        !changes(&env).iter().any(|c| c.ends_with(" 2")),
        "nothing is written as the usurper's term"
    );

    // The usurper's lease lapses: the loop takes it back, in term 3, and applies the commit.
    query(&url, "UPDATE leader SET expires_at_ms = 0");
    wait_for("the loop leads again", Duration::from_secs(5), out, || {
        watch.output().contains(&format!(
            "leading (term 3): took over from {usurper} (term 2)"
        ))
    });
    wait_for("the commit applied", Duration::from_secs(60), out, || {
        running(&acme) && env_of(&acme).contains("LOG_LEVEL=debug")
    });
    // The run ends after the container (the site is told its keys and flags).
    wait_for("the run recorded", Duration::from_secs(30), out, || {
        runs(&env).last().is_some_and(|r| !r.contains(" running "))
    });
    let all = runs(&env);
    assert_eq!(all.last(), Some(&format!("{head} succeeded 3")), "{all:#?}");
    let mut watch = watch;
    watch.stop_cleanly();
}

/// A database that stalls every write past the lease's deadline (a lock held elsewhere) makes
/// the leader lose its fence while its own lease lives on (the renewal cut off at the deadline
/// still runs once the stall ends). It takes its own lease back at once, in a new term, rather
/// than standing by behind itself until the lease lapses.
fn a_loop_takes_its_own_lease_back_at_once_after_a_stall(db: Db) {
    use sqlx::Connection;
    let repo = Repo::example();
    std::fs::remove_dir_all(repo.path().join("tenants")).unwrap();
    repo.commit("plans and themes only");
    let Some(env) = Env::new(repo, db) else {
        return;
    };
    let watch = start(&env);
    let out = || watch.output();
    wait_for("the first pass", Duration::from_secs(60), out, || {
        watch.output().contains("leading (term 1)") && watch.output().contains("changes applied")
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut stall = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&env.url()).await.unwrap();
        let lock = match db {
            Db::Sqlite => "BEGIN IMMEDIATE",
            Db::Postgres => "BEGIN",
        };
        sqlx::query(lock).execute(&mut conn).await.unwrap();
        if let Db::Postgres = db {
            sqlx::query("LOCK TABLE leader IN EXCLUSIVE MODE")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        // As a renewal that committed but answered after the deadline leaves it: live for long.
        sqlx::query("UPDATE leader SET expires_at_ms = expires_at_ms + 60000")
            .execute(&mut conn)
            .await
            .unwrap();
        conn
    });
    wait_for("the fence lost", TTL + Duration::from_secs(3), out, || {
        watch.output().contains("lost the leader lease (term 1)")
    });
    rt.block_on(async {
        sqlx::query("COMMIT").execute(&mut stall).await.unwrap();
    });
    let waited = wait_for("the loop leads again", TTL * 3, out, || {
        watch.output().contains("leading (term 2)")
    });
    assert!(
        waited < Duration::from_millis(2500),
        "it waited {waited:?} behind its own lease:\n{}",
        out()
    );
    drop(stall);
    let mut watch = watch;
    watch.stop_cleanly();
}

on_both_databases!(
    two_watches_one_applies_and_the_standby_takes_over,
    a_deposed_leader_stops_and_resumes_only_in_a_new_term,
    a_loop_takes_its_own_lease_back_at_once_after_a_stall,
);

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A SQLite file serves one host: a loop (or an apply) finding another host's live row refuses,
/// naming the host and PostgreSQL as the way to share.
#[test]
fn a_sqlite_file_used_by_another_host_is_refused() {
    let Some(env) = Env::new(Repo::example(), Db::Sqlite) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = "elsewhere.invalid:4242:1:watch";
    rt.block_on(async {
        let store = tenantctl::store::Store::open(&env.url()).await.unwrap();
        assert!(
            store
                .try_lock(&format!("watch:{other}"), other, Duration::from_secs(3600))
                .await
                .unwrap()
        );
        store.close().await;
    });
    for args in [
        &["watch", "--lease-ttl", "5s"][..],
        &["apply", "--auto-approve"][..],
    ] {
        let out = env
            .cmd(args)
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("is in use by host `elsewhere.invalid` (elsewhere.invalid:4242:1:watch)")
                && err.contains("a SQLite file cannot be shared across hosts")
                && err.contains("use PostgreSQL: --database-url postgres://"),
            "{args:?}: {err}"
        );
    }
    assert!(
        crate::support::names("container", &env.ns).is_empty(),
        "nothing was applied"
    );
}
