//! The container a tenant should have: a pure function of its tenant, plan and theme.

use crate::model::{Plan, Tenant, Theme};
pub use crate::runtime::types::{ContainerSpec, ServiceShape, builtin_site_image};
use crate::runtime::types::{
    LABEL_HASH_VERSION, LABEL_REVISION, LABEL_SPEC_HASH, ObservedContainer, container_name,
    managed_labels, network_name, volume_name,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The version of the spec-hash input. Bump it only together with a `hash_v*` function for the
/// new shape, keeping the old ones, so containers made by an older tenantctl are compared with
/// the function that made their label instead of all being recreated.
pub const HASH_VERSION: &str = "1";

/// The env var that carries the SHA-256 of the tenant's API key into its container.
pub const API_KEY_ENV: &str = "TENANT_API_KEY_SHA256";

/// Env names whose values are secrets or derived from secrets: never shown, never hashed.
pub const SECRET_ENV: [&str; 1] = [API_KEY_ENV];

/// Words that mark an env value as sensitive: shown in plans only as a short fingerprint.
const SENSITIVE_WORDS: [&str; 7] = [
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PRIVATE",
    "API_KEY",
    "CREDENTIAL",
];

/// An env value as plans may show it: sensitive ones as `(sensitive, sha256:…)` so a change is
/// visible without the value.
pub fn shown_env_value(key: &str, value: &str) -> String {
    let upper = key.to_ascii_uppercase();
    if SENSITIVE_WORDS.iter().any(|w| upper.contains(w)) {
        let digest = hex::encode(Sha256::digest(value.as_bytes()));
        format!("(sensitive, sha256:{})", &digest[..8])
    } else {
        value.to_string()
    }
}

fn shown_env<'a>(env: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    env.map(|(k, v)| (k.to_string(), shown_env_value(k, v)))
        .collect()
}

/// The environment contract of DESIGN.md: derived values first, the tenant's own env merged over them.
pub fn desired_env(tenant: &Tenant, plan: &Plan, theme: &Theme) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        env.insert(k.to_string(), v);
    };
    put("PORT", theme.port.to_string());
    put("TENANT_SLUG", tenant.slug.clone());
    put("TENANT_NAME", tenant.display_name.clone());
    put("TENANT_PLAN", plan.name.clone());
    put("TENANT_THEME", theme.name.clone());
    if let Some(d) = &tenant.domain {
        put("TENANT_DOMAIN", d.clone());
    }
    let mut features: Vec<&str> = plan
        .features
        .iter()
        .chain(&tenant.features)
        .map(String::as_str)
        .collect();
    features.sort();
    features.dedup();
    put("TENANT_FEATURES", features.join(","));
    if let Some(rpm) = plan.rate_limit_rpm {
        put("PLAN_RATE_LIMIT_RPM", rpm.to_string());
    }
    let quotas = [
        ("PLAN_API_CALLS_PER_MONTH", plan.quotas.api_calls_per_month),
        (
            "PLAN_AI_INTERACTIONS_PER_MONTH",
            plan.quotas.ai_interactions_per_month,
        ),
        ("PLAN_USERS", plan.quotas.users),
    ];
    for (k, v) in quotas {
        if let Some(v) = v {
            put(k, v.to_string());
        }
    }
    put("THEME_NAME", theme.name.clone());
    put("THEME_DISPLAY_NAME", theme.display_name.clone());
    put("THEME_VERSION", theme.version.clone());
    for (key, value) in &theme.config {
        put(
            &format!("THEME_{}", screaming_snake(key)),
            value.to_string(),
        );
    }
    for (k, v) in &tenant.env {
        put(k, v.clone());
    }
    env
}

/// `primaryColor` → `PRIMARY_COLOR`.
pub fn screaming_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

pub fn desired_container(
    namespace: &str,
    tenant: &Tenant,
    plan: &Plan,
    theme: &Theme,
) -> ContainerSpec {
    let url = format!("http://127.0.0.1:{}{}", theme.port, theme.health_path);
    let (image, health_cmd) = match &theme.image {
        // The built-in site image has no shell: it checks its own health with its own binary.
        None => (
            builtin_site_image(),
            vec!["CMD".into(), "/tenantctl".into(), "site-health".into(), url],
        ),
        Some(image) => (
            image.clone(),
            vec![
                "CMD-SHELL".into(),
                format!("curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"),
            ],
        ),
    };
    ContainerSpec {
        name: container_name(namespace, &tenant.slug),
        image,
        env: desired_env(tenant, plan, theme),
        nano_cpus: plan.resources.nano_cpus,
        memory_bytes: plan.resources.memory_bytes,
        pids: plan.resources.pids,
        port: theme.port,
        publish_address: theme.publish_address.clone(),
        health_cmd,
        health_interval_seconds: theme.health_interval_seconds,
        cap_add: theme.capabilities.clone(),
        network: network_name(namespace, &tenant.slug),
        volume: volume_name(namespace, &tenant.slug),
    }
}

