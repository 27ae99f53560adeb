//! What a customer reaches: the result of one GET of a tenant's health path through the port
//! its container publishes on this host's loopback (see `runtime::probe`, which asks).

use std::fmt;

use serde::Serialize;

/// One probe of a running tenant container, as kept in the observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The URL asked (always on loopback); None when nothing could be asked.
    pub url: Option<String>,
    #[serde(flatten)]
    pub result: ProbeResult,
    /// Milliseconds from the connect to the answer's status line (of the last attempt); None
    /// without an answer.
    pub latency_ms: Option<u64>,
    /// How many GETs were made: a failure is asked again once before it counts.
    pub attempts: u8,
}

/// How a probe ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProbeResult {
    /// An HTTP answer (2xx is success; anything else is a failure with its code).
    Answered { status: u16 },
    /// Nothing listens on the published port (connection refused).
    Refused,
    /// No answer within the probe timeout.
    TimedOut { timeout_ms: u64 },
    /// The connection failed otherwise (closed without an answer, reset, not HTTP).
    Failed { error: String },
    /// The engine publishes no host port for the theme's port.
    NoPublishedPort { port: u16 },
    /// Published on a non-loopback address only: not probed (only loopback is ever dialled).
    NotLoopback { address: String },
}

impl Probe {
    /// The site answered its health path with a 2xx.
    pub fn answers(&self) -> bool {
        matches!(self.result, ProbeResult::Answered { status } if (200..300).contains(&status))
    }

    /// Why a customer would get nothing: `Some` for a failed probe (a non-2xx answer, refused,
    /// timed out, failed); `None` when it answers or could not be asked (no published port, not
    /// on loopback: those are said otherwise).
    pub fn failure(&self) -> Option<String> {
        match &self.result {
            ProbeResult::Answered { status } if (200..300).contains(status) => None,
            ProbeResult::Answered { status } => Some(format!("answered {status}")),
            ProbeResult::Refused => Some("connection refused".into()),
            ProbeResult::TimedOut { timeout_ms } => {
                Some(format!("no answer within {}", millis(*timeout_ms)))
            }
            ProbeResult::Failed { error } => Some(error.clone()),
            ProbeResult::NoPublishedPort { .. } | ProbeResult::NotLoopback { .. } => None,
        }
    }

    /// A customer gets nothing: a failure, or no published port (not: not probed).
    pub fn fails(&self) -> bool {
        self.failure().is_some() || matches!(self.result, ProbeResult::NoPublishedPort { .. })
    }

    /// A few characters for a table cell: `200 3ms`, `refused`, `timeout`, `no port`.
    pub fn short(&self) -> String {
        match (&self.result, self.latency_ms) {
            (ProbeResult::Answered { status }, Some(ms)) => format!("{status} {ms}ms"),
            (ProbeResult::Answered { status }, None) => status.to_string(),
            (ProbeResult::Refused, _) => "refused".into(),
            (ProbeResult::TimedOut { .. }, _) => "timeout".into(),
            (ProbeResult::Failed { .. }, _) => "failed".into(),
            (ProbeResult::NoPublishedPort { .. }, _) => "no port".into(),
            (ProbeResult::NotLoopback { .. }, _) => "not probed".into(),
        }
    }
}

/// `250ms`, `2s`, `1.5s`.
fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

impl fmt::Display for Probe {
    /// `answers 200 in 3 ms`, `no answer: connection refused`, `port 8080 not published`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            ProbeResult::Answered { status } if (200..300).contains(status) => {
                match self.latency_ms {
                    Some(ms) => write!(f, "answers {status} in {ms} ms"),
                    None => write!(f, "answers {status}"),
                }
            }
            ProbeResult::NoPublishedPort { port } => write!(f, "port {port} not published"),
            ProbeResult::NotLoopback { address } => {
                write!(
                    f,
                    "not probed: published on {address} only, not on loopback"
                )
            }
            _ => write!(
                f,
                "no answer: {}",
                self.failure().unwrap_or_else(|| "unknown".into())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(result: ProbeResult, latency_ms: Option<u64>) -> Probe {
        Probe {
            url: Some("http://127.0.0.1:4000/health".into()),
            result,
            latency_ms,
            attempts: 1,
        }
    }

    #[test]
    fn a_probe_reads_as_what_a_customer_gets() {
        let ok = probe(ProbeResult::Answered { status: 200 }, Some(3));
        assert!(ok.answers() && ok.failure().is_none());
        assert_eq!(ok.to_string(), "answers 200 in 3 ms");
        assert_eq!(ok.short(), "200 3ms");
        let down = probe(ProbeResult::Answered { status: 503 }, Some(4));
        assert!(!down.answers());
        assert_eq!(down.to_string(), "no answer: answered 503");
        let refused = probe(ProbeResult::Refused, None);
        assert_eq!(refused.to_string(), "no answer: connection refused");
        assert_eq!(refused.short(), "refused");
        let slow = probe(ProbeResult::TimedOut { timeout_ms: 2000 }, None);
        assert_eq!(slow.to_string(), "no answer: no answer within 2s");
        let unpublished = probe(ProbeResult::NoPublishedPort { port: 8080 }, None);
        assert!(unpublished.failure().is_none() && !unpublished.answers());
        assert_eq!(unpublished.to_string(), "port 8080 not published");
        assert_eq!(millis(250), "250ms");
        assert_eq!(millis(1500), "1.5s");
    }

    #[test]
    fn json_names_the_result_beside_its_fields() {
        let v = serde_json::to_value(probe(ProbeResult::Answered { status: 200 }, Some(3)))
            .unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({
                "url": "http://127.0.0.1:4000/health",
                "result": "answered",
                "status": 200,
                "latency_ms": 3,
                "attempts": 1
            })
        );
        let v = serde_json::to_value(probe(ProbeResult::Refused, None)).unwrap_or_default();
        assert_eq!(v["result"], "refused");
        assert!(v["latency_ms"].is_null());
    }
}
