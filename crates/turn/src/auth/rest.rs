//! TURN REST ephemeral credentials (draft-uberti-behave-turn-rest-00 §2.2, §4.2, §5.2).
//!
//! A web service and the TURN server share a secret. The service hands out
//! `username = EXPIRY ":" USERID` (or just `EXPIRY`), with EXPIRY in Unix seconds, and
//! `password = base64(HMAC-SHA1(secret, username))`. The server recomputes the password from
//! the username and derives the long-term key from it as for any user (RFC 8489 §9.2.2):
//! no per-user state, and a successful MESSAGE-INTEGRITY proves the expiry untampered.
//!
//! coturn's default order is `EXPIRY:USERID`; `USERID:EXPIRY` is accepted too when the
//! first part is not a number and the last one is.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use stun::attributes::PasswordAlgorithmId;
use stun::LongTermKey;

/// base64 of the 20 bytes of an HMAC-SHA1, with its one padding character.
const PASSWORD_LEN: usize = 28;
/// Digits of the longest u64.
const MAX_DIGITS: usize = 20;

/// The expiry (Unix seconds) a REST username carries, or `None` when it is not one.
pub fn expiry(username: &str) -> Option<u64> {
    match username.split_once(':') {
        None => number(username),
        Some((first, rest)) => number(first).or_else(|| {
            let (_, last) = rest.rsplit_once(':').unwrap_or(("", rest));
            number(last)
        }),
    }
}

/// A plain decimal number: ASCII digits only (no sign, no spaces), fitting in u64.
fn number(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A REST password as computed on the stack: base64(HMAC-SHA1(secret, username)).
#[derive(Clone, Copy)]
struct Password([u8; PASSWORD_LEN]);

impl Password {
    fn compute(secret: &[u8], username: &str) -> Password {
        let mut mac = match <Hmac<Sha1> as Mac>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(username.as_bytes());
        let mut text = [0u8; PASSWORD_LEN];
        // 20 bytes are exactly 28 padded base64 characters, which the array holds.
        let _ = STANDARD.encode_slice(mac.finalize().into_bytes(), &mut text);
        Password(text)
    }

    fn as_str(&self) -> &str {
        // base64 output is ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// The password a web service hands out with `username` under `secret` (draft §2.2).
pub fn password(secret: &str, username: &str) -> String {
    Password::compute(secret.as_bytes(), username)
        .as_str()
        .to_owned()
}

/// The username a web service hands out: `EXPIRY:USERID`, or `EXPIRY` without a user id.
pub fn username(expiry: u64, user_id: Option<&str>) -> String {
    match user_id {
        Some(id) => format!("{expiry}:{id}"),
        None => expiry.to_string(),
    }
}

/// The long-term key of a REST user under `secret` (RFC 8489 §9.2.2 with the computed
/// password). Allocates nothing: the password is ASCII, which SASLprep leaves alone.
pub(crate) fn key(
    secret: &str,
    username: &str,
    realm: &str,
    algorithm: PasswordAlgorithmId,
) -> LongTermKey {
    let password = Password::compute(secret.as_bytes(), username);
    let algorithm = if algorithm == PasswordAlgorithmId::SHA256 {
        PasswordAlgorithmId::SHA256
    } else {
        PasswordAlgorithmId::MD5
    };
    match LongTermKey::derive(algorithm, username, realm, password.as_str()) {
        Some(key) => key,
        // `algorithm` is MD5 or SHA256 here, both of which the codec derives.
        None => unreachable!("MD5 and SHA-256 keys always derive"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // draft-uberti-behave-turn-rest-00 §2.2: "a colon-delimited combination of the
    // expiration timestamp and the username parameter".
    #[test]
    fn expiry_first_or_last() {
        assert_eq!(expiry("12334939:mbzrxpgjys"), Some(12_334_939));
        assert_eq!(expiry("12334939"), Some(12_334_939));
        assert_eq!(expiry("mbzrxpgjys:12334939"), Some(12_334_939));
        assert_eq!(expiry("12334939:a:b"), Some(12_334_939));
        assert_eq!(expiry("a:b:12334939"), Some(12_334_939));
        assert_eq!(expiry("alice"), None);
        assert_eq!(expiry("alice:bob"), None);
        assert_eq!(expiry("+12:x"), None);
        assert_eq!(expiry(""), None);
        assert_eq!(expiry(":"), None);
        assert_eq!(expiry("99999999999999999999999:x"), None);
    }

    // The password is base64(HMAC-SHA1(secret, username)); a vector computed with
    // `printf %s 1700000000:alice | openssl dgst -sha1 -hmac secret -binary | base64`.
    #[test]
    fn password_is_base64_hmac_sha1() {
        assert_eq!(
            password("secret", "1700000000:alice"),
            "d8soP47RbdIKLDUOpnJPVQyq5Ts="
        );
        assert_eq!(username(1_700_000_000, Some("alice")), "1700000000:alice");
        assert_eq!(username(5, None), "5");
    }

    #[test]
    fn key_uses_the_computed_password() {
        let name = "1700000000:alice";
        let pw = password("secret", name);
        assert_eq!(
            key("secret", name, "example.org", PasswordAlgorithmId::MD5),
            LongTermKey::derive(PasswordAlgorithmId::MD5, name, "example.org", &pw).unwrap()
        );
        assert_eq!(
            key("secret", name, "example.org", PasswordAlgorithmId::SHA256),
            LongTermKey::derive(PasswordAlgorithmId::SHA256, name, "example.org", &pw).unwrap()
        );
    }
}
