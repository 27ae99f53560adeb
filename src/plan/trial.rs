//! The trial rule: an active tenant whose plan's trial has ended, and who has not converted
//! (`billing: {converted: true}`), is suspended until it converts. A tenant whose plan has no
//! trial (`trialDays: 0`) has none: moving to such a plan ends the trial; moving between trial
//! plans keeps the end set when the tenant was first applied. Pure, like the planner.

use crate::model::{DesiredState, TenantState};
use crate::store::ObservedDb;
use std::borrow::Cow;

/// A tenant the rule suspends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrialEnded {
    pub slug: String,
    /// Unix seconds.
    pub ended_at: i64,
}

/// A new tenant's trial end on a plan of `trial_days` (None without a trial).
pub fn first_end(trial_days: u32, now: i64) -> Option<i64> {
    (trial_days > 0).then(|| now + i64::from(trial_days) * 86_400)
}

/// The trial end a tenant's row keeps on a plan of `trial_days`: the recorded one, unless the
/// plan has no trial (the tenant moved to a plan without one, or its plan dropped its trial).
pub fn kept_end(trial_days: u32, recorded: Option<i64>) -> Option<i64> {
    recorded.filter(|_| trial_days > 0)
}

/// The desired state with the trial rule applied (borrowed unchanged when no trial has ended).
pub fn apply_trials<'a>(
    desired: &'a DesiredState,
    db: &ObservedDb,
    now: i64,
) -> (Cow<'a, DesiredState>, Vec<TrialEnded>) {
    let ended: Vec<TrialEnded> = desired
        .tenants
        .values()
        .filter(|t| t.state == TenantState::Active && !t.converted)
        .filter_map(|t| {
            let trial_days = desired.plans.get(&t.plan).map_or(0, |p| p.trial_days);
            let ends = kept_end(trial_days, db.tenants.get(&t.slug)?.trial_ends_at)?;
            (ends <= now).then(|| TrialEnded {
                slug: t.slug.clone(),
                ended_at: ends,
            })
        })
        .collect();
    if ended.is_empty() {
        return (Cow::Borrowed(desired), ended);
    }
    let mut effective = desired.clone();
    for e in &ended {
        if let Some(t) = effective.tenants.get_mut(&e.slug) {
            t.state = TenantState::Suspended;
        }
    }
    (Cow::Owned(effective), ended)
}

/// The current time in unix seconds; `TENANTCTL_NOW` (unix seconds) overrides it, so trial
/// expiry can be tested and rehearsed without waiting days.
pub fn now() -> i64 {
    std::env::var("TENANTCTL_NOW")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(crate::store::now_unix)
}

/// `2026-11-26` for unix seconds (UTC), for notes and events.
pub use crate::calendar::day_key as date;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::converged::converged;
    use crate::plan::{PlanOptions, compute};

    fn state(converted: bool) -> DesiredState {
        let files = [
            ("plans/p.yaml", "kind: Plan\nname: p\nspec:\n  displayName: P\n  price: { amount: 1, currency: USD, cycle: monthly }\n  trialDays: 14\n  resources: { cpus: 1, memory: 64Mi }\n".to_string()),
            ("themes/t.yaml", "kind: Theme\nname: t\nspec: { displayName: T, version: 1.0.0 }\n".to_string()),
            (
                "tenants/a.yaml",
                format!("kind: Tenant\nname: a\nspec:\n  displayName: A\n  owner: a@a.example\n  plan: p\n  theme: t\n  billing: {{ converted: {converted} }}\n"),
            ),
        ];
        let files: Vec<crate::model::SourceFile> = files
            .iter()
            .map(|(p, t)| crate::model::SourceFile {
                path: p.to_string(),
                content: crate::model::SourceContent::Bytes(t.clone().into_bytes()),
            })
            .collect();
        crate::model::load(&files).unwrap()
    }

    #[test]
    fn an_ended_trial_suspends_until_converted() {
        let opts = PlanOptions {
            namespace: "ns".into(),
            revision: "r".into(),
            prune: false,
            tenants: vec![],
        };
        let desired = state(false);
        let mut observed = converged(&desired, &opts);
        observed.db.tenants.get_mut("a").unwrap().trial_ends_at = Some(1_000);

        let (eff, ended) = apply_trials(&desired, &observed.db, 999);
        assert!(
            ended.is_empty() && matches!(eff, Cow::Borrowed(_)),
            "not yet"
        );

        let (eff, ended) = apply_trials(&desired, &observed.db, 1_000);
        assert_eq!(
            ended,
            [TrialEnded {
                slug: "a".into(),
                ended_at: 1_000
            }]
        );
        let plan = compute(&eff, &observed, &opts);
        let acts: Vec<_> = plan
            .changes
            .iter()
            .map(|c| (c.address(), c.action.symbol()))
            .collect();
        assert_eq!(
            acts,
            [
                ("container.ns-a".to_string(), "."),
                ("tenant-record.a".to_string(), "~")
            ]
        );

        let converted = state(true);
        let (eff, ended) = apply_trials(&converted, &observed.db, 5_000);
        assert!(ended.is_empty());
        assert_eq!(eff.tenants["a"].state, TenantState::Active);
    }

    #[test]
    fn a_plan_without_trials_ends_the_trial_and_trial_plans_keep_its_end() {
        assert_eq!(first_end(30, 100), Some(100 + 30 * 86_400));
        assert_eq!(first_end(0, 100), None);
        assert_eq!(kept_end(14, Some(500)), Some(500), "between trial plans");
        assert_eq!(kept_end(0, Some(500)), None, "to a plan without a trial");
        assert_eq!(kept_end(30, None), None, "no trial is ever started later");

        // A recorded end on a plan whose trialDays is 0 suspends nobody, even once it passed.
        let opts = PlanOptions {
            namespace: "ns".into(),
            revision: "r".into(),
            prune: false,
            tenants: vec![],
        };
        let mut desired = state(false);
        let mut observed = converged(&desired, &opts);
        observed.db.tenants.get_mut("a").unwrap().trial_ends_at = Some(1_000);
        desired.plans.get_mut("p").unwrap().trial_days = 0;
        let (eff, ended) = apply_trials(&desired, &observed.db, 5_000);
        assert!(ended.is_empty());
        assert_eq!(eff.tenants["a"].state, TenantState::Active);
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_651_200), "2026-11-26");
        assert_eq!(date(951_782_400), "2000-02-29");
    }
}
