//! Transport-address attributes: the plain form (MAPPED-ADDRESS, RFC 8489 §14.1) and the
//! XOR-ed form (XOR-MAPPED-ADDRESS, §14.2), and every attribute that reuses one of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::attribute::{invalid_length, invalid_value, Attribute, AttributeError, AttributeType};
use crate::header::{TransactionId, MAGIC_COOKIE};

const FAMILY_IPV4: u8 = 0x01;
const FAMILY_IPV6: u8 = 0x02;

/// The 16 bytes an IPv6 address is XOR-ed with: magic cookie then transaction id (§14.2).
fn xor_pad(tid: &TransactionId) -> [u8; 16] {
    let mut pad = [0u8; 16];
    pad[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    pad[4..].copy_from_slice(&tid.0);
    pad
}

fn decode_address(
    attribute: AttributeType,
    value: &[u8],
    tid: &TransactionId,
    xor: bool,
) -> Result<SocketAddr, AttributeError> {
    if value.len() < 4 {
        return invalid_length(attribute, value);
    }
    let mut port = u16::from_be_bytes([value[2], value[3]]);
    let pad = xor_pad(tid);
    if xor {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (value[1], &value[4..]) {
        (FAMILY_IPV4, a) if a.len() == 4 => {
            let mut b = [a[0], a[1], a[2], a[3]];
            if xor {
                b.iter_mut().zip(&pad).for_each(|(x, p)| *x ^= p);
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (FAMILY_IPV6, a) if a.len() == 16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(a);
            if xor {
                b.iter_mut().zip(&pad).for_each(|(x, p)| *x ^= p);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        (FAMILY_IPV4 | FAMILY_IPV6, _) => return invalid_length(attribute, value),
        _ => return invalid_value(attribute, "unknown address family"),
    };
    Ok(SocketAddr::new(ip, port))
}

const fn address_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

fn encode_address(addr: &SocketAddr, out: &mut [u8], tid: &TransactionId, xor: bool) {
    let pad = xor_pad(tid);
    let mut port = addr.port();
    if xor {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    out[0] = 0;
    out[2..4].copy_from_slice(&port.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = FAMILY_IPV4;
            out[4..8].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out[1] = FAMILY_IPV6;
            out[4..20].copy_from_slice(&ip.octets());
        }
    }
    if xor {
        out[4..].iter_mut().zip(&pad).for_each(|(x, p)| *x ^= p);
    }
}

macro_rules! address_attribute {
    ($( $(#[$doc:meta])* $name:ident = $typ:ident, xor: $xor:literal; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub SocketAddr);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], tid: &TransactionId) -> Result<Self, AttributeError> {
                decode_address(Self::TYPE, value, tid, $xor).map($name)
            }

            fn encoded_len(&self) -> usize {
                address_len(&self.0)
            }

            fn encode(&self, out: &mut [u8], tid: &TransactionId) {
                encode_address(&self.0, out, tid, $xor)
            }
        }
    )*};
}

address_attribute! {
    /// MAPPED-ADDRESS (RFC 8489 §14.1): the reflexive address, in the clear. Sent to
    /// RFC 3489 clients, and by RFC 5780 servers alongside XOR-MAPPED-ADDRESS.
    MappedAddress = MAPPED_ADDRESS, xor: false;
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2): the reflexive address, XOR-ed so that NATs that
    /// rewrite addresses in payloads leave it alone.
    XorMappedAddress = XOR_MAPPED_ADDRESS, xor: true;
    /// XOR-PEER-ADDRESS (RFC 8656 §18.3).
    XorPeerAddress = XOR_PEER_ADDRESS, xor: true;
    /// XOR-RELAYED-ADDRESS (RFC 8656 §18.5).
    XorRelayedAddress = XOR_RELAYED_ADDRESS, xor: true;
    /// ALTERNATE-SERVER (RFC 8489 §14.15).
    AlternateServer = ALTERNATE_SERVER, xor: false;
    /// RESPONSE-ORIGIN (RFC 5780 §7.3): where the response was sent from.
    ResponseOrigin = RESPONSE_ORIGIN, xor: false;
    /// OTHER-ADDRESS (RFC 5780 §7.4): the server's alternate IP and port.
    OtherAddress = OTHER_ADDRESS, xor: false;
    /// RESPONSE-ADDRESS (RFC 3489 §11.2.2).
    ResponseAddress = RESPONSE_ADDRESS, xor: false;
    /// SOURCE-ADDRESS (RFC 3489 §11.2.5): where the response was sent from.
    SourceAddress = SOURCE_ADDRESS, xor: false;
    /// CHANGED-ADDRESS (RFC 3489 §11.2.3): the server's alternate IP and port.
    ChangedAddress = CHANGED_ADDRESS, xor: false;
    /// REFLECTED-FROM (RFC 3489 §11.2.11).
    ReflectedFrom = REFLECTED_FROM, xor: false;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<'a, A: Attribute<'a> + PartialEq + std::fmt::Debug>(a: A, buf: &'a mut [u8]) {
        let tid = TransactionId([7; 12]);
        let n = a.encoded_len();
        a.encode(&mut buf[..n], &tid);
        let back = A::decode(&buf[..n], &tid).expect("round trip");
        assert_eq!(back, a);
    }

    #[test]
    fn v4_and_v6_round_trip() {
        let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
            .parse()
            .unwrap();
        round_trip(XorMappedAddress(v4), &mut [0; 32]);
        round_trip(XorMappedAddress(v6), &mut [0; 32]);
        round_trip(MappedAddress(v6), &mut [0; 32]);
        round_trip(OtherAddress(v4), &mut [0; 32]);
    }

    // RFC 8489 §14.2: X-Port is the port XOR-ed with the 16 most significant bits of the cookie.
    #[test]
    fn xor_port_uses_the_cookie() {
        let mut out = [0u8; 8];
        XorMappedAddress("0.0.0.0:0".parse().unwrap()).encode(&mut out, &TransactionId([0; 12]));
        assert_eq!(out, [0, 1, 0x21, 0x12, 0x21, 0x12, 0xA4, 0x42]);
    }

    #[test]
    fn bad_family_and_length_are_errors() {
        let tid = TransactionId([0; 12]);
        assert!(matches!(
            MappedAddress::decode(&[0, 3, 0, 1, 1, 2, 3, 4], &tid),
            Err(AttributeError::InvalidValue { .. })
        ));
        assert!(matches!(
            MappedAddress::decode(&[0, 1, 0, 1, 1, 2, 3], &tid),
            Err(AttributeError::InvalidLength { .. })
        ));
        assert!(MappedAddress::decode(&[0, 2, 0, 1, 1, 2, 3, 4], &tid).is_err());
    }
}
