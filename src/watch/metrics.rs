//! Prometheus metrics of the watch loop, served as text on `--metrics-addr` ([`super::endpoints`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the reconcile-duration histogram.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

pub struct Metrics {
    passes: AtomicU64,
    pass_errors: AtomicU64,
    /// Passes started by the engine's events (a subset of `passes`).
    event_passes: AtomicU64,
    /// Times the engine's event stream was followed again after it was lost.
    event_reconnects: AtomicU64,
    /// Passes started by a verified push webhook (a subset of `passes`).
    hook_passes: AtomicU64,
    /// Webhooks refused for a missing or wrong signature or token.
    hooks_refused: AtomicU64,
    changes_applied: AtomicU64,
    tenant_failures: AtomicU64,
    durations: Mutex<prometheus_client::metrics::histogram::Histogram>,
    /// Gauges replaced whole each pass: tenants by sync state and by health.
    tenants: Mutex<TenantGauges>,
    last_success: AtomicU64,
    /// When the last pass ended (unix seconds; 0: none yet) and whether it succeeded.
    last_pass: AtomicU64,
    last_pass_ok: std::sync::atomic::AtomicBool,
    /// The leader term this loop holds; 0 while it stands by.
    leader_term: std::sync::atomic::AtomicI64,
    /// Log lines copied into the database (the log history).
    log_lines: AtomicU64,
    /// Passes that listed everything the namespace has (the observed-state cache filled).
    full_listings: AtomicU64,
    row_reads: AtomicU64,
    /// Tenants read again alone because the engine's events named them (the cache kept current).
    tenant_rereads: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            passes: AtomicU64::default(),
            pass_errors: AtomicU64::default(),
            event_passes: AtomicU64::default(),
            event_reconnects: AtomicU64::default(),
            hook_passes: AtomicU64::default(),
            hooks_refused: AtomicU64::default(),
            changes_applied: AtomicU64::default(),
            tenant_failures: AtomicU64::default(),
            durations: Mutex::new(prometheus_client::metrics::histogram::Histogram::new(
                BUCKETS,
            )),
            tenants: Mutex::default(),
            last_success: AtomicU64::default(),
            last_pass: AtomicU64::default(),
            last_pass_ok: std::sync::atomic::AtomicBool::default(),
            leader_term: std::sync::atomic::AtomicI64::default(),
            log_lines: AtomicU64::default(),
            full_listings: AtomicU64::default(),
            row_reads: AtomicU64::default(),
            tenant_rereads: AtomicU64::default(),
        }
    }
}

#[derive(Default, Clone)]
pub struct TenantGauges {
    pub by_sync: BTreeMap<String, u64>,
    pub by_health: BTreeMap<String, u64>,
    /// Per tenant: (metric name, value) pairs from the meter, e.g. memory bytes.
    pub usage: BTreeMap<String, Vec<(String, f64)>>,
}

impl Metrics {
    pub fn add_log_lines(&self, n: u64) {
        self.log_lines.fetch_add(n, Ordering::Relaxed);
    }

    pub fn pass(&self, seconds: f64, ok: bool) {
        self.passes.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.pass_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.durations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(seconds);
        self.last_pass_ok.store(ok, Ordering::Relaxed);
        self.last_pass
            .store(crate::store::now_unix().max(0) as u64, Ordering::Relaxed);
        if ok {
            self.last_success
                .store(crate::store::now_unix().max(0) as u64, Ordering::Relaxed);
        }
    }

