//! The kernel fast path's view of the core (issue 15): a channel is handed to the driver only
//! while the core would relay its datagrams itself, and taken back the moment that stops —
//! permission expiry (RFC 8656 §9, 300 s), channel expiry (§12, 600 s), deletion (§7.2
//! Refresh with LIFETIME 0, §8), a policy that forbids the peer, a bandwidth cap.

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::{ChannelNumber, Lifetime};
use stun::{AnyAttribute, Method};
use turn::policy::PeerPolicy;
use turn::relay::stats::Direction;
use turn::relay::{
    FastChannel, FastPathChange, Reloadable, Traffic, TurnConfig, TurnEvent, PERMISSION_LIFETIME,
};

use super::harness::{code, config, tcp_client, udp_client, Client, World, REALM, SERVER};
use super::{allocate, bind, peer, permit, UDP};

const PEER: &str = "192.0.2.50:4000";

fn fast() -> TurnConfig {
    TurnConfig {
        fast_path: true,
        ..config()
    }
}

/// Every change the core has for the driver now.
fn changes(world: &mut World) -> Vec<FastPathChange> {
    let now = world.now;
    std::iter::from_fn(|| world.server.poll_fast_path(now)).collect()
}

fn installed(change: &FastPathChange) -> FastChannel {
    match change {
        FastPathChange::Install(c) => *c,
        other => panic!("expected an install, got {other:?}"),
    }
}

fn removed(change: &FastPathChange) -> FastChannel {
    match change {
        FastPathChange::Remove(c) => *c,
        other => panic!("expected a removal, got {other:?}"),
    }
}

/// An allocation of alice's with channel 0x4001 bound to PEER; returns the client and the
/// installed channel.
fn bound(world: &mut World) -> (Client, FastChannel) {
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(world, &mut client);
    assert_eq!(changes(world), []);
    assert_eq!(bind(world, &mut client, 0x4001, PEER), 0);
    let all = changes(world);
    assert_eq!(all.len(), 1, "{all:?}");
    (client, installed(&all[0]))
}

// A bound channel with its permission (ChannelBind installs both, RFC 8656 §12.2) is handed
// out once, with the addresses the kernel writes.
#[test]
fn a_bound_channel_is_installed_once_with_both_directions_addresses() {
    let mut world = World::new(fast());
    let (client, channel) = bound(&mut world);
    let relay = world.server.sessions(world.now)[0].relays[0].bound;
    assert_eq!(
        channel,
        FastChannel {
            allocation: channel.allocation,
            client: client.five_tuple.client,
            server: SERVER.parse::<SocketAddr>().unwrap(),
            number: ChannelNumber(0x4001),
            relay,
            peer: peer(PEER).into(),
        }
    );
    assert_eq!(world.server.fast_path_channels(), 1);
    // A refresh of the same channel changes nothing the driver holds.
    let mut client = client;
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    assert_eq!(changes(&mut world), []);
}

// A permission alone is no channel: ChannelData needs a binding, Send indications stay in
// the core.
#[test]
fn a_permission_without_a_channel_is_not_installed() {
    let mut world = World::new(fast());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert_eq!(changes(&mut world), []);
}

// RFC 8656 §9: a permission lasts 300 s unless refreshed. The channel (600 s) outlives it,
// but without the permission the core would drop the peer's datagrams (§11.3), so the fast
// path must stop at 300 s; a CreatePermission brings it back.
#[test]
fn permission_expiry_removes_and_a_new_permission_reinstalls() {
    let mut world = World::new(fast());
    let (mut client, channel) = bound(&mut world);
    world.advance(PERMISSION_LIFETIME - Duration::from_secs(1));
    assert_eq!(changes(&mut world), []);
    assert_eq!(
        world.server.poll_timeout(),
        Some(world.now + Duration::from_secs(1))
    );
    world.advance(Duration::from_secs(1));
    let all = changes(&mut world);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(removed(&all[0]), channel);
    assert_eq!(world.server.fast_path_channels(), 0);

    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    let all = changes(&mut world);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(installed(&all[0]), channel);
}

