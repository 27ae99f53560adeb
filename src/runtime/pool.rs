//! Explicit tenant subnets: Docker's default address pools hold only about 30 user-defined
//! networks, so every tenant network gets a small subnet of its own from an operator-set pool.

use std::collections::BTreeSet;
use std::fmt;

use ipnet::Ipv4Net;

use super::RuntimeError;

/// The pool tenant subnets come from unless the operator sets `--subnet-pool`.
pub const DEFAULT_SUBNET_POOL: &str = "10.233.0.0/16";
/// A /28 holds the gateway and 13 addresses: plenty for one tenant's container.
pub const DEFAULT_SUBNET_PREFIX: u8 = 28;
/// A /30 leaves the gateway and one container: the smallest usable bridge network.
pub const MAX_SUBNET_PREFIX: u8 = 30;

/// Hands out `/prefix` subnets of `pool`, lowest free first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetPool {
    pool: Ipv4Net,
    prefix: u8,
}

impl SubnetPool {
    /// A pool of `/prefix` subnets inside `pool` (host bits of `pool` are ignored).
    pub fn new(pool: Ipv4Net, prefix: u8) -> Result<SubnetPool, RuntimeError> {
        let pool = pool.trunc();
        if prefix < pool.prefix_len() || prefix > MAX_SUBNET_PREFIX {
            return Err(RuntimeError::InvalidSubnetPool {
                pool: pool.to_string(),
                reason: format!(
                    "subnets of /{prefix} do not fit: use a prefix from /{} to /{MAX_SUBNET_PREFIX}",
                    pool.prefix_len()
                ),
            });
        }
        Ok(SubnetPool { pool, prefix })
    }

    /// Parse `CIDR` (e.g. from `--subnet-pool`) with the given subnet prefix.
    pub fn parse(pool: &str, prefix: u8) -> Result<SubnetPool, RuntimeError> {
        let net: Ipv4Net = pool
            .trim()
            .parse()
            .map_err(|e| RuntimeError::InvalidSubnetPool {
                pool: pool.to_string(),
                reason: format!("{e}; write an IPv4 CIDR such as {DEFAULT_SUBNET_POOL}"),
            })?;
        SubnetPool::new(net, prefix)
    }

