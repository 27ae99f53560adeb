//! The database: SQLite by default, PostgreSQL by URL, one code path through sqlx's `Any` driver.
//!
//! `Any` carries integers, floats, text and NULL, so times are unix seconds and lists are JSON text.

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, FromRow};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{url}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl { url: String },
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("migrating the database at {url} failed: {message}")]
    Migrate { url: String, message: String },
    #[error("database query failed ({what}) at {url}: {message}")]
    Query {
        what: &'static str,
        url: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Store {
    pool: AnyPool,
    backend: Backend,
    redacted_url: String,
}

#[derive(Debug, Clone, Default)]
pub struct ObservedDb {
    pub plans: BTreeMap<String, PlanRow>,
    pub themes: BTreeMap<String, ThemeRow>,
    pub tenants: BTreeMap<String, TenantRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct PlanRow {
    pub name: String,
    pub display_name: String,
    pub price_cents: i64,
    pub currency: String,
    pub cycle: String,
    pub trial_days: i64,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub pids: i64,
    pub storage_bytes: Option<i64>,
    pub api_calls_per_month: Option<i64>,
    pub ai_interactions_per_month: Option<i64>,
    pub users: Option<i64>,
    pub rate_limit_rpm: Option<i64>,
    /// JSON array of feature names.
    pub features: String,
    pub revision: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ThemeRow {
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub image: Option<String>,
    pub port: i64,
    pub health_path: String,
    pub health_interval_seconds: i64,
    /// JSON object of the theme's look.
    pub config: String,
    pub revision: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct TenantRow {
    pub slug: String,
    pub display_name: String,
    pub owner: String,
    pub plan: String,
    pub theme: String,
    pub state: String,
    pub domain: Option<String>,
    /// JSON array of the tenant's own features.
    pub features: String,
    pub trial_ends_at: Option<i64>,
    pub api_key_sha256: Option<String>,
    pub applied_revision: Option<String>,
    pub applied_spec_hash: Option<String>,
    pub url: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Hides the password of a URL: `postgres://user:***@host/db`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl Store {
    /// The default database of a repository: `.tenantctl/state.db`, which git ignores.
    pub fn default_url(repo_root: &Path) -> String {
        format!(
            "sqlite://{}",
            repo_root.join(".tenantctl").join("state.db").display()
        )
    }

    /// Opens (creating an SQLite file if needed) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        install_default_drivers();
        let redacted_url = redact(url);
        let (backend, connect_url) = if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let file = path.split('?').next().unwrap_or(path);
            if file != ":memory:" && !file.is_empty() {
                prepare_sqlite_dir(Path::new(file))?;
            }
            let sep = if path.contains('?') { "&" } else { "?" };
            (Backend::Sqlite, format!("sqlite://{path}{sep}mode=rwc"))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl { url: redacted_url });
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 1 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .connect(&connect_url)
            .await
            .map_err(|e| StoreError::Connect {
                url: redacted_url.clone(),
                message: scrub(&e.to_string(), url),
            })?;
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&pool).await.map_err(|e| StoreError::Migrate {
            url: redacted_url.clone(),
            message: scrub(&e.to_string(), url),
        })?;
        Ok(Store {
            pool,
            backend,
            redacted_url,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    fn fail(&self, what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |e| StoreError::Query {
            what,
            url: self.redacted_url.clone(),
            message: e.to_string(),
        }
    }

    /// Every plan, theme and tenant row.
    pub async fn observe(&self) -> Result<ObservedDb, StoreError> {
        let plans: Vec<PlanRow> = sqlx::query_as("SELECT * FROM plans")
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("read plans"))?;
        let themes: Vec<ThemeRow> = sqlx::query_as("SELECT * FROM themes")
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("read themes"))?;
        let tenants: Vec<TenantRow> = sqlx::query_as("SELECT * FROM tenants")
            .fetch_all(&self.pool)
            .await
            .map_err(self.fail("read tenants"))?;
        Ok(ObservedDb {
            plans: plans.into_iter().map(|r| (r.name.clone(), r)).collect(),
            themes: themes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            tenants: tenants.into_iter().map(|r| (r.slug.clone(), r)).collect(),
        })
    }

    pub async fn upsert_plan(&self, r: &PlanRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (name, display_name, price_cents, currency, cycle, trial_days, nano_cpus, memory_bytes, pids, \
             storage_bytes, api_calls_per_month, ai_interactions_per_month, users, rate_limit_rpm, features, revision, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
             ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, price_cents = excluded.price_cents, \
             currency = excluded.currency, cycle = excluded.cycle, trial_days = excluded.trial_days, nano_cpus = excluded.nano_cpus, \
             memory_bytes = excluded.memory_bytes, pids = excluded.pids, storage_bytes = excluded.storage_bytes, \
             api_calls_per_month = excluded.api_calls_per_month, ai_interactions_per_month = excluded.ai_interactions_per_month, \
             users = excluded.users, rate_limit_rpm = excluded.rate_limit_rpm, features = excluded.features, \
             revision = excluded.revision, updated_at = excluded.updated_at",
        )
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
        .execute(&self.pool)
        .await
        .map_err(self.fail("write a plan"))?;
        Ok(())
    }

    pub async fn upsert_theme(&self, r: &ThemeRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO themes (name, display_name, version, image, port, health_path, health_interval_seconds, config, revision, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name, version = excluded.version, image = excluded.image, \
             port = excluded.port, health_path = excluded.health_path, health_interval_seconds = excluded.health_interval_seconds, \
             config = excluded.config, revision = excluded.revision, updated_at = excluded.updated_at",
        )
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
        .execute(&self.pool)
        .await
        .map_err(self.fail("write a theme"))?;
        Ok(())
    }

    pub async fn upsert_tenant(&self, r: &TenantRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tenants (slug, display_name, owner, plan, theme, state, domain, features, trial_ends_at, api_key_sha256, \
             applied_revision, applied_spec_hash, url, last_error, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (slug) DO UPDATE SET display_name = excluded.display_name, owner = excluded.owner, plan = excluded.plan, \
             theme = excluded.theme, state = excluded.state, domain = excluded.domain, features = excluded.features, \
             trial_ends_at = excluded.trial_ends_at, api_key_sha256 = excluded.api_key_sha256, \
             applied_revision = excluded.applied_revision, applied_spec_hash = excluded.applied_spec_hash, url = excluded.url, \
             last_error = excluded.last_error, updated_at = excluded.updated_at",
        )
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
        .execute(&self.pool)
        .await
        .map_err(self.fail("write a tenant"))?;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// Makes the SQLite file's directory, and keeps `.tenantctl/` out of git without touching the user's .gitignore.
fn prepare_sqlite_dir(file: &Path) -> Result<(), StoreError> {
    let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
        path: dir.display().to_string(),
        source,
    })?;
    if dir.file_name().is_some_and(|n| n == ".tenantctl") {
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n").map_err(|source| StoreError::CreateDir {
                path: ignore.display().to_string(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Drivers sometimes echo the URL they were given; never let a password through.
fn scrub(message: &str, url: &str) -> String {
    let redacted = redact(url);
    let mut out = message.replace(url, &redacted);
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
    {
        out = out.replace(password, "***");
    }
    out
}

#[cfg(test)]
mod tests;
