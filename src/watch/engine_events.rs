//! Following the engine's events while this loop leads: a container of this namespace died, was
//! stopped or removed, its network was disconnected (services changed, in swarm mode), so a pass
//! runs at once rather than at the next resync. The stream is reconnected with a capped backoff
//! when the engine restarts or the connection drops, saying so once per outage, and a full pass
//! follows every reconnection (events meanwhile are lost). The resync timer stays the safety net.
//!
//! The follower task only records a [`Cause`] in [`Pending`] and wakes the loop; the loop folds a
//! burst into one pass ([`Timing::quiet`], at most [`Timing::most`] after the first event), and
//! every pass clears what is pending when it starts, so events that come during a pass (its own
//! blue/green replacements among them) make at most one more pass.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::Notify;

use super::metrics::Metrics;
use crate::apply::Progress;
use crate::runtime::{EngineEvent, Runtime};

/// How events are folded into passes and how the stream is reconnected.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A pass starts once no event came for this long (a `docker rm -f` sends kill, die,
    /// disconnect and destroy within a few milliseconds)...
    pub quiet: Duration,
    /// ...or this long after the first event, whatever still comes.
    pub most: Duration,
    /// The first wait before subscribing again; doubled after each failure...
    pub retry_first: Duration,
    /// ...up to this.
    pub retry_most: Duration,
    /// A stream that lasted this long resets the backoff.
    pub stable: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            quiet: Duration::from_millis(200),
            most: Duration::from_secs(1),
            retry_first: Duration::from_millis(500),
            retry_most: Duration::from_secs(5),
            stable: Duration::from_secs(10),
        }
    }
}

impl Timing {
    /// The wait before the `attempt`-th (1-based) subscription after a failure.
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .retry_first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.retry_most)
    }
}

/// Why the engine asks for a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The first event since the last pass began, how many came after it, and every tenant
    /// they were about.
    Event {
        first: EngineEvent,
        more: usize,
        tenants: BTreeSet<String>,
    },
    /// The stream was lost and is followed again: whatever happened meanwhile was not seen.
    Reconnected { after: Duration },
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Event { first, more: 0, .. } => write!(f, "engine event {first}"),
            Cause::Event {
                first,
                more,
                tenants,
            } => {
                write!(f, "engine event {first} and {more} more")?;
                if tenants.len() > 1 {
                    let names: Vec<&str> = tenants.iter().map(String::as_str).collect();
                    write!(f, " (tenants {})", names.join(", "))?;
                }
                Ok(())
            }
            Cause::Reconnected { after } => write!(
                f,
                "engine events followed again after {:.1}s",
                after.as_secs_f64()
            ),
        }
    }
}

impl Cause {
    /// The tenant and action of the event, for the structured log.
    pub fn tenant_and_action(&self) -> (Option<&str>, &str) {
        match self {
            Cause::Event { first, .. } => (first.tenant.as_deref(), first.action.as_str()),
            Cause::Reconnected { .. } => (None, "reconnected"),
        }
    }
}

/// What the follower found since the last pass began; shared with the loop.
#[derive(Debug, Default)]
pub struct Pending {
    cause: Mutex<Option<Cause>>,
    notify: Notify,
    /// The tenants named by events since the observed-state cache last took them.
    dirty: Mutex<Dirty>,
    /// Which subscription is followed now (counted from 1), or 0 while none is.
    stream: std::sync::atomic::AtomicU64,
    /// Subscriptions made so far.
    streams: std::sync::atomic::AtomicU64,
    /// Woken when a subscription is made.
    subscribed: Notify,
}

/// What the observed-state cache must read again ([`super::cache`]): the tenants the engine's
/// events named, or everything (an event about no tenant's object).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dirty {
    pub tenants: BTreeSet<String>,
    pub all: bool,
}

impl Pending {
    fn cause(&self) -> std::sync::MutexGuard<'_, Option<Cause>> {
        self.cause.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event came: the first one is kept to say why the pass runs, the others counted.
    pub fn event(&self, event: EngineEvent) {
        {
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            match &event.tenant {
                Some(t) => {
                    dirty.tenants.insert(t.clone());
                }
                None => dirty.all = true,
            }
        }
        {
            let mut cause = self.cause();
            match cause.as_mut() {
                None => {
                    *cause = Some(Cause::Event {
                        tenants: event.tenant.iter().cloned().collect(),
                        first: event,
                        more: 0,
                    });
                }
                Some(Cause::Event { more, tenants, .. }) => {
                    *more += 1;
                    tenants.extend(event.tenant);
                }
                // A full pass is due anyway.
                Some(Cause::Reconnected { .. }) => {}
            }
        }
        self.notify.notify_one();
    }

    /// The stream is followed again after `after` without: a full pass is due.
    pub fn reconnected(&self, after: Duration) {
        *self.cause() = Some(Cause::Reconnected { after });
        self.notify.notify_one();
    }

    /// Resolves when something was recorded since the last wake (at once if it came meanwhile).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }

    /// What is pending, cleared: a pass starting now covers it.
    pub fn take(&self) -> Option<Cause> {
        self.cause().take()
    }

