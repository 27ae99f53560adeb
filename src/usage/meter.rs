//! One metering pass: sample every running managed container of the namespace, store the
//! samples, roll them up, prune old raw samples, and report threshold crossings.

use futures_util::{StreamExt, stream};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::UsageError;
use super::site::{SITE_TIMEOUT, SiteCounters};
use super::threshold::{crossing, percent};
use super::time::{day_key, month_key};
use crate::model::DesiredState;
use crate::model::quantity::format_bytes;
use crate::runtime::Runtime;
use crate::runtime::types::{
    ContainerStats, ObservedContainer, ReadFrom, SiteQuery, StatsMode, StatsSource,
};
use crate::store::{RollupReport, Store, UsageSample};

/// Raw samples are kept this long by default; rollups are kept.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// Sites asked for their counters at once.
const SITE_CONCURRENCY: usize = 16;

/// How a pass samples.
#[derive(Debug, Clone)]
pub struct MeterOptions {
    /// Raw samples older than this are deleted after the rollup.
    pub retention: Duration,
    /// `TwoReads` (default) gives CPU percent over a second ([`crate::runtime::engine::CPU_WINDOW`]),
    /// one window for the whole pass.
    pub stats_mode: StatsMode,
    /// Where counters are read: the cgroup files where possible (default), or only one source.
    pub stats_source: StatsSource,
    pub site_timeout: Duration,
}

impl Default for MeterOptions {
    fn default() -> Self {
        MeterOptions {
            retention: DEFAULT_RETENTION,
            stats_mode: StatsMode::TwoReads,
            stats_source: StatsSource::Auto,
            site_timeout: SITE_TIMEOUT,
        }
    }
}

/// A threshold crossing recorded in this pass (also written as a `usage.threshold` event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdEvent {
    pub tenant: String,
    /// `memory`, `storage`, `api_calls` or `ai_interactions`.
    pub metric: String,
    /// `YYYY-MM-DD` for memory and storage, `YYYY-MM` for quotas.
    pub period: String,
    pub level: u8,
    pub message: String,
}

/// A tenant that could not be (fully) sampled, and why; never fails the pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeterNote {
    pub tenant: String,
    pub message: String,
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeterSummary {
    pub at: i64,
    /// The stored samples, by tenant.
    pub samples: Vec<UsageSample>,
    /// Containers whose stats could not be read (no sample stored).
    pub failed: Vec<MeterNote>,
    /// Sites that did not answer `/usage` (sample stored without counters).
    pub no_counters: Vec<MeterNote>,
    /// Where each sampled tenant's counters were read: `cgroup` (its cgroup files) or
    /// `engine` (the engine's stats endpoint).
    pub read_from: BTreeMap<String, ReadFrom>,
    /// Tenants read through the engine although the cgroup files were wanted, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<MeterNote>,
    pub rollup: RollupReport,
    pub pruned: u64,
    pub events: Vec<ThresholdEvent>,
    /// Why the data volumes' sizes could not be read (the samples then hold none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
}

/// One pass with the default options: what the watch loop calls on its interval.
/// `now` is unix seconds (the caller's clock, so tests can place samples in time).
pub async fn meter_once(
    runtime: &Runtime,
    store: &Store,
    desired: &DesiredState,
    now: i64,
) -> Result<MeterSummary, UsageError> {
    meter_once_with(runtime, store, desired, now, &MeterOptions::default()).await
}

