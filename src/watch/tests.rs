//! The watch loop against the in-memory backend, a scratch git repository and a scratch SQLite
//! store: commits during a pass, self-heal on and off, invalid commits, and engine faults.

use super::*;
use crate::runtime::RuntimeError;
use crate::runtime::fake::{FakeBackend, Op, Times};
use crate::testing::{Lines, git, scratch_store, state_files};
use std::path::Path;
use std::process::Command;
use tokio::task::JoinHandle;

const NS: &str = "ns";

/// Engine events folded and their stream reconnected in tens of milliseconds.
const FAST_EVENTS: engine_events::Timing = engine_events::Timing {
    quiet: Duration::from_millis(30),
    most: Duration::from_millis(300),
    retry_first: Duration::from_millis(50),
    retry_most: Duration::from_millis(200),
    stable: Duration::from_secs(1),
};

/// Commits `files` (path, text) over what the repository has; returns the new revision's short id.
fn commit(dir: &Path, files: &[(String, String)], message: &str) -> String {
    for (path, text) in files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).expect("a directory");
        }
        std::fs::write(file, text).expect("a file");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", message]);
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .output()
        .expect("git runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A watch loop running in a task over a fake engine, until [`Running::stop`].
struct Running {
    repo: tempfile::TempDir,
    _db: tempfile::TempDir,
    store: Store,
    lines: Arc<Lines>,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

struct Setup {
    self_heal: bool,
    interval: Duration,
}

async fn start(fake: &Arc<FakeBackend>, setup: Setup, first: &[(&str, &str)]) -> Running {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    commit(repo.path(), &state_files(first), "first");
    start_on(fake, setup, repo).await
}

async fn start_on(fake: &Arc<FakeBackend>, setup: Setup, repo: tempfile::TempDir) -> Running {
    let db = tempfile::tempdir().expect("tempdir");
    let store = scratch_store(db.path()).await;
    let lines = Arc::new(Lines::default());
    let config = WatchConfig {
        repo: repo.path().to_path_buf(),
        reference: "HEAD".into(),
        interval: setup.interval,
        resync: crate::watch::DEFAULT_RESYNC,
        debounce: Duration::from_millis(50),
        self_heal: setup.self_heal,
        apply: ApplyConfig {
            namespace: NS.into(),
            revision: String::new(),
            parallelism: 4,
            attempts: 2,
            backoff: Duration::from_millis(10),
            health_timeout: Duration::from_secs(1),
            subnet_pool: "10.99.0.0/16".parse().expect("a subnet"),
            prune: false,
        },
        remote: None,
        meter_interval: None,
        log_sync_interval: None,
        log_retention: Duration::from_secs(90 * 86_400),
        lease_ttl: leader::DEFAULT_TTL,
        max_destroy: crate::reconcile::DestroyLimit::default(),
        keys_file: db.path().join("new-keys"),
    };
    let mut watcher = Watcher::new(config, fake.runtime(), store.clone(), lines.clone());
    watcher.event_timing = FAST_EVENTS;
    let metrics = watcher.metrics.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(watcher.run(async {
        let _ = stopped.await;
    }));
    Running {
        repo,
        _db: db,
        store,
        lines,
        metrics,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Waits (at most `secs`) until `what` holds; fails the test with every line said otherwise.
    async fn until(&self, secs: u64, what: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !what() {
            assert!(
                !self.task.is_finished(),
                "the loop ended: {:#?}",
                self.lines.all()
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within {secs}s; the loop said {:#?}",
                self.lines.all()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn passes(&self) -> u64 {
        self.counter("tenantctl_reconcile_passes_total")
    }

    fn event_passes(&self) -> u64 {
        self.counter("tenantctl_reconcile_event_passes_total")
    }

    fn counter(&self, name: &str) -> u64 {
        self.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `n` more passes have ended.
    async fn passes_more(&self, n: u64) {
        let target = self.passes() + n;
        self.until(10, || self.passes() >= target).await;
    }

    async fn stop(mut self) -> Vec<String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            other => panic!("the loop did not end cleanly: {other:?}"),
        }
        self.lines.all()
    }
}

/// A loop with a resync every hour (never, within a test) that has applied tenant `a` and
/// follows the engine's events.
async fn following_a(self_heal: bool) -> (Arc<FakeBackend>, Running) {
    let fake = FakeBackend::new(NS);
    let setup = Setup {
        self_heal,
        interval: Duration::from_secs(3600),
    };
    let watch = start(&fake, setup, &[("a", "A"), ("b", "B")]).await;
    watch
        .until(10, || {
            running(&fake, "ns-a") && running(&fake, "ns-b") && fake.event_followers() == 1
        })
        .await;
    // The start pass has ended.
    watch.until(10, || watch.passes() >= 1).await;
    (fake, watch)
}

/// An event about tenant `slug`'s container that changes nothing (as `docker kill -s HUP`).
fn harmless(slug: &str) -> crate::runtime::EngineEvent {
    crate::runtime::EngineEvent {
        object: crate::runtime::EventObject::Container,
        action: "kill".into(),
        name: format!("{NS}-{slug}"),
        tenant: Some(slug.into()),
    }
}

fn running(fake: &FakeBackend, name: &str) -> bool {
    fake.container(name).is_some_and(|c| c.state.is_running())
}

/// The calls after the `from`-th that change something.
fn changes_since(fake: &FakeBackend, from: usize) -> Vec<String> {
    fake.calls()[from..]
        .iter()
        .filter(|c| c.op != Op::Observe && c.op != Op::Events)
        .map(ToString::to_string)
        .collect()
}

/// A loop with a resync every 100 ms that has applied tenant `a`.
async fn running_a(self_heal: bool) -> (Arc<FakeBackend>, Running) {
    let fake = FakeBackend::new(NS);
    let setup = Setup {
        self_heal,
        interval: Duration::from_millis(100),
    };
    let watch = start(&fake, setup, &[("a", "A")]).await;
    watch.until(10, || running(&fake, "ns-a")).await;
    (fake, watch)
}

#[tokio::test]
async fn a_commit_made_during_a_pass_is_applied_by_the_next_pass() {
    let fake = FakeBackend::new(NS);
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    let first = commit(repo.path(), &state_files(&[("a", "A")]), "a");
    // While the first pass creates a's container, someone commits tenant b.
    let dir = repo.path().to_path_buf();
    let second = Arc::new(std::sync::Mutex::new(String::new()));
    let said = second.clone();
    fake.on(Some("a"), Op::Create, Times::Once, move || {
        let short = commit(&dir, &state_files(&[("a", "A"), ("b", "B")]), "b");
        *said.lock().unwrap_or_else(|e| e.into_inner()) = short;
    });
    // No resync within the test: only the commit can start the second pass.
    let setup = Setup {
        self_heal: false,
        interval: Duration::from_secs(3600),
    };
    let watch = start_on(&fake, setup, repo).await;

    watch.until(10, || running(&fake, "ns-b")).await;

    assert!(running(&fake, "ns-a"));
    let second = second.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let lines = watch.stop().await;
    let applying: Vec<&String> = lines.iter().filter(|l| l.contains(": applying")).collect();
    assert_eq!(
        applying,
        [
            &format!("revision {first}: applying 6 changes"),
            &format!("revision {second}: applying 4 changes")
        ],
        "{lines:#?}"
    );
}

#[tokio::test]
async fn self_heal_recreates_a_container_removed_outside_git() {
    let (fake, watch) = running_a(true).await;
    let before = fake.container("ns-a").map(|c| c.id);
    let from = fake.calls().len();

    assert!(fake.remove_outside("ns-a"));
    watch.until(10, || running(&fake, "ns-a")).await;

    assert_ne!(fake.container("ns-a").map(|c| c.id), before);
    let site_image = format!(
        "ensure-image {}",
        crate::runtime::types::builtin_site_image()
    );
    assert_eq!(
        changes_since(&fake, from),
        [&site_image, "create ns-a", "start ns-a", "wait-ready ns-a"]
    );
    let lines = watch.stop().await;
    assert!(
        lines.contains(&"drift: applying 1 changes".to_string()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn without_self_heal_drift_is_reported_and_left_alone() {
    let (fake, watch) = running_a(false).await;
    let from = fake.calls().len();

    assert!(fake.remove_outside("ns-a"));
    watch
        .until(10, || !watch.lines.with("out of sync").is_empty())
        .await;
    watch.passes_more(2).await;

    assert_eq!(fake.container("ns-a"), None);
    assert_eq!(changes_since(&fake, from), Vec::<String>::new());
    let lines = watch.stop().await;
    assert!(
        lines.contains(&"out of sync: 1 changes outside git (self-heal is off; run apply or start watch with --self-heal)".to_string()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn an_invalid_commit_is_reported_once_and_changes_nothing() {
    let (fake, watch) = running_a(true).await;
    let from = fake.calls().len();

    let broken = [(
        "tenants/a.yaml".to_string(),
        "kind: Tenant\nname: a\nspec:\n  displayName: A2\n  owner: a@a.example\n  plan: missing\n  theme: t\n".to_string(),
    )];
    let short = commit(watch.repo.path(), &broken, "a names a missing plan");
    watch
        .until(10, || !watch.lines.with("is invalid").is_empty())
        .await;
    watch.passes_more(3).await;

    assert_eq!(changes_since(&fake, from), Vec::<String>::new());
    assert!(running(&fake, "ns-a"));
    let invalid: Vec<String> = watch
        .store
        .events(None, 100)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == "revision.invalid")
        .map(|e| e.message)
        .collect();
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    let lines = watch.stop().await;
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("is invalid"))
            .collect::<Vec<_>>(),
        [&format!(
            "revision {short} is invalid; the last applied state keeps running:"
        )]
    );
}

#[tokio::test]
async fn an_engine_fault_is_retried_with_backoff_and_the_loop_goes_on() {
    let fake = FakeBackend::new(NS);
    fake.fail(None, Op::Observe, Times::N(2), || {
        RuntimeError::Unreachable {
            target: "unix:///var/run/docker.sock".into(),
            reason: "connection refused".into(),
        }
    });
    let setup = Setup {
        self_heal: false,
        interval: Duration::from_secs(60),
    };
    let watch = start(&fake, setup, &[("a", "A")]).await;

    watch.until(15, || running(&fake, "ns-a")).await;

    let lines = watch.stop().await;
    let delays: Vec<u64> = lines
        .iter()
        .filter(|l| l.starts_with("pass failed (cannot reach the Docker engine"))
        .filter_map(|l| {
            l.rsplit_once("retrying in ")?
                .1
                .strip_suffix('s')?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(delays.len(), 2, "{lines:#?}");
    assert!(delays[0] >= 1 && delays[1] > delays[0], "{delays:?}");
}

#[tokio::test]
async fn a_removed_container_is_healed_on_its_event_not_at_the_resync() {
    let (fake, watch) = following_a(true).await;
    let before = fake.container("ns-a").map(|c| c.id);

    assert!(fake.remove_outside("ns-a"));
    watch.until(5, || running(&fake, "ns-a")).await;

    assert_ne!(fake.container("ns-a").map(|c| c.id), before);
    assert_eq!(watch.event_passes(), 1);
    let lines = watch.stop().await;
    assert!(
        lines.contains(&"engine event a: container destroy (ns-a): reconciling now".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines.contains(&"drift: applying 1 changes".to_string()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn without_self_heal_an_event_reports_the_drift_at_once() {
    let (fake, watch) = following_a(false).await;
    let from = fake.calls().len();

    assert!(fake.remove_outside("ns-a"));
    watch
        .until(5, || !watch.lines.with("out of sync").is_empty())
        .await;

    assert_eq!(fake.container("ns-a"), None);
    assert_eq!(changes_since(&fake, from), Vec::<String>::new());
    let lines = watch.stop().await;
    let said: Vec<&String> = lines
        .iter()
        .skip_while(|l| !l.starts_with("engine event a: container destroy"))
        .collect();
    assert_eq!(
        said.get(1).map(|l| l.as_str()),
        Some(
            "out of sync: 1 changes outside git (self-heal is off; run apply or start watch with --self-heal)"
        ),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_burst_of_events_makes_one_pass() {
    let (fake, watch) = following_a(true).await;
    let (passes, from) = (watch.passes(), fake.calls().len());

    for _ in 0..20 {
        fake.emit(harmless("a"));
    }
    watch.passes_more(1).await;
    // Nothing else comes: no second pass.
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(watch.passes(), passes + 1);
    assert_eq!(watch.event_passes(), 1);
    assert_eq!(changes_since(&fake, from), Vec::<String>::new());
    let lines = watch.stop().await;
    assert!(
        lines.contains(
            &"engine event a: container kill (ns-a) and 19 more: reconciling now".to_string()
        ),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn events_during_a_pass_make_at_most_one_more_pass() {
    let (fake, watch) = following_a(true).await;
    // While the pass that heals a creates its container, the engine reports a burst of events
    // about b (and the fake reports its own steps too).
    let events = fake.clone();
    fake.on(Some("a"), Op::Create, Times::Once, move || {
        for _ in 0..10 {
            events.emit(harmless("b"));
        }
    });
    fake.delay(
        Some("a"),
        Op::Start,
        Times::Once,
        Duration::from_millis(200),
    );
    let passes = watch.passes();

    assert!(fake.remove_outside("ns-a"));
    watch.until(5, || running(&fake, "ns-a")).await;
    watch.until(5, || watch.passes() >= passes + 2).await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    assert_eq!(watch.passes(), passes + 2, "{:#?}", watch.lines.all());
    assert_eq!(watch.event_passes(), 2);
    let lines = watch.stop().await;
    let causes: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("reconciling now"))
        .collect();
    assert_eq!(
        causes,
        [
            "engine event a: container destroy (ns-a): reconciling now",
            "engine event b: container kill (ns-b) and 9 more: reconciling now"
        ],
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_lost_stream_is_followed_again_with_backoff_then_a_full_pass() {
    let (fake, watch) = following_a(true).await;
    let subscriptions = || {
        fake.calls()
            .into_iter()
            .filter(|c| c.op == Op::Events)
            .map(|c| c.at)
            .collect::<Vec<_>>()
    };
    assert_eq!(subscriptions().len(), 1);
    // The engine restarts: the stream ends, and the next four subscriptions are refused.
    fake.fail(None, Op::Events, Times::N(4), || {
        RuntimeError::Unreachable {
            target: "the engine's event stream".into(),
            reason: "connection refused".into(),
        }
    });
    let passes = watch.passes();
    fake.drop_events();

    watch.until(5, || fake.event_followers() == 1).await;
    watch.until(5, || watch.passes() > passes).await;

    let at = subscriptions();
    assert_eq!(at.len(), 6, "one stream, four refusals, one stream");
    let gaps: Vec<Duration> = at.windows(2).skip(1).map(|w| w[1] - w[0]).collect();
    // After the lost stream: 50 ms, then between the refused attempts 100, 200, 200 (capped),
    // 200 ms; each gap at least that.
    for (gap, least) in gaps.iter().zip([100, 200, 200, 200]) {
        assert!(*gap >= Duration::from_millis(least), "{gaps:?}");
    }
    assert_eq!(watch.event_passes(), 1);
    // Followed again: a removal is healed on its event.
    assert!(fake.remove_outside("ns-b"));
    watch.until(5, || running(&fake, "ns-b")).await;
    let lines = watch.stop().await;
    let said: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("engine events"))
        .collect();
    assert_eq!(
        said.len(),
        3,
        "one line each: lost, followed again, the pass; {lines:#?}"
    );
    assert!(
        said[0].starts_with("engine events: lost (the engine closed the stream); reconnecting"),
        "{said:#?}"
    );
    assert!(
        said[1].starts_with("engine events: following again after "),
        "{said:#?}"
    );
    assert!(
        said[2].starts_with("engine events followed again after ")
            && said[2].ends_with(": reconciling now"),
        "{said:#?}"
    );
}

#[tokio::test]
async fn only_the_leader_follows_the_engine_events() {
    let (fake, leader) = following_a(true).await;
    // A second loop on the same database stands by (a dashboard's loop: another holder).
    let db = leader._db.path().to_path_buf();
    let store = scratch_store(&db).await;
    let lines = Arc::new(Lines::default());
    let config = WatchConfig {
        repo: leader.repo.path().to_path_buf(),
        reference: "HEAD".into(),
        interval: Duration::from_secs(3600),
        resync: crate::watch::DEFAULT_RESYNC,
        debounce: Duration::from_millis(50),
        self_heal: true,
        apply: ApplyConfig {
            namespace: NS.into(),
            revision: String::new(),
            parallelism: 4,
            attempts: 2,
            backoff: Duration::from_millis(10),
            health_timeout: Duration::from_secs(1),
            subnet_pool: "10.99.0.0/16".parse().expect("a subnet"),
            prune: false,
        },
        remote: None,
        meter_interval: None,
        log_sync_interval: None,
        log_retention: Duration::from_secs(90 * 86_400),
        lease_ttl: leader::DEFAULT_TTL,
        max_destroy: crate::reconcile::DestroyLimit::default(),
        keys_file: db.join("new-keys"),
    };
    let (_asks, demands) = mpsc::channel(1);
    let mut standby =
        Watcher::new(config, fake.runtime(), store, lines.clone()).with_demands(demands);
    standby.event_timing = FAST_EVENTS;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(standby.run(async {
        let _ = stopped.await;
    }));
    leader
        .until(10, || !lines.with("standing by: leader is").is_empty())
        .await;

    assert_eq!(fake.event_followers(), 1, "the standby follows nothing");
    let passes = leader.passes();
    fake.emit(harmless("a"));
    leader.passes_more(1).await;
    assert_eq!(leader.passes(), passes + 1);

    let _ = stop.send(());
    let ended = tokio::time::timeout(Duration::from_secs(10), task).await;
    assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    assert!(
        lines.all().iter().all(|l| !l.contains("engine event")),
        "{:#?}",
        lines.all()
    );
    leader.stop().await;
}

#[tokio::test]
async fn drift_named_by_an_event_is_seen_by_reading_its_tenant_alone() {
    let (fake, watch) = following_a(false).await;
    // The start pass listed everything once; its own changes are read again by the next pass.
    assert_eq!(watch.counter("tenantctl_observe_full_listings_total"), 1);
    fake.emit(harmless("b"));
    watch.passes_more(1).await;
    let from = fake.calls().len();

    assert!(fake.remove_outside("ns-a"));
    watch
        .until(5, || !watch.lines.with("out of sync").is_empty())
        .await;

    // Only `a` was read again: no listing of the namespace.
    let observed: Vec<Option<String>> = fake.calls()[from..]
        .iter()
        .filter(|c| c.op == Op::Observe)
        .map(|c| c.tenant.clone())
        .collect();
    assert_eq!(observed, [Some("a".to_string())]);
    assert_eq!(watch.counter("tenantctl_observe_full_listings_total"), 1);
    assert!(watch.counter("tenantctl_observe_tenant_rereads_total") >= 3);
    let lines = watch.stop().await;
    assert!(
        lines.contains(&"out of sync: 1 changes outside git (self-heal is off; run apply or start watch with --self-heal)".to_string()),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_lost_stream_lists_everything_again() {
    let (fake, watch) = following_a(false).await;
    assert_eq!(watch.counter("tenantctl_observe_full_listings_total"), 1);
    let passes = watch.passes();
    fake.drop_events();
    watch.until(5, || fake.event_followers() == 1).await;
    watch.until(5, || watch.passes() > passes).await;
    assert_eq!(watch.counter("tenantctl_observe_full_listings_total"), 2);
    watch.stop().await;
}

/// A pass that follows no change of the database uses the rows it kept; a row changed by hand
/// (as the SaaS app or an operator would) is read by the next pass and healed.
#[tokio::test]
async fn unchanged_rows_are_kept_and_a_row_changed_by_hand_is_read_again() {
    let (fake, watch) = following_a(true).await;
    let reads = || watch.counter("tenantctl_observe_row_reads_total");
    // An event pass, ended.
    let event_pass = |slug: &'static str| {
        let fake = fake.clone();
        let watch = &watch;
        async move {
            let before = watch.passes();
            fake.emit(harmless(slug));
            watch.until(5, || watch.passes() > before).await;
        }
    };
    // The start pass read the rows, then wrote them: the next pass reads them again.
    event_pass("a").await;
    let after_apply = reads();
    assert_eq!(after_apply, 2, "{:#?}", watch.lines.all());
    // Nothing written since: two more passes use the rows kept.
    event_pass("a").await;
    event_pass("b").await;
    assert_eq!(reads(), after_apply, "{:#?}", watch.lines.all());

    // By hand: a's owner changed in the database, outside git.
    let mut row = watch.store.observe().await.expect("rows").tenants["a"].clone();
    let owner = row.owner.clone();
    row.owner = "someone@else.example".into();
    watch.store.upsert_tenant(&row).await.expect("a write");
    event_pass("a").await;
    assert!(
        !watch.lines.with("drift: applying 1 changes").is_empty(),
        "{:#?}",
        watch.lines.all()
    );
    assert_eq!(reads(), after_apply + 1, "{:#?}", watch.lines.all());
    let healed = watch.store.observe().await.expect("rows").tenants["a"]
        .owner
        .clone();
    assert_eq!(healed, owner);
    watch.stop().await;
}
