//! Server-reflexive candidates (RFC 8445 §5.1.1.1): one Binding request from each host socket
//! to each STUN server; the XOR-MAPPED-ADDRESS of an answer is a candidate whose base is the
//! socket it was sent from. Sans-IO like the rest of the client: the caller sends what
//! [`Reflexive::poll_transmit`] returns from the named base, offers what arrives on a host socket
//! to [`Reflexive::receive`] before the peer connection sees it, and wakes it at
//! [`Reflexive::poll_timeout`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use ice::{BindingTransaction, RequestOptions, RetransmitTiming};
use stun::TransactionId;

/// A datagram to send from the host socket `base`.
#[derive(Debug, PartialEq, Eq)]
pub struct ReflexiveTransmit {
    /// The host socket's address.
    pub base: SocketAddr,
    /// The STUN server.
    pub destination: SocketAddr,
    /// The Binding request.
    pub payload: Vec<u8>,
}

/// A server-reflexive address found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    /// Our address as the server saw it.
    pub mapped: SocketAddr,
    /// The host socket the request left from (RFC 8445 §5.1.1.1: the candidate's base).
    pub base: SocketAddr,
}

/// One transaction per (host socket, STUN server).
pub struct Reflexive {
    transactions: Vec<(SocketAddr, BindingTransaction)>,
    found: VecDeque<Found>,
}

impl Reflexive {
    /// Starts a Binding request from every base to every server. `ids` draws transaction ids
    /// (RFC 8489 §5: random; the caller's randomness, not ours). A shorter first RTO than
    /// RFC 8489's 500 ms default is not taken: a candidate arriving late is trickled anyway.
    pub fn new(
        now: Instant,
        bases: &[SocketAddr],
        servers: &[SocketAddr],
        mut ids: impl FnMut() -> TransactionId,
    ) -> Self {
        let mut transactions = Vec::new();
        for &base in bases {
            // A server of the other address family cannot answer this socket.
            for &server in servers.iter().filter(|s| s.is_ipv4() == base.is_ipv4()) {
                match BindingTransaction::new(
                    now,
                    server,
                    ids(),
                    &RequestOptions::default(),
                    RetransmitTiming::default(),
                ) {
                    Ok(transaction) => transactions.push((base, transaction)),
                    // A plain request always fits; nothing to gather if it did not.
                    Err(error) => tracing::debug!(%error, "Binding request not encoded"),
                }
            }
        }
        Reflexive {
            transactions,
            found: VecDeque::new(),
        }
    }

