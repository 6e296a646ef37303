//! What the core asks of the I/O layer for relay sockets: bind one, close one, connect or
//! close a TCP peer connection. The core never calls into I/O; it queues a [`RelayCommand`]
//! and the driver drains the queue with [`TurnServer::poll_command`] after every call into
//! the core.
//!
//! Binding is the only command with an answer: an [`RelayCommand::Open`] carries an
//! [`OpenTicket`], and the driver reports the bind's result with
//! [`TurnServer::relay_opened`] (see [`super::pending_open`]). A driver that answers each
//! `Open` before it makes another call into the core keeps the wire behaviour of a
//! synchronous bind: the Allocate's answer comes out of that `relay_opened`.

use super::addresses::{PeerAddr, RelayAddr};
use super::server::TurnServer;
use super::tcp_connections::ConnectionId;

/// Names one [`RelayCommand::Open`], for its answer with [`TurnServer::relay_opened`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpenTicket(pub(super) u64);

/// The socket a [`RelayCommand::Open`] binds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketKind {
    /// A UDP relay socket (RFC 8656).
    Udp,
    /// A TCP listening socket, the relayed address of a TCP allocation (RFC 6062 §5.1); the
    /// driver reports each connection a peer makes to it with
    /// [`TurnServer::tcp_peer_accepted`].
    TcpListener,
}

/// One thing the core asks of the I/O layer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayCommand {
    /// Bind a socket of `kind` on `addr`, then report with [`TurnServer::relay_opened`]
    /// (`Err` with the OS error's [`super::RelayOpenError`] when the bind fails).
    Open {
        /// Hand back with the result.
        ticket: OpenTicket,
        /// The relayed transport address to bind (the core has claimed it).
        addr: RelayAddr,
        /// UDP socket or TCP listener.
        kind: SocketKind,
    },
    /// Close the relay socket (or TCP listening socket) on this address.
    Close(RelayAddr),
    /// Open a TCP connection from the relayed address `relay` to `peer` (RFC 6062 §5.2) as
    /// peer data connection `id`, and report how it went with
    /// [`TurnServer::tcp_connect_result`]. No timeout is needed: the core gives up at its own
    /// deadline and asks for [`RelayCommand::CloseTcp`].
    ConnectTcp {
        /// The peer data connection.
        id: ConnectionId,
        /// The TCP allocation's relayed address, to connect from.
        relay: RelayAddr,
        /// The peer, to connect to.
        peer: PeerAddr,
    },
    /// Close peer data connection `id` (connecting, waiting for its bind, or spliced to a
    /// client data connection, which is closed with it: RFC 6062 §5.5).
    CloseTcp(ConnectionId),
}

impl TurnServer {
    /// The next command for the I/O layer, oldest first. Drain after every call into the
    /// core (a client's packet, a timeout, a kick, a closed client connection, an answer to
    /// an `Open`).
    pub fn poll_command(&mut self) -> Option<RelayCommand> {
        self.commands.pop_front()
    }

    /// Queues a command for the I/O layer.
    pub(super) fn command(&mut self, command: RelayCommand) {
        self.commands.push_back(command);
    }
}
