//! The edge in an apply: its container made, replaced, started or removed before the tenants;
//! its admin API reached with the token read from its container; each blue/green replace
//! switching it to the new container before the old one goes; and, once every tenant is done,
//! the routes of what runs pushed (and acknowledged).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::{Applier, ApplyError, action_word};
use crate::model::{EdgeTls, TenantState};
use crate::plan::edge::{desired_certificates, desired_edge, desired_routes, edge_labels};
use crate::plan::{Action, Change, Resource};
use crate::runtime::edge_admin::EdgeAdmin;
use crate::runtime::types::{
    EdgeCertificate, EdgeRoute, EdgeSwitch, EdgeTable, RuntimeKind, Target,
};
use crate::runtime::{Runtime, RuntimeError};

/// The edge as an apply talks to it: its admin API and the table it holds.
#[derive(Debug)]
pub struct EdgeLink {
    admin: EdgeAdmin,
    /// The table the edge acknowledged last.
    table: Mutex<EdgeTable>,
    certificates: Vec<EdgeCertificate>,
}

impl EdgeLink {
    /// Hands the edge the table `change` makes of the one it holds, keeping it once
    /// acknowledged; one push at a time, so two switches never undo each other.
    async fn push_with(&self, change: impl FnOnce(&EdgeTable) -> EdgeTable) -> Result<(), String> {
        let mut held = self.table.lock().await;
        let table = change(&held);
        if table.generation == held.generation {
            return Ok(());
        }
        self.admin.put_routes(&table).await?;
        *held = table;
        Ok(())
    }
}

/// Reaches the namespace's running edge: its admin token read from its container, its table
/// asked for. None without an edge in `runtime` (or one that is not running).
pub async fn connect(
    runtime: &Runtime,
    observed: &crate::runtime::types::ObservedEdge,
    admin: &str,
) -> Result<(EdgeAdmin, EdgeTable), String> {
    if !observed.container.state.is_running() {
        return Err(format!(
            "the edge's container is {}",
            observed.container.state
        ));
    }
    let addr: SocketAddr = admin
        .parse()
        .map_err(|_| format!("admin address {admin} is not an address"))?;
    let token = runtime
        .backend()
        .edge_token(&observed.container)
        .await
        .map_err(|e| e.to_string())?;
    let admin = EdgeAdmin::new(addr, token);
    let table = admin.routes().await?;
    Ok((admin, table))
}

impl Applier {
    /// The plan's `edge` changes, before any tenant's; then the link to the running edge (kept
    /// for the tenants' switches and the last push). An edge that does not come up fails the
    /// apply's edge, not the tenants: they converge and are reached directly.
    pub(super) async fn edge(&mut self, changes: &[Change]) -> Result<(), ApplyError> {
        let ns = self.config.namespace.clone();
        for c in changes.iter().filter(|c| c.resource == Resource::Edge) {
            let backend = self.runtime.backend();
            let result: Result<String, RuntimeError> = match (c.action, &self.desired.edge) {
                (Action::Destroy, _) => backend
                    .remove(Target {
                        name: &c.name,
                        id: c.container_id.as_deref(),
                        observed: None,
                    })
                    .await
                    .map(|_| "- destroyed (data volume kept)".to_string()),
                (_, Some(edge)) => {
                    let mut spec = desired_edge(&ns, edge);
                    let labels = self.stamped(edge_labels(&ns, &spec, &self.config.revision));
                    // The ACME directory's root, as text (the file is read here, not hashed).
                    if let EdgeTls::Acme {
                        ca_file: Some(path),
                        ..
                    } = &edge.tls
                    {
                        match std::fs::read_to_string(path) {
                            Ok(pem) => {
                                spec.env.insert("TENANTCTL_EDGE_ACME_CA".into(), pem);
                            }
                            Err(e) => {
                                let message =
                                    format!("{}: failed: tls.caFile {path}: {e}", c.address());
                                self.progress.line(None, &message);
                                self.edge_failed = Some(message);
                                continue;
                            }
                        }
                    }
                    let old = c.container_id.as_deref();
                    backend
                        .edge_up(&spec, &labels, old, self.config.health_timeout)
                        .await
                        .map(|_| {
                            format!(
                                "{} {}, answering on {}",
                                c.action.symbol(),
                                super::past(c.action),
                                edge.http
                            )
                        })
                }
                (_, None) => continue,
            };
            match result {
                Ok(line) => {
                    self.progress
                        .line(None, &format!("{}: {line}", c.address()));
                    self.event(
                        None,
                        &format!("edge.{}", action_word(c.action)),
                        &c.address(),
                    )
                    .await;
                    self.applied
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    let message = format!("{}: failed: {e}", c.address());
                    self.progress.line(None, &message);
                    self.event(None, "edge.failed", &message).await;
                    self.edge_failed = Some(e.to_string());
                }
            }
        }
        let Some(edge) = &self.desired.edge else {
            return Ok(());
        };
        let observed = self.runtime.observe().await?;
        if observed.kind != RuntimeKind::Docker {
            return Ok(());
        }
        let Some(found) = &observed.edge else {
            return Ok(());
        };
        let link = async {
            let (admin, table) = connect(&self.runtime, found, &edge.admin).await?;
            Ok::<_, String>(EdgeLink {
                admin,
                table: Mutex::new(table),
                certificates: desired_certificates(&edge.tls),
            })
        }
        .await;
        match link {
            Ok(link) => {
                let link = Arc::new(link);
                // Tenants that already run are routed before any of them changes.
                self.push_routes(&link).await;
                self.edge_link = Some(link);
                let planned = changes
                    .iter()
                    .filter(|c| c.resource == Resource::EdgeRoutes)
                    .count();
                self.applied
                    .fetch_add(planned, std::sync::atomic::Ordering::Relaxed);
            }
            Err(why) => {
                let message = format!(
                    "edge {}: cannot reach its admin API: {why}",
                    found.container.name
                );
                self.progress.line(None, &message);
                self.edge_failed = Some(message);
            }
        }
        Ok(())
    }

