//! The server's own IPv4 addresses in IPv6 disguise (issue #10 §5): `::ffff:A` (RFC 4291
//! §2.5.5.2), NAT64 `64:ff9b::A` (RFC 6052 §2.1), 6to4 `2002:AABB:CCDD::` (RFC 3056 §2),
//! Teredo (RFC 4380 §4, server and obfuscated client) and ISATAP (RFC 5214 §6.1) are refused
//! with 403 at CreatePermission and ChannelBind (RFC 8656 §9.1, §12.2, §21), and a Send
//! indication to them relays nothing, while the native relay address of another client stays
//! reachable (RFC 8656 §21: relay to relay through one server).

use std::net::{IpAddr, Ipv6Addr};

use stun::attributes::{AdditionalAddressFamily, AddressFamily};
use turn::policy::PeerPolicy;

use super::harness::SERVER;
use super::*;

/// The IPv6 forms of `ip` (an IPv4 address given as four octets) this server must refuse.
fn disguises(ip: [u8; 4]) -> Vec<String> {
    let v4 = u32::from_be_bytes(ip);
    let (hi, lo) = (v4 >> 16, v4 & 0xffff);
    let teredo = Ipv6Addr::new(
        0x2001,
        0,
        0x4136,
        0xe378,
        0x8000,
        0x63bf,
        (!hi & 0xffff) as u16,
        (!lo & 0xffff) as u16,
    );
    // Teredo with this server as the Teredo server (bits 32..64) and a public client.
    let teredo_server = Ipv6Addr::new(0x2001, 0, hi as u16, lo as u16, 0, 0, 0xf7f7, 0xf7f7);
    vec![
        format!("[::ffff:{hi:x}:{lo:x}]:4000"),
        format!("[64:ff9b::{hi:x}:{lo:x}]:4000"),
        format!("[2002:{hi:x}:{lo:x}::1]:4000"),
        format!("[{teredo}]:4000"),
        format!("[{teredo_server}]:4000"),
        format!("[2001:db8::5efe:{hi:x}:{lo:x}]:4000"),
        format!("[::{hi:x}:{lo:x}]:4000"),
        format!("[::ffff:0:{hi:x}:{lo:x}]:4000"),
    ]
}

fn dual_stack() -> TurnConfig {
    TurnConfig {
        relay_v6: Some("2001:db8::10".parse().unwrap()),
        own_ips: vec![SERVER.parse::<SocketAddr>().unwrap().ip()],
        service_ports: vec![3478],
        ..config()
    }
}

fn allocate_dual(world: &mut World, client: &mut Client) {
    let add_v6 =
        AnyAttribute::AdditionalAddressFamily(AdditionalAddressFamily(AddressFamily::IPV6));
    let reply = client.request(world, Method::ALLOCATE, &[UDP, add_v6]);
    assert_eq!(code(&reply), 0, "dual-stack allocate");
}

#[test]
fn ipv6_forms_of_the_relay_and_listen_addresses_are_refused() {
    // 203.0.113.10 is the relay address, 192.0.2.1 the listen address; both are public
    // (documentation ranges are allowed), so only the own-address check stands in the way.
    let mut world = World::new(dual_stack());
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate_dual(&mut world, &mut client);
    let mut checked = 0;
    for own in [[203, 0, 113, 10], [192, 0, 2, 1]] {
        for (n, form) in disguises(own).iter().enumerate() {
            assert_eq!(permit(&mut world, &mut client, &[form]), 403, "{form}");
            let number = 0x4000 + u16::try_from(n).unwrap();
            assert_eq!(bind(&mut world, &mut client, number, form), 403, "{form}");
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
    // A public IPv6 peer and the native forms are unaffected.
    assert_eq!(permit(&mut world, &mut client, &["[2001:db8::50]:0"]), 0);
    assert_eq!(
        permit(&mut world, &mut client, &["[64:ff9b::808:808]:0"]),
        0
    );
}

#[test]
fn an_explicit_allow_does_not_open_the_disguised_forms() {
    // allowed-peers covering the server's own addresses opens their non-service ports in
    // the native form only (explicit_allow_on_the_relay_ip); the disguised forms would
    // reach the service ports through a gateway, so they stay refused.
    let policy = PeerPolicy::new(
        vec!["203.0.113.0/24".parse().unwrap(), "::/0".parse().unwrap()],
        vec![],
    );
    let mut world = World::with_policy(dual_stack(), policy);
    let mut client = Client::new(udp_client(5000), "alice", "alice-pass");
    allocate_dual(&mut world, &mut client);
    for form in disguises([203, 0, 113, 10]) {
        assert_eq!(permit(&mut world, &mut client, &[&form]), 403, "{form}");
        let send = send_indication(&client, &form, b"x", false);
        assert_eq!(
            world.feed(client.five_tuple, &send).0,
            ClientOutcome::Nothing,
            "{form}"
        );
    }
    assert_eq!(permit(&mut world, &mut client, &["203.0.113.10:4000"]), 0);
}

#[test]
fn another_clients_relay_is_reachable_in_its_native_form_only() {
    let mut world = World::new(dual_stack());
    let mut alice = Client::new(udp_client(5000), "alice", "alice-pass");
    let mut bob = Client::new(udp_client(5001), "bob", "bob-pass");
    allocate_dual(&mut world, &mut alice);
    let bob_relay = allocate(&mut world, &mut bob);
    assert_eq!(
        permit(&mut world, &mut alice, &[&bob_relay.to_string()]),
        0,
        "native relay address"
    );
    let IpAddr::V4(v4) = bob_relay.ip() else {
        panic!("IPv4 relay expected")
    };
    let mapped = SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), bob_relay.port());
    assert_eq!(permit(&mut world, &mut alice, &[&mapped.to_string()]), 403);
}
