-- Desired state as the SaaS application reads it, and the reconciler's own records.
-- Times are unix seconds (INTEGER); lists and maps are JSON text. STRICT makes SQLite refuse
-- values of the wrong type, as PostgreSQL does, so both backends hold the same data.

CREATE TABLE plans (
    name TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    price_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    cycle TEXT NOT NULL,
    trial_days INTEGER NOT NULL,
    nano_cpus INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    pids INTEGER NOT NULL,
    storage_bytes INTEGER,                 -- NULL: unlimited
    api_calls_per_month INTEGER,           -- NULL: unlimited
    ai_interactions_per_month INTEGER,     -- NULL: unlimited
    users INTEGER,                         -- NULL: unlimited
    rate_limit_rpm INTEGER,                -- NULL: no rate limit
    features TEXT NOT NULL DEFAULT '[]',
    revision TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE themes (
    name TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL,
    image TEXT,                            -- NULL: the built-in site
    port INTEGER NOT NULL,
    health_path TEXT NOT NULL,
    health_interval_seconds INTEGER NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    revision TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

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
    trial_ends_at INTEGER,
    api_key_sha256 TEXT,
    applied_revision TEXT,
    applied_spec_hash TEXT,
    url TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- One explicit subnet per tenant network: Docker's default pools hold only ~30 networks.
CREATE TABLE tenant_networks (
    slug TEXT NOT NULL PRIMARY KEY,
    subnet TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE reconcile_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    revision TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT ''
) STRICT;

-- The audit log; rows outlive their tenants, so no foreign keys.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    run_id INTEGER,
    tenant TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
) STRICT;
CREATE INDEX events_tenant_id ON events (tenant, id);
CREATE INDEX events_run_id ON events (run_id);

-- Named leases (the single-writer apply lock): free once expires_at has passed.
CREATE TABLE locks (
    name TEXT NOT NULL PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
