//! Carries a plan out: records first, then tenants in parallel (bounded), each through ordered
//! steps, retried with backoff from a fresh observation, rolled back to its previous container
//! when the new one does not come up.

pub mod access;
mod edge;
mod images;
pub mod keys;

pub use edge::connect as connect_edge;
pub mod lock;
mod network;
pub mod progress;
mod step;

use crate::model::{DesiredState, TenantState};
use crate::plan::container::{
    API_KEY_ENV, ServiceShape, builtin_site_image, desired_container, desired_shape, labels,
};
use crate::plan::records::{plan_row, tenant_row, theme_row};
use crate::plan::trial;
use crate::plan::{Action, Change, ObservedState, PlanOptions, Resource};
use crate::runtime::types::{
    Applied, LABEL_INSTALLATION, Reach, Target, Workload, managed_labels, with_phases,
};
use crate::runtime::{Runtime, RuntimeError, SubnetPool};
use crate::store::{Store, StoreError, TenantRow, now_unix};
use ipnet::Ipv4Net;
use network::duplicates_left;
use progress::{Step, Tracker};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// How an apply runs; the CLI fills it from flags.
#[derive(Debug, Clone)]
pub struct ApplyConfig {
    pub namespace: String,
    pub revision: String,
    pub parallelism: usize,
    /// Attempts per tenant (the first try included).
    pub attempts: u32,
    /// First retry delay; doubles each attempt.
    pub backoff: Duration,
    /// How long a new container has to answer its health path.
    pub health_timeout: Duration,
    pub subnet_pool: Ipv4Net,
    pub prune: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}")]
    Step(String),
}

/// What became of one tenant.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Converged { url: Option<String> },
    Failed { reason: String },
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub run_id: i64,
    pub outcomes: BTreeMap<String, Outcome>,
    /// Keys created in this apply, shown once: slug → key.
    pub new_keys: BTreeMap<String, String>,
    pub changes_applied: usize,
    /// Converged tenants that run but whose backend publishes no port for them (no URL to show).
    pub unpublished: BTreeSet<String>,
    /// The edge's internal CA (PEM), when the repository has an edge with `tls: internal`.
    pub edge_ca: Option<String>,
    /// Why the edge did not come up or could not be reached, if so.
    pub edge_error: Option<String>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Failed { .. }))
            .count()
    }
}

/// Progress lines as work happens; the CLI prints them. The other calls feed a live display
/// (`apply` on a terminal); by default they print nothing more than the lines already do.
pub trait Progress: Send + Sync {
    fn line(&self, tenant: Option<&str>, message: &str);

    /// A tenant's convergence is at `step` now (said once per change of step).
    fn step(&self, _tenant: &str, _step: Step) {}

    /// A tenant's convergence ended: converged, or failed after its last attempt.
    fn finished(&self, _tenant: &str, _failed: bool) {}

    /// A line of an image's pull or build (`image REF: LINE` in the plain output).
    fn image(&self, image: &str, line: &str) {
        self.line(None, &format!("image {image}: {line}"));
    }

    /// The image is ready, or could not be made ready (its error is said as a line).
    fn image_done(&self, _image: &str) {}
}

pub struct Applier {
    runtime: Runtime,
    store: Store,
    config: ApplyConfig,
    desired: Arc<DesiredState>,
    progress: Arc<dyn Progress>,
    /// Serialises subnet choice across parallel tenants (the database also refuses duplicates),
    /// and holds what is taken, read once per apply (see [`network::SubnetBook`]).
    subnets: Mutex<Option<network::SubnetBook>>,
    run_id: i64,
    new_keys: Mutex<BTreeMap<String, String>>,
    unpublished: Mutex<BTreeSet<String>>,
    applied: std::sync::atomic::AtomicUsize,
    /// Images [`Applier::images`] could not make ready: reference → why. A tenant's `image`
    /// step tries such an image again, and fails with its error.
    missing_images: Mutex<BTreeMap<String, String>>,
    /// The running edge, once reached (see `edge.rs`).
    edge_link: Option<Arc<edge::EdgeLink>>,
    edge_failed: Option<String>,
}

