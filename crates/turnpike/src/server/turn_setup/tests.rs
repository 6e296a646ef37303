//! Relay address detection, 1:1 NAT mappings, users and the assembled settings, with the
//! host's interfaces given by the test.

use std::net::IpAddr;

use turn::auth::StaticUser;

use super::{external_ips, own_ips, relay_ips, service_ports, settings_from, RelayIps};
use crate::config::tests::{check, problems};
use crate::config::{Config, ExternalIp};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn ips(texts: &[&str]) -> Vec<IpAddr> {
    texts.iter().map(|text| ip(text)).collect()
}

/// A host with loopback, link-local and two usable addresses.
fn host() -> Vec<IpAddr> {
    ips(&[
        "127.0.0.1",
        "::1",
        "169.254.3.4",
        "fe80::1",
        "10.0.0.5",
        "192.0.2.9",
    ])
}

fn relay(text: &str, interfaces: &[IpAddr]) -> RelayIps {
    relay_ips(&check(text).unwrap(), interfaces)
}

#[test]
fn the_single_specific_listen_ipv4_is_the_relay_ip() {
    let found = relay(
        "listen = [\"192.0.2.1:3478\", \"192.0.2.1:3479\", \"[::]:3478\"]",
        &host(),
    );
    assert_eq!((found.v4, found.v6), (Some(ip("192.0.2.1")), None));
    assert!(!found.loopback_fallback);
}

#[test]
fn otherwise_the_first_usable_interface_ipv4() {
    for listen in [
        "listen = [\"0.0.0.0:3478\"]",
        "listen = [\"192.0.2.1:3478\", \"192.0.2.2:3478\"]",
        "listen = [\"0.0.0.0:3478\", \"192.0.2.1:3479\"]",
        "listen = [\"[::1]:3478\"]",
    ] {
        let found = relay(listen, &host());
        assert_eq!(found.v4, Some(ip("10.0.0.5")), "{listen}");
        assert_eq!(found.v6, None, "no IPv6 relay unless configured");
    }
}

#[test]
fn else_loopback_with_a_warning_flag() {
    let found = relay(
        "",
        &ips(&["127.0.0.1", "169.254.0.1", "::1", "2001:db8::1"]),
    );
    assert_eq!(found.v4, Some(ip("127.0.0.1")));
    assert!(found.loopback_fallback);
    assert!(relay("", &[]).loopback_fallback);
}

#[test]
fn configured_relay_ips_are_used_as_given() {
    let found = relay("relay-ip = [\"2001:db8::1\"]", &host());
    assert_eq!((found.v4, found.v6), (None, Some(ip("2001:db8::1"))));
    let found = relay("relay-ip = [\"2001:db8::1\", \"192.0.2.7\"]", &host());
    assert_eq!(
        (found.v4, found.v6),
        (Some(ip("192.0.2.7")), Some(ip("2001:db8::1")))
    );
    assert!(found.more.is_empty());
    // Several of a family: the first is the main one, the others follow in order.
    let found = relay(
        "relay-ip = [\"192.0.2.7\", \"2001:db8::1\", \"192.0.2.8\", \"2001:db8::2\"]",
        &host(),
    );
    assert_eq!(
        (found.v4, found.v6),
        (Some(ip("192.0.2.7")), Some(ip("2001:db8::1")))
    );
    assert_eq!(found.more, [ip("192.0.2.8"), ip("2001:db8::2")]);
}

#[test]
fn the_private_part_of_external_ip_is_the_relay_ip() {
    let config =
        check("external-ip = [\"203.0.113.7/10.0.0.7\", \"2001:db8::7/fd00::7\"]").unwrap();
    let settings = settings_from(&config, &host(), Vec::new(), [0; 32]).unwrap();
    assert_eq!(settings.turn.relay_v4, Some(ip("10.0.0.7")));
    assert_eq!(settings.turn.external_v4, Some(ip("203.0.113.7")));
    assert_eq!(settings.turn.relay_v6, Some(ip("fd00::7")));
    assert_eq!(settings.turn.external_v6, Some(ip("2001:db8::7")));
}

