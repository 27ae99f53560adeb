//! The command line: argument parsing and wiring only; the work is in the library.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tenantctl::apply;
use tenantctl::model::{self, DesiredState, Diagnostic, slug_problem};
use tenantctl::plan::render::{self, Style};
use tenantctl::plan::trial::{self, TrialEnded};
use tenantctl::plan::{self, ObservedState, PlanOptions};
use tenantctl::runtime::{Runtime, RuntimeKind};
use tenantctl::source::{self, Repo, Snapshot};
use tenantctl::store::Store;
use tenantctl::usage;

/// GitOps for tenants: plans, themes and tenants are YAML files in git; tenantctl diffs them
/// against the running Docker containers and the database and shows what it would change.
#[derive(Parser, Debug)]
#[command(name = "tenantctl", version, max_term_width = 100)]
struct Cli {
    /// Prefix of every container, network and volume name, and the value of the
    /// `tenantctl.namespace` label: reconcilers with different namespaces never touch each other.
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_NAMESPACE",
        default_value = "tenantctl"
    )]
    namespace: String,
    /// The state repository [default: the git repository around the current directory]
    #[arg(long, global = true, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB
    /// [default: sqlite file .tenantctl/state.db in the repository, which git ignores]
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// What tenants run as: `docker` containers on this engine, or `swarm` services of the swarm
    /// this engine manages (replicas, rolling updates with automatic rollback, placement)
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_RUNTIME",
        value_name = "docker|swarm",
        default_value = "docker"
    )]
    runtime: tenantctl::runtime::RuntimeKind,
    #[command(subcommand)]
    command: Command,
}

/// The engine connection for this command, in the runtime mode asked for.
async fn connect_runtime(cli: &Cli) -> Result<Runtime, tenantctl::runtime::RuntimeError> {
    Runtime::connect(&cli.namespace)
        .await?
        .with_kind(cli.runtime)
        .await
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check every file under plans/, themes/ and tenants/; needs no Docker or database.
    ///
    /// Reads the files on disk (committed or not) unless --ref names a commit. Prints every
    /// problem as `path:line:column: message` with a hint, and exits 1 if there is any.
    Validate {
        /// Check the committed tree at this ref instead of the files on disk
        #[arg(long, value_name = "REF")]
        r#ref: Option<String>,
    },
    /// Dry run: show what apply would change, with unified diffs, without changing anything.
    ///
    /// Reads the committed tree at --ref (only commits deploy); --worktree previews uncommitted
    /// edits. Exit codes: 0 success, 1 error; with --detailed-exitcode 0 means no changes and
    /// 2 means changes are pending.
    Plan(PlanArgs),
    /// Carry the plan out: create, change, start, stop and remove tenants' containers,
    /// networks and volumes, and write the database the SaaS application reads.
    ///
    /// Shows the plan and asks for `yes` unless --auto-approve. Tenants are applied in parallel
    /// (--parallelism), each through ordered steps; a failing tenant is retried with backoff,
    /// its previous container kept running, and marked failed without stopping the others
    /// (exit 1). One apply at a time: the lock lives in the database.
    Apply(ApplyArgs),
    /// The GitOps loop: apply each new commit within a second, resync on a timer, repair drift
    /// with --self-heal, suspend tenants whose trial ended. Runs until SIGINT/SIGTERM.
    ///
    /// Git changes are noticed through file events on the repository's refs (debounced); the
    /// --interval resync is the source of truth. Transient faults (engine or database down) are
    /// reported and retried with backoff; the loop never exits on them.
    ///
    /// High availability: run it on several hosts against one PostgreSQL database. Exactly one
    /// applies, the holder of a leader lease in the database (every write it makes carries its
    /// term, so a deposed leader cannot write); the others stand by, and one takes over within
    /// --lease-ttl of the leader dying. A SQLite file serves one host only.
    Watch(WatchArgs),
    /// Sample every running tenant once and store it: container CPU, memory, network and block
    /// I/O, and the site's API-call counters; roll up, prune, and record threshold crossings.
    ///
    /// One pass of what `watch` does on its interval. Reads plans at HEAD for the limits.
    Meter(MeterArgs),
    /// Usage against each tenant's plan over a window, and an invoice preview.
    ///
    /// Reads only the database (the meter's rollups and the plan rows).
    Usage(UsageArgs),
    /// Per tenant: sync (does the engine and database match git at HEAD?) and health (does its
    /// site serve?), with plan, theme, state, applied revision, URL, last error and trial end.
    ///
    /// Synced: the planner has nothing to do for the tenant; OutOfSync: it has (each reason is
    /// listed); Unknown: HEAD is invalid. Health: Healthy, Progressing, Degraded, Suspended,
    /// Missing or Unknown. Exits 0 whatever the state; 1 only when the engine or the database
    /// cannot be read.
    Status(StatusArgs),
    /// The interactive dashboard: every tenant's sync, health, usage against its plan, events,
    /// pending diff and live logs, with sync and restart actions.
    ///
    /// Runs the reconcile loop in-process (what `watch` does; --interval, --self-heal and the
    /// apply flags tune it), unless --read-only, or unless a `tenantctl watch` already runs
    /// against this database: then it attaches read-only and says so. Docker, git and database
    /// work never blocks the screen. q quits (after the reconcile pass in progress); ? lists keys.
    Tui(TuiArgs),
    /// Show a tenant's container logs (stdout and stderr, both written to stdout).
    ///
    /// With --follow, new lines stream until Ctrl-C (exit 0); if apply replaces the container
    /// meanwhile, the new one is followed from its first line (a note on stderr says so).
    Logs(LogsArgs),
    /// Tenant API keys (stored only as SHA-256 digests; a key is shown once).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Serve the built-in tenant site (the entrypoint of the built-in site image); env only.
    #[command(hide = true)]
    Site,
    /// Exit 0 if URL (http://host:port/path) answers 2xx within 3 s, else 1: the built-in image's health check.
    #[command(hide = true)]
    SiteHealth { url: String },
    /// Print the built-in site's usage counters (GET http://127.0.0.1:PORT/usage) as JSON:
    /// how the meter reads a swarm task that has no published port (run inside it by exec).
    #[command(hide = true)]
    SiteUsage { port: u16 },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Give a tenant a new API key, show it once, and restart its site with it.
    Rotate {
        slug: String,
        /// Wait this long for another apply to finish (e.g. 30s, 2m)
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
        lock_timeout: std::time::Duration,
    },
}

