//! STUN URIs (RFC 7064): `stun:HOST[:PORT]` and `stuns:HOST[:PORT]`; and TURN URIs
//! (RFC 7065), which add `?transport=` to the same host and port grammar.
//!
//! RFC 7064 §3.1 grammar:
//!
//! ```text
//! stunURI = scheme ":" host [ ":" port ]
//! scheme  = "stun" / "stuns"
//! host    = IP-literal / IPv4address / reg-name   (RFC 3986 §3.2.2)
//! port    = *DIGIT
//! ```
//!
//! Parsing is strict and every rejection says what is wrong, with a hint where a common
//! mistake is recognisable: the `stun://host` form (there is no `//` in RFC 7064), a bare
//! IPv6 address, a missing scheme, a TURN URI, query parameters.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// Default port of `stun:` (RFC 7064 §3.2, RFC 8489 §18.1).
pub const STUN_PORT: u16 = 3478;
/// Default port of `stuns:` (RFC 7064 §3.2, RFC 8489 §18.1).
pub const STUNS_PORT: u16 = 5349;

/// A parsed STUN URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StunUri {
    /// `stuns:`: STUN over TLS (or DTLS).
    pub secure: bool,
    /// The host: a lower-cased DNS name, an IPv4 address, or an IPv6 address without its
    /// brackets.
    pub host: String,
    /// The port, the scheme's default when the URI has none.
    pub port: u16,
    /// The URI names its port: the host's A/AAAA records are used with it, and no SRV
    /// record is looked up (RFC 8489 §8, RFC 5928 §3).
    pub explicit_port: bool,
}

/// Why a string is not a STUN URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `stun:` or `stuns:` in front (e.g. `stun.example.org:3478`).
    #[error("missing scheme: write stun:{0} (or stuns: for TLS)")]
    MissingScheme(String),
    /// A scheme other than `stun` or `stuns`.
    #[error("unsupported scheme \"{scheme}:\": expected stun: or stuns:{hint}")]
    UnsupportedScheme {
        /// The scheme found, lower-cased.
        scheme: String,
        /// A hint for schemes that are easy to confuse with STUN's, or empty.
        hint: &'static str,
    },
    /// `stun://host`: RFC 7064 URIs have no `//` authority marker.
    #[error("STUN URIs have no \"//\" (RFC 7064): write {scheme}:{rest}")]
    AuthorityMarker {
        /// The scheme, lower-cased.
        scheme: String,
        /// What followed the `//`.
        rest: String,
    },
    /// Nothing after the scheme.
    #[error("missing host after \"{0}:\"")]
    MissingHost(String),
    /// A character not allowed in a host name.
    #[error("invalid host \"{host}\": {reason}")]
    InvalidHost {
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An IPv6 address without brackets, e.g. `stun:2001:db8::1`.
    #[error("IPv6 addresses go in brackets: write {scheme}:[{address}]")]
    UnbracketedIpv6 {
        /// The scheme, lower-cased.
        scheme: String,
        /// The address as written.
        address: String,
    },
    /// Something in brackets that is not an IPv6 address, or a `[` without its `]`.
    #[error("invalid IPv6 literal \"{0}\"")]
    InvalidIpv6Literal(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port \"{0}\": expected a number from 1 to 65535")]
    InvalidPort(String),
    /// A scheme other than `turn` or `turns` where a TURN URI was expected.
    #[error("unsupported scheme \"{0}:\": expected turn: or turns:")]
    UnsupportedTurnScheme(String),
    /// A TURN URI query other than `transport=` and a transport name (RFC 7065 §3.1).
    #[error("invalid query \"?{0}\": a TURN URI takes only ?transport=udp or ?transport=tcp")]
    InvalidTurnQuery(String),
    /// A user name, path, query or fragment: STUN URIs have none.
    #[error("unexpected {component} \"{text}\": a STUN URI is only scheme:host[:port]{hint}")]
    UnexpectedComponent {
        /// "user name", "path", "query" or "fragment".
        component: &'static str,
        /// The offending text.
        text: String,
        /// A hint, or empty.
        hint: &'static str,
    },
}

