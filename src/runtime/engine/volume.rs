//! Tenant data volumes: created, never removed by apply; only an explicit purge deletes one.

use std::collections::BTreeMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::RemoveVolumeOptionsBuilder;

use super::{Engine, owned_labels};
use crate::runtime::{RuntimeError, is_not_found};

impl Engine {
    pub(crate) async fn inspect_volume_named(
        &self,
        name: &str,
    ) -> Result<Option<bollard::models::Volume>, RuntimeError> {
        match self.docker().inspect_volume(name).await {
            Ok(volume) => Ok(Some(volume)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(RuntimeError::api(format!("inspect volume {name}"), error)),
        }
    }

    /// Create our volume `name` with `labels` (managed labels always set); true when created,
    /// false when ours already existed. A foreign volume of that name is refused.
    pub async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        if let Some(existing) = self.inspect_volume_named(name).await? {
            self.check_ours("volume", name, Some(&existing.labels))?;
            return Ok(false);
        }
        let request = VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: Some("local".to_string()),
            labels: Some(owned_labels(labels, self.namespace())),
            ..Default::default()
        };
        let volume = self
            .docker()
            .create_volume(request)
            .await
            .map_err(|e| RuntimeError::api(format!("create volume {name}"), e))?;
        // The engine returns an existing volume of that name unchanged: someone raced us.
        self.check_ours("volume", name, Some(&volume.labels))?;
        Ok(true)
    }

    /// DELETES A TENANT'S DATA: remove our volume `name`. Only for an explicit purge; nothing
    /// in apply or prune calls it. True when removed, false when absent; fails while in use.
    pub async fn purge_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        let Some(volume) = self.inspect_volume_named(name).await? else {
            return Ok(false);
        };
        self.check_ours("volume", name, Some(&volume.labels))?;
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        match self.docker().remove_volume(name, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(RuntimeError::api(format!("purge volume {name}"), error)),
        }
    }
}
