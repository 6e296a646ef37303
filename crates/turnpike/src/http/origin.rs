//! The origin allow-list of the signaling WebSocket (`allowed-origins`).
//!
//! Browsers send an `Origin` header with every WebSocket upgrade, serialized as RFC 6454 §6.2
//! says: `scheme://host[:port]`, lowercase, the default port of the scheme left out. The
//! configured origins are stored in that form, so that a header is allowed when it equals one
//! of them exactly. A request without `Origin` comes from a program, not from a page, and is
//! allowed: the list protects users' browsers from other sites, not the server from clients.

use std::net::Ipv6Addr;

/// Which `Origin`s may open the signaling WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    /// Serialized origins; empty: any.
    origins: Vec<String>,
}

impl AllowedOrigins {
    /// The list of `allowed-origins`, already normalized by the configuration.
    pub fn new(origins: Vec<String>) -> AllowedOrigins {
        AllowedOrigins { origins }
    }

    /// Whether a request with this `Origin` header (`None`: no header) may upgrade.
    pub fn allows(&self, origin: Option<&[u8]>) -> bool {
        match origin {
            None => true,
            Some(_) if self.origins.is_empty() => true,
            Some(header) => self.origins.iter().any(|o| o.as_bytes() == header),
        }
    }
}

/// The serialized form of a configured origin (`HTTPS://App.Example.org:443` →
/// `https://app.example.org`), or why it is not an origin.
pub fn normalize(text: &str) -> Result<String, String> {
    let text = text.trim();
    let bad = |why: &str| {
        format!("`{text}` is not an origin ({why}): write SCHEME://HOST[:PORT] such as https://app.example.org")
    };
    let (scheme, rest) = text.split_once("://").ok_or_else(|| bad("no `://`"))?;
    let scheme = scheme.to_ascii_lowercase();
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(bad("bad scheme"));
    }
    if rest.ends_with('/') && !rest[..rest.len() - 1].contains('/') {
        return Err(bad("browsers send no trailing `/`"));
    }
    if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
        return Err(bad("an origin has no path, query, fragment or user"));
    }
    let (host, port) = split_host_port(rest).ok_or_else(|| bad("bad host or port"))?;
    let host = host.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    };
    Ok(match port {
        Some(port) if Some(port) != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host[:port]` with an IPv6 host in brackets; the host is returned as written (with brackets).
fn split_host_port(text: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']')?;
        text[1..end].parse::<Ipv6Addr>().ok()?;
        let (host, after) = text.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok().filter(|&p| p != 0)?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_serialized_as_browsers_send_them() {
        // RFC 6454 §6.2: lowercase scheme and host, the default port omitted.
        let cases = [
            ("https://app.example.org", "https://app.example.org"),
            ("HTTPS://App.Example.ORG:443", "https://app.example.org"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://127.0.0.1:80", "http://127.0.0.1"),
            ("https://[::1]:8443", "https://[::1]:8443"),
        ];
        for (text, expected) in cases {
            assert_eq!(normalize(text).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn what_is_not_an_origin_is_rejected() {
        for bad in [
            "",
            "app.example.org",
            "https://",
            "https://app.example.org/",
            "https://app.example.org/path",
            "https://user@app.example.org",
            "https://app.example.org:0",
            "https://app.example.org:99999",
            "https://app.example.org:x",
            "https://[zz]:1",
            "1http://a",
        ] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
        assert!(normalize("https://a.org/")
            .unwrap_err()
            .contains("trailing"));
    }

    #[test]
    fn the_allow_list_matches_exactly() {
        let any = AllowedOrigins::default();
        assert!(any.allows(Some(b"https://evil.example")));
        let list = AllowedOrigins::new(vec!["https://app.example.org".to_owned()]);
        assert!(list.allows(Some(b"https://app.example.org")));
        assert!(!list.allows(Some(b"https://app.example.org.evil.example")));
        assert!(!list.allows(Some(b"http://app.example.org")));
        assert!(!list.allows(Some(b"null")));
        assert!(list.allows(None), "programs send no Origin");
    }
}
