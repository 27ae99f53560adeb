//! `tenantctl usage`: each tenant's usage over a window against its plan, from the database
//! alone (the plan and tenant rows the SaaS reads, and the meter's rollups).

use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

use super::UsageError;
use super::invoice::{Invoice, InvoiceInput, money, preview};
use super::threshold::percent;
use super::time::month_key;
use crate::store::{HOUR, Rollup, Store, UsageBucket, bucket_start, merge_buckets};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    pub generated_at: i64,
    /// The window asked for, in seconds.
    pub since_seconds: u64,
    /// Start of the first hourly bucket in the window (the window is read at hour granularity).
    pub window_start: i64,
    /// `YYYY-MM` the month counters belong to.
    pub month: String,
    pub tenants: Vec<TenantUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TenantUsage {
    pub tenant: String,
    pub plan: String,
    pub state: String,
    /// Samples in the window.
    pub samples: i64,
    pub cpu: CpuUsage,
    pub memory: MemoryUsage,
    pub storage: StorageUsage,
    pub network: Io,
    pub block_io: BlockIo,
    pub api_calls: QuotaUsage,
    pub ai_interactions: QuotaUsage,
    pub invoice: Option<Invoice>,
}

/// CPU in percent of one CPU; `*_of_plan` in percent of the plan's CPUs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuUsage {
    pub avg_percent: Option<f64>,
    pub max_percent: Option<f64>,
    pub plan_cpus: Option<f64>,
    pub avg_of_plan_percent: Option<f64>,
    pub max_of_plan_percent: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryUsage {
    pub avg_bytes: Option<i64>,
    pub max_bytes: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub avg_percent: Option<u64>,
    pub max_percent: Option<u64>,
}

/// The data volume's size as last measured (the engine's disk usage), against the plan's
/// `storage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StorageUsage {
    pub bytes: Option<i64>,
    /// When it was measured (unix seconds).
    pub measured_at: Option<i64>,
    /// None: unlimited.
    pub limit_bytes: Option<i64>,
    pub percent: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Io {
    pub rx_bytes: i64,
    pub tx_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlockIo {
    pub read_bytes: i64,
    pub write_bytes: i64,
}

/// A month counter against its quota; `used` is None when no site sample exists this month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaUsage {
    pub used: Option<i64>,
    /// None: unlimited.
    pub quota: Option<i64>,
    pub percent: Option<u64>,
}

/// Builds the report for one tenant (`slug`) or all, over the last `since`.
pub async fn report(
    store: &Store,
    slug: Option<&str>,
    since: Duration,
    now: i64,
) -> Result<UsageReport, UsageError> {
    let db = store.observe().await?;
    if let Some(s) = slug
        && !db.tenants.contains_key(s)
    {
        return Err(UsageError::UnknownTenant(s.to_string()));
    }
    let since_secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let window_start = bucket_start(now.saturating_sub(since_secs), HOUR);
    let hours = store
        .usage_buckets(Rollup::Hourly, slug, window_start)
        .await?;
    let windows = merge_buckets(&hours, None);
    let month = month_key(now);
    let counters = store.usage_month_counters(&month, slug).await?;
    let storage = store.latest_storage(slug).await?;

    let mut tenants = Vec::new();
    for (name, row) in &db.tenants {
        if slug.is_some_and(|s| s != name) {
            continue;
        }
        let plan = db.plans.get(&row.plan);
        let w = windows
            .iter()
            .find(|b| &b.tenant == name)
            .cloned()
            .unwrap_or_else(|| UsageBucket {
                tenant: name.clone(),
                ..UsageBucket::default()
            });
        let has = w.samples > 0;
        let plan_cpus = plan.map(|p| p.nano_cpus as f64 / 1e9).filter(|&c| c > 0.0);
        let of_plan = |v: Option<f64>| Some(v? / plan_cpus?);
        let limit = plan.map(|p| p.memory_bytes).filter(|&m| m > 0);
        let mem_pct = |v: i64| percent(u64::try_from(v).unwrap_or(0), limit.map(|l| l as u64));
        let (api, ai) = match counters.get(name) {
            Some((api, ai, _)) => (Some(*api), Some(*ai)),
            None => (None, None),
        };
        let quota = |used: Option<i64>, q: Option<i64>| QuotaUsage {
            used,
            quota: q,
            percent: used.and_then(|u| {
                percent(
                    u64::try_from(u).unwrap_or(0),
                    q.map(|q| u64::try_from(q).unwrap_or(0)),
                )
            }),
        };
        let invoice = plan.map(|p| {
            preview(
                &InvoiceInput {
                    plan_display_name: p.display_name.clone(),
                    price_cents: p.price_cents,
                    currency: p.currency.clone(),
                    cycle: p.cycle.clone(),
                    trial_ends_at: row.trial_ends_at,
                    api_calls_month: api.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
                    api_calls_quota: p.api_calls_per_month.and_then(|v| u64::try_from(v).ok()),
                    ai_interactions_month: ai.and_then(|v| u64::try_from(v).ok()).unwrap_or(0),
                    ai_interactions_quota: p
                        .ai_interactions_per_month
                        .and_then(|v| u64::try_from(v).ok()),
                },
                now,
            )
        });
        tenants.push(TenantUsage {
            tenant: name.clone(),
            plan: row.plan.clone(),
            state: row.state.clone(),
            samples: w.samples,
            cpu: CpuUsage {
                avg_percent: w.cpu_avg,
                max_percent: w.cpu_max,
                plan_cpus,
                avg_of_plan_percent: of_plan(w.cpu_avg),
                max_of_plan_percent: of_plan(w.cpu_max),
            },
            memory: MemoryUsage {
                avg_bytes: has.then_some(w.mem_avg),
                max_bytes: has.then_some(w.mem_max),
                limit_bytes: limit,
                avg_percent: if has { mem_pct(w.mem_avg) } else { None },
                max_percent: if has { mem_pct(w.mem_max) } else { None },
            },
            storage: {
                let measured = storage.get(name).copied();
                let limit_bytes = plan.and_then(|p| p.storage_bytes);
                StorageUsage {
                    bytes: measured.map(|(_, b)| b),
                    measured_at: measured.map(|(at, _)| at),
                    limit_bytes,
                    percent: measured.and_then(|(_, b)| {
                        percent(
                            u64::try_from(b).unwrap_or(0),
                            limit_bytes.and_then(|l| u64::try_from(l).ok()),
                        )
                    }),
                }
            },
            network: Io {
                rx_bytes: w.net_rx_delta,
                tx_bytes: w.net_tx_delta,
            },
            block_io: BlockIo {
                read_bytes: w.blk_read_delta,
                write_bytes: w.blk_write_delta,
            },
            api_calls: quota(api, plan.and_then(|p| p.api_calls_per_month)),
            ai_interactions: quota(ai, plan.and_then(|p| p.ai_interactions_per_month)),
            invoice,
        });
    }
    Ok(UsageReport {
        generated_at: now,
        since_seconds: since.as_secs(),
        window_start,
        month,
        tenants,
    })
}

