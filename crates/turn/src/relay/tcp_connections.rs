//! The TCP connections of one TCP allocation (RFC 6062 §5.2–§5.5): each peer data
//! connection, from the Connect that asks for it (or the peer's own connection to the relayed
//! address) to its end, with the deadline of the state it is in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::addresses::PeerAddr;
use super::five_tuple::FiveTuple;
use crate::auth::Authenticated;

/// How long a peer data connection waits for its ConnectionBind (RFC 6062 §5.2, §5.3: "after
/// 30 seconds, the peer data connection MUST be closed").
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an outgoing connection to a peer may take before the Connect gets 447 (RFC 6062
/// §5.2: "The timeout value MUST be at least 30 seconds").
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// CONNECTION-ID (RFC 6062 §6.2.1): names one peer data connection, unique in the server
/// (every worker's core) for as long as the connection lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnectionId(pub u32);

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Where a peer data connection stands.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The driver is connecting to the peer for a Connect request, answered when it reports
    /// (success or 447) or at `deadline` (447).
    Connecting {
        /// The Connect request, as received: its answer is written when the result comes.
        request: Vec<u8>,
        /// What authenticated it (the answer is signed with its key).
        auth: Authenticated,
        /// When the attempt counts as failed.
        deadline: Instant,
    },
    /// Connected (or accepted), waiting for a ConnectionBind until `deadline`.
    Pending {
        /// When the peer data connection is closed unless bound.
        deadline: Instant,
    },
    /// Spliced to the client data connection `data` (RFC 6062 §5.4).
    Bound {
        /// The client data connection's 5-tuple.
        data: FiveTuple,
    },
}

/// One peer data connection.
#[derive(Debug, Clone)]
pub struct TcpConnection {
    /// The peer's transport address.
    pub peer: PeerAddr,
    /// Where it stands.
    pub state: ConnectionState,
}

impl TcpConnection {
    /// When it needs attention, if it waits for something.
    fn deadline(&self) -> Option<Instant> {
        match self.state {
            ConnectionState::Connecting { deadline, .. }
            | ConnectionState::Pending { deadline } => Some(deadline),
            ConnectionState::Bound { .. } => None,
        }
    }
}

/// The peer data connections of one allocation, connecting, pending or bound.
#[derive(Debug, Clone, Default)]
pub struct TcpConnections {
    connections: BTreeMap<ConnectionId, TcpConnection>,
}

impl TcpConnections {
    /// Connections in any state (what `max-peer-connections` limits).
    pub fn len(&self) -> usize {
        self.connections.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// True when a connection to `peer` is being made, waits for its bind or is bound (RFC
    /// 6062 §5.2: a second Connect to it gets 446).
    pub fn has_peer(&self, peer: PeerAddr) -> bool {
        self.connections.values().any(|c| c.peer == peer)
    }

    /// Adds a connection.
    pub fn insert(&mut self, id: ConnectionId, connection: TcpConnection) {
        self.connections.insert(id, connection);
    }

    /// The connection `id`.
    pub fn get_mut(&mut self, id: ConnectionId) -> Option<&mut TcpConnection> {
        self.connections.get_mut(&id)
    }

    /// The connection `id`.
    pub fn get(&self, id: ConnectionId) -> Option<&TcpConnection> {
        self.connections.get(&id)
    }

    /// Removes the connection `id`.
    pub fn remove(&mut self, id: ConnectionId) -> Option<TcpConnection> {
        self.connections.remove(&id)
    }

    /// Every connection's id.
    pub fn ids(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.connections.keys().copied()
    }

    /// The connections whose deadline has passed at `now`.
    pub fn due(&self, now: Instant) -> Vec<ConnectionId> {
        self.connections
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.connections
            .values()
            .filter_map(TcpConnection::deadline)
            .min()
    }
}
