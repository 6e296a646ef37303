//! A datagram a client core wants sent.

use std::net::SocketAddr;

/// A datagram to send: the caller sends `payload` to `destination` from its socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes, borrowed from the core (no copy, no allocation).
    pub payload: &'a [u8],
}
