//! ALTERNATE-SERVER when the server is full (RFC 8656 §7.2 step 11, RFC 8489 §10): an
//! Allocate refused for the total quota or for want of a relay port gets 300 (Try Alternate)
//! naming a server with room, when one of the client's family is known; never for a per-user
//! quota, never to an unauthenticated request.

use std::net::SocketAddr;

use stun::attributes::{AlternateDomain, AlternateServer, ReservationToken};
use stun::{AnyAttribute, Message, Method};
use turn::relay::stats::RESPONSE_CODES;
use turn::relay::{ClientTransport, DomainName, RelayOpenError, ServerErrorCause, TurnConfig};

use super::harness::{code, config, udp_client, Client, World, RELAY_IP};
use super::UDP;

const ALICE: (&str, &str) = ("alice", "alice-pass");
const BOB: (&str, &str) = ("bob", "bob-pass");

fn v4() -> SocketAddr {
    "192.0.2.9:3478".parse().unwrap()
}

fn v6() -> SocketAddr {
    "[2001:db8::9]:3478".parse().unwrap()
}

fn client(port: u16, (user, pass): (&str, &str)) -> Client {
    Client::new(udp_client(port), user, pass)
}

fn alternates(reply: &[u8]) -> Vec<SocketAddr> {
    let m = Message::decode(reply).unwrap();
    m.get_all::<AlternateServer>()
        .map(|a| a.unwrap().0)
        .collect()
}

/// Allocate answers counted with `code` (the metrics' requests by method × answer).
fn allocate_answers(world: &World, code: &str) -> u64 {
    let c = RESPONSE_CODES.iter().position(|c| *c == code).unwrap();
    world.server.stats().requests[0][c]
}

/// A server whose one allocation is taken (`total-quota = 1`), with `alternates`.
fn full_by_quota(alternates: &[SocketAddr]) -> World {
    let mut world = World::new(TurnConfig {
        total_quota: 1,
        ..config()
    });
    world.server.set_alternates(alternates);
    let mut first = client(5000, ALICE);
    assert_eq!(
        code(&first.request(&mut world, Method::ALLOCATE, &[UDP])),
        0
    );
    world.server_errors();
    world
}

// RFC 8489 §10: a client redirected reconnects with the same transport; one over TLS or DTLS
// must be sent to the alternate's TLS/DTLS port (`tls-alternate-server`), and gets 508 rather
// than a plain port when none is known.
#[test]
fn tls_and_dtls_clients_are_sent_to_the_tls_alternates() {
    let tls = "192.0.2.9:5349".parse().unwrap();
    let mut world = full_by_quota(&[v4()]);
    for (port, transport) in [(5001, ClientTransport::Tls), (5002, ClientTransport::Dtls)] {
        let mut c = client(port, BOB);
        c.five_tuple.transport = transport;
        let reply = c.request(&mut world, Method::ALLOCATE, &[UDP]);
        assert_eq!(code(&reply), 508, "{transport:?} without TLS alternates");
        world.server.set_tls_alternates(&[tls]);
        let reply = c.request(&mut world, Method::ALLOCATE, &[UDP]);
        assert_eq!(code(&reply), 300, "{transport:?}");
        assert_eq!(alternates(&reply), [tls], "{transport:?}");
        world.server.set_tls_alternates(&[]);
    }
    // A plain client still gets the plain alternate, and a later `set_alternates` (a reload, the
    // cluster) keeps the TLS ones.
    world.server.set_tls_alternates(&[tls]);
    world.server.set_alternates(&[v4()]);
    let mut udp = client(5003, BOB);
    assert_eq!(
        alternates(&udp.request(&mut world, Method::ALLOCATE, &[UDP])),
        [v4()]
    );
    let mut over_tls = client(5004, BOB);
    over_tls.five_tuple.transport = ClientTransport::Tls;
    let reply = over_tls.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(alternates(&reply), [tls]);
}

