//! Leader election among reconcile loops sharing one database: exactly one applies.
//!
//! Every loop runs an [`Elector`] beside it. A standby tries to take the lease
//! ([`Store::acquire_leader`]) every [`Timing::retry_every`]; it succeeds only once the lease is
//! free or has lapsed by the database's clock, so a live leader is never stolen from. A loop
//! whose fence was lost while its own lease lived on (a renewal that reached the database but
//! answered after the deadline) takes it back at its next attempt, in a new term, rather than
//! standing by behind itself until the lease lapses. The leader
//! renews every [`Timing::renew_every`] and holds a [`Fence`] whose local deadline it keeps at
//! `renewal sent + ttl - margin`: measured from before the statement was sent, on this host's
//! monotonic clock, it always falls before the lease's end as the database sees it. When the
//! deadline passes without a renewal (database unreachable, process stalled) or a renewal finds
//! the lease gone, the fence is lost: the loop stops the pass in progress and stands by, and
//! every write made under the fence is refused from then on.

use crate::store::{Fence, LeaderRow, Store, StoreError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The lease's length unless `--lease-ttl` says otherwise: a dead leader is replaced within it.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

/// How often things happen for a lease of `ttl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub ttl: Duration,
    /// The leader renews this often: two renewals may fail before the lease is in danger.
    pub renew_every: Duration,
    /// A standby tries to take the lease this often; so does a leader whose renewal failed.
    pub retry_every: Duration,
    /// The leader stops this long before the lease's end (clock rate drift, work in flight).
    pub margin: Duration,
}

impl Timing {
    pub fn of(ttl: Duration) -> Timing {
        let ttl = ttl.max(Duration::from_millis(500));
        Timing {
            ttl,
            renew_every: ttl / 3,
            retry_every: (ttl / 5).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            margin: ttl / 5,
        }
    }

    /// The local deadline of a lease (re)newed by a statement sent at `sent`.
    pub fn deadline(&self, sent: Instant) -> Instant {
        sent + self.ttl - self.margin
    }
}

/// What this loop is, as the elector last found.
#[derive(Debug, Clone)]
pub enum Role {
    /// The first attempt is in flight.
    Starting,
    /// This loop leads; `previous` is the leader it took over from, when it saw one.
    Leader {
        fence: Fence,
        previous: Option<LeaderRow>,
    },
    /// Another loop leads (`leader`, when known), or the database could not be asked (`error`).
    Standby {
        leader: Option<LeaderRow>,
        error: Option<String>,
    },
    /// This loop must not run against this database (a SQLite file another host uses).
    Refused(String),
}

impl Role {
    /// The same standing for a person reading the log: same leader and term, same error.
    fn same_as(&self, other: &Role) -> bool {
        let key = |l: &Option<LeaderRow>| l.as_ref().map(|l| (l.holder.clone(), l.term, l.live()));
        match (self, other) {
            (Role::Starting, Role::Starting) => true,
            (Role::Leader { fence: a, .. }, Role::Leader { fence: b, .. }) => a.term == b.term,
            (
                Role::Standby {
                    leader: a,
                    error: x,
                },
                Role::Standby {
                    leader: b,
                    error: y,
                },
            ) => key(a) == key(b) && x == y,
            (Role::Refused(a), Role::Refused(b)) => a == b,
            _ => false,
        }
    }
}

/// The election running beside one loop; released (or dropped) when the loop ends.
pub struct Elector {
    store: Store,
    holder: String,
    role: watch::Receiver<Role>,
    task: JoinHandle<()>,
}

impl Elector {
    /// Starts taking part as `holder` (`host:pid:start:role`) from `host`, on a connection of
    /// its own (see [`Store::with_own_connection`]).
    pub fn start(store: Store, holder: String, host: String, ttl: Duration) -> Elector {
        let store = store.with_own_connection();
        let (tx, role) = watch::channel(Role::Starting);
        let task = tokio::spawn(elect(
            store.clone(),
            holder.clone(),
            host,
            Timing::of(ttl),
            tx,
        ));
        Elector {
            store,
            holder,
            role,
            task,
        }
    }

