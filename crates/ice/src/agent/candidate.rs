//! ICE candidates: the RFC 8839 §5.1 `candidate` attribute, priorities (RFC 8445 §5.1.2) and
//! foundations (RFC 8445 §5.1.1.3).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The only component this agent runs: RTP and RTCP are multiplexed (RFC 8445 §4), data
/// channels have just one.
pub const COMPONENT: u16 = 1;

/// The transport a candidate uses; this agent does UDP only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP (RFC 8839 §5.1: `transport = "UDP" / transport-extension`, case-insensitive).
    Udp,
}

/// How a candidate was obtained (RFC 8445 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CandidateKind {
    /// An address of a local interface (`typ host`).
    Host,
    /// Our address as a STUN server saw it (`typ srflx`).
    ServerReflexive,
    /// Our address as the peer saw it during a check (`typ prflx`).
    PeerReflexive,
    /// An address on a TURN server (`typ relay`).
    Relayed,
}

impl CandidateKind {
    /// The recommended type preference (RFC 8445 §5.1.2.2): host 126, peer-reflexive 110,
    /// server-reflexive 100, relayed 0.
    pub const fn type_preference(self) -> u32 {
        match self {
            CandidateKind::Host => 126,
            CandidateKind::PeerReflexive => 110,
            CandidateKind::ServerReflexive => 100,
            CandidateKind::Relayed => 0,
        }
    }

    /// The `cand-type` token of RFC 8839 §5.1.
    pub const fn token(self) -> &'static str {
        match self {
            CandidateKind::Host => "host",
            CandidateKind::ServerReflexive => "srflx",
            CandidateKind::PeerReflexive => "prflx",
            CandidateKind::Relayed => "relay",
        }
    }

    fn from_token(token: &str) -> Option<Self> {
        match token {
            "host" => Some(CandidateKind::Host),
            "srflx" => Some(CandidateKind::ServerReflexive),
            "prflx" => Some(CandidateKind::PeerReflexive),
            "relay" => Some(CandidateKind::Relayed),
            _ => None,
        }
    }
}

/// The candidate priority formula (RFC 8445 §5.1.2.1):
/// `2^24 × type preference + 2^8 × local preference + (256 − component ID)`.
pub const fn candidate_priority(kind: CandidateKind, local_preference: u16, component: u16) -> u32 {
    let component = if component > 256 { 256 } else { component };
    (kind.type_preference() << 24) + ((local_preference as u32) << 8) + (256 - component as u32)
}

/// A foundation (RFC 8445 §5.1.1.3): equal for candidates of the same type, from the same
/// base IP, through the same STUN/TURN server IP, over the same transport, and different
/// otherwise. It is a stable hash (FNV-1a) of those four, written in decimal: opaque to the
/// peer, deterministic for tests, and at most 10 `ice-char`s (RFC 8839 §5.1 allows 32).
pub fn foundation(kind: CandidateKind, base_ip: IpAddr, server_ip: Option<IpAddr>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(kind.token().as_bytes());
    feed(b"|udp|");
    feed(base_ip.to_string().as_bytes());
    feed(b"|");
    if let Some(server) = server_ip {
        feed(server.to_string().as_bytes());
    }
    hash.to_string()
}

/// One ICE candidate, as carried in an RFC 8839 `candidate` attribute.
///
/// `Display` gives `candidate:<foundation> 1 udp <priority> <ip> <port> typ <type>
/// [raddr <ip> rport <port>]`; `FromStr` accepts that with or without a leading `a=`, and
/// ignores extension pairs it does not know (`generation`, `ufrag`, `network-id`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Groups candidates that share type, base, server and transport (RFC 8445 §5.1.1.3).
    pub foundation: String,
    /// The component, always 1 here.
    pub component: u16,
    /// The transport, UDP.
    pub transport: Transport,
    /// The priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// The transport address.
    pub address: SocketAddr,
    /// The candidate type.
    pub kind: CandidateKind,
    /// `raddr`/`rport`: the base of a reflexive candidate, the mapped address of a relayed one.
    pub related: Option<SocketAddr>,
}

impl Candidate {
    /// A candidate of `kind` at `address` whose base is at `base_ip` (and which a server at
    /// `server_ip` gave us), with its priority and foundation computed per RFC 8445 §5.1.
    pub fn new(
        kind: CandidateKind,
        address: SocketAddr,
        base_ip: IpAddr,
        server_ip: Option<IpAddr>,
        local_preference: u16,
        related: Option<SocketAddr>,
    ) -> Self {
        Candidate {
            foundation: foundation(kind, base_ip, server_ip),
            component: COMPONENT,
            transport: Transport::Udp,
            priority: candidate_priority(kind, local_preference, COMPONENT),
            address,
            kind,
            related,
        }
    }
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "candidate:{} {} udp {} {} {} typ {}",
            self.foundation,
            self.component,
            self.priority,
            self.address.ip(),
            self.address.port(),
            self.kind.token()
        )?;
        if let Some(related) = self.related {
            write!(f, " raddr {} rport {}", related.ip(), related.port())?;
        }
        Ok(())
    }
}

