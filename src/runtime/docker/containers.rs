//! Idempotent changes to one managed container: create, start, stop, restart, remove, rename,
//! new limits, and waiting for its health check. Anything not carrying this namespace's managed
//! labels is refused by name.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerInspectResponse, ContainerUpdateBody, HealthStatusEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use super::DockerBackend;
use super::body::container_body;
use super::observe::from_inspect;
use crate::runtime::engine::engine_message;
use crate::runtime::types::{ContainerSpec, HealthOutcome, LABEL_TENANT};
use crate::runtime::{RuntimeError, is_not_found, status_code};

/// How often `wait_healthy` inspects the container once a health result may come.
const HEALTH_POLL: Duration = Duration::from_millis(250);
/// How often it inspects before the engine can have run the first check (an exit is still
/// seen within this).
const HEALTH_POLL_SLOW: Duration = Duration::from_secs(2);
/// Log lines returned with an exited container.
const EXIT_LOG_LINES: usize = 20;

/// What one inspect says about a container being waited for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HealthStep {
    Done(HealthOutcome),
    Exited { code: Option<i64>, oom_killed: bool },
    Waiting(String),
}

/// Classify one inspect; `restarted` is true when the restart count grew while waiting.
fn health_step(response: &ContainerInspectResponse, restarted: bool) -> HealthStep {
    let state = response.state.clone().unwrap_or_default();
    let status = state.status.map(|s| s.to_string()).unwrap_or_default();
    let oom_killed = state.oom_killed.unwrap_or(false);
    match status.as_str() {
        "exited" | "dead" | "restarting" => {
            return HealthStep::Exited {
                code: state.exit_code,
                oom_killed,
            };
        }
        // Restarted between two polls: the exit code was reset when it ran again.
        "running" if restarted => {
            return HealthStep::Exited {
                code: None,
                oom_killed,
            };
        }
        "running" => {}
        other => return HealthStep::Waiting(other.to_string()),
    }
    let health = state.health.unwrap_or_default();
    match health.status {
        Some(HealthStatusEnum::HEALTHY) => HealthStep::Done(HealthOutcome::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => {
            let last = health.log.unwrap_or_default().pop().unwrap_or_default();
            let output = last.output.unwrap_or_default().trim().to_string();
            let output = if output.is_empty() {
                format!("probe exit code {}", last.exit_code.unwrap_or(-1))
            } else {
                output
            };
            HealthStep::Done(HealthOutcome::Unhealthy(output))
        }
        Some(HealthStatusEnum::STARTING) => HealthStep::Waiting("starting".to_string()),
        // No health check: running is all we can know.
        _ => HealthStep::Done(HealthOutcome::Healthy),
    }
}

/// How long `wait_healthy` waits before it inspects again, `now` being the time of this inspect.
/// Once a check has run, or when the first one is due, [`HEALTH_POLL`]. Before that (the engine
/// runs the first check `StartInterval` after start from API 1.44, else a whole `Interval`:
/// 10 s for the example themes), every [`HEALTH_POLL_SLOW`] at most, waking just before it is due:
/// polling a starting tenant four times a second only made the engine answer inspects (200 tenants
/// applied at once: ~8,000 of them).
fn poll_delay(response: &ContainerInspectResponse, now: std::time::SystemTime) -> Duration {
    let state = response.state.as_ref();
    let checked = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.log.as_ref())
        .is_some_and(|log| !log.is_empty());
    if checked {
        return HEALTH_POLL;
    }
    let check = response
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref());
    let positive = |ns: Option<i64>| {
        ns.filter(|n| *n > 0)
            .map(|n| Duration::from_nanos(u64::try_from(n).unwrap_or(0)))
    };
    let Some(first) = check.and_then(|c| {
        positive(c.start_interval)
            .or_else(|| positive(c.interval))
            // 0 or unset: the engine's default interval.
            .or(Some(Duration::from_secs(30)))
            .filter(|_| c.test.as_ref().is_some_and(|t| !t.is_empty()))
    }) else {
        return HEALTH_POLL;
    };
    let Some(started) = state
        .and_then(|s| s.started_at.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(std::time::SystemTime::from)
    else {
        return HEALTH_POLL;
    };
    match (started + first).duration_since(now) {
        Ok(left) if left > HEALTH_POLL * 2 => (left - HEALTH_POLL).min(HEALTH_POLL_SLOW),
        _ => HEALTH_POLL,
    }
}

