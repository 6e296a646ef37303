//! The core's counters (`TurnStats`): each drop site counts its cause, relayed packets and
//! payload bytes are counted per direction, requests per method and answer, allocations
//! per kind, and an allocation's lifetime when it ends.

use std::time::Duration;

use stun::Method;
use turn::relay::stats::{Direction, RESPONSE_CODES};
use turn::relay::{DropCause, TurnConfig, TurnStats};

use super::harness::{config, udp_client, Client, World};
use super::{allocate, bind, channel_data, from_peer, permit, send_indication};

fn stats(world: &World) -> TurnStats {
    world.server.stats()
}

fn requests(stats: &TurnStats, method: usize, code: &str) -> u64 {
    let c = RESPONSE_CODES.iter().position(|c| *c == code).unwrap();
    stats.requests[method][c]
}

#[test]
fn every_drop_has_its_cause() {
    let mut world = World::new(TurnConfig {
        bandwidth: Some(1000),
        ..config()
    });
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    // No allocation yet: ChannelData and a Send indication are dropped.
    world.feed(client.five_tuple, &channel_data(0x4000, b"x"));
    world.feed(
        client.five_tuple,
        &send_indication(&client, "192.0.2.50:4000", b"x", false),
    );
    // Neither STUN nor ChannelData; a truncated ChannelData message.
    world.feed(client.five_tuple, &[0xC0, 0, 0, 0]);
    let relay = allocate(&mut world, &mut client);
    world.feed(client.five_tuple, &[0x40, 0x00, 0x00, 0x64, 1, 2]);
    // A channel that is not bound; a peer without a permission, both ways.
    world.feed(client.five_tuple, &channel_data(0x4001, b"x"));
    world.feed(
        client.five_tuple,
        &send_indication(&client, "192.0.2.60:4000", b"x", false),
    );
    assert_eq!(from_peer(&mut world, relay, "192.0.2.60:4000", b"x"), None);
    // Over the bandwidth cap (1000 bytes per second).
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    let big = channel_data(0x4000, &[0; 600]);
    world.feed(client.five_tuple, &big);
    world.feed(client.five_tuple, &big);

    let s = stats(&world);
    for (cause, want) in [
        (DropCause::NoAllocation, 2),
        (DropCause::Malformed, 2),
        (DropCause::NoChannel, 1),
        (DropCause::NoPermission, 2),
        (DropCause::BandwidthCap, 1),
        (DropCause::PeerPolicy, 0),
    ] {
        assert_eq!(s.dropped_for(cause), want, "{cause:?}");
    }
    assert_eq!(s.dropped(), 8);
    assert_eq!(s.packets_in(Direction::ToPeer), 1);
    assert_eq!(s.bytes[Direction::ToPeer as usize][0], 600);
}

#[test]
fn relays_requests_allocations_and_lifetimes_are_counted() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.50:4000"]), 0);
    world.feed(
        client.five_tuple,
        &send_indication(&client, "192.0.2.50:4000", b"hello", false),
    );
    assert!(from_peer(&mut world, relay, "192.0.2.50:4000", b"hi there").is_some());

    let s = stats(&world);
    assert_eq!(s.allocations[0][0], 1, "udp, ipv4");
    assert_eq!(s.allocation_count(), 1);
    assert_eq!(s.permissions, 1);
    assert_eq!(s.channels, 0);
    assert_eq!(s.packets_in(Direction::ToPeer), 1);
    assert_eq!(s.packets_in(Direction::ToClient), 1);
    assert_eq!(s.bytes[Direction::ToPeer as usize][0], 5);
    assert_eq!(s.bytes[Direction::ToClient as usize][0], 8);
    // Allocate: the first, unauthenticated, draws 401; then success. CreatePermission once.
    assert_eq!(requests(&s, 0, "401"), 1);
    assert_eq!(requests(&s, 0, "success"), 1);
    assert_eq!(requests(&s, 2, "success"), 1);
    // A second Allocate on the same 5-tuple: 437.
    let again = client.request(&mut world, Method::ALLOCATE, &[super::UDP]);
    assert_eq!(super::harness::code(&again), 437);
    assert_eq!(requests(&stats(&world), 0, "437"), 1);

    // The permission expires after 300 s; the allocation (600 s) then ends, seen by the
    // timer at 601 s: its lifetime is observed in the (600 s, 1800 s] bucket.
    world.advance(Duration::from_secs(301));
    assert_eq!(stats(&world).permissions, 0);
    world.advance(Duration::from_secs(300));
    let s = stats(&world);
    assert_eq!(s.allocation_count(), 0);
    assert_eq!(s.lifetimes.count, 1);
    assert_eq!(s.lifetimes.buckets[5], 1, "{:?}", s.lifetimes);
    assert!(
        (s.lifetimes.sum_seconds - 601.0).abs() < 1e-6,
        "{:?}",
        s.lifetimes
    );
}
