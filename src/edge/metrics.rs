//! The edge's Prometheus series (`GET /metrics` on the admin address), per host and tenant.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The routed host; empty for requests to no known host (so strangers' Host headers cannot
    /// grow the series without bound).
    pub host: String,
    pub tenant: String,
    /// `2xx`, `3xx`, `4xx`, `5xx` (or `1xx`, and `none` when no answer was sent).
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
    pub tenant: String,
}

#[derive(Clone)]
pub struct LatencyBuckets;

impl MetricConstructor<Histogram> for LatencyBuckets {
    fn new_metric(&self) -> Histogram {
        // 0.25 ms to about 8 s.
        Histogram::new(exponential_buckets(0.00025, 2.0, 16))
    }
}

pub struct Metrics {
    registry: Registry,
    /// The series of requests to no known host.
    unknown_host: OnceLock<Arc<HostSeries>>,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<HostLabels, Histogram, LatencyBuckets>,
    pub upstream_errors: Family<HostLabels, Counter>,
    pub log_lines_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tenantctl_edge");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by host, tenant and status code class",
            requests.clone(),
        );
        let duration = Family::new_with_constructor(LatencyBuckets);
        registry.register_with_unit(
            "request_duration",
            "Time from the request to the end of the answer, by host and tenant",
            Unit::Seconds,
            duration.clone(),
        );
        let upstream_errors = Family::<HostLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Requests the tenant's site could not be reached for or failed to answer",
            upstream_errors.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "access_log_dropped",
            "Access log lines dropped because stdout could not keep up",
            log_lines_dropped.clone(),
        );
        Metrics {
            registry,
            unknown_host: OnceLock::new(),
            requests,
            duration,
            upstream_errors,
            log_lines_dropped,
        }
    }
}

/// One host's series, resolved from the families once. Each status class and the upstream
/// errors are created on first use, so a host that never failed has no error series.
#[derive(Debug)]
pub struct HostSeries {
    labels: HostLabels,
    /// By status class, in `CLASSES` order.
    requests: [OnceLock<Counter>; CLASSES.len()],
    duration: Histogram,
    upstream_errors: OnceLock<Counter>,
}

const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

impl HostSeries {
    /// Counts one answered request.
    pub fn record(&self, metrics: &Metrics, status: u16, elapsed: Duration, upstream_failed: bool) {
        let class = class(status);
        let i = CLASSES
            .iter()
            .position(|c| *c == class)
            .unwrap_or(CLASSES.len() - 1);
        self.requests[i]
            .get_or_init(|| {
                metrics
                    .requests
                    .get_or_create(&RequestLabels {
                        host: self.labels.host.clone(),
                        tenant: self.labels.tenant.clone(),
                        code: class.to_string(),
                    })
                    .clone()
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
        if upstream_failed {
            self.upstream_errors
                .get_or_init(|| metrics.upstream_errors.get_or_create(&self.labels).clone())
                .inc();
        }
    }
}

impl Metrics {
    /// The series of `host` (routed to `tenant`); empty strings for requests to no known host
    /// (one shared series, so strangers' Host headers cannot grow the series).
    pub fn host_series(&self, host: &str, tenant: &str) -> Arc<HostSeries> {
        if host.is_empty() {
            return self
                .unknown_host
                .get_or_init(|| Arc::new(self.new_series("", "")))
                .clone();
        }
        Arc::new(self.new_series(host, tenant))
    }

    fn new_series(&self, host: &str, tenant: &str) -> HostSeries {
        let labels = HostLabels {
            host: host.to_string(),
            tenant: tenant.to_string(),
        };
        HostSeries {
            duration: self.duration.get_or_create(&labels).clone(),
            labels,
            requests: Default::default(),
            upstream_errors: OnceLock::new(),
        }
    }

    /// The OpenMetrics text exposition (what Prometheus asks for first).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format (0.0.4), for clients that do not ask for OpenMetrics
    /// (curl, `promtool check metrics`).
    pub fn encode_classic(&self) -> String {
        to_classic(&self.encode())
    }
}

/// OpenMetrics text to the classic format: a counter's HELP and TYPE name its `_total` series,
/// and the OpenMetrics-only `# UNIT` and `# EOF` lines go.
pub fn to_classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{prefix}{name}_total {tail}\n"));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// `2xx` for 204 and so on; `none` for 0 (the client went away before an answer).
pub fn class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}
