//! The UDP Binding path allocates nothing per request: checked with a counting allocator,
//! not with timing (`allocation-counter` installs the counting global allocator).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use stun::attributes::ChangeRequest;
use stun::{AnyAttribute, AttributeType, MessageType, MessageWriter, TransactionId};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

#[test]
fn binding_path_does_not_allocate() {
    let server = BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: "192.0.2.1:3478".parse().unwrap(),
            alternate_ip: Some("192.0.2.2".parse().unwrap()),
            alternate_port: Some(3479),
        },
        software: Some("turnpike".into()),
    });
    let mut requests = Vec::new();
    let attribute_sets: [&[AnyAttribute<'_>]; 3] = [
        &[],
        &[AnyAttribute::ChangeRequest(ChangeRequest {
            change_ip: true,
            change_port: true,
        })],
        &[AnyAttribute::Unknown {
            attribute: AttributeType(0x0031),
            value: b"abcd",
        }],
    ];
    for attributes in attribute_sets {
        let mut buf = vec![0u8; 256];
        let mut w = MessageWriter::new(
            &mut buf,
            MessageType::BINDING_REQUEST,
            TransactionId([1; 12]),
        )
        .unwrap();
        for a in attributes {
            w.add_any(a).unwrap();
        }
        w.add_fingerprint().unwrap();
        let len = w.finish();
        buf.truncate(len);
        requests.push(buf);
    }
    let source = "198.51.100.7:40000".parse().unwrap();
    let mut out = [0u8; 1500];

    let mut answered = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            for r in &requests {
                answered += usize::from(
                    server
                        .handle(Transport::Udp, SocketId::PRIMARY, source, r, &mut out)
                        .is_some(),
                );
            }
        }
    });
    assert_eq!(answered, 3000);
    assert_eq!(info.count_total, 0, "allocations on the Binding path");
    // The counter does count: one Vec is one allocation.
    let control = allocation_counter::measure(|| drop(std::hint::black_box(vec![0u8; 64])));
    assert_eq!(control.count_total, 1);
}

#[allow(dead_code)] // This test uses a part of the relay scenarios' harness.
#[path = "relay/harness.rs"]
mod harness;

/// The relayed-data path of the TURN core allocates nothing per packet (RFC 8656 §11, §12):
/// ChannelData client → peer and peer → client (ChannelData framed in place), a Send
/// indication and a Data indication. Checked with the counting allocator.
#[test]
fn relay_data_path_does_not_allocate() {
    use std::net::SocketAddr;
    use stun::attributes::{
        ChannelNumber, Data, RequestedTransport, XorPeerAddress, XorRelayedAddress,
    };
    use stun::{Class, Message, Method};
    use turn::relay::{ClientOutcome, PeerAddr, RelayAddr, PEER_HEADROOM};

    let mut world = harness::World::new(harness::config());
    let mut client = harness::Client::new(harness::udp_client(5000), "alice", "alice-pass");
    let reply = client.request(
        &mut world,
        Method::ALLOCATE,
        &[AnyAttribute::RequestedTransport(RequestedTransport(17))],
    );
    let relay = Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    let channel_peer: SocketAddr = "198.51.100.20:7000".parse().unwrap();
    let indication_peer: SocketAddr = "198.51.100.21:7000".parse().unwrap();
    let bind = [
        AnyAttribute::ChannelNumber(ChannelNumber(0x4000)),
        AnyAttribute::XorPeerAddress(XorPeerAddress(channel_peer)),
    ];
    assert_eq!(
        harness::code(&client.request(&mut world, Method::CHANNEL_BIND, &bind)),
        0
    );
    let permit = [AnyAttribute::XorPeerAddress(XorPeerAddress(
        indication_peer,
    ))];
    assert_eq!(
        harness::code(&client.request(&mut world, Method::CREATE_PERMISSION, &permit)),
        0
    );

    let payload = [0xabu8; 100];
    let mut channel_data = vec![0x40, 0x00, 0x00, 100];
    channel_data.extend_from_slice(&payload);
    let mut send = vec![0u8; 256];
    let mut w = MessageWriter::new(
        &mut send,
        MessageType::new(Method::SEND, Class::Indication),
        TransactionId([3; 12]),
    )
    .unwrap();
    w.add(&XorPeerAddress(indication_peer)).unwrap();
    w.add(&Data(&payload)).unwrap();
    let len = w.finish();
    send.truncate(len);
    let mut out = [0u8; 1500];
    let mut peer_buf = vec![0u8; PEER_HEADROOM + payload.len() + 4];
    let (now, unix_now, five_tuple) = (world.now, world.unix_now, client.five_tuple);
    let relay = RelayAddr::from(relay);
    let (channel_peer, indication_peer) = (
        PeerAddr::from(channel_peer),
        PeerAddr::from(indication_peer),
    );

    let mut to_peer = 0;
    let mut to_client = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..1000 {
            for packet in [&channel_data, &send] {
                let outcome = world.server.handle_client(
                    now,
                    unix_now,
                    five_tuple,
                    SocketId::PRIMARY,
                    packet,
                    &mut out,
                );
                to_peer += usize::from(matches!(outcome, ClientOutcome::Relay { .. }));
            }
            for from in [channel_peer, indication_peer] {
                peer_buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(&payload);
                let framed =
                    world
                        .server
                        .handle_peer(now, relay, from, &mut peer_buf, payload.len());
                to_client += usize::from(framed.is_some());
            }
        }
    });
    assert_eq!(to_peer, 2000, "every packet relayed to its peer");
    assert_eq!(to_client, 2000, "every datagram framed for the client");
    assert_eq!(info.count_total, 0, "allocations on the relay data path");
}

