//! What to look up for a server URI, before any query (RFC 5928 §3, RFC 8489 §8).

use std::net::{IpAddr, SocketAddr};

use ice::{StunUri, TurnUri, STUNS_PORT, STUN_PORT};

use super::Transport;

/// STUN (RFC 8489) or TURN (RFC 8656): they have their own SRV service names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `stun:` / `stuns:`.
    Stun,
    /// `turn:` / `turns:`.
    Turn,
}

/// A server URI, as the resolution needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerName {
    /// STUN or TURN.
    pub service: Service,
    /// The host: a name, or an IP literal without brackets.
    pub host: String,
    /// The port, when the URI writes one.
    pub port: Option<u16>,
    /// The transport the URI asks for (`?transport=`, or TLS for the secure schemes);
    /// `None` for `turn:` without `?transport=`: NAPTR records choose.
    pub transport: Option<Transport>,
}

impl ServerName {
    /// `stun:` is STUN over UDP, `stuns:` over TLS (RFC 7064 §3.2; DTLS is not supported).
    pub fn stun(uri: &StunUri) -> ServerName {
        ServerName {
            service: Service::Stun,
            host: uri.host.clone(),
            port: uri.explicit_port.then_some(uri.port),
            transport: Some(if uri.secure {
                Transport::Tls
            } else {
                Transport::Udp
            }),
        }
    }

    /// A TURN URI whose transport is already checked: `transport` is what `?transport=`
    /// (or `turns:`) asks for, `None` when the URI leaves it to the client.
    pub fn turn(uri: &TurnUri, transport: Option<Transport>) -> ServerName {
        ServerName {
            service: Service::Turn,
            host: uri.host.clone(),
            port: uri.explicit_port.then_some(uri.port),
            transport,
        }
    }
}

/// The first thing to do for a [`ServerName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// An IP literal: used as is (RFC 5928 §3), no query.
    Literal(Transport, SocketAddr),
    /// A/AAAA of the host with this port: an explicit port (RFC 5928 §3, RFC 8489 §8), or a
    /// name that never goes to DNS (`localhost`, RFC 6761 §6.3).
    Addresses(Transport, String, u16),
    /// NAPTR of the host (RFC 5928 §3: a TURN URI without transport).
    Naptr,
    /// SRV of these names, in order.
    Srv(Vec<(Transport, String)>),
}

/// RFC 5928 §3 and RFC 8489 §8: IP literal or explicit port → no NAPTR/SRV; a TURN URI
/// without transport → NAPTR; otherwise SRV of the transport asked for.
pub fn plan(name: &ServerName, supported: &[Transport]) -> Plan {
    let transport = fallback_transport(name, supported);
    let port = name.port.unwrap_or_else(|| default_port(transport));
    if let Ok(ip) = name.host.parse::<IpAddr>() {
        return Plan::Literal(transport, SocketAddr::new(ip, port));
    }
    if name.port.is_some() || is_localhost(&name.host) {
        return Plan::Addresses(transport, name.host.clone(), port);
    }
    if name.service == Service::Turn && name.transport.is_none() {
        return Plan::Naptr;
    }
    Plan::Srv(srv_names(name, supported))
}

/// The SRV names to query without NAPTR records: the transport the URI asks for, or every
/// supported one in the client's order (RFC 5928 §3: "in the order of its preference").
pub fn srv_names(name: &ServerName, supported: &[Transport]) -> Vec<(Transport, String)> {
    let transports: Vec<Transport> = match name.transport {
        Some(transport) => vec![transport],
        None => supported.to_vec(),
    };
    transports
        .into_iter()
        .map(|t| (t, format!("{}.{}", srv_label(name.service, t), name.host)))
        .collect()
}

/// `_turn._udp`, `_turns._tcp`, `_stun._udp`… (RFC 5928 §3, RFC 8489 §8 and §18.1).
fn srv_label(service: Service, transport: Transport) -> &'static str {
    match (service, transport) {
        (Service::Turn, Transport::Udp) => "_turn._udp",
        (Service::Turn, Transport::Tcp) => "_turn._tcp",
        (Service::Turn, Transport::Tls) => "_turns._tcp",
        (Service::Stun, Transport::Udp) => "_stun._udp",
        (Service::Stun, Transport::Tcp) => "_stun._tcp",
        (Service::Stun, Transport::Tls) => "_stuns._tcp",
        // RFC 7350 registers the secure service names over UDP for DTLS.
        (Service::Turn, Transport::Dtls) => "_turns._udp",
        (Service::Stun, Transport::Dtls) => "_stuns._udp",
    }
}

/// The transport used with A/AAAA records: the URI's, else UDP when supported (RFC 7065
/// §3.2), else the client's first.
pub fn fallback_transport(name: &ServerName, supported: &[Transport]) -> Transport {
    name.transport.unwrap_or_else(|| {
        if supported.contains(&Transport::Udp) || supported.is_empty() {
            Transport::Udp
        } else {
            supported[0]
        }
    })
}