    /// The next request due (first sends and retransmissions, RFC 8489 §6.2.1).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<ReflexiveTransmit> {
        self.transactions
            .iter_mut()
            .find_map(|(base, transaction)| {
                transaction
                    .poll_transmit(now)
                    .map(|transmit| ReflexiveTransmit {
                        base: *base,
                        destination: transmit.destination,
                        payload: transmit.payload.to_vec(),
                    })
            })
    }

    /// A datagram that arrived on the host socket `base`: true when it was the answer to one
    /// of our requests (and so is not for the peer connection).
    pub fn receive(
        &mut self,
        now: Instant,
        base: SocketAddr,
        from: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        // A late duplicate of an answer is consumed too (handle_input says it is ours).
        let mut ours = self
            .transactions
            .iter_mut()
            .filter(|(b, _)| *b == base)
            .map(|(_, t)| t);
        let Some(transaction) = ours.find_map(|t| t.handle_input(now, from, bytes).then_some(t))
        else {
            return false;
        };
        match transaction.poll_result() {
            Some(Ok(response)) => self.found.push_back(Found {
                mapped: response.mapped,
                base,
            }),
            Some(Err(error)) => tracing::debug!(%error, %from, "no server-reflexive address"),
            None => {}
        }
        true
    }

    /// Time passed: retransmissions fall due, unanswered transactions give up.
    pub fn timeout(&mut self, now: Instant) {
        for (_, transaction) in &mut self.transactions {
            transaction.handle_timeout(now);
            if let Some(Err(error)) = transaction.poll_result() {
                tracing::debug!(%error, server = %transaction.server(), "STUN server gave no address");
            }
        }
    }

    /// When to call [`Reflexive::timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transactions
            .iter()
            .filter_map(|(_, transaction)| transaction.poll_timeout())
            .min()
    }

    /// The next address found.
    pub fn poll_found(&mut self) -> Option<Found> {
        self.found.pop_front()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use stun::attributes::XorMappedAddress;
    use stun::{Class, MessageType, MessageWriter, Method};

    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn ids() -> impl FnMut() -> TransactionId {
        let mut n = 0u8;
        move || {
            n += 1;
            TransactionId([n; 12])
        }
    }

    fn success(id: TransactionId, mapped: SocketAddr) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let kind = MessageType::new(Method::BINDING, Class::Success);
        let mut w = MessageWriter::new(&mut buf, kind, id).unwrap();
        w.add(&XorMappedAddress(mapped)).unwrap();
        w.add_fingerprint().unwrap();
        let len = w.finish();
        buf[..len].to_vec()
    }

    #[test]
    fn each_base_asks_each_server_of_its_family_and_an_answer_is_a_candidate_on_that_base() {
        let now = Instant::now();
        let bases = [addr("10.0.0.2:5000"), addr("10.0.1.2:5001")];
        let servers = [addr("192.0.2.1:3478"), addr("[2001:db8::1]:3478")];
        let mut gatherer = Reflexive::new(now, &bases, &servers, ids());
        let first = gatherer.poll_transmit(now).unwrap();
        let second = gatherer.poll_transmit(now).unwrap();
        assert_eq!(
            gatherer.poll_transmit(now),
            None,
            "no IPv6 server asked from IPv4"
        );
        assert_eq!((first.base, first.destination), (bases[0], servers[0]));
        assert_eq!((second.base, second.destination), (bases[1], servers[0]));

        // The answer to the second base's request, arriving on the second socket.
        let answer = success(TransactionId([2; 12]), addr("203.0.113.9:40000"));
        assert!(
            !gatherer.receive(now, bases[0], servers[0], &answer),
            "not this socket's"
        );
        assert!(gatherer.receive(now, bases[1], servers[0], &answer));
        assert_eq!(
            gatherer.poll_found(),
            Some(Found {
                mapped: addr("203.0.113.9:40000"),
                base: bases[1]
            })
        );
        assert_eq!(gatherer.poll_found(), None);
        // A duplicate answer is consumed (not for the peer) but finds nothing new.
        assert!(gatherer.receive(now, bases[1], servers[0], &answer));
        assert_eq!(gatherer.poll_found(), None);
        assert!(!gatherer.receive(now, bases[0], servers[0], b"\x00\x01 not STUN for us"));
    }

    #[test]
    fn unanswered_requests_are_resent_then_given_up() {
        let now = Instant::now();
        let mut gatherer = Reflexive::new(
            now,
            &[addr("10.0.0.2:5000")],
            &[addr("192.0.2.1:3478")],
            ids(),
        );
        assert!(gatherer.poll_transmit(now).is_some());
        let retry = gatherer.poll_timeout().unwrap();
        assert_eq!(
            retry,
            now + Duration::from_millis(500),
            "RFC 8489 §6.2.1 RTO"
        );
        gatherer.timeout(retry);
        assert!(gatherer.poll_transmit(retry).is_some(), "resent");
        let mut at = retry;
        while let Some(next) = gatherer.poll_timeout() {
            at = next;
            gatherer.timeout(at);
            while gatherer.poll_transmit(at).is_some() {}
        }
        assert!(
            at >= now + Duration::from_secs(39),
            "Rc = 7, Rm = 16: given up after 39.5 s"
        );
        assert_eq!(gatherer.poll_found(), None);
    }
}
