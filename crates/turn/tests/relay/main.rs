//! Scenario tests of the TURN relay core with a hand-moved clock, each naming the RFC 8656
//! rule it checks.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod alternate;
mod counters;
mod drain;
mod fast_path;
mod harness;
mod own_address_forms;
mod pending_opens;
mod relay_addresses;
mod sessions;
mod sharded;
mod tcp;
mod unauthenticated;

use std::net::SocketAddr;
use std::time::Duration;

use harness::{code, config, udp_client, Client, World, RELAY_IP};
use stun::attributes::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, ChannelNumber, Data, DontFragment,
    EvenPort, Lifetime, Nonce, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken,
    XorMappedAddress, XorPeerAddress, XorRelayedAddress,
};
use stun::{AnyAttribute, Class, Message, MessageType, MessageWriter, Method, TransactionId};
use turn::relay::{ClientOutcome, ClientTransport, PeerAddr, RelayAddr, TurnConfig, PEER_HEADROOM};

pub(crate) const UDP: AnyAttribute<'static> =
    AnyAttribute::RequestedTransport(RequestedTransport(17));

fn peer(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Allocates for `client` and returns the relayed address.
fn allocate(world: &mut World, client: &mut Client) -> SocketAddr {
    let reply = client.request(world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0, "allocate");
    let m = Message::decode(&reply).unwrap();
    m.get::<XorRelayedAddress>().unwrap().unwrap().0
}

fn permit(world: &mut World, client: &mut Client, peers: &[&str]) -> u16 {
    let attrs: Vec<_> = peers
        .iter()
        .map(|p| AnyAttribute::XorPeerAddress(XorPeerAddress(peer(p))))
        .collect();
    code(&client.request(world, Method::CREATE_PERMISSION, &attrs))
}

fn bind(world: &mut World, client: &mut Client, number: u16, to: &str) -> u16 {
    code(&client.request(
        world,
        Method::CHANNEL_BIND,
        &[
            AnyAttribute::ChannelNumber(ChannelNumber(number)),
            AnyAttribute::XorPeerAddress(XorPeerAddress(peer(to))),
        ],
    ))
}

fn send_indication(client: &Client, to: &str, data: &[u8], dont_fragment: bool) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::SEND, Class::Indication),
        TransactionId([1; 12]),
    )
    .unwrap();
    w.add(&XorPeerAddress(peer(to))).unwrap();
    if dont_fragment {
        w.add(&DontFragment).unwrap();
    }
    w.add(&Data(data)).unwrap();
    let len = w.finish();
    let _ = client;
    buf.truncate(len);
    buf
}

fn channel_data(number: u16, data: &[u8]) -> Vec<u8> {
    let mut v = number.to_be_bytes().to_vec();
    v.extend((data.len() as u16).to_be_bytes());
    v.extend(data);
    v
}

/// Delivers `data` from `from` to relay `relay`; returns the framed bytes for the client.
fn from_peer(world: &mut World, relay: SocketAddr, from: &str, data: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; PEER_HEADROOM + data.len() + 4];
    buf[PEER_HEADROOM..PEER_HEADROOM + data.len()].copy_from_slice(data);
    let outcome = world.server.handle_peer(
        world.now,
        RelayAddr::from(relay),
        PeerAddr::from(peer(from)),
        &mut buf,
        data.len(),
    )?;
    Some(buf[outcome.data].to_vec())
}

