//! Long-term credentials (RFC 8489 §9.2) from the client's side: what a 401/438 challenge
//! tells us, how requests are signed, and how responses are checked.

use std::fmt;

use stun::attributes::{
    Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Realm, Userhash, Username,
};
use stun::{
    userhash, AnyAttribute, AttributeType, EncodeError, LongTermKey, Message, MessageWriter,
};

/// A TURN username and password. TURN REST credentials (a time-limited username and an
/// HMAC as password) are the same pair to the client.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// The USERNAME.
    pub username: String,
    /// The password; SASLprep-ed when the key is derived (RFC 8489 §9.2.2).
    pub password: String,
}

impl fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A password never reaches a log line.
        f.debug_struct("TurnCredentials")
            .field("username", &self.username)
            .field("password", &"..")
            .finish()
    }
}

/// RFC 8489 §9.2: every nonce cookie starts with this, followed by four base64 characters
/// holding the 24 STUN Security Feature bits.
const NONCE_COOKIE: &str = "obMatJos2";

/// The two security features of RFC 8489 §18.1 a nonce cookie may announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Features {
    /// Bit 0: the server sends PASSWORD-ALGORITHMS (§9.2.4).
    password_algorithms: bool,
    /// Bit 1: the client must send USERHASH instead of USERNAME (§9.2.5).
    username_anonymity: bool,
}

impl Features {
    /// The features of `nonce`'s cookie; none when it has no cookie.
    fn of(nonce: &str) -> Features {
        // Bits 0 and 1 are the top bits of the first byte, hence of the first base64 sextet.
        let sextet = nonce
            .strip_prefix(NONCE_COOKIE)
            .and_then(|rest| rest.bytes().next())
            .and_then(base64_value);
        match sextet {
            Some(v) => Features {
                password_algorithms: v & 0x20 != 0,
                username_anonymity: v & 0x10 != 0,
            },
            None => Features::default(),
        }
    }
}

/// The value of one standard base64 character.
fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Why a challenge cannot be answered (RFC 8489 §9.2.5 forbids the retry).
pub(super) type ChallengeError = &'static str;

/// What the server's last challenge told us, and the key derived from it.
#[derive(Clone)]
pub(super) struct Auth {
    realm: String,
    nonce: String,
    key: LongTermKey,
    algorithm: PasswordAlgorithmId,
    /// PASSWORD-ALGORITHMS exactly as the server sent it, to echo (§9.2.5: "the same
    /// content"); `None` when it sent none, and MD5 with MESSAGE-INTEGRITY is used.
    offered_algorithms: Option<Vec<u8>>,
    /// Send USERHASH instead of USERNAME (the "Username anonymity" feature).
    use_userhash: bool,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("realm", &self.realm)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Reads REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 response and derives the
    /// key (RFC 8489 §9.2.5).
    pub(super) fn from_challenge(
        response: &Message<'_>,
        credentials: &TurnCredentials,
    ) -> Result<Auth, ChallengeError> {
        let realm = match response.get::<Realm<'_>>() {
            Some(Ok(realm)) => realm.0,
            _ => return Err("challenge without a usable REALM"),
        };
        let nonce = match response.get::<Nonce<'_>>() {
            Some(Ok(nonce)) => nonce.0,
            _ => return Err("challenge without a usable NONCE"),
        };
        let features = Features::of(nonce);
        let offered = response
            .attributes()
            .find(|raw| raw.attribute == AttributeType::PASSWORD_ALGORITHMS);
        let (algorithm, offered_algorithms) = match offered {
            None if features.password_algorithms => {
                // §9.2.5: a downgrade attempt; "MUST NOT retry".
                return Err("nonce announces PASSWORD-ALGORITHMS but none was sent");
            }
            None => (PasswordAlgorithmId::MD5, None),
            Some(raw) => {
                let list = match response.get::<PasswordAlgorithms<'_>>() {
                    Some(Ok(list)) => list,
                    _ => return Err("malformed PASSWORD-ALGORITHMS"),
                };
                // §9.2.5: the first algorithm on the list that the client supports.
                let supported = [PasswordAlgorithmId::MD5, PasswordAlgorithmId::SHA256];
                let chosen = list
                    .iter()
                    .map(|a| a.algorithm)
                    .find(|a| supported.contains(a))
                    .ok_or("no supported algorithm in PASSWORD-ALGORITHMS")?;
                (chosen, Some(raw.value.to_vec()))
            }
        };
        let key = LongTermKey::derive(
            algorithm,
            &credentials.username,
            realm,
            &credentials.password,
        )
        .ok_or("no key for the chosen algorithm")?;
        Ok(Auth {
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            key,
            algorithm,
            offered_algorithms,
            use_userhash: features.username_anonymity,
        })
    }

    /// The realm of the challenge.
    pub(super) fn realm(&self) -> &str {
        &self.realm
    }

    /// Writes USERNAME (or USERHASH), REALM, NONCE, PASSWORD-ALGORITHMS and
    /// PASSWORD-ALGORITHM, then the integrity attribute: the last attributes of a request
    /// before FINGERPRINT (RFC 8489 §9.2.3).
    pub(super) fn sign(
        &self,
        writer: &mut MessageWriter<'_>,
        username: &str,
    ) -> Result<(), EncodeError> {
        if self.use_userhash {
            writer.add(&Userhash(userhash(username, &self.realm)))?;
        } else {
            writer.add(&Username(username))?;
        }
        writer.add(&Realm(&self.realm))?;
        writer.add(&Nonce(&self.nonce))?;
        match &self.offered_algorithms {
            Some(offered) => {
                writer.add_any(&AnyAttribute::Unknown {
                    attribute: AttributeType::PASSWORD_ALGORITHMS,
                    value: offered,
                })?;
                writer.add(&PasswordAlgorithm {
                    algorithm: self.algorithm,
                    parameters: &[],
                })?;
                // §9.2.5: once PASSWORD-ALGORITHMS was offered, MESSAGE-INTEGRITY-SHA256 only.
                writer.add_message_integrity_sha256(self.key.as_bytes())
            }
            None => writer.add_message_integrity(self.key.as_bytes()),
        }
    }

    /// True when `response` carries a valid integrity attribute for our key (RFC 8489
    /// §9.2.5). The attribute we sign with is the one required: a response to a
    /// MESSAGE-INTEGRITY-SHA256 request must carry that one (§9.2.4).
    pub(super) fn verifies(&self, response: &Message<'_>) -> bool {
        let key = self.key.as_bytes();
        match self.offered_algorithms {
            Some(_) => response.verify_integrity_sha256(key).is_ok(),
            None => response.verify_integrity(key).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §9.2, §18.1: "obMatJos2" then base64 of the feature bits; bit 0 is the top bit.
    #[test]
    fn nonce_cookie_features() {
        // 0x80 0x00 0x00 → "gAAA"; 0xC0 → "wAAA".
        assert_eq!(
            Features::of("obMatJos2gAAAxyz"),
            Features {
                password_algorithms: true,
                username_anonymity: false
            }
        );
        assert_eq!(
            Features::of("obMatJos2wAAAxyz"),
            Features {
                password_algorithms: true,
                username_anonymity: true
            }
        );
        assert_eq!(Features::of("plain-nonce"), Features::default());
        assert_eq!(Features::of("obMatJos2"), Features::default());
    }
}
