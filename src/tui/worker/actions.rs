//! The user's confirmed actions: syncs (through the loop in this process, or SIGHUP to a local
//! `tenantctl watch`) and restarts under the apply lock.

use super::Shared;
use crate::apply::lock::{ApplyLock, LockError};
use crate::tui::data::UserAction;
use crate::watch::presence::{self, Holder};
use crate::watch::{Demand, DemandReply};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// `docker restart -t`: how long the site has to stop before it is killed.
const RESTART_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a restart waits for an apply in progress to finish.
const RESTART_LOCK_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn act(
    shared: &Shared,
    action: &UserAction,
    demands: Option<mpsc::Sender<(Demand, DemandReply)>>,
) -> Result<String, String> {
    match action {
        UserAction::SyncAll | UserAction::SyncTenant(_) => {
            let demand = match action {
                UserAction::SyncTenant(slug) => Demand::SyncTenant(slug.clone()),
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
        UserAction::Restart(slug) => {
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
