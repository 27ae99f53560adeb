//! The command line's arguments: every flag, its environment variable and its default.

use crate::apply;
use crate::reconcile::DestroyLimit;
use crate::runtime::RuntimeKind;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// GitOps for tenants: plans, themes and tenants are YAML files in git; tenantctl diffs them
/// against the running Docker containers and the database and shows what it would change.
#[derive(Parser, Debug)]
#[command(name = "tenantctl", version, max_term_width = 100)]
pub struct Cli {
    /// Prefix of every container, network and volume name, and the value of the
    /// `tenantctl.namespace` label: reconcilers with different namespaces never touch each other.
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_NAMESPACE",
        default_value = "tenantctl"
    )]
    pub namespace: String,
    /// The state repository [default: the git repository around the current directory]
    #[arg(long, global = true, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB
    /// [default: sqlite file .tenantctl/state.db in the repository, which git ignores]
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// What tenants run as: `docker` containers on this engine, or `swarm` services of the swarm
    /// this engine manages (replicas, rolling updates with automatic rollback, placement)
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_RUNTIME",
        value_name = "docker|swarm",
        default_value = "docker"
    )]
    pub runtime: RuntimeKind,
    /// How long the reachability probe waits for a tenant's health path on its loopback port
    /// (plan, apply, status, watch, tui); a failure is asked again once before it is drift
    #[arg(
        long,
        global = true,
        env = "TENANTCTL_PROBE_TIMEOUT",
        value_name = "DURATION",
        default_value = "2s",
        value_parser = parse_probe_timeout
    )]
    pub probe_timeout: Duration,
    #[command(flatten)]
    pub conventions: Conventions,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command shares with other command-line tools: colour, quiet and verbose.
#[derive(Args, Debug, Clone, Default)]
pub struct Conventions {
    /// Colour: `auto` on a terminal unless NO_COLOR is set, CLICOLOR_FORCE forces it, TERM=dumb
    /// never; `always` even through a pipe; `never` (what `--no-color` says)
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,
    /// Print only errors and the lines a script needs (new API keys, failed tenants, the
    /// output a command is run for such as `plan`, `status`, `usage`, `logs`, JSON)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG, when set, wins;
    /// it is also this flag's environment variable)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

/// When output is coloured (see [`crate::cli::color_enabled`] for `auto`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

/// Flags with no environment variable: a variable forgotten in a shell or a CI job must never
/// approve a plan, allow mass destruction, adopt a namespace or remove tenants' containers.
/// (`--no-color` has `NO_COLOR` and `TENANTCTL_COLOR=never`.)
pub const NO_ENV: &[&str] = &[
    "auto-approve",
    "allow-destroy",
    "adopt",
    "prune",
    "no-color",
    "help",
    "version",
];

/// The command line as parsed and documented (help, completions, man page): [`Cli`] with the
/// conventions applied to every flag of every visible command, the ones added later included:
/// `-o` for `--output`, and an environment variable `TENANTCTL_<FLAG>` for each flag that has
/// none of its own and is not in [`NO_ENV`] (one variable per flag name, read by every command
/// that has the flag).
pub fn command() -> clap::Command {
    conventions(Cli::command())
}

fn conventions(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let Some(long) = arg.get_long().map(str::to_owned) else {
                return arg;
            };
            let arg = if long == "output" && arg.get_short().is_none() {
                arg.short('o')
            } else {
                arg
            };
            // A count (`-vv`) has no single value to read; RUST_LOG is its variable.
            let count = matches!(arg.get_action(), ArgAction::Count);
            if count || arg.get_env().is_some() || NO_ENV.contains(&long.as_str()) {
                return arg;
            }
            arg.env(env_name(&long))
        })
        .mut_subcommands(|sub| {
            if sub.is_hide_set() {
                sub
            } else {
                conventions(sub)
            }
        })
}

/// `lock-timeout` → `TENANTCTL_LOCK_TIMEOUT`.
pub fn env_name(long: &str) -> String {
    format!("TENANTCTL_{}", long.to_uppercase().replace('-', "_"))
}

