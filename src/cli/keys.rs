//! `keys create|list|revoke|rotate`: a tenant's API keys in `tenant_api_keys` (digests only;
//! a new key is shown once, or appended to `--keys-file`). The site learns a change from its
//! access file, written through the engine (`apply::access`): no restart.

use super::args::{ApplyTuning, KeysCommand, Output};
use super::context::{Access, Context};
use super::output::{ErrPrinter, Printer, versioned};
use crate::apply::access::{self, Pushed};
use crate::apply::lock::ApplyLock;
use crate::apply::{self, ApplyError};
use crate::calendar::rfc3339;
use crate::plan::PlanOptions;
use crate::reconcile::{self, Announce, ApplyRequest, Scope};
use crate::runtime::Runtime;
use crate::store::{ApiKeyRow, Store, now_unix};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The version of the `keys … -o json` documents (2: named keys; rotate says the old keys'
/// revocation instead of a restart).
pub const FORMAT_VERSION: u32 = 2;

/// How long `keys create|revoke` wait for an apply in progress (they write the access file,
/// which an apply writes too).
const LOCK_WAIT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Context<'_>, command: &KeysCommand) -> Result<ExitCode> {
    match command {
        KeysCommand::Create {
            slug,
            name,
            expires,
            keys_file,
            output,
        } => create(ctx, slug, name, *expires, keys_file.as_deref(), *output).await,
        KeysCommand::List { slug, output } => list(ctx, slug.as_deref(), *output).await,
        KeysCommand::Revoke { slug, name, force } => revoke(ctx, slug, name, *force).await,
        KeysCommand::Rotate {
            slug,
            name,
            grace,
            lock_timeout,
            keys_file,
            output,
        } => {
            rotate(
                ctx,
                RotateArgs {
                    slug,
                    name,
                    grace: *grace,
                    lock_timeout: *lock_timeout,
                    keys_file: keys_file.as_deref(),
                    output: *output,
                },
            )
            .await
        }
    }
}

/// What is wrong with a key name, if anything: 1–40 of `a-z 0-9 . _ -`, starting with a
/// letter or digit.
pub fn name_problem(name: &str) -> Option<String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    if name.is_empty() || name.len() > 40 {
        return Some(format!(
            "key name `{}` must be 1 to 40 characters",
            crate::model::printable(name)
        ));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some(format!(
            "key name `{}` may hold only a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit",
            crate::model::printable(name)
        ));
    }
    None
}

/// The tenant must have a row that is not cancelled.
async fn check_tenant(store: &Store, slug: &str) -> Result<()> {
    if let Some(problem) = crate::model::slug_problem(slug) {
        bail!("tenant {problem}");
    }
    let db = store.observe().await?;
    match db.tenants.get(slug) {
        None => bail!(
            "tenant `{slug}` has no record yet; apply it first (`tenantctl keys list` shows the tenants with keys)"
        ),
        Some(r) if r.state == "cancelled" => {
            bail!("tenant `{slug}` is cancelled; its keys cannot change")
        }
        Some(_) => Ok(()),
    }
}

/// A key's status at `now`, as `keys list` shows it.
fn status(k: &ApiKeyRow, now: i64) -> String {
    match (k.revoked_at, k.expires_at) {
        (Some(r), _) if r <= now => "revoked".into(),
        (_, Some(e)) if e <= now => "expired".into(),
        (Some(r), _) => format!("live until {} (rotated)", rfc3339(r)),
        _ => "live".into(),
    }
}

/// Hands a new key over: to `keys_file` (a line saying where), else returned for printing.
fn hand_over(keys_file: Option<&Path>, slug: &str, key: &str) -> (Option<String>, Vec<String>) {
    match keys_file {
        Some(path) => {
            let keys = BTreeMap::from([(slug.to_string(), key.to_string())]);
            (None, crate::store::keys_file::hand_over(path, &keys))
        }
        None => (Some(key.to_string()), Vec::new()),
    }
}

/// Writes the tenant's access file under the apply lock (an apply writes it too).
async fn tell_site(runtime: &Runtime, store: &Store, slug: &str) -> Result<Pushed, ApplyError> {
    let lock = ApplyLock::acquire(store, LOCK_WAIT)
        .await
        .map_err(|e| ApplyError::Step(e.to_string()))?;
    let pushed = access::push(runtime, store, slug, None).await;
    lock.release().await;
    pushed
}

