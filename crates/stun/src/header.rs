//! The 20-byte STUN header (RFC 8489 §5): message type, length, magic cookie, transaction id.

use std::fmt;

/// The fixed value in bytes 4..8 of every RFC 5389/8489 message (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;

/// Size of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;

/// A STUN method (RFC 8489 §5, 12 bits). Kept open: unknown methods are representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(u16);

impl Method {
    /// Binding (RFC 8489 §18.2).
    pub const BINDING: Method = Method(0x001);
    /// Shared Secret, RFC 3489 only; obsolete, never answered.
    pub const SHARED_SECRET: Method = Method(0x002);
    /// Allocate (RFC 8656 §17).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656 §17).
    pub const REFRESH: Method = Method(0x004);
    /// Send, indication only (RFC 8656 §17).
    pub const SEND: Method = Method(0x006);
    /// Data, indication only (RFC 8656 §17).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656 §17).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656 §17).
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect (RFC 6062 §6.1).
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind (RFC 6062 §6.1).
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt (RFC 6062 §6.1).
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);

    /// A method from its 12-bit number; `None` when it does not fit in 12 bits.
    pub const fn new(number: u16) -> Option<Method> {
        if number <= 0x0FFF {
            Some(Method(number))
        } else {
            None
        }
    }

    /// The 12-bit method number.
    pub const fn number(self) -> u16 {
        self.0
    }
}

/// The class of a STUN message (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Expects a response.
    Request,
    /// Expects nothing back.
    Indication,
    /// Success response.
    Success,
    /// Error response.
    Error,
}

impl Class {
    const fn bits(self) -> u16 {
        match self {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        }
    }
}

/// Method and class, packed into the 14-bit message type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The method.
    pub method: Method,
    /// The class.
    pub class: Class,
}

impl MessageType {
    /// Binding request, the message most of the internet sends.
    pub const BINDING_REQUEST: MessageType = MessageType::new(Method::BINDING, Class::Request);

    /// Combines a method and a class.
    pub const fn new(method: Method, class: Class) -> MessageType {
        MessageType { method, class }
    }

    /// The 16-bit wire value. The class bits C1/C0 sit at bits 8 and 4, interleaved with
    /// the method bits (RFC 8489 §5, figure 3).
    pub const fn to_u16(self) -> u16 {
        let m = self.method.0;
        let c = self.class.bits();
        (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2) | ((c & 1) << 4) | ((c & 2) << 7)
    }

    /// Decodes the wire value; `None` when the two top bits are not zero (not STUN).
    pub const fn from_u16(value: u16) -> Option<MessageType> {
        if value & 0xC000 != 0 {
            return None;
        }
        let method = (value & 0x000F) | ((value >> 1) & 0x0070) | ((value >> 2) & 0x0F80);
        let class = match ((value >> 4) & 1) | ((value >> 7) & 2) {
            0 => Class::Request,
            1 => Class::Indication,
            2 => Class::Success,
            _ => Class::Error,
        };
        Some(MessageType {
            method: Method(method),
            class,
        })
    }

    /// The same method with another class, e.g. the success response to a request.
    pub const fn with_class(self, class: Class) -> MessageType {
        MessageType {
            method: self.method,
            class,
        }
    }
}

/// The 96-bit transaction id (RFC 8489 §5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TransactionId(pub [u8; 12]);

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransactionId(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// A decoded STUN header.
///
/// RFC 3489 messages carry a 128-bit transaction id instead of cookie + 96 bits; we keep the
/// first four bytes in `cookie` so that a classic request can be answered with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Method and class.
    pub message_type: MessageType,
    /// Length of the attributes, in bytes (excludes the header).
    pub length: u16,
    /// Bytes 4..8: [`MAGIC_COOKIE`] for RFC 5389/8489 messages.
    pub cookie: u32,
    /// Bytes 8..20.
    pub transaction_id: TransactionId,
}

impl Header {
    /// True when the message is a classic RFC 3489 one (no magic cookie, RFC 8489 §12).
    pub const fn is_rfc3489(&self) -> bool {
        self.cookie != MAGIC_COOKIE
    }

    /// Reads a header from the first 20 bytes. Checks only what the header alone can tell:
    /// the two leading zero bits and a length that is a multiple of four (RFC 8489 §5).
    pub fn parse(bytes: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        let message_type = MessageType::from_u16(u16::from_be_bytes([h[0], h[1]]))?;
        let length = u16::from_be_bytes([h[2], h[3]]);
        if length % 4 != 0 {
            return None;
        }
        let cookie = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&h[8..20]);
        Some(Header {
            message_type,
            length,
            cookie,
            transaction_id: TransactionId(tid),
        })
    }

    /// Writes the header into the first 20 bytes of `out`.
    pub(crate) fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0..2].copy_from_slice(&self.message_type.to_u16().to_be_bytes());
        out[2..4].copy_from_slice(&self.length.to_be_bytes());
        out[4..8].copy_from_slice(&self.cookie.to_be_bytes());
        out[8..20].copy_from_slice(&self.transaction_id.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §5: Binding request 0x0001, success 0x0101, error 0x0111, indication 0x0011.
    #[test]
    fn message_type_wire_values_match_rfc_8489_section_5() {
        let b = Method::BINDING;
        assert_eq!(MessageType::new(b, Class::Request).to_u16(), 0x0001);
        assert_eq!(MessageType::new(b, Class::Indication).to_u16(), 0x0011);
        assert_eq!(MessageType::new(b, Class::Success).to_u16(), 0x0101);
        assert_eq!(MessageType::new(b, Class::Error).to_u16(), 0x0111);
        // RFC 8656 §17: Send indication 0x0016, Data indication 0x0017.
        assert_eq!(
            MessageType::new(Method::SEND, Class::Indication).to_u16(),
            0x0016
        );
        assert_eq!(
            MessageType::new(Method::DATA, Class::Indication).to_u16(),
            0x0017
        );
        assert_eq!(
            MessageType::new(Method::ALLOCATE, Class::Error).to_u16(),
            0x0113
        );
    }

    #[test]
    fn every_14_bit_type_round_trips() {
        for v in 0u16..0x4000 {
            let t = MessageType::from_u16(v).expect("14-bit values are STUN types");
            assert_eq!(t.to_u16(), v);
        }
        assert!(MessageType::from_u16(0x4000).is_none());
        assert!(MessageType::from_u16(0x8001).is_none());
    }
}
