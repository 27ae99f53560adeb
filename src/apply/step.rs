//! One change of one tenant, carried out: the step for each resource (network, volume, the
//! workload, records) and the workload's labels, shape and spec it is made from.

use super::*;

impl Applier {
    /// One change of one tenant. Returns the tenant's URL when its workload was (re)started.
    pub(super) async fn step(
        &self,
        slug: &str,
        c: &Change,
        row: Option<&TenantRow>,
        observed: &ObservedState,
        tracker: &Tracker,
    ) -> Result<Option<String>, ApplyError> {
        let backend = self.runtime.backend();
        let address = c.address();
        let mut url = None;
        match c.resource {
            Resource::Network => tracker.at(Step::Network),
            Resource::Volume => tracker.at(Step::Volume),
            _ if c.rolls_out_spec() => {
                tracker.at(Step::Image);
                self.image_step(c).await?;
            }
            // Stop, start and destroy: the backend says its phases (or none).
            _ => {}
        }
        let line = match (c.resource, c.action) {
            // Done by ensure_row before any container work.
            (Resource::TenantRecord, _) => return Ok(None),
            (Resource::Network, Action::Create) => {
                let (subnet, left) = self.create_network(slug, &c.name).await?;
                format!("+ created ({subnet}){}", duplicates_left(&left))
            }
            (Resource::Network, Action::Update) => {
                // Ensuring an existing name settles duplicates on the copy in use (else the oldest).
                let (_, left) = self.create_network(slug, &c.name).await?;
                if left.is_empty() {
                    "~ duplicates removed".to_string()
                } else {
                    format!("~ duplicates not all removed{}", duplicates_left(&left))
                }
            }
            (Resource::Network, Action::Destroy) => {
                backend.remove_network(&c.name).await?;
                self.store.release_network(slug).await?;
                if let Some(book) = self.subnets.lock().await.as_mut() {
                    book.recorded.remove(slug);
                }
                "- destroyed".to_string()
            }
            (Resource::Volume, Action::Create) => {
                let labels = self.stamped(managed_labels(&self.config.namespace, slug));
                backend.ensure_volume(&c.name, &labels).await?;
                "+ created".to_string()
            }
            (resource, _) if resource.is_workload() => {
                let applied = self.workload_step(slug, c, row, observed).await?;
                url = applied.url;
                applied.line
            }
            (resource, action) => {
                return Err(ApplyError::Step(format!(
                    "no step for {} {:?}",
                    resource.as_str(),
                    action
                )));
            }
        };
        self.progress
            .line(Some(slug), &format!("{address}: {line}"));
        self.event_detail(
            Some(slug),
            &format!("{}.{}", c.resource.as_str(), action_word(c.action)),
            &address,
            change_detail(c),
        )
        .await;
        Ok(url)
    }

    /// A change of the tenant's workload, carried out by the backend. A change the backend
    /// undid (the previous workload keeps running) is said and recorded before it fails the attempt.
    pub(super) async fn workload_step(
        &self,
        slug: &str,
        c: &Change,
        row: Option<&TenantRow>,
        observed: &ObservedState,
    ) -> Result<Applied, ApplyError> {
        let backend = self.runtime.backend();
        let address = c.address();
        let id = c.container_id.as_deref();
        let target = Target {
            name: &c.name,
            id,
            observed: observed
                .runtime
                .containers
                .iter()
                .find(|o| Some(o.id.as_str()) == id)
                .or_else(|| {
                    observed
                        .runtime
                        .containers
                        .iter()
                        .find(|o| o.name == c.name)
                }),
        };
        let say = |line: &str| {
            self.progress
                .line(Some(slug), &format!("{address}: {line}"))
        };
        let why = c.reasons.join("; ");
        let result = match c.action {
            Action::Create => backend.create(&self.workload(slug, row)?, &c.name).await,
            Action::Replace => {
                let workload = self.workload(slug, row)?;
                backend.replace(&workload, target, &why).await
            }
            Action::Update => {
                let workload = self.workload(slug, row)?;
                backend.update(&workload, target, &why).await
            }
            Action::Start => {
                let workload = self.workload(slug, row)?;
                backend.start(&workload, target, &say).await
            }
            Action::Stop => backend.stop(target, self.config.health_timeout).await,
            Action::Destroy => backend
                .remove(target)
                .await
                .map(|_| Applied::new("- destroyed (data volume kept)", None)),
        };
        match result {
            Ok(applied) => Ok(applied),
            Err(e) => {
                if let Some(note) = e.rollback_note() {
                    say(note);
                    let kind = format!("{}.rollback", c.resource.as_str());
                    self.event(Some(slug), &kind, &format!("{address}: {e}"))
                        .await;
                }
                Err(e.into())
            }
        }
    }

    /// Everything the backend needs for the tenant's workload: git's spec and shape, the labels,
    /// and the API key's digest from its row.
    pub(super) fn workload(
        &self,
        slug: &str,
        row: Option<&TenantRow>,
    ) -> Result<Workload, ApplyError> {
        let spec = self.spec(slug)?;
        let shape = self.shape(slug)?;
        let labels = self.stamped(labels(
            &self.config.namespace,
            slug,
            &spec,
            &self.config.revision,
        ));
        let mut extra_env = BTreeMap::new();
        if let Some(digest) = row.and_then(|r| r.api_key_sha256.clone()) {
            extra_env.insert(API_KEY_ENV.to_string(), digest);
        }
        let health_path = self
            .desired
            .tenants
            .get(slug)
            .and_then(|t| self.desired.themes.get(&t.theme))
            .map(|theme| theme.health_path.clone())
            .ok_or_else(|| ApplyError::Step(format!("tenant `{slug}` has no theme")))?;
        Ok(Workload {
            tenant: slug.to_string(),
            spec,
            labels,
            extra_env,
            shape,
            running: self.wants_running(slug),
            health_path,
            health_timeout: self.config.health_timeout,
            switch: self.switch_for(slug),
        })
    }

    /// `labels` with this database's installation id, which every object made here carries
    /// (not part of the spec hash: an object without it is not drift).
    pub(super) fn stamped(&self, mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
        let id = self.store.installation_id();
        if !id.is_empty() {
            labels.insert(LABEL_INSTALLATION.to_string(), id.to_string());
        }
        labels
    }

    /// The tenant's service shape (replicas, placement, reservations) from git.
    pub(super) fn shape(&self, slug: &str) -> Result<ServiceShape, ApplyError> {
        let t = self
            .desired
            .tenants
            .get(slug)
            .ok_or_else(|| ApplyError::Step(format!("tenant `{slug}` is not in git")))?;
        let plan = self
            .desired
            .plans
            .get(&t.plan)
            .ok_or_else(|| ApplyError::Step(format!("tenant `{slug}` names a missing plan")))?;
        Ok(desired_shape(t, plan))
    }

    pub(super) fn spec(
        &self,
        slug: &str,
    ) -> Result<crate::plan::container::ContainerSpec, ApplyError> {
        let t = self
            .desired
            .tenants
            .get(slug)
            .ok_or_else(|| ApplyError::Step(format!("tenant `{slug}` is not in git")))?;
        match (
            self.desired.plans.get(&t.plan),
            self.desired.themes.get(&t.theme),
        ) {
            (Some(plan), Some(theme)) => {
                Ok(desired_container(&self.config.namespace, t, plan, theme))
            }
            _ => Err(ApplyError::Step(format!(
                "tenant `{slug}` names a missing plan or theme"
            ))),
        }
    }
}
