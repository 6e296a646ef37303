//! The HTTP and signaling keys: defaults, ranges, the secret, origins, the ICE host and the
//! listener clash, each problem with its key and reason.

use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};

use super::{check, only_problem, problems};
use crate::cli::{serve_layer, Cli, Command};
use crate::config::{load, Config};

#[test]
fn http_defaults() {
    let config = Config::default();
    assert!(config.http);
    assert_eq!(config.http_listen, ["0.0.0.0:8080".parse().unwrap()]);
    assert_eq!(config.signaling_secret, None);
    assert!(config.allowed_origins.is_empty(), "any origin");
    assert_eq!(config.ice_host, None);
    assert_eq!(config.ice_ttl, Duration::from_secs(86_400));
    assert_eq!(
        (
            config.room_capacity,
            config.max_message_bytes,
            config.message_rate
        ),
        (16, 65_536, 50)
    );
}

#[test]
fn ranges_of_the_http_keys() {
    let cases = [
        ("ice-ttl = 59", "59 is out of range 60..=604800"),
        ("room-capacity = 1", "1 is out of range 2..=1000"),
        (
            "max-message-bytes = 1023",
            "1023 is out of range 1024..=1048576",
        ),
        ("message-rate = 0", "0 is out of range 1..=10000"),
    ];
    for (text, expected) in cases {
        let (line, key, reason) = only_problem(text);
        assert_eq!(line, Some(1), "{text}");
        assert!(text.starts_with(key.as_deref().unwrap()), "{text}");
        assert_eq!(reason, expected, "{text}");
    }
    let config =
        check("ice-ttl = 600\nroom-capacity = 2\nmax-message-bytes = 1024\nmessage-rate = 7")
            .unwrap();
    assert_eq!(config.ice_ttl, Duration::from_secs(600));
    assert_eq!(
        (
            config.room_capacity,
            config.max_message_bytes,
            config.message_rate
        ),
        (2, 1024, 7)
    );
}

#[test]
fn the_signaling_secret_is_long_enough_and_never_printed() {
    let (_, key, reason) = only_problem("signaling-secret = \"hunter2hunter2\"");
    assert_eq!(key.as_deref(), Some("signaling-secret"));
    assert!(reason.contains("shorter than 16 bytes"), "{reason}");
    assert!(!reason.contains("hunter2"), "{reason}");
    let config = check("signaling-secret = \"0123456789abcdef\"").unwrap();
    assert_eq!(
        config.signaling_secret.unwrap().expose(),
        "0123456789abcdef"
    );
    let config = check("signaling-secret = \"\"").unwrap();
    assert_eq!(config.signaling_secret, None, "empty is unset");
}

#[test]
fn allowed_origins_are_stored_as_browsers_send_them() {
    let config =
        check("allowed-origins = [\"HTTPS://App.Example.org:443\", \"http://localhost:8080\"]")
            .unwrap();
    assert_eq!(
        config.allowed_origins,
        ["https://app.example.org", "http://localhost:8080"]
    );
    let (_, key, reason) = only_problem("allowed-origins = [\"https://app.example.org/\"]");
    assert_eq!(key.as_deref(), Some("allowed-origins"));
    assert!(reason.contains("trailing"), "{reason}");
    let (_, _, reason) = only_problem("allowed-origins = [\"app.example.org\"]");
    assert!(reason.contains("SCHEME://HOST[:PORT]"), "{reason}");
    let (_, _, reason) =
        only_problem("allowed-origins = [\"https://a.org\", \"https://A.org:443\"]");
    assert_eq!(reason, "`https://a.org` is listed twice");
}

