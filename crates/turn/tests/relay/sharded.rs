//! Several cores (one per worker thread) sharing one [`SharedState`]: relay ports, quotas and
//! the relay↔relay rule hold across them, as they do for one core.

use std::collections::BTreeSet;
use std::sync::Arc;

use stun::attributes::{Lifetime, RequestedTransport, XorPeerAddress, XorRelayedAddress};
use stun::{AnyAttribute, Message, Method};
use turn::policy::PeerPolicy;
use turn::relay::{ClientOutcome, SharedState, TurnConfig};

use super::harness::{code, udp_client, Client, World};

const UDP: AnyAttribute<'static> = AnyAttribute::RequestedTransport(RequestedTransport(17));

/// Two cores sharing their state, relaying on `relay_ip` with ports `low..=high`.
fn two_cores(relay_ip: &str, ports: std::ops::RangeInclusive<u16>, quota: usize) -> [World; 2] {
    let config = TurnConfig {
        relay_v4: Some(relay_ip.parse().unwrap()),
        port_range: ports,
        user_quota: quota,
        ..TurnConfig::default()
    };
    let shared = Arc::new(SharedState::new(
        &config.relay_ips(),
        config.port_range.clone(),
    ));
    [
        World::sharing(config.clone(), PeerPolicy::default(), shared.clone()),
        World::sharing(config, PeerPolicy::default(), shared),
    ]
}

fn relayed(reply: &[u8]) -> std::net::SocketAddr {
    assert_eq!(code(reply), 0, "allocate");
    let m = Message::decode(reply).unwrap();
    m.get::<XorRelayedAddress>().unwrap().unwrap().0
}

// RFC 8656 §7.2: a relayed transport address belongs to one allocation. Each core has its
// own (fake) sockets, so only the shared claims keep two cores off the same port; with the
// range full, the next Allocate on either core gets 508 (step 10 / "no port available").
#[test]
fn two_cores_never_hand_out_the_same_port() {
    let [mut a, mut b] = two_cores("203.0.113.10", 50_000..=50_003, 0);
    let mut ports = BTreeSet::new();
    for i in 0..2 {
        let mut on_a = Client::new(udp_client(6000 + i), "alice", "alice-pass");
        let mut on_b = Client::new(udp_client(7000 + i), "bob", "bob-pass");
        ports.insert(relayed(&on_a.request(&mut a, Method::ALLOCATE, &[UDP])));
        ports.insert(relayed(&on_b.request(&mut b, Method::ALLOCATE, &[UDP])));
    }
    assert_eq!(ports.len(), 4, "four distinct relay addresses: {ports:?}");
    let mut late = Client::new(udp_client(8000), "bob", "bob-pass");
    assert_eq!(code(&late.request(&mut b, Method::ALLOCATE, &[UDP])), 508);

    // A deleted allocation gives its port back to every core.
    let mut first = Client::new(udp_client(6000), "alice", "alice-pass");
    let reply = first.request(
        &mut a,
        Method::REFRESH,
        &[AnyAttribute::Lifetime(Lifetime(0))],
    );
    assert_eq!(code(&reply), 0);
    assert_eq!(b.server.stats().allocation_count(), 2);
    assert_eq!(a.server.stats().allocation_count(), 1);
    relayed(&late.request(&mut b, Method::ALLOCATE, &[UDP]));
}

// RFC 8656 §7.2 step 10: the per-username quota counts the user's allocations on all cores
// (486), not per core.
#[test]
fn user_quota_counts_across_cores() {
    let [mut a, mut b] = two_cores("203.0.113.10", 50_000..=50_099, 1);
    let mut on_a = Client::new(udp_client(6000), "alice", "alice-pass");
    relayed(&on_a.request(&mut a, Method::ALLOCATE, &[UDP]));
    let mut on_b = Client::new(udp_client(6001), "alice", "alice-pass");
    assert_eq!(code(&on_b.request(&mut b, Method::ALLOCATE, &[UDP])), 486);
    let mut bob = Client::new(udp_client(6002), "bob", "bob-pass");
    relayed(&bob.request(&mut b, Method::ALLOCATE, &[UDP]));
}

// Relay ↔ relay is always allowed, also when the other relay belongs to another core: the
// relay IP here (10.0.0.1) is private, so the policy alone would drop the packet.
#[test]
fn a_relay_of_another_core_is_a_reachable_peer() {
    let [mut a, mut b] = two_cores("10.0.0.1", 50_000..=50_099, 0);
    let mut on_a = Client::new(udp_client(6000), "alice", "alice-pass");
    let mut on_b = Client::new(udp_client(6001), "bob", "bob-pass");
    relayed(&on_a.request(&mut a, Method::ALLOCATE, &[UDP]));
    let other = relayed(&on_b.request(&mut b, Method::ALLOCATE, &[UDP]));
    let permit = on_a.request(
        &mut a,
        Method::CREATE_PERMISSION,
        &[AnyAttribute::XorPeerAddress(XorPeerAddress(other))],
    );
    assert_eq!(code(&permit), 0);
    let mut buf = vec![0u8; 256];
    let mut w = stun::MessageWriter::new(
        &mut buf,
        stun::MessageType::new(Method::SEND, stun::Class::Indication),
        stun::TransactionId([9; 12]),
    )
    .unwrap();
    w.add(&XorPeerAddress(other)).unwrap();
    w.add(&stun::attributes::Data(b"hello")).unwrap();
    let len = w.finish();
    let (outcome, _) = a.feed(on_a.five_tuple, &buf[..len]);
    assert!(
        matches!(outcome, ClientOutcome::Relay { peer, .. } if peer.get() == other),
        "{outcome:?}"
    );
}

// RFC 8656 §7.2: EVEN-PORT R=1 reserves the next port under a RESERVATION-TOKEN. The Allocate
// that redeems it comes from another 5-tuple, which may land on another core: it gets port
// N+1 there, bound by that core.
#[test]
fn a_reservation_is_redeemed_on_another_core() {
    use stun::attributes::{EvenPort, ReservationToken};
    let [mut a, mut b] = two_cores("203.0.113.10", 50_000..=50_099, 0);
    let mut rtp = Client::new(udp_client(6000), "alice", "alice-pass");
    let reply = rtp.request(
        &mut a,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::EvenPort(EvenPort { reserve_next: true })],
    );
    let first = relayed(&reply);
    let token = Message::decode(&reply)
        .unwrap()
        .get::<ReservationToken>()
        .unwrap()
        .unwrap();
    let mut rtcp = Client::new(udp_client(6001), "alice", "alice-pass");
    let reply = rtcp.request(
        &mut b,
        Method::ALLOCATE,
        &[UDP, AnyAttribute::ReservationToken(token)],
    );
    let second = relayed(&reply);
    assert_eq!(second.port(), first.port() + 1);
    assert!(
        b.sockets.open.contains(&second),
        "bound by the redeeming core"
    );
    assert!(!a.sockets.open.contains(&second));
}
