//! One allocation's state (RFC 8656 §2.2): relayed addresses, lifetime, permissions and
//! channel bindings, each with its own expiry, checked against the injected clock.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use stun::attributes::ChannelNumber;

use stun::TransactionId;

use super::addresses::{PeerAddr, RelayAddr};
use super::bandwidth::TokenBucket;
use super::five_tuple::FiveTuple;
use super::sessions::SessionRecord;
use super::tcp_connections::TcpConnections;

/// Permission lifetime: RFC 8656 §9 says it MUST be 300 seconds.
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// Channel binding lifetime (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// After a channel binding expires, neither its number nor its peer may be bound to anything
/// else for 5 minutes (RFC 8656 §12: the client waits that long; the server enforces it so
/// that late packets never reach the wrong peer).
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(300);

/// How long what a client installs lasts: the server's configuration, RFC 8656's fixed
/// values by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// A permission's (RFC 8656 §9).
    pub permission: Duration,
    /// A channel binding's (RFC 8656 §12).
    pub channel: Duration,
}

/// A channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel {
    /// The peer transport address.
    pub peer: PeerAddr,
    /// When the binding expires unless refreshed.
    pub expires: Instant,
}

/// The relayed transport addresses of an allocation: one, or one per family for a dual
/// allocation (RFC 8656 §7.2 step 9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relays {
    /// The IPv4 relay, as bound.
    pub v4: Option<RelayAddr>,
    /// The IPv6 relay, as bound.
    pub v6: Option<RelayAddr>,
}

impl Relays {
    /// The relay of `peer`'s family: data to and from a peer uses it.
    pub fn for_peer(&self, peer: IpAddr) -> Option<RelayAddr> {
        if peer.is_ipv4() {
            self.v4
        } else {
            self.v6
        }
    }

    /// Both, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = RelayAddr> {
        self.v4.into_iter().chain(self.v6)
    }
}

/// What an allocation relays to its peers: UDP datagrams (RFC 8656) or TCP connections
/// (RFC 6062, REQUESTED-TRANSPORT 6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayTransport {
    /// A UDP relay socket per relayed address.
    #[default]
    Udp,
    /// A TCP listening socket per relayed address, and peer data connections.
    Tcp,
}

/// Why a channel cannot be bound (RFC 8656 §12.2: each is a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelConflict {
    /// The number is (or was, within the cool-down) bound to another peer.
    NumberTaken,
    /// The peer is (or was, within the cool-down) bound to another number.
    PeerTaken,
}

/// One allocation.
#[derive(Debug)]
pub struct Allocation {
    /// Its 5-tuple.
    pub five_tuple: FiveTuple,
    /// The username that created it: later requests must use the same (RFC 8656 §5, 441).
    pub username: String,
    /// Relayed transport addresses, as bound.
    pub relays: Relays,
    /// Expiry of the allocation itself.
    pub expires: Instant,
    /// The Allocate transaction that created it, to answer its retransmissions again
    /// (RFC 8656 §7.2, the "stateless stack approach" note).
    pub created_by: TransactionId,
    /// A RESERVATION-TOKEN returned by the creating Allocate, for those retransmissions.
    pub reservation_token: Option<stun::attributes::ReservationToken>,
    /// ADDRESS-ERROR-CODE of a partly served dual allocation, for those retransmissions.
    pub address_error: Option<(u8, u16)>,
    permissions: BTreeMap<IpAddr, Instant>,
    channels: BTreeMap<ChannelNumber, Channel>,
    channel_of_peer: HashMap<PeerAddr, ChannelNumber>,
    bandwidth: Option<TokenBucket>,
    /// UDP or TCP relaying.
    pub transport: RelayTransport,
    /// The peer data connections of a TCP allocation (RFC 6062).
    pub tcp: TcpConnections,
    /// Realm, creation time and traffic, for the operator (sessions API and logs).
    pub session: SessionRecord,
}

impl Allocation {
    /// A fresh allocation with no permissions or channels.
    pub fn new(
        five_tuple: FiveTuple,
        username: String,
        relays: Relays,
        expires: Instant,
        created_by: TransactionId,
        bandwidth: Option<TokenBucket>,
        session: SessionRecord,
    ) -> Self {
        Allocation {
            five_tuple,
            username,
            relays,
            expires,
            created_by,
            reservation_token: None,
            address_error: None,
            permissions: BTreeMap::new(),
            channels: BTreeMap::new(),
            channel_of_peer: HashMap::new(),
            bandwidth,
            transport: RelayTransport::Udp,
            tcp: TcpConnections::default(),
            session,
        }
    }

    /// True when a live permission covers `ip` (RFC 8656 §9: ports are not compared).
    pub fn permits(&self, now: Instant, ip: IpAddr) -> bool {
        self.permissions
            .get(&ip)
            .is_some_and(|expires| *expires > now)
    }

    /// Permissions held, expired ones included until the timer purges them (at their expiry:
    /// they are the allocation's deadlines): a count without a walk, for metrics.
    pub fn permissions_held(&self) -> usize {
        self.permissions.len()
    }