#[derive(Args, Debug)]
struct MeterArgs {
    /// Raw samples older than this are deleted after the rollup (rollups are kept)
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    retention: std::time::Duration,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args, Debug)]
struct UsageArgs {
    /// Only this tenant
    slug: Option<String>,
    /// The window to report (e.g. 90m, 24h, 7d)
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    since: std::time::Duration,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    /// The commit to apply: a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    r#ref: String,
    /// Apply without asking for confirmation
    #[arg(long)]
    auto_approve: bool,
    #[command(flatten)]
    tuning: ApplyTuning,
    /// Wait this long for another apply to finish before giving up (e.g. 30s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    lock_timeout: std::time::Duration,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    no_color: bool,
}

/// How applies run, shared by `apply` and `watch`.
#[derive(Args, Debug)]
struct ApplyTuning {
    /// How many tenants are worked on at once
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
    /// Also remove managed containers and networks of tenants no longer in git (data volumes are never removed)
    #[arg(long)]
    prune: bool,
    /// Address pool tenant networks get their /28 subnets from
    #[arg(
        long,
        value_name = "CIDR",
        env = "TENANTCTL_SUBNET_POOL",
        default_value = "10.233.0.0/16"
    )]
    subnet_pool: ipnet::Ipv4Net,
    /// How long a new container has to answer its health path
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    health_timeout: std::time::Duration,
    /// Attempts per tenant before it is marked failed (with exponential backoff between)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,
}

impl ApplyTuning {
    fn config(&self, namespace: &str, revision: String) -> apply::ApplyConfig {
        apply::ApplyConfig {
            namespace: namespace.to_string(),
            revision,
            parallelism: usize::from(self.parallelism),
            attempts: self.attempts,
            backoff: std::time::Duration::from_millis(500),
            health_timeout: self.health_timeout,
            subnet_pool: self.subnet_pool,
            prune: self.prune,
        }
    }
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// The ref to follow: a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    r#ref: String,
    /// Full resync period (e.g. 30s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Quiet time after a git event before applying
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    debounce: std::time::Duration,
    /// Repair drift (containers stopped, removed or edited by hand, database rows edited) without waiting for a commit
    #[arg(long)]
    self_heal: bool,
    #[command(flatten)]
    tuning: ApplyTuning,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Sample each tenant's CPU, memory, I/O and API counters this often (0s turns metering off)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    meter_interval: std::time::Duration,
    /// Follow a remote repository (https://, ssh://, git@host:path or a path) instead of a local one;
    /// it is fetched into a local cache every pass and on SIGHUP
    #[arg(long, value_name = "URL", conflicts_with = "ref")]
    remote: Option<String>,
    /// The remote branch to follow
    #[arg(
        long,
        value_name = "BRANCH",
        default_value = "main",
        requires = "remote"
    )]
    branch: String,
    /// Where the remote's cache lives [default: .tenantctl/remote/ in the current directory]
    #[arg(long, value_name = "DIR", requires = "remote")]
    cache_dir: Option<PathBuf>,
    /// The leader lease's length (1s to 5m): a standby takes over within it when the leader
    /// dies; the leader renews every third of it and stops applying if it cannot
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_lease_ttl)]
    lease_ttl: std::time::Duration,
}

fn parse_lease_ttl(text: &str) -> Result<std::time::Duration, String> {
    let ttl = parse_duration(text)?;
    if !(std::time::Duration::from_secs(1)..=std::time::Duration::from_secs(300)).contains(&ttl) {
        return Err(format!("`{text}`: the lease lasts from 1s to 5m"));
    }
    Ok(ttl)
}

