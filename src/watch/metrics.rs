//! Prometheus metrics of the watch loop, served as text on `--metrics-addr` ([`super::endpoints`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the reconcile-duration histogram.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Default)]
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
    durations: Mutex<Histogram>,
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
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
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
        let mut h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
        self.last_pass_ok.store(ok, Ordering::Relaxed);
        self.last_pass
            .store(crate::store::now_unix().max(0) as u64, Ordering::Relaxed);
        if ok {
            self.last_success
                .store(crate::store::now_unix().max(0) as u64, Ordering::Relaxed);
        }
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

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        };
        counter(
            &mut out,
            "tenantctl_reconcile_passes_total",
            "Reconcile passes run by the watch loop.",
            self.passes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_reconcile_errors_total",
            "Passes that failed (engine, database or git unavailable).",
            self.pass_errors.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_reconcile_event_passes_total",
            "Passes started by the engine's events (a container died or was removed, a network disconnected...).",
            self.event_passes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_reconcile_hook_passes_total",
            "Passes started by a verified push webhook (POST /hooks/git).",
            self.hook_passes.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_webhooks_refused_total",
            "Push webhooks refused (401) for a missing or wrong signature or token.",
            self.hooks_refused.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_engine_event_reconnects_total",
            "Times the engine's event stream was followed again after it was lost.",
            self.event_reconnects.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_changes_applied_total",
            "Changes carried out.",
            self.changes_applied.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_tenant_failures_total",
            "Tenants that failed to converge in an apply.",
            self.tenant_failures.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "tenantctl_log_lines_stored_total",
            "Container log lines copied into the database (the log history).",
            self.log_lines.load(Ordering::Relaxed),
        );
        let term = self.leader_term.load(Ordering::Relaxed);
        out.push_str(&format!(
            "# HELP tenantctl_leader Whether this loop holds the leader lease (1) or stands by (0).\n# TYPE tenantctl_leader gauge\ntenantctl_leader {}\n# HELP tenantctl_leader_term The leader term this loop holds (0 while standing by).\n# TYPE tenantctl_leader_term gauge\ntenantctl_leader_term {term}\n",
            u8::from(term > 0)
        ));
        out.push_str(&format!(
            "# HELP tenantctl_last_success_timestamp_seconds When a pass last succeeded.\n# TYPE tenantctl_last_success_timestamp_seconds gauge\ntenantctl_last_success_timestamp_seconds {}\n",
            self.last_success.load(Ordering::Relaxed)
        ));
        {
            let h = self.durations.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str("# HELP tenantctl_reconcile_duration_seconds Duration of a reconcile pass.\n# TYPE tenantctl_reconcile_duration_seconds histogram\n");
            for (i, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "tenantctl_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {}\n",
                    h.counts[i]
                ));
            }
            out.push_str(&format!(
                "tenantctl_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}\ntenantctl_reconcile_duration_seconds_sum {}\ntenantctl_reconcile_duration_seconds_count {}\n",
                h.count, h.sum, h.count
            ));
        }
        let t = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        out.push_str(
            "# HELP tenantctl_tenants Tenants by sync state.\n# TYPE tenantctl_tenants gauge\n",
        );
        for (state, n) in &t.by_sync {
            out.push_str(&format!("tenantctl_tenants{{sync=\"{state}\"}} {n}\n"));
        }
        out.push_str("# HELP tenantctl_tenants_health Tenants by health.\n# TYPE tenantctl_tenants_health gauge\n");
        for (state, n) in &t.by_health {
            out.push_str(&format!(
                "tenantctl_tenants_health{{health=\"{state}\"}} {n}\n"
            ));
        }
        let mut names: Vec<&String> = t.usage.values().flatten().map(|(n, _)| n).collect();
        names.sort();
        names.dedup();
        for name in names {
            out.push_str(&format!("# TYPE tenantctl_tenant_{name} gauge\n"));
            for (tenant, values) in &t.usage {
                for (n, v) in values.iter().filter(|(n, _)| n == name) {
                    out.push_str(&format!(
                        "tenantctl_tenant_{n}{{tenant=\"{tenant}\"}} {v}\n"
                    ));
                }
            }
        }
        out
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
            "tenantctl_reconcile_duration_seconds_bucket{le=\"5\"} 2",
            "tenantctl_reconcile_duration_seconds_count 2",
            "tenantctl_tenants{sync=\"Synced\"} 5",
            "tenantctl_tenant_memory_bytes{tenant=\"acme\"} 1024",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