    /// A pass listed everything the namespace has.
    pub fn full_listing(&self) {
        self.full_listings.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass read the database's plan, theme and tenant rows (they changed, or nothing was
    /// kept).
    pub fn row_reads(&self) {
        self.row_reads.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass read `n` tenants again alone.
    pub fn tenant_rereads(&self, n: usize) {
        self.tenant_rereads.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A pass is starting because of the engine's events.
    pub fn event_pass(&self) {
        self.event_passes.fetch_add(1, Ordering::Relaxed);
    }

    /// A pass is starting because of a verified push webhook.
    pub fn hook_pass(&self) {
        self.hook_passes.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook was refused (401).
    pub fn hook_refused(&self) {
        self.hooks_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The engine's event stream is followed again after it was lost.
    pub fn events_reconnected(&self) {
        self.event_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// When the last pass ended and whether it succeeded; None before the first.
    pub fn last_pass(&self) -> Option<(i64, bool)> {
        match self.last_pass.load(Ordering::Relaxed) {
            0 => None,
            at => Some((at as i64, self.last_pass_ok.load(Ordering::Relaxed))),
        }
    }

    pub fn applied(&self, changes: usize, failed_tenants: usize) {
        self.changes_applied
            .fetch_add(changes as u64, Ordering::Relaxed);
        self.tenant_failures
            .fetch_add(failed_tenants as u64, Ordering::Relaxed);
    }

    /// Replaces the sync and health counts (usage gauges are the meter's and stay).
    pub fn set_tenants(&self, gauges: TenantGauges) {
        let mut t = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        t.by_sync = gauges.by_sync;
        t.by_health = gauges.by_health;
    }

    /// This loop leads in `term` (0: it stands by).
    /// The leader term this loop holds; 0 while it stands by (or before its first election).
    pub fn leader_term(&self) -> i64 {
        self.leader_term.load(Ordering::Relaxed)
    }

    pub fn set_leader_term(&self, term: i64) {
        self.leader_term.store(term, Ordering::Relaxed);
    }

    pub fn set_usage(&self, usage: BTreeMap<String, Vec<(String, f64)>>) {
        self.tenants.lock().unwrap_or_else(|e| e.into_inner()).usage = usage;
    }

    /// The text exposition format, written by `prometheus-client`: every family with `# HELP`
    /// and `# TYPE`, label values escaped ([`Escaped`]), counters named `…_total`
    /// (OpenMetrics turned into the text format 0.0.4 by `edge::metrics::to_classic`).
    pub fn render(&self) -> String {
        use prometheus_client::metrics::family::Family;
        use prometheus_client::metrics::gauge::Gauge;
        use prometheus_client::registry::Registry;
        use std::sync::atomic::AtomicU64 as F64Bits;

        let mut registry = Registry::default();
        let counter = |registry: &mut Registry, name: &str, help: &str, v: u64| {
            let c: prometheus_client::metrics::counter::Counter = Default::default();
            c.inc_by(v);
            registry.register(name, help, c);
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str, v: i64| {
            let g: Gauge = Gauge::default();
            g.set(v);
            registry.register(name, help, g);
        };
        for (name, help, v) in [
            (
                "tenantctl_reconcile_passes",
                "Reconcile passes run by the watch loop",
                &self.passes,
            ),
            (
                "tenantctl_reconcile_errors",
                "Passes that failed (engine, database or git unavailable)",
                &self.pass_errors,
            ),
            (
                "tenantctl_reconcile_event_passes",
                "Passes started by the engine's events (a container died or was removed, a network disconnected...)",
                &self.event_passes,
            ),
            (
                "tenantctl_reconcile_hook_passes",
                "Passes started by a verified push webhook (POST /hooks/git)",
                &self.hook_passes,
            ),
            (
                "tenantctl_log_lines_stored",
                "Container log lines copied into the database (the log history)",
                &self.log_lines,
            ),
            (
                "tenantctl_webhooks_refused",
                "Push webhooks refused (401) for a missing or wrong signature or token",
                &self.hooks_refused,
            ),
            (
                "tenantctl_engine_event_reconnects",
                "Times the engine's event stream was followed again after it was lost",
                &self.event_reconnects,
            ),
            (
                "tenantctl_observe_full_listings",
                "Passes that listed every container, network and volume of the namespace (the observed-state cache filled: start, resync, a lost event stream)",
                &self.full_listings,
            ),
            (
                "tenantctl_observe_row_reads",
                "Passes that read every plan, theme and tenant row of the database (at start, on the resync, and after the rows changed: the rest used the rows kept)",
                &self.row_reads,
            ),
            (
                "tenantctl_observe_tenant_rereads",
                "Tenants read again alone because the engine's events named them (the observed-state cache kept current)",
                &self.tenant_rereads,
            ),
            (
                "tenantctl_changes_applied",
                "Changes carried out",
                &self.changes_applied,
            ),
            (
                "tenantctl_tenant_failures",
                "Tenants that failed to converge in an apply",
                &self.tenant_failures,
            ),
        ] {
            counter(&mut registry, name, help, v.load(Ordering::Relaxed));
        }
        let term = self.leader_term.load(Ordering::Relaxed);
        gauge(
            &mut registry,
            "tenantctl_leader",
            "Whether this loop holds the leader lease (1) or stands by (0)",
            i64::from(term > 0),
        );
        gauge(
            &mut registry,
            "tenantctl_leader_term",
            "The leader term this loop holds (0 while standing by)",
            term,
        );
        gauge(
            &mut registry,
            "tenantctl_last_success_timestamp_seconds",
            "When a pass last succeeded (Unix seconds)",
            i64::try_from(self.last_success.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        );
        {
            let h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
            registry.register(
                "tenantctl_reconcile_duration_seconds",
                "Duration of a reconcile pass",
                h.clone(),
            );
        }
        let t = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let by = |registry: &mut Registry,
                  name: &str,
                  help: &str,
                  label: &str,
                  m: &BTreeMap<String, u64>| {
            let family = Family::<Vec<(String, Escaped)>, Gauge>::default();
            for (value, n) in m {
                family
                    .get_or_create(&vec![(label.to_string(), Escaped(value.clone()))])
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
            registry.register(name, help, family);
        };
        by(
            &mut registry,
            "tenantctl_tenants",
            "Tenants by sync state",
            "sync",
            &t.by_sync,
        );
        by(
            &mut registry,
            "tenantctl_tenants_health",
            "Tenants by health",
            "health",
            &t.by_health,
        );
        let mut names: Vec<&String> = t.usage.values().flatten().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        for name in names {
            let family = Family::<Vec<(String, Escaped)>, Gauge<f64, F64Bits>>::default();
            for (tenant, values) in &t.usage {
                for (_, v) in values.iter().filter(|(n, _)| n == name) {
                    family
                        .get_or_create(&vec![("tenant".to_string(), Escaped(tenant.clone()))])
                        .set(*v);
                }
            }
            registry.register(
                format!("tenantctl_tenant_{name}"),
                format!(
                    "Each tenant's {} from the last metering pass",
                    name.replace('_', " ")
                ),
                family,
            );
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        // prometheus-client writes OpenMetrics (a counter's family `x`, its sample `x_total`);
        // the text format 0.0.4 names the family like the sample.
        crate::edge::metrics::to_classic(&out)
    }
}

/// A label value (a tenant's slug); prometheus-client escapes `\\`, `"` and line feeds as it
/// writes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Escaped(String);

impl prometheus_client::encoding::EncodeLabelValue for Escaped {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        self.0.as_str().encode(encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histogram_and_gauges() {
        let m = Metrics::default();
        m.pass(0.2, true);
        m.pass(3.0, false);
        m.applied(4, 1);
        m.event_pass();
        m.events_reconnected();
        m.hook_pass();
        m.hook_refused();
        m.hook_refused();
        m.set_leader_term(3);
        let mut g = TenantGauges::default();
        g.by_sync.insert("Synced".into(), 5);
        g.by_health.insert("Healthy".into(), 4);
        m.set_tenants(g);
        m.set_usage(
            [(
                "acme".to_string(),
                vec![("memory_bytes".to_string(), 1024.0)],
            )]
            .into(),
        );
        let text = m.render();
        for line in [
            "tenantctl_reconcile_passes_total 2",
            "tenantctl_reconcile_errors_total 1",
            "tenantctl_changes_applied_total 4",
            "tenantctl_reconcile_event_passes_total 1",
            "tenantctl_engine_event_reconnects_total 1",
            "tenantctl_reconcile_hook_passes_total 1",
            "tenantctl_webhooks_refused_total 2",
            "tenantctl_leader 1",
            "tenantctl_leader_term 3",
            "tenantctl_reconcile_duration_seconds_bucket{le=\"0.25\"} 1",
            "tenantctl_reconcile_duration_seconds_bucket{le=\"5.0\"} 2",
            "tenantctl_reconcile_duration_seconds_count 2",
            "tenantctl_tenants{sync=\"Synced\"} 5",
            "tenantctl_tenant_memory_bytes{tenant=\"acme\"} 1024.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // Every series has its HELP and TYPE.
        for family in [
            "tenantctl_leader_term",
            "tenantctl_tenants",
            "tenantctl_tenant_memory_bytes",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} HELP in\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} TYPE in\n{text}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::default();
        m.set_usage(
            [(
                "we\"ird\\".to_string(),
                vec![("memory_bytes".to_string(), 1.0)],
            )]
            .into(),
        );
        let text = m.render();
        assert!(
            text.contains(r#"tenantctl_tenant_memory_bytes{tenant="we\"ird\\"} 1.0"#),
            "{text}"
        );
    }
}
