-- A count of the changes to the rows a plan compares with git (plans, themes, tenants and their
-- flags), kept by triggers whoever writes them (tenantctl or the SaaS app): `tenantctl watch`
-- reads this one row each pass and the rows themselves only when it moved.
CREATE TABLE row_stamp (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL
) STRICT;
INSERT INTO row_stamp (id, n) VALUES (1, 0);

CREATE TRIGGER plans_stamp_insert AFTER INSERT ON plans BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER plans_stamp_update AFTER UPDATE ON plans BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER plans_stamp_delete AFTER DELETE ON plans BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER themes_stamp_insert AFTER INSERT ON themes BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER themes_stamp_update AFTER UPDATE ON themes BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER themes_stamp_delete AFTER DELETE ON themes BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenants_stamp_insert AFTER INSERT ON tenants BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenants_stamp_update AFTER UPDATE ON tenants BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenants_stamp_delete AFTER DELETE ON tenants BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenant_features_stamp_insert AFTER INSERT ON tenant_features BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenant_features_stamp_update AFTER UPDATE ON tenant_features BEGIN UPDATE row_stamp SET n = n + 1; END;
CREATE TRIGGER tenant_features_stamp_delete AFTER DELETE ON tenant_features BEGIN UPDATE row_stamp SET n = n + 1; END;