#[test]
fn a_public_only_external_ip_maps_the_relay_ip_of_its_family() {
    let config = check("external-ip = [\"203.0.113.7\"]").unwrap();
    let settings = settings_from(&config, &host(), Vec::new(), [0; 32]).unwrap();
    assert_eq!(settings.turn.relay_v4, Some(ip("10.0.0.5")));
    assert_eq!(settings.turn.external_v4, Some(ip("203.0.113.7")));
}

#[test]
fn external_ip_must_match_a_relay_ip() {
    let entry = |text: &str| -> ExternalIp { text.parse().unwrap() };
    let error = external_ips(&[entry("203.0.113.7/10.0.0.7")], Some(ip("10.0.0.5")), None);
    let error = format!("{:#}", error.unwrap_err());
    assert!(
        error.contains("`10.0.0.7` is not the IPv4 relay address `10.0.0.5`"),
        "{error}"
    );
    assert!(external_ips(&[entry("203.0.113.7")], None, Some(ip("::1"))).is_err());
    let mapped = external_ips(&[entry("2001:db8::7")], None, Some(ip("fd00::1"))).unwrap();
    assert_eq!(mapped, (None, Some(ip("2001:db8::7"))));

    // With configured relay IPs the same is found by `config check`, with the key.
    let text = "relay-ip = [\"10.0.0.5\"]\nexternal-ip = [\"203.0.113.7/10.0.0.7\"]";
    let found = problems(text);
    assert_eq!(found[0].key.as_deref(), Some("external-ip"), "{found:?}");
    // IPv6 is never detected, so an IPv6 entry without PRIVATE needs `relay-ip`.
    let found = problems("external-ip = [\"2001:db8::7\"]");
    assert!(
        found[0]
            .reason
            .to_string()
            .contains("no IPv6 relay address"),
        "{found:?}"
    );
}

#[test]
fn users_are_parsed_into_keys_for_the_realm() {
    let config = check("realm = \"example.org\"\nusers = [\"alice:pa:ss\", \"bob:x\"]").unwrap();
    assert_eq!(
        config.users,
        [
            StaticUser::from_password("alice", "example.org", "pa:ss"),
            StaticUser::from_password("bob", "example.org", "x"),
        ]
    );
    let text = "users = [\"nocolon\", \":secret1\", \"carol:\", \"bob:x\", \"bob:secret2\"]";
    let found: Vec<String> = problems(text).iter().map(ToString::to_string).collect();
    let expected = [
        "entry 1 is not NAME:PASSWORD",
        "entry 2: the user name is empty",
        "entry 3 (`carol`): the password is empty",
        "`bob` is listed twice",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (found, expected) in found.iter().zip(expected) {
        assert!(found.ends_with(expected), "{found}");
        assert!(!found.contains("secret"), "a password is printed: {found}");
    }
}

#[test]
fn settings_carry_every_key() {
    let text = [
        "realm = \"example.org\"",
        "users = [\"alice:pw\"]",
        "rest-secrets = [\"0123456789abcdef\"]",
        "nonce-lifetime = 120",
        "min-port = 50000",
        "max-port = 50100",
        "max-allocation-lifetime = 1800",
        "user-quota = 3",
        "total-quota = 50",
        "max-bps = 0",
        "max-permissions = 10",
        "max-channels = 20",
        "auth-failures = 4",
        "software = \"tp\"",
        "allowed-peers = [\"10.1.2.0/24\"]",
        "denied-peers = [\"203.0.113.0/24\"]",
    ]
    .join("\n");
    let config = check(&text).unwrap();
    let db = vec![StaticUser::from_password("dave", "example.org", "pw2")];
    let settings = settings_from(&config, &host(), db, [9; 32]).unwrap();
    let turn = &settings.turn;
    assert_eq!(turn.port_range, 50000..=50100);
    assert_eq!(
        (turn.default_lifetime.as_secs(), turn.max_lifetime.as_secs()),
        (600, 1800)
    );
    assert_eq!((turn.user_quota, turn.total_quota), (3, 50));
    assert_eq!((turn.max_permissions, turn.max_channels), (10, 20));
    assert_eq!(
        (turn.bandwidth, turn.software.as_deref()),
        (None, Some("tp"))
    );
    let auth = &settings.auth;
    assert_eq!(
        (auth.realm.as_str(), auth.nonce_secret),
        ("example.org", [9; 32])
    );
    assert_eq!(
        (auth.nonce_lifetime.as_secs(), auth.failures_allowed),
        (120, 4)
    );
    let names: Vec<&str> = auth.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "dave"]);
    assert_eq!(auth.rest_secrets, ["0123456789abcdef"]);
    // RFC 8656 §21.1.1 / the explicit lists: allowed 10.1.2.0/24 opens only that network.
    assert!(settings.policy.check(ip("10.1.2.3")).is_allowed());
    assert!(!settings.policy.check(ip("10.1.3.1")).is_allowed());
    assert!(!settings.policy.check(ip("203.0.113.5")).is_allowed());
    assert!(settings.policy.check(ip("198.51.100.1")).is_allowed());

    let capped = check("max-bps = 125000").unwrap();
    let settings = settings_from(&capped, &host(), Vec::new(), [0; 32]).unwrap();
    assert_eq!(settings.turn.bandwidth, Some(125_000));
}

