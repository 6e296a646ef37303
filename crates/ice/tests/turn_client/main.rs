//! The TURN client (`ice::TurnClient`) against the sans-IO TURN server core
//! (`turn::relay::TurnServer`) with a hand-moved clock and a fixed seed. Each test names the
//! RFC rule it checks.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

#[path = "../common/fake_relay.rs"]
mod fake_relay;
mod harness;
mod redirect;

use std::net::SocketAddr;
use std::time::Duration;

use harness::{addr, alice, five_tuple, Net, ServerSetup, CLIENT, PEER, REALM, RELAY_IP, SERVER};
use ice::{
    RetransmitTiming, TurnClient, TurnClientConfig, TurnCredentials, TurnError, TurnEvent,
    TurnInput, TurnRequest,
};
use proptest::prelude::*;
use stun::attributes::{
    ChannelNumber, Lifetime, Nonce, PasswordAlgorithm, PasswordAlgorithmId, Realm,
    RequestedTransport, Userhash, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

// RFC 8656 §7.1, RFC 8489 §9.2.3 and §9.2.5: the first Allocate goes without credentials
// and with REQUESTED-TRANSPORT UDP; the 401 gives REALM, NONCE and PASSWORD-ALGORITHMS; the
// retry carries USERHASH (the nonce cookie asks for username anonymity), REALM, NONCE, the
// echoed PASSWORD-ALGORITHMS, PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256.
#[test]
fn allocate_through_the_401_challenge() {
    let mut net = Net::alice();
    let relayed = net.allocate();
    let allocates = net.requests(Method::ALLOCATE);
    assert_eq!(allocates.len(), 2, "one challenge, one retry");

    let first = Message::decode(&allocates[0].1).unwrap();
    assert_eq!(
        first.get::<RequestedTransport>(),
        Some(Ok(RequestedTransport(17)))
    );
    assert!(!first.has_integrity());

    let retry = Message::decode(&allocates[1].1).unwrap();
    assert_ne!(
        retry.header().transaction_id,
        first.header().transaction_id,
        "RFC 8489 §9.2.5: the retry is a new transaction"
    );
    assert_eq!(retry.get::<Realm<'_>>(), Some(Ok(Realm("example.org"))));
    assert!(retry
        .get::<Nonce<'_>>()
        .unwrap()
        .unwrap()
        .0
        .starts_with("obMatJos2"));
    assert_eq!(
        retry.get::<Userhash>(),
        Some(Ok(Userhash(stun::userhash("alice", "example.org"))))
    );
    assert!(retry.get::<Username<'_>>().is_none());
    assert_eq!(
        retry
            .get::<PasswordAlgorithm<'_>>()
            .unwrap()
            .unwrap()
            .algorithm,
        PasswordAlgorithmId::SHA256
    );
    let key = LongTermKey::derive(
        PasswordAlgorithmId::SHA256,
        "alice",
        "example.org",
        "alice-pass",
    )
    .unwrap();
    retry.verify_integrity_sha256(key.as_bytes()).unwrap();

    assert_eq!(relayed.ip().to_string(), RELAY_IP);
    assert!(net.sockets.open.contains(&relayed));
    assert_eq!(net.server.stats().allocation_count(), 1);
}

// RFC 8656 §7.3: the success response gives XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS (our
// address as the server saw it, a server-reflexive candidate) and LIFETIME.
#[test]
fn relayed_and_mapped_addresses() {
    let mut net = Net::alice();
    assert_eq!(net.client.relayed_address(), None);
    net.pump();
    let Some(TurnEvent::Allocated {
        relayed,
        mapped,
        lifetime,
    }) = net.events.first().cloned()
    else {
        panic!("no Allocated event: {:?}", net.events);
    };
    assert_eq!(mapped, addr(CLIENT));
    assert_eq!(lifetime, secs(600));
    assert_eq!(net.client.relayed_address(), Some(relayed));
    assert_eq!(net.client.mapped_address(), Some(mapped));
    assert!(net.server.has_allocation(&five_tuple()));
}

// RFC 8489 §9.2.5 with a server that sends no nonce cookie features (REST secret set):
// USERNAME is used, and REST-style credentials are just a username/password pair.
#[test]
fn rest_credentials_use_username() {
    let username = turn::auth::rest::username(1_900_086_400, Some("carol"));
    let password = turn::auth::rest::password("rest-secret", &username);
    let setup = ServerSetup {
        rest_secret: Some("rest-secret"),
        ..ServerSetup::default()
    };
    let mut net = Net::new(
        setup,
        TurnCredentials {
            username: username.clone(),
            password,
        },
        TurnClientConfig::default(),
    );
    net.allocate();
    let allocates = net.requests(Method::ALLOCATE);
    let retry = Message::decode(&allocates[1].1).unwrap();
    assert_eq!(
        retry.get::<Username<'_>>(),
        Some(Ok(Username(username.as_str())))
    );
}

// RFC 8656 §8: the client refreshes before the lifetime ends (here at 80 % = 480 s), so the
// allocation outlives its first 600 s and the server still holds it at 1500 s.
#[test]
fn refresh_keeps_the_allocation_alive_past_its_first_lifetime() {
    let mut net = Net::alice();
    let relayed = net.allocate();
    net.advance(secs(1500));
    let refreshes = net.requests(Method::REFRESH);
    let mut at: Vec<_> = refreshes.iter().map(|(t, _)| *t - net.start).collect();
    // The nonce (600 s) goes stale in between: one refresh draws a 438 and is retried at
    // once with the fresh nonce (RFC 8489 §9.2.5), hence the dedup.
    at.dedup();
    assert_eq!(at, [secs(480), secs(960), secs(1440)]);
    assert!(net.server.has_allocation(&five_tuple()));
    assert_eq!(net.client.relayed_address(), Some(relayed));
    assert!(
        !net.events.contains(&TurnEvent::Expired),
        "{:?}",
        net.events
    );
}

// RFC 8489 §9.2.5: "If the response is an error response with an error code of 438 (Stale
// Nonce), the client MUST retry the request, using the new NONCE". The server's nonces last
// 60 s, so the refresh at 480 s draws a 438 and is retried with the fresh nonce.
#[test]
fn stale_nonce_438_recovery() {
    let setup = ServerSetup {
        nonce_lifetime: secs(60),
        ..ServerSetup::default()
    };
    let mut net = Net::new(setup, alice(), TurnClientConfig::default());
    net.allocate();
    net.advance(secs(700));
    let refreshes = net.requests(Method::REFRESH);
    assert_eq!(refreshes.len(), 2, "the stale one and its retry");
    let nonce = |p: &[u8]| {
        let m = Message::decode(p).unwrap();
        m.get::<Nonce<'_>>().unwrap().unwrap().0.to_owned()
    };
    assert_ne!(nonce(&refreshes[0].1), nonce(&refreshes[1].1));
    assert!(net.server.has_allocation(&five_tuple()));
    assert_eq!(net.events.len(), 1, "only Allocated: {:?}", net.events);
    // Far past the first lifetime, still alive.
    net.advance(secs(1000));
    assert!(net.server.has_allocation(&five_tuple()));
}

// RFC 8489 §9.2.5: a 401 to a request signed with the same realm means the credentials are
// wrong, and the client "MUST NOT perform this retry": AllocationFailed(401).
#[test]
fn wrong_password_fails_with_401() {
    let credentials = TurnCredentials {
        username: "alice".into(),
        password: "not-her-password".into(),
    };
    let mut net = Net::new(
        ServerSetup::default(),
        credentials,
        TurnClientConfig::default(),
    );
    net.pump();
    assert_eq!(net.requests(Method::ALLOCATE).len(), 2);
    match net.events.as_slice() {
        [TurnEvent::AllocationFailed(error)] => assert_eq!(error.code(), Some(401)),
        other => panic!("{other:?}"),
    }
    assert_eq!(net.client.poll_timeout(), None, "nothing left to do");
    assert_eq!(net.server.stats().allocation_count(), 0);
}

// RFC 8489 §6.2.1: with RTO 500 ms, Rc 7 and Rm 16 the requests leave at 0, 500, 1500,
// 3500, 7500, 15500 and 31500 ms and the transaction fails at 39500 ms.
#[test]
fn retransmission_then_timeout_follows_rfc_8489() {
    let mut net = Net::alice();
    net.blackhole = true;
    net.advance(secs(60));
    let at: Vec<_> = net.sent.iter().map(|(t, _)| *t - net.start).collect();
    assert_eq!(at, [0, 500, 1500, 3500, 7500, 15500, 31500].map(ms));
    assert!(
        net.sent.iter().all(|(_, p)| p == &net.sent[0].1),
        "retransmissions repeat the request byte for byte"
    );
    assert_eq!(
        net.events,
        [TurnEvent::AllocationFailed(TurnError::Timeout { sends: 7 })]
    );

    // The knob: another RTO scales the schedule.
    let config = TurnClientConfig {
        timing: RetransmitTiming::with_rto(ms(100)),
        ..TurnClientConfig::default()
    };
    let mut fast = Net::new(ServerSetup::default(), alice(), config);
    fast.blackhole = true;
    fast.advance(secs(60));
    let last = fast.sent.last().unwrap().0 - fast.start;
    assert_eq!(last, ms(6300));
    assert!(matches!(
        fast.events.as_slice(),
        [TurnEvent::AllocationFailed(TurnError::Timeout { sends: 7 })]
    ));
}

// RFC 8656 §9 and §11: CreatePermission installs the permission; a Send indication reaches
// the peer through the relay; the peer's datagram comes back as a Data indication, which the
// client hands out as TurnInput::Data.
#[test]
fn permission_and_send_indication_reach_the_peer() {
    let mut net = Net::alice();
    let relayed = net.allocate();
    let peer = addr(PEER);
    net.client.create_permission(net.now, peer);
    net.pump();
    assert_eq!(net.requests(Method::CREATE_PERMISSION).len(), 1);
    assert!(net.client.has_permission(net.now, peer));

    let t = net.client.send_to(net.now, peer, b"ping");
    assert_eq!(t.destination, addr(SERVER));
    let m = Message::decode(&t.payload).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::SEND, Class::Indication)
    );
    net.deliver_to_server(&t.payload);
    assert_eq!(net.to_peer.len(), 1);
    assert_eq!(net.to_peer[0].relay, relayed);
    assert_eq!(net.to_peer[0].peer, peer);
    assert_eq!(net.to_peer[0].payload, b"ping");

    assert_eq!(
        net.peer_sends(peer, b"pong"),
        Some((peer, b"pong".to_vec()))
    );
    // Another peer has no permission: the server drops its datagram (RFC 8656 §10).
    assert_eq!(net.peer_sends(addr("192.0.2.99:4000"), b"x"), None);
}

// RFC 8656 §9.1 / agreed API: send_to without a permission asks for one and still sends.
#[test]
fn send_to_without_permission_creates_one() {
    let mut net = Net::alice();
    net.allocate();
    let peer = addr(PEER);
    let first = net.client.send_to(net.now, peer, b"early");
    net.pump();
    assert_eq!(net.requests(Method::CREATE_PERMISSION).len(), 1);
    net.deliver_to_server(&first.payload);
    // The Send indication went out before the CreatePermission in the caller's hands, but
    // the harness delivers the permission first, so it is relayed.
    assert_eq!(net.to_peer.len(), 1);
    net.client.send_to(net.now, peer, b"again");
    net.pump();
    assert_eq!(
        net.requests(Method::CREATE_PERMISSION).len(),
        1,
        "idempotent"
    );
}

// RFC 8656 §12: ChannelBind with a number in 0x4000–0x4FFF; once bound, data goes as
// ChannelData both ways.
#[test]
fn channel_bind_then_channel_data_both_ways() {
    let mut net = Net::alice();
    let relayed = net.allocate();
    let peer = addr(PEER);
    net.client.bind_channel(net.now, peer);
    net.pump();
    let binds = net.requests(Method::CHANNEL_BIND);
    assert_eq!(binds.len(), 1);
    let bind = Message::decode(&binds[0].1).unwrap();
    assert_eq!(bind.get::<ChannelNumber>(), Some(Ok(ChannelNumber(0x4000))));
    assert_eq!(bind.get::<XorPeerAddress>(), Some(Ok(XorPeerAddress(peer))));
    assert!(net.events.contains(&TurnEvent::ChannelBound {
        peer,
        channel: 0x4000
    }));
    assert_eq!(net.client.channel(net.now, peer), Some(0x4000));
    assert!(
        net.client.has_permission(net.now, peer),
        "§12.2: ChannelBind installs it"
    );

    let t = net.client.send_to(net.now, peer, b"hello");
    assert_eq!(&t.payload[..4], &[0x40, 0x00, 0x00, 0x05]);
    assert_eq!(t.payload.len(), 9, "no padding over UDP");
    net.deliver_to_server(&t.payload);
    assert_eq!(net.to_peer.last().unwrap().relay, relayed);
    assert_eq!(net.to_peer.last().unwrap().payload, b"hello");

    // The server wraps the peer's reply in ChannelData (first two bits 01).
    let reply = net.peer_sends(peer, b"world");
    assert_eq!(reply, Some((peer, b"world".to_vec())));
    assert_eq!(net.server.stats().dropped(), 0);
}

// RFC 8656 §9 (permissions last 300 s) and §12 (channels 600 s): the client refreshes both
// before they lapse, so after 30 minutes peers still get through and ChannelData still
// flows; without refreshes the server would drop them.
#[test]
fn permission_and_channel_refresh_happen_before_expiry() {
    let mut net = Net::alice();
    net.allocate();
    let permitted = addr(PEER);
    let channelled = addr("192.0.2.51:4000");
    net.client.create_permission(net.now, permitted);
    net.client.bind_channel(net.now, channelled);
    net.pump();
    for _ in 0..6 {
        net.advance(secs(300));
        assert_eq!(
            net.peer_sends(permitted, b"p"),
            Some((permitted, b"p".to_vec()))
        );
        assert_eq!(
            net.peer_sends(channelled, b"c"),
            Some((channelled, b"c".to_vec()))
        );
        let t = net.client.send_to(net.now, channelled, b"out");
        assert_eq!(t.payload[0] >> 6, 0b01, "still ChannelData");
        net.deliver_to_server(&t.payload);
        assert_eq!(net.to_peer.last().unwrap().payload, b"out");
    }
    // Deduplicated: a request that draws a 438 (the 600 s nonce went stale) is retried at
    // the same instant.
    let since = |method| -> Vec<Duration> {
        let mut at: Vec<_> = net
            .requests(method)
            .iter()
            .map(|(t, _)| *t - net.start)
            .collect();
        at.dedup();
        at
    };
    // One permission of its own, refreshed every 240 s; the channel's permission rides on
    // the channel refreshes and on its own CreatePermission (tracked once bound).
    let creates = since(Method::CREATE_PERMISSION);
    assert!(creates.starts_with(&[secs(0), secs(240)]), "{creates:?}");
    assert!(creates.windows(2).all(|w| w[1] - w[0] <= secs(240)));
    let binds = since(Method::CHANNEL_BIND);
    assert_eq!(binds, [secs(0), secs(480), secs(960), secs(1440)]);
    assert_eq!(net.server.stats().dropped(), 0);
    assert!(!net.events.iter().any(|e| matches!(
        e,
        TurnEvent::PermissionFailed { .. } | TurnEvent::ChannelFailed { .. } | TurnEvent::Expired
    )));
}

// RFC 8656 §7 and §8: a Refresh with LIFETIME 0 deletes the allocation; the client sends it
// once and stops refreshing anything.
#[test]
fn deallocate_sends_refresh_with_lifetime_zero() {
    let mut net = Net::alice();
    net.allocate();
    net.client.create_permission(net.now, addr(PEER));
    net.client.bind_channel(net.now, addr("192.0.2.51:4000"));
    net.pump();
    net.client.deallocate(net.now);
    net.client.deallocate(net.now);
    net.pump();
    let refreshes = net.requests(Method::REFRESH);
    assert_eq!(refreshes.len(), 1, "once");
    let m = Message::decode(&refreshes[0].1).unwrap();
    assert_eq!(m.get::<Lifetime>(), Some(Ok(Lifetime(0))));
    assert_eq!(net.events.last(), Some(&TurnEvent::Deallocated));
    assert_eq!(net.server.stats().allocation_count(), 0);
    assert!(net.sockets.open.is_empty());
    assert_eq!(net.client.relayed_address(), None);
    assert_eq!(net.client.poll_timeout(), None);
    let before = net.sent.len();
    net.advance(secs(3600));
    assert_eq!(net.sent.len(), before, "nothing more is sent");
}

/// A success response to `request` signed with the wrong key.
fn forged_success(request: &[u8]) -> Vec<u8> {
    let request = Message::decode(request).unwrap();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::response(&mut buf, request.header(), Class::Success).unwrap();
    w.add(&XorRelayedAddress(addr("192.0.2.66:50000"))).unwrap();
    w.add(&XorMappedAddress(addr("192.0.2.66:50001"))).unwrap();
    w.add(&Lifetime(600)).unwrap();
    w.add_message_integrity_sha256(&[0x55; 32]).unwrap();
    w.add_fingerprint().unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// A client whose first Allocate was challenged by the server and whose signed retry is
/// held back (the wire is cut): returns it and the retry's bytes.
fn held_signed_allocate() -> (Net, Vec<u8>) {
    let mut net = Net::alice();
    net.blackhole = true;
    net.pump();
    let first = net.sent[0].1.clone();
    net.deliver_to_server(&first);
    net.pump();
    let signed = net.sent.last().unwrap().1.clone();
    (net, signed)
}

// RFC 8489 §9.2.5: a response whose MESSAGE-INTEGRITY does not verify "MUST be discarded, as
// if it had never been received"; retransmissions continue and the real answer is taken.
// If only forged answers come, the failure is "integrity violated", not a timeout.
#[test]
fn forged_response_is_ignored() {
    let (mut net, signed) = held_signed_allocate();
    assert!(Message::decode(&signed).unwrap().has_integrity());

    let forged = forged_success(&signed);
    let input = net.client.handle_input(net.now, addr(SERVER), &forged);
    assert_eq!(input, TurnInput::Consumed);
    net.pump();
    assert!(net.events.is_empty(), "{:?}", net.events);
    assert_eq!(net.client.relayed_address(), None);

    // A retransmission goes out on schedule; the real answer is accepted.
    net.blackhole = false;
    net.advance(ms(500));
    assert_eq!(net.requests(Method::ALLOCATE).len(), 3);
    assert!(matches!(
        net.events.as_slice(),
        [TurnEvent::Allocated { .. }]
    ));
    assert_ne!(net.client.relayed_address(), Some(addr("192.0.2.66:50000")));

    // Only forgeries: IntegrityViolated.
    let (mut lonely, signed) = held_signed_allocate();
    lonely
        .client
        .handle_input(lonely.now, addr(SERVER), &forged_success(&signed));
    lonely.advance(secs(60));
    assert_eq!(
        lonely.events,
        [TurnEvent::AllocationFailed(TurnError::IntegrityViolated {
            discarded: 1
        })]
    );
}

// Agreed API: datagrams not from the server are NotMine without a look; STUN from the
// server that answers none of our requests (a Binding response for the ICE agent) is
// NotMine too.
#[test]
fn packets_from_elsewhere_are_not_mine() {
    let mut net = Net::alice();
    net.blackhole = true;
    net.pump();
    net.blackhole = false;
    let first = net.sent[0].1.clone();
    // The real challenge, but from another address: ignored.
    let challenge = &net.server_reply(&first);
    let elsewhere = addr("192.0.2.2:3478");
    assert_eq!(
        net.client.handle_input(net.now, elsewhere, challenge),
        TurnInput::NotMine
    );
    assert_eq!(
        net.client
            .handle_input(net.now, elsewhere, &[0x40, 0, 0, 1, 7]),
        TurnInput::NotMine
    );
    net.pump();
    assert_eq!(net.sent.len(), 1, "no retry was triggered");

    // A Binding response from the server itself, with an id that is not ours.
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::BINDING, Class::Success),
        stun::TransactionId([1; 12]),
    )
    .unwrap();
    w.add(&XorMappedAddress(addr(CLIENT))).unwrap();
    let len = w.finish();
    assert_eq!(
        net.client.handle_input(net.now, addr(SERVER), &buf[..len]),
        TurnInput::NotMine
    );
    // And the real challenge from the server is consumed.
    assert_eq!(
        net.client.handle_input(net.now, addr(SERVER), challenge),
        TurnInput::Consumed
    );
}

