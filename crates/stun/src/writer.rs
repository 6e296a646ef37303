//! Encoding: [`MessageWriter`] writes a message into a caller's buffer, attribute by
//! attribute, keeping the header's length current. It allocates nothing.

use crate::attribute::{padded_len, Attribute, AttributeType};
use crate::attributes::{AnyAttribute, Fingerprint};
use crate::fingerprint::fingerprint;
use crate::header::{Header, MessageType, TransactionId, HEADER_LEN, MAGIC_COOKIE};
use crate::integrity;

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The buffer is too small for the message.
    #[error("buffer too small")]
    BufferTooSmall,
    /// A value longer than 65535 bytes, or a message longer than 65535 + 20 bytes.
    #[error("{0}: value too long")]
    TooLong(AttributeType),
    /// The attribute may not follow what was already written (RFC 8489 §14.5–14.7: only
    /// MESSAGE-INTEGRITY-SHA256 and FINGERPRINT follow MESSAGE-INTEGRITY, only FINGERPRINT
    /// follows -SHA256, nothing follows FINGERPRINT).
    #[error("{0} may not follow the integrity attributes or FINGERPRINT")]
    OutOfOrder(AttributeType),
}

/// What the writer has already closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Open,
    AfterIntegrity,
    AfterIntegritySha256,
    AfterFingerprint,
}

/// Writes one STUN message into a borrowed buffer.
///
/// ```
/// # use stun::{MessageWriter, MessageType, TransactionId, attributes::XorMappedAddress};
/// let mut buf = [0u8; 64];
/// let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId([1; 12]))?;
/// w.add(&XorMappedAddress("192.0.2.1:3478".parse().unwrap()))?;
/// w.add_fingerprint()?;
/// let len = w.finish();
/// assert_eq!(len, 20 + 12 + 8);
/// # Ok::<(), stun::EncodeError>(())
/// ```
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
    transaction_id: TransactionId,
    stage: Stage,
}

impl<'b> MessageWriter<'b> {
    /// Starts an RFC 5389/8489 message (with the magic cookie).
    pub fn new(
        buf: &'b mut [u8],
        message_type: MessageType,
        transaction_id: TransactionId,
    ) -> Result<Self, EncodeError> {
        Self::with_cookie(buf, message_type, MAGIC_COOKIE, transaction_id)
    }