// RFC 8656 §7.2 step 1 / RFC 8489 §9.2.4: an Allocate without credentials gets 401 with
// REALM and NONCE, and creates nothing.
#[test]
fn unauthenticated_allocate_is_challenged() {
    let mut world = World::new(config());
    let client = Client::new(udp_client(5000), "alice", "alice-pass");
    let (_, reply) = world.feed(
        client.five_tuple,
        &client.encode(Method::ALLOCATE, TransactionId([1; 12]), &[UDP]),
    );
    assert_eq!(code(&reply), 401);
    let m = Message::decode(&reply).unwrap();
    assert_eq!(m.get::<Realm<'_>>().unwrap().unwrap().0, "example.org");
    assert!(m
        .get::<Nonce<'_>>()
        .unwrap()
        .unwrap()
        .0
        .starts_with("obMatJos2"));
    assert_eq!(world.server.stats().allocation_count(), 0);
    assert!(world.sockets.open.is_empty());
}

// RFC 8656 §7.2: the success response carries XOR-RELAYED-ADDRESS (a port of the range on
// the relay IP), LIFETIME (default 600 s), XOR-MAPPED-ADDRESS, and verifies with the key.
#[test]
fn allocate_success() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0);
    let m = Message::decode(&reply).unwrap();
    let relay = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(relay.ip(), RELAY_IP.parse::<std::net::IpAddr>().unwrap());
    assert!(relay.port() >= 49152);
    assert_eq!(m.get::<Lifetime>().unwrap().unwrap(), Lifetime(600));
    assert_eq!(
        m.get::<XorMappedAddress>().unwrap().unwrap().0,
        client.five_tuple.client.get()
    );
    m.verify_integrity(client.key.as_bytes()).unwrap();
    assert!(world.sockets.open.contains(&relay));
}

// RFC 8656 §7.2 note: a retransmitted Allocate gets the same allocation; a new Allocate on the
// same 5-tuple gets 437.
#[test]
fn allocate_retransmission_and_mismatch() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    client.learn_nonce(&mut world);
    let tid = TransactionId([0xAB; 12]);
    let request = client.encode(Method::ALLOCATE, tid, &[UDP]);
    let (_, first) = world.feed(client.five_tuple, &request);
    let (_, again) = world.feed(client.five_tuple, &request);
    let relay = |r: &[u8]| {
        Message::decode(r)
            .unwrap()
            .get::<XorRelayedAddress>()
            .unwrap()
            .unwrap()
            .0
    };
    assert_eq!(relay(&first), relay(&again));
    assert_eq!(world.sockets.open.len(), 1);
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP])),
        437
    );
}

// RFC 8656 §7.2 step 3: REQUESTED-TRANSPORT missing → 400, not UDP → 442.
#[test]
fn requested_transport_rules() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    client.learn_nonce(&mut world);
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[])),
        400
    );
    // RFC 6062 §5.1 step 2: TCP over a UDP 5-tuple is a 400; another protocol is a 442.
    let tcp = AnyAttribute::RequestedTransport(RequestedTransport(6));
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[tcp])),
        400
    );
    let dccp = AnyAttribute::RequestedTransport(RequestedTransport(33));
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[dccp])),
        442
    );
}

// RFC 8656 §7.2 / §8.2: lifetimes are capped at the maximum and never below the default;
// the allocation expires through handle_timeout; Refresh extends it; LIFETIME 0 deletes it,
// after which requests get 437.
#[test]
fn lifetimes_refresh_and_delete() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = client.request(
        &mut world,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::Lifetime(Lifetime(100_000))],
    );
    assert_eq!(
        Message::decode(&reply)
            .unwrap()
            .get::<Lifetime>()
            .unwrap()
            .unwrap(),
        Lifetime(3600)
    );
    let reply = client.request(
        &mut world,
        Method::REFRESH,
        &[AnyAttribute::Lifetime(Lifetime(30))],
    );
    assert_eq!(
        Message::decode(&reply)
            .unwrap()
            .get::<Lifetime>()
            .unwrap()
            .unwrap(),
        Lifetime(600)
    );
    world.advance(Duration::from_secs(599));
    assert_eq!(world.server.stats().allocation_count(), 1);
    world.advance(Duration::from_secs(2));
    assert_eq!(world.server.stats().allocation_count(), 0, "expired");
    assert!(world.sockets.open.is_empty(), "relay socket closed");
    assert_eq!(code(&client.request(&mut world, Method::REFRESH, &[])), 437);

    allocate(&mut world, &mut client);
    let reply = client.request(
        &mut world,
        Method::REFRESH,
        &[AnyAttribute::Lifetime(Lifetime(0))],
    );
    assert_eq!(code(&reply), 0);
    assert_eq!(
        Message::decode(&reply)
            .unwrap()
            .get::<Lifetime>()
            .unwrap()
            .unwrap(),
        Lifetime(0)
    );
    assert_eq!(world.server.stats().allocation_count(), 0);
    assert_eq!(
        code(&client.request(
            &mut world,
            Method::REFRESH,
            &[AnyAttribute::Lifetime(Lifetime(0))]
        )),
        437
    );
}

