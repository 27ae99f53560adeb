//! The dashboard's background side: every call to Docker, git and the database happens here, in
//! tasks the render loop never waits on. They talk to the UI only through [`Update`]s.
//!
//! - The poller observes everything every `refresh` (and at once when asked, or when the loop
//!   reports progress) and sends a whole [`Snapshot`]; it keeps the desired state of the last
//!   commit (re-read only when the ref moves) and a ring of live usage readings per tenant.
//! - The detail task rebuilds the [`Detail`] of the tenant shown whenever it changes or a new
//!   observation arrives.
//! - One log task follows the shown tenant's container; lines reach the UI in batches.
//! - Actions run in their own tasks and answer with [`Update::ActionDone`].
//! - With `config.watch`, the reconcile loop ([`Watcher`]) runs here too, its progress forwarded
//!   as [`Update::Activity`] and its syncs asked for through [`Demand`]s.

use super::data::{
    Action, Detail, EventLine, Header, LogLine, Reconciler, Request, Series, Snapshot, TenantRow,
    Update,
};
use super::{TuiConfig, Workers};
use crate::apply::Progress;
use crate::apply::lock::{ApplyLock, LockError};
use crate::model::{DesiredState, Origin, SourceContent, SourceFile};
use crate::plan::render::{self, Style};
use crate::plan::trial::{self, TrialEnded};
use crate::plan::{ObservedState, PlanOptions};
use crate::reconcile;
use crate::runtime::{
    ContainerStats, LogEnd, LogEvent, LogOptions, LogSource, ObservedContainer, Runtime, StatsMode,
    Tail, container_name, cpu_percent_between,
};
use crate::source::Repo;
use crate::status::{self, Inputs, TenantStatus};
use crate::store::{ObservedDb, RunRow, Store, UsageSample, now_unix};
use crate::watch::presence::{self, Holder};
use crate::watch::{Demand, DemandReply, Watcher};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Live readings kept per tenant for the detail view's sparklines.
const RING: usize = 120;
/// Audit-log lines the detail view shows (newest first).
const EVENTS: i64 = 50;
/// Stored usage history the sparklines start with.
const HISTORY_SECONDS: i64 = 3_600;
/// Log lines are handed to the UI this often, or sooner once this many wait.
const LOG_FLUSH: Duration = Duration::from_millis(50);
const LOG_BATCH: usize = 500;
/// A log stream that ended is followed again after this long, while its tenant is shown.
const LOG_RETRY: Duration = Duration::from_secs(3);
/// `docker restart -t`: how long the site has to stop before it is killed.
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restart waits for an apply in progress to finish.
const RESTART_LOCK_WAIT: Duration = Duration::from_secs(5);
/// Progress lines arrive in bursts during an apply: observe once the burst settles a little.
const REFRESH_SETTLE: Duration = Duration::from_millis(150);
/// One observation may take this long before it is reported as a fault (and retried).
const POLL_TIMEOUT: Duration = Duration::from_secs(12);
/// Reconcile runs read to find the newest successful one.
const RUNS: i64 = 20;

/// What every task shares: connections, the UI channel and the live readings.
struct Shared {
    repo: PathBuf,
    reference: String,
    runtime: Runtime,
    store: Store,
    /// The reconcile loop runs in this process.
    in_process: bool,
    /// The in-process loop prunes: pending changes include what it would remove.
    prune: bool,
    log_lines: usize,
    updates: mpsc::Sender<Update>,
    /// Live readings by tenant, oldest first (written by the poller, read by the detail task).
    rings: Mutex<HashMap<String, VecDeque<Reading>>>,
    /// The in-process loop's metrics: when its last pass ended (no-op passes record no run).
    metrics: std::sync::OnceLock<Arc<crate::watch::metrics::Metrics>>,
    /// Wakes the poller early (a refresh asked for, an action done, the loop's progress).
    refresh: Notify,
}

/// One live reading of a tenant's container.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    at: i64,
    /// Percent of one CPU since the previous reading; None for the first one.
    cpu: Option<f64>,
    memory: u64,
}

/// The desired state at one commit, kept until the ref moves.
struct Revision {
    id: String,
    files: Vec<SourceFile>,
    /// The model, or one line saying why the commit is invalid.
    desired: Result<Arc<DesiredState>, String>,
}