/// What spoofed traffic costs stays allocation-free: Binding answers charged to the shared
/// per-source budget (`handle_udp`), and the TURN core's 401 challenges (nonce MAC, budget)
/// and silent drops.
#[test]
fn budgeted_answers_do_not_allocate() {
    use std::sync::Arc;
    use std::time::Instant;
    use stun::attributes::RequestedTransport;
    use stun::{Class, Method};
    use turn::budget::ResponseBudget;

    let budget = Arc::new(ResponseBudget::new(1_000_000, 1024, [3; 16]));
    let server = BindingServer::with_budget(
        BindingConfig {
            sockets: ServerSockets::single("192.0.2.1:3478".parse().unwrap()),
            software: None,
        },
        budget,
    );
    let mut buf = vec![0u8; 64];
    let w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([1; 12]),
    )
    .unwrap();
    let len = w.finish();
    let binding = buf[..len].to_vec();
    let mut allocate = vec![0u8; 64];
    let mut w = MessageWriter::new(
        &mut allocate,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([2; 12]),
    )
    .unwrap();
    w.add_any(&AnyAttribute::RequestedTransport(RequestedTransport(17)))
        .unwrap();
    let len = w.finish();
    allocate.truncate(len);
    let header_only = &allocate[..20];
    let mut world = harness::World::new(harness::config());
    let now = Instant::now();
    let mut out = [0u8; 1500];
    let (mut bindings, mut challenges) = (0, 0);
    let info = allocation_counter::measure(|| {
        for i in 0..500u16 {
            let source = std::net::SocketAddr::from(([198, 51, 100, 7], 10_000 + i));
            bindings += usize::from(
                server
                    .handle_udp(now, SocketId::PRIMARY, source, &binding, &mut out)
                    .is_some(),
            );
            for request in [&allocate[..], header_only] {
                let outcome = world.server.handle_client(
                    now,
                    world.unix_now,
                    harness::udp_client(10_000 + i),
                    SocketId::PRIMARY,
                    request,
                    &mut out,
                );
                challenges += usize::from(outcome != turn::relay::ClientOutcome::Nothing);
            }
        }
    });
    assert_eq!(bindings, 500);
    // 401s until the source's default budget is spent; header-only Allocates dropped.
    assert!(challenges > 100 && challenges < 500, "{challenges}");
    assert_eq!(
        info.count_total, 0,
        "allocations on the unauthenticated paths"
    );
}
