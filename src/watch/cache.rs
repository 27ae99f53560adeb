//! The observed-state cache of the watch loop: what the engine runs for this namespace, filled
//! by one listing and kept current by the engine's events, so a pass costs what changed, not
//! what exists.
//!
//! - **Filled** by a full listing (every container, network and volume, each running tenant
//!   probed) at the first pass, whenever the event stream followed now is not the one the cache
//!   was filled under (lost, reconnected: events were missed), when an event names no tenant
//!   (the edge's container), and when the cache is older than the resync period.
//! - **Kept current** by the tenants the engine's events named ([`Dirty`]): each is read again
//!   alone (its containers, network and volume, listed with its label; its container probed) and
//!   put in place of what the cache held for it. So are the tenants a pass applied changes to.
//! - **Healed** by the resync: a missed event, or drift the engine tells nobody about (a site
//!   that hangs without its health check noticing), is found at the latest by the next listing.
//!
//! The database is read whole every pass (one query per table; cheap next to the engine), and
//! the edge's routes are asked every pass (one request).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::engine_events::{Dirty, Pending};
use crate::model::DesiredState;
use crate::plan::Change;
use crate::runtime::{ObservedRuntime, Runtime, RuntimeError};
use crate::store::{ObservedDb, RowChanges, Store, StoreError};

/// How a pass observed the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Everything was listed (why: for the log).
    Full(&'static str),
    /// Only these tenants were read again; the rest came from the cache.
    Tenants(BTreeSet<String>),
}

/// What the engine runs for this namespace, as last listed and kept current since.
#[derive(Debug)]
pub struct Cache {
    /// Listed and kept current; None until the first listing, or after [`Cache::invalidate`].
    observed: Option<ObservedRuntime>,
    /// When it was listed, and under which event stream (see [`super::engine_events::Pending::stream`]).
    filled: Option<(Instant, Option<u64>)>,
    /// A full listing at least this often.
    resync: Duration,
    /// Tenants to read again at the next pass whatever the events say (a pass changed them).
    touched: Dirty,
}

impl Cache {
    pub fn new(resync: Duration) -> Cache {
        Cache {
            observed: None,
            filled: None,
            resync,
            touched: Dirty::default(),
        }
    }

    /// The next pass lists everything.
    pub fn invalidate(&mut self) {
        self.observed = None;
        self.filled = None;
    }

    /// Whether a full listing is due (ignoring what the events say).
    fn full_due(&self, stream: Option<u64>) -> Option<&'static str> {
        match self.filled {
            _ if self.observed.is_none() => Some("first listing"),
            None => Some("first listing"),
            Some(_) if stream.is_none() => Some("engine events not followed"),
            Some((_, under)) if under != stream => Some("engine events followed again"),
            Some((at, _)) if at.elapsed() >= self.resync => Some("resync"),
            _ => None,
        }
    }

    /// The tenants (or everything) `changes` touch: read again at the next pass, since what a
    /// pass applies is not otherwise known to the cache (its events may come after the pass).
    pub fn touched(&mut self, changes: &[Change]) {
        for c in changes {
            match &c.tenant {
                Some(t) => {
                    self.touched.tenants.insert(t.clone());
                }
                // Records change the database only; the edge and unlabelled leftovers do not
                // belong to a tenant.
                None if matches!(
                    c.resource,
                    crate::plan::Resource::PlanRecord
                        | crate::plan::Resource::ThemeRecord
                        | crate::plan::Resource::EdgeRoutes
                ) => {}
                None => self.touched.all = true,
            }
        }
    }

    /// The engine's state for a pass: from a full listing when one is due (see the module),
    /// else the cache with the `dirty` tenants (and those a pass touched) read again. `stream`
    /// is the event subscription followed now. With `desired`, each running tenant read is
    /// probed (what a customer reaches decides drift too); cached tenants keep their last probe.
    pub async fn observe(
        &mut self,
        runtime: &Runtime,
        desired: Option<&DesiredState>,
        stream: Option<u64>,
        dirty: Dirty,
    ) -> Result<(ObservedRuntime, Read), RuntimeError> {
        let mut dirty = dirty;
        let touched = std::mem::take(&mut self.touched);
        dirty.tenants.extend(touched.tenants);
        let full = match self.full_due(stream) {
            Some(why) => Some(why),
            None if dirty.all => Some("an engine event about no tenant"),
            None if touched.all => Some("a pass changed what no tenant owns"),
            None => None,
        };
        let cached = match (full, self.observed.as_mut()) {
            (None, Some(cached)) => cached,
            (why, _) => {
                let mut observed = match runtime.observe().await {
                    Ok(observed) => observed,
                    Err(e) => {
                        // Whatever made this listing due is still due.
                        self.invalidate();
                        return Err(e);
                    }
                };
                if let Some(desired) = desired {
                    crate::reconcile::probe(&mut observed, runtime.namespace(), desired).await;
                }
                self.observed = Some(observed.clone());
                self.filled = Some((Instant::now(), stream));
                return Ok((observed, Read::Full(why.unwrap_or("first listing"))));
            }
        };
        for slug in &dirty.tenants {
            let fresh = match runtime.observe_tenant(slug).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    // Read it again next pass, whatever comes.
                    self.touched.tenants.extend(dirty.tenants.iter().cloned());
                    return Err(e);
                }
            };
            let mut fresh = fresh;
            if let Some(desired) = desired {
                crate::reconcile::probe(&mut fresh, runtime.namespace(), desired).await;
            }
            splice(cached, slug, fresh);
        }
        Ok((cached.clone(), Read::Tenants(dirty.tenants)))
    }
}

