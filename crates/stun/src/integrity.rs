//! Keys and message integrity (RFC 8489 §9, §14.5, §14.6).
//!
//! Keys: short-term is the password itself (§9.1.1); long-term is MD5 or SHA-256 of
//! `username ":" realm ":" password` (§9.2.2). Passwords are SASLprep-ed (RFC 4013) as RFC
//! 5389 §15.4 requires and as the RFC 5769 vectors expect; for ASCII passwords, the case of
//! nearly every deployment, SASLprep, OpaqueString (RFC 8489) and no preparation at all give
//! the same bytes.
//!
//! HMACs are compared in constant time (the `hmac` crate's `verify_*` use `subtle`).

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::attributes::PasswordAlgorithmId;

/// Why an integrity check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The message has no such integrity attribute.
    #[error("no integrity attribute")]
    Missing,
    /// The attribute has a length its type does not allow.
    #[error("integrity attribute has a bad length")]
    Malformed,
    /// The HMAC does not match: wrong key or altered message.
    #[error("integrity check failed")]
    Mismatch,
}

/// A long-term credential key (RFC 8489 §9.2.2), 16 bytes for MD5, 32 for SHA-256.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LongTermKey {
    /// MD5(username ":" realm ":" password).
    Md5([u8; 16]),
    /// SHA-256(username ":" realm ":" password).
    Sha256([u8; 32]),
}

impl std::fmt::Debug for LongTermKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A key is as good as a password: never print it.
        match self {
            LongTermKey::Md5(_) => f.write_str("LongTermKey::Md5(..)"),
            LongTermKey::Sha256(_) => f.write_str("LongTermKey::Sha256(..)"),
        }
    }
}

impl LongTermKey {
    /// Derives the key for `algorithm`; `None` for an algorithm RFC 8489 does not define.
    pub fn derive(
        algorithm: PasswordAlgorithmId,
        username: &str,
        realm: &str,
        password: &str,
    ) -> Option<LongTermKey> {
        let password = stringprep::saslprep(password).unwrap_or(password.into());
        let parts = [
            username.as_bytes(),
            b":",
            realm.as_bytes(),
            b":",
            password.as_bytes(),
        ];
        match algorithm {
            PasswordAlgorithmId::MD5 => Some(LongTermKey::Md5(digest::<Md5, 16>(&parts))),
            PasswordAlgorithmId::SHA256 => Some(LongTermKey::Sha256(digest::<Sha256, 32>(&parts))),
            _ => None,
        }
    }

    /// The key bytes, to give to HMAC.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            LongTermKey::Md5(k) => k,
            LongTermKey::Sha256(k) => k,
        }
    }
}

/// USERHASH (RFC 8489 §14.4): SHA-256(username ":" realm).
pub fn userhash(username: &str, realm: &str) -> [u8; 32] {
    digest::<Sha256, 32>(&[username.as_bytes(), b":", realm.as_bytes()])
}

fn digest<D: Digest, const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    let mut out = [0u8; N];
    out.copy_from_slice(&d.finalize()[..N]);
    out
}

/// HMAC over the message up to the integrity attribute at `at`, with the header's length
/// field replaced by `adjusted_len` (RFC 8489 §14.5: it must point to the end of the
/// attribute being computed, even when FINGERPRINT follows).
fn mac_prefix<M: Mac>(mut mac: M, bytes: &[u8], at: usize, adjusted_len: u16) -> M {
    mac.update(&bytes[0..2]);
    mac.update(&adjusted_len.to_be_bytes());
    mac.update(&bytes[4..at]);
    mac
}

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8]) -> M {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// Value length of the attribute at `at`, from its header.
fn value_len(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]))
}

/// Verifies the MESSAGE-INTEGRITY attribute found at offset `at`.
pub(crate) fn verify_sha1(bytes: &[u8], at: usize, key: &[u8]) -> Result<(), IntegrityError> {
    if value_len(bytes, at) != 20 {
        return Err(IntegrityError::Malformed);
    }
    let end = at + 4 + 20;
    let mac = mac_prefix(hmac::<Hmac<Sha1>>(key), bytes, at, length_field(end)?);
    mac.verify_slice(&bytes[at + 4..end])
        .map_err(|_| IntegrityError::Mismatch)
}

/// Verifies the MESSAGE-INTEGRITY-SHA256 attribute found at offset `at`; a truncated value
/// (16 to 28 bytes) is compared with the leading bytes of the HMAC.
pub(crate) fn verify_sha256(bytes: &[u8], at: usize, key: &[u8]) -> Result<(), IntegrityError> {
    let len = value_len(bytes, at);
    if !(16..=32).contains(&len) || len % 4 != 0 {
        return Err(IntegrityError::Malformed);
    }
    let end = at + 4 + len;
    let mac = mac_prefix(hmac::<Hmac<Sha256>>(key), bytes, at, length_field(end)?);
    mac.verify_truncated_left(&bytes[at + 4..end])
        .map_err(|_| IntegrityError::Mismatch)
}

fn length_field(end: usize) -> Result<u16, IntegrityError> {
    u16::try_from(end - crate::header::HEADER_LEN).map_err(|_| IntegrityError::Malformed)
}

/// HMAC-SHA1 of `prefix` (the message up to the attribute, length field already final).
pub(crate) fn compute_sha1(prefix: &[u8], key: &[u8]) -> [u8; 20] {
    let mut mac = hmac::<Hmac<Sha1>>(key);
    mac.update(prefix);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256 of `prefix` (the message up to the attribute, length field already final).
pub(crate) fn compute_sha256(prefix: &[u8], key: &[u8]) -> [u8; 32] {
    let mut mac = hmac::<Hmac<Sha256>>(key);
    mac.update(prefix);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 5769 §2.4: the MD5 long-term key of the sample, after SASLprep of the password.
    #[test]
    fn saslprep_applies_to_the_password() {
        let prepped = LongTermKey::derive(PasswordAlgorithmId::MD5, "u", "r", "TheMatrIX");
        let raw = LongTermKey::derive(
            PasswordAlgorithmId::MD5,
            "u",
            "r",
            "The\u{00AD}M\u{00AA}tr\u{2168}",
        );
        assert_eq!(prepped, raw);
        assert_eq!(
            LongTermKey::derive(PasswordAlgorithmId(9), "u", "r", "p"),
            None
        );
    }

    #[test]
    fn keys_do_not_print() {
        let k = LongTermKey::derive(PasswordAlgorithmId::SHA256, "u", "r", "p").unwrap();
        assert_eq!(format!("{k:?}"), "LongTermKey::Sha256(..)");
        assert_eq!(k.as_bytes().len(), 32);
    }
}
