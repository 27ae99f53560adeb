//! The audit log's rows: recording an event (and queueing its notifications in the same
//! transaction), reading events and the audit view of them.

use super::*;

/// One audit event to append ([`insert_event_routed!`]). Callers keep secrets out of
/// `message` and `detail`.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub at: i64,
    pub run_id: Option<i64>,
    pub tenant: Option<&'a str>,
    pub kind: &'a str,
    pub message: &'a str,
    pub term: Option<i64>,
    pub detail: Option<&'a str>,
    /// Tells apart events of one kind that are different conditions at one revision, so each
    /// is notified once ('' for most).
    pub condition: &'a str,
}

/// The notifications an event of one kind is queued for, and the revision named when the
/// event has no run: read from [`Store::routing`] before the transaction opens.
#[derive(Debug, Clone, Default)]
pub struct EventRouting {
    pub names: Vec<String>,
    pub fallback_revision: String,
}

impl Store {
    /// Appends a line to the audit log, stamped now. Callers must keep secrets out of `message`.
    pub async fn record_event(
        &self,
        run_id: Option<i64>,
        tenant: Option<&str>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.record_event_detail(run_id, tenant, kind, message, None)
            .await
    }

    /// [`Store::record_event`] with what the event changed (`detail`: JSON, see
    /// `crate::audit::Detail`; secrets already redacted by the caller).
    pub async fn record_event_detail(
        &self,
        run_id: Option<i64>,
        tenant: Option<&str>,
        kind: &str,
        message: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.record_event_with(run_id, tenant, kind, message, detail, "")
            .await
    }

    /// [`Store::record_event_detail`], queueing the event for every notification that wants
    /// its kind in the same transaction (see `crate::notify`). `condition` tells apart events
    /// of one kind that are different conditions at one revision ('' for most).
    pub async fn record_event_with(
        &self,
        run_id: Option<i64>,
        tenant: Option<&str>,
        kind: &str,
        message: &str,
        detail: Option<&str>,
        condition: &str,
    ) -> Result<(), StoreError> {
        let routing = self.routing(kind);
        let event = NewEvent {
            at: now_unix(),
            run_id,
            tenant,
            kind,
            message,
            term: self.term(),
            detail,
            condition,
        };
        let (_, queued) = write_tx!(self, format!("recording a `{kind}` event"), |tx| {
            insert_event_routed!(tx, &routing, &event)
        })?;
        self.wake_notifier(queued);
        Ok(())
    }

    /// Where an event of `kind` goes besides the audit log, as the notifications stand now.
    pub fn routing(&self, kind: &str) -> EventRouting {
        let routes = self.notifier.routes();
        EventRouting {
            names: routes
                .matching(kind)
                .into_iter()
                .map(String::from)
                .collect(),
            fallback_revision: routes.revision.clone().unwrap_or_default(),
        }
    }

    /// The fencing term this store writes under, if any (stamped on events).
    pub(crate) fn term(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.term)
    }

    /// After a commit that queued `queued` notifications: the sender looks at once.
    pub(crate) fn wake_notifier(&self, queued: u64) {
        if queued > 0 {
            self.notifier.wake();
        }
    }

    /// The newest events first, at most `limit`, of one tenant or of all.
    pub async fn events(
        &self,
        tenant: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, at, run_id, tenant, kind, message FROM events \
                 WHERE $1 IS NULL OR tenant = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(tenant)
            .bind(limit)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed("reading events"))
    }

    /// The id of the newest audit row (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(id) FROM events")
                .fetch_one(pool)
                .await
        })
        .map_err(self.query_failed("reading the audit log"))?;
        Ok(id.unwrap_or(0))
    }

    /// The audit log as `tenantctl events` reads it: rows matching `q`, oldest first. With
    /// `q.after` set, the first `q.limit` rows after that id (following); otherwise the newest
    /// `q.limit` rows. Each row carries the revision of its run and its term.
    pub async fn audit_events(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        let following = q.after.is_some();
        let sql = if following { AUDIT_AFTER } else { AUDIT_NEWEST };
        let mut rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(q.tenant.as_deref())
                .bind(q.kind_like.as_deref())
                .bind(q.since)
                .bind(q.after.unwrap_or(0))
                .bind(q.limit)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading the audit log"))?;
        if !following {
            rows.reverse();
        }
        Ok(rows)
    }
}