    /// Starts a message with an explicit cookie field: answering an RFC 3489 request means
    /// echoing its whole 128-bit transaction id, of which the cookie field is the first part.
    pub fn with_cookie(
        buf: &'b mut [u8],
        message_type: MessageType,
        cookie: u32,
        transaction_id: TransactionId,
    ) -> Result<Self, EncodeError> {
        let head: &mut [u8; HEADER_LEN] = buf
            .get_mut(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(EncodeError::BufferTooSmall)?;
        Header {
            message_type,
            length: 0,
            cookie,
            transaction_id,
        }
        .write(head);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
            transaction_id,
            stage: Stage::Open,
        })
    }

    /// Starts the response to `request`: same method, same (full) transaction id.
    pub fn response(
        buf: &'b mut [u8],
        request: &Header,
        class: crate::Class,
    ) -> Result<Self, EncodeError> {
        Self::with_cookie(
            buf,
            request.message_type.with_class(class),
            request.cookie,
            request.transaction_id,
        )
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a message has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends a typed attribute.
    pub fn add<'a, A: Attribute<'a>>(&mut self, attribute: &A) -> Result<(), EncodeError> {
        let tid = self.transaction_id;
        let value = self.reserve(A::TYPE, attribute.encoded_len())?;
        attribute.encode(value, &tid);
        Ok(())
    }

    /// Appends an attribute of any type, typed or unknown.
    pub fn add_any(&mut self, attribute: &AnyAttribute<'_>) -> Result<(), EncodeError> {
        let tid = self.transaction_id;
        let value = self.reserve(attribute.attribute_type(), attribute.encoded_len())?;
        attribute.encode(value, &tid);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY, the HMAC-SHA1 of everything before it (RFC 8489 §14.5).
    pub fn add_message_integrity(&mut self, key: &[u8]) -> Result<(), EncodeError> {
        let at = self.len;
        self.reserve(AttributeType::MESSAGE_INTEGRITY, 20)?;
        let mac = integrity::compute_sha1(&self.buf[..at], key);
        self.buf[at + 4..at + 24].copy_from_slice(&mac);
        Ok(())
    }

    /// Appends MESSAGE-INTEGRITY-SHA256, the full 32-byte HMAC-SHA256 (RFC 8489 §14.6).
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> Result<(), EncodeError> {
        let at = self.len;
        self.reserve(AttributeType::MESSAGE_INTEGRITY_SHA256, 32)?;
        let mac = integrity::compute_sha256(&self.buf[..at], key);
        self.buf[at + 4..at + 36].copy_from_slice(&mac);
        Ok(())
    }

    /// Appends FINGERPRINT, which closes the message (RFC 8489 §14.7).
    pub fn add_fingerprint(&mut self) -> Result<(), EncodeError> {
        let at = self.len;
        self.reserve(AttributeType::FINGERPRINT, 4)?;
        let value = fingerprint(&self.buf[..at]);
        let tid = self.transaction_id;
        Fingerprint(value).encode(&mut self.buf[at + 4..at + 8], &tid);
        Ok(())
    }

    /// Ends the message; returns its length. The bytes are `buf[..len]`.
    pub fn finish(self) -> usize {
        self.len
    }

    /// Checks order and room, writes the attribute header and padding, updates the message
    /// length, and returns the value bytes for the caller to fill.
    fn reserve(
        &mut self,
        attribute: AttributeType,
        value_len: usize,
    ) -> Result<&mut [u8], EncodeError> {
        let next_stage = match attribute {
            AttributeType::MESSAGE_INTEGRITY => Stage::AfterIntegrity,
            AttributeType::MESSAGE_INTEGRITY_SHA256 => Stage::AfterIntegritySha256,
            AttributeType::FINGERPRINT => Stage::AfterFingerprint,
            _ => Stage::Open,
        };
        let in_order = if next_stage == Stage::Open {
            self.stage == Stage::Open
        } else {
            next_stage > self.stage
        };
        if !in_order {
            return Err(EncodeError::OutOfOrder(attribute));
        }
        let value_len16 = u16::try_from(value_len).map_err(|_| EncodeError::TooLong(attribute))?;
        let start = self.len;
        let end = start + 4 + padded_len(value_len);
        let message_len =
            u16::try_from(end - HEADER_LEN).map_err(|_| EncodeError::TooLong(attribute))?;
        let area = self
            .buf
            .get_mut(start..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        area[0..2].copy_from_slice(&attribute.0.to_be_bytes());
        area[2..4].copy_from_slice(&value_len16.to_be_bytes());
        area[4 + value_len..].fill(0);
        self.buf[2..4].copy_from_slice(&message_len.to_be_bytes());
        self.len = end;
        self.stage = next_stage;
        Ok(&mut self.buf[start + 4..start + 4 + value_len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::{Software, Username};
    use crate::{Class, Message, Method};

    fn writer(buf: &mut [u8]) -> MessageWriter<'_> {
        MessageWriter::new(
            buf,
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([3; 12]),
        )
        .unwrap()
    }

    // RFC 8489 §14.5–14.7: ordering of the closing attributes.
    #[test]
    fn closing_attributes_keep_their_order() {
        let mut buf = [0u8; 256];
        let mut w = writer(&mut buf);
        w.add_message_integrity(b"key").unwrap();
        assert_eq!(
            w.add(&Username("late")),
            Err(EncodeError::OutOfOrder(AttributeType::USERNAME))
        );
        w.add_message_integrity_sha256(b"key").unwrap();
        assert!(w.add_message_integrity(b"key").is_err());
        w.add_fingerprint().unwrap();
        assert!(w.add_fingerprint().is_err());
        let len = w.finish();
        let m = Message::decode(&buf[..len]).unwrap();
        m.verify_integrity(b"key").unwrap();
        m.verify_integrity_sha256(b"key").unwrap();
        assert!(m.has_fingerprint());
    }

    #[test]
    fn small_buffers_fail_cleanly() {
        let mut tiny = [0u8; 10];
        assert!(MessageWriter::new(
            &mut tiny,
            MessageType::BINDING_REQUEST,
            TransactionId([0; 12])
        )
        .is_err());
        let mut buf = [0u8; 24];
        let mut w = writer(&mut buf);
        assert_eq!(
            w.add(&Software("too long for it")),
            Err(EncodeError::BufferTooSmall)
        );
        assert_eq!(w.finish(), 20);
    }

    #[test]
    fn padding_is_zeroed_and_length_counts_it() {
        let mut buf = [0xAAu8; 64];
        let mut w = writer(&mut buf);
        w.add(&Username("abcde")).unwrap();
        let len = w.finish();
        assert_eq!(len, 20 + 4 + 8);
        assert_eq!(&buf[2..4], &[0, 12]);
        assert_eq!(&buf[29..32], &[0, 0, 0]);
    }
}