#[test]
fn ice_host_is_a_host_name_or_an_ip() {
    let host = |text: &str| check(&format!("ice-host = \"{text}\"")).unwrap().ice_host;
    assert_eq!(
        host("Turn.Example.org").as_deref(),
        Some("turn.example.org")
    );
    assert_eq!(host("[2001:db8::1]").as_deref(), Some("2001:db8::1"));
    assert_eq!(host("192.0.2.1").as_deref(), Some("192.0.2.1"));
    assert_eq!(host(""), None, "empty is unset");
    for bad in ["turn://x", "x.org:3478", "a b", "-x.org"] {
        let (_, key, _) = only_problem(&format!("ice-host = \"{bad}\""));
        assert_eq!(key.as_deref(), Some("ice-host"), "{bad}");
    }
}

#[test]
fn http_listeners_need_their_own_addresses() {
    let text = "listen = [\"127.0.0.1:3478\"]\nhttp-listen = [\"127.0.0.1:3478\"]";
    let (line, key, reason) = only_problem(text);
    assert_eq!((line, key.as_deref()), (Some(2), Some("http-listen")));
    assert!(reason.contains("HTTP needs its own"), "{reason}");
    // UDP only on that address: no clash.
    check(&format!("{text}\ntcp = false")).unwrap();
    let found = problems("http-listen = [\"127.0.0.1:80\", \"127.0.0.1:80\"]");
    assert_eq!(
        found[0].reason.to_string(),
        "`127.0.0.1:80` is listed twice"
    );
    assert_eq!(
        only_problem("http-listen = []").2,
        "must list at least one address"
    );
    // With HTTP off the addresses are not checked.
    check("http = false\nhttp-listen = []").unwrap();
}

#[test]
fn http_keys_are_flags_too() {
    let args = [
        "turnpike",
        "serve",
        "--http=false",
        "--http-listen",
        "127.0.0.1:9000,[::1]:9000",
        "--signaling-secret",
        "0123456789abcdef",
        "--allowed-origins",
        "https://a.org,https://b.org",
        "--ice-host",
        "turn.example.org",
        "--ice-ttl",
        "3600",
        "--room-capacity",
        "4",
        "--max-message-bytes",
        "4096",
        "--message-rate",
        "10",
    ];
    let matches = Cli::command().try_get_matches_from(args).unwrap();
    let cli = Cli::from_arg_matches(&matches).unwrap();
    let Command::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    let config = load(None, &serve_layer(cli.log, serve.layer, &matches, None)).unwrap();
    assert!(!config.http);
    assert_eq!(config.http_listen.len(), 2);
    assert!(config.signaling_secret.is_some());
    assert_eq!(config.allowed_origins, ["https://a.org", "https://b.org"]);
    assert_eq!(config.ice_host.as_deref(), Some("turn.example.org"));
    assert_eq!(config.ice_ttl.as_secs(), 3600);
    assert_eq!(
        (
            config.room_capacity,
            config.max_message_bytes,
            config.message_rate
        ),
        (4, 4096, 10)
    );
}

#[test]
fn credential_and_connection_keys() {
    // Issue #10: credentials only to local callers unless open-credentials; 20 per source per
    // minute; a tenth of max-tcp-connections per source.
    let config = Config::default();
    assert!(!config.open_credentials);
    assert_eq!(config.credential_rate, 20);
    assert_eq!(config.http_per_ip_cap(), 1000);
    for (text, expected) in [
        ("credential-rate = 0", "0 is out of range 1..=10000"),
        (
            "http-connections-per-ip = 0",
            "0 is out of range 1..=1000000",
        ),
    ] {
        let (_, key, reason) = only_problem(text);
        assert!(text.starts_with(key.as_deref().unwrap()), "{text}");
        assert_eq!(reason, expected, "{text}");
    }
    let config = check(
        "open-credentials = true\ncredential-rate = 5\nhttp-connections-per-ip = 7\n\
         max-tcp-connections = 100",
    )
    .unwrap();
    assert!(config.open_credentials);
    assert_eq!(config.credential_rate, 5);
    assert_eq!(config.http_per_ip_cap(), 7);
    let small = check("max-tcp-connections = 5").unwrap();
    assert_eq!(small.http_per_ip_cap(), 1, "at least one");
}
