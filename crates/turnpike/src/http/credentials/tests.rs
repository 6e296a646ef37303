//! Who gets credentials: caller classification and the three issuing modes (issue #10).

use std::time::Duration;

use axum::http::HeaderValue;

use super::*;
use crate::http::MintingSecret;

const SECRET: &[u8] = b"a signaling secret of 32 bytes!!";
const NOW: u64 = 1_900_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn peer(text: &str) -> SocketAddr {
    SocketAddr::new(ip(text), 40_000)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn credentials(issuing: Issuing, per_minute: u32) -> Credentials {
    Credentials {
        settings: IceSettings {
            host: None,
            port: Some(3478),
            udp: true,
            tcp: false,
            tls_port: None,
            secret: MintingSecret::new(Some("rest secret 0123456789".to_owned())),
            ttl: Duration::from_secs(86_400),
            fleet: crate::cluster::fleet::FleetView::default(),
        },
        issuing,
        rate: IssueRate::new(per_minute, 100),
    }
}

#[test]
fn loopback_in_every_form_is_local_others_are_not() {
    let none = HeaderMap::new();
    for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
        assert!(is_local_caller(ip(local), &none), "{local}");
    }
    for remote in [
        "192.0.2.1",
        "10.0.0.1",
        "0.0.0.0",
        "::",
        "2001:db8::1",
        "::ffff:192.0.2.1",
        "::127.0.0.1",
        "fe80::1",
    ] {
        assert!(!is_local_caller(ip(remote), &none), "{remote}");
    }
}

#[test]
fn any_proxy_header_makes_a_loopback_caller_remote() {
    for (name, value) in [
        ("forwarded", "for=192.0.2.1"),
        ("x-forwarded-for", "192.0.2.1"),
        ("x-real-ip", "192.0.2.1"),
        ("X-Forwarded-For", ""),
    ] {
        let map = headers(&[(name, value)]);
        assert!(!is_local_caller(ip("127.0.0.1"), &map), "{name}");
        assert!(!is_local_caller(ip("::1"), &map), "{name}");
    }
    assert!(is_local_caller(
        ip("127.0.0.1"),
        &headers(&[("host", "localhost")])
    ));
}

#[test]
fn the_rate_source_is_the_proxys_client_only_behind_a_local_proxy() {
    let remote = ip("203.0.113.9");
    let map = headers(&[("x-forwarded-for", "198.51.100.1, 192.0.2.7")]);
    // A remote caller's own header is never believed.
    assert_eq!(rate_source(remote, &map), remote);
    // Behind a local proxy: the entry the proxy appended (the last).
    assert_eq!(rate_source(ip("127.0.0.1"), &map), ip("192.0.2.7"));
    let real = headers(&[
        ("x-real-ip", "2001:db8::5"),
        ("x-forwarded-for", "192.0.2.7"),
    ]);
    assert_eq!(rate_source(ip("::1"), &real), ip("2001:db8::5"));
    let forwarded = headers(&[(
        "forwarded",
        "for=192.0.2.60;proto=http, for=\"[2001:db8::7]:4711\"",
    )]);
    assert_eq!(rate_source(ip("127.0.0.1"), &forwarded), ip("2001:db8::7"));
    let garbage = headers(&[("x-forwarded-for", "unknown")]);
    assert_eq!(rate_source(ip("127.0.0.1"), &garbage), ip("127.0.0.1"));
}

#[test]
fn room_names_become_safe_rest_ids() {
    assert_eq!(rest_user_id("lobby"), "lobby");
    assert_eq!(rest_user_id("a:b c\"d\n"), "a_b_c_d_");
    assert_eq!(rest_user_id("Zürich"), "Z_rich");
    assert_eq!(rest_user_id(""), "_");
    assert_eq!(rest_user_id(&"x".repeat(500)).len(), MAX_ID_BYTES);
}

#[test]
fn local_mode_credentials_only_for_local_callers() {
    let c = credentials(Issuing::LocalCallers, 20);
    let t = Instant::now();
    let local = Caller::of(peer("127.0.0.1"), &HeaderMap::new());
    let remote = Caller::of(peer("192.0.2.1"), &HeaderMap::new());
    let proxied = Caller::of(peer("127.0.0.1"), &headers(&[("x-real-ip", "192.0.2.1")]));
    let Decision::Credential(lease) = c.for_request(local, None, NOW, t) else {
        panic!("a local caller gets a credential");
    };
    assert_eq!(lease.expiry_unix, NOW + 86_400);
    assert_eq!(lease.id, "turnpike");
    assert_eq!(c.for_request(remote, None, NOW, t), Decision::StunOnly);
    assert_eq!(c.for_request(proxied, None, NOW, t), Decision::StunOnly);
    let open = credentials(Issuing::Anyone, 20);
    assert!(matches!(
        open.for_request(remote, None, NOW, t),
        Decision::Credential(_)
    ));
}

