//! Desired × observed → an ordered list of changes. Pure: no IO, deterministic order.

pub mod container;
pub mod converged;
pub mod edge;
mod live;
pub mod offline;
pub mod records;
pub mod render;
pub mod trial;
mod why;
use why::explain_field;
pub use why::{changed_fields, unreachable};

use crate::model::{DesiredState, TenantState};
use crate::runtime::types::{ObservedContainer, ObservedRuntime, RuntimeKind};
use crate::store::ObservedDb;
use container::{
    ContainerSpec, HASH_VERSION, ServiceShape, desired_container, desired_shape, desired_view,
    observed_view, spec_hash, version_gap,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Everything observed at one moment: the engine and the database.
#[derive(Debug, Clone, Default)]
pub struct ObservedState {
    pub runtime: ObservedRuntime,
    pub db: ObservedDb,
}

/// What the planner needs besides the two states.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub namespace: String,
    pub revision: String,
    /// Also remove managed networks and containers whose tenant is no longer in git.
    pub prune: bool,
    /// Only plan these tenants (plan and theme records are always planned); empty means all.
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Destroy,
    Start,
    Stop,
}

impl Action {
    /// Terraform's symbols, plus `>` start and `.` stop.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Destroy => "-",
            Action::Start => ">",
            Action::Stop => ".",
        }
    }
    pub fn verb(self) -> &'static str {
        match self {
            Action::Create => "will be created",
            Action::Update => "will be updated in place",
            Action::Replace => "must be replaced",
            Action::Destroy => "will be destroyed",
            Action::Start => "will be started",
            Action::Stop => "will be stopped",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resource {
    PlanRecord,
    ThemeRecord,
    Network,
    Volume,
    Container,
    /// A swarm service (swarm mode's counterpart of a container).
    Service,
    TenantRecord,
    /// The namespace's edge container (`tenantctl edge`).
    Edge,
    /// The routes the edge holds (its `GET /routes`).
    EdgeRoutes,
}

impl Resource {
    /// A tenant's workload: a container, or a swarm service.
    pub fn is_workload(self) -> bool {
        matches!(self, Resource::Container | Resource::Service)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::PlanRecord => "plan-record",
            Resource::ThemeRecord => "theme-record",
            Resource::Network => "network",
            Resource::Volume => "volume",
            Resource::Container => "container",
            Resource::Service => "service",
            Resource::TenantRecord => "tenant-record",
            Resource::Edge => "edge",
            Resource::EdgeRoutes => "edge-routes",
        }
    }
}

/// One thing apply would do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub tenant: Option<String>,
    pub resource: Resource,
    /// The object's name: container/network/volume name, or the record's key.
    pub name: String,
    pub action: Action,
    /// Why, in words: which field changed and where it came from.
    pub reasons: Vec<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// For container changes: the id of the container acted on, if one exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

impl Change {
    /// Whether carrying this change out runs a new spec (so its image must be on the host): a
    /// container made or replaced, a service made or rolled.
    pub fn rolls_out_spec(&self) -> bool {
        matches!(
            (self.resource, self.action),
            (
                Resource::Container | Resource::Edge,
                Action::Create | Action::Replace
            ) | (Resource::Service, Action::Create | Action::Update)
        )
    }

    pub fn address(&self) -> String {
        format!("{}.{}", self.resource.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub revision: String,
    pub namespace: String,
    pub changes: Vec<Change>,
    /// Things the operator should know that are not changes (e.g. a container from a newer tenantctl).
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub destroy: usize,
    pub start: usize,
    pub stop: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Replace => s.replace += 1,
                Action::Destroy => s.destroy += 1,
                Action::Start => s.start += 1,
                Action::Stop => s.stop += 1,
            }
        }
        s
    }
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether `other` would do the same as this plan: its changes as `--output json` shows them
    /// (the container ids acted on are not compared), without rendering either plan.
    pub fn same_changes(&self, other: &Plan) -> bool {
        fn shown(c: &Change) -> impl PartialEq + '_ {
            let Change {
                tenant,
                resource,
                name,
                action,
                reasons,
                before,
                after,
                container_id: _,
            } = c;
            (tenant, *resource, name, *action, reasons, before, after)
        }
        self.changes.len() == other.changes.len()
            && self
                .changes
                .iter()
                .zip(&other.changes)
                .all(|(a, b)| shown(a) == shown(b))
    }
}

