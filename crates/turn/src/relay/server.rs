//! The TURN server core (RFC 8656): one state machine for every client and allocation.
//!
//! ## Run loop
//! - A packet from a client: [`TurnServer::handle_client`] with its 5-tuple. The outcome is a
//!   reply to send back, a payload to relay from an allocation's relay socket to a peer, or
//!   nothing.
//! - A datagram on a relay socket: read it into `buf[PEER_HEADROOM..]`, call
//!   [`TurnServer::handle_peer`]; it writes the ChannelData header or the Data indication
//!   around the payload in place and says which client to send `buf[range]` to.
//! - Timers: call [`TurnServer::handle_timeout`] at [`TurnServer::poll_timeout`].
//! - TCP allocations (RFC 6062): the driver reports connections with
//!   [`TurnServer::tcp_connect_result`], [`TurnServer::tcp_peer_accepted`] and
//!   [`TurnServer::tcp_connection_closed`], and sends what
//!   [`TurnServer::poll_control_message`] gives to control connections (see `tcp.rs`).
//!
//! - Relay sockets: the core never calls into I/O. It asks for them through its output:
//!   drain [`TurnServer::poll_command`] after every call and execute each
//!   [`super::RelayCommand`]; answer an `Open` with [`TurnServer::relay_opened`], whose
//!   outcome is the answer to the Allocate that waited for it (see [`super::pending_open`]).
//!
//! Time (`Instant` for lifetimes, Unix seconds for credentials) and randomness (ports,
//! tokens, transaction ids) are injected.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use stun::{Class, Message, MessageType, Method};

use super::addresses::{PeerAddr, RelayAddr};
use super::allocate::AllocateAnswer;
use super::allocation::Allocation;
use super::commands::{OpenTicket, RelayCommand};
use super::config::TurnConfig;
use super::events::{EndReason, EventQueue};
use super::five_tuple::FiveTuple;
use super::pending_open::PendingAllocate;
use super::ports::PortPool;
use super::respond::{respond, respond_error};
use super::shared_state::SharedState;
use super::stats::{DropCause, TurnStats};
use crate::auth::{AuthStats, Authenticated, Authenticator};
use crate::policy::{ipv4_destinations, PeerPolicy, PeerVerdict};
use crate::sockets::{SocketId, Transmit};

/// Bytes a caller leaves before a peer's payload in the buffer given to
/// [`TurnServer::handle_peer`]: room for the largest Data indication prefix (20-byte header,
/// XOR-PEER-ADDRESS for IPv6, DATA attribute header). Three more bytes must follow the
/// payload for padding.
pub const PEER_HEADROOM: usize = 20 + 24 + 4;

/// An allocation's handle inside the server: opaque to drivers, which only hand it back
/// (see [`super::fast_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllocationId(pub(super) u64);

/// What to do with a packet from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutcome {
    /// Nothing to send.
    Nothing,
    /// Send `out[..len]` back, from the socket it names.
    Reply(Transmit),
    /// Send `packet[payload]` from the relay socket bound to `relay` to `peer`.
    Relay {
        /// The allocation's relay socket address (as bound).
        relay: RelayAddr,
        /// The peer.
        peer: PeerAddr,
        /// The payload, as a range of the packet given to `handle_client`.
        payload: Range<usize>,
        /// Send with the DF bit set (a Send indication's DONT-FRAGMENT, RFC 8656 §14).
        dont_fragment: bool,
    },
    /// Send the reply (a ConnectionBind success, RFC 6062 §5.4), then make this TCP/TLS
    /// connection the client data connection of peer data connection `connection`: from
    /// then on its bytes are relayed as they are, both ways, and no longer read as STUN.
    ConnectionBound {
        /// The success response.
        reply: Transmit,
        /// The peer data connection to splice with.
        connection: super::tcp_connections::ConnectionId,
    },
}

