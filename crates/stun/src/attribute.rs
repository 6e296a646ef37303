//! Attribute types and the trait every typed attribute implements (RFC 8489 §14, §18.3).

use std::fmt;

use crate::header::TransactionId;

/// A 16-bit attribute type. Open: unknown types are representable and kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeType(pub u16);

macro_rules! attribute_types {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $text:literal; )*) => {
        impl AttributeType {
            $( $(#[$doc])* pub const $name: AttributeType = AttributeType($value); )*

            /// The attribute's name as the RFCs spell it, when the codec knows the type.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

attribute_types! {
    /// RFC 8489 §14.1.
    MAPPED_ADDRESS = 0x0001, "MAPPED-ADDRESS";
    /// RFC 3489 §11.2.2.
    RESPONSE_ADDRESS = 0x0002, "RESPONSE-ADDRESS";
    /// RFC 5780 §7.2 (was RFC 3489 §11.2.4).
    CHANGE_REQUEST = 0x0003, "CHANGE-REQUEST";
    /// RFC 3489 §11.2.5.
    SOURCE_ADDRESS = 0x0004, "SOURCE-ADDRESS";
    /// RFC 3489 §11.2.3.
    CHANGED_ADDRESS = 0x0005, "CHANGED-ADDRESS";
    /// RFC 8489 §14.3.
    USERNAME = 0x0006, "USERNAME";
    /// RFC 3489 §11.2.7.
    PASSWORD = 0x0007, "PASSWORD";
    /// RFC 8489 §14.5.
    MESSAGE_INTEGRITY = 0x0008, "MESSAGE-INTEGRITY";
    /// RFC 8489 §14.8.
    ERROR_CODE = 0x0009, "ERROR-CODE";
    /// RFC 8489 §14.9.
    UNKNOWN_ATTRIBUTES = 0x000A, "UNKNOWN-ATTRIBUTES";
    /// RFC 3489 §11.2.11.
    REFLECTED_FROM = 0x000B, "REFLECTED-FROM";
    /// RFC 8656 §18.1.
    CHANNEL_NUMBER = 0x000C, "CHANNEL-NUMBER";
    /// RFC 8656 §18.2.
    LIFETIME = 0x000D, "LIFETIME";
    /// RFC 8656 §18.3.
    XOR_PEER_ADDRESS = 0x0012, "XOR-PEER-ADDRESS";
    /// RFC 8656 §18.4.
    DATA = 0x0013, "DATA";
    /// RFC 8489 §14.9.
    REALM = 0x0014, "REALM";
    /// RFC 8489 §14.10.
    NONCE = 0x0015, "NONCE";
    /// RFC 8656 §18.5.
    XOR_RELAYED_ADDRESS = 0x0016, "XOR-RELAYED-ADDRESS";
    /// RFC 8656 §18.6.
    REQUESTED_ADDRESS_FAMILY = 0x0017, "REQUESTED-ADDRESS-FAMILY";
    /// RFC 8656 §18.7.
    EVEN_PORT = 0x0018, "EVEN-PORT";
    /// RFC 8656 §18.8.
    REQUESTED_TRANSPORT = 0x0019, "REQUESTED-TRANSPORT";
    /// RFC 8656 §18.9.
    DONT_FRAGMENT = 0x001A, "DONT-FRAGMENT";
    /// RFC 8489 §14.6.
    MESSAGE_INTEGRITY_SHA256 = 0x001C, "MESSAGE-INTEGRITY-SHA256";
    /// RFC 8489 §14.12.
    PASSWORD_ALGORITHM = 0x001D, "PASSWORD-ALGORITHM";
    /// RFC 8489 §14.4.
    USERHASH = 0x001E, "USERHASH";
    /// RFC 8489 §14.2.
    XOR_MAPPED_ADDRESS = 0x0020, "XOR-MAPPED-ADDRESS";
    /// RFC 8656 §18.10.
    RESERVATION_TOKEN = 0x0022, "RESERVATION-TOKEN";
    /// RFC 8445 §16.1.
    PRIORITY = 0x0024, "PRIORITY";
    /// RFC 8445 §16.1.
    USE_CANDIDATE = 0x0025, "USE-CANDIDATE";
    /// RFC 5780 §7.6.
    PADDING = 0x0026, "PADDING";
    /// RFC 5780 §7.5.
    RESPONSE_PORT = 0x0027, "RESPONSE-PORT";
    /// RFC 6062 §6.2.1.
    CONNECTION_ID = 0x002A, "CONNECTION-ID";
    /// RFC 8656 §18.11.
    ADDITIONAL_ADDRESS_FAMILY = 0x8000, "ADDITIONAL-ADDRESS-FAMILY";
    /// RFC 8656 §18.12.
    ADDRESS_ERROR_CODE = 0x8001, "ADDRESS-ERROR-CODE";
    /// RFC 8489 §14.11.
    PASSWORD_ALGORITHMS = 0x8002, "PASSWORD-ALGORITHMS";
    /// RFC 8489 §14.16.
    ALTERNATE_DOMAIN = 0x8003, "ALTERNATE-DOMAIN";
    /// RFC 8656 §18.13.
    ICMP = 0x8004, "ICMP";
    /// RFC 8489 §14.14.
    SOFTWARE = 0x8022, "SOFTWARE";
    /// RFC 8489 §14.15.
    ALTERNATE_SERVER = 0x8023, "ALTERNATE-SERVER";
    /// RFC 5780 §7.7 (CACHE-TIMEOUT).
    CACHE_TIMEOUT = 0x8027, "CACHE-TIMEOUT";
    /// RFC 8489 §14.7.
    FINGERPRINT = 0x8028, "FINGERPRINT";
    /// RFC 8445 §16.1.
    ICE_CONTROLLED = 0x8029, "ICE-CONTROLLED";
    /// RFC 8445 §16.1.
    ICE_CONTROLLING = 0x802A, "ICE-CONTROLLING";
    /// RFC 5780 §7.3.
    RESPONSE_ORIGIN = 0x802B, "RESPONSE-ORIGIN";
    /// RFC 5780 §7.4.
    OTHER_ADDRESS = 0x802C, "OTHER-ADDRESS";
}

impl AttributeType {
    /// Types 0x0000–0x7FFF must be understood by the receiver, or the request fails with
    /// 420 (RFC 8489 §14).
    pub const fn is_comprehension_required(self) -> bool {
        self.0 < 0x8000
    }

    /// True when this codec can parse the type.
    pub const fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Debug for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "AttributeType({:#06x})", self.0),
        }
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Why an attribute value could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttributeError {
    /// The value has a length its type does not allow.
    #[error("{attribute}: a value of {length} bytes is not allowed")]
    InvalidLength {
        /// The attribute type.
        attribute: AttributeType,
        /// The length found.
        length: usize,
    },
    /// The value has the right length but a content its type does not allow.
    #[error("{attribute}: {reason}")]
    InvalidValue {
        /// The attribute type.
        attribute: AttributeType,
        /// What is wrong, in a few words.
        reason: &'static str,
    },
}

/// A typed attribute: decoded from a value borrowed from the message, encoded into a
/// caller's buffer.
///
/// `decode` receives the value without padding; `encode` writes exactly `encoded_len()`
/// bytes (the writer adds the padding). The transaction id is needed by the XOR-ed address
/// attributes (RFC 8489 §14.2).
pub trait Attribute<'a>: Sized {
    /// The attribute's type number.
    const TYPE: AttributeType;

    /// Reads the value.
    fn decode(value: &'a [u8], transaction_id: &TransactionId) -> Result<Self, AttributeError>;

    /// Length of the encoded value, before padding.
    fn encoded_len(&self) -> usize;

    /// Writes the value into `out`, which is exactly `encoded_len()` bytes long.
    fn encode(&self, out: &mut [u8], transaction_id: &TransactionId);
}

/// Length of an attribute value once padded to a 4-byte boundary (RFC 8489 §14).
pub const fn padded_len(len: usize) -> usize {
    (len + 3) & !3
}

/// Shorthand for [`AttributeError::InvalidLength`] in decoders.
pub(crate) fn invalid_length<T>(
    attribute: AttributeType,
    value: &[u8],
) -> Result<T, AttributeError> {
    Err(AttributeError::InvalidLength {
        attribute,
        length: value.len(),
    })
}

/// Shorthand for [`AttributeError::InvalidValue`] in decoders.
pub(crate) fn invalid_value<T>(
    attribute: AttributeType,
    reason: &'static str,
) -> Result<T, AttributeError> {
    Err(AttributeError::InvalidValue { attribute, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §14: 0x0000-0x7FFF comprehension-required, 0x8000-0xFFFF optional.
    #[test]
    fn comprehension_ranges() {
        assert!(AttributeType::USERNAME.is_comprehension_required());
        assert!(AttributeType(0x7FFF).is_comprehension_required());
        assert!(!AttributeType::SOFTWARE.is_comprehension_required());
        assert!(!AttributeType(0x8000).is_comprehension_required());
    }

    #[test]
    fn names_and_padding() {
        assert_eq!(
            AttributeType::XOR_MAPPED_ADDRESS.name(),
            Some("XOR-MAPPED-ADDRESS")
        );
        assert_eq!(AttributeType(0x0031).name(), None);
        assert_eq!(
            format!("{:?}", AttributeType(0x0031)),
            "AttributeType(0x0031)"
        );
        assert_eq!(padded_len(0), 0);
        assert_eq!(padded_len(1), 4);
        assert_eq!(padded_len(4), 4);
        assert_eq!(padded_len(9), 12);
    }
}
