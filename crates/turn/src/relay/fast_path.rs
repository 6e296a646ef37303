//! Which channels a driver may relay without the core: the kernel fast path (XDP).
//!
//! A driver with a fast path relays ChannelData of a bound channel below the core, in both
//! directions. It may do so only while the core would relay the same datagram itself, so an
//! entry is *eligible* only when all of these hold:
//! - the channel is bound and live (RFC 8656 §12: 600 s unless refreshed),
//! - the permission for the peer's IP is live (RFC 8656 §9: 300 s unless refreshed),
//! - the peer policy allows the peer's transport address (it can change on reload),
//! - the client talks plain UDP (DTLS and TCP/TLS frame data in the driver),
//! - the allocation has no bandwidth cap (the cap is enforced in the core, per packet),
//! - the peer is not one of our own relays (those go through address translation here),
//! - the server and relay addresses are concrete (the kernel writes them into packets).
//!
//! The core remembers what it has told the driver. Whenever eligibility may have changed — a
//! ChannelBind, a CreatePermission, a channel's or permission's expiry, a reload, the end of
//! an allocation — it marks the channels concerned, and [`TurnServer::poll_fast_path`]
//! re-decides each and hands out the differences, once each. The marks are a set with at most
//! one entry per channel: they cannot grow with traffic, and, unlike [`super::events`], are
//! never dropped, because a lost removal would leave the kernel relaying for a channel whose
//! permission has expired.
//!
//! Traffic the fast path relays never reaches the core; the driver reads the program's
//! per-channel counters back and reports them with [`TurnServer::fast_path_traffic`], so that
//! session records and counters stay whole.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use stun::attributes::ChannelNumber;

use super::addresses::{ClientAddr, PeerAddr, RelayAddr};
use super::five_tuple::{ClientTransport, FiveTuple};
use super::server::{AllocationId, TurnServer};
use super::sessions::Traffic;
use super::stats::Direction;
use super::RelayTransport;

/// A channel the fast path relays: everything the kernel needs to rewrite a datagram either
/// way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FastChannel {
    /// The allocation the channel belongs to (to report its traffic back).
    pub allocation: AllocationId,
    /// The client's transport address (source of its ChannelData).
    pub client: ClientAddr,
    /// The server address the client sends to, and the source of ChannelData to it.
    pub server: SocketAddr,
    /// The channel number.
    pub number: ChannelNumber,
    /// The relay socket's bound address: the source of datagrams to the peer.
    pub relay: RelayAddr,
    /// The peer's transport address.
    pub peer: PeerAddr,
}

/// A difference between what the driver relays and what the core allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastPathChange {
    /// Start relaying this channel below the core.
    Install(FastChannel),
    /// Stop relaying it (its channel or permission expired, the policy changed, the
    /// allocation ended); read its counters one last time.
    Remove(FastChannel),
}

/// Key of a channel in the table.
type Key = (AllocationId, ChannelNumber);

/// What the core has told the driver, and what it must look at again.
#[derive(Debug, Default)]
pub(super) struct FastPathTable {
    /// Installed channels, and until when each stays eligible without a new request.
    installed: BTreeMap<Key, (FastChannel, Instant)>,
    /// The same deadlines, in order.
    deadlines: BTreeSet<(Instant, Key)>,
    /// Channels whose eligibility may have changed.
    dirty: BTreeSet<Key>,
}

impl FastPathTable {
    /// The earliest instant an installed channel stops being eligible.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Channels currently installed.
    pub(super) fn len(&self) -> usize {
        self.installed.len()
    }
}

impl TurnServer {
    /// Marks every channel of allocation `id` (bound ones and installed ones) for a new
    /// decision. A no-op without a fast path.
    pub(super) fn fast_path_touch(&mut self, id: AllocationId) {
        if !self.config.fast_path {
            return;
        }
        let table = &mut self.fast_path;
        if let Some(allocation) = self.allocations.get(&id) {
            table
                .dirty
                .extend(allocation.channel_numbers().map(|n| (id, n)));
        }
        let first = (id, ChannelNumber(0));
        let installed = table
            .installed
            .range(first..)
            .take_while(|(k, _)| k.0 == id);
        let keys: Vec<Key> = installed.map(|(k, _)| *k).collect();
        table.dirty.extend(keys);
    }

    /// Marks every installed channel (after a reload: the policy may forbid some peers now).
    pub(super) fn fast_path_touch_all(&mut self) {
        let table = &mut self.fast_path;
        let keys: Vec<Key> = table.installed.keys().copied().collect();
        table.dirty.extend(keys);
    }

