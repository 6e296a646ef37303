//! Alternate servers: where this server sends a client whose Allocate it will not take
//! (RFC 8656 §7.2 step 11: "at any point, the server MAY choose to reject the request with a
//! 300 (Try Alternate) error"; the answer follows RFC 8489 §10).
//!
//! The alternates are a setting of their own, independent of draining: the driver sets them
//! from `alternate-server` (clients over UDP and TCP) and `tls-alternate-server` (clients over
//! TLS and DTLS, who must reconnect to a TLS/DTLS port) at start and on reload, and a cluster
//! adapter may replace them whenever the fleet's least-loaded nodes change
//! ([`TurnServer::set_alternates`] only copies addresses). They are used when
//! - the server is draining (see [`super::drain`]): every new Allocate is redirected;
//! - the server is full: the total allocation quota is reached or no relay socket can be
//!   opened, where the answer would otherwise be 508 (Insufficient Capacity).
//!
//! A per-user quota (486) is never redirected: the operator capped what one username may
//! hold on this server, and sending the user to another node would lift the cap rather than
//! enforce it. Neither is an Allocate that fails for a reason another node shares (a bad
//! request, a RESERVATION-TOKEN, which names a port of this server).
//!
//! The 300 is only ever an answer to an authenticated Allocate, signed like every other
//! answer to one (RFC 8489 §10: "The error response message MAY be authenticated"; here it
//! always is): an unauthenticated client gets its 401 first, so nobody learns the fleet's
//! addresses without credentials, and a client can check the redirect is ours.
//!
//! A client over TLS or DTLS checks the alternate's certificate against the name it used for
//! this server unless the 300 carries ALTERNATE-DOMAIN (RFC 8489 §10): the server "MUST
//! include" one when it redirects to a server with a different certificate, but only in the
//! answer to a request signed with MESSAGE-INTEGRITY-SHA256 — the sign that the client
//! implements RFC 8489 and reads the attribute. The name is a setting of its own
//! ([`TurnServer::set_tls_alternate_domain`]: `tls-alternate-domain`, or the alternate node's
//! host name in a cluster); a client that signed with MESSAGE-INTEGRITY (RFC 5389) never gets
//! it and keeps checking the first name, which the alternate's certificate must then carry.

use std::net::SocketAddr;

use stun::attributes::{AlternateDomain, AlternateServer};
use stun::error_code::TRY_ALTERNATE;
use stun::{Class, Message};

use super::domain_name::DomainName;
use super::five_tuple::{ClientTransport, FiveTuple};
use super::respond::respond;
use super::server::TurnServer;
use crate::auth::{Authenticated, IntegrityKind};

/// The alternate servers of one core: the first of each address family, for clients over UDP
/// and TCP, and for clients over TLS and DTLS, which must reach the alternate's TLS/DTLS port
/// (coturn's `alternate-server` and `tls-alternate-server`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Alternates {
    v4: Option<SocketAddr>,
    v6: Option<SocketAddr>,
    tls_v4: Option<SocketAddr>,
    tls_v6: Option<SocketAddr>,
}

impl Alternates {
    /// The first IPv4 and the first IPv6 address of `servers` (a 300 carries one of each,
    /// RFC 8489 §10).
    pub fn new(servers: &[SocketAddr]) -> Self {
        Alternates::default().with_plain(servers)
    }

    /// These, with `servers` as the alternates of UDP and TCP clients (the first of each
    /// family); the TLS ones are kept.
    pub fn with_plain(self, servers: &[SocketAddr]) -> Self {
        let (v4, v6) = first_of_each(servers);
        Alternates { v4, v6, ..self }
    }

    /// These, with `servers` as the alternates of TLS and DTLS clients (the first of each
    /// family).
    pub fn with_tls(self, servers: &[SocketAddr]) -> Self {
        let (tls_v4, tls_v6) = first_of_each(servers);
        Alternates {
            tls_v4,
            tls_v6,
            ..self
        }
    }

    /// True when there is none, for any transport.
    pub fn is_empty(&self) -> bool {
        [self.v4, self.v6, self.tls_v4, self.tls_v6]
            .iter()
            .all(Option::is_none)
    }

    /// The alternates for a client over `transport`: a TLS or DTLS client reconnects over
    /// TLS or DTLS (RFC 8489 §10: it "MUST use the same transport protocol"), so it gets the
    /// TLS alternates, never a plain STUN/TURN port it could not speak TLS to.
    pub fn for_transport(&self, transport: ClientTransport) -> Alternates {
        let (v4, v6) = match transport {
            ClientTransport::Udp | ClientTransport::Tcp => (self.v4, self.v6),
            ClientTransport::Tls | ClientTransport::Dtls => (self.tls_v4, self.tls_v6),
        };
        Alternates {
            v4,
            v6,
            ..Alternates::default()
        }
    }

    /// The alternates for a client at `client`: one of its own family first (RFC 8489 §10:
    /// the first ALTERNATE-SERVER "MUST contain an IP address of the same address family as
    /// the source IP address of the request"), then one of the other family (SHOULD).
    /// `None` when there is none of the client's family: the client could not use it.
    pub fn for_client(&self, client: SocketAddr) -> Option<(SocketAddr, Option<SocketAddr>)> {
        let (same, other) = if client.is_ipv4() {
            (self.v4, self.v6)
        } else {
            (self.v6, self.v4)
        };
        same.map(|same| (same, other))
    }
}