// RFC 8656 §12: a binding lasts 600 s unless refreshed; a permission kept alive does not
// keep the channel.
#[test]
fn channel_expiry_removes_even_with_a_live_permission() {
    let mut world = World::new(fast());
    let (mut client, channel) = bound(&mut world);
    world.advance(Duration::from_secs(290));
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    world.advance(Duration::from_secs(290));
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(19)); // 599 s
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(1));
    let all = changes(&mut world);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(removed(&all[0]), channel);
}

// The lifetimes come from the configuration (`permission-lifetime`, `channel-lifetime`, as
// coturn's): the core and the fast path follow them, not RFC 8656's constants.
#[test]
fn configured_lifetimes_set_both_expiries() {
    let mut world = World::new(TurnConfig {
        permission_lifetime: Duration::from_secs(5),
        channel_lifetime: Duration::from_secs(12),
        ..fast()
    });
    let (mut client, channel) = bound(&mut world);
    world.advance(Duration::from_secs(4));
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(1)); // 5 s: the permission is over
    assert_eq!(changes(&mut world), [FastPathChange::Remove(channel)]);
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert_eq!(changes(&mut world), [FastPathChange::Install(channel)]);
    world.advance(Duration::from_secs(4)); // 9 s: refreshed until 14 s
    assert_eq!(permit(&mut world, &mut client, &[PEER]), 0);
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(2)); // 11 s
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(1)); // 12 s: the channel is over
    assert_eq!(changes(&mut world), [FastPathChange::Remove(channel)]);
    assert_eq!(world.server.fast_path_channels(), 0);
}

// RFC 8656 §7.2 / §8: Refresh with LIFETIME 0 deletes the allocation, and with it its
// channels, on the fast path too.
#[test]
fn refresh_zero_removes_every_channel_of_the_allocation() {
    let mut world = World::new(fast());
    let (mut client, channel) = bound(&mut world);
    assert_eq!(bind(&mut world, &mut client, 0x4002, "192.0.2.51:4000"), 0);
    let second = installed(&changes(&mut world)[0]);
    let zero = AnyAttribute::Lifetime(Lifetime(0));
    assert_eq!(
        code(&client.request(&mut world, Method::REFRESH, &[zero])),
        0
    );
    let mut gone: Vec<FastChannel> = changes(&mut world).iter().map(removed).collect();
    gone.sort_by_key(|c| c.number);
    assert_eq!(gone, [channel, second]);
    assert_eq!(world.server.fast_path_channels(), 0);
}

// Allocation expiry and an operator's kick end the allocation the same way.
#[test]
fn expiry_and_kick_remove() {
    let mut world = World::new(fast());
    let (client, channel) = bound(&mut world);
    assert!(world.kick(&client.five_tuple));
    assert_eq!(
        changes(&mut world).iter().map(removed).collect::<Vec<_>>(),
        [channel]
    );

    let mut world = World::new(fast());
    let (mut client, channel) = bound(&mut world);
    // Keep channel and permission alive past the allocation's 600 s.
    world.advance(Duration::from_secs(280));
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    world.advance(Duration::from_secs(280));
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    assert_eq!(changes(&mut world), []);
    world.advance(Duration::from_secs(41));
    assert_eq!(
        changes(&mut world).iter().map(removed).collect::<Vec<_>>(),
        [channel]
    );
}

