//! TCP relaying (RFC 6062): Connect, ConnectionBind and ConnectionAttempt, and the peer data
//! connections between them.
//!
//! The core decides; the driver connects, listens and splices:
//! - Connect (§5.2) is checked here and handed to the driver with
//!   [`RelayCommand::ConnectTcp`]; the driver reports with
//!   [`TurnServer::tcp_connect_result`], and the answer (success with CONNECTION-ID, or 447)
//!   is queued for the control connection, as is a 447 when [`CONNECT_TIMEOUT`] passes first.
//! - A peer's connection to a relayed address (§5.3) is reported with
//!   [`TurnServer::tcp_peer_accepted`]: kept (a ConnectionAttempt indication is queued for the
//!   control connection) only when a permission covers the peer.
//! - ConnectionBind (§5.4) on a new client connection answers
//!   [`ClientOutcome::ConnectionBound`]: the driver sends the answer and from then on relays
//!   that connection's bytes as they are, both ways, to the peer data connection.
//! - A connection not bound within [`BIND_TIMEOUT`] is closed with
//!   [`RelayCommand::CloseTcp`], as is every connection of an allocation that ends (§5.5);
//!   the driver reports the end of a spliced pair with [`TurnServer::tcp_connection_closed`].
//!
//! What the core writes for a control connection outside a request's answer (a deferred
//! Connect answer, a ConnectionAttempt) is drained with [`TurnServer::poll_control_message`].

use std::net::SocketAddr;
use std::time::Instant;

use stun::attributes::{ConnectionId as ConnectionIdAttribute, XorPeerAddress};
use stun::error_code::INSUFFICIENT_CAPACITY;
use stun::{Class, Message, MessageType, MessageWriter, Method, TransactionId};

use super::addresses::{PeerAddr, RelayAddr};
use super::allocation::RelayTransport;
use super::commands::RelayCommand;
use super::events::ServerErrorCause;
use super::five_tuple::FiveTuple;
use super::refusal::Refusal;
use super::respond::{respond, respond_error};
use super::server::{AllocationId, TurnServer};
use super::tcp_connections::{
    ConnectionId, ConnectionState, TcpConnection, BIND_TIMEOUT, CONNECT_TIMEOUT,
};
use crate::auth::Authenticated;

/// Attempts at drawing a free CONNECTION-ID before a Connect gets 508.
const ID_ATTEMPTS: usize = 16;

/// Room for a Connect answer or a ConnectionAttempt indication (header, XOR-PEER-ADDRESS,
/// CONNECTION-ID, ERROR-CODE, integrity, fingerprint).
const CONTROL_MESSAGE_ROOM: usize = 256;

/// A message for a client's control connection that is not the answer to the request being
/// handled: a Connect answer once the driver reported, or a ConnectionAttempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlMessage {
    /// The control connection's 5-tuple.
    pub to: FiveTuple,
    /// The STUN message.
    pub bytes: Vec<u8>,
}

impl TurnServer {
    /// The next message for a control connection, oldest first. Drain after
    /// [`TurnServer::tcp_connect_result`], [`TurnServer::tcp_peer_accepted`] and
    /// [`TurnServer::handle_timeout`].
    pub fn poll_control_message(&mut self) -> Option<ControlMessage> {
        self.control.pop_front()
    }

