//! A tenant's network and its subnet: the lowest free /28 of the pool, free on the engine and
//! in the database, chosen one tenant at a time and recorded before the network is made.

use super::*;

impl Applier {
    /// Picks the lowest free /28 from the pool (free on the engine and in the database),
    /// records it, and creates the network with it; an engine-side overlap moves to the next.
    /// The tenant's network made (or found), on a subnet from the pool; returns the subnet it
    /// has and the ids of duplicates of its name left because containers are attached to them.
    pub(super) async fn create_network(
        &self,
        slug: &str,
        name: &str,
    ) -> Result<(Ipv4Net, Vec<String>), ApplyError> {
        let labels = self.stamped(managed_labels(&self.config.namespace, slug));
        let pool = SubnetPool::new(self.config.subnet_pool, 28)?;
        let mut refused: BTreeSet<Ipv4Net> = BTreeSet::new();
        for _ in 0..64 {
            let subnet = self.choose_subnet(slug, &pool, &refused).await?;
            // Only the choice is serialised; creating networks runs in parallel.
            match self
                .runtime
                .backend()
                .ensure_network(name, subnet, &labels)
                .await
            {
                Ok(net) => {
                    // A network left by an interrupted apply keeps the subnet it was made with: record that one.
                    let real = net.subnet.unwrap_or(subnet);
                    if real != subnet {
                        self.store.release_network(slug).await?;
                        self.store.assign_network(slug, &real.to_string()).await?;
                        if let Some(book) = self.subnets.lock().await.as_mut() {
                            book.recorded.insert(slug.to_string(), real.to_string());
                            book.engine.insert(real);
                        }
                    }
                    return Ok((real, net.left_in_use));
                }
                Err(RuntimeError::SubnetOverlap { .. }) => {
                    refused.insert(subnet);
                    self.store.release_network(slug).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Step(
            "no free subnet found after 64 tries".into(),
        ))
    }

    /// The tenant's recorded subnet (kept across interrupted applies), or the lowest free one, recorded.
    ///
    /// What is taken (every subnet on the engine and every one recorded) is read once per apply,
    /// by the first tenant that needs a subnet, and kept: each choice adds its own. Reading it per
    /// tenant, under this lock, listed every network of the engine once per new tenant, one
    /// tenant at a time. An overlap the engine refuses (a network made meanwhile by someone
    /// else) reads the engine's subnets again; a subnet the database refuses reads its rows again.
    pub(super) async fn choose_subnet(
        &self,
        slug: &str,
        pool: &SubnetPool,
        refused: &BTreeSet<Ipv4Net>,
    ) -> Result<Ipv4Net, ApplyError> {
        let mut guard = self.subnets.lock().await;
        if guard.is_none() || !refused.is_empty() {
            *guard = Some(SubnetBook {
                engine: self.runtime.backend().existing_subnets().await?,
                recorded: self.store.networks().await?,
            });
        }
        let Some(book) = guard.as_mut() else {
            return Err(ApplyError::Step(
                "the subnets in use could not be read".into(),
            ));
        };
        if let Some(mine) = book.mine(slug, refused) {
            return Ok(mine);
        }
        let mut taken = book.taken();
        taken.extend(refused.iter().copied());
        let mut reread = false;
        loop {
            let subnet = pool.next_free(&taken).ok_or_else(|| {
                ApplyError::Step(format!(
                    "the subnet pool {} is exhausted; give a larger one with --subnet-pool",
                    self.config.subnet_pool
                ))
            })?;
            if self.store.assign_network(slug, &subnet.to_string()).await? {
                book.recorded.insert(slug.to_string(), subnet.to_string());
                return Ok(subnet);
            }
            taken.insert(subnet);
            // Someone else recorded it (or this slug holds another one): read the rows once more.
            if !reread {
                reread = true;
                book.recorded = self.store.networks().await?;
                if let Some(mine) = book.mine(slug, refused) {
                    return Ok(mine);
                }
                taken.extend(book.taken());
            }
        }
    }
}

/// The subnets an apply must not hand out: those of every network on the engine when it was
/// read, and those recorded in the database (slug → subnet), kept current by each choice.
#[derive(Debug)]
pub(super) struct SubnetBook {
    pub(super) engine: BTreeSet<Ipv4Net>,
    pub(super) recorded: BTreeMap<String, String>,
}

impl SubnetBook {
    /// The subnet recorded for `slug`, unless the engine refused it in this choice.
    fn mine(&self, slug: &str, refused: &BTreeSet<Ipv4Net>) -> Option<Ipv4Net> {
        self.recorded
            .get(slug)
            .and_then(|s| s.parse::<Ipv4Net>().ok())
            .filter(|mine| !refused.contains(mine))
    }

    pub(super) fn taken(&self) -> BTreeSet<Ipv4Net> {
        let mut taken = self.engine.clone();
        taken.extend(
            self.recorded
                .values()
                .filter_map(|s| s.parse::<Ipv4Net>().ok()),
        );
        taken
    }
}

/// What apply says of duplicates of a tenant's network name it could not remove (empty when
/// none): which copies, and what the operator does about them.
pub(super) fn duplicates_left(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let short: Vec<&str> = ids.iter().map(|id| &id[..id.len().min(12)]).collect();
    format!(
        "; {} other network{} of this name still {} containers attached ({}): disconnect them \
         (docker network disconnect NETWORK CONTAINER), then apply again",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        if ids.len() == 1 { "has" } else { "have" },
        short.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::duplicates_left;

    #[test]
    fn duplicates_left_name_the_copies_and_the_way_out() {
        assert_eq!(duplicates_left(&[]), "");
        let one = duplicates_left(&["0123456789abcdef0123".to_string()]);
        assert!(
            one.contains(
                "1 other network of this name still has containers attached (0123456789ab)"
            ),
            "{one}"
        );
        assert!(one.contains("docker network disconnect"), "{one}");
        let two = duplicates_left(&["aaaaaaaaaaaaaaaa".to_string(), "bbbb".to_string()]);
        assert!(
            two.contains(
                "2 other networks of this name still have containers attached (aaaaaaaaaaaa, bbbb)"
            ),
            "{two}"
        );
    }
}