/// Why a `candidate` attribute was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// The text does not start with `candidate:` (after an optional `a=`).
    #[error("not a candidate attribute (no \"candidate:\" prefix)")]
    NotACandidate,
    /// Fewer than the eight mandatory fields.
    #[error("missing field: {0}")]
    Missing(&'static str),
    /// The foundation is empty, longer than 32 characters, or not `ice-char`s.
    #[error("bad foundation {0:?}")]
    Foundation(String),
    /// The component id is not a number from 1 to 256.
    #[error("bad component id {0:?}")]
    Component(String),
    /// A transport other than UDP.
    #[error("unsupported transport {0:?}")]
    Transport(String),
    /// The priority is not a number from 1 to 2^31 − 1.
    #[error("bad priority {0:?}")]
    Priority(String),
    /// The connection address is not an IP literal (FQDNs and mDNS names are not resolved).
    #[error("bad address {0:?}")]
    Address(String),
    /// The port is not a number from 0 to 65535.
    #[error("bad port {0:?}")]
    Port(String),
    /// `typ` missing or an unknown type.
    #[error("bad candidate type {0:?}")]
    Type(String),
    /// `raddr` without `rport` (or the reverse), or a bad value in either.
    #[error("bad raddr/rport")]
    Related,
    /// An extension name without a value (RFC 8839 §5.1: extensions come in pairs).
    #[error("extension {0:?} has no value")]
    Extension(String),
}

/// RFC 8839 §5.1: `ice-char = ALPHA / DIGIT / "+" / "/"`.
fn is_ice_chars(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

impl FromStr for Candidate {
    type Err = CandidateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let text = text.strip_prefix("a=").unwrap_or(text);
        let rest = text
            .strip_prefix("candidate:")
            .ok_or(CandidateError::NotACandidate)?;
        let mut fields = rest.split_ascii_whitespace();
        let mut next = |name| fields.next().ok_or(CandidateError::Missing(name));
        let foundation = next("foundation")?;
        if foundation.is_empty() || foundation.len() > 32 || !is_ice_chars(foundation) {
            return Err(CandidateError::Foundation(foundation.into()));
        }
        let component = next("component-id")?;
        let component = component
            .parse::<u16>()
            .ok()
            .filter(|c| (1..=256).contains(c))
            .ok_or_else(|| CandidateError::Component(component.into()))?;
        let transport = next("transport")?;
        if !transport.eq_ignore_ascii_case("udp") {
            return Err(CandidateError::Transport(transport.into()));
        }
        let priority = next("priority")?;
        let priority = priority
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=0x7FFF_FFFF).contains(p))
            .ok_or_else(|| CandidateError::Priority(priority.into()))?;
        let ip = parse_ip(next("connection-address")?)?;
        let port = parse_port(next("port")?)?;
        let typ = next("typ")?;
        if typ != "typ" {
            return Err(CandidateError::Type(typ.into()));
        }
        let kind = next("cand-type")?;
        let kind =
            CandidateKind::from_token(kind).ok_or_else(|| CandidateError::Type(kind.into()))?;
        let (mut raddr, mut rport) = (None, None);
        while let Some(name) = fields.next() {
            let value = fields
                .next()
                .ok_or_else(|| CandidateError::Extension(name.into()))?;
            match name {
                "raddr" => raddr = Some(parse_ip(value).map_err(|_| CandidateError::Related)?),
                "rport" => rport = Some(parse_port(value).map_err(|_| CandidateError::Related)?),
                // generation, ufrag, network-id, network-cost, tcptype, ...: not ours to read.
                _ => {}
            }
        }
        let related = match (raddr, rport) {
            (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
            (None, None) => None,
            _ => return Err(CandidateError::Related),
        };
        Ok(Candidate {
            foundation: foundation.into(),
            component,
            transport: Transport::Udp,
            priority,
            address: SocketAddr::new(ip, port),
            kind,
            related,
        })
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, CandidateError> {
    // IPv6 may come bracketed from some stacks; RFC 8839 writes it bare.
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse()
        .map_err(|_| CandidateError::Address(text.into()))
}

fn parse_port(text: &str) -> Result<u16, CandidateError> {
    text.parse().map_err(|_| CandidateError::Port(text.into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // RFC 8445 §5.1.1.3: same type, base IP, server IP and transport → same foundation.
    #[test]
    fn foundations() {
        let ip: IpAddr = "192.168.1.5".parse().unwrap();
        let other: IpAddr = "192.168.1.6".parse().unwrap();
        let server: IpAddr = "203.0.113.1".parse().unwrap();
        let f = |k, b, s| foundation(k, b, s);
        // Two candidates that differ only in what the foundation must ignore (port,
        // priority, related address) share it.
        let a = Candidate::new(
            CandidateKind::ServerReflexive,
            "198.51.100.1:40000".parse().unwrap(),
            ip,
            Some(server),
            65535,
            Some("192.168.1.5:5000".parse().unwrap()),
        );
        let b = Candidate::new(
            CandidateKind::ServerReflexive,
            "198.51.100.1:40002".parse().unwrap(),
            ip,
            Some(server),
            100,
            Some("192.168.1.5:5002".parse().unwrap()),
        );
        assert_eq!(a.foundation, b.foundation);
        // Stable across runs and builds (peers compare foundations we sent earlier): FNV-1a
        // of "host|udp|192.168.1.5|".
        assert_eq!(f(CandidateKind::Host, ip, None), "1038570073");
        assert_ne!(
            f(CandidateKind::Host, ip, None),
            f(CandidateKind::Host, other, None)
        );
        assert_ne!(
            f(CandidateKind::Host, ip, None),
            f(CandidateKind::ServerReflexive, ip, Some(server))
        );
        assert_ne!(
            f(CandidateKind::ServerReflexive, ip, Some(server)),
            f(CandidateKind::ServerReflexive, ip, Some(other))
        );
        assert!(is_ice_chars(&f(CandidateKind::Relayed, ip, Some(server))));
    }
}
