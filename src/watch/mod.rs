//! The GitOps loop: apply each new commit, resync on a timer, repair drift with `--self-heal`,
//! suspend tenants whose trial ended. Transient faults are reported and retried with backoff;
//! the loop ends only on SIGINT/SIGTERM, after the pass in progress.
//!
//! Several loops may share one database: only the one holding the leader lease ([`leader`])
//! runs passes and meters, through a store fenced with its term; the others stand by and take
//! over when the lease lapses. A leader whose lease is lost stops the pass in progress at once.

mod beside;
pub mod cache;
pub mod endpoints;
pub mod engine_events;
pub mod hooks;
pub mod leader;
pub mod metrics;
mod pass;
pub mod presence;
mod report;

use crate::apply::{ApplyConfig, Progress, lock::LockError};
use crate::model::TenantState;
use crate::plan::{self, ObservedState, PlanOptions, trial};
use crate::reconcile::{self, Announce, ApplyRequest, Planned, ReconcileError, Scope};
use crate::runtime::Runtime;
use crate::source::Repo;
use crate::source::remote::RemoteSource;
use crate::store::{Fence, Store};
use leader::Role;
use metrics::{Metrics, TenantGauges};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub repo: PathBuf,
    pub reference: String,
    /// How often a pass runs anyway, the safety net when file events are missed.
    pub interval: Duration,
    /// How often the engine is listed whole (the observed-state cache filled again; see
    /// [`cache`]); between listings the engine's events keep it current.
    pub resync: Duration,
    /// Quiet time after the last git event before a pass starts (git writes several files per commit).
    pub debounce: Duration,
    /// Also repair drift (changes made outside git) without a new commit.
    pub self_heal: bool,
    /// Template for each apply: namespace, parallelism, attempts, pool, prune.
    pub apply: ApplyConfig,
    /// Follow this remote branch (fetched into a cache each pass) instead of the local repository.
    pub remote: Option<RemoteSource>,
    /// Sample usage this often (engine stats and site counters); `None` turns metering off.
    pub meter_interval: Option<Duration>,
    /// Copy each tenant container's new output into the database this often (the log history,
    /// see [`crate::loghistory`]); `None` turns it off.
    pub log_sync_interval: Option<Duration>,
    /// Stored log lines older than this are pruned.
    pub log_retention: Duration,
    /// The leader lease's length: a leader that dies is replaced within it.
    pub lease_ttl: Duration,
    /// A revision removing more tenants' containers than this is skipped, not applied.
    pub max_destroy: crate::reconcile::DestroyLimit,
    /// Where new API keys are appended (0600); they are never printed.
    pub keys_file: PathBuf,
}

/// How often the engine is listed whole unless `--resync` says otherwise.
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(600);

/// Work that runs beside the loop while it waits (metering, the log history).
type BesideLoop = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Which jobs a [`BesideLoop`] holds, so each one's clock restarts only when it ran.
#[derive(Debug, Clone, Copy)]
struct BesideJobs {
    meter: bool,
    logs: bool,
}

/// Why a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Start,
    GitChange,
    Timer,
    /// SIGHUP: fetch and apply now.
    Demand,
    /// Someone asked through [`Watcher::with_demands`]; the demand rides beside the trigger.
    Asked,
    /// The engine's events (drift, or the stream followed again); the cause rides beside.
    Engine,
    /// A verified push webhook (`POST /hooks/git`): fetch and apply now.
    Hook,
}

/// A sync someone asks the loop for (the dashboard's keys). Unlike a timer pass it applies
/// what is pending even without `--self-heal`: a person asked for exactly that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Demand {
    SyncAll,
    /// A pass limited to one tenant (plan and theme records are always included).
    SyncTenant(String),
}

/// Where the answer to a [`Demand`] goes when its pass ends: what was done, or why not.
pub type DemandReply = oneshot::Sender<Result<String, String>>;

/// How a pass ended, for whoever asked for it.
struct PassOutcome {
    ok: bool,
    message: String,
}

impl PassOutcome {
    fn ok(message: impl Into<String>) -> PassOutcome {
        PassOutcome {
            ok: true,
            message: message.into(),
        }
    }

    fn refused(message: impl Into<String>) -> PassOutcome {
        PassOutcome {
            ok: false,
            message: message.into(),
        }
    }
}

