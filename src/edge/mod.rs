//! The edge: `tenantctl edge`, the reverse proxy in front of a namespace's tenants, built on
//! Pingora (openssl backend). Routes by Host to each tenant's loopback published port; routes
//! arrive over the admin API ([`admin`]) and persist in the data directory ([`routes`]); TLS
//! certificates come by SNI from the pushed files, the edge's own CA or ACME ([`tls`], [`acme`]).
//!
//! Configured only by the environment ([`EdgeConfig::from_env`]).

mod accesslog;
mod acme;
mod admin;
pub mod metrics;
mod proxy;
mod ready;
pub mod routes;
pub mod tls;
pub mod token;

#[cfg(test)]
mod tests;

use accesslog::AccessLog;
use metrics::Metrics;
use routes::{Table, normalize_host};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, RwLock};
use tls::{AcmeStore, CertifiedKey, InternalCa};
use token::AdminToken;

pub const DEFAULT_ADMIN: &str = "127.0.0.1:9180";
pub const DEFAULT_DATA_DIR: &str = "/data";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    Internal,
    Files,
    Acme,
}

#[derive(Debug, Clone)]
pub struct AcmeConfig {
    pub directory: String,
    pub email: Option<String>,
    /// PEM text of a root to trust for the directory's own TLS (a test CA such as Pebble's).
    pub ca_pem: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub data: PathBuf,
    pub tls: TlsMode,
    pub acme: Option<AcmeConfig>,
    /// Proxy worker threads (`TENANTCTL_EDGE_THREADS`, default 2).
    pub threads: usize,
}

