//! Writing the rows git describes: plans, themes and tenants (upserted whole, deleted by
//! name), a tenant's URL and its provisioning progress.

use super::*;

const UPSERT_PLAN: &str = "INSERT INTO plans (name, display_name, price_cents, currency, cycle, trial_days, nano_cpus, \
     memory_bytes, pids, storage_bytes, api_calls_per_month, ai_interactions_per_month, users, rate_limit_rpm, features, \
     revision, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, price_cents = excluded.price_cents, \
     currency = excluded.currency, cycle = excluded.cycle, trial_days = excluded.trial_days, \
     nano_cpus = excluded.nano_cpus, memory_bytes = excluded.memory_bytes, pids = excluded.pids, \
     storage_bytes = excluded.storage_bytes, api_calls_per_month = excluded.api_calls_per_month, \
     ai_interactions_per_month = excluded.ai_interactions_per_month, users = excluded.users, \
     rate_limit_rpm = excluded.rate_limit_rpm, features = excluded.features, revision = excluded.revision, \
     updated_at = excluded.updated_at";
const UPSERT_THEME: &str = "INSERT INTO themes (name, display_name, version, image, port, health_path, \
     health_interval_seconds, config, revision, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, version = excluded.version, \
     image = excluded.image, port = excluded.port, health_path = excluded.health_path, \
     health_interval_seconds = excluded.health_interval_seconds, config = excluded.config, \
     revision = excluded.revision, updated_at = excluded.updated_at";
// created_at is deliberately absent from the update: it records when the tenant first appeared.
const UPSERT_TENANT: &str = "INSERT INTO tenants (slug, display_name, owner, plan, theme, state, domain, features, \
     trial_ends_at, api_key_sha256, applied_revision, applied_spec_hash, url, last_error, created_at, updated_at, \
     desired_revision) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
     ON CONFLICT (slug) DO UPDATE SET display_name = excluded.display_name, owner = excluded.owner, \
     plan = excluded.plan, theme = excluded.theme, state = excluded.state, domain = excluded.domain, \
     features = excluded.features, trial_ends_at = excluded.trial_ends_at, \
     api_key_sha256 = excluded.api_key_sha256, applied_revision = excluded.applied_revision, \
     applied_spec_hash = excluded.applied_spec_hash, url = excluded.url, last_error = excluded.last_error, \
     updated_at = excluded.updated_at, desired_revision = excluded.desired_revision";

impl Store {
    /// Inserts the plan, or replaces every column of the row with that name.
    pub async fn upsert_plan(&self, r: &PlanRow) -> Result<(), StoreError> {
        write_tx!(self, format!("writing plan `{}`", r.name), |tx| {
            sqlx::query(UPSERT_PLAN)
                .bind(&r.name)
                .bind(&r.display_name)
                .bind(r.price_cents)
                .bind(&r.currency)
                .bind(&r.cycle)
                .bind(r.trial_days)
                .bind(r.nano_cpus)
                .bind(r.memory_bytes)
                .bind(r.pids)
                .bind(r.storage_bytes)
                .bind(r.api_calls_per_month)
                .bind(r.ai_interactions_per_month)
                .bind(r.users)
                .bind(r.rate_limit_rpm)
                .bind(&r.features)
                .bind(&r.revision)
                .bind(r.updated_at)
                .execute(&mut *tx)
                .await
                .map(|_| ())
        })
    }

    /// Inserts the theme, or replaces every column of the row with that name.
    pub async fn upsert_theme(&self, r: &ThemeRow) -> Result<(), StoreError> {
        write_tx!(self, format!("writing theme `{}`", r.name), |tx| {
            sqlx::query(UPSERT_THEME)
                .bind(&r.name)
                .bind(&r.display_name)
                .bind(&r.version)
                .bind(&r.image)
                .bind(r.port)
                .bind(&r.health_path)
                .bind(r.health_interval_seconds)
                .bind(&r.config)
                .bind(&r.revision)
                .bind(r.updated_at)
                .execute(&mut *tx)
                .await
                .map(|_| ())
        })
    }

