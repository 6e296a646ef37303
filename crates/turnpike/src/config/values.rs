//! Value types of the TURN keys that neither clap nor serde know: secrets that must never be
//! printed, peer networks (`CIDR` or a bare IP) and `external-ip` mappings.
//!
//! Each type parses from one string, the same way in the file (serde) and on the command line
//! (clap, through `FromStr`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{Deserialize, Deserializer, Error as _};

/// Implements `Deserialize` through `FromStr`, so that the file and the flags share one parser.
macro_rules! deserialize_from_str {
    ($ty:ty) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(D::Error::custom)
            }
        }
    };
}

/// The keys whose values are secrets ([`Secret`]): a problem with one of them names the key,
/// its line and what was expected, never the value (see `file::secret_type_problem`). A new
/// secret key must be listed here.
pub const SECRET_KEYS: [&str; 5] = [
    "users",
    "rest-secrets",
    "nonce-secret",
    "signaling-secret",
    "admin-token",
];

/// The secret keys that hold a list of strings; the others hold one string.
pub const SECRET_LIST_KEYS: [&str; 2] = ["users", "rest-secrets"];

/// A string that must never be printed: a password entry, a REST secret, the nonce secret.
///
/// Parsing never fails (so that no parser echoes the value in an error message); the rules are
/// checked by validation, whose messages never quote the value either.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    /// The secret text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    /// Prints `Secret(..)`: configuration dumps and panics must not leak credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Secret(text.to_owned()))
    }
}

deserialize_from_str!(Secret);

/// The validated `nonce-secret`: 32 bytes, never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NonceSecret(pub [u8; 32]);

impl NonceSecret {
    /// Decodes 64 hex digits (either case); `None` for anything else.
    pub fn from_hex(text: &str) -> Option<NonceSecret> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| char::from(c).to_digit(16);
            *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(NonceSecret(bytes))
    }
}

impl fmt::Debug for NonceSecret {
    /// Prints `NonceSecret(..)`: whoever knows it can mint nonces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceSecret(..)")
    }
}

/// An entry of `allowed-peers` / `denied-peers`: `IP/PREFIX`, or a bare IP meaning `/32` or
/// `/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerNet(pub IpNet);

impl FromStr for PeerNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.contains('/') {
            return text.parse().map(PeerNet).map_err(|_| {
                format!("`{text}` is not a network: write IP/PREFIX such as 10.1.2.0/24, or an IP")
            });
        }
        text.parse::<IpAddr>()
            .map(|ip| PeerNet(IpNet::from(ip)))
            .map_err(|_| {
                format!("`{text}` is not a network: write IP/PREFIX such as 10.1.2.0/24, or an IP")
            })
    }
}

impl fmt::Display for PeerNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

deserialize_from_str!(PeerNet);

/// An entry of `external-ip`: `PUBLIC`, or `PUBLIC/PRIVATE` (coturn's syntax for a 1:1 NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExternalIp {
    /// The address advertised in XOR-RELAYED-ADDRESS.
    pub public: IpAddr,
    /// The relay IP it stands for; `None`: the relay IP of the same family.
    pub private: Option<IpAddr>,
}

impl FromStr for ExternalIp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || {
            format!(
                "`{text}` is not PUBLIC or PUBLIC/PRIVATE with two IP addresses, \
                 such as 203.0.113.7/10.0.0.7"
            )
        };
        let (public, private) = match text.split_once('/') {
            Some((public, private)) => (public, Some(private)),
            None => (text, None),
        };
        let public = public.parse().map_err(|_| bad())?;
        let private = match private {
            Some(private) => Some(private.parse().map_err(|_| bad())?),
            None => None,
        };
        Ok(ExternalIp { public, private })
    }
}

impl fmt::Display for ExternalIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.private {
            Some(private) => write!(f, "{}/{private}", self.public),
            None => write!(f, "{}", self.public),
        }
    }
}

deserialize_from_str!(ExternalIp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let secret: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn nonce_secret_is_64_hex_digits() {
        let hex = "00ff10AB".repeat(8);
        let secret = NonceSecret::from_hex(&hex).unwrap();
        assert_eq!(secret.0[..4], [0x00, 0xff, 0x10, 0xab]);
        assert_eq!(format!("{secret:?}"), "NonceSecret(..)");
        for bad in ["", "00", &"0g".repeat(32), &"0".repeat(66), &"é".repeat(32)] {
            assert_eq!(NonceSecret::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bare_ip_is_a_host_network() {
        let v4: PeerNet = "10.1.2.3".parse().unwrap();
        assert_eq!(v4.to_string(), "10.1.2.3/32");
        let v6: PeerNet = "fd00::1".parse().unwrap();
        assert_eq!(v6.to_string(), "fd00::1/128");
        let net: PeerNet = "10.1.2.0/24".parse().unwrap();
        assert_eq!(net.to_string(), "10.1.2.0/24");
        assert!("10.1.2.0/33".parse::<PeerNet>().is_err());
        assert!("example.org".parse::<PeerNet>().is_err());
    }

    #[test]
    fn external_ip_has_an_optional_private_part() {
        let plain: ExternalIp = "203.0.113.7".parse().unwrap();
        assert_eq!(
            (plain.public.to_string(), plain.private),
            ("203.0.113.7".into(), None)
        );
        let mapped: ExternalIp = "203.0.113.7/10.0.0.7".parse().unwrap();
        assert_eq!(mapped.private, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(mapped.to_string(), "203.0.113.7/10.0.0.7");
        let v6: ExternalIp = "2001:db8::7/fd00::7".parse().unwrap();
        assert!(v6.public.is_ipv6());
        for bad in ["", "203.0.113.7/", "a/b", "203.0.113.7/24"] {
            assert!(bad.parse::<ExternalIp>().is_err(), "{bad}");
        }
    }
}
