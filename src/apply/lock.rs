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

/// The apply lock's holder for a watch leader's pass: the leader's holder and its term, so a
/// later leader can tell a deposed leader's lock from a live apply.
pub fn leader_holder(holder: &str, term: i64) -> String {
    format!("{holder}:term={term}")
}

/// The term of a watch leader that holds the apply lock, if it is one.
fn leader_term(holder: &str) -> Option<i64> {
    holder.rsplit_once(":term=")?.1.parse().ok()
}

impl ApplyLock {
    /// Takes the lock, waiting up to `timeout` for another holder; a dead holder on this host is
    /// taken over at once. Through a fenced store (a watch leader's pass), the lock is held in the
    /// leader's name and term, and a lock left by the leader of an earlier term is taken over at
    /// once too: that leader stopped applying before its lease lapsed.
    pub async fn acquire(store: &Store, timeout: Duration) -> Result<ApplyLock, LockError> {
        let holder = match store.fence() {
            Some(f) => leader_holder(&f.holder, f.term),
            None => {
                // A SQLite file in use by another host's loop is refused before anything is done.
                store.refuse_other_hosts(&hostname()).await?;
                holder_id()
            }
        };
        let my_term = store.fence().map(|f| f.term);
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
            if let (Some(info), Some(mine)) = (&info, my_term)
                && leader_term(&info.holder).is_some_and(|t| t < mine)
            {
                tracing::warn!(holder = %info.holder, "taking over the apply lock of a deposed leader");
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

/// A pass stopped mid-way (its leader lost the lease) drops its lock unreleased: renewing stops,
/// and the row lapses or is taken over by the next leader.
impl Drop for ApplyLock {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_holders_carry_their_term() {
        let h = leader_holder("host:42:1700000000:watch", 7);
        assert_eq!(h, "host:42:1700000000:watch:term=7");
        assert_eq!(leader_term(&h), Some(7));
        assert_eq!(leader_term("host:42:1700000000"), None);
        assert_eq!(leader_term("host:42:1:watch:term=x"), None);
    }
}
