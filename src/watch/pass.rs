//! One pass of the loop: read the revision (a parsed commit is kept), observe the engine
//! through the cache and the database, plan, report health, URLs and drift, and apply when
//! there is reason to.

use super::*;

impl Watcher {
    /// One pass: read the revision, plan, and apply when there is reason to (a new revision,
    /// drift with self-heal, or a [`Demand`]). `demand` limits the pass to one tenant when it
    /// names one, and applies drift even without self-heal.
    pub(super) async fn pass(
        &mut self,
        trigger: Trigger,
        demand: Option<&Demand>,
    ) -> anyhow::Result<PassOutcome> {
        let mut phases = Phases::start();
        let only = match demand {
            Some(Demand::SyncTenant(slug)) => Some(slug.clone()),
            _ => None,
        };
        match &only {
            Some(slug) => self
                .progress
                .line(None, &format!("sync of {slug} asked for: syncing now")),
            None if demand.is_some() => self.progress.line(None, "sync asked for: syncing now"),
            None => {}
        }
        let (revision, desired) = match self.config.remote.clone() {
            Some(remote) => {
                // git2 blocks: keep it off the async workers.
                let snapshot = tokio::task::spawn_blocking(move || {
                    remote.fetch()?.snapshot_at(&remote.tracking_ref())
                })
                .await??;
                (snapshot.revision.clone(), self.load(snapshot))
            }
            None => {
                let repo = Repo::discover(&self.config.repo)?;
                let head = repo.resolve(&self.config.reference)?.to_string();
                // The commit parsed last time: its files are what they were.
                let parsed = self
                    .loaded
                    .as_ref()
                    .filter(|(at, _)| *at == head)
                    .map(|(_, desired)| desired.clone());
                match parsed {
                    Some(desired) => (head, Ok(desired)),
                    None => {
                        let snapshot = repo.snapshot_at(&head)?;
                        (snapshot.revision.clone(), self.load(snapshot))
                    }
                }
            }
        };
        let short = revision[..12.min(revision.len())].to_string();
        let desired = match desired {
            Ok(d) => d,
            Err(diagnostics) => {
                let message = format!("{} problems; first: {}", diagnostics.len(), diagnostics[0]);
                if self.reported_invalid.as_deref() != Some(revision.as_str()) {
                    self.progress.line(
                        None,
                        &format!(
                            "revision {short} is invalid; the last applied state keeps running:"
                        ),
                    );
                    for d in &diagnostics {
                        self.progress.line(None, &format!("  {d}"));
                    }
                    let _ = self
                        .store
                        .record_event(None, None, "revision.invalid", &message)
                        .await;
                    self.reported_invalid = Some(revision);
                }
                return Ok(PassOutcome::refused(format!(
                    "revision {short} is invalid ({message}); nothing was applied"
                )));
            }
        };
        // Events recorded from here on go to this revision's notifications.
        self.store
            .set_notifications(crate::notify::Routes::of(&desired.notifications, &revision));
        if let Some(slug) = &only
            && !desired.tenants.contains_key(slug)
        {
            return Ok(PassOutcome::refused(format!(
                "{slug} is not in git at revision {short}; only `tenantctl apply --prune` removes what git no longer has"
            )));
        }
        let opts = PlanOptions {
            namespace: self.config.apply.namespace.clone(),
            revision: revision.clone(),
            prune: self.config.apply.prune,
            tenants: only.iter().cloned().collect(),
        };
        phases.mark("revision");
        let observed = self.observe(&desired, &mut phases).await?;
        let Planned {
            plan, effective, ..
        } = reconcile::plan_revision(&desired, &observed, &opts, trial::now());
        phases.mark("plan");
        self.last_desired = Some(match &effective {
            std::borrow::Cow::Borrowed(_) => desired.clone(),
            std::borrow::Cow::Owned(d) => Arc::new(d.clone()),
        });
        if only.is_none() {
            let health = self.gauges(&effective, &observed, &plan);
            self.record_degraded(&health, &observed).await;
            phases.mark("health");
        }
        self.refresh_urls(&effective, &observed, &plan, &opts.tenants)
            .await;
        phases.mark("urls");
        let new_revision = self.applied.as_deref() != Some(revision.as_str());
        if only.is_none() && demand.is_none() {
            self.record_drift(&plan, &revision, new_revision).await;
            phases.mark("drift");
        }
        phases.report(desired.tenants.len(), plan.changes.len());
        if plan.is_empty() {
            if only.is_some() {
                return Ok(PassOutcome::ok("in sync: nothing to do"));
            }
            if new_revision {
                self.progress
                    .line(None, &format!("revision {short}: in sync"));
            }
            self.applied = Some(revision);
            return Ok(PassOutcome::ok("in sync: nothing to do"));
        }
        // The edge's routes follow what runs (a restarted tenant's new port), as the rows' URLs
        // do: pushed on every pass, self-heal or not.
        let routes_only = plan
            .changes
            .iter()
            .all(|c| c.resource == plan::Resource::EdgeRoutes);
        if !new_revision && !self.config.self_heal && demand.is_none() && !routes_only {
            let message = format!(
                "out of sync: {} changes outside git (self-heal is off; run apply or start watch with --self-heal)",
                plan.changes.len()
            );
            if trigger != Trigger::GitChange {
                self.progress.line(None, &message);
            }
            return Ok(PassOutcome::ok(message));
        }
        let why = match (&only, new_revision) {
            (Some(slug), _) => format!("{slug} at revision {short}"),
            (None, true) => format!("revision {short}"),
            (None, false) if demand.is_some() => "sync".to_string(),
            (None, false) if routes_only => "edge routes".to_string(),
            (None, false) => "drift".to_string(),
        };
        let mut config = self.config.apply.clone();
        config.revision = revision.clone();
        let request = ApplyRequest {
            desired: &desired,
            opts,
            config,
            lock_wait: Duration::ZERO,
            approved: None,
            scope: Scope::Plan,
            record_trial_ends: true,
            announce: Announce::Applying { why: why.clone() },
            max_destroy: Some(self.config.max_destroy),
        };
        let report = match reconcile::apply(
            &self.runtime,
            &self.store,
            self.progress.clone(),
            request,
        )
        .await
        {
            Ok(applied) => {
                // What it changed is read again next pass (its events may come after it).
                self.cache.touched(&applied.plan.changes);
                applied.report
            }
            Err(ReconcileError::Lock(LockError::Locked { holder, .. })) => {
                let message = format!(
                    "{why}: another apply ({holder}) holds the lock; trying again next pass"
                );
                self.progress.line(None, &message);
                return Ok(PassOutcome::refused(message));
            }
            Err(ReconcileError::MassDestroy(refused)) => {
                let message = format!(
                    "revision {short} skipped: {refused} (`tenantctl apply --allow-destroy`); the last applied state keeps running"
                );
                // Said (and recorded) once per revision, not every pass.
                if self.reported_destroy.as_deref() != Some(revision.as_str()) {
                    self.progress.line(None, &message);
                    let _ = self
                        .store
                        .record_event(None, None, "revision.refused", &message)
                        .await;
                    self.reported_destroy = Some(revision);
                }
                return Ok(PassOutcome::refused(message));
            }
            Err(e) => {
                // Whatever it did before failing is not known: read everything next pass.
                self.forget_observed();
                return Err(e.into());
            }
        };
        let failed = report.failed();
        self.metrics.applied(report.changes_applied, failed);
        // Logs are kept and shipped: a key goes only to the private keys file.
        if !report.new_keys.is_empty() {
            for line in crate::store::keys_file::hand_over(&self.config.keys_file, &report.new_keys)
            {
                self.progress.line(None, &line);
            }
        }
        // A pass limited to one tenant does not make the whole revision applied.
        if failed == 0 && only.is_none() {
            self.applied = Some(revision);
        }
        let message = format!(
            "{why}: {} changes applied, {failed} tenants failed",
            report.changes_applied
        );
        self.progress.line(None, &message);
        Ok(if failed == 0 {
            PassOutcome::ok(message)
        } else {
            PassOutcome::refused(message)
        })
    }