fn site_word(pushed: &Result<Pushed, ApplyError>) -> &'static str {
    match pushed {
        Ok(Pushed::Written(n)) if *n > 0 => "told",
        Ok(Pushed::Written(_)) => "no-local-task",
        Ok(Pushed::NoContainer) => "no-container",
        Ok(Pushed::OwnImage) => "own-image",
        Err(_) => "failed",
    }
}

async fn create(
    ctx: &Context<'_>,
    slug: &str,
    name: &str,
    expires: Option<Duration>,
    keys_file: Option<&Path>,
    output: Output,
) -> Result<ExitCode> {
    if let Some(problem) = name_problem(name) {
        bail!("{problem}");
    }
    let root = ctx.repo()?.root().to_path_buf();
    let (runtime, store) = ctx.connect(&root, Access::Write { adopt: false }).await?;
    let notified = ctx.route_events_as_head(&store);
    check_tenant(&store, slug).await?;
    let now = now_unix();
    let keys = access::keys_of(&store, slug).await?;
    if keys.iter().any(|k| k.name == name && k.live_at(now)) {
        bail!(
            "tenant `{slug}` already has a live key named `{name}`: pick another name, or `tenantctl keys rotate {slug} --name {name}`"
        );
    }
    let expires_at = match expires {
        Some(d) if d.is_zero() => bail!("--expires 0 would make a key that never works"),
        Some(d) => Some(now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))),
        None => None,
    };
    let (key, digest) = apply::keys::generate()?;
    let row = ApiKeyRow::new(slug, name, &digest, now, expires_at);
    let expiry = expires_at.map(|e| format!(", expires {}", rfc3339(e)));
    store
        .insert_api_key(
            &row,
            "tenant.key-created",
            &format!(
                "API key `{name}` ({}) created{}",
                row.id,
                expiry.clone().unwrap_or_default()
            ),
        )
        .await?;
    let pushed = tell_site(&runtime, &store, slug).await;
    let (shown, lines) = hand_over(keys_file, slug, &key);
    match output {
        Output::Text => {
            match &shown {
                Some(key) => println!(
                    "New API key `{name}` for {slug} (id {}{}; shown once, only its SHA-256 is stored):\n  {key}",
                    row.id,
                    expiry.unwrap_or_default()
                ),
                None => lines.iter().for_each(|l| println!("{l}")),
            }
            println!("{}", access::said(slug, &pushed));
        }
        Output::Json => {
            lines.iter().for_each(|l| eprintln!("{l}"));
            let document = serde_json::json!({
                "tenant": slug,
                "name": name,
                "id": row.id,
                "key": shown,
                "created_at": now,
                "expires_at": expires_at,
                "site": site_word(&pushed),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&versioned(document, FORMAT_VERSION))?
            );
        }
    }
    if notified {
        super::apply::send_due(&store).await;
    }
    store.close().await;
    Ok(if pushed.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn list(ctx: &Context<'_>, slug: Option<&str>, output: Output) -> Result<ExitCode> {
    if let Some(problem) = slug.and_then(crate::model::slug_problem) {
        bail!("tenant {problem}");
    }
    let url = ctx.read_url()?;
    let rows = match Store::open_existing(&url).await? {
        Some(store) => {
            let rows = store.api_keys(slug).await;
            store.close().await;
            rows?
        }
        None => Vec::new(),
    };
    let now = now_unix();
    match output {
        Output::Json => {
            let keys: Vec<_> = rows
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "tenant": k.tenant,
                        "name": k.name,
                        "id": k.id,
                        "created_at": k.created_at,
                        "expires_at": k.expires_at,
                        "revoked_at": k.revoked_at,
                        "last_used_at": k.last_used_at,
                        "status": status(k, now),
                        "live": k.live_at(now),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&versioned(
                    serde_json::json!({ "keys": keys }),
                    FORMAT_VERSION
                ))?
            );
        }
        Output::Text if rows.is_empty() => println!("No API keys."),
        Output::Text => print!("{}", table(&rows, now)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `keys list` as text: one row per key, never a key or a digest.
fn table(rows: &[ApiKeyRow], now: i64) -> String {
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_string(), rfc3339);
    let mut lines = vec![[
        "TENANT".to_string(),
        "NAME".into(),
        "ID".into(),
        "CREATED".into(),
        "EXPIRES".into(),
        "LAST USED".into(),
        "STATUS".into(),
    ]];
    for k in rows {
        lines.push([
            crate::model::printable(&k.tenant).into_owned(),
            k.name.clone(),
            k.id.clone(),
            rfc3339(k.created_at),
            time(k.expires_at),
            time(k.last_used_at),
            status(k, now),
        ]);
    }
    let mut widths = [0usize; 7];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

async fn revoke(ctx: &Context<'_>, slug: &str, name: &str, force: bool) -> Result<ExitCode> {
    let root = ctx.repo()?.root().to_path_buf();
    let (runtime, store) = ctx.connect(&root, Access::Write { adopt: false }).await?;
    let notified = ctx.route_events_as_head(&store);
    check_tenant(&store, slug).await?;
    let now = now_unix();
    let keys = access::keys_of(&store, slug).await?;
    let (named, others): (Vec<&ApiKeyRow>, Vec<&ApiKeyRow>) = keys
        .iter()
        .filter(|k| k.live_at(now))
        .partition(|k| k.name == name);
    if named.is_empty() {
        eprintln!(
            "tenant `{slug}` has no live key named `{}`: `tenantctl keys list {slug}` shows its keys",
            crate::model::printable(name)
        );
        return Ok(ExitCode::from(1));
    }
    if others.is_empty() && !force {
        eprintln!(
            "`{name}` is the last live key of `{slug}`: revoking it makes its API refuse every call. Create another key first (`tenantctl keys create {slug} --name NAME`), or give --force"
        );
        return Ok(ExitCode::from(1));
    }
    let ids: Vec<String> = named.iter().map(|k| k.id.clone()).collect();
    let revoked = store
        .revoke_api_keys(
            slug,
            &ids,
            now,
            "tenant.key-revoked",
            &format!("API key `{name}` ({}) revoked", ids.join(", ")),
        )
        .await?;
    let pushed = tell_site(&runtime, &store, slug).await;
    println!(
        "Revoked {revoked} API key{} `{name}` of {slug} ({}).",
        if revoked == 1 { "" } else { "s" },
        ids.join(", ")
    );
    println!("{}", access::said(slug, &pushed));
    if notified {
        super::apply::send_due(&store).await;
    }
    store.close().await;
    Ok(if pushed.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

struct RotateArgs<'a> {
    slug: &'a str,
    name: &'a str,
    grace: Duration,
    lock_timeout: Duration,
    keys_file: Option<&'a Path>,
    output: Output,
}

/// A new key under the old one's name; the old key is revoked at the end of the grace. Runs
/// through the reconcile path (lock, re-plan of the tenant), which tells the site.
async fn rotate(ctx: &Context<'_>, a: RotateArgs<'_>) -> Result<ExitCode> {
    let RotateArgs {
        slug,
        name,
        grace,
        lock_timeout,
        keys_file,
        output,
    } = a;
    if let Some(problem) = name_problem(name) {
        bail!("{problem}");
    }
    let Some(loaded) = ctx
        .load("HEAD", false, Access::Write { adopt: false })
        .await?
    else {
        return Ok(ExitCode::from(1));
    };
    let (key, digest) = apply::keys::generate()?;
    let store = &loaded.store;
    let now = now_unix();
    let revoke_at = now.saturating_add(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
    let new_row = ApiKeyRow::new(slug, name, &digest, now, None);
    let old_ids: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = old_ids.clone();
    let row = new_row.clone();
    // Under the apply lock, before the tenant is re-planned.
    let store_key = async move {
        check_tenant(store, slug).await?;
        let keys = access::keys_of(store, slug).await?;
        let old: Vec<String> = keys
            .iter()
            .filter(|k| k.name == name && k.live_at(now))
            .map(|k| k.id.clone())
            .collect();
        if old.is_empty() {
            bail!(
                "tenant `{slug}` has no live key named `{name}`: `tenantctl keys create {slug} --name {name}` makes one"
            );
        }
        store
            .insert_api_key(
                &row,
                "tenant.key-created",
                &format!("API key `{name}` ({}) created by a rotation", row.id),
            )
            .await?;
        store
            .revoke_api_keys(
                slug,
                &old,
                revoke_at,
                "tenant.key-rotated",
                &format!(
                    "API key `{name}` rotated: {} → {}; the old key is refused from {}",
                    old.join(", "),
                    row.id,
                    rfc3339(revoke_at)
                ),
            )
            .await?;
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = old;
        Ok(())
    };
    let request = ApplyRequest {
        desired: &loaded.desired,
        opts: PlanOptions {
            namespace: ctx.namespace().to_string(),
            revision: loaded.revision(),
            prune: false,
            tenants: vec![slug.to_string()],
        },
        config: ApplyTuning::defaults()?.config(ctx.namespace(), loaded.revision()),
        lock_wait: lock_timeout,
        approved: None,
        scope: Scope::TenantsOnly,
        record_trial_ends: false,
        announce: Announce::Nothing,
        max_destroy: Some(ApplyTuning::defaults()?.destroy.max_destroy),
    };
    let progress: Arc<dyn crate::apply::Progress> = match output {
        Output::Text => Arc::new(Printer),
        Output::Json => Arc::new(ErrPrinter),
    };
    let applied =
        reconcile::apply_after(&loaded.runtime, store, progress, request, store_key).await?;
    let converged = applied.report.failed() == 0;
    // The tenant's plan may have changed nothing: the site is told here in any case.
    let pushed = tell_site(&loaded.runtime, store, slug).await;
    let old_ids = old_ids.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (shown, lines) = hand_over(keys_file, slug, &key);
    match output {
        Output::Text => {
            match &shown {
                Some(key) => println!(
                    "\nNew API key `{name}` for {slug} (id {}; shown once, only its SHA-256 is stored):\n  {key}",
                    new_row.id
                ),
                None => lines.iter().for_each(|l| println!("{l}")),
            }
            println!(
                "The old key ({}) is refused from {}.",
                old_ids.join(", "),
                rfc3339(revoke_at)
            );
            println!("{}", access::said(slug, &pushed));
        }
        Output::Json => {
            lines.iter().for_each(|l| eprintln!("{l}"));
            let url = match applied.report.outcomes.get(slug) {
                Some(apply::Outcome::Converged { url }) => url.clone(),
                _ => None,
            };
            let document = serde_json::json!({
                "tenant": slug,
                "name": name,
                "id": new_row.id,
                "key": shown,
                "rotated_at": rfc3339(now),
                "old_keys": old_ids,
                "old_keys_revoked_at": revoke_at,
                "revision": loaded.revision(),
                "site": site_word(&pushed),
                "url": url,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&versioned(document, FORMAT_VERSION))?
            );
        }
    }
    if !loaded.desired.notifications.is_empty() {
        super::apply::send_due(store).await;
    }
    if !converged || pushed.is_err() {
        eprintln!(
            "the key is stored, but the tenant did not converge or its site was not told: run `tenantctl apply`"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_short_and_plain() {
        assert_eq!(name_problem("ci"), None);
        assert_eq!(name_problem("billing-app.v2_1"), None);
        assert!(name_problem("").is_some());
        assert!(name_problem("CI").is_some());
        assert!(name_problem("-ci").is_some());
        assert!(name_problem("a b").is_some());
        assert!(name_problem(&"a".repeat(41)).is_some());
    }

    #[test]
    fn status_and_table_say_no_secret() {
        let mut k = ApiKeyRow::new("acme", "ci", &"f".repeat(64), 0, Some(100));
        assert_eq!(status(&k, 50), "live");
        assert_eq!(status(&k, 100), "expired");
        k.revoked_at = Some(80);
        assert_eq!(status(&k, 50), "live until 1970-01-01T00:01:20Z (rotated)");
        assert_eq!(status(&k, 80), "revoked");
        let text = table(&[k], 90);
        assert!(text.starts_with("TENANT"), "{text}");
        assert!(!text.contains(&"f".repeat(17)), "no digest: {text}");
    }
}
