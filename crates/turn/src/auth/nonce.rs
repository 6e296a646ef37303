//! Stateless nonces (RFC 8489 §9.2, §9.2.1): a nonce cookie, then the issue time and a MAC
//! binding it to the client's transport address.
//!
//! ```text
//! obMatJos2 FFFF PPPPPPPPPPPPPPPPPPPPPPPP     37 characters (RFC 8489 §14.10: < 128)
//! \_______/ \__/ \______________________/
//!  prefix   features  base64(issued: 48 bits BE || MAC[..12])
//!
//! MAC = HMAC-SHA256(nonce_secret, "turnpike nonce v2" || cookie || issued
//!                                 || transport (UDP/TCP) || client port || client IP)
//! ```
//!
//! Nothing is stored: a nonce is checked by recomputing its MAC over the transport address
//! the request comes from, so a restarted node, or a second node with the same secret,
//! accepts it, and an unauthenticated packet creates no state. The MAC covers the cookie, so
//! a man in the middle cannot clear the security feature bits without the nonce failing (the
//! bid-down protection of §9.2.1).
//!
//! The nonce binds the whole transport address — IP, port and transport protocol (TLS counts
//! as TCP, as in the 5-tuple of RFC 8656 §2) — so a request captured and replayed from
//! another port (or over another transport) gets 438 and cannot be re-signed without the
//! user's key: a replayed Allocate cannot create a second allocation charged to the user.
//! It also makes nonces distinct per source IP and port, as §9.2.4 requires ("MUST NOT
//! choose the same NONCE for two requests unless they have the same source IP address and
//! port"). The price: a client that reconnects over TCP (a new port) gets one 438 and
//! retries with the fresh nonce it carries (§9.2.5); its allocation died with the old
//! connection anyway (RFC 8656 §3.1).
//!
//! 96 bits of MAC: a forger needs about 2^96 online tries per nonce lifetime. Cost of a
//! forged nonce: a length check, a base64 decode of 24 characters and one HMAC-SHA256 over
//! 54 bytes at most, with no allocation and no state; it is rejected before any user lookup
//! or key derivation.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::relay::ClientTransport;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The fixed start of a nonce cookie (RFC 8489 §9.2).
pub const NONCE_COOKIE_PREFIX: &str = "obMatJos2";
/// Length of the whole nonce cookie: the prefix and 4 base64 characters (RFC 8489 §9.2).
const COOKIE_LEN: usize = 13;
/// Bytes of MAC kept in the nonce: 96 bits.
const MAC_LEN: usize = 12;
/// Bytes of the issue time (48 bits of Unix seconds: millions of years).
const TIME_LEN: usize = 6;
/// Bytes of payload: the issue time and the MAC.
const PAYLOAD_LEN: usize = TIME_LEN + MAC_LEN;
/// Base64 characters of payload (18 bytes: no padding).
const PAYLOAD_CHARS: usize = PAYLOAD_LEN / 3 * 4;
/// Length of every nonce this module issues.
pub const NONCE_LEN: usize = COOKIE_LEN + PAYLOAD_CHARS;
// RFC 8489 §14.10: NONCE "MUST be fewer than 128 characters".
const _: () = assert!(NONCE_LEN < 128);
// The payload is a whole number of base64 quanta: no padding.
const _: () = assert!(PAYLOAD_LEN % 3 == 0);
/// A nonce stamped this far in the future is still accepted (clocks of cluster nodes drift).
const MAX_CLOCK_SKEW_SECS: u64 = 60;
/// Domain separation: the nonce secret keys nothing else, but a label costs nothing.
const MAC_LABEL: &[u8] = b"turnpike nonce v2";

/// The STUN Security Features of RFC 8489 §18.1: 24 bits, bit 0 the most significant bit
/// of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityFeatures(pub [u8; 3]);

impl SecurityFeatures {
    /// Bit 0: "Password algorithms" (the server sends PASSWORD-ALGORITHMS, §9.2.4).
    pub const PASSWORD_ALGORITHMS: u8 = 0x80;
    /// Bit 1: "Username anonymity" (the client MUST send USERHASH, §9.2.5).
    pub const USERNAME_ANONYMITY: u8 = 0x40;