pub struct Watcher {
    config: WatchConfig,
    runtime: Runtime,
    /// The database as opened: presence, the election and reads.
    base: Store,
    /// What passes and the meter write through: `base` fenced with the leader's term.
    store: Store,
    progress: Arc<dyn Progress>,
    pub metrics: Arc<Metrics>,
    /// The election's standing and the webhooks' "sync now", shared with [`endpoints`].
    pub control: Arc<endpoints::Control>,
    /// The revision last applied without failures; a different HEAD is a new commit to apply.
    applied: Option<String>,
    /// An invalid revision is reported once, not every pass.
    reported_invalid: Option<String>,
    /// So is a revision refused for removing too many tenants.
    reported_destroy: Option<String>,
    /// Tenants last seen Degraded: `tenant.degraded` is recorded as one becomes so.
    degraded: std::collections::BTreeSet<String>,
    /// The revision and tenants (`""` for plan and theme records) whose drift was recorded:
    /// `drift` is recorded once per tenant while it lasts, again at another revision.
    drifted: (String, std::collections::BTreeSet<String>),
    /// The last valid effective desired state, which the meter compares usage with.
    last_desired: Option<Arc<crate::model::DesiredState>>,
    last_meter: Option<Instant>,
    last_log_sync: Option<Instant>,
    /// Syncs asked for by a dashboard running this loop in-process.
    demands: Option<mpsc::Receiver<(Demand, DemandReply)>>,
    /// How the engine's events are folded into passes and their stream reconnected.
    pub event_timing: engine_events::Timing,
    /// What the engine runs, kept current by its events (see [`cache`]).
    cache: cache::Cache,
    /// The events followed while leading: which tenants they named, which stream is followed.
    pending: Option<Arc<engine_events::Pending>>,
    /// The database's side of the last pass, read again only after its rows changed.
    rows: cache::KeptRows,
    /// The last valid revision read and its desired state: a pass at the same commit does not
    /// read and parse every file again.
    loaded: Option<(String, Arc<crate::model::DesiredState>)>,
}

impl Watcher {
    pub fn new(
        config: WatchConfig,
        runtime: Runtime,
        store: Store,
        progress: Arc<dyn Progress>,
    ) -> Watcher {
        let resync = config.resync;
        Watcher {
            config,
            runtime,
            base: store.clone(),
            store,
            progress,
            metrics: Arc::new(Metrics::default()),
            control: Arc::default(),
            applied: None,
            reported_invalid: None,
            reported_destroy: None,
            degraded: Default::default(),
            drifted: Default::default(),
            last_desired: None,
            last_meter: None,
            last_log_sync: None,
            demands: None,
            event_timing: engine_events::Timing::default(),
            cache: cache::Cache::new(resync),
            pending: None,
            rows: cache::KeptRows::default(),
            loaded: None,
        }
    }

    /// Makes this the loop of a dashboard: each [`Demand`] received runs a pass at once (after
    /// the one in progress) and is answered on its reply. SIGHUP is left to the dashboard (there
    /// it means the terminal hung up), and the presence lease says `tui` rather than `watch`.
    pub fn with_demands(mut self, demands: mpsc::Receiver<(Demand, DemandReply)>) -> Watcher {
        self.demands = Some(demands);
        self
    }

    fn role(&self) -> presence::HolderKind {
        if self.demands.is_some() {
            presence::HolderKind::Dashboard
        } else {
            presence::HolderKind::Watch
        }
    }

