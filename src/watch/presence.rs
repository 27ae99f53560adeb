//! Presence: while a reconcile loop runs (`tenantctl watch`, or the dashboard's own), it keeps a
//! lease named [`LEASE`] in the database, so a dashboard can tell that a loop runs and attach to
//! it read-only. Presence only: a second loop neither waits nor exits because of it.

use crate::apply::lock::{holder_id, holder_is_dead, hostname};
use crate::store::{LockRow, Store, StoreError, now_unix};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The lease's name in the locks table.
pub const LEASE: &str = "watch";
/// A loop that stops renewing (killed, host gone) stops being seen after this long.
const TTL: Duration = Duration::from_secs(30);
/// Renewed this often, idle or not: well within the TTL.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Who runs the loop: the last part of the holder string `host:pid:start:role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `tenantctl watch`: SIGHUP makes it sync now.
    Watch,
    /// `tenantctl tui` running the loop in-process: SIGHUP would end it (its terminal hung up).
    Dashboard,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Watch => "watch",
            Role::Dashboard => "tui",
        }
    }
}

/// A lease holder, parsed: `host:pid:start:role` (older holders have no role).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub role: Option<String>,
}

impl Holder {
    pub fn parse(text: &str) -> Option<Holder> {
        let mut parts = text.split(':');
        let host = parts.next()?.to_string();
        let pid = parts.next()?.parse().ok()?;
        let _start = parts.next()?;
        let role = parts.next().map(str::to_string);
        Some(Holder { host, pid, role })
    }

    /// The process id, when the holder runs on this host.
    pub fn local_pid(&self) -> Option<u32> {
        (self.host == hostname()).then_some(self.pid)
    }

    /// A `tenantctl watch` on this host, which syncs now on SIGHUP.
    pub fn local_watch_pid(&self) -> Option<u32> {
        self.local_pid()
            .filter(|_| self.role.as_deref() == Some(Role::Watch.as_str()))
    }
}

/// The lease a running loop holds, kept renewed in the background until released.
pub struct Presence {
    store: Store,
    holder: String,
    renewal: JoinHandle<()>,
}

impl Presence {
    /// Takes (or keeps trying to take) the lease and renews it every [`RENEW_EVERY`].
    pub fn start(store: Store, role: Role) -> Presence {
        let holder = format!("{}:{}", holder_id(), role.as_str());
        let (s, h) = (store.clone(), holder.clone());
        let renewal = tokio::spawn(async move {
            let mut other: Option<String> = None;
            loop {
                match s.try_lock(LEASE, &h, TTL).await {
                    Ok(true) => other = None,
                    Ok(false) => {
                        // Another loop is present: say so once; a dead one on this host is replaced.
                        if let Ok(Some(info)) = s.lock_info(LEASE).await {
                            if holder_is_dead(&info.holder) {
                                let _ = s.unlock(LEASE, &info.holder).await;
                                continue;
                            }
                            if other.as_deref() != Some(info.holder.as_str()) {
                                tracing::warn!(holder = %info.holder, "another reconcile loop runs against this database");
                                other = Some(info.holder);
                            }
                        }
                    }
                    Err(e) => tracing::debug!("renewing the presence lease failed: {e}"),
                }
                tokio::time::sleep(RENEW_EVERY).await;
            }
        });
        Presence {
            store,
            holder,
            renewal,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Stops renewing and gives the lease back (if the database is down, it expires by itself).
    pub async fn release(self) {
        self.renewal.abort();
        if let Err(e) = self.store.unlock(LEASE, &self.holder).await {
            tracing::debug!("releasing the presence lease failed (it expires by itself): {e}");
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// The loop present in this database, if any: a lease that has not expired, held by a process
/// other than this one that is not known to be dead.
pub async fn present(store: &Store) -> Result<Option<LockRow>, StoreError> {
    let Some(row) = store.lock_info(LEASE).await? else {
        return Ok(None);
    };
    Ok(live(row, now_unix(), std::process::id()))
}

/// [`present`]'s rule, pure but for the `/proc` check of a holder on this host.
fn live(row: LockRow, now: i64, me: u32) -> Option<LockRow> {
    if row.expires_at <= now || holder_is_dead(&row.holder) {
        return None;
    }
    let ours = Holder::parse(&row.holder)
        .and_then(|h| h.local_pid())
        .is_some_and(|pid| pid == me);
    (!ours).then_some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(holder: &str, expires_at: i64) -> LockRow {
        LockRow {
            name: LEASE.into(),
            holder: holder.into(),
            acquired_at: 0,
            expires_at,
        }
    }

    #[test]
    fn holders_parse_with_and_without_a_role() {
        assert_eq!(
            Holder::parse("h:42:1700000000:watch"),
            Some(Holder {
                host: "h".into(),
                pid: 42,
                role: Some("watch".into())
            })
        );
        assert_eq!(Holder::parse("h:42:1").map(|h| h.role), Some(None));
        assert_eq!(Holder::parse("h:x:1"), None);
        assert_eq!(Holder::parse("garbage"), None);
    }

    #[test]
    fn only_a_local_watch_takes_sighup() {
        let here = hostname();
        let watch = Holder::parse(&format!("{here}:42:1:watch")).map(|h| h.local_watch_pid());
        assert_eq!(watch, Some(Some(42)));
        let tui = Holder::parse(&format!("{here}:42:1:tui")).map(|h| h.local_watch_pid());
        assert_eq!(tui, Some(None));
        let elsewhere = Holder::parse("not-this-host.invalid:42:1:watch").map(|h| h.local_pid());
        assert_eq!(elsewhere, Some(None));
    }

    #[test]
    fn expired_and_own_leases_are_not_a_loop() {
        let elsewhere = "not-this-host.invalid:42:1:watch";
        assert!(live(row(elsewhere, 100), 50, 7).is_some());
        assert!(live(row(elsewhere, 100), 100, 7).is_none(), "expired");
        // This very process (the dashboard's own loop) is not "another loop".
        let me = std::process::id();
        let own = format!("{}:{me}:1:tui", hostname());
        assert!(live(row(&own, 100), 50, me).is_none());
        // A live process on this host (this one, seen from another pid) is present.
        assert!(live(row(&own, 100), 50, me.wrapping_add(1)).is_some());
    }
}
