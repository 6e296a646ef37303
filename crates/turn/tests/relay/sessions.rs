//! Sessions and events: per-allocation traffic, the `sessions()` snapshot, kicking, and the
//! events the driver logs (created/ended with the end reason, authentication failures,
//! server-side causes of 508/486), with a hand-moved clock.

use std::net::SocketAddr;
use std::time::Duration;

use stun::attributes::Lifetime;
use stun::{AnyAttribute, Method};
use turn::auth::AuthRejection;
use turn::relay::{
    ClientTransport, EndReason, RelayOpenError, ServerErrorCause, SessionInfo, Traffic, TurnConfig,
    TurnEvent,
};

use super::harness::{code, config, udp_client, Client, World, REALM, RELAY_IP};
use super::{allocate, bind, channel_data, from_peer, permit, send_indication, UDP};

fn events(world: &mut World) -> Vec<TurnEvent> {
    std::iter::from_fn(|| world.server.poll_event()).collect()
}

/// The one session that ended among `events`, and why.
fn ended(events: &[TurnEvent]) -> (SessionInfo, EndReason) {
    let ends: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::AllocationEnded { session, reason } => Some((session.clone(), *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(ends.len(), 1, "{events:?}");
    ends[0].clone()
}

fn server_errors(events: &[TurnEvent]) -> Vec<(u16, ServerErrorCause)> {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ServerError(e) => Some((e.code, e.cause)),
            _ => None,
        })
        .collect()
}

fn relay_ip() -> std::net::IpAddr {
    RELAY_IP.parse().unwrap()
}

// The snapshot an operator sees: who, from where, through which relay, how long, and the
// traffic the core relayed each way (payload bytes).
#[test]
fn sessions_report_traffic_and_lifetimes() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.51:0"]), 0);
    for _ in 0..3 {
        world.feed(client.five_tuple, &channel_data(0x4000, &[1; 100]));
    }
    let send = send_indication(&client, "192.0.2.51:4000", &[2; 50], false);
    world.feed(client.five_tuple, &send);
    // Refused on the data path: no permission for this peer. Not counted.
    let refused = send_indication(&client, "192.0.2.99:4000", &[2; 50], false);
    world.feed(client.five_tuple, &refused);
    for _ in 0..2 {
        assert!(from_peer(&mut world, relay, "192.0.2.50:4000", &[3; 70]).is_some());
    }
    assert!(from_peer(&mut world, relay, "192.0.2.98:4000", &[3; 70]).is_none());
    world.advance(Duration::from_secs(10));

    let sessions = world.server.sessions(world.now);
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s.five_tuple, client.five_tuple);
    assert_eq!(s.username, "alice");
    assert_eq!(s.realm, REALM);
    assert_eq!(s.relays.len(), 1);
    assert_eq!(
        (s.relays[0].bound.get(), s.relays[0].advertised.get()),
        (relay, relay)
    );
    assert_eq!(s.age, Duration::from_secs(10));
    assert_eq!(s.remaining, Duration::from_secs(590));
    assert_eq!((s.permissions, s.channels), (2, 1));
    assert_eq!(
        s.traffic.to_peer,
        Traffic {
            packets: 4,
            bytes: 350
        }
    );
    assert_eq!(
        s.traffic.to_client,
        Traffic {
            packets: 2,
            bytes: 140
        }
    );
}

// One creation and one end event per allocation, with the end reason, the duration and the
// final traffic: Refresh 0 (deleted), expiry, a closed TCP/TLS connection, shutdown.
#[test]
fn every_allocation_has_a_creation_and_an_end_event() {
    let mut world = World::new(config());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let relay = allocate(&mut world, &mut client);
    let created = events(&mut world);
    let [TurnEvent::AllocationCreated(session)] = created.as_slice() else {
        panic!("{created:?}");
    };
    assert_eq!(session.username, "alice");
    assert_eq!(session.relays[0].bound.get(), relay);
    assert_eq!(session.age, Duration::ZERO);
    assert_eq!(session.remaining, Duration::from_secs(600));

    assert_eq!(permit(&mut world, &mut client, &["192.0.2.51:0"]), 0);
    world.feed(
        client.five_tuple,
        &send_indication(&client, "192.0.2.51:4000", &[2; 30], false),
    );
    world.advance(Duration::from_secs(42));
    let reply = client.request(
        &mut world,
        Method::REFRESH,
        &[AnyAttribute::Lifetime(Lifetime(0))],
    );
    assert_eq!(code(&reply), 0);
    let (session, reason) = ended(&events(&mut world));
    assert_eq!(reason, EndReason::Deleted);
    assert_eq!(session.age, Duration::from_secs(42));
    assert_eq!(session.remaining, Duration::ZERO);
    assert_eq!(
        session.traffic.to_peer,
        Traffic {
            packets: 1,
            bytes: 30
        }
    );

    allocate(&mut world, &mut client);
    world.advance(Duration::from_secs(601));
    let (session, reason) = ended(&events(&mut world));
    assert_eq!(reason, EndReason::Expired);
    assert_eq!(session.age, Duration::from_secs(601));

    let mut tcp = Client::new(udp_client(5001), "bob", "bob-pass");
    tcp.five_tuple.transport = ClientTransport::Tcp;
    allocate(&mut world, &mut tcp);
    world.advance(Duration::from_secs(5));
    world.client_closed(&tcp.five_tuple);
    let (session, reason) = ended(&events(&mut world));
    assert_eq!(reason, EndReason::ConnectionClosed);
    assert_eq!(session.five_tuple, tcp.five_tuple);
    assert_eq!(session.age, Duration::from_secs(5));

    allocate(&mut world, &mut client);
    events(&mut world);
    world.advance(Duration::from_secs(7));
    let now = world.now;
    assert_eq!(world.server.shutdown(now), 1);
    let (session, reason) = ended(&events(&mut world));
    assert_eq!(reason, EndReason::Shutdown);
    assert_eq!(session.age, Duration::from_secs(7));
    // Left for the driver to drop, and for its final counters.
    assert_eq!(world.server.stats().allocation_count(), 1);
}

