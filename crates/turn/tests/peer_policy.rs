//! The TURN peer-address policy (RFC 8656 §21, §9): built-in special-purpose ranges
//! (RFC 6890 registries), the IPv6 forms that embed IPv4, and the explicit lists.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use turn::policy::{embedded_ipv4, DenyReason, Embedding, PeerPolicy, PeerVerdict};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn policy(allowed: &[&str], denied: &[&str]) -> PeerPolicy {
    PeerPolicy::new(nets(allowed), nets(denied))
}

/// Asserts each `(address, expected verdict, what the case checks)`.
fn assert_verdicts(p: &PeerPolicy, cases: &[(&str, PeerVerdict, &str)]) {
    for (addr, expected, why) in cases {
        assert_eq!(p.check(ip(addr)), *expected, "{addr}: {why}");
    }
}

const ALLOWED: PeerVerdict = PeerVerdict::Allowed;

const fn denied(reason: DenyReason) -> PeerVerdict {
    PeerVerdict::Denied(reason)
}

const EXPLICIT: PeerVerdict = denied(DenyReason::ExplicitlyDenied);

fn embedded(ipv4: &str, embedding: Embedding, reason: &'static DenyReason) -> PeerVerdict {
    PeerVerdict::Denied(DenyReason::EmbeddedIpv4 {
        ipv4: ipv4.parse().unwrap(),
        embedding,
        reason,
    })
}

// 2001:0:4136:e378:… has Teredo server 65.54.227.120 (0x4136e378, public).
fn teredo_public_server() -> Embedding {
    Embedding::Teredo {
        server: Ipv4Addr::new(65, 54, 227, 120),
    }
}

#[test]
fn ipv4_special_purpose_ranges_are_denied_by_default() {
    use DenyReason::*;
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("127.0.0.1", denied(Loopback), "127/8 loopback, RFC 1122"),
            (
                "127.255.255.254",
                denied(Loopback),
                "127/8 loopback, RFC 1122",
            ),
            ("10.0.0.1", denied(Private), "10/8, RFC 1918"),
            ("172.16.0.1", denied(Private), "172.16/12, RFC 1918"),
            (
                "172.31.255.255",
                denied(Private),
                "last of 172.16/12, RFC 1918",
            ),
            ("192.168.1.1", denied(Private), "192.168/16, RFC 1918"),
            (
                "100.64.0.1",
                denied(SharedAddressSpace),
                "100.64/10, RFC 6598",
            ),
            (
                "100.127.255.255",
                denied(SharedAddressSpace),
                "last of 100.64/10",
            ),
            (
                "169.254.169.254",
                denied(LinkLocal),
                "cloud metadata, 169.254/16 RFC 3927",
            ),
            ("169.254.0.1", denied(LinkLocal), "169.254/16, RFC 3927"),
            ("224.0.0.1", denied(Multicast), "224/4, RFC 5771"),
            ("239.255.255.250", denied(Multicast), "SSDP, 224/4 RFC 5771"),
            (
                "255.255.255.255",
                denied(Broadcast),
                "limited broadcast, RFC 919",
            ),
            ("0.0.0.0", denied(Unspecified), "unspecified, RFC 1122"),
            ("0.1.2.3", denied(ThisNetwork), "0/8 this network, RFC 6890"),
            ("240.0.0.1", denied(Reserved), "240/4 reserved, RFC 1112"),
            (
                "255.255.255.254",
                denied(Reserved),
                "240/4 reserved, RFC 1112",
            ),
            (
                "192.0.0.8",
                denied(Reserved),
                "192.0.0.0/24 IETF assignments, RFC 6890",
            ),
            (
                "198.18.0.1",
                denied(Reserved),
                "198.18/15 benchmarking, RFC 2544",
            ),
        ],
    );
}