    /// Pushes the routes of what runs now (a fresh observation) unless the edge holds them.
    pub(super) async fn push_routes(&self, link: &EdgeLink) {
        let ns = &self.config.namespace;
        let runtime = match self.runtime.observe().await {
            Ok(r) => r,
            Err(e) => {
                self.progress.line(
                    None,
                    &format!(
                        "edge-routes.{}: cannot observe: {e}",
                        crate::runtime::types::edge_name(ns)
                    ),
                );
                return;
            }
        };
        let routes = desired_routes(&self.desired, &runtime, ns);
        let table = EdgeTable::new(routes, link.certificates.clone());
        if link.table.lock().await.generation == table.generation {
            return;
        }
        let address = format!("edge-routes.{}", crate::runtime::types::edge_name(ns));
        let running = table.routes.iter().filter(|r| r.upstream.is_some()).count();
        let count = table.routes.len();
        match link.push_with(|_| table).await {
            Ok(()) => {
                self.progress.line(
                    None,
                    &format!(
                        "{address}: ~ {count} tenants routed ({running} running), acknowledged"
                    ),
                );
                self.event(None, "edge-routes.update", &address).await;
            }
            Err(why) => {
                self.progress
                    .line(None, &format!("{address}: push failed: {why}"));
                self.event(None, "edge-routes.failed", &why).await;
            }
        }
    }

    /// What switches the edge to `slug`'s new container in a blue/green replace.
    pub(super) fn switch_for(&self, slug: &str) -> Option<EdgeSwitch> {
        let link = self.edge_link.clone()?;
        let edge = self.desired.edge.as_ref()?;
        let tenant = self.desired.tenants.get(slug)?;
        let hosts = edge.hosts_of(tenant);
        if hosts.is_empty() || tenant.state != TenantState::Active {
            return None;
        }
        let slug = slug.to_string();
        Some(EdgeSwitch(Arc::new(move |upstream: String| {
            let (link, slug, hosts) = (link.clone(), slug.clone(), hosts.clone());
            Box::pin(async move {
                link.push_with(|held| {
                    held.with_route(EdgeRoute {
                        tenant: slug,
                        hosts,
                        upstream: Some(upstream),
                        state: "active".into(),
                    })
                })
                .await
            })
        })))
    }

    /// The internal CA's certificate, when the edge has one.
    pub(super) async fn edge_ca(&self) -> Option<String> {
        let link = self.edge_link.as_ref()?;
        link.admin.ca_pem().await.ok().flatten()
    }
}
