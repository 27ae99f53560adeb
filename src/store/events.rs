//! The audit log's rows: recording an event (and queueing its notifications in the same
//! transaction), reading events and the audit view of them.

use super::*;

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
        let term = self.fence.as_ref().map(|f| f.term);
        let routes = self.notifier.routes();
        let names: Vec<String> = routes
            .matching(kind)
            .into_iter()
            .map(String::from)
            .collect();
        let fallback = routes.revision.clone().unwrap_or_default();
        let queued = write_tx!(self, format!("recording a `{kind}` event"), |tx| {
            async {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO events (at, run_id, tenant, kind, message, term, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(now_unix())
                .bind(run_id)
                .bind(tenant)
                .bind(kind)
                .bind(message)
                .bind(term)
                .bind(detail)
                .fetch_one(&mut *tx)
                .await?;
                let mut queued = 0;
                if !names.is_empty() {
                    let revision = match run_id {
                        Some(run) => sqlx::query_scalar::<_, String>(
                            "SELECT revision FROM reconcile_runs WHERE id = $1",
                        )
                        .bind(run)
                        .fetch_optional(&mut *tx)
                        .await?
                        .unwrap_or_else(|| fallback.clone()),
                        None => fallback.clone(),
                    };
                    for name in &names {
                        queued += sqlx::query(outbox::ENQUEUE)
                            .bind(name)
                            .bind(tenant.unwrap_or(""))
                            .bind(kind)
                            .bind(&revision)
                            .bind(condition)
                            .bind(id)
                            .bind(now_unix())
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                }
                Ok::<_, sqlx::Error>(queued)
            }
            .await
        })?;
        if queued > 0 {
            self.notifier.wake();
        }
        Ok(())
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
