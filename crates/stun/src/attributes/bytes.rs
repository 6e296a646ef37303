//! Opaque byte attributes: DATA, PADDING, PASSWORD, RESERVATION-TOKEN, USERHASH, and the
//! values of MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT.

use crate::attribute::{invalid_length, Attribute, AttributeError, AttributeType};
use crate::header::TransactionId;

/// Attributes whose value is any run of bytes, borrowed from the message.
macro_rules! slice_attribute {
    ($( $(#[$doc:meta])* $name:ident = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a [u8]);

        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                Ok($name(value))
            }

            fn encoded_len(&self) -> usize {
                self.0.len()
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(self.0);
            }
        }
    )*};
}

slice_attribute! {
    /// DATA (RFC 8656 §18.4): the application payload of Send and Data indications.
    Data = DATA;
    /// PADDING (RFC 5780 §7.6): free-form bytes that make the message larger.
    Padding = PADDING;
    /// PASSWORD (RFC 3489 §11.2.7), from the obsolete Shared Secret exchange.
    Password = PASSWORD;
}

/// Attributes whose value is exactly `N` bytes.
macro_rules! array_attribute {
    ($( $(#[$doc:meta])* $name:ident([u8; $n:literal]) = $typ:ident; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl<'a> Attribute<'a> for $name {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                match value.try_into() {
                    Ok(bytes) => Ok($name(bytes)),
                    Err(_) => invalid_length(Self::TYPE, value),
                }
            }

            fn encoded_len(&self) -> usize {
                $n
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(&self.0);
            }
        }
    )*};
}

array_attribute! {
    /// RESERVATION-TOKEN (RFC 8656 §18.10).
    ReservationToken([u8; 8]) = RESERVATION_TOKEN;
    /// USERHASH (RFC 8489 §14.4): SHA-256 of `username ":" realm`.
    Userhash([u8; 32]) = USERHASH;
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1, 20 bytes. Written by
    /// [`crate::MessageWriter::add_message_integrity`], which computes it.
    MessageIntegrity([u8; 20]) = MESSAGE_INTEGRITY;
}

/// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6): a possibly truncated HMAC-SHA256, 16 to 32
/// bytes in steps of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageIntegritySha256<'a>(pub &'a [u8]);

impl<'a> Attribute<'a> for MessageIntegritySha256<'a> {
    const TYPE: AttributeType = AttributeType::MESSAGE_INTEGRITY_SHA256;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if (16..=32).contains(&value.len()) && value.len() % 4 == 0 {
            Ok(MessageIntegritySha256(value))
        } else {
            invalid_length(Self::TYPE, value)
        }
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(self.0);
    }
}

/// FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message XOR 0x5354554E. Written by
/// [`crate::MessageWriter::add_fingerprint`], which computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u32);

impl<'a> Attribute<'a> for Fingerprint {
    const TYPE: AttributeType = AttributeType::FINGERPRINT;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        match <[u8; 4]>::try_from(value) {
            Ok(bytes) => Ok(Fingerprint(u32::from_be_bytes(bytes))),
            Err(_) => invalid_length(Self::TYPE, value),
        }
    }

    fn encoded_len(&self) -> usize {
        4
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        out.copy_from_slice(&self.0.to_be_bytes());
    }
}