/// A probe timeout from 100ms to 60s: shorter would call healthy sites unreachable and replace
/// them; longer would hold every plan up behind one hung site.
fn parse_probe_timeout(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(60) {
        return Err(format!("`{text}`: give a probe timeout from 100ms to 60s"));
    }
    Ok(d)
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and check every file under plans/, themes/ and tenants/; needs no Docker or database.
    ///
    /// Reads the files on disk (committed or not) unless --ref names a commit. Prints every
    /// problem as `path:line:column: message` with a hint, and exits 1 if there is any.
    Validate {
        /// Check the committed tree at this ref instead of the files on disk
        #[arg(long, value_name = "REF")]
        r#ref: Option<String>,
        /// text, or json: one document with the counts or every problem (nothing on stderr)
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
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
    ///
    /// Container counters come from each container's cgroup files on this host (found through
    /// the engine's process id for it), or from the engine's stats endpoint where those cannot
    /// be read (a remote DOCKER_HOST, no permission); -o json says which, per tenant.
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
    /// The audit log, newest last: what each apply and watch pass did, with the revision, the
    /// leader term and, for changes, each changed field before and after (secrets redacted).
    ///
    /// Reads only the database (never creates one). Without --since, the last --limit events;
    /// --follow (-f) then prints new ones as they are recorded until Ctrl-C (exit 0).
    Events(EventsArgs),
    /// Closed invoices, one per tenant and billing period, oldest period first.
    ///
    /// Reads only the database. `invoices close` closes every tenant's invoice of the period
    /// that ended last (`watch` does this beside its loop); a closed invoice never changes.
    /// TENANTCTL_NOW (unix seconds) stands in for the clock.
    Invoices(InvoicesArgs),
    /// Tenant API keys (stored only as SHA-256 digests; a key is shown once).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `tenantctl man > ~/.local/share/man/man1/tenantctl.1`.
    Man,
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
    /// Give DIR and everything under it to UID:GID, never following links: hands a data volume
    /// written by an older tenantctl (site as root) to the unprivileged site user.
    #[command(hide = true)]
    SiteDataOwner {
        dir: std::path::PathBuf,
        owner: String,
    },
    /// Serve the edge: the reverse proxy in front of the namespace's tenants (the edge
    /// container's command); configured by TENANTCTL_EDGE_* variables only.
    #[command(hide = true)]
    Edge,
    /// Exit 0 if the edge's admin API (TENANTCTL_EDGE_ADMIN) answers /healthz: the edge
    /// container's health check.
    #[command(hide = true)]
    EdgeHealth,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Give a tenant a named API key, show it once; its site accepts it within seconds.
    Create {
        slug: String,
        /// The key's name, unique among the tenant's live keys (e.g. ci, billing-app)
        #[arg(long)]
        name: String,
        /// The key stops working after this long (e.g. 90d, 12h); never, if not given
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        expires: Option<Duration>,
        /// Append the new key to this file (created 0600, one `slug key` line) instead of
        /// printing it
        #[arg(long, value_name = "PATH", env = KEYS_FILE_ENV)]
        keys_file: Option<PathBuf>,
        /// text, or json: one document with the new key
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The keys of one tenant or all: name, id, created, expires, last used, status; never a key.
    List {
        slug: Option<String>,
        /// text, or json: one document with every key
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Revoke a tenant's live keys of this name now; its site refuses them within seconds.
    Revoke {
        slug: String,
        name: String,
        /// Revoke even when no other live key would remain (the tenant's API is locked out)
        #[arg(long)]
        force: bool,
    },
    /// Give a tenant a new key in place of a named one (default: `default`); the old one keeps
    /// working for --grace, then is refused. No restart.
    Rotate {
        slug: String,
        /// The name of the key to replace; the new key takes the same name
        #[arg(long, default_value = "default")]
        name: String,
        /// How long the old key keeps working (e.g. 10m, 24h); 0 revokes it at once
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
        grace: Duration,
        /// Wait this long for another apply to finish (e.g. 30s, 2m)
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
        lock_timeout: Duration,
        /// Append the new key to this file (created 0600, one `slug key` line) instead of
        /// printing it
        #[arg(long, value_name = "PATH", env = KEYS_FILE_ENV)]
        keys_file: Option<PathBuf>,
        /// text, or json: one document with the new key (progress goes to stderr)
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Args, Debug)]
pub struct MeterArgs {
    /// Raw samples older than this are deleted after the rollup (rollups are kept)
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_duration)]
    pub retention: Duration,
    /// Where container counters are read: the cgroup files, else the engine (auto); only the
    /// cgroup files (a container whose files cannot be read is not sampled); only the engine's
    /// stats endpoint (about a second of the engine's work per container)
    #[arg(long, value_enum, default_value_t = StatsSourceArg::Auto)]
    pub stats_source: StatsSourceArg,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatsSourceArg {
    Auto,
    Cgroup,
    Engine,
}

impl From<StatsSourceArg> for crate::runtime::StatsSource {
    fn from(a: StatsSourceArg) -> Self {
        match a {
            StatsSourceArg::Auto => crate::runtime::StatsSource::Auto,
            StatsSourceArg::Cgroup => crate::runtime::StatsSource::Cgroup,
            StatsSourceArg::Engine => crate::runtime::StatsSource::Engine,
        }
    }
}

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this tenant
    pub slug: Option<String>,
    /// The window to report (e.g. 90m, 24h, 7d)
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    pub since: Duration,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The commit to apply: a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    pub r#ref: String,
    /// Apply without asking for confirmation
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub tuning: ApplyTuning,
    /// Wait this long for another apply to finish before giving up (e.g. 30s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub lock_timeout: Duration,
    /// Apply a plan that removes the containers of every tenant, or of more than --max-destroy
    #[arg(long)]
    pub allow_destroy: bool,
    /// Append new API keys to this file (created 0600, one `slug key` line each) instead of
    /// printing them
    #[arg(long, value_name = "PATH", env = KEYS_FILE_ENV)]
    pub keys_file: Option<PathBuf>,
    /// The database is new or lost its tenant rows while the namespace runs tenants: rebuild
    /// their rows (key digests included) from the running containers first, then apply
    #[arg(long)]
    pub adopt: bool,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    pub no_color: bool,
    /// text, or json: one document with the outcome of each tenant (needs --auto-approve; the
    /// plan is not shown, progress goes to stderr)
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// The apply defaults, shared by the flags below and by commands without them (`keys rotate`).
const PARALLELISM: u16 = 10;
const SUBNET_POOL_ENV: &str = "TENANTCTL_SUBNET_POOL";
const SUBNET_POOL: &str = "10.233.0.0/16";
const HEALTH_TIMEOUT: &str = "60s";
const ATTEMPTS: u32 = 3;
/// The first retry's delay; it doubles each attempt.
const BACKOFF: Duration = Duration::from_millis(500);

/// How applies run, shared by `apply` and `watch`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ApplyTuning {
    /// How many tenants are worked on at once
    #[arg(long, value_name = "N", default_value_t = PARALLELISM, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Also remove managed containers and networks of tenants no longer in git (data volumes are never removed)
    #[arg(long)]
    pub prune: bool,
    /// Address pool tenant networks get their /28 subnets from
    #[arg(
        long,
        value_name = "CIDR",
        env = SUBNET_POOL_ENV,
        default_value = SUBNET_POOL
    )]
    pub subnet_pool: ipnet::Ipv4Net,
    /// How long a new container has to answer its health path
    #[arg(long, value_name = "DURATION", default_value = HEALTH_TIMEOUT, value_parser = parse_duration)]
    pub health_timeout: Duration,
    /// Attempts per tenant before it is marked failed (with exponential backoff between)
    #[arg(long, value_name = "N", default_value_t = ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub attempts: u32,
    #[command(flatten)]
    pub destroy: DestroyGuard,
}

