//! The database: plans, themes and tenants as the SaaS application reads them, and the
//! reconciler's own records (runs, the event log, subnet allocations, the apply lock).
//! A SQLite file by default, PostgreSQL by URL.
//!
//! `Store` holds a small enum over `SqlitePool`/`PgPool` rather than an `AnyPool`: each backend
//! gets its own typed connect options (SQLite: create the file, WAL, busy timeout; PostgreSQL:
//! a connect probe that reports the real cause), values decode natively with no `Any` type
//! mapping in between, and there is no global driver registry to install. Every query is still
//! written once: `with_pool!` expands the same code for both pool types.
//!
//! Times are unix seconds (`i64`); lists and maps are JSON text, identical on both backends.

mod open;
mod url;

pub use url::redact;

use serde::Serialize;
use sqlx::postgres::PgPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::{Connection, FromRow};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long opening waits for a PostgreSQL server before giving up with a clear error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a SQLite statement waits for another process's write to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Enough for bounded apply parallelism plus a reader; small because SQLite writes serialise anyway.
const MAX_CONNECTIONS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL `{url}`: use sqlite://PATH, sqlite:PATH, postgres://USER@HOST/DB or postgresql://USER@HOST/DB"
    )]
    UnsupportedUrl { url: String },
    #[error("invalid database URL `{url}`: {message}")]
    InvalidUrl { url: String, message: String },
    // The causes below are named `error`, not `source`: their text is already in the message, and
    // a `source` would print twice under `{:#}`.
    #[error("cannot create {}: {error}", path.display())]
    CreateDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot connect to the database at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("cannot connect to the database at {url}: no answer within {} seconds", timeout.as_secs())]
    ConnectTimeout { url: String, timeout: Duration },
    #[error("migrating the database at {url} failed: {message}")]
    Migrate { url: String, message: String },
    #[error("database error while {what} ({url}): {error}")]
    Query {
        what: String,
        url: String,
        error: sqlx::Error,
    },
    #[error("no reconcile run with id {id} in {url}")]
    NoSuchRun { id: i64, url: String },
    /// A write under a [`Fence`] whose lease this process no longer holds.
    #[error(
        "write refused: this process ({holder}) no longer leads (it wrote as term {term}; {why}); it stops applying"
    )]
    Fenced {
        term: i64,
        holder: String,
        why: String,
    },
    #[error(
        "the SQLite database {url} is in use by host `{host}` ({holder}); a SQLite file cannot be shared across hosts — use PostgreSQL: --database-url postgres://USER@HOST/DB"
    )]
    SharedSqlite {
        url: String,
        host: String,
        holder: String,
    },
}

impl StoreError {
    /// A deposed leader's write: the caller stops, rather than retrying.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StoreError::Fenced { .. })
    }
}