impl StunUri {
    /// Parses an RFC 7064 URI. The scheme and a DNS host are case-insensitive and
    /// lower-cased; an empty port (`stun:host:`) means the default, as RFC 3986 §3.2.3 allows.
    pub fn parse(text: &str) -> Result<StunUri, UriError> {
        let (scheme, rest) = split_scheme(text)?;
        let secure = match scheme.as_str() {
            "stun" => false,
            "stuns" => true,
            _ => {
                return Err(UriError::UnsupportedScheme {
                    hint: scheme_hint(&scheme),
                    scheme,
                })
            }
        };
        let (host, port, explicit_port) = parse_host_port(scheme, rest, secure)?;
        Ok(StunUri {
            secure,
            host,
            port,
            explicit_port,
        })
    }

    /// The scheme: `"stun"` or `"stuns"`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "stuns"
        } else {
            "stun"
        }
    }

    /// The host as an IP address, when it is a literal rather than a name to resolve.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl FromStr for StunUri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        StunUri::parse(text)
    }
}

impl fmt::Display for StunUri {
    /// The canonical form, port always written: `stun:example.org:3478`, `stun:[::1]:3478`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}:[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}:{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

/// A parsed TURN URI (RFC 7065 §3.1):
///
/// ```text
/// turnURI   = scheme ":" host [ ":" port ] [ "?transport=" transport ]
/// scheme    = "turn" / "turns"
/// transport = "udp" / "tcp" / transport-ext
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TurnUri {
    /// `turns:`: TURN over TLS (or DTLS).
    pub secure: bool,
    /// The host, as in [`StunUri::host`].
    pub host: String,
    /// The port, the scheme's default (3478 or 5349) when the URI has none.
    pub port: u16,
    /// The URI names its port (no NAPTR or SRV lookup, RFC 5928 §3).
    pub explicit_port: bool,
    /// The `?transport=` value, lower-cased; `None` when absent (the client chooses: UDP
    /// for `turn:`, RFC 7065 §3.2).
    pub transport: Option<String>,
}

impl TurnUri {
    /// Parses an RFC 7065 URI; host and port follow the rules of [`StunUri::parse`].
    pub fn parse(text: &str) -> Result<TurnUri, UriError> {
        let (scheme, rest) = split_scheme(text)?;
        let secure = match scheme.as_str() {
            "turn" => false,
            "turns" => true,
            _ => return Err(UriError::UnsupportedTurnScheme(scheme)),
        };
        let (authority, transport) = match rest.split_once('?') {
            None => (rest, None),
            Some((authority, query)) => {
                let transport = query
                    .strip_prefix("transport=")
                    // transport-ext = 1*unreserved (RFC 3986 §2.3).
                    .filter(|t| {
                        !t.is_empty()
                            && t.chars()
                                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
                    })
                    .ok_or_else(|| UriError::InvalidTurnQuery(query.to_owned()))?;
                (authority, Some(transport.to_ascii_lowercase()))
            }
        };
        let (host, port, explicit_port) = parse_host_port(scheme, authority, secure)?;
        Ok(TurnUri {
            secure,
            host,
            port,
            explicit_port,
            transport,
        })
    }
}

/// `host [ ":" port ]` after the scheme, the grammar RFC 7064 and RFC 7065 share; the port
/// defaults to 3478, or 5349 for the secure schemes. The flag tells whether the port was
/// written (an empty one, `host:`, was not).
fn parse_host_port(
    scheme: String,
    rest: &str,
    secure: bool,
) -> Result<(String, u16, bool), UriError> {
    if let Some(after) = rest.strip_prefix("//") {
        return Err(UriError::AuthorityMarker {
            scheme,
            rest: after.to_owned(),
        });
    }
    reject_extra_components(rest)?;
    if rest.is_empty() {
        return Err(UriError::MissingHost(scheme));
    }
    let (host, port) = split_host_port(&scheme, rest)?;
    let default = if secure { STUNS_PORT } else { STUN_PORT };
    let (port, explicit) = match port {
        None | Some("") => (default, false),
        Some(digits) => (parse_port(digits)?, true),
    };
    Ok((host, port, explicit))
}

/// Splits `scheme:rest`, telling a missing scheme from an unknown one.
fn split_scheme(text: &str) -> Result<(String, &str), UriError> {
    let missing = || UriError::MissingScheme(text.to_owned());
    let (scheme, rest) = text.split_once(':').ok_or_else(missing)?;
    // RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
    let well_formed = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    // `host:3478` parses as scheme "host"; a port-like remainder means the scheme is missing.
    let looks_like_port = !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    if !well_formed || looks_like_port {
        return Err(missing());
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

fn scheme_hint(scheme: &str) -> &'static str {
    match scheme {
        "turn" | "turns" => " (this is a TURN URI, RFC 7065)",
        "http" | "https" | "ws" | "wss" | "udp" | "tcp" => " (write stun:HOST[:PORT])",
        _ => "",
    }
}

/// Rejects `user@`, `/path`, `?query` and `#fragment`, which RFC 7064 does not allow.
fn reject_extra_components(rest: &str) -> Result<(), UriError> {
    let checks: [(char, &'static str, &'static str); 4] = [
        (
            '?',
            "query",
            " (?transport= belongs to turn: URIs, RFC 7065)",
        ),
        ('#', "fragment", ""),
        ('/', "path", ""),
        ('@', "user name", " (STUN Binding needs no credentials)"),
    ];
    for (marker, component, hint) in checks {
        if let Some(at) = rest.find(marker) {
            let text = if marker == '@' {
                &rest[..=at]
            } else {
                &rest[at..]
            };
            return Err(UriError::UnexpectedComponent {
                component,
                text: text.to_owned(),
                hint,
            });
        }
    }
    Ok(())
}

/// Splits `host[:port]` and validates the host; the port is returned unparsed.
fn split_host_port<'a>(scheme: &str, rest: &'a str) -> Result<(String, Option<&'a str>), UriError> {
    if let Some(literal) = rest.strip_prefix('[') {
        let (inside, after) = literal
            .split_once(']')
            .ok_or_else(|| UriError::InvalidIpv6Literal(rest.to_owned()))?;
        let address: Ipv6Addr = inside
            .parse()
            .map_err(|_| UriError::InvalidIpv6Literal(format!("[{inside}]")))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UriError::InvalidPort(after.to_owned()))?,
            ),
        };
        return Ok((address.to_string(), port));
    }
    // Two colons or more cannot be host:port; an IPv6 address is the likely intent.
    if rest.matches(':').count() > 1 {
        return Err(UriError::UnbracketedIpv6 {
            scheme: scheme.to_owned(),
            address: rest.to_owned(),
        });
    }
    let (host, port) = match rest.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    validate_host(host)?;
    Ok((host.to_ascii_lowercase(), port))
}

