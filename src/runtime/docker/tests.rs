//! Integration tests of the mutations against the real engine of this machine. Each test uses
//! its own namespace `rc-test-<pid>-<nanos>`; a guard removes every object, also on failure.
//! No traffic is ever sent to container addresses: ports are only read back, never connected.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use ipnet::Ipv4Net;

use super::*;
use crate::plan::container::{ContainerSpec, labels as container_labels};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Env var that makes [`container_sleeper`] sleep; set only in test containers.
const SLEEP_ENV: &str = "TENANTCTL_RC_SLEEP";
/// Env var that makes [`container_sleeper`] print a line and exit with its value.
const EXIT_ENV: &str = "TENANTCTL_RC_EXIT";
/// The libtest path of [`container_sleeper`], the fixture image's entrypoint argument.
const SLEEPER: &str = "runtime::docker::tests::container_sleeper";

/// The process of the fixture image: sleeps, or exits with a code, as its env says.
#[test]
#[ignore = "run inside test containers as their main process"]
fn container_sleeper() {
    if let Some(code) = std::env::var(EXIT_ENV).ok().and_then(|c| c.parse().ok()) {
        // Straight to the stream: libtest captures print! and exit() would drop the capture.
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "rc-exit: exiting with {code}");
        let _ = stdout.flush();
        std::process::exit(code);
    }
    if std::env::var_os(SLEEP_ENV).is_some() {
        std::thread::sleep(Duration::from_secs(300));
    }
}

use crate::runtime::SubnetPool;
use crate::runtime::engine::{
    LABEL_EXE_FINGERPRINT, SELF_PATH_IN_IMAGE, build_scratch_image, self_image_files,
};
use crate::runtime::tests::{Cleanup, skipped_without_engine, unique_suffix};
use crate::runtime::types::*;

/// What these tests drive beside the trait: fixtures by name, and the engine calls under it.
impl DockerBackend {
    async fn connect(namespace: &str) -> Result<DockerBackend, RuntimeError> {
        Ok(DockerBackend::new(
            Engine::connect_default(namespace).await?,
        ))
    }

    fn labels_for(&self, tenant: &str) -> BTreeMap<String, String> {
        managed_labels(self.namespace(), tenant)
    }

    fn container_name(&self, slug: &str) -> String {
        container_name(self.namespace(), slug)
    }

    fn network_name(&self, slug: &str) -> String {
        network_name(self.namespace(), slug)
    }

    fn volume_name(&self, slug: &str) -> String {
        volume_name(self.namespace(), slug)
    }

    async fn observe(&self) -> Result<ObservedRuntime, RuntimeError> {
        self.observe_scope(None).await
    }

