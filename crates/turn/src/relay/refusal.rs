//! Why the relay refuses a request: one variant per reason the RFCs name, each mapped to
//! exactly one wire error ([`Refusal::code`]), as [`crate::auth::AuthRejection`] is for
//! authentication. The request handlers return these, not a wire `ErrorCode`, so that a
//! reason is named where it is decided and its code is chosen in one place (and a test can
//! ask which rule refused, not only which number came back).

use stun::attributes::ErrorCode;
use stun::error_code::{
    ADDRESS_FAMILY_NOT_SUPPORTED, ALLOCATION_MISMATCH, BAD_REQUEST, CONNECTION_ALREADY_EXISTS,
    CONNECTION_TIMEOUT_OR_FAILURE, FORBIDDEN, INSUFFICIENT_CAPACITY, PEER_ADDRESS_FAMILY_MISMATCH,
    UNSUPPORTED_TRANSPORT_PROTOCOL, WRONG_CREDENTIALS,
};

use super::allocation::ChannelConflict;

/// A request the relay refuses, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// REQUESTED-TRANSPORT missing or malformed (RFC 8656 §7.2 step 3): 400.
    #[error("REQUESTED-TRANSPORT missing or malformed")]
    MissingTransport,
    /// A transport other than UDP, or TCP where RFC 6062 is off (§7.2 step 3): 442.
    #[error("requested transport not supported")]
    UnsupportedTransport,
    /// An attribute that does not decode (RFC 8489 §6.3.1): 400.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A TCP allocation asked over UDP or DTLS, or with RESERVATION-TOKEN, EVEN-PORT or
    /// DONT-FRAGMENT (RFC 6062 §5.1 steps 2–3): 400.
    #[error("a TCP allocation needs a TCP/TLS client and no UDP-only attribute")]
    TcpAllocationRules,
    /// RESERVATION-TOKEN with EVEN-PORT or an address-family attribute (§7.2 step 5): 400.
    #[error("RESERVATION-TOKEN with EVEN-PORT or an address family")]
    TokenWithOtherAttributes,
    /// Both REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY (§7.2 step 6): 400.
    #[error("both REQUESTED- and ADDITIONAL-ADDRESS-FAMILY")]
    BothFamilies,
    /// The requested address family is not relayed here (§7.2 step 7): 440.
    #[error("address family not relayed")]
    FamilyNotRelayed,
    /// EVEN-PORT with R=1 on a dual allocation (§7.2 step 8): 400.
    #[error("EVEN-PORT R=1 with a dual allocation")]
    EvenPortWithDual,
    /// ADDITIONAL-ADDRESS-FAMILY asking for anything but IPv6 (§7.2 step 9): 400.
    #[error("ADDITIONAL-ADDRESS-FAMILY other than IPv6")]
    AdditionalNotIpv6,
    /// An Allocate on a 5-tuple that has an allocation, not a retransmission of the request
    /// that made it (§7.2 step 2): 437.
    #[error("the 5-tuple already has an allocation")]
    AllocationExists,
    /// No allocation on this 5-tuple (§5): 437.
    #[error("no allocation on this 5-tuple")]
    NoAllocation,
    /// The allocation was made by another username (§5): 441.
    #[error("allocation of another username")]
    OtherUser,
    /// XOR-PEER-ADDRESS missing or malformed (§10.2, §12.2; RFC 6062 §5.2): 400.
    #[error("XOR-PEER-ADDRESS missing or malformed")]
    PeerAddress,
    /// A peer of a family the allocation does not relay, or a Refresh asking for a family it
    /// lacks (§10.2, §8.2): 443.
    #[error("peer address family not relayed by the allocation")]
    PeerFamily,
    /// The peer policy forbids the peer, or (RFC 6062 §5.2) no permission covers it: 403.
    #[error("peer forbidden")]
    PeerForbidden,
    /// The allocation holds `max-permissions` permissions (§10.2): 508.
    #[error("permission limit reached")]
    PermissionLimit,
    /// The allocation holds `max-channels` channels (§12.2): 508.
    #[error("channel limit reached")]
    ChannelLimit,
    /// CHANNEL-NUMBER missing, malformed or outside the allowed range (§12.2): 400.
    #[error("CHANNEL-NUMBER missing or out of range")]
    ChannelNumber,
    /// The number or the peer is bound, or cooling down, otherwise (§12.2): 400.
    #[error("channel binding conflict: {0:?}")]
    ChannelConflict(ChannelConflict),
    /// A request for the other kind of allocation: channels on a TCP allocation, Connect on a
    /// UDP one (RFC 6062 §5.2): 400.
    #[error("not supported by this allocation's relay transport")]
    WrongRelayTransport,
    /// A connection to that peer exists or is being made (RFC 6062 §5.2): 446.
    #[error("a connection to that peer exists")]
    ConnectionExists,
    /// The allocation holds `max-peer-connections`, or no connection id is free (508).
    #[error("peer connection limit reached")]
    ConnectionLimit,
    /// The connection to the peer failed or timed out (RFC 6062 §5.2): 447.
    #[error("connection to the peer failed or timed out")]
    ConnectionFailed,
    /// ConnectionBind not on a fresh TCP/TLS connection, without a valid CONNECTION-ID, or for
    /// a connection that is not pending (RFC 6062 §5.4): 400.
    #[error("ConnectionBind without a pending connection")]
    ConnectionBind,
}

