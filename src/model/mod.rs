//! Desired state: the Plan, Theme and Tenant documents, parsed and checked. No IO.

pub mod quantity;
pub mod shape;
pub mod spec;
pub mod text;
mod validate;

#[cfg(test)]
mod prop;

pub use spec::{BillingCycle, ConfigScalar, TenantState};
pub use text::printable;
pub use validate::features::{SOURCE_PLAN, SOURCE_TENANT, effective as effective_features};
pub use validate::{MAX_FILE_BYTES, load};

use std::collections::BTreeMap;
use std::fmt;

/// One file of the repository as the source layer read it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    pub content: SourceContent,
}

#[derive(Debug, Clone)]
pub enum SourceContent {
    Bytes(Vec<u8>),
    /// A symbolic link; never followed, since it could point outside the repository.
    Symlink,
    /// Larger than [`MAX_FILE_BYTES`]; not read.
    TooLarge(u64),
    /// A git submodule (a gitlink, or a directory holding its own `.git`): its files belong to
    /// another repository, which tenantctl does not read.
    Submodule,
    /// A name on the way is not UTF-8; `path` shows its bytes as `\xNN`. Not read.
    NonUtf8Name,
}

/// A problem in the repository, pointing at the exact place to fix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Diagnostic {
    pub path: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages quote repository text; none of it may reach a terminal raw.
        write!(
            f,
            "{}:{}:{}: {}",
            printable(&self.path),
            self.line,
            self.column,
            printable(&self.message)
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {}", printable(hint))?;
        }
        Ok(())
    }
}

/// Where a document's name stands in the repository.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub path: String,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", printable(&self.path), self.line, self.column)
    }
}

/// Everything the repository asks for at one revision, validated as a whole.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    pub plans: BTreeMap<String, Plan>,
    pub themes: BTreeMap<String, Theme>,
    pub tenants: BTreeMap<String, Tenant>,
    /// Where events are sent (`notifications/`); nothing is planned for them.
    pub notifications: BTreeMap<String, Notification>,
    /// `edge/edge.yaml`: the proxy in front of every tenant; None runs no edge (as before).
    pub edge: Option<Edge>,
}

/// The edge (`kind: Edge`): one proxy per namespace, routing each tenant's hosts to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub name: String,
    pub origin: Origin,
    /// Where it listens for HTTP, `ip:port` (IPv6 in brackets).
    pub http: String,
    /// Where it listens for HTTPS, if it does.
    pub https: Option<String>,
    /// Its admin API, on a loopback address (default 127.0.0.1:9180).
    pub admin: String,
    /// Every tenant also answers at `<slug>.<baseDomain>`.
    pub base_domain: Option<String>,
    pub tls: EdgeTls,
}

/// Where the edge's certificates come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EdgeTls {
    /// No TLS (no `https` listener).
    None,
    /// The edge's own CA signs a certificate per host.
    Internal,
    /// Certificate and key files per set of hosts, in the repository under `edge/`.
    Files(Vec<EdgeCertFiles>),
    /// Certificates from an ACME directory (HTTP-01 on the http listener).
    Acme {
        email: String,
        directory: String,
        /// A PEM file holding a root to trust for the directory's own TLS.
        ca_file: Option<String>,
    },
}

impl EdgeTls {
    pub fn mode(&self) -> &'static str {
        match self {
            EdgeTls::None => "none",
            EdgeTls::Internal => "internal",
            EdgeTls::Files(_) => "files",
            EdgeTls::Acme { .. } => "acme",
        }
    }
}