// Bounded memory: at most `max_permissions` peer IPs and `max_channels` channels.
#[test]
fn permissions_and_channels_are_bounded() {
    let config = TurnClientConfig {
        max_permissions: 4,
        max_channels: 2,
        ..TurnClientConfig::default()
    };
    let mut net = Net::new(ServerSetup::default(), alice(), config);
    net.allocate();
    for i in 0..5u8 {
        net.client
            .create_permission(net.now, SocketAddr::from(([192, 0, 2, 100 + i], 1)));
    }
    for i in 0..3u8 {
        net.client
            .bind_channel(net.now, SocketAddr::from(([192, 0, 2, 200 + i], 1)));
    }
    net.pump();
    assert_eq!(net.requests(Method::CREATE_PERMISSION).len(), 4);
    assert_eq!(net.requests(Method::CHANNEL_BIND).len(), 2);
    assert!(net.events.contains(&TurnEvent::PermissionFailed {
        peer: "192.0.2.104".parse().unwrap()
    }));
    assert!(net.events.contains(&TurnEvent::ChannelFailed {
        peer: SocketAddr::from(([192, 0, 2, 202], 1))
    }));
}

// RFC 8656 §9.1: a CreatePermission the server refuses (403: a peer the policy forbids)
// ends in PermissionFailed.
#[test]
fn refused_permission_is_reported() {
    let mut net = Net::alice();
    net.allocate();
    net.client
        .create_permission(net.now, addr("127.0.0.1:4000"));
    net.pump();
    assert!(
        net.events.contains(&TurnEvent::PermissionFailed {
            peer: "127.0.0.1".parse().unwrap()
        }),
        "{:?}",
        net.events
    );
}

