//! The 5-tuple that names an allocation (RFC 8656 §2): client address, server address and
//! transport protocol.

use std::net::SocketAddr;

use super::addresses::ClientAddr;

/// Transport protocol between client and server. TLS runs over TCP, and RFC 8656 counts it
/// as TCP in the 5-tuple: the core treats both alike ([`ClientTransport::is_stream`]), and
/// tells them apart only in its counters. DTLS runs over UDP (RFC 7350 §4): datagrams like
/// UDP, but reached through a session of its own ([`ClientTransport::has_session`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ClientTransport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// DTLS over UDP (RFC 7350).
    Dtls,
}

impl ClientTransport {
    /// True for TCP and TLS: a byte stream, where ChannelData is padded (RFC 8656 §12.5) and
    /// the allocation lives as long as the connection.
    pub fn is_stream(self) -> bool {
        matches!(self, ClientTransport::Tcp | ClientTransport::Tls)
    }

    /// True for TCP, TLS and DTLS: data for the client goes through its connection or
    /// session (which encrypts or frames it), not out of the shared UDP listener socket.
    pub fn has_session(self) -> bool {
        self != ClientTransport::Udp
    }

    /// Its name in logs, metric labels and the admin API: `udp`, `tcp`, `tls` or `dtls`.
    pub fn name(self) -> &'static str {
        match self {
            ClientTransport::Udp => "udp",
            ClientTransport::Tcp => "tcp",
            ClientTransport::Tls => "tls",
            ClientTransport::Dtls => "dtls",
        }
    }
}

/// Client address, server address and transport: one allocation per 5-tuple (RFC 8656 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    /// The client's transport address, as the server sees it.
    pub client: ClientAddr,
    /// The server address the client talks to.
    pub server: SocketAddr,
    /// The transport.
    pub transport: ClientTransport,
}
