-- The state a SaaS application reads (plans, themes, tenants) and the reconciler's own records.
CREATE TABLE plans (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    cycle TEXT NOT NULL,
    trial_days BIGINT NOT NULL,
    nano_cpus BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    pids BIGINT NOT NULL,
    storage_bytes BIGINT,
    api_calls_per_month BIGINT,
    ai_interactions_per_month BIGINT,
    users BIGINT,
    rate_limit_rpm BIGINT,
    features TEXT NOT NULL,
    revision TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE themes (
    name TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    version TEXT NOT NULL,
    image TEXT,
    port BIGINT NOT NULL,
    health_path TEXT NOT NULL,
    health_interval_seconds BIGINT NOT NULL,
    config TEXT NOT NULL,
    revision TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenants (
    slug TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    owner TEXT NOT NULL,
    plan TEXT NOT NULL,
    theme TEXT NOT NULL,
    state TEXT NOT NULL,
    domain TEXT,
    features TEXT NOT NULL,
    trial_ends_at BIGINT,
    api_key_sha256 TEXT,
    applied_revision TEXT,
    applied_spec_hash TEXT,
    url TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE tenant_networks (
    slug TEXT PRIMARY KEY,
    subnet TEXT NOT NULL UNIQUE
);

CREATE TABLE reconcile_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    revision TEXT NOT NULL,
    status TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT ''
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    run_id BIGINT,
    tenant TEXT,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX events_tenant_at ON events (tenant, at);

CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
