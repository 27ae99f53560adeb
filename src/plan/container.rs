//! The container a tenant should have: a pure function of its tenant, plan and theme.

use crate::model::{Plan, Tenant, Theme};
pub use crate::runtime::types::{ContainerSpec, ServiceShape, builtin_site_image, site_user};
use crate::runtime::types::{
    LABEL_HASH_VERSION, LABEL_REVISION, LABEL_SPEC_HASH, ObservedContainer, container_name,
    managed_labels, network_name, volume_name,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The version of the spec-hash input. Bump it only together with a `hash_v*` function for the
/// new shape, keeping the old ones, so containers made by an older tenantctl are compared with
/// the function that made their label instead of all being recreated.
pub const HASH_VERSION: &str = "2";

/// The env var that carries the SHA-256 of the tenant's API key into its container.
pub const API_KEY_ENV: &str = "TENANT_API_KEY_SHA256";

/// The env var that carries the tenant's effective feature flags (comma separated) into its
/// container. The built-in site learns later changes from its access file
/// (`crate::access`), so for it the planner keeps the container's own value (no replace).
pub const FEATURES_ENV: &str = "TENANT_FEATURES";

/// Env names whose values are secrets or derived from secrets: never shown, never hashed.
pub const SECRET_ENV: [&str; 1] = [API_KEY_ENV];

/// Words that mark an env value as sensitive: shown in plans only as a short fingerprint.
pub const SENSITIVE_WORDS: [&str; 7] = [
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
    let features: Vec<String> = crate::model::effective_features(plan, tenant)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    put(FEATURES_ENV, features.join(","));
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

/// The shell script of an image theme's health check. The URL is its first positional
/// parameter (`"$1"`), never pasted into the script, so no character of a health path can
/// reach the shell as code.
pub const IMAGE_HEALTH_SCRIPT: &str =
    "curl -fsS -o /dev/null \"$1\" || wget -q -O /dev/null \"$1\" || exit 1";

/// The health check of a theme with its own image: `sh -c SCRIPT sh URL` (exec form, no
/// interpolation). Images need `sh` and `curl` or `wget`, as before.
pub fn image_health_cmd(url: &str) -> Vec<String> {
    vec![
        "CMD".into(),
        "sh".into(),
        "-c".into(),
        IMAGE_HEALTH_SCRIPT.into(),
        "sh".into(),
        url.into(),
    ]
}

/// The health check of the built-in site: its own binary, no shell in the image.
pub fn builtin_health_cmd(url: &str) -> Vec<String> {
    vec![
        "CMD".into(),
        "/tenantctl".into(),
        "site-health".into(),
        url.into(),
    ]
}

pub fn desired_container(
    namespace: &str,
    tenant: &Tenant,
    plan: &Plan,
    theme: &Theme,
) -> ContainerSpec {
    let url = format!("http://127.0.0.1:{}{}", theme.port, theme.health_path);
    let builtin = theme.image.is_none();
    let (image, health_cmd) = match &theme.image {
        None => (builtin_site_image(), builtin_health_cmd(&url)),
        Some(image) => (image.clone(), image_health_cmd(&url)),
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
        // The built-in site runs unprivileged on a read-only root; an image keeps its own user
        // and may write where it likes inside its container.
        user: builtin.then(site_user),
        read_only_rootfs: builtin,
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
///
/// Version 1 is `spec` as older tenantctl versions wrote it: no user or read-only root in the input,
/// and an image theme's health check as the shell string of those versions (same URL). So an
/// image-theme container made then still matches, and is not recreated only because the
/// command is now written without a shell string; see [`version_gap`] for what version 1
/// cannot express.
pub fn spec_hash(spec: &ContainerSpec, version: &str) -> Option<String> {
    match version {
        "1" => Some(hash_v1(spec)),
        "2" => Some(hash_v2(spec)),
        _ => None,
    }
}

/// Why a container whose label has hash version `version` cannot be `spec` even when its
/// hash matches: something `spec` asks for that the hash input of that version did not hold.
/// Version 1 containers ran the built-in site as root on a writable root filesystem.
pub fn version_gap(spec: &ContainerSpec, version: &str) -> Option<String> {
    match version {
        "1" if spec.user.is_some() || spec.read_only_rootfs => Some(format!(
            "security: the built-in site now runs as uid:gid {} with a read-only root filesystem (this container was made by an older tenantctl and runs as root)",
            spec.user.as_deref().unwrap_or("(image)")
        )),
        _ => None,
    }
}

/// The version-1 health command of the same check: image themes had the URL pasted
/// into a `CMD-SHELL` string. Anything else was written as it is now.
fn v1_health_cmd(cmd: &[String]) -> Vec<String> {
    match cmd {
        [c, sh, dash_c, script, zero, url]
            if c == "CMD"
                && sh == "sh"
                && dash_c == "-c"
                && script == IMAGE_HEALTH_SCRIPT
                && zero == "sh" =>
        {
            vec![
                "CMD-SHELL".into(),
                format!("curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1"),
            ]
        }
        _ => cmd.to_vec(),
    }
}

/// The hash input of version 1, field for field as `ContainerSpec` was then.
#[derive(Serialize)]
struct SpecV1<'a> {
    name: &'a str,
    image: &'a str,
    env: &'a BTreeMap<String, String>,
    nano_cpus: i64,
    memory_bytes: u64,
    pids: u32,
    port: u16,
    publish_address: &'a str,
    health_cmd: Vec<String>,
    health_interval_seconds: u32,
    cap_add: &'a [String],
    network: &'a str,
    volume: &'a str,
}

fn hash_v1(spec: &ContainerSpec) -> String {
    let v1 = SpecV1 {
        name: &spec.name,
        image: &spec.image,
        env: &spec.env,
        nano_cpus: spec.nano_cpus,
        memory_bytes: spec.memory_bytes,
        pids: spec.pids,
        port: spec.port,
        publish_address: &spec.publish_address,
        health_cmd: v1_health_cmd(&spec.health_cmd),
        health_interval_seconds: spec.health_interval_seconds,
        cap_add: &spec.cap_add,
        network: &spec.network,
        volume: &spec.volume,
    };
    hash_json(1, &v1)
}

fn hash_v2(spec: &ContainerSpec) -> String {
    hash_json(2, spec)
}

/// SHA-256 of `{"v":<version>,"spec":<spec>}`. serde_json writes struct fields in declaration
/// order and BTreeMap keys sorted: a canonical form, streamed into the hasher.
fn hash_json(version: u32, spec: &impl Serialize) -> String {
    let mut hasher = HashWriter(Sha256::new());
    hasher
        .0
        .update(format!(r#"{{"v":{version},"spec":"#).as_bytes());
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
            features_removed: vec![],
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
            spec_hash(&desired_container("ns", &t, &p, &th), "3"),
            None,
            "unknown versions are not guessed"
        );
    }

    #[test]
    fn the_builtin_site_runs_unprivileged_and_image_themes_keep_their_user() {
        let (t, p, th) = fixture();
        let site = desired_container("ns", &t, &p, &th);
        assert_eq!(site.user.as_deref(), Some("10001:10001"));
        assert!(site.read_only_rootfs);
        let mut shop = th.clone();
        shop.image = Some("registry.example/shop:4".into());
        let theme = desired_container("ns", &t, &p, &shop);
        assert_eq!(theme.user, None);
        assert!(!theme.read_only_rootfs);
        assert_eq!(
            version_gap(&site, "1").map(|g| g.starts_with("security:")),
            Some(true)
        );
        assert_eq!(version_gap(&theme, "1"), None);
        assert_eq!(version_gap(&site, "2"), None);
    }

    #[test]
    fn the_image_health_check_passes_the_url_as_an_argument() {
        let url = "http://127.0.0.1:8080/$(touch /tmp/pwned);id`id`|x";
        let cmd = image_health_cmd(url);
        assert_eq!(cmd[..5], ["CMD", "sh", "-c", IMAGE_HEALTH_SCRIPT, "sh"]);
        assert_eq!(cmd[5], url, "the URL is its own argument, byte for byte");
        assert!(!IMAGE_HEALTH_SCRIPT.contains("127.0.0.1"));
        assert_eq!(
            cmd[0], "CMD",
            "exec form: the engine runs no shell of its own"
        );
    }

    #[test]
    fn shell_characters_in_the_health_url_are_never_run() -> Result<(), Box<dyn std::error::Error>>
    {
        // The script as the engine would run it, with a `curl` that records its arguments.
        let dir = tempfile::tempdir()?;
        let marker = dir.path().join("pwned");
        let record = dir.path().join("args");
        let curl = dir.path().join("curl");
        std::fs::write(
            &curl,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
                record.display()
            ),
        )?;
        std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        let url = format!(
            "http://127.0.0.1:1/$(touch {m});touch {m}`touch {m}`&&touch {m}",
            m = marker.display()
        );
        let cmd = image_health_cmd(&url);
        let status = std::process::Command::new("/bin/sh")
            .args(&cmd[2..])
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .status()?;
        assert!(status.success());
        assert!(!marker.exists(), "a health path ran a command");
        let args = std::fs::read_to_string(&record)?;
        assert_eq!(args.lines().last(), Some(url.as_str()), "{args}");
        Ok(())
    }

    #[test]
    fn hash_v1_of_an_image_theme_is_that_of_the_old_shell_string_command() {
        // The hash input as version-1 tenantctl wrote it, built here by hand.
        let (t, p, mut th) = fixture();
        th.image = Some("registry.example/shop:4".into());
        let spec = desired_container("ns", &t, &p, &th);
        let url = "http://127.0.0.1:8080/health";
        let old = serde_json::json!({
            "name": spec.name, "image": spec.image, "env": spec.env,
            "nano_cpus": spec.nano_cpus, "memory_bytes": spec.memory_bytes, "pids": spec.pids,
            "port": spec.port, "publish_address": spec.publish_address,
            "health_cmd": ["CMD-SHELL", format!("curl -fsS -o /dev/null {url} || wget -q -O /dev/null {url} || exit 1")],
            "health_interval_seconds": spec.health_interval_seconds, "cap_add": spec.cap_add,
            "network": spec.network, "volume": spec.volume,
        });
        let bytes = format!(r#"{{"v":1,"spec":{old}}}"#);
        assert_eq!(
            spec_hash(&spec, "1").unwrap(),
            hex::encode(Sha256::digest(bytes.as_bytes()))
        );
        assert_ne!(spec_hash(&spec, "1"), spec_hash(&spec, "2"));
    }

    #[test]
    fn hash_v2_is_stable_across_builds() {
        // Pinned like version 1: a change here recreates every tenant. Add a version instead.
        let (t, p, th) = fixture();
        let mut spec = desired_container("ns", &t, &p, &th);
        spec.image = "fixed:1".into();
        assert_eq!(
            spec_hash(&spec, "2").unwrap(),
            "c91db540ed3e84199ae84417d8c9e33edfc8b2f7cf0d72b6cc6d54ec5ab8438c"
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
