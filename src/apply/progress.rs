//! Provisioning progress on the tenant's row: the step an apply is at and the share of the
//! tenant's steps finished, as the SaaS application reads them while a tenant is made or
//! replaced. Steps are said in order by the applier (network, volume, image, record) and by the
//! backend through [`crate::runtime::types::phase`] (container, start, health); one writer task
//! per tenant writes them in that order through the store's fenced write path.

use super::Progress;
use crate::runtime::types::{Phase, PhaseSink};
use crate::store::Store;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A step of making or replacing a tenant, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Network,
    Volume,
    Image,
    Container,
    Start,
    Health,
    Record,
}

impl Step {
    pub const ALL: [Step; 7] = [
        Step::Network,
        Step::Volume,
        Step::Image,
        Step::Container,
        Step::Start,
        Step::Health,
        Step::Record,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Network => "network",
            Step::Volume => "volume",
            Step::Image => "image",
            Step::Container => "container",
            Step::Start => "start",
            Step::Health => "health",
            Step::Record => "record",
        }
    }

    /// The share of the steps finished when this one begins: 0 for `network` to 85 for
    /// `record` (a tenant that needs fewer steps, say a replace, jumps ahead).
    pub fn percent(self) -> i64 {
        let index = Step::ALL.iter().position(|s| *s == self).unwrap_or(0);
        (index as i64 * 100) / Step::ALL.len() as i64
    }

    fn of(p: Phase) -> Step {
        match p {
            Phase::Container => Step::Container,
            Phase::Start => Step::Start,
            Phase::Health => Step::Health,
        }
    }
}

/// What the tenant's writer task is told.
enum Note {
    At(Step),
    Done,
    Failed(Option<Step>),
}

/// The progress of one tenant's convergence: say steps with [`Tracker::at`], hand the backend
/// [`Tracker::sink`], and end with [`Tracker::finish`], which waits for every write.
pub struct Tracker {
    current: Arc<Mutex<Option<Step>>>,
    tx: mpsc::UnboundedSender<Note>,
    writer: tokio::task::JoinHandle<()>,
    /// The tenant and who else is told each new step (a live display), if anyone.
    told: Option<(String, Arc<dyn Progress>)>,
}

impl Tracker {
    pub fn new(store: Store, slug: String) -> Tracker {
        let (tx, mut rx) = mpsc::unbounded_channel::<Note>();
        let writer = tokio::spawn(async move {
            while let Some(note) = rx.recv().await {
                let result = match note {
                    Note::At(step) => {
                        store
                            .set_tenant_progress(&slug, step.as_str(), step.percent())
                            .await
                    }
                    Note::Done => store.end_tenant_progress(&slug, false, None).await,
                    Note::Failed(step) => {
                        store
                            .end_tenant_progress(&slug, true, step.map(Step::as_str))
                            .await
                    }
                };
                if let Err(e) = result {
                    tracing::warn!(tenant = slug, "recording provisioning progress failed: {e}");
                    if e.is_fenced() {
                        return;
                    }
                }
            }
        });
        Tracker {
            current: Arc::new(Mutex::new(None)),
            tx,
            writer,
            told: None,
        }
    }

    /// Tells `progress` each new step too, beside the row (see [`Progress::step`]).
    pub fn telling(mut self, slug: &str, progress: Arc<dyn Progress>) -> Tracker {
        self.told = Some((slug.to_string(), progress));
        self
    }

    /// The tenant is now at `step` (written once per change of step).
    pub fn at(&self, step: Step) {
        note_step(&self.current, &self.tx, self.told.as_ref(), step);
    }

    /// The step said last, if any.
    pub fn current(&self) -> Option<Step> {
        self.current.lock().ok().and_then(|c| *c)
    }

    /// What the backend's phases are told to, for [`crate::runtime::types::with_phases`].
    pub fn sink(&self) -> PhaseSink {
        let (current, tx, told) = (self.current.clone(), self.tx.clone(), self.told.clone());
        Arc::new(move |p| note_step(&current, &tx, told.as_ref(), Step::of(p)))
    }

    /// Ends the tenant's progress: converged (`done`, 100 %) when `failed` is false and any step
    /// was said; given up (`failed`, the step kept as `error_step`) otherwise. Waits until every
    /// write is done.
    pub async fn finish(self, failed: bool) {
        let current = self.current();
        let note = match (failed, current) {
            (false, Some(_)) => Some(Note::Done),
            (false, None) => None,
            (true, step) => Some(Note::Failed(step)),
        };
        if let Some(note) = note {
            let _ = self.tx.send(note);
        }
        drop(self.tx);
        let _ = self.writer.await;
    }
}

fn note_step(
    current: &Mutex<Option<Step>>,
    tx: &mpsc::UnboundedSender<Note>,
    told: Option<&(String, Arc<dyn Progress>)>,
    step: Step,
) {
    if let Ok(mut c) = current.lock() {
        if *c == Some(step) {
            return;
        }
        *c = Some(step);
    }
    let _ = tx.send(Note::At(step));
    if let Some((slug, progress)) = told {
        progress.step(slug, step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_rise_with_the_steps_and_stay_below_done() {
        let percents: Vec<i64> = Step::ALL.iter().map(|s| s.percent()).collect();
        assert_eq!(percents, vec![0, 14, 28, 42, 57, 71, 85]);
    }
}