#[test]
fn ipv4_public_and_boundary_addresses_are_allowed() {
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("8.8.8.8", ALLOWED, "public"),
            ("1.1.1.1", ALLOWED, "public"),
            ("172.32.0.1", ALLOWED, "just past 172.16/12"),
            ("172.15.255.255", ALLOWED, "just before 172.16/12"),
            ("100.128.0.1", ALLOWED, "just past 100.64/10"),
            ("100.63.255.255", ALLOWED, "just before 100.64/10"),
            ("11.0.0.1", ALLOWED, "just past 10/8"),
            ("198.20.0.1", ALLOWED, "just past 198.18/15"),
            ("223.255.255.255", ALLOWED, "just before 224/4"),
            ("1.0.0.0", ALLOWED, "just past 0/8"),
            (
                "192.0.2.1",
                ALLOWED,
                "documentation TEST-NET-1 (RFC 5737): kept allowed",
            ),
            (
                "198.51.100.7",
                ALLOWED,
                "documentation TEST-NET-2 (RFC 5737)",
            ),
            (
                "203.0.113.9",
                ALLOWED,
                "documentation TEST-NET-3 (RFC 5737)",
            ),
        ],
    );
}

#[test]
fn ipv6_special_purpose_ranges_are_denied_by_default() {
    use DenyReason::*;
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("::1", denied(Loopback), "::1 loopback, RFC 4291 §2.5.3"),
            ("::", denied(Unspecified), ":: unspecified, RFC 4291 §2.5.2"),
            ("fe80::1", denied(LinkLocal), "fe80::/10, RFC 4291 §2.5.6"),
            ("febf:ffff::1", denied(LinkLocal), "last of fe80::/10"),
            (
                "fec0::1",
                denied(SiteLocal),
                "fec0::/10 site-local, RFC 3879",
            ),
            ("fc00::1", denied(UniqueLocal), "fc00::/7 ULA, RFC 4193"),
            (
                "fd12:3456::1",
                denied(UniqueLocal),
                "fd00::/8 half of fc00::/7",
            ),
            ("ff02::1", denied(Multicast), "ff00::/8, RFC 4291 §2.7"),
            (
                "ff0e::1",
                denied(Multicast),
                "global-scope multicast is still multicast",
            ),
            (
                "64:ff9b:1::1",
                denied(Nat64LocalUse),
                "64:ff9b:1::/48, RFC 8215",
            ),
            (
                "64:ff9b:1:ffff::808:808",
                denied(Nat64LocalUse),
                "whole /48 denied",
            ),
            (
                "100::1",
                denied(Reserved),
                "100::/64 discard-only, RFC 6666",
            ),
            (
                "2001:2::1",
                denied(Reserved),
                "2001:2::/48 benchmarking, RFC 5180",
            ),
            (
                "2001:10::1",
                denied(Reserved),
                "2001:10::/28 ORCHID, RFC 4843",
            ),
            (
                "2001:20::1",
                denied(Reserved),
                "2001:20::/28 ORCHIDv2, RFC 7343",
            ),
            ("5f00::1", denied(Reserved), "5f00::/16 SRv6 SIDs, RFC 9602"),
        ],
    );
}

#[test]
fn ipv6_public_addresses_are_allowed() {
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("2001:4860:4860::8888", ALLOWED, "public (Google DNS)"),
            ("2606:4700:4700::1111", ALLOWED, "public"),
            (
                "2001:db8::1",
                ALLOWED,
                "documentation 2001:db8::/32 (RFC 3849): kept allowed",
            ),
            ("3fff::1", ALLOWED, "documentation 3fff::/20 (RFC 9637)"),
            (
                "fe00::1",
                ALLOWED,
                "just before fe80::/10 (unassigned, not special)",
            ),
            ("100:0:0:1::1", ALLOWED, "just past 100::/64"),
            ("64:ff9b:2::1", ALLOWED, "just past 64:ff9b:1::/48"),
        ],
    );
}

#[test]
fn ipv4_mapped_is_judged_as_the_ipv4_address() {
    // RFC 4291 §2.5.5.2: ::ffff:a.b.c.d is the IPv4 peer a.b.c.d on a dual-stack socket.
    use DenyReason::*;
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("::ffff:127.0.0.1", denied(Loopback), "mapped 127/8"),
            ("::ffff:10.0.0.1", denied(Private), "mapped RFC 1918"),
            (
                "::ffff:169.254.169.254",
                denied(LinkLocal),
                "mapped cloud metadata",
            ),
            ("::ffff:0.0.0.0", denied(Unspecified), "mapped 0.0.0.0"),
            ("::ffff:8.8.8.8", ALLOWED, "mapped public"),
        ],
    );
}

