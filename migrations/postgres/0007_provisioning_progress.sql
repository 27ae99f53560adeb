-- Provisioning progress, as the SaaS application reads it while a tenant is made or replaced.
-- progress_step: the step an apply is at (network, volume, image, container, start, health,
-- record), `done` once the tenant converged, `failed` once it gave up; NULL before any apply
-- of this version changed the tenant on the engine. progress_percent: 0..100, the share of the
-- tenant's steps finished (kept where it stopped when it failed). error_step: the step the last
-- failure happened at, beside last_error (both cleared by a converged attempt).
ALTER TABLE tenants ADD COLUMN progress_step TEXT;
ALTER TABLE tenants ADD COLUMN progress_percent BIGINT;
ALTER TABLE tenants ADD COLUMN progress_at BIGINT;
ALTER TABLE tenants ADD COLUMN error_step TEXT;
