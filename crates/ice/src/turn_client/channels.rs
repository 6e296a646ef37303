//! Channel bindings (RFC 8656 §12): peer ↔ channel number, bounded, numbers never reused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::lease::Lease;

/// RFC 8656 §12: "a channel binding lasts for 10 minutes unless refreshed".
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 8656 §12: channel numbers 0x4000 through 0x4FFF; 0x5000–0x7FFF are reserved.
pub const FIRST_CHANNEL: u16 = 0x4000;
/// The last valid channel number.
pub const LAST_CHANNEL: u16 = 0x4FFF;

/// One binding: its number and its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Channel {
    /// The channel number.
    pub(super) number: u16,
    /// Its lease.
    pub(super) lease: Lease,
}

/// Channels by peer, at most `limit` of them.
///
/// Numbers are handed out in order and never given to another peer: RFC 8656 §12 forbids
/// rebinding a number to another peer until 5 minutes after the binding expired, and the
/// simplest way to honour that is never to rebind. 4096 numbers outlast any session that
/// stays under the limit.
#[derive(Debug, Clone)]
pub(super) struct Channels {
    by_peer: BTreeMap<SocketAddr, Channel>,
    by_number: BTreeMap<u16, SocketAddr>,
    next: Option<u16>,
    limit: usize,
}

impl Channels {
    /// An empty table for at most `limit` peers.
    pub(super) fn new(limit: usize) -> Channels {
        Channels {
            by_peer: BTreeMap::new(),
            by_number: BTreeMap::new(),
            next: Some(FIRST_CHANNEL),
            limit,
        }
    }

    /// The binding for `peer`, if any.
    pub(super) fn get(&self, peer: SocketAddr) -> Option<&Channel> {
        self.by_peer.get(&peer)
    }

    /// The binding for `peer`, to change.
    pub(super) fn get_mut(&mut self, peer: SocketAddr) -> Option<&mut Channel> {
        self.by_peer.get_mut(&peer)
    }

    /// The peer bound (or being bound) to `number`.
    pub(super) fn peer_of(&self, number: u16) -> Option<SocketAddr> {
        self.by_number.get(&number).copied()
    }

    /// Gives `peer` the next free number, wanted from `now`. `None` when the table is full or
    /// the numbers are used up.
    pub(super) fn assign(&mut self, now: Instant, peer: SocketAddr) -> Option<u16> {
        if self.by_peer.len() >= self.limit || self.by_peer.contains_key(&peer) {
            return None;
        }
        let number = self.next?;
        self.next = number.checked_add(1).filter(|n| *n <= LAST_CHANNEL);
        self.by_peer.insert(
            peer,
            Channel {
                number,
                lease: Lease::wanted(now),
            },
        );
        self.by_number.insert(number, peer);
        Some(number)
    }

    /// Drops `peer`'s binding; its number stays used.
    pub(super) fn remove(&mut self, peer: SocketAddr) {
        if let Some(channel) = self.by_peer.remove(&peer) {
            self.by_number.remove(&channel.number);
        }
    }

    /// Every binding, in peer order.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (&SocketAddr, &mut Channel)> {
        self.by_peer.iter_mut()
    }

    /// The earliest renewal due.
    pub(super) fn next_renewal(&self) -> Option<Instant> {
        self.by_peer
            .values()
            .filter_map(|c| c.lease.renew_at())
            .min()
    }

    /// Forgets them all (numbers stay used).
    pub(super) fn clear(&mut self) {
        self.by_peer.clear();
        self.by_number.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8656 §12: numbers in 0x4000–0x4FFF, one per peer, bounded table.
    #[test]
    fn numbers_in_range_and_bounded() {
        let now = Instant::now();
        let mut channels = Channels::new(2);
        let a: SocketAddr = "203.0.113.1:1".parse().unwrap();
        let b: SocketAddr = "203.0.113.2:1".parse().unwrap();
        let c: SocketAddr = "203.0.113.3:1".parse().unwrap();
        assert_eq!(channels.assign(now, a), Some(0x4000));
        assert_eq!(channels.assign(now, a), None);
        assert_eq!(channels.assign(now, b), Some(0x4001));
        assert_eq!(channels.assign(now, c), None, "limit 2");
        channels.remove(a);
        assert_eq!(channels.peer_of(0x4000), None);
        assert_eq!(
            channels.assign(now, c),
            Some(0x4002),
            "0x4000 is not reused"
        );
    }

    #[test]
    fn numbers_run_out_at_0x4fff() {
        let now = Instant::now();
        let mut channels = Channels::new(usize::MAX);
        let mut last = 0;
        for i in 0..0x1000u32 {
            let peer = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1));
            last = channels.assign(now, peer).unwrap();
        }
        assert_eq!(last, LAST_CHANNEL);
        assert_eq!(channels.assign(now, "10.1.0.0:1".parse().unwrap()), None);
    }
}
