-- A tenant's effective feature flags, for the SaaS app to read: its plan's features, plus the
-- tenant's features.add, minus its features.remove. source: 'plan' or 'tenant' (added by the
-- tenant over its plan). Rewritten whole per tenant when its effective set changes.
CREATE TABLE tenant_features (
    tenant TEXT NOT NULL,
    flag TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (tenant, flag)
);
