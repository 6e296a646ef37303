//! Names on the wire: peer ids, resume tokens, room names.

use std::fmt;

use rand::RngCore;
use subtle::ConstantTimeEq;

/// A peer's server-assigned id: 32 random bits, written as 8 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PeerId(u32);

impl PeerId {
    /// A random id (the caller makes it unique).
    pub(crate) fn random(rng: &mut dyn RngCore) -> PeerId {
        PeerId(rng.next_u32())
    }

    /// The id written as `text`, if `text` is exactly 8 lowercase hex digits.
    pub(crate) fn parse(text: &str) -> Option<PeerId> {
        let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
        if text.len() != 8 || !text.as_bytes().iter().all(hex) {
            return None;
        }
        u32::from_str_radix(text, 16).ok().map(PeerId)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// The secret half of a resume token: 128 random bits.
#[derive(Clone, Copy)]
pub(crate) struct ResumeSecret([u8; 16]);

impl ResumeSecret {
    /// A fresh secret.
    pub(crate) fn random(rng: &mut dyn RngCore) -> ResumeSecret {
        let mut bytes = [0; 16];
        rng.fill_bytes(&mut bytes);
        ResumeSecret(bytes)
    }

    /// The token a client presents: `ID.SECRET` (8 + 1 + 32 lowercase hex digits). The id
    /// finds the peer; the secret is compared in constant time.
    pub(crate) fn token(&self, id: PeerId) -> String {
        let mut token = format!("{id}.");
        for b in self.0 {
            token.push_str(&format!("{b:02x}"));
        }
        token
    }

    /// Splits a presented token into the peer it names and its secret.
    pub(crate) fn parse_token(token: &str) -> Option<(PeerId, ResumeSecret)> {
        let (id, secret) = token.split_once('.')?;
        let id = PeerId::parse(id)?;
        if secret.len() != 32 {
            return None;
        }
        let mut bytes = [0; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = secret.get(2 * i..2 * i + 2)?;
            if !pair
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some((id, ResumeSecret(bytes)))
    }

    /// Constant-time equality.
    pub(crate) fn matches(&self, other: &ResumeSecret) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for ResumeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResumeSecret(<redacted>)")
    }
}

/// True for a valid room name: 1–64 characters of `[A-Za-z0-9._-]`.
pub(crate) fn is_room_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::mock::StepRng;

    #[test]
    fn peer_ids_are_8_lowercase_hex() {
        let id = PeerId::random(&mut StepRng::new(0xab, 1));
        assert_eq!(id.to_string(), "000000ab");
        assert_eq!(PeerId::parse("000000ab"), Some(id));
        for bad in [
            "000000AB",
            "ab",
            "000000abc",
            "0000 0ab",
            "+00000ab",
            "g0000000",
        ] {
            assert_eq!(PeerId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resume_tokens_round_trip_and_reject_garbage() {
        let mut rng = StepRng::new(7, 0x0101_0101);
        let secret = ResumeSecret::random(&mut rng);
        let id = PeerId::random(&mut rng);
        let token = secret.token(id);
        assert_eq!(token.len(), 8 + 1 + 32);
        let (parsed_id, parsed) = ResumeSecret::parse_token(&token).expect("own format");
        assert_eq!(parsed_id, id);
        assert!(parsed.matches(&secret));
        let upper = format!("0000000A.{}", "0".repeat(32));
        let upper_secret = format!("0000000a.{}F", "0".repeat(31));
        assert!(ResumeSecret::parse_token(&format!("0000000a.{}", "0".repeat(32))).is_some());
        let bad_cases = [
            "",
            ".",
            &token[1..],
            &upper,
            &upper_secret,
            &format!("{token}0"),
        ];
        for bad in bad_cases {
            assert!(ResumeSecret::parse_token(bad).is_none(), "{bad:?}");
        }
        let multibyte = format!("{id}.{}é", "0".repeat(30));
        assert!(ResumeSecret::parse_token(&multibyte).is_none());
    }

    #[test]
    fn room_names() {
        // docs/signaling.md join: 1–64 chars of [A-Za-z0-9._-].
        assert!(is_room_name("a"));
        assert!(is_room_name("Room-1_2.x"));
        assert!(is_room_name(&"x".repeat(64)));
        for bad in ["", "a b", "é", "a/b", &"x".repeat(65)] {
            assert!(!is_room_name(bad), "{bad:?}");
        }
    }
}
