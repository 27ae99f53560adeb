//! A tenant in git and not cancelled (active or suspended): its container or service compared
//! with git — replace, update in place, start or stop, a service's shape, a stale API key.

use super::*;

impl<'a> Planner<'a> {
    /// A tenant in git and not cancelled: its workload compared with what git and its plan ask for.
    pub(super) fn live_tenant(
        &mut self,
        slug: &str,
        state: TenantState,
        spec: &ContainerSpec,
        shape: &ServiceShape,
        plan_name: &str,
    ) {
        let networks = self
            .index
            .networks
            .get(spec.network.as_str())
            .copied()
            .unwrap_or(0);
        // A container cannot start (or be repaired in place) on a network that is gone.
        let network_missing = networks == 0 && !self.swarm();
        match networks {
            0 => {
                let mut c = change(Some(slug), Resource::Network, &spec.network, Action::Create);
                c.reasons
                    .push("the tenant's own network, with a subnet from the pool".into());
                c.after = Some(serde_json::json!({ "name": spec.network }));
                self.changes.push(c);
            }
            1 => {}
            // Engines before API 1.44 accept a second network of one name (an interrupted
            // apply racing its successor); containers cannot start on an ambiguous name.
            n => {
                let mut c = change(Some(slug), Resource::Network, &spec.network, Action::Update);
                c.reasons.push(format!(
                    "{n} networks share this name (left by an interrupted apply): the one a container is on (else the oldest) is kept, unused others removed"
                ));
                self.changes.push(c);
            }
        }
        if !self.index.volumes.contains(spec.volume.as_str()) {
            let mut c = change(Some(slug), Resource::Volume, &spec.volume, Action::Create);
            c.reasons
                .push("the tenant's data volume (kept when the tenant is removed)".into());
            c.after = Some(serde_json::json!({ "name": spec.volume }));
            self.changes.push(c);
        }

        let workload = self.workload();
        let containers = self.containers_of(slug);
        let (primary, extras): (Vec<_>, Vec<_>) =
            containers.into_iter().partition(|c| c.name == spec.name);
        for extra in extras {
            let mut c = change(Some(slug), workload, &extra.name, Action::Destroy);
            c.reasons.push(format!("a second container for tenant `{slug}` (left by an interrupted apply or renamed namespace)"));
            c.container_id = Some(extra.id.clone());
            self.changes.push(c);
        }
        let Some(current) = primary.first() else {
            let mut c = change(Some(slug), workload, &spec.name, Action::Create);
            c.reasons.push(match state {
                TenantState::Suspended => {
                    "new tenant; created stopped because it is suspended".into()
                }
                _ => "new tenant".into(),
            });
            c.after = Some(self.with_shape(desired_view(spec), shape));
            self.changes.push(c);
            return;
        };
        // Views (for diffs) are built only for containers that change: most tenants are converged.
        let version = current.hash_version.as_deref().unwrap_or("");
        let hash = spec_hash(spec, version);
        // What the container's hash version could not hold (v1: the site ran as root).
        let gap = hash.as_ref().and_then(|_| version_gap(spec, version));
        let replace_reasons = match &hash {
            None if current.hash_version.is_some() && current.spec_hash.is_some() => {
                self.notes.push(format!(
                    "container {} carries spec-hash version {version}; this tenantctl knows version {HASH_VERSION}: it is left as it is (upgrade tenantctl to manage it)",
                    current.name
                ));
                None
            }
            None => Some(vec!["the container has no spec-hash label".to_string()]),
            Some(hash) if Some(hash) != current.spec_hash.as_ref() => Some(Vec::new()),
            Some(_) if gap.is_some() => Some(Vec::new()),
            // The key hash is not in the spec hash (it is a secret's digest); a rotated key
            // still needs a new container, since env cannot change in place.
            Some(_) if self.key_is_stale(slug, current) => {
                Some(vec!["the tenant's API key was rotated".to_string()])
            }
            Some(_) => None,
        };
        let replace_reasons = match replace_reasons {
            None if network_missing && hash.is_some() => Some(Vec::new()),
            // Nothing else to change, yet a customer gets nothing: a fresh container (blue/green,
            // which publishes the port again) is the repair that fixes every cause.
            // Unless the probe failed because the host's neighbour table overflowed: a new
            // container cannot fix that (the planner says so once, in a note).
            None if hash.is_some() => unreachable(current, spec)
                .filter(|_| !self.host_fault_holds_back(current))
                .map(|why| vec![why]),
            reasons => reasons,
        };
        if let Some(mut reasons) = replace_reasons {
            let (before, after) = (
                self.observed_shape(observed_view(current, spec), current, spec),
                self.with_shape(desired_view(spec), shape),
            );
            if reasons.is_empty() {
                reasons = changed_fields(Some(&before), Some(&after))
                    .into_iter()
                    .map(|f| explain_field(&f, plan_name, spec))
                    .collect();
            }
            reasons.extend(gap);
            if reasons.is_empty() && !network_missing {
                reasons.push(
                    "spec hash differs (a setting the engine does not report changed)".into(),
                );
            }
            if network_missing {
                reasons.push(format!("network {} is missing", spec.network));
            }
            if self.swarm() {
                // A service changes in place: a rolling update, never delete and create.
                reasons.extend(self.shape_drift(current, shape, state));
                self.service_update(slug, current, spec, shape, reasons);
                self.start_stop(slug, current, state);
                return;
            }
            let mut c = change(Some(slug), workload, &spec.name, Action::Replace);
            c.reasons = reasons;
            c.before = Some(before);
            c.after = Some(after);
            c.container_id = Some(current.id.clone());
            self.changes.push(c);
            return;
        }
        // Same spec hash: limits can still drift if someone ran `docker update`; those change in place.
        let mut drift: Vec<String> = [
            ("cpus", current.nano_cpus, spec.nano_cpus),
            ("memory", current.memory_bytes, spec.memory_bytes as i64),
            ("pids", current.pids_limit, i64::from(spec.pids)),
        ]
        .into_iter()
        .filter(|(_, seen, want)| *seen != Some(*want))
        .map(|(k, _, _)| {
            format!("{k} on the engine differs from the plan (changed outside tenantctl)")
        })
        .collect();
        if self.swarm() {
            let mut drift = if hash.is_some() { drift } else { Vec::new() };
            drift.extend(self.shape_drift(current, shape, state));
            if !drift.is_empty() {
                self.service_update(slug, current, spec, shape, drift);
            }
            self.start_stop(slug, current, state);
            return;
        }
        // Disconnected by hand (`docker network disconnect`): reconnected in place.
        if current
            .attached_networks
            .as_ref()
            .is_some_and(|attached| !attached.contains(&spec.network))
        {
            drift.push(format!("not attached to its network {}", spec.network));
        }
        if !drift.is_empty() && hash.is_some() {
            let mut c = change(Some(slug), workload, &spec.name, Action::Update);
            c.reasons = drift;
            c.before = Some(observed_view(current, spec));
            c.after = Some(desired_view(spec));
            c.container_id = Some(current.id.clone());
            self.changes.push(c);
        }
        self.start_stop(slug, current, state);
    }

