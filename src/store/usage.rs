//! Usage metering rows: raw samples, hourly and daily rollups, and threshold levels already
//! reported. The rollup arithmetic is plain Rust ([`buckets`], [`merge_buckets`]) so it is the
//! same on both backends and unit-tested without a database.

use super::{Pool, Store, StoreError, WriteError};
use serde::Serialize;
use sqlx::FromRow;
use std::collections::BTreeMap;

/// Seconds in an hourly bucket.
pub const HOUR: i64 = 3_600;
/// Seconds in a daily bucket (UTC days).
pub const DAY: i64 = 86_400;

/// One reading of one tenant's container and site counters.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct UsageSample {
    pub tenant: String,
    pub at: i64,
    /// Percent of one CPU; None when the engine gave no second reading.
    pub cpu_percent: Option<f64>,
    pub memory_bytes: i64,
    pub memory_limit_bytes: i64,
    /// Cumulative since the container started, summed over interfaces.
    pub net_rx_bytes: i64,
    pub net_tx_bytes: i64,
    /// Cumulative since the container started.
    pub blk_read_bytes: i64,
    pub blk_write_bytes: i64,
    /// None when the site did not answer `/usage`.
    pub api_calls_month: Option<i64>,
    pub ai_interactions_month: Option<i64>,
    /// `YYYY-MM` the month counters belong to.
    pub month: Option<String>,
    /// Bytes the tenant's data volume holds (the engine's disk usage); None when not measured.
    pub storage_bytes: Option<i64>,
}

/// Aggregates of one tenant over one bucket (an hour, a day, or a report window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, FromRow)]
pub struct UsageBucket {
    pub tenant: String,
    pub bucket_start: i64,
    pub samples: i64,
    /// Samples with a CPU reading (the weight of `cpu_avg`).
    pub cpu_samples: i64,
    pub cpu_avg: Option<f64>,
    pub cpu_max: Option<f64>,
    pub mem_avg: i64,
    pub mem_max: i64,
    pub net_rx_delta: i64,
    pub net_tx_delta: i64,
    pub blk_read_delta: i64,
    pub blk_write_delta: i64,
    pub api_calls_max: Option<i64>,
    pub ai_interactions_max: Option<i64>,
}

/// Which rollup table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    Hourly,
    Daily,
}

/// What one rollup wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RollupReport {
    pub hourly: u64,
    pub daily: u64,
}

/// The start of the `width`-second bucket holding `at` (UTC-aligned).
pub fn bucket_start(at: i64, width: i64) -> i64 {
    at.div_euclid(width) * width
}

/// Growth of a cumulative counter since the previous reading; a counter that went down was
/// reset (container restart), so all of its new value is growth.
fn growth(now: i64, before: Option<i64>) -> i64 {
    match before {
        None => 0,
        Some(b) if now >= b => now - b,
        Some(_) => now,
    }
}

#[derive(Default)]
struct Acc {
    samples: i64,
    cpu_samples: i64,
    cpu_sum: f64,
    cpu_max: Option<f64>,
    mem_sum: i128,
    mem_max: i64,
    net_rx: i64,
    net_tx: i64,
    blk_read: i64,
    blk_write: i64,
    api_max: Option<i64>,
    ai_max: Option<i64>,
}

impl Acc {
    fn add_bucket(&mut self, b: &UsageBucket) {
        self.samples += b.samples;
        if let Some(avg) = b.cpu_avg {
            self.cpu_samples += b.cpu_samples;
            self.cpu_sum += avg * b.cpu_samples as f64;
        }
        self.cpu_max = max_opt_f(self.cpu_max, b.cpu_max);
        self.mem_sum += i128::from(b.mem_avg) * i128::from(b.samples);
        self.mem_max = self.mem_max.max(b.mem_max);
        self.net_rx = self.net_rx.saturating_add(b.net_rx_delta);
        self.net_tx = self.net_tx.saturating_add(b.net_tx_delta);
        self.blk_read = self.blk_read.saturating_add(b.blk_read_delta);
        self.blk_write = self.blk_write.saturating_add(b.blk_write_delta);
        self.api_max = max_opt(self.api_max, b.api_calls_max);
        self.ai_max = max_opt(self.ai_max, b.ai_interactions_max);
    }