/// The plan: a pure function of desired state, observed state and options.
pub fn compute(desired: &DesiredState, observed: &ObservedState, opts: &PlanOptions) -> Plan {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    compute_with_threads(desired, observed, opts, threads)
}

/// [`compute`] on a given number of threads; the result does not depend on it.
fn compute_with_threads(
    desired: &DesiredState,
    observed: &ObservedState,
    opts: &PlanOptions,
    threads: usize,
) -> Plan {
    let mut by_tenant: HashMap<&str, Vec<&ObservedContainer>> = HashMap::new();
    for c in &observed.runtime.containers {
        if let Some(t) = c.tenant.as_deref() {
            by_tenant.entry(t).or_default().push(c);
        }
    }
    for list in by_tenant.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let index = Index {
        containers: by_tenant,
        networks: observed
            .runtime
            .networks
            .iter()
            .fold(HashMap::new(), |mut m, n| {
                *m.entry(n.name.as_str()).or_insert(0) += 1;
                m
            }),
        volumes: observed
            .runtime
            .volumes
            .iter()
            .map(|v| v.name.as_str())
            .collect(),
    };
    let mut p = Planner {
        desired,
        observed,
        opts,
        index: &index,
        threads,
        changes: Vec::new(),
        notes: Vec::new(),
    };
    p.records();
    if opts.tenants.is_empty() {
        p.edge();
    }
    p.tenants();
    p.host_fault_note();
    if opts.tenants.is_empty() {
        p.edge_routes();
    }
    p.mode_notes();
    Plan {
        revision: opts.revision.clone(),
        namespace: opts.namespace.clone(),
        changes: p.changes,
        notes: p.notes,
    }
}

/// Indexes over the observed state, so planning stays linear in the number of tenants.
struct Index<'a> {
    containers: HashMap<&'a str, Vec<&'a ObservedContainer>>,
    /// How many managed networks carry each name (more than one is a duplicate to repair).
    networks: HashMap<&'a str, usize>,
    volumes: HashSet<&'a str>,
}

struct Planner<'a> {
    desired: &'a DesiredState,
    observed: &'a ObservedState,
    opts: &'a PlanOptions,
    index: &'a Index<'a>,
    threads: usize,
    changes: Vec<Change>,
    notes: Vec<String>,
}

/// Below this many tenants one thread plans faster than several start.
const PARALLEL_THRESHOLD: usize = 2_000;

fn change(tenant: Option<&str>, resource: Resource, name: &str, action: Action) -> Change {
    Change {
        tenant: tenant.map(str::to_string),
        resource,
        name: name.to_string(),
        action,
        reasons: Vec::new(),
        before: None,
        after: None,
        container_id: None,
    }
}

impl<'a> Planner<'a> {
    /// What a tenant runs as: a container, or a swarm service.
    fn workload(&self) -> Resource {
        match self.observed.runtime.kind {
            RuntimeKind::Docker => Resource::Container,
            RuntimeKind::Swarm => Resource::Service,
        }
    }

    fn swarm(&self) -> bool {
        self.observed.runtime.kind == RuntimeKind::Swarm
    }