const MAX_DESTROY_ENV: &str = "TENANTCTL_MAX_DESTROY";
const KEYS_FILE_ENV: &str = "TENANTCTL_KEYS_FILE";
const MAX_DESTROY: &str = "50%";

/// The mass-destruction guard's limit, shared by `plan` (a warning) and the applying commands.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct DestroyGuard {
    /// Refuse a plan that removes the containers of more tenants than this (a share such as 50%,
    /// or a count); removing every tenant is always refused. `apply --allow-destroy` overrides it
    #[arg(long, value_name = "N|P%", env = MAX_DESTROY_ENV, default_value = MAX_DESTROY)]
    pub max_destroy: DestroyLimit,
}

impl DestroyGuard {
    /// The flag's default, read from `TENANTCTL_MAX_DESTROY` as the flag reads it.
    pub fn defaults() -> anyhow::Result<DestroyGuard> {
        Ok(DestroyGuard {
            max_destroy: std::env::var(MAX_DESTROY_ENV)
                .unwrap_or_else(|_| MAX_DESTROY.into())
                .parse()
                .map_err(anyhow::Error::msg)?,
        })
    }
}

impl ApplyTuning {
    /// The flags' defaults, for a command that has none of them; the pool is still read from
    /// `TENANTCTL_SUBNET_POOL`, as the flag reads it.
    pub fn defaults() -> anyhow::Result<ApplyTuning> {
        Ok(ApplyTuning {
            parallelism: PARALLELISM,
            prune: false,
            subnet_pool: std::env::var(SUBNET_POOL_ENV)
                .unwrap_or_else(|_| SUBNET_POOL.into())
                .parse()?,
            health_timeout: parse_duration(HEALTH_TIMEOUT).map_err(anyhow::Error::msg)?,
            attempts: ATTEMPTS,
            destroy: DestroyGuard::defaults()?,
        })
    }

