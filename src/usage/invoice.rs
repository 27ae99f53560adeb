//! The invoice preview: what the current billing period would cost. Money is whole cents (i64);
//! no floats touch it.
//!
//! Placeholder price model (documented in the README):
//! - the plan's price once per billing period: the UTC calendar month (`monthly`) or the UTC
//!   calendar year (`yearly`);
//! - API calls over the monthly quota: [`API_OVERAGE_CENTS_PER_BLOCK`] per started block of
//!   [`API_OVERAGE_BLOCK`] calls;
//! - AI interactions over the monthly quota: [`AI_OVERAGE_CENTS_EACH`] each;
//! - while the trial runs (`trial_ends_at` in the future) nothing is charged.

use serde::Serialize;

use super::time::{day_key, month_bounds, year_bounds};

/// API calls over quota are billed per started block of this many calls.
pub const API_OVERAGE_BLOCK: u64 = 1_000;
/// Price of one started block of API calls over quota, in cents.
pub const API_OVERAGE_CENTS_PER_BLOCK: i64 = 50;
/// Price of one AI interaction over quota, in cents.
pub const AI_OVERAGE_CENTS_EACH: i64 = 2;

/// What the preview needs to know about one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct InvoiceInput {
    pub plan_display_name: String,
    pub price_cents: i64,
    pub currency: String,
    /// `monthly` or `yearly`; anything else is treated as monthly.
    pub cycle: String,
    pub trial_ends_at: Option<i64>,
    pub api_calls_month: u64,
    pub api_calls_quota: Option<u64>,
    pub ai_interactions_month: u64,
    pub ai_interactions_quota: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvoiceLine {
    pub description: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    pub cycle: String,
    /// First day of the billing period (UTC, inclusive).
    pub period_start: String,
    /// First day after it (exclusive).
    pub period_end: String,
    pub currency: String,
    /// Set while the trial runs: the date it ends.
    pub trial_until: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub total_cents: i64,
}

/// The preview of the billing period holding `now`.
pub fn preview(input: &InvoiceInput, now: i64) -> Invoice {
    let yearly = input.cycle == "yearly";
    let (start, end) = if yearly {
        year_bounds(now)
    } else {
        month_bounds(now)
    };
    let trial_until = input.trial_ends_at.filter(|&t| t > now).map(day_key);
    let mut lines = vec![InvoiceLine {
        description: format!(
            "{} plan, {}",
            input.plan_display_name,
            if yearly { "yearly" } else { "monthly" }
        ),
        amount_cents: input.price_cents,
    }];
    if let Some(over) = over_quota(input.api_calls_month, input.api_calls_quota) {
        let blocks = over.div_ceil(API_OVERAGE_BLOCK);
        lines.push(InvoiceLine {
            description: format!(
                "API calls over quota this month: {over} ({blocks} × {} calls at {})",
                API_OVERAGE_BLOCK,
                money(API_OVERAGE_CENTS_PER_BLOCK, &input.currency)
            ),
            amount_cents: times(blocks, API_OVERAGE_CENTS_PER_BLOCK),
        });
    }
    if let Some(over) = over_quota(input.ai_interactions_month, input.ai_interactions_quota) {
        lines.push(InvoiceLine {
            description: format!(
                "AI interactions over quota this month: {over} at {} each",
                money(AI_OVERAGE_CENTS_EACH, &input.currency)
            ),
            amount_cents: times(over, AI_OVERAGE_CENTS_EACH),
        });
    }
    if let Some(until) = &trial_until {
        for line in &mut lines {
            line.amount_cents = 0;
        }
        lines.push(InvoiceLine {
            description: format!("Trial until {until}: no charge"),
            amount_cents: 0,
        });
    }
    let total_cents = lines
        .iter()
        .fold(0i64, |sum, l| sum.saturating_add(l.amount_cents));
    Invoice {
        cycle: if yearly { "yearly" } else { "monthly" }.to_string(),
        period_start: day_key(start),
        period_end: day_key(end),
        currency: input.currency.clone(),
        trial_until,
        lines,
        total_cents,
    }
}