    /// The feature set with the two RFC 8489 bits as given.
    pub fn new(password_algorithms: bool, username_anonymity: bool) -> SecurityFeatures {
        let mut first = 0;
        if password_algorithms {
            first |= Self::PASSWORD_ALGORITHMS;
        }
        if username_anonymity {
            first |= Self::USERNAME_ANONYMITY;
        }
        SecurityFeatures([first, 0, 0])
    }

    /// True when the "Password algorithms" bit is set.
    pub fn password_algorithms(self) -> bool {
        self.0[0] & Self::PASSWORD_ALGORITHMS != 0
    }

    /// True when the "Username anonymity" bit is set.
    pub fn username_anonymity(self) -> bool {
        self.0[0] & Self::USERNAME_ANONYMITY != 0
    }

    /// The features of the nonce cookie `nonce` starts with, if it starts with one (§9.2).
    pub fn of_nonce(nonce: &str) -> Option<SecurityFeatures> {
        let encoded = nonce
            .strip_prefix(NONCE_COOKIE_PREFIX)?
            .as_bytes()
            .get(..COOKIE_LEN - NONCE_COOKIE_PREFIX.len())?;
        let mut bits = [0u8; 3];
        match STANDARD.decode_slice(encoded, &mut bits) {
            Ok(3) => Some(SecurityFeatures(bits)),
            _ => None,
        }
    }

    /// The 13-character nonce cookie announcing these features.
    fn cookie(self) -> [u8; COOKIE_LEN] {
        let mut cookie = [0u8; COOKIE_LEN];
        let prefix = NONCE_COOKIE_PREFIX.len();
        cookie[..prefix].copy_from_slice(NONCE_COOKIE_PREFIX.as_bytes());
        // 3 bytes are exactly 4 base64 characters, which the array holds.
        let _ = STANDARD.encode_slice(self.0, &mut cookie[prefix..]);
        cookie
    }
}

/// Why a nonce is not accepted. Every variant is answered with 438 (Stale Nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Not of our format, or with other security features than ours.
    Malformed,
    /// The MAC does not match: forged, issued to another transport address (IP, port or
    /// transport), or under another secret (a node restarted with a fresh random secret).
    Forged,
    /// Older than the nonce lifetime.
    Expired,
    /// Stamped further in the future than clock skew explains.
    FromTheFuture,
}

/// A nonce as issued: fixed length, ASCII, on the stack.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NonceText([u8; NONCE_LEN]);

