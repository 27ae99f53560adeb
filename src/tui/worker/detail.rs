//! The detail view's task: the shown tenant's spec, diff, events and usage history, rebuilt
//! whenever the tenant shown changes or a new observation arrives.

use super::rows::{Limits, limits};
use super::{Observation, Reading, Shared};
use crate::model::{Origin, SourceContent, SourceFile};
use crate::plan::PlanOptions;
use crate::plan::render::{self, Style};
use crate::reconcile;
use crate::store::{UsageSample, now_unix};
use crate::tui::data::{Detail, EventLine, Series, Update};
use std::sync::Arc;
use tokio::sync::watch;

/// Audit-log lines the detail view shows (newest first).
const EVENTS: i64 = 50;
/// Stored usage history the sparklines start with.
const HISTORY_SECONDS: i64 = 3_600;

pub(super) async fn detail_loop(
    shared: Arc<Shared>,
    mut observed: watch::Receiver<Option<Arc<Observation>>>,
    mut shown: watch::Receiver<Option<String>>,
) {
    loop {
        tokio::select! {
            changed = shown.changed() => if changed.is_err() { return },
            changed = observed.changed() => if changed.is_err() { return },
        }
        let slug = shown.borrow_and_update().clone();
        let observation = observed.borrow_and_update().clone();
        let (Some(slug), Some(observation)) = (slug, observation) else {
            continue;
        };
        let update = match detail(&shared, &slug, &observation).await {
            Ok(d) => Update::Detail(Box::new(d)),
            Err(e) => Update::Fault(e),
        };
        if shared.updates.send(update).await.is_err() {
            return;
        }
    }
}

async fn detail(shared: &Shared, slug: &str, o: &Observation) -> Result<Detail, String> {
    let now = now_unix();
    let (events, samples) = tokio::join!(
        shared.store.events(Some(slug), EVENTS),
        shared
            .store
            .usage_samples(Some(slug), now - HISTORY_SECONDS, now + 1),
    );
    let events = events.map_err(|e| e.to_string())?;
    let samples = samples.map_err(|e| e.to_string())?;
    let ring: Vec<Reading> = shared
        .rings
        .lock()
        .ok()
        .and_then(|r| r.get(slug).map(|r| r.iter().copied().collect()))
        .unwrap_or_default();
    let plan_name = o
        .effective
        .as_ref()
        .and_then(|d| d.tenants.get(slug))
        .map(|t| t.plan.clone())
        .or_else(|| o.observed.db.tenants.get(slug).map(|r| r.plan.clone()));
    let limits = limits(plan_name.as_deref(), o.effective.as_deref(), &o.observed.db);
    let (cpu, memory) = series(&samples, &ring, limits);
    Ok(Detail {
        slug: slug.to_string(),
        spec: spec_text(slug, o),
        diff: diff_text(slug, o, shared.runtime.namespace()),
        events: events
            .into_iter()
            .map(|e| EventLine {
                at: e.at,
                kind: e.kind,
                message: e.message,
            })
            .collect(),
        cpu,
        memory,
    })
}

/// The tenant's document as committed, under a comment naming its file and commit.
fn spec_text(slug: &str, o: &Observation) -> String {
    let Some(revision) = &o.revision else {
        return "the ref could not be read: no committed spec to show".to_string();
    };
    let short = revision.short();
    let desired = match &revision.desired {
        Ok(d) => d,
        Err(why) => return format!("{why}\n\nNo spec can be shown until the commit is fixed."),
    };
    match desired.tenants.get(slug) {
        Some(t) => match tenant_document(&revision.files, &t.origin) {
            Some(doc) => format!("# {} at {short}\n{doc}", t.origin.path),
            None => format!(
                "# {} at {short}\n(the file could not be read)",
                t.origin.path
            ),
        },
        None => format!(
            "{slug} is not in git at {short}: only the database or the engine still knows it (removed or never committed; its data volume is kept)."
        ),
    }
}

/// The document of a multi-document file that holds the line `origin` points at. Pure.
fn tenant_document(files: &[SourceFile], origin: &Origin) -> Option<String> {
    let file = files.iter().find(|f| f.path == origin.path)?;
    let SourceContent::Bytes(bytes) = &file.content else {
        return None;
    };
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let target = usize::try_from(origin.line).ok()?.max(1);
    let mut start = 0;
    let mut end = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        let separator = *line == "---" || line.starts_with("--- ") || *line == "...";
        if !separator {
            continue;
        }
        if number < target {
            start = i + 1;
        } else {
            end = i;
            break;
        }
    }
    let doc = lines.get(start..end)?;
    let first = doc.iter().position(|l| !l.trim().is_empty())?;
    let last = doc.iter().rposition(|l| !l.trim().is_empty())?;
    Some(doc[first..=last].join("\n") + "\n")
}