/// Where to send a peer's datagram after [`TurnServer::handle_peer`] framed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOutcome {
    /// The allocation's 5-tuple: the client, and the server address to send from.
    pub to: FiveTuple,
    /// The bytes to send, as a range of the buffer given to `handle_peer`.
    pub data: Range<usize>,
}

/// The TURN server core.
pub struct TurnServer {
    pub(super) config: TurnConfig,
    pub(super) auth: Authenticator,
    pub(super) policy: PeerPolicy,
    pub(super) allocations: HashMap<AllocationId, Allocation>,
    pub(super) by_five_tuple: HashMap<FiveTuple, AllocationId>,
    pub(super) by_relay: HashMap<RelayAddr, AllocationId>,
    /// Relay addresses taken and quota counts, shared with the cores of other workers.
    pub(super) shared: Arc<SharedState>,
    /// (deadline, allocation): the allocation needs attention at that instant.
    timers: BTreeSet<(Instant, AllocationId)>,
    deadlines: HashMap<AllocationId, Instant>,
    pub(super) ports: PortPool,
    pub(super) rng: Box<dyn RngCore + Send>,
    next_id: AllocationId,
    /// Turn of the relay address the next allocation tries first (several relay addresses).
    pub(super) next_relay_ip: usize,
    pub(super) stats: TurnStats,
    /// Refusing new allocations (see [`super::drain`]).
    pub(super) draining: bool,
    /// Where a client goes when this server will not take its Allocate (see
    /// [`super::alternate`]).
    pub(super) alternates: super::alternate::Alternates,
    /// The name TLS and DTLS clients check the alternate's certificate with
    /// (ALTERNATE-DOMAIN, see [`super::alternate`]).
    pub(super) tls_alternate_domain: Option<super::domain_name::DomainName>,
    /// Events for the driver (see [`super::events`]).
    pub(super) events: EventQueue,
    /// The allocation of each peer data connection (RFC 6062).
    pub(super) tcp_owner: HashMap<super::tcp_connections::ConnectionId, AllocationId>,
    /// Messages for control connections (see [`super::tcp`]).
    pub(super) control: VecDeque<super::tcp::ControlMessage>,
    /// What the kernel fast path relays (see [`super::fast_path`]).
    pub(super) fast_path: super::fast_path::FastPathTable,
    /// Commands for the I/O layer (see [`super::commands`]).
    pub(super) commands: VecDeque<RelayCommand>,
    /// Allocates waiting for a relay socket, by the ticket of their `Open`.
    pub(super) pending_opens: BTreeMap<OpenTicket, PendingAllocate>,
    /// The ticket of the next `Open`.
    pub(super) next_ticket: u64,
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish()
    }
}

impl TurnServer {
    /// A server with no allocations, alone (nothing shared with other cores).
    pub fn new(
        config: TurnConfig,
        auth: Authenticator,
        policy: PeerPolicy,
        rng: Box<dyn RngCore + Send>,
    ) -> Self {
        let shared = Arc::new(SharedState::new(
            &config.relay_ips(),
            config.port_range.clone(),
        ));
        Self::with_shared_state(config, auth, policy, rng, shared)
    }