    /// Follows the role as it changes.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Stops taking part and gives the lease back if this loop has it, so a standby takes
    /// over at once rather than after the lease's time (if the database is down, it lapses).
    pub async fn release(self) {
        self.task.abort();
        if let Role::Leader { fence, .. } = &*self.role.borrow() {
            fence.revoke();
        }
        let give_back = async {
            // By the row rather than the role: an attempt cut short may have taken it unseen.
            if let Some(row) = self.store.leader().await?
                && row.holder == self.holder
                && row.live()
            {
                self.store.release_leader(&self.holder, row.term).await?;
            }
            Ok::<(), StoreError>(())
        };
        match tokio::time::timeout(Duration::from_secs(5), give_back).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!("giving the leader lease back failed (it lapses by itself): {e}")
            }
            Err(_) => {
                tracing::warn!("giving the leader lease back timed out (it lapses by itself)")
            }
        }
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn publish(tx: &watch::Sender<Role>, role: Role) {
    tx.send_if_modified(|current| {
        if current.same_as(&role) {
            false
        } else {
            *current = role;
            true
        }
    });
}

async fn elect(store: Store, holder: String, host: String, t: Timing, tx: watch::Sender<Role>) {
    let mut seen: Option<LeaderRow> = None;
    loop {
        if let Err(e @ StoreError::SharedSqlite { .. }) = store.refuse_other_hosts(&host).await {
            publish(&tx, Role::Refused(e.to_string()));
            return;
        }
        let sent = Instant::now();
        let mut wait = t.retry_every;
        let attempt =
            tokio::time::timeout(t.ttl, store.acquire_leader(&holder, &host, t.ttl)).await;
        match attempt {
            Ok(Ok(Some(row))) => {
                let fence = Fence::new(row.term, &holder, t.deadline(sent));
                let previous = seen.take().filter(|p| p.holder != holder);
                tx.send_replace(Role::Leader {
                    fence: fence.clone(),
                    previous,
                });
                lead(&store, &holder, &fence, &t).await;
                fence.revoke();
                seen = store.leader().await.ok().flatten();
                tx.send_replace(Role::Standby {
                    leader: seen.clone(),
                    error: None,
                });
                // Straight to the next attempt: a lapsed lease is anyone's, this loop's too.
                continue;
            }
            Ok(Ok(None)) => match store.leader().await {
                Ok(row) => {
                    // Try again when the lease lapses, if that comes before the next try.
                    if let Some(l) = &row {
                        wait = t.retry_every.min(until_lapsed(l));
                    }
                    seen = row.clone();
                    publish(
                        &tx,
                        Role::Standby {
                            leader: row,
                            error: None,
                        },
                    );
                }
                Err(e) => unreachable_db(&tx, &seen, e.to_string()),
            },
            Ok(Err(e)) => unreachable_db(&tx, &seen, e.to_string()),
            Err(_) => unreachable_db(
                &tx,
                &seen,
                format!("the database did not answer within {}s", t.ttl.as_secs()),
            ),
        }
        tokio::time::sleep(wait).await;
    }
}

/// How long until a lease read just now lapses by the database's clock, plus a little (its
/// clock counts whole milliseconds), and never less than that little.
fn until_lapsed(l: &LeaderRow) -> Duration {
    let ms = u64::try_from(l.expires_in_ms()).unwrap_or(0);
    Duration::from_millis(ms.saturating_add(5))
}

fn unreachable_db(tx: &watch::Sender<Role>, seen: &Option<LeaderRow>, error: String) {
    publish(
        tx,
        Role::Standby {
            leader: seen.clone(),
            error: Some(format!("cannot take part in the leader election: {error}")),
        },
    );
}