// A reload whose policy forbids the peer takes the channel off the fast path at once (the
// core checks the policy per datagram, RFC 8656 §21.2's advice; the kernel must not relay
// what the core would refuse).
#[test]
fn a_reload_that_forbids_the_peer_removes_its_channel() {
    let mut world = World::new(fast());
    let (_client, channel) = bound(&mut world);
    let deny = PeerPolicy::new(Vec::new(), vec!["192.0.2.50/32".parse().unwrap()]);
    let _old = world.server.reconfigure(Reloadable::new(
        &fast(),
        REALM,
        Vec::new(),
        Vec::new(),
        deny,
    ));
    assert_eq!(
        changes(&mut world).iter().map(removed).collect::<Vec<_>>(),
        [channel]
    );
    // A reload that changes nothing for it removes nothing.
    let mut world = World::new(fast());
    let (_client, _channel) = bound(&mut world);
    let same = PeerPolicy::default();
    let _old = world.server.reconfigure(Reloadable::new(
        &fast(),
        REALM,
        Vec::new(),
        Vec::new(),
        same,
    ));
    assert_eq!(changes(&mut world), []);
}

// A forbidden peer never gets a binding (403), so never an entry.
#[test]
fn a_forbidden_peer_is_never_installed() {
    let deny = PeerPolicy::new(Vec::new(), vec!["192.0.2.50/32".parse().unwrap()]);
    let mut world = World::with_policy(fast(), deny);
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 403);
    assert_eq!(changes(&mut world), []);
}

// What the core must see per packet stays with the core: a bandwidth cap (counted per
// datagram), a TCP client (ChannelData padded in a stream, §12.5). Without the fast path
// configured, nothing is ever handed out.
#[test]
fn capped_tcp_and_disabled_stay_in_the_core() {
    let mut world = World::new(TurnConfig {
        bandwidth: Some(1_000_000),
        ..fast()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    assert_eq!(changes(&mut world), []);

    let mut world = World::new(fast());
    let mut client = Client::new(tcp_client(5000), "alice", "alice-pass");
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0);
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    assert_eq!(changes(&mut world), []);

    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4001, PEER), 0);
    assert_eq!(changes(&mut world), []);
    assert_eq!(world.server.fast_path_channels(), 0);
}

// Traffic relayed in the kernel is reported back and lands where the core's own would: the
// session record and the relay counters.
#[test]
fn reported_traffic_counts_as_relayed() {
    let mut world = World::new(fast());
    let (_client, channel) = bound(&mut world);
    let before = world.server.stats();
    let to_peer = Traffic {
        packets: 10,
        bytes: 1000,
    };
    let to_client = Traffic {
        packets: 3,
        bytes: 300,
    };
    world.server.fast_path_traffic(&channel, to_peer, to_client);
    let session = &world.server.sessions(world.now)[0];
    assert_eq!(session.traffic.to_peer, to_peer);
    assert_eq!(session.traffic.to_client, to_client);
    let after = world.server.stats();
    let moved = |d| after.packets_in(d) - before.packets_in(d);
    assert_eq!(moved(Direction::ToPeer), 10);
    assert_eq!(moved(Direction::ToClient), 3);
}

// The driver reads a channel's last counters when it removes it, after the allocation ended:
// they still reach the session's end record (its log line), not only the counters.
#[test]
fn last_counters_of_an_ended_allocation_reach_its_end_event() {
    let mut world = World::new(fast());
    let (mut client, channel) = bound(&mut world);
    while world.server.poll_event().is_some() {}
    let zero = AnyAttribute::Lifetime(Lifetime(0));
    assert_eq!(
        code(&client.request(&mut world, Method::REFRESH, &[zero])),
        0
    );
    assert_eq!(
        changes(&mut world).iter().map(removed).collect::<Vec<_>>(),
        [channel]
    );
    let last = Traffic {
        packets: 7,
        bytes: 700,
    };
    world
        .server
        .fast_path_traffic(&channel, last, Traffic::default());
    let ended = std::iter::from_fn(|| world.server.poll_event()).find_map(|e| match e {
        TurnEvent::AllocationEnded { session, .. } => Some(session),
        _ => None,
    });
    assert_eq!(ended.expect("an end event").traffic.to_peer, last);
}