impl EdgeConfig {
    pub fn from_env() -> Result<EdgeConfig, String> {
        EdgeConfig::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var` (the environment, or a map in tests).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<EdgeConfig, String> {
        let addr = |name: &str, value: String| {
            value.parse::<SocketAddr>().map_err(|_| {
                format!(
                    "{name}={value:?} is not an address; expected IP:PORT such as 127.0.0.1:8080"
                )
            })
        };
        let http = match var("TENANTCTL_EDGE_HTTP") {
            Some(v) => addr("TENANTCTL_EDGE_HTTP", v)?,
            None => {
                return Err(
                    "TENANTCTL_EDGE_HTTP is not set: the address to listen on for HTTP, such as 0.0.0.0:80"
                        .into(),
                );
            }
        };
        let https = var("TENANTCTL_EDGE_HTTPS")
            .filter(|v| !v.is_empty())
            .map(|v| addr("TENANTCTL_EDGE_HTTPS", v))
            .transpose()?;
        let admin = addr(
            "TENANTCTL_EDGE_ADMIN",
            var("TENANTCTL_EDGE_ADMIN").unwrap_or_else(|| DEFAULT_ADMIN.into()),
        )?;
        let data =
            PathBuf::from(var("TENANTCTL_EDGE_DATA").unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
        let tls = match var("TENANTCTL_EDGE_TLS").as_deref().unwrap_or("none") {
            "none" | "" => TlsMode::None,
            "internal" => TlsMode::Internal,
            "files" => TlsMode::Files,
            "acme" => TlsMode::Acme,
            other => {
                return Err(format!(
                    "TENANTCTL_EDGE_TLS={other:?}: expected none, internal, files or acme"
                ));
            }
        };
        match (tls, https) {
            (TlsMode::None, Some(_)) => {
                return Err(
                    "TENANTCTL_EDGE_HTTPS is set but TENANTCTL_EDGE_TLS is none: say where certificates come from (internal, files or acme)"
                        .into(),
                );
            }
            (TlsMode::Internal | TlsMode::Files | TlsMode::Acme, None) => {
                return Err(
                    "TENANTCTL_EDGE_TLS is set but TENANTCTL_EDGE_HTTPS is not: the address to listen on for HTTPS"
                        .into(),
                );
            }
            _ => {}
        }
        let acme = if tls == TlsMode::Acme {
            let directory = var("TENANTCTL_EDGE_ACME_DIRECTORY")
                .filter(|v| !v.is_empty())
                .ok_or("TENANTCTL_EDGE_TLS=acme needs TENANTCTL_EDGE_ACME_DIRECTORY (the ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory)")?;
            if !directory.starts_with("https://") {
                return Err(format!(
                    "TENANTCTL_EDGE_ACME_DIRECTORY={directory:?}: an ACME directory is an https:// URL"
                ));
            }
            Some(AcmeConfig {
                directory,
                email: var("TENANTCTL_EDGE_ACME_EMAIL").filter(|v| !v.is_empty()),
                ca_pem: var("TENANTCTL_EDGE_ACME_CA").filter(|v| !v.is_empty()),
            })
        } else {
            None
        };
        let threads = match var("TENANTCTL_EDGE_THREADS") {
            None => 2,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("TENANTCTL_EDGE_THREADS={v:?}: expected 1 to 64"))?,
        };
        Ok(EdgeConfig {
            http,
            https,
            admin,
            data,
            tls,
            acme,
            threads,
        })
    }
}

/// What the proxy, the TLS callback, the admin API and the ACME task share.
pub struct Shared {
    pub config: EdgeConfig,
    table: RwLock<Arc<Table>>,
    /// Held while a new table is persisted and swapped in: PUTs apply one at a time.
    replacing: Mutex<()>,
    pub token: AdminToken,
    pub metrics: Metrics,
    access_log: AccessLog,
    pub internal_ca: Option<InternalCa>,
    pub acme_store: Option<AcmeStore>,
    /// HTTP-01 tokens and their key authorizations while an ACME order is pending.
    challenges: RwLock<HashMap<String, String>>,
    /// Woken when the routes change (the ACME task looks for new hosts).
    pub routes_changed: tokio::sync::Notify,
    /// Whether the proxy's listeners accept connections yet (`/healthz`).
    ready: ready::Readiness,
}

impl Shared {
    /// The proxy's listen addresses that do not accept connections yet (empty: all do).
    pub fn listeners_missing(&self) -> Vec<SocketAddr> {
        // Port 0 (the kernel picks one) cannot be looked up by address: not waited for.
        let wanted: Vec<SocketAddr> = std::iter::once(self.config.http)
            .chain(self.config.https)
            .filter(|a| a.port() != 0)
            .collect();
        self.ready.missing(&wanted)
    }

    /// The live table (a snapshot: a concurrent PUT does not change it under the caller).
    pub fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Persists `table`'s document, then makes it live.
    pub fn replace_table(&self, table: Table) -> Result<(), String> {
        let _one_at_a_time = self.replacing.lock().unwrap_or_else(|e| e.into_inner());
        routes::save(&self.config.data, &table.doc).map_err(|e| {
            format!(
                "cannot save the routes in {}: {e}",
                self.config.data.display()
            )
        })?;
        *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
        self.routes_changed.notify_one();
        Ok(())
    }

    /// The certificate for an SNI name, from where this edge's TLS mode takes them.
    pub fn certificate_for(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = normalize_host(name);
        match self.config.tls {
            TlsMode::None => None,
            TlsMode::Files => self.table().certificates.get(name.as_ref()).cloned(),
            TlsMode::Internal => {
                // Only for routed hosts: a stranger's SNI must not make the edge sign names.
                self.table().lookup(&name)?;
                let ca = self.internal_ca.as_ref()?;
                match ca.leaf(&name) {
                    Ok(leaf) => Some(leaf),
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                }
            }
            TlsMode::Acme => self.acme_store.as_ref()?.get(&name),
        }
    }

    pub fn acme_challenge(&self, token: &str) -> Option<String> {
        self.challenges
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned()
    }

    pub fn set_challenge(&self, token: &str, key_authorization: Option<String>) {
        let mut map = self.challenges.write().unwrap_or_else(|e| e.into_inner());
        match key_authorization {
            Some(k) => map.insert(token.to_string(), k),
            None => map.remove(token),
        };
    }
}

/// Prepares the data directory, the token, the routes and the CA: everything that can fail
/// before listening.
pub fn prepare(config: EdgeConfig) -> Result<Arc<Shared>, String> {
    std::fs::create_dir_all(&config.data)
        .map_err(|e| format!("cannot create {}: {e}", config.data.display()))?;
    let token = AdminToken::load_or_create(&config.data)?;
    let files = config.tls == TlsMode::Files;
    let table = match routes::load(&config.data)? {
        Some(doc) => {
            let table = Table::build(doc, files).map_err(|why| {
                format!("{}: {why}", config.data.join(routes::ROUTES_FILE).display())
            })?;
            tracing::info!(
                "routes generation {:?} loaded ({} hosts)",
                table.doc.generation,
                table.hosts().count()
            );
            table
        }
        None => Table::default(),
    };
    let internal_ca = match config.tls {
        TlsMode::Internal => Some(InternalCa::load_or_create(&config.data)?),
        _ => None,
    };
    let acme_store = match config.tls {
        TlsMode::Acme => Some(AcmeStore::load(config.data.join("acme").join("certs"))?),
        _ => None,
    };
    let access_log =
        AccessLog::start().map_err(|e| format!("cannot start the access log writer: {e}"))?;
    Ok(Arc::new(Shared {
        config,
        table: RwLock::new(Arc::new(table)),
        replacing: Mutex::new(()),
        token,
        metrics: Metrics::default(),
        access_log,
        internal_ca,
        acme_store,
        challenges: RwLock::default(),
        routes_changed: tokio::sync::Notify::new(),
        ready: ready::Readiness::default(),
    }))
}

/// The admin API (and the ACME task) as one of pingora's background services.
struct AdminService {
    shared: Arc<Shared>,
    listener: Mutex<Option<std::net::TcpListener>>,
}

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for AdminService {
    async fn start(&self, shutdown: pingora::server::ShutdownWatch) {
        let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("admin API: {e}");
                return;
            }
        };
        if self.shared.config.tls == TlsMode::Acme {
            tokio::spawn(acme::run(self.shared.clone(), shutdown.clone()));
        }
        admin::serve(self.shared.clone(), listener, shutdown).await;
    }
}

/// Fails early, with the variable's name, when an address cannot be listened on (pingora would
/// only log it from a worker thread).
fn check_bind(name: &str, addr: SocketAddr) -> Result<(), String> {
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|e| format!("cannot listen on {addr} ({name}): {e}"))
}

/// `tenantctl edge`: reads the environment, serves until SIGTERM (graceful) or SIGINT.
pub fn run() -> Result<ExitCode, String> {
    let config = EdgeConfig::from_env()?;
    check_bind("TENANTCTL_EDGE_HTTP", config.http)?;
    if let Some(https) = config.https {
        check_bind("TENANTCTL_EDGE_HTTPS", https)?;
    }
    let admin_listener = std::net::TcpListener::bind(config.admin).map_err(|e| {
        format!(
            "cannot listen on {} (TENANTCTL_EDGE_ADMIN): {e}",
            config.admin
        )
    })?;
    admin_listener
        .set_nonblocking(true)
        .map_err(|e| format!("admin listener: {e}"))?;
    let shared = prepare(config)?;
    let config = &shared.config;

    let mut conf = pingora::server::configuration::ServerConf {
        threads: config.threads,
        // Each worker thread runs its own runtime and keeps the connections it accepted (as
        // nginx's workers do): no cross-thread wake-ups on the request path.
        work_stealing: std::env::var("TENANTCTL_EDGE_WORK_STEALING").is_ok_and(|v| v == "1"),
        // docker stop waits 10 s: stop accepting at once, give requests in flight 5 s.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(5),
        ..Default::default()
    };
    conf.upstream_keepalive_pool_size = 256;
    let mut server = pingora::server::Server::new_with_opt_and_conf(None, conf);
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        proxy::EdgeProxy {
            shared: shared.clone(),
        },
        "edge proxy",
    );
    proxy.add_tcp(&config.http.to_string());
    if let Some(https) = config.https {
        let mut settings = pingora::listeners::tls::TlsSettings::with_callbacks(Box::new(
            tls::CertResolver(shared.clone()),
        ))
        .map_err(|e| format!("TLS settings: {e}"))?;
        settings.enable_h2();
        proxy.add_tls_with_settings(&https.to_string(), None, settings);
    }
    server.add_service(proxy);
    server.add_service(pingora::services::background::background_service(
        "edge admin",
        AdminService {
            shared: shared.clone(),
            listener: Mutex::new(Some(admin_listener)),
        },
    ));
    tracing::info!(
        "edge listening: http {}{}, admin {}, tls {:?}, data {}",
        config.http,
        config
            .https
            .map(|a| format!(", https {a}"))
            .unwrap_or_default(),
        config.admin,
        config.tls,
        config.data.display()
    );
    server.bootstrap();
    server.run(pingora::server::RunArgs::default());
    Ok(ExitCode::SUCCESS)
}

/// `tenantctl edge-health`: the edge container's health check (exec form, no shell): exit 0
/// when the admin API's `/healthz` answers 2xx.
pub fn run_health() -> ExitCode {
    let admin = std::env::var("TENANTCTL_EDGE_ADMIN").unwrap_or_else(|_| DEFAULT_ADMIN.into());
    let addr = match admin.parse::<SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => SocketAddr::new([127, 0, 0, 1].into(), a.port()),
        Ok(a) => a,
        Err(_) => {
            println!("unhealthy: TENANTCTL_EDGE_ADMIN={admin:?} is not an address");
            return ExitCode::from(1);
        }
    };
    crate::site::run_health(&format!("http://{addr}/healthz"))
}
