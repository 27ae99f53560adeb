//! The floor of `bench/apply.sh`: what creating and starting tenants costs through the Engine
//! API alone, with tenantctl's own container bodies, so the benchmark can say how much of
//! `tenantctl apply` is the engine and how much is tenantctl.
//!
//! ```sh
//! cargo run --release --example raw_floor -- up --repo DIR --namespace NS --image REF --subnet-pool CIDR [--health]
//! cargo run --release --example raw_floor -- list --namespace NS
//! cargo run --release --example raw_floor -- compose --repo DIR --project P --image REF --subnet-pool CIDR
//! ```
//!
//! `up` does per tenant exactly four calls (create network with an explicit /28, create volume,
//! create container, start), `--parallelism` tenants at a time, and nothing else: no reads
//! before writing, no database, no health wait unless `--health`. `list` is the least a no-op
//! rerun needs (one list call). `compose` writes the same tenants as a docker-compose file with
//! the same image, command, env, limits, health check and hardening, so the three contenders
//! run identical containers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, Ipam, IpamConfig, NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use clap::{Parser, Subcommand};
use ipnet::Ipv4Net;
use serde_json::{Value, json};
use tenantctl::apply::keys;
use tenantctl::model::{DesiredState, TenantState};
use tenantctl::plan::container::{API_KEY_ENV, desired_container, labels};
use tenantctl::runtime::{
    BodyOptions, ContainerSpec, DATA_MOUNT_PATH, LABEL_MANAGED, LABEL_NAMESPACE, container_body,
    managed_labels,
};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(about = "Raw Engine-API floor and compose-file generator for bench/apply.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create network + volume + container and start it for every active tenant of the repo.
    Up {
        #[arg(long)]
        repo: PathBuf,
        #[arg(long)]
        namespace: String,
        /// The built-in site's image reference (the benchmark pins it by id); themes with
        /// their own `image` keep theirs.
        #[arg(long)]
        image: String,
        /// Where the tenants' /28 networks come from, in slug order.
        #[arg(long)]
        subnet_pool: Ipv4Net,
        /// Tenants worked on at once (tenantctl's default is 10).
        #[arg(long, default_value_t = 10)]
        parallelism: usize,
        /// Also wait until each site answers its health path on its loopback port, as
        /// `tenantctl apply` does.
        #[arg(long)]
        health: bool,
        #[arg(long, default_value_t = 60)]
        health_timeout_secs: u64,
    },
    /// List the namespace's containers (one call): the floor of a no-op rerun.
    List {
        #[arg(long)]
        namespace: String,
        /// Fail unless exactly this many running containers are found.
        #[arg(long)]
        expect: Option<usize>,
    },
    /// Print a docker-compose file (format 2.4, written as JSON, which is YAML) of the tenants.
    Compose {
        #[arg(long)]
        repo: PathBuf,
        /// The compose project name, used as the tenantctl namespace in the labels.
        #[arg(long)]
        project: String,
        #[arg(long)]
        image: String,
        #[arg(long)]
        subnet_pool: Ipv4Net,
    },
}

/// One tenant's container as tenantctl would create it, plus its network's subnet.
struct Tenant {
    slug: String,
    spec: ContainerSpec,
    labels: BTreeMap<String, String>,
    extra_env: BTreeMap<String, String>,
    subnet: Ipv4Net,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Up {
            repo,
            namespace,
            image,
            subnet_pool,
            parallelism,
            health,
            health_timeout_secs,
        } => {
            let tenants = tenants(&repo, &namespace, &image, subnet_pool)?;
            up(
                tenants,
                &namespace,
                &image,
                parallelism,
                health.then(|| Duration::from_secs(health_timeout_secs)),
            )
            .await
        }
        Command::List { namespace, expect } => list(&namespace, expect).await,
        Command::Compose {
            repo,
            project,
            image,
            subnet_pool,
        } => {
            let tenants = tenants(&repo, &project, &image, subnet_pool)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&compose(&tenants, &image))?
            );
            Ok(())
        }
    }
}

/// The active tenants at the repo's HEAD, each with tenantctl's own spec, labels and a fresh
/// API-key digest, and the `i`-th /28 of `pool` in slug order.
fn tenants(repo: &Path, namespace: &str, image: &str, pool: Ipv4Net) -> Result<Vec<Tenant>> {
    let source = tenantctl::source::Repo::discover(repo)?;
    let snapshot = source.snapshot_at("HEAD")?;
    let desired: DesiredState = tenantctl::model::load(&snapshot.files).map_err(|problems| {
        anyhow!(
            "{} has {} problems; run `tenantctl validate`",
            repo.display(),
            problems.len()
        )
    })?;
    let mut subnets = pool
        .subnets(28)
        .with_context(|| format!("{pool} cannot hold /28 subnets"))?;
    let mut out = Vec::new();
    for tenant in desired.tenants.values() {
        if tenant.state != TenantState::Active {
            continue;
        }
        let plan = &desired.plans[&tenant.plan];
        let theme = &desired.themes[&tenant.theme];
        let mut spec = desired_container(namespace, tenant, plan, theme);
        // The built-in site runs the pinned image; a theme with its own image keeps it.
        if theme.image.is_none() {
            spec.image = image.to_string();
        }
        let labels = labels(namespace, &tenant.slug, &spec, &snapshot.short_revision());
        let (_key, digest) = keys::generate()?;
        let extra_env = BTreeMap::from([(API_KEY_ENV.to_string(), digest)]);
        let subnet = subnets
            .next()
            .with_context(|| format!("{pool} has too few /28 subnets"))?;
        out.push(Tenant {
            slug: tenant.slug.clone(),
            spec,
            labels,
            extra_env,
            subnet,
        });
    }
    Ok(out)
}

