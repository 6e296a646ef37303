//! Which peer addresses a TURN allocation may reach: the relay's security boundary.
//!
//! A TURN server relays to whatever address a client names in XOR-PEER-ADDRESS, from inside
//! the operator's network. Unchecked, that turns it into a proxy onto loopback services, the
//! private LAN or the cloud metadata endpoint (RFC 8656 §21, "Security Considerations", and
//! §21.1.1 on permissions). [`PeerPolicy::check`] is asked once per CreatePermission and
//! ChannelBind (permissions are per IP address, RFC 8656 §9), never per packet; it is pure and
//! allocates nothing.
//!
//! ## Rules, in order
//! 0. **Broadcast addresses are always denied**: the limited broadcast 255.255.255.255 and,
//!    given the host's subnets ([`PeerPolicy::with_host_subnets`]), the broadcast and network
//!    address of each, also in every IPv6 form that carries them ([`ipv4_destinations`]).
//!    No list overrides this: a broadcast address is never a single peer.
//! 1. **Explicit lists decide first.** If the address matches an entry of `allowed-peers` or
//!    `denied-peers`, the *longest* matching prefix decides; a prefix present in both lists
//!    denies. So `allowed-peers = ["10.0.0.0/8"]` with `denied-peers = ["10.0.0.1/32"]`
//!    denies 10.0.0.1 and allows 10.0.0.2. An allow entry overrides the built-in list for
//!    every address it covers — allow wins only where it is given explicitly, and
//!    `0.0.0.0/0` switches the built-in protection off for IPv4.
//! 2. **Otherwise the built-in deny list**, the ranges of the IANA IPv4 and IPv6
//!    Special-Purpose Address Registries (RFC 6890) that are not globally reachable:
//!    - IPv4: "this network" 0.0.0.0/8 (0.0.0.0 itself: unspecified), RFC 1918 10/8,
//!      172.16/12, 192.168/16, shared address space 100.64/10 (RFC 6598, CGNAT), loopback
//!      127/8, link-local 169.254/16 (including the cloud metadata address
//!      169.254.169.254), IETF protocol assignments 192.0.0.0/24, benchmarking 198.18/15
//!      (RFC 2544; also used for fake-IP proxies and labs), multicast 224/4, reserved 240/4,
//!      (limited broadcast 255.255.255.255: rule 0).
//!    - IPv6: unspecified `::`, loopback `::1`, link-local `fe80::/10`, site-local
//!      `fec0::/10` (deprecated, still private), unique local `fc00::/7`, multicast
//!      `ff00::/8`, local-use NAT64 `64:ff9b:1::/48` (RFC 8215, the whole prefix), and the
//!      non-global `100::/64` (discard-only, RFC 6666), `2001:2::/48` (benchmarking),
//!      `2001:10::/28` and `2001:20::/28` (ORCHID), `5f00::/16` (SRv6 SIDs, RFC 9602).
//!    - Every IPv6 form that embeds an IPv4 address (see [`embedded_ipv4`]) is denied when
//!      that IPv4 address is: IPv4-compatible `::/96`, IPv4-translated `::ffff:0:0:0/96`,
//!      NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32` (denied if either the
//!      client or the server address is), ISATAP interface identifiers `[02]00:5efe:a.b.c.d`
//!      (RFC 5214). A host with a 6to4 or Teredo interface, or a
//!      NAT64 gateway, would otherwise carry the packet to the embedded IPv4 address.
//! 3. **Otherwise allowed.**
//!
//! ## Embedded IPv4 and the explicit lists
//! - An **IPv4-mapped** address `::ffff:a.b.c.d` *is* the IPv4 peer a.b.c.d: a dual-stack
//!   socket sends to a.b.c.d (RFC 4291 §2.5.5.2). It is checked exactly as that IPv4 address,
//!   verdict and reason included. Config entries inside `::ffff:0:0/96` (at least /96 long)
//!   become the corresponding IPv4 entries; shorter IPv6 entries such as `::/0` do not match
//!   mapped addresses, since those are IPv4 peers.
//! - The other embedding forms are distinct IPv6 destinations reached *through* the IPv4
//!   address, so the explicit lists are matched against the IPv6 address and against every
//!   IPv4 address it embeds; if any of these matches, an explicit deny in any of them wins,
//!   else the address is allowed. So `allowed-peers = ["127.0.0.0/8"]` also allows
//!   `64:ff9b::7f00:1`, and `denied-peers = ["2002::/16"]` denies all of 6to4.
//!
//! ## Documentation ranges are allowed
//! 192.0.2/24, 198.51.100/24, 203.0.113/24, `2001:db8::/32` and `3fff::/20` are not routed on
//! the Internet, so relaying to them reaches nothing; coturn does not deny them either. They
//! stay allowed so tests and examples can use them as "public" peers.