    /// The tenants events named since the last call, cleared (the cache reads them again).
    pub fn take_dirty(&self) -> Dirty {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// A subscription was made: from now on every event about the namespace lands here.
    pub fn following(&self) {
        use std::sync::atomic::Ordering;
        let n = self.streams.fetch_add(1, Ordering::SeqCst) + 1;
        self.stream.store(n, Ordering::SeqCst);
        self.subscribed.notify_waiters();
    }

    /// The stream was lost: events are missed until the next subscription.
    pub fn lost(&self) {
        self.stream.store(0, std::sync::atomic::Ordering::SeqCst);
    }

    /// The subscription followed now, or None while none is: a cache filled under one stream
    /// may be kept current by events only while that same stream is followed.
    pub fn stream(&self) -> Option<u64> {
        match self.stream.load(std::sync::atomic::Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// Waits until a stream is followed, at most `within` (the first pass lists after it, so
    /// the events that follow keep what it listed current).
    pub async fn wait_following(&self, within: Duration) {
        let subscribed = self.subscribed.notified();
        tokio::pin!(subscribed);
        subscribed.as_mut().enable();
        if self.stream().is_some() {
            return;
        }
        let _ = tokio::time::timeout(within, subscribed).await;
    }
}

/// The follower task; stopped when dropped (the loop stops leading or ends).
pub struct Follower {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Follows `runtime`'s events into `pending` until the returned [`Follower`] is dropped.
pub fn follow(
    runtime: Runtime,
    pending: Arc<Pending>,
    progress: Arc<dyn Progress>,
    metrics: Arc<Metrics>,
    timing: Timing,
) -> Follower {
    let task = tokio::spawn(async move {
        // Failed subscriptions in a row (reset by a stream that lasted `timing.stable`).
        let mut failures = 0u32;
        // Since when no stream is followed (None: never followed yet, or following now).
        let mut lost_at: Option<Instant> = None;
        // The outage was said: one line per outage, however many attempts it takes.
        let mut said = false;
        loop {
            match runtime.backend().events().await {
                Ok(mut stream) => {
                    let since = Instant::now();
                    pending.following();
                    if let Some(at) = lost_at.take() {
                        let after = at.elapsed();
                        progress.line(
                            None,
                            &format!(
                                "engine events: following again after {:.1}s; a full pass looks for what was missed",
                                after.as_secs_f64()
                            ),
                        );
                        metrics.events_reconnected();
                        pending.reconnected(after);
                    }
                    let ended = loop {
                        match stream.next().await {
                            Some(Ok(event)) => {
                                tracing::debug!(%event, "engine event");
                                pending.event(event);
                            }
                            Some(Err(e)) => break e.to_string(),
                            None => break "the engine closed the stream".to_string(),
                        }
                    };
                    pending.lost();
                    if since.elapsed() >= timing.stable {
                        failures = 0;
                    }
                    lost_at = Some(Instant::now());
                    progress.line(
                        None,
                        &format!(
                            "engine events: lost ({ended}); reconnecting with backoff (the resync timer still runs)"
                        ),
                    );
                    said = true;
                }
                Err(e) => {
                    lost_at.get_or_insert_with(Instant::now);
                    if !said {
                        progress.line(
                            None,
                            &format!(
                                "engine events: cannot follow ({e}); retrying with backoff (the resync timer still runs)"
                            ),
                        );
                        said = true;
                    } else {
                        tracing::debug!("engine events: still cannot follow: {e}");
                    }
                }
            }
            failures = failures.saturating_add(1);
            tokio::time::sleep(timing.retry_delay(failures)).await;
        }
    });
    Follower { task }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::EventObject;

    fn event(tenant: &str, action: &str) -> EngineEvent {
        EngineEvent {
            object: EventObject::Container,
            action: action.into(),
            name: format!("ns-{tenant}"),
            tenant: Some(tenant.into()),
        }
    }

    #[test]
    fn the_backoff_doubles_from_the_first_wait_and_is_capped() {
        let t = Timing::default();
        let delays: Vec<u64> = (1..=6)
            .map(|n| t.retry_delay(n).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        assert_eq!(t.retry_delay(u32::MAX), t.retry_most);
    }

    #[tokio::test]
    async fn a_burst_is_one_cause_naming_its_first_event() {
        let p = Pending::default();
        p.event(event("acme", "kill"));
        p.event(event("acme", "die"));
        p.event(event("globex", "destroy"));
        // One wake is pending, whatever the number of events.
        tokio::time::timeout(Duration::from_secs(1), p.wait())
            .await
            .expect("woken");
        let cause = p.take().expect("a cause");
        assert_eq!(
            cause.to_string(),
            "engine event acme: container kill (ns-acme) and 2 more (tenants acme, globex)"
        );
        assert_eq!(cause.tenant_and_action(), (Some("acme"), "kill"));
        assert_eq!(p.take(), None, "taking clears it");
    }

    #[tokio::test]
    async fn a_reconnection_asks_for_a_full_pass_whatever_came_before_or_after() {
        let p = Pending::default();
        p.event(event("acme", "die"));
        p.reconnected(Duration::from_millis(4200));
        p.event(event("acme", "destroy"));
        assert_eq!(
            p.take().map(|c| c.to_string()).as_deref(),
            Some("engine events followed again after 4.2s")
        );
    }
}
