-- What runs, apart from what is wanted. A tenant row's settings (display name, owner, plan,
-- theme, state, domain, features) and applied_revision describe what runs: they move only once
-- the tenant converges at a revision (its new container answers). desired_revision is the
-- revision an apply last tried for the tenant; it differs from applied_revision while a change
-- is pending or failed (last_error says why).
ALTER TABLE tenants ADD COLUMN desired_revision TEXT;