/// `tenantctl plan --tenant SLUG` without colour; empty when nothing would change.
fn diff_text(slug: &str, o: &Observation, namespace: &str) -> String {
    let (Some(revision), Some(effective)) = (&o.revision, &o.effective) else {
        return match o.revision.as_ref().map(|r| &r.desired) {
            Some(Err(why)) => format!("{why}\nNothing can be compared with it."),
            _ => "the ref could not be read: nothing to compare with".to_string(),
        };
    };
    let opts = PlanOptions {
        namespace: namespace.to_string(),
        revision: revision.id.clone(),
        prune: false,
        tenants: vec![slug.to_string()],
    };
    let plan = reconcile::plan_effective(effective, &o.trials, &o.observed, &opts);
    if plan.is_empty() {
        return String::new();
    }
    render::text(&plan, Style { color: false })
}

/// CPU and memory history for the sparklines: stored samples older than the live ring, then
/// the ring. CPU in hundredths of a percent of one CPU (limit = CPUs × 10 000). Pure.
fn series(samples: &[UsageSample], ring: &[Reading], limits: Limits) -> (Series, Series) {
    let cutoff = ring.first().map_or(i64::MAX, |r| r.at);
    let stored: Vec<&UsageSample> = samples.iter().filter(|s| s.at < cutoff).collect();
    let hundredths = |p: f64| (p.max(0.0) * 100.0).round() as u64;
    let cpu = Series {
        points: stored
            .iter()
            .filter_map(|s| s.cpu_percent)
            .chain(ring.iter().filter_map(|r| r.cpu))
            .map(hundredths)
            .collect(),
        limit: limits.cpus.map(|c| (c * 10_000.0).round() as u64),
    };
    let memory = Series {
        points: stored
            .iter()
            .map(|s| u64::try_from(s.memory_bytes).unwrap_or(0))
            .chain(ring.iter().map(|r| r.memory))
            .collect(),
        limit: limits.memory,
    };
    (cpu, memory)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{desired, files};
    use super::*;

    fn sample(at: i64, cpu: Option<f64>, memory: i64) -> UsageSample {
        UsageSample {
            tenant: "acme".into(),
            at,
            cpu_percent: cpu,
            memory_bytes: memory,
            memory_limit_bytes: 0,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
            blk_read_bytes: 0,
            blk_write_bytes: 0,
            api_calls_month: None,
            ai_interactions_month: None,
            month: None,
            storage_bytes: None,
        }
    }

    #[test]
    fn series_join_stored_samples_and_the_live_ring() {
        let samples = [
            sample(100, Some(1.5), 1000),
            sample(160, None, 2000),
            sample(220, Some(3.0), 3000),
        ];
        let ring = [
            Reading {
                at: 200,
                cpu: None,
                memory: 4000,
            },
            Reading {
                at: 202,
                cpu: Some(12.345),
                memory: 5000,
            },
        ];
        let limits = Limits {
            cpus: Some(0.5),
            memory: Some(512),
            api_calls: None,
        };
        let (cpu, memory) = series(&samples, &ring, limits);
        // Samples the ring already covers (at 220) are left out.
        assert_eq!(cpu.points, vec![150, 1235]);
        assert_eq!(cpu.limit, Some(5_000));
        assert_eq!(memory.points, vec![1000, 2000, 4000, 5000]);
        assert_eq!(memory.limit, Some(512));
        let (cpu, memory) = series(&samples, &[], Limits::default());
        assert_eq!(cpu.points, vec![150, 300]);
        assert_eq!((cpu.limit, memory.limit), (None, None));
        assert_eq!(memory.points.len(), 3);
    }

    #[test]
    fn a_tenant_document_is_cut_from_its_file() {
        let d = desired();
        let hooli = tenant_document(&files(), &d.tenants["hooli"].origin);
        assert_eq!(
            hooli.as_deref(),
            Some(
                "# second\nkind: Tenant\nname: hooli\nspec:\n  displayName: Hooli\n  owner: ops@hooli.example\n  plan: starter\n  theme: plain\n"
            )
        );
        let acme = tenant_document(&files(), &d.tenants["acme"].origin).unwrap_or_default();
        assert!(
            acme.starts_with("# first\nkind: Tenant\nname: acme\n"),
            "{acme}"
        );
        assert!(!acme.contains("hooli"), "{acme}");
    }
}