impl Revision {
    fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// What the last poll saw, for the detail task.
struct Observation {
    revision: Option<Arc<Revision>>,
    /// The desired state with the trial rule applied; None without a valid revision.
    effective: Option<Arc<DesiredState>>,
    trials: Vec<TrialEnded>,
    observed: ObservedState,
}

/// Starts the background tasks; they run until `Workers.stop` is set (or the UI goes away).
pub fn spawn(config: TuiConfig, updates: mpsc::Sender<Update>) -> Workers {
    let (requests, rx) = mpsc::unbounded_channel();
    let (stop, stop_rx) = watch::channel(false);
    let done = tokio::spawn(run(config, updates, rx, stop_rx));
    Workers {
        requests,
        stop,
        done,
    }
}

/// Forwards the reconcile loop's progress to the activity line, and wakes the poller.
struct Forward {
    shared: Arc<Shared>,
}

impl Progress for Forward {
    fn line(&self, tenant: Option<&str>, message: &str) {
        // The app stamps each activity line with its clock.
        let line = match tenant {
            Some(t) => format!("{t}: {message}"),
            None => message.to_string(),
        };
        // Never block the loop on the UI: a line the UI has no room for is dropped.
        let _ = self.shared.updates.try_send(Update::Activity(line));
        self.shared.refresh.notify_one();
    }
}

/// Aborts a task when dropped, so no task outlives the one that owns it.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run(
    config: TuiConfig,
    updates: mpsc::Sender<Update>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut stop: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        repo: config.repo.clone(),
        reference: config.reference.clone(),
        runtime: config.runtime.clone(),
        store: config.store.clone(),
        in_process: config.watch.is_some(),
        prune: config.watch.as_ref().is_some_and(|w| w.apply.prune),
        log_lines: config.log_lines.max(1),
        updates,
        rings: Mutex::new(HashMap::new()),
        metrics: std::sync::OnceLock::new(),
        refresh: Notify::new(),
    });

    // The reconcile loop, when it runs here: it stops when `stop` is set, after its pass.
    let (demands, reconciler) = match config.watch {
        Some(watch_config) => {
            let (tx, rx) = mpsc::channel::<(Demand, DemandReply)>(16);
            let progress = Arc::new(Forward {
                shared: shared.clone(),
            });
            progress.line(
                None,
                &format!(
                    "reconcile loop in this dashboard: following {}, resync every {}s, self-heal {}",
                    watch_config.reference,
                    watch_config.interval.as_secs(),
                    if watch_config.self_heal { "on" } else { "off" }
                ),
            );
            let watcher = Watcher::new(
                watch_config,
                config.runtime.clone(),
                config.store.clone(),
                progress.clone(),
            )
            .with_demands(rx);
            let _ = shared.metrics.set(watcher.metrics.clone());
            let mut stopped = stop.clone();
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let handle = tokio::spawn(async move {
                if let Err(e) = watcher.run(shutdown).await {
                    progress.line(None, &format!("the reconcile loop stopped: {e:#}"));
                }
            });
            (Some(tx), Some(handle))
        }
        None => (None, None),
    };

    let (observations, observed) = watch::channel::<Option<Arc<Observation>>>(None);
    let (shown, shown_rx) = watch::channel::<Option<String>>(None);
    let poller = Owned(tokio::spawn(poll_loop(
        shared.clone(),
        observations,
        config.refresh.max(Duration::from_millis(200)),
    )));
    let details = Owned(tokio::spawn(detail_loop(
        shared.clone(),
        observed,
        shown_rx,
    )));
    let mut logs: Option<Owned> = None;
    let mut actions = JoinSet::new();
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                None => break,
                Some(Request::Refresh) => shared.refresh.notify_one(),
                Some(Request::Detail(slug)) => {
                    shown.send_replace(slug);
                }
                Some(Request::Logs { slug, tail }) => {
                    // Dropping the previous task ends its stream.
                    logs = slug.map(|s| Owned(tokio::spawn(follow_logs(shared.clone(), s, tail))));
                }
                Some(Request::Run(action)) => {
                    let (shared, demands) = (shared.clone(), demands.clone());
                    actions.spawn(async move {
                        let result = act(&shared, &action, demands).await;
                        shared.refresh.notify_one();
                        let _ = shared.updates.send(Update::ActionDone { action, result }).await;
                    });
                }
            },
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            Some(_) = actions.join_next(), if !actions.is_empty() => {}
        }
    }
    drop((logs, poller, details));
    actions.abort_all();
    drop(demands);
    if let Some(handle) = reconciler {
        // The loop saw `stop` too; it returns once the pass in progress has finished.
        let _ = handle.await;
    }
}

// ---------------------------------------------------------------------------------------------
// The poller

async fn poll_loop(
    shared: Arc<Shared>,
    observations: watch::Sender<Option<Arc<Observation>>>,
    every: Duration,
) {
    let mut poller = Poller::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shared.refresh.notified() => tokio::time::sleep(REFRESH_SETTLE).await,
        }
        // A hung engine or database must show as a fault, not as figures that silently age.
        let polled = tokio::time::timeout(POLL_TIMEOUT, poller.poll(&shared))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "observing the engine and the database took longer than {}s",
                    POLL_TIMEOUT.as_secs()
                ))
            });
        let update = match polled {
            Ok((snapshot, observation)) => {
                observations.send_replace(Some(observation));
                Update::Snapshot(Box::new(snapshot))
            }
            // The retry first: a long reason is cut at the screen's edge.
            Err(fault) => Update::Fault(format!(
                "retrying every {}s: {fault}",
                every.as_secs().max(1)
            )),
        };
        if shared.updates.send(update).await.is_err() {
            return;
        }
        tick.reset();
    }
}

#[derive(Default)]
struct Poller {
    revision: Option<Arc<Revision>>,
    /// The previous stats reading of each container, by id (CPU percent needs two).
    previous: HashMap<String, ContainerStats>,
    /// The last usage figures of each container, by id: kept between the polls that sample it.
    live: HashMap<String, Live>,
    /// Where the next poll's stats sample starts among the running containers (by id).
    cursor: usize,
}

impl Poller {
    async fn poll(&mut self, shared: &Shared) -> Result<(Snapshot, Arc<Observation>), String> {
        let namespace = shared.runtime.namespace().to_string();
        let (revision, error) = match self.revision(shared).await {
            Ok(r) => {
                let error = r.desired.as_ref().err().cloned();
                (Some(r), error)
            }
            Err(e) => (None, Some(e)),
        };
        let (containers, db) = tokio::join!(shared.runtime.observe(), shared.store.observe());
        let observed = ObservedState {
            runtime: containers.map_err(|e| e.to_string())?,
            db: db.map_err(|e| e.to_string())?,
        };
        let desired = revision.as_ref().and_then(|r| r.desired.as_ref().ok());
        let revision_id = revision.as_ref().map(|r| r.id.clone());
        let opts = PlanOptions {
            namespace: namespace.clone(),
            revision: revision_id.clone().unwrap_or_default(),
            prune: shared.prune,
            tenants: vec![],
        };
        let (effective, trials, plan) = match desired {
            Some(d) => {
                let planned = reconcile::plan_revision(d, &observed, &opts, trial::now());
                let effective = match planned.effective {
                    Cow::Borrowed(_) => d.clone(),
                    Cow::Owned(owned) => Arc::new(owned),
                };
                (Some(effective), planned.ended, Some(planned.plan))
            }
            None => (None, Vec::new(), None),
        };
        let details = status::container_details(&shared.runtime, &observed.runtime.containers)
            .await
            .map_err(|e| e.to_string())?;
        let statuses = status::compute(&Inputs {
            desired: effective.as_deref(),
            observed: &observed,
            plan: plan.as_ref(),
            details: &details,
            namespace: &namespace,
            tenants: &[],
        });

        let now = now_unix();
        let month = crate::calendar::month_key(now);
        let sample = stats_sample(&observed.runtime.containers, &mut self.cursor);
        let (stats, runs, counters, reconciler) = tokio::join!(
            shared.runtime.stats_of(&sample, StatsMode::OneShot),
            shared.store.runs(RUNS),
            shared.store.usage_month_counters(&month, None),
            reconciler(shared),
        );
        let runs = runs.map_err(|e| e.to_string())?;
        let counters = counters.map_err(|e| e.to_string())?;
        // Containers gone since the last poll drop out; those not sampled now keep their figures.
        let ids: std::collections::HashSet<&str> = observed
            .runtime
            .containers
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        self.live.retain(|id, _| ids.contains(id.as_str()));
        self.previous.retain(|id, _| ids.contains(id.as_str()));
        for c in observed
            .runtime
            .containers
            .iter()
            .filter(|c| !c.state.is_running())
        {
            self.live.remove(&c.id);
        }
        for (container, reading) in stats {
            // A container whose stats failed (stopped meanwhile, slow engine) keeps its last figures.
            let Ok(reading) = reading else { continue };
            let cpu = self
                .previous
                .get(&container.id)
                .and_then(|before| cpu_percent_between(before, &reading));
            self.live.insert(
                container.id.clone(),
                Live {
                    cpu_percent: cpu,
                    memory_bytes: Some(reading.memory_bytes),
                },
            );
            self.previous.insert(container.id.clone(), reading);
        }
        let live = &self.live;

        let rows = join_rows(
            statuses,
            &RowInputs {
                desired: effective.as_deref(),
                db: &observed.db,
                containers: &observed.runtime.containers,
                namespace: &namespace,
                live,
                api_calls: &counters,
            },
        );
        self.record(shared, &rows, now);
        let mut header = header(
            &namespace,
            revision_id,
            plan.as_ref().map_or(0, |p| p.changes.len()),
            &runs,
            reconciler,
            error,
        );
        header.reference = shared.reference.clone();
        if let Some((at, ok)) = shared.metrics.get().and_then(|m| m.last_pass()) {
            header.last_reconcile = Some(at);
            header.last_reconcile_status =
                Some(if ok { "succeeded" } else { "failed" }.to_string());
        }
        let observation = Arc::new(Observation {
            revision,
            effective,
            trials,
            observed,
        });
        Ok((
            Snapshot {
                header,
                rows,
                at: now,
            },
            observation,
        ))
    }