// Permissions and channels asked for before the allocation exists wait for it.
#[test]
fn requests_before_allocation_wait_for_it() {
    let mut net = Net::alice();
    net.client.create_permission(net.now, addr(PEER));
    net.client.bind_channel(net.now, addr("192.0.2.51:4000"));
    net.pump();
    assert!(matches!(net.events[0], TurnEvent::Allocated { .. }));
    assert_eq!(net.requests(Method::CREATE_PERMISSION).len(), 1);
    assert_eq!(net.requests(Method::CHANNEL_BIND).len(), 1);
    assert!(net.client.has_permission(net.now, addr(PEER)));
}

/// A client in one of several states, for the fuzz test.
fn client_in_state(state: u8) -> (Net, std::time::Instant) {
    let mut net = Net::alice();
    if state >= 1 {
        net.allocate();
    }
    if state >= 2 {
        net.client.bind_channel(net.now, addr(PEER));
        net.client.create_permission(net.now, addr("192.0.2.51:1"));
        net.pump();
    }
    let now = net.now;
    (net, now)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    // handle_input never panics on arbitrary bytes from the server, in any state, and
    // the client keeps working afterwards: the allocation it had (or was making) is there,
    // and a new permission still goes through (RFC 8489 §6.3: a response that matches no
    // transaction is discarded; RFC 8656 §12: ChannelData and indications it cannot use are
    // dropped, not fatal).
    #[test]
    fn handle_input_never_panics(
        state in 0u8..3,
        prefix in prop::sample::select(vec![vec![], vec![0x40, 0x00], vec![0x01, 0x13], vec![0x00, 0x17, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42]]),
        bytes in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let (mut net, now) = client_in_state(state);
        let mut packet = prefix;
        packet.extend(bytes);
        let _ = net.client.handle_input(now, addr(SERVER), &packet);
        net.pump();
        prop_assert!(
            matches!(net.events.first(), Some(TurnEvent::Allocated { .. })),
            "{:?}", net.events
        );
        prop_assert!(!net.events.contains(&TurnEvent::Expired), "{:?}", net.events);
        prop_assert!(net.client.relayed_address().is_some());
        let peer = addr("192.0.2.77:5000");
        net.client.create_permission(net.now, peer);
        net.pump();
        prop_assert!(net.client.has_permission(net.now, peer), "{:?}", net.events);
    }
}