// RFC 8656 §5: a request on an allocation made by another username → 441.
#[test]
fn other_username_gets_441() {
    let mut world = World::new(config());
    let mut alice = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut alice);
    let mut bob = Client::new(udp_client(5000), "bob", "bob-pass");
    assert_eq!(code(&bob.request(&mut world, Method::REFRESH, &[])), 441);
    assert_eq!(permit(&mut world, &mut bob, &["192.0.2.50:1"]), 441);
}

// RFC 8656 §10.2: several XOR-PEER-ADDRESS in one request; none → 400; a denied peer → 403
// and nothing installed; another family → 443; permissions expire after 300 s (§9).
#[test]
fn create_permission_rules() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(
        code(&client.request(&mut world, Method::CREATE_PERMISSION, &[])),
        400
    );
    assert_eq!(
        permit(&mut world, &mut client, &["192.0.2.50:1", "10.0.0.1:1"]),
        403
    );
    assert!(
        from_peer(&mut world, relay, "192.0.2.50:7", b"x").is_none(),
        "no partial install"
    );
    assert_eq!(permit(&mut world, &mut client, &["[2001:db8::1]:1"]), 443);
    assert_eq!(
        permit(&mut world, &mut client, &["192.0.2.50:1", "192.0.2.51:1"]),
        0
    );
    assert!(
        from_peer(&mut world, relay, "192.0.2.50:7", b"x").is_some(),
        "any port of the IP"
    );
    assert!(from_peer(&mut world, relay, "192.0.2.51:9", b"x").is_some());
    assert!(from_peer(&mut world, relay, "192.0.2.52:7", b"x").is_none());
    world.advance(Duration::from_secs(301));
    assert!(
        from_peer(&mut world, relay, "192.0.2.50:7", b"x").is_none(),
        "expired"
    );
}

// RFC 8656 §11.2: a Send indication is relayed only with a permission; DATA goes out as is.
#[test]
fn send_indication_needs_a_permission() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    let send = send_indication(&client, "192.0.2.50:4000", b"hello", false);
    assert_eq!(
        world.feed(client.five_tuple, &send).0,
        ClientOutcome::Nothing
    );
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.50:0"]), 0);
    match world.feed(client.five_tuple, &send).0 {
        ClientOutcome::Relay {
            relay: from,
            peer: to,
            payload,
            dont_fragment,
        } => {
            assert_eq!(from.get(), relay);
            assert_eq!(to.get(), peer("192.0.2.50:4000"));
            assert_eq!(&send[payload], b"hello");
            assert!(!dont_fragment);
        }
        other => panic!("{other:?}"),
    }
    // DONT-FRAGMENT that the I/O cannot honour: the indication is discarded (§11.2).
    let df = send_indication(&client, "192.0.2.50:4000", b"hello", true);
    assert_eq!(world.feed(client.five_tuple, &df).0, ClientOutcome::Nothing);
}

// RFC 8656 §11.3: peer data without a channel arrives as a Data indication with
// XOR-PEER-ADDRESS and DATA.
#[test]
fn peer_data_becomes_a_data_indication() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.50:0"]), 0);
    let framed = from_peer(&mut world, relay, "192.0.2.50:4000", b"hello peer").unwrap();
    let m = Message::decode(&framed).unwrap();
    assert_eq!(
        m.header().message_type,
        MessageType::new(Method::DATA, Class::Indication)
    );
    assert_eq!(
        m.get::<XorPeerAddress>().unwrap().unwrap().0,
        peer("192.0.2.50:4000")
    );
    assert_eq!(m.get::<Data<'_>>().unwrap().unwrap().0, b"hello peer");
}

