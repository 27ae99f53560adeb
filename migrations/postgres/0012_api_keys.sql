-- A tenant's API keys, each stored only as its SHA-256 (hex). id: the digest's first 16 hex
-- digits, which names the key where the digest itself should not travel (the site's /usage,
-- events). A key is live until revoked_at or expires_at (Unix seconds) has passed; a rotation
-- sets the old key's revoked_at to the end of its grace. last_used_at is written by the meter
-- from the site's counters, at most once a minute per key.
CREATE TABLE tenant_api_keys (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    key_sha256 TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    last_used_at BIGINT,
    PRIMARY KEY (tenant, id)
);
-- The one key each tenant had before keys became a table.
INSERT INTO tenant_api_keys (tenant, id, name, key_sha256, created_at)
    SELECT slug, substr(api_key_sha256, 1, 16), 'default', api_key_sha256, created_at
    FROM tenants WHERE api_key_sha256 IS NOT NULL;
