//! Fixed-size numeric and flag attributes (ICE, TURN, RFC 5780).

use crate::attribute::{invalid_length, invalid_value, Attribute, AttributeError, AttributeType};
use crate::header::TransactionId;

fn exact<const N: usize>(
    attribute: AttributeType,
    value: &[u8],
) -> Result<[u8; N], AttributeError> {
    match value.try_into() {
        Ok(bytes) => Ok(bytes),
        Err(_) => invalid_length(attribute, value),
    }
}

/// Attributes holding one big-endian integer that fills the value.
macro_rules! integer_attribute {
    ($( $(#[$doc:meta])* $name:ident($int:ty) = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $int);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                exact(Self::TYPE, value).map(|b| $name(<$int>::from_be_bytes(b)))
            }

            fn encoded_len(&self) -> usize {
                std::mem::size_of::<$int>()
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(&self.0.to_be_bytes());
            }
        }
    )*};
}

integer_attribute! {
    /// PRIORITY (RFC 8445 §7.1.1).
    Priority(u32) = PRIORITY;
    /// ICE-CONTROLLED with its tie-breaker (RFC 8445 §7.1.3).
    IceControlled(u64) = ICE_CONTROLLED;
    /// ICE-CONTROLLING with its tie-breaker (RFC 8445 §7.1.3).
    IceControlling(u64) = ICE_CONTROLLING;
    /// LIFETIME in seconds (RFC 8656 §18.2).
    Lifetime(u32) = LIFETIME;
    /// CONNECTION-ID (RFC 6062 §6.2.1).
    ConnectionId(u32) = CONNECTION_ID;
    /// CACHE-TIMEOUT in seconds (RFC 5780 §7.7).
    CacheTimeout(u32) = CACHE_TIMEOUT;
}

/// Attributes holding a 16-bit number followed by two reserved bytes.
macro_rules! u16_attribute {
    ($( $(#[$doc:meta])* $name:ident = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u16);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                // The two trailing bytes are RFFU: ignored on reception.
                exact::<4>(Self::TYPE, value).map(|b| $name(u16::from_be_bytes([b[0], b[1]])))
            }

            fn encoded_len(&self) -> usize {
                4
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out[..2].copy_from_slice(&self.0.to_be_bytes());
                out[2..].fill(0);
            }
        }
    )*};
}

u16_attribute! {
    /// CHANNEL-NUMBER (RFC 8656 §18.1).
    ChannelNumber = CHANNEL_NUMBER;
    /// RESPONSE-PORT (RFC 5780 §7.5).
    ResponsePort = RESPONSE_PORT;
}

/// An address family number as used by REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
/// Open, so that a server can answer 440 to a family it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressFamily(pub u8);

impl AddressFamily {
    /// IPv4.
    pub const IPV4: AddressFamily = AddressFamily(0x01);
    /// IPv6.
    pub const IPV6: AddressFamily = AddressFamily(0x02);
}

/// Attributes holding one byte followed by three reserved bytes.
macro_rules! leading_byte_attribute {
    ($( $(#[$doc:meta])* $name:ident($inner:ty, $wrap:expr, $unwrap:expr) = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub $inner);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                exact::<4>(Self::TYPE, value).map(|b| $name($wrap(b[0])))
            }

            fn encoded_len(&self) -> usize {
                4
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out[0] = $unwrap(self.0);
                out[1..].fill(0);
            }
        }
    )*};
}

leading_byte_attribute! {
    /// REQUESTED-TRANSPORT: an IP protocol number, 17 for UDP (RFC 8656 §18.8).
    RequestedTransport(u8, |b| b, |v| v) = REQUESTED_TRANSPORT;
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.6).
    RequestedAddressFamily(AddressFamily, AddressFamily, |f: AddressFamily| f.0) = REQUESTED_ADDRESS_FAMILY;
    /// ADDITIONAL-ADDRESS-FAMILY (RFC 8656 §18.11).
    AdditionalAddressFamily(AddressFamily, AddressFamily, |f: AddressFamily| f.0) = ADDITIONAL_ADDRESS_FAMILY;
}