    fn finish(self, tenant: &str, bucket_start: i64) -> UsageBucket {
        UsageBucket {
            tenant: tenant.to_string(),
            bucket_start,
            samples: self.samples,
            cpu_samples: self.cpu_samples,
            cpu_avg: (self.cpu_samples > 0).then(|| self.cpu_sum / self.cpu_samples as f64),
            cpu_max: self.cpu_max,
            mem_avg: if self.samples > 0 {
                i64::try_from(self.mem_sum / i128::from(self.samples)).unwrap_or(i64::MAX)
            } else {
                0
            },
            mem_max: self.mem_max,
            net_rx_delta: self.net_rx,
            net_tx_delta: self.net_tx,
            blk_read_delta: self.blk_read,
            blk_write_delta: self.blk_write,
            api_calls_max: self.api_max,
            ai_interactions_max: self.ai_max,
        }
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn max_opt_f(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Buckets of `width` seconds from raw samples, only those starting at or after `from`.
/// Samples before `from` serve only as the previous reading for counter growth.
/// Sorted by tenant, then bucket start. Pure: the same samples give the same buckets.
pub fn buckets(samples: &[UsageSample], width: i64, from: i64) -> Vec<UsageBucket> {
    let mut sorted: Vec<&UsageSample> = samples.iter().collect();
    sorted.sort_by(|a, b| (&a.tenant, a.at).cmp(&(&b.tenant, b.at)));
    let mut accs: BTreeMap<(String, i64), Acc> = BTreeMap::new();
    let mut prev: Option<&UsageSample> = None;
    for s in sorted {
        let before = prev.filter(|p| p.tenant == s.tenant);
        prev = Some(s);
        let start = bucket_start(s.at, width);
        if start < bucket_start(from, width) {
            continue;
        }
        let a = accs.entry((s.tenant.clone(), start)).or_default();
        a.samples += 1;
        if let Some(cpu) = s.cpu_percent {
            a.cpu_samples += 1;
            a.cpu_sum += cpu;
            a.cpu_max = max_opt_f(a.cpu_max, Some(cpu));
        }
        a.mem_sum += i128::from(s.memory_bytes);
        a.mem_max = a.mem_max.max(s.memory_bytes);
        a.net_rx += growth(s.net_rx_bytes, before.map(|p| p.net_rx_bytes));
        a.net_tx += growth(s.net_tx_bytes, before.map(|p| p.net_tx_bytes));
        a.blk_read += growth(s.blk_read_bytes, before.map(|p| p.blk_read_bytes));
        a.blk_write += growth(s.blk_write_bytes, before.map(|p| p.blk_write_bytes));
        a.api_max = max_opt(a.api_max, s.api_calls_month);
        a.ai_max = max_opt(a.ai_max, s.ai_interactions_month);
    }
    accs.into_iter()
        .map(|((tenant, start), a)| a.finish(&tenant, start))
        .collect()
}

/// Coarser buckets from finer ones (hours into days, or everything into one window when
/// `width` is `None`, each tenant's window starting at its first bucket).
pub fn merge_buckets(fine: &[UsageBucket], width: Option<i64>) -> Vec<UsageBucket> {
    let mut accs: BTreeMap<(String, i64), Acc> = BTreeMap::new();
    let mut firsts: BTreeMap<String, i64> = BTreeMap::new();
    for b in fine {
        let first = firsts.entry(b.tenant.clone()).or_insert(b.bucket_start);
        *first = (*first).min(b.bucket_start);
        let start = width.map_or(0, |w| bucket_start(b.bucket_start, w));
        accs.entry((b.tenant.clone(), start))
            .or_default()
            .add_bucket(b);
    }
    accs.into_iter()
        .map(|((tenant, start), a)| {
            let start = if width.is_some() {
                start
            } else {
                firsts.get(&tenant).copied().unwrap_or(0)
            };
            a.finish(&tenant, start)
        })
        .collect()
}

const INSERT_SAMPLE: &str = "INSERT INTO usage_samples (tenant, at, cpu_percent, memory_bytes, \
     memory_limit_bytes, net_rx_bytes, net_tx_bytes, blk_read_bytes, blk_write_bytes, \
     api_calls_month, ai_interactions_month, month, storage_bytes) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
const SELECT_SAMPLES: &str = "SELECT tenant, at, cpu_percent, memory_bytes, memory_limit_bytes, \
     net_rx_bytes, net_tx_bytes, blk_read_bytes, blk_write_bytes, api_calls_month, \
     ai_interactions_month, month, storage_bytes FROM usage_samples \
     WHERE at >= $1 AND at < $2 AND ($3 IS NULL OR tenant = $3) ORDER BY tenant, at";

/// The same upsert for both rollup tables (a table name cannot be a bind parameter).
macro_rules! upsert_bucket {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (tenant, bucket_start, samples, cpu_samples, cpu_avg, cpu_max, mem_avg, mem_max, \
             net_rx_delta, net_tx_delta, blk_read_delta, blk_write_delta, api_calls_max, \
             ai_interactions_max) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (tenant, bucket_start) DO UPDATE SET samples = excluded.samples, \
             cpu_samples = excluded.cpu_samples, cpu_avg = excluded.cpu_avg, cpu_max = excluded.cpu_max, \
             mem_avg = excluded.mem_avg, mem_max = excluded.mem_max, net_rx_delta = excluded.net_rx_delta, \
             net_tx_delta = excluded.net_tx_delta, blk_read_delta = excluded.blk_read_delta, \
             blk_write_delta = excluded.blk_write_delta, api_calls_max = excluded.api_calls_max, \
             ai_interactions_max = excluded.ai_interactions_max"
        )
    };
}
macro_rules! select_buckets {
    ($table:literal) => {
        concat!(
            "SELECT tenant, bucket_start, samples, cpu_samples, cpu_avg, cpu_max, mem_avg, mem_max, \
             net_rx_delta, net_tx_delta, blk_read_delta, blk_write_delta, api_calls_max, \
             ai_interactions_max FROM ",
            $table,
            " WHERE bucket_start >= $1 AND ($2 IS NULL OR tenant = $2) ORDER BY tenant, bucket_start"
        )
    };
}
const UPSERT_HOURLY: &str = upsert_bucket!("usage_hourly");
const UPSERT_DAILY: &str = upsert_bucket!("usage_daily");
const SELECT_HOURLY: &str = select_buckets!("usage_hourly");
const SELECT_DAILY: &str = select_buckets!("usage_daily");

// Raised only upwards: a level already reported (or a higher one) in this period is left alone.
const RAISE_THRESHOLD: &str = "INSERT INTO usage_thresholds (tenant, metric, period, level, at) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (tenant, metric, period) DO UPDATE SET level = excluded.level, at = excluded.at \
     WHERE usage_thresholds.level < excluded.level";

impl Store {
    /// Stores samples, all or none.
    pub async fn insert_usage_samples(&self, samples: &[UsageSample]) -> Result<(), StoreError> {
        write_tx!(self, "storing usage samples", |tx| {
            async {
                for s in samples {
                    sqlx::query(INSERT_SAMPLE)
                        .bind(&s.tenant)
                        .bind(s.at)
                        .bind(s.cpu_percent)
                        .bind(s.memory_bytes)
                        .bind(s.memory_limit_bytes)
                        .bind(s.net_rx_bytes)
                        .bind(s.net_tx_bytes)
                        .bind(s.blk_read_bytes)
                        .bind(s.blk_write_bytes)
                        .bind(s.api_calls_month)
                        .bind(s.ai_interactions_month)
                        .bind(&s.month)
                        .bind(s.storage_bytes)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
    }

    /// Raw samples with `from <= at < to`, of one tenant or all, by tenant then time.
    pub async fn usage_samples(
        &self,
        tenant: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageSample>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(SELECT_SAMPLES)
                .bind(from)
                .bind(to)
                .bind(tenant)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading usage samples"))
    }

    /// Each tenant's newest measured data-volume size: tenant → (when, bytes).
    pub async fn latest_storage(
        &self,
        tenant: Option<&str>,
    ) -> Result<BTreeMap<String, (i64, i64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT s.tenant, s.at, s.storage_bytes FROM usage_samples s \
                 WHERE s.storage_bytes IS NOT NULL AND ($1 IS NULL OR s.tenant = $1) \
                 AND s.at = (SELECT MAX(l.at) FROM usage_samples l \
                 WHERE l.tenant = s.tenant AND l.storage_bytes IS NOT NULL)",
            )
            .bind(tenant)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed("reading storage samples"))?;
        Ok(rows
            .into_iter()
            .map(|(tenant, at, bytes)| (tenant, (at, bytes)))
            .collect())
    }

    /// Rollup rows starting at or after `from`, of one tenant or all, by tenant then time.
    pub async fn usage_buckets(
        &self,
        table: Rollup,
        tenant: Option<&str>,
        from: i64,
    ) -> Result<Vec<UsageBucket>, StoreError> {
        let sql = match table {
            Rollup::Hourly => SELECT_HOURLY,
            Rollup::Daily => SELECT_DAILY,
        };
        with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(from)
                .bind(tenant)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading usage rollups"))
    }

    /// The newest month counters of each tenant for `month` (`YYYY-MM`): tenant → (API calls,
    /// AI interactions, when sampled).
    pub async fn usage_month_counters(
        &self,
        month: &str,
        tenant: Option<&str>,
    ) -> Result<BTreeMap<String, (i64, i64, i64)>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT tenant, at, api_calls_month, ai_interactions_month FROM usage_samples \
                 WHERE month = $1 AND api_calls_month IS NOT NULL AND ($2 IS NULL OR tenant = $2) \
                 ORDER BY tenant, at",
            )
            .bind(month)
            .bind(tenant)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed("reading month usage counters"))?;
        // Ordered by time, so the last row of each tenant wins.
        Ok(rows
            .into_iter()
            .map(|(t, at, api, ai)| (t, (api.unwrap_or(0), ai.unwrap_or(0), at)))
            .collect())
    }

