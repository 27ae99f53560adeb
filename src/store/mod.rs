//! store (placeholder types until the sqlx module lands)
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct ObservedDb {
    pub plans: BTreeMap<String, PlanRow>,
    pub themes: BTreeMap<String, ThemeRow>,
    pub tenants: BTreeMap<String, TenantRow>,
}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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
    pub features: String,
    pub revision: String,
    pub updated_at: i64,
}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThemeRow {
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub image: Option<String>,
    pub port: i64,
    pub health_path: String,
    pub health_interval_seconds: i64,
    pub config: String,
    pub revision: String,
    pub updated_at: i64,
}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TenantRow {
    pub slug: String,
    pub display_name: String,
    pub owner: String,
    pub plan: String,
    pub theme: String,
    pub state: String,
    pub domain: Option<String>,
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
