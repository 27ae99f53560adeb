//! A tenant's container logs, streamed from the engine (stdout and stderr, in order).

use std::ops::ControlFlow;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;

use super::types::{
    ContainerState, LogEnd, LogEvent, LogOptions, LogSource, ObservedContainer, Tail,
    container_name, pick_log_container, short_id,
};
use super::{Runtime, RuntimeError, is_not_found};

/// How long a following stream waits for a restarting container to run again.
const RESTART_WAIT: Duration = Duration::from_secs(30);

impl Runtime {
    /// The container to read a tenant's logs from: its own name first, else any it owns
    /// (a `-next` of an interrupted replace), running ones before stopped ones.
    pub async fn log_container(
        &self,
        slug: &str,
    ) -> Result<Option<ObservedContainer>, RuntimeError> {
        let seen = self.observe_tenant(slug).await?;
        Ok(pick_log_container(
            &seen.containers,
            &container_name(self.namespace(), slug),
            None,
        ))
    }

    /// Streams the logs of `container` (a container of `slug`) into `on`, until done, the
    /// consumer breaks, or — when following — the container stops for good or is removed.
    /// When following and the tenant's container is replaced (apply's blue/green), the new
    /// container is followed from its first line, with a [`LogEvent::Note`] saying so.
    pub async fn stream_logs<F>(
        &self,
        slug: &str,
        container: &ObservedContainer,
        options: LogOptions,
        mut on: F,
    ) -> Result<LogEnd, RuntimeError>
    where
        F: FnMut(LogEvent) -> ControlFlow<()>,
    {
        let name = container_name(self.namespace(), slug);
        let mut current = container.clone();
        let mut options = options;
        loop {
            // A swarm service's logs are its tasks' logs, on whichever node they run.
            let mut stream = if current.service.is_some() {
                self.docker
                    .service_logs(&current.id, Some(query(&options)))
                    .boxed()
            } else {
                self.docker.logs(&current.id, Some(query(&options))).boxed()
            };
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(LogOutput::StdErr { message }) => LogEvent::Output {
                        source: LogSource::Stderr,
                        bytes: message,
                    },
                    Ok(
                        LogOutput::StdOut { message }
                        | LogOutput::Console { message }
                        | LogOutput::StdIn { message },
                    ) => LogEvent::Output {
                        source: LogSource::Stdout,
                        bytes: message,
                    },
                    // Removed under us: decided below, like any other end of a follow.
                    Err(e) if is_not_found(&e) => break,
                    Err(e) => {
                        return Err(RuntimeError::api(
                            format!("read logs of {}", current.name),
                            e,
                        ));
                    }
                };
                if on(event).is_break() {
                    return Ok(LogEnd::Cancelled);
                }
            }
            if !options.follow {
                return Ok(LogEnd::Done);
            }
            // A follow ends when the container stops: find out whether it comes back or was replaced.
            let ended_at = crate::store::now_unix();
            let deadline = tokio::time::Instant::now() + RESTART_WAIT;
            let next = loop {
                let seen = self.observe_tenant(slug).await?;
                match pick_log_container(&seen.containers, &name, Some(&current.id)) {
                    Some(c) if c.id != current.id && c.state.is_running() => break Some(c),
                    Some(c) if c.id == current.id && c.state.is_running() => break Some(c),
                    Some(c)
                        if c.id == current.id
                            && matches!(c.state, ContainerState::Restarting)
                            && tokio::time::Instant::now() < deadline =>
                    {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Some(c) if c.id == current.id => {
                        return Ok(LogEnd::Stopped {
                            state: c.state.to_string(),
                        });
                    }
                    Some(c) => break Some(c),
                    None => break None,
                }
            };
            let Some(next) = next else {
                return Ok(LogEnd::Removed);
            };
            if next.id == current.id {
                // Restarted: carry on from where the stream ended (lines of that second may repeat).
                options.since = Some(ended_at);
                options.tail = Tail::All;
            } else {
                let note = format!(
                    "container {} ({}) was replaced by {} ({}); following the new one",
                    current.name,
                    short_id(&current.id),
                    next.name,
                    short_id(&next.id)
                );
                if on(LogEvent::Note(note)).is_break() {
                    return Ok(LogEnd::Cancelled);
                }
                options.since = None;
                options.tail = Tail::All;
            }
            current = next;
        }
    }
}

fn query(options: &LogOptions) -> bollard::query_parameters::LogsOptions {
    let tail = match options.tail {
        Tail::All => "all".to_string(),
        Tail::Lines(n) => n.to_string(),
    };
    // The API takes a 32-bit Unix time; 0 means "from the start".
    let since = options
        .since
        .map(|s| i32::try_from(s.max(0)).unwrap_or(i32::MAX))
        .unwrap_or(0);
    LogsOptionsBuilder::default()
        .follow(options.follow)
        .stdout(true)
        .stderr(true)
        .timestamps(options.timestamps)
        .tail(&tail)
        .since(since)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_maps_every_option() {
        let q = query(&LogOptions {
            follow: true,
            tail: Tail::Lines(5),
            since: Some(1_700_000_000),
            timestamps: true,
        });
        assert!(q.follow && q.stdout && q.stderr && q.timestamps);
        assert_eq!((q.tail.as_str(), q.since), ("5", 1_700_000_000));
        let q = query(&LogOptions {
            follow: false,
            tail: Tail::All,
            since: None,
            timestamps: false,
        });
        assert_eq!((q.tail.as_str(), q.since, q.follow), ("all", 0, false));
    }
}
