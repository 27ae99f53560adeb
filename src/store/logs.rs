//! Log history rows: each tenant container's output as `watch` and `tenantctl logs sync` copy
//! it (see `crate::logs`). A line is keyed by (source, engine timestamp, stream, seq), so
//! storing it again changes nothing; a source is one container, named once in `log_sources`.

use super::{Pool, Store, StoreError, WriteError};
use serde::Serialize;
use sqlx::FromRow;
use std::sync::LazyLock;

/// Which of a container's streams a line came from (stored as 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn code(self) -> i32 {
        match self {
            LogStream::Stdout => 1,
            LogStream::Stderr => 2,
        }
    }

    pub fn from_code(code: i32) -> LogStream {
        if code == 2 {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        }
    }
}

/// One line to store under a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogLine {
    /// The engine's timestamp of the line, unix nanoseconds.
    pub at_ns: i64,
    pub stream: LogStream,
    /// Its place among the lines of this source with the same timestamp and stream.
    pub seq: i32,
    /// The line without its newline.
    pub line: String,
}

/// A stored line as `tenantctl logs` reads it.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct LogLineRow {
    pub container_id: String,
    pub at_ns: i64,
    pub stream: i32,
    pub seq: i32,
    pub line: String,
}

/// Rows per multi-row INSERT: 5 values each, well below both databases' parameter limits.
const BATCH: usize = 400;

const INSERT_ONE: &str = "INSERT INTO tenant_logs (source, at_ns, stream, seq, line) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// The INSERT of [`BATCH`] rows, made once.
static INSERT_BATCH: LazyLock<String> = LazyLock::new(|| {
    let values: Vec<String> = (0..BATCH)
        .map(|i| {
            let b = i * 5;
            format!(
                "(${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            )
        })
        .collect();
    format!(
        "INSERT INTO tenant_logs (source, at_ns, stream, seq, line) VALUES {} ON CONFLICT DO NOTHING",
        values.join(", ")
    )
});

macro_rules! select_lines {
    () => {
        "SELECT s.container_id, l.at_ns, l.stream, l.seq, l.line \
         FROM tenant_logs l JOIN log_sources s ON s.id = l.source \
         WHERE s.tenant = $1 AND l.at_ns >= $2"
    };
}
const LINES_ALL: &str = concat!(
    select_lines!(),
    " ORDER BY l.at_ns, l.source, l.stream, l.seq"
);
const LINES_NEWEST: &str = concat!(
    select_lines!(),
    " ORDER BY l.at_ns DESC, l.source DESC, l.stream DESC, l.seq DESC LIMIT $3"
);

impl Store {
    /// The id of the log source of container `container_id` (made on first sight).
    pub async fn log_source(
        &self,
        tenant: &str,
        container_id: &str,
        container_name: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        write_tx!(
            self,
            format!("recording log source {container_name}"),
            |tx| {
                async {
                    sqlx::query(
                        "INSERT INTO log_sources (tenant, container_id, container_name, first_seen) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (container_id) DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(container_id)
                    .bind(container_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query_scalar::<_, i64>(
                        "SELECT id FROM log_sources WHERE container_id = $1",
                    )
                    .bind(container_id)
                    .fetch_one(&mut *tx)
                    .await
                }
                .await
            }
        )
    }

    /// The newest stored timestamp of a source (unix nanoseconds), if it has lines.
    pub async fn last_log_at(&self, source: i64) -> Result<Option<i64>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(at_ns) FROM tenant_logs WHERE source = $1",
            )
            .bind(source)
            .fetch_one(pool)
            .await
        })
        .map_err(self.query_failed("reading the log history"))
    }

    /// Stores `lines` of `source` in one transaction, [`BATCH`] rows a statement; a line
    /// already there is skipped. Returns how many were new.
    pub async fn insert_log_lines(
        &self,
        source: i64,
        lines: &[NewLogLine],
    ) -> Result<u64, StoreError> {
        if lines.is_empty() {
            return Ok(0);
        }
        write_tx!(self, "storing log lines", |tx| {
            async {
                let mut added = 0;
                let mut chunks = lines.chunks_exact(BATCH);
                for chunk in chunks.by_ref() {
                    let mut q = sqlx::query(INSERT_BATCH.as_str());
                    for l in chunk {
                        q = q
                            .bind(source)
                            .bind(l.at_ns)
                            .bind(l.stream.code())
                            .bind(l.seq)
                            .bind(&l.line);
                    }
                    added += q.execute(&mut *tx).await?.rows_affected();
                }
                for l in chunks.remainder() {
                    added += sqlx::query(INSERT_ONE)
                        .bind(source)
                        .bind(l.at_ns)
                        .bind(l.stream.code())
                        .bind(l.seq)
                        .bind(&l.line)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                Ok::<_, sqlx::Error>(added)
            }
            .await
        })
    }

    /// A tenant's stored lines from `since_ns` on, oldest first: all, or the newest `tail`.
    pub async fn log_lines(
        &self,
        tenant: &str,
        since_ns: i64,
        tail: Option<i64>,
    ) -> Result<Vec<LogLineRow>, StoreError> {
        let mut rows: Vec<LogLineRow> = with_pool!(self, |pool| {
            match tail {
                None => {
                    sqlx::query_as(LINES_ALL)
                        .bind(tenant)
                        .bind(since_ns)
                        .fetch_all(pool)
                        .await
                }
                Some(n) => {
                    sqlx::query_as(LINES_NEWEST)
                        .bind(tenant)
                        .bind(since_ns)
                        .bind(n)
                        .fetch_all(pool)
                        .await
                }
            }
        })
        .map_err(self.query_failed(format!("reading the log history of `{tenant}`")))?;
        if tail.is_some() {
            rows.reverse();
        }
        Ok(rows)
    }

    /// Deletes lines older than `before_ns`; returns how many. Each source's lines are a range
    /// of its primary key, so this reads only what it deletes.
    pub async fn prune_log_lines(&self, before_ns: i64) -> Result<u64, StoreError> {
        let sources: Vec<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM log_sources")
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading log sources"))?;
        let mut pruned = 0;
        for source in sources {
            pruned += write_tx!(self, "pruning the log history", |tx| {
                sqlx::query("DELETE FROM tenant_logs WHERE source = $1 AND at_ns < $2")
                    .bind(source)
                    .bind(before_ns)
                    .execute(&mut *tx)
                    .await
                    .map(|r| r.rows_affected())
            })?;
        }
        Ok(pruned)
    }

    /// How many lines are stored (all tenants).
    pub async fn log_line_count(&self) -> Result<i64, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tenant_logs")
                .fetch_one(pool)
                .await
        })
        .map_err(self.query_failed("counting the log history"))
    }
}
