//! Attributes that report failures: ERROR-CODE, UNKNOWN-ATTRIBUTES, ADDRESS-ERROR-CODE, ICMP.

use crate::attribute::{invalid_length, invalid_value, Attribute, AttributeError, AttributeType};
use crate::attributes::numbers::AddressFamily;
use crate::header::TransactionId;

/// Reads class (3 bits) and number (8 bits) from the last two bytes of a 4-byte prefix and
/// checks them: class 3 to 6, number below 100 (RFC 8489 §14.8).
fn decode_code(attribute: AttributeType, prefix: [u8; 2]) -> Result<u16, AttributeError> {
    let class = u16::from(prefix[0] & 0x07);
    let number = u16::from(prefix[1]);
    if !(3..=6).contains(&class) || number >= 100 {
        return invalid_value(attribute, "error code outside 300-699");
    }
    Ok(class * 100 + number)
}

/// Checks an error reason phrase: UTF-8, fewer than 128 characters (RFC 8489 §14.8).
fn decode_reason(attribute: AttributeType, value: &[u8]) -> Result<&str, AttributeError> {
    if value.len() > 763 {
        return invalid_length(attribute, value);
    }
    match std::str::from_utf8(value) {
        Ok(reason) => Ok(reason),
        Err(_) => invalid_value(attribute, "reason phrase is not UTF-8"),
    }
}

fn encode_code(code: u16, out: &mut [u8]) {
    out[0] = 0;
    out[1] = 0;
    // Codes are validated at decode; an out-of-range code built by hand is written as is,
    // truncated to the field widths, rather than panicking.
    out[2] = ((code / 100) & 0x07) as u8;
    out[3] = (code % 100) as u8;
}

/// ERROR-CODE (RFC 8489 §14.8): a code from 300 to 699 and a reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode<'a> {
    /// The numeric code, e.g. 401.
    pub code: u16,
    /// The reason phrase, e.g. "Unauthorized".
    pub reason: &'a str,
}

impl<'a> Attribute<'a> for ErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() < 4 {
            return invalid_length(Self::TYPE, value);
        }
        let code = decode_code(Self::TYPE, [value[2], value[3]])?;
        let reason = decode_reason(Self::TYPE, &value[4..])?;
        Ok(ErrorCode { code, reason })
    }

    fn encoded_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        encode_code(self.code, out);
        out[4..].copy_from_slice(self.reason.as_bytes());
    }
}

/// ADDRESS-ERROR-CODE (RFC 8656 §18.12): why one address family of a dual allocation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressErrorCode<'a> {
    /// The family that could not be allocated.
    pub family: AddressFamily,
    /// 440 or 508.
    pub code: u16,
    /// The reason phrase.
    pub reason: &'a str,
}

impl<'a> Attribute<'a> for AddressErrorCode<'a> {
    const TYPE: AttributeType = AttributeType::ADDRESS_ERROR_CODE;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() < 4 {
            return invalid_length(Self::TYPE, value);
        }
        let code = decode_code(Self::TYPE, [value[2], value[3]])?;
        let reason = decode_reason(Self::TYPE, &value[4..])?;
        Ok(AddressErrorCode {
            family: AddressFamily(value[0]),
            code,
            reason,
        })
    }

    fn encoded_len(&self) -> usize {
        4 + self.reason.len()
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        encode_code(self.code, out);
        out[0] = self.family.0;
        out[4..].copy_from_slice(self.reason.as_bytes());
    }
}

/// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9): the comprehension-required types a request carried
/// that the server did not understand. Decoded as a view over the wire bytes; built from a
/// slice of types.
#[derive(Debug, Clone, Copy)]
pub struct UnknownAttributes<'a>(Repr<'a>);