    /// Start an active tenant's stopped container (or a service scaled to 0); stop a suspended one.
    fn start_stop(&mut self, slug: &str, current: &ObservedContainer, state: TenantState) {
        let running = current.state.is_running();
        let what = if self.swarm() {
            "service is scaled to 0".to_string()
        } else {
            format!("container is {}", current.state)
        };
        let action = match state {
            TenantState::Active if !running => {
                Some((Action::Start, format!("tenant is active; {what}")))
            }
            TenantState::Suspended if running => Some((
                Action::Stop,
                if self.swarm() {
                    "tenant is suspended (scaled to 0, nothing deleted)".to_string()
                } else {
                    "tenant is suspended".to_string()
                },
            )),
            _ => None,
        };
        if let Some((action, why)) = action {
            let mut c = change(Some(slug), self.workload(), &current.name, action);
            c.reasons.push(why);
            c.container_id = Some(current.id.clone());
            self.changes.push(c);
        }
    }

    /// Swarm: how the service's replicas, placement and reservations differ from git.
    fn shape_drift(
        &self,
        current: &ObservedContainer,
        shape: &ServiceShape,
        state: TenantState,
    ) -> Vec<String> {
        let Some(seen) = &current.service else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // Replicas of a suspended tenant (0) are start/stop's business.
        if state == TenantState::Active && seen.replicas > 0 && seen.replicas != shape.replicas {
            out.push(format!(
                "replicas {} → {} (plan replicas)",
                seen.replicas, shape.replicas
            ));
        }
        let mut constraints = seen.constraints.clone();
        constraints.sort();
        if constraints != shape.constraints {
            out.push("placement constraints changed (tenant placement)".into());
        }
        if seen.reserved_nano_cpus != shape.reserved_nano_cpus
            || seen.reserved_memory_bytes != shape.reserved_memory_bytes
        {
            out.push("reservations changed (plan resources.reservations)".into());
        }
        out
    }

