-- Storage metering: the size of each tenant's data volume, from the engine's disk-usage API
-- (sampled once per meter pass). NULL when the engine could not tell (older rows, a backend
-- that cannot size volumes).
ALTER TABLE usage_samples ADD COLUMN storage_bytes INTEGER;
