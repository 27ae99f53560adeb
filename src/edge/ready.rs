//! Whether the proxy's listeners accept connections: `/healthz` says ok only then, so "the
//! edge is healthy" (its container's health check, apply's wait for it) means a customer's
//! request is taken, not only that the admin API is up. Pingora binds its listeners in its own
//! service threads after the admin API listens, and tells no one; the kernel's socket tables
//! (`/proc/net/tcp`, `/proc/net/tcp6`) say which addresses are in LISTEN state. Reading them has
//! no side effect, where a probe connection would make the TLS listener log a failed handshake.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

/// LISTEN in the `st` column of `/proc/net/tcp*`.
const LISTEN: &str = "0A";

/// Remembers once every listener was seen listening: they stay bound until the process ends.
#[derive(Debug, Default)]
pub struct Readiness {
    seen: AtomicBool,
}

impl Readiness {
    /// The addresses of `wanted` that are not listening yet (empty: all accept connections).
    pub fn missing(&self, wanted: &[SocketAddr]) -> Vec<SocketAddr> {
        if self.seen.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .collect();
        if tables.is_empty() {
            // No socket table to read (no /proc): nothing can be known; do not hold health back.
            return Vec::new();
        }
        let missing = not_listening(&tables.join("\n"), wanted);
        if missing.is_empty() {
            self.seen.store(true, Ordering::Relaxed);
        }
        missing
    }
}

/// The addresses of `wanted` without a socket in LISTEN state in `tables` (the text of
/// `/proc/net/tcp` and `/proc/net/tcp6`).
fn not_listening(tables: &str, wanted: &[SocketAddr]) -> Vec<SocketAddr> {
    let listening: Vec<SocketAddr> = tables
        .lines()
        .filter_map(|line| {
            let mut columns = line.split_whitespace();
            let local = columns.nth(1)?;
            let state = columns.nth(1)?;
            (state == LISTEN).then(|| parse_local(local)).flatten()
        })
        .collect();
    wanted
        .iter()
        .filter(|want| !listening.iter().any(|l| covers(l, want)))
        .copied()
        .collect()
}

/// A listening socket takes connections for `want`: same port, and the same address or the
/// unspecified one (an IPv6 wildcard socket takes IPv4 too unless it is v6-only; counted).
fn covers(listening: &SocketAddr, want: &SocketAddr) -> bool {
    listening.port() == want.port()
        && (listening.ip() == want.ip()
            || listening.ip().is_unspecified()
            || mapped(listening.ip()) == Some(want.ip()))
}

/// The IPv4 address inside an IPv4-mapped IPv6 address.
fn mapped(ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    }
}

/// `0100007F:1F90` (IPv4: one 32-bit word in host order, here little-endian; port big-endian)
/// or 32 hex digits for IPv6 (four such words).
fn parse_local(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect::<Option<_>>()?;
    let ip = match words.as_slice() {
        [word] if ip.len() == 8 => IpAddr::from(word.to_le_bytes()),
        [a, b, c, d] if ip.len() == 32 => {
            let mut bytes = [0u8; 16];
            for (chunk, word) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::from(bytes)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 10001        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:20FB 0100007F:C350 01 00000000:00000000 00:00000000 00000000 10001        0 3 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 4 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 5 1 0000000000000000 100 0 0 10 0
";

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listening_addresses_are_read_from_the_kernels_tables() {
        let tables = format!("{TCP}\n{TCP6}");
        // 127.0.0.1:8080 listens; 0.0.0.0:80 takes any address on port 80; ::1 on 8081;
        // a v4-mapped ::ffff:127.0.0.1 on 8082.
        let wanted = [
            addr("127.0.0.1:8080"),
            addr("127.0.0.1:80"),
            addr("[::1]:8081"),
            addr("127.0.0.1:8082"),
        ];
        assert!(not_listening(&tables, &wanted).is_empty());
        // 8443 has only an established connection (state 01), not a listener.
        assert_eq!(
            not_listening(&tables, &[addr("127.0.0.1:8443"), addr("127.0.0.1:8080")]),
            vec![addr("127.0.0.1:8443")]
        );
        // Another address on a listened port is not covered.
        assert_eq!(
            not_listening(TCP, &[addr("127.0.0.2:8080")]),
            vec![addr("127.0.0.2:8080")]
        );
        assert_eq!(
            not_listening("", &[addr("127.0.0.1:8080")]),
            vec![addr("127.0.0.1:8080")]
        );
    }

    #[test]
    fn this_process_listener_is_seen_and_remembered() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let bound = listener.local_addr().unwrap();
        let ready = Readiness::default();
        assert!(ready.missing(&[bound]).is_empty());
        drop(listener);
        // Once seen, the answer stays (listeners stay bound for the life of the edge).
        assert!(ready.missing(&[bound]).is_empty());
        let fresh = Readiness::default();
        assert_eq!(fresh.missing(&[bound]), vec![bound]);
    }
}