// Kicking ends an allocation as expiry would: relay socket closed, quota given back, the
// client's next request gets 437.
#[test]
fn kick_and_kick_user() {
    let mut world = World::new(TurnConfig {
        user_quota: 2,
        ..config()
    });
    let mut a1 = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut a2 = Client::new(udp_client(5001), "alice", "alice-pass");
    let mut b = Client::new(udp_client(5002), "bob", "bob-pass");
    for client in [&mut a1, &mut a2, &mut b] {
        allocate(&mut world, client);
    }
    events(&mut world);
    assert!(world.kick(&a1.five_tuple));
    assert!(!world.kick(&a1.five_tuple));
    let (session, reason) = ended(&events(&mut world));
    assert_eq!(
        (session.five_tuple, reason),
        (a1.five_tuple, EndReason::Kicked)
    );
    assert_eq!(code(&a1.request(&mut world, Method::REFRESH, &[])), 437);
    assert_eq!(world.sockets.open.len(), 2);
    // alice's quota slot is free again.
    allocate(&mut world, &mut a1);
    events(&mut world);

    assert_eq!(world.kick_user("alice"), 2);
    assert_eq!(world.kick_user("alice"), 0);
    let kicked = events(&mut world);
    assert_eq!(kicked.len(), 2, "{kicked:?}");
    assert!(kicked.iter().all(|e| matches!(
        e,
        TurnEvent::AllocationEnded { session, reason: EndReason::Kicked } if session.username == "alice"
    )));
    let left = world.server.sessions(world.now);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].five_tuple, b.five_tuple);
    assert_eq!(world.sockets.open.len(), 1);
    assert_eq!(world.server.shared_state().allocations(), 1);
}

// A failed login is an event with its reason, source and username; the first,
// unauthenticated request and a stale nonce are not failures.
#[test]
fn auth_failures_are_events() {
    let mut world = World::new(config());
    let mut wrong = Client::new(udp_client(5000), "alice", "not-her-password");
    assert_eq!(
        code(&wrong.request(&mut world, Method::ALLOCATE, &[UDP])),
        401
    );
    let failures = events(&mut world);
    let [TurnEvent::AuthFailed(failure)] = failures.as_slice() else {
        panic!("{failures:?}");
    };
    assert_eq!(failure.source, wrong.five_tuple.client);
    assert_eq!(failure.reason, AuthRejection::WrongCredentials);
    assert_eq!(failure.username.as_deref(), Some("alice"));
}

// A flood of failures costs bounded memory: at most half the queue is failures, the rest is
// counted and reported by one `Lost`; the session events still get through.
#[test]
fn an_auth_failure_flood_is_bounded() {
    let mut world = World::new(config());
    let mut wrong = Client::new(udp_client(5000), "mallory", "guess");
    wrong.learn_nonce(&mut world);
    for _ in 0..10_000 {
        let tid = world.tid();
        let packet = wrong.encode(Method::ALLOCATE, tid, &[UDP]);
        world.feed(wrong.five_tuple, &packet);
    }
    let mut alice = Client::new(udp_client(5001), "alice", "alice-pass");
    allocate(&mut world, &mut alice);
    let all = events(&mut world);
    let queued = all
        .iter()
        .filter(|e| matches!(e, TurnEvent::AuthFailed(_)))
        .count();
    assert!(queued <= turn::relay::EVENT_QUEUE_CAPACITY / 2, "{queued}");
    let Some(TurnEvent::Lost {
        auth_failures,
        events: 0,
    }) = all.last()
    else {
        panic!("no Lost last: {:?}", all.last());
    };
    assert_eq!(queued as u64 + auth_failures, 10_000);
    assert!(all
        .iter()
        .any(|e| matches!(e, TurnEvent::AllocationCreated(s) if s.username == "alice")));
}

