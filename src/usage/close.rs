//! Closing invoices: at the turn of a billing period, each tenant's invoice of the period just
//! ended is computed with the preview's price model (`super::invoice`) and stored once.

use serde::Serialize;

use super::UsageError;
use super::invoice::{InvoiceInput, preview};
use super::time::{date, month_bounds, month_key, year_bounds};
use crate::store::{InvoiceRow, Store};

/// What one close did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CloseSummary {
    /// Invoices stored now.
    pub closed: Vec<InvoiceRow>,
    /// Tenants whose invoice of the period was already closed (left as it was).
    pub already_closed: usize,
}

/// Closes, for every tenant, the billing period that ended last before `now` (unix seconds;
/// the caller's clock, `TENANTCTL_NOW` in tests): the month before `now`'s for monthly plans,
/// the year before for yearly ones once `now` is in January. A tenant first recorded after that
/// period, or cancelled before it began, gets none. An invoice already closed is never
/// changed. Plan prices and quotas are the plan rows' as they are now; API calls and AI
/// interactions are the site's counters of that month as the meter last sampled them.
pub async fn close_invoices(store: &Store, now: i64) -> Result<CloseSummary, UsageError> {
    let db = store.observe().await?;
    let (this_month, _) = month_bounds(now);
    let (last_month_start, last_month_end) = month_bounds(this_month - 1);
    let month = month_key(last_month_start);
    let counters = store.usage_month_counters(&month, None).await?;
    let in_january = date(now).month == 1;
    let (last_year_start, last_year_end) = year_bounds(year_bounds(now).0 - 1);
    let mut summary = CloseSummary::default();
    for (slug, row) in &db.tenants {
        let Some(plan) = db.plans.get(&row.plan) else {
            continue;
        };
        let yearly = plan.cycle == "yearly";
        if yearly && !in_january {
            continue;
        }
        let (start, end, period) = if yearly {
            (
                last_year_start,
                last_year_end,
                date(last_year_start).year.to_string(),
            )
        } else {
            (last_month_start, last_month_end, month.clone())
        };
        if row.created_at >= end || (row.state == "cancelled" && row.updated_at < start) {
            continue;
        }
        let (api, ai) = counters
            .get(slug)
            .map_or((0, 0), |(api, ai, _)| (*api, *ai));
        let input = InvoiceInput {
            plan_display_name: plan.display_name.clone(),
            price_cents: plan.price_cents,
            currency: plan.currency.clone(),
            cycle: plan.cycle.clone(),
            trial_ends_at: row.trial_ends_at,
            api_calls_month: u64::try_from(api).unwrap_or(0),
            api_calls_quota: plan.api_calls_per_month.and_then(|v| u64::try_from(v).ok()),
            ai_interactions_month: u64::try_from(ai).unwrap_or(0),
            ai_interactions_quota: plan
                .ai_interactions_per_month
                .and_then(|v| u64::try_from(v).ok()),
        };
        // The period's own last second: its bounds, and whether its trial still ran then.
        let invoice = preview(&input, end - 1);
        let base = invoice.lines.first().map_or(0, |l| l.amount_cents);
        let record = InvoiceRow {
            tenant: slug.clone(),
            period: period.clone(),
            period_start: invoice.period_start.clone(),
            period_end: invoice.period_end.clone(),
            plan: row.plan.clone(),
            plan_display_name: plan.display_name.clone(),
            cycle: invoice.cycle.clone(),
            currency: invoice.currency.clone(),
            trial_until: invoice.trial_until.clone(),
            lines: serde_json::to_string(&invoice.lines).unwrap_or_else(|_| "[]".into()),
            overage_cents: invoice.total_cents - base,
            total_cents: invoice.total_cents,
            closed_at: now,
        };
        let message = format!(
            "invoice {period} closed: {} ({} plan)",
            super::money(invoice.total_cents, &invoice.currency),
            plan.display_name
        );
        if store.close_invoice(&record, &message).await? {
            summary.closed.push(record);
        } else {
            summary.already_closed += 1;
        }
    }
    Ok(summary)
}
