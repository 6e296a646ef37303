//! The operations keys: alternate-server, tls-alternate-server, tls-alternate-domain,
//! drain-timeout, admin-token, admin-listen.

use std::time::Duration;

use super::{check, only_problem};

#[test]
fn operations_keys_are_read() {
    let config = check(
        "alternate-server = [\"192.0.2.20:3478\", \"[2001:db8::20]:3478\"]\n\
         drain-timeout = 0\n\
         admin-token = \"0123456789abcdef0123\"\n\
         admin-listen = \"127.0.0.1:9700\"\n",
    )
    .unwrap();
    assert_eq!(config.alternate_server.len(), 2);
    assert_eq!(config.drain_timeout, Duration::ZERO);
    assert_eq!(
        config.admin_token.as_ref().map(|t| t.expose().len()),
        Some(20)
    );
    assert_eq!(config.admin_listen.port(), 9700);
    // Empty: no admin API.
    assert_eq!(check("admin-token = \"\"\n").unwrap().admin_token, None);
}

#[test]
fn alternate_server_rules() {
    let (line, key, why) = only_problem("alternate-server = [\"0.0.0.0:3478\"]\n");
    assert_eq!((line, key.as_deref()), (Some(1), Some("alternate-server")));
    assert!(why.contains("IP and port"), "{why}");
    let (_, _, why) =
        only_problem("alternate-server = [\"192.0.2.20:3478\", \"192.0.2.21:3478\"]\n");
    assert!(why.contains("one address per family"), "{why}");
    let (_, _, why) =
        only_problem("alternate-server = [\"192.0.2.20:3478\", \"192.0.2.20:3478\"]\n");
    assert!(why.contains("listed twice"), "{why}");
    // The same rules, named by their own key, for the TLS/DTLS alternates.
    let (_, key, why) = only_problem("tls-alternate-server = [\"192.0.2.20:0\"]\n");
    assert_eq!(key.as_deref(), Some("tls-alternate-server"));
    assert!(why.contains("IP and port"), "{why}");
    let config = check("tls-alternate-server = [\"192.0.2.20:5349\"]\n").unwrap();
    assert_eq!(
        config.tls_alternate_server,
        ["192.0.2.20:5349".parse().unwrap()]
    );
}

// RFC 8489 §14.16: a DNS name (A-labels for international names), never an IP address or a
// wildcard; the error names the key and the rule broken.
#[test]
fn tls_alternate_domain_is_a_dns_name() {
    let config = check("tls-alternate-domain = \"turn2.example.org\"\n").unwrap();
    let name = config.tls_alternate_domain.unwrap();
    assert_eq!(name.as_str(), "turn2.example.org");
    assert_eq!(
        check("tls-alternate-domain = \"\"\n")
            .unwrap()
            .tls_alternate_domain,
        None
    );
    assert_eq!(check("").unwrap().tls_alternate_domain, None);
    for (value, rule) in [
        ("192.0.2.20", "IP address"),
        ("*.example.org", "character"),
        ("turn..example.org", "empty label"),
    ] {
        let (line, key, why) = only_problem(&format!("tls-alternate-domain = \"{value}\"\n"));
        assert_eq!(
            (line, key.as_deref()),
            (Some(1), Some("tls-alternate-domain"))
        );
        assert!(why.contains(rule), "{value}: {why}");
    }
}

#[test]
fn drain_timeout_is_bounded() {
    let (_, key, why) = only_problem("drain-timeout = 86401\n");
    assert_eq!(key.as_deref(), Some("drain-timeout"));
    assert!(why.contains("0..=86400"), "{why}");
}

#[test]
fn admin_token_rules_never_quote_the_token() {
    for token in ["short-secret", "has a space in it, long enough"] {
        let (_, key, why) = only_problem(&format!("admin-token = \"{token}\"\n"));
        assert_eq!(key.as_deref(), Some("admin-token"));
        assert!(!why.contains(token), "{why}");
    }
}

#[test]
fn admin_listen_cannot_be_another_listener() {
    let (_, key, why) = only_problem(
        "admin-token = \"0123456789abcdef0123\"\n\
         http-listen = [\"127.0.0.1:9700\"]\n\
         admin-listen = \"127.0.0.1:9700\"\n",
    );
    assert_eq!(key.as_deref(), Some("admin-listen"));
    assert!(why.contains("127.0.0.1:9700"), "{why}");
    // Without a token nothing listens: no clash.
    assert!(
        check("http-listen = [\"127.0.0.1:9700\"]\nadmin-listen = \"127.0.0.1:9700\"\n").is_ok()
    );
}