// Each server-side refusal says why: user quota (486), total quota, an empty port pool, and
// the OS error of the relay socket (508).
#[test]
fn server_errors_carry_their_cause() {
    let mut world = World::new(TurnConfig {
        user_quota: 1,
        total_quota: 2,
        port_range: 50000..=50001,
        ..config()
    });
    let mut a1 = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut a2 = Client::new(udp_client(5001), "alice", "alice-pass");
    allocate(&mut world, &mut a1);
    assert_eq!(code(&a2.request(&mut world, Method::ALLOCATE, &[UDP])), 486);
    let errors = server_errors(&events(&mut world));
    assert_eq!(errors, [(486, ServerErrorCause::UserQuota)]);

    // One port left, held by another program: the pool is empty for us.
    world
        .sockets
        .taken
        .insert(SocketAddr::new(relay_ip(), 50000));
    world
        .sockets
        .taken
        .insert(SocketAddr::new(relay_ip(), 50001));
    let mut b1 = Client::new(udp_client(5002), "bob", "bob-pass");
    assert_eq!(code(&b1.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
    let errors = server_errors(&events(&mut world));
    assert_eq!(
        errors,
        [(508, ServerErrorCause::PortPoolEmpty { ip: relay_ip() })]
    );

    world.sockets.taken.clear();
    for error in [
        RelayOpenError::AddrNotAvailable,
        RelayOpenError::ProcessFileLimit,
    ] {
        world.sockets.fail_all = Some(error);
        assert_eq!(code(&b1.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
        let errors = server_errors(&events(&mut world));
        let cause = ServerErrorCause::RelaySocket {
            ip: relay_ip(),
            error,
        };
        assert_eq!(errors, [(508, cause)]);
        assert!(cause.to_string().contains(RELAY_IP), "{cause}");
    }
    world.sockets.fail_all = None;
    allocate(&mut world, &mut b1);
    // The failures gave their quota counts back.
    assert_eq!(world.server.shared_state().allocations(), 2);
    events(&mut world);

    let mut world = World::new(TurnConfig {
        total_quota: 1,
        ..config()
    });
    allocate(&mut world, &mut a1);
    assert_eq!(code(&b1.request(&mut world, Method::ALLOCATE, &[UDP])), 508);
    let errors = server_errors(&events(&mut world));
    assert_eq!(errors, [(508, ServerErrorCause::TotalQuota)]);
}

// A dual allocation that gets its IPv4 relay but no IPv6 one succeeds with ADDRESS-ERROR-CODE
// 508 for IPv6 (RFC 8656 §7.2); the cause of that 508 is an event too. The permission and
// channel limits (508) are events as well.
#[test]
fn partial_dual_allocations_and_limits_are_server_errors() {
    let v6: std::net::IpAddr = "2001:db8::10".parse().unwrap();
    let mut world = World::new(TurnConfig {
        relay_v6: Some(v6),
        port_range: 50000..=50001,
        max_permissions: 1,
        max_channels: 1,
        ..config()
    });
    for port in [50000, 50001] {
        world.sockets.taken.insert(SocketAddr::new(v6, port));
    }
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let add_v6 = AnyAttribute::AdditionalAddressFamily(stun::attributes::AdditionalAddressFamily(
        stun::attributes::AddressFamily::IPV6,
    ));
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP, add_v6]);
    assert_eq!(code(&reply), 0);
    let all = events(&mut world);
    assert_eq!(
        server_errors(&all),
        [(508, ServerErrorCause::PortPoolEmpty { ip: v6 })]
    );
    let created = all
        .iter()
        .filter(|e| matches!(e, TurnEvent::AllocationCreated(s) if s.relays.len() == 1))
        .count();
    assert_eq!(created, 1, "{all:?}");

    assert_eq!(permit(&mut world, &mut client, &["192.0.2.50:0"]), 0);
    assert_eq!(permit(&mut world, &mut client, &["192.0.2.51:0"]), 508);
    assert_eq!(
        server_errors(&events(&mut world)),
        [(508, ServerErrorCause::PermissionLimit)]
    );
    assert_eq!(bind(&mut world, &mut client, 0x4000, "192.0.2.50:4000"), 0);
    assert_eq!(
        bind(&mut world, &mut client, 0x4001, "192.0.2.50:4001"),
        508
    );
    assert_eq!(
        server_errors(&events(&mut world)),
        [(508, ServerErrorCause::ChannelLimit)]
    );
}
