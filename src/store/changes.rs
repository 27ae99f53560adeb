//! Whether the rows a plan compares with git (plans, themes, tenants and their flags) may have
//! changed since last asked, whoever wrote them: what lets `watch` keep the database's side of a
//! pass and read it again only after a change (migration 0014).
//!
//! - **SQLite**: triggers count every change in `row_stamp`; asking reads that one row.
//! - **PostgreSQL**: triggers announce each committed change on the channel `tenantctl_rows`,
//!   followed on a connection of its own (a counter row would make concurrent writers wait on
//!   each other). A notification is delivered on commit only; one missed while the connection
//!   was down cannot be told, so a lost connection counts as a change.
//!
//! Either way the answer errs towards "changed": first ask, any error, a lost listener.

use super::{Pool, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The PostgreSQL channel migration 0014's triggers notify.
const CHANNEL: &str = "tenantctl_rows";

/// Follows changes to the compared rows; see the module.
pub struct RowChanges {
    follow: Follow,
}

enum Follow {
    /// The `row_stamp` count last seen (None: nothing seen yet, or lost track).
    Sqlite {
        pool: sqlx::SqlitePool,
        seen: Option<i64>,
    },
    /// Set by the listener task on each notification and each reconnect; taken by `changed`.
    Postgres {
        dirty: Arc<AtomicBool>,
        listener: tokio::task::JoinHandle<()>,
    },
    /// The listener could not start: every ask says "changed".
    Blind,
}

impl Drop for RowChanges {
    fn drop(&mut self) {
        if let Follow::Postgres { listener, .. } = &self.follow {
            listener.abort();
        }
    }
}

impl Store {
    /// Starts following changes to the compared rows. On PostgreSQL the listener is subscribed
    /// before this returns, so a change committed after it is never missed; when it cannot be,
    /// the follower says "changed" every time (and the rows are read every pass, as before).
    pub async fn follow_row_changes(&self) -> RowChanges {
        let follow = match &self.pool {
            Pool::Sqlite(pool) => Follow::Sqlite {
                pool: pool.clone(),
                seen: None,
            },
            Pool::Postgres(pool) => match listen(pool).await {
                Ok(listener) => {
                    let dirty = Arc::new(AtomicBool::new(true));
                    let flag = dirty.clone();
                    let listener = tokio::spawn(follow_notifications(listener, flag));
                    Follow::Postgres { dirty, listener }
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot listen for row changes ({e}); the database is read whole every pass"
                    );
                    Follow::Blind
                }
            },
        };
        RowChanges { follow }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

async fn follow_notifications(mut listener: sqlx::postgres::PgListener, dirty: Arc<AtomicBool>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => dirty.store(true, Ordering::SeqCst),
            // The connection was lost: what was sent meanwhile is gone. The next call reconnects.
            Ok(None) => dirty.store(true, Ordering::SeqCst),
            // The store is closing: let go of the connection (the pool waits for it).
            Err(sqlx::Error::PoolClosed) => {
                dirty.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                dirty.store(true, Ordering::SeqCst);
                tracing::debug!("listening for row changes: {e}; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

impl RowChanges {
    /// Whether the rows may have changed since the last call: true on the first call, after
    /// [`RowChanges::forget`], and whenever it cannot tell. Ask before reading the rows: a
    /// change committed between the two is then read, and said again next time.
    pub async fn changed(&mut self) -> bool {
        match &mut self.follow {
            Follow::Sqlite { pool, seen } => {
                match sqlx::query_scalar::<_, i64>("SELECT n FROM row_stamp WHERE id = 1")
                    .fetch_one(&*pool)
                    .await
                {
                    Ok(n) => seen.replace(n) != Some(n),
                    Err(e) => {
                        tracing::debug!("reading the row change count: {e}");
                        *seen = None;
                        true
                    }
                }
            }
            Follow::Postgres { dirty, .. } => dirty.swap(false, Ordering::SeqCst),
            Follow::Blind => true,
        }
    }

    /// The rows read after the last [`RowChanges::changed`] were not kept (the read failed):
    /// the next call says "changed".
    pub fn forget(&mut self) {
        match &mut self.follow {
            Follow::Sqlite { seen, .. } => *seen = None,
            Follow::Postgres { dirty, .. } => dirty.store(true, Ordering::SeqCst),
            Follow::Blind => {}
        }
    }
}