// RFC 8489 §10: over TLS or DTLS, a 300 to a request signed with MESSAGE-INTEGRITY-SHA256
// carries ALTERNATE-DOMAIN, the name the alternate's certificate holds; an RFC 5389 client
// (MESSAGE-INTEGRITY) and a UDP or TCP client never get it, and without the setting nobody does.
#[test]
fn tls_clients_signing_with_sha256_get_the_alternate_domain() {
    let tls = "192.0.2.9:5349".parse().unwrap();
    let domain: DomainName = "turn-b.example.org".parse().unwrap();
    let mut world = full_by_quota(&[v4()]);
    world.server.set_tls_alternates(&[tls]);
    world.server.set_tls_alternate_domain(Some(&domain));
    let mut port = 5001;
    let mut answer = |world: &mut World, transport: ClientTransport, sha256: bool| {
        port += 1;
        let mut c = match sha256 {
            true => Client::modern(udp_client(port), BOB.0, BOB.1),
            false => client(port, BOB),
        };
        c.five_tuple.transport = transport;
        let reply = c.request(world, Method::ALLOCATE, &[UDP]);
        assert_eq!(code(&reply), 300, "{transport:?} sha256={sha256}");
        let m = Message::decode(&reply).unwrap();
        match sha256 {
            true => m.verify_integrity_sha256(c.key.as_bytes()),
            false => m.verify_integrity(c.key.as_bytes()),
        }
        .expect("the 300 is signed as the request was");
        let names: Vec<String> = m
            .get_all::<AlternateDomain<'_>>()
            .map(|d| d.unwrap().0.to_owned())
            .collect();
        (alternates(&reply), names)
    };
    for transport in [ClientTransport::Tls, ClientTransport::Dtls] {
        let (servers, names) = answer(&mut world, transport, true);
        assert_eq!(servers, [tls], "{transport:?}");
        assert_eq!(names, [domain.as_str()], "{transport:?}");
        // An RFC 5389 client would not read it: it checks the first name (§10).
        assert_eq!(answer(&mut world, transport, false), (vec![tls], vec![]));
    }
    for transport in [ClientTransport::Udp, ClientTransport::Tcp] {
        assert_eq!(answer(&mut world, transport, true), (vec![v4()], vec![]));
    }
    world.server.set_tls_alternate_domain(None);
    assert_eq!(world.server.tls_alternate_domain(), None);
    let unnamed = answer(&mut world, ClientTransport::Tls, true);
    assert_eq!(unnamed, (vec![tls], vec![]));
}

// RFC 8656 §7.2 step 11 with RFC 8489 §10: 300, the client's family first, the other family
// after it, signed with the request's key; the refusal is still reported with its cause.
#[test]
fn full_by_total_quota_redirects_with_300() {
    let mut world = full_by_quota(&[v6(), v4()]);
    let mut second = client(5001, BOB);
    let reply = second.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 300);
    assert_eq!(alternates(&reply), [v4(), v6()]);
    Message::decode(&reply)
        .unwrap()
        .verify_integrity(second.key.as_bytes())
        .expect("the 300 is signed with the request's key");
    assert_eq!(world.server_errors(), [(300, ServerErrorCause::TotalQuota)]);
    assert_eq!(allocate_answers(&world, "300"), 1);
    assert_eq!(allocate_answers(&world, "508"), 0);
    assert_eq!(world.server.stats().allocation_count(), 1);
}

// Without alternates, or with none of the client's family (RFC 8489 §10: the first MUST be of
// its family), the answer stays 508 (RFC 8656 §7.2).
#[test]
fn full_without_an_alternate_of_the_family_answers_508() {
    for alternates in [&[][..], &[v6()][..]] {
        let mut world = full_by_quota(alternates);
        let mut second = client(5001, BOB);
        let reply = second.request(&mut world, Method::ALLOCATE, &[UDP]);
        assert_eq!(code(&reply), 508, "alternates {alternates:?}");
        assert_eq!(world.server_errors(), [(508, ServerErrorCause::TotalQuota)]);
    }
    // Alternates removed again: 508.
    let mut world = full_by_quota(&[v4()]);
    world.server.set_alternates(&[]);
    assert!(world.server.alternates().is_empty());
    let mut second = client(5001, BOB);
    assert_eq!(
        code(&second.request(&mut world, Method::ALLOCATE, &[UDP])),
        508
    );
}