    /// A server with no allocations, one of several (one per worker) that share `shared`:
    /// relay ports, quotas and the relay↔relay rule then hold across all of them. `shared`
    /// must have been made for this `config`'s relay IPs and port range.
    pub fn with_shared_state(
        config: TurnConfig,
        auth: Authenticator,
        policy: PeerPolicy,
        rng: Box<dyn RngCore + Send>,
        shared: Arc<SharedState>,
    ) -> Self {
        let ports = PortPool::new(config.port_range.clone());
        TurnServer {
            config,
            auth,
            policy,
            allocations: HashMap::new(),
            by_five_tuple: HashMap::new(),
            by_relay: HashMap::new(),
            shared,
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
            ports,
            rng,
            next_id: AllocationId(1),
            next_relay_ip: 0,
            stats: TurnStats::default(),
            draining: false,
            alternates: Default::default(),
            tls_alternate_domain: None,
            events: EventQueue::default(),
            tcp_owner: HashMap::new(),
            control: VecDeque::new(),
            fast_path: Default::default(),
            commands: VecDeque::new(),
            pending_opens: BTreeMap::new(),
            next_ticket: 1,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// What this core shares with the cores of other workers.
    pub fn shared_state(&self) -> &Arc<SharedState> {
        &self.shared
    }

    /// The authenticator's counters (401/438/400 answers, failures, drops).
    pub fn auth_stats(&self) -> AuthStats {
        self.auth.stats()
    }

    /// Sources in the failed-authentication table shared by every worker.
    pub fn tracked_sources(&self) -> usize {
        self.auth.tracked_sources()
    }

    /// Counters, with the permission and channel gauges (a walk over the allocations, one
    /// step each: for a scrape, not for the data path). A permission that expired is counted
    /// until the timer purges it, at the next `handle_timeout`.
    pub fn stats(&self) -> TurnStats {
        let live = self.allocations.values();
        TurnStats {
            permissions: live.clone().map(|a| a.permissions_held() as u64).sum(),
            channels: live.map(|a| a.channel_count() as u64).sum(),
            peer_connections: self.tcp_owner.len() as u64,
            ..self.stats
        }
    }

    /// Handles one packet from a client (a TURN request, a Send indication or a ChannelData
    /// message) that arrived on the listener socket `local` with 5-tuple `five_tuple`.
    /// Binding requests are not for this core: the I/O layer gives them to the stateless
    /// [`crate::BindingServer`] (see [`is_binding_request`]), which needs no lock.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_client(
        &mut self,
        now: Instant,
        unix_now: u64,
        five_tuple: FiveTuple,
        local: SocketId,
        packet: &[u8],
        out: &mut [u8],
    ) -> ClientOutcome {
        match packet.first().map(|b| b >> 6) {
            Some(0b01) if self.config.enabled => {
                return self.channel_data_from_client(now, five_tuple, packet)
            }
            Some(0b01) => return self.drop_client_packet(DropCause::Unsupported),
            Some(0b00) => {}
            _ => return self.drop_client_packet(DropCause::Malformed),
        }
        let Ok(message) = Message::decode(packet) else {
            return self.drop_client_packet(DropCause::Malformed);
        };
        let message_type = message.header().message_type;
        if !self.config.enabled {
            return self.drop_client_packet(DropCause::Unsupported);
        }
        if message_type == MessageType::new(Method::SEND, Class::Indication) {
            return self.send_indication(now, five_tuple, &message);
        }
        if message_type.class != Class::Request || message.header().is_rfc3489() {
            // RFC 8489 §6.3: indications and responses we do not handle are discarded.
            return self.drop_client_packet(DropCause::Unsupported);
        }
        let known = [
            Method::ALLOCATE,
            Method::REFRESH,
            Method::CREATE_PERMISSION,
            Method::CHANNEL_BIND,
            Method::CONNECT,
            Method::CONNECTION_BIND,
        ];
        if !known.contains(&message_type.method) {
            return self.drop_client_packet(DropCause::Unsupported);
        }
        let reply = |len: Option<usize>| match len {
            Some(len) => ClientOutcome::Reply(Transmit {
                from: local,
                to: five_tuple.client.get(),
                len,
            }),
            None => ClientOutcome::Nothing,
        };
        if !self.worth_a_challenge(&five_tuple, &message) {
            let cause = if message_type.method == Method::ALLOCATE {
                DropCause::Malformed
            } else {
                DropCause::NoAllocation
            };
            self.stats.answered(message_type.method, None);
            return self.drop_client_packet(cause);
        }
        // RFC 8489 §6.3 / §9.2.4: authentication first, then unknown attributes.
        let authenticated = self.auth.authenticate_also_for(
            now,
            unix_now,
            five_tuple.client.get(),
            self.control_connection_of(&message),
            five_tuple.transport,
            &message,
        );
        let auth = match authenticated {
            Ok(auth) => auth,
            Err(rejection) => {
                self.emit_auth_failure(&five_tuple, &message, rejection);
                let len = self.reject(now, unix_now, &five_tuple, &message, rejection, out);
                self.stats
                    .answered(message_type.method, len.map(|len| &out[..len]));
                return reply(len);
            }
        };
        if let Some(len) = unknown_attributes(&message, &auth, self.config.dont_fragment, out) {
            self.stats.answered(message_type.method, Some(&out[..len]));
            return reply(Some(len));
        }
        if message_type.method == Method::CONNECTION_BIND {
            let result = self.connection_bind(five_tuple, &message, &auth);
            let len = match result {
                Ok(_) => respond(&message, Class::Success, Some(&auth), out, |_| Ok(())),
                Err(refusal) => respond_error(&message, refusal.code(), Some(&auth), out),
            };
            self.stats
                .answered(message_type.method, len.map(|len| &out[..len]));
            return match (result, len) {
                (Ok(connection), Some(len)) => ClientOutcome::ConnectionBound {
                    reply: Transmit {
                        from: local,
                        to: five_tuple.client.get(),
                        len,
                    },
                    connection,
                },
                (Ok(connection), None) => {
                    // No room for the answer: the binding cannot be announced, so undo it.
                    self.tcp_connection_closed(connection);
                    self.command(RelayCommand::CloseTcp(connection));
                    ClientOutcome::Nothing
                }
                (Err(_), len) => reply(len),
            };
        }
        let len = match message_type.method {
            Method::ALLOCATE => {
                match self.allocate(now, five_tuple, local, &message, &auth, out) {
                    AllocateAnswer::Now(len) => len,
                    // Answered (and counted) when the driver reports the bind.
                    AllocateAnswer::Later => return ClientOutcome::Nothing,
                }
            }
            Method::CONNECT => {
                let len = self.connect(now, five_tuple, &message, &auth, out);
                if len.is_none() {
                    // Answered (and counted) when the driver reports, or at the timeout.
                    return ClientOutcome::Nothing;
                }
                len
            }
            Method::REFRESH => self.refresh(now, five_tuple, &message, &auth, out),
            Method::CREATE_PERMISSION => {
                self.create_permission(now, five_tuple, &message, &auth, out)
            }
            _ => self.channel_bind(now, five_tuple, &message, &auth, out),
        };
        self.stats
            .answered(message_type.method, len.map(|len| &out[..len]));
        reply(len)
    }

    /// The allocation on `five_tuple`, if any.
    pub(super) fn allocation_id(&self, five_tuple: &FiveTuple) -> Option<AllocationId> {
        self.by_five_tuple.get(five_tuple).copied()
    }

    /// Registers a new allocation (already counted in the quotas, its relay addresses
    /// claimed), schedules its timer and queues its creation event.
    pub(super) fn insert(&mut self, now: Instant, allocation: Allocation) -> AllocationId {
        let id = self.next_id;
        self.next_id = AllocationId(id.0 + 1);
        self.by_five_tuple.insert(allocation.five_tuple, id);
        for relay in allocation.relays.iter() {
            self.by_relay.insert(relay, id);
        }
        let deadline = allocation.next_deadline();
        self.stats.allocation_created(&allocation);
        self.allocations.insert(id, allocation);
        self.schedule(id, deadline);
        self.emit_created(now, id);
        id
    }

    /// Deletes an allocation and closes its relay sockets; returns it, for its end event
    /// (see [`TurnServer::end`], which every removal goes through).
    pub(super) fn remove(&mut self, id: AllocationId) -> Option<Allocation> {
        // Its channels leave the fast path (decided on the next poll: the allocation is gone).
        self.fast_path_touch(id);
        let allocation = self.allocations.remove(&id)?;
        self.by_five_tuple.remove(&allocation.five_tuple);
        for relay in allocation.relays.iter() {
            self.by_relay.remove(&relay);
            self.command(RelayCommand::Close(relay));
            self.shared.release(relay);
        }
        self.shared.remove_allocation(&allocation.username);
        self.close_connections(allocation.tcp.ids());
        if let Some(deadline) = self.deadlines.remove(&id) {
            self.timers.remove(&(deadline, id));
        }
        Some(allocation)
    }

    /// (Re)schedules the timer of allocation `id`.
    pub(super) fn schedule(&mut self, id: AllocationId, deadline: Instant) {
        if let Some(old) = self.deadlines.insert(id, deadline) {
            self.timers.remove(&(old, id));
        }
        self.timers.insert((deadline, id));
    }

    /// Re-computes allocation `id`'s next deadline after a change.
    pub(super) fn reschedule(&mut self, id: AllocationId) {
        if let Some(deadline) = self.allocations.get(&id).map(Allocation::next_deadline) {
            self.schedule(id, deadline);
        }
    }

    /// When [`TurnServer::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.timers.first().map(|(t, _)| *t);
        let fast = self.fast_path.next_deadline();
        let opens = self.next_open_deadline();
        [first, fast, self.shared.next_reservation_expiry(), opens]
            .into_iter()
            .flatten()
            .min()
    }