mod embedding;
mod special;
mod table;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

pub use embedding::{embedded_ipv4, ipv4_destinations, Embedding};
use table::{Action, PrefixTable};

/// The outcome of [`PeerPolicy::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerVerdict {
    /// The relay may send to this peer.
    Allowed,
    /// The relay must not: answer 403 (Forbidden, RFC 8656 §9.1 / §11.2).
    Denied(DenyReason),
}

impl PeerVerdict {
    /// Whether the peer is allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, PeerVerdict::Allowed)
    }
}

impl fmt::Display for PeerVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerVerdict::Allowed => f.write_str("allowed"),
            PeerVerdict::Denied(reason) => write!(f, "denied: {reason}"),
        }
    }
}

/// Why a peer address is denied; `Display` gives a short reason for debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// Loopback: 127.0.0.0/8 (RFC 1122), `::1` (RFC 4291).
    Loopback,
    /// Private-use: 10/8, 172.16/12, 192.168/16 (RFC 1918).
    Private,
    /// Shared address space for carrier-grade NAT: 100.64.0.0/10 (RFC 6598).
    SharedAddressSpace,
    /// Link-local: 169.254/16 (RFC 3927, includes cloud metadata), `fe80::/10` (RFC 4291).
    LinkLocal,
    /// Multicast: 224/4 (RFC 5771), `ff00::/8` (RFC 4291).
    Multicast,
    /// Limited broadcast 255.255.255.255 (RFC 919).
    Broadcast,
    /// The broadcast address of a subnet of this host's interfaces (RFC 919 §7, RFC 1812
    /// §5.3.5.2 directed broadcast), or its network address, the 4.2BSD broadcast form that
    /// hosts still accept (RFC 1122 §3.3.6).
    DirectedBroadcast,
    /// The unspecified address 0.0.0.0 or `::`.
    Unspecified,
    /// "This network" 0.0.0.0/8 (RFC 791, RFC 6890).
    ThisNetwork,
    /// IPv6 unique local `fc00::/7` (RFC 4193).
    UniqueLocal,
    /// IPv6 site-local `fec0::/10`, deprecated but still private (RFC 3879).
    SiteLocal,
    /// The local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215).
    Nat64LocalUse,
    /// Reserved or special-purpose and not globally reachable: 240/4, 192.0.0.0/24,
    /// 198.18/15, `100::/64`, `2001:2::/48`, `2001:10::/28`, `2001:20::/28`, `5f00::/16`.
    Reserved,
    /// An IPv6 address whose embedded IPv4 address is denied by the built-in list.
    EmbeddedIpv4 {
        /// The embedded IPv4 address that is denied (for Teredo, client or server).
        ipv4: Ipv4Addr,
        /// How the IPv6 address embeds it.
        embedding: Embedding,
        /// Why `ipv4` is denied; never itself `EmbeddedIpv4`.
        reason: &'static DenyReason,
    },
    /// Matched `denied-peers` (or an embedded IPv4 address did) with no longer allow entry.
    ExplicitlyDenied,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DenyReason::Loopback => "loopback",
            DenyReason::Private => "private-use (RFC 1918)",
            DenyReason::SharedAddressSpace => "shared address space (RFC 6598, CGNAT)",
            DenyReason::LinkLocal => "link-local",
            DenyReason::Multicast => "multicast",
            DenyReason::Broadcast => "limited broadcast",
            DenyReason::DirectedBroadcast => "broadcast address of one of this host's subnets",
            DenyReason::Unspecified => "unspecified address",
            DenyReason::ThisNetwork => "\"this network\" (0.0.0.0/8)",
            DenyReason::UniqueLocal => "unique local (RFC 4193)",
            DenyReason::SiteLocal => "site-local (RFC 3879)",
            DenyReason::Nat64LocalUse => "local-use NAT64 prefix (RFC 8215)",
            DenyReason::Reserved => "reserved, not globally reachable",
            DenyReason::EmbeddedIpv4 {
                ipv4,
                embedding,
                reason,
            } => return write!(f, "embeds {ipv4} ({embedding}), {reason}"),
            DenyReason::ExplicitlyDenied => "explicitly denied by configuration",
        };
        f.write_str(text)
    }
}

/// The IPv4 addresses a packet to an IPv6 address with `embedded` may be carried to: Teredo
/// has a client and a server.
fn carried_ipv4(embedded: Option<(Ipv4Addr, Embedding)>) -> [Option<Ipv4Addr>; 2] {
    match embedded {
        Some((client, Embedding::Teredo { server })) => [Some(client), Some(server)],
        Some((ipv4, _)) => [Some(ipv4), None],
        None => [None, None],
    }
}

