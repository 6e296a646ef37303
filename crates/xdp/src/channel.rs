//! A channel as the fast path sees it: five addresses and a number, nothing of TURN's state.

use std::net::{IpAddr, SocketAddr};

use crate::error::XdpError;

/// One bound TURN channel, both directions.
///
/// Client → peer: ChannelData from `client` to the server's port `server.port()` with channel
/// `number` leaves from `relay` to `peer`, header stripped. Peer → client: a datagram from
/// `peer` to `relay` leaves from `server` to `client` with a ChannelData header.
///
/// The server's listen IP is not part of the client → peer match (the listener may be bound to
/// 0.0.0.0), but it must be concrete here: it is the source address written on the way back.
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are taken as the IPv4 addresses they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel {
    /// The client's transport address, as the server sees it (after NAT).
    pub client: SocketAddr,
    /// The server's address the client sends to; its IP must not be unspecified.
    pub server: SocketAddr,
    /// The channel number, 0x4000..=0x7FFF (RFC 8656 §12 allows up to 0x4FFF; RFC 5766 clients
    /// up to 0x7FFF).
    pub number: u16,
    /// The allocation's relayed transport address; its IP must not be unspecified.
    pub relay: SocketAddr,
    /// The peer's transport address.
    pub peer: SocketAddr,
}

/// Packets and bytes relayed by the kernel for one channel. Bytes are application data, the
/// ChannelData header and padding not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounters {
    /// Datagrams relayed client → peer.
    pub to_peer_packets: u64,
    /// Application bytes relayed client → peer.
    pub to_peer_bytes: u64,
    /// Datagrams relayed peer → client.
    pub to_client_packets: u64,
    /// Application bytes relayed peer → client.
    pub to_client_bytes: u64,
}

/// The IP family of a validated channel: the program never crosses families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family byte of the maps (relay.c: FAMILY_V4 / FAMILY_V6).
    pub(crate) fn byte(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// A channel whose addresses are canonical (no IPv4-mapped IPv6) and of one family.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValidChannel {
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) number: u16,
    pub(crate) relay: SocketAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) family: Family,
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

impl Channel {
    /// Checks that the program can relay this channel, and canonicalizes its addresses.
    pub(crate) fn validate(&self) -> Result<ValidChannel, XdpError> {
        if !(0x4000..=0x7FFF).contains(&self.number) {
            return Err(XdpError::InvalidChannel(format!(
                "channel number {:#06x} is outside 0x4000..=0x7FFF",
                self.number
            )));
        }
        let (client, server, relay, peer) = (
            canonical(self.client),
            canonical(self.server),
            canonical(self.relay),
            canonical(self.peer),
        );
        for (name, addr) in [("server", server), ("relay", relay)] {
            if addr.ip().is_unspecified() {
                return Err(XdpError::InvalidChannel(format!(
                    "the {name} IP is unspecified ({addr}): the program writes it as the source \
                     address, so it must be the concrete address packets arrive on"
                )));
            }
        }
        for (name, addr) in [
            ("client", client),
            ("server", server),
            ("relay", relay),
            ("peer", peer),
        ] {
            if addr.port() == 0 {
                return Err(XdpError::InvalidChannel(format!("the {name} port is 0")));
            }
        }
        let family = Family::of(client.ip());
        for (a, b, x, y) in [
            ("client", "server", client, server),
            ("relay", "peer", relay, peer),
            ("client", "peer", client, peer),
        ] {
            if Family::of(x.ip()) != Family::of(y.ip()) {
                return Err(XdpError::FamilyMismatch(format!(
                    "{a} {x} and {b} {y} are of different IP families; such channels stay in userspace"
                )));
            }
        }
        Ok(ValidChannel {
            client,
            server,
            number: self.number,
            relay,
            peer,
            family,
        })
    }
}

/// An IPv4 channel of documentation addresses, for unit tests.
#[cfg(test)]
pub(crate) fn example_v4() -> Channel {
    Channel {
        client: "192.0.2.1:5000".parse().expect("literal"),
        server: "192.0.2.10:3478".parse().expect("literal"),
        number: 0x4000,
        relay: "192.0.2.10:50000".parse().expect("literal"),
        peer: "198.51.100.7:6000".parse().expect("literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Channel {
        example_v4()
    }

    #[test]
    fn accepts_a_plain_channel() {
        assert_eq!(v4().validate().map(|c| c.family).ok(), Some(Family::V4));
    }

    #[test]
    fn refuses_family_crossing() {
        let channel = Channel {
            peer: "[2001:db8::1]:6000".parse().expect("literal"),
            ..v4()
        };
        assert!(matches!(
            channel.validate(),
            Err(XdpError::FamilyMismatch(_))
        ));
    }

    #[test]
    fn refuses_unspecified_server_and_relay() {
        let server = Channel {
            server: "0.0.0.0:3478".parse().expect("literal"),
            ..v4()
        };
        assert!(matches!(
            server.validate(),
            Err(XdpError::InvalidChannel(_))
        ));
        let relay = Channel {
            relay: "0.0.0.0:50000".parse().expect("literal"),
            ..v4()
        };
        assert!(matches!(relay.validate(), Err(XdpError::InvalidChannel(_))));
    }

    // RFC 8656 §12: channel numbers 0x4000 through 0x4FFF (RFC 5766: up to 0x7FFF).
    #[test]
    fn refuses_numbers_outside_the_channel_range() {
        for number in [0x3FFF, 0x8000, 0] {
            assert!(matches!(
                Channel { number, ..v4() }.validate(),
                Err(XdpError::InvalidChannel(_))
            ));
        }
        assert!(Channel {
            number: 0x7FFF,
            ..v4()
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let channel = Channel {
            client: "[::ffff:192.0.2.1]:5000".parse().expect("literal"),
            ..v4()
        };
        let valid = channel.validate().expect("mapped client is IPv4");
        assert_eq!(valid.client, "192.0.2.1:5000".parse().expect("literal"));
    }
}