/// The database's plan, theme and tenant rows, kept between passes (or dashboard refreshes) and
/// read again only after they changed, whoever changed them (see [`RowChanges`]).
#[derive(Default)]
pub struct KeptRows {
    /// Started at the first read.
    changes: Option<RowChanges>,
    kept: Option<ObservedDb>,
}

impl KeptRows {
    /// The rows kept, unless they may have changed since (or `force`): then read whole and
    /// kept. Also whether they were read.
    pub async fn read(
        &mut self,
        store: &Store,
        force: bool,
    ) -> Result<(ObservedDb, bool), StoreError> {
        let changes = match &mut self.changes {
            Some(changes) => changes,
            None => self.changes.insert(store.follow_row_changes().await),
        };
        // Asked every time, before reading: it notes what it has seen.
        let changed = changes.changed().await;
        if !changed
            && !force
            && let Some(kept) = &self.kept
        {
            return Ok((kept.clone(), false));
        }
        match store.observe().await {
            Ok(db) => {
                self.kept = Some(db.clone());
                Ok((db, true))
            }
            Err(e) => {
                self.forget();
                Err(e)
            }
        }
    }

    /// The next read reads the rows whole.
    pub fn forget(&mut self) {
        self.kept = None;
        if let Some(changes) = &mut self.changes {
            changes.forget();
        }
    }
}

/// One observation of both sides, each with how long it took (they run together).
pub struct Both {
    pub runtime: (Result<(ObservedRuntime, Read), RuntimeError>, Duration),
    /// The rows, and whether they were read (not the ones kept).
    pub db: (Result<(ObservedDb, bool), StoreError>, Duration),
}

/// The engine's side from `cache` (kept current by `pending`'s events) and the database's from
/// `rows`, together: what a `watch` pass and a dashboard refresh observe. The rows are read whole
/// on the engine's resync too, whatever their follower says.
pub async fn observe_both(
    cache: &mut Cache,
    rows: &mut KeptRows,
    runtime: &Runtime,
    store: &Store,
    desired: Option<&DesiredState>,
    pending: Option<&Pending>,
) -> Both {
    let (stream, dirty) = match pending {
        Some(p) => (p.stream(), p.take_dirty()),
        None => (None, Default::default()),
    };
    let resync = cache.full_due(stream).is_some();
    let (runtime, db) = tokio::join!(
        timed(cache.observe(runtime, desired, stream, dirty)),
        timed(rows.read(store, resync))
    );
    Both { runtime, db }
}

/// `f`'s output and how long it took.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, Duration) {
    let at = Instant::now();
    let out = f.await;
    (out, at.elapsed())
}

