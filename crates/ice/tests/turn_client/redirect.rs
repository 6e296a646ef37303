//! The client on a 300 (Try Alternate) to its Allocate (RFC 8656 §7.2, RFC 8489 §10): it tries
//! the alternate once, from a new unauthenticated Allocate, and never loops; only a 300 that
//! verifies with its key moves it. Against two sans-IO server cores, the first one full.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Instant;

use ice::{TurnClient, TurnClientConfig, TurnError, TurnEvent, TurnInput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::attributes::AlternateServer;
use stun::error_code::TRY_ALTERNATE;
use stun::{Class, Message, MessageWriter};
use turn::auth::{AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::{ClientOutcome, ClientTransport, FiveTuple, TurnConfig, TurnServer};

use super::harness::{addr, alice, FakeSockets, CLIENT, PEER, REALM, RELAY_IP, SEED};

const A: &str = "192.0.2.1:3478";
const B: &str = "192.0.2.2:3478";
const C: &str = "192.0.2.3:3478";

/// One server core: full (`total-quota = 0`) or with room, with its alternates.
fn core(full: bool, alternates: &[&str]) -> (TurnServer, FakeSockets) {
    let mut auth = AuthConfig::new(REALM, [7; 32]);
    auth.users = vec![StaticUser::from_password("alice", REALM, "alice-pass")];
    let config = TurnConfig {
        relay_v4: Some(RELAY_IP.parse().unwrap()),
        total_quota: if full { 0 } else { 100 },
        ..TurnConfig::default()
    };
    let mut server = TurnServer::new(
        config,
        Authenticator::new(auth),
        PeerPolicy::default(),
        Box::new(StdRng::seed_from_u64(42)),
    );
    let alternates: Vec<SocketAddr> = alternates.iter().map(|a| addr(a)).collect();
    server.set_alternates(&alternates);
    (server, FakeSockets::default())
}

/// Servers by address, one client, the wire between them routed by destination.
struct Fleet {
    servers: BTreeMap<SocketAddr, (TurnServer, FakeSockets)>,
    client: TurnClient,
    now: Instant,
    events: Vec<TurnEvent>,
    /// Requests each server received.
    received: BTreeMap<SocketAddr, usize>,
    /// How the client reaches the servers (the transport of its 5-tuples).
    transport: ClientTransport,
}

impl Fleet {
    fn new(servers: &[(&str, bool, &[&str])], config: TurnClientConfig) -> Fleet {
        let now = Instant::now();
        Fleet {
            servers: servers
                .iter()
                .map(|(at, full, alternates)| (addr(at), core(*full, alternates)))
                .collect(),
            client: TurnClient::with_config(now, addr(A), alice(), SEED, config),
            now,
            events: Vec::new(),
            received: BTreeMap::new(),
            transport: ClientTransport::Udp,
        }
    }

    /// Delivers until quiet.
    fn pump(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            *self.received.entry(t.destination).or_default() += 1;
            let Some((server, sockets)) = self.servers.get_mut(&t.destination) else {
                continue;
            };
            let five_tuple = FiveTuple {
                client: addr(CLIENT).into(),
                server: t.destination,
                transport: self.transport,
            };
            let mut out = [0u8; 1500];
            let unix_now = 1_900_000_000;
            let clock = (self.now, unix_now);
            let outcome = sockets.serve(server, clock, five_tuple, &t.payload, &mut out);
            if let ClientOutcome::Reply(reply) = outcome {
                let input = self
                    .client
                    .handle_input(self.now, t.destination, &out[..reply.len]);
                assert_eq!(input, TurnInput::Consumed);
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.client.poll_event()));
    }

    fn allocations(&self, at: &str) -> u64 {
        self.servers[&addr(at)].0.stats().allocation_count()
    }

    fn failure(&self) -> Option<&TurnError> {
        self.events.iter().find_map(|e| match e {
            TurnEvent::AllocationFailed(error) => Some(error),
            _ => None,
        })
    }
}

// RFC 8656 §7.2: on 300 the client "SHOULD try the Allocate request with the alternate
// server"; RFC 8489 §10: same transport, same credentials. The allocation is made on B and
// everything after goes there.
#[test]
fn a_300_sends_the_allocate_to_the_alternate_once() {
    let mut fleet = Fleet::new(
        &[(A, true, &[B]), (B, false, &[])],
        TurnClientConfig::default(),
    );
    fleet.pump();
    assert_eq!(
        fleet.events[0],
        TurnEvent::Redirected {
            from: addr(A),
            to: addr(B),
            domain: None,
        }
    );
    assert!(
        matches!(fleet.events[1], TurnEvent::Allocated { .. }),
        "{:?}",
        fleet.events
    );
    assert_eq!(fleet.client.server(), addr(B));
    assert_eq!(fleet.client.redirected_from(), Some(addr(A)));
    assert_eq!((fleet.allocations(A), fleet.allocations(B)), (0, 1));
    // A saw the unsigned Allocate and the signed one; B the same two.
    assert_eq!(fleet.received[&addr(A)], 2);
    assert_eq!(fleet.received[&addr(B)], 2);
    // Data and refreshes go to B now.
    let sent = fleet.client.send_to(fleet.now, addr(PEER), b"hello");
    assert_eq!(sent.destination, addr(B));
    // Answers from A are not ours any more.
    assert_eq!(
        fleet
            .client
            .handle_input(fleet.now, addr(A), &[0x40, 0, 0, 0]),
        TurnInput::NotMine
    );
}

// RFC 8489 §10: over TLS (or DTLS) the client signs with MESSAGE-INTEGRITY-SHA256 once the
// server offers PASSWORD-ALGORITHMS, so the server adds ALTERNATE-DOMAIN, and the event hands
// the name to the driver for the certificate check of the alternate.
#[test]
fn a_300_over_tls_hands_the_alternate_domain_to_the_driver() {
    let mut fleet = Fleet::new(
        &[(A, true, &[]), (B, false, &[])],
        TurnClientConfig::default(),
    );
    fleet.transport = ClientTransport::Tls;
    let a = &mut fleet.servers.get_mut(&addr(A)).unwrap().0;
    a.set_tls_alternates(&[addr(B)]);
    a.set_tls_alternate_domain(Some(&"turn-b.example.org".parse().unwrap()));
    fleet.pump();
    assert_eq!(
        fleet.events[0],
        TurnEvent::Redirected {
            from: addr(A),
            to: addr(B),
            domain: Some("turn-b.example.org".to_owned()),
        }
    );
    assert!(matches!(fleet.events[1], TurnEvent::Allocated { .. }));
}

// RFC 8489 §10: "If the client has been redirected to a server to which it has already sent
// this request ... it MUST ignore the redirection": at most one redirect per allocation, so
// neither A → B → A nor A → B → C is followed.
#[test]
fn a_second_redirect_fails_the_allocation() {
    for b_alternates in [&[A][..], &[C][..]] {
        let mut fleet = Fleet::new(
            &[(A, true, &[B]), (B, true, b_alternates), (C, false, &[])],
            TurnClientConfig::default(),
        );
        fleet.pump();
        assert_eq!(fleet.failure().and_then(TurnError::code), Some(300));
        let redirects = fleet
            .events
            .iter()
            .filter(|e| matches!(e, TurnEvent::Redirected { .. }))
            .count();
        assert_eq!(redirects, 1);
        assert_eq!(fleet.received.get(&addr(C)), None);
        assert_eq!(fleet.client.poll_timeout(), None, "nothing left to do");
    }
}

// A redirect to the server itself, or with the option off, fails the allocation with the 300;
// with only an alternate of the other family the server answers 508 itself (RFC 8489 §10: the
// first ALTERNATE-SERVER must be of the client's family).
#[test]
fn unusable_redirects_fail_with_the_300() {
    let v6 = "[2001:db8::2]:3478";
    let off = TurnClientConfig {
        follow_alternate: false,
        ..TurnClientConfig::default()
    };
    for (alternates, config, code) in [
        (&[A][..], TurnClientConfig::default(), 300),
        (&[B][..], off, 300),
        (&[v6][..], TurnClientConfig::default(), 508),
    ] {
        let mut fleet = Fleet::new(&[(A, true, alternates), (B, false, &[])], config);
        fleet.pump();
        let error = fleet.failure().cloned();
        assert_eq!(
            error.as_ref().and_then(TurnError::code),
            Some(code),
            "{alternates:?}"
        );
        assert_eq!(fleet.received.get(&addr(B)), None);
    }
}

// RFC 8489 §9.2.5 / §10: only a 300 that verifies with our key moves the client. A 300 to the
// first, unsigned Allocate (anyone on the path could forge it) fails the allocation instead.
#[test]
fn an_unauthenticated_300_is_not_followed() {
    let now = Instant::now();
    let mut client = TurnClient::new(now, addr(A), alice(), SEED);
    let first = client.poll_transmit().unwrap().payload;
    let request = Message::decode(&first).unwrap();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::response(&mut buf, request.header(), Class::Error).unwrap();
    w.add(&TRY_ALTERNATE).unwrap();
    w.add(&AlternateServer(addr(B))).unwrap();
    let len = w.finish();
    assert_eq!(
        client.handle_input(now, addr(A), &buf[..len]),
        TurnInput::Consumed
    );
    let events: Vec<_> = std::iter::from_fn(|| client.poll_event()).collect();
    assert!(
        matches!(&events[..], [TurnEvent::AllocationFailed(e)] if e.code() == Some(300)),
        "{events:?}"
    );
    assert_eq!(client.server(), addr(A));
    assert!(client.poll_transmit().is_none());
}