/// The first IPv4 and the first IPv6 address of `servers`.
fn first_of_each(servers: &[SocketAddr]) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let first = |v4: bool| servers.iter().copied().find(|a| a.is_ipv4() == v4);
    (first(true), first(false))
}

impl TurnServer {
    /// Sets the servers a client is sent to when this one will not take its Allocate
    /// (draining, or full): the first of each address family of `servers` is kept, an empty
    /// list removes them (the answer is then 508). Cheap: no allocation, nothing else changes.
    pub fn set_alternates(&mut self, servers: &[SocketAddr]) {
        self.alternates = self.alternates.with_plain(servers);
    }

    /// The same for clients over TLS and DTLS: `servers` are the alternates' TLS/DTLS
    /// addresses; without them such a client gets 508, never a redirect to a port it cannot
    /// speak TLS to.
    pub fn set_tls_alternates(&mut self, servers: &[SocketAddr]) {
        self.alternates = self.alternates.with_tls(servers);
    }

    /// Sets the name in the certificate of the TLS alternates (ALTERNATE-DOMAIN, RFC 8489
    /// §10, §14.16), sent to TLS and DTLS clients whose request was signed with
    /// MESSAGE-INTEGRITY-SHA256; `None` sends none (the alternate's certificate carries the
    /// name the client used for this server).
    pub fn set_tls_alternate_domain(&mut self, domain: Option<&DomainName>) {
        if self.tls_alternate_domain.as_ref() != domain {
            self.tls_alternate_domain = domain.cloned();
        }
    }

    /// The alternate servers in force.
    pub fn alternates(&self) -> Alternates {
        self.alternates
    }

    /// The ALTERNATE-DOMAIN in force.
    pub fn tls_alternate_domain(&self) -> Option<&DomainName> {
        self.tls_alternate_domain.as_ref()
    }

    /// The 300 (Try Alternate) answer to the Allocate `message` of `five_tuple`, written into
    /// `out` (`Some(None)`: it did not fit); `None` when no alternate of the client's family
    /// is known, for the caller to answer as it would without one.
    pub(super) fn try_alternate(
        &self,
        five_tuple: &FiveTuple,
        message: &Message<'_>,
        auth: &Authenticated,
        out: &mut [u8],
    ) -> Option<Option<usize>> {
        let alternates = self.alternates.for_transport(five_tuple.transport);
        let (same, other) = alternates.for_client(five_tuple.client.get())?;
        // RFC 8489 §10: over TLS or DTLS, to a client that signed with
        // MESSAGE-INTEGRITY-SHA256 (and so reads the attribute).
        let secure = matches!(
            five_tuple.transport,
            ClientTransport::Tls | ClientTransport::Dtls
        );
        let domain = self
            .tls_alternate_domain
            .as_ref()
            .filter(|_| secure && auth.integrity == IntegrityKind::Sha256);
        Some(respond(message, Class::Error, Some(auth), out, |w| {
            w.add(&TRY_ALTERNATE)?;
            w.add(&AlternateServer(same))?;
            if let Some(other) = other {
                w.add(&AlternateServer(other))?;
            }
            match domain {
                Some(domain) => w.add(&AlternateDomain(domain.as_str())),
                None => Ok(()),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|_| unreachable!("a test address"))
    }

    // RFC 8489 §10: the first ALTERNATE-SERVER is of the request's family, then the other.
    #[test]
    fn the_clients_family_comes_first_and_is_required() {
        let v4 = addr("192.0.2.9:3478");
        let v6 = addr("[2001:db8::9]:3478");
        let both = Alternates::new(&[v6, addr("[2001:db8::10]:3478"), v4]);
        assert_eq!(
            both.for_client(addr("198.51.100.1:5000")),
            Some((v4, Some(v6)))
        );
        assert_eq!(
            both.for_client(addr("[2001:db8::1]:5000")),
            Some((v6, Some(v4)))
        );
        let only_v6 = Alternates::new(&[v6]);
        assert_eq!(only_v6.for_client(addr("198.51.100.1:5000")), None);
        assert!(Alternates::new(&[]).is_empty());
        assert!(!only_v6.is_empty());
    }

    // A TLS or DTLS client gets the TLS alternates only; a UDP or TCP client the plain ones.
    #[test]
    fn tls_and_dtls_clients_get_the_tls_alternates() {
        let plain = addr("192.0.2.9:3478");
        let tls = addr("192.0.2.9:5349");
        let client = addr("198.51.100.1:5000");
        let both = Alternates::new(&[plain]).with_tls(&[tls]);
        for (transport, expected) in [
            (ClientTransport::Udp, plain),
            (ClientTransport::Tcp, plain),
            (ClientTransport::Tls, tls),
            (ClientTransport::Dtls, tls),
        ] {
            let pair = both.for_transport(transport).for_client(client);
            assert_eq!(pair, Some((expected, None)), "{transport:?}");
        }
        // Plain alternates only: TLS and DTLS clients get none (508), not the plain port.
        let plain_only = Alternates::new(&[plain]);
        assert_eq!(
            plain_only
                .for_transport(ClientTransport::Tls)
                .for_client(client),
            None
        );
        assert!(!Alternates::new(&[]).with_tls(&[tls]).is_empty());
    }
}