// Same seed, same bytes: the client is deterministic.
#[test]
fn same_seed_same_requests() {
    let start = std::time::Instant::now();
    let mut a = TurnClient::new(start, addr(SERVER), alice(), [1; 32]);
    let mut b = TurnClient::new(start, addr(SERVER), alice(), [1; 32]);
    let mut c = TurnClient::new(start, addr(SERVER), alice(), [2; 32]);
    let (pa, pb, pc) = (
        a.poll_transmit().unwrap(),
        b.poll_transmit().unwrap(),
        c.poll_transmit().unwrap(),
    );
    assert_eq!(pa, pb);
    assert_ne!(pa, pc);
}

// RFC 8656 §8: a Refresh answered with an error (437: the server no longer has the
// allocation) means the allocation is gone: Expired, and the client stops.
#[test]
fn lost_allocation_is_reported_expired() {
    let mut net = Net::alice();
    net.allocate();
    net.server.client_closed(net.now, &five_tuple());
    net.sockets.run(&mut net.server, net.now, &mut []);
    net.advance(secs(500));
    assert_eq!(
        net.events.last(),
        Some(&TurnEvent::Expired),
        "{:?}",
        net.events
    );
    assert_eq!(net.client.relayed_address(), None);
    assert_eq!(net.client.poll_timeout(), None);
}

