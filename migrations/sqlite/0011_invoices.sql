-- Closed invoices: one per tenant and billing period (YYYY-MM, or YYYY for a yearly plan),
-- written once when the period has ended (`watch` beside its loop, or `tenantctl invoices
-- close`) and never changed: closing again finds the row and leaves it. Money is whole cents.
-- lines: JSON [{"description", "amount_cents"}]; trial_until: the trial's end when the period
-- was free; overage_cents: the part of total_cents over the plan's price.
CREATE TABLE invoices (
    tenant TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    plan TEXT NOT NULL,
    plan_display_name TEXT NOT NULL,
    cycle TEXT NOT NULL,
    currency TEXT NOT NULL,
    trial_until TEXT,
    lines TEXT NOT NULL,
    overage_cents INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    closed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, period)
) STRICT;
