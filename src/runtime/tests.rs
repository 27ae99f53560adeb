//! Integration tests against the real Docker engine of this machine. Every object gets a
//! unique namespace and is removed by a guard, also when an assertion fails.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, Ipam, IpamConfig, NetworkCreateRequest,
    PortBinding, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::TryStreamExt;

use super::*;
use engine::{build_scratch_image, build_self_image, image_exists, self_image_files};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Env var that makes [`container_sleeper`] sleep; set only inside test containers.
const SLEEP_ENV: &str = "TENANTCTL_RT_SLEEP";
/// Env var that makes [`connect_from_env_child`] act; set only for the child process.
const CHILD_ENV: &str = "TENANTCTL_RT_CHILD";

/// True when DOCKER_HOST names a socket that does not exist (`cargo test --lib` run on purpose
/// with no engine): a test that needs the engine then says so on stderr, uncaptured, and passes.
/// Unset, or pointing at a socket that exists, these tests run (and fail without an engine).
pub(super) fn skipped_without_engine(test: &str) -> bool {
    let Ok(host) = std::env::var("DOCKER_HOST") else {
        return false;
    };
    let Some(path) = host.strip_prefix("unix://") else {
        return false;
    };
    if std::path::Path::new(path).exists() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped, it needs the Docker engine and DOCKER_HOST={host} has no socket"
    );
    true
}

pub(super) fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

/// Objects to remove when the test ends, however it ends.
#[derive(Default)]
pub(super) struct Cleanup {
    pub(super) containers: Vec<String>,
    pub(super) networks: Vec<String>,
    pub(super) volumes: Vec<String>,
    pub(super) images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let networks = std::mem::take(&mut self.networks);
        let volumes = std::mem::take(&mut self.volumes);
        let images = std::mem::take(&mut self.images);
        // Drop cannot await and the test's runtime may be unwinding: use a fresh one.
        let worker = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => return eprintln!("cleanup: no runtime: {error}"),
            };
            runtime.block_on(async move {
                let docker = match Runtime::connect("cleanup").await {
                    Ok(rt) => rt.docker().clone(),
                    Err(error) => return eprintln!("cleanup: {error}"),
                };
                let report =
                    |what: &str, name: &str, result: Result<(), bollard::errors::Error>| {
                        if let Err(error) = result
                            && !is_not_found(&error)
                        {
                            eprintln!("cleanup: removing {what} {name}: {error}");
                        }
                    };
                for name in &containers {
                    let options = RemoveContainerOptionsBuilder::default().force(true).build();
                    report(
                        "container",
                        name,
                        docker.remove_container(name, Some(options)).await,
                    );
                }
                for name in &networks {
                    report("network", name, docker.remove_network(name).await);
                }
                for name in &volumes {
                    report(
                        "volume",
                        name,
                        docker
                            .remove_volume(
                                name,
                                None::<bollard::query_parameters::RemoveVolumeOptions>,
                            )
                            .await,
                    );
                }
                for name in &images {
                    let options = RemoveImageOptionsBuilder::default().force(true).build();
                    let result = docker
                        .remove_image(name, Some(options), None)
                        .await
                        .map(|_| ());
                    report("image", name, result);
                }
            });
        });
        let _ = worker.join();
    }
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn managed(namespace: &str, tenant: &str) -> HashMap<String, String> {
    managed_labels(namespace, tenant).into_iter().collect()
}

/// Create a bridge network with an explicit /28, moving on when another run holds the subnet.
async fn create_network(
    docker: &Docker,
    cleanup: &mut Cleanup,
    name: &str,
    labels: HashMap<String, String>,
) -> Result<String, Box<dyn std::error::Error>> {
    cleanup.networks.push(name.to_string());
    let seed = (std::process::id() as usize).wrapping_mul(31) + name.len() * 7;
    for attempt in 0..64usize {
        let slot = (seed + attempt * 37) % (256 * 16);
        let subnet = format!("10.213.{}.{}/28", slot / 16, (slot % 16) * 16);
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.clone()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => return Ok(subnet),
            Err(error) if error.to_string().contains("overlap") => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(format!("no free /28 in 10.213.0.0/16 for {name}").into())
}

async fn create_volume(
    docker: &Docker,
    cleanup: &mut Cleanup,
    name: &str,
    labels: HashMap<String, String>,
) -> TestResult {
    cleanup.volumes.push(name.to_string());
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        })
        .await?;
    Ok(())
}

