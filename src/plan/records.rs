//! Database rows as the desired state asks for them, and the fields of a row a plan compares.

use crate::model::{Plan, Tenant, Theme, quantity::format_bytes};
use crate::store::{PlanRow, TenantRow, ThemeRow};
use serde_json::{Value, json};

pub fn plan_row(p: &Plan, revision: &str, now: i64) -> PlanRow {
    PlanRow {
        name: p.name.clone(),
        display_name: p.display_name.clone(),
        price_cents: p.price_cents,
        currency: p.currency.clone(),
        cycle: p.cycle.as_str().to_string(),
        trial_days: i64::from(p.trial_days),
        nano_cpus: p.resources.nano_cpus,
        memory_bytes: p.resources.memory_bytes as i64,
        pids: i64::from(p.resources.pids),
        storage_bytes: p.resources.storage_bytes.map(|b| b as i64),
        api_calls_per_month: p.quotas.api_calls_per_month.map(|v| v as i64),
        ai_interactions_per_month: p.quotas.ai_interactions_per_month.map(|v| v as i64),
        users: p.quotas.users.map(|v| v as i64),
        rate_limit_rpm: p.rate_limit_rpm.map(i64::from),
        features: json!(p.features).to_string(),
        revision: revision.to_string(),
        updated_at: now,
    }
}

pub fn theme_row(t: &Theme, revision: &str, now: i64) -> ThemeRow {
    ThemeRow {
        name: t.name.clone(),
        display_name: t.display_name.clone(),
        version: t.version.clone(),
        image: t.image.clone(),
        port: i64::from(t.port),
        health_path: t.health_path.clone(),
        health_interval_seconds: i64::from(t.health_interval_seconds),
        config: json!(t.config).to_string(),
        revision: revision.to_string(),
        updated_at: now,
    }
}

/// A new tenant's row; the reconciler's own columns start empty.
pub fn tenant_row(t: &Tenant, revision: &str, now: i64) -> TenantRow {
    TenantRow {
        slug: t.slug.clone(),
        display_name: t.display_name.clone(),
        owner: t.owner.clone(),
        plan: t.plan.clone(),
        theme: t.theme.clone(),
        state: t.state.as_str().to_string(),
        domain: t.domain.clone(),
        features: features_json(t).to_string(),
        trial_ends_at: None,
        api_key_sha256: None,
        applied_revision: Some(revision.to_string()),
        applied_spec_hash: None,
        url: None,
        last_error: None,
        desired_revision: Some(revision.to_string()),
        created_at: now,
        updated_at: now,
        progress_step: None,
        progress_percent: None,
        progress_at: None,
        error_step: None,
    }
}

/// The parts of a tenant row that git decides; the rest (keys, trial end, status) is the reconciler's.
pub fn tenant_view_desired(t: &Tenant) -> Value {
    json!({
        "displayName": t.display_name,
        "owner": t.owner,
        "plan": t.plan,
        "theme": t.theme,
        "state": t.state.as_str(),
        "domain": t.domain,
        "features": features_json(t),
    })
}

/// The tenant's own features as its row keeps them: the list it adds (the older form, so rows
/// written before `remove` existed still match), or `{"add": [...], "remove": [...]}`.
pub fn features_json(t: &Tenant) -> Value {
    if t.features_removed.is_empty() {
        json!(t.features)
    } else {
        json!({"add": t.features, "remove": t.features_removed})
    }
}

/// Whether a row already holds what git says, without building views (the common case).
pub fn tenant_matches(r: &TenantRow, t: &Tenant) -> bool {
    r.display_name == t.display_name
        && r.owner == t.owner
        && r.plan == t.plan
        && r.theme == t.theme
        && r.state == t.state.as_str()
        && r.domain == t.domain
        && (serde_json::to_string(&features_json(t)).is_ok_and(|f| f == r.features)
            || parse_json(&r.features) == features_json(t))
}

pub fn tenant_view(r: &TenantRow) -> Value {
    json!({
        "displayName": r.display_name,
        "owner": r.owner,
        "plan": r.plan,
        "theme": r.theme,
        "state": r.state,
        "domain": r.domain,
        "features": parse_json(&r.features),
    })
}

/// The fields of a plan row a plan compares (not its revision or timestamps).
pub fn plan_view(r: &PlanRow) -> Value {
    let money = format!("{}.{:02}", r.price_cents / 100, r.price_cents % 100);
    json!({
        "displayName": r.display_name,
        "price": format!("{money} {} {}", r.currency, r.cycle),
        "trialDays": r.trial_days,
        "resources": {
            "cpus": r.nano_cpus as f64 / 1e9,
            "memory": format_bytes(r.memory_bytes.max(0) as u64),
            "pids": r.pids,
            "storage": r.storage_bytes.map(|b| format_bytes(b.max(0) as u64)),
        },
        "quotas": {
            "apiCallsPerMonth": r.api_calls_per_month,
            "aiInteractionsPerMonth": r.ai_interactions_per_month,
            "users": r.users,
        },
        "rateLimit": { "requestsPerMinute": r.rate_limit_rpm },
        "features": parse_json(&r.features),
    })
}

pub fn theme_view(r: &ThemeRow) -> Value {
    json!({
        "displayName": r.display_name,
        "version": r.version,
        "image": r.image,
        "port": r.port,
        "health": { "path": r.health_path, "intervalSeconds": r.health_interval_seconds },
        "config": parse_json(&r.config),
    })
}

/// Text columns holding JSON; a row edited by hand into something unreadable shows as its text.
fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}
