//! Join tokens: `base64url(payload) "." base64url(mac)`, where `payload` is the JSON
//! `{"room":R,"exp":UNIX_SECONDS}` and `mac = HMAC-SHA256(secret, base64url(payload))`
//! (base64url without padding, RFC 4648 §5). The MAC is checked first, in constant time;
//! the payload is parsed only once it is authentic.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not `PAYLOAD.MAC` in base64url, or the payload is not `{"room":…,"exp":…}`.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match: not signed with this server's secret, or altered.
    #[error("token signature does not match")]
    Forged,
    /// `exp` is not after the current time.
    #[error("token expired")]
    Expired,
    /// The token is for another room.
    #[error("token is for another room")]
    WrongRoom,
}

#[derive(Serialize, Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    room: std::borrow::Cow<'a, str>,
    exp: u64,
}

/// A token admitting its holder to `room` until `expiry_unix` (Unix seconds, exclusive).
pub fn mint(secret: &[u8], room: &str, expiry_unix: u64) -> String {
    let payload = Payload {
        room: room.into(),
        exp: expiry_unix,
    };
    let json =
        serde_json::to_vec(&payload).expect("a struct of a string and an integer serializes");
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mac = mac(secret, &payload).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// What an authentic, unexpired token says: who it admits, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The room the token admits to.
    pub room: String,
    /// Unix seconds at which the token stops being valid (exclusive).
    pub expiry_unix: u64,
}

/// Checks that `token` was minted with `secret` for `room` and has not expired at
/// `unix_now`.
pub fn verify(secret: &[u8], token: &str, room: &str, unix_now: u64) -> Result<(), TokenError> {
    let claims = claims(secret, token, unix_now)?;
    if claims.room != room {
        return Err(TokenError::WrongRoom);
    }
    Ok(())
}

/// Checks that `token` was minted with `secret` and has not expired at `unix_now`, for any
/// room, and returns what it says (`GET /api/ice-servers` takes a token of any room; the
/// credentials it mints carry the room and never outlive the token).
pub fn claims(secret: &[u8], token: &str, unix_now: u64) -> Result<Claims, TokenError> {
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| TokenError::Malformed)?;
    mac(secret, payload)
        .verify_slice(&tag)
        .map_err(|_| TokenError::Forged)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let payload: Payload<'_> = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if payload.exp <= unix_now {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        room: payload.room.into_owned(),
        expiry_unix: payload.exp,
    })
}

fn mac(secret: &[u8], payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(payload.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"s3cret";

    #[test]
    fn minted_token_verifies_until_expiry() {
        // docs/signaling.md "Tokens": valid strictly before `exp`.
        let token = mint(SECRET, "lobby", 1_000);
        assert_eq!(verify(SECRET, &token, "lobby", 999), Ok(()));
        assert_eq!(
            verify(SECRET, &token, "lobby", 1_000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn the_example_in_the_docs_verifies() {
        // docs/signaling.md "Tokens": the worked example (a test vector for other minters).
        let secret = b"correct horse battery staple";
        let token = "eyJyb29tIjoibG9iYnkiLCJleHAiOjE5MDAwMDAwMDB9.\
                     jPM4hno9gs4RgswAUYOYErQTrwEJnpQewnFxgXFsSiM";
        assert_eq!(mint(secret, "lobby", 1_900_000_000), token);
        assert_eq!(verify(secret, token, "lobby", 1_899_999_999), Ok(()));
    }

    #[test]
    fn format_is_payload_dot_mac() {
        // docs/signaling.md "Tokens": base64url(JSON payload) "." base64url(HMAC-SHA256).
        let token = mint(SECRET, "lobby", 1_000);
        let (payload, tag) = token.split_once('.').expect("one dot");
        let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url");
        assert_eq!(json, br#"{"room":"lobby","exp":1000}"#);
        assert_eq!(URL_SAFE_NO_PAD.decode(tag).expect("base64url").len(), 32);
        assert!(!token.contains('='), "unpadded");
    }

    #[test]
    fn other_secret_room_or_garbage_is_refused() {
        // docs/signaling.md "Errors" bad-token: forged, other room, malformed.
        let token = mint(SECRET, "lobby", 1_000);
        assert_eq!(
            verify(b"other", &token, "lobby", 1),
            Err(TokenError::Forged)
        );
        assert_eq!(
            verify(SECRET, &token, "hall", 1),
            Err(TokenError::WrongRoom)
        );
        for bad in ["", ".", "abc", "a.b.c", "!!.!!", &token[1..]] {
            assert!(verify(SECRET, bad, "lobby", 1).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn altered_payload_is_forged() {
        // The MAC covers the base64url payload: changing the room or expiry breaks it.
        let token = mint(SECRET, "lobby", 1_000);
        let (_, tag) = token.split_once('.').expect("one dot");
        let other = URL_SAFE_NO_PAD.encode(br#"{"room":"lobby","exp":9999}"#);
        let forged = format!("{other}.{tag}");
        assert_eq!(verify(SECRET, &forged, "lobby", 1), Err(TokenError::Forged));
    }

    #[test]
    fn authentic_but_not_a_payload_is_malformed() {
        let payload = URL_SAFE_NO_PAD.encode(b"[1,2]");
        let tag = URL_SAFE_NO_PAD.encode(mac(SECRET, &payload).finalize().into_bytes());
        let token = format!("{payload}.{tag}");
        assert_eq!(
            verify(SECRET, &token, "lobby", 1),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn claims_name_the_room_and_expiry_of_any_room() {
        let token = mint(SECRET, "lobby", 1_000);
        let expected = Claims {
            room: "lobby".to_owned(),
            expiry_unix: 1_000,
        };
        assert_eq!(claims(SECRET, &token, 999), Ok(expected));
        assert_eq!(claims(SECRET, &token, 1_000), Err(TokenError::Expired));
        assert_eq!(claims(b"other", &token, 1), Err(TokenError::Forged));
    }

    #[test]
    fn room_names_are_escaped_in_the_payload() {
        let token = mint(SECRET, "a\"b", 10);
        assert_eq!(verify(SECRET, &token, "a\"b", 1), Ok(()));
    }
}