/// 3478 for UDP and TCP, 5349 for TLS (RFC 8489 §18.1, RFC 5928 §3) and DTLS (RFC 7350).
pub fn default_port(transport: Transport) -> u16 {
    if matches!(transport, Transport::Tls | Transport::Dtls) {
        STUNS_PORT
    } else {
        STUN_PORT
    }
}

/// RFC 6761 §6.3: `localhost` and names under it are the loopback, not for DNS servers.
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn turn(text: &str) -> ServerName {
        let uri = TurnUri::parse(text).unwrap();
        let transport = match (uri.secure, uri.transport.as_deref()) {
            (true, Some("udp")) => Some(Transport::Dtls),
            (true, _) => Some(Transport::Tls),
            (false, Some("tcp")) => Some(Transport::Tcp),
            (false, Some(_)) => Some(Transport::Udp),
            (false, None) => None,
        };
        ServerName::turn(&uri, transport)
    }

    fn stun(text: &str) -> ServerName {
        ServerName::stun(&StunUri::parse(text).unwrap())
    }

    const ALL: [Transport; 3] = [Transport::Udp, Transport::Tcp, Transport::Tls];

    // RFC 5928 §3: an IP address is used as is, with the explicit or default port.
    #[test]
    fn ip_literals_need_no_query() {
        assert_eq!(
            plan(&turn("turn:192.0.2.1"), &ALL),
            Plan::Literal(Transport::Udp, "192.0.2.1:3478".parse().unwrap())
        );
        assert_eq!(
            plan(&turn("turns:[2001:db8::1]"), &ALL),
            Plan::Literal(Transport::Tls, "[2001:db8::1]:5349".parse().unwrap())
        );
        assert_eq!(
            plan(&stun("stun:192.0.2.1:19302"), &[Transport::Udp]),
            Plan::Literal(Transport::Udp, "192.0.2.1:19302".parse().unwrap())
        );
    }

    // RFC 5928 §3 and RFC 8489 §8: an explicit port means A/AAAA only, no NAPTR or SRV.
    #[test]
    fn explicit_ports_skip_naptr_and_srv() {
        assert_eq!(
            plan(&turn("turn:example.net:8000"), &ALL),
            Plan::Addresses(Transport::Udp, "example.net".into(), 8000)
        );
        assert_eq!(
            plan(&stun("stuns:example.net:443"), &ALL),
            Plan::Addresses(Transport::Tls, "example.net".into(), 443)
        );
        // RFC 6761 §6.3: localhost never goes to a DNS server.
        assert_eq!(
            plan(&stun("stun:localhost"), &[Transport::Udp]),
            Plan::Addresses(Transport::Udp, "localhost".into(), 3478)
        );
    }

    // RFC 5928 §3: no transport → NAPTR; a transport (or turns:) → that SRV only.
    #[test]
    fn turn_without_transport_starts_with_naptr() {
        assert_eq!(plan(&turn("turn:example.net"), &ALL), Plan::Naptr);
        assert_eq!(
            plan(&turn("turn:example.net?transport=tcp"), &ALL),
            Plan::Srv(vec![(Transport::Tcp, "_turn._tcp.example.net".into())])
        );
        assert_eq!(
            plan(&turn("turns:example.net"), &ALL),
            Plan::Srv(vec![(Transport::Tls, "_turns._tcp.example.net".into())])
        );
        // RFC 7350: TURN over DTLS is the secure service over UDP.
        assert_eq!(
            plan(&turn("turns:example.net?transport=udp"), &ALL),
            Plan::Srv(vec![(Transport::Dtls, "_turns._udp.example.net".into())])
        );
        // Without NAPTR records: SRV of the supported transports, in the client's order.
        assert_eq!(
            srv_names(&turn("turn:example.net"), &[Transport::Tcp, Transport::Udp]),
            vec![
                (Transport::Tcp, "_turn._tcp.example.net".into()),
                (Transport::Udp, "_turn._udp.example.net".into())
            ]
        );
    }

    // RFC 8489 §8: stun: → _stun._udp, stuns: → _stuns._tcp; no NAPTR for STUN.
    #[test]
    fn stun_uses_srv_only() {
        assert_eq!(
            plan(&stun("stun:example.net"), &[Transport::Udp]),
            Plan::Srv(vec![(Transport::Udp, "_stun._udp.example.net".into())])
        );
        assert_eq!(
            plan(&stun("stuns:example.net"), &ALL),
            Plan::Srv(vec![(Transport::Tls, "_stuns._tcp.example.net".into())])
        );
    }

    // RFC 5928 §3 / RFC 8489 §8: without SRV records, A/AAAA with 3478 (5349 for TLS).
    #[test]
    fn fallback_uses_the_default_ports() {
        let name = turn("turn:example.net");
        assert_eq!(fallback_transport(&name, &ALL), Transport::Udp);
        assert_eq!(fallback_transport(&name, &[Transport::Tls]), Transport::Tls);
        assert_eq!(default_port(Transport::Udp), 3478);
        assert_eq!(default_port(Transport::Tcp), 3478);
        assert_eq!(default_port(Transport::Tls), 5349);
        assert_eq!(default_port(Transport::Dtls), 5349);
        let name = stun("stuns:example.net");
        assert_eq!(default_port(fallback_transport(&name, &ALL)), 5349);
    }
}
