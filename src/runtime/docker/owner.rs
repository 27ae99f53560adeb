//! Handing a tenant's data volume to the unprivileged site user before the built-in site runs
//! on it. A new volume needs nothing: the image's `/data` is owned by that user, and the engine
//! copies a mount point's ownership into an empty named volume at its first mount. A volume
//! that an older tenantctl's site (running as root) wrote into is handed over once by a
//! short-lived container of the site image running as root with only CAP_CHOWN, CAP_FOWNER
//! and CAP_DAC_READ_SEARCH, no network, and a read-only root (`tenantctl site-data-owner`).

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::DockerBackend;
use crate::runtime::RuntimeError;
use crate::runtime::engine::{DATA_MOUNT_PATH, owned_labels};
use crate::runtime::types::{ContainerSpec, managed_labels};

/// The helper's name: `<container>_owner` (slugs have no `_`, so no tenant can have it).
pub fn helper_name(spec: &ContainerSpec) -> String {
    format!("{}_owner", spec.name)
}

/// The helper must be done in this time.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// The create request of the helper that hands `spec.volume` to `user`.
pub fn helper_body(
    spec: &ContainerSpec,
    user: &str,
    namespace: &str,
    tenant: &str,
) -> ContainerCreateBody {
    let labels: BTreeMap<String, String> = managed_labels(namespace, tenant);
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        user: Some("0:0".to_string()),
        cmd: Some(vec![
            "site-data-owner".to_string(),
            DATA_MOUNT_PATH.to_string(),
            user.to_string(),
        ]),
        labels: Some(owned_labels(&labels, namespace)),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            network_mode: Some("none".to_string()),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(vec![
                "CHOWN".to_string(),
                "FOWNER".to_string(),
                "DAC_READ_SEARCH".to_string(),
            ]),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            readonly_rootfs: Some(true),
            memory: Some(64 << 20),
            pids_limit: Some(16),
            mounts: Some(vec![Mount {
                target: Some(DATA_MOUNT_PATH.to_string()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl DockerBackend {
    /// Before the built-in site (a spec with a user) runs on `spec.volume`: hand the volume to
    /// its user unless that is known to be done. Known when this backend created the volume
    /// (a new volume takes the image's ownership) or when the container being replaced already
    /// ran as that user. Returns the progress note when it handed something over.
    pub(crate) async fn hand_volume_over(
        &self,
        spec: &ContainerSpec,
        tenant: &str,
        replacing: Option<&str>,
    ) -> Result<Option<String>, RuntimeError> {
        let Some(user) = spec.user.as_deref() else {
            return Ok(None);
        };
        if let Some(old) = replacing {
            if let Some(response) = self.inspect_container_opt(old).await?
                && response.config.and_then(|c| c.user).as_deref() == Some(user)
            {
                return Ok(None);
            }
        } else if self.created_volume(&spec.volume) {
            return Ok(None);
        }
        let name = helper_name(spec);
        // A helper left by a crash is this tenant's own: removed, then made again.
        self.remove_tenants_container(&name, tenant).await?;
        let body = helper_body(spec, user, self.namespace(), tenant);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let id = self
            .docker()
            .create_container(Some(options), body)
            .await
            .map_err(|e| RuntimeError::api(format!("create container {name}"), e))?
            .id;
        let outcome = self.run_helper(&id, &name).await.map_err(|e| match e {
            RuntimeError::VolumeOwner { .. } => e,
            other => RuntimeError::VolumeOwner {
                volume: spec.volume.clone(),
                reason: other.to_string(),
            },
        });
        // Gone whatever happened; a failure to remove it is found and removed next time.
        let _ = self.remove_container(&id, true).await;
        let line = outcome?;
        Ok(Some(line))
    }

    async fn run_helper(&self, id: &str, name: &str) -> Result<String, RuntimeError> {
        self.docker()
            .start_container(id, None)
            .await
            .map_err(|e| RuntimeError::api(format!("start container {name}"), e))?;
        let wait = async {
            let options = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut stream = self.docker().wait_container(id, Some(options));
            match stream.next().await {
                Some(Ok(response)) => Ok(response.status_code),
                // A non-zero exit arrives as an error carrying the code.
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                    Ok(code)
                }
                Some(Err(e)) => Err(RuntimeError::api(format!("wait for container {name}"), e)),
                None => Ok(-1),
            }
        };
        let code = tokio::time::timeout(HELPER_TIMEOUT, wait)
            .await
            .map_err(|_| RuntimeError::NotAnswering {
                reason: format!("{name} did not finish within {}s", HELPER_TIMEOUT.as_secs()),
            })??;
        let output = self.helper_output(id).await;
        if code == 0 {
            Ok(output)
        } else {
            Err(RuntimeError::NotAnswering {
                reason: format!("{name} exited with {code}: {output}"),
            })
        }
    }

    async fn helper_output(&self, id: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("5")
            .build();
        let mut stream = self.docker().logs(id, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
        text.trim().replace('\n', " | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_is_root_with_only_what_chown_needs() {
        let spec = ContainerSpec {
            name: "ns-acme".into(),
            image: "tenantctl-site:9.9.9".into(),
            env: Default::default(),
            nano_cpus: 1,
            memory_bytes: 1,
            pids: 1,
            port: 8080,
            publish_address: "127.0.0.1".into(),
            health_cmd: vec![],
            health_interval_seconds: 1,
            cap_add: vec!["NET_ADMIN".into()],
            network: "ns-acme".into(),
            volume: "ns-acme-data".into(),
            user: Some("10001:10001".into()),
            read_only_rootfs: true,
        };
        assert_eq!(helper_name(&spec), "ns-acme_owner");
        let json = serde_json::to_value(helper_body(&spec, "10001:10001", "ns", "acme")).unwrap();
        assert_eq!(json["User"], "0:0");
        assert_eq!(
            json["Cmd"],
            serde_json::json!(["site-data-owner", "/data", "10001:10001"])
        );
        assert_eq!(json["Image"], "tenantctl-site:9.9.9");
        assert_eq!(json["Labels"]["tenantctl.tenant"], "acme");
        assert_eq!(json["Labels"]["tenantctl.namespace"], "ns");
        let host = &json["HostConfig"];
        assert_eq!(host["NetworkMode"], "none");
        assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
        // Never the theme's capabilities: only what changing owners needs.
        assert_eq!(
            host["CapAdd"],
            serde_json::json!(["CHOWN", "FOWNER", "DAC_READ_SEARCH"])
        );
        assert_eq!(host["ReadonlyRootfs"], true);
        assert_eq!(
            host["SecurityOpt"],
            serde_json::json!(["no-new-privileges:true"])
        );
        assert_eq!(host["Mounts"][0]["Source"], "ns-acme-data");
        assert_eq!(host["Mounts"][0]["Target"], "/data");
    }
}
