//! Draining and reloading a running core: new Allocates refused (RFC 8656 §7.2 step 11, RFC
//! 8489 §10), existing allocations served; credentials and limits replaced in place.

use std::net::SocketAddr;

use stun::attributes::{AlternateServer, Lifetime, XorRelayedAddress};
use stun::{AnyAttribute, Message, Method};
use turn::auth::StaticUser;
use turn::policy::PeerPolicy;
use turn::relay::{Reloadable, TurnConfig};

use super::harness::{code, config, udp_client, Client, World, REALM};
use super::UDP;

fn alternates(reply: &[u8]) -> Vec<SocketAddr> {
    let m = Message::decode(reply).unwrap();
    m.get_all::<AlternateServer>()
        .map(|a| a.unwrap().0)
        .collect()
}

// RFC 8489 §10: 300 with at least one ALTERNATE-SERVER of the family of the request's source
// first, then SHOULD one of the other family; the answer to an authenticated request is signed.
#[test]
fn draining_refuses_new_allocations_with_300_and_alternate_servers() {
    let mut world = World::new(config());
    let mut old = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = old.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 0);
    let relay = Message::decode(&reply)
        .unwrap()
        .get::<XorRelayedAddress>()
        .unwrap()
        .unwrap()
        .0;
    let v6: SocketAddr = "[2001:db8::9]:3478".parse().unwrap();
    let v4: SocketAddr = "192.0.2.9:3478".parse().unwrap();
    world.server.start_draining(&[v6, v4]);
    assert!(world.server.is_draining());

    let mut new = Client::new(udp_client(5001), "bob", "bob-pass");
    let reply = new.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 300);
    // The client is IPv4: the IPv4 alternate first although it was listed second.
    assert_eq!(alternates(&reply), vec![v4, v6]);
    Message::decode(&reply)
        .unwrap()
        .verify_integrity(new.key.as_bytes())
        .unwrap();

    // The existing allocation is still served.
    let refresh = old.request(
        &mut world,
        Method::REFRESH,
        &[AnyAttribute::Lifetime(Lifetime(600))],
    );
    assert_eq!(code(&refresh), 0);
    assert!(world.sockets.open.contains(&relay));
    assert_eq!(world.server.stats().allocation_count(), 1);
}

// RFC 8489 §10: the first ALTERNATE-SERVER MUST be of the client's family; without one, the
// server answers as a server without room does (508, RFC 8656 §7.2).
#[test]
fn draining_without_an_alternate_of_the_family_answers_508() {
    let mut world = World::new(config());
    world
        .server
        .start_draining(&["[2001:db8::9]:3478".parse().unwrap()]);
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    let reply = client.request(&mut world, Method::ALLOCATE, &[UDP]);
    assert_eq!(code(&reply), 508);
    assert!(alternates(&reply).is_empty());
    assert!(world.sockets.open.is_empty());
}

#[test]
fn reconfigure_replaces_users_and_quotas_in_place() {
    let mut world = World::new(TurnConfig {
        user_quota: 1,
        ..config()
    });
    let mut alice = Client::new(udp_client(5000), "alice", "alice-pass");
    assert_eq!(
        code(&alice.request(&mut world, Method::ALLOCATE, &[UDP])),
        0
    );
    let mut carol = Client::new(udp_client(5001), "carol", "carol-pass");
    carol.learn_nonce(&mut world);
    assert_eq!(
        code(&carol.request(&mut world, Method::ALLOCATE, &[UDP])),
        401
    );

    let users = vec![
        StaticUser::from_password("alice", REALM, "alice-pass"),
        StaticUser::from_password("carol", REALM, "carol-pass"),
    ];
    let reloaded = TurnConfig {
        user_quota: 2,
        ..config()
    };
    let _replaced = world.server.reconfigure(Reloadable::new(
        &reloaded,
        REALM,
        users,
        Vec::new(),
        PeerPolicy::default(),
    ));
    assert_eq!(
        code(&carol.request(&mut world, Method::ALLOCATE, &[UDP])),
        0
    );
    // alice's allocation survived, and the raised quota lets her take a second one.
    let mut alice2 = Client::new(udp_client(5002), "alice", "alice-pass");
    assert_eq!(
        code(&alice2.request(&mut world, Method::ALLOCATE, &[UDP])),
        0
    );
    assert_eq!(world.server.stats().allocation_count(), 3);
}
