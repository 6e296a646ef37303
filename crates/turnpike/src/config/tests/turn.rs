//! The TURN keys: defaults, ranges, credentials, relay addresses and peers, each problem with
//! its key, line and reason.

use std::net::IpAddr;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use super::{check, only_problem, problems, TempConfig};
use crate::cli::{serve_layer, Cli, Command};
use crate::config::{load, Config};

/// The printed reasons of `text`'s problems, in line order.
fn reasons(text: &str) -> Vec<String> {
    problems(text)
        .iter()
        .map(|p| p.reason.to_string())
        .collect()
}

#[test]
fn defaults_are_safe() {
    let config = Config::default();
    assert!(config.turn);
    assert_eq!(config.realm, "turnpike");
    assert!(config.users.is_empty() && config.rest_secrets.is_empty() && config.user_db.is_none());
    assert!(
        config.allowed_peers.is_empty(),
        "the built-in deny list applies"
    );
    assert_eq!(config.relay_ports, 49152..=65535);
    assert_eq!(config.max_allocation_lifetime, Duration::from_secs(3600));
    assert_eq!((config.user_quota, config.total_quota), (0, 10_000));
    assert_eq!((config.max_permissions, config.max_channels), (128, 128));
    assert_eq!((config.max_bps, config.auth_failures), (None, 10));
    assert_eq!(config.amplification_budget, 4096);
    assert_eq!(config.nonce_lifetime, Duration::from_secs(600));
    // RFC 8656 §9 and §12.
    let lifetimes = (config.permission_lifetime, config.channel_lifetime);
    assert_eq!(
        lifetimes,
        (Duration::from_secs(300), Duration::from_secs(600))
    );
}

#[test]
fn ranges_of_the_turn_keys() {
    let cases = [
        ("nonce-lifetime = 29", "29 is out of range 30..=86400"),
        ("nonce-lifetime = 86401", "86401 is out of range 30..=86400"),
        (
            "max-allocation-lifetime = 599",
            "599 is out of range 600..=86400",
        ),
        ("total-quota = 0", "0 is out of range 1..=10000000"),
        ("max-permissions = 0", "0 is out of range 1..=4096"),
        ("max-channels = 4097", "4097 is out of range 1..=4096"),
        ("auth-failures = 0", "0 is out of range 1..=1000000"),
        (
            "amplification-budget = 100000001",
            "100000001 is out of range 0..=100000000",
        ),
        ("min-port = 1023", "1023 is out of range 1024..=65535"),
        ("permission-lifetime = 0", "0 is out of range 1..=3600"),
        ("channel-lifetime = 3601", "3601 is out of range 1..=3600"),
    ];
    for (text, expected) in cases {
        let (line, key, reason) = only_problem(text);
        assert_eq!(line, Some(1), "{text}");
        assert!(text.starts_with(key.as_deref().unwrap()), "{text}");
        assert_eq!(reason, expected, "{text}");
    }
    let config = check("max-allocation-lifetime = 86400\nuser-quota = 5\nmax-bps = 64000").unwrap();
    assert_eq!(config.max_allocation_lifetime.as_secs(), 86_400);
    assert_eq!((config.user_quota, config.max_bps), (5, Some(64_000)));
    let config = check("permission-lifetime = 5\nchannel-lifetime = 12").unwrap();
    let lifetimes = (config.permission_lifetime, config.channel_lifetime);
    assert_eq!(lifetimes, (Duration::from_secs(5), Duration::from_secs(12)));
}

#[test]
fn the_port_range_is_not_empty() {
    let (_, key, reason) = only_problem("min-port = 60000\nmax-port = 50000");
    assert_eq!(
        (key.as_deref(), reason.as_str()),
        (Some("min-port"), "60000 is above `max-port` 50000")
    );
    let (_, key, reason) = only_problem("max-port = 2000");
    assert_eq!(
        (key.as_deref(), reason.as_str()),
        (Some("max-port"), "2000 is below `min-port` 49152")
    );
    assert_eq!(
        check("min-port = 50000\nmax-port = 50000")
            .unwrap()
            .relay_ports,
        50000..=50000
    );
    let (_, _, reason) = only_problem("max-port = 70000");
    assert!(reason.contains("70000"), "{reason}");
}

#[test]
fn realm_is_not_empty_and_short() {
    assert_eq!(reasons("realm = \"\""), ["must not be empty"]);
    let long = format!("realm = \"{}\"", "r".repeat(128));
    assert_eq!(
        reasons(&long),
        ["is 128 characters; RFC 8489 §14.9 allows fewer than 128 characters"]
    );
    assert_eq!(
        check("realm = \"example.org\"").unwrap().realm,
        "example.org"
    );
}

#[test]
fn rest_secrets_are_long_enough_and_never_printed() {
    let found = reasons("rest-secrets = [\"0123456789abcdef\", \"short\", \"0123456789abcdef\"]");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("secret 2 is shorter than 8 bytes"),
        "{found:?}"
    );
    assert_eq!(found[1], "secret 3 is listed twice");
    assert!(found
        .iter()
        .all(|r| !r.contains("short") || r.contains("shorter")));
    assert_eq!(
        check("rest-secrets = [\"12345678\"]")
            .unwrap()
            .rest_secrets
            .len(),
        1
    );
}

