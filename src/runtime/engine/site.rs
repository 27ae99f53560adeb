//! A tenant site's usage counters over this host's loopback, on the port its workload publishes.

use std::net::SocketAddr;

use crate::runtime::types::{ObservedContainer, SiteQuery};
use crate::usage::site::{SiteCounters, fetch_counters, loopback_addr};

/// The counters of the site behind `workload`'s published port, checked to be `query.tenant`'s.
pub(crate) async fn loopback_counters(
    workload: &ObservedContainer,
    query: &SiteQuery,
) -> Result<SiteCounters, String> {
    let addr = site_addr(workload, query.theme_port)?;
    let counters = fetch_counters(addr, query.key_digest.as_deref(), query.timeout).await?;
    // A port taken over by another tenant's site must not hand its counters over.
    match &counters.tenant {
        Some(t) if *t != query.tenant => Err(format!("{addr} answers for tenant `{t}`")),
        _ => Ok(counters),
    }
}

/// The loopback address of the tenant's site: the published port of its theme's port.
fn site_addr(workload: &ObservedContainer, theme_port: Option<u16>) -> Result<SocketAddr, String> {
    let port = workload
        .published_ports
        .iter()
        .find(|p| Some(p.container_port) == theme_port)
        .or_else(|| workload.published_ports.first())
        .ok_or("no published port")?;
    loopback_addr(port).ok_or_else(|| {
        format!(
            "port {} is published on {} only, not on loopback",
            port.host_port, port.host_ip
        )
    })
}
