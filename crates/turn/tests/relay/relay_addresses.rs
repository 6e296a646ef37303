//! Several relay addresses: one address holds one allocation per port of the range; more
//! addresses hold more, taken in turn.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use stun::attributes::{RequestedTransport, XorPeerAddress, XorRelayedAddress};
use stun::{AnyAttribute, Message, Method};
use turn::relay::{ClientOutcome, TurnConfig};

use super::harness::{code, udp_client, Client, World};

const UDP: AnyAttribute<'static> = AnyAttribute::RequestedTransport(RequestedTransport(17));

fn allocate(world: &mut World, port: u16) -> (Client, Result<SocketAddr, u16>) {
    let mut client = Client::new(udp_client(port), "alice", "alice-pass");
    let reply = client.request(world, Method::ALLOCATE, &[UDP]);
    let result = match code(&reply) {
        0 => Ok(Message::decode(&reply)
            .unwrap()
            .get::<XorRelayedAddress>()
            .unwrap()
            .unwrap()
            .0),
        error => Err(error),
    };
    (client, result)
}

// RFC 8656 §7.2: a relayed transport address per allocation. Two relay IPs with a range of two
// ports hold four allocations, alternating between the IPs; the fifth gets 508.
#[test]
fn two_relay_ips_hold_twice_the_allocations_in_turn() {
    // Private addresses: the policy alone would refuse them as peers.
    let a: IpAddr = "10.0.0.1".parse().unwrap();
    let b: IpAddr = "10.0.0.2".parse().unwrap();
    let mut world = World::new(TurnConfig {
        relay_v4: Some(a),
        more_relay_ips: vec![b],
        port_range: 50_000..=50_001,
        ..TurnConfig::default()
    });
    let mut relays = Vec::new();
    let mut clients = Vec::new();
    for i in 0..4 {
        let (client, relay) = allocate(&mut world, 6000 + i);
        relays.push(relay.unwrap());
        clients.push(client);
    }
    let ips: Vec<IpAddr> = relays.iter().map(SocketAddr::ip).collect();
    assert_eq!(ips, [a, b, a, b], "in turn");
    assert_eq!(relays.iter().collect::<BTreeSet<_>>().len(), 4);
    assert_eq!(allocate(&mut world, 7000).1, Err(508));

    // Relay ↔ relay: a relay on the other IP is a reachable peer of an allocation on the
    // first, although the policy denies private addresses.
    let other = relays[1];
    let permit = clients[0].request(
        &mut world,
        Method::CREATE_PERMISSION,
        &[AnyAttribute::XorPeerAddress(XorPeerAddress(other))],
    );
    assert_eq!(code(&permit), 0);
    let bind = clients[0].request(
        &mut world,
        Method::CHANNEL_BIND,
        &[
            AnyAttribute::ChannelNumber(stun::attributes::ChannelNumber(0x4000)),
            AnyAttribute::XorPeerAddress(XorPeerAddress(other)),
        ],
    );
    assert_eq!(code(&bind), 0);
    let (outcome, _) = world.feed(clients[0].five_tuple, &[0x40, 0x00, 0x00, 0x00]);
    assert!(
        matches!(outcome, ClientOutcome::Relay { relay, peer, .. } if relay.get() == relays[0] && peer.get() == other),
        "{outcome:?}"
    );
}