/// Renews until the lease is lost; returns then (the caller revokes the fence).
async fn lead(store: &Store, holder: &str, fence: &Fence, t: &Timing) {
    let mut wait = t.renew_every;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = fence.lost() => return,
        }
        let Some(deadline) = fence.deadline() else {
            return;
        };
        let sent = Instant::now();
        let renewal = tokio::time::timeout_at(
            deadline.into(),
            store.renew_leader(holder, fence.term, t.ttl),
        );
        match renewal.await {
            Ok(Ok(Some(_))) => {
                fence.extend(t.deadline(sent));
                wait = t.renew_every;
            }
            Ok(Ok(None)) => {
                tracing::warn!(
                    term = fence.term,
                    "the leader lease is gone (it lapsed or was taken over)"
                );
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(term = fence.term, "renewing the leader lease failed: {e}");
                wait = t.retry_every;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_tries_again_when_the_lease_lapses() {
        let mut l = LeaderRow {
            name: "watch".into(),
            term: 1,
            holder: "h:1:1:watch".into(),
            host: "h".into(),
            acquired_at_ms: 0,
            renewed_at_ms: 0,
            expires_at_ms: 10_300,
            now_ms: 10_000,
        };
        assert_eq!(until_lapsed(&l), Duration::from_millis(305));
        l.now_ms = 20_000;
        assert_eq!(until_lapsed(&l), Duration::from_millis(5));
    }

    #[test]
    fn timing_leaves_room_for_failed_renewals() {
        let t = Timing::of(Duration::from_secs(10));
        assert_eq!(
            t.renew_every,
            Duration::from_millis(3333) + Duration::from_nanos(333_333)
        );
        assert_eq!(t.retry_every, Duration::from_secs(1));
        let now = Instant::now();
        assert_eq!(t.deadline(now), now + Duration::from_secs(8));
        assert!(t.renew_every * 2 < t.ttl - t.margin);
        let short = Timing::of(Duration::from_secs(2));
        assert_eq!(short.retry_every, Duration::from_millis(400));
    }

    async fn scratch() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&Store::default_url(dir.path()))
            .await
            .expect("open");
        (dir, store)
    }

    async fn until(rx: &mut watch::Receiver<Role>, what: impl Fn(&Role) -> bool) -> Role {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let role = rx.borrow_and_update().clone();
                if what(&role) {
                    return role;
                }
                if rx.changed().await.is_err() {
                    return role;
                }
            }
        })
        .await
        .expect("the role came")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_leads_the_other_stands_by_and_takes_over_on_release() {
        let (_dir, store) = scratch().await;
        let ttl = Duration::from_secs(2);
        let a = Elector::start(store.clone(), "h:1:1:watch".into(), "h".into(), ttl);
        let mut ra = a.role();
        let Role::Leader { fence, .. } = until(&mut ra, |r| matches!(r, Role::Leader { .. })).await
        else {
            unreachable!()
        };
        assert_eq!(fence.term, 1);
        let b = Elector::start(store.clone(), "h:2:1:watch".into(), "h".into(), ttl);
        let mut rb = b.role();
        let standby = until(&mut rb, |r| {
            matches!(
                r,
                Role::Standby {
                    leader: Some(_),
                    ..
                }
            )
        })
        .await;
        assert!(
            matches!(&standby, Role::Standby { leader: Some(l), .. } if l.holder == "h:1:1:watch")
        );
        // Renewals keep a's lease alive well past its ttl; b never takes it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(fence.is_valid());
        assert!(matches!(&*rb.borrow(), Role::Standby { .. }));
        let released = Instant::now();
        a.release().await;
        assert!(!fence.is_valid());
        let took = until(&mut rb, |r| matches!(r, Role::Leader { .. })).await;
        assert!(
            released.elapsed() < Duration::from_secs(2),
            "a given-back lease is taken at once"
        );
        let Role::Leader { fence, previous } = took else {
            unreachable!()
        };
        assert_eq!(fence.term, 2);
        assert_eq!(previous.map(|p| p.holder).as_deref(), Some("h:1:1:watch"));
        b.release().await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lease_is_renewed_while_the_main_pool_is_exhausted() {
        let (_dir, store) = scratch().await;
        let a = Elector::start(
            store.clone(),
            "h:1:1:watch".into(),
            "h".into(),
            Duration::from_secs(1),
        );
        let mut ra = a.role();
        let Role::Leader { fence, .. } = until(&mut ra, |r| matches!(r, Role::Leader { .. })).await
        else {
            unreachable!()
        };
        // Every connection of the main pool busy reading, for three lease lengths.
        let held: Vec<_> =
            futures_util::future::join_all((0..5).map(|_| store.hold_connection())).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(fence.is_valid(), "renewed on its own connection");
        drop(held);
        a.release().await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_leader_whose_lease_is_taken_loses_its_fence_at_the_next_renewal() {
        let (_dir, store) = scratch().await;
        let a = Elector::start(
            store.clone(),
            "h:1:1:watch".into(),
            "h".into(),
            Duration::from_secs(3),
        );
        let mut ra = a.role();
        let Role::Leader { fence, .. } = until(&mut ra, |r| matches!(r, Role::Leader { .. })).await
        else {
            unreachable!()
        };
        // Taken by force (as an operator could): a higher term for someone else.
        let forced = store.fenced(Fence::new(
            fence.term,
            "h:1:1:watch",
            Instant::now() + ttl_far(),
        ));
        forced
            .record_event(None, None, "test", "before")
            .await
            .expect("a's write");
        store
            .release_leader("h:1:1:watch", fence.term)
            .await
            .expect("lapse");
        store
            .acquire_leader("other:9:1:watch", "other", Duration::from_secs(60))
            .await
            .expect("taken");
        // A renewal comes every second; the margin is for a loaded machine.
        tokio::time::timeout(Duration::from_secs(10), fence.lost())
            .await
            .expect("lost at a renewal");
        let role = until(&mut ra, |r| matches!(r, Role::Standby { .. })).await;
        assert!(
            matches!(role, Role::Standby { leader: Some(l), .. } if l.holder == "other:9:1:watch")
        );
        a.release().await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_loop_whose_own_lease_outlived_its_fence_takes_it_back_at_once() {
        use sqlx::Connection;
        let (dir, store) = scratch().await;
        let a = Elector::start(
            store.clone(),
            "h:1:1:watch".into(),
            "h".into(),
            Duration::from_secs(5),
        );
        let mut ra = a.role();
        let Role::Leader { fence, .. } = until(&mut ra, |r| matches!(r, Role::Leader { .. })).await
        else {
            unreachable!()
        };
        // The database stalls every write (a write lock held elsewhere) past the fence's deadline,
        // and meanwhile the lease lives on for a minute, as a renewal that committed but
        // answered too late leaves it.
        let url = Store::default_url(dir.path());
        let mut stall = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut stall)
            .await
            .expect("lock");
        sqlx::query("UPDATE leader SET expires_at_ms = expires_at_ms + 60000")
            .execute(&mut stall)
            .await
            .expect("extend");
        tokio::time::timeout(Duration::from_secs(6), fence.lost())
            .await
            .expect("the fence is lost when renewals stall");
        sqlx::query("COMMIT")
            .execute(&mut stall)
            .await
            .expect("unlock");
        let back = Instant::now();
        let Role::Leader { fence, .. } = until(
            &mut ra,
            |r| matches!(r, Role::Leader { fence, .. } if fence.term > 1),
        )
        .await
        else {
            unreachable!()
        };
        assert_eq!(fence.term, 2);
        // The renewal cut off at the deadline still runs once the lock is gone, so the lease has
        // a whole ttl (5 s) left then at least.
        assert!(
            back.elapsed() < Duration::from_millis(2500),
            "taken back at once, not after the lease lapses: {:?}",
            back.elapsed()
        );
        a.release().await;
        store.close().await;
    }

    fn ttl_far() -> Duration {
        Duration::from_secs(600)
    }
}
