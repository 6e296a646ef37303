//! Decoding: a [`Message`] is a validated view over the datagram; nothing is copied and
//! nothing is allocated.

use crate::attribute::{padded_len, Attribute, AttributeError, AttributeType};
use crate::attributes::AnyAttribute;
use crate::fingerprint::fingerprint;
use crate::header::{Header, HEADER_LEN};
use crate::integrity::{self, IntegrityError};

/// Why bytes are not a STUN message we accept. Every variant means "drop silently"
/// (RFC 8489 §6.3): nothing useful can be said to a sender of such bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer than 20 bytes, the two leading bits not zero, or a length not a multiple of 4.
    #[error("not a STUN message")]
    NotStun,
    /// The header's length does not match the bytes received (RFC 8489 §6.3).
    #[error("header says {declared} bytes of attributes, {actual} present")]
    LengthMismatch {
        /// Attribute bytes the header declares.
        declared: usize,
        /// Attribute bytes present.
        actual: usize,
    },
    /// An attribute runs past the end of the message.
    #[error("attribute at offset {offset} runs past the end of the message")]
    TruncatedAttribute {
        /// Offset of the attribute's header in the message.
        offset: usize,
    },
    /// An attribute follows FINGERPRINT, which must be last (RFC 8489 §14.7).
    #[error("attribute after FINGERPRINT")]
    AttributeAfterFingerprint,
    /// FINGERPRINT is present but wrong (RFC 8489 §7.3: such a message is discarded).
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
}

/// One attribute as found on the wire: its type and its value without padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// The attribute type.
    pub attribute: AttributeType,
    /// The value, without padding.
    pub value: &'a [u8],
    /// Offset of the attribute's 4-byte header from the start of the message.
    pub offset: usize,
}

/// A decoded STUN message, borrowing the bytes it was decoded from.
///
/// Decoding checks structure (lengths, padding, the position of FINGERPRINT, its value), not
/// attribute values: those are read, and checked, when asked for with [`Message::get`].
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    header: Header,
    /// Offset of the first MESSAGE-INTEGRITY, if it counts (it precedes any -SHA256).
    integrity: Option<usize>,
    /// Offset of the first MESSAGE-INTEGRITY-SHA256.
    integrity_sha256: Option<usize>,
    /// Offset of FINGERPRINT, always the last attribute.
    fingerprint: Option<usize>,
}

