//! The leader lease of the reconcile loop and fencing.
//!
//! Several `tenantctl watch` processes may share one database; exactly one of them, the leader,
//! applies. The lease is the row `leader.name = 'watch'`: taken when it is free or has lapsed,
//! or taken back by its own holder (each increments its `term`), renewed by its holder, and given back by setting it to lapse
//! now (the row, and so the term, is kept: terms only grow). Expiry is judged by the
//! database's clock, never the caller's, so hosts whose clocks disagree agree on it.
//!
//! A [`Fence`] is the right to write as the leader of one term. A store handle made with
//! [`Store::fenced`] checks it inside every write's own transaction (PostgreSQL: `SELECT … FOR
//! SHARE` on the lease row, so a takeover waits for the write or the write sees the takeover;
//! SQLite: `BEGIN IMMEDIATE`, one writer at a time), and a deposed leader's write is refused with
//! [`StoreError::Fenced`](super::StoreError::Fenced). The fence also holds a local deadline the
//! holder keeps ahead of the lease's end: once it passes, writes are refused without asking.

use super::{Pool, Store, StoreError, WriteError};
use serde::Serialize;
use sqlx::FromRow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The name of the reconcile loop's election: one leader per database.
pub const ELECTION: &str = "watch";

/// The lease row, with the database's clock at the time it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct LeaderRow {
    pub name: String,
    pub term: i64,
    /// `host:pid:start:role`, the holder's presence identity.
    pub holder: String,
    pub host: String,
    pub acquired_at_ms: i64,
    pub renewed_at_ms: i64,
    pub expires_at_ms: i64,
    /// The database's clock (unix milliseconds) when this row was read.
    pub now_ms: i64,
}

impl LeaderRow {
    /// The lease has not lapsed (by the database's clock when it was read).
    pub fn live(&self) -> bool {
        self.expires_at_ms > self.now_ms
    }

    /// Milliseconds until the lease lapses (negative: lapsed that long ago).
    pub fn expires_in_ms(&self) -> i64 {
        self.expires_at_ms - self.now_ms
    }
}

/// The statements of one backend; only the expression of "now in milliseconds" differs.
pub(super) struct LeaderSql {
    pub acquire: &'static str,
    pub renew: &'static str,
    pub release: &'static str,
    pub info: &'static str,
    /// Read inside a write's transaction: (term, holder, live).
    pub fence: &'static str,
}

macro_rules! leader_sql {
    ($now:literal, $share:literal) => {
        LeaderSql {
            // Taken when lapsed (or absent), or by its own holder whose fence was lost while the
            // lease lived on (a renewal answered late): the next term either way.
            acquire: concat!(
                "INSERT INTO leader (name, term, holder, host, acquired_at_ms, renewed_at_ms, expires_at_ms) ",
                "VALUES ($1, 1, $2, $3, ", $now, ", ", $now, ", ", $now, " + $4) ",
                "ON CONFLICT (name) DO UPDATE SET term = leader.term + 1, holder = excluded.holder, ",
                "host = excluded.host, acquired_at_ms = excluded.acquired_at_ms, ",
                "renewed_at_ms = excluded.renewed_at_ms, expires_at_ms = excluded.expires_at_ms ",
                "WHERE leader.expires_at_ms <= excluded.acquired_at_ms OR leader.holder = excluded.holder ",
                "RETURNING name, term, holder, host, acquired_at_ms, renewed_at_ms, expires_at_ms, ",
                $now, " AS now_ms"
            ),
            // Only by its holder, in its term, before it lapsed: a lapsed lease is taken anew.
            renew: concat!(
                "UPDATE leader SET renewed_at_ms = ", $now, ", expires_at_ms = ", $now, " + $4 ",
                "WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at_ms > ", $now, " ",
                "RETURNING name, term, holder, host, acquired_at_ms, renewed_at_ms, expires_at_ms, ",
                $now, " AS now_ms"
            ),
            release: concat!(
                "UPDATE leader SET expires_at_ms = ", $now, " ",
                "WHERE name = $1 AND holder = $2 AND term = $3 AND expires_at_ms > ", $now
            ),
            info: concat!(
                "SELECT name, term, holder, host, acquired_at_ms, renewed_at_ms, expires_at_ms, ",
                $now, " AS now_ms FROM leader WHERE name = $1"
            ),
            fence: concat!(
                "SELECT term, holder, expires_at_ms > ", $now, " FROM leader WHERE name = $1", $share
            ),
        }
    };
}

