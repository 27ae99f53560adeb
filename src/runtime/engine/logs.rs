//! A container's or a service's log stream from the engine (stdout and stderr, in order).

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, future};

use crate::runtime::types::{LogEvent, LogOptions, LogSource, Tail};
use crate::runtime::{RuntimeError, is_not_found};

/// Where a log stream reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogOrigin {
    Container,
    /// A swarm service: its tasks' logs, on whichever node they run.
    Service,
}

/// The log lines of `id` (named `name` in errors) as events. A 404 (removed under us) ends the
/// stream like any other end, so a follower decides what comes next.
pub(crate) fn log_stream<'a>(
    docker: &'a Docker,
    origin: LogOrigin,
    id: &str,
    name: &str,
    options: &LogOptions,
) -> BoxStream<'a, Result<LogEvent, RuntimeError>> {
    let raw = match origin {
        LogOrigin::Service => docker.service_logs(id, Some(query(options))).boxed(),
        LogOrigin::Container => docker.logs(id, Some(query(options))).boxed(),
    };
    let name = name.to_string();
    raw.take_while(|item| future::ready(!matches!(item, Err(e) if is_not_found(e))))
        .map(move |item| match item {
            Ok(LogOutput::StdErr { message }) => Ok(LogEvent::Output {
                source: LogSource::Stderr,
                bytes: message,
            }),
            Ok(
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message },
            ) => Ok(LogEvent::Output {
                source: LogSource::Stdout,
                bytes: message,
            }),
            Err(e) => Err(RuntimeError::api(format!("read logs of {name}"), e)),
        })
        .boxed()
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
