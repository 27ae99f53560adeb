//! The reachability probe: what a customer reaches. For each running tenant container (docker
//! backend), one HTTP GET of the tenant's health path through the port the engine publishes for
//! its theme's port, on this host's loopback, every tenant at once, each within a short timeout
//! (`--probe-timeout`, 2 s). A failure is asked again once before it counts, so one lost
//! connection is never drift. Only loopback is ever dialled: a port published on every address
//! (`0.0.0.0`, `::`) is asked on 127.0.0.1 (::1), one published on another address only is not
//! asked at all, and container or private-range addresses never are.
//!
//! Only the commands that plan (plan, apply, status, watch, the dashboard) probe; the result is
//! kept in [`ObservedContainer::probe`], where the planner and status read it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::describe;
use super::types::{
    ObservedContainer, ObservedRuntime, Probe, ProbeResult, PublishedPort, RuntimeKind,
    container_name,
};
use crate::usage::site::loopback_addr;

/// How long one GET may take (connect, request, status line) unless `--probe-timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many tenants are asked at once.
const CONCURRENCY: usize = 32;
/// The pause before a failed GET is asked again.
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// GETs per probe: the first, and one more to confirm a failure.
const ATTEMPTS: u8 = 2;

static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the process's probe timeout (`--probe-timeout`), once, before anything probes.
pub fn set_timeout(timeout: Duration) {
    let _ = TIMEOUT.set(timeout);
}

/// The process's probe timeout: `--probe-timeout`, else [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Duration {
    TIMEOUT.get().copied().unwrap_or(DEFAULT_TIMEOUT)
}

/// Where a tenant's site answers inside its container: its theme's port and health path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    pub port: u16,
    pub path: String,
}

/// Probes every running container of `observed` named `<namespace>-<slug>` whose tenant has a
/// target (docker backend only: a swarm service's tasks are checked by swarm itself), all at
/// once, and keeps each result in the container's `probe`.
pub async fn probe_runtime(
    observed: &mut ObservedRuntime,
    namespace: &str,
    targets: &HashMap<String, ProbeTarget>,
    timeout: Duration,
) {
    if observed.kind != RuntimeKind::Docker {
        return;
    }
    let asked: Vec<(usize, Vec<PublishedPort>, ProbeTarget)> = observed
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state.is_running() && c.service.is_none())
        .filter_map(|(i, c)| {
            let slug = c.tenant.as_deref()?;
            let target = targets.get(slug)?;
            (c.name == container_name(namespace, slug))
                .then(|| (i, c.published_ports.clone(), target.clone()))
        })
        .collect();
    let overflows = neighbour_table_overflows();
    let results: Vec<(usize, Probe)> = stream::iter(asked)
        .map(|(i, ports, target)| async move { (i, probe(&ports, &target, timeout).await) })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    observed.probe_host_fault = neighbour_table_fault(overflows, &results, observed.networks.len());
    for (i, result) in results {
        if let Some(c) = observed.containers.get_mut(i) {
            c.probe = Some(result);
        }
    }
}

/// After a probe pass: when some sites did not answer and the neighbour table overflowed
/// meanwhile (`before` read as the pass began), says so, and returns the host's fault in a few
/// words for [`ObservedRuntime::probe_host_fault`].
fn neighbour_table_fault(
    before: Option<u64>,
    results: &[(usize, Probe)],
    networks: usize,
) -> Option<String> {
    let failed = results.iter().filter(|(_, p)| !p.answers()).count();
    if failed > 0
        && let (Some(before), Some(after)) = (before, neighbour_table_overflows())
        && after > before
    {
        let limit = neighbour_table_limit();
        warn_neighbour_table(failed, results.len(), networks, limit);
        return Some(host_fault(limit));
    }
    None
}

