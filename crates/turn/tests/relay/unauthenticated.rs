//! What the core answers to requests that did not authenticate: replays, locked-out sources,
//! and the amplification rules (RFC 8489 §9.2.4, §16.1.2; RFC 8656 §7.1, §21).

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::{
    ChannelNumber, ErrorCode, Nonce, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};
use stun::TransactionId;
use stun::{AnyAttribute, Class, Message, MessageType, MessageWriter, Method};
use turn::relay::{ClientOutcome, ClientTransport, FiveTuple};

use super::harness::{code, config, udp_client, Client, World};

const UDP: AnyAttribute<'static> = AnyAttribute::RequestedTransport(RequestedTransport(17));

/// A request of `method` with `attributes`, nothing else (no credentials, no FINGERPRINT).
fn bare(method: Method, attributes: &[AnyAttribute<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(method, Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    for a in attributes {
        w.add_any(a).unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// One wrong-password Allocate from `attacker`.
fn guess(world: &mut World, attacker: &Client) -> (ClientOutcome, Vec<u8>) {
    let tid = world.tid();
    let request = attacker.encode(Method::ALLOCATE, tid, &[UDP]);
    world.feed(attacker.five_tuple, &request)
}

fn spoofed(ip: &str, port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new(ip.parse().unwrap(), port).into(),
        ..udp_client(port)
    }
}

// The nonce binds the client's transport address: a signed Allocate captured and replayed
// from another port of the same IP gets 438 (RFC 8489 §9.2.4) and creates no second
// allocation charged to the user.
#[test]
fn allocate_replayed_from_another_port_is_stale() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    client.learn_nonce(&mut world);
    let signed = client.encode(Method::ALLOCATE, TransactionId([0x5A; 12]), &[UDP]);
    let (_, reply) = world.feed(client.five_tuple, &signed);
    assert_eq!(code(&reply), 0);

    for replayed_from in [
        udp_client(5001),
        FiveTuple {
            transport: ClientTransport::Tcp,
            ..udp_client(5000)
        },
    ] {
        let (_, reply) = world.feed(replayed_from, &signed);
        assert_eq!(code(&reply), 438, "{replayed_from:?}");
        // The 438 carries a fresh nonce for the new address (§9.2.4), not the old one.
        let m = Message::decode(&reply).unwrap();
        assert_ne!(
            m.get::<Nonce<'_>>().unwrap().unwrap().0,
            client.nonce.as_deref().unwrap()
        );
    }
    assert_eq!(world.server.stats().allocation_count(), 1);
    assert_eq!(world.sockets.open.len(), 1);
}

// A client over TCP that reconnects (a new port) with its old nonce gets 438 with a fresh
// one and succeeds on retry (RFC 8489 §9.2.5), as TURN client libraries do.
#[test]
fn a_new_tcp_connection_retries_after_438() {
    let mut world = World::new(config());
    let first = FiveTuple {
        transport: ClientTransport::Tcp,
        ..udp_client(6000)
    };
    let mut client = Client::new(first, "alice", "alice-pass");
    client.learn_nonce(&mut world);
    client.five_tuple = FiveTuple {
        client: SocketAddr::new(first.client.ip(), 6001).into(),
        ..first
    };
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0);
}

// RFC 8489 §9.2.4 with the limiter costing the attacker, not the victim: after the
// failures that lock the source out, its failing attempts are dropped silently (no 401),
// while a request from the same IP whose integrity verifies creates its allocation, and a
// client still without credentials gets its challenge.
#[test]
fn lockout_drops_failures_but_serves_valid_requests() {
    let mut world = World::new(config());
    let mut attacker = Client::new(udp_client(7000), "alice", "wrong");
    attacker.learn_nonce(&mut world);
    let mut answered = 0;
    for _ in 0..15 {
        let (outcome, reply) = guess(&mut world, &attacker);
        match outcome {
            ClientOutcome::Reply(_) => {
                assert_eq!(code(&reply), 401);
                answered += 1;
            }
            ClientOutcome::Nothing => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answered, 10, "auth-failures (10) answered, then silence");

    // The same IP, another port: its first request is challenged, then served.
    let mut victim = Client::new(udp_client(7001), "bob", "bob-pass");
    let (_, reply) = world.feed(victim.five_tuple, &bare(Method::ALLOCATE, &[UDP]));
    assert_eq!(code(&reply), 401);
    let reply = victim.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0);
    assert!(Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .is_some());
}

// Over UDP, requests no client sends without credentials are dropped instead of drawing a
// 401 larger than themselves: an Allocate without REQUESTED-TRANSPORT (RFC 8656 §7.1: it
// MUST carry one), and Refresh / CreatePermission / ChannelBind on a 5-tuple with no
// allocation. Over TCP (no spoofing) they are still answered.
#[test]
fn requests_no_client_sends_unauthenticated_are_dropped() {
    let mut world = World::new(config());
    let peer = AnyAttribute::XorPeerAddress(XorPeerAddress("192.0.2.99:9".parse().unwrap()));
    let channel = AnyAttribute::ChannelNumber(ChannelNumber(0x4000));
    let requests = [
        bare(Method::ALLOCATE, &[]),
        bare(Method::REFRESH, &[]),
        bare(Method::CREATE_PERMISSION, &[]),
        bare(Method::CHANNEL_BIND, &[]),
        bare(Method::CREATE_PERMISSION, &[peer]),
        bare(Method::CHANNEL_BIND, &[channel, peer]),
    ];
    let victim = spoofed("203.0.113.77", 4000);
    for request in &requests {
        let (outcome, _) = world.feed(victim, request);
        assert_eq!(outcome, ClientOutcome::Nothing, "{} bytes", request.len());
    }
    let tcp = FiveTuple {
        transport: ClientTransport::Tcp,
        ..victim
    };
    for request in &requests {
        assert_eq!(code(&world.feed(tcp, request).1), 401);
    }
}

// The 401 to an unauthenticated Allocate over UDP carries no reason phrase (RFC 8489 §14.8:
// diagnostics only) and still REALM, NONCE and PASSWORD-ALGORITHMS (§9.2.4).
#[test]
fn challenges_over_udp_are_lean() {
    let mut world = World::new(config());
    let request = bare(Method::ALLOCATE, &[UDP]);
    assert_eq!(request.len(), 28);
    let (_, reply) = world.feed(spoofed("203.0.113.77", 4000), &request);
    let m = Message::decode(&reply).unwrap();
    let error = m.get::<ErrorCode<'_>>().unwrap().unwrap();
    assert_eq!((error.code, error.reason), (401, ""));
    assert!(m.get::<Nonce<'_>>().is_some());
    assert!(m.contains::<stun::attributes::PasswordAlgorithms<'_>>());
    // Header, ERROR-CODE without phrase, REALM "example.org", NONCE (37 characters),
    // PASSWORD-ALGORITHMS [SHA256, MD5].
    assert_eq!(reply.len(), 20 + 8 + 16 + 44 + 12);
}

// The per-source budget: over a burst of 1,000 Allocates spoofed from one victim address,
// the victim gets at most the budget's burst (4 s × 4096 B/s) more than was sent in its
// name; a second later, at most one second of rate more.
#[test]
fn budget_caps_what_a_spoofed_victim_receives() {
    let mut world = World::new(config());
    let request = bare(Method::ALLOCATE, &[UDP]);
    let victim = spoofed("203.0.113.77", 4000);
    let mut received = 0;
    let mut answers = 0;
    for _ in 0..1000 {
        let (_, reply) = world.feed(victim, &request);
        received += reply.len();
        answers += usize::from(!reply.is_empty());
    }
    let sent = 1000 * request.len();
    let burst = 4 * 4096;
    assert!(answers > 0 && answers < 1000, "{answers} answers");
    assert!(
        received <= sent.min(answers * request.len()) + burst,
        "{received} bytes"
    );
    assert!(
        received > burst / 2,
        "the budget is spent, not zero: {received}"
    );
    assert!(world.server.auth_stats().over_budget > 0);

    // Another victim has its own budget; the first one's refills with time.
    let (_, reply) = world.feed(spoofed("203.0.113.78", 4000), &request);
    assert_eq!(code(&reply), 401);
    let (_, reply) = world.feed(victim, &request);
    assert!(reply.is_empty());
    world.advance(Duration::from_secs(1));
    let (_, reply) = world.feed(victim, &request);
    assert_eq!(code(&reply), 401);
}

// Budget and lockout together: a locked-out source still gets challenges (not zero: a
// victim behind the same NAT must be able to get a nonce by retransmitting), within its
// budget.
#[test]
fn locked_out_source_gets_challenges_within_the_budget() {
    let mut world = World::new(config());
    let mut attacker = Client::new(udp_client(7000), "alice", "wrong");
    attacker.learn_nonce(&mut world);
    for _ in 0..10 {
        guess(&mut world, &attacker);
    }
    assert_eq!(
        guess(&mut world, &attacker).0,
        ClientOutcome::Nothing,
        "locked out"
    );
    let request = bare(Method::ALLOCATE, &[UDP]);
    let challenged = (0..1000)
        .filter(|i| {
            let (_, reply) = world.feed(udp_client(8000 + i), &request);
            !reply.is_empty()
        })
        .count();
    assert!(challenged > 0 && challenged < 1000, "{challenged}");
}