    /// The commit `reference` names, loaded only when it is not the one already held.
    async fn revision(&mut self, shared: &Shared) -> Result<Arc<Revision>, String> {
        let (repo, reference) = (shared.repo.clone(), shared.reference.clone());
        let held = self.revision.as_ref().map(|r| r.id.clone());
        // git2 blocks: keep it off the async workers.
        let loaded =
            tokio::task::spawn_blocking(move || load_revision(&repo, &reference, held.as_deref()))
                .await
                .map_err(|e| format!("reading the repository failed: {e}"))??;
        if let Some(new) = loaded {
            self.revision = Some(Arc::new(new));
        }
        self.revision
            .clone()
            .ok_or_else(|| "no revision could be read".to_string())
    }

    /// Appends this poll's live readings to each tenant's ring.
    fn record(&self, shared: &Shared, rows: &[TenantRow], now: i64) {
        let Ok(mut rings) = shared.rings.lock() else {
            return;
        };
        rings.retain(|slug, _| rows.iter().any(|r| &r.slug == slug));
        for row in rows {
            let Some(memory) = row.memory_bytes else {
                continue;
            };
            let ring = rings.entry(row.slug.clone()).or_default();
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(Reading {
                at: now,
                cpu: row.cpu_percent,
                memory,
            });
        }
    }
}

/// Resolves `reference`; `Ok(None)` when it still names `held`, else the commit read and loaded.
fn load_revision(
    repo: &Path,
    reference: &str,
    held: Option<&str>,
) -> Result<Option<Revision>, String> {
    let repo = Repo::discover(repo).map_err(|e| e.to_string())?;
    let id = repo
        .resolve(reference)
        .map_err(|e| e.to_string())?
        .to_string();
    if held == Some(id.as_str()) {
        return Ok(None);
    }
    let snapshot = repo.snapshot_at(&id).map_err(|e| e.to_string())?;
    let desired = crate::model::load(&snapshot.files)
        .map(Arc::new)
        .map_err(|diagnostics| invalid_reason(&id, reference, &diagnostics));
    Ok(Some(Revision {
        id,
        files: snapshot.files,
        desired,
    }))
}

/// One line for an invalid commit, like `status` says it, with the first problem.
fn invalid_reason(id: &str, reference: &str, diagnostics: &[crate::model::Diagnostic]) -> String {
    let short = &id[..id.len().min(12)];
    let n = diagnostics.len();
    let first = diagnostics
        .first()
        .map(|d| d.to_string())
        .and_then(|d| d.lines().next().map(str::to_string))
        .unwrap_or_default();
    format!(
        "revision {short} is invalid: {first} ({n} problem{}; `tenantctl validate --ref {reference}` lists them)",
        if n == 1 { "" } else { "s" }
    )
}

/// Who runs the loop: this process, another one that holds the presence lease, or nobody.
async fn reconciler(shared: &Shared) -> Reconciler {
    if shared.in_process {
        // The loop here leads, or stands by while another process holds the leader lease.
        let leading = shared.metrics.get().is_none_or(|m| m.leader_term() > 0);
        if leading {
            return Reconciler::InProcess;
        }
        let leader = match shared.store.leader().await {
            Ok(Some(row)) if row.live() => Some(row.holder),
            _ => None,
        };
        return Reconciler::Standby { leader };
    }
    match presence::present(&shared.store).await {
        Ok(Some(row)) => Reconciler::External { holder: row.holder },
        // The store being down is reported by the poll itself.
        Ok(None) | Err(_) => Reconciler::None,
    }
}

/// Stats readings asked of the engine per poll at most: with more running containers, each
/// poll samples the next slice, so every container is read every few polls and the engine is
/// never asked for thousands of readings at once.
const STATS_PER_POLL: usize = 100;

/// The running containers to read stats of this poll, moving `cursor` on.
fn stats_sample(containers: &[ObservedContainer], cursor: &mut usize) -> Vec<ObservedContainer> {
    let mut running: Vec<&ObservedContainer> =
        containers.iter().filter(|c| c.state.is_running()).collect();
    if running.len() <= STATS_PER_POLL {
        *cursor = 0;
        return running.into_iter().cloned().collect();
    }
    running.sort_by(|a, b| a.id.cmp(&b.id));
    let start = *cursor % running.len();
    *cursor = start + STATS_PER_POLL;
    running
        .iter()
        .cycle()
        .skip(start)
        .take(STATS_PER_POLL)
        .map(|c| (*c).clone())
        .collect()
}

