//! The name a 300 (Try Alternate) gives a TLS or DTLS client to check the alternate's
//! certificate with: ALTERNATE-DOMAIN (RFC 8489 §10, §14.16).
//!
//! The attribute "MUST be a valid DNS name [RFC1123] (including A-labels [RFC5890]) of 255 or
//! fewer ASCII characters", and the client matches it as a DNS-ID or CN-ID, never an IP
//! address. So a name is checked here once, when it is configured (or learnt from the fleet),
//! and the core only ever copies a valid one into its answers.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The longest name: a DNS name written out is at most 253 characters without the final dot
/// (RFC 1035 §2.3.4's 255 octets in wire form), within the attribute's 255.
pub const MAX_NAME: usize = 253;

/// The longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// A host name the alternate's certificate carries: letters, digits and hyphens in dot
/// separated labels (RFC 1123 §2.1; an internationalised name is given in its A-label form,
/// `xn--…`, RFC 5890), not an IP address. Cheap to clone: the cluster hands the same name to
/// every worker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainName(Arc<str>);

/// Why a string is not a [`DomainName`]. The messages name the rule, so that a configuration
/// error can say which one the value broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    /// Nothing at all.
    #[error("it is empty")]
    Empty,
    /// Longer than [`MAX_NAME`].
    #[error("it is longer than {MAX_NAME} characters")]
    TooLong,
    /// Two dots in a row, or a dot at either end.
    #[error("it has an empty label (a dot at either end, or two in a row)")]
    EmptyLabel,
    /// A label longer than 63 characters.
    #[error("a label is longer than {MAX_LABEL} characters")]
    LabelTooLong,
    /// A character other than a letter, a digit, a hyphen or a dot (a wildcard, a space,
    /// Unicode: internationalised names go in their xn-- form).
    #[error("it has a character other than ASCII letters, digits, hyphens and dots")]
    BadCharacter,
    /// A label that starts or ends with a hyphen.
    #[error("a label starts or ends with a hyphen")]
    Hyphen,
    /// An all-numeric last label: an IPv4 address, which a certificate check of a DNS-ID
    /// would not match (RFC 3696 §2: a top-level domain is never all-numeric).
    #[error("it is an IP address, not a DNS name")]
    Address,
}

impl DomainName {
    /// The name, as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DomainName {
    type Err = DomainNameError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.is_empty() {
            return Err(DomainNameError::Empty);
        }
        if name.len() > MAX_NAME {
            return Err(DomainNameError::TooLong);
        }
        let mut last = "";
        for label in name.split('.') {
            if label.is_empty() {
                return Err(DomainNameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL {
                return Err(DomainNameError::LabelTooLong);
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(DomainNameError::BadCharacter);
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(DomainNameError::Hyphen);
            }
            last = label;
        }
        if last.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainNameError::Address);
        }
        Ok(DomainName(name.into()))
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_and_a_labels_are_names() {
        for ok in [
            "turn.example.org",
            "turn-2.eu.example.org",
            "xn--bcher-kva.example",
            "localhost",
            "1and1.com",
            &format!("{}.example", "a".repeat(63)),
        ] {
            let name: DomainName = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(name.as_str(), ok);
        }
    }

    #[test]
    fn what_is_not_a_name_says_why() {
        let long = format!("{}.example", "a".repeat(64));
        let too_long = vec!["abcdefg"; 32].join(".");
        for (bad, why) in [
            ("", DomainNameError::Empty),
            (too_long.as_str(), DomainNameError::TooLong),
            ("turn..example.org", DomainNameError::EmptyLabel),
            ("turn.example.org.", DomainNameError::EmptyLabel),
            (".example.org", DomainNameError::EmptyLabel),
            (long.as_str(), DomainNameError::LabelTooLong),
            ("*.example.org", DomainNameError::BadCharacter),
            ("bücher.example", DomainNameError::BadCharacter),
            ("turn example.org", DomainNameError::BadCharacter),
            ("[2001:db8::1]", DomainNameError::BadCharacter),
            ("-turn.example.org", DomainNameError::Hyphen),
            ("turn-.example.org", DomainNameError::Hyphen),
            ("192.0.2.1", DomainNameError::Address),
        ] {
            assert_eq!(bad.parse::<DomainName>(), Err(why), "{bad:?}");
        }
    }
}