    /// Live permissions.
    pub fn permission_count(&self, now: Instant) -> usize {
        self.permissions.values().filter(|e| **e > now).count()
    }

    /// True when installing permissions for `ips` stays within `max` live permissions.
    pub fn has_room_for(
        &self,
        now: Instant,
        ips: impl Iterator<Item = IpAddr>,
        max: usize,
    ) -> bool {
        let new = ips.filter(|ip| !self.permits(now, *ip)).count();
        self.permission_count(now) + new <= max
    }

    /// Installs or refreshes the permission for `ip` for `lifetime` (RFC 8656 §9: 300 s).
    pub fn permit(&mut self, now: Instant, ip: IpAddr, lifetime: Duration) {
        self.permissions.insert(ip, now + lifetime);
    }

    /// The live channel bound to `number`, as the client → peer path needs it.
    pub fn channel_peer(&self, now: Instant, number: ChannelNumber) -> Option<PeerAddr> {
        self.channels
            .get(&number)
            .filter(|c| c.expires > now)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`, as the peer → client path needs it.
    pub fn peer_channel(&self, now: Instant, peer: PeerAddr) -> Option<ChannelNumber> {
        let number = *self.channel_of_peer.get(&peer)?;
        self.channels
            .get(&number)
            .filter(|c| c.expires > now)
            .map(|_| number)
    }

    /// Checks the RFC 8656 §12.2 rebinding rules for `number` ↔ `peer`, counting bindings in
    /// their cool-down as still bound.
    pub fn check_channel(
        &self,
        now: Instant,
        number: ChannelNumber,
        peer: PeerAddr,
    ) -> Result<(), ChannelConflict> {
        let cooling = |c: &Channel| c.expires + CHANNEL_COOLDOWN > now;
        if let Some(c) = self.channels.get(&number).filter(|c| cooling(c)) {
            if c.peer != peer {
                return Err(ChannelConflict::NumberTaken);
            }
        }
        if let Some(&other) = self.channel_of_peer.get(&peer) {
            let live = self.channels.get(&other).is_some_and(cooling);
            if live && other != number {
                return Err(ChannelConflict::PeerTaken);
            }
        }
        Ok(())
    }

    /// Live channel bindings (not those cooling down).
    pub fn live_channel_count(&self, now: Instant) -> usize {
        self.channels.values().filter(|c| c.expires > now).count()
    }

    /// Channels that are bound or cooling down.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// True when binding `number` would add a channel rather than refresh one.
    pub fn is_new_channel(&self, number: ChannelNumber) -> bool {
        !self.channels.contains_key(&number)
    }

    /// Creates or refreshes the binding for `lifetimes.channel` (RFC 8656 §12: 600 s), and
    /// the permission for the peer's IP for `lifetimes.permission` (§12.2).
    pub fn bind_channel(
        &mut self,
        now: Instant,
        number: ChannelNumber,
        peer: PeerAddr,
        lifetimes: Lifetimes,
    ) {
        self.channels.insert(
            number,
            Channel {
                peer,
                expires: now + lifetimes.channel,
            },
        );
        self.channel_of_peer.insert(peer, number);
        self.permit(now, peer.ip(), lifetimes.permission);
    }

    /// Numbers of the channels bound or cooling down.
    pub fn channel_numbers(&self) -> impl Iterator<Item = ChannelNumber> + '_ {
        self.channels.keys().copied()
    }

    /// The binding of `number` (live or cooling down).
    pub fn channel(&self, number: ChannelNumber) -> Option<Channel> {
        self.channels.get(&number).copied()
    }

    /// When the permission for `ip` expires (or expired, until the timer purges it).
    pub fn permission_expiry(&self, ip: IpAddr) -> Option<Instant> {
        self.permissions.get(&ip).copied()
    }

    /// True when the allocation has a bandwidth cap (enforced per packet in the core).
    pub fn has_bandwidth_cap(&self) -> bool {
        self.bandwidth.is_some()
    }

    /// Takes `bytes` from the bandwidth budget; false means over the cap.
    pub fn spend(&mut self, now: Instant, bytes: usize) -> bool {
        self.bandwidth.as_mut().is_none_or(|b| b.take(now, bytes))
    }

    /// Removes expired permissions and channels whose cool-down is over.
    pub fn purge(&mut self, now: Instant) {
        self.permissions.retain(|_, expires| *expires > now);
        let over: Vec<ChannelNumber> = self
            .channels
            .iter()
            .filter(|(_, c)| c.expires + CHANNEL_COOLDOWN <= now)
            .map(|(n, _)| *n)
            .collect();
        for number in over {
            if let Some(c) = self.channels.remove(&number) {
                if self.channel_of_peer.get(&c.peer) == Some(&number) {
                    self.channel_of_peer.remove(&c.peer);
                }
            }
        }
    }

    /// The next instant at which something in this allocation expires or must be purged.
    pub fn next_deadline(&self) -> Instant {
        let permissions = self.permissions.values().copied();
        let channels = self.channels.values().map(|c| c.expires + CHANNEL_COOLDOWN);
        permissions
            .chain(channels)
            .chain(self.tcp.next_deadline())
            .fold(self.expires, Instant::min)
    }
}
