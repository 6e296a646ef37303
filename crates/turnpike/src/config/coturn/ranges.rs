//! coturn's peer address ranges (`denied-peer-ip=10.0.0.0-10.255.255.255`) as the CIDR
//! networks Turnpike's `denied-peers` / `allowed-peers` take, covering exactly the same
//! addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Subnets, Ipv6Subnets};

/// An inclusive range of addresses of one family, as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// IPv6 when true, else IPv4 (its addresses in the low 32 bits).
    pub v6: bool,
    /// First address.
    pub start: u128,
    /// Last address, at least `start`.
    pub end: u128,
}

impl IpRange {
    /// Parses `IP`, `IP-IP` (coturn's range, both ends included) or `IP/PREFIX`.
    pub fn parse(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        if let Some((first, last)) = text.split_once('-') {
            let (first, last) = (address(first)?, address(last)?);
            if first.is_ipv4() != last.is_ipv4() {
                return Err(format!("`{text}` mixes IPv4 and IPv6"));
            }
            let range = IpRange {
                v6: first.is_ipv6(),
                start: number(first),
                end: number(last),
            };
            if range.start > range.end {
                return Err(format!("`{text}` ends before it starts"));
            }
            return Ok(range);
        }
        if text.contains('/') {
            let net: IpNet = text
                .parse()
                .map_err(|_| format!("`{text}` is not an IP, a range IP-IP or a network"))?;
            return Ok(IpRange {
                v6: net.addr().is_ipv6(),
                start: number(net.network()),
                end: number(net.broadcast()),
            });
        }
        let ip = address(text)?;
        Ok(IpRange {
            v6: ip.is_ipv6(),
            start: number(ip),
            end: number(ip),
        })
    }

    /// The fewest CIDR networks that cover exactly this range, in address order.
    pub fn networks(&self) -> Vec<IpNet> {
        if self.v6 {
            Ipv6Subnets::new(Ipv6Addr::from(self.start), Ipv6Addr::from(self.end), 0)
                .map(IpNet::V6)
                .collect()
        } else {
            // An IPv4 range holds IPv4 numbers by construction: the casts cannot truncate.
            let v4 = |n: u128| Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX));
            Ipv4Subnets::new(v4(self.start), v4(self.end), 0)
                .map(IpNet::V4)
                .collect()
        }
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.v6 == other.v6 && self.start <= other.end && other.start <= self.end
    }

    /// This range without the addresses of `cut`: none, one or two ranges.
    fn minus(&self, cut: &IpRange) -> Vec<IpRange> {
        if !self.overlaps(cut) {
            return vec![*self];
        }
        let mut left = Vec::new();
        if self.start < cut.start {
            left.push(IpRange {
                end: cut.start - 1,
                ..*self
            });
        }
        if cut.end < self.end {
            left.push(IpRange {
                start: cut.end + 1,
                ..*self
            });
        }
        left
    }
}

/// `ranges` without any address of `cuts`.
pub fn subtract(ranges: &[IpRange], cuts: &[IpRange]) -> Vec<IpRange> {
    cuts.iter().fold(ranges.to_vec(), |left, cut| {
        left.iter().flat_map(|range| range.minus(cut)).collect()
    })
}

fn address(text: &str) -> Result<IpAddr, String> {
    let text = text.trim();
    text.parse()
        .map_err(|_| format!("`{text}` is not an IP address"))
}

fn number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(text: &str) -> Vec<String> {
        IpRange::parse(text)
            .unwrap()
            .networks()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_range_is_covered_exactly() {
        assert_eq!(nets("83.166.64.0-83.166.95.255"), ["83.166.64.0/19"]);
        assert_eq!(nets("10.0.0.0-10.255.255.255"), ["10.0.0.0/8"]);
        assert_eq!(nets("192.0.2.1"), ["192.0.2.1/32"]);
        assert_eq!(
            nets("192.0.2.1-192.0.2.6"),
            [
                "192.0.2.1/32",
                "192.0.2.2/31",
                "192.0.2.4/31",
                "192.0.2.6/32"
            ]
        );
        assert_eq!(nets("0.0.0.0-255.255.255.255"), ["0.0.0.0/0"]);
        assert_eq!(
            nets("fd00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            ["fd00::/8"]
        );
        assert_eq!(nets("10.1.2.3/24"), ["10.1.2.0/24"]);
    }

    #[test]
    fn the_cover_has_every_address_and_no_other() {
        // Count the addresses the networks hold: exactly the range's, with no overlap.
        for text in ["10.0.0.7-10.0.3.200", "1.2.3.4-1.2.3.4", "0.0.0.1-0.0.1.0"] {
            let range = IpRange::parse(text).unwrap();
            let covered: u128 = range
                .networks()
                .iter()
                .map(|net| 1u128 << (32 - net.prefix_len()))
                .sum();
            assert_eq!(covered, range.end - range.start + 1, "{text}");
            let nets = range.networks();
            assert_eq!(number(nets[0].network()), range.start);
            assert_eq!(number(nets[nets.len() - 1].broadcast()), range.end);
        }
    }

    #[test]
    fn bad_ranges_are_refused() {
        for bad in [
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "example.org",
            "10.0.0.1-",
            "1.2.3.4/40",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subtracting_cuts_holes() {
        let denied = IpRange::parse("10.0.0.0-10.0.0.255").unwrap();
        let allowed = IpRange::parse("10.0.0.16-10.0.0.31").unwrap();
        let left = subtract(&[denied], &[allowed]);
        let nets: Vec<String> = left
            .iter()
            .flat_map(IpRange::networks)
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            nets,
            [
                "10.0.0.0/28",
                "10.0.0.32/27",
                "10.0.0.64/26",
                "10.0.0.128/25"
            ]
        );
        let everything = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(subtract(&[denied], &[everything]).is_empty());
        let v6 = IpRange::parse("::1").unwrap();
        assert_eq!(subtract(&[denied], &[v6]), vec![denied]);
    }
}
