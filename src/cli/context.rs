//! Where a command's state lives and how it is reached: the repository's directory, the
//! database URL (its default decided here only), the engine and database connections, and the
//! desired state of a revision with both sides of the actual state ([`Loaded`]).

use super::args::Cli;
use super::validate::check;
use crate::apply::Progress;
use crate::model::DesiredState;
use crate::plan::trial;
use crate::plan::{ObservedState, PlanOptions};
use crate::reconcile::{self, Planned};
use crate::runtime::{Runtime, RuntimeError, RuntimeKind};
use crate::source::{Repo, Snapshot};
use crate::store::Store;
use anyhow::{Context as _, Result, bail};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

/// The global flags every command reads, resolved the same way for all of them.
pub struct Context<'a> {
    cli: &'a Cli,
}

impl<'a> Context<'a> {
    pub fn new(cli: &'a Cli) -> Context<'a> {
        Context { cli }
    }

    pub fn namespace(&self) -> &str {
        &self.cli.namespace
    }

    pub fn runtime_kind(&self) -> RuntimeKind {
        self.cli.runtime
    }

    /// `--repo`, or the current directory.
    pub fn dir(&self) -> Result<PathBuf> {
        match &self.cli.repo {
            Some(dir) => {
                if !dir.is_dir() {
                    bail!("--repo {}: no such directory", dir.display());
                }
                Ok(dir.clone())
            }
            None => std::env::current_dir().context("cannot read the current directory"),
        }
    }

    /// The git repository around [`Context::dir`].
    pub fn repo(&self) -> Result<Repo> {
        Ok(Repo::discover(&self.dir()?)?)
    }

    /// `--database-url`, else the SQLite file in the repository at `root`, which is only
    /// looked for then (with a URL, `usage` runs outside any repository).
    fn database_url(&self, root: impl FnOnce() -> Result<PathBuf>) -> Result<String> {
        match &self.cli.database_url {
            Some(url) => Ok(url.clone()),
            None => Ok(Store::default_url(&root()?)),
        }
    }

    /// The engine connection, in the runtime mode asked for.
    pub async fn runtime(&self) -> Result<Runtime, RuntimeError> {
        Runtime::connect(&self.cli.namespace)
            .await?
            .with_kind(self.cli.runtime)
            .await
    }

    /// The database alone: `--database-url`, else the one of the repository around.
    pub async fn store(&self) -> Result<Store> {
        let url = self.database_url(|| Ok(self.repo()?.root().to_path_buf()))?;
        Ok(Store::open(&url).await?)
    }

    /// The engine and the database of the state repository at `root`, connected at once.
    pub async fn connect(&self, root: &Path) -> Result<(Runtime, Store)> {
        let url = self.database_url(|| Ok(root.to_path_buf()))?;
        let (runtime, store) = tokio::join!(self.runtime(), Store::open(&url));
        Ok((runtime?, store?))
    }

    /// [`Context::connect`] for a loop that must outlive outages: an engine or database that is
    /// down is reported on `progress` and tried again with backoff (1 s doubling, at most
    /// `max_delay`: the loop's interval), never given up on. `None` when `shutdown` resolves first.
    pub async fn connect_retrying(
        &self,
        root: &Path,
        progress: &dyn Progress,
        max_delay: Duration,
        mut shutdown: Pin<&mut impl Future<Output = ()>>,
    ) -> Result<Option<(Runtime, Store)>> {
        let url = self.database_url(|| Ok(root.to_path_buf()))?;
        let mut delay = Duration::from_secs(1).min(max_delay.max(Duration::from_secs(1)));
        loop {
            let (runtime, store) = tokio::join!(self.runtime(), Store::open(&url));
            match (runtime, store) {
                (Ok(r), Ok(s)) => return Ok(Some((r, s))),
                (r, s) => {
                    let why = [
                        r.err().map(|e| e.to_string()),
                        s.err().map(|e| e.to_string()),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                    progress.line(None, &format!("{why}; retrying in {}s", delay.as_secs()));
                    tokio::select! {
                        () = &mut shutdown => return Ok(None),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = next_delay(delay, max_delay);
                }
            }
        }
    }

    /// Reads and validates the desired state at `reference` (or the files on disk), then
    /// connects to the engine and the database. `Ok(None)` means the revision is invalid (its
    /// diagnostics are printed).
    pub async fn load(&self, reference: &str, worktree: bool) -> Result<Option<Loaded>> {
        let repo = self.repo()?;
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
        let (runtime, store) = self.connect(repo.root()).await?;
        Ok(Some(Loaded {
            repo,
            snapshot,
            desired,
            runtime,
            store,
        }))
    }
}

/// The retry delay after `delay`: doubled, never above `max` (nor below a second).
fn next_delay(delay: Duration, max: Duration) -> Duration {
    (delay * 2).min(max.max(Duration::from_secs(1)))
}

/// Desired state at a revision, and both sides of the actual state.
pub struct Loaded {
    pub repo: Repo,
    pub snapshot: Snapshot,
    pub desired: DesiredState,
    pub runtime: Runtime,
    pub store: Store,
}

impl Loaded {
    /// The revision plans and applies name: the commit id, or the short id of the commit
    /// under worktree edits.
    pub fn revision(&self) -> String {
        match &self.snapshot.base_revision {
            Some(_) => self.snapshot.short_revision(),
            None => self.snapshot.revision.clone(),
        }
    }

    pub async fn observe(&self) -> Result<ObservedState> {
        Ok(reconcile::observe(&self.runtime, &self.store).await?)
    }

    /// The plan against `observed`, through the reconcile path (trial rule and notes included).
    pub fn plan(&self, observed: &ObservedState, opts: &PlanOptions) -> Planned<'_> {
        reconcile::plan_revision(&self.desired, observed, opts, trial::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str], database_url: Option<&str>) -> Cli {
        let mut cli = Cli::parse_from([&["tenantctl"], args, &["usage"]].concat());
        // The environment may name a database; these tests decide it themselves.
        cli.database_url = database_url.map(str::to_string);
        cli
    }

    #[test]
    fn the_database_defaults_to_the_repositorys_sqlite_file() {
        let cli = cli(&[], None);
        let url = Context::new(&cli)
            .database_url(|| Ok(PathBuf::from("/state")))
            .unwrap();
        assert_eq!(url, Store::default_url(Path::new("/state")));
    }

    #[test]
    fn a_database_url_needs_no_repository() {
        let cli = cli(&[], Some("postgres://u@h/db"));
        let url = Context::new(&cli)
            .database_url(|| bail!("no repository here"))
            .unwrap();
        assert_eq!(url, "postgres://u@h/db");
    }

    #[test]
    fn the_connect_backoff_doubles_up_to_the_interval() {
        let two = Duration::from_secs(2);
        let mut delay = Duration::from_secs(1);
        let mut seen = vec![delay];
        for _ in 0..5 {
            delay = next_delay(delay, two);
            seen.push(delay);
        }
        assert_eq!(
            seen.iter().map(Duration::as_secs).collect::<Vec<_>>(),
            [1, 2, 2, 2, 2, 2]
        );
        assert_eq!(
            next_delay(Duration::from_secs(32), Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        assert_eq!(
            next_delay(Duration::from_secs(1), Duration::ZERO),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_missing_repo_directory_is_named() {
        let cli = cli(&["--repo", "/no/such/dir"], None);
        let err = Context::new(&cli).dir().unwrap_err();
        assert_eq!(err.to_string(), "--repo /no/such/dir: no such directory");
    }
}
