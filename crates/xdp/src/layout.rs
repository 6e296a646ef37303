//! The byte layout of the maps' keys and values, mirrored from relay.c's structs: change both
//! together. Plain byte arrays keep this crate free of `unsafe` (aya's `Pod` covers `[u8; N]`).
//!
//! - Addresses are 16 bytes for both families; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`),
//!   with a family byte (4 or 6) beside it.
//! - Ports and channel numbers are in **network byte order**, as on the wire, so the program
//!   copies them from packets into keys without swapping.
//! - Counters are u64 in host byte order; the program adds to them atomically.

use std::net::{IpAddr, SocketAddr};

use crate::channel::{ChannelCounters, ValidChannel};

/// `struct client_key`: client ip, client port, server port, channel number, family, pad.
pub(crate) type ClientKey = [u8; 24];
/// `struct client_value`: relay ip, peer ip, relay port, peer port, family, flags, pad, packets, bytes.
pub(crate) type ClientValue = [u8; 56];
/// `struct peer_key`: peer ip, relay ip, peer port, relay port, family, pad.
pub(crate) type PeerKey = [u8; 40];
/// `struct peer_value`: server ip, client ip, server port, client port, channel, family, flags,
/// packets, bytes.
pub(crate) type PeerValue = [u8; 56];

/// Where the two counters sit in both value types.
const PACKETS: usize = 40;
const BYTES: usize = 48;

fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Writes an address's 16 bytes at `at` and its port (network order) at `port_at`.
fn put(buf: &mut [u8], at: usize, port_at: usize, addr: SocketAddr) {
    buf[at..at + 16].copy_from_slice(&ip16(addr.ip()));
    buf[port_at..port_at + 2].copy_from_slice(&addr.port().to_be_bytes());
}

fn put_counters(buf: &mut [u8], packets: u64, bytes: u64) {
    buf[PACKETS..PACKETS + 8].copy_from_slice(&packets.to_ne_bytes());
    buf[BYTES..BYTES + 8].copy_from_slice(&bytes.to_ne_bytes());
}

/// (packets, bytes) of a client or peer value.
pub(crate) fn counters_of(value: &[u8; 56]) -> (u64, u64) {
    let mut packets = [0; 8];
    let mut bytes = [0; 8];
    packets.copy_from_slice(&value[PACKETS..PACKETS + 8]);
    bytes.copy_from_slice(&value[BYTES..BYTES + 8]);
    (u64::from_ne_bytes(packets), u64::from_ne_bytes(bytes))
}

pub(crate) fn client_key(c: &ValidChannel) -> ClientKey {
    let mut key = [0; 24];
    put(&mut key, 0, 16, c.client);
    key[18..20].copy_from_slice(&c.server.port().to_be_bytes());
    key[20..22].copy_from_slice(&c.number.to_be_bytes());
    key[22] = c.family.byte();
    key
}

/// The value with counters carried over (an overwrite keeps what was counted).
pub(crate) fn client_value(c: &ValidChannel, packets: u64, bytes: u64) -> ClientValue {
    let mut value = [0; 56];
    put(&mut value, 0, 32, c.relay);
    put(&mut value, 16, 34, c.peer);
    value[36] = c.family.byte();
    value[37] = 0; // flags: enabled
    put_counters(&mut value, packets, bytes);
    value
}

pub(crate) fn peer_key(c: &ValidChannel) -> PeerKey {
    let mut key = [0; 40];
    put(&mut key, 0, 32, c.peer);
    put(&mut key, 16, 34, c.relay);
    key[36] = c.family.byte();
    key
}

pub(crate) fn peer_value(c: &ValidChannel, packets: u64, bytes: u64) -> PeerValue {
    let mut value = [0; 56];
    put(&mut value, 0, 32, c.server);
    put(&mut value, 16, 34, c.client);
    value[36..38].copy_from_slice(&c.number.to_be_bytes());
    value[38] = c.family.byte();
    value[39] = 0; // flags: enabled
    put_counters(&mut value, packets, bytes);
    value
}

/// Both directions' counters from the two values (a missing side counts as zero).
pub(crate) fn channel_counters(
    client: Option<&ClientValue>,
    peer: Option<&PeerValue>,
) -> ChannelCounters {
    let (to_peer_packets, to_peer_bytes) = client.map(counters_of).unwrap_or_default();
    let (to_client_packets, to_client_bytes) = peer.map(counters_of).unwrap_or_default();
    ChannelCounters {
        to_peer_packets,
        to_peer_bytes,
        to_client_packets,
        to_client_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{example_v4, Channel};

    fn channel() -> ValidChannel {
        Channel {
            number: 0x4001,
            ..example_v4()
        }
        .validate()
        .expect("valid")
    }

    #[test]
    fn client_key_is_mapped_ip_then_ports_and_number_in_network_order() {
        let key = client_key(&channel());
        assert_eq!(
            &key[..16],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]
        );
        assert_eq!(&key[16..24], &[0x13, 0x88, 0x0d, 0x96, 0x40, 0x01, 4, 0]);
    }

    #[test]
    fn peer_value_carries_server_client_and_channel() {
        let value = peer_value(&channel(), 3, 300);
        assert_eq!(&value[12..16], &[192, 0, 2, 10]);
        assert_eq!(&value[28..32], &[192, 0, 2, 1]);
        assert_eq!(&value[32..40], &[0x0d, 0x96, 0x13, 0x88, 0x40, 0x01, 4, 0]);
        assert_eq!(counters_of(&value), (3, 300));
    }
}