    /// Recomputes the hourly buckets from the hour holding `from` on, and the daily buckets
    /// from that day on; an upsert, so running it again changes nothing. Raw samples of the
    /// hour before `from` are read only as the previous reading for counter growth.
    pub async fn rollup_usage_from(&self, from: i64) -> Result<RollupReport, StoreError> {
        let hour_from = bucket_start(from, HOUR);
        let samples = self.usage_samples(None, hour_from - HOUR, i64::MAX).await?;
        let hourly = buckets(&samples, HOUR, hour_from);
        self.upsert_buckets(Rollup::Hourly, &hourly).await?;
        let day_from = bucket_start(from, DAY);
        let hours = self.usage_buckets(Rollup::Hourly, None, day_from).await?;
        let daily = merge_buckets(&hours, Some(DAY));
        self.upsert_buckets(Rollup::Daily, &daily).await?;
        Ok(RollupReport {
            hourly: hourly.len() as u64,
            daily: daily.len() as u64,
        })
    }

    /// The rollup of every pass: the current and the previous hour (samples are stamped with
    /// the meter's clock, so nothing older can still change), and their days.
    pub async fn rollup_usage(&self, now: i64) -> Result<RollupReport, StoreError> {
        self.rollup_usage_from(now - HOUR).await
    }