    /// Things that work differently in this mode, said once per plan or theme.
    fn mode_notes(&mut self) {
        let used = |pred: &dyn Fn(&crate::model::Tenant) -> bool| {
            self.desired
                .tenants
                .values()
                .any(|t| self.selected(&t.slug) && t.state != TenantState::Cancelled && pred(t))
        };
        let mut notes = Vec::new();
        if self.swarm() {
            let mut loopback_themes = Vec::new();
            for theme in self.desired.themes.values() {
                let loopback = !matches!(theme.publish_address.as_str(), "0.0.0.0" | "::" | "");
                let changing = self.changes.iter().any(|c| {
                    c.resource == Resource::Service
                        && matches!(c.action, Action::Create | Action::Update)
                        && c.tenant
                            .as_deref()
                            .and_then(|t| self.desired.tenants.get(t))
                            .is_some_and(|t| t.theme == theme.name)
                });
                if loopback && changing {
                    loopback_themes.push(format!("`{}`", theme.name));
                }
            }
            if !loopback_themes.is_empty() {
                notes.push(format!(
                    "theme{} {} publish{} on loopback only, which swarm cannot do: their services get no published port (health comes from the engine's own check); set `publishAddress: 0.0.0.0` in a theme to publish through the routing mesh on every node",
                    if loopback_themes.len() > 1 { "s" } else { "" },
                    loopback_themes.join(", "),
                    if loopback_themes.len() > 1 { "" } else { "es" },
                ));
            }
        } else {
            for plan in self.desired.plans.values().filter(|p| p.replicas > 1) {
                if used(&|t| t.plan == plan.name) {
                    notes.push(format!(
                        "plan `{}` asks for {} replicas; the docker runtime runs one container per tenant (use --runtime swarm for replicas)",
                        plan.name, plan.replicas
                    ));
                }
            }
            if used(&|t| !t.constraints.is_empty()) {
                notes.push(
                    "placement constraints apply only with --runtime swarm; the docker runtime runs every tenant on this engine".into(),
                );
            }
        }
        self.notes.extend(notes);
    }

    fn selected(&self, slug: &str) -> bool {
        self.opts.tenants.is_empty() || self.opts.tenants.iter().any(|t| t == slug)
    }

    /// Plan and theme rows: what the SaaS application reads.
    fn records(&mut self) {
        let (rev, db) = (&self.opts.revision, &self.observed.db);
        let desired_plans: BTreeMap<&String, Value> = self
            .desired
            .plans
            .iter()
            .map(|(k, p)| (k, records::plan_view(&records::plan_row(p, rev, 0))))
            .collect();
        let observed_plans: BTreeMap<&String, Value> = db
            .plans
            .iter()
            .map(|(k, r)| (k, records::plan_view(r)))
            .collect();
        self.diff_records(
            Resource::PlanRecord,
            "plan",
            &desired_plans,
            &observed_plans,
        );
        let desired_themes: BTreeMap<&String, Value> = self
            .desired
            .themes
            .iter()
            .map(|(k, t)| (k, records::theme_view(&records::theme_row(t, rev, 0))))
            .collect();
        let observed_themes: BTreeMap<&String, Value> = db
            .themes
            .iter()
            .map(|(k, r)| (k, records::theme_view(r)))
            .collect();
        self.diff_records(
            Resource::ThemeRecord,
            "theme",
            &desired_themes,
            &observed_themes,
        );
    }

    fn diff_records(
        &mut self,
        resource: Resource,
        what: &str,
        desired: &BTreeMap<&String, Value>,
        observed: &BTreeMap<&String, Value>,
    ) {
        let names: BTreeSet<&&String> = desired.keys().chain(observed.keys()).collect();
        for name in names {
            let (d, o) = (desired.get(*name), observed.get(*name));
            let action = match (d, o) {
                (Some(_), None) => Action::Create,
                (None, Some(_)) => Action::Destroy,
                (Some(d), Some(o)) if d != o => Action::Update,
                _ => continue,
            };
            let mut c = change(None, resource, name, action);
            c.reasons = match action {
                Action::Create => vec![format!("{what} `{name}` is new in git")],
                Action::Destroy => vec![format!("{what} `{name}` is no longer in git")],
                _ => changed_fields(o, d)
                    .into_iter()
                    .map(|f| format!("{f} changed"))
                    .collect(),
            };
            c.before = o.cloned();
            c.after = d.cloned();
            self.changes.push(c);
        }
    }