#[test]
fn ipv6_forms_embedding_a_denied_ipv4_address_are_denied() {
    use DenyReason::*;
    use Embedding::*;
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            (
                "::127.0.0.1",
                embedded("127.0.0.1", Ipv4Compatible, &Loopback),
                "IPv4-compatible ::/96, RFC 4291 §2.5.5.1",
            ),
            (
                "::10.1.2.3",
                embedded("10.1.2.3", Ipv4Compatible, &Private),
                "IPv4-compatible ::/96",
            ),
            (
                "::2",
                embedded("0.0.0.2", Ipv4Compatible, &ThisNetwork),
                "IPv4-compatible ::/96 of 0/8",
            ),
            (
                "::ffff:0:127.0.0.1",
                embedded("127.0.0.1", Ipv4Translated, &Loopback),
                "IPv4-translated ::ffff:0:0:0/96, RFC 2765",
            ),
            (
                "64:ff9b::7f00:1",
                embedded("127.0.0.1", Nat64, &Loopback),
                "NAT64 64:ff9b::/96 of 127.0.0.1, RFC 6052",
            ),
            (
                "64:ff9b::a9fe:a9fe",
                embedded("169.254.169.254", Nat64, &LinkLocal),
                "NAT64 of the cloud metadata address",
            ),
            (
                "2002:7f00:1::1",
                embedded("127.0.0.1", SixToFour, &Loopback),
                "6to4 2002::/16 of 127.0.0.1, RFC 3056",
            ),
            (
                "2002:c0a8:101:5::9",
                embedded("192.168.1.1", SixToFour, &Private),
                "6to4 of 192.168.1.1",
            ),
            (
                // Client 0x80fffffe ^ 0xffffffff = 0x7f000001 = 127.0.0.1.
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                embedded("127.0.0.1", teredo_public_server(), &Loopback),
                "Teredo 2001::/32 client 127.0.0.1, RFC 4380 §4",
            ),
            (
                // Client 0xf5fffffe ^ 0xffffffff = 0x0a000001 = 10.0.0.1.
                "2001:0:4136:e378:8000:63bf:f5ff:fffe",
                embedded("10.0.0.1", teredo_public_server(), &Private),
                "Teredo client 10.0.0.1",
            ),
            (
                // Server 0x0a000001 = 10.0.0.1; client 0xf7f7f7f7 ^ 0xffffffff = 8.8.8.8.
                "2001:0:a00:1:8000:63bf:f7f7:f7f7",
                embedded(
                    "10.0.0.1",
                    Teredo {
                        server: Ipv4Addr::new(10, 0, 0, 1),
                    },
                    &Private,
                ),
                "Teredo server 10.0.0.1, public client: denied for the server",
            ),
        ],
    );
}

#[test]
fn ipv6_forms_embedding_a_public_ipv4_address_are_allowed() {
    assert_verdicts(
        &PeerPolicy::default(),
        &[
            ("::8.8.8.8", ALLOWED, "IPv4-compatible of 8.8.8.8"),
            ("::ffff:0:8.8.8.8", ALLOWED, "IPv4-translated of 8.8.8.8"),
            ("64:ff9b::808:808", ALLOWED, "NAT64 of 8.8.8.8, RFC 6052"),
            ("2002:0808:0808::1", ALLOWED, "6to4 of 8.8.8.8, RFC 3056"),
            (
                "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
                ALLOWED,
                "Teredo client 8.8.8.8 via public server 65.54.227.120",
            ),
            (
                "64:ff9b::c000:201",
                ALLOWED,
                "NAT64 of documentation 192.0.2.1",
            ),
        ],
    );
}