#[test]
fn nonce_secret_is_64_hex_digits() {
    let (line, key, reason) = only_problem("\nnonce-secret = \"not-hex-at-all\"");
    assert_eq!((line, key.as_deref()), (Some(2), Some("nonce-secret")));
    assert!(reason.starts_with("must be 64 hex digits"), "{reason}");
    assert!(
        !reason.contains("not-hex"),
        "the value is not echoed: {reason}"
    );
    let config = check(&format!("nonce-secret = \"{}\"", "0F".repeat(32))).unwrap();
    assert_eq!(config.nonce_secret.map(|s| s.0), Some([0x0f; 32]));
}

#[test]
fn relay_ips_are_specific_and_listed_once() {
    let found =
        reasons("relay-ip = [\"0.0.0.0\", \"192.0.2.1\", \"192.0.2.1\", \"::\", \"ff02::1\"]");
    assert_eq!(
        found,
        [
            "`0.0.0.0` is not a specific address",
            "`192.0.2.1` is listed twice",
            "`::` is not a specific address",
            "`ff02::1` is a multicast address",
        ]
    );
    // Several of one family: each holds one allocation per relay port.
    let config = check("relay-ip = [\"192.0.2.1\", \"2001:db8::1\", \"192.0.2.2\"]").unwrap();
    assert_eq!(config.relay_ip.len(), 3);
}

#[test]
fn an_external_ip_needs_a_single_relay_ip_of_its_family() {
    let text = "relay-ip = [\"10.0.0.7\", \"10.0.0.8\"]\nexternal-ip = [\"203.0.113.7\"]";
    let (_, key, reason) = only_problem(text);
    assert_eq!(key.as_deref(), Some("external-ip"));
    assert!(reason.contains("lists several IPv4 addresses"), "{reason}");
}

#[test]
fn external_ips_are_one_family_each_and_one_per_family() {
    let text =
        "external-ip = [\"203.0.113.1/fd00::1\", \"0.0.0.0\", \"203.0.113.2\", \"203.0.113.3\"]";
    assert_eq!(
        reasons(text),
        [
            "`203.0.113.1/fd00::1` mixes IPv4 and IPv6",
            "`0.0.0.0` is not a specific address",
            "`203.0.113.3` is a second IPv4 entry; list at most one IPv4 and one IPv6 entry",
        ]
    );
    let (_, key, reason) = only_problem("external-ip = [\"nope\"]");
    assert_eq!(key.as_deref(), Some("external-ip"));
    assert!(
        reason.contains("`nope` is not PUBLIC or PUBLIC/PRIVATE"),
        "{reason}"
    );
    let ok = "relay-ip = [\"10.0.0.7\"]\nexternal-ip = [\"203.0.113.7/10.0.0.7\"]";
    assert_eq!(check(ok).unwrap().external_ip.len(), 1);
}

#[test]
fn peers_are_networks_or_addresses() {
    let config =
        check("allowed-peers = [\"10.1.2.3/24\", \"192.168.1.10\", \"fd00::/8\"]").unwrap();
    let nets: Vec<String> = config
        .allowed_peers
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        nets,
        ["10.1.2.0/24", "192.168.1.10/32", "fd00::/8"],
        "host bits cleared"
    );
    assert_eq!(
        reasons("denied-peers = [\"10.0.0.0/8\", \"10.9.9.9/8\"]"),
        ["`10.0.0.0/8` is listed twice"]
    );
    let (line, key, _) = only_problem("turn = true\ndenied-peers = [\"10.0.0.0/33\"]");
    assert_eq!((line, key.as_deref()), (Some(2), Some("denied-peers")));
}

#[test]
fn user_db_must_exist_and_is_relative_to_the_file() {
    let (_, key, reason) = only_problem("user-db = \"missing.db\"");
    assert_eq!(key.as_deref(), Some("user-db"));
    assert!(
        reason.contains("create it with `turnpike user add --db"),
        "{reason}"
    );
    let file = TempConfig::new("user-db = \"users.db\"\n");
    std::fs::write(file.dir().join("users.db"), "").unwrap();
    let config = crate::config::check_file(&file.path).unwrap();
    assert_eq!(config.user_db, Some(file.dir().join("users.db")));
}

#[test]
fn turn_keys_are_flags_too() {
    let args = [
        "turnpike",
        "serve",
        "--turn=false",
        "--realm",
        "example.org",
        "--users",
        "a:1,b:2",
        "--relay-ip",
        "192.0.2.1",
        "--external-ip",
        "203.0.113.1/192.0.2.1",
        "--min-port",
        "50000",
        "--allowed-peers",
        "10.0.0.0/8,fd00::1",
        "--nonce-lifetime",
        "60",
    ];
    let matches = Cli::command().try_get_matches_from(args).unwrap();
    let cli = Cli::from_arg_matches(&matches).unwrap();
    let Command::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    let config = load(None, &serve_layer(cli.log, serve.layer, &matches, None)).unwrap();
    assert!(!config.turn);
    assert_eq!(
        (config.realm.as_str(), config.users.len()),
        ("example.org", 2)
    );
    assert_eq!(config.relay_ip, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        (config.external_ip.len(), config.allowed_peers.len()),
        (1, 2)
    );
    assert_eq!(
        (*config.relay_ports.start(), config.nonce_lifetime.as_secs()),
        (50000, 60)
    );
}
