//! What a test scripts and reads back: failures, delays and hooks per tenant and operation,
//! the calls in order, and how many of one operation ran at once.

use super::*;

/// What a test can script and count: one per backend call that reads or changes the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Observe,
    EnsureNetwork,
    RemoveNetwork,
    EnsureVolume,
    EnsureImage,
    /// Create (not start) a container or service.
    Create,
    Start,
    /// Wait until a started container answers its health path.
    WaitReady,
    Rename,
    Update,
    Stop,
    Remove,
    Restart,
    /// Subscribe to the engine's events.
    Events,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Observe => "observe",
            Op::EnsureNetwork => "ensure-network",
            Op::RemoveNetwork => "remove-network",
            Op::EnsureVolume => "ensure-volume",
            Op::EnsureImage => "ensure-image",
            Op::Create => "create",
            Op::Start => "start",
            Op::WaitReady => "wait-ready",
            Op::Rename => "rename",
            Op::Update => "update",
            Op::Stop => "stop",
            Op::Remove => "remove",
            Op::Restart => "restart",
            Op::Events => "events",
        }
    }
}

/// One call the fake answered (or failed), in the order they came.
#[derive(Debug, Clone)]
pub struct Call {
    pub op: Op,
    /// The tenant the call was about; None for engine-wide calls (observe all, images).
    pub tenant: Option<String>,
    /// The object's name (`ns-acme_next as ns-acme` for a rename); empty for an observe.
    pub object: String,
    pub at: Instant,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.object.as_str() {
            "" => f.write_str(self.op.as_str()),
            object => write!(f, "{} {object}", self.op.as_str()),
        }
    }
}

/// How many matching calls a scripted effect applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    Once,
    N(u32),
    Always,
}

pub(super) type MakeError = Arc<dyn Fn() -> RuntimeError + Send + Sync>;
pub(super) type Hook = Arc<dyn Fn() + Send + Sync>;

pub(super) enum Effect {
    Fail(MakeError),
    Delay(Duration),
    /// Runs when the call comes, before it takes effect (commit to git, revoke a lease...).
    Run(Hook),
}

pub(super) struct Rule {
    /// None: every call of `op`, engine-wide ones included.
    tenant: Option<String>,
    op: Op,
    /// None: always.
    remaining: Option<u32>,
    effect: Effect,
}

/// Counts a call as running until dropped.
pub(super) struct Flight<'a> {
    fake: &'a FakeBackend,
    op: Op,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.fake.state().in_flight.get_mut(&self.op) {
            *n = n.saturating_sub(1);
        }
    }
}

impl FakeBackend {
    // ------------------------------------------------------------ scripting

    pub(super) fn script(&self, tenant: Option<&str>, op: Op, times: Times, effect: Effect) {
        let remaining = match times {
            Times::Once => Some(1),
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        self.state().rules.push(Rule {
            tenant: tenant.map(str::to_string),
            op,
            remaining,
            effect,
        });
    }

    /// Fail `op` of `tenant` (every tenant's, engine-wide calls included, when None).
    pub fn fail(
        &self,
        tenant: Option<&str>,
        op: Op,
        times: Times,
        error: impl Fn() -> RuntimeError + Send + Sync + 'static,
    ) {
        self.script(tenant, op, times, Effect::Fail(Arc::new(error)));
    }

    /// Make `op` of `tenant` take `delay` longer (counted as running all the while).
    pub fn delay(&self, tenant: Option<&str>, op: Op, times: Times, delay: Duration) {
        self.script(tenant, op, times, Effect::Delay(delay));
    }

    /// Run `hook` when `op` of `tenant` comes, before it takes effect.
    pub fn on(
        &self,
        tenant: Option<&str>,
        op: Op,
        times: Times,
        hook: impl Fn() + Send + Sync + 'static,
    ) {
        self.script(tenant, op, times, Effect::Run(Arc::new(hook)));
    }

    /// Records the call, runs its scripted effects, and counts it as running until the returned
    /// guard drops.
    pub(super) async fn enter(
        &self,
        op: Op,
        tenant: Option<&str>,
        object: &str,
    ) -> Result<Flight<'_>, RuntimeError> {
        let (delay, failure, hooks) = {
            let mut s = self.state();
            s.calls.push(Call {
                op,
                tenant: tenant.map(str::to_string),
                object: object.to_string(),
                at: Instant::now(),
            });
            let running = s.in_flight.entry(op).or_default();
            *running += 1;
            let running = *running;
            let most = s.most_in_flight.entry(op).or_default();
            *most = (*most).max(running);
            let mut delay = Duration::ZERO;
            let mut failure: Option<MakeError> = None;
            let mut hooks: Vec<Hook> = Vec::new();
            for rule in s.rules.iter_mut().filter(|r| {
                r.op == op
                    && r.remaining != Some(0)
                    && (r.tenant.is_none() || r.tenant.as_deref() == tenant)
            }) {
                if let Some(n) = rule.remaining.as_mut() {
                    *n -= 1;
                }
                match &rule.effect {
                    Effect::Delay(d) => delay += *d,
                    Effect::Fail(make) => failure = failure.or_else(|| Some(make.clone())),
                    Effect::Run(hook) => hooks.push(hook.clone()),
                }
            }
            s.rules.retain(|r| r.remaining != Some(0));
            (delay, failure, hooks)
        };
        let flight = Flight { fake: self, op };
        for hook in hooks {
            hook();
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match failure {
            Some(make) => Err(make()),
            None => Ok(flight),
        }
    }

    // ------------------------------------------------------------ reading back

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls about `tenant`, as `op object` lines.
    pub fn calls_of(&self, tenant: &str) -> Vec<String> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.tenant.as_deref() == Some(tenant))
            .map(Call::to_string)
            .collect()
    }

    /// The most calls of `op` that were running at one moment.
    pub fn most_at_once(&self, op: Op) -> usize {
        self.state().most_in_flight.get(&op).copied().unwrap_or(0)
    }
}
