-- The rows a plan compares with git (plans, themes, tenants and their flags) announce each
-- committed change, whoever writes them (tenantctl or the SaaS app), on the channel
-- `tenantctl_rows`: `tenantctl watch` listens and reads the rows again only after one. A
-- notification is delivered on commit, never for a transaction rolled back, and a counter row
-- (as SQLite keeps) would make concurrent writers wait on each other.
CREATE FUNCTION tenantctl_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantctl_rows', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_rows_changed();
CREATE TRIGGER themes_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON themes
    FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_rows_changed();
CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_rows_changed();
CREATE TRIGGER tenant_features_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_features
    FOR EACH STATEMENT EXECUTE FUNCTION tenantctl_rows_changed();