/// The peer-address policy: explicit `allowed-peers` / `denied-peers` over a built-in deny
/// list of special-purpose ranges (rules in the [module docs](self)). Built once from config.
#[derive(Debug, Clone)]
pub struct PeerPolicy {
    v4: PrefixTable<u32>,
    v6: PrefixTable<u128>,
    /// Broadcast and network addresses of the host's subnets, sorted (see
    /// [`PeerPolicy::with_host_subnets`]).
    broadcasts: Vec<Ipv4Addr>,
}

impl Default for PeerPolicy {
    /// No explicit entries: only the built-in deny list applies.
    fn default() -> Self {
        PeerPolicy::new(Vec::new(), Vec::new())
    }
}

impl PeerPolicy {
    /// A policy from the explicit `allowed-peers` and `denied-peers` CIDR lists.
    ///
    /// Host bits of an entry are ignored (`10.1.2.3/8` is `10.0.0.0/8`); entries inside
    /// `::ffff:0:0/96` apply to the IPv4 addresses they map.
    pub fn new(
        allowed: impl IntoIterator<Item = IpNet>,
        denied: impl IntoIterator<Item = IpNet>,
    ) -> Self {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let entries = allowed
            .into_iter()
            .map(|net| (net, Action::Allow))
            .chain(denied.into_iter().map(|net| (net, Action::Deny)));
        for (net, action) in entries {
            match net {
                IpNet::V4(n) => v4.push((n.addr().to_bits(), n.prefix_len(), action)),
                IpNet::V6(n) => match mapped_entry(n.addr(), n.prefix_len()) {
                    Some((addr, len)) => v4.push((addr, len, action)),
                    None => v6.push((n.addr().to_bits(), n.prefix_len(), action)),
                },
            }
        }
        PeerPolicy {
            v4: PrefixTable::new(v4),
            v6: PrefixTable::new(v6),
            broadcasts: Vec::new(),
        }
    }

    /// Also denies the broadcast address of each of the host's IPv4 subnets (those of its
    /// interfaces), and the network address, which RFC 1122 §3.3.6 has hosts accept as a
    /// broadcast too; in every IPv6 form that carries them (see [`ipv4_destinations`]).
    /// These are denied before the explicit lists: a broadcast address is never one peer,
    /// and a permission for it would fan one client's datagrams out to a whole LAN (on a
    /// public subnet, a LAN the built-in list does not otherwise cover). Subnets of /31 and
    /// /32 have no broadcast address (RFC 3021) and are skipped.
    #[must_use]
    pub fn with_host_subnets(mut self, subnets: impl IntoIterator<Item = Ipv4Net>) -> Self {
        for net in subnets.into_iter().filter(|net| net.prefix_len() <= 30) {
            self.broadcasts.extend([net.network(), net.broadcast()]);
        }
        self.broadcasts.sort_unstable();
        self.broadcasts.dedup();
        self
    }

