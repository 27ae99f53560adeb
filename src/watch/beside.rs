//! The jobs that run beside the loop while it waits, each on its own clock: the meter pass
//! (engine and site counters, usage metrics and events, closing ended billing periods) and the
//! log-history sync.

use super::*;

impl Watcher {
    /// When the next job beside the loop is due (`None`: none is on). A meter pass waits for
    /// the first valid revision, which the pass that comes with it brings.
    pub(super) fn beside_next(&self) -> Option<tokio::time::Instant> {
        let due = |every: Option<Duration>, last: Option<Instant>| {
            let every = every?;
            Some(last.map_or_else(Instant::now, |t| t + every))
        };
        let meter = if self.last_desired.is_some() {
            due(self.config.meter_interval, self.last_meter)
        } else {
            None
        };
        let logs = due(self.config.log_sync_interval, self.last_log_sync);
        [meter, logs]
            .into_iter()
            .flatten()
            .min()
            .map(tokio::time::Instant::from_std)
    }

    /// What runs beside the loop while it waits, when due: a meter pass and a log-history sync
    /// (one after the other), with which of them it holds.
    pub(super) fn meter_due(&self) -> Option<(BesideLoop, BesideJobs)> {
        let meter = self.meter_job();
        let logs = self.log_sync_job();
        let jobs = BesideJobs {
            meter: meter.is_some(),
            logs: logs.is_some(),
        };
        if !jobs.meter && !jobs.logs {
            return None;
        }
        Some((
            Box::pin(async move {
                if let Some(m) = meter {
                    m.await;
                }
                if let Some(l) = logs {
                    l.await;
                }
            }),
            jobs,
        ))
    }

    /// A log-history sync, when one is due: every tenant container's new lines into the
    /// database, then the lines older than the retention pruned.
    pub(super) fn log_sync_job(&self) -> Option<BesideLoop> {
        let every = self.config.log_sync_interval?;
        if self.last_log_sync.is_some_and(|t| t.elapsed() < every) {
            return None;
        }
        let (runtime, store, metrics, progress, retention) = (
            self.runtime.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.progress.clone(),
            self.config.log_retention,
        );
        Some(Box::pin(async move {
            match crate::loghistory::sync(
                &runtime,
                &store,
                retention,
                crate::store::now_unix(),
                None,
            )
            .await
            {
                Ok(summary) => {
                    metrics.add_log_lines(summary.stored);
                    if summary.pruned > 0 {
                        progress.line(
                            None,
                            &format!(
                                "log history: {} lines older than the retention deleted",
                                summary.pruned
                            ),
                        );
                    }
                }
                Err(e) => progress.line(None, &format!("log history sync failed: {e}")),
            }
        }))
    }

    /// A meter pass, when one is due: engine stats and site counters, stored and rolled up.
    pub(super) fn meter_job(&self) -> Option<BesideLoop> {
        let (every, desired) = (self.config.meter_interval?, self.last_desired.clone()?);
        if self.last_meter.is_some_and(|t| t.elapsed() < every) {
            return None;
        }
        let (runtime, store, metrics, progress) = (
            self.runtime.clone(),
            self.store.clone(),
            self.metrics.clone(),
            self.progress.clone(),
        );
        Some(Box::pin(async move {
            match crate::usage::meter_once(&runtime, &store, &desired, crate::store::now_unix())
                .await
            {
                Ok(summary) => {
                    let usage = summary
                        .samples
                        .iter()
                        .map(|s| {
                            let mut v = vec![
                                ("memory_bytes".to_string(), s.memory_bytes as f64),
                                (
                                    "memory_limit_bytes".to_string(),
                                    s.memory_limit_bytes as f64,
                                ),
                            ];
                            if let Some(cpu) = s.cpu_percent {
                                v.push(("cpu_percent".to_string(), cpu));
                            }
                            if let Some(bytes) = s.storage_bytes {
                                v.push(("storage_bytes".to_string(), bytes as f64));
                            }
                            if let Some(calls) = s.api_calls_month {
                                v.push(("api_calls_month".to_string(), calls as f64));
                            }
                            (s.tenant.clone(), v)
                        })
                        .collect();
                    metrics.set_usage(usage);
                    for e in &summary.events {
                        progress.line(Some(&e.tenant), &format!("usage: {}", e.message));
                    }
                }
                Err(e) => progress.line(None, &format!("metering failed: {e}")),
            }
            // A billing period that ended is closed once (closing again changes nothing).
            match crate::usage::close_invoices(&store, crate::plan::trial::now()).await {
                Ok(summary) => {
                    for r in &summary.closed {
                        progress.line(
                            Some(&r.tenant),
                            &format!(
                                "invoice {} closed: {}",
                                r.period,
                                crate::usage::money(r.total_cents, &r.currency)
                            ),
                        );
                    }
                }
                Err(e) => progress.line(None, &format!("closing invoices failed: {e}")),
            }
        }))
    }
}