// RFC 8656 §12.2: channel number range, one peer per channel and one channel per peer;
// ChannelData both ways; §12: 10-minute lifetime and a 5-minute cool-down before rebinding.
#[test]
fn channels() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(
        bind(&mut world, &mut client, 0x3FFF, "192.0.2.50:4000"),
        400
    );
    assert_eq!(
        bind(&mut world, &mut client, 0x8000, "192.0.2.50:4000"),
        400
    );
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    assert_eq!(
        bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"),
        0,
        "refresh"
    );
    assert_eq!(
        bind(&mut world, &mut client, 0x4000, "192.0.2.51:4000"),
        400,
        "number taken"
    );
    assert_eq!(
        bind(&mut world, &mut client, 0x4001, "192.0.2.50:4000"),
        400,
        "peer taken"
    );
    assert_eq!(bind(&mut world, &mut client, 0x4001, "10.0.0.1:4000"), 403);

    let cd = channel_data(0x4000, b"to peer");
    match world.feed(client.five_tuple, &cd).0 {
        ClientOutcome::Relay {
            peer: to, payload, ..
        } => {
            assert_eq!(to.get(), peer("192.0.2.50:4000"));
            assert_eq!(&cd[payload], b"to peer");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        world.feed(client.five_tuple, &channel_data(0x4001, b"x")).0,
        ClientOutcome::Nothing
    );
    // ChannelBind also installed the permission (§12.2), and peer data comes as ChannelData.
    let framed = from_peer(&mut world, relay, "192.0.2.50:4000", b"to client").unwrap();
    assert_eq!(framed, channel_data(0x4000, b"to client"));
    // Another port of the same IP: permitted, but not on the channel → Data indication.
    let other = from_peer(&mut world, relay, "192.0.2.50:4001", b"x").unwrap();
    assert!(Message::decode(&other).is_ok());

    // Keep the allocation itself alive longer than the channel.
    let long = [AnyAttribute::Lifetime(Lifetime(3600))];
    assert_eq!(code(&client.request(&mut world, Method::REFRESH, &long)), 0);
    world.advance(Duration::from_secs(601));
    assert_eq!(world.server.stats().allocation_count(), 1);
    assert_eq!(
        world.feed(client.five_tuple, &cd).0,
        ClientOutcome::Nothing,
        "channel expired"
    );
    assert_eq!(
        bind(&mut world, &mut client, 0x4000, "192.0.2.51:4000"),
        400,
        "cooling down"
    );
    world.advance(Duration::from_secs(300));
    assert_eq!(
        bind(&mut world, &mut client, 0x4000, "192.0.2.51:4000"),
        0,
        "after the cool-down"
    );
}

// RFC 8656 §12.5: over TCP, ChannelData to the client is padded to a multiple of 4.
#[test]
fn channel_data_to_a_tcp_client_is_padded() {
    let mut world = World::new(config());
    let mut five_tuple = udp_client(5000);
    five_tuple.transport = ClientTransport::Tcp;
    let mut client = Client::new(five_tuple, "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    let framed = from_peer(&mut world, relay, "192.0.2.50:4000", b"abcde").unwrap();
    assert_eq!(framed.len(), 12);
    assert_eq!(&framed[..9], &channel_data(0x4000, b"abcde")[..]);
}

// RFC 8656 §7.2: EVEN-PORT gives an even port; with R=1 the next port is reserved under a
// RESERVATION-TOKEN, which a later Allocate redeems; reservations last 30 s.
#[test]
fn even_port_and_reservation_token() {
    let mut world = World::new(config());
    let mut a = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = a.request(
        &mut world,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::EvenPort(EvenPort { reserve_next: true })],
    );
    let m = Message::decode(&reply).unwrap();
    let relay = m.get::<XorRelayedAddress>().unwrap().unwrap().0;
    assert_eq!(relay.port() % 2, 0);
    let token = m.get::<ReservationToken>().unwrap().unwrap();
    let mut b = Client::new(udp_client(5001), "alice", "alice-pass");
    let with_token = [UDP, AnyAttribute::ReservationToken(token)];
    let reply = b.request(&mut world, Method::ALLOCATE, &with_token);
    let second = Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(second.port(), relay.port() + 1);
    // A token cannot be used twice, and not with EVEN-PORT.
    let mut c = Client::new(udp_client(5002), "alice", "alice-pass");
    assert_eq!(
        code(&c.request(&mut world, Method::ALLOCATE, &with_token)),
        508
    );
    let both = [
        UDP,
        AnyAttribute::ReservationToken(token),
        AnyAttribute::EvenPort(EvenPort {
            reserve_next: false,
        }),
    ];
    assert_eq!(code(&c.request(&mut world, Method::ALLOCATE, &both)), 400);
    // An unredeemed reservation expires after 30 s and its port is free again. The reserved
    // port is held by a claim, not a socket (the token may be redeemed on another worker's
    // core, which binds it then).
    let reply = c.request(
        &mut world,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::EvenPort(EvenPort { reserve_next: true })],
    );
    let token = Message::decode(&reply)
        .unwrap()
        .get::<ReservationToken>()
        .unwrap()
        .unwrap();
    let reserved = SocketAddr::new(
        RELAY_IP.parse().unwrap(),
        Message::decode(&reply)
            .unwrap()
            .get::<XorRelayedAddress>()
            .unwrap()
            .unwrap()
            .0
            .port()
            + 1,
    );
    let shared = world.server.shared_state().clone();
    assert!(!world.sockets.open.contains(&reserved));
    assert!(shared.is_relay(reserved), "claimed while reserved");
    assert_eq!(shared.reservations(), 1);
    world.advance(Duration::from_secs(31));
    assert_eq!(shared.reservations(), 0);
    assert!(!shared.is_relay(reserved), "released on expiry");
    let mut d = Client::new(udp_client(5003), "alice", "alice-pass");
    assert_eq!(
        code(&d.request(
            &mut world,
            Method::ALLOCATE,
            &[UDP, AnyAttribute::ReservationToken(token)]
        )),
        508
    );
    let plain = a.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&plain), 437);
    let even_only = [
        UDP,
        AnyAttribute::EvenPort(EvenPort {
            reserve_next: false,
        }),
    ];
    let mut e = Client::new(udp_client(5004), "alice", "alice-pass");
    let reply = e.request(&mut world, Method::ALLOCATE, &even_only);
    let port = Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0
        .port();
    assert_eq!(port % 2, 0);
    assert!(!Message::decode(&reply)
        .unwrap()
        .contains::<ReservationToken>());
}