#[derive(Debug, Clone, Copy)]
enum Repr<'a> {
    Wire(&'a [u8]),
    Types(&'a [AttributeType]),
}

impl<'a> UnknownAttributes<'a> {
    /// The attribute to send in a 420 response.
    pub fn new(types: &'a [AttributeType]) -> Self {
        UnknownAttributes(Repr::Types(types))
    }

    /// The listed types, in order.
    pub fn iter(&self) -> impl Iterator<Item = AttributeType> + 'a {
        let (wire, types): (&'a [u8], &'a [AttributeType]) = match self.0 {
            Repr::Wire(w) => (w, &[]),
            Repr::Types(t) => (&[], t),
        };
        wire.chunks_exact(2)
            .map(|c| AttributeType(u16::from_be_bytes([c[0], c[1]])))
            .chain(types.iter().copied())
    }
}

impl PartialEq for UnknownAttributes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UnknownAttributes<'_> {}

impl<'a> Attribute<'a> for UnknownAttributes<'a> {
    const TYPE: AttributeType = AttributeType::UNKNOWN_ATTRIBUTES;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        if value.len() % 2 != 0 {
            return invalid_length(Self::TYPE, value);
        }
        Ok(UnknownAttributes(Repr::Wire(value)))
    }

    fn encoded_len(&self) -> usize {
        match self.0 {
            Repr::Wire(w) => w.len(),
            Repr::Types(t) => t.len() * 2,
        }
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        for (chunk, typ) in out.chunks_exact_mut(2).zip(self.iter()) {
            chunk.copy_from_slice(&typ.0.to_be_bytes());
        }
    }
}

/// ICMP (RFC 8656 §18.13): an ICMP error a relayed packet caused, forwarded to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// ICMP type: 7 bits, as laid out in RFC 8656 figure 11.
    pub icmp_type: u8,
    /// ICMP code: 9 bits, as laid out in RFC 8656 figure 11.
    pub icmp_code: u16,
    /// The next-hop MTU for "fragmentation needed" / "packet too big", otherwise zero.
    pub error_data: u32,
}

impl<'a> Attribute<'a> for Icmp {
    const TYPE: AttributeType = AttributeType::ICMP;

    fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
        let Ok(b) = <[u8; 8]>::try_from(value) else {
            return invalid_length(Self::TYPE, value);
        };
        let type_and_code = u16::from_be_bytes([b[2], b[3]]);
        Ok(Icmp {
            icmp_type: (type_and_code >> 9) as u8,
            icmp_code: type_and_code & 0x01FF,
            error_data: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    fn encoded_len(&self) -> usize {
        8
    }

    fn encode(&self, out: &mut [u8], _: &TransactionId) {
        let type_and_code = (u16::from(self.icmp_type & 0x7F) << 9) | (self.icmp_code & 0x01FF);
        out[0..2].fill(0);
        out[2..4].copy_from_slice(&type_and_code.to_be_bytes());
        out[4..8].copy_from_slice(&self.error_data.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_layout() {
        // RFC 8489 §14.8: class in the low 3 bits of byte 2, number in byte 3.
        let tid = TransactionId::default();
        let mut out = [0u8; 32];
        let e = ErrorCode {
            code: 420,
            reason: "Unknown Attribute",
        };
        e.encode(&mut out[..e.encoded_len()], &tid);
        assert_eq!(&out[..4], &[0, 0, 4, 20]);
        assert_eq!(ErrorCode::decode(&out[..e.encoded_len()], &tid), Ok(e));
        assert!(ErrorCode::decode(&[0, 0, 2, 0], &tid).is_err());
        assert!(ErrorCode::decode(&[0, 0, 4, 100], &tid).is_err());
    }

    #[test]
    fn unknown_attributes_round_trip() {
        let tid = TransactionId::default();
        let types = [AttributeType(0x0031), AttributeType(0x7001)];
        let u = UnknownAttributes::new(&types);
        let mut out = [0u8; 4];
        u.encode(&mut out, &tid);
        assert_eq!(out, [0x00, 0x31, 0x70, 0x01]);
        assert_eq!(UnknownAttributes::decode(&out, &tid).unwrap(), u);
        assert!(UnknownAttributes::decode(&out[..3], &tid).is_err());
    }
}
