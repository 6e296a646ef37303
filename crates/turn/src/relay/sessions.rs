//! Sessions: what an operator sees of the allocations (who, from where, through which relay,
//! how long, how much traffic), and ending them by hand.
//!
//! The traffic counters are plain integers in the allocation, bumped where the core relays
//! a packet (the driver's send may still fail: they count what the server relayed, not what
//! reached the other side). Bytes are payload bytes (application data), without the TURN
//! framing (ChannelData header, Data/Send indication) or UDP/IP headers.

use std::time::{Duration, Instant};

use super::addresses::RelayAddr;
use super::allocation::Allocation;
use super::events::{EndReason, TurnEvent};
use super::five_tuple::FiveTuple;
use super::server::{AllocationId, TurnServer};

/// Packets and bytes one way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets relayed.
    pub packets: u64,
    /// Payload bytes relayed.
    pub bytes: u64,
}

impl Traffic {
    /// Counts one packet of `len` payload bytes.
    pub fn count(&mut self, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
    }

    /// Adds what was counted elsewhere (the kernel fast path's counters).
    pub fn add(&mut self, other: Traffic) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}

/// An allocation's traffic each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTraffic {
    /// Client → peer (Send indications and ChannelData from the client).
    pub to_peer: Traffic,
    /// Peer → client (Data indications and ChannelData to the client).
    pub to_client: Traffic,
}

/// What an allocation keeps for its session record, beside its RFC 8656 state.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    /// The realm it was authenticated in.
    pub realm: String,
    /// When it was created.
    pub created: Instant,
    /// Its traffic so far.
    pub traffic: SessionTraffic,
}

impl SessionRecord {
    /// A record for an allocation created at `now` in `realm`.
    pub fn new(now: Instant, realm: &str) -> Self {
        SessionRecord {
            realm: realm.to_owned(),
            created: now,
            traffic: SessionTraffic::default(),
        }
    }
}

/// One relayed transport address of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayAddress {
    /// The address the relay socket is bound to.
    pub bound: RelayAddr,
    /// The address given to the client in XOR-RELAYED-ADDRESS (differs with `external-ip`).
    pub advertised: RelayAddr,
}

/// A snapshot of one allocation, for an operator (admin API, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The client's 5-tuple (client, server address, transport).
    pub five_tuple: FiveTuple,
    /// The username that created it.
    pub username: String,
    /// The realm.
    pub realm: String,
    /// Its relay addresses (one, or one per family for a dual allocation), IPv4 first.
    pub relays: Vec<RelayAddress>,
    /// Time since it was created (at its end: its duration).
    pub age: Duration,
    /// Time until it expires unless refreshed (zero once ended).
    pub remaining: Duration,
    /// Live permissions.
    pub permissions: usize,
    /// Live channel bindings.
    pub channels: usize,
    /// Traffic each way.
    pub traffic: SessionTraffic,
}

impl TurnServer {
    /// Every allocation of this core, in no particular order.
    pub fn sessions(&self, now: Instant) -> Vec<SessionInfo> {
        self.allocations
            .values()
            .map(|a| self.session_info(now, a))
            .collect()
    }

    /// Ends the allocation on `five_tuple` as if it had expired (its relay ports and quota
    /// are given back), with end reason [`EndReason::Kicked`]. False when there is none. The
    /// client learns it on its next request (437).
    pub fn kick(&mut self, now: Instant, five_tuple: &FiveTuple) -> bool {
        let Some(id) = self.allocation_id(five_tuple) else {
            return false;
        };
        self.end(now, id, EndReason::Kicked);
        true
    }

    /// Ends every allocation of `username` (see [`TurnServer::kick`]); returns how many.
    pub fn kick_user(&mut self, now: Instant, username: &str) -> usize {
        self.end_where(now, EndReason::Kicked, |a| a.username == username)
    }

    /// The server is stopping: queues the end event (reason [`EndReason::Shutdown`]) of every
    /// allocation, as it stands at `now`; returns how many. The allocations stay in place
    /// (the driver drops the core and its relay sockets next, and its final counters still
    /// see them): call it once, last.
    pub fn shutdown(&mut self, now: Instant) -> usize {
        let ended: Vec<SessionInfo> = self
            .allocations
            .values()
            .map(|a| SessionInfo {
                remaining: Duration::ZERO,
                ..self.session_info(now, a)
            })
            .collect();
        let count = ended.len();
        for session in ended {
            let reason = EndReason::Shutdown;
            self.emit(TurnEvent::AllocationEnded { session, reason });
        }
        count
    }

    fn end_where(
        &mut self,
        now: Instant,
        reason: EndReason,
        matches: impl Fn(&Allocation) -> bool,
    ) -> usize {
        let ids: Vec<AllocationId> = self
            .allocations
            .iter()
            .filter(|(_, a)| matches(a))
            .map(|(id, _)| *id)
            .collect();
        for &id in &ids {
            self.end(now, id, reason);
        }
        ids.len()
    }

    /// Removes allocation `id` and queues its end event.
    pub(super) fn end(&mut self, now: Instant, id: AllocationId, reason: EndReason) {
        let Some(allocation) = self.remove(id) else {
            return;
        };
        self.stats.allocation_ended(
            &allocation,
            now.saturating_duration_since(allocation.session.created),
        );
        let mut session = self.session_info(now, &allocation);
        session.remaining = Duration::ZERO;
        self.emit(TurnEvent::AllocationEnded { session, reason });
    }

    /// Queues the creation event of allocation `id`.
    pub(super) fn emit_created(&mut self, now: Instant, id: AllocationId) {
        if let Some(allocation) = self.allocations.get(&id) {
            let session = self.session_info(now, allocation);
            self.emit(TurnEvent::AllocationCreated(session));
        }
    }

    fn session_info(&self, now: Instant, allocation: &Allocation) -> SessionInfo {
        SessionInfo {
            five_tuple: allocation.five_tuple,
            username: allocation.username.clone(),
            realm: allocation.session.realm.clone(),
            relays: allocation
                .relays
                .iter()
                .map(|bound| RelayAddress {
                    bound,
                    advertised: RelayAddr::new(self.advertised(bound.get())),
                })
                .collect(),
            age: now.saturating_duration_since(allocation.session.created),
            remaining: allocation.expires.saturating_duration_since(now),
            permissions: allocation.permission_count(now),
            channels: allocation.live_channel_count(now),
            traffic: allocation.session.traffic,
        }
    }
}
