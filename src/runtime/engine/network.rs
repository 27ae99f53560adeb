//! Tenant networks: one per tenant with a subnet of its own, settled on one copy (the oldest in
//! use, else the oldest) when a race, an interrupted run or an engine before API 1.44 made two.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{Ipam, IpamConfig, Network, NetworkCreateRequest};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use ipnet::Ipv4Net;

use super::{Engine, owned_labels};
use crate::runtime::types::{EnsuredNetwork, is_managed_by};
use crate::runtime::{RuntimeError, is_not_found, status_code};

/// The copy of a network name settled on (none when the name is gone), and the ids of other
/// copies left in place because containers are attached to them.
type Settled = (Option<Network>, Vec<String>);

/// True when the engine's error says the requested subnet overlaps an existing network.
fn is_overlap(error: &bollard::errors::Error) -> bool {
    engine_message(error).is_some_and(|m| m.to_ascii_lowercase().contains("overlap"))
}

/// The message of an engine error answer.
pub(crate) fn engine_message(error: &bollard::errors::Error) -> Option<&str> {
    match error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => Some(message),
        _ => None,
    }
}

/// A sortable form of the engine's RFC 3339 creation time: Go drops trailing zeros of the
/// fraction, so "…:51.1875Z" would sort after "…:51.18751238Z" as plain text.
fn created_key(created: &str) -> String {
    // The zone starts at the first 'Z', '+' or '-' after the 'T'.
    let time_start = created.find('T').map_or(0, |t| t + 1);
    let zone_start = created[time_start..]
        .find(['Z', '+', '-'])
        .map_or(created.len(), |z| time_start + z);
    let (main, zone) = created.split_at(zone_start);
    let (seconds, fraction) = main.split_once('.').unwrap_or((main, ""));
    format!("{seconds}.{fraction:0<9}{zone}")
}