pub(super) const POSTGRES: LeaderSql =
    leader_sql!("(extract(epoch from now()) * 1000)::bigint", " FOR SHARE");
pub(super) const SQLITE: LeaderSql = leader_sql!(
    "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    ""
);

/// The right to write as the leader of `term`; cheap to clone (the deadline is shared).
#[derive(Clone)]
pub struct Fence {
    pub term: i64,
    pub holder: String,
    /// Writes stop at this instant (`None`: revoked). Kept ahead of the lease's end by its holder.
    deadline: Arc<watch::Sender<Option<Instant>>>,
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("term", &self.term)
            .field("holder", &self.holder)
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl Fence {
    pub fn new(term: i64, holder: &str, deadline: Instant) -> Fence {
        Fence {
            term,
            holder: holder.to_string(),
            deadline: Arc::new(watch::channel(Some(deadline)).0),
        }
    }

    /// Moves the deadline on after a renewal; a revoked fence stays revoked.
    pub fn extend(&self, deadline: Instant) {
        self.deadline.send_if_modified(|d| match d {
            Some(old) if *old < deadline => {
                *d = Some(deadline);
                true
            }
            _ => false,
        });
    }

    /// No write may be made under this fence any more.
    pub fn revoke(&self) {
        self.deadline.send_if_modified(|d| d.take().is_some());
    }

    pub fn deadline(&self) -> Option<Instant> {
        *self.deadline.borrow()
    }

    /// Not revoked and the deadline has not passed.
    pub fn is_valid(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() < d)
    }

    /// Resolves once the fence is revoked or its deadline passes without being moved on.
    pub async fn lost(&self) {
        let mut rx = self.deadline.subscribe();
        loop {
            let Some(deadline) = *rx.borrow_and_update() else {
                return;
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }

    fn refused(&self, why: String) -> WriteError {
        WriteError::Fenced(StoreError::Fenced {
            term: self.term,
            holder: self.holder.clone(),
            why,
        })
    }

    /// Before a write: the local deadline.
    pub(super) fn check_local(&self) -> Result<(), WriteError> {
        if self.is_valid() {
            return Ok(());
        }
        Err(self.refused("the lease was not renewed in time here".into()))
    }

    /// Inside a write's transaction: the lease row as it is now. A refusal revokes the fence.
    pub(super) fn verdict(&self, row: Option<(i64, String, bool)>) -> Result<(), WriteError> {
        let why = match row {
            Some((term, holder, true)) if term == self.term && holder == self.holder => {
                return Ok(());
            }
            Some((term, _, false)) if term == self.term => {
                "the lease lapsed before it was renewed".to_string()
            }
            Some((term, holder, _)) => format!("the lease is now term {term}, held by {holder}"),
            None => "there is no leader lease".to_string(),
        };
        self.revoke();
        Err(self.refused(why))
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    fn leader_sql(&self) -> &'static LeaderSql {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE,
            Pool::Postgres(_) => &POSTGRES,
        }
    }

    /// A handle on the same database with one connection of its own, for the election: the
    /// lease is then renewed on time even while a pass holds every connection of the main pool.
    /// (An in-memory SQLite database lives in its one connection: it is shared instead.)
    pub fn with_own_connection(&self) -> Store {
        let pool = match &self.pool {
            Pool::Sqlite(_) if super::url::sqlite_in_memory(&self.redacted_url) => {
                return self.clone();
            }
            Pool::Sqlite(p) => Pool::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(super::CONNECT_TIMEOUT)
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
            Pool::Postgres(p) => Pool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(super::CONNECT_TIMEOUT)
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
        };
        Store {
            pool,
            redacted_url: self.redacted_url.clone(),
            fence: None,
            installation: self.installation.clone(),
            notifier: self.notifier.clone(),
        }
    }

    /// A handle whose every write is made only while `fence` holds (see the module docs).
    pub fn fenced(&self, fence: Fence) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// The fence this handle writes under, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_ref()
    }