/// `1.5Mi`-style sizes with one decimal, for tables.
pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 6] = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}")
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

fn opt_pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}%"))
}

fn quota_text(q: &QuotaUsage) -> String {
    match (q.used, q.quota, q.percent) {
        (None, _, _) => "-".into(),
        (Some(u), Some(l), Some(p)) => format!("{u}/{l} ({p}%)"),
        (Some(u), _, _) => format!("{u}/unlimited"),
    }
}

/// The text form: an aligned table, then each tenant's invoice preview.
/// `1.2Mi of 5.0Gi (0%)`, `1.2Mi` without a limit, `-` before the first measure.
fn storage_text(s: &StorageUsage) -> String {
    match (s.bytes, s.limit_bytes, s.percent) {
        (Some(b), Some(l), Some(p)) => format!("{} of {} ({p}%)", human_bytes(b), human_bytes(l)),
        (Some(b), _, _) => human_bytes(b),
        (None, _, _) => "-".into(),
    }
}

pub fn render_text(r: &UsageReport) -> String {
    let header = [
        "TENANT",
        "PLAN",
        "SAMPLES",
        "CPU AVG/MAX",
        "OF PLAN",
        "MEM AVG/MAX",
        "OF LIMIT",
        "STORAGE",
        "NET RX/TX",
        "BLOCK R/W",
        "API CALLS",
        "AI",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for t in &r.tenants {
        let cpus = t.cpu.plan_cpus.map_or("-".into(), |c| format!("{c} CPU"));
        let mem = match (t.memory.avg_bytes, t.memory.max_bytes) {
            (Some(a), Some(m)) => format!("{}/{}", human_bytes(a), human_bytes(m)),
            _ => "-".into(),
        };
        let mem_of = match (
            t.memory.avg_percent,
            t.memory.max_percent,
            t.memory.limit_bytes,
        ) {
            (Some(a), Some(m), Some(l)) => format!("{a}%/{m}% of {}", human_bytes(l)),
            _ => "-".into(),
        };
        rows.push(vec![
            t.tenant.clone(),
            t.plan.clone(),
            t.samples.to_string(),
            format!(
                "{}/{}",
                opt_pct(t.cpu.avg_percent),
                opt_pct(t.cpu.max_percent)
            ),
            format!(
                "{}/{} of {cpus}",
                opt_pct(t.cpu.avg_of_plan_percent),
                opt_pct(t.cpu.max_of_plan_percent)
            ),
            mem,
            mem_of,
            storage_text(&t.storage),
            format!(
                "{}/{}",
                human_bytes(t.network.rx_bytes),
                human_bytes(t.network.tx_bytes)
            ),
            format!(
                "{}/{}",
                human_bytes(t.block_io.read_bytes),
                human_bytes(t.block_io.write_bytes)
            ),
            quota_text(&t.api_calls),
            quota_text(&t.ai_interactions),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let hours = r.since_seconds as f64 / 3600.0;
    let _ = writeln!(
        out,
        "Usage over the last {hours:.1}h (hourly rollups); monthly counters for {}; CPU in % of one CPU.\n",
        r.month
    );
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let _ = writeln!(out, "\nInvoice preview (current billing period):");
    for t in &r.tenants {
        let Some(inv) = &t.invoice else {
            let _ = writeln!(out, "  {}: plan `{}` has no record", t.tenant, t.plan);
            continue;
        };
        let _ = writeln!(
            out,
            "  {} ({}, {} {} – {})",
            t.tenant, t.plan, inv.cycle, inv.period_start, inv.period_end
        );
        let width = inv
            .lines
            .iter()
            .map(|l| l.description.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        for l in &inv.lines {
            let _ = writeln!(
                out,
                "    {:<width$}  {:>14}",
                l.description,
                money(l.amount_cents, &inv.currency)
            );
        }
        let _ = writeln!(
            out,
            "    {:<width$}  {:>14}",
            "total",
            money(inv.total_cents, &inv.currency)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512");
        assert_eq!(human_bytes(1536), "1.5Ki");
        assert_eq!(human_bytes(512 << 20), "512.0Mi");
    }
}
