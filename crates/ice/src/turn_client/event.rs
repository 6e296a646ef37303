//! What the TURN client tells its caller.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::TurnError;

/// Something that happened to the allocation, a permission or a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// The Allocate succeeded (RFC 8656 §7.3).
    Allocated {
        /// XOR-RELAYED-ADDRESS: the relayed transport address, a relay candidate.
        relayed: SocketAddr,
        /// XOR-MAPPED-ADDRESS: our address as the server saw it, a server-reflexive candidate.
        mapped: SocketAddr,
        /// LIFETIME as granted.
        lifetime: Duration,
    },
    /// The Allocate failed: the STUN error, a timeout, or an unusable answer.
    AllocationFailed(TurnError),
    /// A CreatePermission for this peer IP failed or timed out; the permission is dropped.
    PermissionFailed {
        /// The peer IP.
        peer: IpAddr,
    },
    /// A ChannelBind succeeded: data to `peer` now goes as ChannelData on `channel`.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number, 0x4000 to 0x4FFF.
        channel: u16,
    },
    /// A ChannelBind failed or timed out; data to `peer` keeps going in Send indications.
    /// (Added to the agreed API.)
    ChannelFailed {
        /// The peer.
        peer: SocketAddr,
    },
    /// A refresh failed or the allocation's lifetime ran out: the relayed address is gone.
    Expired,
    /// The Refresh with LIFETIME 0 was answered (or given up on): the client is closed.
    /// (Added to the agreed API.)
    Deallocated,
}
