//! The poller: observes engine, database and git every `refresh` (or at once when woken) and
//! sends a whole [`Board`], or the fault that stopped it.

use super::rows::{Live, RowInputs, header, join_rows};
use super::{Observation, Reading, Shared};
use crate::model::{DesiredState, SourceFile};
use crate::plan::trial;
use crate::plan::{ObservedState, PlanOptions};
use crate::reconcile;
use crate::runtime::{
    ContainerStats, ObservedContainer, StatsMode, StatsSource, cpu_percent_between,
};
use crate::source::Repo;
use crate::status::{self, Inputs};
use crate::store::now_unix;
use crate::tui::data::{Board, BoardRow, LoopRunner, Update};
use crate::watch::cache::{Cache, KeptRows, observe_both};
use crate::watch::engine_events::{self, Pending};
use crate::watch::presence;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Live readings kept per tenant for the detail view's sparklines.
const RING: usize = 120;
/// Progress lines arrive in bursts during an apply: observe once the burst settles a little.
const REFRESH_SETTLE: Duration = Duration::from_millis(150);
/// One observation may take this long before it is reported as a fault (and retried).
const POLL_TIMEOUT: Duration = Duration::from_secs(12);
/// A full listing at least this often. The events the dashboard follows say what may mean drift
/// (a container stopped or removed), not every object made: another process's apply makes a
/// network and a volume before the container whose start names the tenant.
const RESYNC: Duration = Duration::from_secs(60);
/// Reconcile runs read to find the newest successful one.
const RUNS: i64 = 20;

/// The desired state at one commit, kept until the ref moves.
pub(super) struct Revision {
    pub(super) id: String,
    pub(super) files: Vec<SourceFile>,
    /// The model, or one line saying why the commit is invalid.
    pub(super) desired: Result<Arc<DesiredState>, String>,
}

impl Revision {
    pub(super) fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

pub(super) async fn poll_loop(
    shared: Arc<Shared>,
    observations: watch::Sender<Option<Arc<Observation>>>,
    every: Duration,
) {
    // The engine's events keep the observed state current between listings (see
    // `watch::cache`): a refresh reads again only the tenants they named.
    let events = Arc::new(Pending::default());
    let _follower = engine_events::follow(
        shared.runtime.clone(),
        events.clone(),
        Arc::new(Unsaid),
        Arc::new(crate::watch::metrics::Metrics::default()),
        engine_events::Timing::default(),
    );
    let mut poller = Poller {
        cache: Cache::new(RESYNC),
        rows: KeptRows::default(),
        events: Some(events),
        revision: None,
        previous: HashMap::new(),
        live: HashMap::new(),
        cursor: 0,
    };
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
            Ok((board, observation)) => {
                observations.send_replace(Some(observation));
                Update::Board(Box::new(board))
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

/// The follower's lines (lost, followed again) are the loop's to say, not the dashboard's.
struct Unsaid;

impl crate::apply::Progress for Unsaid {
    fn line(&self, _tenant: Option<&str>, message: &str) {
        tracing::debug!("dashboard: {message}");
    }
}

struct Poller {
    /// What the engine runs, kept current by its events.
    cache: Cache,
    /// The database's rows, read again only after they changed.
    rows: KeptRows,
    events: Option<Arc<Pending>>,
    revision: Option<Arc<Revision>>,
    /// The previous stats reading of each container, by id (CPU percent needs two).
    previous: HashMap<String, ContainerStats>,
    /// The last usage figures of each container, by id: kept between the polls that sample it.
    live: HashMap<String, Live>,
    /// Where the next poll's stats sample starts among the running containers (by id).
    cursor: usize,
}

impl Poller {
    async fn poll(&mut self, shared: &Shared) -> Result<(Board, Arc<Observation>), String> {
        let namespace = shared.runtime.namespace().to_string();
        let (revision, error) = match self.revision(shared).await {
            Ok(r) => {
                let error = r.desired.as_ref().err().cloned();
                (Some(r), error)
            }
            Err(e) => (None, Some(e)),
        };
        let desired = revision.as_ref().and_then(|r| r.desired.as_ref().ok());
        let both = observe_both(
            &mut self.cache,
            &mut self.rows,
            &shared.runtime,
            &shared.store,
            desired.map(|d| &**d),
            self.events.as_deref(),
        )
        .await;
        let observed = ObservedState {
            runtime: both.runtime.0.map_err(|e| e.to_string())?.0,
            db: both.db.0.map_err(|e| e.to_string())?.0,
        };
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
        let mut statuses = status::compute(&Inputs {
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
        let (stats, runs, counters, storage, reconciler) = tokio::join!(
            shared
                .runtime
                .stats_of(&sample, StatsMode::OneShot, StatsSource::Auto),
            shared.store.runs(RUNS),
            shared.store.usage_month_counters(&month, None),
            shared.store.latest_storage(None),
            loop_runner(shared),
        );
        let runs = runs.map_err(|e| e.to_string())?;
        let counters = counters.map_err(|e| e.to_string())?;
        let storage = storage.map_err(|e| e.to_string())?;
        for s in &mut statuses {
            s.storage_bytes = storage.get(&s.slug).map(|(_, bytes)| *bytes);
        }
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
            Board {
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
    fn record(&self, shared: &Shared, rows: &[BoardRow], now: i64) {
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
async fn loop_runner(shared: &Shared) -> LoopRunner {
    if shared.in_process {
        // The loop here leads, or stands by while another process holds the leader lease.
        let leading = shared.metrics.get().is_none_or(|m| m.leader_term() > 0);
        if leading {
            return LoopRunner::InProcess;
        }
        let leader = match shared.store.leader().await {
            Ok(Some(row)) if row.live() => Some(row.holder),
            _ => None,
        };
        return LoopRunner::Standby { leader };
    }
    match presence::present(&shared.store).await {
        Ok(Some(row)) => LoopRunner::External { holder: row.holder },
        // The store being down is reported by the poll itself.
        Ok(None) | Err(_) => LoopRunner::None,
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::container;
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
