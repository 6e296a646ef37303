//! How the relay is set up: addresses, port range, lifetimes, quotas and limits.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::allocation::Lifetimes;

/// The relay's configuration. [`TurnConfig::default`] gives RFC 8656's recommended values.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// Whether TURN is on; when off, TURN requests and ChannelData are dropped and the
    /// server is a STUN server only.
    pub enabled: bool,
    /// IPv4 address relay sockets bind to; `None`: no IPv4 relaying (440).
    pub relay_v4: Option<IpAddr>,
    /// IPv6 address relay sockets bind to; `None`: no IPv6 relaying (440).
    pub relay_v6: Option<IpAddr>,
    /// More relay addresses, of either family, beside `relay_v4`/`relay_v6` (which must be set
    /// for a family listed here). One relay address holds one allocation per port of
    /// `port_range`; several lift that ceiling. Allocations take the addresses of their
    /// family in turn, moving on when one has no free port. `external_v4`/`external_v6` map
    /// only `relay_v4`/`relay_v6`: a 1:1 NAT in front of several relay addresses is not
    /// supported.
    pub more_relay_ips: Vec<IpAddr>,
    /// Address advertised in XOR-RELAYED-ADDRESS instead of `relay_v4`, for a server behind a
    /// 1:1 NAT (coturn's `external-ip=public/private`).
    pub external_v4: Option<IpAddr>,
    /// The same for IPv6.
    pub external_v6: Option<IpAddr>,
    /// Relay ports (RFC 8656 §7.2: 49152–65535 recommended).
    pub port_range: RangeInclusive<u16>,
    /// Allocation lifetime when the client asks for less (RFC 8656 §7.2: 600 s).
    pub default_lifetime: Duration,
    /// Longest allocation lifetime granted (RFC 8656 §7.2 recommends at most 3600 s).
    pub max_lifetime: Duration,
    /// Allocations one username may hold at once; 0 means no per-user limit (486 when over).
    pub user_quota: usize,
    /// Allocations the server holds at once (508 when over).
    pub total_quota: usize,
    /// Live permissions per allocation (508 when over).
    pub max_permissions: usize,
    /// Channel bindings per allocation, counting those cooling down (508 when over).
    pub max_channels: usize,
    /// Peer data connections one TCP allocation holds at once, connecting, waiting for their
    /// ConnectionBind or bound (RFC 6062; a Connect over it gets 508, a peer's connection is
    /// closed).
    pub max_peer_connections: usize,
    /// Whether TCP allocations (RFC 6062, REQUESTED-TRANSPORT 6) are granted; when off, they
    /// get 442 as any transport other than UDP.
    pub tcp_relay: bool,
    /// Bytes per second per allocation, both directions together; `None` for no cap.
    pub bandwidth: Option<u64>,
    /// SOFTWARE in Allocate and Refresh responses (RFC 8656 §5 says SHOULD); `None` keeps
    /// responses small.
    pub software: Option<String>,
    /// Whether the I/O layer can send with the DF bit set (RFC 8656 §7.2 step 4, §14): when
    /// false, DONT-FRAGMENT is treated as an unknown comprehension-required attribute.
    pub dont_fragment: bool,
    /// Accept channel numbers 0x5000–0x7FFF as RFC 5766 did. RFC 8656 §12 narrowed the range
    /// to 0x4000–0x4FFF, but RFC 5766 clients (coturn's own tools among them) still pick
    /// from the old one, so the default keeps them working; `false` is strict RFC 8656.
    pub rfc5766_channel_numbers: bool,
    /// The server's own addresses (listen, relay and external IPs) ...
    pub own_ips: Vec<IpAddr>,
    /// ... and service ports (STUN/TURN, TLS, HTTP): a peer at one of these is refused, so
    /// that a client cannot use the relay to reach the server's own services.
    pub service_ports: Vec<u16>,
    /// Whether the driver relays eligible channels below the core (the kernel fast path):
    /// the core then tracks them and hands out changes (see [`super::fast_path`]).
    pub fast_path: bool,
    /// How long a permission lasts unless refreshed. RFC 8656 §9 fixes 300 s
    /// ([`super::PERMISSION_LIFETIME`], the default); shorter is for tests that watch an
    /// expiry, as coturn's `permission-lifetime`.
    pub permission_lifetime: Duration,
    /// How long a channel binding lasts unless refreshed. RFC 8656 §12 fixes 600 s
    /// ([`super::CHANNEL_LIFETIME`], the default); the same caveat.
    pub channel_lifetime: Duration,
}

impl TurnConfig {
    /// The lifetimes of permissions and channels.
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            permission: self.permission_lifetime,
            channel: self.channel_lifetime,
        }
    }

    /// Every address relay sockets bind to.
    pub fn relay_ips(&self) -> Vec<IpAddr> {
        [self.relay_v4, self.relay_v6]
            .into_iter()
            .flatten()
            .chain(self.more_relay_ips.iter().copied())
            .collect()
    }

    /// The relay addresses of one family (IPv4 when `v4`), the main one first.
    pub fn relay_ips_of(&self, v4: bool) -> Vec<IpAddr> {
        self.relay_ips()
            .into_iter()
            .filter(|ip| ip.is_ipv4() == v4)
            .collect()
    }

    /// True when relay sockets bind to `ip` (a per-packet check: no allocation).
    pub fn is_relay_ip(&self, ip: IpAddr) -> bool {
        self.relay_v4 == Some(ip) || self.relay_v6 == Some(ip) || self.more_relay_ips.contains(&ip)
    }
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            enabled: true,
            relay_v4: None,
            relay_v6: None,
            more_relay_ips: Vec::new(),
            external_v4: None,
            external_v6: None,
            port_range: 49152..=65535,
            default_lifetime: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            user_quota: 0,
            total_quota: 10_000,
            max_permissions: 128,
            max_channels: 128,
            max_peer_connections: 32,
            tcp_relay: true,
            bandwidth: None,
            software: None,
            dont_fragment: false,
            rfc5766_channel_numbers: true,
            own_ips: Vec::new(),
            service_ports: Vec::new(),
            fast_path: false,
            permission_lifetime: super::PERMISSION_LIFETIME,
            channel_lifetime: super::CHANNEL_LIFETIME,
        }
    }
}