impl<'a> Message<'a> {
    /// Decodes one message that fills `bytes` exactly (a UDP datagram, or one frame cut from
    /// a stream by [`crate::framing`]).
    pub fn decode(bytes: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let header = Header::parse(bytes).ok_or(DecodeError::NotStun)?;
        let declared = usize::from(header.length);
        let actual = bytes.len() - HEADER_LEN;
        if declared != actual {
            return Err(DecodeError::LengthMismatch { declared, actual });
        }
        let mut message = Message {
            bytes,
            header,
            integrity: None,
            integrity_sha256: None,
            fingerprint: None,
        };
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            let (attribute, value) = read_attribute(bytes, at)?;
            if message.fingerprint.is_some() {
                return Err(DecodeError::AttributeAfterFingerprint);
            }
            match attribute {
                // RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY are ignored, except
                // MESSAGE-INTEGRITY-SHA256 and FINGERPRINT; §14.6: after -SHA256, all but
                // FINGERPRINT. So only the first of each counts, and MI only before -SHA256.
                AttributeType::MESSAGE_INTEGRITY
                    if message.integrity.is_none() && message.integrity_sha256.is_none() =>
                {
                    message.integrity = Some(at);
                }
                AttributeType::MESSAGE_INTEGRITY_SHA256 if message.integrity_sha256.is_none() => {
                    message.integrity_sha256 = Some(at);
                }
                AttributeType::FINGERPRINT => {
                    if value.len() != 4 {
                        return Err(DecodeError::BadFingerprint);
                    }
                    message.fingerprint = Some(at);
                }
                _ => {}
            }
            at += 4 + padded_len(value.len());
        }
        if let Some(fp) = message.fingerprint {
            let expected =
                u32::from_be_bytes([bytes[fp + 4], bytes[fp + 5], bytes[fp + 6], bytes[fp + 7]]);
            if fingerprint(&bytes[..fp]) != expected {
                return Err(DecodeError::BadFingerprint);
            }
        }
        Ok(message)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bytes the message was decoded from.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when a valid FINGERPRINT was present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint.is_some()
    }

    /// True when MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity.is_some() || self.integrity_sha256.is_some()
    }

    /// Offset where attributes stop counting: those after it are ignored unless they are
    /// the integrity attributes or FINGERPRINT (RFC 8489 §14.5, §14.6).
    fn protected_end(&self) -> usize {
        match (self.integrity, self.integrity_sha256) {
            (Some(a), _) | (None, Some(a)) => a,
            (None, None) => self.bytes.len(),
        }
    }

    /// The attributes that count, in wire order. Attributes that follow the integrity
    /// attributes, other than those and FINGERPRINT, are skipped (RFC 8489 §14.5).
    pub fn attributes(&self) -> impl Iterator<Item = RawAttribute<'a>> + 'a {
        let bytes = self.bytes;
        let protected_end = self.protected_end();
        let (mi, mi256, fp) = (self.integrity, self.integrity_sha256, self.fingerprint);
        let mut at = HEADER_LEN;
        std::iter::from_fn(move || loop {
            // Structure was checked by `decode`, so reads cannot fail; stop if they do.
            let (attribute, value) = read_attribute(bytes, at).ok()?;
            let offset = at;
            at += 4 + padded_len(value.len());
            let counts = offset < protected_end || [mi, mi256, fp].contains(&Some(offset));
            if counts {
                return Some(RawAttribute {
                    attribute,
                    value,
                    offset,
                });
            }
        })
    }

    /// The first attribute of type `A`, decoded: `None` when absent, `Some(Err)` when its
    /// value is malformed (a request with one deserves 400, RFC 8489 §6.3.1).
    pub fn get<A: Attribute<'a>>(&self) -> Option<Result<A, AttributeError>> {
        let tid = self.header.transaction_id;
        self.attributes()
            .find(|raw| raw.attribute == A::TYPE)
            .map(|raw| A::decode(raw.value, &tid))
    }

    /// Every attribute of type `A`, decoded, in order (e.g. several XOR-PEER-ADDRESS in a
    /// CreatePermission, RFC 8656 §9.1).
    pub fn get_all<A: Attribute<'a>>(
        &self,
    ) -> impl Iterator<Item = Result<A, AttributeError>> + 'a {
        let tid = self.header.transaction_id;
        self.attributes()
            .filter(|raw| raw.attribute == A::TYPE)
            .map(move |raw| A::decode(raw.value, &tid))
    }

    /// True when an attribute of type `A` is present.
    pub fn contains<A: Attribute<'a>>(&self) -> bool {
        self.attributes().any(|raw| raw.attribute == A::TYPE)
    }

    /// Every attribute that counts, decoded into [`AnyAttribute`].
    pub fn decoded_attributes(
        &self,
    ) -> impl Iterator<Item = Result<AnyAttribute<'a>, AttributeError>> + 'a {
        let tid = self.header.transaction_id;
        self.attributes()
            .map(move |raw| AnyAttribute::decode(raw.attribute, raw.value, &tid))
    }

    /// The comprehension-required attribute types this codec does not know: a request
    /// carrying any of them is answered with 420 and UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1).
    pub fn unknown_comprehension_required(&self) -> impl Iterator<Item = AttributeType> + 'a {
        self.attributes()
            .map(|raw| raw.attribute)
            .filter(|t| t.is_comprehension_required() && !t.is_known())
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1) with `key`, in constant time (RFC 8489 §14.5).
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let at = self.integrity.ok_or(IntegrityError::Missing)?;
        integrity::verify_sha1(self.bytes, at, key)
    }

    /// Checks MESSAGE-INTEGRITY-SHA256 with `key`, in constant time (RFC 8489 §14.6).
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> Result<(), IntegrityError> {
        let at = self.integrity_sha256.ok_or(IntegrityError::Missing)?;
        integrity::verify_sha256(self.bytes, at, key)
    }
}

/// Reads the attribute whose header is at `at`, checking that it and its padding fit.
fn read_attribute(bytes: &[u8], at: usize) -> Result<(AttributeType, &[u8]), DecodeError> {
    let truncated = DecodeError::TruncatedAttribute { offset: at };
    let head = bytes.get(at..at + 4).ok_or(truncated)?;
    let attribute = AttributeType(u16::from_be_bytes([head[0], head[1]]));
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    // RFC 8489 §14: the value is followed by padding to a multiple of 4, which must be there.
    bytes
        .get(at + 4..at + 4 + padded_len(len))
        .ok_or(truncated)?;
    Ok((attribute, &bytes[at + 4..at + 4 + len]))
}