fn over_quota(used: u64, quota: Option<u64>) -> Option<u64> {
    quota.and_then(|q| used.checked_sub(q)).filter(|&o| o > 0)
}

fn times(count: u64, cents: i64) -> i64 {
    i64::try_from(count)
        .unwrap_or(i64::MAX)
        .saturating_mul(cents)
}

/// `USD 79.99`.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{currency} {sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::time::unix_of;

    fn input() -> InvoiceInput {
        InvoiceInput {
            plan_display_name: "Professional".into(),
            price_cents: 7999,
            currency: "USD".into(),
            cycle: "monthly".into(),
            trial_ends_at: None,
            api_calls_month: 0,
            api_calls_quota: Some(100_000),
            ai_interactions_month: 0,
            ai_interactions_quota: Some(10_000),
        }
    }

    #[test]
    fn monthly_plan_within_quota_costs_the_price() {
        let now = unix_of(2025, 6, 15);
        let inv = preview(&input(), now);
        assert_eq!(inv.total_cents, 7999);
        assert_eq!(
            (inv.period_start.as_str(), inv.period_end.as_str()),
            ("2025-06-01", "2025-07-01")
        );
        assert_eq!(inv.lines.len(), 1);
        assert_eq!(money(inv.total_cents, "USD"), "USD 79.99");
    }

    #[test]
    fn yearly_plan_bills_the_calendar_year() {
        let mut i = input();
        i.cycle = "yearly".into();
        i.price_cents = 960_000;
        let inv = preview(&i, unix_of(2025, 6, 15));
        assert_eq!(inv.total_cents, 960_000);
        assert_eq!(
            (inv.period_start.as_str(), inv.period_end.as_str()),
            ("2025-01-01", "2026-01-01")
        );
        assert_eq!(inv.cycle, "yearly");
    }

    #[test]
    fn overage_rounds_api_calls_up_to_started_blocks() {
        let mut i = input();
        i.api_calls_month = 100_001; // 1 over: one started block
        let inv = preview(&i, unix_of(2025, 6, 15));
        assert_eq!(inv.total_cents, 7999 + 50);
        i.api_calls_month = 102_000; // exactly two blocks
        assert_eq!(preview(&i, 0).total_cents, 7999 + 100);
        i.api_calls_month = 102_001; // three started blocks
        assert_eq!(preview(&i, 0).total_cents, 7999 + 150);
        i.api_calls_month = 100_000; // at quota: nothing extra
        assert_eq!(preview(&i, 0).lines.len(), 1);
        i.ai_interactions_month = 10_025;
        let inv = preview(&i, 0);
        assert_eq!(inv.total_cents, 7999 + 25 * 2);
        assert!(
            inv.lines[1].description.contains("25 at USD 0.02"),
            "{:?}",
            inv.lines
        );
        // Unlimited quotas never overrun.
        i.api_calls_quota = None;
        i.ai_interactions_quota = None;
        i.api_calls_month = u64::MAX;
        assert_eq!(preview(&i, 0).total_cents, 7999);
    }

    #[test]
    fn nothing_is_charged_during_the_trial() {
        let now = unix_of(2025, 6, 15);
        let mut i = input();
        i.api_calls_month = 150_000;
        i.trial_ends_at = Some(now + 86_400);
        let inv = preview(&i, now);
        assert_eq!(inv.total_cents, 0);
        assert_eq!(inv.trial_until.as_deref(), Some("2025-06-16"));
        assert!(inv.lines.iter().all(|l| l.amount_cents == 0));
        // Once it has ended, the period is charged in full.
        i.trial_ends_at = Some(now - 1);
        let inv = preview(&i, now);
        assert_eq!(inv.trial_until, None);
        assert_eq!(inv.total_cents, 7999 + 50 * 50);
    }

    #[test]
    fn money_formats_cents() {
        assert_eq!(money(5, "EUR"), "EUR 0.05");
        assert_eq!(money(960_000, "USD"), "USD 9600.00");
        assert_eq!(money(-150, "USD"), "USD -1.50");
    }
}