// RFC 8656 §7.2 steps 6, 7, 9: address families.
#[test]
fn address_families() {
    let mut world = World::new(config());
    let v6 = AnyAttribute::RequestedAddressFamily(RequestedAddressFamily(AddressFamily::IPV6));
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP, v6])),
        440,
        "no IPv6 relay"
    );
    let unknown = AnyAttribute::RequestedAddressFamily(RequestedAddressFamily(AddressFamily(9)));
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP, unknown])),
        440
    );
    let add_v6 =
        AnyAttribute::AdditionalAddressFamily(AdditionalAddressFamily(AddressFamily::IPV6));
    let add_v4 =
        AnyAttribute::AdditionalAddressFamily(AdditionalAddressFamily(AddressFamily::IPV4));
    let req_v4 = AnyAttribute::RequestedAddressFamily(RequestedAddressFamily(AddressFamily::IPV4));
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP, req_v4, add_v6])),
        400
    );
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP, add_v4])),
        400
    );
    let reserve = AnyAttribute::EvenPort(EvenPort { reserve_next: true });
    assert_eq!(
        code(&client.request(&mut world, Method::ALLOCATE, &[UDP, add_v6, reserve])),
        400
    );
    // Dual allocation without an IPv6 relay: success with ADDRESS-ERROR-CODE 440 for IPv6.
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP, add_v6]);
    let m = Message::decode(&reply).unwrap();
    assert_eq!(m.get_all::<XorRelayedAddress>().count(), 1);
    let error = m.get::<AddressErrorCode<'_>>().unwrap().unwrap();
    assert_eq!((error.family, error.code), (AddressFamily::IPV6, 440));

    // With both relay families: two XOR-RELAYED-ADDRESS, one per family.
    let mut world = World::new(TurnConfig {
        relay_v6: Some("2001:db8::10".parse().unwrap()),
        ..config()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP, add_v6]);
    let m = Message::decode(&reply).unwrap();
    let relays: Vec<_> = m
        .get_all::<XorRelayedAddress>()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(relays.len(), 2);
    assert!(relays[0].is_ipv4() && relays[1].is_ipv6());
    assert!(!m.contains::<AddressErrorCode<'_>>());
    // Permissions for both families work on a dual allocation.
    assert_eq!(
        permit(
            &mut world,
            &mut client,
            &["192.0.2.50:0", "[2001:db8::50]:0"]
        ),
        0
    );
    // An IPv6-only allocation refuses IPv4 peers: 443.
    let mut six = Client::new(udp_client(5001), "alice", "alice-pass");
    assert_eq!(
        code(&six.request(&mut world, Method::ALLOCATE, &[UDP, v6])),
        0
    );
    assert_eq!(permit(&mut world, &mut six, &["192.0.2.50:0"]), 443);
    // §8.2: REQUESTED-ADDRESS-FAMILY in a Refresh must match the allocation: 443 otherwise.
    assert_eq!(
        code(&six.request(&mut world, Method::REFRESH, &[req_v4])),
        443
    );
}

