//! The server's own transport addresses, and what the core asks the I/O layer to send.
//!
//! RFC 5780 §6 gives a behaviour-discovery server up to four sockets: two IPs (A1, A2) by
//! two ports (P1, P2). A [`SocketId`] names one of them; [`ServerSockets`] knows their
//! addresses.

use std::net::{IpAddr, SocketAddr};

/// One of the server's sockets on the RFC 5780 grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SocketId {
    /// On the alternate IP (A2) rather than the primary one (A1).
    pub alternate_ip: bool,
    /// On the alternate port (P2) rather than the primary one (P1).
    pub alternate_port: bool,
}

impl SocketId {
    /// The primary socket (A1, P1): the only one when behaviour discovery is off.
    pub const PRIMARY: SocketId = SocketId {
        alternate_ip: false,
        alternate_port: false,
    };

    /// All four positions, primary first.
    pub const ALL: [SocketId; 4] = [
        SocketId::PRIMARY,
        SocketId {
            alternate_ip: false,
            alternate_port: true,
        },
        SocketId {
            alternate_ip: true,
            alternate_port: false,
        },
        SocketId {
            alternate_ip: true,
            alternate_port: true,
        },
    ];
}

/// How a request reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP: the answer may leave from another socket or go to another port.
    Udp,
    /// TCP or TLS: the answer goes back on the same connection.
    Stream,
}

/// The addresses of the server's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSockets {
    /// A1:P1, the address the primary socket is bound to (may be unspecified, 0.0.0.0).
    pub primary: SocketAddr,
    /// A2, when behaviour discovery has a second IP.
    pub alternate_ip: Option<IpAddr>,
    /// P2, when behaviour discovery has a second port.
    pub alternate_port: Option<u16>,
}

impl ServerSockets {
    /// A server with one socket and no behaviour discovery.
    pub const fn single(primary: SocketAddr) -> Self {
        ServerSockets {
            primary,
            alternate_ip: None,
            alternate_port: None,
        }
    }

    /// True when RFC 5780 behaviour discovery is on (a second IP, a second port, or both).
    pub const fn behaviour_discovery(&self) -> bool {
        self.alternate_ip.is_some() || self.alternate_port.is_some()
    }

    /// The address of socket `id`; `None` when the server has no such socket.
    pub fn address(&self, id: SocketId) -> Option<SocketAddr> {
        let ip = if id.alternate_ip {
            self.alternate_ip?
        } else {
            self.primary.ip()
        };
        let port = if id.alternate_port {
            self.alternate_port?
        } else {
            self.primary.port()
        };
        Some(SocketAddr::new(ip, port))
    }

    /// The sockets that exist, primary first.
    pub fn ids(&self) -> impl Iterator<Item = SocketId> + '_ {
        SocketId::ALL
            .into_iter()
            .filter(|id| self.address(*id).is_some())
    }
}

/// A datagram (or stream write) the core wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The socket to send from (for streams, always the connection the request came on).
    pub from: SocketId,
    /// The destination.
    pub to: SocketAddr,
    /// Length of the message at the start of the caller's output buffer.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_addresses() {
        let s = ServerSockets {
            primary: "192.0.2.1:3478".parse().unwrap(),
            alternate_ip: Some("192.0.2.2".parse().unwrap()),
            alternate_port: None,
        };
        assert_eq!(s.ids().count(), 2);
        assert_eq!(
            s.address(SocketId::ALL[2]),
            Some("192.0.2.2:3478".parse().unwrap())
        );
        assert_eq!(s.address(SocketId::ALL[1]), None);
        assert!(s.behaviour_discovery());
        assert!(!ServerSockets::single(s.primary).behaviour_discovery());
    }
}
