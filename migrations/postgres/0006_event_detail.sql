-- What an event changed: a JSON array of {"field", "before", "after"} (secrets redacted as in
-- plans), for record updates and workload replaces; NULL for other events and older rows.
ALTER TABLE events ADD COLUMN detail TEXT;
