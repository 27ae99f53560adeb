//! The command line: argument parsing and wiring only; the work is in the library.

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tenantctl::model::{self, DesiredState, Diagnostic, slug_problem};
use tenantctl::plan::render::{self, Style};
use tenantctl::plan::{self, ObservedState, PlanOptions};
use tenantctl::runtime::Runtime;
use tenantctl::source::{self, Repo, Snapshot};
use tenantctl::store::Store;

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
    #[command(subcommand)]
    command: Command,
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
    /// Serve the built-in tenant site (the entrypoint of the built-in site image); env only.
    #[command(hide = true)]
    Site,
    /// Exit 0 if URL (http://host:port/path) answers 2xx within 3 s, else 1: the built-in image's health check.
    #[command(hide = true)]
    SiteHealth { url: String },
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

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
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
        Command::Plan(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(plan_command(&cli, args))
        }
        Command::Site => Ok(tenantctl::site::run()?),
        Command::SiteHealth { url } => Ok(tenantctl::site::run_health(url)),
    }
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

async fn plan_command(cli: &Cli, args: &PlanArgs) -> Result<ExitCode> {
    let dir = repo_dir(cli)?;
    let repo = Repo::discover(&dir)?;
    let snapshot: Snapshot = if args.worktree {
        repo.snapshot_worktree()?
    } else {
        repo.snapshot_at(&args.r#ref)?
    };
    let label = format!("revision {}", snapshot.short_revision());
    tracing::debug!(revision = %snapshot.revision, files = snapshot.files.len(), "read desired state");
    let Ok(desired) = check(&snapshot.files, &label) else {
        return Ok(ExitCode::from(1));
    };

    let url = cli
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(repo.root()));
    let (runtime, store) = tokio::join!(Runtime::connect(&cli.namespace), Store::open(&url));
    let runtime = runtime?;
    let store = store?;
    let (containers, db) = tokio::join!(runtime.observe(), store.observe());
    let observed = ObservedState {
        runtime: containers?,
        db: db?,
    };
    store.close().await;

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
        revision: match &snapshot.base_revision {
            Some(_) => snapshot.short_revision(),
            None => snapshot.revision.clone(),
        },
        prune: args.prune,
        tenants: args.tenants.clone(),
    };
    let plan = plan::compute(&desired, &observed, &opts);
    tracing::debug!(changes = plan.changes.len(), "computed plan");
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&render::json(&plan))?),
        Output::Text => {
            let color = !args.no_color
                && std::env::var_os("NO_COLOR").is_none()
                && std::io::stdout().is_terminal();
            print!("{}", render::text(&plan, Style { color }));
        }
    }
    if !args.worktree {
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
    }
    if args.detailed_exitcode && !plan.is_empty() {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
