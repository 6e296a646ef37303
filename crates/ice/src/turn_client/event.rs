//! What the TURN client tells its caller.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::TurnError;
use super::request::RequestKind;

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
    /// The server answered the Allocate with 300 (Try Alternate): the Allocate starts again,
    /// from its unauthenticated first request, at `to` (RFC 8489 §10), which is now
    /// [`super::TurnClient::server`]. Over a stream the driver connects to `to` now (see
    /// [`super::TurnClientConfig::follow_alternate`]).
    Redirected {
        /// The server that redirected.
        from: SocketAddr,
        /// The alternate server.
        to: SocketAddr,
        /// ALTERNATE-DOMAIN (RFC 8489 §10, §14.16): over TLS or DTLS, the name to check the
        /// alternate's certificate with; `None`: the name used for the first server.
        domain: Option<String>,
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
    /// With [`super::TurnClientConfig::diagnostics`]: a 401 or 438 challenge was answered with a new request (RFC 8489 §9.2.5): a
    /// diagnostic (the first 401 of an Allocate is the normal start of every session).
    Challenged {
        /// The request challenged.
        request: RequestKind,
        /// 401 (Unauthenticated) or 438 (Stale Nonce).
        code: u16,
        /// The REALM of the challenge: the realm the key is derived in.
        realm: String,
    },
    /// With [`super::TurnClientConfig::diagnostics`]: a Refresh of the allocation (not a
    /// deallocation) succeeded, granting `lifetime`
    /// (RFC 8656 §8).
    Refreshed {
        /// LIFETIME as granted.
        lifetime: Duration,
    },
    /// With [`super::TurnClientConfig::diagnostics`]: a request failed for good, and the cause, next to the event that says what it means for
    /// the allocation ([`TurnEvent::AllocationFailed`], [`TurnEvent::PermissionFailed`], ...),
    /// which follows it. A diagnostic: a 403 to a CreatePermission is the server's peer policy.
    RequestFailed {
        /// The request.
        request: RequestKind,
        /// Why.
        error: TurnError,
    },
}
