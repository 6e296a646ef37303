//! IPv6 address forms that carry an IPv4 address, and where in the 128 bits it sits.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// How an IPv6 address embeds an IPv4 address (see [`embedded_ipv4`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Embedding {
    /// IPv4-mapped `::ffff:0:0/96`, IPv4 in the last 32 bits (RFC 4291 §2.5.5.2).
    Ipv4Mapped,
    /// IPv4-compatible `::/96` (deprecated), IPv4 in the last 32 bits (RFC 4291 §2.5.5.1).
    Ipv4Compatible,
    /// IPv4-translated `::ffff:0:0:0/96` (SIIT), IPv4 in the last 32 bits (RFC 2765 §2.1).
    Ipv4Translated,
    /// NAT64 well-known prefix `64:ff9b::/96`, IPv4 in the last 32 bits (RFC 6052 §2.1).
    Nat64,
    /// 6to4 `2002::/16`, IPv4 in bits 16..48 (RFC 3056 §2).
    SixToFour,
    /// Teredo `2001::/32` (RFC 4380 §4): the embedded address is the client's, stored in the
    /// last 32 bits XOR `0xffff_ffff`; the Teredo server's IPv4 sits in bits 32..64.
    Teredo {
        /// The Teredo server's IPv4 address (bits 32..64).
        server: Ipv4Addr,
    },
    /// ISATAP, any /64 prefix with interface identifier `[02]00:5efe:a.b.c.d`, IPv4 in the
    /// last 32 bits (RFC 5214 §6.1): a host with an ISATAP interface tunnels to it.
    Isatap,
}

impl fmt::Display for Embedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Embedding::Ipv4Mapped => "IPv4-mapped",
            Embedding::Ipv4Compatible => "IPv4-compatible",
            Embedding::Ipv4Translated => "IPv4-translated",
            Embedding::Nat64 => "NAT64",
            Embedding::SixToFour => "6to4",
            Embedding::Teredo { .. } => "Teredo",
            Embedding::Isatap => "ISATAP",
        })
    }
}

/// The IPv4 address an IPv6 address embeds, and the form that embeds it.
///
/// Recognises IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96` (except `::` and `::1`,
/// which are the IPv6 unspecified and loopback addresses), IPv4-translated
/// `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32` (the
/// client address; the server address is in [`Embedding::Teredo`]) and ISATAP interface
/// identifiers. The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215) has no fixed layout
/// and yields `None` (see [`ipv4_destinations`], which tries each layout).
///
/// ```
/// use std::net::{Ipv4Addr, Ipv6Addr};
/// use turn::policy::{embedded_ipv4, Embedding};
///
/// let ip: Ipv6Addr = "::ffff:127.0.0.1".parse().unwrap();
/// assert_eq!(embedded_ipv4(ip), Some((Ipv4Addr::LOCALHOST, Embedding::Ipv4Mapped)));
/// ```
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<(Ipv4Addr, Embedding)> {
    let bits = ip.to_bits();
    let low32 = Ipv4Addr::from_bits(bits as u32);
    let top96 = bits >> 32;
    let embedding = match top96 {
        0xffff => Embedding::Ipv4Mapped,
        0 if bits > 1 => Embedding::Ipv4Compatible,
        0xffff_0000 => Embedding::Ipv4Translated,
        0x0064_ff9b_0000_0000_0000_0000 => Embedding::Nat64,
        _ => return from_prefix(bits),
    };
    Some((low32, embedding))
}

/// The forms identified by a prefix shorter than /96: 6to4 and Teredo.
fn from_prefix(bits: u128) -> Option<(Ipv4Addr, Embedding)> {
    if bits >> 112 == 0x2002 {
        return Some((
            Ipv4Addr::from_bits((bits >> 80) as u32),
            Embedding::SixToFour,
        ));
    }
    if bits >> 96 == 0x2001_0000 {
        let server = Ipv4Addr::from_bits((bits >> 64) as u32);
        let client = Ipv4Addr::from_bits(!(bits as u32));
        return Some((client, Embedding::Teredo { server }));
    }
    // RFC 5214 §6.1: the u/l and group bits of the identifier's first octet may be set.
    if (bits >> 32) as u32 & 0xfcff_ffff == 0x0000_5efe {
        return Some((Ipv4Addr::from_bits(bits as u32), Embedding::Isatap));
    }
    None
}

