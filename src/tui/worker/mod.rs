//! The dashboard's background side: every call to Docker, git and the database happens here, in
//! tasks the render loop never waits on. They talk to the UI only through [`Update`]s, and each
//! job has its own file:
//!
//! - `poll.rs`: observes everything every `refresh` (and at once when asked, or when the loop
//!   reports progress) and sends a whole [`Board`]; it keeps the desired state of the last
//!   commit (re-read only when the ref moves) and a ring of live usage readings per tenant.
//! - `rows.rs`: what a poll shows, joined without IO: the rows and the header.
//! - `detail.rs`: rebuilds the [`Detail`] of the tenant shown whenever it changes or a new
//!   observation arrives.
//! - `logs.rs`: one task follows the shown tenant's container; lines reach the UI in batches.
//! - `actions.rs`: each runs in its own task and answers with [`Update::ActionDone`].
//! - `watcher.rs`: with `config.watch`, the reconcile loop ([`Watcher`]) runs here too, its
//!   progress forwarded as [`Update::Activity`] and its syncs asked for through [`Demand`]s.
//!
//! This file spawns them and owns the channels between them: a newer request (another tenant's
//! detail or logs) replaces the one in flight.
//!
//! [`Board`]: super::data::Board
//! [`Detail`]: super::data::Detail
//! [`Watcher`]: crate::watch::Watcher
//! [`Demand`]: crate::watch::Demand

mod actions;
mod detail;
#[cfg(test)]
mod fixtures;
mod logs;
mod poll;
mod rows;
mod watcher;

use super::data::{Request, Update};
use super::{TuiConfig, Workers};
use crate::model::DesiredState;
use crate::plan::ObservedState;
use crate::plan::trial::TrialEnded;
use crate::runtime::Runtime;
use crate::store::Store;
use poll::Revision;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

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
            let (demands, handle) = watcher::start(
                watch_config,
                config.runtime.clone(),
                config.store.clone(),
                &shared,
                stop.clone(),
            );
            (Some(demands), Some(handle))
        }
        None => (None, None),
    };

    let (observations, observed) = watch::channel::<Option<Arc<Observation>>>(None);
    let (shown, shown_rx) = watch::channel::<Option<String>>(None);
    let poller = Owned(tokio::spawn(poll::poll_loop(
        shared.clone(),
        observations,
        config.refresh.max(Duration::from_millis(200)),
    )));
    let details = Owned(tokio::spawn(detail::detail_loop(
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
                    logs = slug.map(|s| Owned(tokio::spawn(logs::follow_logs(shared.clone(), s, tail))));
                }
                Some(Request::Run(action)) => {
                    let (shared, demands) = (shared.clone(), demands.clone());
                    actions.spawn(async move {
                        let result = actions::act(&shared, &action, demands).await;
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