// RFC 8656 §7.2 step 10: per-user quota → 486; the server's total → 508.
#[test]
fn quotas() {
    let mut world = World::new(TurnConfig {
        user_quota: 1,
        total_quota: 2,
        ..config()
    });
    let mut a1 = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut a2 = Client::new(udp_client(5001), "alice", "alice-pass");
    allocate(&mut world, &mut a1);
    assert_eq!(code(&a2.request(&mut world, Method::ALLOCATE, &[UDP])), 486);
    let mut b1 = Client::new(udp_client(5002), "bob", "bob-pass");
    allocate(&mut world, &mut b1);
    let mut b2 = Client::new(udp_client(5003), "bob", "bob-pass");
    assert_eq!(code(&b2.request(&mut world, Method::ALLOCATE, &[UDP])), 486);
    let mut world = World::new(TurnConfig {
        total_quota: 1,
        ..config()
    });
    allocate(&mut world, &mut a1);
    assert_eq!(code(&b1.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
}

// RFC 8656 §7.2: when no relay port can be had, 508.
#[test]
fn port_exhaustion() {
    let mut world = World::new(TurnConfig {
        port_range: 50000..=50001,
        ..config()
    });
    world
        .sockets
        .taken
        .insert(SocketAddr::new(RELAY_IP.parse().unwrap(), 50000));
    let mut a = Client::new(udp_client(5000), "alice", "alice-pass");
    assert_eq!(allocate(&mut world, &mut a).port(), 50001);
    let mut b = Client::new(udp_client(5001), "alice", "alice-pass");
    assert_eq!(code(&b.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
}

// Bounded state: live permissions per allocation are capped (508).
#[test]
fn permission_limit() {
    let mut world = World::new(TurnConfig {
        max_permissions: 2,
        ..config()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(
        permit(&mut world, &mut client, &["192.0.2.50:0", "192.0.2.51:0"]),
        0
    );
    assert_eq!(
        permit(&mut world, &mut client, &["192.0.2.50:0"]),
        0,
        "refresh is not growth"
    );
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.52:0"]), 508);
}

// Two clients relaying through this server reach each other's relay, even on loopback
// (denied by default), but nothing else on that IP.
#[test]
fn relay_to_relay_on_loopback() {
    let loopback = TurnConfig {
        relay_v4: Some("127.0.0.1".parse().unwrap()),
        ..TurnConfig::default()
    };
    let mut world = World::new(loopback);
    let mut a = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut b = Client::new(udp_client(5001), "bob", "bob-pass");
    let relay_a = allocate(&mut world, &mut a);
    let relay_b = allocate(&mut world, &mut b);
    assert_eq!(permit(&mut world, &mut a, &[&relay_b.to_string()]), 0);
    assert_eq!(permit(&mut world, &mut b, &[&relay_a.to_string()]), 0);
    let send = send_indication(&a, &relay_b.to_string(), b"hi b", false);
    assert!(
        matches!(world.feed(a.five_tuple, &send).0, ClientOutcome::Relay { peer, .. } if peer.get() == relay_b)
    );
    // Other ports on the relay IP (e.g. sshd on 127.0.0.1:22) stay unreachable.
    let ssh = send_indication(&a, "127.0.0.1:22", b"x", false);
    assert_eq!(world.feed(a.five_tuple, &ssh).0, ClientOutcome::Nothing);
    assert_eq!(bind(&mut world, &mut a, 0x4000, "127.0.0.1:22"), 403);
    // B's relay hears from A's relay (the datagram's source is A's relay address).
    assert!(from_peer(&mut world, relay_b, &relay_a.to_string(), b"hi b").is_some());
    // Other loopback addresses are still denied.
    assert_eq!(permit(&mut world, &mut a, &["127.0.0.2:0"]), 403);
}

// external-ip: XOR-RELAYED-ADDRESS carries the public address; a peer that is our own relay
// by its public address is reached on the bound one.
#[test]
fn external_ip_is_advertised() {
    let nat = TurnConfig {
        relay_v4: Some("10.0.0.5".parse().unwrap()),
        external_v4: Some("203.0.113.99".parse().unwrap()),
        ..TurnConfig::default()
    };
    let mut world = World::new(nat);
    let mut a = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut b = Client::new(udp_client(5001), "bob", "bob-pass");
    let advertised_a = allocate(&mut world, &mut a);
    let advertised_b = allocate(&mut world, &mut b);
    assert_eq!(advertised_a.ip().to_string(), "203.0.113.99");
    assert!(world.sockets.open.contains(&SocketAddr::new(
        "10.0.0.5".parse().unwrap(),
        advertised_a.port()
    )));
    assert_eq!(permit(&mut world, &mut a, &[&advertised_b.to_string()]), 0);
    let send = send_indication(&a, &advertised_b.to_string(), b"x", false);
    match world.feed(a.five_tuple, &send).0 {
        ClientOutcome::Relay { peer, .. } => assert_eq!(
            peer.get(),
            SocketAddr::new("10.0.0.5".parse().unwrap(), advertised_b.port())
        ),
        other => panic!("{other:?}"),
    }
}

// A per-allocation bandwidth cap drops what exceeds it.
#[test]
fn bandwidth_cap() {
    let mut world = World::new(TurnConfig {
        bandwidth: Some(1000),
        ..config()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    let big = channel_data(0x4000, &[0; 600]);
    assert!(matches!(
        world.feed(client.five_tuple, &big).0,
        ClientOutcome::Relay { .. }
    ));
    assert_eq!(
        world.feed(client.five_tuple, &big).0,
        ClientOutcome::Nothing
    );
    world.advance(Duration::from_secs(1));
    assert!(matches!(
        world.feed(client.five_tuple, &big).0,
        ClientOutcome::Relay { .. }
    ));
}

// RFC 8489 §9.2.4: an expired nonce gets 438 with a fresh one, and the retry succeeds.
#[test]
fn stale_nonce() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    let old = client.nonce.clone();
    world.advance(Duration::from_secs(590));
    world.unix_now += 3600; // the wall clock moves on; the allocation's clock barely does
    let tid = world.tid();
    let (_, reply) = world.feed(client.five_tuple, &client.encode(Method::REFRESH, tid, &[]));
    assert_eq!(code(&reply), 438);
    assert_eq!(code(&client.request(&mut world, Method::REFRESH, &[])), 0);
    assert_ne!(client.nonce, old);
}

// RFC 8656 §7.2 step 4: DONT-FRAGMENT in an Allocate the I/O cannot honour → 420.
#[test]
fn dont_fragment_unsupported() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = client.request(
        &mut world,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::DontFragment(DontFragment)],
    );
    assert_eq!(code(&reply), 420);
    let mut world = World::new(TurnConfig {
        dont_fragment: true,
        ..config()
    });
    let reply = client.request(
        &mut world,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::DontFragment(DontFragment)],
    );
    assert_eq!(code(&reply), 0);
}

// Binding requests are not the relay core's: the I/O layer routes them to the Binding core.
#[test]
fn binding_requests_are_not_for_the_relay_core() {
    let mut world = World::new(config());
    let mut buf = [0u8; 20];
    let len = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([3; 12]),
    )
    .unwrap()
    .finish();
    assert!(turn::relay::is_binding_request(&buf[..len]));
    assert_eq!(
        world.feed(udp_client(5000), &buf[..len]).0,
        ClientOutcome::Nothing
    );
    buf[4] ^= 0xFF; // RFC 3489 requests too
    assert!(turn::relay::is_binding_request(&buf[..len]));
    let mut allocate = [0u8; 20];
    let len = MessageWriter::new(
        &mut allocate,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([3; 12]),
    )
    .unwrap()
    .finish();
    assert!(!turn::relay::is_binding_request(&allocate[..len]));
}

// TURN can be switched off: the server is then a STUN server only.
#[test]
fn turn_disabled_drops_turn_requests() {
    let mut world = World::new(TurnConfig {
        enabled: false,
        ..config()
    });
    let client = Client::new(udp_client(5000), "alice", "alice-pass");
    let request = client.encode(Method::ALLOCATE, TransactionId([1; 12]), &[UDP]);
    assert_eq!(
        world.feed(client.five_tuple, &request).0,
        ClientOutcome::Nothing
    );
}

// ChannelData and indications from a client with no allocation are dropped silently (§5).
#[test]
fn data_without_an_allocation_is_dropped() {
    let mut world = World::new(config());
    let client = Client::new(udp_client(5000), "alice", "alice-pass");
    assert_eq!(
        world.feed(client.five_tuple, &channel_data(0x4000, b"x")).0,
        ClientOutcome::Nothing
    );
    let send = send_indication(&client, "192.0.2.50:1", b"x", false);
    assert_eq!(
        world.feed(client.five_tuple, &send).0,
        ClientOutcome::Nothing
    );
}

// The relay data path allocates nothing per packet: ChannelData and Send indications from
// the client, ChannelData and Data indications to it (checked with a counting allocator).
#[test]
fn data_path_does_not_allocate() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.51:0"]), 0);
    let cd = channel_data(0x4000, &[7; 1200]);
    let send = send_indication(&client, "192.0.2.51:4000", &[7; 1200], false);
    let mut out = [0u8; 1500];
    let mut buf = vec![0u8; PEER_HEADROOM + 1200 + 4];
    let (now, unix_now, five_tuple) = (world.now, world.unix_now, client.five_tuple);
    let (channel_peer, other_peer) = (
        PeerAddr::from(peer("192.0.2.50:4000")),
        PeerAddr::from(peer("192.0.2.51:4000")),
    );
    let relay = RelayAddr::from(relay);
    let mut relayed = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..500 {
            for packet in [&cd, &send] {
                let outcome = world.server.handle_client(
                    now,
                    unix_now,
                    five_tuple,
                    turn::SocketId::PRIMARY,
                    packet,
                    &mut out,
                );
                relayed += usize::from(matches!(outcome, ClientOutcome::Relay { .. }));
            }
            for from in [channel_peer, other_peer] {
                relayed += usize::from(
                    world
                        .server
                        .handle_peer(now, relay, from, &mut buf, 1200)
                        .is_some(),
                );
            }
        }
    });
    assert_eq!(relayed, 2000);
    assert_eq!(info.count_total, 0, "allocations on the relay data path");
}