/// A host that is not bracketed: an IPv4 address or a DNS name. RFC 3986's reg-name also
/// allows percent-encoding and sub-delimiters, which no resolvable name needs; they are
/// refused rather than passed on to the resolver.
fn validate_host(host: &str) -> Result<(), UriError> {
    let invalid = |reason| {
        Err(UriError::InvalidHost {
            host: host.to_owned(),
            reason,
        })
    };
    if host.is_empty() {
        return invalid("empty");
    }
    if host.contains('%') {
        return invalid("percent-encoded names are not supported");
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return invalid("only letters, digits, '-', '.' and '_' are allowed");
    }
    if host.len() > 253 {
        return invalid("longer than 253 characters");
    }
    if host.split('.').any(|label| label.len() > 63) {
        return invalid("a label is longer than 63 characters");
    }
    Ok(())
}

/// RFC 7064 `port = *DIGIT`, which must also fit a UDP/TCP port and not be 0.
fn parse_port(digits: &str) -> Result<u16, UriError> {
    let bad = || UriError::InvalidPort(digits.to_owned());
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_uris_follow_rfc_7065() {
        let uri = TurnUri::parse("turn:Turn.Example.org?transport=udp").unwrap();
        assert_eq!(
            uri,
            TurnUri {
                secure: false,
                host: "turn.example.org".into(),
                port: STUN_PORT,
                explicit_port: false,
                transport: Some("udp".into())
            }
        );
        let uri = TurnUri::parse("turns:[2001:db8::1]:443?transport=TCP").unwrap();
        assert_eq!(
            (uri.secure, uri.host.as_str(), uri.port),
            (true, "2001:db8::1", 443)
        );
        assert_eq!(uri.transport.as_deref(), Some("tcp"));
        assert_eq!(
            TurnUri::parse("turns:example.org").unwrap().port,
            STUNS_PORT
        );
        assert_eq!(TurnUri::parse("turn:example.org").unwrap().transport, None);
        assert_eq!(
            TurnUri::parse("stun:example.org"),
            Err(UriError::UnsupportedTurnScheme("stun".into()))
        );
        for bad in [
            "turn:example.org?transport=",
            "turn:example.org?foo=udp",
            "turn:h?transport=u/dp",
        ] {
            assert!(
                matches!(TurnUri::parse(bad), Err(UriError::InvalidTurnQuery(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            TurnUri::parse("turn:2001:db8::1"),
            Err(UriError::UnbracketedIpv6 { .. })
        ));
    }

    fn uri(secure: bool, host: &str, port: u16) -> StunUri {
        StunUri {
            secure,
            host: host.to_owned(),
            port,
            explicit_port: false,
        }
    }

    fn uri_with_port(secure: bool, host: &str, port: u16) -> StunUri {
        StunUri {
            explicit_port: true,
            ..uri(secure, host, port)
        }
    }

    // RFC 8489 §8 and RFC 5928 §3: a written port means no SRV lookup; the flag tells.
    #[test]
    fn explicit_ports_are_told_apart_from_defaults() {
        assert!(
            StunUri::parse("stun:example.org:3478")
                .unwrap()
                .explicit_port
        );
        assert!(!StunUri::parse("stun:example.org").unwrap().explicit_port);
        assert!(!StunUri::parse("stun:example.org:").unwrap().explicit_port);
        assert!(
            TurnUri::parse("turn:example.org:3478?transport=udp")
                .unwrap()
                .explicit_port
        );
        assert!(
            !TurnUri::parse("turns:example.org?transport=tcp")
                .unwrap()
                .explicit_port
        );
    }

    // RFC 7064 §3.2 gives these examples (§5 adds the default ports 3478 and 5349).
    #[test]
    fn rfc_7064_examples() {
        assert_eq!(
            StunUri::parse("stun:example.org"),
            Ok(uri(false, "example.org", 3478))
        );
        assert_eq!(
            StunUri::parse("stuns:example.org"),
            Ok(uri(true, "example.org", 5349))
        );
        assert_eq!(
            StunUri::parse("stun:example.org:8000"),
            Ok(uri_with_port(false, "example.org", 8000))
        );
    }

    #[test]
    fn ip_literals() {
        assert_eq!(
            StunUri::parse("stun:192.0.2.1"),
            Ok(uri(false, "192.0.2.1", 3478))
        );
        assert_eq!(
            StunUri::parse("stun:[2001:db8::1]:3478"),
            Ok(uri_with_port(false, "2001:db8::1", 3478))
        );
        assert_eq!(
            StunUri::parse("stuns:[2001:DB8::1]"),
            Ok(uri(true, "2001:db8::1", 5349))
        );
        let parsed = StunUri::parse("stun:[::1]:19302").unwrap();
        assert_eq!(parsed.ip(), Some("::1".parse().unwrap()));
        assert_eq!(parsed.to_string(), "stun:[::1]:19302");
        assert_eq!(StunUri::parse("stun:example.org").unwrap().ip(), None);
    }

    // RFC 3986 §3.1, §3.2.2: scheme and host are case-insensitive; §3.2.3: empty port.
    #[test]
    fn case_and_empty_port() {
        assert_eq!(
            StunUri::parse("STUN:Stun.Example.ORG:3479"),
            Ok(uri_with_port(false, "stun.example.org", 3479))
        );
        assert_eq!(
            StunUri::parse("stun:example.org:"),
            Ok(uri(false, "example.org", 3478))
        );
        assert_eq!(
            StunUri::parse("stun:stun.l.google.com:19302")
                .unwrap()
                .to_string(),
            "stun:stun.l.google.com:19302"
        );
    }

    #[test]
    fn missing_or_wrong_scheme() {
        assert!(matches!(
            StunUri::parse("stun.example.org"),
            Err(UriError::MissingScheme(_))
        ));
        assert!(matches!(
            StunUri::parse("stun.example.org:3478"),
            Err(UriError::MissingScheme(_))
        ));
        assert!(matches!(
            StunUri::parse("[::1]:3478"),
            Err(UriError::MissingScheme(_))
        ));
        let turn = StunUri::parse("turn:example.org").unwrap_err();
        assert!(turn.to_string().contains("TURN URI"), "{turn}");
        assert!(matches!(
            StunUri::parse("http:example.org"),
            Err(UriError::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn double_slash_form_is_refused_with_a_hint() {
        let error = StunUri::parse("stun://example.org:3478").unwrap_err();
        assert_eq!(
            error,
            UriError::AuthorityMarker {
                scheme: "stun".into(),
                rest: "example.org:3478".into()
            }
        );
        assert_eq!(
            error.to_string(),
            "STUN URIs have no \"//\" (RFC 7064): write stun:example.org:3478"
        );
    }

    #[test]
    fn bad_hosts() {
        assert_eq!(
            StunUri::parse("stun:"),
            Err(UriError::MissingHost("stun".into()))
        );
        assert!(matches!(
            StunUri::parse("stun::3478"),
            Err(UriError::InvalidHost { .. })
        ));
        assert!(matches!(
            StunUri::parse("stun:exa mple.org"),
            Err(UriError::InvalidHost { .. })
        ));
        assert!(matches!(
            StunUri::parse("stun:ex%41mple.org"),
            Err(UriError::InvalidHost { .. })
        ));
        let long_label = format!("stun:{}.org", "a".repeat(64));
        assert!(matches!(
            StunUri::parse(&long_label),
            Err(UriError::InvalidHost { .. })
        ));
    }

    #[test]
    fn ipv6_mistakes() {
        let bare = StunUri::parse("stun:2001:db8::1").unwrap_err();
        assert_eq!(
            bare.to_string(),
            "IPv6 addresses go in brackets: write stun:[2001:db8::1]"
        );
        assert!(matches!(
            StunUri::parse("stun:[2001:db8::1"),
            Err(UriError::InvalidIpv6Literal(_))
        ));
        assert!(matches!(
            StunUri::parse("stun:[192.0.2.1]"),
            Err(UriError::InvalidIpv6Literal(_))
        ));
        assert!(matches!(
            StunUri::parse("stun:[v1.x]"),
            Err(UriError::InvalidIpv6Literal(_))
        ));
        assert!(matches!(
            StunUri::parse("stun:[::1]3478"),
            Err(UriError::InvalidPort(_))
        ));
    }

    #[test]
    fn bad_ports() {
        for text in [
            "stun:example.org:0",
            "stun:example.org:65536",
            "stun:example.org:http",
            "stun:example.org:+1",
        ] {
            assert!(
                matches!(StunUri::parse(text), Err(UriError::InvalidPort(_))),
                "{text}"
            );
        }
        assert_eq!(
            StunUri::parse("stun:example.org:65535").unwrap().port,
            65535
        );
    }

    #[test]
    fn no_user_path_query_or_fragment() {
        for (text, component) in [
            ("stun:example.org:3478?transport=udp", "query"),
            ("stun:example.org/", "path"),
            ("stun:example.org#x", "fragment"),
            ("stun:alice@example.org", "user name"),
        ] {
            match StunUri::parse(text) {
                Err(UriError::UnexpectedComponent {
                    component: found, ..
                }) => assert_eq!(found, component),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