#[test]
fn embedded_ipv4_names_each_form() {
    let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
    assert_eq!(
        embedded_ipv4(v6("::ffff:127.0.0.1")),
        Some((v4("127.0.0.1"), Embedding::Ipv4Mapped))
    );
    assert_eq!(
        embedded_ipv4(v6("::127.0.0.1")),
        Some((v4("127.0.0.1"), Embedding::Ipv4Compatible))
    );
    assert_eq!(
        embedded_ipv4(v6("::ffff:0:10.0.0.1")),
        Some((v4("10.0.0.1"), Embedding::Ipv4Translated))
    );
    assert_eq!(
        embedded_ipv4(v6("64:ff9b::7f00:1")),
        Some((v4("127.0.0.1"), Embedding::Nat64))
    );
    assert_eq!(
        embedded_ipv4(v6("2002:7f00:1::1")),
        Some((v4("127.0.0.1"), Embedding::SixToFour))
    );
    assert_eq!(
        embedded_ipv4(v6("2001:0:4136:e378:8000:63bf:80ff:fffe")),
        Some((v4("127.0.0.1"), teredo_public_server()))
    );
    // :: and ::1 are unspecified and loopback, not IPv4-compatible; local-use NAT64
    // (RFC 8215) has no fixed layout; ordinary addresses embed nothing.
    for s in [
        "::",
        "::1",
        "64:ff9b:1::7f00:1",
        "2001:4860:4860::8888",
        "fe80::1",
    ] {
        assert_eq!(embedded_ipv4(v6(s)), None, "{s}");
    }
}

#[test]
fn deny_reasons_display_a_short_reason() {
    let p = PeerPolicy::default();
    assert_eq!(p.check(ip("127.0.0.1")).to_string(), "denied: loopback");
    assert_eq!(
        p.check(ip("::ffff:0:127.0.0.1")).to_string(),
        "denied: embeds 127.0.0.1 (IPv4-translated), loopback"
    );
    assert_eq!(
        p.check(ip("100.64.0.1")).to_string(),
        "denied: shared address space (RFC 6598, CGNAT)"
    );
    assert_eq!(
        DenyReason::ExplicitlyDenied.to_string(),
        "explicitly denied by configuration"
    );
    assert_eq!(p.check(ip("8.8.8.8")).to_string(), "allowed");
    assert!(p.check(ip("8.8.8.8")).is_allowed());
    assert!(!p.check(ip("::1")).is_allowed());
}

#[test]
fn longest_matching_prefix_decides() {
    // allowed-peers = ["10.0.0.0/8"], denied-peers = ["10.0.0.1/32"].
    let p = policy(&["10.0.0.0/8"], &["10.0.0.1/32"]);
    assert_verdicts(
        &p,
        &[
            ("10.0.0.1", EXPLICIT, "/32 deny is longer than /8 allow"),
            (
                "10.0.0.2",
                ALLOWED,
                "/8 allow overrides the RFC 1918 built-in",
            ),
            ("10.255.255.255", ALLOWED, "/8 allow"),
            (
                "172.16.0.1",
                denied(DenyReason::Private),
                "not listed: built-in",
            ),
        ],
    );
    // The other way round: a longer allow inside a shorter deny.
    let p = policy(&["8.8.8.0/24"], &["8.8.0.0/16"]);
    assert_verdicts(
        &p,
        &[
            ("8.8.8.8", ALLOWED, "/24 allow is longer than /16 deny"),
            ("8.8.4.4", EXPLICIT, "/16 deny"),
            ("8.9.0.1", ALLOWED, "not listed, public"),
        ],
    );
    // IPv6 entries follow the same rule.
    let p = policy(&["fd00::/8"], &["fd00:1::/32"]);
    assert_verdicts(
        &p,
        &[
            ("fd00::1", ALLOWED, "/8 allow overrides the ULA built-in"),
            ("fd00:1::1", EXPLICIT, "/32 deny is longer"),
            (
                "fc00::1",
                denied(DenyReason::UniqueLocal),
                "not listed: built-in",
            ),
        ],
    );
}

#[test]
fn a_prefix_in_both_lists_denies() {
    let p = policy(
        &["203.0.113.0/24", "2001:db8::/32"],
        &["203.0.113.0/24", "2001:db8::/32"],
    );
    assert_verdicts(
        &p,
        &[
            ("203.0.113.5", EXPLICIT, "tie → deny"),
            ("2001:db8::5", EXPLICIT, "tie → deny"),
        ],
    );
    // Host bits are ignored, so these are the same prefix too.
    let p = policy(&["198.51.100.7/24"], &["198.51.100.0/24"]);
    assert_eq!(p.check(ip("198.51.100.1")), EXPLICIT);
}

