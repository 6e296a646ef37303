//! The permissions the client keeps installed (RFC 8656 §9): one per peer IP, bounded.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::lease::Lease;

/// RFC 8656 §9: "The Permission Lifetime MUST be 300 seconds (= 5 minutes)."
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);

/// One permission: the peer address it was asked for (only the IP counts) and its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Permission {
    /// The peer the CreatePermission names.
    pub(super) peer: SocketAddr,
    /// Its lease.
    pub(super) lease: Lease,
}

/// Permissions by peer IP, at most `limit` of them (memory stays bounded whatever peers
/// the caller names).
#[derive(Debug, Clone)]
pub(super) struct Permissions {
    by_ip: BTreeMap<IpAddr, Permission>,
    limit: usize,
}

impl Permissions {
    /// An empty table for at most `limit` peer IPs.
    pub(super) fn new(limit: usize) -> Permissions {
        Permissions {
            by_ip: BTreeMap::new(),
            limit,
        }
    }

    /// The permission for `ip`, if tracked.
    pub(super) fn get(&self, ip: IpAddr) -> Option<&Permission> {
        self.by_ip.get(&ip)
    }

    /// The permission for `ip`, to change.
    pub(super) fn get_mut(&mut self, ip: IpAddr) -> Option<&mut Permission> {
        self.by_ip.get_mut(&ip)
    }

    /// Starts tracking `peer`'s IP with `lease`. False when the table is full (or the IP is
    /// tracked already, which callers check first).
    pub(super) fn insert(&mut self, peer: SocketAddr, lease: Lease) -> bool {
        if self.by_ip.len() >= self.limit || self.by_ip.contains_key(&peer.ip()) {
            return false;
        }
        self.by_ip.insert(peer.ip(), Permission { peer, lease });
        true
    }

    /// Stops tracking `ip`.
    pub(super) fn remove(&mut self, ip: IpAddr) {
        self.by_ip.remove(&ip);
    }

    /// Every permission, in IP order.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Permission> {
        self.by_ip.values_mut()
    }

    /// The earliest renewal due.
    pub(super) fn next_renewal(&self) -> Option<Instant> {
        self.by_ip.values().filter_map(|p| p.lease.renew_at()).min()
    }

    /// Forgets them all.
    pub(super) fn clear(&mut self) {
        self.by_ip.clear();
    }
}