fn header(
    namespace: &str,
    revision: Option<String>,
    pending_changes: usize,
    runs: &[RunRow],
    reconciler: Reconciler,
    error: Option<String>,
) -> Header {
    let last = runs.first();
    Header {
        namespace: namespace.to_string(),
        reference: String::new(),
        revision,
        applied_revision: runs
            .iter()
            .find(|r| r.status == "succeeded")
            .map(|r| r.revision.clone()),
        pending_changes,
        last_reconcile: last.map(|r| r.finished_at.unwrap_or(r.started_at)),
        last_reconcile_status: last.map(|r| r.status.clone()),
        reconciler,
        error,
    }
}

/// A container's usage right now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Live {
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
}

/// What the rows are joined from besides the statuses.
struct RowInputs<'a> {
    desired: Option<&'a DesiredState>,
    db: &'a ObservedDb,
    containers: &'a [ObservedContainer],
    namespace: &'a str,
    /// By container id.
    live: &'a HashMap<String, Live>,
    /// This month's counters by tenant: (API calls, AI interactions, when sampled).
    api_calls: &'a BTreeMap<String, (i64, i64, i64)>,
}

/// A plan's limits: CPUs, memory bytes and API calls a month; from git, else the database row.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Limits {
    cpus: Option<f64>,
    memory: Option<u64>,
    api_calls: Option<i64>,
}

fn limits(plan: Option<&str>, desired: Option<&DesiredState>, db: &ObservedDb) -> Limits {
    let Some(name) = plan else {
        return Limits::default();
    };
    if let Some(p) = desired.and_then(|d| d.plans.get(name)) {
        return Limits {
            cpus: Some(p.resources.nano_cpus as f64 / 1e9).filter(|c| *c > 0.0),
            memory: Some(p.resources.memory_bytes).filter(|m| *m > 0),
            api_calls: p
                .quotas
                .api_calls_per_month
                .map(|q| i64::try_from(q).unwrap_or(i64::MAX)),
        };
    }
    match db.plans.get(name) {
        Some(p) => Limits {
            cpus: Some(p.nano_cpus as f64 / 1e9).filter(|c| *c > 0.0),
            memory: u64::try_from(p.memory_bytes).ok().filter(|m| *m > 0),
            api_calls: p.api_calls_per_month,
        },
        None => Limits::default(),
    }
}

/// The container a tenant's live numbers come from: a running one first, then its own name.
fn tenant_container<'a>(
    containers: &'a [ObservedContainer],
    namespace: &str,
    slug: &str,
) -> Option<&'a ObservedContainer> {
    let primary = container_name(namespace, slug);
    containers
        .iter()
        .filter(|c| c.tenant.as_deref() == Some(slug))
        .min_by_key(|c| (!c.state.is_running(), c.name != primary, c.name.clone()))
}

