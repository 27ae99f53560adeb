-- One row per key. `installation_id`: this database's identity, made once here (when the
-- database is created, or upgraded to this version) and written as the
-- `tenantctl.installation` label on every object tenantctl creates. `adopted:<id>`: another
-- installation whose objects `apply --adopt` took over into this database (value: when, and in
-- which namespace).
CREATE TABLE meta (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('installation_id', lower(hex(randomblob(16))));