/// `500ms`, `30s`, `2m`, `1h`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 30s, 2m or 1h"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}`; use ms, s, m, h or d"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// The commit to plan: a branch, tag or commit id
    #[arg(
        long,
        value_name = "REF",
        default_value = "HEAD",
        conflicts_with = "worktree"
    )]
    r#ref: String,
    /// Plan the files on disk, including uncommitted edits
    #[arg(long)]
    worktree: bool,
    /// Only plan these tenants (plan and theme records are always included); repeatable
    #[arg(long = "tenant", value_name = "SLUG")]
    tenants: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on error
    #[arg(long)]
    detailed_exitcode: bool,
    /// Also plan removing managed containers and networks of tenants no longer in git
    #[arg(long)]
    prune: bool,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    no_color: bool,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// Only these tenants; repeatable
    #[arg(long = "tenant", value_name = "SLUG")]
    tenants: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    no_color: bool,
}

#[derive(Args, Debug)]
struct TuiArgs {
    /// The ref to compare with (and, in-process, to follow): a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    r#ref: String,
    /// Never reconcile: only observe (the default when `tenantctl watch` already runs)
    #[arg(long)]
    read_only: bool,
    /// How often the engine and the database are observed
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    refresh: std::time::Duration,
    /// Log lines kept for the log pane
    #[arg(long, value_name = "N", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    log_lines: u64,
    /// Never colour the screen (NO_COLOR is honoured too)
    #[arg(long)]
    no_color: bool,
    /// Full resync period of the in-process loop (e.g. 30s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// The in-process loop repairs drift without waiting for a commit
    #[arg(long)]
    self_heal: bool,
    /// The in-process loop samples usage this often (0s turns metering off)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    meter_interval: std::time::Duration,
    #[command(flatten)]
    tuning: ApplyTuning,
}

