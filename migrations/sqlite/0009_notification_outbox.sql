-- Notifications waiting to be sent, written in the transaction of the event they tell of.
-- One row per (notification, tenant, kind, revision, condition): the same condition is not sent
-- twice for the same revision. `condition` tells apart events of one kind that are different
-- conditions at one revision (a usage threshold's metric, period and level); '' otherwise.
-- `tenant` and `revision` are '' when the event has none. The receiver's URL and secret are not
-- stored: they are read from git (and the environment) when the row is delivered.
CREATE TABLE notification_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    revision TEXT NOT NULL,
    condition TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    -- pending, delivered, abandoned
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    last_error TEXT,
    UNIQUE (notification, tenant, kind, revision, condition)
) STRICT;
CREATE INDEX notification_outbox_due ON notification_outbox (state, next_attempt_at);
