//! The notification outbox (see `crate::notify`): rows queued in the transaction of the event
//! they tell of, claimed and settled by the deliverer.

use super::{Pool, Store, StoreError, WriteError, now_unix};
use crate::notify::{EventView, Routes};
use sqlx::FromRow;
use std::sync::{Arc, RwLock};

/// What the store's handles share about notifications: the routes of the revision at hand and
/// the deliverer's wake-up.
#[derive(Debug, Default)]
pub struct Notifier {
    routes: RwLock<Arc<Routes>>,
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn routes(&self) -> Arc<Routes> {
        self.routes.read().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn set(&self, routes: Routes) {
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(routes);
        }
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when a row was queued since the last call.
    pub async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// One outbox row with its event.
#[derive(Debug, Clone, PartialEq, FromRow, serde::Serialize)]
pub struct OutboxRow {
    pub id: i64,
    pub notification: String,
    pub tenant: String,
    pub kind: String,
    pub revision: String,
    pub condition: String,
    pub event_id: i64,
    pub created_at: i64,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
    pub event_at: i64,
    pub event_tenant: Option<String>,
    pub event_message: String,
}

impl OutboxRow {
    pub fn event(&self) -> EventView {
        EventView {
            id: self.event_id,
            at: self.event_at,
            tenant: self.event_tenant.clone(),
            kind: self.kind.clone(),
            message: self.event_message.clone(),
            revision: (!self.revision.is_empty()).then(|| self.revision.clone()),
        }
    }
}

macro_rules! select_outbox {
    () => {
        "SELECT o.id, o.notification, o.tenant, o.kind, o.revision, o.condition, \
     o.event_id, o.created_at, o.state, o.attempts, o.next_attempt_at, o.delivered_at, o.last_error, \
     e.at AS event_at, e.tenant AS event_tenant, e.message AS event_message \
         FROM notification_outbox o JOIN events e ON e.id = o.event_id"
    };
}
const DUE: &str = concat!(
    select_outbox!(),
    " WHERE o.state = 'pending' AND o.next_attempt_at <= $1 ORDER BY o.id LIMIT $2"
);
const NEWEST: &str = concat!(select_outbox!(), " ORDER BY o.id DESC LIMIT $1");

/// Queues one event for one notification (`$1`), unless the condition is queued already.
pub(super) const ENQUEUE: &str = "INSERT INTO notification_outbox (notification, tenant, kind, revision, condition, \
     event_id, created_at, state, attempts, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7) \
     ON CONFLICT (notification, tenant, kind, revision, condition) DO NOTHING";

impl Store {
    /// The notifications (and revision) events are matched against from now on, in every
    /// handle sharing this store's pool.
    pub fn set_notifications(&self, routes: Routes) {
        self.notifier.set(routes);
    }

    /// What the store's handles share about notifications.
    pub fn notifier(&self) -> Arc<Notifier> {
        self.notifier.clone()
    }

    /// Pending rows due at `now`, oldest first, at most `limit`; each is claimed for `claim`
    /// seconds (its next attempt moved on), so another deliverer leaves it alone meanwhile.
    pub async fn claim_notifications(
        &self,
        now: i64,
        claim: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let due: Vec<OutboxRow> = with_pool!(self, |pool| {
            sqlx::query_as(DUE)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading due notifications"))?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let took = write_tx!(self, "claiming a notification", |tx| {
                sqlx::query(
                    "UPDATE notification_outbox SET next_attempt_at = $3 \
                     WHERE id = $1 AND state = 'pending' AND next_attempt_at = $2",
                )
                .bind(row.id)
                .bind(row.next_attempt_at)
                .bind(now + claim)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() == 1)
            })?;
            if took {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    /// Settles a row: `delivered`, `abandoned`, or still `pending` with its next attempt at
    /// `next_at`; `error` is the last failure (none once delivered). Records `event` (kind,
    /// message) in the same transaction.
    pub async fn settle_notification(
        &self,
        row: &OutboxRow,
        state: &str,
        next_at: i64,
        error: Option<&str>,
        event: (&str, &str),
    ) -> Result<(), StoreError> {
        let term = self.fence.as_ref().map(|f| f.term);
        let now = now_unix();
        let delivered = (state == "delivered").then_some(now);
        write_tx!(self, "recording a notification's delivery", |tx| {
            async {
                sqlx::query(
                    "UPDATE notification_outbox SET state = $2, attempts = attempts + 1, \
                     next_attempt_at = $3, delivered_at = $4, last_error = $5 WHERE id = $1",
                )
                .bind(row.id)
                .bind(state)
                .bind(next_at)
                .bind(delivered)
                .bind(error)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO events (at, run_id, tenant, kind, message, term) \
                     VALUES ($1, NULL, $2, $3, $4, $5)",
                )
                .bind(now)
                .bind(row.event_tenant.as_deref())
                .bind(event.0)
                .bind(event.1)
                .bind(term)
                .execute(&mut *tx)
                .await?;
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
    }

    /// The outbox, newest first, at most `limit` rows.
    pub async fn outbox(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(NEWEST).bind(limit).fetch_all(pool).await
        })
        .map_err(self.query_failed("reading the notification outbox"))
    }

    /// When the next pending row is due (unix seconds), if any.
    pub async fn next_notification_at(&self) -> Result<Option<i64>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MIN(next_attempt_at) FROM notification_outbox WHERE state = 'pending'",
            )
            .fetch_one(pool)
            .await
        })
        .map_err(self.query_failed("reading the notification outbox"))
    }
}
