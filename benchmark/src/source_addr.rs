//! Source addresses for client sockets. One local address has ~28k ephemeral ports
//! (32768..60999), and the harness binds before connecting, which reserves a port per
//! address rather than per destination; rotating over 127.0.0.1..127.0.0.N multiplies
//! that, so runs past 28k connections fit on loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Round-robin over a few loopback source addresses (or none, for a non-loopback target).
pub struct SourceAddrs {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl SourceAddrs {
    /// `count` addresses 127.0.0.1..=127.0.0.count when `target` is IPv4 loopback;
    /// otherwise the kernel chooses.
    pub fn new(target: IpAddr, count: usize) -> Self {
        let addrs = match target {
            IpAddr::V4(v4) if v4.is_loopback() && count > 0 => (1..=count.min(254))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    /// The next source address to bind, if any.
    pub fn next(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.addrs.get(i % self.addrs.len()).copied()
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_on_loopback_only() {
        let lo = SourceAddrs::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3);
        let got: Vec<_> = (0..4).filter_map(|_| lo.next()).collect();
        assert_eq!(got[0], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(got[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(got[3], got[0]);
        let remote = SourceAddrs::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 3);
        assert_eq!(remote.next(), None);
    }
}