    pub fn config(&self, namespace: &str, revision: String) -> apply::ApplyConfig {
        apply::ApplyConfig {
            namespace: namespace.to_string(),
            revision,
            parallelism: usize::from(self.parallelism),
            attempts: self.attempts,
            backoff: BACKOFF,
            health_timeout: self.health_timeout,
            subnet_pool: self.subnet_pool,
            prune: self.prune,
        }
    }
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The ref to follow: a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    pub r#ref: String,
    /// How often a pass runs anyway, reading git and the database again (e.g. 30s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub interval: Duration,
    /// How often the engine is listed whole; between listings, its events keep what watch
    /// observed current (a lost event stream lists at once)
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub resync: Duration,
    /// Quiet time after a git event before applying
    #[arg(long, value_name = "DURATION", default_value = "200ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// Repair drift (containers stopped, removed or edited by hand, database rows edited) without waiting for a commit
    #[arg(long)]
    pub self_heal: bool,
    #[command(flatten)]
    pub tuning: ApplyTuning,

    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Sample each tenant's CPU, memory, I/O and API counters this often (0s turns metering off)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub meter_interval: Duration,
    /// Copy each tenant container's new output into the database this often (0s turns the log
    /// history off)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub log_sync_interval: Duration,
    /// Stored log lines older than this are deleted
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_duration)]
    pub log_retention: Duration,
    /// Follow a remote repository (https://, ssh://, git@host:path or a path) instead of a local one;
    /// it is fetched into a local cache every pass and on SIGHUP
    #[arg(long, value_name = "URL", conflicts_with = "ref")]
    pub remote: Option<String>,
    /// The remote branch to follow
    #[arg(
        long,
        value_name = "BRANCH",
        default_value = "main",
        requires = "remote"
    )]
    pub branch: String,
    /// Where the remote's cache lives [default: .tenantctl/remote/ in the current directory]
    #[arg(long, value_name = "DIR", requires = "remote")]
    pub cache_dir: Option<PathBuf>,
    /// The leader lease's length (1s to 5m): a standby takes over within it when the leader
    /// dies; the leader renews every third of it and stops applying if it cannot
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// Append new API keys to this file (created 0600, one `slug key` line each); they never
    /// reach the log [default: .tenantctl/new-keys in the state directory]
    #[arg(long, value_name = "PATH", env = KEYS_FILE_ENV)]
    pub keys_file: Option<PathBuf>,
}

pub fn parse_lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = parse_duration(text)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ttl) {
        return Err(format!("`{text}`: the lease lasts from 1s to 5m"));
    }
    Ok(ttl)
}