    async fn upsert_buckets(&self, table: Rollup, rows: &[UsageBucket]) -> Result<(), StoreError> {
        let sql = match table {
            Rollup::Hourly => UPSERT_HOURLY,
            Rollup::Daily => UPSERT_DAILY,
        };
        write_tx!(self, "writing usage rollups", |tx| {
            async {
                for b in rows {
                    sqlx::query(sql)
                        .bind(&b.tenant)
                        .bind(b.bucket_start)
                        .bind(b.samples)
                        .bind(b.cpu_samples)
                        .bind(b.cpu_avg)
                        .bind(b.cpu_max)
                        .bind(b.mem_avg)
                        .bind(b.mem_max)
                        .bind(b.net_rx_delta)
                        .bind(b.net_tx_delta)
                        .bind(b.blk_read_delta)
                        .bind(b.blk_write_delta)
                        .bind(b.api_calls_max)
                        .bind(b.ai_interactions_max)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            }
            .await
        })
    }

    /// Deletes raw samples older than `before`; returns how many. Rollups are kept.
    pub async fn prune_usage_samples(&self, before: i64) -> Result<u64, StoreError> {
        write_tx!(self, "pruning usage samples", |tx| {
            sqlx::query("DELETE FROM usage_samples WHERE at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected())
        })
    }

    /// Every reported threshold level: (tenant, metric, period) → level.
    pub async fn usage_threshold_levels(
        &self,
    ) -> Result<BTreeMap<(String, String, String), i64>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT tenant, metric, period, level FROM usage_thresholds")
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading usage threshold levels"))?;
        Ok(rows
            .into_iter()
            .map(|(t, m, p, l)| ((t, m, p), l))
            .collect())
    }

    /// Records that `tenant`'s `metric` reached `level` percent in `period`, with a
    /// `usage.threshold` event carrying `message`, unless that level or a higher one was
    /// already reported in the period. True if recorded. One transaction: the level and its
    /// event are written together, and of two concurrent meters only one records.
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_usage_threshold(
        &self,
        tenant: &str,
        metric: &str,
        period: &str,
        level: i64,
        at: i64,
        message: &str,
    ) -> Result<bool, StoreError> {
        let routing = self.routing("usage.threshold");
        // Another level or period is another condition at the same revision.
        let condition = format!("{metric}/{period}/{level}");
        let event = super::NewEvent {
            at,
            run_id: None,
            tenant: Some(tenant),
            kind: "usage.threshold",
            message,
            term: self.term(),
            detail: None,
            condition: &condition,
        };
        let what = format!("recording a usage threshold of `{tenant}`");
        let (raised, queued) = write_tx!(self, what, |tx| {
            async {
                let raised = sqlx::query(RAISE_THRESHOLD)
                    .bind(tenant)
                    .bind(metric)
                    .bind(period)
                    .bind(level)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    > 0;
                let mut queued = 0;
                if raised {
                    (_, queued) = insert_event_routed!(tx, &routing, &event)?;
                }
                Ok::<_, sqlx::Error>((raised, queued))
            }
            .await
        })?;
        self.wake_notifier(queued);
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(
        tenant: &str,
        at: i64,
        cpu: Option<f64>,
        mem: i64,
        rx: i64,
        api: Option<i64>,
    ) -> UsageSample {
        UsageSample {
            tenant: tenant.into(),
            at,
            cpu_percent: cpu,
            memory_bytes: mem,
            memory_limit_bytes: 1 << 30,
            net_rx_bytes: rx,
            net_tx_bytes: rx / 2,
            blk_read_bytes: 0,
            blk_write_bytes: 0,
            api_calls_month: api,
            ai_interactions_month: api.map(|a| a / 10),
            month: api.map(|_| "2025-06".into()),
            storage_bytes: None,
        }
    }

    // 2025-06-01T10:00:00Z
    const T0: i64 = 1_748_772_000;

    fn story() -> Vec<UsageSample> {
        vec![
            sample("acme", T0 + 100, Some(10.0), 100, 1_000, Some(5)),
            sample("acme", T0 + 1_900, Some(30.0), 300, 1_500, Some(7)),
            // Next hour; the container restarted, so its rx counter starts again at 200.
            sample("acme", T0 + HOUR + 10, None, 200, 200, None),
            sample("acme", T0 + HOUR + 70, Some(20.0), 400, 700, Some(9)),
            sample("globex", T0 + 5, Some(1.0), 50, 0, Some(1)),
        ]
    }

    #[test]
    fn buckets_align_to_utc_hours_and_days() {
        assert_eq!(bucket_start(T0 + 3_599, HOUR), T0);
        assert_eq!(bucket_start(T0 + 3_600, HOUR), T0 + HOUR);
        assert_eq!(bucket_start(T0 + 5, DAY), T0 - 10 * HOUR);
    }

    #[test]
    fn hourly_buckets_aggregate_and_count_counter_growth() {
        let b = buckets(&story(), HOUR, T0);
        assert_eq!(b.len(), 3);
        let (h0, h1, g) = (&b[0], &b[1], &b[2]);
        assert_eq!((h0.tenant.as_str(), h0.bucket_start), ("acme", T0));
        assert_eq!((h0.samples, h0.cpu_samples), (2, 2));
        assert_eq!((h0.cpu_avg, h0.cpu_max), (Some(20.0), Some(30.0)));
        assert_eq!((h0.mem_avg, h0.mem_max), (200, 300));
        // The first reading has nothing before it; the second grew by 500.
        assert_eq!(h0.net_rx_delta, 500);
        assert_eq!(h0.api_calls_max, Some(7));
        assert_eq!(h1.bucket_start, T0 + HOUR);
        // CPU missing in one sample: averaged over the samples that have it.
        assert_eq!((h1.samples, h1.cpu_samples, h1.cpu_avg), (2, 1, Some(20.0)));
        // Reset to 200 counts 200, then +500.
        assert_eq!(h1.net_rx_delta, 700);
        assert_eq!(h1.api_calls_max, Some(9));
        assert_eq!(
            (g.tenant.as_str(), g.samples, g.net_rx_delta),
            ("globex", 1, 0)
        );
    }

    #[test]
    fn samples_before_from_only_give_the_previous_reading() {
        let b = buckets(&story(), HOUR, T0 + HOUR);
        assert_eq!(b.len(), 1);
        // Same growth as when everything was bucketed: the reading before the window counts.
        assert_eq!(b[0].net_rx_delta, 700);
        assert_eq!(b, buckets(&story(), HOUR, T0)[1..2]);
    }

    #[test]
    fn days_merged_from_hours_equal_days_from_samples() {
        let hours = buckets(&story(), HOUR, T0);
        let days = merge_buckets(&hours, Some(DAY));
        let direct = buckets(&story(), DAY, T0);
        assert_eq!(days, direct);
        assert_eq!(days[0].samples, 4);
        assert_eq!(days[0].cpu_avg, Some(20.0));
        assert_eq!(days[0].net_rx_delta, 1_200);
        // And again: the same input gives the same rows.
        assert_eq!(merge_buckets(&hours, Some(DAY)), days);
        // One window per tenant, starting at its first bucket.
        let window = merge_buckets(&hours, None);
        assert_eq!(window.len(), 2);
        assert_eq!((window[0].bucket_start, window[0].samples), (T0, 4));
    }
}