/// The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215).
const NAT64_LOCAL_USE: u128 = 0x0064_ff9b_0001 << 80;

/// Every IPv4 address a packet to `ip` may end up at: the embedded address of each form of
/// [`embedded_ipv4`] (both for Teredo: client and server), and for the local-use NAT64
/// prefix `64:ff9b:1::/48`, which an operator may use with any RFC 6052 §2.2 prefix length
/// of /48 or more, the address under each of the /48, /56, /64 and /96 layouts.
///
/// Used where a false match only costs a refusal: the server's own addresses and the
/// broadcast addresses of its subnets must not be reachable in any disguise.
pub fn ipv4_destinations(ip: Ipv6Addr) -> impl Iterator<Item = Ipv4Addr> {
    let bits = ip.to_bits();
    let mut found = [None; 4];
    if bits >> 80 == NAT64_LOCAL_USE >> 80 {
        // RFC 6052 §2.2: bits 64..72 (the "u" octet) are never part of the IPv4 address.
        let take = |from: u32, len: u32| (bits >> (128 - from - len)) & ((1 << len) - 1);
        let layouts = [
            (take(48, 16) << 16) | take(72, 16),
            (take(56, 8) << 24) | take(72, 24),
            take(72, 32),
            take(96, 32),
        ];
        for (slot, v4) in found.iter_mut().zip(layouts) {
            *slot = Some(Ipv4Addr::from_bits(v4 as u32));
        }
    } else if let Some((ipv4, embedding)) = embedded_ipv4(ip) {
        found[0] = Some(ipv4);
        if let Embedding::Teredo { server } = embedding {
            found[1] = Some(server);
        }
    }
    found.into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(s: &str) -> Option<(Ipv4Addr, Embedding)> {
        embedded_ipv4(s.parse().unwrap())
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped() {
        // RFC 4291 §2.5.5.2: ::ffff:a.b.c.d
        assert_eq!(
            embedded("::ffff:127.0.0.1"),
            Some((v4("127.0.0.1"), Embedding::Ipv4Mapped))
        );
        assert_eq!(
            embedded("::ffff:0.0.0.0"),
            Some((v4("0.0.0.0"), Embedding::Ipv4Mapped))
        );
    }

    #[test]
    fn ipv4_compatible_except_unspecified_and_loopback() {
        // RFC 4291 §2.5.5.1: ::a.b.c.d (deprecated); :: and ::1 are not embeddings.
        assert_eq!(
            embedded("::127.0.0.1"),
            Some((v4("127.0.0.1"), Embedding::Ipv4Compatible))
        );
        assert_eq!(
            embedded("::2"),
            Some((v4("0.0.0.2"), Embedding::Ipv4Compatible))
        );
        assert_eq!(embedded("::"), None);
        assert_eq!(embedded("::1"), None);
    }

    #[test]
    fn ipv4_translated() {
        // RFC 2765 §2.1: ::ffff:0:a.b.c.d
        assert_eq!(
            embedded("::ffff:0:10.0.0.1"),
            Some((v4("10.0.0.1"), Embedding::Ipv4Translated))
        );
    }

    #[test]
    fn nat64_well_known_prefix_but_not_local_use() {
        // RFC 6052 §2.1: 64:ff9b::/96; RFC 8215: 64:ff9b:1::/48 has no fixed layout.
        assert_eq!(
            embedded("64:ff9b::7f00:1"),
            Some((v4("127.0.0.1"), Embedding::Nat64))
        );
        assert_eq!(
            embedded("64:ff9b::808:808"),
            Some((v4("8.8.8.8"), Embedding::Nat64))
        );
        assert_eq!(embedded("64:ff9b:1::7f00:1"), None);
        assert_eq!(embedded("64:ff9b:0:0:1::7f00:1"), None);
    }

    #[test]
    fn six_to_four() {
        // RFC 3056 §2: 2002:V4ADDR::/48
        assert_eq!(
            embedded("2002:7f00:1::1"),
            Some((v4("127.0.0.1"), Embedding::SixToFour))
        );
        assert_eq!(
            embedded("2002:0808:0808:ffff::1"),
            Some((v4("8.8.8.8"), Embedding::SixToFour))
        );
    }

    #[test]
    fn teredo_client_is_inverted_and_server_is_plain() {
        // RFC 4380 §4: 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff>
        // 0x80fffffe ^ 0xffffffff = 0x7f000001; 0x4136e378 = 65.54.227.120.
        assert_eq!(
            embedded("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            Some((
                v4("127.0.0.1"),
                Embedding::Teredo {
                    server: v4("65.54.227.120")
                }
            ))
        );
        // RFC 4380 §4's own example shape: client 192.0.2.45 stored as 3fff:fdd2.
        assert_eq!(
            embedded("2001:0:4136:e378:8000:63bf:3fff:fdd2").map(|e| e.0),
            Some(v4("192.0.2.45"))
        );
    }

    #[test]
    fn isatap_interface_identifiers() {
        // RFC 5214 §6.1: <prefix>:0000:5efe:a.b.c.d, or 0200:5efe with the u/l bit set.
        assert_eq!(
            embedded("2001:db8::5efe:7f00:1"),
            Some((v4("127.0.0.1"), Embedding::Isatap))
        );
        assert_eq!(
            embedded("2001:db8:1:2:200:5efe:a00:1"),
            Some((v4("10.0.0.1"), Embedding::Isatap))
        );
        assert_eq!(embedded("2001:db8::5eff:7f00:1"), None);
    }

    fn destinations(s: &str) -> Vec<Ipv4Addr> {
        ipv4_destinations(s.parse().unwrap()).collect()
    }

    #[test]
    fn destinations_of_each_form() {
        assert_eq!(destinations("::ffff:192.0.2.1"), [v4("192.0.2.1")]);
        assert_eq!(destinations("2002:c000:201::"), [v4("192.0.2.1")]);
        assert_eq!(
            destinations("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            [v4("127.0.0.1"), v4("65.54.227.120")]
        );
        assert!(destinations("2001:db8::1").is_empty());
    }

    #[test]
    fn local_use_nat64_tries_every_rfc_6052_layout() {
        // RFC 6052 §2.2 with 192.0.2.33 (c0.00.02.21), as in its §2.4 examples, under
        // 64:ff9b:1::/48 instead of 2001:db8::.
        for (address, layout) in [
            ("64:ff9b:1:c000:2:2100::", 0),
            ("64:ff9b:1:c0:0:221::", 1),
            ("64:ff9b:1::c0:2:2100:0", 2),
            ("64:ff9b:1::c000:221", 3),
        ] {
            assert_eq!(destinations(address)[layout], v4("192.0.2.33"), "{address}");
        }
    }

    #[test]
    fn other_addresses_embed_nothing() {
        for s in [
            "2001:4860:4860::8888",
            "2001:db8::1",
            "fe80::1",
            "2001:1::1",
            "ff02::1",
        ] {
            assert_eq!(embedded(s), None, "{s}");
        }
    }

    #[test]
    fn embeddings_display_their_names() {
        assert_eq!(Embedding::Ipv4Mapped.to_string(), "IPv4-mapped");
        assert_eq!(Embedding::SixToFour.to_string(), "6to4");
        let teredo = Embedding::Teredo {
            server: Ipv4Addr::UNSPECIFIED,
        };
        assert_eq!(teredo.to_string(), "Teredo");
    }
}
