-- One row per key. `installation_id`: this database's identity, made once here (when the
-- database is created, or upgraded to this version) and written as the
-- `tenantctl.installation` label on every object tenantctl creates. `adopted:<id>`: another
-- installation whose objects `apply --adopt` took over into this database (value: when, and in
-- which namespace). gen_random_uuid() is built in from PostgreSQL 13.
CREATE TABLE meta (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('installation_id', replace(gen_random_uuid()::text, '-', ''));
