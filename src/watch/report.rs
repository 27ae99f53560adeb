//! What a pass records beside its changes: a tenant's URL the engine moved, tenants that
//! became degraded, and drift, each as the event the audit log and notifications read.

use super::*;

impl Watcher {
    /// Records a new URL for every in-sync tenant whose workload the engine published elsewhere
    /// since (a `docker restart` picks a new host port); apply records it for the others.
    pub(super) async fn refresh_urls(
        &self,
        desired: &crate::model::DesiredState,
        observed: &ObservedState,
        plan: &plan::Plan,
        tenants: &[String],
    ) {
        let statuses = crate::status::compute(&crate::status::Inputs {
            desired: Some(desired),
            observed,
            plan: Some(plan),
            details: &Default::default(),
            namespace: &self.config.apply.namespace,
            tenants,
        });
        for change in crate::status::url_changes(&statuses, &observed.db) {
            let message = format!(
                "{} → {}",
                change.recorded.as_deref().unwrap_or("none"),
                change.published
            );
            let recorded = async {
                self.store
                    .set_tenant_url(&change.slug, &change.published)
                    .await?;
                self.store
                    .record_event(None, Some(&change.slug), "tenant.url-changed", &message)
                    .await
            }
            .await;
            match recorded {
                Ok(()) => self
                    .progress
                    .line(Some(&change.slug), &format!("url changed: {message}")),
                Err(e) => self.progress.line(
                    Some(&change.slug),
                    &format!("recording its new url failed: {e}"),
                ),
            }
        }
    }

    /// Records `tenant.degraded` for each tenant that became Degraded since the last pass
    /// (its container stopped, or its health check says unhealthy).
    pub(super) async fn record_degraded(
        &mut self,
        health: &BTreeMap<String, &'static str>,
        observed: &ObservedState,
    ) {
        let now: std::collections::BTreeSet<String> = health
            .iter()
            .filter(|(_, h)| **h == "Degraded")
            .map(|(slug, _)| slug.clone())
            .collect();
        for slug in now.difference(&self.degraded) {
            let why = match observed
                .runtime
                .containers
                .iter()
                .find(|c| c.tenant.as_deref() == Some(slug.as_str()))
            {
                Some(c) if !c.state.is_running() => format!("its container is {}", c.state),
                _ => "its health check reports unhealthy".to_string(),
            };
            // Recorded, not printed: the pass's report line already says the tenant is out of sync.
            let message = format!("Degraded: {why}");
            if let Err(e) = self
                .store
                .record_event(None, Some(slug), "tenant.degraded", &message)
                .await
            {
                tracing::warn!("recording an event failed: {e}");
            }
        }
        self.degraded = now;
    }

    /// Records `drift` for each tenant (or the records) whose changes were made outside git:
    /// planned changes at the revision already applied. Once per tenant while the drift lasts.
    pub(super) async fn record_drift(
        &mut self,
        plan: &plan::Plan,
        revision: &str,
        new_revision: bool,
    ) {
        if self.drifted.0 != revision {
            self.drifted = (revision.to_string(), Default::default());
        }
        if new_revision || self.applied.is_none() {
            // Changes at a new revision are git's, not drift.
            return;
        }
        let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &plan.changes {
            by_tenant
                .entry(c.tenant.clone().unwrap_or_default())
                .or_default()
                .push(format!("{} {}", c.action.symbol(), c.address()));
        }
        self.drifted.1.retain(|t| by_tenant.contains_key(t));
        for (tenant, changes) in by_tenant {
            if !self.drifted.1.insert(tenant.clone()) {
                continue;
            }
            let message = format!(
                "{} change{} outside git: {}",
                changes.len(),
                if changes.len() == 1 { "" } else { "s" },
                crate::model::printable(&changes.join(", "))
            );
            let who = (!tenant.is_empty()).then_some(tenant.as_str());
            if let Err(e) = self.store.record_event(None, who, "drift", &message).await {
                tracing::warn!("recording an event failed: {e}");
            }
        }
    }
}
