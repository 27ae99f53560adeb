//! The networks and volumes this namespace manages, read with label filters; each backend adds
//! its workloads (containers or services) read with the same filters.

use std::collections::HashMap;
use std::future::Future;

use bollard::Docker;
use bollard::query_parameters::{ListNetworksOptionsBuilder, ListVolumesOptionsBuilder};

use super::Engine;
use crate::runtime::RuntimeError;
use crate::runtime::types::{
    LABEL_TENANT, ObservedContainer, ObservedNetwork, ObservedRuntime, ObservedVolume, RuntimeKind,
    is_managed_by, label_filters,
};

/// The engine-side list filter for this namespace, or for one tenant of it.
pub(crate) fn tenant_filters(
    namespace: &str,
    tenant: Option<&str>,
) -> HashMap<String, Vec<String>> {
    let mut filters = label_filters(namespace);
    if let Some(slug) = tenant {
        // The engine ANDs label filters: only this tenant's objects.
        filters
            .entry("label".to_string())
            .or_default()
            .push(format!("{LABEL_TENANT}={slug}"));
    }
    filters
}

impl Engine {
    /// Everything this namespace (or one tenant) has: the workloads `workloads` reads with the
    /// filters it is given, and the networks and volumes, at once. Each list sorted by name.
    pub(crate) async fn observe<W, F>(
        &self,
        kind: RuntimeKind,
        tenant: Option<&str>,
        workloads: W,
    ) -> Result<ObservedRuntime, RuntimeError>
    where
        W: FnOnce(HashMap<String, Vec<String>>) -> F,
        F: Future<Output = Result<Vec<ObservedContainer>, RuntimeError>>,
    {
        let filters = tenant_filters(self.namespace(), tenant);
        let (containers, networks, volumes) = tokio::try_join!(
            workloads(filters.clone()),
            observe_networks(self.docker(), self.namespace(), &filters),
            observe_volumes(self.docker(), self.namespace(), &filters),
        )?;
        Ok(ObservedRuntime {
            kind,
            containers,
            networks,
            volumes,
            edge: None,
            probe_host_fault: None,
        })
    }
}

async fn observe_networks(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedNetwork>, RuntimeError> {
    let options = ListNetworksOptionsBuilder::default()
        .filters(filters)
        .build();
    let networks = docker
        .list_networks(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list networks", e))?;
    let mut out: Vec<ObservedNetwork> = networks
        .into_iter()
        .filter(|n| {
            n.labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, namespace))
        })
        .map(|n| ObservedNetwork {
            tenant: n.labels.as_ref().and_then(|l| l.get(LABEL_TENANT).cloned()),
            subnet: n
                .ipam
                .and_then(|ipam| ipam.config)
                .and_then(|configs| configs.into_iter().find_map(|c| c.subnet)),
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

async fn observe_volumes(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<ObservedVolume>, RuntimeError> {
    let mut out: Vec<ObservedVolume> = managed_volumes(docker, namespace, filters)
        .await?
        .into_iter()
        .map(|v| ObservedVolume {
            tenant: v.labels.get(LABEL_TENANT).cloned(),
            name: v.name,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The engine's volumes that `filters` select and this namespace manages, as the engine
/// describes them (driver and mount point included).
pub(crate) async fn managed_volumes(
    docker: &Docker,
    namespace: &str,
    filters: &HashMap<String, Vec<String>>,
) -> Result<Vec<bollard::models::Volume>, RuntimeError> {
    let options = ListVolumesOptionsBuilder::default()
        .filters(filters)
        .build();
    let response = docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| RuntimeError::api("list volumes", e))?;
    Ok(response
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter(|v| is_managed_by(&v.labels, namespace))
        .collect())
}