// RFC 8656 §8: refreshes that go unanswered are retried while the allocation lasts; when its
// lifetime ends without one getting through, the client reports Expired (at 600 s, not
// before).
#[test]
fn unanswered_refreshes_end_in_expiry() {
    let mut net = Net::alice();
    net.allocate();
    net.blackhole = true;
    net.run_until(net.start + secs(599));
    assert!(!net.events.contains(&TurnEvent::Expired));
    let refreshes = net.requests(Method::REFRESH);
    assert_eq!(refreshes[0].0 - net.start, secs(480));
    assert!(
        refreshes.len() > 7,
        "a second refresh transaction followed the first"
    );
    net.run_until(net.start + secs(600));
    assert_eq!(net.events.last(), Some(&TurnEvent::Expired));
    assert_eq!(net.client.poll_timeout(), None);
}

// Agreed API: deallocate before the allocation exists abandons the Allocate.
#[test]
fn deallocate_while_allocating_cancels() {
    let mut net = Net::alice();
    net.blackhole = true;
    net.pump();
    net.client.deallocate(net.now);
    net.pump();
    assert_eq!(
        net.events,
        [TurnEvent::AllocationFailed(TurnError::Cancelled)]
    );
    assert_eq!(net.client.poll_timeout(), None);
    net.advance(secs(60));
    assert_eq!(net.sent.len(), 1, "no retransmission after the cancel");
}

