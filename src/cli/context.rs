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
use crate::runtime::ObservedRuntime;
use crate::runtime::types::LABEL_INSTALLATION;
use crate::runtime::{Runtime, RuntimeError};
use crate::source::{Repo, Snapshot};
use crate::store::Store;
use anyhow::{Context as _, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

/// A writing command's refusal of the database it was given (see [`wrong_database`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WrongDatabase(pub String);

/// What a command may do to the state database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only: a missing SQLite file is read as empty state and never created.
    Read,
    /// Writes: a new or empty database is used only when the namespace has no managed objects
    /// on the engine, or when `adopt` rebuilds the rows from them (`apply --adopt`).
    Write { adopt: bool },
}

/// Why a writing command refuses the database it was given: the namespace runs managed objects
/// the database knows nothing of. `None` when the database may be used. No IO.
pub fn wrong_database(
    namespace: &str,
    runtime: &ObservedRuntime,
    rows: &BTreeSet<String>,
    database: &str,
    adopt_hint: &str,
) -> Option<String> {
    let objects = runtime.containers.len() + runtime.networks.len() + runtime.volumes.len();
    if objects == 0 {
        return None;
    }
    let running: BTreeSet<&str> = runtime
        .containers
        .iter()
        .filter_map(|c| c.tenant.as_deref())
        .collect();
    let state = if rows.is_empty() {
        "is new/empty".to_string()
    } else if !running.is_empty() && running.iter().all(|t| !rows.contains(*t)) {
        // Rows are kept for every tenant ever applied with a database (removal marks them
        // cancelled), so a database that knows none of the running tenants never made them.
        format!(
            "describes none of its tenants ({})",
            running
                .iter()
                .take(10)
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        return None;
    };
    Some(format!(
        "namespace {namespace} has {objects} managed objects but the database at {database} {state} — a wrong --database-url? To rebuild the rows from what runs, {adopt_hint}"
    ))
}

/// How many of the namespace's managed containers (services) carry the installation label of
/// each installation that is neither the database's own nor one it adopted (`accepted`). An
/// object without the label predates installation ids and belongs to nobody. No IO.
pub fn foreign_installations(
    runtime: &ObservedRuntime,
    accepted: &BTreeSet<String>,
) -> BTreeMap<String, usize> {
    let mut foreign = BTreeMap::new();
    for c in &runtime.containers {
        if let Some(id) = c.labels.get(LABEL_INSTALLATION)
            && !accepted.contains(id)
        {
            *foreign.entry(id.clone()).or_insert(0) += 1;
        }
    }
    foreign
}

/// Why a writing command refuses a database whose installation did not make the namespace's
/// objects (`foreign`, from [`foreign_installations`]); `None` when there are none. `own` is the
/// database's installation id and its tenant rows, `None` for a database not made yet. No IO.
pub fn foreign_database(
    namespace: &str,
    runtime: &ObservedRuntime,
    foreign: &BTreeMap<String, usize>,
    database: &str,
    own: Option<(&str, usize)>,
    adopt_hint: &str,
) -> Option<String> {
    let count: usize = foreign.values().sum();
    if count == 0 {
        return None;
    }
    let what = match runtime.kind {
        crate::runtime::RuntimeKind::Docker => "containers",
        crate::runtime::RuntimeKind::Swarm => "services",
    };
    let ids = foreign.keys().cloned().collect::<Vec<_>>().join(", ");
    let this = match own {
        Some((id, rows)) => format!(
            "belongs to installation {id} ({rows} tenant row{})",
            if rows == 1 { "" } else { "s" }
        ),
        None => "is new".to_string(),
    };
    Some(format!(
        "namespace {namespace} has {count} managed {what} made with another database (installation {ids}), but the database at {database} {this}; nothing was changed. A wrong --database-url? Point it at the database of installation {ids}. To take these tenants over into this database instead (rows rebuilt from the {what}, API keys kept), {adopt_hint}"
    ))
}

/// The global flags every command reads, resolved the same way for all of them.
pub struct Context<'a> {
    cli: &'a Cli,
    /// The command takes `--adopt` (apply): the refusal of a wrong database names that flag.
    adoptable: bool,
}

