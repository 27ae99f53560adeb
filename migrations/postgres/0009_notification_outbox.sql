-- Notifications waiting to be sent, written in the transaction of the event they tell of.
-- One row per (notification, tenant, kind, revision, condition): the same condition is not sent
-- twice for the same revision. `condition` tells apart events of one kind that are different
-- conditions at one revision (a usage threshold's metric, period and level); '' otherwise.
-- `tenant` and `revision` are '' when the event has none. The receiver's URL and secret are not
-- stored: they are read from git (and the environment) when the row is delivered.
CREATE TABLE notification_outbox (
    id BIGSERIAL PRIMARY KEY,
    notification TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    revision TEXT NOT NULL,
    condition TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- pending, delivered, abandoned
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    last_error TEXT,
    UNIQUE (notification, tenant, kind, revision, condition)
);
CREATE INDEX notification_outbox_due ON notification_outbox (state, next_attempt_at);
