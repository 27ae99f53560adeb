//! The YAML documents exactly as people write them. Unknown fields are errors.
//!
//! Fields that need a semantic check after parsing (names, references, quantities) are
//! `Spanned`, so the check can point at the line and column they came from.

use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// One document: `kind`, `name` and a `spec` of the kind's type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document<S> {
    pub kind: String,
    pub name: Spanned<String>,
    pub spec: S,
}

/// First pass over a document: only its kind, everything else skipped.
#[derive(Debug, Deserialize)]
pub struct KindProbe {
    pub kind: Option<Spanned<String>>,
    /// Any value, so a probe never fails on a bad name; the typed pass reports that.
    pub name: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanSpec {
    pub display_name: Spanned<String>,
    pub price: PriceSpec,
    pub trial_days: Option<Spanned<u32>>,
    pub resources: ResourcesSpec,
    #[serde(default)]
    pub quotas: QuotasSpec,
    pub rate_limit: Option<RateLimitSpec>,
    #[serde(default)]
    pub features: Vec<Spanned<String>>,
    /// Tasks per tenant in swarm mode (docker mode runs one container); default 1.
    pub replicas: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PriceSpec {
    pub amount: Spanned<f64>,
    pub currency: Spanned<String>,
    pub cycle: BillingCycle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BillingCycle {
    Monthly,
    Yearly,
}

impl BillingCycle {
    pub fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "monthly",
            BillingCycle::Yearly => "yearly",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourcesSpec {
    pub cpus: Spanned<f64>,
    pub memory: Spanned<String>,
    pub pids: Option<Spanned<u32>>,
    pub storage: Option<Spanned<String>>,
    /// What the swarm scheduler sets aside per task (placement); limits stay the caps.
    pub reservations: Option<ReservationsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReservationsSpec {
    pub cpus: Option<Spanned<f64>>,
    pub memory: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotasSpec {
    pub api_calls_per_month: Option<Spanned<u64>>,
    pub ai_interactions_per_month: Option<Spanned<u64>>,
    pub users: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitSpec {
    pub requests_per_minute: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ThemeSpec {
    pub display_name: Spanned<String>,
    pub version: Spanned<String>,
    pub image: Option<Spanned<String>>,
    #[serde(default = "default_port")]
    pub port: Spanned<u16>,
    #[serde(default)]
    pub health: HealthSpec,
    #[serde(default)]
    pub config: BTreeMap<String, Spanned<ConfigScalar>>,
    /// Linux capabilities the site needs; all others are dropped.
    #[serde(default)]
    pub capabilities: Vec<Spanned<String>>,
    /// Host address the site's port is published on; loopback unless the theme says otherwise.
    pub publish_address: Option<Spanned<String>>,
}

fn default_port() -> Spanned<u16> {
    Spanned::new(
        8080,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthSpec {
    #[serde(default = "default_health_path")]
    pub path: Spanned<String>,
    #[serde(default = "default_interval")]
    pub interval_seconds: Spanned<u32>,
}

impl Default for HealthSpec {
    fn default() -> Self {
        HealthSpec {
            path: default_health_path(),
            interval_seconds: default_interval(),
        }
    }
}

fn default_health_path() -> Spanned<String> {
    Spanned::new(
        "/health".to_string(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

fn default_interval() -> Spanned<u32> {
    Spanned::new(
        10,
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}

/// A theme setting: a string, number or boolean (no nesting, so it maps onto one env var).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum ConfigScalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
}

impl std::fmt::Display for ConfigScalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigScalar::Bool(b) => write!(f, "{b}"),
            ConfigScalar::Int(i) => write!(f, "{i}"),
            ConfigScalar::Float(x) => write!(f, "{x}"),
            ConfigScalar::String(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TenantSpec {
    pub display_name: Spanned<String>,
    pub owner: Spanned<String>,
    pub plan: Spanned<String>,
    pub theme: Spanned<String>,
    #[serde(default)]
    pub state: TenantState,
    pub domain: Option<Spanned<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, Spanned<String>>,
    /// `[a, b]` (added over the plan's) or `{add: [...], remove: [...]}`.
    #[serde(default)]
    pub features: TenantFeaturesSpec,
    #[serde(default)]
    pub billing: BillingSpec,
    /// Where the tenant's tasks may run in swarm mode (data volumes are node-local).
    #[serde(default)]
    pub placement: PlacementSpec,
}

/// A tenant's flags over its plan's: a list adds (the older form), a map adds and removes.
#[derive(Debug, Default)]
pub struct TenantFeaturesSpec {
    pub add: Vec<Spanned<String>>,
    pub remove: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for TenantFeaturesSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TenantFeaturesSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of features, or a map with `add` and `remove` lists")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(TenantFeaturesSpec::default())
            }
            fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(TenantFeaturesSpec::default())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut add = Vec::new();
                while let Some(f) = seq.next_element()? {
                    add.push(f);
                }
                Ok(TenantFeaturesSpec {
                    add,
                    remove: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = TenantFeaturesSpec::default();
                let (mut add, mut remove) = (false, false);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "add" if !add => {
                            add = true;
                            out.add = map.next_value()?;
                        }
                        "remove" if !remove => {
                            remove = true;
                            out.remove = map.next_value()?;
                        }
                        "add" | "remove" => {
                            return Err(serde::de::Error::duplicate_field(if add {
                                "add"
                            } else {
                                "remove"
                            }));
                        }
                        other => {
                            return Err(serde::de::Error::unknown_field(other, &["add", "remove"]));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// Swarm placement: constraints such as `node.hostname == host-a` or `node.labels.zone != b`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlacementSpec {
    #[serde(default)]
    pub constraints: Vec<Spanned<String>>,
}

/// How the tenant pays. A trial that ends without `converted: true` suspends the tenant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BillingSpec {
    /// The tenant became a paying customer: its plan's trial no longer limits it.
    #[serde(default)]
    pub converted: bool,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    #[default]
    Active,
    Suspended,
    Cancelled,
}

impl TenantState {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantState::Active => "active",
            TenantState::Suspended => "suspended",
            TenantState::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotificationSpec {
    pub url: Spanned<String>,
    pub events: Vec<Spanned<String>>,
    pub secret_env: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
}

/// `edge/edge.yaml`: the proxy in front of the namespace's tenants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EdgeSpec {
    pub http: Spanned<String>,
    pub https: Option<Spanned<String>>,
    pub admin: Option<Spanned<String>>,
    pub base_domain: Option<Spanned<String>>,
    pub tls: Option<EdgeTlsSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EdgeTlsSpec {
    pub mode: Spanned<String>,
    /// `files`: certificate and key files per set of hosts.
    #[serde(default)]
    pub certificates: Vec<EdgeCertSpec>,
    /// `acme`: the account's email, the directory URL, a root for the directory's own TLS.
    pub email: Option<Spanned<String>>,
    pub directory: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EdgeCertSpec {
    pub hosts: Vec<Spanned<String>>,
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}