    /// Whether the relay may send to `peer` (checked at CreatePermission and ChannelBind).
    pub fn check(&self, peer: IpAddr) -> PeerVerdict {
        if let Some(reason) = self.broadcast(peer) {
            return PeerVerdict::Denied(reason);
        }
        match peer {
            IpAddr::V4(ip) => self.check_v4(ip),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(ip) => self.check_v4(ip),
                None => self.check_v6(ip),
            },
        }
    }

    /// True when an `allowed-peers` entry decides for `peer` (rule 1), as opposed to the
    /// built-in list merely not denying it. The relay uses this for the server's own
    /// addresses: their other ports are reachable only when the operator said so.
    pub fn is_explicitly_allowed(&self, peer: IpAddr) -> bool {
        let decision = match peer {
            IpAddr::V4(ip) => self.v4.lookup(ip.to_bits()),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(ip) => self.v4.lookup(ip.to_bits()),
                None => self.explicit_v6(ip),
            },
        };
        decision == Some(Action::Allow)
    }

    /// Rule 1 for IPv6: the address and each IPv4 address it carries against the explicit
    /// lists; `Action`'s order makes `max` pick a deny over an allow.
    fn explicit_v6(&self, ip: Ipv6Addr) -> Option<Action> {
        carried_ipv4(embedded_ipv4(ip))
            .iter()
            .flatten()
            .map(|v4| self.v4.lookup(v4.to_bits()))
            .fold(self.v6.lookup(ip.to_bits()), Option::max)
    }

    /// Rule 0: the limited broadcast address and the host's subnet broadcasts, in any form,
    /// whatever the explicit lists say.
    fn broadcast(&self, peer: IpAddr) -> Option<DenyReason> {
        let is = |ip: Ipv4Addr| {
            if ip.is_broadcast() {
                Some(DenyReason::Broadcast)
            } else if self.broadcasts.binary_search(&ip).is_ok() {
                Some(DenyReason::DirectedBroadcast)
            } else {
                None
            }
        };
        match peer {
            IpAddr::V4(ip) => is(ip),
            IpAddr::V6(ip) => ipv4_destinations(ip).find_map(is),
        }
    }

    fn check_v4(&self, ip: Ipv4Addr) -> PeerVerdict {
        match self.v4.lookup(ip.to_bits()) {
            Some(Action::Deny) => PeerVerdict::Denied(DenyReason::ExplicitlyDenied),
            Some(Action::Allow) => PeerVerdict::Allowed,
            None => match special::ipv4(ip) {
                Some(reason) => PeerVerdict::Denied(*reason),
                None => PeerVerdict::Allowed,
            },
        }
    }

    fn check_v6(&self, ip: Ipv6Addr) -> PeerVerdict {
        let embedded = embedded_ipv4(ip);
        let carried = carried_ipv4(embedded);
        match self.explicit_v6(ip) {
            Some(Action::Deny) => return PeerVerdict::Denied(DenyReason::ExplicitlyDenied),
            Some(Action::Allow) => return PeerVerdict::Allowed,
            None => {}
        }

        // Rule 2: the IPv6 address itself, then what it embeds.
        if let Some(reason) = special::ipv6(ip) {
            return PeerVerdict::Denied(*reason);
        }
        if let Some((_, embedding)) = embedded {
            for ipv4 in carried.into_iter().flatten() {
                if let Some(reason) = special::ipv4(ipv4) {
                    return PeerVerdict::Denied(DenyReason::EmbeddedIpv4 {
                        ipv4,
                        embedding,
                        reason,
                    });
                }
            }
        }
        PeerVerdict::Allowed
    }
}

/// A config entry inside `::ffff:0:0/96`, at least /96 long, as an IPv4 entry.
fn mapped_entry(addr: Ipv6Addr, len: u8) -> Option<(u32, u8)> {
    let ipv4 = addr.to_ipv4_mapped()?;
    let len = len.checked_sub(96)?;
    Some((ipv4.to_bits(), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn check(policy: &PeerPolicy, ip: &str) -> PeerVerdict {
        policy.check(ip.parse().unwrap())
    }

    #[test]
    fn mapped_config_entries_become_ipv4_entries() {
        // RFC 4291 §2.5.5.2: ::ffff:127.0.0.1/128 names the IPv4 peer 127.0.0.1.
        let p = PeerPolicy::new(nets(&["::ffff:127.0.0.1/128"]), nets(&[]));
        assert_eq!(check(&p, "127.0.0.1"), PeerVerdict::Allowed);
        assert_eq!(check(&p, "::ffff:127.0.0.1"), PeerVerdict::Allowed);
        assert_eq!(
            mapped_entry("::ffff:0:0".parse().unwrap(), 96),
            Some((0, 0))
        );
        assert_eq!(mapped_entry("::ffff:0:0".parse().unwrap(), 95), None);
        assert_eq!(mapped_entry("::1".parse().unwrap(), 128), None);
    }

    #[test]
    fn short_ipv6_entries_do_not_match_mapped_addresses() {
        let p = PeerPolicy::new(nets(&["::/0"]), nets(&[]));
        assert_eq!(check(&p, "::1"), PeerVerdict::Allowed);
        assert_eq!(
            check(&p, "::ffff:127.0.0.1"),
            PeerVerdict::Denied(DenyReason::Loopback)
        );
    }

    #[test]
    fn embedded_reason_names_the_ipv4_address_and_form() {
        let reason = DenyReason::EmbeddedIpv4 {
            ipv4: Ipv4Addr::LOCALHOST,
            embedding: Embedding::Nat64,
            reason: &DenyReason::Loopback,
        };
        assert_eq!(
            check(&PeerPolicy::default(), "64:ff9b::7f00:1"),
            PeerVerdict::Denied(reason)
        );
        assert_eq!(reason.to_string(), "embeds 127.0.0.1 (NAT64), loopback");
        assert_eq!(
            PeerVerdict::Denied(DenyReason::Private).to_string(),
            "denied: private-use (RFC 1918)"
        );
        assert_eq!(PeerVerdict::Allowed.to_string(), "allowed");
    }
}
