//! A longest-prefix-match table for the explicit `allowed-peers` / `denied-peers` lists.
//!
//! Built once; a lookup probes one sorted level per distinct prefix length, longest first,
//! with a binary search each, so it allocates nothing and stays cheap for long lists.

/// What an explicit entry says. Ordered so that `max` picks `Deny` (ties → deny).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Action {
    Allow,
    Deny,
}

/// An address as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub(super) trait Bits: Copy + Ord + std::fmt::Debug {
    /// Address width in bits.
    const WIDTH: u8;
    /// The netmask of a `/len` prefix (`len` ≤ `WIDTH`).
    fn mask(len: u8) -> Self;
    /// `self & mask`.
    fn and(self, mask: Self) -> Self;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    fn mask(len: u8) -> Self {
        u32::MAX.checked_shl(u32::from(32 - len)).unwrap_or(0)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    fn mask(len: u8) -> Self {
        u128::MAX.checked_shl(u32::from(128 - len)).unwrap_or(0)
    }
    fn and(self, mask: Self) -> Self {
        self & mask
    }
}

/// All entries of one prefix length, sorted by network, one action per network.
#[derive(Debug, Clone)]
struct Level<B> {
    mask: B,
    networks: Vec<(B, Action)>,
}

/// Entries of one address family, grouped by prefix length, longest first.
#[derive(Debug, Clone)]
pub(super) struct PrefixTable<B> {
    levels: Vec<Level<B>>,
}

impl<B: Bits> PrefixTable<B> {
    /// Builds the table from `(network, prefix length, action)`; host bits are ignored, and an
    /// entry present with both actions keeps `Deny`.
    pub(super) fn new(mut entries: Vec<(B, u8, Action)>) -> Self {
        for (network, len, _) in &mut entries {
            *len = (*len).min(B::WIDTH);
            *network = network.and(B::mask(*len));
        }
        // Longest prefix first; within a length by network; `Deny` before `Allow`.
        entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)).then(b.2.cmp(&a.2)));
        entries.dedup_by_key(|e| (e.0, e.1));
        let mut levels: Vec<Level<B>> = Vec::new();
        let mut current_len = None;
        for (network, len, action) in entries {
            match levels.last_mut() {
                Some(level) if current_len == Some(len) => level.networks.push((network, action)),
                _ => {
                    current_len = Some(len);
                    levels.push(Level {
                        mask: B::mask(len),
                        networks: vec![(network, action)],
                    });
                }
            }
        }
        PrefixTable { levels }
    }

    /// The action of the longest entry containing `addr`, if any.
    pub(super) fn lookup(&self, addr: B) -> Option<Action> {
        self.levels.iter().find_map(|level| {
            let key = addr.and(level.mask);
            level
                .networks
                .binary_search_by(|(network, _)| network.cmp(&key))
                .ok()
                .map(|i| level.networks[i].1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> u32 {
        s.parse::<std::net::Ipv4Addr>().unwrap().to_bits()
    }

    #[test]
    fn masks_cover_zero_and_full_length() {
        assert_eq!(u32::mask(0), 0);
        assert_eq!(u32::mask(8), 0xff00_0000);
        assert_eq!(u32::mask(32), u32::MAX);
        assert_eq!(u128::mask(0), 0);
        assert_eq!(u128::mask(96), u128::MAX << 32);
        assert_eq!(u128::mask(128), u128::MAX);
    }

    #[test]
    fn longest_prefix_decides() {
        let t = PrefixTable::new(vec![
            (v4("10.0.0.0"), 8, Action::Allow),
            (v4("10.0.0.1"), 32, Action::Deny),
            (v4("10.1.0.0"), 16, Action::Deny),
            (v4("10.1.2.0"), 24, Action::Allow),
        ]);
        assert_eq!(t.lookup(v4("10.0.0.1")), Some(Action::Deny));
        assert_eq!(t.lookup(v4("10.0.0.2")), Some(Action::Allow));
        assert_eq!(t.lookup(v4("10.1.9.9")), Some(Action::Deny));
        assert_eq!(t.lookup(v4("10.1.2.3")), Some(Action::Allow));
        assert_eq!(t.lookup(v4("11.0.0.0")), None);
    }

    #[test]
    fn equal_prefixes_in_both_lists_deny() {
        let t = PrefixTable::new(vec![
            (v4("192.0.2.0"), 24, Action::Allow),
            (v4("192.0.2.0"), 24, Action::Deny),
            (v4("192.0.2.0"), 24, Action::Allow),
        ]);
        assert_eq!(t.lookup(v4("192.0.2.1")), Some(Action::Deny));
    }

    #[test]
    fn host_bits_are_ignored_and_zero_length_matches_all() {
        let t = PrefixTable::new(vec![
            (v4("10.9.9.9"), 8, Action::Deny),
            (v4("1.2.3.4"), 0, Action::Allow),
        ]);
        assert_eq!(t.lookup(v4("10.0.0.1")), Some(Action::Deny));
        assert_eq!(t.lookup(v4("203.0.113.1")), Some(Action::Allow));
        assert_eq!(PrefixTable::<u32>::new(vec![]).lookup(0), None);
    }
}