    /// Inserts the tenant, or replaces every column but `created_at` of the row with that slug.
    pub async fn upsert_tenant(&self, r: &TenantRow) -> Result<(), StoreError> {
        write_tx!(self, format!("writing tenant `{}`", r.slug), |tx| {
            sqlx::query(UPSERT_TENANT)
                .bind(&r.slug)
                .bind(&r.display_name)
                .bind(&r.owner)
                .bind(&r.plan)
                .bind(&r.theme)
                .bind(&r.state)
                .bind(&r.domain)
                .bind(&r.features)
                .bind(r.trial_ends_at)
                .bind(&r.api_key_sha256)
                .bind(&r.applied_revision)
                .bind(&r.applied_spec_hash)
                .bind(&r.url)
                .bind(&r.last_error)
                .bind(r.created_at)
                .bind(r.updated_at)
                .bind(&r.desired_revision)
                .execute(&mut *tx)
                .await
                .map(|_| ())
        })
    }

    /// Records where a tenant answers now, leaving the rest of its row as it is.
    pub async fn set_tenant_url(&self, slug: &str, url: &str) -> Result<(), StoreError> {
        write_tx!(
            self,
            format!("recording the URL of tenant `{slug}`"),
            |tx| {
                sqlx::query("UPDATE tenants SET url = $2, updated_at = $3 WHERE slug = $1")
                    .bind(slug)
                    .bind(url)
                    .bind(now_unix())
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
            }
        )
    }

    /// Records that a tenant's provisioning is at `step` (`percent` of its steps finished),
    /// leaving the rest of its row as it is.
    pub async fn set_tenant_progress(
        &self,
        slug: &str,
        step: &str,
        percent: i64,
    ) -> Result<(), StoreError> {
        write_tx!(
            self,
            format!("recording the progress of tenant `{slug}`"),
            |tx| {
                sqlx::query(
                    "UPDATE tenants SET progress_step = $2, progress_percent = $3, progress_at = $4 \
                     WHERE slug = $1",
                )
                .bind(slug)
                .bind(step)
                .bind(percent)
                .bind(now_unix())
                .execute(&mut *tx)
                .await
                .map(|_| ())
            }
        )
    }

    /// Ends a tenant's provisioning: converged (`done`, 100 %, no error step), or `failed`
    /// at `error_step` (the percent stays where it stopped).
    pub async fn end_tenant_progress(
        &self,
        slug: &str,
        failed: bool,
        error_step: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = if failed {
            "UPDATE tenants SET progress_step = 'failed', error_step = $2, progress_at = $3 \
             WHERE slug = $1"
        } else {
            "UPDATE tenants SET progress_step = 'done', progress_percent = 100, error_step = $2, \
             progress_at = $3 WHERE slug = $1"
        };
        write_tx!(
            self,
            format!("recording the progress of tenant `{slug}`"),
            |tx| {
                sqlx::query(sql)
                    .bind(slug)
                    .bind(error_step)
                    .bind(now_unix())
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
            }
        )
    }

    /// Deletes a plan row; true if there was one.
    pub async fn delete_plan(&self, name: &str) -> Result<bool, StoreError> {
        write_tx!(self, format!("deleting plan `{name}`"), |tx| {
            sqlx::query("DELETE FROM plans WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }

    /// Deletes a theme row; true if there was one.
    pub async fn delete_theme(&self, name: &str) -> Result<bool, StoreError> {
        write_tx!(self, format!("deleting theme `{name}`"), |tx| {
            sqlx::query("DELETE FROM themes WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }

    /// Deletes a tenant row (an explicit purge only: removal from git keeps the row); true if there was one.
    pub async fn delete_tenant(&self, slug: &str) -> Result<bool, StoreError> {
        write_tx!(self, format!("deleting tenant `{slug}`"), |tx| {
            sqlx::query("DELETE FROM tenants WHERE slug = $1")
                .bind(slug)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }
}
