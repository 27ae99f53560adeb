//! One writer: applies are serialised by a lease row in the database, so it also holds across
//! hosts sharing one PostgreSQL.

use crate::store::{Store, StoreError, now_unix};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub const LOCK_NAME: &str = "apply";
/// A lease this long survives a stalled renewal or two; a crashed holder frees it after it.
const TTL: Duration = Duration::from_secs(30);
const RENEW_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the state is locked by {holder} (since {since}s ago, lease ends in {left}s); another apply is running. Wait for it, or retry with --lock-timeout 2m"
    )]
    Locked {
        holder: String,
        since: i64,
        left: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A held lease, renewed in the background until released.
pub struct ApplyLock {
    store: Store,
    holder: String,
    renewal: JoinHandle<()>,
}

/// `host:pid:start` — enough to tell a crashed holder on this host from a live one.
pub fn holder_id() -> String {
    format!("{}:{}:{}", hostname(), std::process::id(), now_unix())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// True when the holder ran on this host and its process is gone (killed, crashed).
pub(crate) fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.split(':');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    host == hostname()
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

impl ApplyLock {
    /// Takes the lock, waiting up to `timeout` for another holder; a dead holder on this host is taken over at once.
    pub async fn acquire(store: &Store, timeout: Duration) -> Result<ApplyLock, LockError> {
        let holder = holder_id();
        let started = Instant::now();
        loop {
            if store.try_lock(LOCK_NAME, &holder, TTL).await? {
                break;
            }
            let info = store.lock_info(LOCK_NAME).await?;
            if let Some(info) = &info
                && holder_is_dead(&info.holder)
            {
                tracing::warn!(holder = %info.holder, "taking over the apply lock of a process that no longer runs");
                store.unlock(LOCK_NAME, &info.holder).await?;
                continue;
            }
            if started.elapsed() >= timeout {
                let now = now_unix();
                let (holder, since, left) = info
                    .map(|i| (i.holder, now - i.acquired_at, (i.expires_at - now).max(0)))
                    .unwrap_or_else(|| ("another process".into(), 0, 0));
                return Err(LockError::Locked {
                    holder,
                    since,
                    left,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let (s, h) = (store.clone(), holder.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match s.try_lock(LOCK_NAME, &h, TTL).await {
                    Ok(true) => {}
                    Ok(false) => tracing::error!("the apply lock was taken by another holder"),
                    Err(e) => tracing::warn!("renewing the apply lock failed: {e}"),
                }
            }
        });
        Ok(ApplyLock {
            store: store.clone(),
            holder,
            renewal,
        })
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    pub async fn release(self) {
        self.renewal.abort();
        if let Err(e) = self.store.unlock(LOCK_NAME, &self.holder).await {
            tracing::warn!("releasing the apply lock failed (it expires by itself): {e}");
        }
    }
}
