//! The transport addresses of the relay path (RFC 8656 §2), one type each, so that a client's
//! address cannot be passed where a peer's is expected (or a relay's):
//! - [`ClientAddr`]: the client's side of the 5-tuple, as the server sees it;
//! - [`PeerAddr`]: a peer's transport address (XOR-PEER-ADDRESS, or the source of a datagram
//!   arriving on a relay socket);
//! - [`RelayAddr`]: an allocation's relayed transport address.
//!
//! Each wraps a [`SocketAddr`] and converts explicitly at the edges (decoding an attribute,
//! socket I/O): `PeerAddr::from(addr)` / `PeerAddr::new(addr)` in, [`PeerAddr::get`] out.
//! `Debug` and `Display` print the address alone, as `SocketAddr` does, so that logs and
//! answers read the same as with plain addresses.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

macro_rules! transport_address {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(SocketAddr);

        impl $name {
            /// Wraps `addr`.
            pub const fn new(addr: SocketAddr) -> Self {
                $name(addr)
            }

            /// The plain socket address (for socket I/O and the wire).
            pub const fn get(self) -> SocketAddr {
                self.0
            }

            /// Its IP address.
            pub const fn ip(self) -> IpAddr {
                self.0.ip()
            }

            /// Its port.
            pub const fn port(self) -> u16 {
                self.0.port()
            }

            /// True for an IPv4 address.
            pub const fn is_ipv4(self) -> bool {
                self.0.is_ipv4()
            }

            /// True for an IPv6 address.
            pub const fn is_ipv6(self) -> bool {
                self.0.is_ipv6()
            }
        }

        impl From<SocketAddr> for $name {
            fn from(addr: SocketAddr) -> Self {
                $name(addr)
            }
        }

        impl From<$name> for SocketAddr {
            fn from(addr: $name) -> Self {
                addr.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

transport_address! {
    /// The client's transport address (RFC 8656 §2, "client's transport address"): its IP
    /// address and port as the server sees them (after any NAT), the client's side of the
    /// 5-tuple that names an allocation (§2.2).
    ClientAddr
}

transport_address! {
    /// A peer's transport address (RFC 8656 §2, "peer transport address"): where the server
    /// relays a client's data to (XOR-PEER-ADDRESS of a Send indication, ChannelBind or
    /// Connect), and the source of a datagram arriving on a relay socket.
    PeerAddr
}

transport_address! {
    /// An allocation's relayed transport address (RFC 8656 §2, "relayed transport address"):
    /// the address its relay socket is bound to, the source of what it sends to peers. With
    /// `external-ip` the client is told another IP for it (XOR-RELAYED-ADDRESS);
    /// [`super::RelayAddress`] holds both, and the core and the I/O layer use the bound one.
    RelayAddr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_the_plain_address() {
        let addr: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        let peer = PeerAddr::from(addr);
        assert_eq!(peer.to_string(), addr.to_string());
        assert_eq!(format!("{peer:?}"), format!("{addr:?}"));
        assert_eq!(SocketAddr::from(peer), addr);
        assert_eq!((peer.ip(), peer.port()), (addr.ip(), addr.port()));
    }
}
