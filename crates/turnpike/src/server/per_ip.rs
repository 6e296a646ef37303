//! A cap on concurrent connections per source, so that one source cannot take every slot of
//! the global connection limit (issue #10: 200 trickling connections from one host refused
//! every other client).
//!
//! A source is an IPv4 address, or an IPv6 /64 ([`Source`]). Used by the STUN/TURN stream
//! listeners and by the HTTP listener alike.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::server::source::Source;

/// Counts live connections per source; shared by all the listeners of one kind.
#[derive(Debug)]
pub struct PerIpLimit {
    max: usize,
    live: Mutex<HashMap<Source, usize>>,
}

/// One connection's share of its source's cap, given back on drop.
#[derive(Debug)]
pub struct PerIpPermit {
    limit: Arc<PerIpLimit>,
    source: Source,
}

impl PerIpLimit {
    /// At most `max` concurrent connections per source.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerIpLimit {
            max,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// A permit for one more connection from `ip`, or `None` when its source is at the cap.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpPermit> {
        let source = Source::from(ip);
        // Counting cannot be left half done: a poisoned map is still consistent.
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let count = live.entry(source).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(PerIpPermit {
            limit: self.clone(),
            source,
        })
    }

    /// Live connections from `ip`'s source.
    #[cfg(test)]
    fn live(&self, ip: IpAddr) -> usize {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.get(&Source::from(ip)).copied().unwrap_or(0)
    }
}

impl Drop for PerIpPermit {
    fn drop(&mut self) {
        let mut live = self
            .limit
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = live.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Sources come and go: the map holds only those with a live connection.
                live.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn caps_each_source_and_gives_back_on_drop() {
        let limit = PerIpLimit::new(2);
        let a = limit.try_acquire(ip("192.0.2.1")).unwrap();
        let _b = limit.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(limit.try_acquire(ip("192.0.2.1")).is_none());
        assert!(
            limit.try_acquire(ip("::ffff:192.0.2.1")).is_none(),
            "IPv4-mapped is the same source"
        );
        assert!(
            limit.try_acquire(ip("192.0.2.2")).is_some(),
            "another source"
        );
        drop(a);
        assert_eq!(limit.live(ip("192.0.2.1")), 1);
        assert!(limit.try_acquire(ip("192.0.2.1")).is_some());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_source() {
        let limit = PerIpLimit::new(1);
        let _a = limit.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(limit.try_acquire(ip("2001:db8:1:2:ffff::9")).is_none());
        assert!(limit.try_acquire(ip("2001:db8:1:3::1")).is_some());
    }

    #[test]
    fn the_map_forgets_sources_without_connections() {
        let limit = PerIpLimit::new(3);
        for n in 0..100u8 {
            drop(limit.try_acquire(IpAddr::from([198, 51, 100, n])));
        }
        let live = limit.live.lock().unwrap();
        assert!(live.is_empty(), "{} sources left", live.len());
    }
}