    /// Expires allocations, permissions, channels and port reservations due by `now`, and
    /// gives up the Allocates whose relay socket the driver did not report on in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.timers.first() {
            if deadline > now {
                break;
            }
            self.timers.pop_first();
            self.deadlines.remove(&id);
            let expired = self.allocations.get(&id).is_some_and(|a| a.expires <= now);
            if expired {
                self.end(now, id, EndReason::Expired);
            } else if let Some(allocation) = self.allocations.get_mut(&id) {
                allocation.purge(now);
                self.expire_connections(now, id);
                self.reschedule(id);
            }
        }
        self.shared.expire_reservations(now);
        self.expire_pending_opens(now);
        self.fast_path_expire(now);
    }

    /// Maps an advertised relay address (external IP) to the bound one; other addresses are
    /// returned as they are. A peer that is one of our own relays is reached on the bound
    /// address, not through the NAT in front of us.
    pub(super) fn bound_address(&self, peer: PeerAddr) -> PeerAddr {
        let mapping = [
            (self.config.external_v4, self.config.relay_v4),
            (self.config.external_v6, self.config.relay_v6),
        ];
        for (external, bound) in mapping {
            if let (Some(external), Some(bound)) = (external, bound) {
                if peer.ip() == external {
                    return PeerAddr::new(SocketAddr::new(bound, peer.port()));
                }
            }
        }
        peer
    }

    /// The address advertised for a bound relay address (RFC 8656 §7.2, `external-ip`).
    pub(super) fn advertised(&self, bound: SocketAddr) -> SocketAddr {
        let external = if bound.is_ipv4() {
            self.config.external_v4
        } else {
            self.config.external_v6
        };
        external.map_or(bound, |ip| SocketAddr::new(ip, bound.port()))
    }

    /// The peer policy for a permission (an IP): the configured policy, except that our own
    /// relay IPs are allowed, so that two clients relaying through this server reach each
    /// other (the port is checked per packet by [`TurnServer::peer_endpoint_allowed`]).
    pub(super) fn peer_ip_allowed(&self, ip: IpAddr) -> bool {
        let ip = self
            .bound_address(PeerAddr::new(SocketAddr::new(ip, 0)))
            .ip();
        let ours = self.config.is_relay_ip(ip);
        ours || (!self.disguises_own_ip(ip) && self.policy.check(ip) == PeerVerdict::Allowed)
    }

    /// True when `ip` is one of the server's own addresses or another form of one.
    fn is_own_ip(&self, ip: IpAddr) -> bool {
        self.config.own_ips.contains(&ip)
            || self.config.is_relay_ip(ip)
            || [self.config.external_v4, self.config.external_v6].contains(&Some(ip))
    }

    /// True when `ip` is an IPv6 form carrying one of the server's own IPv4 addresses
    /// (`::ffff:A`, NAT64 `64:ff9b::A`, 6to4 `2002:AABB:CCDD::`, Teredo, ISATAP): always
    /// refused, even for a relay address. Two clients of this server reach each other's
    /// relays by the native address; a disguised one leaves through a NAT64 or 6to4
    /// gateway and comes back to the server's own ports from outside.
    fn disguises_own_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(_) => false,
            IpAddr::V6(v6) => ipv4_destinations(v6).any(|v4| self.is_own_ip(IpAddr::V4(v4))),
        }
    }

    /// The per-packet check of a peer transport address (also made at ChannelBind): another
    /// live relay of ours is always reachable; on the server's own addresses the service
    /// ports never are, and other ports only when `allowed-peers` names the IP explicitly (no
    /// reaching the server's own sshd or admin pages through the relay by default); any
    /// other address goes by the policy.
    pub(super) fn peer_endpoint_allowed(&self, peer: PeerAddr) -> bool {
        let bound = self.bound_address(peer);
        if self.shared.is_relay(bound) {
            return true;
        }
        if self.disguises_own_ip(peer.ip()) {
            return false;
        }
        if self.is_own_ip(peer.ip()) || self.is_own_ip(bound.ip()) {
            return !self.config.service_ports.contains(&peer.port())
                && self.policy.is_explicitly_allowed(peer.ip());
        }
        self.policy.check(peer.ip()) == PeerVerdict::Allowed
    }
}

