//! `apply --adopt`: tenant rows rebuilt from what runs, for a database that lost them (or a new
//! one in front of running tenants), so no customer's key changes and nothing is recreated.

use crate::plan::container::API_KEY_ENV;
use crate::runtime::ObservedRuntime;
use crate::runtime::types::LABEL_INSTALLATION;
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
                progress_step: None,
                progress_percent: None,
                progress_at: None,
                error_step: None,
            })
        })
        .collect()
}

/// What [`adopt`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Adoption {
    /// Tenant rows rebuilt.
    pub rows: usize,
    /// Other installations whose objects this database took over.
    pub installations: Vec<String>,
}

/// Tenants of another installation (`foreign`) that this database already has a row for with
/// another API key: adopting would give their customers new keys, so it is refused. No IO.
pub fn key_conflicts(
    runtime: &ObservedRuntime,
    rows: &BTreeMap<String, TenantRow>,
    foreign: &BTreeMap<String, usize>,
) -> Vec<String> {
    let mut out: Vec<String> = runtime
        .containers
        .iter()
        .filter(|c| {
            c.labels
                .get(LABEL_INSTALLATION)
                .is_some_and(|id| foreign.contains_key(id))
        })
        .filter_map(|c| {
            let slug = c.tenant.as_deref()?;
            let row = rows.get(slug)?;
            (row.api_key_sha256.as_deref() != c.env.get(API_KEY_ENV)).then(|| slug.to_string())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Tenants whose rows `store` holds, not cancelled, that neither run in the namespace nor are in
/// the revision (`desired`): another repository's. Applying this one with that database would
/// mark them cancelled, so taking another installation's objects over into it is refused. No IO.
pub fn other_tenants(
    runtime: &ObservedRuntime,
    rows: &BTreeMap<String, TenantRow>,
    desired: &crate::model::DesiredState,
) -> Vec<String> {
    rows.values()
        .filter(|r| r.state != "cancelled" && !desired.tenants.contains_key(&r.slug))
        .filter(|r| {
            !runtime
                .containers
                .iter()
                .any(|c| c.tenant.as_deref() == Some(r.slug.as_str()))
        })
        .map(|r| r.slug.clone())
        .collect()
}

/// Takes the namespace's objects over into `store`: another installation's objects (see
/// [`foreign_installations`](super::context::foreign_installations)) are accepted from now on
/// (recorded in the database; each carries this database's installation id once it is next
/// created or replaced), and the rows [`rows_from`] rebuilds are written, each with a
/// `tenant.adopted` event. Refused, with nothing written, when a tenant of the other
/// installation already has a row here with another key.
pub async fn adopt(
    namespace: &str,
    runtime: &ObservedRuntime,
    store: &Store,
    desired: &crate::model::DesiredState,
) -> Result<Adoption> {
    let db = store.observe().await?;
    let mut accepted: std::collections::BTreeSet<String> =
        store.adopted_installations().await?.into_keys().collect();
    accepted.insert(store.installation_id().to_string());
    let foreign = super::context::foreign_installations(runtime, &accepted);
    let conflicts = key_conflicts(runtime, &db.tenants, &foreign);
    if !conflicts.is_empty() {
        anyhow::bail!(
            "cannot adopt namespace {namespace} into the database at {}: it already has rows for {} with other API keys (tenants of another namespace?); adopting would change those customers' keys. One database holds one tenant per slug: use a database of its own for this namespace; nothing was changed",
            store.redacted_url(),
            conflicts.join(", ")
        );
    }
    let others = other_tenants(runtime, &db.tenants, desired);
    if !foreign.is_empty() && !others.is_empty() {
        anyhow::bail!(
            "cannot adopt namespace {namespace} into the database at {}: it also holds active tenants that are neither in this revision nor in the namespace ({}), another repository's; applying this one with it would mark them cancelled. One database serves one repository's tenants: adopt into that repository's own database or a new one; nothing was changed",
            store.redacted_url(),
            others.join(", ")
        );
    }
    let now = crate::store::now_unix();
    for (id, count) in &foreign {
        let note = format!(
            "namespace {namespace}: {count} objects adopted at {}",
            crate::calendar::rfc3339(now)
        );
        store.record_adopted(id, &note).await?;
        store
            .record_event(
                None,
                None,
                "installation.adopted",
                &format!(
                    "objects of installation {id} in namespace {namespace} taken over by installation {}",
                    store.installation_id()
                ),
            )
            .await?;
    }
    let rows = rows_from(namespace, runtime, &db.tenants, now);
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
    Ok(Adoption {
        rows: rows.len(),
        installations: foreign.into_keys().collect(),
    })
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
            edge: None,
            probe_host_fault: None,
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

    #[test]
    fn adoption_never_changes_a_key_nor_cancels_another_repositorys_tenant() {
        let mut acme = test_container("ns-acme", "acme", ContainerState::Running);
        acme.labels
            .insert(LABEL_INSTALLATION.into(), "other".into());
        let runtime = ObservedRuntime {
            kind: RuntimeKind::Docker,
            containers: vec![acme],
            networks: vec![],
            volumes: vec![],
            edge: None,
            probe_host_fault: None,
        };
        let foreign = BTreeMap::from([("other".to_string(), 1)]);
        let mut rows = BTreeMap::new();
        assert!(key_conflicts(&runtime, &rows, &foreign).is_empty());
        let mut row = rows_from("ns", &runtime, &BTreeMap::new(), 7).remove(0);
        rows.insert("acme".to_string(), row.clone());
        assert!(
            key_conflicts(&runtime, &rows, &foreign).is_empty(),
            "the same key"
        );
        row.api_key_sha256 = Some("another".into());
        rows.insert("acme".to_string(), row);
        assert_eq!(key_conflicts(&runtime, &rows, &foreign), ["acme"]);
        assert!(
            key_conflicts(&runtime, &rows, &BTreeMap::new()).is_empty(),
            "only another installation's tenants"
        );

        let desired = crate::testing::desired(&[("a", "A")]);
        let mut shop = rows["acme"].clone();
        shop.slug = "shop".into();
        rows.insert("shop".to_string(), shop.clone());
        assert_eq!(other_tenants(&runtime, &rows, &desired), ["shop"]);
        shop.state = "cancelled".into();
        rows.insert("shop".to_string(), shop);
        assert!(other_tenants(&runtime, &rows, &desired).is_empty());
    }
}