async fn create_container(
    docker: &Docker,
    cleanup: &mut Cleanup,
    name: &str,
    body: ContainerCreateBody,
) -> TestResult {
    cleanup.containers.push(name.to_string());
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    docker.create_container(Some(options), body).await?;
    Ok(())
}

/// Build (or reuse) the scratch image of this test binary.
async fn test_image(
    docker: &Docker,
    cleanup: &mut Cleanup,
    tag: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    cleanup.images.push(tag.to_string());
    let files = self_image_files()?;
    let entrypoint = vec![engine::SELF_PATH_IN_IMAGE.to_string()];
    let image_labels = BTreeMap::from([("tenantctl.test".to_string(), tag.to_string())]);
    Ok(build_scratch_image(docker, tag, &files, &entrypoint, &image_labels).await?)
}

/// Runs inside a test container (as `--ignored --exact`) to keep it alive for health checks.
#[test]
#[ignore = "run inside test containers by observe_sees_exactly_its_namespace"]
fn container_sleeper() {
    if std::env::var_os(SLEEP_ENV).is_some() {
        std::thread::sleep(Duration::from_secs(300));
    }
}

#[tokio::test]
async fn observe_sees_exactly_its_namespace() -> TestResult {
    if skipped_without_engine("runtime::tests::observe_sees_exactly_its_namespace") {
        return Ok(());
    }
    let suffix = unique_suffix();
    let ns = format!("rt-test-{suffix}");
    let other = format!("rt-other-{suffix}");
    let rt = Runtime::connect(&ns).await?;
    let docker = rt.docker().clone();
    let mut cleanup = Cleanup::default();

    // The image: built once, then reused without sending the context again.
    let tag = format!("tenantctl-rt-test:{suffix}");
    let started = Instant::now();
    let image_id = test_image(&docker, &mut cleanup, &tag).await?;
    let first_build = started.elapsed();
    let started = Instant::now();
    let again = test_image(&docker, &mut cleanup, &tag).await?;
    eprintln!(
        "image build {first_build:?}, rebuild {:?}",
        started.elapsed()
    );
    assert_eq!(image_id, again, "an unchanged image is not rebuilt");
    assert!(image_id.starts_with("sha256:"), "{image_id}");
    assert!(image_exists(&docker, &tag).await?);
    assert!(!image_exists(&docker, &format!("tenantctl-rt-none:{suffix}")).await?);

    // Networks and volumes: two of ours, plus lookalikes that must stay invisible.
    let alpha_subnet = create_network(
        &docker,
        &mut cleanup,
        &rt.network_name("alpha"),
        managed(&ns, "alpha"),
    )
    .await?;
    create_network(
        &docker,
        &mut cleanup,
        &rt.network_name("stray"),
        labels(&[(LABEL_NAMESPACE, &ns), (LABEL_TENANT, "stray")]),
    )
    .await?;
    create_network(
        &docker,
        &mut cleanup,
        &network_name(&other, "alpha"),
        managed(&other, "alpha"),
    )
    .await?;
    create_volume(
        &docker,
        &mut cleanup,
        &rt.volume_name("alpha"),
        managed(&ns, "alpha"),
    )
    .await?;
    create_volume(
        &docker,
        &mut cleanup,
        &rt.volume_name("beta"),
        managed(&ns, "beta"),
    )
    .await?;
    create_volume(
        &docker,
        &mut cleanup,
        &rt.volume_name("stray"),
        labels(&[(LABEL_MANAGED, "false"), (LABEL_NAMESPACE, &ns)]),
    )
    .await?;
    create_volume(
        &docker,
        &mut cleanup,
        &volume_name(&other, "alpha"),
        managed(&other, "alpha"),
    )
    .await?;

    // alpha: limits and env, runs `--list` and exits 0 (proves the scratch image runs).
    let mut alpha_labels = managed(&ns, "alpha");
    alpha_labels.extend(labels(&[
        (LABEL_SPEC_HASH, "hash-alpha"),
        (LABEL_HASH_VERSION, "1"),
        (LABEL_REVISION, "0123abcd"),
    ]));
    create_container(
        &docker,
        &mut cleanup,
        &rt.container_name("alpha"),
        ContainerCreateBody {
            image: Some(tag.clone()),
            cmd: Some(vec!["--list".to_string()]),
            env: Some(vec![
                "TENANT_SLUG=alpha".to_string(),
                "EQUALS=a=b".to_string(),
            ]),
            labels: Some(alpha_labels),
            host_config: Some(HostConfig {
                memory: Some(128 * 1024 * 1024),
                nano_cpus: Some(500_000_000),
                pids_limit: Some(64),
                network_mode: Some(rt.network_name("alpha")),
                security_opt: Some(vec!["no-new-privileges".to_string()]),
                cap_drop: Some(vec!["ALL".to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    docker
        .start_container(&rt.container_name("alpha"), None)
        .await?;
    let waited: Vec<_> = docker
        .wait_container(&rt.container_name("alpha"), None)
        .try_collect()
        .await?;
    assert_eq!(waited.last().map(|w| w.status_code), Some(0), "{waited:?}");
    let logs: Vec<String> = docker
        .logs(
            &rt.container_name("alpha"),
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        )
        .map_ok(|line| line.to_string())
        .try_collect()
        .await?;
    let logs = logs.concat();
    assert!(logs.contains("container_sleeper: test"), "logs: {logs}");

    // beta: keeps running with a health check and a port published on 127.0.0.1.
    let sleeper_args = ["--ignored", "--exact", "runtime::tests::container_sleeper"];
    create_container(
        &docker,
        &mut cleanup,
        &rt.container_name("beta"),
        ContainerCreateBody {
            image: Some(tag.clone()),
            cmd: Some(sleeper_args.iter().map(|s| s.to_string()).collect()),
            env: Some(vec![format!("{SLEEP_ENV}=1")]),
            labels: Some(managed(&ns, "beta")),
            exposed_ports: Some(vec!["8080/tcp".to_string()]),
            healthcheck: Some(HealthConfig {
                test: Some(vec![
                    "CMD".to_string(),
                    engine::SELF_PATH_IN_IMAGE.to_string(),
                    "--list".to_string(),
                ]),
                interval: Some(500_000_000),
                timeout: Some(5_000_000_000),
                retries: Some(3),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(HashMap::from([(
                    "8080/tcp".to_string(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".to_string()),
                        host_port: Some("0".to_string()),
                    }]),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    docker
        .start_container(&rt.container_name("beta"), None)
        .await?;

    // gamma: created, never started.
    create_container(
        &docker,
        &mut cleanup,
        &rt.container_name("gamma"),
        ContainerCreateBody {
            image: Some(tag.clone()),
            labels: Some(managed(&ns, "gamma")),
            ..Default::default()
        },
    )
    .await?;
    // Lookalikes: no managed label; another namespace.
    create_container(
        &docker,
        &mut cleanup,
        &rt.container_name("stray"),
        ContainerCreateBody {
            image: Some(tag.clone()),
            labels: Some(labels(&[(LABEL_NAMESPACE, &ns), (LABEL_TENANT, "stray")])),
            ..Default::default()
        },
    )
    .await?;
    create_container(
        &docker,
        &mut cleanup,
        &container_name(&other, "alpha"),
        ContainerCreateBody {
            image: Some(tag.clone()),
            labels: Some(managed(&other, "alpha")),
            ..Default::default()
        },
    )
    .await?;

    // Wait for beta's health check to pass.
    let deadline = Instant::now() + Duration::from_secs(60);
    let observed = loop {
        let observed = rt.observe().await?;
        let beta_health = observed.container_of("beta").and_then(|c| c.health.clone());
        if beta_health.as_deref() == Some("healthy") || Instant::now() > deadline {
            break observed;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    let names: Vec<&str> = observed
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let expected = [
        rt.container_name("alpha"),
        rt.container_name("beta"),
        rt.container_name("gamma"),
    ];
    assert_eq!(
        names,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let network_names: Vec<&str> = observed.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(network_names, vec![rt.network_name("alpha").as_str()]);
    assert_eq!(observed.networks[0].tenant.as_deref(), Some("alpha"));
    assert_eq!(
        observed.networks[0].subnet.as_deref(),
        Some(alpha_subnet.as_str())
    );
    assert!(!observed.networks[0].id.is_empty());
    let volume_names: Vec<&str> = observed.volumes.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        volume_names,
        vec![
            rt.volume_name("alpha").as_str(),
            rt.volume_name("beta").as_str()
        ]
    );
    assert_eq!(
        observed.volume_of("beta").map(|v| v.name.clone()),
        Some(rt.volume_name("beta"))
    );

    let alpha = observed.container_of("alpha").ok_or("alpha observed")?;
    assert_eq!(alpha.state, ContainerState::Exited);
    assert_eq!(alpha.health, None);
    assert_eq!(alpha.image, tag);
    assert_eq!(alpha.spec_hash.as_deref(), Some("hash-alpha"));
    assert_eq!(alpha.hash_version.as_deref(), Some("1"));
    assert_eq!(alpha.revision.as_deref(), Some("0123abcd"));
    assert_eq!(alpha.env.get("TENANT_SLUG"), Some("alpha"));
    assert_eq!(alpha.env.get("EQUALS"), Some("a=b"));
    assert_eq!(alpha.memory_bytes, Some(128 * 1024 * 1024));
    assert_eq!(alpha.nano_cpus, Some(500_000_000));
    assert_eq!(alpha.pids_limit, Some(64));
    assert!(alpha.published_ports.is_empty());
    // tenantctl's own labels are parsed into fields; only foreign labels stay in `labels`.
    assert!(
        alpha.labels.keys().all(|k| !k.starts_with("tenantctl.")),
        "{:?}",
        alpha.labels
    );

    let beta = observed.container_of("beta").ok_or("beta observed")?;
    assert_eq!(beta.state, ContainerState::Running);
    assert!(beta.state.is_running());
    assert_eq!(
        beta.health.as_deref(),
        Some("healthy"),
        "beta never became healthy"
    );
    assert_eq!(beta.spec_hash, None);
    assert_eq!(
        (beta.memory_bytes, beta.nano_cpus, beta.pids_limit),
        (None, None, None)
    );
    assert_eq!(beta.published_ports.len(), 1, "{:?}", beta.published_ports);
    assert_eq!(beta.published_ports[0].container_port, 8080);
    assert_eq!(beta.published_ports[0].host_ip, "127.0.0.1");
    assert_ne!(beta.published_ports[0].host_port, 0);

    let gamma = observed.container_of("gamma").ok_or("gamma observed")?;
    assert_eq!(gamma.state, ContainerState::Created);
    assert!(!gamma.state.is_running());
    assert_eq!(gamma.health, None);

    // The other namespace sees only its own objects.
    let other_rt = Runtime::connect(&other).await?;
    let theirs = other_rt.observe().await?;
    assert_eq!(theirs.containers.len(), 1);
    assert_eq!(theirs.containers[0].name, container_name(&other, "alpha"));
    assert_eq!(theirs.networks.len(), 1);
    assert_eq!(theirs.volumes.len(), 1);
    assert_eq!(theirs.volumes[0].name, volume_name(&other, "alpha"));

    drop(cleanup);
    // After cleanup the namespace is empty again.
    let after = rt.observe().await?;
    assert_eq!(after, ObservedRuntime::default());
    Ok(())
}

#[tokio::test]
async fn rebuild_with_new_inputs_replaces_the_old_image() -> TestResult {
    if skipped_without_engine("runtime::tests::rebuild_with_new_inputs_replaces_the_old_image") {
        return Ok(());
    }
    let rt = Runtime::connect("rt-test-image").await?;
    let docker = rt.docker();
    let mut cleanup = Cleanup::default();
    let tag = format!("tenantctl-rt-rebuild:{}", unique_suffix());
    cleanup.images.push(tag.clone());
    let v1 = BTreeMap::from([("tenantctl.test-version".to_string(), "1".to_string())]);
    let v2 = BTreeMap::from([("tenantctl.test-version".to_string(), "2".to_string())]);
    let first = build_self_image(docker, &tag, &v1).await?;
    let second = build_self_image(docker, &tag, &v2).await?;
    assert_ne!(first, second);
    assert!(image_exists(docker, &second).await?);
    assert!(
        !image_exists(docker, &first).await?,
        "the untagged image is removed"
    );
    let inspected = docker.inspect_image(&tag).await?;
    let image_labels = inspected.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(
        image_labels
            .get("tenantctl.test-version")
            .map(String::as_str),
        Some("2")
    );
    assert!(image_labels.contains_key(engine::LABEL_CONTEXT_HASH));
    Ok(())
}

#[tokio::test]
async fn vanished_container_is_skipped() -> TestResult {
    if skipped_without_engine("runtime::tests::vanished_container_is_skipped") {
        return Ok(());
    }
    let rt = Runtime::connect("rt-test-vanish").await?;
    let missing = format!("tenantctl-rt-gone-{}", unique_suffix());
    assert_eq!(
        docker::observe::inspect_observed(rt.docker(), &missing).await?,
        None
    );
    Ok(())
}

#[tokio::test]
async fn empty_namespace_observes_nothing() -> TestResult {
    if skipped_without_engine("runtime::tests::empty_namespace_observes_nothing") {
        return Ok(());
    }
    let rt = Runtime::connect(&format!("rt-empty-{}", unique_suffix())).await?;
    assert_eq!(rt.observe().await?, ObservedRuntime::default());
    Ok(())
}

#[tokio::test]
async fn missing_socket_fails_fast_and_says_what_to_do() {
    let started = Instant::now();
    let result = Runtime::connect_with(Some("unix:///nonexistent.sock"), "ns").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let Err(error) = result else {
        panic!("connected to a missing socket");
    };
    let message = error.to_string();
    assert!(
        matches!(error, RuntimeError::Unreachable { .. }),
        "{message}"
    );
    assert!(message.contains("unix:///nonexistent.sock"), "{message}");
    assert!(message.contains("DOCKER_HOST"), "{message}");
    assert!(message.contains("running"), "{message}");
}

#[tokio::test]
async fn refused_connection_fails_fast() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("dead.sock");
    // Bound then closed: the socket file stays, nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&path)?);
    let host = format!("unix://{}", path.display());
    let started = Instant::now();
    let result = Runtime::connect_with(Some(&host), "ns").await;
    assert!(started.elapsed() < Duration::from_secs(2));
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains(&host), "{message}");
    assert!(message.contains("refused"), "{message}");
    Ok(())
}

#[tokio::test]
async fn silent_engine_times_out() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("silent.sock");
    // Accepts connections (backlog) but never answers: the handshake must not hang.
    let _listener = std::os::unix::net::UnixListener::bind(&path)?;
    let host = format!("unix://{}", path.display());
    let started = Instant::now();
    let result = Runtime::connect_with(Some(&host), "ns").await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < CONNECT_TIMEOUT + Duration::from_secs(2),
        "{elapsed:?}"
    );
    let message = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("no answer within"), "{message}");
    Ok(())
}

#[tokio::test]
async fn unsupported_hosts_and_namespaces_are_refused() {
    for host in [
        "ssh://user@host",
        "/var/run/docker.sock",
        "https://host:2376",
        "npipe:////./pipe/docker_engine",
    ] {
        let result = Runtime::connect_with(Some(host), "ns").await;
        assert!(
            matches!(result, Err(RuntimeError::UnsupportedHost { .. })),
            "{host}: {result:?}"
        );
    }
    for namespace in ["", "-x", "a b", "a/b", &"x".repeat(64)] {
        let result = Runtime::connect_with(Some("unix:///nonexistent.sock"), namespace).await;
        assert!(
            matches!(result, Err(RuntimeError::InvalidNamespace { .. })),
            "{namespace:?}: {result:?}"
        );
    }
}

/// Runs in a child process whose DOCKER_HOST the parent sets (env is process-global).
#[tokio::test]
#[ignore = "run as a child process by connect_names_docker_host_from_env"]
async fn connect_from_env_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    match Runtime::connect("ns").await {
        Ok(_) => println!("CHILD-CONNECTED"),
        Err(error) => println!("CHILD-ERROR: {error}"),
    }
}

#[test]
fn connect_names_docker_host_from_env() -> TestResult {
    let exe = std::env::current_exe()?;
    let output = std::process::Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "runtime::tests::connect_from_env_child",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("CHILD-ERROR: cannot reach the Docker engine at DOCKER_HOST=unix:///nonexistent.sock: no socket at /nonexistent.sock"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn names_follow_the_design() {
    assert_eq!(container_name("tenantctl", "acme"), "tenantctl-acme");
    assert_eq!(network_name("tenantctl", "acme"), "tenantctl-acme");
    assert_eq!(volume_name("tenantctl", "acme"), "tenantctl-acme-data");
    assert!(validate_namespace("tenantctl").is_ok());
    assert!(validate_namespace("rt-test-1-2").is_ok());
    assert!(validate_namespace("Staging_1.x").is_ok());
}