/// True when `packet` is a STUN Binding request (with or without the magic cookie): the
/// I/O layer's cheap demultiplexing test, made on the header alone.
pub fn is_binding_request(packet: &[u8]) -> bool {
    packet.len() >= 20
        && MessageType::from_u16(u16::from_be_bytes([packet[0], packet[1]]))
            == Some(MessageType::BINDING_REQUEST)
}

/// Removes the allocation of a client whose TCP/TLS connection closed: over a stream, the
/// allocation lives and dies with its connection (RFC 8656 §2.2, §3.1).
impl TurnServer {
    /// The client on `five_tuple` is gone (at `now`, for the allocation's duration).
    pub fn client_closed(&mut self, now: Instant, five_tuple: &FiveTuple) {
        if let Some(id) = self.allocation_id(five_tuple) {
            self.end(now, id, EndReason::ConnectionClosed);
        }
        self.cancel_pending(five_tuple);
    }

    /// True when `five_tuple` has an allocation (a connection that holds one is not idle).
    pub fn has_allocation(&self, five_tuple: &FiveTuple) -> bool {
        self.by_five_tuple.contains_key(five_tuple)
    }
}

/// RFC 8489 §6.3.1: comprehension-required attributes we do not understand → 420. A
/// DONT-FRAGMENT the I/O cannot honour counts as one (RFC 8656 §7.2 step 4).
fn unknown_attributes(
    message: &Message<'_>,
    auth: &Authenticated,
    dont_fragment: bool,
    out: &mut [u8],
) -> Option<usize> {
    let mut list = [stun::AttributeType(0); 8];
    let mut count = 0;
    let df = (!dont_fragment && message.contains::<stun::attributes::DontFragment>())
        .then_some(stun::AttributeType::DONT_FRAGMENT);
    for t in message
        .unknown_comprehension_required()
        .chain(df)
        .take(list.len())
    {
        list[count] = t;
        count += 1;
    }
    if count == 0 {
        return None;
    }
    respond(message, Class::Error, Some(auth), out, |w| {
        w.add(&stun::error_code::UNKNOWN_ATTRIBUTE)?;
        w.add(&stun::attributes::UnknownAttributes::new(&list[..count]))
    })
}