/// One pass with explicit options.
pub async fn meter_once_with(
    runtime: &Runtime,
    store: &Store,
    desired: &DesiredState,
    now: i64,
    options: &MeterOptions,
) -> Result<MeterSummary, UsageError> {
    let started = std::time::Instant::now();
    let observed = timed("observation", runtime.observe()).await?;
    // Only the tenant's own container: a blue/green `_next` would count the tenant twice.
    let containers: Vec<ObservedContainer> = observed
        .containers
        .into_iter()
        .filter(|c| {
            c.state.is_running()
                && c.tenant
                    .as_deref()
                    .is_some_and(|t| c.name == runtime.container_name(t))
        })
        .collect();
    // Owned containers and queries, so the stream's future is Send (the loop also runs inside
    // the dashboard's tasks). Sites are asked while the stats' CPU window passes; a container
    // whose stats fail drops its counters below.
    let queries: Vec<(ObservedContainer, SiteQuery)> = containers
        .iter()
        .filter(|c| c.state.is_running())
        .map(|c| (c.clone(), site_query(c, desired, options.site_timeout)))
        .collect();
    let counters = timed(
        "site counters",
        stream::iter(queries)
            .map(|(c, query)| async move {
                let k = runtime.backend().site_counters(&c, &query).await;
                (c.id, k)
            })
            .buffered(SITE_CONCURRENCY)
            .collect::<BTreeMap<String, Result<SiteCounters, String>>>(),
    );
    // The volumes' sizes once per pass (never per tenant), beside the stats.
    let (stats, sizes, mut counters) = tokio::join!(
        timed(
            "stats",
            runtime.stats_of(&containers, options.stats_mode, options.stats_source)
        ),
        timed("volume sizes", runtime.backend().volume_sizes()),
        counters,
    );
    let (sizes, storage_error) = match sizes {
        Ok(sizes) => (sizes, None),
        Err(e) => (Default::default(), Some(e.to_string())),
    };

    let mut failed = Vec::new();
    let mut sampled: Vec<(ObservedContainer, ContainerStats)> = Vec::new();
    let mut read_from = BTreeMap::new();
    let mut fallbacks = Vec::new();
    for (c, result) in stats {
        let tenant = c.tenant.clone().unwrap_or_default();
        match result {
            Ok(mut s) => {
                read_from.insert(tenant.clone(), s.read_from);
                if let Some(message) = s.fallback.take() {
                    fallbacks.push(MeterNote { tenant, message });
                }
                sampled.push((c, s));
            }
            Err(e) => failed.push(MeterNote {
                tenant,
                message: e.to_string(),
            }),
        }
    }

    let mut samples = Vec::with_capacity(sampled.len());
    let mut no_counters = Vec::new();
    let mut keys_used = Vec::new();
    for (c, s) in &sampled {
        let tenant = c.tenant.clone().unwrap_or_default();
        let counters = match counters
            .remove(&c.id)
            .unwrap_or_else(|| Err("not asked".to_string()))
        {
            Ok(k) => {
                keys_used.extend(
                    k.keys_last_used
                        .iter()
                        .map(|(id, at)| (tenant.clone(), id.clone(), *at)),
                );
                Some(k)
            }
            Err(message) => {
                no_counters.push(MeterNote {
                    tenant: tenant.clone(),
                    message,
                });
                None
            }
        };
        let storage = sizes
            .get(&crate::runtime::types::volume_name(
                runtime.namespace(),
                &tenant,
            ))
            .map(|b| to_i64(*b));
        let mut sample = sample(&tenant, now, s, counters.as_ref());
        sample.storage_bytes = storage;
        samples.push(sample);
    }

    let stored = std::time::Instant::now();
    store.insert_usage_samples(&samples).await?;
    // At most once a minute per key, however often the meter runs.
    store.touch_api_keys(&keys_used, LAST_USED_EVERY).await?;
    let rollup = store.rollup_usage(now).await?;
    let keep = i64::try_from(options.retention.as_secs()).unwrap_or(i64::MAX);
    let pruned = store.prune_usage_samples(now.saturating_sub(keep)).await?;
    let events = thresholds(store, desired, &samples, now).await?;
    tracing::debug!(
        "meter: stored {} samples, rolled up and checked thresholds in {:?}; the pass took {:?}",
        samples.len(),
        stored.elapsed(),
        started.elapsed()
    );
    Ok(MeterSummary {
        at: now,
        samples,
        failed,
        no_counters,
        read_from,
        fallbacks,
        rollup,
        pruned,
        events,
        storage_error,
    })
}

/// `f`, with how long it took in the debug log (`-vv`).
async fn timed<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    tracing::debug!("meter: {what} in {:?}", started.elapsed());
    out
}