#[test]
fn an_explicit_deny_applies_to_public_addresses() {
    let p = policy(&[], &["8.8.8.8/32", "2001:4860::/32"]);
    assert_verdicts(
        &p,
        &[
            ("8.8.8.8", EXPLICIT, "listed"),
            ("8.8.4.4", ALLOWED, "not listed"),
            ("2001:4860:4860::8888", EXPLICIT, "listed /32"),
            (
                "::ffff:8.8.8.8",
                EXPLICIT,
                "mapped form of a listed IPv4 address",
            ),
            (
                "64:ff9b::808:808",
                EXPLICIT,
                "NAT64 of a listed IPv4 address",
            ),
            ("2002:808:808::1", EXPLICIT, "6to4 of a listed IPv4 address"),
            (
                "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
                EXPLICIT,
                "Teredo client listed",
            ),
        ],
    );
}

#[test]
fn an_explicit_allow_of_one_loopback_address_overrides_the_built_in() {
    let p = policy(&["127.0.0.1/32"], &[]);
    assert_verdicts(
        &p,
        &[
            ("127.0.0.1", ALLOWED, "explicit /32 allow"),
            ("::ffff:127.0.0.1", ALLOWED, "the same peer, IPv4-mapped"),
            (
                "127.0.0.2",
                denied(DenyReason::Loopback),
                "only the /32 is allowed",
            ),
            (
                "::1",
                denied(DenyReason::Loopback),
                "IPv6 loopback is another address",
            ),
        ],
    );
    // Written as an IPv4-mapped entry, it names the same peer.
    let p = policy(&["::ffff:127.0.0.1/128"], &[]);
    assert_eq!(p.check(ip("127.0.0.1")), ALLOWED);
    assert_eq!(p.check(ip("::ffff:127.0.0.1")), ALLOWED);
}

#[test]
fn an_explicit_ipv4_allow_covers_the_ipv6_forms_embedding_it() {
    // Decision: explicit lists are matched against the embedded IPv4 address too.
    let p = policy(&["127.0.0.0/8"], &[]);
    assert_verdicts(
        &p,
        &[
            ("127.0.0.1", ALLOWED, "explicit /8"),
            ("::ffff:127.0.0.1", ALLOWED, "IPv4-mapped"),
            ("::127.0.0.1", ALLOWED, "IPv4-compatible"),
            ("::ffff:0:127.0.0.1", ALLOWED, "IPv4-translated"),
            ("64:ff9b::7f00:1", ALLOWED, "NAT64"),
            ("2002:7f00:1::1", ALLOWED, "6to4"),
            (
                "2001:0:4136:e378:8000:63bf:80ff:fffe",
                ALLOWED,
                "Teredo client",
            ),
            (
                "::1",
                denied(DenyReason::Loopback),
                "IPv6 loopback embeds nothing",
            ),
            (
                "64:ff9b:1::7f00:1",
                denied(DenyReason::Nat64LocalUse),
                "no fixed layout",
            ),
        ],
    );
}

#[test]
fn an_explicit_deny_on_either_side_of_an_embedding_wins() {
    // IPv6 entry denies, embedded IPv4 entry allows: denied.
    let p = policy(&["127.0.0.0/8"], &["2002::/16"]);
    assert_eq!(p.check(ip("2002:7f00:1::1")), EXPLICIT);
    assert_eq!(p.check(ip("127.0.0.1")), ALLOWED);
    // IPv6 entry allows, embedded IPv4 entry denies: denied.
    let p = policy(&["2002::/16"], &["10.0.0.0/8"]);
    assert_eq!(p.check(ip("2002:a00:1::1")), EXPLICIT);
    // An IPv6 allow alone overrides the built-in verdict on what it embeds.
    assert_eq!(p.check(ip("2002:7f00:1::1")), ALLOWED);
}