    /// The revision's desired state, kept for the next pass at the same commit when valid.
    fn load(
        &mut self,
        snapshot: crate::source::Snapshot,
    ) -> Result<Arc<crate::model::DesiredState>, Vec<crate::model::Diagnostic>> {
        let desired = Arc::new(crate::model::load(&snapshot.files)?);
        self.loaded = Some((snapshot.revision, desired.clone()));
        Ok(desired)
    }

    /// Engine and database, with what a customer reaches of each of `desired`'s tenants: the
    /// engine from the observed-state cache, the database's rows as kept since they last changed
    /// ([`cache::observe_both`]).
    async fn observe(
        &mut self,
        desired: &crate::model::DesiredState,
        phases: &mut Phases,
    ) -> anyhow::Result<ObservedState> {
        let cache::Both {
            runtime: (runtime, engine_took),
            db: (db, db_took),
        } = cache::observe_both(
            &mut self.cache,
            &mut self.rows,
            &self.runtime,
            &self.base,
            Some(desired),
            self.pending.as_deref(),
        )
        .await;
        phases.took("engine", engine_took);
        let db = db.map(|(db, read)| {
            phases.took(if read { "database" } else { "database (kept)" }, db_took);
            if read {
                self.metrics.row_reads();
            }
            db
        });
        let (runtime, read) = runtime?;
        match &read {
            cache::Read::Full(why) => {
                tracing::debug!(why, "listed everything the namespace has");
                self.metrics.full_listing();
            }
            cache::Read::Tenants(t) => {
                tracing::debug!(tenants = t.len(), "read again the tenants events named");
                self.metrics.tenant_rereads(t.len());
            }
        }
        let mut observed = ObservedState { runtime, db: db? };
        phases.mark("observe");
        reconcile::edge_routes(&self.runtime, &mut observed.runtime, desired).await;
        phases.mark("edge routes");
        Ok(observed)
    }