impl RequestedTransport {
    /// The IP protocol number of UDP, the only one RFC 8656 allows.
    pub const UDP: u8 = 17;
    /// The IP protocol number of TCP (RFC 6062).
    pub const TCP: u8 = 6;
}

/// EVEN-PORT (RFC 8656 §18.7): one byte, whose top bit asks to reserve the next port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvenPort {
    /// The R flag: reserve the next-higher port too.
    pub reserve_next: bool,
}

impl<'a> Attribute<'a> for EvenPort {
    const TYPE: AttributeType = AttributeType::EVEN_PORT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        // RFC 8656 §18.7: the RFFU bits are ignored on reception.
        exact::<1>(Self::TYPE, value).map(|b| EvenPort {
            reserve_next: b[0] & 0x80 != 0,
        })
    }

    fn encoded_len(&self) -> usize {
        1
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out[0] = if self.reserve_next { 0x80 } else { 0 };
    }
}

/// CHANGE-REQUEST (RFC 5780 §7.2): ask the server to answer from its other IP and/or port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChangeRequest {
    /// The A flag: answer from the other IP address.
    pub change_ip: bool,
    /// The B flag: answer from the other port.
    pub change_port: bool,
}

impl<'a> Attribute<'a> for ChangeRequest {
    const TYPE: AttributeType = AttributeType::CHANGE_REQUEST;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let flags = u32::from_be_bytes(exact(Self::TYPE, value)?);
        Ok(ChangeRequest {
            change_ip: flags & 0x4 != 0,
            change_port: flags & 0x2 != 0,
        })
    }

    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        let flags = (u32::from(self.change_ip) << 2) | (u32::from(self.change_port) << 1);
        out.copy_from_slice(&flags.to_be_bytes());
    }
}

/// Attributes that are present or absent, with an empty value.
macro_rules! flag_attribute {
    ($( $(#[$doc:meta])* $name:ident = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name;

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                if value.is_empty() { Ok($name) } else { invalid_length(Self::TYPE, value) }
            }

            fn encoded_len(&self) -> usize {
                0
            }

            fn encode(&self, _: &mut [u8], _: &TransactionId) {}
        }
    )*};
}

flag_attribute! {
    /// USE-CANDIDATE (RFC 8445 §7.1.2).
    UseCandidate = USE_CANDIDATE;
    /// DONT-FRAGMENT (RFC 8656 §18.9).
    DontFragment = DONT_FRAGMENT;
}

/// Rejects a family byte that is neither IPv4 nor IPv6, for callers that need a known family.
pub fn known_family(attribute: AttributeType, family: AddressFamily) -> Result<(), AttributeError> {
    if family == AddressFamily::IPV4 || family == AddressFamily::IPV6 {
        Ok(())
    } else {
        invalid_value(attribute, "unknown address family")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_request_flags_are_bits_a_and_b() {
        // RFC 5780 §7.2: A (change IP) is 0x4, B (change port) is 0x2.
        let tid = TransactionId::default();
        let both = ChangeRequest::decode(&[0, 0, 0, 6], &tid).unwrap();
        assert!(both.change_ip && both.change_port);
        let port = ChangeRequest::decode(&[0, 0, 0, 2], &tid).unwrap();
        assert!(!port.change_ip && port.change_port);
        assert!(ChangeRequest::decode(&[0, 0, 6], &tid).is_err());
    }

    #[test]
    fn reserved_bytes_are_ignored_on_reception() {
        let tid = TransactionId::default();
        // RFC 8656 §18.1: RFFU MUST be ignored on reception.
        assert_eq!(
            ChannelNumber::decode(&[0x40, 0x01, 0xff, 0xff], &tid),
            Ok(ChannelNumber(0x4001))
        );
        assert_eq!(
            RequestedTransport::decode(&[17, 1, 2, 3], &tid),
            Ok(RequestedTransport(17))
        );
        assert_eq!(
            EvenPort::decode(&[0xff], &tid),
            Ok(EvenPort { reserve_next: true })
        );
        assert!(UseCandidate::decode(&[0], &tid).is_err());
    }
}
