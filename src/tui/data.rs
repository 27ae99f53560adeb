//! What the background side hands the dashboard, and what the dashboard asks of it.
//!
//! The UI never waits on Docker, git or the database: workers send [`Update`]s over a channel and
//! the UI sends [`Request`]s back; the newest request of a kind replaces one still waiting.

use crate::status::{Health, SyncStatus};

/// One row of the [`Board`]'s tenant table: status joined with live usage and the plan's limits.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BoardRow {
    pub slug: String,
    pub plan: Option<String>,
    pub theme: Option<String>,
    /// Lifecycle state (active, suspended, cancelled).
    pub state: Option<String>,
    pub sync: Option<SyncStatus>,
    pub health: Option<Health>,
    pub health_reason: Option<String>,
    /// The planner's pending changes for this tenant, one line each.
    pub sync_reasons: Vec<String>,
    /// Percent of one CPU, from the last two stats readings.
    pub cpu_percent: Option<f64>,
    /// The plan's CPUs (1.0 = one CPU).
    pub cpu_limit: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// The plan's memory limit.
    pub memory_limit: Option<u64>,
    /// API calls this month (from the site's counters) and the plan's monthly quota.
    pub api_calls: Option<i64>,
    pub api_quota: Option<i64>,
    /// Unix time the container started (running containers only).
    pub started_at: Option<i64>,
    pub url: Option<String>,
    /// What a customer reaches there: `answers 200 in 3 ms`, `no answer: connection refused`.
    pub probe: Option<String>,
    pub last_error: Option<String>,
    /// The data volume's size as last metered, and the plan's `storage`.
    pub storage_bytes: Option<i64>,
    pub storage_limit: Option<i64>,
    /// Provisioning in flight or failed, from the row: `provisioning: at step health (71%)`.
    pub progress: Option<String>,
    /// The file in the repository that declares the tenant (None when it is not in git).
    pub file: Option<String>,
}

/// Who runs the reconcile loop the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LoopRunner {
    /// This process runs it (the default) and leads.
    #[default]
    InProcess,
    /// This process runs it but stands by: another loop (`leader`, when known) holds the leader
    /// lease in the database and applies; this one takes over if that lease lapses.
    Standby { leader: Option<String> },
    /// Read-only: another process (`tenantctl watch`, by its lease holder `host:pid:…`) runs it.
    External { holder: String },
    /// Read-only and nothing reconciles: the dashboard only observes.
    None,
}

/// The top bar.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    pub namespace: String,
    /// The ref followed (`HEAD`, a branch, a tag).
    pub reference: String,
    /// The commit the dashboard compares with (the ref followed, resolved).
    pub revision: Option<String>,
    /// The newest commit applied (from the last successful reconcile run).
    pub applied_revision: Option<String>,
    /// Changes the planner would make now.
    pub pending_changes: usize,
    /// Unix time the last reconcile pass ended (in-process), or the last apply run that changed
    /// something finished (read-only: no-op passes of another process leave no trace), and how.
    pub last_reconcile: Option<i64>,
    pub last_reconcile_status: Option<String>,
    pub reconciler: LoopRunner,
    /// Why the revision could not be used (invalid commit, engine down …), if so.
    pub error: Option<String>,
}

/// What the dashboard's main screen shows of one whole observation: the header and every
/// tenant's row, replacing the previous board.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Board {
    pub header: Header,
    pub rows: Vec<BoardRow>,
    /// Unix time of the observation.
    pub at: i64,
}

/// One line of the audit log, for the detail view.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    pub at: i64,
    pub kind: String,
    pub message: String,
}

/// A usage history against a limit, oldest first, for sparklines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub points: Vec<u64>,
    pub limit: Option<u64>,
}

/// What the detail view shows of one tenant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Detail {
    pub slug: String,
    /// The tenant's spec as committed (YAML), or why it is not in git.
    pub spec: String,
    /// The same unified diff as `plan` (uncoloured; the UI colours it), empty when in sync.
    pub diff: String,
    pub events: Vec<EventLine>,
    /// CPU in hundredths of a percent of one CPU, limit = plan CPUs × 10 000.
    pub cpu: Series,
    /// Memory in bytes against the plan's memory.
    pub memory: Series,
}

/// One log line of the followed tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The engine's RFC 3339 timestamp, split off the line.
    pub timestamp: Option<String>,
    pub stderr: bool,
    pub text: String,
}

/// A one-key action the user confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAction {
    /// Reconcile everything now.
    SyncAll,
    /// Reconcile one tenant now.
    SyncTenant(String),
    /// Restart the tenant's container (not a desired-state change).
    Restart(String),
}

impl UserAction {
    pub fn describe(&self) -> String {
        match self {
            UserAction::SyncAll => "sync all tenants".to_string(),
            UserAction::SyncTenant(s) => format!("sync tenant {s}"),
            UserAction::Restart(s) => format!("restart the container of {s}"),
        }
    }
}

/// Background → UI.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Board(Box<Board>),
    Detail(Box<Detail>),
    /// Log lines of `slug`'s stream (lines of another tenant than the one shown are dropped).
    Logs {
        slug: String,
        lines: Vec<LogLine>,
    },
    /// Something about the log stream itself (container replaced, stream ended …).
    LogNote {
        slug: String,
        message: String,
    },
    /// A line of the reconcile loop's progress, or of an action.
    Activity(String),
    /// An action finished: `Ok(message)` or `Err(reason)`.
    ActionDone {
        action: UserAction,
        result: Result<String, String>,
    },
    /// A background fault the user should see (engine or database down); the worker retries.
    Fault(String),
}

/// UI → background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Observe again now.
    Refresh,
    /// Load (and keep refreshing) the detail of this tenant; `None` stops.
    Detail(Option<String>),
    /// Stream this tenant's logs (the last `tail` lines, then follow); `None` stops.
    Logs {
        slug: Option<String>,
        tail: u64,
    },
    Run(UserAction),
}