    /// Connect (RFC 6062 §5.2): checks the request and asks the driver to connect; the
    /// answer comes later (`None` here) unless the request is refused at once.
    pub(super) fn connect(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<usize> {
        match self.start_connect(now, five_tuple, message, auth) {
            Ok(()) => None,
            Err(refusal) => respond_error(message, refusal.code(), Some(auth), out),
        }
    }

    fn start_connect(
        &mut self,
        now: Instant,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<(), Refusal> {
        // "received on a TCP connection for which no allocation exists": 437 (441 for
        // another user's, RFC 8656 §5).
        let id = self.owned_allocation(&five_tuple, auth)?;
        let allocation = &self.allocations[&id];
        // A UDP allocation has no TCP relayed address to connect from.
        if allocation.transport != RelayTransport::Tcp {
            return Err(Refusal::WrongRelayTransport);
        }
        let Some(Ok(XorPeerAddress(peer))) = message.get::<XorPeerAddress>() else {
            return Err(Refusal::PeerAddress);
        };
        let peer = PeerAddr::from(peer);
        // §5.2: a Connect being processed, or a connection pending or active, to this peer.
        if allocation.tcp.has_peer(peer) {
            return Err(Refusal::ConnectionExists);
        }
        let Some(relay) = allocation.relays.for_peer(peer.ip()) else {
            return Err(Refusal::PeerFamily);
        };
        // §5.2 "forbidden by local policy": the peer policy of the UDP relay, and a
        // permission for the peer, as for everything an allocation sends (RFC 8656 §9).
        if !allocation.permits(now, peer.ip()) || !self.peer_endpoint_allowed(peer) {
            return Err(Refusal::PeerForbidden);
        }
        if allocation.tcp.len() >= self.config.max_peer_connections {
            let cause = ServerErrorCause::PeerConnectionLimit;
            self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
            return Err(Refusal::ConnectionLimit);
        }
        let Some(connection) = self.new_connection_id() else {
            let cause = ServerErrorCause::ConnectionIds;
            self.emit_server_error(INSUFFICIENT_CAPACITY, cause, five_tuple, &auth.username);
            return Err(Refusal::ConnectionLimit);
        };
        let state = ConnectionState::Connecting {
            request: message.as_bytes().to_vec(),
            auth: auth.clone(),
            deadline: now + CONNECT_TIMEOUT,
        };
        self.add_connection(id, connection, peer, state);
        let peer = self.bound_address(peer);
        self.command(RelayCommand::ConnectTcp {
            id: connection,
            relay,
            peer,
        });
        Ok(())
    }

    /// The driver's result for [`RelayCommand::ConnectTcp`]: the Connect is answered
    /// (CONNECTION-ID, or 447 when `connected` is false). True when the core keeps the
    /// connection; false when it has given up on it meanwhile (the Connect timed out, the
    /// allocation ended): the driver closes it then.
    pub fn tcp_connect_result(&mut self, now: Instant, id: ConnectionId, connected: bool) -> bool {
        let Some((allocation, request, auth)) = self.connecting(id) else {
            return false;
        };
        let to = self.allocations[&allocation].five_tuple;
        if connected {
            if let Some(c) = self.connection_mut(id) {
                c.state = ConnectionState::Pending {
                    deadline: now + BIND_TIMEOUT,
                };
            }
            self.reschedule(allocation);
            self.answer_connect(to, &request, &auth, Ok(id));
        } else {
            self.drop_connection(id);
            self.answer_connect(to, &request, &auth, Err(Refusal::ConnectionFailed));
        }
        connected
    }

    /// A peer connected to the relayed address `relay` from `peer` (RFC 6062 §5.3). Returns
    /// the connection's id when it is kept (a ConnectionAttempt is queued for the control
    /// connection); `None`: no permission for the peer (or no room), close it at once.
    pub fn tcp_peer_accepted(
        &mut self,
        now: Instant,
        relay: RelayAddr,
        peer: PeerAddr,
    ) -> Option<ConnectionId> {
        let id = *self.by_relay.get(&relay)?;
        // A peer that is another of our relays is known to the client by its advertised
        // address: the permission was made for that one.
        let peer = if self.shared.is_relay(peer) {
            PeerAddr::new(self.advertised(peer.get()))
        } else {
            peer
        };
        let allocation = self.allocations.get(&id)?;
        if allocation.transport != RelayTransport::Tcp
            || !allocation.permits(now, peer.ip())
            || allocation.tcp.len() >= self.config.max_peer_connections
        {
            return None;
        }
        let to = allocation.five_tuple;
        let connection = self.new_connection_id()?;
        let deadline = now + BIND_TIMEOUT;
        self.add_connection(id, connection, peer, ConnectionState::Pending { deadline });
        let mut tid = [0u8; 12];
        self.rng.fill_bytes(&mut tid);
        if let Some(bytes) = connection_attempt(TransactionId(tid), peer, connection) {
            self.control.push_back(ControlMessage { to, bytes });
        }
        Some(connection)
    }

    /// ConnectionBind (RFC 6062 §5.4) on the client connection `five_tuple`: the connection
    /// bound, or the error to answer.
    pub(super) fn connection_bind(
        &mut self,
        five_tuple: FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
    ) -> Result<ConnectionId, Refusal> {
        // "If the client connection transport is not TCP or TLS": 400. A control connection
        // cannot become a data connection either.
        if !five_tuple.transport.is_stream() || self.allocation_id(&five_tuple).is_some() {
            return Err(Refusal::ConnectionBind);
        }
        let Some(Ok(ConnectionIdAttribute(raw))) = message.get::<ConnectionIdAttribute>() else {
            return Err(Refusal::ConnectionBind);
        };
        let connection = ConnectionId(raw);
        // "does not refer to an existing pending connection": 400.
        let allocation = *self
            .tcp_owner
            .get(&connection)
            .ok_or(Refusal::ConnectionBind)?;
        // §4.3: the same credentials as the control connection.
        if self.allocations[&allocation].username != auth.username {
            return Err(Refusal::OtherUser);
        }
        let c = self
            .connection_mut(connection)
            .ok_or(Refusal::ConnectionBind)?;
        if !matches!(c.state, ConnectionState::Pending { .. }) {
            return Err(Refusal::ConnectionBind);
        }
        c.state = ConnectionState::Bound { data: five_tuple };
        self.reschedule(allocation);
        Ok(connection)
    }

    /// The driver saw peer data connection `id` (or its client data connection) close: the
    /// pair is gone (RFC 6062 §5.5), and its peer may be connected to again.
    pub fn tcp_connection_closed(&mut self, id: ConnectionId) {
        self.drop_connection(id);
    }

    /// Adds what a spliced pair relayed (bytes each way, as the driver counted them) to its
    /// allocation's session traffic. Packets are not counted: a byte stream has none.
    pub fn tcp_relayed(&mut self, id: ConnectionId, to_peer: u64, to_client: u64) {
        let Some(allocation) = self.tcp_owner.get(&id) else {
            return;
        };
        if let Some(a) = self.allocations.get_mut(allocation) {
            a.session.traffic.to_peer.bytes += to_peer;
            a.session.traffic.to_client.bytes += to_client;
        }
    }

    /// Closes the connections of allocation `id` whose deadline passed: a Connect not
    /// answered by the driver in time gets 447, a connection not bound is closed.
    pub(super) fn expire_connections(&mut self, now: Instant, id: AllocationId) {
        let Some(allocation) = self.allocations.get(&id) else {
            return;
        };
        let to = allocation.five_tuple;
        for connection in allocation.tcp.due(now) {
            let state = self.drop_connection(connection).map(|c| c.state);
            self.command(RelayCommand::CloseTcp(connection));
            if let Some(ConnectionState::Connecting { request, auth, .. }) = state {
                self.answer_connect(to, &request, &auth, Err(Refusal::ConnectionFailed));
            }
        }
    }

    /// Closes every connection of an allocation that goes (RFC 6062 §5.5).
    pub(super) fn close_connections(&mut self, connections: impl Iterator<Item = ConnectionId>) {
        for connection in connections {
            self.tcp_owner.remove(&connection);
            self.shared.release_connection_id(connection.0);
            self.command(RelayCommand::CloseTcp(connection));
        }
    }

    /// For a ConnectionBind over TCP/TLS, the client address of the control connection of
    /// the allocation its CONNECTION-ID names: the nonce issued there is accepted too (see
    /// [`crate::auth::Authenticator::authenticate_also_for`]).
    pub(super) fn control_connection_of(&self, message: &Message<'_>) -> Option<SocketAddr> {
        if message.header().message_type.method != Method::CONNECTION_BIND {
            return None;
        }
        let Some(Ok(ConnectionIdAttribute(raw))) = message.get::<ConnectionIdAttribute>() else {
            return None;
        };
        let allocation = self.tcp_owner.get(&ConnectionId(raw))?;
        let control = self.allocations.get(allocation)?.five_tuple;
        control
            .transport
            .is_stream()
            .then_some(control.client.get())
    }

    /// Peer data connections of this core, in any state (a gauge for metrics).
    pub fn peer_connections(&self) -> usize {
        self.tcp_owner.len()
    }

    /// A CONNECTION-ID free in the whole server, claimed.
    fn new_connection_id(&mut self) -> Option<ConnectionId> {
        (0..ID_ATTEMPTS)
            .map(|_| self.rng.next_u32())
            .find(|&raw| raw != 0 && self.shared.claim_connection_id(raw))
            .map(ConnectionId)
    }

    fn add_connection(
        &mut self,
        allocation: AllocationId,
        connection: ConnectionId,
        peer: PeerAddr,
        state: ConnectionState,
    ) {
        if let Some(a) = self.allocations.get_mut(&allocation) {
            a.tcp.insert(connection, TcpConnection { peer, state });
            self.tcp_owner.insert(connection, allocation);
        }
        self.reschedule(allocation);
    }

    fn connection_mut(&mut self, connection: ConnectionId) -> Option<&mut TcpConnection> {
        let allocation = self.tcp_owner.get(&connection)?;
        self.allocations
            .get_mut(allocation)?
            .tcp
            .get_mut(connection)
    }

    /// The allocation, request and credentials of a connection still connecting.
    fn connecting(
        &mut self,
        connection: ConnectionId,
    ) -> Option<(AllocationId, Vec<u8>, Authenticated)> {
        let allocation = *self.tcp_owner.get(&connection)?;
        match &self
            .allocations
            .get(&allocation)?
            .tcp
            .get(connection)?
            .state
        {
            ConnectionState::Connecting { request, auth, .. } => {
                Some((allocation, request.clone(), auth.clone()))
            }
            _ => None,
        }
    }

    /// Forgets a connection and gives its id back.
    fn drop_connection(&mut self, connection: ConnectionId) -> Option<TcpConnection> {
        let allocation = self.tcp_owner.remove(&connection)?;
        self.shared.release_connection_id(connection.0);
        let removed = self
            .allocations
            .get_mut(&allocation)?
            .tcp
            .remove(connection);
        self.reschedule(allocation);
        removed
    }

    /// Queues the answer to a Connect request for its control connection.
    fn answer_connect(
        &mut self,
        to: FiveTuple,
        request: &[u8],
        auth: &Authenticated,
        result: Result<ConnectionId, Refusal>,
    ) {
        let Ok(message) = Message::decode(request) else {
            return;
        };
        let mut out = vec![0u8; CONTROL_MESSAGE_ROOM];
        let len = match result {
            Ok(id) => respond(&message, Class::Success, Some(auth), &mut out, |w| {
                w.add(&ConnectionIdAttribute(id.0))
            }),
            Err(refusal) => respond_error(&message, refusal.code(), Some(auth), &mut out),
        };
        if let Some(len) = len {
            out.truncate(len);
            self.stats.answered(Method::CONNECT, Some(&out));
            self.control.push_back(ControlMessage { to, bytes: out });
        }
    }
}

/// A ConnectionAttempt indication (RFC 6062 §5.3): XOR-PEER-ADDRESS and CONNECTION-ID.
fn connection_attempt(tid: TransactionId, peer: PeerAddr, id: ConnectionId) -> Option<Vec<u8>> {
    let mut out = vec![0u8; CONTROL_MESSAGE_ROOM];
    let kind = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
    let mut w = MessageWriter::new(&mut out, kind, tid).ok()?;
    w.add(&XorPeerAddress(peer.get())).ok()?;
    w.add(&ConnectionIdAttribute(id.0)).ok()?;
    w.add_fingerprint().ok()?;
    let len = w.finish();
    out.truncate(len);
    Some(out)
}
