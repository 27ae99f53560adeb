-- Desired state as the SaaS application reads it, and the reconciler's own records.
-- Times are unix seconds (BIGINT); lists and maps are JSON text, the same bytes as on SQLite.

CREATE TABLE plans (
    name TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    cycle TEXT NOT NULL,
    trial_days BIGINT NOT NULL,
    nano_cpus BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    pids BIGINT NOT NULL,
    storage_bytes BIGINT,                  -- NULL: unlimited
    api_calls_per_month BIGINT,            -- NULL: unlimited
    ai_interactions_per_month BIGINT,      -- NULL: unlimited
    users BIGINT,                          -- NULL: unlimited
    rate_limit_rpm BIGINT,                 -- NULL: no rate limit
    features TEXT NOT NULL DEFAULT '[]',
    revision TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE themes (
    name TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL,
    image TEXT,                            -- NULL: the built-in site
    port BIGINT NOT NULL,
    health_path TEXT NOT NULL,
    health_interval_seconds BIGINT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    revision TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- No UNIQUE on owner or domain: cancelled tenants keep their rows; validation enforces uniqueness.
CREATE TABLE tenants (
    slug TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    plan TEXT NOT NULL,
    theme TEXT NOT NULL,
    state TEXT NOT NULL,
    domain TEXT,
    features TEXT NOT NULL DEFAULT '[]',
    trial_ends_at BIGINT,
    api_key_sha256 TEXT,
    applied_revision TEXT,
    applied_spec_hash TEXT,
    url TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One explicit subnet per tenant network: Docker's default pools hold only ~30 networks.
CREATE TABLE tenant_networks (
    slug TEXT NOT NULL PRIMARY KEY,
    subnet TEXT NOT NULL UNIQUE
);

CREATE TABLE reconcile_runs (
    id BIGSERIAL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    revision TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT ''
);

-- The audit log; rows outlive their tenants, so no foreign keys.
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    run_id BIGINT,
    tenant TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX events_tenant_id ON events (tenant, id);
CREATE INDEX events_run_id ON events (run_id);

-- Named leases (the single-writer apply lock): free once expires_at has passed.
CREATE TABLE locks (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
