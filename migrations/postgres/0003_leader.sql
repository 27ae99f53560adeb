-- High availability: several `tenantctl watch` processes share one database and exactly one of
-- them (the leader) applies. The leader lease is one row per election (`watch`). `term` only ever
-- grows: whoever takes the lease once it has lapsed gets the next term, and every write a
-- leader's pass makes is checked against (term, holder) in the same transaction, so a deposed
-- leader's late write is refused (fencing). Times are unix milliseconds of the database's clock
-- (`now()`), so hosts whose clocks disagree still agree on when a lease ends.
CREATE TABLE leader (
    name TEXT NOT NULL PRIMARY KEY,
    term BIGINT NOT NULL,
    holder TEXT NOT NULL,                  -- host:pid:start:role
    host TEXT NOT NULL,
    acquired_at_ms BIGINT NOT NULL,
    renewed_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- The leader term a run or an event was written under (NULL: a plain `tenantctl apply`).
ALTER TABLE reconcile_runs ADD COLUMN term BIGINT;
ALTER TABLE events ADD COLUMN term BIGINT;
