-- Log history: each tenant container's output, copied by `watch` and `tenantctl logs sync`.
-- A source is one container (its engine id, named once here so the lines stay small); a line
-- is keyed by its source, the engine's timestamp (unix nanoseconds), its stream (1 stdout,
-- 2 stderr) and its place among the lines of that source, timestamp and stream (seq), so a
-- line read again (a second sync, a restarted container) is stored once. Rows outlive their
-- containers and tenants (no foreign keys to tenants); --log-retention prunes old lines.
CREATE TABLE log_sources (
    id BIGSERIAL PRIMARY KEY,
    tenant TEXT NOT NULL,
    container_id TEXT NOT NULL UNIQUE,
    container_name TEXT NOT NULL,
    first_seen BIGINT NOT NULL
);
CREATE INDEX log_sources_tenant ON log_sources (tenant);

CREATE TABLE tenant_logs (
    source BIGINT NOT NULL,
    at_ns BIGINT NOT NULL,
    stream INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (source, at_ns, stream, seq)
);