/// `tenant_api_keys.last_used_at` moves by at least this many seconds.
const LAST_USED_EVERY: i64 = 60;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn sample(
    tenant: &str,
    now: i64,
    s: &ContainerStats,
    counters: Option<&SiteCounters>,
) -> UsageSample {
    UsageSample {
        tenant: tenant.to_string(),
        at: now,
        cpu_percent: s.cpu_percent,
        memory_bytes: to_i64(s.memory_bytes),
        memory_limit_bytes: to_i64(s.memory_limit_bytes),
        net_rx_bytes: to_i64(s.net_rx_bytes),
        net_tx_bytes: to_i64(s.net_tx_bytes),
        blk_read_bytes: to_i64(s.blk_read_bytes),
        blk_write_bytes: to_i64(s.blk_write_bytes),
        api_calls_month: counters.map(|k| to_i64(k.api_calls_month)),
        ai_interactions_month: counters.map(|k| to_i64(k.ai_interactions_month)),
        month: counters.map(|k| k.month.clone()),
        storage_bytes: None,
    }
}

/// What git says about the site whose counters the meter reads.
fn site_query(c: &ObservedContainer, desired: &DesiredState, timeout: Duration) -> SiteQuery {
    let tenant = c.tenant.clone().unwrap_or_default();
    let theme = desired
        .tenants
        .get(&tenant)
        .and_then(|t| desired.themes.get(&t.theme));
    SiteQuery {
        theme_port: theme.map(|th| th.port),
        // Only the built-in image carries tenantctl to run inside a task.
        builtin_image: theme.is_some_and(|th| th.image.is_none()),
        key_digest: c
            .env
            .get(crate::plan::container::API_KEY_ENV)
            .map(str::to_string),
        tenant,
        timeout,
    }
}

/// Records each 80%/100% crossing of the plan's memory and storage limits and monthly quotas,
/// once per period (a UTC day for memory and storage, the month for quotas).
async fn thresholds(
    store: &Store,
    desired: &DesiredState,
    samples: &[UsageSample],
    now: i64,
) -> Result<Vec<ThresholdEvent>, UsageError> {
    let levels = store.usage_threshold_levels().await?;
    let mut events = Vec::new();
    for s in samples {
        let Some(plan) = desired
            .tenants
            .get(&s.tenant)
            .and_then(|t| desired.plans.get(&t.plan))
        else {
            continue;
        };
        let month = s.month.clone().unwrap_or_else(|| month_key(now));
        let limit_text = format_bytes(plan.resources.memory_bytes);
        let mut checks = vec![(
            "memory",
            day_key(now),
            u64::try_from(s.memory_bytes).unwrap_or(0),
            Some(plan.resources.memory_bytes),
            Box::new(move |pct: u64| format!("memory at {pct}% of {limit_text}"))
                as Box<dyn Fn(u64) -> String + Send>,
        )];
        if let (Some(used), Some(limit)) = (s.storage_bytes, plan.resources.storage_bytes) {
            let limit_text = format_bytes(limit);
            checks.push((
                "storage",
                day_key(now),
                u64::try_from(used).unwrap_or(0),
                Some(limit),
                Box::new(move |pct| format!("storage at {pct}% of {limit_text}")),
            ));
        }
        if let Some(used) = s.api_calls_month {
            let quota = plan.quotas.api_calls_per_month;
            checks.push((
                "api_calls",
                month.clone(),
                u64::try_from(used).unwrap_or(0),
                quota,
                Box::new(move |pct| {
                    format!(
                        "API calls at {pct}% of {} this month",
                        quota.unwrap_or_default()
                    )
                }),
            ));
        }
        if let Some(used) = s.ai_interactions_month {
            let quota = plan.quotas.ai_interactions_per_month;
            checks.push((
                "ai_interactions",
                month.clone(),
                u64::try_from(used).unwrap_or(0),
                quota,
                Box::new(move |pct| {
                    format!(
                        "AI interactions at {pct}% of {} this month",
                        quota.unwrap_or_default()
                    )
                }),
            ));
        }
        for (metric, period, used, limit, message) in checks {
            let Some(pct) = percent(used, limit) else {
                continue;
            };
            let key = (s.tenant.clone(), metric.to_string(), period.clone());
            let Some(level) = crossing(levels.get(&key).copied(), pct) else {
                continue;
            };
            let message = message(pct);
            // The store re-checks atomically, so a concurrent meter cannot record it twice.
            if store
                .raise_usage_threshold(&s.tenant, metric, &period, i64::from(level), now, &message)
                .await?
            {
                events.push(ThresholdEvent {
                    tenant: s.tenant.clone(),
                    metric: metric.to_string(),
                    period,
                    level,
                    message,
                });
            }
        }
    }
    Ok(events)
}
