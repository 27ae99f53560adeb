//! The edge's container on this engine: `tenantctl edge` from the built-in site image, on the
//! host's network (it listens on the Edge spec's addresses and forwards to tenants' loopback
//! published ports), its data volume at /data, and its admin token read back through the
//! engine's archive API.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
};
use futures_util::TryStreamExt;

use super::DockerBackend;
use crate::runtime::RuntimeError;
use crate::runtime::engine::{log_limits, owned_labels};
use crate::runtime::types::{EDGE_DATA, EDGE_TOKEN_PATH, EdgeSpec};

/// The edge's command in the site image.
const EDGE_CMD: &str = "edge";
/// Largest token file read back.
const MAX_TOKEN_BYTES: u64 = 4096;

/// The create request of the edge: host network, read-only root, unprivileged, no capabilities.
pub fn edge_body(
    spec: &EdgeSpec,
    labels: &BTreeMap<String, String>,
    namespace: &str,
) -> ContainerCreateBody {
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: Some(vec![EDGE_CMD.to_string()]),
        user: Some(spec.user.clone()),
        env: Some(env),
        labels: Some(owned_labels(labels, namespace)),
        healthcheck: Some(bollard::models::HealthConfig {
            test: Some(spec.health_cmd.clone()),
            interval: Some(nanos(Duration::from_secs(5))),
            timeout: Some(nanos(Duration::from_secs(3))),
            retries: Some(3),
            start_period: Some(nanos(Duration::from_secs(10))),
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            network_mode: Some("host".to_string()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            readonly_rootfs: Some(spec.read_only_rootfs),
            cap_drop: Some(vec!["ALL".to_string()]),
            mounts: Some(vec![Mount {
                target: Some(EDGE_DATA.to_string()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(log_limits()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl DockerBackend {
    /// Makes the edge of `spec` run: its volume, then (after removing `old`, a container of an
    /// older spec) a new container, started and answering `/healthz` on its admin address.
    pub async fn edge_up(
        &self,
        spec: &EdgeSpec,
        labels: &BTreeMap<String, String>,
        old: Option<&str>,
        timeout: Duration,
    ) -> Result<String, RuntimeError> {
        let volume_labels: BTreeMap<String, String> = labels
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    crate::runtime::types::LABEL_SPEC_HASH
                        | crate::runtime::types::LABEL_HASH_VERSION
                        | crate::runtime::types::LABEL_REVISION
                )
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.engine
            .create_volume(&spec.volume, &volume_labels)
            .await?;
        if let Some(old) = old {
            // The listeners are the host's: the old edge must let go of them first.
            self.remove_container(old, true).await?;
        }
        let body = edge_body(spec, labels, self.namespace());
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let id = self
            .docker()
            .create_container(Some(options), body)
            .await
            .map_err(|e| RuntimeError::api(format!("create container {}", spec.name), e))?
            .id;
        self.start_container(&id).await?;
        let admin: SocketAddr = spec.admin.parse().map_err(|_| RuntimeError::NotAnswering {
            reason: format!("admin address {} is not an address", spec.admin),
        })?;
        let deadline = Instant::now() + timeout;
        loop {
            match crate::runtime::edge_admin::healthz(admin).await {
                Ok(()) => break,
                Err(why) if Instant::now() > deadline => {
                    let logs = self.container_logs_tail(&id, 5).await.unwrap_or_default();
                    return Err(RuntimeError::NotAnswering {
                        reason: format!(
                            "the edge did not answer on {admin} within {}s: {why}{}",
                            timeout.as_secs(),
                            if logs.is_empty() {
                                String::new()
                            } else {
                                format!(" | {}", logs.join(" | "))
                            }
                        ),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        Ok(id)
    }

    /// The edge's admin token, read from its container through the engine (`/data/admin-token`).
    pub async fn edge_token(&self, id: &str) -> Result<String, RuntimeError> {
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(EDGE_TOKEN_PATH)
            .build();
        let bytes: Vec<u8> = self
            .docker()
            .download_from_container(id, Some(options))
            .map_ok(|chunk| chunk.to_vec())
            .try_concat()
            .await
            .map_err(|e| RuntimeError::api("read the edge's admin token", e))?;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let entries = archive.entries().map_err(|e| RuntimeError::NotAnswering {
            reason: format!("the edge's token archive: {e}"),
        })?;
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let mut token = String::new();
            entry
                .take(MAX_TOKEN_BYTES)
                .read_to_string(&mut token)
                .map_err(|e| RuntimeError::NotAnswering {
                    reason: format!("the edge's token: {e}"),
                })?;
            let token = token.trim().to_string();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        Err(RuntimeError::NotAnswering {
            reason: format!("the edge has no token at {EDGE_TOKEN_PATH} yet"),
        })
    }
}
