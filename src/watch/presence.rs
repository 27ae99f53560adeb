//! Presence: while a reconcile loop runs (`tenantctl watch`, or the dashboard's own), leader or
//! standby, it keeps a row of its own, `watch:<holder>`, in the locks table, so a dashboard can
//! tell that a loop runs and attach to it read-only, and `tenantctl status` can list the loops
//! standing by. Presence only: who applies is the leader lease's business ([`super::leader`]).

use crate::apply::lock::{holder_is_dead, hostname};
use crate::store::{LeaderRow, LockRow, Store, StoreError, now_unix};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The prefix of the rows' names in the locks table (`watch:<holder>`; older versions held one
/// row named just `watch`, which is still read).
pub const LEASE: &str = "watch";

/// What kind of process runs the loop: the last part of the holder string `host:pid:start:role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderKind {
    /// `tenantctl watch`: SIGHUP makes it sync now.
    Watch,
    /// `tenantctl tui` running the loop in-process: SIGHUP would end it (its terminal hung up).
    Dashboard,
}

impl HolderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Watch => "watch",
            HolderKind::Dashboard => "tui",
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
            .filter(|_| self.role.as_deref() == Some(HolderKind::Watch.as_str()))
    }
}

/// The lease a running loop holds, kept renewed in the background until released.
pub struct Presence {
    store: Store,
    holder: String,
    renewal: JoinHandle<()>,
}

impl Presence {
    /// Keeps the row `watch:<holder>` for `ttl` (whole seconds, at least 2), renewed every third
    /// of it, idle or not: a loop killed or cut off stops being seen within about `ttl`.
    pub fn start(store: Store, holder: String, ttl: Duration) -> Presence {
        // The locks table counts whole seconds: one more, so a row never lapses between renewals.
        let ttl = Duration::from_secs(ttl.as_secs().max(1) + 1);
        let (s, h) = (store.clone(), holder.clone());
        let renewal = tokio::spawn(async move {
            let name = row_name(&h);
            loop {
                if let Err(e) = s.try_lock(&name, &h, ttl).await {
                    tracing::debug!("renewing the presence lease failed: {e}");
                }
                tokio::time::sleep(ttl / 3).await;
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
        if let Err(e) = self
            .store
            .unlock(&row_name(&self.holder), &self.holder)
            .await
        {
            tracing::debug!("releasing the presence lease failed (it expires by itself): {e}");
        }
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

fn row_name(holder: &str) -> String {
    format!("{LEASE}:{holder}")
}

/// Every loop present in this database: rows that have not expired, held by processes other
/// than this one that are not known to be dead.
pub async fn loops(store: &Store) -> Result<Vec<LockRow>, StoreError> {
    let (now, me) = (now_unix(), std::process::id());
    Ok(store
        .lock_rows(LEASE)
        .await?
        .into_iter()
        .filter_map(|row| live(row, now, me))
        .collect())
}

/// The loop present in this database, if any (see [`loops`]): the leader's when it is present.
pub async fn present(store: &Store) -> Result<Option<LockRow>, StoreError> {
    let mut all = loops(store).await?;
    if all.is_empty() {
        return Ok(None);
    }
    let leader = store.leader().await?.filter(LeaderRow::live);
    let at = leader
        .and_then(|l| all.iter().position(|r| r.holder == l.holder))
        .unwrap_or(0);
    Ok(Some(all.swap_remove(at)))
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