impl Refusal {
    /// The one wire error each reason is answered with.
    pub fn code(self) -> ErrorCode<'static> {
        match self {
            Refusal::UnsupportedTransport => UNSUPPORTED_TRANSPORT_PROTOCOL,
            Refusal::FamilyNotRelayed => ADDRESS_FAMILY_NOT_SUPPORTED,
            Refusal::AllocationExists | Refusal::NoAllocation => ALLOCATION_MISMATCH,
            Refusal::OtherUser => WRONG_CREDENTIALS,
            Refusal::PeerFamily => PEER_ADDRESS_FAMILY_MISMATCH,
            Refusal::PeerForbidden => FORBIDDEN,
            Refusal::PermissionLimit | Refusal::ChannelLimit | Refusal::ConnectionLimit => {
                INSUFFICIENT_CAPACITY
            }
            Refusal::ConnectionExists => CONNECTION_ALREADY_EXISTS,
            Refusal::ConnectionFailed => CONNECTION_TIMEOUT_OR_FAILURE,
            Refusal::MissingTransport
            | Refusal::Malformed(_)
            | Refusal::TcpAllocationRules
            | Refusal::TokenWithOtherAttributes
            | Refusal::BothFamilies
            | Refusal::EvenPortWithDual
            | Refusal::AdditionalNotIpv6
            | Refusal::PeerAddress
            | Refusal::ChannelNumber
            | Refusal::ChannelConflict(_)
            | Refusal::WrongRelayTransport
            | Refusal::ConnectionBind => BAD_REQUEST,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::allocation::ChannelConflict;

    // The numbers the RFCs give each reason (RFC 8656 §7.2, §8.2, §10.2, §12.2; RFC 6062 §5.2,
    // §5.4): the scenario tests check them on the wire; this pins the table itself.
    #[test]
    fn each_reason_has_its_rfc_code() {
        let table = [
            (Refusal::MissingTransport, 400),
            (Refusal::UnsupportedTransport, 442),
            (Refusal::Malformed("LIFETIME"), 400),
            (Refusal::TcpAllocationRules, 400),
            (Refusal::TokenWithOtherAttributes, 400),
            (Refusal::BothFamilies, 400),
            (Refusal::FamilyNotRelayed, 440),
            (Refusal::EvenPortWithDual, 400),
            (Refusal::AdditionalNotIpv6, 400),
            (Refusal::AllocationExists, 437),
            (Refusal::NoAllocation, 437),
            (Refusal::OtherUser, 441),
            (Refusal::PeerAddress, 400),
            (Refusal::PeerFamily, 443),
            (Refusal::PeerForbidden, 403),
            (Refusal::PermissionLimit, 508),
            (Refusal::ChannelLimit, 508),
            (Refusal::ChannelNumber, 400),
            (Refusal::ChannelConflict(ChannelConflict::NumberTaken), 400),
            (Refusal::WrongRelayTransport, 400),
            (Refusal::ConnectionExists, 446),
            (Refusal::ConnectionLimit, 508),
            (Refusal::ConnectionFailed, 447),
            (Refusal::ConnectionBind, 400),
        ];
        for (refusal, code) in table {
            assert_eq!(refusal.code().code, code, "{refusal}");
        }
    }
}