#[test]
fn short_ipv6_entries_do_not_reach_ipv4_mapped_peers() {
    // `::/0` names all IPv6 peers; an IPv4-mapped address is an IPv4 peer.
    let p = policy(&[], &["::/0"]);
    assert_verdicts(
        &p,
        &[
            ("2001:4860:4860::8888", EXPLICIT, "every IPv6 peer"),
            ("::ffff:8.8.8.8", ALLOWED, "an IPv4 peer"),
            ("8.8.8.8", ALLOWED, "an IPv4 peer"),
        ],
    );
    let p = policy(&["::/0"], &[]);
    assert_eq!(
        p.check(ip("::ffff:127.0.0.1")),
        denied(DenyReason::Loopback)
    );
    assert_eq!(p.check(ip("::1")), ALLOWED, "explicitly allowed, as asked");
}

#[test]
fn check_does_not_allocate() {
    let p = policy(
        &["10.0.0.0/8", "fd00::/8", "127.0.0.1/32"],
        &["10.0.0.1/32", "8.8.8.8/32", "2001:4860::/32"],
    );
    let peers: Vec<IpAddr> = [
        "10.0.0.1",
        "8.8.4.4",
        "127.0.0.1",
        "::ffff:10.0.0.1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2002:7f00:1::1",
        "64:ff9b::808:808",
        "fe80::1",
        "2001:4860:4860::8888",
    ]
    .iter()
    .map(|s| ip(s))
    .collect();
    let mut allowed = 0;
    let info = allocation_counter::measure(|| {
        for _ in 0..100 {
            for peer in &peers {
                allowed += usize::from(p.check(*peer).is_allowed());
            }
        }
    });
    assert_eq!(info.count_total, 0, "check allocated");
    assert!(allowed > 0);
}

/// Random explicit lists: IPv4 entries, IPv6 entries, and IPv4-mapped IPv6 entries.
fn any_policy() -> impl Strategy<Value = PeerPolicy> {
    let v4 = (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::new(IpAddr::V4(Ipv4Addr::from_bits(a)), l).unwrap());
    let v6 = (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::new(IpAddr::V6(Ipv6Addr::from_bits(a)), l).unwrap());
    let mapped = (any::<u32>(), 96u8..=128).prop_map(|(a, l)| {
        IpNet::new(IpAddr::V6(Ipv4Addr::from_bits(a).to_ipv6_mapped()), l).unwrap()
    });
    let net = prop_oneof![v4, v6, mapped];
    (
        prop::collection::vec(net.clone(), 0..8),
        prop::collection::vec(net, 0..8),
    )
        .prop_map(|(allowed, denied)| PeerPolicy::new(allowed, denied))
}

proptest! {
    #[test]
    fn check_never_panics(p in any_policy(), v4 in any::<u32>(), v6 in any::<u128>()) {
        let _ = p.check(IpAddr::V4(Ipv4Addr::from_bits(v4)));
        let _ = p.check(IpAddr::V6(Ipv6Addr::from_bits(v6)));
        let _ = PeerPolicy::default().check(IpAddr::V6(Ipv6Addr::from_bits(v6)));
    }

    #[test]
    fn ipv4_mapped_gets_the_verdict_of_its_ipv4_address(p in any_policy(), v4 in any::<u32>()) {
        // RFC 4291 §2.5.5.2: the mapped form is the same peer.
        let v4 = Ipv4Addr::from_bits(v4);
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(p.check(mapped), p.check(IpAddr::V4(v4)));
        prop_assert_eq!(
            PeerPolicy::default().check(mapped),
            PeerPolicy::default().check(IpAddr::V4(v4))
        );
    }

    #[test]
    fn tunnelled_forms_are_allowed_iff_their_ipv4_address_is(v4 in any::<u32>(), suffix in any::<u64>()) {
        // NAT64 (RFC 6052) and 6to4 (RFC 3056) reach the embedded IPv4 address.
        let p = PeerPolicy::default();
        let expected = p.check(IpAddr::V4(Ipv4Addr::from_bits(v4))).is_allowed();
        let nat64 = (0x0064_ff9b_u128 << 96) | u128::from(v4);
        let six_to_four = (0x2002_u128 << 112) | (u128::from(v4) << 80) | u128::from(suffix);
        for bits in [nat64, six_to_four] {
            let peer = IpAddr::V6(Ipv6Addr::from_bits(bits));
            prop_assert_eq!(p.check(peer).is_allowed(), expected, "{}", peer);
        }
    }
}

