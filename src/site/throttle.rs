//! Failed API key attempts per client address: after a few within a window, the address is
//! answered 429 without its key being checked, until the window ends. Memory is bounded: at most
//! `capacity` addresses are remembered, the oldest spells making room for new ones.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Failed attempts an address may make within [`WINDOW`] before it is refused.
pub const FAILURES: u32 = 10;
/// How long a spell of failures counts (from its first failure).
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once (a few hundred kilobytes at most).
pub const CAPACITY: usize = 4096;

/// One address's failures since `started` (monotonic).
#[derive(Debug, Clone, Copy)]
struct Spell {
    started: Duration,
    failures: u32,
}

#[derive(Debug)]
pub struct FailedKeys {
    spells: HashMap<IpAddr, Spell>,
    limit: u32,
    window: Duration,
    capacity: usize,
}

impl Default for FailedKeys {
    fn default() -> Self {
        FailedKeys::new(FAILURES, WINDOW, CAPACITY)
    }
}

/// IPv6 clients are counted by their /64: one host usually holds the whole of it.
fn client(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

impl FailedKeys {
    pub fn new(limit: u32, window: Duration, capacity: usize) -> FailedKeys {
        FailedKeys {
            spells: HashMap::new(),
            limit: limit.max(1),
            window,
            capacity: capacity.max(1),
        }
    }

    /// How long `ip` must wait before its key is checked again, if it is refused now.
    pub fn refused(&mut self, ip: IpAddr, now: Duration) -> Option<Duration> {
        let key = client(ip);
        let spell = *self.spells.get(&key)?;
        let ends = spell.started + self.window;
        if now >= ends {
            self.spells.remove(&key);
            return None;
        }
        (spell.failures >= self.limit).then(|| ends - now)
    }

    /// Counts a failed attempt of `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Duration) {
        let key = client(ip);
        let window = self.window;
        if let Some(spell) = self.spells.get_mut(&key) {
            if now < spell.started + window {
                spell.failures = spell.failures.saturating_add(1);
            } else {
                *spell = Spell {
                    started: now,
                    failures: 1,
                };
            }
            return;
        }
        if self.spells.len() >= self.capacity {
            self.spells.retain(|_, s| now < s.started + window);
        }
        if self.spells.len() >= self.capacity
            && let Some(oldest) = self
                .spells
                .iter()
                .min_by_key(|(_, s)| s.started)
                .map(|(ip, _)| *ip)
        {
            self.spells.remove(&oldest);
        }
        self.spells.insert(
            key,
            Spell {
                started: now,
                failures: 1,
            },
        );
    }

    /// Addresses remembered now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spells.len()
    }
}