    /// Marks the channels whose eligibility ran out by `now`.
    pub(super) fn fast_path_expire(&mut self, now: Instant) {
        let table = &mut self.fast_path;
        while let Some(&(deadline, key)) = table.deadlines.first() {
            if deadline > now {
                break;
            }
            table.deadlines.pop_first();
            table.dirty.insert(key);
        }
    }

    /// The next difference between what the driver relays below the core and what the core
    /// allows at `now`, or `None` when they agree. Call after every input (`handle_client`,
    /// `handle_timeout`, `reconfigure`, `kick`, …) until it returns `None`.
    pub fn poll_fast_path(&mut self, now: Instant) -> Option<FastPathChange> {
        while let Some(key) = self.fast_path.dirty.pop_first() {
            let wanted = self.eligible(now, key);
            let table = &mut self.fast_path;
            let had = table.installed.get(&key).copied();
            match (had, wanted) {
                (None, None) => {}
                (None, Some((channel, until))) => {
                    table.installed.insert(key, (channel, until));
                    table.deadlines.insert((until, key));
                    return Some(FastPathChange::Install(channel));
                }
                (Some((old, old_until)), wanted) => {
                    table.deadlines.remove(&(old_until, key));
                    match wanted {
                        Some((channel, until)) if channel == old => {
                            table.installed.insert(key, (channel, until));
                            table.deadlines.insert((until, key));
                        }
                        Some(_) => {
                            // Cannot happen while RFC 8656 §12.2's rebinding rules hold, but
                            // if the entry changed, take the old one out first and decide
                            // again on the next call.
                            table.installed.remove(&key);
                            table.dirty.insert(key);
                            return Some(FastPathChange::Remove(old));
                        }
                        None => {
                            table.installed.remove(&key);
                            return Some(FastPathChange::Remove(old));
                        }
                    }
                }
            }
        }
        None
    }

    /// Channels the fast path relays now.
    pub fn fast_path_channels(&self) -> usize {
        self.fast_path.len()
    }

    /// Whether the fast path may relay channel `key` at `now`, and until when (the earlier of
    /// the channel's and the permission's expiry).
    fn eligible(&self, now: Instant, (id, number): Key) -> Option<(FastChannel, Instant)> {
        let allocation = self.allocations.get(&id)?;
        let five_tuple = allocation.five_tuple;
        if five_tuple.transport != ClientTransport::Udp
            || allocation.transport != RelayTransport::Udp
            || allocation.has_bandwidth_cap()
            || five_tuple.server.ip().is_unspecified()
        {
            return None;
        }
        let channel = allocation.channel(number).filter(|c| c.expires > now)?;
        let peer = channel.peer;
        let permission = allocation
            .permission_expiry(peer.ip())
            .filter(|e| *e > now)?;
        let relay = allocation.relays.for_peer(peer.ip())?;
        let own_relay = self.bound_address(peer) != peer || self.shared.is_relay(peer);
        if own_relay || relay.ip().is_unspecified() || !self.peer_endpoint_allowed(peer) {
            return None;
        }
        let until = channel.expires.min(permission);
        let fast = FastChannel {
            allocation: id,
            client: five_tuple.client,
            server: five_tuple.server,
            number,
            relay,
            peer,
        };
        Some((fast, until))
    }

    /// Traffic the fast path relayed on `channel` since the last report: added to its
    /// allocation's session record and to the relay counters, as if the core had relayed it.
    /// When the allocation has just ended (the driver reads a channel's last counters as it
    /// removes it, after the core queued the end event), the queued end event gets it, so that
    /// the session log is whole; once that event is drained, only the counters get it.
    pub fn fast_path_traffic(
        &mut self,
        channel: &FastChannel,
        to_peer: Traffic,
        to_client: Traffic,
    ) {
        let five_tuple = FiveTuple {
            client: channel.client,
            server: channel.server,
            transport: ClientTransport::Udp,
        };
        let traffic = match self.allocations.get_mut(&channel.allocation) {
            Some(allocation) => Some(&mut allocation.session.traffic),
            None => self.events.ended_mut(&five_tuple).map(|s| &mut s.traffic),
        };
        if let Some(traffic) = traffic {
            traffic.to_peer.add(to_peer);
            traffic.to_client.add(to_client);
        }
        let transport = ClientTransport::Udp;
        self.stats
            .relayed_many(Direction::ToPeer, transport, to_peer);
        self.stats
            .relayed_many(Direction::ToClient, transport, to_client);
    }
}