    async fn create_network(
        &self,
        name: &str,
        subnet: Ipv4Net,
        labels: &BTreeMap<String, String>,
    ) -> Result<EnsuredNetwork, RuntimeError> {
        self.engine
            .create_network(name, subnet, labels, "bridge")
            .await
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, RuntimeError> {
        self.engine.create_volume(name, labels).await
    }

    async fn purge_volume(&self, name: &str) -> Result<bool, RuntimeError> {
        self.engine.purge_volume(name).await
    }

    async fn ensure_image(
        &self,
        reference: &str,
        progress: impl FnMut(&str) + Send,
    ) -> Result<(), RuntimeError> {
        self.engine.ensure_image(reference, progress).await
    }
}

/// The fixture image: this test binary FROM scratch, running [`container_sleeper`].
async fn fixture_image(rt: &DockerBackend, cleanup: &mut Cleanup, tag: &str) -> TestResult {
    cleanup.images.push(tag.to_string());
    let files = self_image_files()?;
    let entrypoint: Vec<String> = [SELF_PATH_IN_IMAGE, "--ignored", "--exact", SLEEPER]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let labels = BTreeMap::from([("tenantctl.test".to_string(), tag.to_string())]);
    build_scratch_image(rt.docker(), tag, &files, &entrypoint, &labels).await?;
    Ok(())
}

/// A test's own namespace, the runtime on it, its clean-up guard and the fixture image;
/// `None` (the test passes as skipped, saying so) without an engine.
struct Fixture {
    ns: String,
    rt: DockerBackend,
    cleanup: Cleanup,
    tag: String,
}

impl Fixture {
    async fn new(test: &str) -> Result<Option<Fixture>, Box<dyn std::error::Error>> {
        if skipped_without_engine(test) {
            return Ok(None);
        }
        let suffix = unique_suffix();
        let ns = format!("rc-test-{suffix}");
        let rt = DockerBackend::connect(&ns).await?;
        let mut cleanup = Cleanup::default();
        let tag = format!("tenantctl-rc-test:{suffix}");
        fixture_image(&rt, &mut cleanup, &tag).await?;
        Ok(Some(Fixture {
            ns,
            rt,
            cleanup,
            tag,
        }))
    }
}

/// Create a tenant network on the lowest free /28 of the default pool, as apply will: when a
/// parallel run takes that subnet first, the overlap error moves us on to the next one.
async fn tenant_network(
    rt: &DockerBackend,
    cleanup: &mut Cleanup,
    slug: &str,
) -> Result<EnsuredNetwork, Box<dyn std::error::Error>> {
    let name = rt.network_name(slug);
    cleanup.networks.push(name.clone());
    let pool = SubnetPool::default();
    let mut lost: BTreeSet<Ipv4Net> = BTreeSet::new();
    for _ in 0..32 {
        let mut taken = rt.existing_subnets().await?;
        taken.extend(lost.iter().copied());
        let subnet = pool.next_free(&taken).ok_or("subnet pool exhausted")?;
        match rt.create_network(&name, subnet, &rt.labels_for(slug)).await {
            Err(RuntimeError::SubnetOverlap { .. }) => {
                lost.insert(subnet);
            }
            result => return Ok(result?),
        }
    }
    Err(format!("no free subnet for {name} after 32 tries").into())
}

/// A bridge network made straight through the API, behind the runtime's back: without
/// tenantctl's labels (a foreign one) or with `labels`, and without the engine's duplicate-name
/// check; its id. A subnet a parallel test's network overlaps before it is listed is skipped.
async fn network_behind_our_back(
    rt: &DockerBackend,
    cleanup: &mut Cleanup,
    name: &str,
    labels: Option<HashMap<String, String>>,
) -> Result<String, Box<dyn std::error::Error>> {
    cleanup.networks.push(name.to_string());
    let pool = SubnetPool::default();
    let mut lost = BTreeSet::new();
    for _ in 0..32 {
        let mut taken = rt.existing_subnets().await?;
        taken.extend(lost.iter().copied());
        let subnet = pool.next_free(&taken).ok_or("subnet pool exhausted")?;
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: labels.clone(),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match rt.docker().create_network(request).await {
            Ok(created) => {
                cleanup.networks.push(created.id.clone());
                return Ok(created.id);
            }
            Err(error) if error.to_string().contains("overlap") => {
                lost.insert(subnet);
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(format!("no free subnet for {name}").into())
}

fn spec_for(rt: &DockerBackend, slug: &str, image: &str, env: &[(&str, &str)]) -> ContainerSpec {
    ContainerSpec {
        name: rt.container_name(slug),
        image: image.to_string(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        nano_cpus: 500_000_000,
        memory_bytes: 128 << 20,
        pids: 64,
        port: 8080,
        publish_address: "127.0.0.1".to_string(),
        // The test binary lists its tests and exits 0: a check that passes without a shell.
        health_cmd: vec![
            "CMD".to_string(),
            SELF_PATH_IN_IMAGE.to_string(),
            "--list".to_string(),
        ],
        health_interval_seconds: 1,
        cap_add: vec!["NET_BIND_SERVICE".to_string()],
        network: rt.network_name(slug),
        volume: rt.volume_name(slug),
        user: None,
        read_only_rootfs: false,
    }
}

#[tokio::test]
async fn networks_and_volumes_are_idempotent_and_only_ours() -> TestResult {
    if skipped_without_engine(
        "runtime::docker::tests::networks_and_volumes_are_idempotent_and_only_ours",
    ) {
        return Ok(());
    }
    let ns = format!("rc-test-{}", unique_suffix());
    let rt = DockerBackend::connect(&ns).await?;
    let mut cleanup = Cleanup::default();

    // Network: twice gives the same one; the second call creates nothing.
    let first = tenant_network(&rt, &mut cleanup, "alpha").await?;
    assert!(first.created);
    let subnet = first.subnet.ok_or("subnet reported")?;
    assert!(SubnetPool::default().contains(&subnet), "{subnet}");
    let other_subnet: Ipv4Net = "10.233.255.240/28".parse()?;
    let again = rt
        .create_network(
            &rt.network_name("alpha"),
            other_subnet,
            &rt.labels_for("alpha"),
        )
        .await?;
    assert_eq!(again.id, first.id);
    assert!(!again.created);
    assert_eq!(
        again.subnet,
        Some(subnet),
        "the real subnet, not the requested one"
    );
    assert!(rt.existing_subnets().await?.contains(&subnet));
    let inspected = rt.docker().inspect_network(&first.id, None).await?;
    assert_eq!(inspected.attachable, Some(true));
    assert_eq!(inspected.driver.as_deref(), Some("bridge"));

    // Two runs racing on one name (pre-1.44 engines would make two networks): one survives.
    let race = rt.network_name("race");
    cleanup.networks.push(race.clone());
    // Other work on this engine may take a free subnet between our look and our create: the
    // race under test is ours, so such an overlap only means "look again".
    let labels = rt.labels_for("race");
    let mut tries = 0;
    let (left, right) = loop {
        let mut taken = rt.existing_subnets().await?;
        let a = SubnetPool::default()
            .next_free(&taken)
            .ok_or("pool exhausted")?;
        taken.insert(a);
        let b = SubnetPool::default()
            .next_free(&taken)
            .ok_or("pool exhausted")?;
        let (left, right) = tokio::join!(
            rt.create_network(&race, a, &labels),
            rt.create_network(&race, b, &labels)
        );
        let foreign_overlap =
            |r: &Result<_, RuntimeError>| matches!(r, Err(RuntimeError::SubnetOverlap { .. }));
        tries += 1;
        if tries < 5 && (foreign_overlap(&left) || foreign_overlap(&right)) {
            let _ = rt.remove_network(&race).await;
            continue;
        }
        break (left?, right?);
    };
    assert_eq!(left.id, right.id);
    assert_eq!(left.subnet, right.subnet);
    let named: Vec<String> = rt
        .docker()
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await?
        .into_iter()
        .filter_map(|n| n.name)
        .filter(|n| *n == race)
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(rt.remove_network(&race).await?);

    // The same subnet for another network: the engine's overlap is our distinct variant.
    cleanup.networks.push(rt.network_name("beta"));
    let overlap = rt
        .create_network(&rt.network_name("beta"), subnet, &rt.labels_for("beta"))
        .await;
    assert!(
        matches!(overlap, Err(RuntimeError::SubnetOverlap { .. })),
        "{overlap:?}"
    );

    // A network of our naming scheme that we did not make is never adopted or removed.
    let foreign = rt.network_name("foreign");
    network_behind_our_back(&rt, &mut cleanup, &foreign, None).await?;
    let adopted = rt
        .create_network(&foreign, other_subnet, &rt.labels_for("foreign"))
        .await;
    let Err(error) = adopted else {
        panic!("a foreign network was adopted");
    };
    assert!(matches!(error, RuntimeError::NotManaged { .. }), "{error}");
    assert!(error.to_string().contains(&foreign), "{error}");
    assert!(matches!(
        rt.remove_network(&foreign).await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(rt.docker().inspect_network(&foreign, None).await.is_ok());

    // Volume: twice is fine; a foreign one is refused; purge only ours, twice is fine.
    let volume = rt.volume_name("alpha");
    cleanup.volumes.push(volume.clone());
    assert!(rt.create_volume(&volume, &rt.labels_for("alpha")).await?);
    assert!(!rt.create_volume(&volume, &rt.labels_for("alpha")).await?);
    let foreign_volume = rt.volume_name("foreign");
    cleanup.volumes.push(foreign_volume.clone());
    rt.docker()
        .create_volume(bollard::models::VolumeCreateRequest {
            name: Some(foreign_volume.clone()),
            ..Default::default()
        })
        .await?;
    assert!(matches!(
        rt.create_volume(&foreign_volume, &rt.labels_for("foreign"))
            .await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(matches!(
        rt.purge_volume(&foreign_volume).await,
        Err(RuntimeError::NotManaged { .. })
    ));

    // What observe sees is what was made.
    let observed = rt.observe().await?;
    assert_eq!(observed.networks.len(), 1, "{:?}", observed.networks);
    assert_eq!(observed.networks[0].id, first.id);
    assert_eq!(observed.networks[0].subnet, Some(subnet.to_string()));
    assert_eq!(observed.volumes.len(), 1);
    assert_eq!(observed.volumes[0].tenant.as_deref(), Some("alpha"));

    assert!(rt.remove_network(&rt.network_name("alpha")).await?);
    assert!(!rt.remove_network(&rt.network_name("alpha")).await?);
    assert!(rt.purge_volume(&volume).await?);
    assert!(!rt.purge_volume(&volume).await?);
    assert_eq!(rt.observe().await?, ObservedRuntime::default());
    Ok(())
}

/// Joins `container` to the network with id `network`, as `docker network connect` does.
async fn join_network(
    rt: &DockerBackend,
    network: &str,
    container: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let request = bollard::models::NetworkConnectRequest {
        container: container.to_string(),
        endpoint_config: None,
    };
    rt.docker().connect_network(network, request).await?;
    Ok(())
}

/// A younger duplicate that a running container is on (an interrupted apply's create landed
/// after the next apply had made and used its own copy) is the one kept; the unused older copy goes.
#[tokio::test]
async fn a_duplicate_network_in_use_is_kept_over_an_older_unused_one() -> TestResult {
    let Some(Fixture {
        ns,
        rt,
        mut cleanup,
        tag,
    }) = Fixture::new(
        "runtime::docker::tests::a_duplicate_network_in_use_is_kept_over_an_older_unused_one",
    )
    .await?
    else {
        return Ok(());
    };

    let older = tenant_network(&rt, &mut cleanup, "dup").await?;
    let older_subnet = older.subnet.ok_or("subnet reported")?;
    let name = rt.network_name("dup");
    // The younger copy, made behind the runtime's back as a second create would make it.
    let labels = crate::runtime::engine::owned_labels(&rt.labels_for("dup"), &ns);
    let younger = match network_behind_our_back(&rt, &mut cleanup, &name, Some(labels)).await {
        Ok(id) => id,
        Err(error)
            if error
                .downcast_ref::<bollard::errors::Error>()
                .and_then(crate::runtime::status_code)
                == Some(409) =>
        {
            eprintln!("skipped: this engine refuses duplicate network names itself");
            return Ok(());
        }
        Err(error) => return Err(error),
    };
    cleanup.networks.push(older.id.clone());

    // A container on the younger copy. The engine refuses to start one on an ambiguous name,
    // so it starts on the default bridge and joins the younger copy by id, as a container
    // started before the older copy landed would be on it.
    let container = rt.container_name("dup");
    cleanup.containers.push(container.clone());
    let body = ContainerCreateBody {
        image: Some(tag.clone()),
        env: Some(vec![format!("{SLEEP_ENV}=1")]),
        ..Default::default()
    };
    let options = CreateContainerOptionsBuilder::default()
        .name(&container)
        .build();
    rt.docker().create_container(Some(options), body).await?;
    rt.docker()
        .start_container(
            &container,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    join_network(&rt, &younger, &container).await?;

    // Ensuring the network (as apply's repair of a duplicate does) keeps the copy in use.
    let settled = rt
        .create_network(&name, older_subnet, &rt.labels_for("dup"))
        .await?;
    assert_eq!(
        settled.id, younger,
        "the copy the container runs on is kept"
    );
    assert!(!settled.created);
    let named: Vec<String> = rt
        .docker()
        .list_networks(None::<bollard::query_parameters::ListNetworksOptions>)
        .await?
        .into_iter()
        .filter(|n| n.name.as_deref() == Some(name.as_str()))
        .filter_map(|n| n.id)
        .collect();
    assert_eq!(
        named,
        vec![younger.clone()],
        "the unused older copy is removed"
    );
    let attached = rt.docker().inspect_network(&younger, None).await?;
    assert_eq!(attached.containers.map(|c| c.len()), Some(1));
    assert!(settled.left_in_use.is_empty(), "{:?}", settled.left_in_use);

    // A third copy with the container on it too: both copies in use. The older one in use is
    // kept; the other is left (never cut from under a container) and named as left.
    let labels = crate::runtime::engine::owned_labels(&rt.labels_for("dup"), &ns);
    let third = network_behind_our_back(&rt, &mut cleanup, &name, Some(labels)).await?;
    join_network(&rt, &third, &container).await?;
    let settled = rt
        .create_network(&name, older_subnet, &rt.labels_for("dup"))
        .await?;
    assert_eq!(settled.id, younger, "the older copy in use is kept");
    assert_eq!(settled.left_in_use, vec![third.clone()]);
    let attached = rt.docker().inspect_network(&third, None).await?;
    assert_eq!(
        attached.containers.map(|c| c.len()),
        Some(1),
        "the container stays on the copy left"
    );
    rt.docker()
        .disconnect_network(
            &third,
            bollard::models::NetworkDisconnectRequest {
                container: container.clone(),
                force: Some(true),
            },
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn containers_are_created_secured_started_checked_and_removed() -> TestResult {
    let Some(Fixture {
        ns,
        rt,
        mut cleanup,
        tag,
    }) = Fixture::new(
        "runtime::docker::tests::containers_are_created_secured_started_checked_and_removed",
    )
    .await?
    else {
        return Ok(());
    };

    // A present image needs no pull and reports no progress.
    let mut lines = Vec::new();
    rt.ensure_image(&tag, |line| lines.push(line.to_string()))
        .await?;
    assert!(lines.is_empty(), "{lines:?}");

    for slug in ["good", "sick", "crash"] {
        tenant_network(&rt, &mut cleanup, slug).await?;
        cleanup.volumes.push(rt.volume_name(slug));
        rt.create_volume(&rt.volume_name(slug), &rt.labels_for(slug))
            .await?;
        cleanup.containers.push(rt.container_name(slug));
    }

    // good: sleeps, health check passes.
    let good_spec = spec_for(&rt, "good", &tag, &[(SLEEP_ENV, "1")]);
    let good_labels = container_labels(&ns, "good", &good_spec, "rev-1");
    let extra_env = BTreeMap::from([("TENANT_API_KEY_SHA256".to_string(), "f00d".to_string())]);
    let good = rt
        .create_container(&good_spec, &good_labels, &extra_env, &good_spec.name)
        .await?;

    // What the engine holds is what the spec says.
    let inspected = rt.docker().inspect_container(&good, None).await?;
    let host = inspected.host_config.clone().unwrap_or_default();
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(host.memory_swap, Some(128 << 20));
    assert_eq!(host.pids_limit, Some(64));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_string()])
    );
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(host.cap_add, Some(vec!["NET_BIND_SERVICE".to_string()]));
    assert_eq!(
        host.network_mode.as_deref(),
        Some(good_spec.network.as_str())
    );
    let restart = host
        .restart_policy
        .and_then(|p| p.name)
        .map(|n| n.to_string());
    assert_eq!(restart.as_deref(), Some("unless-stopped"));
    let log_config = host.log_config.unwrap_or_default();
    assert_eq!(log_config.typ.as_deref(), Some("json-file"));
    let log_options = log_config.config.unwrap_or_default();
    assert_eq!(log_options.get("max-size").map(String::as_str), Some("10m"));
    assert_eq!(log_options.get("max-file").map(String::as_str), Some("3"));
    let bindings = host.port_bindings.unwrap_or_default();
    let binding = bindings
        .get("8080/tcp")
        .cloned()
        .flatten()
        .unwrap_or_default();
    assert_eq!(binding.len(), 1, "{bindings:?}");
    assert_eq!(binding[0].host_ip.as_deref(), Some("127.0.0.1"));
    let mounts = inspected.mounts.clone().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.name.as_deref() == Some(good_spec.volume.as_str())
                && m.destination.as_deref() == Some("/data")),
        "{mounts:?}"
    );
    let config = inspected.config.clone().unwrap_or_default();
    // A custom image keeps its own entrypoint and command.
    assert!(
        config.cmd.as_ref().is_none_or(|c| c.is_empty()),
        "{:?}",
        config.cmd
    );
    let health = config.healthcheck.clone().unwrap_or_default();
    assert_eq!(health.test, Some(good_spec.health_cmd.clone()));
    assert_eq!(health.interval, Some(1_000_000_000));
    assert_eq!(health.timeout, Some(3_000_000_000));
    assert_eq!(health.retries, Some(3));
    assert_eq!(health.start_period, Some(5_000_000_000));
    let env = config.env.clone().unwrap_or_default();
    assert!(
        env.contains(&"TENANT_API_KEY_SHA256=f00d".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&format!("{SLEEP_ENV}=1")), "{env:?}");
    let labels = config.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_eq!(labels.get(LABEL_NAMESPACE), Some(&ns));
    assert_eq!(labels.get(LABEL_TENANT).map(String::as_str), Some("good"));
    assert_eq!(
        labels.get(LABEL_SPEC_HASH),
        good_labels.get(LABEL_SPEC_HASH)
    );
    assert_eq!(
        labels.get(LABEL_REVISION).map(String::as_str),
        Some("rev-1")
    );

    // The same name again: a conflict, told apart from other failures.
    let again = rt
        .create_container(&good_spec, &good_labels, &extra_env, &good_spec.name)
        .await;
    let Err(conflict) = again else {
        panic!("a second container took the same name");
    };
    assert!(
        matches!(conflict, RuntimeError::NameConflict { .. }),
        "{conflict}"
    );
    assert!(conflict.is_conflict());

    // A missing volume is refused before the engine silently makes an unlabeled one.
    let mut no_volume = good_spec.clone();
    no_volume.volume = rt.volume_name("missing");
    let missing = rt
        .create_container(
            &no_volume,
            &good_labels,
            &extra_env,
            &rt.container_name("nov"),
        )
        .await;
    assert!(
        matches!(&missing, Err(RuntimeError::NotFound { kind: "volume", .. })),
        "{missing:?}"
    );
    assert!(rt.docker().inspect_volume(&no_volume.volume).await.is_err());

    // sick: its health check always fails. crash: exits with 3 at once.
    let mut sick_spec = spec_for(&rt, "sick", &tag, &[(SLEEP_ENV, "1")]);
    sick_spec.health_cmd = vec![
        "CMD".to_string(),
        SELF_PATH_IN_IMAGE.to_string(),
        "--no-such-option".to_string(),
    ];
    let sick = rt
        .create_container(
            &sick_spec,
            &container_labels(&ns, "sick", &sick_spec, "rev-1"),
            &BTreeMap::new(),
            &sick_spec.name,
        )
        .await?;
    let crash_spec = spec_for(&rt, "crash", &tag, &[(EXIT_ENV, "3")]);
    let crash = rt
        .create_container(
            &crash_spec,
            &container_labels(&ns, "crash", &crash_spec, "rev-1"),
            &BTreeMap::new(),
            &crash_spec.name,
        )
        .await?;

    for id in [&good, &good, &sick, &crash] {
        rt.start_container(id).await?;
    }
    let started = Instant::now();
    let timeout = Duration::from_secs(40);
    let (good_health, sick_health, crash_health) = tokio::join!(
        rt.wait_healthy(&good, timeout),
        rt.wait_healthy(&sick, timeout),
        rt.wait_healthy(&crash, timeout),
    );
    eprintln!("health waits took {:?}", started.elapsed());
    assert_eq!(good_health?, HealthOutcome::Healthy);
    match sick_health? {
        HealthOutcome::Unhealthy(output) => {
            eprintln!("sick: {output}");
            assert!(output.contains("no-such-option"), "{output}")
        }
        other => panic!("sick: {other:?}"),
    }
    // Start period 5s + 3 failing 1s probes: well before the timeout.
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
    match crash_health? {
        HealthOutcome::Exited { code, logs, .. } => {
            eprintln!("crash: code {code:?}, logs {logs:?}");
            assert!(matches!(code, Some(3) | None), "{code:?}");
            assert!(
                logs.iter().any(|l| l.contains("rc-exit: exiting with 3")),
                "{logs:?}"
            );
        }
        other => panic!("crash: {other:?}"),
    }

    // The port is published on loopback at an engine-chosen port (never connected to).
    let (host_ip, host_port) = rt
        .published_port(&good, 8080)
        .await?
        .ok_or("8080 published")?;
    assert_eq!(host_ip, "127.0.0.1");
    assert_ne!(host_port, 0);
    assert_eq!(rt.published_port(&good, 9999).await?, None);

    // docker update: new limits without a restart.
    rt.update_limits(&good, 250_000_000, 96 << 20, 32).await?;
    let host = rt
        .docker()
        .inspect_container(&good, None)
        .await?
        .host_config
        .unwrap_or_default();
    assert_eq!(
        (
            host.nano_cpus,
            host.memory,
            host.memory_swap,
            host.pids_limit
        ),
        (Some(250_000_000), Some(96 << 20), Some(96 << 20), Some(32))
    );

    // Rename: to a new name, again (nothing to do), and onto a taken name (conflict).
    let old_name = format!("{}-old", good_spec.name);
    cleanup.containers.push(old_name.clone());
    rt.rename_container(&good, &old_name).await?;
    rt.rename_container(&good, &old_name).await?;
    let renamed = rt.docker().inspect_container(&good, None).await?;
    assert_eq!(
        renamed.name.as_deref(),
        Some(format!("/{old_name}").as_str())
    );
    assert!(matches!(
        rt.rename_container(&good, &sick_spec.name).await,
        Err(RuntimeError::NameConflict { .. })
    ));

    // Logs: at most n lines.
    let tail = rt.container_logs_tail(&good, 2).await?;
    assert!(!tail.is_empty() && tail.len() <= 2, "{tail:?}");

    // Stop twice (PID 1 ignores SIGTERM, so the 1s timeout kills it), then it reads as exited.
    rt.stop_container(&good, Duration::from_secs(1)).await?;
    rt.stop_container(&good, Duration::from_secs(1)).await?;
    let state = rt
        .docker()
        .inspect_container(&good, None)
        .await?
        .state
        .unwrap_or_default();
    assert_eq!(state.running, Some(false));
    assert!(matches!(
        rt.wait_healthy(&good, Duration::from_secs(5)).await?,
        HealthOutcome::Exited { .. }
    ));
    // Stopping ends the crash loop too.
    rt.stop_container(&crash, Duration::from_secs(1)).await?;

    // Objects that are not ours are never touched, even under our names.
    let foreign = rt.container_name("foreign");
    cleanup.containers.push(foreign.clone());
    rt.docker()
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&foreign)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(tag.clone()),
                labels: Some(HashMap::from([(LABEL_NAMESPACE.to_string(), ns.clone())])),
                ..Default::default()
            },
        )
        .await?;
    assert!(matches!(
        rt.start_container(&foreign).await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(matches!(
        rt.stop_container(&foreign, Duration::from_secs(1)).await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(matches!(
        rt.remove_container(&foreign, true).await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(matches!(
        rt.update_limits(&foreign, 1, 1 << 30, 1).await,
        Err(RuntimeError::NotManaged { .. })
    ));
    assert!(rt.docker().inspect_container(&foreign, None).await.is_ok());

    // Remove twice: the second finds nothing and is fine. Volumes stay.
    assert!(rt.remove_container(&good, false).await?);
    assert!(!rt.remove_container(&good, false).await?);
    assert!(rt.remove_container(&sick_spec.name, true).await?);
    assert!(rt.remove_container(&crash, true).await?);
    assert!(matches!(
        rt.start_container(&good).await,
        Err(RuntimeError::NotFound { .. })
    ));
    for slug in ["good", "sick", "crash"] {
        assert!(rt.remove_network(&rt.network_name(slug)).await?);
        assert!(
            rt.docker()
                .inspect_volume(&rt.volume_name(slug))
                .await
                .is_ok()
        );
    }
    Ok(())
}

#[tokio::test]
async fn ensure_image_of_a_missing_reference_fails_fast_and_clearly() -> TestResult {
    if skipped_without_engine(
        "runtime::docker::tests::ensure_image_of_a_missing_reference_fails_fast_and_clearly",
    ) {
        return Ok(());
    }
    let rt = DockerBackend::connect(&format!("rc-test-{}", unique_suffix())).await?;
    let reference = format!("tenantctl-rc-missing-{}:1", unique_suffix());
    let started = Instant::now();
    let mut lines = Vec::new();
    let result = rt
        .ensure_image(&reference, |line| lines.push(line.to_string()))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let Err(error) = result else {
        panic!("pulled {reference}?");
    };
    let message = error.to_string();
    assert!(
        matches!(error, RuntimeError::ImageUnavailable { .. }),
        "{message}"
    );
    assert!(
        message.starts_with(&format!(
            "image {reference} is not on this host and could not be pulled: "
        )),
        "{message}"
    );
    assert!(
        message.ends_with("; build or load it (docker load) first"),
        "{message}"
    );
    eprintln!("{message} (progress: {lines:?})");
    Ok(())
}

#[tokio::test]
async fn site_image_is_built_once_per_binary() -> TestResult {
    if skipped_without_engine("runtime::docker::tests::site_image_is_built_once_per_binary") {
        return Ok(());
    }
    let rt = DockerBackend::connect(&format!("rc-test-{}", unique_suffix())).await?;
    let mut cleanup = Cleanup::default();
    let tag = format!("tenantctl-rc-site:{}", unique_suffix());
    cleanup.images.push(tag.clone());
    let said = std::sync::Mutex::new(Vec::<String>::new());
    let say = |line: &str| said.lock().unwrap().push(line.to_string());
    let first = rt.ensure_site_image(&tag, &say).await?;
    assert!(first.starts_with("sha256:"), "{first}");
    assert_eq!(
        *said.lock().unwrap(),
        ["building the built-in site image from this binary"]
    );
    let started = Instant::now();
    let second = rt.ensure_site_image(&tag, &say).await?;
    let cheap = started.elapsed();
    assert_eq!(first, second);
    assert_eq!(
        said.lock().unwrap().len(),
        1,
        "a present image is not built, nor said to be"
    );
    assert!(
        cheap < Duration::from_secs(1),
        "present image took {cheap:?}"
    );
    let image = rt.docker().inspect_image(&tag).await?;
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert!(labels.contains_key(LABEL_EXE_FINGERPRINT), "{labels:?}");
    let entrypoint = rt
        .docker()
        .inspect_image(&tag)
        .await?
        .config
        .and_then(|c| c.entrypoint);
    assert_eq!(entrypoint, Some(vec![SELF_PATH_IN_IMAGE.to_string()]));
    Ok(())
}