/// A policy that knows the host's subnets, as the binary builds it from its interfaces.
fn with_subnets(subnets: &[&str]) -> PeerPolicy {
    PeerPolicy::default().with_host_subnets(subnets.iter().map(|s| s.parse().unwrap()))
}

#[test]
fn directed_broadcast_of_host_subnets_is_denied_in_every_form() {
    // RFC 919 §7 / RFC 1812 §5.3.5.2: {network, -1} is the subnet's directed broadcast;
    // RFC 1122 §3.3.6: hosts accept {network, 0} as a broadcast too. 198.51.100.0/24 stands
    // for a public subnet of the host, which the built-in list would otherwise allow.
    use DenyReason::DirectedBroadcast;
    let p = with_subnets(&["198.51.100.7/24", "203.0.113.9/31", "10.1.0.1/16"]);
    assert_verdicts(
        &p,
        &[
            ("198.51.100.255", denied(DirectedBroadcast), "broadcast"),
            (
                "198.51.100.0",
                denied(DirectedBroadcast),
                "network (4.2BSD)",
            ),
            (
                "::ffff:198.51.100.255",
                denied(DirectedBroadcast),
                "IPv4-mapped, RFC 4291 §2.5.5.2",
            ),
            (
                "64:ff9b::c633:64ff",
                denied(DirectedBroadcast),
                "NAT64, RFC 6052 §2.1",
            ),
            (
                "2002:c633:64ff::1",
                denied(DirectedBroadcast),
                "6to4, RFC 3056 §2",
            ),
            (
                "2001:0:4136:e378:8000:63bf:39cc:9b00",
                denied(DirectedBroadcast),
                "Teredo client (obfuscated), RFC 4380 §4",
            ),
            (
                "2001:db8::5efe:c633:64ff",
                denied(DirectedBroadcast),
                "ISATAP, RFC 5214 §6.1",
            ),
            ("10.1.255.255", denied(DirectedBroadcast), "private subnet"),
            ("198.51.100.254", ALLOWED, "a host of the subnet"),
            ("198.51.101.255", ALLOWED, "another /24's last address"),
            ("203.0.113.9", ALLOWED, "RFC 3021: a /31 has no broadcast"),
            ("203.0.113.8", ALLOWED, "RFC 3021: nor a network address"),
        ],
    );
}

#[test]
fn broadcast_addresses_are_denied_whatever_the_explicit_lists_say() {
    // A broadcast address is never one peer: allowed-peers cannot open it.
    let p =
        policy(&["0.0.0.0/0", "::/0"], &[]).with_host_subnets(["198.51.100.7/24".parse().unwrap()]);
    assert_verdicts(
        &p,
        &[
            (
                "255.255.255.255",
                denied(DenyReason::Broadcast),
                "RFC 919 limited broadcast",
            ),
            (
                "64:ff9b::ffff:ffff",
                denied(DenyReason::Broadcast),
                "limited broadcast behind NAT64",
            ),
            (
                "198.51.100.255",
                denied(DenyReason::DirectedBroadcast),
                "directed broadcast",
            ),
            ("198.51.100.1", ALLOWED, "explicitly allowed host"),
        ],
    );
}

#[test]
fn isatap_forms_embedding_a_denied_ipv4_address_are_denied() {
    // RFC 5214 §6.1: a host with an ISATAP interface tunnels to the embedded IPv4 address.
    assert_eq!(
        PeerPolicy::default().check(ip("2001:db8::5efe:7f00:1")),
        embedded("127.0.0.1", Embedding::Isatap, &DenyReason::Loopback)
    );
    assert_eq!(
        PeerPolicy::default().check(ip("2001:db8::200:5efe:c000:221")),
        ALLOWED,
        "ISATAP embedding a public address"
    );
}