    /// Runs until `shutdown` resolves; returns after the pass in progress finishes. Holds its
    /// presence row ([`presence::LEASE`]) all the while, and takes part in the leader election:
    /// passes run only while this loop leads.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        let holder = format!(
            "{}:{}",
            crate::apply::lock::holder_id(),
            self.role().as_str()
        );
        let host = crate::apply::lock::hostname();
        if let Err(e @ crate::store::StoreError::SharedSqlite { .. }) =
            self.base.refuse_other_hosts(&host).await
        {
            return Err(e.into());
        }
        let presence =
            presence::Presence::start(self.base.clone(), holder.clone(), self.config.lease_ttl);
        let elector =
            leader::Elector::start(self.base.clone(), holder, host, self.config.lease_ttl);
        self.control.follow(elector.role());
        let result = self.run_loop(shutdown, elector.role()).await;
        elector.release().await;
        presence.release().await;
        result
    }

    async fn run_loop(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
        mut roles: tokio::sync::watch::Receiver<Role>,
    ) -> anyhow::Result<()> {
        let (tx, mut events) = mpsc::channel::<()>(64);
        let _fs_watch = self.watch_git(tx)?;
        tokio::pin!(shutdown);
        let mut demands = self.demands.take();
        let mut hangup = match demands {
            Some(_) => None,
            None => tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
        };
        let mut told: Option<String> = None;
        'standby: loop {
            // Standing by until this loop leads; said once per leader (or fault).
            let (fence, previous) = loop {
                let role = roles.borrow_and_update().clone();
                let (say, leader) = match role {
                    Role::Leader { fence, previous } if fence.is_valid() => {
                        break (fence, previous);
                    }
                    Role::Refused(why) => anyhow::bail!(why),
                    Role::Standby { error: Some(e), .. } => {
                        (Some(format!("standing by: {e}")), None)
                    }
                    Role::Standby {
                        leader: Some(l), ..
                    } if l.live() => (
                        Some(format!(
                            "standing by: leader is {} (term {}); taking over if its lease lapses",
                            l.holder, l.term
                        )),
                        Some(l.holder),
                    ),
                    _ => (None, None),
                };
                if let Some(say) = say
                    && told.as_deref() != Some(say.as_str())
                {
                    self.progress.line(None, &say);
                    told = Some(say);
                }
                let leader = leader.unwrap_or_else(|| "another process".to_string());
                tokio::select! {
                    () = &mut shutdown => {
                        self.progress.line(None, "stopping: standing by, nothing in progress");
                        return Ok(());
                    }
                    changed = roles.changed() => if changed.is_err() {
                        anyhow::bail!("the leader election stopped");
                    },
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                        self.progress.line(None, &format!("SIGHUP: standing by; the leader ({leader}) applies"));
                    }
                    Some((_, reply)) = async { match demands.as_mut() { Some(d) => d.recv().await, None => std::future::pending().await } } => {
                        let _ = reply.send(Err(format!("standing by: {leader} leads and applies; sync there")));
                    }
                    // Git moved: the leader applies it.
                    Some(()) = events.recv() => {}
                }
            };
            told = None;
            self.progress.line(
                None,
                &match previous {
                    Some(p) => format!(
                        "leading (term {}): took over from {} (term {}), whose lease lapsed",
                        fence.term, p.holder, p.term
                    ),
                    None => format!(
                        "leading (term {}): the lease lasts {:.1}s and is renewed every {:.1}s",
                        fence.term,
                        self.config.lease_ttl.as_secs_f64(),
                        leader::Timing::of(self.config.lease_ttl)
                            .renew_every
                            .as_secs_f64()
                    ),
                },
            );
            self.store = self.base.fenced(fence.clone());
            self.metrics.set_leader_term(fence.term);
            // Whatever the last leader did, this one re-observes everything before it acts.
            self.applied = None;
            self.forget_observed();
            match self.store.interrupt_runs_before(fence.term).await {
                Ok(0) => {}
                Ok(n) => self.progress.line(
                    None,
                    &format!(
                        "marked {n} run{} left running by an earlier leader as interrupted",
                        if n == 1 { "" } else { "s" }
                    ),
                ),
                Err(e) => tracing::warn!("marking interrupted runs failed: {e}"),
            }
            self.lead(
                &fence,
                &mut shutdown,
                &mut events,
                &mut hangup,
                &mut demands,
            )
            .await?;
            if !fence.is_valid() {
                self.lost(&fence).await;
                continue 'standby;
            }
            return Ok(());
        }
    }

    /// Passes and metering while `fence` holds. Returns when it is lost (the pass in progress is
    /// stopped where it is) or on shutdown (after the pass in progress).
    async fn lead(
        &mut self,
        fence: &Fence,
        shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
        events: &mut mpsc::Receiver<()>,
        hangup: &mut Option<tokio::signal::unix::Signal>,
        demands: &mut Option<mpsc::Receiver<(Demand, DemandReply)>>,
    ) -> anyhow::Result<()> {
        let mut timer = tokio::time::interval(self.config.interval);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await; // the first tick is immediate: the start pass covers it
        // Only the leader follows the engine's events; the follower stops when this returns.
        let pending = Arc::new(engine_events::Pending::default());
        let _follower = engine_events::follow(
            self.runtime.clone(),
            pending.clone(),
            self.progress.clone(),
            self.metrics.clone(),
            self.event_timing,
        );
        self.pending = Some(pending.clone());
        // The first pass lists everything once the events are followed, so they keep it current.
        pending.wait_following(Duration::from_secs(2)).await;
        let timing = self.event_timing;
        let mut trigger = Trigger::Start;
        let mut cause: Option<engine_events::Cause> = None;
        let mut asked: Option<(Demand, DemandReply)> = None;
        let mut failures = 0u32;
        let control = self.control.clone();
        // Notifications go out beside the passes, through the leader's fenced store.
        let _deliverer = crate::notify::deliver::spawn(self.store.clone());
        loop {
            let started = Instant::now();
            let (demand, reply) = match asked.take() {
                Some((d, r)) => (Some(d), Some(r)),
                None => (None, None),
            };
            // A whole pass covers whatever the engine reported before it starts; what comes
            // during it (its own replacements among it) makes at most one more pass.
            if !matches!(demand, Some(Demand::SyncTenant(_))) {
                let covered = pending.take();
                if trigger == Trigger::Engine {
                    cause = cause.or(covered);
                }
            }
            if trigger == Trigger::Hook {
                self.metrics.hook_pass();
            }
            if let Some(why) = cause.take() {
                let (tenant, action) = why.tenant_and_action();
                tracing::info!(tenant, action, "pass on an engine event: {why}");
                self.progress.line(None, &format!("{why}: reconciling now"));
                self.metrics.event_pass();
            }
            // Biased: a lease already lost wins over a pass that could start.
            let result = tokio::select! {
                biased;
                () = fence.lost() => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err("this loop lost the leader lease; the pass was stopped".into()));
                    }
                    return Ok(());
                }
                result = self.pass(trigger, demand.as_ref()) => result,
            };
            self.metrics
                .pass(started.elapsed().as_secs_f64(), result.is_ok());
            if let Some(reply) = reply {
                let answer = match &result {
                    Ok(o) if o.ok => Ok(o.message.clone()),
                    Ok(o) => Err(o.message.clone()),
                    Err(e) => Err(format!("{e:#}")),
                };
                let _ = reply.send(answer);
            }
            let wait = match result {
                Ok(_) => {
                    failures = 0;
                    None
                }
                Err(_) if !fence.is_valid() => return Ok(()),
                Err(e) => {
                    failures += 1;
                    // Exponential backoff, capped: a stopped engine or database is waited out, never spun on.
                    let delay = Duration::from_secs(1u64 << failures.min(6))
                        .min(self.config.interval.max(Duration::from_secs(1)));
                    self.progress.line(
                        None,
                        &format!("pass failed ({e:#}); retrying in {}s", delay.as_secs()),
                    );
                    Some(delay)
                }
            };
            // A signal that came during the pass: it was let finish, and nothing more starts.
            if futures_util::FutureExt::now_or_never(shutdown.as_mut()).is_some() {
                self.progress
                    .line(None, "stopping: the pass in progress finished");
                return Ok(());
            }
            let retry_at = wait.map(|d| tokio::time::Instant::now() + d);
            // Metering runs while the loop waits; a git event or signal cancels it (it is retried later).
            let mut meter = self.meter_due();
            // Once it ran, the next job beside the loop is armed for when it is due.
            let mut beside_at = if meter.is_none() {
                self.beside_next()
            } else {
                None
            };
            let mut resync_pending = false;
            trigger = loop {
                tokio::select! {
                    () = &mut *shutdown => {
                        self.progress.line(None, "stopping: no pass in progress");
                        return Ok(());
                    }
                    () = fence.lost() => return Ok(()),
                    () = async { tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)).await }, if retry_at.is_some() => break Trigger::Timer,
                    _ = timer.tick() => {
                        // A resync can wait for the meter to finish; commits and signals cannot.
                        if meter.is_none() {
                            break Trigger::Timer;
                        }
                        resync_pending = true;
                    }
                    Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                        self.progress.line(None, "SIGHUP: syncing now");
                        break Trigger::Demand;
                    }
                    () = control.asked() => {
                        self.progress.line(None, "webhook: fetching and syncing now");
                        break Trigger::Hook;
                    }
                    Some(demand) = async { match demands.as_mut() { Some(d) => d.recv().await, None => std::future::pending().await } } => {
                        asked = Some(demand);
                        break Trigger::Asked;
                    }
                    Some(()) = events.recv() => {
                        // Let the commit finish writing; fold the burst of events into one pass.
                        loop {
                            tokio::select! {
                                () = tokio::time::sleep(self.config.debounce) => break,
                                Some(()) = events.recv() => continue,
                            }
                        }
                        break Trigger::GitChange;
                    }
                    () = pending.wait() => {
                        // Fold the burst (kill, die, disconnect, destroy...) into one pass, but
                        // never wait past `most` after the first event.
                        let until = tokio::time::Instant::now() + timing.most;
                        loop {
                            tokio::select! {
                                () = tokio::time::sleep(timing.quiet) => break,
                                () = tokio::time::sleep_until(until) => break,
                                () = pending.wait() => continue,
                            }
                        }
                        // Nothing left: a pass that started after these events covered them.
                        if let Some(why) = pending.take() {
                            cause = Some(why);
                            break Trigger::Engine;
                        }
                    }
                    () = async { if let Some(at) = beside_at { tokio::time::sleep_until(at).await } }, if meter.is_none() && beside_at.is_some() => {
                        meter = self.meter_due();
                        beside_at = if meter.is_none() { self.beside_next() } else { None };
                    }
                    () = async { if let Some((m, _)) = meter.as_mut() { m.await } }, if meter.is_some() => {
                        if let Some((_, jobs)) = meter.take() {
                            if jobs.meter {
                                self.last_meter = Some(Instant::now());
                            }
                            if jobs.logs {
                                self.last_log_sync = Some(Instant::now());
                            }
                        }
                        beside_at = self.beside_next();
                        if resync_pending {
                            break Trigger::Timer;
                        }
                    }
                }
            };
        }
    }

    /// After the lease is lost: say so, and give back the apply lock a stopped pass may hold
    /// (only its own row; otherwise it lapses, or the next leader takes it over).
    async fn lost(&mut self, fence: &Fence) {
        self.metrics.set_leader_term(0);
        self.progress.line(
            None,
            &format!(
                "lost the leader lease (term {}): stopped applying; standing by",
                fence.term
            ),
        );
        let mine = crate::apply::lock::leader_holder(&fence.holder, fence.term);
        let unlock = self.base.unlock(crate::apply::lock::LOCK_NAME, &mine);
        let _ = tokio::time::timeout(Duration::from_secs(2), unlock).await;
    }

    /// inotify on the refs git moves when someone commits; any event only means "maybe changed".
    fn watch_git(
        &self,
        tx: mpsc::Sender<()>,
    ) -> anyhow::Result<Option<notify::RecommendedWatcher>> {
        use notify::{RecursiveMode, Watcher as _};
        if self.config.remote.is_some() {
            // Nobody commits here: the interval and SIGHUP trigger fetches.
            return Ok(None);
        }
        let repo = Repo::discover(&self.config.repo)?;
        let mut watcher =
            match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    let _ = tx.try_send(());
                }
            }) {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!("file events unavailable ({e}); relying on the resync timer");
                    return Ok(None);
                }
            };
        let (git, common) = (
            repo.git_dir().to_path_buf(),
            repo.common_dir().to_path_buf(),
        );
        let mut targets = vec![
            (git.join("HEAD"), RecursiveMode::NonRecursive),
            (common.join("refs"), RecursiveMode::Recursive),
        ];
        // packed-refs is replaced by rename: watch its directory, not the file.
        targets.push((common.clone(), RecursiveMode::NonRecursive));
        for (path, mode) in targets {
            if path.exists()
                && let Err(e) = watcher.watch(&path, mode)
            {
                tracing::warn!("cannot watch {}: {e}", path.display());
            }
        }
        Ok(Some(watcher))
    }
}

#[cfg(test)]
mod tests;