/// Why a write failed: the database, or the fence.
enum WriteError {
    Sql(sqlx::Error),
    /// Always [`StoreError::Fenced`].
    Fenced(StoreError),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> WriteError {
        WriteError::Sql(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

#[derive(Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the store holds; both arms must agree on type.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` (a `Result<T, sqlx::Error>` written with `&mut *$tx`) in a transaction of its own
/// and commits it; in a [`Store::fenced`] handle, the fence is checked first, inside the same
/// transaction (see [`leader`]). SQLite takes its write lock at `BEGIN IMMEDIATE`, so the check
/// and the write see one state; PostgreSQL locks the lease row `FOR SHARE`, so a takeover waits
/// for the write to commit, or the write sees the takeover. Evaluates to `Result<T, StoreError>`.
macro_rules! write_tx {
    ($store:expr, $what:expr, |$tx:ident| $body:expr) => {{
        let store: &Store = &$store;
        let result: Result<_, WriteError> = async {
            if let Some(fence) = &store.fence {
                fence.check_local()?;
            }
            match &store.pool {
                Pool::Sqlite(pool) => {
                    let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    if let Some(fence) = &store.fence {
                        let row = sqlx::query_as($crate::store::leader::SQLITE.fence)
                            .bind($crate::store::leader::ELECTION)
                            .fetch_optional(&mut *$tx)
                            .await?;
                        fence.verdict(row)?;
                    }
                    let out = $body?;
                    $tx.commit().await?;
                    Ok(out)
                }
                Pool::Postgres(pool) => {
                    let mut $tx = pool.begin().await?;
                    if let Some(fence) = &store.fence {
                        let row = sqlx::query_as($crate::store::leader::POSTGRES.fence)
                            .bind($crate::store::leader::ELECTION)
                            .fetch_optional(&mut *$tx)
                            .await?;
                        fence.verdict(row)?;
                    }
                    let out = $body?;
                    $tx.commit().await?;
                    Ok(out)
                }
            }
        }
        .await;
        result.map_err(|e| match e {
            WriteError::Sql(error) => StoreError::Query {
                what: String::from($what),
                url: store.redacted_url.clone(),
                error,
            },
            WriteError::Fenced(e) => e,
        })
    }};
}

/// Inside a write transaction `$tx`: appends one audit event (`&NewEvent`) and queues it for
/// each notification of its `&EventRouting` (read before the transaction opened), so no event
/// kind reaches the audit log without reaching the notifications that want it. Evaluates to
/// `Result<(id, queued), sqlx::Error>`; the caller wakes the notifier once committed when
/// anything was queued ([`Store::wake_notifier`]).
macro_rules! insert_event_routed {
    ($tx:ident, $routing:expr, $event:expr) => {
        async {
            let routing: &$crate::store::EventRouting = $routing;
            let ev: &$crate::store::NewEvent<'_> = $event;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO events (at, run_id, tenant, kind, message, term, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(ev.at)
            .bind(ev.run_id)
            .bind(ev.tenant)
            .bind(ev.kind)
            .bind(ev.message)
            .bind(ev.term)
            .bind(ev.detail)
            .fetch_one(&mut *$tx)
            .await?;
            let mut queued: u64 = 0;
            if !routing.names.is_empty() {
                // The revision the event belongs to: its run's, else the one loaded last.
                let revision = match ev.run_id {
                    Some(run) => sqlx::query_scalar::<_, String>(
                        "SELECT revision FROM reconcile_runs WHERE id = $1",
                    )
                    .bind(run)
                    .fetch_optional(&mut *$tx)
                    .await?
                    .unwrap_or_else(|| routing.fallback_revision.clone()),
                    None => routing.fallback_revision.clone(),
                };
                for name in &routing.names {
                    queued += sqlx::query($crate::store::outbox::ENQUEUE)
                        .bind(name)
                        .bind(ev.tenant.unwrap_or(""))
                        .bind(ev.kind)
                        .bind(&revision)
                        .bind(ev.condition)
                        .bind(id)
                        .bind($crate::store::now_unix())
                        .execute(&mut *$tx)
                        .await?
                        .rows_affected();
                }
            }
            Ok::<(i64, u64), sqlx::Error>((id, queued))
        }
        .await
    };
}

// After the macros: `usage` and `leader` expand them, and macros are visible only below their
// definition.
mod access;
mod changes;
mod events;
mod invoices;
pub mod leader;
mod logs;
mod observe;
pub mod outbox;
mod records;
mod usage;

pub use events::{EventRouting, NewEvent};
pub use invoices::InvoiceRow;
pub use leader::{Fence, LeaderRow};
pub use logs::{LogLineRow, LogStream, NewLogLine};

pub use changes::RowChanges;
pub use usage::{
    DAY, HOUR, Rollup, RollupReport, UsageBucket, UsageSample, bucket_start, buckets, merge_buckets,
};

/// A handle on the database; cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    redacted_url: String,
    /// Set on a leader's handle ([`Store::fenced`]): every write checks it.
    fence: Option<Fence>,
    /// This database's installation id (the `meta` table), read once at open.
    installation: String,
    /// The notifications events are matched against, shared by every handle of this pool.
    notifier: std::sync::Arc<outbox::Notifier>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("url", &self.redacted_url)
            .field("fence", &self.fence)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedDb {
    pub plans: BTreeMap<String, PlanRow>,
    pub themes: BTreeMap<String, ThemeRow>,
    pub tenants: BTreeMap<String, TenantRow>,
    /// `tenant_features`: tenant → flag → source (`plan` or `tenant`).
    pub features: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct PlanRow {
    pub name: String,
    pub display_name: String,
    pub price_cents: i64,
    pub currency: String,
    pub cycle: String,
    pub trial_days: i64,
    pub nano_cpus: i64,
    pub memory_bytes: i64,
    pub pids: i64,
    /// None: unlimited.
    pub storage_bytes: Option<i64>,
    /// None: unlimited.
    pub api_calls_per_month: Option<i64>,
    /// None: unlimited.
    pub ai_interactions_per_month: Option<i64>,
    /// None: unlimited.
    pub users: Option<i64>,
    /// None: no rate limit.
    pub rate_limit_rpm: Option<i64>,
    /// JSON array of feature names.
    pub features: String,
    pub revision: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ThemeRow {
    pub name: String,
    pub display_name: String,
    pub version: String,
    /// None: the built-in site.
    pub image: Option<String>,
    pub port: i64,
    pub health_path: String,
    pub health_interval_seconds: i64,
    /// JSON object of the theme's look.
    pub config: String,
    pub revision: String,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct TenantRow {
    pub slug: String,
    pub display_name: String,
    pub owner: String,
    pub plan: String,
    pub theme: String,
    /// `active`, `suspended`, `cancelled`, `failed`, ...
    pub state: String,
    pub domain: Option<String>,
    /// JSON array of the tenant's own features.
    pub features: String,
    pub trial_ends_at: Option<i64>,
    pub api_key_sha256: Option<String>,
    /// The commit the tenant last converged at: the settings above are that revision's.
    pub applied_revision: Option<String>,
    pub applied_spec_hash: Option<String>,
    pub url: Option<String>,
    pub last_error: Option<String>,
    /// The commit an apply last tried for the tenant: differs from `applied_revision` while a
    /// change is pending or failed (the settings above then stay those of what runs).
    pub desired_revision: Option<String>,
    /// Set when the row is first written; later upserts keep it.
    pub created_at: i64,
    pub updated_at: i64,
    /// The provisioning step an apply is at (`network` … `record`), `done` once the tenant
    /// converged, `failed` once it gave up; none before any apply changed it on the engine.
    /// Written only by [`Store::set_tenant_progress`] and [`Store::end_tenant_progress`]
    /// (an upsert of the row keeps it).
    pub progress_step: Option<String>,
    /// 0..=100: the share of the tenant's steps finished.
    pub progress_percent: Option<i64>,
    /// When the progress last moved (unix seconds).
    pub progress_at: Option<i64>,
    /// The step the last failure happened at, beside `last_error`.
    pub error_step: Option<String>,
}

/// One reconcile pass.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct RunRow {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub revision: String,
    /// `running` until `finish_run`.
    pub status: String,
    pub summary: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub run_id: Option<i64>,
    pub tenant: Option<String>,
    pub kind: String,
    pub message: String,
}

/// One line of the audit log with its run's revision, its term and what it changed.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub run_id: Option<i64>,
    pub tenant: Option<String>,
    pub kind: String,
    pub message: String,
    /// The revision of the run that recorded it (none for events outside a run).
    pub revision: Option<String>,
    /// The leader term it was written under (none outside `watch`).
    pub term: Option<i64>,
    /// JSON: the fields it changed, before and after (none for older rows and other events).
    pub detail: Option<String>,
}

/// Which audit rows to read (see [`Store::audit_events`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub tenant: Option<String>,
    /// A SQL `LIKE` pattern with `\` as its escape character.
    pub kind_like: Option<String>,
    /// Unix seconds: only rows at or after.
    pub since: Option<i64>,
    /// Only rows with a greater id, oldest first.
    pub after: Option<i64>,
    pub limit: i64,
}

macro_rules! audit_select {
    () => {
        "SELECT e.id, e.at, e.run_id, e.tenant, e.kind, e.message, r.revision, e.term, e.detail \
         FROM events e LEFT JOIN reconcile_runs r ON r.id = e.run_id \
         WHERE ($1 IS NULL OR e.tenant = $1) AND ($2 IS NULL OR e.kind LIKE $2 ESCAPE '\\') \
         AND ($3 IS NULL OR e.at >= $3) AND e.id > $4"
    };
}
const AUDIT_NEWEST: &str = concat!(audit_select!(), " ORDER BY e.id DESC LIMIT $5");
const AUDIT_AFTER: &str = concat!(audit_select!(), " ORDER BY e.id ASC LIMIT $5");

/// A named lease; free once `expires_at` has passed.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct LockRow {
    pub name: String,
    pub holder: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

// The statements are constants so that neither dialect needs `format!` (and `AssertSqlSafe`) at run time.
const SELECT_PLANS: &str = "SELECT name, display_name, price_cents, currency, cycle, trial_days, nano_cpus, memory_bytes, \
     pids, storage_bytes, api_calls_per_month, ai_interactions_per_month, users, rate_limit_rpm, features, revision, \
     updated_at FROM plans";
const SELECT_THEMES: &str = "SELECT name, display_name, version, image, port, health_path, health_interval_seconds, \
     config, revision, updated_at FROM themes";
const SELECT_TENANTS: &str = "SELECT slug, display_name, owner, plan, theme, state, domain, features, trial_ends_at, \
     api_key_sha256, applied_revision, applied_spec_hash, url, last_error, desired_revision, created_at, updated_at, \
     progress_step, progress_percent, progress_at, error_step FROM tenants";
/// [`SELECT_TENANTS`] of one slug.
const SELECT_TENANT: &str = "SELECT slug, display_name, owner, plan, theme, state, domain, features, trial_ends_at, \
     api_key_sha256, applied_revision, applied_spec_hash, url, last_error, desired_revision, created_at, updated_at, \
     progress_step, progress_percent, progress_at, error_step FROM tenants WHERE slug = $1";

// Taken when free, expired, or already ours (a renewal keeps the original acquired_at).
const TRY_LOCK: &str = "INSERT INTO locks (name, holder, acquired_at, expires_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
     acquired_at = CASE WHEN locks.holder = excluded.holder AND locks.expires_at > excluded.acquired_at \
     THEN locks.acquired_at ELSE excluded.acquired_at END, \
     expires_at = excluded.expires_at \
     WHERE locks.holder = excluded.holder OR locks.expires_at <= excluded.acquired_at";

/// The `meta` key of this database's installation id (made once, by migration 0005).
const META_INSTALLATION: &str = "installation_id";
/// The `meta` key prefix of an installation whose objects `apply --adopt` took over.
const META_ADOPTED: &str = "adopted:";

/// Seconds since the Unix epoch; a clock before 1970 counts as 0.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Opens the database at `url` (`sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:`,
    /// `postgres://…`, `postgresql://…`) and brings its schema up to date.
    ///
    /// For SQLite the file and its parent directory are created if missing, and a parent named
    /// `.tenantctl` gets a `.gitignore` holding `*` so git ignores it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, true).await
    }

    /// Opens the database at `url` only if it exists: `None` for a SQLite file that is not
    /// there, and nothing (file or folder) is created. A PostgreSQL database lives on its server;
    /// it is opened as [`Store::open`] does (and is "new" only when it holds no rows).
    pub async fn open_existing(url: &str) -> Result<Option<Store>, StoreError> {
        if Store::missing_file(url).is_some() {
            return Ok(None);
        }
        Store::open_with(url, false).await.map(Some)
    }

    /// The SQLite file `url` names, when it does not exist yet.
    pub fn missing_file(url: &str) -> Option<PathBuf> {
        if url::backend_of(url) != Some(Backend::Sqlite) || url::sqlite_in_memory(url) {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let file = options.get_filename();
        (!file.as_os_str().is_empty() && !file.exists()).then(|| file.to_path_buf())
    }

    /// An empty database in memory (migrated, nothing written anywhere): what a read-only
    /// command reads when the state database does not exist.
    pub async fn empty() -> Result<Store, StoreError> {
        Store::open("sqlite::memory:").await
    }

    async fn open_with(url: &str, create: bool) -> Result<Store, StoreError> {
        let redacted_url = redact(url);
        let pool = match url::backend_of(url) {
            Some(Backend::Sqlite) => {
                Pool::Sqlite(open::open_sqlite(url, &redacted_url, create).await?)
            }
            Some(Backend::Postgres) => {
                Pool::Postgres(open::open_postgres(url, &redacted_url).await?)
            }
            None => {
                return Err(StoreError::UnsupportedUrl { url: redacted_url });
            }
        };
        let mut store = Store {
            pool,
            redacted_url,
            fence: None,
            installation: String::new(),
            notifier: Default::default(),
        };
        store.migrate().await?;
        store.installation = store
            .read_meta(META_INSTALLATION)
            .await?
            .unwrap_or_default();
        Ok(store)
    }

    /// The default database of a repository: the SQLite file `<repo>/.tenantctl/state.db`.
    pub fn default_url(repo_root: &Path) -> String {
        let file = repo_root.join(".tenantctl").join("state.db");
        format!(
            "sqlite://{}",
            url::sqlite_path_escape(&file.to_string_lossy())
        )
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The URL this store was opened with, its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        self.redacted_url.clone()
    }

    /// This database's installation id: made once when the database is created (or upgraded
    /// to the version that has one), and written as the `tenantctl.installation` label on every
    /// object tenantctl creates with it.
    pub fn installation_id(&self) -> &str {
        &self.installation
    }

    async fn read_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })
        .map_err(self.query_failed(format!("reading `{key}` from meta")))
    }

    /// The installations whose objects this database took over (`apply --adopt`): id → when
    /// and where. Their labels are accepted until the objects are next replaced.
    pub async fn adopted_installations(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT key, value FROM meta WHERE substr(key, 1, 8) = $1")
                .bind(META_ADOPTED)
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading adopted installations"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(META_ADOPTED)?.to_string(), v)))
            .collect())
    }

    /// Records that this database took over the objects of installation `id` (the first note
    /// is kept).
    pub async fn record_adopted(&self, id: &str, note: &str) -> Result<(), StoreError> {
        write_tx!(
            self,
            format!("recording installation {id} as adopted"),
            |tx| {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(format!("{META_ADOPTED}{id}"))
                .bind(note)
                .execute(&mut *tx)
                .await
                .map(|_| ())
            }
        )
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let failed = |e: &dyn fmt::Display| StoreError::Migrate {
            url: self.redacted_url.clone(),
            message: e.to_string(),
        };
        match &self.pool {
            Pool::Sqlite(pool) => {
                // SQLite's migrator takes no lock, so two processes opening a fresh file could both
                // apply 0001; holding the write lock (BEGIN IMMEDIATE) makes the second wait and then
                // find the schema already there.
                let mut conn = pool.acquire().await.map_err(|e| failed(&e))?;
                let mut tx = conn
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(|e| failed(&e))?;
                // `run_direct` (public, doc-hidden) rather than `run`: `run`'s generic `Acquire`
                // bound on a `&mut SqliteConnection` makes `Store::open` "not general enough" to spawn.
                sqlx::migrate!("./migrations/sqlite")
                    .run_direct(None, &mut *tx, false)
                    .await
                    .map_err(|e| failed(&e))?;
                tx.commit().await.map_err(|e| failed(&e))?;
            }
            // PostgreSQL's migrator serialises concurrent runs with an advisory lock.
            Pool::Postgres(pool) => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .map_err(|e| failed(&e))?,
        }
        Ok(())
    }

    fn query_failed(&self, what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let what = what.into();
        let url = self.redacted_url.clone();
        move |error| StoreError::Query { what, url, error }
    }

    /// `SELECT 1`: whether the database answers (a readiness check; the caller bounds the wait).
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))
        .map_err(self.query_failed("SELECT 1"))
    }

    /// Records the start of a reconcile pass at `revision` (with the leader's term, in a fenced
    /// handle); returns its id.
    pub async fn start_run(&self, revision: &str) -> Result<i64, StoreError> {
        let term = self.fence.as_ref().map(|f| f.term);
        write_tx!(self, "starting a reconcile run", |tx| {
            sqlx::query_scalar(
                "INSERT INTO reconcile_runs (started_at, revision, status, summary, term) \
                 VALUES ($1, $2, 'running', '', $3) RETURNING id",
            )
            .bind(now_unix())
            .bind(revision)
            .bind(term)
            .fetch_one(&mut *tx)
            .await
        })
    }

    /// Stamps a run finished with its final status and summary.
    pub async fn finish_run(&self, id: i64, status: &str, summary: &str) -> Result<(), StoreError> {
        let updated = write_tx!(self, format!("finishing reconcile run {id}"), |tx| {
            sqlx::query(
                "UPDATE reconcile_runs SET finished_at = $1, status = $2, summary = $3 WHERE id = $4",
            )
            .bind(now_unix())
            .bind(status)
            .bind(summary)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map(|r| r.rows_affected())
        })?;
        if updated == 0 {
            return Err(StoreError::NoSuchRun {
                id,
                url: self.redacted_url.clone(),
            });
        }
        Ok(())
    }

    /// The newest runs first, at most `limit`.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, started_at, finished_at, revision, status, summary FROM reconcile_runs \
                 ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed("reading reconcile runs"))
    }

    /// Every recorded tenant network: slug to subnet (CIDR text).
    pub async fn networks(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows: Vec<(String, String)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT slug, subnet FROM tenant_networks")
                .fetch_all(pool)
                .await
        })
        .map_err(self.query_failed("reading tenant networks"))?;
        Ok(rows.into_iter().collect())
    }

    /// Records `subnet` for `slug` unless either is already taken. True if `slug` now holds
    /// exactly `subnet` (also when it already did); false if the slug holds another subnet or
    /// the subnet belongs to another tenant, so the caller picks again.
    pub async fn assign_network(&self, slug: &str, subnet: &str) -> Result<bool, StoreError> {
        let what = format!("assigning subnet {subnet} to `{slug}`");
        let held: Option<String> = write_tx!(self, what, |tx| {
            async {
                // DO NOTHING on either unique key: concurrent allocators never fail, one simply loses.
                sqlx::query(
                    "INSERT INTO tenant_networks (slug, subnet) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(slug)
                .bind(subnet)
                .execute(&mut *tx)
                .await?;
                sqlx::query_scalar::<_, String>("SELECT subnet FROM tenant_networks WHERE slug = $1")
                    .bind(slug)
                    .fetch_optional(&mut *tx)
                    .await
            }
            .await
        })?;
        Ok(held.as_deref() == Some(subnet))
    }

    /// Forgets a tenant's subnet (after its network is removed); true if there was one.
    pub async fn release_network(&self, slug: &str) -> Result<bool, StoreError> {
        write_tx!(self, format!("releasing the subnet of `{slug}`"), |tx| {
            sqlx::query("DELETE FROM tenant_networks WHERE slug = $1")
                .bind(slug)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }

    /// Takes (or renews, for the same holder) the lease `name` for `ttl`. False if another holder
    /// has it and it has not expired. Atomic on both backends: one statement, one winner.
    pub async fn try_lock(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_unix();
        let expires = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        write_tx!(self, format!("taking lock `{name}`"), |tx| {
            sqlx::query(TRY_LOCK)
                .bind(name)
                .bind(holder)
                .bind(now)
                .bind(expires)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() == 1)
        })
    }

    /// Releases the lease if `holder` has it; true if it did.
    pub async fn unlock(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        write_tx!(self, format!("releasing lock `{name}`"), |tx| {
            sqlx::query("DELETE FROM locks WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(&mut *tx)
                .await
                .map(|r| r.rows_affected() > 0)
        })
    }

    /// The lease row, expired or not, if any.
    pub async fn lock_info(&self, name: &str) -> Result<Option<LockRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, holder, acquired_at, expires_at FROM locks WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await
        })
        .map_err(self.query_failed(format!("reading lock `{name}`")))
    }

    /// Every lease row named `prefix` or `prefix:…` (every row when `prefix` is empty), expired
    /// or not: the presence rows of reconcile loops are `watch:<holder>`.
    pub async fn lock_rows(&self, prefix: &str) -> Result<Vec<LockRow>, StoreError> {
        with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, holder, acquired_at, expires_at FROM locks \
                 WHERE $1 = '' OR name = $1 OR substr(name, 1, length($1) + 1) = $1 || ':' \
                 ORDER BY name",
            )
            .bind(prefix)
            .fetch_all(pool)
            .await
        })
        .map_err(self.query_failed(format!("reading locks `{prefix}`")))
    }

    /// Closes every connection, waiting for queries in flight; clones share the pool, so this closes them too.
    pub async fn close(self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

pub mod keys_file;
pub use access::{ApiKeyRow, FeatureRow, key_id};

#[cfg(test)]
mod tests;