/// Status rows joined with live usage, the plan's limits, uptime and the file in git. Pure.
fn join_rows(statuses: Vec<TenantStatus>, inputs: &RowInputs<'_>) -> Vec<TenantRow> {
    statuses
        .into_iter()
        .map(|s| {
            let limits = limits(s.plan.as_deref(), inputs.desired, inputs.db);
            let container = tenant_container(inputs.containers, inputs.namespace, &s.slug)
                .filter(|c| c.state.is_running());
            let live = container
                .and_then(|c| inputs.live.get(&c.id))
                .copied()
                .unwrap_or_default();
            TenantRow {
                file: inputs
                    .desired
                    .and_then(|d| d.tenants.get(&s.slug))
                    .map(|t| t.origin.path.clone()),
                api_calls: inputs.api_calls.get(&s.slug).map(|(api, _, _)| *api),
                api_quota: limits.api_calls,
                cpu_percent: live.cpu_percent,
                cpu_limit: limits.cpus,
                memory_bytes: live.memory_bytes,
                memory_limit: limits.memory,
                started_at: container.and_then(|c| c.started_at),
                slug: s.slug,
                plan: s.plan,
                theme: s.theme,
                state: s.state,
                sync: Some(s.sync),
                health: Some(s.health),
                health_reason: s.health_reason,
                sync_reasons: s.sync_reasons,
                url: s.url,
                last_error: s.last_error,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The detail view

async fn detail_loop(
    shared: Arc<Shared>,
    mut observed: watch::Receiver<Option<Arc<Observation>>>,
    mut shown: watch::Receiver<Option<String>>,
) {
    loop {
        tokio::select! {
            changed = shown.changed() => if changed.is_err() { return },
            changed = observed.changed() => if changed.is_err() { return },
        }
        let slug = shown.borrow_and_update().clone();
        let observation = observed.borrow_and_update().clone();
        let (Some(slug), Some(observation)) = (slug, observation) else {
            continue;
        };
        let update = match detail(&shared, &slug, &observation).await {
            Ok(d) => Update::Detail(Box::new(d)),
            Err(e) => Update::Fault(e),
        };
        if shared.updates.send(update).await.is_err() {
            return;
        }
    }
}

async fn detail(shared: &Shared, slug: &str, o: &Observation) -> Result<Detail, String> {
    let now = now_unix();
    let (events, samples) = tokio::join!(
        shared.store.events(Some(slug), EVENTS),
        shared
            .store
            .usage_samples(Some(slug), now - HISTORY_SECONDS, now + 1),
    );
    let events = events.map_err(|e| e.to_string())?;
    let samples = samples.map_err(|e| e.to_string())?;
    let ring: Vec<Reading> = shared
        .rings
        .lock()
        .ok()
        .and_then(|r| r.get(slug).map(|r| r.iter().copied().collect()))
        .unwrap_or_default();
    let plan_name = o
        .effective
        .as_ref()
        .and_then(|d| d.tenants.get(slug))
        .map(|t| t.plan.clone())
        .or_else(|| o.observed.db.tenants.get(slug).map(|r| r.plan.clone()));
    let limits = limits(plan_name.as_deref(), o.effective.as_deref(), &o.observed.db);
    let (cpu, memory) = series(&samples, &ring, limits);
    Ok(Detail {
        slug: slug.to_string(),
        spec: spec_text(slug, o),
        diff: diff_text(slug, o, shared.runtime.namespace()),
        events: events
            .into_iter()
            .map(|e| EventLine {
                at: e.at,
                kind: e.kind,
                message: e.message,
            })
            .collect(),
        cpu,
        memory,
    })
}

/// The tenant's document as committed, under a comment naming its file and commit.
fn spec_text(slug: &str, o: &Observation) -> String {
    let Some(revision) = &o.revision else {
        return "the ref could not be read: no committed spec to show".to_string();
    };
    let short = revision.short();
    let desired = match &revision.desired {
        Ok(d) => d,
        Err(why) => return format!("{why}\n\nNo spec can be shown until the commit is fixed."),
    };
    match desired.tenants.get(slug) {
        Some(t) => match tenant_document(&revision.files, &t.origin) {
            Some(doc) => format!("# {} at {short}\n{doc}", t.origin.path),
            None => format!(
                "# {} at {short}\n(the file could not be read)",
                t.origin.path
            ),
        },
        None => format!(
            "{slug} is not in git at {short}: only the database or the engine still knows it (removed or never committed; its data volume is kept)."
        ),
    }
}

/// The document of a multi-document file that holds the line `origin` points at. Pure.
fn tenant_document(files: &[SourceFile], origin: &Origin) -> Option<String> {
    let file = files.iter().find(|f| f.path == origin.path)?;
    let SourceContent::Bytes(bytes) = &file.content else {
        return None;
    };
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let target = usize::try_from(origin.line).ok()?.max(1);
    let mut start = 0;
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        let separator = *line == "---" || line.starts_with("--- ") || *line == "...";
        if !separator {
            continue;
        }
        if number < target {
            start = i + 1;
        } else {
            end = i;
            break;
        }
    }
    let doc = lines.get(start..end)?;
    let first = doc.iter().position(|l| !l.trim().is_empty())?;
    let last = doc.iter().rposition(|l| !l.trim().is_empty())?;
    Some(doc[first..=last].join("\n") + "\n")
}

/// `tenantctl plan --tenant SLUG` without colour; empty when nothing would change.
fn diff_text(slug: &str, o: &Observation, namespace: &str) -> String {
    let (Some(revision), Some(effective)) = (&o.revision, &o.effective) else {
        return match o.revision.as_ref().map(|r| &r.desired) {
            Some(Err(why)) => format!("{why}\nNothing can be compared with it."),
            _ => "the ref could not be read: nothing to compare with".to_string(),
        };
    };
    let opts = PlanOptions {
        namespace: namespace.to_string(),
        revision: revision.id.clone(),
        prune: false,
        tenants: vec![slug.to_string()],
    };
    let plan = reconcile::plan_effective(effective, &o.trials, &o.observed, &opts);
    if plan.is_empty() {
        return String::new();
    }
    render::text(&plan, Style { color: false })
}

/// CPU and memory history for the sparklines: stored samples older than the live ring, then
/// the ring. CPU in hundredths of a percent of one CPU (limit = CPUs × 10 000). Pure.
fn series(samples: &[UsageSample], ring: &[Reading], limits: Limits) -> (Series, Series) {
    let cutoff = ring.first().map_or(i64::MAX, |r| r.at);
    let stored: Vec<&UsageSample> = samples.iter().filter(|s| s.at < cutoff).collect();
    let hundredths = |p: f64| (p.max(0.0) * 100.0).round() as u64;
    let cpu = Series {
        points: stored
            .iter()
            .filter_map(|s| s.cpu_percent)
            .chain(ring.iter().filter_map(|r| r.cpu))
            .map(hundredths)
            .collect(),
        limit: limits.cpus.map(|c| (c * 10_000.0).round() as u64),
    };
    let memory = Series {
        points: stored
            .iter()
            .map(|s| u64::try_from(s.memory_bytes).unwrap_or(0))
            .chain(ring.iter().map(|r| r.memory))
            .collect(),
        limit: limits.memory,
    };
    (cpu, memory)
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Lines waiting for the UI; bounded, so a tenant that logs faster than the UI draws costs
/// memory for at most the buffer the UI keeps anyway.
#[derive(Debug, Default)]
struct Batch {
    lines: VecDeque<LogLine>,
    /// Lines dropped (oldest first) since the last hand-over.
    dropped: u64,
    notes: Vec<String>,
}

impl Batch {
    fn push(&mut self, lines: Vec<LogLine>, cap: usize) {
        for line in lines {
            if self.lines.len() == cap {
                self.lines.pop_front();
                self.dropped += 1;
            }
            self.lines.push_back(line);
        }
    }

    /// Everything waiting, as the updates to send, in order: lines, then notes.
    fn take(&mut self, slug: &str) -> Vec<Update> {
        let mut out = Vec::new();
        if self.dropped > 0 {
            out.push(Update::LogNote {
                slug: slug.to_string(),
                message: format!(
                    "skipped {} lines: the tenant logs faster than the dashboard shows",
                    self.dropped
                ),
            });
            self.dropped = 0;
        }
        if !self.lines.is_empty() {
            out.push(Update::Logs {
                slug: slug.to_string(),
                lines: self.lines.drain(..).collect(),
            });
        }
        out.extend(self.notes.drain(..).map(|message| Update::LogNote {
            slug: slug.to_string(),
            message,
        }));
        out
    }
}

/// Splits an RFC 3339 timestamp (as the engine prefixes with `timestamps=true`) off a line.
fn split_timestamp(line: &str) -> (Option<&str>, &str) {
    if let Some((head, rest)) = line.split_once(' ')
        && crate::status::time::parse_rfc3339(head).is_some()
    {
        return (Some(head), rest);
    }
    if crate::status::time::parse_rfc3339(line).is_some() {
        return (Some(line), "");
    }
    (None, line)
}

/// One chunk of a log stream as lines: split at newlines, `\r` and the final newline stripped,
/// each line's timestamp split off (a line without one shares its chunk's). Pure.
fn split_chunk(bytes: &[u8], stderr: bool) -> Vec<LogLine> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(bytes);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    let mut last: Option<String> = None;
    body.split('\n')
        .map(|raw| {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let (timestamp, text) = split_timestamp(raw);
            let timestamp = timestamp.map(str::to_string).or_else(|| last.clone());
            last.clone_from(&timestamp);
            LogLine {
                timestamp,
                stderr,
                text: text.to_string(),
            }
        })
        .collect()
}

/// Follows `slug`'s container until the task is dropped: lines in batches, a note whenever the
/// stream ends, and a new follow a few seconds later.
async fn follow_logs(shared: Arc<Shared>, slug: String, tail: u64) {
    let batch = Arc::new(Mutex::new(Batch::default()));
    let wake = Arc::new(Notify::new());
    let _flusher = Owned(tokio::spawn(flush_logs(
        shared.clone(),
        slug.clone(),
        batch.clone(),
        wake.clone(),
    )));
    let cap = shared.log_lines;
    let push = |lines: Vec<LogLine>| {
        if let Ok(mut b) = batch.lock() {
            b.push(lines, cap);
            if b.lines.len() >= LOG_BATCH {
                wake.notify_one();
            }
        }
    };
    let note = |message: String| {
        if let Ok(mut b) = batch.lock() {
            b.notes.push(message);
        }
        wake.notify_one();
    };
    let mut options = LogOptions {
        follow: true,
        tail: Tail::Lines(tail),
        since: None,
        timestamps: true,
    };
    let mut last_note: Option<String> = None;
    loop {
        let started = now_unix();
        let (message, streamed) = match shared.runtime.log_container(&slug).await {
            Err(e) => (format!("cannot read the logs: {e}"), false),
            Ok(None) => (
                format!("{slug} has no container; its logs show once it has one"),
                false,
            ),
            Ok(Some(container)) => {
                // After a note about the end of a stream, say that lines flow again.
                if last_note.is_some() {
                    let again = format!("following container {} again", container.name);
                    note(again.clone());
                    last_note = Some(again);
                }
                let end = shared
                    .runtime
                    .stream_logs(&slug, &container, options, |event| {
                        match event {
                            LogEvent::Output { source, bytes } => {
                                push(split_chunk(&bytes, source == LogSource::Stderr))
                            }
                            LogEvent::Note(n) => note(n),
                        }
                        ControlFlow::Continue(())
                    })
                    .await;
                let message = match end {
                    Ok(LogEnd::Stopped { state }) => format!(
                        "container {} is {state}; no more lines (followed again once it runs)",
                        container.name
                    ),
                    Ok(LogEnd::Removed) => format!(
                        "container {} was removed; no more lines (followed again once there is one)",
                        container.name
                    ),
                    Ok(LogEnd::Done | LogEnd::Cancelled) => "the log stream ended".to_string(),
                    Err(e) => format!("reading the logs failed: {e}"),
                };
                (message, true)
            }
        };
        if last_note.as_deref() != Some(message.as_str()) {
            note(message.clone());
            last_note = Some(message);
        }
        // Next time: what came after this stream ended (a line of that second may repeat), or,
        // when there was nothing to follow, everything since that was first found.
        let since = match (streamed, options.since) {
            (true, _) => Some(now_unix()),
            (false, None) => Some(started),
            (false, kept) => kept,
        };
        options = LogOptions {
            tail: Tail::All,
            since,
            ..options
        };
        tokio::time::sleep(LOG_RETRY).await;
    }
}

async fn flush_logs(
    shared: Arc<Shared>,
    slug: String,
    batch: Arc<Mutex<Batch>>,
    wake: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(LOG_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        let updates = match batch.lock() {
            Ok(mut b) => b.take(&slug),
            Err(_) => return,
        };
        for u in updates {
            if shared.updates.send(u).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Actions

async fn act(
    shared: &Shared,
    action: &Action,
    demands: Option<mpsc::Sender<(Demand, DemandReply)>>,
) -> Result<String, String> {
    match action {
        Action::SyncAll | Action::SyncTenant(_) => {
            let demand = match action {
                Action::SyncTenant(slug) => Demand::SyncTenant(slug.clone()),
                _ => Demand::SyncAll,
            };
            match demands {
                Some(tx) => {
                    let (reply, answer) = oneshot::channel();
                    tx.send((demand, reply))
                        .await
                        .map_err(|_| "the reconcile loop has stopped".to_string())?;
                    answer
                        .await
                        .map_err(|_| "the reconcile loop stopped before answering".to_string())?
                }
                None => sync_elsewhere(shared, &demand).await,
            }
        }
        Action::Restart(slug) => {
            if !shared.in_process {
                return Err(
                    "read-only: this dashboard changes nothing; restart it without --read-only (with no `tenantctl watch` running) to act"
                        .to_string(),
                );
            }
            restart(shared, slug).await
        }
    }
}

/// Read-only: a `tenantctl watch` on this host is asked to sync now with SIGHUP; otherwise
/// this dashboard can only say why it cannot.
async fn sync_elsewhere(shared: &Shared, demand: &Demand) -> Result<String, String> {
    let present = presence::present(&shared.store)
        .await
        .map_err(|e| e.to_string())?;
    let Some(row) = present else {
        return Err(
            "read-only and no reconcile loop runs: run `tenantctl apply`, or start `tenantctl tui` without --read-only"
                .to_string(),
        );
    };
    let holder = Holder::parse(&row.holder);
    if let Demand::SyncTenant(_) = demand {
        return Err(format!(
            "read-only: `{}` runs the loop; it syncs all tenants only (S)",
            row.holder
        ));
    }
    match holder.as_ref().and_then(Holder::local_watch_pid) {
        Some(pid) => hangup(pid).map(|()| {
            format!("asked `tenantctl watch` (pid {pid}) to sync now (SIGHUP); its progress is in its own output")
        }),
        None if holder.as_ref().is_some_and(|h| h.local_pid().is_some()) => Err(format!(
            "read-only: another dashboard ({}) runs the loop; sync from there",
            row.holder
        )),
        None => Err(format!(
            "read-only: the loop runs on another host ({}); sync there (SIGHUP to its `tenantctl watch`)",
            row.holder
        )),
    }
}

/// SIGHUP to a local `tenantctl` process (checked by name, so a reused pid is never signalled).
fn hangup(pid: u32) -> Result<(), String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if !comm.trim().starts_with("tenantctl") {
        return Err(format!(
            "the loop's process {pid} is not running here any more; try again in a few seconds"
        ));
    }
    let pid = libc::pid_t::try_from(pid).map_err(|_| format!("pid {pid} is out of range"))?;
    // SAFETY: kill(2) with a checked pid and a constant signal touches no memory of ours.
    let sent = unsafe { libc::kill(pid, libc::SIGHUP) };
    if sent == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Restarts the tenant's running container in place, under the apply lock, and records it.
async fn restart(shared: &Shared, slug: &str) -> Result<String, String> {
    let container = shared
        .runtime
        .log_container(slug)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{slug} has no container to restart"))?;
    let lock = match ApplyLock::acquire(&shared.store, RESTART_LOCK_WAIT).await {
        Ok(lock) => lock,
        Err(LockError::Locked { holder, .. }) => {
            return Err(format!(
                "an apply ({holder}) is running; try again once it has finished"
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let result = async {
        let done = shared
            .runtime
            .backend()
            .restart(&container, RESTART_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        shared
            .store
            .record_event(
                None,
                Some(slug),
                "tenant.restarted",
                "restarted from the dashboard",
            )
            .await
            .map_err(|e| format!("restarted, but recording the event failed: {e}"))?;
        Ok(done)
    }
    .await;
    lock.release().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_sampled_in_slices_that_cover_every_running_container() {
        let mut containers: Vec<ObservedContainer> = (0..250)
            .map(|i| {
                container(
                    &format!("id{i:03}"),
                    "t",
                    &format!("c{i}"),
                    crate::runtime::ContainerState::Running,
                )
            })
            .collect();
        containers[7].state = crate::runtime::ContainerState::Exited;
        let mut cursor = 0;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let sample = stats_sample(&containers, &mut cursor);
            assert_eq!(sample.len(), STATS_PER_POLL);
            seen.extend(sample.into_iter().map(|c| c.id));
        }
        assert_eq!(
            seen.len(),
            249,
            "every running container within three polls"
        );
        assert!(!seen.contains("id007"), "stopped containers are not read");
        let few = &containers[..10];
        assert_eq!(stats_sample(few, &mut cursor).len(), 9);
    }
    use crate::model::SourceFile;
    use crate::runtime::ContainerState;
    use crate::status::{Health, SyncStatus};

    #[test]
    fn timestamps_split_off_lines() {
        assert_eq!(
            split_timestamp("2026-01-02T03:04:05.123456789Z GET /x 404"),
            (Some("2026-01-02T03:04:05.123456789Z"), "GET /x 404")
        );
        assert_eq!(
            split_timestamp("2026-01-02T03:04:05Z"),
            (Some("2026-01-02T03:04:05Z"), "")
        );
        assert_eq!(split_timestamp("no time here"), (None, "no time here"));
        assert_eq!(
            split_timestamp("2026-13-02 nope"),
            (None, "2026-13-02 nope")
        );
    }

    #[test]
    fn chunks_become_lines() {
        let lines = split_chunk(b"2026-01-02T03:04:05Z first\r\nsecond\n", true);
        assert_eq!(
            lines,
            vec![
                LogLine {
                    timestamp: Some("2026-01-02T03:04:05Z".into()),
                    stderr: true,
                    text: "first".into()
                },
                LogLine {
                    timestamp: Some("2026-01-02T03:04:05Z".into()),
                    stderr: true,
                    text: "second".into()
                },
            ]
        );
        let one = split_chunk(b"2026-01-02T03:04:06Z \xffbad\n", false);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].text, "\u{fffd}bad");
        assert!(!one[0].stderr);
        assert_eq!(split_chunk(b"", false), vec![]);
        // An empty line is a line; a chunk without its newline is one too.
        assert_eq!(split_chunk(b"\n", false).len(), 1);
        assert_eq!(split_chunk(b"partial", false)[0].text, "partial");
    }

    fn line(text: &str) -> LogLine {
        LogLine {
            timestamp: None,
            stderr: false,
            text: text.into(),
        }
    }

    #[test]
    fn batches_are_bounded_and_keep_order() {
        let mut b = Batch::default();
        b.push((0..5).map(|i| line(&i.to_string())).collect(), 3);
        b.notes.push("container replaced".into());
        let updates = b.take("acme");
        assert_eq!(
            updates,
            vec![
                Update::LogNote {
                    slug: "acme".into(),
                    message: "skipped 2 lines: the tenant logs faster than the dashboard shows"
                        .into()
                },
                Update::Logs {
                    slug: "acme".into(),
                    lines: vec![line("2"), line("3"), line("4")]
                },
                Update::LogNote {
                    slug: "acme".into(),
                    message: "container replaced".into()
                },
            ]
        );
        assert!(b.take("acme").is_empty(), "taken once");
    }

    fn sample(at: i64, cpu: Option<f64>, memory: i64) -> UsageSample {
        UsageSample {
            tenant: "acme".into(),
            at,
            cpu_percent: cpu,
            memory_bytes: memory,
            memory_limit_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blk_read_bytes: 0,
            blk_write_bytes: 0,
            api_calls_month: None,
            ai_interactions_month: None,
            month: None,
        }
    }

    #[test]
    fn series_join_stored_samples_and_the_live_ring() {
        let samples = [
            sample(100, Some(1.5), 1000),
            sample(160, None, 2000),
            sample(220, Some(3.0), 3000),
        ];
        let ring = [
            Reading {
                at: 200,
                cpu: None,
                memory: 4000,
            },
            Reading {
                at: 202,
                cpu: Some(12.345),
                memory: 5000,
            },
        ];
        let limits = Limits {
            cpus: Some(0.5),
            memory: Some(512),
            api_calls: None,
        };
        let (cpu, memory) = series(&samples, &ring, limits);
        // Samples the ring already covers (at 220) are left out.
        assert_eq!(cpu.points, vec![150, 1235]);
        assert_eq!(cpu.limit, Some(5_000));
        assert_eq!(memory.points, vec![1000, 2000, 4000, 5000]);
        assert_eq!(memory.limit, Some(512));
        let (cpu, memory) = series(&samples, &[], Limits::default());
        assert_eq!(cpu.points, vec![150, 300]);
        assert_eq!((cpu.limit, memory.limit), (None, None));
        assert_eq!(memory.points.len(), 3);
    }

    const PLAN: &str = "kind: Plan
name: starter
spec:
  displayName: Starter
  price: { amount: 9, currency: USD, cycle: monthly }
  resources: { cpus: 0.5, memory: 256Mi, pids: 128, storage: 5Gi }
  quotas: { apiCallsPerMonth: 10000 }
";

    const THEME: &str = "kind: Theme
name: plain
spec:
  displayName: Plain
  version: 1.0.0
  port: 8080
  health: { path: /health, intervalSeconds: 10 }
";

    const TENANTS: &str = "# first
kind: Tenant
name: acme
spec:
  displayName: Acme
  owner: ops@acme.example
  plan: starter
  theme: plain
---
# second
kind: Tenant
name: hooli
spec:
  displayName: Hooli
  owner: ops@hooli.example
  plan: starter
  theme: plain
";

    fn files() -> Vec<SourceFile> {
        vec![
            SourceFile {
                path: "plans/starter.yaml".into(),
                content: SourceContent::Bytes(PLAN.as_bytes().to_vec()),
            },
            SourceFile {
                path: "themes/plain.yaml".into(),
                content: SourceContent::Bytes(THEME.as_bytes().to_vec()),
            },
            SourceFile {
                path: "tenants/two.yaml".into(),
                content: SourceContent::Bytes(TENANTS.as_bytes().to_vec()),
            },
        ]
    }

    fn desired() -> DesiredState {
        match crate::model::load(&files()) {
            Ok(d) => d,
            Err(e) => panic!("fixture is valid: {e:?}"),
        }
    }

    #[test]
    fn a_tenant_document_is_cut_from_its_file() {
        let d = desired();
        let hooli = tenant_document(&files(), &d.tenants["hooli"].origin);
        assert_eq!(
            hooli.as_deref(),
            Some(
                "# second\nkind: Tenant\nname: hooli\nspec:\n  displayName: Hooli\n  owner: ops@hooli.example\n  plan: starter\n  theme: plain\n"
            )
        );
        let acme = tenant_document(&files(), &d.tenants["acme"].origin).unwrap_or_default();
        assert!(
            acme.starts_with("# first\nkind: Tenant\nname: acme\n"),
            "{acme}"
        );
        assert!(!acme.contains("hooli"), "{acme}");
    }

    fn container(id: &str, slug: &str, name: &str, state: ContainerState) -> ObservedContainer {
        ObservedContainer {
            started_at: Some(1_000),
            ..ObservedContainer::bare(id, name, slug, state)
        }
    }

    fn status_of(slug: &str, plan: Option<&str>) -> TenantStatus {
        TenantStatus {
            slug: slug.into(),
            sync: SyncStatus::Synced,
            sync_reasons: vec![],
            health: Health::Healthy,
            health_reason: None,
            plan: plan.map(str::to_string),
            theme: Some("plain".into()),
            state: Some("active".into()),
            applied_revision: None,
            url: Some(format!("http://127.0.0.1:1/{slug}")),
            last_error: None,
            trial_ends_at: None,
        }
    }

    #[test]
    fn rows_join_status_usage_limits_and_files() {
        let d = desired();
        let mut db = ObservedDb::default();
        db.plans.insert(
            "legacy".into(),
            crate::store::PlanRow {
                name: "legacy".into(),
                display_name: "Legacy".into(),
                price_cents: 0,
                currency: "USD".into(),
                cycle: "monthly".into(),
                trial_days: 0,
                nano_cpus: 2_000_000_000,
                memory_bytes: 1 << 30,
                pids: 100,
                storage_bytes: None,
                api_calls_per_month: None,
                ai_interactions_per_month: None,
                users: None,
                rate_limit_rpm: None,
                features: "[]".into(),
                revision: "r".into(),
                updated_at: 0,
            },
        );
        let containers = [
            // A stopped leftover and the running replacement: the running one counts.
            container("old", "acme", "ns-acme", ContainerState::Exited),
            container("new", "acme", "ns-acme-next", ContainerState::Running),
            container("h", "hooli", "ns-hooli", ContainerState::Exited),
        ];
        let live = HashMap::from([
            (
                "new".to_string(),
                Live {
                    cpu_percent: Some(12.5),
                    memory_bytes: Some(100),
                },
            ),
            (
                "h".to_string(),
                Live {
                    cpu_percent: Some(99.0),
                    memory_bytes: Some(1),
                },
            ),
        ]);
        let api = BTreeMap::from([("acme".to_string(), (42, 0, 0))]);
        let rows = join_rows(
            vec![
                status_of("acme", Some("starter")),
                status_of("hooli", Some("starter")),
                status_of("gone", Some("legacy")),
            ],
            &RowInputs {
                desired: Some(&d),
                db: &db,
                containers: &containers,
                namespace: "ns",
                live: &live,
                api_calls: &api,
            },
        );
        let acme = &rows[0];
        assert_eq!(acme.slug, "acme");
        assert_eq!(
            (acme.cpu_percent, acme.memory_bytes),
            (Some(12.5), Some(100))
        );
        assert_eq!(acme.cpu_limit, Some(0.5));
        assert_eq!(acme.memory_limit, Some(256 << 20));
        assert_eq!((acme.api_calls, acme.api_quota), (Some(42), Some(10_000)));
        assert_eq!(acme.started_at, Some(1_000));
        assert_eq!(acme.file.as_deref(), Some("tenants/two.yaml"));
        assert_eq!(acme.sync, Some(SyncStatus::Synced));
        // Stopped: no live usage and no uptime, whatever a stale reading says.
        let hooli = &rows[1];
        assert_eq!(
            (hooli.cpu_percent, hooli.memory_bytes, hooli.started_at),
            (None, None, None)
        );
        assert_eq!(hooli.api_calls, None);
        // Not in git: the limits come from the plan's database row, and there is no file.
        let gone = &rows[2];
        assert_eq!(gone.file, None);
        assert_eq!(
            (gone.cpu_limit, gone.memory_limit, gone.api_quota),
            (Some(2.0), Some(1 << 30), None)
        );
    }

    #[test]
    fn the_header_takes_the_newest_run_and_the_newest_success() {
        let run = |id: i64, status: &str, revision: &str| RunRow {
            id,
            started_at: id * 10,
            finished_at: (status != "running").then_some(id * 10 + 5),
            revision: revision.into(),
            status: status.into(),
            summary: String::new(),
        };
        let runs = [run(3, "failed", "c"), run(2, "succeeded", "b")];
        let h = header("ns", Some("c".into()), 4, &runs, Reconciler::None, None);
        assert_eq!(h.applied_revision.as_deref(), Some("b"));
        assert_eq!(h.last_reconcile, Some(35));
        assert_eq!(h.last_reconcile_status.as_deref(), Some("failed"));
        assert_eq!(h.pending_changes, 4);
        let h = header(
            "ns",
            None,
            0,
            &[run(5, "running", "d")],
            Reconciler::None,
            None,
        );
        assert_eq!((h.last_reconcile, h.applied_revision), (Some(50), None));
    }

    #[test]
    fn an_invalid_commit_is_one_line() {
        let diags = vec![crate::model::Diagnostic {
            path: "tenants/x.yaml".into(),
            line: 2,
            column: 7,
            message: "bad slug".into(),
            hint: Some("use lower case".into()),
        }];
        let why = invalid_reason("0123456789abcdef", "HEAD", &diags);
        assert_eq!(
            why,
            "revision 0123456789ab is invalid: tenants/x.yaml:2:7: bad slug (1 problem; `tenantctl validate --ref HEAD` lists them)"
        );
        assert!(!why.contains('\n'));
    }
}
