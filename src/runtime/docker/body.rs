//! The create request of a tenant's container: limits, security defaults, health check,
//! loopback port, data volume and network.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};

use crate::runtime::engine::{
    BodyOptions, DATA_MOUNT_PATH, SITE_CMD, health_config, log_limits, owned_labels,
};
use crate::runtime::types::ContainerSpec;

/// The create request for `spec`: limits, security defaults, health check, port, volume, network.
pub fn container_body(
    spec: &ContainerSpec,
    labels: &BTreeMap<String, String>,
    extra_env: &BTreeMap<String, String>,
    options: &BodyOptions,
) -> ContainerCreateBody {
    let mut env = spec.env.clone();
    env.extend(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let port_key = format!("{}/tcp", spec.port);
    // HostPort "" lets the engine pick a free port; the address keeps it on loopback by default.
    let port_bindings = HashMap::from([(
        port_key.clone(),
        Some(vec![PortBinding {
            host_ip: Some(spec.publish_address.clone()),
            host_port: Some(String::new()),
        }]),
    )]);
    let memory = i64::try_from(spec.memory_bytes).unwrap_or(i64::MAX);
    let cmd = (spec.image == options.site_image).then(|| vec![SITE_CMD.to_string()]);

    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd,
        // None keeps the image's own user (a theme's image).
        user: spec.user.clone(),
        env: Some(env),
        labels: Some(owned_labels(labels, &options.namespace)),
        exposed_ports: Some(vec![port_key]),
        healthcheck: health_config(spec, options.start_interval),
        host_config: Some(HostConfig {
            nano_cpus: Some(spec.nano_cpus),
            memory: Some(memory),
            // Equal to Memory: swap adds nothing beyond the plan's limit.
            memory_swap: Some(memory),
            pids_limit: Some(i64::from(spec.pids)),
            port_bindings: Some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            security_opt: Some(vec!["no-new-privileges:true".to_string()]),
            readonly_rootfs: Some(spec.read_only_rootfs),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(spec.cap_add.clone()),
            mounts: Some(vec![Mount {
                target: Some(DATA_MOUNT_PATH.to_string()),
                source: Some(spec.volume.clone()),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            }]),
            network_mode: Some(spec.network.clone()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(log_limits()),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::{LABEL_MANAGED, LABEL_NAMESPACE};

    fn spec(image: &str) -> ContainerSpec {
        ContainerSpec {
            name: "ns-acme".into(),
            image: image.into(),
            env: BTreeMap::from([
                ("PORT".to_string(), "8080".to_string()),
                ("TENANT_SLUG".to_string(), "acme".to_string()),
            ]),
            nano_cpus: 500_000_000,
            memory_bytes: 256 << 20,
            pids: 128,
            port: 8080,
            publish_address: "127.0.0.1".into(),
            health_cmd: vec![
                "CMD".into(),
                "/tenantctl".into(),
                "site-health".into(),
                "http://127.0.0.1:8080/health".into(),
            ],
            health_interval_seconds: 10,
            cap_add: vec!["NET_BIND_SERVICE".into()],
            network: "ns-acme".into(),
            volume: "ns-acme-data".into(),
            user: None,
            read_only_rootfs: false,
        }
    }

    fn options(start_interval: bool) -> BodyOptions {
        BodyOptions {
            namespace: "ns".into(),
            site_image: "tenantctl-site:9.9.9".into(),
            start_interval,
        }
    }

    fn body_json(spec: &ContainerSpec, start_interval: bool) -> serde_json::Value {
        let labels = BTreeMap::from([
            ("tenantctl.tenant".to_string(), "acme".to_string()),
            // A wrong namespace from the caller is overridden, never trusted.
            (LABEL_NAMESPACE.to_string(), "other".to_string()),
        ]);
        let extra = BTreeMap::from([
            ("TENANT_API_KEY_SHA256".to_string(), "abc".to_string()),
            ("PORT".to_string(), "9090".to_string()),
        ]);
        let body = container_body(spec, &labels, &extra, &options(start_interval));
        serde_json::to_value(body).unwrap()
    }

    #[test]
    fn body_carries_the_security_defaults() {
        let json = body_json(&spec("registry.example/shop:4"), false);
        let host = &json["HostConfig"];
        assert_eq!(
            host["SecurityOpt"],
            serde_json::json!(["no-new-privileges:true"])
        );
        assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
        assert_eq!(host["CapAdd"], serde_json::json!(["NET_BIND_SERVICE"]));
        assert_eq!(host["RestartPolicy"]["Name"], "unless-stopped");
        assert_eq!(host["LogConfig"]["Type"], "json-file");
        assert_eq!(host["LogConfig"]["Config"]["max-size"], "10m");
        assert_eq!(host["LogConfig"]["Config"]["max-file"], "3");
    }

    #[test]
    fn the_builtin_site_runs_unprivileged_on_a_read_only_root() {
        let mut site = spec("tenantctl-site:9.9.9");
        site.user = Some("10001:10001".into());
        site.read_only_rootfs = true;
        let json = body_json(&site, false);
        assert_eq!(json["User"], "10001:10001");
        assert_eq!(json["HostConfig"]["ReadonlyRootfs"], true);
        assert_eq!(
            json["HostConfig"]["SecurityOpt"],
            serde_json::json!(["no-new-privileges:true"])
        );
        // A theme's image keeps its own user and a writable root.
        let theme = body_json(&spec("registry.example/shop:4"), false);
        assert!(theme.get("User").is_none(), "{theme}");
        assert_eq!(theme["HostConfig"]["ReadonlyRootfs"], false);
    }

    #[test]
    fn body_carries_limits_with_swap_equal_to_memory() {
        let json = body_json(&spec("x:1"), false);
        let host = &json["HostConfig"];
        assert_eq!(host["NanoCpus"], 500_000_000);
        assert_eq!(host["Memory"], 256 << 20);
        assert_eq!(host["MemorySwap"], 256 << 20);
        assert_eq!(host["PidsLimit"], 128);
    }

    #[test]
    fn body_publishes_on_loopback_with_an_engine_chosen_port() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(json["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
        assert_eq!(
            json["HostConfig"]["PortBindings"],
            serde_json::json!({"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]})
        );
    }

    #[test]
    fn body_mounts_the_volume_and_joins_the_network() {
        let json = body_json(&spec("x:1"), false);
        let host = &json["HostConfig"];
        assert_eq!(
            host["Mounts"],
            serde_json::json!([{
                "Target": "/data", "Source": "ns-acme-data", "Type": "volume", "ReadOnly": false
            }])
        );
        assert_eq!(host["NetworkMode"], "ns-acme");
    }

    #[test]
    fn body_health_check_is_in_nanoseconds() {
        let json = body_json(&spec("x:1"), false);
        let health = &json["Healthcheck"];
        assert_eq!(
            health["Test"],
            serde_json::json!([
                "CMD",
                "/tenantctl",
                "site-health",
                "http://127.0.0.1:8080/health"
            ])
        );
        assert_eq!(health["Interval"], 10_000_000_000i64);
        assert_eq!(health["Timeout"], 3_000_000_000i64);
        assert_eq!(health["Retries"], 3);
        assert_eq!(health["StartPeriod"], 5_000_000_000i64);
        // API 1.41 has no StartInterval: it is not sent.
        assert!(health.get("StartInterval").is_none(), "{health}");
        let newer = body_json(&spec("x:1"), true);
        assert_eq!(newer["Healthcheck"]["StartInterval"], 1_000_000_000i64);

        let mut no_check = spec("x:1");
        no_check.health_cmd.clear();
        assert!(body_json(&no_check, false).get("Healthcheck").is_none());
    }

    #[test]
    fn body_env_merges_extra_env_over_the_spec() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(
            json["Env"],
            serde_json::json!(["PORT=9090", "TENANT_API_KEY_SHA256=abc", "TENANT_SLUG=acme"])
        );
    }

    #[test]
    fn body_labels_always_carry_this_namespace() {
        let json = body_json(&spec("x:1"), false);
        assert_eq!(json["Labels"][LABEL_MANAGED], "true");
        assert_eq!(json["Labels"][LABEL_NAMESPACE], "ns");
        assert_eq!(json["Labels"]["tenantctl.tenant"], "acme");
    }

    #[test]
    fn only_the_builtin_site_image_gets_a_cmd() {
        let builtin = body_json(&spec("tenantctl-site:9.9.9"), false);
        assert_eq!(builtin["Cmd"], serde_json::json!(["site"]));
        assert_eq!(builtin["Image"], "tenantctl-site:9.9.9");
        let custom = body_json(&spec("registry.example/shop:4"), false);
        assert!(custom.get("Cmd").is_none(), "{custom}");
        // The entrypoint always comes from the image.
        assert!(builtin.get("Entrypoint").is_none());
        assert!(custom.get("Entrypoint").is_none());
    }
}