impl NonceText {
    /// The nonce, to put in a NONCE attribute.
    pub fn as_str(&self) -> &str {
        // Built from the ASCII cookie prefix and base64 output only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for NonceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Issues and checks nonces under one secret.
#[derive(Clone)]
pub struct NonceKey {
    /// HMAC-SHA256 already keyed with the secret: cloning it skips the key schedule.
    keyed: Hmac<Sha256>,
    cookie: [u8; COOKIE_LEN],
    lifetime_secs: u64,
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceKey")
            .field("cookie", &String::from_utf8_lossy(&self.cookie))
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl NonceKey {
    /// A key issuing nonces with `features`, valid for `lifetime_secs` seconds.
    pub fn new(secret: &[u8; 32], features: SecurityFeatures, lifetime_secs: u64) -> NonceKey {
        let keyed = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        NonceKey {
            keyed,
            cookie: features.cookie(),
            lifetime_secs,
        }
    }

    /// Announces `features` in the nonces issued from now on; nonces issued before with other
    /// features fail [`NonceKey::check`] (a client retries after 438).
    pub fn set_features(&mut self, features: SecurityFeatures) {
        self.cookie = features.cookie();
    }

    /// The features every nonce of this key announces.
    pub fn features(&self) -> SecurityFeatures {
        SecurityFeatures::of_nonce(std::str::from_utf8(&self.cookie).unwrap_or_default())
            .unwrap_or_default()
    }

    /// A fresh nonce for a client at `client` over `transport`, issued at `unix_now`
    /// (wall-clock seconds).
    pub fn issue(
        &self,
        unix_now: u64,
        client: SocketAddr,
        transport: ClientTransport,
    ) -> NonceText {
        let issued = time_bytes(unix_now);
        let mut payload = [0u8; PAYLOAD_LEN];
        payload[..TIME_LEN].copy_from_slice(&issued);
        let mac = self.mac(issued, client, transport).finalize().into_bytes();
        payload[TIME_LEN..].copy_from_slice(&mac[..MAC_LEN]);
        let mut text = [0u8; NONCE_LEN];
        text[..COOKIE_LEN].copy_from_slice(&self.cookie);
        // 18 bytes are exactly 24 base64 characters, which the array holds.
        let _ = STANDARD.encode_slice(payload, &mut text[COOKIE_LEN..]);
        NonceText(text)
    }

    /// Checks a nonce presented by a client at `client` over `transport` at `unix_now`.
    /// The MAC is compared in constant time.
    pub fn check(
        &self,
        nonce: &str,
        unix_now: u64,
        client: SocketAddr,
        transport: ClientTransport,
    ) -> Result<(), NonceError> {
        let bytes = nonce.as_bytes();
        if bytes.len() != NONCE_LEN || bytes[..COOKIE_LEN] != self.cookie {
            return Err(NonceError::Malformed);
        }
        let mut payload = [0u8; PAYLOAD_LEN];
        match STANDARD.decode_slice(&bytes[COOKIE_LEN..], &mut payload) {
            Ok(PAYLOAD_LEN) => {}
            _ => return Err(NonceError::Malformed),
        }
        let mut issued = [0u8; TIME_LEN];
        issued.copy_from_slice(&payload[..TIME_LEN]);
        self.mac(issued, client, transport)
            .verify_truncated_left(&payload[TIME_LEN..])
            .map_err(|_| NonceError::Forged)?;
        let mut time = [0u8; 8];
        time[8 - TIME_LEN..].copy_from_slice(&issued);
        let issued = u64::from_be_bytes(time);
        if issued > unix_now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(NonceError::FromTheFuture);
        }
        if unix_now.saturating_sub(issued) > self.lifetime_secs {
            return Err(NonceError::Expired);
        }
        Ok(())
    }

    /// The MAC state over everything a nonce binds, ready to finalize or verify.
    fn mac(
        &self,
        issued: [u8; TIME_LEN],
        client: SocketAddr,
        transport: ClientTransport,
    ) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        mac.update(MAC_LABEL);
        mac.update(&self.cookie);
        mac.update(&issued);
        mac.update(&[match transport {
            // DTLS is UDP to the 5-tuple (RFC 7350 §4).
            ClientTransport::Udp | ClientTransport::Dtls => 17,
            // TLS is TCP to the 5-tuple (RFC 8656): its nonces are the same.
            ClientTransport::Tcp | ClientTransport::Tls => 6,
        }]);
        mac.update(&client.port().to_be_bytes());
        // An IPv4 client seen through a dual-stack socket (::ffff:a.b.c.d) is the same client.
        match client.ip().to_canonical() {
            IpAddr::V4(v4) => {
                mac.update(&[4]);
                mac.update(&v4.octets());
            }
            IpAddr::V6(v6) => {
                mac.update(&[6]);
                mac.update(&v6.octets());
            }
        }
        mac
    }
}

/// The low 48 bits of `unix_now`, big-endian.
fn time_bytes(unix_now: u64) -> [u8; TIME_LEN] {
    let mut out = [0u8; TIME_LEN];
    out.copy_from_slice(&unix_now.to_be_bytes()[8 - TIME_LEN..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const UDP: ClientTransport = ClientTransport::Udp;
    const TCP: ClientTransport = ClientTransport::Tcp;

    fn key(secret: u8) -> NonceKey {
        NonceKey::new(&[secret; 32], SecurityFeatures::new(true, true), 600)
    }

    fn addr(text: &str, port: u16) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), port)
    }

    // RFC 8489 §9.2: "obMatJos2" + base64 of the 24 feature bits, bit 0 most significant.
    #[test]
    fn cookie_encodes_the_feature_bits() {
        let nonce = key(1).issue(NOW, addr("192.0.2.1", 5000), UDP);
        assert!(nonce.as_str().starts_with("obMatJos2wAAA"));
        assert_eq!(nonce.as_str().len(), NONCE_LEN);
        let plain = NonceKey::new(&[1; 32], SecurityFeatures::new(true, false), 600);
        assert!(plain
            .issue(NOW, addr("192.0.2.1", 5000), UDP)
            .as_str()
            .starts_with("obMatJos2gAAA"));
        let features = SecurityFeatures::of_nonce(nonce.as_str()).unwrap();
        assert!(features.password_algorithms() && features.username_anonymity());
        assert_eq!(key(1).features(), features);
        assert_eq!(SecurityFeatures::of_nonce("obMatJos2"), None);
        assert_eq!(SecurityFeatures::of_nonce("legacy-nonce"), None);
    }