#[derive(Args, Debug)]
struct LogsArgs {
    /// The tenant's slug
    slug: String,
    /// Keep streaming new lines until Ctrl-C
    #[arg(short, long)]
    follow: bool,
    /// How many past lines to show first: a number or `all`
    #[arg(long, value_name = "N", default_value = "100")]
    tail: tenantctl::runtime::Tail,
    /// Only lines since then: a duration back from now (10m, 2h, 1d) or an RFC 3339 time
    #[arg(long, value_name = "DUR|TIME")]
    since: Option<String>,
    /// Prefix every line with the engine's timestamp
    #[arg(long)]
    timestamps: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if matches!(cli.command, Command::Tui(_)) {
        // The dashboard owns the terminal: a stray log line would tear the screen. What matters
        // reaches it as activity and faults instead.
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::sink)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            // Inside containers stderr is a log file: no colour codes there.
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    // The site runs inside tenant containers: it reads only its own env, never the namespace.
    match &cli.command {
        Command::Site => return Ok(tenantctl::site::run()?),
        Command::SiteHealth { url } => return Ok(tenantctl::site::run_health(url)),
        Command::SiteUsage { port } => return Ok(usage::site::run_site_usage(*port)),
        _ => {}
    }
    if let Some(problem) = slug_problem(&cli.namespace) {
        bail!("--namespace: {problem}");
    }
    if cli.namespace.len() > 40 {
        bail!(
            "--namespace is {} characters long; keep it to 40 so tenant names fit",
            cli.namespace.len()
        );
    }
    match &cli.command {
        Command::Validate { r#ref } => validate(&cli, r#ref.as_deref()),
        Command::Plan(args) => runtime()?.block_on(plan_command(&cli, args)),
        Command::Apply(args) => runtime()?.block_on(apply_command(&cli, args)),
        Command::Watch(args) => runtime()?.block_on(watch_command(&cli, args)),
        Command::Meter(args) => runtime()?.block_on(meter_command(&cli, args)),
        Command::Usage(args) => runtime()?.block_on(usage_command(&cli, args)),
        Command::Status(args) => runtime()?.block_on(status_command(&cli, args)),
        Command::Logs(args) => runtime()?.block_on(logs_command(&cli, args)),
        Command::Tui(args) => runtime()?.block_on(tui_command(&cli, args)),
        Command::Keys {
            command: KeysCommand::Rotate { slug, lock_timeout },
        } => runtime()?.block_on(rotate_command(&cli, slug, *lock_timeout)),
        Command::Site | Command::SiteHealth { .. } | Command::SiteUsage { .. } => {
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn repo_dir(cli: &Cli) -> Result<PathBuf> {
    match &cli.repo {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--repo {}: no such directory", dir.display());
            }
            Ok(dir.clone())
        }
        None => std::env::current_dir().context("cannot read the current directory"),
    }
}

/// Prints diagnostics the way compilers do, then a count; returns the desired state if there are none.
fn check(files: &[model::SourceFile], label: &str) -> Result<DesiredState, usize> {
    model::load(files).map_err(|diags: Vec<Diagnostic>| {
        for d in &diags {
            eprintln!("{d}");
        }
        let nfiles = diags
            .iter()
            .map(|d| &d.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        eprintln!(
            "\n{} problem{} in {nfiles} file{} ({label}); nothing was changed.",
            diags.len(),
            if diags.len() == 1 { "" } else { "s" },
            if nfiles == 1 { "" } else { "s" },
        );
        diags.len()
    })
}

fn validate(cli: &Cli, reference: Option<&str>) -> Result<ExitCode> {
    let dir = repo_dir(cli)?;
    // validate also works on a plain folder, so a file can be checked before it is ever committed.
    let (files, label) = match (Repo::discover(&dir), reference) {
        (Ok(repo), Some(r)) => {
            let snap = repo.snapshot_at(r)?;
            let label = format!("revision {}", snap.short_revision());
            (snap.files, label)
        }
        (Ok(repo), None) => (repo.snapshot_worktree()?.files, "files on disk".to_string()),
        (Err(e), Some(_)) => return Err(e.into()),
        (Err(_), None) => (
            source::read_dirs(&dir, |_| false)?,
            "files on disk".to_string(),
        ),
    };
    if files.is_empty() {
        bail!(
            "no YAML files under plans/, themes/ or tenants/ in {}",
            dir.display()
        );
    }
    match check(&files, &label) {
        Ok(state) => {
            println!(
                "Valid: {} plan{}, {} theme{}, {} tenant{} ({label}).",
                state.plans.len(),
                plural(state.plans.len()),
                state.themes.len(),
                plural(state.themes.len()),
                state.tenants.len(),
                plural(state.tenants.len()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Ok(ExitCode::from(1)),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Desired state at a revision, and both sides of the actual state.
struct Loaded {
    repo: Repo,
    snapshot: Snapshot,
    desired: DesiredState,
    runtime: Runtime,
    store: Store,
    db_url: String,
}

impl Loaded {
    fn revision(&self) -> String {
        match &self.snapshot.base_revision {
            Some(_) => self.snapshot.short_revision(),
            None => self.snapshot.revision.clone(),
        }
    }

    /// The plan against `observed`, with the trial rule applied to the desired state (an ended,
    /// unconverted trial suspends its tenant); also returns that effective desired state.
    fn plan(
        &self,
        observed: &ObservedState,
        opts: &PlanOptions,
    ) -> (plan::Plan, DesiredState, Vec<TrialEnded>) {
        let (effective, ended) = trial::apply_trials(&self.desired, &observed.db, trial::now());
        let mut plan = plan::compute(&effective, observed, opts);
        for e in ended
            .iter()
            .filter(|e| opts.tenants.is_empty() || opts.tenants.contains(&e.slug))
        {
            plan.notes.push(format!(
                "the trial of `{}` ended on {}: it stays suspended until `billing: {{converted: true}}` is committed",
                e.slug,
                trial::date(e.ended_at)
            ));
        }
        (plan, effective.into_owned(), ended)
    }

    async fn observe(&self) -> Result<ObservedState> {
        let (containers, db) = tokio::join!(self.runtime.observe(), self.store.observe());
        let observed = ObservedState {
            runtime: containers?,
            db: db?,
        };
        tracing::debug!(
            containers = observed.runtime.containers.len(),
            networks = observed.runtime.networks.len(),
            volumes = observed.runtime.volumes.len(),
            tenant_rows = observed.db.tenants.len(),
            database = %tenantctl::store::redact(&self.db_url),
            "observed actual state"
        );
        Ok(observed)
    }
}

/// Reads and validates the desired state, then connects to the engine and the database.
/// `Ok(None)` means the revision is invalid (diagnostics already printed).
async fn load(cli: &Cli, reference: &str, worktree: bool) -> Result<Option<Loaded>> {
    let dir = repo_dir(cli)?;
    let repo = Repo::discover(&dir)?;
    let snapshot: Snapshot = if worktree {
        repo.snapshot_worktree()?
    } else {
        repo.snapshot_at(reference)?
    };
    let label = format!("revision {}", snapshot.short_revision());
    tracing::debug!(revision = %snapshot.revision, files = snapshot.files.len(), "read desired state");
    let Ok(desired) = check(&snapshot.files, &label) else {
        return Ok(None);
    };
    let db_url = cli
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(repo.root()));
    let (runtime, store) = tokio::join!(connect_runtime(cli), Store::open(&db_url));
    Ok(Some(Loaded {
        repo,
        snapshot,
        desired,
        runtime: runtime?,
        store: store?,
        db_url,
    }))
}

fn text_style(no_color: bool) -> Style {
    Style {
        color: !no_color
            && std::env::var_os("NO_COLOR").is_none()
            && std::io::stdout().is_terminal(),
    }
}

/// Says on stderr when state files have uncommitted edits that a plan of a commit leaves out.
fn note_uncommitted(repo: &Repo) -> Result<()> {
    let pending = repo.uncommitted_changes()?;
    if !pending.is_empty() {
        let shown: Vec<&str> = pending.iter().take(5).map(String::as_str).collect();
        let more = if pending.len() > 5 {
            format!(" and {} more", pending.len() - 5)
        } else {
            String::new()
        };
        eprintln!(
            "\nNote: {} uncommitted edit{} under plans/, themes/ or tenants/ {} not included ({}{more}). Commit them to deploy, or preview them with --worktree.",
            pending.len(),
            plural(pending.len()),
            if pending.len() == 1 { "is" } else { "are" },
            shown.join(", "),
        );
    }
    Ok(())
}

async fn plan_command(cli: &Cli, args: &PlanArgs) -> Result<ExitCode> {
    let Some(loaded) = load(cli, &args.r#ref, args.worktree).await? else {
        return Ok(ExitCode::from(1));
    };
    let observed = loaded.observe().await?;
    let desired = &loaded.desired;
    for slug in &args.tenants {
        let known = desired.tenants.contains_key(slug)
            || observed.db.tenants.contains_key(slug)
            || observed
                .runtime
                .containers
                .iter()
                .any(|c| c.tenant.as_deref() == Some(slug.as_str()));
        if !known {
            bail!("--tenant {slug}: no tenant of that name in git, the database or the engine");
        }
    }
    let opts = PlanOptions {
        namespace: cli.namespace.clone(),
        revision: loaded.revision(),
        prune: args.prune,
        tenants: args.tenants.clone(),
    };
    let (plan, _, _) = loaded.plan(&observed, &opts);
    tracing::debug!(changes = plan.changes.len(), "computed plan");
    match args.output {
        Output::Json => render::write_json(std::io::stdout(), &plan)?,
        Output::Text => render::write_text(std::io::stdout(), &plan, text_style(args.no_color))?,
    }
    loaded.store.close().await;
    if !args.worktree {
        note_uncommitted(&loaded.repo)?;
    }
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints apply progress as it happens, one line per step.
struct Printer;

impl apply::Progress for Printer {
    fn line(&self, tenant: Option<&str>, message: &str) {
        match tenant {
            Some(t) => println!("{t}: {message}"),
            None => println!("{message}"),
        }
    }
}

async fn apply_command(cli: &Cli, args: &ApplyArgs) -> Result<ExitCode> {
    let Some(loaded) = load(cli, &args.r#ref, false).await? else {
        return Ok(ExitCode::from(1));
    };
    let style = text_style(args.no_color);
    let opts = PlanOptions {
        namespace: cli.namespace.clone(),
        revision: loaded.revision(),
        prune: args.tuning.prune,
        tenants: vec![],
    };
    let (plan, _, _) = loaded.plan(&loaded.observe().await?, &opts);
    note_uncommitted(&loaded.repo)?;
    if plan.is_empty() {
        print!("{}", render::text(&plan, style));
        println!("Apply complete! Nothing to do.");
        loaded.store.close().await;
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", render::text(&plan, style));
    if !args.auto_approve {
        if !std::io::stdin().is_terminal() {
            bail!(
                "apply needs confirmation and standard input is not a terminal; review the plan, then run again with --auto-approve"
            );
        }
        print!(
            "\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: "
        );
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            println!("Apply cancelled.");
            return Ok(ExitCode::from(1));
        }
    }
    let lock = apply::lock::ApplyLock::acquire(&loaded.store, args.lock_timeout).await?;
    // What was shown may be stale by the time the lock is held: re-plan, and refuse to apply a
    // different plan than the one approved.
    let (fresh, effective, ended) = loaded.plan(&loaded.observe().await?, &opts);
    if !fresh.same_changes(&plan) {
        lock.release().await;
        bail!(
            "the actual state changed while the plan was shown (another apply or a manual change); nothing was applied. Run apply again to see the new plan"
        );
    }
    println!();
    let config = args.tuning.config(&cli.namespace, loaded.revision());
    let desired = std::sync::Arc::new(effective);
    let active: std::collections::BTreeSet<String> = desired
        .tenants
        .values()
        .filter(|t| t.state == model::TenantState::Active)
        .map(|t| t.slug.clone())
        .collect();
    apply::record_trial_ends(&loaded.store, &ended, &fresh.changes, &Printer).await;
    let applier = apply::Applier::new(
        loaded.runtime.clone(),
        loaded.store.clone(),
        config,
        desired,
        std::sync::Arc::new(Printer),
    );
    let report = applier.run(&fresh.changes).await;
    lock.release().await;
    let report = report?;
    // Swarm cannot publish on loopback only: a running service may have no URL to show.
    let unpublished = |slug: &str| cli.runtime == RuntimeKind::Swarm && active.contains(slug);
    print_report(&report, style, &unpublished);
    loaded.store.close().await;
    Ok(if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &apply::Report, style: Style, unpublished: &dyn Fn(&str) -> bool) {
    let failed = report.failed();
    println!();
    if failed == 0 {
        println!(
            "{}",
            paint(
                style,
                "32",
                &format!(
                    "Apply complete! {} changes applied.",
                    report.changes_applied
                )
            )
        );
    } else {
        println!(
            "{}",
            paint(
                style,
                "31",
                &format!(
                    "Apply finished with errors: {failed} tenant{} failed.",
                    plural(failed)
                )
            )
        );
    }
    if !report.outcomes.is_empty() {
        println!("\nTenants:");
        for (slug, outcome) in &report.outcomes {
            match outcome {
                apply::Outcome::Converged { url: Some(url) } => println!("  {slug:<24} {url}"),
                apply::Outcome::Converged { url: None } if unpublished(slug) => {
                    println!("  {slug:<24} running (no published port)")
                }
                apply::Outcome::Converged { url: None } => println!("  {slug:<24} (not running)"),
                apply::Outcome::Failed { reason } => {
                    println!("  {slug:<24} {} {reason}", paint(style, "31", "FAILED:"))
                }
            }
        }
    }
    if !report.new_keys.is_empty() {
        println!(
            "\nNew API keys (shown once; only their SHA-256 is stored — rotate with `tenantctl keys rotate SLUG`):"
        );
        for (slug, key) in &report.new_keys {
            println!("  {slug:<24} {key}");
        }
    }
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

async fn rotate_command(
    cli: &Cli,
    slug: &str,
    lock_timeout: std::time::Duration,
) -> Result<ExitCode> {
    let Some(loaded) = load(cli, "HEAD", false).await? else {
        return Ok(ExitCode::from(1));
    };
    let lock = apply::lock::ApplyLock::acquire(&loaded.store, lock_timeout).await?;
    let result = async {
        let db = loaded.store.observe().await?;
        let Some(mut row) = db.tenants.get(slug).cloned() else {
            bail!("tenant `{slug}` has no record yet; apply it first");
        };
        let (key, digest) = apply::keys::generate()?;
        row.api_key_sha256 = Some(digest);
        row.updated_at = tenantctl::store::now_unix();
        loaded.store.upsert_tenant(&row).await?;
        loaded
            .store
            .record_event(None, Some(slug), "tenant.key-rotated", "API key rotated")
            .await?;
        // The container carries the key's digest in its env: replace it (the plan sees the stale digest).
        let opts = PlanOptions {
            namespace: cli.namespace.clone(),
            revision: loaded.revision(),
            prune: false,
            tenants: vec![slug.to_string()],
        };
        let (plan, effective, _) = loaded.plan(&loaded.observe().await?, &opts);
        let changes: Vec<plan::Change> = plan
            .changes
            .into_iter()
            .filter(|c| c.tenant.as_deref() == Some(slug))
            .collect();
        let config = apply::ApplyConfig {
            namespace: cli.namespace.clone(),
            revision: loaded.revision(),
            parallelism: 1,
            attempts: 3,
            backoff: std::time::Duration::from_millis(500),
            health_timeout: std::time::Duration::from_secs(60),
            subnet_pool: std::env::var("TENANTCTL_SUBNET_POOL")
                .unwrap_or_else(|_| "10.233.0.0/16".into())
                .parse()?,
            prune: false,
        };
        let desired = std::sync::Arc::new(effective);
        let report = apply::Applier::new(
            loaded.runtime.clone(),
            loaded.store.clone(),
            config,
            desired,
            std::sync::Arc::new(Printer),
        )
        .run(&changes)
        .await?;
        Ok::<_, anyhow::Error>((key, report))
    }
    .await;
    lock.release().await;
    let (key, report) = result?;
    println!("\nNew API key for {slug} (shown once; only its SHA-256 is stored):\n  {key}");
    if report.failed() > 0 {
        eprintln!(
            "the key is stored, but the tenant's site did not restart with it: run `tenantctl apply`"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Watch output: one line per event, with the UTC time.
struct TimedPrinter;

impl apply::Progress for TimedPrinter {
    fn line(&self, tenant: Option<&str>, message: &str) {
        let now = tenantctl::store::now_unix();
        let clock = format!(
            "{}T{:02}:{:02}:{:02}Z",
            trial::date(now),
            now / 3600 % 24,
            now / 60 % 60,
            now % 60
        );
        match tenant {
            Some(t) => println!("{clock} {t}: {message}"),
            None => println!("{clock} {message}"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn watch_command(cli: &Cli, args: &WatchArgs) -> Result<ExitCode> {
    let dir = repo_dir(cli)?;
    // With --remote nobody commits here: the state directory is the current (or --repo) directory.
    let root = match &args.remote {
        Some(_) => dir.clone(),
        None => Repo::discover(&dir)?.root().to_path_buf(),
    };
    let remote = args.remote.as_ref().map(|url| {
        let base = args
            .cache_dir
            .clone()
            .unwrap_or_else(|| root.join(".tenantctl").join("remote"));
        tenantctl::source::remote::RemoteSource {
            url: url.clone(),
            branch: args.branch.clone(),
            cache: tenantctl::source::remote::RemoteSource::default_cache(&base, url),
        }
    });
    let db_url = cli
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(&root));
    let progress = std::sync::Arc::new(TimedPrinter);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    // The engine or the database may be down when the loop starts: wait for them, never give up.
    let mut delay = std::time::Duration::from_secs(1);
    let (runtime, store) = loop {
        let (runtime, store) = tokio::join!(connect_runtime(cli), Store::open(&db_url));
        match (runtime, store) {
            (Ok(r), Ok(s)) => break (r, s),
            (r, s) => {
                let why = [
                    r.err().map(|e| e.to_string()),
                    s.err().map(|e| e.to_string()),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ");
                apply::Progress::line(
                    &*progress,
                    None,
                    &format!("{why}; retrying in {}s", delay.as_secs()),
                );
                tokio::select! {
                    () = &mut shutdown => return Ok(ExitCode::SUCCESS),
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(60));
            }
        }
    };
    let config = tenantctl::watch::WatchConfig {
        repo: root,
        reference: args.r#ref.clone(),
        interval: args.interval.max(std::time::Duration::from_secs(1)),
        debounce: args.debounce,
        self_heal: args.self_heal,
        apply: args.tuning.config(&cli.namespace, String::new()),
        remote,
        meter_interval: (!args.meter_interval.is_zero()).then_some(args.meter_interval),
        lease_ttl: args.lease_ttl,
    };
    let watcher = tenantctl::watch::Watcher::new(config, runtime, store.clone(), progress.clone());
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
        apply::Progress::line(
            &*progress,
            None,
            &format!("metrics on http://{}/metrics", listener.local_addr()?),
        );
        tokio::spawn(tenantctl::watch::metrics::serve(
            listener,
            watcher.metrics.clone(),
        ));
    }
    apply::Progress::line(
        &*progress,
        None,
        &format!(
            "watching {} ({}), resync every {}s, self-heal {}",
            args.remote
                .as_deref()
                .map_or_else(|| dir.display().to_string(), |u| u.to_string()),
            if args.remote.is_some() {
                &args.branch
            } else {
                &args.r#ref
            },
            args.interval.as_secs(),
            if args.self_heal { "on" } else { "off" }
        ),
    );
    watcher.run(shutdown).await?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn meter_command(cli: &Cli, args: &MeterArgs) -> Result<ExitCode> {
    let Some(loaded) = load(cli, "HEAD", false).await? else {
        return Ok(ExitCode::from(1));
    };
    let options = usage::MeterOptions {
        retention: args.retention,
        ..usage::MeterOptions::default()
    };
    let now = tenantctl::store::now_unix();
    let summary = usage::meter_once_with(
        &loaded.runtime,
        &loaded.store,
        &loaded.desired,
        now,
        &options,
    )
    .await?;
    loaded.store.close().await;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        Output::Text => print!("{}", meter_text(&summary)),
    }
    Ok(ExitCode::SUCCESS)
}

fn meter_text(s: &usage::MeterSummary) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for x in &s.samples {
        let cpu = x
            .cpu_percent
            .map_or("-".to_string(), |c| format!("{c:.1}%"));
        let api = match (x.api_calls_month, x.ai_interactions_month, &x.month) {
            (Some(api), Some(ai), Some(month)) => {
                format!("api {api}, ai {ai} ({month})")
            }
            _ => "no site counters".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<24} cpu {cpu:>7}  mem {:>8} / {:<8} net {}/{}  blk {}/{}  {api}",
            x.tenant,
            usage::human_bytes(x.memory_bytes),
            usage::human_bytes(x.memory_limit_bytes),
            usage::human_bytes(x.net_rx_bytes),
            usage::human_bytes(x.net_tx_bytes),
            usage::human_bytes(x.blk_read_bytes),
            usage::human_bytes(x.blk_write_bytes),
        );
    }
    for n in &s.failed {
        let _ = writeln!(out, "{:<24} not sampled: {}", n.tenant, n.message);
    }
    for n in &s.no_counters {
        let _ = writeln!(out, "{:<24} no counters: {}", n.tenant, n.message);
    }
    for e in &s.events {
        let _ = writeln!(out, "{:<24} usage.threshold: {}", e.tenant, e.message);
    }
    let _ = writeln!(
        out,
        "\nStored {} sample{}; rolled up {} hourly and {} daily bucket{}; pruned {} old sample{}; {} threshold event{}.",
        s.samples.len(),
        plural(s.samples.len()),
        s.rollup.hourly,
        s.rollup.daily,
        plural(s.rollup.daily as usize),
        s.pruned,
        plural(s.pruned as usize),
        s.events.len(),
        plural(s.events.len()),
    );
    out
}

async fn usage_command(cli: &Cli, args: &UsageArgs) -> Result<ExitCode> {
    // Only the database is needed: plan limits and prices are in its rows.
    let db_url = match &cli.database_url {
        Some(url) => url.clone(),
        None => Store::default_url(Repo::discover(&repo_dir(cli)?)?.root()),
    };
    let store = Store::open(&db_url).await?;
    let now = tenantctl::store::now_unix();
    let report = usage::report(&store, args.slug.as_deref(), args.since, now).await;
    store.close().await;
    let report = report?;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Text => print!("{}", usage::render_text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
/// `status`: reads HEAD (an invalid one makes every sync Unknown, with the problems shown once
/// on stderr), observes the engine and the database, and prints the table or JSON.
async fn status_command(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let dir = repo_dir(cli)?;
    let repo = Repo::discover(&dir)?;
    let snapshot = repo.snapshot_at("HEAD")?;
    let (desired, error) = match model::load(&snapshot.files) {
        Ok(d) => (Some(d), None),
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            let why = format!(
                "revision {} is invalid ({} problem{}; `tenantctl validate --ref HEAD` lists them)",
                snapshot.short_revision(),
                diags.len(),
                plural(diags.len())
            );
            (None, Some(why))
        }
    };
    let db_url = cli
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(repo.root()));
    let (runtime, store) = tokio::join!(connect_runtime(cli), Store::open(&db_url));
    let (runtime, store) = (runtime?, store?);
    let report = tenantctl::status::gather(
        &runtime,
        &store,
        desired.as_ref(),
        Some(&snapshot.revision),
        error,
        &args.tenants,
    )
    .await;
    store.close().await;
    let report = report?;
    for slug in &args.tenants {
        if !report.tenants.iter().any(|t| &t.slug == slug) {
            bail!("--tenant {slug}: no tenant of that name in git, the database or the engine");
        }
    }
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&tenantctl::status::render::json(&report))?
        ),
        Output::Text => print!(
            "{}",
            tenantctl::status::render::text(
                &report,
                text_style(args.no_color),
                tenantctl::store::now_unix()
            )
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `tui`: connects to the engine and the database first (so "engine unreachable" fails as in
/// every other command), decides who reconciles, then hands the terminal to the dashboard.
/// Errors are printed by `main`, after the terminal is restored.
async fn tui_command(cli: &Cli, args: &TuiArgs) -> Result<ExitCode> {
    let dir = repo_dir(cli)?;
    let repo = Repo::discover(&dir)?;
    // A mistyped ref fails here, not as a header line.
    repo.resolve(&args.r#ref)?;
    let root = repo.root().to_path_buf();
    let db_url = cli
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(&root));
    let (runtime, store) = tokio::join!(connect_runtime(cli), Store::open(&db_url));
    let (runtime, store) = (runtime?, store?);
    // Another loop already runs against this database: attach to it read-only (the header says so).
    let attach = !args.read_only && tenantctl::watch::presence::present(&store).await?.is_some();
    let watch = (!args.read_only && !attach).then(|| tenantctl::watch::WatchConfig {
        repo: root.clone(),
        reference: args.r#ref.clone(),
        interval: args.interval.max(std::time::Duration::from_secs(1)),
        debounce: std::time::Duration::from_millis(200),
        self_heal: args.self_heal,
        apply: args.tuning.config(&cli.namespace, String::new()),
        remote: None,
        meter_interval: (!args.meter_interval.is_zero()).then_some(args.meter_interval),
        lease_ttl: tenantctl::watch::leader::DEFAULT_TTL,
    });
    let config = tenantctl::tui::TuiConfig {
        repo: root,
        reference: args.r#ref.clone(),
        runtime,
        store: store.clone(),
        watch,
        refresh: args.refresh,
        log_lines: usize::try_from(args.log_lines).unwrap_or(usize::MAX),
        color: tenantctl::tui::color_wanted(args.no_color),
    };
    let result = tenantctl::tui::run(config).await;
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

/// `logs`: streams the tenant's container logs to stdout until done, or with --follow until
/// Ctrl-C (exit 0) or the container stops or goes away.
async fn logs_command(cli: &Cli, args: &LogsArgs) -> Result<ExitCode> {
    use std::io::Write;
    use std::ops::ControlFlow;
    use tenantctl::runtime::{LogEnd, LogEvent, LogOptions};

    let slug = args.slug.as_str();
    if let Some(problem) = slug_problem(slug) {
        bail!("tenant {problem}");
    }
    let since = match &args.since {
        Some(text) => Some(
            tenantctl::status::time::parse_since(text, tenantctl::store::now_unix())
                .map_err(|e| anyhow::anyhow!("--since {e}"))?,
        ),
        None => None,
    };
    let runtime = connect_runtime(cli).await?;
    let Some(container) = runtime.log_container(slug).await? else {
        if !in_git_at_head(cli, slug) {
            bail!(
                "no tenant {slug}: it is not in git at HEAD and namespace {} has no container for it",
                cli.namespace
            );
        }
        bail!(
            "tenant {slug} has no container; is it applied? suspended tenants keep their container stopped: their past logs still show"
        );
    };
    let options = LogOptions {
        follow: args.follow,
        tail: args.tail,
        since,
        timestamps: args.timestamps,
    };
    let stdout = std::io::stdout();
    let streamed = runtime.stream_logs(slug, &container, options, |event| match event {
        LogEvent::Output { bytes, .. } => {
            let mut out = stdout.lock();
            // A closed pipe (`| head`) ends the stream quietly.
            match out.write_all(&bytes).and_then(|()| out.flush()) {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            }
        }
        LogEvent::Note(note) => {
            eprintln!("tenantctl: {note}");
            ControlFlow::Continue(())
        }
    });
    tokio::select! {
        end = streamed => match end? {
            LogEnd::Done | LogEnd::Cancelled => {}
            LogEnd::Stopped { state } => {
                eprintln!("tenantctl: container {} is {state}; no more lines", container.name)
            }
            LogEnd::Removed => {
                eprintln!("tenantctl: container {} was removed; no more lines", container.name)
            }
        },
        // Ctrl-C ends a follow: that is how it is meant to stop, so exit 0.
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the repository around (or at --repo) names `slug` at HEAD; `true` when that cannot
/// be told, so the error falls back to the "not applied" wording.
fn in_git_at_head(cli: &Cli, slug: &str) -> bool {
    let desired = repo_dir(cli)
        .ok()
        .and_then(|dir| Repo::discover(&dir).ok())
        .and_then(|repo| repo.snapshot_at("HEAD").ok())
        .and_then(|snap| model::load(&snap.files).ok());
    desired.is_none_or(|d| d.tenants.contains_key(slug))
}