// An operator who opens loopback explicitly (a local media server or echo peer) reaches it
// even when the relay is on loopback too, but never the server's own service ports.
#[test]
fn explicit_allow_on_the_relay_ip() {
    let loopback = TurnConfig {
        relay_v4: Some("127.0.0.1".parse().unwrap()),
        own_ips: vec!["127.0.0.1".parse().unwrap()],
        service_ports: vec![3478],
        ..TurnConfig::default()
    };
    let policy = turn::policy::PeerPolicy::new(vec!["127.0.0.1/32".parse().unwrap()], vec![]);
    let mut world = World::with_policy(loopback, policy);
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4000, "127.0.0.1:4000"), 0);
    assert_eq!(
        bind(&mut world, &mut client, 0x4001, "127.0.0.1:3478"),
        403,
        "our own STUN/TURN port"
    );
    let send = send_indication(&client, "127.0.0.1:3478", b"x", false);
    assert_eq!(
        world.feed(client.five_tuple, &send).0,
        ClientOutcome::Nothing
    );
    let send = send_indication(&client, "127.0.0.1:4000", b"x", false);
    assert!(matches!(
        world.feed(client.five_tuple, &send).0,
        ClientOutcome::Relay { .. }
    ));
}

// RFC 8656 §12 allows 0x4000–0x4FFF; RFC 5766 clients use up to 0x7FFF, accepted by default
// and refused in strict mode.
#[test]
fn rfc5766_channel_numbers() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x548F, "192.0.2.50:4000"), 0);
    assert!(matches!(
        world.feed(client.five_tuple, &channel_data(0x548F, b"x")).0,
        ClientOutcome::Relay { .. }
    ));
    let mut strict = World::new(TurnConfig {
        rfc5766_channel_numbers: false,
        ..config()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut strict, &mut client);
    assert_eq!(
        bind(&mut strict, &mut client, 0x548F, "192.0.2.50:4000"),
        400
    );
    assert_eq!(bind(&mut strict, &mut client, 0x4FFF, "192.0.2.50:4000"), 0);
}
