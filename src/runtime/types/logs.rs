//! Log streams of a tenant's workload: what to ask for and what comes back.

use super::observed::ObservedContainer;

/// How many lines of the past to show first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    All,
    Lines(u64),
}

impl std::str::FromStr for Tail {
    type Err = String;
    fn from_str(s: &str) -> Result<Tail, String> {
        match s.trim() {
            "all" => Ok(Tail::All),
            n => n
                .parse()
                .map(Tail::Lines)
                .map_err(|_| format!("`{s}` is not a number of lines (or `all`)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming new lines until cancelled.
    pub follow: bool,
    pub tail: Tail,
    /// Only lines from this Unix time on.
    pub since: Option<i64>,
    /// Prefix each line with the engine's RFC 3339 timestamp.
    pub timestamps: bool,
}

/// Which of the container's streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogSource {
    Stdout,
    Stderr,
}

/// What a log stream hands its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// Bytes as the container wrote them (usually one whole line, newline included).
    Output {
        source: LogSource,
        bytes: hyper::body::Bytes,
    },
    /// Something about the stream itself, e.g. the container was replaced and is followed anew.
    Note(String),
}

/// Why a log stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// Not following: everything asked for was shown.
    Done,
    /// The consumer asked to stop.
    Cancelled,
    /// Following, the container stopped and did not come back (state as the engine reports it).
    Stopped { state: String },
    /// Following, the container was removed and none replaced it.
    Removed,
}

/// The first 12 characters of an engine id, as the docker CLI shows them.
pub fn short_id(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The container to read: a running one over a stopped one, a different running one (a
/// replacement) over `current`, then the tenant's own name over other names.
pub fn pick_log_container(
    containers: &[ObservedContainer],
    name: &str,
    current: Option<&str>,
) -> Option<ObservedContainer> {
    containers
        .iter()
        .min_by_key(|c| {
            (
                !c.state.is_running(),
                Some(c.id.as_str()) == current,
                c.name != name,
                c.name.clone(),
            )
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::types::ContainerState;

    fn container(id: &str, name: &str, state: ContainerState) -> ObservedContainer {
        ObservedContainer::bare(id, name, "acme", state)
    }

    #[test]
    fn tail_parses_numbers_and_all() {
        assert_eq!("all".parse::<Tail>(), Ok(Tail::All));
        assert_eq!("5".parse::<Tail>(), Ok(Tail::Lines(5)));
        assert!("-1".parse::<Tail>().is_err());
        assert!("many".parse::<Tail>().is_err());
    }

    #[test]
    fn pick_prefers_a_running_replacement() {
        let old = container("a", "ns-acme", ContainerState::Exited);
        let next = container("b", "ns-acme-next", ContainerState::Running);
        let both = [old.clone(), next.clone()];
        assert_eq!(
            pick_log_container(&both, "ns-acme", Some("a")).map(|c| c.id),
            Some("b".into())
        );
        let running_old = container("a", "ns-acme", ContainerState::Running);
        let both = [running_old, next];
        assert_eq!(
            pick_log_container(&both, "ns-acme", None).map(|c| c.id),
            Some("a".into())
        );
        assert_eq!(
            pick_log_container(&both, "ns-acme", Some("a")).map(|c| c.id),
            Some("b".into())
        );
        assert_eq!(
            pick_log_container(&[old], "ns-acme", Some("a")).map(|c| c.id),
            Some("a".into())
        );
        assert_eq!(pick_log_container(&[], "ns-acme", None), None);
    }
}