/// `500ms`, `30s`, `2m`, `1h30m`, `2d` (as `humantime` reads them), or plain seconds (`1.5`):
/// the one duration parser of every flag.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return match t.parse::<f64>() {
            Ok(n) if n.is_finite() && n >= 0.0 => Ok(Duration::from_secs_f64(n)),
            _ => Err(format!(
                "`{text}` is not a duration; write e.g. 30s, 2m or 1h30m"
            )),
        };
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write e.g. 500ms, 30s, 2m or 1h30m")
    })
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The commit to plan: a branch, tag or commit id
    #[arg(
        long,
        value_name = "REF",
        default_value = "HEAD",
        conflicts_with = "worktree"
    )]
    pub r#ref: String,
    /// Plan the files on disk, including uncommitted edits
    #[arg(long)]
    pub worktree: bool,
    /// Only plan these tenants (plan and theme records are always included); repeatable
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
    /// Exit 0 when there are no changes, 2 when there are changes, 1 on error
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also plan removing managed containers and networks of tenants no longer in git
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub destroy: DestroyGuard,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    pub no_color: bool,
    /// Compare two revisions from git alone, without the engine or the database (needs --against)
    #[arg(long, requires = "against")]
    pub offline: bool,
    /// The earlier revision for --offline: what runs is taken to be this one, fully applied
    #[arg(long, value_name = "REF", requires = "offline")]
    pub against: Option<String>,
}

/// What `plan` prints: `output` of the other commands, plus Markdown for a pull request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    Text,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Only these tenants; repeatable
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Never colour the output (NO_COLOR is honoured too)
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Args, Debug)]
pub struct TuiArgs {
    /// The ref to compare with (and, in-process, to follow): a branch, tag or commit id
    #[arg(long, value_name = "REF", default_value = "HEAD")]
    pub r#ref: String,
    /// Never reconcile: only observe (the default when `tenantctl watch` already runs)
    #[arg(long)]
    pub read_only: bool,
    /// How often the engine and the database are observed
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub refresh: Duration,
    /// Log lines kept for the log pane
    #[arg(long, value_name = "N", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=1_000_000))]
    pub log_lines: u64,
    /// Never colour the screen (NO_COLOR is honoured too)
    #[arg(long)]
    pub no_color: bool,
    /// Full resync period of the in-process loop (e.g. 30s, 1m)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub interval: Duration,
    /// The in-process loop repairs drift without waiting for a commit
    #[arg(long)]
    pub self_heal: bool,
    /// The in-process loop samples usage this often (0s turns metering off)
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub meter_interval: Duration,
    #[command(flatten)]
    pub tuning: ApplyTuning,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    /// The tenant's slug (a tenant named `sync`: `tenantctl logs -- sync`)
    #[arg(required = true)]
    pub slug: Option<String>,
    /// Keep streaming new lines until Ctrl-C
    #[arg(short, long)]
    pub follow: bool,
    /// How many past lines to show first: a number or `all`
    #[arg(long, value_name = "N", default_value = "100")]
    pub tail: crate::runtime::Tail,
    /// Only lines since then: a duration back from now (10m, 2h, 1d) or an RFC 3339 time
    #[arg(long, value_name = "DUR|TIME")]
    pub since: Option<String>,
    /// Prefix every line with the engine's timestamp
    #[arg(long)]
    pub timestamps: bool,
}

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Copy every tenant container's new output into the database (lines already stored are
    /// skipped), then delete lines older than --log-retention; `watch` does this beside its loop.
    Sync(LogsSyncArgs),
}

#[derive(Args, Debug)]
pub struct LogsSyncArgs {
    /// Only this tenant's containers
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Stored lines older than this are deleted, and never stored
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_duration)]
    pub log_retention: Duration,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InvoicesArgs {
    #[command(subcommand)]
    pub command: Option<InvoicesCommand>,
    /// Only this tenant's invoices (a tenant named `close`: `tenantctl invoices -- close`)
    pub slug: Option<String>,
    /// Only this billing period: YYYY-MM (or YYYY for yearly plans)
    #[arg(long, value_name = "PERIOD")]
    pub period: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Subcommand, Debug)]