    // RFC 8489 §9.2: the nonce is "encoded in such a way as to indicate a duration of
    // validity or client identity from which it is valid".
    #[test]
    fn binds_address_time_and_secret() {
        let k = key(1);
        let client = addr("192.0.2.1", 5000);
        let nonce = k.issue(NOW, client, UDP);
        assert_eq!(k.check(nonce.as_str(), NOW, client, UDP), Ok(()));
        assert_eq!(k.check(nonce.as_str(), NOW + 600, client, UDP), Ok(()));
        assert_eq!(
            k.check(nonce.as_str(), NOW + 601, client, UDP),
            Err(NonceError::Expired)
        );
        assert_eq!(
            k.check(nonce.as_str(), NOW, addr("192.0.2.2", 5000), UDP),
            Err(NonceError::Forged)
        );
        assert_eq!(
            key(2).check(nonce.as_str(), NOW, client, UDP),
            Err(NonceError::Forged)
        );
        // The same client seen through a dual-stack socket.
        assert_eq!(
            k.check(nonce.as_str(), NOW, addr("::ffff:192.0.2.1", 5000), UDP),
            Ok(())
        );
    }

    // RFC 8489 §9.2.4: "MUST NOT choose the same NONCE for two requests unless they have the
    // same source IP address and port"; and a nonce is only good from the transport address
    // it was issued to, so a request replayed from another port or transport is stale.
    #[test]
    fn bound_to_port_and_transport() {
        let k = key(1);
        let one = k.issue(NOW, addr("192.0.2.1", 5000), UDP);
        let two = k.issue(NOW, addr("192.0.2.1", 5001), UDP);
        assert_ne!(one, two);
        assert_eq!(one, k.issue(NOW, addr("192.0.2.1", 5000), UDP));
        assert_ne!(one, k.issue(NOW, addr("192.0.2.1", 5000), TCP));
        assert_eq!(
            k.check(one.as_str(), NOW, addr("192.0.2.1", 5001), UDP),
            Err(NonceError::Forged)
        );
        assert_eq!(
            k.check(one.as_str(), NOW, addr("192.0.2.1", 5000), TCP),
            Err(NonceError::Forged)
        );
        assert_eq!(
            k.check(two.as_str(), NOW, addr("192.0.2.1", 5001), UDP),
            Ok(())
        );
    }

    #[test]
    fn future_stamps_beyond_skew_are_refused() {
        let k = key(1);
        let client = addr("2001:db8::1", 5000);
        let ahead = k.issue(NOW + 60, client, TCP);
        assert_eq!(k.check(ahead.as_str(), NOW, client, TCP), Ok(()));
        let far = k.issue(NOW + 61, client, TCP);
        assert_eq!(
            k.check(far.as_str(), NOW, client, TCP),
            Err(NonceError::FromTheFuture)
        );
    }

    // RFC 8489 §9.2.1: the feature bits cannot be altered (bid-down) without detection.
    #[test]
    fn altered_nonces_are_refused() {
        let k = key(1);
        let a = addr("192.0.2.1", 5000);
        let nonce = k.issue(NOW, a, UDP);
        let text = nonce.as_str();
        let bid_down = text.replacen("wAAA", "gAAA", 1);
        assert_eq!(k.check(&bid_down, NOW, a, UDP), Err(NonceError::Malformed));
        let other = NonceKey::new(&[1; 32], SecurityFeatures::new(true, false), 600);
        assert_eq!(
            other.check(&bid_down, NOW, a, UDP),
            Err(NonceError::Forged),
            "the MAC covers the cookie"
        );
        for at in COOKIE_LEN..NONCE_LEN {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert!(k.check(&altered, NOW, a, UDP).is_err(), "position {at}");
        }
        assert_eq!(k.check("", NOW, a, UDP), Err(NonceError::Malformed));
        assert_eq!(
            k.check(&text[..NONCE_LEN - 1], NOW, a, UDP),
            Err(NonceError::Malformed)
        );
        let bad_base64 = format!("{}{}", &text[..COOKIE_LEN], "!".repeat(PAYLOAD_CHARS));
        assert_eq!(
            k.check(&bad_base64, NOW, a, UDP),
            Err(NonceError::Malformed)
        );
    }
}