impl Engine {
    /// Every IPv4 subnet of every network on the engine, ours or not, so a new one overlaps none.
    pub async fn existing_subnets(&self) -> Result<BTreeSet<Ipv4Net>, RuntimeError> {
        let networks = self
            .docker()
            .list_networks(None)
            .await
            .map_err(|e| RuntimeError::api("list networks", e))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| n.ipam.and_then(|ipam| ipam.config))
            .flatten()
            .filter_map(|config| config.subnet?.parse::<Ipv4Net>().ok())
            .map(|net| net.trunc())
            .collect())
    }

    /// Every network called exactly `name` (listed, not inspected: duplicates make the
    /// engine's inspect-by-name fail), oldest first.
    async fn networks_named(&self, name: &str) -> Result<Vec<Network>, RuntimeError> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut networks: Vec<Network> = self
            .docker()
            .list_networks(Some(options))
            .await
            .map_err(|e| RuntimeError::api(format!("list networks named {name}"), e))?
            .into_iter()
            // The engine's name filter matches substrings.
            .filter(|n| n.name.as_deref() == Some(name))
            .collect();
        networks.sort_by_cached_key(|n| {
            (
                n.created.as_deref().map(created_key).unwrap_or_default(),
                n.id.clone().unwrap_or_default(),
            )
        });
        Ok(networks)
    }

    /// The one network called `name`. Duplicates (a concurrent create, or a create an
    /// interrupted run had sent landing after the next run looked) are settled: the oldest copy
    /// a container is attached to is kept, else the oldest; the other copies of ours without
    /// containers are removed, so every caller converges on the same network and a tenant is
    /// never cut from the one it runs on. Also returns the ids of other copies left because
    /// containers are attached to them (settling did not finish: the caller says so).
    async fn settle_network(&self, name: &str) -> Result<Settled, RuntimeError> {
        let networks = self.networks_named(name).await?;
        if networks.len() < 2 {
            return Ok((networks.into_iter().next(), Vec::new()));
        }
        // The list answer leaves attached containers out: inspect each copy (rare: duplicates).
        let mut copies = Vec::with_capacity(networks.len());
        for network in networks {
            let Some(id) = network.id.clone() else {
                continue;
            };
            match self.docker().inspect_network(&id, None).await {
                Ok(inspected) => {
                    let in_use = inspected.containers.is_some_and(|c| !c.is_empty());
                    copies.push((network, in_use));
                }
                // Removed meanwhile by another caller settling the same name.
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    return Err(RuntimeError::api(format!("inspect network {name}"), error));
                }
            }
        }
        let keep = copies.iter().position(|(_, in_use)| *in_use).unwrap_or(0);
        let mut kept = None;
        let mut left = Vec::new();
        for (index, (network, in_use)) in copies.into_iter().enumerate() {
            if index == keep {
                kept = Some(network);
                continue;
            }
            let ours = network
                .labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, self.namespace()));
            let Some(id) = network.id.as_deref().filter(|_| ours) else {
                continue;
            };
            if in_use {
                tracing::warn!(
                    network = name,
                    id,
                    "a duplicate network has containers attached: left in place"
                );
                left.push(id.to_string());
                continue;
            }
            match self.docker().remove_network(id).await {
                Ok(()) => tracing::info!(network = name, id, "removed a duplicate network"),
                Err(error) if is_not_found(&error) => {}
                Err(error) => {
                    tracing::warn!(network = name, id, %error, "could not remove a duplicate network")
                }
            }
        }
        Ok((kept, left))
    }

    fn ensured(
        &self,
        name: &str,
        network: Network,
        created: bool,
        left_in_use: Vec<String>,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        self.check_ours("network", name, network.labels.as_ref())?;
        let subnet = network
            .ipam
            .and_then(|ipam| ipam.config)
            .unwrap_or_default()
            .into_iter()
            .find_map(|c| c.subnet?.parse::<Ipv4Net>().ok());
        Ok(EnsuredNetwork {
            id: network.id.unwrap_or_default(),
            subnet,
            created,
            left_in_use,
        })
    }

    /// Create the bridge network `name` with exactly `subnet`, attachable, with `labels` (the
    /// managed labels of this namespace are always set). If ours already exists it is returned
    /// as it is; a foreign one of that name is [`RuntimeError::NotManaged`]; a subnet the
    /// engine finds overlapping is [`RuntimeError::SubnetOverlap`] (pick another and retry).
    pub async fn create_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
        driver: &str,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        // No listing first: the engine lists every network of the host for a name, and the
        // settling below already finds one that was there (ours or not).
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(driver.to_string()),
            attachable: Some(true),
            labels: Some(owned_labels(labels, self.namespace())),
            ipam: Some(Ipam {
                driver: Some("default".to_string()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.trunc().to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created_id = match self.docker().create_network(request).await {
            Ok(response) => Some(response.id),
            Err(error) if is_overlap(&error) => {
                // It may overlap because the network itself is there already.
                if let (Some(existing), left) = self.settle_network(name).await? {
                    return self.ensured(name, existing, false, left);
                }
                return Err(RuntimeError::SubnetOverlap {
                    network: name.to_string(),
                    subnet: subnet.to_string(),
                    message: engine_message(&error).unwrap_or_default().to_string(),
                });
            }
            // API 1.44+ refuses duplicate names itself: somebody made it since we looked.
            Err(error) if status_code(&error) == Some(409) => None,
            Err(error) => return Err(RuntimeError::api(format!("create network {name}"), error)),
        };
        // Before API 1.44 a second network of the same name is created with only a warning
        // (bollard cannot send CheckDuplicate): settle on one, as every racer will.
        let (winner, left) = self.settle_network(name).await?;
        let winner = winner.ok_or_else(|| RuntimeError::NotFound {
            kind: "network",
            name: name.to_string(),
        })?;
        let created = created_id.is_some() && winner.id == created_id;
        self.ensured(name, winner, created, left)
    }

    /// Remove our network `name` (every copy, should there be duplicates); true when removed,
    /// false when absent. Fails while containers are attached (remove them first).
    /// `patience` is how long "active endpoints" is waited out (an overlay's endpoints are
    /// released a little after its service's tasks stop).
    pub async fn remove_network(
        &self,
        name: &str,
        patience: Duration,
    ) -> Result<bool, RuntimeError> {
        let networks = self.networks_named(name).await?;
        if networks.is_empty() {
            return Ok(false);
        }
        let (ours, foreign): (Vec<Network>, Vec<Network>) = networks.into_iter().partition(|n| {
            n.labels
                .as_ref()
                .is_some_and(|l| is_managed_by(l, self.namespace()))
        });
        if ours.is_empty() {
            return self
                .check_ours("network", name, foreign[0].labels.as_ref())
                .map(|()| false);
        }
        for network in ours {
            let id = network.id.unwrap_or_else(|| name.to_string());
            let started = Instant::now();
            loop {
                match self.docker().remove_network(&id).await {
                    Ok(()) => break,
                    Err(error) if is_not_found(&error) => break,
                    Err(error)
                        if started.elapsed() < patience
                            && engine_message(&error)
                                .is_some_and(|m| m.contains("active endpoints")) =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(error) => {
                        return Err(RuntimeError::api(format!("remove network {name}"), error));
                    }
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_errors_are_recognised() {
        let overlap = bollard::errors::Error::DockerResponseServerError {
            status_code: 403,
            message: "Pool overlaps with other one on this address space".into(),
        };
        assert!(is_overlap(&overlap));
        let other = bollard::errors::Error::DockerResponseServerError {
            status_code: 500,
            message: "something else".into(),
        };
        assert!(!is_overlap(&other));
    }

    #[test]
    fn creation_times_sort_by_instant_not_text() {
        let early = created_key("2026-11-26T23:20:51.1875Z");
        let late = created_key("2026-11-26T23:20:51.18751238Z");
        assert!(early < late, "{early} {late}");
        assert!(created_key("2026-11-26T23:20:51Z") < early);
        assert_eq!(
            created_key("2026-11-26T23:20:51.5+01:00"),
            "2026-11-26T23:20:51.500000000+01:00"
        );
    }
}