/// The swarm service's shape beyond the container: replicas (0 while suspended), placement
/// and reservations. Not in the spec hash: these change a service in place.
pub fn desired_shape(tenant: &Tenant, plan: &Plan) -> ServiceShape {
    let mut constraints = tenant.constraints.clone();
    constraints.sort();
    ServiceShape {
        replicas: match tenant.state {
            crate::model::TenantState::Active => plan.replicas,
            _ => 0,
        },
        constraints,
        reserved_nano_cpus: plan.resources.reserved_nano_cpus,
        reserved_memory_bytes: plan
            .resources
            .reserved_memory_bytes
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        published_port: None,
    }
}

/// The spec hash of `spec` under hash-input version `version`, or `None` for a version this
/// build does not know (a newer tenantctl made the container).
pub fn spec_hash(spec: &ContainerSpec, version: &str) -> Option<String> {
    match version {
        "1" => Some(hash_v1(spec)),
        _ => None,
    }
}

fn hash_v1(spec: &ContainerSpec) -> String {
    // serde_json writes struct fields in declaration order and BTreeMap keys sorted: a canonical
    // form. Streamed into the hasher: the bytes are those of `{"v":1,"spec":<spec>}`.
    let mut hasher = HashWriter(Sha256::new());
    hasher.0.update(br#"{"v":1,"spec":"#);
    // Writing into a hasher cannot fail, and serializing plain strings and numbers cannot either.
    let _ = serde_json::to_writer(&mut hasher, spec);
    hasher.0.update(b"}");
    hex::encode(hasher.0.finalize())
}

struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Labels every managed container carries.
pub fn labels(
    namespace: &str,
    slug: &str,
    spec: &ContainerSpec,
    revision: &str,
) -> BTreeMap<String, String> {
    let mut labels = managed_labels(namespace, slug);
    labels.insert(
        LABEL_SPEC_HASH.to_string(),
        spec_hash(spec, HASH_VERSION).unwrap_or_default(),
    );
    labels.insert(LABEL_HASH_VERSION.to_string(), HASH_VERSION.to_string());
    labels.insert(LABEL_REVISION.to_string(), revision.to_string());
    labels
}

/// What can be read back from a running container, in the same shape as the desired spec,
/// so the plan can show a field-by-field diff of what is really there.
pub fn observed_view(c: &ObservedContainer, desired: &ContainerSpec) -> serde_json::Value {
    let env = shown_env(
        c.env
            .iter()
            .filter(|(k, _)| !SECRET_ENV.contains(k))
            // Engine-added variables (PATH from the image) are not ours to compare.
            .filter(|(k, _)| desired.env.contains_key(*k) || !IMAGE_ENV.contains(k)),
    );
    let port = c
        .published_ports
        .iter()
        .find(|p| p.container_port == desired.port)
        .or(c.published_ports.first());
    serde_json::json!({
        "image": c.image,
        "env": env,
        "cpus": c.nano_cpus.map(|n| n as f64 / 1e9),
        "memory": c.memory_bytes.map(|m| crate::model::quantity::format_bytes(m.max(0) as u64)),
        "pids": c.pids_limit,
        "port": port.map(|p| p.container_port),
        "publish": port.map(|p| p.host_ip.clone()),
    })
}

/// The desired spec in the shape of [`observed_view`].
pub fn desired_view(spec: &ContainerSpec) -> serde_json::Value {
    serde_json::json!({
        "image": spec.image,
        "env": shown_env(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        "cpus": spec.nano_cpus as f64 / 1e9,
        "memory": crate::model::quantity::format_bytes(spec.memory_bytes),
        "pids": spec.pids,
        "port": spec.port,
        "publish": spec.publish_address,
    })
}

/// Variables images commonly set that tenantctl does not manage.
const IMAGE_ENV: [&str; 4] = ["PATH", "HOME", "HOSTNAME", "TERM"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BillingCycle, Origin, Quotas, Resources, TenantState};

    pub(crate) fn fixture() -> (Tenant, Plan, Theme) {
        let origin = Origin {
            path: "x.yaml".into(),
            line: 2,
            column: 7,
        };
        let plan = Plan {
            name: "pro".into(),
            origin: origin.clone(),
            display_name: "Pro".into(),
            price_cents: 7999,
            currency: "USD".into(),
            cycle: BillingCycle::Monthly,
            trial_days: 14,
            resources: Resources {
                nano_cpus: 1_000_000_000,
                memory_bytes: 512 << 20,
                pids: 256,
                storage_bytes: None,
                reserved_nano_cpus: None,
                reserved_memory_bytes: None,
            },
            quotas: Quotas {
                api_calls_per_month: Some(100_000),
                ai_interactions_per_month: None,
                users: Some(10),
            },
            rate_limit_rpm: Some(300),
            features: vec!["webhooks".into()],
            replicas: 1,
        };
        let theme = Theme {
            name: "modern".into(),
            origin: origin.clone(),
            display_name: "Modern".into(),
            version: "1.2.0".into(),
            image: None,
            port: 8080,
            health_path: "/health".into(),
            health_interval_seconds: 10,
            config: [(
                "primaryColor".to_string(),
                crate::model::ConfigScalar::String("#0f62fe".into()),
            )]
            .into(),
            capabilities: vec![],
            publish_address: "127.0.0.1".into(),
        };
        let tenant = Tenant {
            slug: "acme".into(),
            origin,
            display_name: "Acme".into(),
            owner: "ops@acme.example".into(),
            plan: "pro".into(),
            theme: "modern".into(),
            state: TenantState::Active,
            domain: None,
            env: [("LOG_LEVEL".to_string(), "info".to_string())].into(),
            features: vec!["beta".into(), "webhooks".into()],
            converted: false,
            constraints: vec![],
        };
        (tenant, plan, theme)
    }

    #[test]
    fn env_follows_the_contract_and_tenant_env_wins() {
        let (t, p, th) = fixture();
        let env = desired_env(&t, &p, &th);
        assert_eq!(env["TENANT_SLUG"], "acme");
        assert_eq!(env["TENANT_FEATURES"], "beta,webhooks");
        assert_eq!(env["THEME_PRIMARY_COLOR"], "#0f62fe");
        assert_eq!(env["PLAN_RATE_LIMIT_RPM"], "300");
        assert_eq!(env["LOG_LEVEL"], "info");
        assert!(!env.contains_key("PLAN_AI_INTERACTIONS_PER_MONTH"));
    }

    #[test]
    fn hash_changes_with_what_shapes_the_container_only() {
        let (t, p, th) = fixture();
        let base = spec_hash(&desired_container("ns", &t, &p, &th), "1").unwrap();
        assert_eq!(
            base,
            spec_hash(&desired_container("ns", &t, &p, &th), "1").unwrap(),
            "deterministic"
        );

        let mut p2 = p.clone();
        p2.price_cents = 1;
        p2.display_name = "Other".into();
        p2.trial_days = 0;
        let mut t2 = t.clone();
        t2.owner = "new@acme.example".into();
        t2.origin.line = 99;
        assert_eq!(
            base,
            spec_hash(&desired_container("ns", &t2, &p2, &th), "1").unwrap(),
            "price, owner, trial do not shape the container"
        );

        let mut p3 = p.clone();
        p3.resources.memory_bytes = 1 << 30;
        assert_ne!(
            base,
            spec_hash(&desired_container("ns", &t, &p3, &th), "1").unwrap()
        );
        let mut th2 = th.clone();
        th2.config.insert(
            "font".into(),
            crate::model::ConfigScalar::String("Inter".into()),
        );
        assert_ne!(
            base,
            spec_hash(&desired_container("ns", &t, &p, &th2), "1").unwrap()
        );
        let mut t3 = t.clone();
        t3.env.insert("LOG_LEVEL".into(), "debug".into());
        assert_ne!(
            base,
            spec_hash(&desired_container("ns", &t3, &p, &th), "1").unwrap()
        );
        assert_eq!(
            spec_hash(&desired_container("ns", &t, &p, &th), "2"),
            None,
            "unknown versions are not guessed"
        );
    }

    #[test]
    fn hash_v1_is_stable_across_builds() {
        // Pinned: if this changes, every running tenant would be recreated. Bump HASH_VERSION instead.
        let (t, p, th) = fixture();
        let mut spec = desired_container("ns", &t, &p, &th);
        spec.image = "fixed:1".into();
        assert_eq!(
            spec_hash(&spec, "1").unwrap(),
            "a35bdbc6e1a9e37b6fe86e1ce30ada9c1cebee518ebf9b0525d5da7f42c376ce"
        );
    }
}