// RFC 8656 §12.6: ChannelData on a channel we did not bind is dropped; RFC 8656 §11.6: a
// Data indication without DATA is dropped; a late duplicate response is not ours any more.
#[test]
fn unusable_server_packets_are_dropped() {
    let mut net = Net::alice();
    net.allocate();
    let server = addr(SERVER);
    assert_eq!(
        net.client
            .handle_input(net.now, server, &[0x40, 0x07, 0x00, 0x01, 9]),
        TurnInput::Consumed
    );
    let mut buf = [0u8; 64];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::DATA, Class::Indication),
        stun::TransactionId([2; 12]),
    )
    .unwrap();
    w.add(&XorPeerAddress(addr(PEER))).unwrap();
    let len = w.finish();
    assert_eq!(
        net.client.handle_input(net.now, server, &buf[..len]),
        TurnInput::Consumed
    );
    // The Allocate success again, after its transaction ended.
    let signed = net.requests(Method::ALLOCATE)[1].1.clone();
    let duplicate = net.server_reply(&signed);
    assert_eq!(
        net.client.handle_input(net.now, server, &duplicate),
        TurnInput::NotMine
    );
    net.pump();
    assert_eq!(net.events.len(), 1, "{:?}", net.events);
}

// With `diagnostics`, the course of each request is reported too (what `turnpike check`
// prints): RFC 8489 §9.2.5's 401 challenge with its realm, a Refresh's granted lifetime (RFC
// 8656 §8), and the cause of a refused CreatePermission (§9.1: 403 from the peer policy).
#[test]
fn diagnostics_report_challenges_refreshes_and_failures() {
    let config = TurnClientConfig {
        diagnostics: true,
        ..TurnClientConfig::default()
    };
    let mut net = Net::new(ServerSetup::default(), alice(), config);
    net.pump();
    assert!(
        matches!(
            net.events.as_slice(),
            [
                TurnEvent::Challenged { request: TurnRequest::Allocate, code: 401, realm },
                TurnEvent::Allocated { .. },
            ] if realm == REALM
        ),
        "{:?}",
        net.events
    );
    net.events.clear();
    net.client.refresh(net.now);
    net.pump();
    assert!(
        matches!(net.events.as_slice(), [TurnEvent::Refreshed { lifetime }] if !lifetime.is_zero()),
        "{:?}",
        net.events
    );
    net.events.clear();
    let forbidden = addr("127.0.0.1:4000");
    net.client.create_permission(net.now, forbidden);
    net.pump();
    match net.events.as_slice() {
        [TurnEvent::RequestFailed { request, error }, TurnEvent::PermissionFailed { peer }] => {
            assert_eq!(*request, TurnRequest::CreatePermission { peer: forbidden });
            assert_eq!(error.code(), Some(403));
            assert_eq!(*peer, forbidden.ip());
        }
        other => panic!("{other:?}"),
    }
}

// RFC 8656 §12.5: over TCP and TLS, ChannelData is padded to a multiple of four bytes.
#[test]
fn channel_data_is_padded_on_a_stream() {
    let config = TurnClientConfig {
        stream: true,
        ..TurnClientConfig::default()
    };
    let mut net = Net::new(ServerSetup::default(), alice(), config);
    net.allocate();
    net.client.bind_channel(net.now, addr(PEER));
    net.pump();
    let framed = net.client.send_to(net.now, addr(PEER), b"hello");
    assert_eq!(&framed.payload[..4], &[0x40, 0x00, 0x00, 0x05]);
    assert_eq!(framed.payload.len(), 12, "5 bytes of data padded to 8");
}
