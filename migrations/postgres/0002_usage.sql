-- Usage metering: raw samples (kept for a retention, default 7 days), hourly and daily rollups
-- (kept), and the highest threshold level already reported per tenant, metric and period.
-- cpu_percent is percent of one CPU; NULL when the engine gave no second reading to compare.

CREATE TABLE usage_samples (
    tenant TEXT NOT NULL,
    at BIGINT NOT NULL,
    cpu_percent DOUBLE PRECISION,
    memory_bytes BIGINT NOT NULL,
    memory_limit_bytes BIGINT NOT NULL,
    net_rx_bytes BIGINT NOT NULL,
    net_tx_bytes BIGINT NOT NULL,
    blk_read_bytes BIGINT NOT NULL,
    blk_write_bytes BIGINT NOT NULL,
    api_calls_month BIGINT,               -- NULL: the site did not answer /usage
    ai_interactions_month BIGINT,
    month TEXT                             -- YYYY-MM the counters belong to
);
CREATE INDEX usage_samples_tenant_at ON usage_samples (tenant, at);
CREATE INDEX usage_samples_at ON usage_samples (at);

-- Deltas are the growth of the cumulative network/block counters inside the bucket (a counter
-- that went down, a container restart, counts its new value).
CREATE TABLE usage_hourly (
    tenant TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    cpu_samples BIGINT NOT NULL,
    cpu_avg DOUBLE PRECISION,
    cpu_max DOUBLE PRECISION,
    mem_avg BIGINT NOT NULL,
    mem_max BIGINT NOT NULL,
    net_rx_delta BIGINT NOT NULL,
    net_tx_delta BIGINT NOT NULL,
    blk_read_delta BIGINT NOT NULL,
    blk_write_delta BIGINT NOT NULL,
    api_calls_max BIGINT,
    ai_interactions_max BIGINT,
    PRIMARY KEY (tenant, bucket_start)
);

CREATE TABLE usage_daily (
    tenant TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    samples BIGINT NOT NULL,
    cpu_samples BIGINT NOT NULL,
    cpu_avg DOUBLE PRECISION,
    cpu_max DOUBLE PRECISION,
    mem_avg BIGINT NOT NULL,
    mem_max BIGINT NOT NULL,
    net_rx_delta BIGINT NOT NULL,
    net_tx_delta BIGINT NOT NULL,
    blk_read_delta BIGINT NOT NULL,
    blk_write_delta BIGINT NOT NULL,
    api_calls_max BIGINT,
    ai_interactions_max BIGINT,
    PRIMARY KEY (tenant, bucket_start)
);

-- metric: memory | api_calls | ai_interactions; period: YYYY-MM-DD (memory) or YYYY-MM (quotas).
CREATE TABLE usage_thresholds (
    tenant TEXT NOT NULL,
    metric TEXT NOT NULL,
    period TEXT NOT NULL,
    level BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant, metric, period)
);