    /// Takes the leader lease for `ttl` if it is free, has lapsed, or is `holder`'s own (a
    /// holder's lost fence is never waited out: a holder id is one process, which stopped its
    /// pass when the fence was lost); the row with the new term if taken, `None` if another
    /// holder's lease is live. One statement: one winner.
    pub async fn acquire_leader(
        &self,
        holder: &str,
        host: &str,
        ttl: Duration,
    ) -> Result<Option<LeaderRow>, StoreError> {
        let sql = self.leader_sql().acquire;
        with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(ELECTION)
                .bind(holder)
                .bind(host)
                .bind(millis(ttl))
                .fetch_optional(pool)
                .await
        })
        .map_err(self.query_failed("taking the leader lease"))
    }

    /// Renews the lease for `ttl` from now if `holder` still has it in `term` and it has not
    /// lapsed; `None` otherwise (it is then lost: take it anew, in a new term).
    pub async fn renew_leader(
        &self,
        holder: &str,
        term: i64,
        ttl: Duration,
    ) -> Result<Option<LeaderRow>, StoreError> {
        let sql = self.leader_sql().renew;
        with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(ELECTION)
                .bind(holder)
                .bind(term)
                .bind(millis(ttl))
                .fetch_optional(pool)
                .await
        })
        .map_err(self.query_failed("renewing the leader lease"))
    }

    /// Gives the lease back (it lapses now; the term is kept). True if `holder` had it.
    pub async fn release_leader(&self, holder: &str, term: i64) -> Result<bool, StoreError> {
        let sql = self.leader_sql().release;
        with_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(ELECTION)
                .bind(holder)
                .bind(term)
                .execute(pool)
                .await
                .map(|r| r.rows_affected() > 0)
        })
        .map_err(self.query_failed("releasing the leader lease"))
    }

    /// The lease row, lapsed or not, if there ever was a leader.
    pub async fn leader(&self) -> Result<Option<LeaderRow>, StoreError> {
        let sql = self.leader_sql().info;
        with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(ELECTION)
                .fetch_optional(pool)
                .await
        })
        .map_err(self.query_failed("reading the leader lease"))
    }

    /// Marks runs a leader of an earlier term left `running` (it was killed or deposed
    /// mid-pass) as `interrupted`. A fenced write: only the current leader does it.
    pub async fn interrupt_runs_before(&self, term: i64) -> Result<u64, StoreError> {
        let now = super::now_unix();
        let summary = format!("interrupted: its leader lost the lease before term {term}");
        write_tx!(self, "marking interrupted runs", |tx| {
            sqlx::query(
                "UPDATE reconcile_runs SET status = 'interrupted', finished_at = $1, summary = $2 \
                 WHERE status = 'running' AND term IS NOT NULL AND term < $3",
            )
            .bind(now)
            .bind(&summary)
            .bind(term)
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected())
        })
    }

    /// SQLite only: refuses a database file that a live lease or presence row shows in use by
    /// another host. A SQLite file serves one host; several hosts need PostgreSQL.
    pub async fn refuse_other_hosts(&self, host: &str) -> Result<(), StoreError> {
        if self.backend() != super::Backend::Sqlite {
            return Ok(());
        }
        let now = super::now_unix();
        let mut holders: Vec<(String, String)> = self
            .lock_rows("")
            .await?
            .into_iter()
            .filter(|l| l.expires_at > now)
            .map(|l| {
                let h = l.holder.split(':').next().unwrap_or_default().to_string();
                (h, l.holder)
            })
            .collect();
        if let Some(l) = self.leader().await?.filter(LeaderRow::live) {
            holders.push((l.host, l.holder));
        }
        match holders.into_iter().find(|(h, _)| h != host) {
            Some((other, holder)) => Err(StoreError::SharedSqlite {
                url: self.redacted_url.clone(),
                host: other,
                holder,
            }),
            None => Ok(()),
        }
    }
}

/// A connection taken from a store's pool and kept (tests: a pool with none to spare).
#[cfg(test)]
#[allow(dead_code)]
pub(crate) enum HeldConnection {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

#[cfg(test)]
impl Store {
    pub(crate) async fn hold_connection(&self) -> HeldConnection {
        match &self.pool {
            Pool::Sqlite(p) => HeldConnection::Sqlite(p.acquire().await.expect("a connection")),
            Pool::Postgres(p) => HeldConnection::Postgres(p.acquire().await.expect("a connection")),
        }
    }
}