impl DockerBackend {
    /// Inspect a container by id or name; None when it does not exist.
    pub(super) async fn inspect_container_opt(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, RuntimeError> {
        match self.docker().inspect_container(id, None).await {
            Ok(response) => Ok(Some(response)),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) => Err(RuntimeError::api(format!("inspect container {id}"), error)),
        }
    }

    /// Inspect one of our containers; NotFound or NotManaged otherwise.
    pub(super) async fn inspect_ours(
        &self,
        id: &str,
    ) -> Result<ContainerInspectResponse, RuntimeError> {
        let response =
            self.inspect_container_opt(id)
                .await?
                .ok_or_else(|| RuntimeError::NotFound {
                    kind: "container",
                    name: id.to_string(),
                })?;
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id, labels)?;
        Ok(response)
    }

    /// Create (not start) container `name` from `spec` (see [`container_body`]) with `labels`
    /// and `extra_env` merged over the spec's env. Returns its id. A taken name is
    /// [`RuntimeError::NameConflict`]; a missing image, network or volume is NotFound (the
    /// volume is checked first: the engine would silently create an unlabeled one).
    pub async fn create_container(
        &self,
        spec: &ContainerSpec,
        labels: &BTreeMap<String, String>,
        extra_env: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<String, RuntimeError> {
        match self.inspect_volume_named(&spec.volume).await? {
            Some(volume) => self.check_ours("volume", &spec.volume, Some(&volume.labels))?,
            None => {
                return Err(RuntimeError::NotFound {
                    kind: "volume",
                    name: spec.volume.clone(),
                });
            }
        }
        let body = container_body(spec, labels, extra_env, &self.body_options());
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match self.docker().create_container(Some(options), body).await {
            Ok(response) => Ok(response.id),
            Err(error) if status_code(&error) == Some(409) => Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: engine_message(&error).unwrap_or_default().to_string(),
            }),
            Err(error) if is_not_found(&error) => {
                let message = engine_message(&error)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let (kind, missing) = if message.contains("image") {
                    ("image", spec.image.clone())
                } else if message.contains("network") {
                    ("network", spec.network.clone())
                } else {
                    return Err(RuntimeError::api(format!("create container {name}"), error));
                };
                Err(RuntimeError::NotFound {
                    kind,
                    name: missing,
                })
            }
            Err(error) => Err(RuntimeError::api(format!("create container {name}"), error)),
        }
    }

    /// Start our container; nothing to do when it already runs (a paused one is unpaused).
    pub async fn start_container(&self, id: &str) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let state = response.state.unwrap_or_default();
        if state.paused == Some(true) {
            return self
                .docker()
                .unpause_container(id)
                .await
                .map_err(|e| RuntimeError::api(format!("unpause container {id}"), e));
        }
        if state.running == Some(true) {
            return Ok(());
        }
        // 304 (already started by a concurrent call) is success in bollard.
        self.docker()
            .start_container(id, None)
            .await
            .map_err(|e| RuntimeError::api(format!("start container {id}"), e))
    }

    /// Stop our container, killing it after `timeout`; fine when it is stopped or absent.
    /// Stopping also ends a restart loop (the policy is `unless-stopped`).
    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let Some(response) = self.inspect_container_opt(id).await? else {
            return Ok(());
        };
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id, labels)?;
        let state = response.state.unwrap_or_default();
        let live = state.running == Some(true) || state.restarting == Some(true);
        if !live {
            return Ok(());
        }
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        match self.docker().stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) if is_not_found(&error) => Ok(()),
            Err(error) => Err(RuntimeError::api(format!("stop container {id}"), error)),
        }
    }

    /// Restart our running container: stop it (killed after `timeout`) and start it again, in
    /// place (same id, same spec). Not a desired-state change: nothing in git or the database
    /// moves. A stopped container is refused, so a suspended tenant is never started this way.
    pub async fn restart_container(&self, id: &str, timeout: Duration) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let state = response.state.unwrap_or_default();
        if state.running != Some(true) {
            let status = state.status.map(|s| s.to_string()).unwrap_or_default();
            return Err(RuntimeError::NotRunning {
                name: response
                    .name
                    .unwrap_or_else(|| id.to_string())
                    .trim_start_matches('/')
                    .to_string(),
                state: status,
            });
        }
        let seconds = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        let options = RestartContainerOptionsBuilder::default().t(seconds).build();
        self.docker()
            .restart_container(id, Some(options))
            .await
            .map_err(|e| RuntimeError::api(format!("restart container {id}"), e))
    }

    /// Remove our container (by id or name); `force` kills a running one first. True when
    /// removed, false when it was not there. Its data volume is never removed with it.
    pub async fn remove_container(
        &self,
        id_or_name: &str,
        force: bool,
    ) -> Result<bool, RuntimeError> {
        let Some(response) = self.inspect_container_opt(id_or_name).await? else {
            return Ok(false);
        };
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", id_or_name, labels)?;
        let id = response.id.unwrap_or_else(|| id_or_name.to_string());
        // v=false: anonymous volumes stay too; named ones never go with a container anyway.
        let options = RemoveContainerOptionsBuilder::default()
            .force(force)
            .v(false)
            .build();
        match self.docker().remove_container(&id, Some(options)).await {
            Ok(()) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(RuntimeError::api(
                format!("remove container {id_or_name}"),
                error,
            )),
        }
    }

    /// Remove our container `name` only when its tenant label is `tenant`; false when absent.
    /// One of another tenant is [`RuntimeError::NameConflict`] and stays.
    pub async fn remove_tenants_container(
        &self,
        name: &str,
        tenant: &str,
    ) -> Result<bool, RuntimeError> {
        let Some(response) = self.inspect_container_opt(name).await? else {
            return Ok(false);
        };
        let labels = response.config.as_ref().and_then(|c| c.labels.as_ref());
        self.check_ours("container", name, labels)?;
        let owner = labels.and_then(|l| l.get(LABEL_TENANT)).map(String::as_str);
        if owner != Some(tenant) {
            return Err(RuntimeError::NameConflict {
                kind: "container",
                name: name.to_string(),
                message: format!(
                    "it belongs to tenant `{}`, not `{tenant}`, so it was left alone",
                    owner.unwrap_or("(none)")
                ),
            });
        }
        let id = response.id.unwrap_or_else(|| name.to_string());
        self.remove_container(&id, true).await
    }

    /// Rename our container; nothing to do when it already has that name. A taken name is
    /// [`RuntimeError::NameConflict`].
    pub async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let current = response.name.unwrap_or_default();
        if current.trim_start_matches('/') == new_name {
            return Ok(());
        }
        let options = RenameContainerOptionsBuilder::default()
            .name(new_name)
            .build();
        match self.docker().rename_container(id, options).await {
            Ok(()) => Ok(()),
            Err(error) if status_code(&error) == Some(409) => Err(RuntimeError::NameConflict {
                kind: "container",
                name: new_name.to_string(),
                message: engine_message(&error).unwrap_or_default().to_string(),
            }),
            Err(error) => Err(RuntimeError::api(
                format!("rename container {id} to {new_name}"),
                error,
            )),
        }
    }

    /// Connect our container to `network` unless it already is attached; true when connected now.
    /// Works on a running or stopped container, without a restart.
    pub async fn attach_network(&self, id: &str, network: &str) -> Result<bool, RuntimeError> {
        let response = self.inspect_ours(id).await?;
        let attached = response
            .network_settings
            .and_then(|n| n.networks)
            .is_some_and(|n| n.contains_key(network));
        if attached {
            return Ok(false);
        }
        let request = bollard::models::NetworkConnectRequest {
            container: id.to_string(),
            ..Default::default()
        };
        self.docker()
            .connect_network(network, request)
            .await
            .map_err(|e| {
                RuntimeError::api(format!("connect container {id} to network {network}"), e)
            })?;
        Ok(true)
    }

    /// `docker update`: new CPU, memory (swap kept equal) and pids limits, without a restart.
    pub async fn update_limits(
        &self,
        id: &str,
        nano_cpus: i64,
        memory_bytes: u64,
        pids: u32,
    ) -> Result<(), RuntimeError> {
        self.inspect_ours(id).await?;
        let memory = i64::try_from(memory_bytes).unwrap_or(i64::MAX);
        let body = ContainerUpdateBody {
            nano_cpus: Some(nano_cpus),
            memory: Some(memory),
            memory_swap: Some(memory),
            pids_limit: Some(i64::from(pids)),
            ..Default::default()
        };
        self.docker()
            .update_container(id, body)
            .await
            .map_err(|e| RuntimeError::api(format!("update limits of container {id}"), e))
    }

    /// Poll our started container until its health check passes, it is declared unhealthy,
    /// it exits (or crashes into a restart), or `timeout` passes.
    pub async fn wait_healthy(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<HealthOutcome, RuntimeError> {
        let deadline = Instant::now() + timeout;
        let mut first_restart_count = None;
        loop {
            let response = self.inspect_ours(id).await?;
            let restarts = response.restart_count.unwrap_or(0);
            let initial = *first_restart_count.get_or_insert(restarts);
            match health_step(&response, restarts > initial) {
                HealthStep::Done(outcome) => return Ok(outcome),
                HealthStep::Exited { code, oom_killed } => {
                    let logs = self.container_logs_tail(id, EXIT_LOG_LINES).await?;
                    return Ok(HealthOutcome::Exited {
                        code,
                        oom_killed,
                        logs,
                    });
                }
                HealthStep::Waiting(status) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(HealthOutcome::TimedOut(status));
                    }
                    let delay = poll_delay(&response, std::time::SystemTime::now());
                    tokio::time::sleep(delay.min(deadline - now)).await;
                }
            }
        }
    }

    /// The host address and port where our container's `container_port/tcp` is published
    /// while it runs; None when it is not (yet) published.
    pub async fn published_port(
        &self,
        id: &str,
        container_port: u16,
    ) -> Result<Option<(String, u16)>, RuntimeError> {
        let response = self.inspect_ours(id).await?;
        Ok(from_inspect(response).and_then(|c| {
            c.published_ports
                .into_iter()
                .find(|p| p.container_port == container_port)
                .map(|p| (p.host_ip, p.host_port))
        }))
    }

    /// The last `n` lines our container wrote (stdout and stderr interleaved as written).
    pub async fn container_logs_tail(
        &self,
        id: &str,
        n: usize,
    ) -> Result<Vec<String>, RuntimeError> {
        self.inspect_ours(id).await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&n.to_string())
            .build();
        let mut stream = self.docker().logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => text.push_str(&String::from_utf8_lossy(&output.into_bytes())),
                Err(error) => {
                    return Err(RuntimeError::api(format!("logs of container {id}"), error));
                }
            }
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(n);
        Ok(lines.into_iter().skip(skip).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerState, ContainerStateStatusEnum, Health, HealthcheckResult};

    fn inspect(
        status: ContainerStateStatusEnum,
        health: Option<HealthStatusEnum>,
    ) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(ContainerState {
                status: Some(status),
                exit_code: Some(3),
                oom_killed: Some(false),
                health: health.map(|status| Health {
                    status: Some(status),
                    failing_streak: Some(3),
                    log: Some(vec![
                        HealthcheckResult {
                            exit_code: Some(1),
                            output: Some("first\n".into()),
                            ..Default::default()
                        },
                        HealthcheckResult {
                            exit_code: Some(1),
                            output: Some("connection refused\n".into()),
                            ..Default::default()
                        },
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_starting_container_is_polled_slowly_until_its_first_check_is_due() {
        use bollard::models::{ContainerConfig, ContainerState, HealthConfig};
        let started = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: f64| started + Duration::from_secs_f64(secs);
        let response = |interval: Option<i64>, start_interval: Option<i64>, checked: bool| {
            ContainerInspectResponse {
                state: Some(ContainerState {
                    started_at: Some(jiff::Timestamp::try_from(started).unwrap().to_string()),
                    health: Some(Health {
                        status: Some(HealthStatusEnum::STARTING),
                        log: Some(if checked {
                            vec![HealthcheckResult::default()]
                        } else {
                            vec![]
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                config: Some(ContainerConfig {
                    healthcheck: Some(HealthConfig {
                        test: Some(vec!["CMD".into(), "true".into()]),
                        interval,
                        start_interval,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
        };
        let ten = Some(10_000_000_000);
        // API 1.41: the first check comes a whole interval after start.
        assert_eq!(
            poll_delay(&response(ten, None, false), at(0.1)),
            HEALTH_POLL_SLOW
        );
        assert_eq!(
            poll_delay(&response(ten, None, false), at(8.5)),
            Duration::from_millis(1250),
            "wakes just before the check is due"
        );
        assert_eq!(
            poll_delay(&response(ten, None, false), at(9.6)),
            HEALTH_POLL
        );
        assert_eq!(
            poll_delay(&response(ten, None, false), at(12.0)),
            HEALTH_POLL
        );
        // A check has run (failing, still starting): poll quickly.
        assert_eq!(poll_delay(&response(ten, None, true), at(0.1)), HEALTH_POLL);
        // API 1.44+: the start interval (1 s) brings the first check early.
        assert_eq!(
            poll_delay(&response(ten, Some(1_000_000_000), false), at(0.1)),
            Duration::from_millis(650)
        );
        // Interval 0 is the engine's 30 s default.
        assert_eq!(
            poll_delay(&response(Some(0), None, false), at(1.0)),
            HEALTH_POLL_SLOW
        );
        // No health check, or no start time: poll as before.
        let mut none = response(ten, None, false);
        none.config = None;
        assert_eq!(poll_delay(&none, at(0.1)), HEALTH_POLL);
        let mut unstarted = response(ten, None, false);
        unstarted.state.as_mut().unwrap().started_at = None;
        assert_eq!(poll_delay(&unstarted, at(0.1)), HEALTH_POLL);
    }

    #[test]
    fn health_steps_follow_the_engine() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::HEALTHY)), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::UNHEALTHY)), false),
            HealthStep::Done(HealthOutcome::Unhealthy("connection refused".into()))
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::STARTING)), false),
            HealthStep::Waiting("starting".into())
        );
        // No health check at all: running is healthy.
        assert_eq!(
            health_step(&inspect(S::RUNNING, None), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::NONE)), false),
            HealthStep::Done(HealthOutcome::Healthy)
        );
        for status in [S::EXITED, S::DEAD, S::RESTARTING] {
            assert_eq!(
                health_step(&inspect(status, Some(H::STARTING)), false),
                HealthStep::Exited {
                    code: Some(3),
                    oom_killed: false
                }
            );
        }
        // Crashed and already running again: the exit code is gone.
        assert_eq!(
            health_step(&inspect(S::RUNNING, Some(H::STARTING)), true),
            HealthStep::Exited {
                code: None,
                oom_killed: false
            }
        );
        assert_eq!(
            health_step(&inspect(S::CREATED, None), false),
            HealthStep::Waiting("created".into())
        );
    }
}
