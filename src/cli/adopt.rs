//! `apply --adopt`: tenant rows rebuilt from what runs, for a database that lost them (or a new
//! one in front of running tenants), so no customer's key changes and nothing is recreated.

use crate::plan::container::API_KEY_ENV;
use crate::runtime::ObservedRuntime;
#[cfg(test)]
use crate::runtime::{ContainerState, Env, ObservedContainer};
use crate::store::{Store, TenantRow};
use anyhow::Result;
use std::collections::BTreeMap;

/// A row for every tenant whose container (service) `<namespace>-<slug>` runs in the namespace
/// and that `rows` lacks, read from its labels and env: plan, theme, display name, domain, state
/// (running or stopped), applied revision and spec hash, and the key digest the site checks. What
/// the container does not carry (owner, the tenant's own features, a trial end) is left for the
/// plan to fill from git; a trial end stays unset, so adoption never suspends anyone. No IO.
pub fn rows_from(
    namespace: &str,
    runtime: &ObservedRuntime,
    rows: &BTreeMap<String, TenantRow>,
    now: i64,
) -> Vec<TenantRow> {
    runtime
        .containers
        .iter()
        .filter_map(|c| {
            let slug = c.tenant.as_deref()?;
            if c.name != format!("{namespace}-{slug}") || rows.contains_key(slug) {
                return None;
            }
            let env = |name: &str| c.env.get(name).map(str::to_string);
            let runs = match &c.service {
                Some(service) => service.replicas > 0,
                None => c.state.is_running(),
            };
            Some(TenantRow {
                slug: slug.to_string(),
                display_name: env("TENANT_NAME").unwrap_or_else(|| slug.to_string()),
                owner: String::new(),
                plan: env("TENANT_PLAN").unwrap_or_default(),
                theme: env("TENANT_THEME").unwrap_or_default(),
                state: if runs { "active" } else { "suspended" }.to_string(),
                domain: env("TENANT_DOMAIN"),
                features: "[]".to_string(),
                trial_ends_at: None,
                api_key_sha256: env(API_KEY_ENV),
                applied_revision: c.revision.clone(),
                applied_spec_hash: c.spec_hash.clone(),
                url: None,
                last_error: None,
                desired_revision: c.revision.clone(),
                created_at: now,
                updated_at: now,
            })
        })
        .collect()
}

/// Writes the rows [`rows_from`] rebuilds, each with a `tenant.adopted` event; how many.
pub async fn adopt(namespace: &str, runtime: &ObservedRuntime, store: &Store) -> Result<usize> {
    let db = store.observe().await?;
    let rows = rows_from(namespace, runtime, &db.tenants, crate::store::now_unix());
    for row in &rows {
        store.upsert_tenant(row).await?;
        let message = format!(
            "row rebuilt from {namespace}-{} (plan {}, theme {}, {}; its API key kept)",
            row.slug, row.plan, row.theme, row.state
        );
        store
            .record_event(None, Some(&row.slug), "tenant.adopted", &message)
            .await?;
    }
    Ok(rows.len())
}

/// A managed container of `slug` as observed, with the env and labels adoption reads, for tests.
#[cfg(test)]
pub(crate) fn test_container(name: &str, slug: &str, state: ContainerState) -> ObservedContainer {
    ObservedContainer {
        spec_hash: Some("hash".into()),
        revision: Some("rev1".into()),
        env: Env::from_pairs([
            ("TENANT_NAME", "Acme Corp"),
            ("TENANT_PLAN", "professional"),
            ("TENANT_THEME", "modern"),
            ("TENANT_DOMAIN", "shop.acme.example"),
            (API_KEY_ENV, "d1g3st"),
        ]),
        ..ObservedContainer::bare(&format!("id-{name}"), name, slug, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ContainerState, RuntimeKind};

    #[test]
    fn rows_are_rebuilt_from_running_tenants_keeping_their_key_digest() {
        let runtime = ObservedRuntime {
            kind: RuntimeKind::Docker,
            containers: vec![
                test_container("ns-acme", "acme", ContainerState::Running),
                test_container("ns-acme-next", "acme", ContainerState::Running),
                test_container("ns-hooli", "hooli", ContainerState::Exited),
                test_container("ns-known", "known", ContainerState::Running),
            ],
            networks: vec![],
            volumes: vec![],
        };
        let mut known = BTreeMap::new();
        let mut row = rows_from("ns", &runtime, &BTreeMap::new(), 7)
            .into_iter()
            .find(|r| r.slug == "known")
            .unwrap();
        row.owner = "kept".into();
        known.insert("known".to_string(), row);
        let rows = rows_from("ns", &runtime, &known, 7);
        let slugs: Vec<&str> = rows.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(
            slugs,
            ["acme", "hooli"],
            "one row per tenant; known rows kept"
        );
        let acme = &rows[0];
        assert_eq!(
            (acme.plan.as_str(), acme.theme.as_str(), acme.state.as_str()),
            ("professional", "modern", "active")
        );
        assert_eq!(acme.display_name, "Acme Corp");
        assert_eq!(acme.api_key_sha256.as_deref(), Some("d1g3st"));
        assert_eq!(acme.applied_revision.as_deref(), Some("rev1"));
        assert_eq!(acme.trial_ends_at, None);
        assert_eq!(rows[1].state, "suspended");
    }
}