/// The neighbour table's hard limit, where it can be read.
fn neighbour_table_limit() -> Option<u64> {
    std::fs::read_to_string(GC_THRESH3)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// The host's fault as the planner's note names it.
fn host_fault(limit: Option<u64>) -> String {
    let limit = its_limit(limit);
    format!("this host's neighbour (ARP) table overflowed while the sites were probed{limit}")
}

/// ` (its limit here: N)`, or nothing when the limit could not be read.
fn its_limit(limit: Option<u64>) -> String {
    limit.map_or(String::new(), |n| format!(" (its limit here: {n})"))
}

/// The planner's note when failed probes were the host's fault: no container is replaced for
/// them, and what to do instead.
pub fn host_fault_note(failed: usize, fault: &str) -> String {
    format!(
        "{failed} site(s) did not answer, and {fault}: no container is replaced for that, since a new one \
         cannot fix the host; raise the limit, e.g. {SYSCTL_FIX}, and the next probe decides"
    )
}

/// The sysctl that raises the neighbour table's limits.
const SYSCTL_FIX: &str = "sysctl -w net.ipv4.neigh.default.gc_thresh1=1024 \
     net.ipv4.neigh.default.gc_thresh2=4096 net.ipv4.neigh.default.gc_thresh3=8192 (and in \
     /etc/sysctl.d to keep it)";

/// Where the kernel counts its IPv4 neighbour (ARP) table's overflows, per CPU.
const ARP_CACHE_STATS: &str = "/proc/net/stat/arp_cache";
/// The neighbour table's hard limit.
const GC_THRESH3: &str = "/proc/sys/net/ipv4/neigh/default/gc_thresh3";

/// How often the kernel's IPv4 neighbour table has been full since boot (`table_fulls`, summed
/// over CPUs), where it can be read. Each published port is forwarded to a container on its own
/// bridge network, which takes an entry of this table: past its hard limit (`gc_thresh3`, 1024 by
/// default) the kernel drops connections to containers at random, and sites stop answering.
fn neighbour_table_overflows() -> Option<u64> {
    table_fulls(&std::fs::read_to_string(ARP_CACHE_STATS).ok()?)
}

/// `table_fulls` of `/proc/net/stat/arp_cache`'s text: a header line of column names, then one
/// line of hexadecimal counters per CPU.
fn table_fulls(stats: &str) -> Option<u64> {
    let mut lines = stats.lines();
    let column = lines
        .next()?
        .split_whitespace()
        .position(|c| c == "table_fulls")?;
    lines
        .map(|l| {
            let field = l.split_whitespace().nth(column)?;
            u64::from_str_radix(field, 16).ok()
        })
        .sum()
}

/// Says (at most once a minute) that failed probes came with the neighbour table overflowing.
fn warn_neighbour_table(failed: usize, asked: usize, networks: usize, limit: Option<u64>) {
    static LAST: std::sync::Mutex<Option<Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(
        "{}",
        neighbour_table_message(failed, asked, networks, limit)
    );
}

fn neighbour_table_message(
    failed: usize,
    asked: usize,
    networks: usize,
    limit: Option<u64>,
) -> String {
    let limit = its_limit(limit);
    format!(
        "{failed} of {asked} sites did not answer while this host's neighbour (ARP) table overflowed{limit}: \
         each tenant's network ({networks} in this namespace) needs entries in it, and past the limit the kernel \
         drops connections to containers at random (`neighbor table overflow` in dmesg); raise it, e.g. \
         {SYSCTL_FIX}"
    )
}

/// Probes, through the namespace's edge listening on `edge` (loopback), each running tenant
/// container of `observed` whose tenant has a host in `hosts` (slug → host and health path):
/// what a customer reaches at the tenant's domain. A failure is asked again once. The result
/// lands in the container's `edge_probe`.
pub async fn probe_via_edge(
    observed: &mut ObservedRuntime,
    namespace: &str,
    edge: SocketAddr,
    hosts: &HashMap<String, (String, String)>,
    timeout: Duration,
) {
    if observed.kind != RuntimeKind::Docker || !edge.ip().is_loopback() {
        return;
    }
    let asked: Vec<(usize, String, String)> = observed
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.state.is_running())
        .filter_map(|(i, c)| {
            let slug = c.tenant.as_deref()?;
            let (host, path) = hosts.get(slug)?;
            (c.name == container_name(namespace, slug)).then(|| (i, host.clone(), path.clone()))
        })
        .collect();
    let overflows = neighbour_table_overflows();
    let results: Vec<(usize, Probe)> = stream::iter(asked)
        .map(|(i, host, path)| async move {
            let url = format!("http://{host}{path} via {edge}");
            let mut attempts = 0;
            loop {
                attempts += 1;
                let (result, latency_ms) = get(edge, &path, Some(&host), timeout).await;
                let probe = Probe {
                    url: Some(url.clone()),
                    result,
                    latency_ms,
                    attempts,
                };
                if probe.answers() || attempts >= ATTEMPTS {
                    return (i, probe);
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    // It warns; the fault the planner reads is the direct probe's.
    neighbour_table_fault(overflows, &results, observed.networks.len());
    for (i, result) in results {
        if let Some(c) = observed.containers.get_mut(i) {
            c.edge_probe = Some(result);
        }
    }
}

/// Probes one container by its published ports.
pub async fn probe_container(
    container: &ObservedContainer,
    target: &ProbeTarget,
    timeout: Duration,
) -> Probe {
    probe(&container.published_ports, target, timeout).await
}

async fn probe(ports: &[PublishedPort], target: &ProbeTarget, timeout: Duration) -> Probe {
    let not_asked = |result| Probe {
        url: None,
        result,
        latency_ms: None,
        attempts: 0,
    };
    // Port 0 is configured for the engine to pick, not bound.
    let Some(port) = ports
        .iter()
        .find(|p| p.container_port == target.port && p.host_port != 0)
    else {
        return not_asked(ProbeResult::NoPublishedPort { port: target.port });
    };
    let Some(addr) = loopback_addr(port) else {
        return not_asked(ProbeResult::NotLoopback {
            address: port.host_ip.clone(),
        });
    };
    let url = format!("http://{addr}{}", target.path);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let (result, latency_ms) = get(addr, &target.path, None, timeout).await;
        let probe = Probe {
            url: Some(url.clone()),
            result,
            latency_ms,
            attempts,
        };
        if probe.answers() || attempts >= ATTEMPTS {
            return probe;
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

/// One GET of `path` from `addr` within `timeout`: the result and, for an answer, its latency.
async fn get(
    addr: SocketAddr,
    path: &str,
    host: Option<&str>,
    timeout: Duration,
) -> (ProbeResult, Option<u64>) {
    let started = Instant::now();
    match tokio::time::timeout(timeout, ask(addr, path, host)).await {
        Err(_) => (
            ProbeResult::TimedOut {
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            },
            None,
        ),
        Ok(Ok(status)) => (
            ProbeResult::Answered { status },
            Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        ),
        Ok(Err(result)) => (result, None),
    }
}

/// Connect, send the GET (HTTP/1.1, `Connection: close`) and read the status line.
async fn ask(addr: SocketAddr, path: &str, host: Option<&str>) -> Result<u16, ProbeResult> {
    let failed = |error: String| ProbeResult::Failed { error };
    let stream = TcpStream::connect(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            ProbeResult::Refused
        } else if closed(&e) {
            failed(CLOSED.into())
        } else {
            failed(format!("cannot connect: {e}"))
        }
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| match closed(&e) {
            true => failed(CLOSED.into()),
            false => failed(describe(&e)),
        })?;
    let request = hyper::Request::get(path)
        .header(
            hyper::header::HOST,
            host.map_or_else(|| addr.to_string(), str::to_string),
        )
        .header(hyper::header::USER_AGENT, "tenantctl-probe")
        .header(hyper::header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| failed(format!("cannot build the request: {e}")))?;
    let mut conn = std::pin::pin!(conn);
    let mut send = std::pin::pin!(sender.send_request(request));
    // The connection must be driven for the answer to arrive; once it ends, the answer (or why
    // there is none) is already with the request.
    let response = tokio::select! {
        biased;
        response = &mut send => response,
        _ = &mut conn => send.await,
    };
    match response {
        Ok(response) => Ok(response.status().as_u16()),
        Err(e) if e.is_incomplete_message() || e.is_canceled() || closed(&e) => {
            Err(failed(CLOSED.into()))
        }
        Err(e) => Err(failed(describe(&e))),
    }
}

/// What a closed or reset connection says, the same whichever way it ended, so two plans of
/// one state read the same.
const CLOSED: &str =
    "the connection closed without an answer (nothing serves behind the published port)";

/// The connection was reset or closed under the request (what Docker's proxy does when nothing
/// listens behind the published port).
fn closed(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            )
        {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn published(port: u16, host_ip: &str) -> Vec<PublishedPort> {
        vec![PublishedPort {
            container_port: 8080,
            host_ip: host_ip.into(),
            host_port: port,
        }]
    }

    /// As this host's kernel wrote it with 1,000 tenant networks and the default limit (two
    /// CPUs; the last column is `table_fulls`).
    const ARP_CACHE: &str = "\
entries  allocs   destroys hash_grows lookups  hits     res_failed rcv_probes_mcast rcv_probes_ucast periodic_gc_runs forced_gc_runs unresolved_discards table_fulls
000004c3 000022bd 000028d5 00000003   00004b44 000022e2 000000c7   00000000         00000000         00000096         0000356a       00000000            000033b4
000004c3 000019fd 00000f22 00000005   000036ad 000018e9 0000008e   00000000         00000000         00000000         0000274d       00000000            000025e4
";

    #[test]
    fn neighbour_table_overflows_are_summed_over_cpus() {
        assert_eq!(table_fulls(ARP_CACHE), Some(0x33b4 + 0x25e4));
        assert_eq!(table_fulls("entries allocs\n00000001 00000002\n"), None);
        assert_eq!(table_fulls(""), None);
        // Whatever the kernel has on this machine reads as a count.
        if std::path::Path::new(ARP_CACHE_STATS).exists() {
            assert!(neighbour_table_overflows().is_some());
        }
    }

    #[test]
    fn the_overflow_warning_says_the_limit_and_the_fix() {
        let m = neighbour_table_message(243, 1000, 1000, Some(1024));
        assert!(
            m.starts_with("243 of 1000 sites did not answer while this host's neighbour (ARP) table overflowed (its limit here: 1024)"),
            "{m}"
        );
        assert!(m.contains("1000 in this namespace"), "{m}");
        assert!(m.contains("net.ipv4.neigh.default.gc_thresh3=8192"), "{m}");
        assert!(!neighbour_table_message(1, 2, 2, None).contains("its limit"));
    }

    fn target() -> ProbeTarget {
        ProbeTarget {
            port: 8080,
            path: "/health".into(),
        }
    }

    /// A loopback listener that treats each connection with `answer` (None: close at once).
    async fn server(answer: Option<&'static str>, hold: bool) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = socket.read(&mut buf).await;
                    if hold {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    if let Some(answer) = answer {
                        let _ = socket.write_all(answer.as_bytes()).await;
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn an_answer_is_kept_with_its_status_and_latency() {
        let port = server(
            Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"),
            false,
        )
        .await;
        let p = probe(&published(port, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(p.result, ProbeResult::Answered { status: 200 });
        assert_eq!(p.url, Some(format!("http://127.0.0.1:{port}/health")));
        assert!(p.latency_ms.is_some_and(|ms| ms < 2000), "{p:?}");
        assert_eq!(p.attempts, 1);
        // Published on every address: asked on loopback.
        let p = probe(&published(port, "0.0.0.0"), &target(), DEFAULT_TIMEOUT).await;
        assert!(p.answers(), "{p:?}");
    }

    #[tokio::test]
    async fn a_failure_is_asked_twice_and_says_why() {
        let port = server(
            Some("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"),
            false,
        )
        .await;
        let p = probe(&published(port, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(p.result, ProbeResult::Answered { status: 503 });
        assert_eq!(p.attempts, 2);
        assert_eq!(p.failure().as_deref(), Some("answered 503"));

        let closed = server(None, false).await;
        let p = probe(&published(closed, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert!(
            matches!(&p.result, ProbeResult::Failed { error } if error.contains("closed without an answer")),
            "{p:?}"
        );

        // Reset instead of closed (how Docker's proxy often ends it): the same words.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let reset = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                #[allow(deprecated)]
                let _ = socket.set_linger(Some(Duration::ZERO));
                drop(socket);
            }
        });
        let q = probe(&published(reset, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(q.result, p.result, "{q:?}");

        let silent = server(None, true).await;
        let started = Instant::now();
        let p = probe(
            &published(silent, "127.0.0.1"),
            &target(),
            Duration::from_millis(150),
        )
        .await;
        assert_eq!(p.result, ProbeResult::TimedOut { timeout_ms: 150 });
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(p.to_string(), "no answer: no answer within 150ms");
    }

    #[tokio::test]
    async fn nothing_listening_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let p = probe(&published(port, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(p.result, ProbeResult::Refused, "{p:?}");
        assert_eq!(p.to_string(), "no answer: connection refused");
    }

    #[tokio::test]
    async fn only_loopback_is_dialled_and_an_unpublished_port_is_said() {
        let p = probe(&published(4000, "10.0.0.5"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(
            p.result,
            ProbeResult::NotLoopback {
                address: "10.0.0.5".into()
            }
        );
        assert_eq!((p.url, p.attempts), (None, 0));
        let p = probe(&published(4000, "192.168.1.2"), &target(), DEFAULT_TIMEOUT).await;
        assert!(matches!(p.result, ProbeResult::NotLoopback { .. }));
        // Another port published, or the engine still to pick one: the theme's is not.
        let mut other = published(4000, "127.0.0.1");
        other[0].container_port = 9090;
        let p = probe(&other, &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(p.result, ProbeResult::NoPublishedPort { port: 8080 });
        let p = probe(&published(0, "127.0.0.1"), &target(), DEFAULT_TIMEOUT).await;
        assert_eq!(p.to_string(), "port 8080 not published");
    }

    #[tokio::test]
    async fn only_running_primary_containers_of_targeted_tenants_are_probed() {
        use crate::runtime::types::ContainerState;
        let port = server(Some("HTTP/1.1 204 No Content\r\n\r\n"), false).await;
        let c = |id: &str, name: &str, tenant: &str, state| {
            let mut c = ObservedContainer::bare(id, name, tenant, state);
            c.published_ports = published(port, "127.0.0.1");
            c
        };
        let mut observed = ObservedRuntime {
            containers: vec![
                c("1", "ns-a", "a", ContainerState::Running),
                c("2", "ns-a_next", "a", ContainerState::Running),
                c("3", "ns-b", "b", ContainerState::Exited),
                c("4", "ns-c", "c", ContainerState::Running),
            ],
            ..Default::default()
        };
        let targets: HashMap<String, ProbeTarget> = ["a", "b"]
            .iter()
            .map(|s| (s.to_string(), target()))
            .collect();
        probe_runtime(&mut observed, "ns", &targets, DEFAULT_TIMEOUT).await;
        let probed: Vec<bool> = observed
            .containers
            .iter()
            .map(|c| c.probe.is_some())
            .collect();
        assert_eq!(probed, [true, false, false, false]);
        assert!(
            observed.containers[0]
                .probe
                .as_ref()
                .is_some_and(Probe::answers)
        );
        // A swarm's services are never probed.
        let mut swarm = observed.clone();
        swarm.kind = RuntimeKind::Swarm;
        swarm.containers[0].probe = None;
        probe_runtime(&mut swarm, "ns", &targets, DEFAULT_TIMEOUT).await;
        assert!(swarm.containers[0].probe.is_none());
    }
}