#[test]
fn the_nonce_secret_is_configured_or_random() {
    let config = check(&format!("nonce-secret = \"{}\"", "ab".repeat(32))).unwrap();
    let settings = settings_from(&config, &[], Vec::new(), [1; 32]).unwrap();
    assert_eq!(settings.auth.nonce_secret, [0xab; 32]);
    let settings = settings_from(&Config::default(), &[], Vec::new(), [1; 32]).unwrap();
    assert_eq!(settings.auth.nonce_secret, [1; 32]);
}

#[test]
fn a_user_in_both_the_file_and_the_database_is_an_error() {
    let config = check("users = [\"alice:pw\"]").unwrap();
    let db = vec![StaticUser::from_password("alice", "turnpike", "other")];
    let error = settings_from(&config, &[], db, [0; 32])
        .unwrap_err()
        .to_string();
    assert!(error.contains("user `alice` is defined both"), "{error}");
}

#[test]
fn own_addresses_and_service_ports() {
    let config = check("listen = [\"0.0.0.0:3478\", \"[::1]:3479\", \"127.0.0.1:0\"]").unwrap();
    let own = own_ips(
        &config,
        &host(),
        &[Some(ip("10.0.0.5")), None, Some(ip("203.0.113.7"))],
    );
    // The IPv4 wildcard answers on every IPv4 interface address; IPv6 only on ::1.
    assert_eq!(
        own,
        ips(&[
            "10.0.0.5",
            "127.0.0.1",
            "169.254.3.4",
            "192.0.2.9",
            "203.0.113.7",
            "::1"
        ])
    );
    assert_eq!(service_ports(&config), [3478, 3479]);
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let text = "users = [\"alice:hunter2pw\"]\nrest-secrets = [\"restsecret123\"]\n";
    let config = check(&format!("{text}nonce-secret = \"{}\"", "cd".repeat(32))).unwrap();
    let settings = settings_from(&config, &[], Vec::new(), [0; 32]).unwrap();
    for printed in [format!("{config:?}"), format!("{settings:?}")] {
        for secret in ["hunter2pw", "restsecret123", "cdcd", "205, 205"] {
            assert!(!printed.contains(secret), "`{secret}` in {printed}");
        }
    }
}
