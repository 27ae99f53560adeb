//! Reading the rows a plan compares with git: every plan, theme and tenant row (with the
//! effective flags) from one consistent snapshot, or the same with one tenant's rows only.

use super::{
    Backend, FeatureRow, ObservedDb, PlanRow, Pool, SELECT_PLANS, SELECT_TENANT, SELECT_TENANTS,
    SELECT_THEMES, Store, StoreError, TenantRow, ThemeRow,
};
use std::collections::BTreeMap;

impl Store {
    /// Every plan, theme and tenant row, read from one consistent snapshot.
    pub async fn observe(&self) -> Result<ObservedDb, StoreError> {
        self.observe_rows(None)
            .await
            .map_err(self.query_failed("reading plans, themes and tenants"))
    }

    /// What [`Store::observe`] reads, with only `slug`'s tenant row: plans and themes are few,
    /// tenants many, so applying one tenant reads its own row and not every row (the applier
    /// plans each tenant alone; reading every row per tenant grows with the square of them).
    pub async fn observe_tenant(&self, slug: &str) -> Result<ObservedDb, StoreError> {
        self.observe_rows(Some(slug))
            .await
            .map_err(self.query_failed("reading plans, themes and a tenant"))
    }

    /// Plans, themes, and the tenant rows and flags of `slug` (or of every tenant), from one
    /// snapshot.
    async fn observe_rows(&self, slug: Option<&str>) -> Result<ObservedDb, sqlx::Error> {
        let (plans, themes, tenants, features) = with_pool!(self, |pool| {
            async {
                let mut tx = match self.backend() {
                    // A deferred transaction reads one snapshot from its first SELECT on.
                    Backend::Sqlite => pool.begin().await?,
                    Backend::Postgres => {
                        pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            .await?
                    }
                };
                let plans: Vec<PlanRow> = sqlx::query_as(SELECT_PLANS).fetch_all(&mut *tx).await?;
                let themes: Vec<ThemeRow> =
                    sqlx::query_as(SELECT_THEMES).fetch_all(&mut *tx).await?;
                let tenants: Vec<TenantRow> = match slug {
                    Some(slug) => {
                        sqlx::query_as(SELECT_TENANT)
                            .bind(slug)
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    None => sqlx::query_as(SELECT_TENANTS).fetch_all(&mut *tx).await?,
                };
                let features: Vec<FeatureRow> = sqlx::query_as(
                    "SELECT tenant, flag, source FROM tenant_features \
                     WHERE $1 IS NULL OR tenant = $1",
                )
                .bind(slug)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((plans, themes, tenants, features))
            }
            .await
        })?;
        Ok(ObservedDb {
            plans: plans.into_iter().map(|r| (r.name.clone(), r)).collect(),
            themes: themes.into_iter().map(|r| (r.name.clone(), r)).collect(),
            tenants: tenants.into_iter().map(|r| (r.slug.clone(), r)).collect(),
            features: features_by_tenant(features),
        })
    }
}

/// `tenant_features` rows as tenant → flag → source.
fn features_by_tenant(rows: Vec<FeatureRow>) -> BTreeMap<String, BTreeMap<String, String>> {
    rows.into_iter().fold(BTreeMap::new(), |mut m, f| {
        m.entry(f.tenant).or_default().insert(f.flag, f.source);
        m
    })
}