    /// Tenants by sync (changes pending or not) and by container health, for the metrics; each
    /// tenant's health.
    fn gauges(
        &self,
        desired: &crate::model::DesiredState,
        observed: &ObservedState,
        plan: &plan::Plan,
    ) -> BTreeMap<String, &'static str> {
        let mut each = BTreeMap::new();
        let mut g = TenantGauges::default();
        let out_of_sync: std::collections::BTreeSet<&str> = plan
            .changes
            .iter()
            .filter_map(|c| c.tenant.as_deref())
            .collect();
        let containers: BTreeMap<&str, &crate::runtime::ObservedContainer> = observed
            .runtime
            .containers
            .iter()
            .filter_map(|c| Some((c.tenant.as_deref()?, c)))
            .collect();
        for (slug, t) in &desired.tenants {
            let sync = if out_of_sync.contains(slug.as_str()) {
                "OutOfSync"
            } else {
                "Synced"
            };
            *g.by_sync.entry(sync.into()).or_default() += 1;
            let health = match (t.state, containers.get(slug.as_str())) {
                (TenantState::Cancelled, _) => continue,
                (TenantState::Suspended, _) => "Suspended",
                (_, None) => "Missing",
                (_, Some(c)) if !c.state.is_running() => "Degraded",
                (_, Some(c)) => match c.health.as_deref() {
                    Some("unhealthy") => "Degraded",
                    Some("starting") => "Progressing",
                    _ => "Healthy",
                },
            };
            *g.by_health.entry(health.into()).or_default() += 1;
            each.insert(slug.clone(), health);
        }
        self.metrics.set_tenants(g);
        each
    }

    /// Drops what is kept of the engine and the database: the next pass reads both whole.
    pub(super) fn forget_observed(&mut self) {
        self.cache.invalidate();
        self.rows.forget();
    }
}

/// Where a pass's time went, said at debug level (`tenantctl -vv watch`): what an operator at
/// scale looks at when a pass grows.
struct Phases {
    at: Instant,
    each: Vec<(&'static str, Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            at: Instant::now(),
            each: Vec::new(),
        }
    }

    /// The time since the last mark, as `name`.
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.each.push((name, now - self.at));
        self.at = now;
    }

    /// A part measured on its own (inside a phase that is marked too).
    fn took(&mut self, name: &'static str, took: Duration) {
        self.each.push((name, took));
    }

    fn report(&self, tenants: usize, changes: usize) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let phases = self
            .each
            .iter()
            .map(|(name, took)| format!("{name} {:.1} ms", took.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ");
        tracing::debug!(tenants, changes, "pass before applying: {phases}");
    }
}