impl Applier {
    pub fn new(
        runtime: Runtime,
        store: Store,
        config: ApplyConfig,
        desired: Arc<DesiredState>,
        progress: Arc<dyn Progress>,
    ) -> Applier {
        Applier {
            runtime,
            store,
            config,
            desired,
            progress,
            subnets: Mutex::new(None),
            run_id: 0,
            new_keys: Mutex::new(BTreeMap::new()),
            unpublished: Mutex::new(BTreeSet::new()),
            applied: std::sync::atomic::AtomicUsize::new(0),
            missing_images: Mutex::new(BTreeMap::new()),
            edge_link: None,
            edge_failed: None,
        }
    }

    fn plan_options(&self, tenants: Vec<String>) -> PlanOptions {
        PlanOptions {
            namespace: self.config.namespace.clone(),
            revision: self.config.revision.clone(),
            prune: self.config.prune,
            tenants,
        }
    }

    /// Applies `changes` (a plan computed under the lock). Records first, then every tenant.
    pub async fn run(mut self, changes: &[Change]) -> Result<Report, ApplyError> {
        self.run_id = self.store.start_run(&self.config.revision).await?;
        let started = Instant::now();
        self.records(changes).await?;
        self.images(changes).await;
        self.edge(changes).await?;

        let tenants: BTreeSet<String> = changes.iter().filter_map(|c| c.tenant.clone()).collect();
        // Unlabelled leftovers (only with --prune) have no tenant; handle them once here.
        for c in changes.iter().filter(|c| {
            c.tenant.is_none() && (c.resource.is_workload() || c.resource == Resource::Network)
        }) {
            self.execute_orphan(c).await;
        }
        let this = Arc::new(self);
        let gate = Arc::new(Semaphore::new(this.config.parallelism.max(1)));
        let mut set = tokio::task::JoinSet::new();
        for slug in tenants {
            let (this, gate) = (this.clone(), gate.clone());
            set.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let outcome = this.converge_tenant(&slug).await;
                (slug, outcome)
            });
        }
        let mut outcomes = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((slug, outcome)) => {
                    outcomes.insert(slug, outcome);
                }
                Err(e) => tracing::error!("a tenant task ended abnormally: {e}"),
            }
        }
        // The apply ends with the edge holding the routes of what runs.
        if let Some(link) = &this.edge_link {
            this.push_routes(link).await;
        }
        let edge_ca = this.edge_ca().await;
        let failed = outcomes
            .values()
            .filter(|o| matches!(o, Outcome::Failed { .. }))
            .count();
        let applied = this.applied.load(std::sync::atomic::Ordering::Relaxed);
        let summary = format!(
            "{applied} changes applied, {} tenants converged, {failed} failed in {:.1}s",
            outcomes.len() - failed,
            started.elapsed().as_secs_f64()
        );
        let status = if failed == 0 { "succeeded" } else { "failed" };
        this.store.finish_run(this.run_id, status, &summary).await?;
        let new_keys = this.new_keys.lock().await.clone();
        let unpublished = this.unpublished.lock().await.clone();
        Ok(Report {
            run_id: this.run_id,
            outcomes,
            new_keys,
            changes_applied: applied,
            unpublished,
            edge_ca,
            edge_error: this.edge_failed.clone(),
        })
    }

    async fn event(&self, tenant: Option<&str>, kind: &str, message: &str) {
        self.event_detail(tenant, kind, message, None).await;
    }

    /// An event with what it changed (`detail`: see [`crate::audit::detail_json`]).
    async fn event_detail(
        &self,
        tenant: Option<&str>,
        kind: &str,
        message: &str,
        detail: Option<String>,
    ) {
        if let Err(e) = self
            .store
            .record_event_detail(Some(self.run_id), tenant, kind, message, detail.as_deref())
            .await
        {
            tracing::warn!("recording an event failed: {e}");
        }
    }

    /// Plan and theme rows: what the SaaS application reads. Written before any tenant changes.
    async fn records(&self, changes: &[Change]) -> Result<(), ApplyError> {
        let now = now_unix();
        let rev = &self.config.revision;
        for c in changes
            .iter()
            .filter(|c| matches!(c.resource, Resource::PlanRecord | Resource::ThemeRecord))
        {
            match (c.resource, c.action) {
                (Resource::PlanRecord, Action::Destroy) => {
                    self.store.delete_plan(&c.name).await?;
                }
                (Resource::ThemeRecord, Action::Destroy) => {
                    self.store.delete_theme(&c.name).await?;
                }
                (Resource::PlanRecord, _) => {
                    if let Some(p) = self.desired.plans.get(&c.name) {
                        self.store.upsert_plan(&plan_row(p, rev, now)).await?;
                    }
                }
                _ => {
                    if let Some(t) = self.desired.themes.get(&c.name) {
                        self.store.upsert_theme(&theme_row(t, rev, now)).await?;
                    }
                }
            }
            self.progress.line(
                None,
                &format!("{}: {} {}", c.address(), c.action.symbol(), past(c.action)),
            );
            self.event_detail(
                None,
                &format!("{}.{}", c.resource.as_str(), action_word(c.action)),
                &c.address(),
                change_detail(c),
            )
            .await;
            self.applied
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    async fn execute_orphan(&self, c: &Change) {
        let backend = self.runtime.backend();
        let result = match c.resource {
            Resource::Network => backend.remove_network(&c.name).await,
            _ => {
                let target = Target {
                    name: &c.name,
                    id: c.container_id.as_deref(),
                    observed: None,
                };
                backend.remove(target).await
            }
        };
        match result {
            Ok(_) => {
                self.progress
                    .line(None, &format!("{}: - destroyed", c.address()));
                self.event(
                    None,
                    &format!("{}.destroy", c.resource.as_str()),
                    &c.address(),
                )
                .await;
            }
            Err(e) => self
                .progress
                .line(None, &format!("{}: destroy failed: {e}", c.address())),
        }
    }

    /// One tenant, all steps, with retries from a fresh observation each time.
    async fn converge_tenant(&self, slug: &str) -> Outcome {
        let tracker =
            Tracker::new(self.store.clone(), slug.to_string()).telling(slug, self.progress.clone());
        let outcome = self.converge_tracked(slug, &tracker).await;
        self.progress
            .finished(slug, matches!(outcome, Outcome::Failed { .. }));
        match &outcome {
            Outcome::Converged { .. } => tracker.finish(false).await,
            // A deposed leader records nothing more.
            Outcome::Failed { .. } if self.still_leading().is_err() => {}
            Outcome::Failed { .. } => tracker.finish(true).await,
        }
        outcome
    }

    async fn converge_tracked(&self, slug: &str, tracker: &Tracker) -> Outcome {
        let mut last_error = String::new();
        for attempt in 1..=self.config.attempts.max(1) {
            if attempt > 1 {
                let delay = self.config.backoff * 2u32.saturating_pow(attempt - 2);
                self.progress.line(
                    Some(slug),
                    &format!(
                        "retrying in {:.1}s (attempt {attempt} of {})",
                        delay.as_secs_f64(),
                        self.config.attempts
                    ),
                );
                tokio::time::sleep(delay).await;
            }
            match with_phases(tracker.sink(), self.attempt(slug, tracker)).await {
                Ok(reach) => {
                    if reach == Reach::Unpublished {
                        self.unpublished.lock().await.insert(slug.to_string());
                    }
                    // Behind an edge, customers use the edge's URL, which no replace changes.
                    let url = reach
                        .url()
                        .map(|direct| self.edge_url(slug).unwrap_or(direct));
                    self.finish_tenant(slug, None, url.as_deref(), Some(tracker))
                        .await;
                    return Outcome::Converged { url };
                }
                // The engine already tried the new spec and put the old one back: trying again
                // now would roll the same failure out and back once more.
                Err(ApplyError::Runtime(e @ RuntimeError::RolledBack { .. })) => {
                    last_error = e.to_string();
                    self.progress.line(
                        Some(slug),
                        &format!("attempt {attempt} failed: {last_error}"),
                    );
                    break;
                }
                // A deposed leader stops at once: no retry, nothing more recorded.
                Err(ApplyError::Store(e)) if e.is_fenced() => {
                    self.progress.line(Some(slug), &format!("stopped: {e}"));
                    return Outcome::Failed {
                        reason: e.to_string(),
                    };
                }
                Err(e) => {
                    last_error = e.to_string();
                    self.progress.line(
                        Some(slug),
                        &format!("attempt {attempt} failed: {last_error}"),
                    );
                    self.event(
                        Some(slug),
                        "tenant.attempt-failed",
                        &format!("attempt {attempt}: {last_error}"),
                    )
                    .await;
                }
            }
        }
        self.finish_tenant(slug, Some(&last_error), None, None)
            .await;
        self.event(Some(slug), "tenant.failed", &last_error).await;
        Outcome::Failed { reason: last_error }
    }

    /// Records the result on the tenant's row. Converged: the row takes git's settings (see
    /// [`Applier::settle`]), the applied revision and the URL, and its error is cleared. Failed:
    /// the settings stay those of what runs, beside the error and the revision that was tried.
    /// A converged tenant that was provisioned (or had failed before) says its `record` step.
    async fn finish_tenant(
        &self,
        slug: &str,
        error: Option<&str>,
        url: Option<&str>,
        tracker: Option<&Tracker>,
    ) {
        let result = async {
            let db = self.store.observe_tenant(slug).await?;
            let Some(mut row) = db.tenants.get(slug).cloned() else {
                return Ok::<(), StoreError>(());
            };
            let before = row.clone();
            if let Some(tracker) = tracker
                && (tracker.current().is_some() || row.progress_step.as_deref() == Some("failed"))
            {
                tracker.at(Step::Record);
            }
            match error {
                Some(error) => row.last_error = Some(error.to_string()),
                None => {
                    self.settle(slug, &mut row).await;
                    row.last_error = None;
                    row.applied_revision = Some(self.config.revision.clone());
                    if url.is_some() || row.state != "active" {
                        row.url = url.map(str::to_string);
                    }
                }
            }
            row.desired_revision = Some(self.config.revision.clone());
            if row == before {
                return Ok(());
            }
            row.updated_at = now_unix();
            self.store.upsert_tenant(&row).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(tenant = slug, "recording the outcome failed: {e}");
        }
    }

    /// Moves `row`'s settings (display name, owner, plan, theme, state, domain, features, trial
    /// end) to what git says — `cancelled` for a tenant gone from git — saying and recording
    /// what changed (the plan's `~ tenant-record` change, counted where the plan is carried out).
    /// Called once the tenant converged, or, when its plan changes nothing but the row, as that
    /// change is applied: the row never names settings that do not run.
    async fn settle(&self, slug: &str, row: &mut TenantRow) {
        let Some(t) = self.desired.tenants.get(slug) else {
            if row.state != "cancelled" {
                let before = settled_view(row);
                row.state = "cancelled".into();
                let changes = crate::audit::field_changes(Some(&before), Some(&settled_view(row)));
                self.event_detail(
                    Some(slug),
                    "tenant-record.update",
                    "state → cancelled (no longer in git)",
                    crate::audit::detail_json(&changes),
                )
                .await;
            }
            return;
        };
        let trial_days = self.desired.plans.get(&t.plan).map_or(0, |p| p.trial_days);
        let wanted = tenant_row(t, &self.config.revision, row.created_at);
        let trial_ends_at = trial::kept_end(trial_days, row.trial_ends_at);
        if crate::plan::records::tenant_matches(row, t) && trial_ends_at == row.trial_ends_at {
            return;
        }
        if let Some(ended) = row.trial_ends_at.filter(|_| trial_ends_at.is_none()) {
            let message = format!(
                "trial (until {}) ended: plan `{}` has no trial (trialDays: 0), so the tenant pays from now",
                trial::date(ended),
                t.plan
            );
            self.progress.line(Some(slug), &message);
            self.event(Some(slug), "tenant.trial-cleared", &message)
                .await;
        }
        let before = settled_view(row);
        row.display_name = wanted.display_name;
        row.owner = wanted.owner;
        row.plan = wanted.plan;
        row.theme = wanted.theme;
        row.state = wanted.state;
        row.domain = wanted.domain;
        row.features = wanted.features;
        row.trial_ends_at = trial_ends_at;
        let changes = crate::audit::field_changes(Some(&before), Some(&settled_view(row)));
        self.event_detail(
            Some(slug),
            "tenant-record.update",
            &format!("tenant-record.{slug}"),
            crate::audit::detail_json(&changes),
        )
        .await;
    }

    /// Writes `row`'s settings as git says now (see [`Applier::settle`]); for a tenant whose
    /// plan changes nothing on the engine.
    async fn settle_now(&self, slug: &str, row: &mut TenantRow) -> Result<(), ApplyError> {
        let before = row.clone();
        self.settle(slug, row).await;
        if *row != before {
            row.updated_at = now_unix();
            self.store.upsert_tenant(row).await?;
        }
        Ok(())
    }

    /// Observes this tenant afresh, plans it alone, and carries that plan out in order.
    async fn attempt(&self, slug: &str, tracker: &Tracker) -> Result<Reach, ApplyError> {
        let mut observed = ObservedState {
            runtime: self.runtime.observe_tenant(slug).await?,
            db: self.store.observe_tenant(slug).await?,
        };
        // What the customer reaches decides drift too: ask again, as the plan shown did.
        crate::reconcile::probe(
            &mut observed.runtime,
            self.runtime.namespace(),
            &self.desired,
        )
        .await;
        let mut row = self.ensure_row(slug, &observed).await?;
        // The row may have just been made (with its key): plan against it.
        if let Some(r) = &row {
            observed.db.tenants.insert(slug.to_string(), r.clone());
        }
        let plan = crate::plan::compute(
            &self.desired,
            &observed,
            &self.plan_options(vec![slug.to_string()]),
        );
        let mut url = None;
        let mine = || {
            plan.changes
                .iter()
                .filter(|c| c.tenant.as_deref() == Some(slug))
        };
        // Nothing to change on the engine: the row's settings are the whole change.
        if let Some(r) = row
            .as_mut()
            .filter(|_| mine().all(|c| c.resource == Resource::TenantRecord))
        {
            self.settle_now(slug, r).await?;
        }
        for change in mine() {
            self.still_leading()?;
            if let Some(u) = self
                .step(slug, change, row.as_ref(), &observed, tracker)
                .await?
            {
                url = Some(u);
            }
            self.applied
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if mine().next().is_some() && self.desired.tenants.contains_key(slug) {
            self.tell_site(slug).await?;
        }
        if !self.wants_running(slug) {
            return Ok(url.map_or(Reach::Nowhere, Reach::At));
        }
        let workload = self.workload(slug, row.as_ref())?;
        Ok(self.runtime.backend().reach(&workload, url).await?)
    }

    /// After a tenant's changes: its effective flags into `tenant_features`, and its access
    /// file (keys, flags) into its built-in site's volume, which the site reads within a second.
    async fn tell_site(&self, slug: &str) -> Result<(), ApplyError> {
        self.still_leading()?;
        if access::sync_features(&self.store, &self.desired, slug).await? {
            let flags: Vec<String> = access::effective(&self.desired, slug)
                .unwrap_or_default()
                .into_iter()
                .map(|(f, s)| format!("{f} ({s})"))
                .collect();
            self.event(
                Some(slug),
                "tenant.features",
                &format!("effective features: {}", flags.join(", ")),
            )
            .await;
        }
        let flags = access::effective(&self.desired, slug)
            .unwrap_or_default()
            .into_iter()
            .map(|(f, s)| (f, s.to_string()))
            .collect();
        access::push(&self.runtime, &self.store, slug, Some(flags)).await?;
        Ok(())
    }

    /// Refuses the next step once the fence this apply writes under is lost: a deposed leader
    /// changes nothing more on the engine, even between two of its store writes.
    fn still_leading(&self) -> Result<(), ApplyError> {
        match self.store.fence() {
            Some(fence) if !fence.is_valid() => Err(ApplyError::Store(StoreError::Fenced {
                term: fence.term,
                holder: fence.holder.clone(),
                why: "the lease was lost during the pass".into(),
            })),
            _ => Ok(()),
        }
    }

    /// The tenant's URL through the edge, when the repository has one and it gives a host.
    fn edge_url(&self, slug: &str) -> Option<String> {
        // An edge that did not come up serves nobody: the direct URL is what answers then.
        self.edge_link.as_ref()?;
        let edge = self.desired.edge.as_ref()?;
        edge.url_of(self.desired.tenants.get(slug)?)
    }

    fn wants_running(&self, slug: &str) -> bool {
        self.desired
            .tenants
            .get(slug)
            .is_some_and(|t| t.state == TenantState::Active)
    }

    /// Makes sure the tenant has a row before its container is made, since the container
    /// carries the key's digest: a new tenant's row is created from git (with a fresh API key,
    /// its trial end, and no applied revision until it converges). A known tenant's row keeps
    /// the settings of what runs; it only names the revision now tried (`desired_revision`)
    /// and gets a key if it has none. Settings move in [`Applier::settle`].
    async fn ensure_row(
        &self,
        slug: &str,
        observed: &ObservedState,
    ) -> Result<Option<TenantRow>, ApplyError> {
        let now = now_unix();
        let rev = &self.config.revision;
        let existing = observed.db.tenants.get(slug);
        let mut row = match (existing, self.desired.tenants.get(slug)) {
            (Some(old), _) => old.clone(),
            // Gone from git and never recorded: nothing to keep.
            (None, None) => return Ok(None),
            (None, Some(t)) => {
                let mut row = tenant_row(t, rev, now);
                let trial_days = self.desired.plans.get(&t.plan).map_or(0, |p| p.trial_days);
                row.trial_ends_at = trial::first_end(trial_days, now);
                row.applied_revision = None;
                row
            }
        };
        row.desired_revision = Some(rev.clone());
        // A gone tenant's row never needs a key: its container is only ever removed.
        if row.api_key_sha256.is_none() && self.desired.tenants.contains_key(slug) {
            let (key, digest) = keys::generate()
                .map_err(|e| ApplyError::Step(format!("cannot generate an API key: {e}")))?;
            row.api_key_sha256 = Some(digest);
            self.new_keys.lock().await.insert(slug.to_string(), key);
        }
        if existing != Some(&row) {
            row.updated_at = now;
            self.store.upsert_tenant(&row).await?;
            if existing.is_none_or(|e| e.api_key_sha256.is_none())
                && let Some(digest) = &row.api_key_sha256
            {
                let key = crate::store::ApiKeyRow::new(slug, "default", digest, now, None);
                let message = format!("API key `default` ({}) created", key.id);
                self.store
                    .insert_api_key_in_run(&key, Some(self.run_id), "tenant.key-created", &message)
                    .await?;
            }
            if existing.is_none() {
                self.applied
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.event(
                    Some(slug),
                    "tenant-record.create",
                    &format!("tenant-record.{slug}"),
                )
                .await;
            }
        }
        Ok(Some(row))
    }
}

/// What an update or replace changed, for its event: the fields of the plan's views that
/// differ (already shown to the operator the same way, secrets redacted). None for other actions.
fn change_detail(c: &Change) -> Option<String> {
    if !matches!(c.action, Action::Update | Action::Replace) {
        return None;
    }
    crate::audit::detail_json(&crate::audit::field_changes(
        c.before.as_ref(),
        c.after.as_ref(),
    ))
}

/// A tenant row's settings as its `tenant-record.update` event records them: the plan's view
/// and the trial end.
fn settled_view(row: &TenantRow) -> serde_json::Value {
    let mut view = crate::plan::records::tenant_view(row);
    view["trialEndsAt"] = row.trial_ends_at.map_or(serde_json::Value::Null, |t| {
        crate::calendar::rfc3339(t).into()
    });
    view
}

/// Records a `tenant.trial-ended` event (and says so) for each ended trial this plan acts on,
/// so the audit log tells why a tenant was suspended.
pub async fn record_trial_ends(
    store: &Store,
    ended: &[crate::plan::trial::TrialEnded],
    changes: &[Change],
    progress: &dyn Progress,
) {
    for e in ended {
        if !changes
            .iter()
            .any(|c| c.tenant.as_deref() == Some(e.slug.as_str()))
        {
            continue;
        }
        let message = format!(
            "trial ended on {}; suspended until converted",
            crate::plan::trial::date(e.ended_at)
        );
        if let Err(err) = store
            .record_event(None, Some(&e.slug), "tenant.trial-ended", &message)
            .await
        {
            tracing::warn!("recording an event failed: {err}");
        }
        progress.line(Some(&e.slug), &message);
    }
}

fn action_word(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Destroy => "destroy",
        Action::Start => "start",
        Action::Stop => "stop",
    }
}

fn past(a: Action) -> &'static str {
    match a {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Destroy => "destroyed",
        Action::Start => "started",
        Action::Stop => "stopped",
    }
}

#[cfg(test)]
mod tests;