/// Connect like tenantctl does: DOCKER_HOST or the local socket, API version negotiated
/// (the engine here answers at most 1.41; bollard defaults to newer).
async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_local_defaults()?
        .negotiate_version()
        .await
        .context("negotiating the Engine API version")?;
    Ok(docker)
}

/// How long each step of one tenant took.
#[derive(Default, Clone, Copy)]
struct Steps {
    network: Duration,
    volume: Duration,
    create: Duration,
    start: Duration,
    /// From the start call's return until /health answered (only with --health).
    health: Duration,
}

async fn up(
    tenants: Vec<Tenant>,
    namespace: &str,
    image: &str,
    parallelism: usize,
    health: Option<Duration>,
) -> Result<()> {
    let started = Instant::now();
    let docker = connect().await?;
    let version = docker.client_version();
    let options = Arc::new(BodyOptions {
        namespace: namespace.to_string(),
        // So that `container_body` gives the site's `cmd: ["site"]` for the pinned image.
        site_image: image.to_string(),
        start_interval: (version.major_version, version.minor_version) >= (1, 44),
    });
    let count = tenants.len();
    if count == 0 {
        bail!("no active tenants in the repository");
    }
    // The same shape as tenantctl's applier: every tenant spawned, a semaphore lets
    // `parallelism` of them work at once.
    let gate = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for tenant in tenants {
        let (docker, gate, options) = (docker.clone(), gate.clone(), options.clone());
        let namespace = namespace.to_string();
        set.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let slug = tenant.slug.clone();
            one_tenant(&docker, &namespace, tenant, &options, health)
                .await
                .with_context(|| format!("tenant {slug}"))
        });
    }
    // Every task runs to its end even after a failure, so no request is still in flight at
    // the engine when this process exits (the benchmark cleans up right after).
    let mut steps = Vec::with_capacity(count);
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(anyhow::Error::from).and_then(|r| r) {
            Ok(s) => steps.push(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let total = started.elapsed();
    eprintln!(
        "raw floor: {count} tenants, parallelism {parallelism}{}, {:.2}s in-process",
        if health.is_some() {
            ", health wait"
        } else {
            ""
        },
        total.as_secs_f64()
    );
    let mut rows = vec![
        (
            "create network",
            steps.iter().map(|s| s.network).collect::<Vec<_>>(),
        ),
        ("create volume", steps.iter().map(|s| s.volume).collect()),
        ("create container", steps.iter().map(|s| s.create).collect()),
        ("start container", steps.iter().map(|s| s.start).collect()),
    ];
    if health.is_some() {
        rows.push((
            "start → /health answers",
            steps.iter().map(|s| s.health).collect(),
        ));
    }
    for (name, mut v) in rows {
        v.sort();
        eprintln!(
            "  {name:<24} median {:>6.0} ms  max {:>6.0} ms",
            v[v.len() / 2].as_secs_f64() * 1e3,
            v[v.len() - 1].as_secs_f64() * 1e3
        );
    }
    Ok(())
}

async fn one_tenant(
    docker: &Docker,
    namespace: &str,
    tenant: Tenant,
    options: &BodyOptions,
    health: Option<Duration>,
) -> Result<Steps> {
    let mut steps = Steps::default();
    let owned = |extra: &BTreeMap<String, String>| -> HashMap<String, String> {
        let mut labels: HashMap<String, String> = extra.clone().into_iter().collect();
        labels.extend(managed_labels(namespace, &tenant.slug));
        labels
    };

    // The same request tenantctl's `Runtime::create_network` sends.
    let t = Instant::now();
    docker
        .create_network(NetworkCreateRequest {
            name: tenant.spec.network.clone(),
            driver: Some("bridge".to_string()),
            attachable: Some(true),
            labels: Some(owned(&BTreeMap::new())),
            ipam: Some(Ipam {
                driver: Some("default".to_string()),
                config: Some(vec![IpamConfig {
                    subnet: Some(tenant.subnet.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("create network")?;
    steps.network = t.elapsed();

    let t = Instant::now();
    docker
        .create_volume(VolumeCreateRequest {
            name: Some(tenant.spec.volume.clone()),
            driver: Some("local".to_string()),
            labels: Some(owned(&BTreeMap::new())),
            ..Default::default()
        })
        .await
        .context("create volume")?;
    steps.volume = t.elapsed();

    // tenantctl's own body builder: identical limits, hardening, health check, port, mounts.
    let body: ContainerCreateBody =
        container_body(&tenant.spec, &tenant.labels, &tenant.extra_env, options);
    let t = Instant::now();
    let create = CreateContainerOptionsBuilder::default()
        .name(&tenant.spec.name)
        .build();
    let id = docker
        .create_container(Some(create), body)
        .await
        .context("create container")?
        .id;
    steps.create = t.elapsed();

    let t = Instant::now();
    docker
        .start_container(&id, None)
        .await
        .context("start container")?;
    steps.start = t.elapsed();

    if let Some(timeout) = health {
        let t = Instant::now();
        wait_health(docker, &id, &tenant.spec, timeout).await?;
        steps.health = t.elapsed();
    }
    Ok(steps)
}

/// Reads the published loopback port once (the engine reports it as soon as start returns),
/// then polls the health path every 10 ms: the tightest reasonable wait.
async fn wait_health(
    docker: &Docker,
    id: &str,
    spec: &ContainerSpec,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let key = format!("{}/tcp", spec.port);
    let port = loop {
        let inspect = docker.inspect_container(id, None).await?;
        let port = inspect
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|mut ports| ports.remove(&key).flatten())
            .and_then(|bindings| bindings.into_iter().find_map(|b| b.host_port))
            .and_then(|p| p.parse::<u16>().ok());
        if let Some(port) = port {
            break port;
        }
        if Instant::now() > deadline {
            bail!("{key} was never published");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let url = format!("http://127.0.0.1:{port}/health");
    loop {
        match tenantctl::site::health_check(&url, Duration::from_secs(2)).await {
            Ok(_) => return Ok(()),
            Err(why) if Instant::now() > deadline => bail!("{why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn list(namespace: &str, expect: Option<usize>) -> Result<()> {
    let docker = connect().await?;
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_NAMESPACE}={namespace}"),
        ],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = docker.list_containers(Some(options)).await?;
    let running = containers
        .iter()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.to_string() == "running"))
        .count();
    if let Some(expected) = expect
        && running != expected
    {
        bail!(
            "{running} of {} containers run, expected {expected}",
            containers.len()
        );
    }
    println!("{running} running");
    Ok(())
}

/// A compose service per tenant with what tenantctl would give its container. Compose names
/// things `<project>_<name>`; everything else matches.
fn compose(tenants: &[Tenant], site_image: &str) -> Value {
    let mut services = serde_json::Map::new();
    let mut networks = serde_json::Map::new();
    let mut volumes = serde_json::Map::new();
    let nanos = |secs: u64| format!("{secs}s");
    for t in tenants {
        let s = &t.spec;
        let mut env: BTreeMap<String, String> = s.env.clone();
        env.extend(t.extra_env.clone());
        // Compose interpolates `$`; a literal one is `$$`.
        let env: BTreeMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (k, v.replace('$', "$$")))
            .collect();
        let network = t.slug.clone();
        let volume = format!("{}-data", t.slug);
        let mut service = json!({
            "image": s.image,
            "environment": env,
            "labels": t.labels,
            "cpus": s.nano_cpus as f64 / 1e9,
            "mem_limit": s.memory_bytes,
            // Equal to mem_limit, as tenantctl sets MemorySwap.
            "memswap_limit": s.memory_bytes,
            "pids_limit": s.pids,
            "ports": [format!("{}::{}", s.publish_address, s.port)],
            "volumes": [format!("{volume}:{DATA_MOUNT_PATH}")],
            "networks": [network],
            "security_opt": ["no-new-privileges:true"],
            "cap_drop": ["ALL"],
            "restart": "unless-stopped",
            "logging": {
                "driver": "json-file",
                "options": { "max-size": "10m", "max-file": "3" }
            },
            "healthcheck": {
                "test": s.health_cmd,
                "interval": nanos(u64::from(s.health_interval_seconds)),
                "timeout": "3s",
                "retries": 3,
                "start_period": "5s"
            }
        });
        if s.image == site_image {
            service["command"] = json!(["site"]);
        }
        if !s.cap_add.is_empty() {
            service["cap_add"] = json!(s.cap_add);
        }
        services.insert(t.slug.clone(), service);
        networks.insert(
            network,
            json!({
                "driver": "bridge",
                "ipam": { "driver": "default", "config": [{ "subnet": t.subnet.to_string() }] }
            }),
        );
        volumes.insert(volume, json!({ "driver": "local" }));
    }
    json!({
        "version": "2.4",
        "services": services,
        "networks": networks,
        "volumes": volumes,
    })
}