    fn tenants(&mut self) {
        let rt = &self.observed.runtime;
        let mut slugs: BTreeSet<&str> = self.desired.tenants.keys().map(String::as_str).collect();
        slugs.extend(self.observed.db.tenants.keys().map(String::as_str));
        slugs.extend(rt.containers.iter().filter_map(|c| c.tenant.as_deref()));
        slugs.extend(rt.networks.iter().filter_map(|n| n.tenant.as_deref()));
        let slugs: Vec<&str> = slugs.into_iter().filter(|s| self.selected(s)).collect();
        let threads = self.threads;
        if slugs.len() < PARALLEL_THRESHOLD || threads <= 1 {
            for slug in slugs {
                self.tenant(slug);
            }
        } else {
            // Tenants are independent: plan contiguous chunks in parallel and join them in order,
            // so the result is the same as planning them one by one.
            let chunk = slugs.len().div_ceil(threads);
            let parts: Vec<(Vec<Change>, Vec<String>)> = std::thread::scope(|scope| {
                let handles: Vec<_> = slugs
                    .chunks(chunk)
                    .map(|part| {
                        let mut sub = Planner {
                            changes: Vec::new(),
                            notes: Vec::new(),
                            ..*self
                        };
                        scope.spawn(move || {
                            for slug in part {
                                sub.tenant(slug);
                            }
                            (sub.changes, sub.notes)
                        })
                    })
                    .collect();
                // A panic in a planning thread is a bug: re-raise it rather than return half a plan.
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            for (changes, notes) in parts {
                self.changes.extend(changes);
                self.notes.extend(notes);
            }
        }
        // Managed objects with no tenant label at all are leftovers; only --prune touches them.
        if self.opts.prune && self.opts.tenants.is_empty() {
            for c in rt.containers.iter().filter(|c| c.tenant.is_none()) {
                let mut ch = change(None, self.workload(), &c.name, Action::Destroy);
                ch.reasons.push(format!(
                    "managed {} without a tenant label (--prune)",
                    self.workload().as_str()
                ));
                ch.container_id = Some(c.id.clone());
                self.changes.push(ch);
            }
            for n in rt.networks.iter().filter(|n| n.tenant.is_none()) {
                let mut ch = change(None, Resource::Network, &n.name, Action::Destroy);
                ch.reasons
                    .push("managed network without a tenant label (--prune)".into());
                self.changes.push(ch);
            }
        }
    }

    /// Everything one tenant needs: its Docker objects in apply order, then its record.
    fn tenant(&mut self, slug: &str) {
        let wanted = self
            .desired
            .tenants
            .get(slug)
            .filter(|t| t.state != TenantState::Cancelled);
        match wanted {
            Some(t) => {
                // Validation guarantees both exist; a tenant without them cannot be planned.
                if let (Some(plan), Some(theme)) = (
                    self.desired.plans.get(&t.plan),
                    self.desired.themes.get(&t.theme),
                ) {
                    let mut spec = desired_container(&self.opts.namespace, t, plan, theme);
                    if theme.image.is_none() {
                        self.keep_running_flags(slug, &mut spec);
                    }
                    let shape = desired_shape(t, plan);
                    self.live_tenant(slug, t.state, &spec, &shape, &plan.name);
                }
            }
            None => self.gone_tenant(slug),
        }
        self.tenant_record(slug);
    }

    /// The built-in site learns its flags from its access file (written by apply), so a flag
    /// change alone does not replace its container: the spec keeps the flags the running
    /// container was made with, and the change shows as the tenant record's
    /// `effectiveFeatures`.
    fn keep_running_flags(&self, slug: &str, spec: &mut ContainerSpec) {
        let running = self
            .containers_of(slug)
            .into_iter()
            .find(|c| c.name == spec.name)
            .and_then(|c| c.env.get(container::FEATURES_ENV));
        if let Some(flags) = running {
            spec.env
                .insert(container::FEATURES_ENV.to_string(), flags.to_string());
        }
    }

    fn containers_of(&self, slug: &str) -> Vec<&'a ObservedContainer> {
        self.index.containers.get(slug).cloned().unwrap_or_default()
    }

    /// Removed from git or cancelled: the container goes, data and the record stay.
    fn gone_tenant(&mut self, slug: &str) {
        let why = match self.desired.tenants.get(slug) {
            Some(_) => "tenant is cancelled",
            None => "tenant is no longer in git",
        };
        let workload = self.workload();
        for ct in self.containers_of(slug) {
            let mut c = change(Some(slug), workload, &ct.name, Action::Destroy);
            c.reasons.push(format!("{why}; its data volume is kept"));
            c.container_id = Some(ct.id.clone());
            self.changes.push(c);
        }
        if self.opts.prune {
            let rt = &self.observed.runtime;
            for n in rt
                .networks
                .iter()
                .filter(|n| n.tenant.as_deref() == Some(slug))
            {
                let mut c = change(Some(slug), Resource::Network, &n.name, Action::Destroy);
                c.reasons.push(format!("{why} (--prune)"));
                self.changes.push(c);
            }
        }
    }

    fn tenant_record(&mut self, slug: &str) {
        let row = self.observed.db.tenants.get(slug);
        let desired = self.desired.tenants.get(slug);
        // A recorded trial on a plan without one ends (see `trial::kept_end`).
        let trial_ends = match (row, desired) {
            (Some(r), Some(t)) => {
                let days = self.desired.plans.get(&t.plan).map_or(0, |p| p.trial_days);
                r.trial_ends_at.is_some() && trial::kept_end(days, r.trial_ends_at).is_none()
            }
            _ => false,
        };
        // The last apply failed for this tenant: it is tried again, so the error stays until
        // the tenant converges, and is cleared then, even when nothing else changes.
        let failed = row.and_then(|r| r.last_error.as_deref());
        // The effective flags (`tenant_features`) follow the plan's features too.
        let flags = desired.and_then(|t| {
            let plan = self.desired.plans.get(&t.plan)?;
            let want: BTreeMap<String, String> = crate::model::effective_features(plan, t)
                .into_iter()
                .map(|(f, s)| (f, s.to_string()))
                .collect();
            let have = self
                .observed
                .db
                .features
                .get(slug)
                .cloned()
                .unwrap_or_default();
            Some((have, want))
        });
        let flags_differ = flags.as_ref().is_some_and(|(have, want)| have != want);
        let action = match (row, desired) {
            (None, Some(_)) => Action::Create,
            (Some(r), Some(t)) if trial_ends || flags_differ || !records::tenant_matches(r, t) => {
                Action::Update
            }
            // Gone from git: the row stays, marked cancelled.
            (Some(r), None) if r.state != "cancelled" => Action::Update,
            (Some(_), _) if failed.is_some() => Action::Update,
            _ => return,
        };
        let mut before = row.map(records::tenant_view);
        let mut after = match desired {
            Some(t) => Some(records::tenant_view_desired(t)),
            None => before.clone().map(|mut v| {
                v["state"] = Value::String("cancelled".into());
                v
            }),
        };
        if let (Some((have, want)), Some(b), Some(a)) = (&flags, before.as_mut(), after.as_mut()) {
            b["effectiveFeatures"] = serde_json::json!(have);
            a["effectiveFeatures"] = serde_json::json!(want);
        }
        if let (Some(error), Some(b), Some(a)) = (failed, before.as_mut(), after.as_mut()) {
            b["lastError"] = Value::String(error.to_string());
            a["lastError"] = Value::Null;
        }
        let mut c = change(Some(slug), Resource::TenantRecord, slug, action);
        c.reasons = match action {
            Action::Create => vec!["new tenant".into()],
            _ => changed_fields(before.as_ref(), after.as_ref())
                .into_iter()
                .filter(|f| f != "lastError")
                .map(|f| format!("{f} changed"))
                .collect(),
        };
        if failed.is_some() {
            let at = row
                .and_then(|r| r.desired_revision.as_deref())
                .map(|r| format!(" at {}", short(r)))
                .unwrap_or_default();
            c.reasons.push(format!(
                "the last apply{at} failed: tried again until the tenant converges"
            ));
        }
        if let Some(t) = desired.filter(|_| trial_ends) {
            c.reasons.push(format!(
                "the trial ends: plan `{}` has no trial (trialDays: 0)",
                t.plan
            ));
        }
        c.before = before;
        c.after = after;
        self.changes.push(c);
    }
}

/// The first 7 characters of a commit id.
fn short(revision: &str) -> &str {
    revision.get(..7).unwrap_or(revision)
}

fn reservations_view(cpus: Option<i64>, memory: Option<i64>) -> Value {
    serde_json::json!({
        "cpus": cpus.map(|n| n as f64 / 1e9),
        "memory": memory.map(|m| crate::model::quantity::format_bytes(m.max(0) as u64)),
    })
}

#[cfg(test)]
mod tests;
