//! Where a workload change is, told to whoever carries it out (the applier records it on the
//! tenant's row as provisioning progress). A task-local sink rather than a parameter: the
//! backends and `bluegreen` only say "now at this phase", and a call outside a sink's scope
//! (a restart, a unit test) says it to nobody.

use std::sync::Arc;

/// A phase of one workload change, in the order a new workload goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The container (or service) is being created.
    Container,
    /// It is being started (or scaled up).
    Start,
    /// It runs and is being waited on until it answers its health check.
    Health,
}

/// Receives the phases of the workload change in flight; must not block.
pub type PhaseSink = Arc<dyn Fn(Phase) + Send + Sync>;

tokio::task_local! {
    static SINK: PhaseSink;
}

/// Runs `fut` with `sink` told of every [`phase`] said inside it (on this task).
pub async fn with_phases<F: std::future::Future>(sink: PhaseSink, fut: F) -> F::Output {
    SINK.scope(sink, fut).await
}

/// Says the workload change in flight is now at `p` (nothing when no sink listens).
pub fn phase(p: Phase) {
    let _ = SINK.try_with(|sink| sink(p));
}