#[test]
fn token_mode_needs_a_valid_token_and_never_outlives_it() {
    let c = credentials(Issuing::Tokens(SECRET.to_vec()), 20);
    let t = Instant::now();
    let local = Caller::of(peer("127.0.0.1"), &HeaderMap::new());
    assert_eq!(
        c.for_request(local, None, NOW, t),
        Decision::Unauthorized(TokenError::Malformed),
        "loopback is not enough with a secret"
    );
    let expired = token::mint(SECRET, "lobby", NOW);
    assert_eq!(
        c.for_request(local, Some(&expired), NOW, t),
        Decision::Unauthorized(TokenError::Expired)
    );
    let forged = token::mint(b"another secret, also 32 bytes!!!", "lobby", NOW + 60);
    assert_eq!(
        c.for_request(local, Some(&forged), NOW, t),
        Decision::Unauthorized(TokenError::Forged)
    );
    // A token valid 60 s: the credential expires with it, not 24 h later.
    let short = token::mint(SECRET, "team:42", NOW + 60);
    let expected = Lease {
        expiry_unix: NOW + 60,
        id: "team_42".to_owned(),
    };
    assert_eq!(
        c.for_request(local, Some(&short), NOW, t),
        Decision::Credential(expected)
    );
    // A token valid a week: the credential lasts ice-ttl.
    let long = token::mint(SECRET, "lobby", NOW + 7 * 86_400);
    let Decision::Credential(lease) = c.for_request(local, Some(&long), NOW, t) else {
        panic!("valid token");
    };
    assert_eq!(lease.expiry_unix, NOW + 86_400);
}

#[test]
fn credentials_are_rate_limited_per_source() {
    let c = credentials(Issuing::Anyone, 3);
    let t = Instant::now();
    let a = Caller::of(peer("192.0.2.1"), &HeaderMap::new());
    let b = Caller::of(peer("192.0.2.2"), &HeaderMap::new());
    for _ in 0..3 {
        assert!(matches!(
            c.for_request(a, None, NOW, t),
            Decision::Credential(_)
        ));
    }
    assert_eq!(
        c.for_request(a, None, NOW, t),
        Decision::Limited(Duration::from_secs(20))
    );
    assert!(matches!(
        c.for_request(b, None, NOW, t),
        Decision::Credential(_)
    ));
}

#[test]
fn joined_servers_follow_the_same_rules() {
    let stun_only = serde_json::json!([{ "urls": ["stun:h:3478"] }]);
    let servers = |source: &IceSource, grant, unix_now| {
        let ice = source.for_join(grant, unix_now);
        (
            serde_json::from_str::<serde_json::Value>(ice.servers.get()).unwrap(),
            ice.ttl,
        )
    };
    let tokens = Arc::new(credentials(Issuing::Tokens(SECRET.to_vec()), 20));
    let remote = Caller::of(peer("192.0.2.1"), &HeaderMap::new());
    let source = tokens.ice_source(remote, "h".to_owned());
    let grant = Grant {
        room: "lobby",
        expiry_unix: NOW + 100,
    };
    let (list, ttl) = servers(&source, Some(grant), NOW);
    assert_eq!(list[1]["username"], format!("{}:lobby", NOW + 100));
    assert_eq!(ttl, 100, "iceTtl is what the token has left");
    // Resumed after the token expired: no credential.
    assert_eq!(servers(&source, Some(grant), NOW + 100).0, stun_only);
    let local = Arc::new(credentials(Issuing::LocalCallers, 20));
    let source = local.ice_source(remote, "h".to_owned());
    assert_eq!(servers(&source, None, NOW).0, stun_only);
    let home = Caller::of(peer("::1"), &HeaderMap::new());
    let source = local.ice_source(home, "h".to_owned());
    let (list, _) = servers(&source, None, NOW);
    assert_eq!(list[1]["username"], format!("{}:turnpike", NOW + 86_400));
}
