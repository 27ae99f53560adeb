//! The reconcile loop, when it runs in the dashboard's process: its progress becomes activity
//! lines, and the dashboard's syncs reach it as [`Demand`]s.

use super::Shared;
use crate::apply::Progress;
use crate::runtime::Runtime;
use crate::store::Store;
use crate::tui::data::Update;
use crate::watch::{Demand, DemandReply, WatchConfig, Watcher};
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

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

/// Starts the loop in this process; it stops once `stop` is set, after the pass in progress.
/// Returns where the dashboard's syncs are sent, and the loop's task.
pub(super) fn start(
    watch_config: WatchConfig,
    runtime: Runtime,
    store: Store,
    shared: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> (mpsc::Sender<(Demand, DemandReply)>, JoinHandle<()>) {
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
    let watcher = Watcher::new(watch_config, runtime, store, progress.clone()).with_demands(rx);
    let _ = shared.metrics.set(watcher.metrics.clone());
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let handle = tokio::spawn(async move {
        if let Err(e) = watcher.run(shutdown).await {
            progress.line(None, &format!("the reconcile loop stopped: {e:#}"));
        }
    });
    (tx, handle)
}
