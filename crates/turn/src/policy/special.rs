//! The built-in deny list: special-purpose ranges (RFC 6890 and the IANA IPv4/IPv6
//! Special-Purpose Address Registries) a relay must not reach unless told to.
//!
//! Each table is scanned in order and the first containing range names the reason, so a
//! more specific range comes before the range that contains it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::DenyReason;

/// One built-in IPv4 range.
struct Range4 {
    network: u32,
    mask: u32,
    reason: DenyReason,
}

/// One built-in IPv6 range.
struct Range6 {
    network: u128,
    mask: u128,
    reason: DenyReason,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u32, reason: DenyReason) -> Range4 {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Range4 {
        network: Ipv4Addr::new(a, b, c, d).to_bits(),
        mask,
        reason,
    }
}

const fn v6(ip: Ipv6Addr, len: u32, reason: DenyReason) -> Range6 {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    Range6 {
        network: ip.to_bits(),
        mask,
        reason,
    }
}

const fn w(a: u16, b: u16, c: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)
}

use DenyReason::{
    Broadcast, LinkLocal, Loopback, Multicast, Nat64LocalUse, Private, Reserved,
    SharedAddressSpace, SiteLocal, ThisNetwork, UniqueLocal, Unspecified,
};

/// Built-in IPv4 ranges. Documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) are
/// deliberately absent: unroutable but harmless, and tests use them as public peers.
static IPV4: [Range4; 13] = [
    v4(0, 0, 0, 0, 32, Unspecified),           // RFC 1122 §3.2.1.3 (a)
    v4(255, 255, 255, 255, 32, Broadcast),     // RFC 919 / RFC 8190 limited broadcast
    v4(0, 0, 0, 0, 8, ThisNetwork),            // RFC 791, RFC 6890 §2.2.2 "this network"
    v4(10, 0, 0, 0, 8, Private),               // RFC 1918
    v4(100, 64, 0, 0, 10, SharedAddressSpace), // RFC 6598 (carrier-grade NAT)
    v4(127, 0, 0, 0, 8, Loopback),             // RFC 1122 §3.2.1.3 (g)
    v4(169, 254, 0, 0, 16, LinkLocal),         // RFC 3927, incl. cloud metadata 169.254.169.254
    v4(172, 16, 0, 0, 12, Private),            // RFC 1918
    v4(192, 0, 0, 0, 24, Reserved),            // RFC 6890 §2.2.2 IETF protocol assignments
    v4(192, 168, 0, 0, 16, Private),           // RFC 1918
    v4(198, 18, 0, 0, 15, Reserved),           // RFC 2544 benchmarking
    v4(224, 0, 0, 0, 4, Multicast),            // RFC 5771
    v4(240, 0, 0, 0, 4, Reserved),             // RFC 1112 §4 reserved for future use
];

/// Built-in IPv6 ranges. Embedding prefixes (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4,
/// Teredo…) are not here: they are judged by the IPv4 address they carry. Documentation
/// `2001:db8::/32` and `3fff::/20` are allowed, like their IPv4 counterparts.
static IPV6: [Range6; 12] = [
    v6(Ipv6Addr::UNSPECIFIED, 128, Unspecified), // RFC 4291 §2.5.2
    v6(Ipv6Addr::LOCALHOST, 128, Loopback),      // RFC 4291 §2.5.3
    v6(w(0x0064, 0xff9b, 0x0001), 48, Nat64LocalUse), // RFC 8215 local-use NAT64
    v6(w(0x0100, 0, 0), 64, Reserved),           // RFC 6666 discard-only
    v6(w(0x2001, 0x0002, 0), 48, Reserved),      // RFC 5180 benchmarking
    v6(w(0x2001, 0x0010, 0), 28, Reserved),      // RFC 4843 ORCHID (deprecated)
    v6(w(0x2001, 0x0020, 0), 28, Reserved),      // RFC 7343 ORCHIDv2
    v6(w(0x5f00, 0, 0), 16, Reserved),           // RFC 9602 SRv6 SIDs
    v6(w(0xfc00, 0, 0), 7, UniqueLocal),         // RFC 4193
    v6(w(0xfe80, 0, 0), 10, LinkLocal),          // RFC 4291 §2.5.6
    v6(w(0xfec0, 0, 0), 10, SiteLocal),          // RFC 3879 (deprecated site-local)
    v6(w(0xff00, 0, 0), 8, Multicast),           // RFC 4291 §2.7
];

/// The built-in reason to deny this IPv4 address, if any.
pub(super) fn ipv4(ip: Ipv4Addr) -> Option<&'static DenyReason> {
    let bits = ip.to_bits();
    IPV4.iter()
        .find(|r| bits & r.mask == r.network)
        .map(|r| &r.reason)
}

/// The built-in reason to deny this IPv6 address itself (not what it embeds), if any.
pub(super) fn ipv6(ip: Ipv6Addr) -> Option<&'static DenyReason> {
    let bits = ip.to_bits();
    IPV6.iter()
        .find(|r| bits & r.mask == r.network)
        .map(|r| &r.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_have_no_host_bits() {
        for r in &IPV4 {
            assert_eq!(r.network & r.mask, r.network, "{:?}", r.reason);
        }
        for r in &IPV6 {
            assert_eq!(r.network & r.mask, r.network, "{:?}", r.reason);
        }
    }

    #[test]
    fn specific_ranges_come_before_their_supersets() {
        // 0.0.0.0 is "unspecified", not just "this network"; 255.255.255.255 is broadcast,
        // not just reserved.
        assert_eq!(ipv4(Ipv4Addr::UNSPECIFIED), Some(&Unspecified));
        assert_eq!(ipv4(Ipv4Addr::BROADCAST), Some(&Broadcast));
        assert_eq!(ipv4(Ipv4Addr::new(255, 255, 255, 254)), Some(&Reserved));
    }

    #[test]
    fn range_edges() {
        // RFC 1918 172.16/12 ends at 172.31.255.255; RFC 6598 100.64/10 at 100.127.255.255.
        assert_eq!(ipv4(Ipv4Addr::new(172, 15, 255, 255)), None);
        assert_eq!(ipv4(Ipv4Addr::new(172, 31, 255, 255)), Some(&Private));
        assert_eq!(ipv4(Ipv4Addr::new(172, 32, 0, 0)), None);
        assert_eq!(ipv4(Ipv4Addr::new(100, 63, 255, 255)), None);
        assert_eq!(
            ipv4(Ipv4Addr::new(100, 127, 255, 255)),
            Some(&SharedAddressSpace)
        );
        assert_eq!(ipv4(Ipv4Addr::new(100, 128, 0, 0)), None);
        // RFC 2544 198.18/15 ends at 198.19.255.255.
        assert_eq!(ipv4(Ipv4Addr::new(198, 19, 255, 255)), Some(&Reserved));
        assert_eq!(ipv4(Ipv4Addr::new(198, 20, 0, 0)), None);
        // RFC 4193 fc00::/7 covers fc.. and fd..; fe80::/10 ends at febf::.
        assert_eq!(ipv6("fdff::1".parse().unwrap()), Some(&UniqueLocal));
        assert_eq!(ipv6("febf::1".parse().unwrap()), Some(&LinkLocal));
        assert_eq!(ipv6("fec0::1".parse().unwrap()), Some(&SiteLocal));
        assert_eq!(ipv6("fe00::1".parse().unwrap()), None);
    }
}
