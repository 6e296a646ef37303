//! FINGERPRINT (RFC 8489 §14.7): CRC-32 (ISO HDLC, as in zlib) of the message up to the
//! attribute, XOR-ed with 0x5354554E so that it differs from CRCs other protocols carry.

/// The constant XOR-ed into the CRC ("STUN" in ASCII).
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// The FINGERPRINT value for `bytes`: the message up to, not including, the attribute, with
/// the header length already counting the FINGERPRINT attribute.
pub fn fingerprint(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes) ^ FINGERPRINT_XOR
}
