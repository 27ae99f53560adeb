//! Keeping a tenant's site told: its effective flags in `tenant_features`, and the access file
//! (live key digests and flags, see `crate::access`) written into its data volume through the
//! engine, so the built-in site learns both within a second, without a new container.

use super::ApplyError;
use crate::access::AccessFile;
use crate::model::DesiredState;
use crate::runtime::Runtime;
use crate::store::{ApiKeyRow, Store, now_unix};

/// What became of the access file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Written into this many containers (swarm: the service's tasks on this node).
    Written(usize),
    /// The tenant has no container (yet): the next apply that makes one writes it.
    NoContainer,
    /// The theme runs its own image, which reads `tenant_features` and keys from the database.
    OwnImage,
}

/// The tenant's effective flags as `(flag, source)`, `None` for a tenant not in git.
pub fn effective(desired: &DesiredState, slug: &str) -> Option<Vec<(String, &'static str)>> {
    let t = desired.tenants.get(slug)?;
    let plan = desired.plans.get(&t.plan)?;
    Some(crate::model::effective_features(plan, t))
}

/// Rewrites `tenant_features` of `slug` when git's effective set differs from the rows.
/// Returns whether it changed.
pub async fn sync_features(
    store: &Store,
    desired: &DesiredState,
    slug: &str,
) -> Result<bool, ApplyError> {
    let Some(want) = effective(desired, slug) else {
        return Ok(false);
    };
    let have: Vec<(String, String)> = store
        .tenant_features(Some(slug))
        .await?
        .into_iter()
        .map(|f| (f.flag, f.source))
        .collect();
    let want: Vec<(String, String)> = want.into_iter().map(|(f, s)| (f, s.to_string())).collect();
    if have == want {
        return Ok(false);
    }
    store.set_tenant_features(slug, &want).await?;
    Ok(true)
}

/// The tenant's keys; a tenant whose row carries a digest but who has no key rows (adopted, or
/// recorded before keys became a table) gets that digest as its `default` key first, so the
/// access file never locks out the key its container was made with.
pub async fn keys_of(store: &Store, slug: &str) -> Result<Vec<ApiKeyRow>, ApplyError> {
    let keys = store.api_keys(Some(slug)).await?;
    if !keys.is_empty() {
        return Ok(keys);
    }
    let db = store.observe_tenant(slug).await?;
    let Some(digest) = db.tenants.get(slug).and_then(|r| r.api_key_sha256.clone()) else {
        return Ok(keys);
    };
    let row = ApiKeyRow::new(slug, "default", &digest, now_unix(), None);
    store
        .insert_api_key(
            &row,
            "tenant.key-created",
            &format!(
                "API key `default` ({}) recorded from the tenant's row",
                row.id
            ),
        )
        .await?;
    Ok(vec![row])
}

/// Writes the access file of `slug` into its built-in site's data volume: its keys from the
/// store and `flags` (`None`: the applied ones, from `tenant_features`). A container of
/// another image is left alone.
pub async fn push(
    runtime: &Runtime,
    store: &Store,
    slug: &str,
    flags: Option<Vec<(String, String)>>,
) -> Result<Pushed, ApplyError> {
    let name = runtime.container_name(slug);
    let Some(container) = runtime.backend().workload_named(slug, &name).await? else {
        return Ok(Pushed::NoContainer);
    };
    if container.image != crate::runtime::types::builtin_site_image() {
        return Ok(Pushed::OwnImage);
    }
    let flags = match flags {
        Some(f) => f,
        None => store
            .tenant_features(Some(slug))
            .await?
            .into_iter()
            .map(|f| (f.flag, f.source))
            .collect(),
    };
    let keys = keys_of(store, slug).await?;
    let flags: Vec<(String, &str)> = flags.iter().map(|(f, s)| (f.clone(), s.as_str())).collect();
    let file = AccessFile::new(slug, &keys, &flags, now_unix());
    let tar = file
        .tar()
        .map_err(|e| ApplyError::Step(format!("cannot build the access file: {e}")))?;
    let n = runtime.backend().put_data_files(&container, &tar).await?;
    Ok(Pushed::Written(n))
}

/// One line saying what became of the access file, for a command's output.
pub fn said(slug: &str, pushed: &Result<Pushed, ApplyError>) -> String {
    match pushed {
        Ok(Pushed::Written(0)) => format!(
            "{slug}: no task of its service runs on this node; its sites learn the change when their tasks are replaced"
        ),
        Ok(Pushed::Written(_)) => {
            format!("{slug}: the site learns it within a few seconds (no restart)")
        }
        Ok(Pushed::NoContainer) => {
            format!("{slug}: no container yet; `tenantctl apply` tells its site")
        }
        Ok(Pushed::OwnImage) => format!(
            "{slug}: its theme runs its own image, which reads tenant_api_keys and tenant_features"
        ),
        Err(e) => {
            format!("{slug}: the site could not be told ({e}); run `tenantctl apply` to retry")
        }
    }
}