// RFC 8656 §7.2 step 10: a user over its own quota gets 486 even when alternates are known:
// another node would lift the operator's per-user cap, not enforce it.
#[test]
fn a_user_over_its_quota_gets_486_not_a_redirect() {
    let mut world = World::new(TurnConfig {
        user_quota: 1,
        ..config()
    });
    world.server.set_alternates(&[v4()]);
    let mut a1 = client(5000, ALICE);
    assert_eq!(code(&a1.request(&mut world, Method::ALLOCATE, &[UDP])), 0);
    let mut a2 = client(5001, ALICE);
    let reply = a2.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 486);
    assert!(alternates(&reply).is_empty());
}

// No relay port left (the pool empty, or every bind failing): 300 with alternates, else 508.
#[test]
fn no_relay_port_left_redirects_with_300() {
    let relay = |port| SocketAddr::new(RELAY_IP.parse().unwrap(), port);
    let mut world = World::new(TurnConfig {
        port_range: 50000..=50000,
        ..config()
    });
    let mut a = client(5000, ALICE);
    assert_eq!(code(&a.request(&mut world, Method::ALLOCATE, &[UDP])), 0);
    assert!(world.sockets.open.contains(&relay(50000)));
    let mut b = client(5001, BOB);
    assert_eq!(code(&b.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
    world.server.set_alternates(&[v4()]);
    let reply = b.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 300);
    assert_eq!(alternates(&reply), [v4()]);
    let errors = world.server_errors();
    let empty = ServerErrorCause::PortPoolEmpty {
        ip: RELAY_IP.parse().unwrap(),
    };
    assert_eq!(errors, [(508, empty), (300, empty)]);
    // Nothing was counted for the refused allocation: freeing the one port makes room.
    assert_eq!(world.server.shared_state().allocations(), 1);

    // Every bind failing (EMFILE: out of file descriptors) is as full.
    let mut world = World::new(config());
    world.server.set_alternates(&[v4()]);
    world.sockets.fail_all = Some(RelayOpenError::ProcessFileLimit);
    let reply = a.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 300);
    assert_eq!(world.server.shared_state().allocations(), 0);
}

// A RESERVATION-TOKEN names a port of this server: another node cannot redeem it, so an
// unknown token stays a 508 (RFC 8656 §7.2) even with alternates.
#[test]
fn an_unknown_reservation_token_is_not_redirected() {
    let mut world = World::new(config());
    world.server.set_alternates(&[v4()]);
    let mut a = client(5000, ALICE);
    let token = AnyAttribute::ReservationToken(ReservationToken([1; 8]));
    assert_eq!(
        code(&a.request(&mut world, Method::ALLOCATE, &[UDP, token])),
        508
    );
}

// RFC 8489 §10 / §9.2.4: authentication comes first; a full server answers an unsigned or
// wrongly signed Allocate with 401, never with the fleet's addresses.
#[test]
fn an_unauthenticated_allocate_never_gets_300() {
    let mut world = full_by_quota(&[v4(), v6()]);
    let mut stranger = client(5001, ("bob", "wrong-pass"));
    let reply = stranger.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 401);
    assert!(alternates(&reply).is_empty());
    // The unsigned first request too.
    let mut fresh = client(5002, BOB);
    fresh.nonce = None;
    let tid = world.tid();
    let (_, reply) = world.feed(
        fresh.five_tuple,
        &fresh.encode(Method::ALLOCATE, tid, &[UDP]),
    );
    assert_eq!(code(&reply), 401);
    assert!(alternates(&reply).is_empty());
    assert_eq!(allocate_answers(&world, "300"), 0);
}

// Draining uses the same alternates; set_alternates while draining updates them.
#[test]
fn draining_and_set_alternates_share_the_alternates() {
    let mut world = World::new(config());
    world.server.start_draining(&[]);
    let mut a = client(5000, ALICE);
    assert_eq!(code(&a.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
    world.server.set_alternates(&[v4()]);
    let reply = a.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 300);
    assert_eq!(alternates(&reply), [v4()]);
}