    /// Swarm: one `~ service` change that rolls the service to the desired spec.
    fn service_update(
        &mut self,
        slug: &str,
        current: &ObservedContainer,
        spec: &ContainerSpec,
        shape: &ServiceShape,
        mut reasons: Vec<String>,
    ) {
        if let Some(seen) = current.service.as_ref().filter(|s| s.rolled_back()) {
            reasons.push(format!(
                "the last rolling update was rolled back{}",
                seen.update_message
                    .as_deref()
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            ));
        }
        let mut c = change(Some(slug), Resource::Service, &spec.name, Action::Update);
        c.reasons = reasons;
        c.before = Some(self.observed_shape(observed_view(current, spec), current, spec));
        c.after = Some(self.with_shape(desired_view(spec), shape));
        c.container_id = Some(current.id.clone());
        self.changes.push(c);
    }

    /// A desired view with the service's own fields, in swarm mode.
    fn with_shape(&self, mut view: Value, shape: &ServiceShape) -> Value {
        if self.swarm()
            && let Some(map) = view.as_object_mut()
        {
            map.insert("replicas".into(), shape.replicas.into());
            map.insert("constraints".into(), shape.constraints.clone().into());
            map.insert(
                "reservations".into(),
                reservations_view(shape.reserved_nano_cpus, shape.reserved_memory_bytes),
            );
        }
        view
    }

    /// An observed view with the service's own fields.
    fn observed_shape(
        &self,
        mut view: Value,
        current: &ObservedContainer,
        spec: &ContainerSpec,
    ) -> Value {
        if let (Some(seen), Some(map)) = (&current.service, view.as_object_mut()) {
            // A loopback-only port is never published by swarm: nothing to observe or change.
            if !crate::runtime::types::publishes(spec) && current.published_ports.is_empty() {
                map.insert("port".into(), spec.port.into());
                map.insert("publish".into(), spec.publish_address.clone().into());
            }
            let mut constraints = seen.constraints.clone();
            constraints.sort();
            map.insert("replicas".into(), seen.replicas.into());
            map.insert("constraints".into(), constraints.into());
            map.insert(
                "reservations".into(),
                reservations_view(seen.reserved_nano_cpus, seen.reserved_memory_bytes),
            );
        }
        view
    }

    /// A failed probe the host is to blame for: the probe saw the host's neighbour (ARP) table
    /// overflow while it asked.
    fn host_fault_holds_back(&self, current: &ObservedContainer) -> bool {
        self.observed.runtime.probe_host_fault.is_some()
            && current
                .probe
                .as_ref()
                .is_some_and(|p| p.failure().is_some())
    }

    /// One note for the failed probes the host is to blame for (no container replaced for them).
    pub(super) fn host_fault_note(&mut self) {
        let Some(fault) = &self.observed.runtime.probe_host_fault else {
            return;
        };
        let failed = self
            .observed
            .runtime
            .containers
            .iter()
            .filter(|c| c.tenant.is_some() && self.host_fault_holds_back(c))
            .count();
        if failed > 0 {
            let note = crate::runtime::probe::host_fault_note(failed, fault);
            self.notes.push(note);
        }
    }

    fn key_is_stale(&self, slug: &str, current: &ObservedContainer) -> bool {
        let stored = self
            .observed
            .db
            .tenants
            .get(slug)
            .and_then(|r| r.api_key_sha256.as_deref());
        stored.is_some() && current.env.get(container::API_KEY_ENV) != stored
    }
}