impl<'a> Context<'a> {
    pub fn new(cli: &'a Cli) -> Context<'a> {
        Context {
            cli,
            adoptable: matches!(cli.command, super::args::Command::Apply(_)),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.cli.namespace
    }

    /// `--runtime`, as asked for: what an offline plan plans for, without asking the engine.
    pub fn runtime_kind(&self) -> crate::runtime::RuntimeKind {
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

    /// The database alone, to read: `--database-url`, else the one of the repository around.
    pub async fn store(&self) -> Result<Store> {
        read_store(&self.read_url()?).await
    }

    /// The URL [`Context::store`] opens.
    pub fn read_url(&self) -> Result<String> {
        self.database_url(|| Ok(self.repo()?.root().to_path_buf()))
    }

    /// The engine and the database of the state repository at `root`, connected at once; for
    /// [`Access::Write`], the database is checked against the namespace's managed objects
    /// (see [`wrong_database`]) before it is created or used.
    pub async fn connect(&self, root: &Path, access: Access) -> Result<(Runtime, Store)> {
        let url = self.database_url(|| Ok(root.to_path_buf()))?;
        match access {
            Access::Read => {
                let (runtime, store) = tokio::join!(self.runtime(), read_store(&url));
                Ok((runtime?, store?))
            }
            Access::Write { adopt } => {
                let runtime = self.runtime().await?;
                let store = self.write_store(&runtime, &url, adopt).await?;
                Ok((runtime, store))
            }
        }
    }

    /// The database at `url` for a writing command: refused (and a missing SQLite file not
    /// created) when the namespace runs managed objects it knows nothing of, unless `adopt`.
    async fn write_store(&self, runtime: &Runtime, url: &str, adopt: bool) -> Result<Store> {
        let hint = if adopt {
            return Ok(Store::open(url).await?);
        } else if self.adoptable {
            "pass --adopt"
        } else {
            "run `tenantctl apply --adopt`"
        };
        let observed = runtime.observe().await?;
        let redacted = crate::store::redact(url);
        let refuse = |rows: &BTreeSet<String>| {
            wrong_database(self.namespace(), &observed, rows, &redacted, hint)
        };
        let foreign = |accepted: &BTreeSet<String>, own: Option<(&str, usize)>| {
            let found = foreign_installations(&observed, accepted);
            foreign_database(self.namespace(), &observed, &found, &redacted, own, hint)
        };
        if Store::missing_file(url).is_some() {
            if let Some(why) = refuse(&BTreeSet::new()).or_else(|| foreign(&BTreeSet::new(), None))
            {
                return Err(WrongDatabase(why).into());
            }
            return Ok(Store::open(url).await?);
        }
        let store = Store::open(url).await?;
        let known = async {
            let db = store.observe().await?;
            let mut accepted: BTreeSet<String> =
                store.adopted_installations().await?.into_keys().collect();
            accepted.insert(store.installation_id().to_string());
            Ok::<_, crate::store::StoreError>((db.tenants.into_keys().collect(), accepted))
        };
        let (rows, accepted): (BTreeSet<String>, _) = match known.await {
            Ok(known) => known,
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        };
        let own = Some((store.installation_id(), rows.len()));
        // An empty database gets the plain "new/empty" refusal; one with rows is named by its installation.
        let why = if rows.is_empty() {
            refuse(&rows).or_else(|| foreign(&accepted, own))
        } else {
            foreign(&accepted, own).or_else(|| refuse(&rows))
        };
        if let Some(why) = why {
            store.close().await;
            return Err(WrongDatabase(why).into());
        }
        Ok(store)
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
            let attempt = async {
                let runtime = self.runtime().await?;
                let store = self.write_store(&runtime, &url, false).await?;
                anyhow::Ok((runtime, store))
            };
            match attempt.await {
                Ok(connected) => return Ok(Some(connected)),
                // A database the namespace does not match is a mistake, not an outage.
                Err(e) if e.is::<WrongDatabase>() => return Err(e),
                Err(e) => {
                    progress.line(None, &format!("{e:#}; retrying in {}s", delay.as_secs()));
                    tokio::select! {
                        () = &mut shutdown => return Ok(None),
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = next_delay(delay, max_delay);
                }
            }
        }
    }

    /// Routes the events `store` records to the notifications of HEAD, for commands that do
    /// not otherwise read the repository (`keys create`, `keys revoke`). Best effort: an
    /// invalid or unreadable HEAD must not stop an operator revoking a key, so it only says
    /// on stderr that the events are not notified. True when HEAD has notifications.
    pub fn route_events_as_head(&self, store: &Store) -> bool {
        let routed = self
            .repo()
            .map_err(|e| e.to_string())
            .and_then(|repo| repo.snapshot_at("HEAD").map_err(|e| e.to_string()))
            .and_then(|snapshot| {
                crate::model::load(&snapshot.files)
                    .map(|desired| (desired, snapshot.short_revision()))
                    .map_err(|diags| format!("{} problem(s) at HEAD", diags.len()))
            });
        match routed {
            Ok((desired, revision)) => {
                store.set_notifications(crate::notify::Routes::of(
                    &desired.notifications,
                    &revision,
                ));
                !desired.notifications.is_empty()
            }
            Err(why) => {
                eprintln!("note: this command's events are not notified: {why}");
                false
            }
        }
    }

    /// Reads and validates the desired state at `reference` (or the files on disk), then
    /// connects to the engine and the database. `Ok(None)` means the revision is invalid (its
    /// diagnostics are printed).
    pub async fn load(
        &self,
        reference: &str,
        worktree: bool,
        access: Access,
    ) -> Result<Option<Loaded>> {
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
        let (runtime, store) = self.connect(repo.root(), access).await?;
        let revision = match &snapshot.base_revision {
            Some(_) => snapshot.short_revision(),
            None => snapshot.revision.clone(),
        };
        // Events this command records go to the revision's notifications.
        store.set_notifications(crate::notify::Routes::of(&desired.notifications, &revision));
        Ok(Some(Loaded {
            repo,
            snapshot,
            desired,
            runtime,
            store,
        }))
    }
}

/// The database at `url` to read. A SQLite file that does not exist is neither created nor its
/// folder: the command reads an empty state, and says so on stderr.
async fn read_store(url: &str) -> Result<Store> {
    if let Some(file) = Store::missing_file(url) {
        eprintln!(
            "note: no state database at {}: nothing has been applied with it",
            file.display()
        );
        return Ok(Store::empty().await?);
    }
    Store::open_existing(url)
        .await?
        .context("the state database disappeared while it was opened")
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

    /// Engine and database, with what a customer reaches of each tenant (the probe).
    pub async fn observe(&self) -> Result<ObservedState> {
        Ok(reconcile::observe(&self.runtime, &self.store, Some(&self.desired)).await?)
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
    fn a_database_that_knows_nothing_of_the_running_tenants_is_refused() {
        use crate::runtime::{ObservedRuntime, RuntimeKind};
        let observed = ObservedRuntime {
            kind: RuntimeKind::Docker,
            containers: vec![],
            networks: vec![],
            volumes: vec![],
            edge: None,
            probe_host_fault: None,
        };
        let rows = |slugs: &[&str]| slugs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let db = "sqlite:///wrong/state.db";
        assert_eq!(
            wrong_database("ns", &observed, &rows(&[]), db, "pass --adopt"),
            None,
            "nothing runs"
        );

        let mut running = observed.clone();
        running.containers.push(crate::cli::adopt::test_container(
            "ns-acme",
            "acme",
            crate::runtime::ContainerState::Running,
        ));
        let empty = wrong_database("ns", &running, &rows(&[]), db, "pass --adopt").unwrap();
        assert_eq!(
            empty,
            "namespace ns has 1 managed objects but the database at sqlite:///wrong/state.db is new/empty — a wrong --database-url? To rebuild the rows from what runs, pass --adopt"
        );
        let other = wrong_database("ns", &running, &rows(&["globex"]), db, "pass --adopt").unwrap();
        assert!(
            other.contains("describes none of its tenants (acme)"),
            "{other}"
        );
        assert_eq!(
            wrong_database("ns", &running, &rows(&["acme", "globex"]), db, "x"),
            None
        );
    }

    #[test]
    fn another_installations_containers_are_counted_and_named() {
        use crate::runtime::{ContainerState, ObservedRuntime, RuntimeKind};
        let labelled = |name: &str, slug: &str, id: Option<&str>| {
            let mut c = crate::cli::adopt::test_container(name, slug, ContainerState::Running);
            if let Some(id) = id {
                c.labels.insert(LABEL_INSTALLATION.into(), id.into());
            }
            c
        };
        let runtime = ObservedRuntime {
            kind: RuntimeKind::Docker,
            containers: vec![
                labelled("ns-acme", "acme", Some("aaa")),
                labelled("ns-globex", "globex", Some("aaa")),
                labelled("ns-hooli", "hooli", Some("bbb")),
                labelled("ns-old", "old", None),
            ],
            networks: vec![],
            volumes: vec![],
            edge: None,
            probe_host_fault: None,
        };
        let accepted = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            foreign_installations(&runtime, &accepted(&["bbb"])),
            BTreeMap::from([("aaa".to_string(), 2)]),
            "unlabelled (legacy) objects belong to nobody"
        );
        assert!(foreign_installations(&runtime, &accepted(&["aaa", "bbb"])).is_empty());
        let foreign = foreign_installations(&runtime, &accepted(&["bbb"]));
        let db = "sqlite:///other/state.db";
        assert_eq!(
            foreign_database(
                "ns",
                &runtime,
                &foreign,
                db,
                Some(("bbb", 1)),
                "pass --adopt"
            )
            .as_deref(),
            Some(
                "namespace ns has 2 managed containers made with another database (installation aaa), but the database at sqlite:///other/state.db belongs to installation bbb (1 tenant row); nothing was changed. A wrong --database-url? Point it at the database of installation aaa. To take these tenants over into this database instead (rows rebuilt from the containers, API keys kept), pass --adopt"
            )
        );
        let new = foreign_database("ns", &runtime, &foreign, db, None, "x").unwrap();
        assert!(
            new.contains("the database at sqlite:///other/state.db is new;"),
            "{new}"
        );
        assert_eq!(
            foreign_database("ns", &runtime, &BTreeMap::new(), db, None, "x"),
            None
        );
    }

    #[test]
    fn a_missing_repo_directory_is_named() {
        let cli = cli(&["--repo", "/no/such/dir"], None);
        let err = Context::new(&cli).dir().unwrap_err();
        assert_eq!(err.to_string(), "--repo /no/such/dir: no such directory");
    }
}