/// `tls: files`: a certificate chain and its key for a set of hosts, PEM files in the
/// repository under `edge/`, read from the same revision as the edge file.
#[derive(Clone, PartialEq)]
pub struct EdgeCertFiles {
    pub hosts: Vec<String>,
    /// The files' paths from the repository's root (`edge/certs/shop.pem`).
    pub cert: String,
    pub key: String,
    /// Their contents at this revision; filled once the whole revision is read.
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for EdgeCertFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A private key never reaches a log.
        f.debug_struct("EdgeCertFiles")
            .field("hosts", &self.hosts)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Whether `path` (from the repository's root) is a PEM file `tls: files` may name: a `.pem`,
/// `.crt` or `.key` file under `edge/`. The source reads these beside the YAML.
pub fn is_edge_pem(path: &str) -> bool {
    path.starts_with("edge/")
        && !path
            .split('/')
            .any(|part| part == ".." || part == "." || part.is_empty())
        && [".pem", ".crt", ".key"]
            .iter()
            .any(|ext| path.ends_with(ext))
}

/// The default admin address of the edge.
pub const EDGE_ADMIN_DEFAULT: &str = "127.0.0.1:9180";

impl Edge {
    /// The hosts `tenant` answers at through the edge: its domain, then `<slug>.<baseDomain>`.
    pub fn hosts_of(&self, tenant: &Tenant) -> Vec<String> {
        let mut hosts: Vec<String> = tenant.domain.iter().cloned().collect();
        if let Some(base) = &self.base_domain {
            hosts.push(format!("{}.{base}", tenant.slug));
        }
        hosts
    }

    /// The URL customers use for `tenant`: HTTPS when the edge serves it, at the tenant's
    /// first host, with the port unless it is the scheme's own. None when it has no host.
    pub fn url_of(&self, tenant: &Tenant) -> Option<String> {
        let host = self.hosts_of(tenant).into_iter().next()?;
        let (scheme, addr, default) = match &self.https {
            Some(https) if self.tls != EdgeTls::None => ("https", https.as_str(), 443),
            _ => ("http", self.http.as_str(), 80),
        };
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .unwrap_or(default);
        Some(if port == default {
            format!("{scheme}://{host}/")
        } else {
            format!("{scheme}://{host}:{port}/")
        })
    }
}

/// A `Notification`: matching events are POSTed to `url` (see `crate::notify`).
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub name: String,
    pub origin: Origin,
    pub url: String,
    /// Event kinds or globs of them (`tenant.*`).
    pub events: Vec<String>,
    /// The environment variable whose value signs each body (HMAC-SHA256); never its value.
    pub secret_env: Option<String>,
    pub format: NotificationFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationFormat {
    /// `{"format_version": 1, "notification": …, "event": {…}}`
    Json,
    /// `{"text": "…"}`, what a Slack incoming webhook takes.
    Slack,
}

impl NotificationFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationFormat::Json => "json",
            NotificationFormat::Slack => "slack",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: String,
    pub origin: Origin,
    pub display_name: String,
    pub price_cents: i64,
    pub currency: String,
    pub cycle: BillingCycle,
    pub trial_days: u32,
    pub resources: Resources,
    pub quotas: Quotas,
    pub rate_limit_rpm: Option<u32>,
    pub features: Vec<String>,
    /// Tasks per tenant in swarm mode; docker mode runs one container.
    pub replicas: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// CPU limit in billionths of a CPU, as the Engine API takes it.
    pub nano_cpus: i64,
    pub memory_bytes: u64,
    pub pids: u32,
    pub storage_bytes: Option<u64>,
    /// Swarm reservations per task (the scheduler places a task only where these fit).
    pub reserved_nano_cpus: Option<i64>,
    pub reserved_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quotas {
    pub api_calls_per_month: Option<u64>,
    pub ai_interactions_per_month: Option<u64>,
    pub users: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub origin: Origin,
    pub display_name: String,
    pub version: String,
    /// `None` runs tenantctl's built-in site.
    pub image: Option<String>,
    pub port: u16,
    pub health_path: String,
    pub health_interval_seconds: u32,
    pub config: BTreeMap<String, ConfigScalar>,
    pub capabilities: Vec<String>,
    pub publish_address: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub slug: String,
    pub origin: Origin,
    pub display_name: String,
    pub owner: String,
    pub plan: String,
    pub theme: String,
    pub state: TenantState,
    pub domain: Option<String>,
    pub env: BTreeMap<String, String>,
    /// `features.add` (or the list form): flags over the plan's, sorted.
    pub features: Vec<String>,
    /// `features.remove`: plan flags this tenant goes without, sorted.
    pub features_removed: Vec<String>,
    /// `billing.converted`: a paying customer, no longer limited by the plan's trial.
    pub converted: bool,
    /// Swarm placement constraints, normalised to `LEFT == RIGHT` / `LEFT != RIGHT`.
    pub constraints: Vec<String>,
}

/// Most tasks one tenant may ask for; each needs an address in the tenant's /28 network.
pub const MAX_REPLICAS: u32 = 5;

/// Checks a swarm placement constraint: `node.…` or `engine.labels.…`, `==` or `!=`, a value.
/// Returns the constraint written the canonical way, or what is wrong with it.
pub fn placement_constraint(text: &str) -> Result<String, String> {
    let (op, (left, right)) = if let Some(parts) = text.split_once("==") {
        ("==", parts)
    } else if let Some(parts) = text.split_once("!=") {
        ("!=", parts)
    } else {
        return Err(format!("constraint `{text}` has no `==` or `!=`"));
    };
    let (left, right) = (left.trim(), right.trim());
    const FIELDS: [&str; 5] = [
        "node.id",
        "node.hostname",
        "node.role",
        "node.platform.os",
        "node.platform.arch",
    ];
    let known = FIELDS.contains(&left)
        || ["node.labels.", "engine.labels."]
            .iter()
            .any(|p| left.strip_prefix(p).is_some_and(|k| !k.is_empty()));
    if !known {
        return Err(format!(
            "constraint `{text}`: `{left}` is not a node attribute swarm knows"
        ));
    }
    if right.is_empty() || right.contains(['=', '!']) || right.chars().any(char::is_whitespace) {
        return Err(format!(
            "constraint `{text}`: `{right}` is not a single value"
        ));
    }
    Ok(format!("{left} {op} {right}"))
}

/// Checks a DNS-label slug: `[a-z0-9-]`, 1 to 63 characters, no leading or trailing `-`.
pub fn slug_problem(slug: &str) -> Option<String> {
    if slug.is_empty() {
        return Some("name is empty".into());
    }
    if slug.len() > 63 {
        let head: String = slug.chars().take(20).collect();
        return Some(format!(
            "`{head}…` is {} characters long; at most 63 are allowed",
            slug.chars().count()
        ));
    }
    if let Some(c) = slug
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "`{slug}` contains `{c}`; only lowercase letters, digits and `-` are allowed"
        ));
    }
    if slug.starts_with('-') || slug.ends_with('-') {
        return Some(format!("`{slug}` starts or ends with `-`"));
    }
    None
}
