//! The program's global counters (the per-CPU `stats` map, summed).

/// Indices of the `stats` map, as in relay.c's `enum stat`.
pub(crate) const STAT_COUNT: usize = 11;

/// What the program did with the packets it saw, summed over CPUs since it was loaded.
/// "Passed" packets went on to userspace unchanged, which relays or drops them as usual.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// ChannelData relayed client → peer in the kernel.
    pub relayed_to_peer: u64,
    /// Datagrams relayed peer → client in the kernel.
    pub relayed_to_client: u64,
    /// Not IPv4/IPv6 UDP, or with IP options, IPv6 extension headers or fragments.
    pub passed_not_udp: u64,
    /// UDP with no installed channel: the bulk of what the program sees and leaves alone.
    pub passed_no_entry: u64,
    /// A matching channel but inconsistent lengths or a bad ChannelData length.
    pub passed_malformed: u64,
    /// Peer → client datagrams that would exceed the maximum packet size once wrapped, and
    /// datagrams over 16 KiB (the program's bound) either way.
    pub passed_too_big: u64,
    /// TTL or hop limit would reach 0: userspace answers (or drops) as the stack does.
    pub passed_ttl: u64,
    /// An entry whose addresses are of another family than the packet.
    pub passed_family_mismatch: u64,
    /// An entry flagged disabled.
    pub passed_disabled: u64,
    /// The driver could not grow or shrink the packet.
    pub passed_headroom: u64,
    /// Sent from this host (lo, veth) with the UDP checksum left to "the device": it cannot be
    /// updated into a valid one, so userspace relays it.
    pub passed_partial_checksum: u64,
}

impl Stats {
    pub(crate) fn from_counters(c: &[u64; STAT_COUNT]) -> Stats {
        Stats {
            relayed_to_peer: c[0],
            relayed_to_client: c[1],
            passed_not_udp: c[2],
            passed_no_entry: c[3],
            passed_malformed: c[4],
            passed_too_big: c[5],
            passed_ttl: c[6],
            passed_family_mismatch: c[7],
            passed_disabled: c[8],
            passed_headroom: c[9],
            passed_partial_checksum: c[10],
        }
    }

    /// The counts since an earlier reading (for rates and metrics).
    pub fn since(&self, earlier: &Stats) -> Stats {
        let now = self.to_counters();
        let then = earlier.to_counters();
        let mut diff = [0; STAT_COUNT];
        for (d, (n, t)) in diff.iter_mut().zip(now.iter().zip(then.iter())) {
            *d = n.saturating_sub(*t);
        }
        Stats::from_counters(&diff)
    }

    fn to_counters(self) -> [u64; STAT_COUNT] {
        [
            self.relayed_to_peer,
            self.relayed_to_client,
            self.passed_not_udp,
            self.passed_no_entry,
            self.passed_malformed,
            self.passed_too_big,
            self.passed_ttl,
            self.passed_family_mismatch,
            self.passed_disabled,
            self.passed_headroom,
            self.passed_partial_checksum,
        ]
    }
}
