-- Usage metering: raw samples (kept for a retention, default 7 days), hourly and daily rollups
-- (kept), and the highest threshold level already reported per tenant, metric and period.
-- cpu_percent is percent of one CPU; NULL when the engine gave no second reading to compare.

CREATE TABLE usage_samples (
    tenant TEXT NOT NULL,
    at INTEGER NOT NULL,
    cpu_percent REAL,
    memory_bytes INTEGER NOT NULL,
    memory_limit_bytes INTEGER NOT NULL,
    net_rx_bytes INTEGER NOT NULL,
    net_tx_bytes INTEGER NOT NULL,
    blk_read_bytes INTEGER NOT NULL,
    blk_write_bytes INTEGER NOT NULL,
    api_calls_month INTEGER,               -- NULL: the site did not answer /usage
    ai_interactions_month INTEGER,
    month TEXT                             -- YYYY-MM the counters belong to
) STRICT;
CREATE INDEX usage_samples_tenant_at ON usage_samples (tenant, at);
CREATE INDEX usage_samples_at ON usage_samples (at);

-- Deltas are the growth of the cumulative network/block counters inside the bucket (a counter
-- that went down, a container restart, counts its new value).
CREATE TABLE usage_hourly (
    tenant TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    cpu_samples INTEGER NOT NULL,
    cpu_avg REAL,
    cpu_max REAL,
    mem_avg INTEGER NOT NULL,
    mem_max INTEGER NOT NULL,
    net_rx_delta INTEGER NOT NULL,
    net_tx_delta INTEGER NOT NULL,
    blk_read_delta INTEGER NOT NULL,
    blk_write_delta INTEGER NOT NULL,
    api_calls_max INTEGER,
    ai_interactions_max INTEGER,
    PRIMARY KEY (tenant, bucket_start)
) STRICT;

CREATE TABLE usage_daily (
    tenant TEXT NOT NULL,
    bucket_start INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    cpu_samples INTEGER NOT NULL,
    cpu_avg REAL,
    cpu_max REAL,
    mem_avg INTEGER NOT NULL,
    mem_max INTEGER NOT NULL,
    net_rx_delta INTEGER NOT NULL,
    net_tx_delta INTEGER NOT NULL,
    blk_read_delta INTEGER NOT NULL,
    blk_write_delta INTEGER NOT NULL,
    api_calls_max INTEGER,
    ai_interactions_max INTEGER,
    PRIMARY KEY (tenant, bucket_start)
) STRICT;

-- metric: memory | api_calls | ai_interactions; period: YYYY-MM-DD (memory) or YYYY-MM (quotas).
CREATE TABLE usage_thresholds (
    tenant TEXT NOT NULL,
    metric TEXT NOT NULL,
    period TEXT NOT NULL,
    level INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant, metric, period)
) STRICT;
