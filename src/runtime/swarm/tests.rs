//! The service request and the observed shape of a service, without an engine.

use std::collections::BTreeMap;

use bollard::models::{
    Service, ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum,
    ServiceUpdateStatus, ServiceUpdateStatusStateEnum, Task, TaskState, TaskStatus,
};

use super::observe::from_service;
use super::spec::service_spec;
use crate::runtime::engine::BodyOptions;
use crate::runtime::types::{
    ContainerSpec, ContainerState, LABEL_MANAGED, LABEL_NAMESPACE, ServiceShape,
};

use crate::runtime::types::builtin_site_image;

fn spec() -> ContainerSpec {
    ContainerSpec {
        name: "ns-acme".into(),
        image: builtin_site_image(),
        env: BTreeMap::from([("TENANT_SLUG".to_string(), "acme".to_string())]),
        nano_cpus: 500_000_000,
        memory_bytes: 256 << 20,
        pids: 128,
        port: 8080,
        publish_address: "127.0.0.1".into(),
        health_cmd: vec!["CMD".into(), "/tenantctl".into(), "site-health".into()],
        health_interval_seconds: 10,
        cap_add: vec![],
        network: "ns-acme".into(),
        volume: "ns-acme-data".into(),
        user: None,
        read_only_rootfs: false,
    }
}

fn options() -> BodyOptions {
    BodyOptions {
        namespace: "ns".into(),
        site_image: builtin_site_image(),
        start_interval: false,
    }
}

fn shape(replicas: u32) -> ServiceShape {
    ServiceShape {
        replicas,
        constraints: vec!["node.role == manager".into()],
        reserved_nano_cpus: Some(100_000_000),
        reserved_memory_bytes: Some(64 << 20),
        published_port: None,
    }
}

#[test]
fn the_service_carries_limits_reservations_policy_and_no_loopback_port() {
    let labels = BTreeMap::from([("tenantctl.tenant".to_string(), "acme".to_string())]);
    let extra = BTreeMap::from([("TENANT_API_KEY_SHA256".to_string(), "d".to_string())]);
    let s = service_spec(&spec(), &labels, &extra, &shape(3), &options());
    let labels = s.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_eq!(labels.get(LABEL_NAMESPACE).map(String::as_str), Some("ns"));
    let t = s.task_template.clone().unwrap_or_default();
    let c = t.container_spec.clone().unwrap_or_default();
    assert_eq!(c.args, Some(vec!["site".to_string()]));
    let env = c.env.unwrap_or_default();
    assert!(env.contains(&"TENANT_API_KEY_SHA256=d".to_string()));
    assert_eq!(c.capability_drop, Some(vec!["ALL".to_string()]));
    let mount = &c.mounts.unwrap_or_default()[0];
    assert_eq!(mount.source.as_deref(), Some("ns-acme-data"));
    let r = t.resources.unwrap_or_default();
    assert_eq!(
        r.limits.as_ref().and_then(|l| l.memory_bytes),
        Some(256 << 20)
    );
    assert_eq!(r.limits.as_ref().and_then(|l| l.pids), Some(128));
    assert_eq!(
        r.reservations.as_ref().and_then(|l| l.nano_cpus),
        Some(100_000_000)
    );
    assert_eq!(
        t.placement.and_then(|p| p.constraints),
        Some(vec!["node.role == manager".to_string()])
    );
    let mode = s.mode.and_then(|m| m.replicated).and_then(|r| r.replicas);
    assert_eq!(mode, Some(3));
    let update = s.update_config.unwrap_or_default();
    assert_eq!(
        update.failure_action,
        Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
    );
    assert_eq!(
        update.order,
        Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
    );
    // Loopback-only cannot be done by swarm: no port at all rather than every address.
    assert_eq!(s.endpoint_spec.and_then(|e| e.ports), None);
    let mut open = spec();
    open.publish_address = "0.0.0.0".into();
    let s = service_spec(
        &open,
        &BTreeMap::new(),
        &BTreeMap::new(),
        &shape(1),
        &options(),
    );
    let ports = s.endpoint_spec.and_then(|e| e.ports).unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].target_port, Some(8080));
}

fn task(id: &str, desired: TaskState, state: TaskState, err: Option<&str>, at: &str) -> Task {
    Task {
        id: Some(id.into()),
        service_id: Some("svc".into()),
        desired_state: Some(desired),
        updated_at: Some(at.into()),
        status: Some(TaskStatus {
            state: Some(state),
            err: err.map(str::to_string),
            timestamp: Some(at.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn tasks_give_replicas_health_and_the_newest_error() {
    let labels = BTreeMap::from([("tenantctl.tenant".to_string(), "acme".to_string())]);
    let body = service_spec(&spec(), &labels, &BTreeMap::new(), &shape(3), &options());
    let service = Service {
        id: Some("svc".into()),
        spec: Some(body),
        update_status: Some(ServiceUpdateStatus {
            state: Some(ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
            message: Some("rollback completed".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let tasks = [
        task(
            "a",
            TaskState::RUNNING,
            TaskState::RUNNING,
            None,
            "2026-01-01T00:00:03Z",
        ),
        task(
            "b",
            TaskState::RUNNING,
            TaskState::RUNNING,
            None,
            "2026-01-01T00:00:04Z",
        ),
        task(
            "c",
            TaskState::SHUTDOWN,
            TaskState::FAILED,
            Some("old"),
            "2026-01-01T00:00:01Z",
        ),
        task(
            "d",
            TaskState::SHUTDOWN,
            TaskState::FAILED,
            Some("task: non-zero exit (2)"),
            "2026-01-01T00:00:05Z",
        ),
    ];
    let refs: Vec<&Task> = tasks.iter().collect();
    let c = from_service(&service, &refs, vec!["cid".into()]);
    assert_eq!(c.tenant.as_deref(), Some("acme"));
    assert_eq!(c.state, ContainerState::Running);
    let s = c.service.clone().unwrap_or_default();
    assert_eq!((s.replicas, s.running), (3, 2));
    assert_eq!(c.health.as_deref(), Some("unhealthy"));
    assert_eq!(s.task_error.as_deref(), Some("task: non-zero exit (2)"));
    assert!(s.rolled_back());
    assert_eq!(s.local_containers, vec!["cid".to_string()]);
    assert_eq!(c.memory_bytes, Some(256 << 20));
    assert_eq!(
        c.started_at,
        crate::status::time::parse_rfc3339("2026-01-01T00:00:04Z")
    );
}
