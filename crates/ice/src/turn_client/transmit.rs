//! What goes in and out of the TURN client: datagrams to send, and what a received one was.

use std::net::SocketAddr;

/// A datagram for the caller to send to the TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnTransmit {
    /// Where to send it: always the TURN server.
    pub destination: SocketAddr,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// What a datagram offered to [`super::TurnClient::handle_input`] turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnInput<'a> {
    /// Not from the server, or a STUN message from it that is not ours (e.g. the answer to a
    /// Binding request another component sent to the same server): offer it elsewhere.
    NotMine,
    /// Ours, and fully handled (a response, or a packet dropped as unusable).
    Consumed,
    /// A peer's data, from a Data indication (RFC 8656 §11.6) or ChannelData (§12.6).
    Data {
        /// The peer that sent it to our relayed address.
        peer: SocketAddr,
        /// The application payload, borrowed from the packet.
        payload: &'a [u8],
    },
}
