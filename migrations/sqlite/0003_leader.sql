-- High availability: several `tenantctl watch` processes share one database and exactly one of
-- them (the leader) applies. The leader lease is one row per election (`watch`). `term` only ever
-- grows: whoever takes the lease once it has lapsed gets the next term, and every write a
-- leader's pass makes is checked against (term, holder) in the same transaction, so a deposed
-- leader's late write is refused (fencing). Times are unix milliseconds of this host's clock: a
-- SQLite file serves one host only (tenantctl refuses a file another host's process uses).
CREATE TABLE leader (
    name TEXT NOT NULL PRIMARY KEY,
    term INTEGER NOT NULL,
    holder TEXT NOT NULL,                  -- host:pid:start:role
    host TEXT NOT NULL,
    acquired_at_ms INTEGER NOT NULL,
    renewed_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;

-- The leader term a run or an event was written under (NULL: a plain `tenantctl apply`).
ALTER TABLE reconcile_runs ADD COLUMN term INTEGER;
ALTER TABLE events ADD COLUMN term INTEGER;
