//! A tenant's `features`: flags added over its plan's and plan flags removed. Names and
//! duplicates are checked per file; whether a removed flag is the plan's, once every plan is
//! known ([`Validator::check_feature_removals`]).

use super::super::spec::TenantFeaturesSpec;
use super::super::{Origin, Plan, Tenant};
use super::{Chunk, Validator, locate};
use std::collections::HashMap;

/// Where each tenant's removed flags are written, for the check against its plan.
pub(super) type Removals = HashMap<String, Vec<(String, Origin)>>;

impl Validator {
    /// Checks `features` of tenant `slug`: names, duplicates, a flag both added and removed.
    /// Returns the added and the removed flags, each sorted.
    pub(super) fn tenant_features(
        &mut self,
        slug: &str,
        spec: &TenantFeaturesSpec,
        path: &str,
        chunk: &Chunk<'_>,
    ) -> (Vec<String>, Vec<String>) {
        let add = self.features(&spec.add, path, chunk);
        let remove = self.features(&spec.remove, path, chunk);
        let mut kept = Vec::new();
        for f in &spec.remove {
            if !remove.contains(&f.value) {
                continue;
            }
            let at = locate(path, chunk, f.referenced);
            if add.contains(&f.value) {
                self.error(
                    &at,
                    format!("feature `{}` is both added and removed", f.value),
                    Some("keep it in `add` or in `remove`, not both".into()),
                );
                continue;
            }
            kept.push((f.value.clone(), at));
        }
        if !kept.is_empty() {
            self.removals.insert(slug.to_string(), kept);
        }
        (add, remove)
    }

    /// Every removed flag must be one of the tenant's plan's: removing anything else is a typo
    /// or a plan that changed, and would silently do nothing.
    pub(super) fn check_feature_removals(&mut self) {
        let removals = std::mem::take(&mut self.removals);
        let mut problems = Vec::new();
        for (slug, flags) in removals {
            let Some(plan) = self
                .state
                .tenants
                .get(&slug)
                .and_then(|t| self.state.plans.get(&t.plan))
            else {
                continue;
            };
            for (flag, at) in flags {
                if !plan.features.contains(&flag) {
                    let has = if plan.features.is_empty() {
                        "no features".to_string()
                    } else {
                        plan.features
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    problems.push((
                        at,
                        format!(
                            "tenant `{slug}` removes feature `{flag}`, which its plan `{}` does not have",
                            plan.name
                        ),
                        format!("plan `{}` has {has}; drop this entry from `remove`", plan.name),
                    ));
                }
            }
        }
        for (at, message, hint) in problems {
            self.error(&at, message, Some(hint));
        }
    }
}

/// Where an effective flag comes from.
pub const SOURCE_PLAN: &str = "plan";
pub const SOURCE_TENANT: &str = "tenant";

/// The tenant's effective flags, sorted, each with its source: the plan's, minus the tenant's
/// `remove`, plus its `add` (`plan` wins when both name a flag).
pub fn effective(plan: &Plan, tenant: &Tenant) -> Vec<(String, &'static str)> {
    let mut out: std::collections::BTreeMap<String, &'static str> = tenant
        .features
        .iter()
        .map(|f| (f.clone(), SOURCE_TENANT))
        .collect();
    for f in &plan.features {
        if !tenant.features_removed.contains(f) {
            out.insert(f.clone(), SOURCE_PLAN);
        }
    }
    out.into_iter().collect()
}