/// Puts `fresh` (one tenant's share, read alone) in place of what `cached` held for `slug`,
/// keeping each list sorted by name as a listing gives it.
pub fn splice(cached: &mut ObservedRuntime, slug: &str, fresh: ObservedRuntime) {
    let mine = |t: &Option<String>| t.as_deref() == Some(slug);
    cached.containers.retain(|c| !mine(&c.tenant));
    cached.networks.retain(|n| !mine(&n.tenant));
    cached.volumes.retain(|v| !mine(&v.tenant));
    cached.containers.extend(fresh.containers);
    cached.networks.extend(fresh.networks);
    cached.volumes.extend(fresh.volumes);
    cached
        .containers
        .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    cached
        .networks
        .sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    cached.volumes.sort_by(|a, b| a.name.cmp(&b.name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::fake::{FakeBackend, Op};
    use crate::runtime::managed_labels;
    use std::sync::Arc;

    const NS: &str = "ns";

    /// A fake engine with a volume and a network for each of `tenants` (made without events,
    /// as a change nobody is told about).
    async fn engine(tenants: &[&str]) -> Arc<FakeBackend> {
        let fake = FakeBackend::new(NS);
        for t in tenants {
            add(&fake, t).await;
        }
        fake
    }

    async fn add(fake: &FakeBackend, tenant: &str) {
        use crate::runtime::Backend;
        let labels = managed_labels(NS, tenant);
        fake.ensure_volume(&format!("{NS}-{tenant}-data"), &labels)
            .await
            .expect("a volume");
        fake.ensure_network(
            &format!("{NS}-{tenant}"),
            // One /28 each: the fake, like the engine, refuses overlapping subnets.
            format!("10.99.{}.0/28", tenant.as_bytes()[0])
                .parse()
                .expect("a subnet"),
            &labels,
        )
        .await
        .expect("a network");
    }

    fn volumes(observed: &ObservedRuntime) -> Vec<&str> {
        observed.volumes.iter().map(|v| v.name.as_str()).collect()
    }

    /// The observations asked of the engine from the `from`-th call on: None lists everything.
    fn observations(fake: &FakeBackend, from: usize) -> Vec<Option<String>> {
        fake.calls()[from..]
            .iter()
            .filter(|c| c.op == Op::Observe)
            .map(|c| c.tenant.clone())
            .collect()
    }

    fn dirty(tenants: &[&str]) -> Dirty {
        Dirty {
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            all: false,
        }
    }

    #[tokio::test]
    async fn one_listing_fills_it_and_events_read_only_their_tenants() {
        let fake = engine(&["a", "b"]).await;
        let (runtime, desired) = (fake.runtime(), crate::testing::desired(&[]));
        let mut cache = Cache::new(Duration::from_secs(3600));

        let (seen, read) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(read, Read::Full("first listing"));
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data"]);

        // `c` appears without an event: a pass that nothing named lists nothing and sees nothing new.
        add(&fake, "c").await;
        let from = fake.calls().len();
        let (seen, read) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(read, Read::Tenants(BTreeSet::new()));
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data"]);
        assert_eq!(observations(&fake, from), Vec::<Option<String>>::new());

        // An event names `c`: it alone is read, and put in its place in the order.
        let (seen, read) = cache
            .observe(&runtime, Some(&desired), Some(1), dirty(&["c"]))
            .await
            .expect("observed");
        assert_eq!(read, Read::Tenants(["c".to_string()].into()));
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data", "ns-c-data"]);
        assert_eq!(observations(&fake, from), [Some("c".to_string())]);
        assert_eq!(
            seen.networks
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["ns-a", "ns-b", "ns-c"]
        );
    }

    #[tokio::test]
    async fn a_tenant_read_again_loses_what_is_gone() {
        let fake = engine(&["a", "b"]).await;
        let (runtime, desired) = (fake.runtime(), crate::testing::desired(&[]));
        let mut cache = Cache::new(Duration::from_secs(3600));
        cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        {
            use crate::runtime::Backend;
            assert!(fake.remove_network("ns-b").await.expect("removed"));
        }
        let (seen, _) = cache
            .observe(&runtime, Some(&desired), Some(1), dirty(&["b"]))
            .await
            .expect("observed");
        assert_eq!(
            seen.networks
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>(),
            ["ns-a"]
        );
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data"]);
    }

    #[tokio::test]
    async fn what_events_may_have_missed_is_listed_again() {
        let fake = engine(&["a"]).await;
        let (runtime, desired) = (fake.runtime(), crate::testing::desired(&[]));
        let mut cache = Cache::new(Duration::from_secs(3600));
        let pass = async |cache: &mut Cache, stream: Option<u64>, dirty: Dirty| {
            cache
                .observe(&runtime, Some(&desired), stream, dirty)
                .await
                .expect("observed")
        };
        pass(&mut cache, Some(1), Dirty::default()).await;
        add(&fake, "b").await;

        // Another subscription than the one the cache was filled under: events were missed.
        let (seen, read) = pass(&mut cache, Some(2), Dirty::default()).await;
        assert_eq!(read, Read::Full("engine events followed again"));
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data"]);

        // No stream at all: every pass lists.
        add(&fake, "c").await;
        let (seen, read) = pass(&mut cache, None, Dirty::default()).await;
        assert_eq!(read, Read::Full("engine events not followed"));
        assert_eq!(volumes(&seen).len(), 3);

        // An event about no tenant (the edge's container).
        let (_, read) = pass(
            &mut cache,
            None,
            Dirty {
                tenants: BTreeSet::new(),
                all: true,
            },
        )
        .await;
        assert!(matches!(read, Read::Full(_)));
        let (_, read) = pass(
            &mut cache,
            Some(3),
            Dirty {
                tenants: BTreeSet::new(),
                all: true,
            },
        )
        .await;
        assert!(matches!(read, Read::Full(_)));
        let (_, read) = pass(
            &mut cache,
            Some(3),
            Dirty {
                tenants: BTreeSet::new(),
                all: true,
            },
        )
        .await;
        assert_eq!(read, Read::Full("an engine event about no tenant"));
    }

    #[tokio::test]
    async fn the_resync_heals_a_missed_event() {
        let fake = engine(&["a"]).await;
        let (runtime, desired) = (fake.runtime(), crate::testing::desired(&[]));
        let mut cache = Cache::new(Duration::from_millis(50));
        cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        // A change no event reported.
        add(&fake, "b").await;
        let (seen, _) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(volumes(&seen), ["ns-a-data"], "not seen before the resync");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let (seen, read) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(read, Read::Full("resync"));
        assert_eq!(volumes(&seen), ["ns-a-data", "ns-b-data"]);
    }

    #[tokio::test]
    async fn what_a_pass_changed_is_read_again_and_a_failed_read_is_tried_again() {
        use crate::plan::{Action, Resource};
        let fake = engine(&["a", "b"]).await;
        let (runtime, desired) = (fake.runtime(), crate::testing::desired(&[]));
        let mut cache = Cache::new(Duration::from_secs(3600));
        cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        let change = |tenant: Option<&str>, resource: Resource| Change {
            tenant: tenant.map(str::to_string),
            resource,
            action: Action::Create,
            name: "x".into(),
            reasons: Vec::new(),
            before: None,
            after: None,
            container_id: None,
        };
        cache.touched(&[
            change(Some("b"), Resource::Volume),
            change(None, Resource::PlanRecord),
        ]);
        fake.fail(
            Some("b"),
            Op::Observe,
            crate::runtime::fake::Times::Once,
            || RuntimeError::Unreachable {
                target: "fake".into(),
                reason: "connection reset".into(),
            },
        );
        assert!(
            cache
                .observe(&runtime, Some(&desired), Some(1), Dirty::default())
                .await
                .is_err()
        );
        let from = fake.calls().len();
        let (_, read) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(read, Read::Tenants(["b".to_string()].into()));
        assert_eq!(observations(&fake, from), [Some("b".to_string())]);

        // A change of no tenant's workload (an unlabelled leftover) lists everything.
        cache.touched(&[change(None, Resource::Container)]);
        let (_, read) = cache
            .observe(&runtime, Some(&desired), Some(1), Dirty::default())
            .await
            .expect("observed");
        assert_eq!(read, Read::Full("a pass changed what no tenant owns"));
    }
}
