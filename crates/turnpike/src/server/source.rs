//! How a client address is counted by the per-source limits (HTTP credentials per minute,
//! HTTP and STUN/TURN stream connections at once): an IPv4 address, or an IPv6 /64. One subscriber usually
//! holds a whole /64 (RFC 6177), so counting single IPv6 addresses would give one host 2^64
//! shares. An IPv4-mapped IPv6 address counts as its IPv4 address.

use std::net::IpAddr;

/// A source as the limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An IPv4 address.
    V4(u32),
    /// The /64 prefix of an IPv6 address.
    V6(u64),
}

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(v4) => Source::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4.into()),
                // The upper 64 bits of a 128-bit value always fit.
                None => Source::V6(u64::try_from(u128::from(v6) >> 64).unwrap_or(u64::MAX)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        let s = |t: &str| Source::from(t.parse::<IpAddr>().unwrap());
        assert_eq!(s("2001:db8:1:2::1"), s("2001:db8:1:2:ffff::9"));
        assert_ne!(s("2001:db8:1:2::1"), s("2001:db8:1:3::1"));
        assert_eq!(s("::ffff:192.0.2.1"), s("192.0.2.1"));
        assert_ne!(s("192.0.2.1"), s("192.0.2.2"));
    }
}