    pub fn pool(&self) -> Ipv4Net {
        self.pool
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// How many subnets the pool holds when nothing else is there.
    pub fn capacity(&self) -> u64 {
        1u64 << (self.prefix - self.pool.prefix_len())
    }

    /// True when `subnet` is one this pool could hand out (inside it, right size, aligned).
    pub fn contains(&self, subnet: &Ipv4Net) -> bool {
        subnet.prefix_len() == self.prefix
            && subnet.trunc() == *subnet
            && self.pool.contains(subnet)
    }

    /// The lowest subnet of the pool that overlaps nothing in `taken` (of any size), or None
    /// when the pool is exhausted. Deterministic; linear in `taken`, not in the pool size.
    pub fn next_free(&self, taken: &BTreeSet<Ipv4Net>) -> Option<Ipv4Net> {
        let size = 1u64 << (32 - self.prefix);
        let pool_start = u64::from(u32::from(self.pool.network()));
        let pool_end = u64::from(u32::from(self.pool.broadcast()));
        // The set orders by the address as written (host bits included): sort by real start.
        let mut sorted: Vec<(u64, u64)> = taken
            .iter()
            .map(|net| {
                (
                    u64::from(u32::from(net.network())),
                    u64::from(u32::from(net.broadcast())),
                )
            })
            .collect();
        sorted.sort_unstable();
        let mut ranges = sorted.into_iter();
        let mut candidate = pool_start;
        let mut current = ranges.next();
        while candidate + size - 1 <= pool_end {
            let candidate_end = candidate + size - 1;
            match current {
                // Entirely below the candidate: irrelevant from now on.
                Some((_, end)) if end < candidate => current = ranges.next(),
                // Overlaps: jump to the first aligned block after it.
                Some((start, end)) if start <= candidate_end => {
                    candidate = (end / size + 1) * size;
                    current = ranges.next();
                }
                // Entirely above (or nothing left): the candidate is free.
                _ => {
                    let address = std::net::Ipv4Addr::from(u32::try_from(candidate).ok()?);
                    return Ipv4Net::new(address, self.prefix).ok();
                }
            }
        }
        None
    }
}

impl Default for SubnetPool {
    fn default() -> SubnetPool {
        SubnetPool {
            pool: Ipv4Net::new(std::net::Ipv4Addr::new(10, 233, 0, 0), 16)
                .unwrap_or_default()
                .trunc(),
            prefix: DEFAULT_SUBNET_PREFIX,
        }
    }
}

impl fmt::Display for SubnetPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{} subnets of {}", self.prefix, self.pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn set(nets: &[&str]) -> BTreeSet<Ipv4Net> {
        nets.iter().map(|s| net(s)).collect()
    }

    #[test]
    fn default_is_the_documented_pool() {
        let pool = SubnetPool::default();
        assert_eq!(pool.pool(), net(DEFAULT_SUBNET_POOL));
        assert_eq!(pool.prefix(), 28);
        assert_eq!(pool.capacity(), 4096);
        assert_eq!(pool.next_free(&BTreeSet::new()), Some(net("10.233.0.0/28")));
    }

    #[test]
    fn lowest_free_is_chosen_deterministically() {
        let pool = SubnetPool::default();
        let taken = set(&["10.233.0.0/28", "10.233.0.32/28"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.0.16/28")));
        let taken = set(&["10.233.0.0/28", "10.233.0.16/28", "10.233.0.32/28"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.0.48/28")));
    }

    #[test]
    fn larger_existing_networks_are_skipped_whole() {
        let pool = SubnetPool::default();
        // The first /24 is someone's bridge; a /20 covers 10.233.16.0-10.233.31.255.
        let taken = set(&["10.233.0.0/24"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.1.0/28")));
        let taken = set(&["10.233.0.0/20", "10.233.16.0/20"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.32.0/28")));
        // A network covering the whole pool (or more) leaves nothing.
        assert_eq!(pool.next_free(&set(&["10.0.0.0/8"])), None);
    }

    #[test]
    fn smaller_existing_networks_block_their_block() {
        let pool = SubnetPool::default();
        // A /30 in the middle of the first /28, and a host route in the second.
        let taken = set(&["10.233.0.4/30", "10.233.0.17/32"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.0.32/28")));
        // Unnormalized input (host bits set) counts as its network.
        let taken = set(&["10.233.0.5/28"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.0.16/28")));
        // ... also where that puts it out of the set's own order.
        let taken = set(&["10.233.0.16/28", "10.233.0.200/23"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.2.0/28")));
    }

    #[test]
    fn networks_outside_the_pool_do_not_matter() {
        let pool = SubnetPool::default();
        let taken = set(&["172.17.0.0/16", "10.232.255.240/28", "10.234.0.0/16"]);
        assert_eq!(pool.next_free(&taken), Some(net("10.233.0.0/28")));
    }

    #[test]
    fn exhaustion_gives_none() {
        let pool = SubnetPool::new(net("192.168.50.0/26"), 28).unwrap();
        assert_eq!(pool.capacity(), 4);
        let mut taken = BTreeSet::new();
        let mut handed = Vec::new();
        while let Some(next) = pool.next_free(&taken) {
            assert!(pool.contains(&next));
            taken.insert(next);
            handed.push(next.to_string());
        }
        assert_eq!(
            handed,
            [
                "192.168.50.0/28",
                "192.168.50.16/28",
                "192.168.50.32/28",
                "192.168.50.48/28"
            ]
        );
        // Freeing one in the middle makes exactly that one available again.
        taken.remove(&net("192.168.50.16/28"));
        assert_eq!(pool.next_free(&taken), Some(net("192.168.50.16/28")));
    }

    #[test]
    fn top_of_the_address_space_does_not_overflow() {
        let pool = SubnetPool::new(net("255.255.255.0/24"), 28).unwrap();
        let taken = set(&[
            "255.255.255.0/25",
            "255.255.255.128/26",
            "255.255.255.192/27",
        ]);
        assert_eq!(pool.next_free(&taken), Some(net("255.255.255.224/28")));
        let taken = set(&["255.255.255.0/25", "255.255.255.128/25"]);
        assert_eq!(pool.next_free(&taken), None);
        let whole = SubnetPool::new(net("0.0.0.0/0"), 30).unwrap();
        assert_eq!(whole.next_free(&set(&["0.0.0.0/1", "128.0.0.0/1"])), None);
    }

    #[test]
    fn a_pool_of_exactly_one_subnet() {
        let pool = SubnetPool::new(net("10.9.9.0/28"), 28).unwrap();
        assert_eq!(pool.capacity(), 1);
        assert_eq!(pool.next_free(&BTreeSet::new()), Some(net("10.9.9.0/28")));
        assert_eq!(pool.next_free(&set(&["10.9.9.8/29"])), None);
    }

    #[test]
    fn bad_pools_are_refused_with_the_reason() {
        assert!(SubnetPool::new(net("10.0.0.0/24"), 16).is_err());
        assert!(SubnetPool::new(net("10.0.0.0/24"), 31).is_err());
        let error = SubnetPool::parse("10.0.0/16", 28).unwrap_err().to_string();
        assert!(error.contains("10.0.0/16"), "{error}");
        assert!(error.contains("CIDR"), "{error}");
        // Host bits in the pool are dropped, as `ip route` would.
        let pool = SubnetPool::parse(" 10.233.7.9/16 ", 28).unwrap();
        assert_eq!(pool.pool(), net("10.233.0.0/16"));
        assert!(!pool.contains(&net("10.233.0.8/28")), "not aligned");
        assert!(!pool.contains(&net("10.233.0.0/27")), "wrong size");
        assert!(!pool.contains(&net("10.234.0.0/28")), "outside");
        assert_eq!(pool.to_string(), "/28 subnets of 10.233.0.0/16");
    }

    #[test]
    fn many_taken_are_handled_in_one_pass() {
        // 4095 of 4096 taken: the last one is found without scanning per candidate.
        let pool = SubnetPool::default();
        let taken: BTreeSet<Ipv4Net> = (0u32..4096)
            .filter(|i| *i != 4000)
            .map(|i| Ipv4Net::new(std::net::Ipv4Addr::from(0x0AE9_0000u32 + i * 16), 28).unwrap())
            .collect();
        assert_eq!(pool.next_free(&taken), Some(net("10.233.250.0/28")));
    }
}