pub enum InvoicesCommand {
    /// Close every tenant's invoice of the billing period that ended last (closing again
    /// changes nothing)
    Close {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Only this tenant's events
    #[arg(long, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// Only events of this kind, exactly or as a glob (`tenant-record.*`, `*.replace`)
    #[arg(long, value_name = "KIND")]
    pub kind: Option<String>,
    /// Only events since then: a duration back from now (30m, 1h30m, 2d) or an RFC 3339 time
    #[arg(long, value_name = "DUR|TIME")]
    pub since: Option<String>,
    /// At most this many (the most recent); default 100 without --since, all with it
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: Option<i64>,
    /// Keep printing new events as they are recorded (the database is read every second)
    #[arg(short, long)]
    pub follow: bool,
    /// text, or json: one document (JSON lines, one event each, with --follow)
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct Tuned {
        #[command(flatten)]
        tuning: ApplyTuning,
    }

    #[test]
    fn commands_without_apply_flags_get_the_flags_defaults() {
        let flags = Tuned::parse_from(["tenantctl"]).tuning;
        let mut defaults = ApplyTuning::defaults().unwrap();
        // The environment may name another pool; both read it alike, so compare the rest.
        defaults.subnet_pool = flags.subnet_pool;
        assert_eq!(defaults, flags);
        let config = defaults.config("ns", "r".into());
        assert_eq!(
            (config.attempts, config.health_timeout, config.backoff),
            (3, Duration::from_secs(60), Duration::from_millis(500))
        );
    }

    #[test]
    fn the_flags_are_consistent() {
        Cli::command().debug_assert();
        command().debug_assert();
    }

    /// Every flag of every visible command, with the name of its command.
    fn flags(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            out.push((path.to_string(), arg.clone()));
        }
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            flags(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_flag_has_an_environment_variable_but_the_dangerous_ones() {
        let mut all = vec![];
        let mut command = command();
        command.build();
        flags(&command, "tenantctl", &mut all);
        let mut named = 0;
        for (path, arg) in &all {
            let Some(long) = arg.get_long() else { continue };
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            if NO_ENV.contains(&long) || long == "verbose" {
                assert_eq!(env, None, "{path} --{long} must have no variable");
            } else {
                assert_eq!(env, Some(env_name(long)), "{path} --{long}");
                named += 1;
            }
        }
        assert!(named > 40, "only {named} flags have a variable");
        for danger in ["auto-approve", "allow-destroy", "adopt"] {
            assert!(all.iter().any(|(_, a)| a.get_long() == Some(danger)));
        }
    }

    #[test]
    fn output_has_short_o_everywhere() {
        let mut all = vec![];
        flags(&command(), "tenantctl", &mut all);
        let outputs: Vec<_> = all
            .iter()
            .filter(|(_, a)| a.get_long() == Some("output"))
            .collect();
        assert!(outputs.len() >= 4);
        for (path, arg) in outputs {
            assert_eq!(arg.get_short(), Some('o'), "{path} --output");
        }
    }

    #[test]
    fn quiet_and_verbose_are_global_and_exclusive() {
        use clap::FromArgMatches;
        let parse = |args: &[&str]| {
            command()
                .try_get_matches_from(args)
                .and_then(|m| Cli::from_arg_matches(&m))
        };
        let cli = parse(&["tenantctl", "validate", "-vv"]).unwrap();
        assert_eq!(cli.conventions.verbose, 2);
        assert_eq!(crate::cli::log_level(&cli.conventions), "debug");
        let cli = parse(&["tenantctl", "-q", "status", "-o", "json"]).unwrap();
        assert!(cli.conventions.quiet);
        assert_eq!(crate::cli::log_level(&cli.conventions), "error");
        let e = parse(&["tenantctl", "-q", "-v", "validate"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli = parse(&["tenantctl", "--color", "always", "plan"]).unwrap();
        assert_eq!(cli.conventions.color, ColorWhen::Always);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        let e = parse_duration("5 parsecs").unwrap_err();
        assert!(
            e.contains("is not a duration") && e.contains("1h30m"),
            "{e}"
        );
        assert!(parse_duration("").is_err());
        assert!(parse_lease_ttl("10m").is_err());
    }
}
