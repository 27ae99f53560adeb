//! A tenant's API keys (`tenant_api_keys`: digests only, never a key) and its effective
//! feature flags (`tenant_features`, which the SaaS app reads).

use super::{Pool, Store, StoreError, WriteError};
use serde::Serialize;
use sqlx::FromRow;

/// One API key as stored: its digest, never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct ApiKeyRow {
    pub tenant: String,
    /// The digest's first 16 hex digits: names the key where the digest should not travel.
    pub id: String,
    pub name: String,
    /// SHA-256 of the key, hex.
    pub key_sha256: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    /// When the key stops (or stopped) working; in the future during a rotation's grace.
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKeyRow {
    /// A new key's row: `id` from its digest.
    pub fn new(tenant: &str, name: &str, digest: &str, now: i64, expires_at: Option<i64>) -> Self {
        ApiKeyRow {
            tenant: tenant.to_string(),
            id: key_id(digest),
            name: name.to_string(),
            key_sha256: digest.to_string(),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        }
    }

    /// The site accepts it at `now`: neither revoked nor expired yet.
    pub fn live_at(&self, now: i64) -> bool {
        self.revoked_at.is_none_or(|t| t > now) && self.expires_at.is_none_or(|t| t > now)
    }
}

/// The id of the key with digest `digest` (its first 16 hex digits).
pub fn key_id(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// One effective feature flag of a tenant: `source` is `plan` or `tenant`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, FromRow)]
pub struct FeatureRow {
    pub tenant: String,
    pub flag: String,
    pub source: String,
}

const SELECT_KEYS: &str = "SELECT tenant, id, name, key_sha256, created_at, expires_at, \
     revoked_at, last_used_at FROM tenant_api_keys WHERE ($1 IS NULL OR tenant = $1) \
     ORDER BY tenant, created_at, name, id";

const INSERT_KEY: &str = "INSERT INTO tenant_api_keys (tenant, id, name, key_sha256, \
     created_at, expires_at, revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

impl Store {
    /// Every key of `tenant` (or of all tenants), revoked and expired ones too, oldest first.
    pub async fn api_keys(&self, tenant: Option<&str>) -> Result<Vec<ApiKeyRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(SELECT_KEYS)
                .bind(tenant)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading API keys"))
    }

    /// Stores a new key and records `kind` (`tenant.key-created`, …) in one transaction.
    /// `message` must hold no secret (the key's name and id are fine).
    pub async fn insert_api_key(
        &self,
        r: &ApiKeyRow,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.insert_api_key_in_run(r, None, kind, message).await
    }

    /// [`Store::insert_api_key`] with the event under an apply's run (`run_id`).
    pub async fn insert_api_key_in_run(
        &self,
        r: &ApiKeyRow,
        run_id: Option<i64>,
        kind: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let routing = self.routing(kind);
        let event = super::NewEvent {
            at: r.created_at,
            run_id,
            tenant: Some(&r.tenant),
            kind,
            message,
            term: self.term(),
            detail: None,
            condition: &r.id,
        };
        let what = format!("storing API key `{}` of `{}`", r.name, r.tenant);
        let (_, queued) = write_tx!(self, what, |tx| {
            async {
                sqlx::query(INSERT_KEY)
                    .bind(&r.tenant)
                    .bind(&r.id)
                    .bind(&r.name)
                    .bind(&r.key_sha256)
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .bind(r.revoked_at)
                    .bind(r.last_used_at)
                    .execute(&mut *tx)
                    .await?;
                insert_event_routed!(tx, &routing, &event)
            }
            .await
        })?;
        self.wake_notifier(queued);
        Ok(())
    }

    /// Sets `revoked_at = at` on the keys of `tenant` with these ids that are live at `at`
    /// or revoke later than it, and records `kind` in the same transaction. Returns how many
    /// keys it changed.
    pub async fn revoke_api_keys(
        &self,
        tenant: &str,
        ids: &[String],
        at: i64,
        kind: &str,
        message: &str,
    ) -> Result<u64, StoreError> {
        let routing = self.routing(kind);
        let what = format!("revoking API keys of `{tenant}`");
        let condition = ids.join(",");
        let event = super::NewEvent {
            at: super::now_unix(),
            run_id: None,
            tenant: Some(tenant),
            kind,
            message,
            term: self.term(),
            detail: None,
            condition: &condition,
        };
        let (changed, queued) = write_tx!(self, what, |tx| {
            async {
                let mut changed = 0;
                for id in ids {
                    changed += sqlx::query(
                        "UPDATE tenant_api_keys SET revoked_at = $1 WHERE tenant = $2 AND id = $3 \
                         AND (revoked_at IS NULL OR revoked_at > $1)",
                    )
                    .bind(at)
                    .bind(tenant)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                let mut queued = 0;
                if changed > 0 {
                    (_, queued) = insert_event_routed!(tx, &routing, &event)?;
                }
                Ok::<_, sqlx::Error>((changed, queued))
            }
            .await
        })?;
        self.wake_notifier(queued);
        Ok(changed)
    }

    /// Records when keys were last used (`(tenant, id, unix)`), moving a key's `last_used_at`
    /// only forward and by at least `every` seconds, so a busy key costs one write a minute.
    pub async fn touch_api_keys(
        &self,
        used: &[(String, String, i64)],
        every: i64,
    ) -> Result<u64, StoreError> {
        if used.is_empty() {
            return Ok(0);
        }
        write_tx!(self, "recording when API keys were last used", |tx| {
            async {
                let mut changed = 0;
                for (tenant, id, at) in used {
                    changed += sqlx::query(
                        "UPDATE tenant_api_keys SET last_used_at = $1 WHERE tenant = $2 AND id = $3 \
                         AND (last_used_at IS NULL OR last_used_at <= $1 - $4)",
                    )
                    .bind(*at)
                    .bind(tenant)
                    .bind(id)
                    .bind(every)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                Ok::<_, sqlx::Error>(changed)
            }
            .await
        })
    }

    /// The effective flags of `tenant` (or of all tenants), by tenant and flag.
    pub async fn tenant_features(
        &self,
        tenant: Option<&str>,
    ) -> Result<Vec<FeatureRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT tenant, flag, source FROM tenant_features \
                 WHERE ($1 IS NULL OR tenant = $1) ORDER BY tenant, flag",
            )
            .bind(tenant)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed("reading feature flags"))
    }

    /// Replaces the effective flags of `tenant` with `flags` (`(flag, source)`).
    pub async fn set_tenant_features(
        &self,
        tenant: &str,
        flags: &[(String, String)],
    ) -> Result<(), StoreError> {
        let what = format!("writing the feature flags of `{tenant}`");
        write_tx!(self, what, |tx| {
            async {
                sqlx::query("DELETE FROM tenant_features WHERE tenant = $1")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                for (flag, source) in flags {
                    sqlx::query(
                        "INSERT INTO tenant_features (tenant, flag, source) VALUES ($1, $2, $3)",
                    )
                    .bind(tenant)
                    .bind(flag)
                    .bind(source)
                    .execute(&mut *tx)
                    .await?;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
    }
}
