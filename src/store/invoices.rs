//! Closed invoices: written once per tenant and billing period, never changed.

use super::{Pool, Store, StoreError, WriteError};
use serde::Serialize;
use sqlx::FromRow;

/// One closed invoice as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct InvoiceRow {
    pub tenant: String,
    /// `YYYY-MM`, or `YYYY` for a yearly plan.
    pub period: String,
    /// First day of the period (UTC, inclusive) and first day after it.
    pub period_start: String,
    pub period_end: String,
    pub plan: String,
    pub plan_display_name: String,
    pub cycle: String,
    pub currency: String,
    /// The trial's end when the period was free.
    pub trial_until: Option<String>,
    /// JSON: `[{"description", "amount_cents"}]`.
    pub lines: String,
    pub overage_cents: i64,
    pub total_cents: i64,
    pub closed_at: i64,
}

const INSERT: &str = "INSERT INTO invoices (tenant, period, period_start, period_end, plan, \
     plan_display_name, cycle, currency, trial_until, lines, overage_cents, total_cents, closed_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (tenant, period) DO NOTHING";

const SELECT: &str = "SELECT tenant, period, period_start, period_end, plan, plan_display_name, \
     cycle, currency, trial_until, lines, overage_cents, total_cents, closed_at FROM invoices \
     WHERE ($1 IS NULL OR tenant = $1) AND ($2 IS NULL OR period = $2) ORDER BY period, tenant";

impl Store {
    /// Stores `invoice` unless one of its tenant and period is already closed, and records an
    /// `invoice.close` event with it (one transaction). True if it was stored now.
    pub async fn close_invoice(&self, r: &InvoiceRow, message: &str) -> Result<bool, StoreError> {
        let routing = self.routing("invoice.close");
        let event = super::NewEvent {
            at: r.closed_at,
            run_id: None,
            tenant: Some(&r.tenant),
            kind: "invoice.close",
            message,
            term: self.term(),
            detail: None,
            condition: &r.period,
        };
        let what = format!("closing the {} invoice of `{}`", r.period, r.tenant);
        let (stored, queued) = write_tx!(self, what, |tx| {
            async {
                let stored = sqlx::query(INSERT)
                    .bind(&r.tenant)
                    .bind(&r.period)
                    .bind(&r.period_start)
                    .bind(&r.period_end)
                    .bind(&r.plan)
                    .bind(&r.plan_display_name)
                    .bind(&r.cycle)
                    .bind(&r.currency)
                    .bind(&r.trial_until)
                    .bind(&r.lines)
                    .bind(r.overage_cents)
                    .bind(r.total_cents)
                    .bind(r.closed_at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                let mut queued = 0;
                if stored {
                    (_, queued) = insert_event_routed!(tx, &routing, &event)?;
                }
                Ok::<_, sqlx::Error>((stored, queued))
            }
            .await
        })?;
        self.wake_notifier(queued);
        Ok(stored)
    }

    /// Closed invoices, of one tenant or all, of one period or all, by period then tenant.
    pub async fn invoices(
        &self,
        tenant: Option<&str>,
        period: Option<&str>,
    ) -> Result<Vec<InvoiceRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(SELECT)
                .bind(tenant)
                .bind(period)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading invoices"))
    }
}
