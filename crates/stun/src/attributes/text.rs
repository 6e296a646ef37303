//! UTF-8 text attributes: USERNAME, REALM, NONCE, SOFTWARE, ALTERNATE-DOMAIN.

use crate::attribute::{invalid_length, invalid_value, Attribute, AttributeError, AttributeType};
use crate::header::TransactionId;

/// Checks a text value: valid UTF-8 of at most `max_bytes` bytes, and, where the RFC counts
/// characters, fewer than 128 of them.
fn decode_text(
    attribute: AttributeType,
    value: &[u8],
    max_bytes: usize,
    count_chars: bool,
) -> Result<&str, AttributeError> {
    if value.len() > max_bytes {
        return invalid_length(attribute, value);
    }
    let Ok(text) = std::str::from_utf8(value) else {
        return invalid_value(attribute, "not UTF-8");
    };
    if count_chars && text.chars().count() >= 128 {
        return invalid_value(attribute, "128 characters or more");
    }
    Ok(text)
}

macro_rules! text_attribute {
    ($( $(#[$doc:meta])* $name:ident = $typ:ident, max_bytes: $max:literal, chars: $chars:literal; )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> Attribute<'a> for $name<'a> {
            const TYPE: AttributeType = AttributeType::$typ;

            fn decode(value: &'a [u8], _: &TransactionId) -> Result<Self, AttributeError> {
                decode_text(Self::TYPE, value, $max, $chars).map($name)
            }

            fn encoded_len(&self) -> usize {
                self.0.len()
            }

            fn encode(&self, out: &mut [u8], _: &TransactionId) {
                out.copy_from_slice(self.0.as_bytes());
            }
        }
    )*};
}

text_attribute! {
    /// USERNAME (RFC 8489 §14.3): fewer than 513 bytes.
    Username = USERNAME, max_bytes: 512, chars: false;
    /// REALM (RFC 8489 §14.9): fewer than 128 characters, at most 763 bytes.
    Realm = REALM, max_bytes: 763, chars: true;
    /// NONCE (RFC 8489 §14.10): fewer than 128 characters, at most 763 bytes.
    Nonce = NONCE, max_bytes: 763, chars: true;
    /// SOFTWARE (RFC 8489 §14.14): fewer than 128 characters, at most 763 bytes.
    Software = SOFTWARE, max_bytes: 763, chars: true;
    /// ALTERNATE-DOMAIN (RFC 8489 §14.16): a domain name, at most 255 bytes.
    AlternateDomain = ALTERNATE_DOMAIN, max_bytes: 255, chars: false;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced() {
        let tid = TransactionId::default();
        assert_eq!(Username::decode(b"alice", &tid), Ok(Username("alice")));
        assert!(Username::decode(&[b'a'; 513], &tid).is_err());
        assert!(Username::decode(&[b'a'; 512], &tid).is_ok());
        assert!(Realm::decode(&[b'a'; 128], &tid).is_err());
        assert!(Realm::decode(&[b'a'; 127], &tid).is_ok());
        assert!(Software::decode(&[0xff, 0xfe], &tid).is_err());
    }
}
