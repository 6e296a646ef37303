//! Candidate pairs: their priority (RFC 8445 §6.1.2.3) and states (§6.1.2.6).

/// The state of a candidate pair in the checklist (RFC 8445 §6.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairState {
    /// Not checked, and not to be until a pair of the same foundation succeeds or the
    /// checklist runs out of Waiting pairs.
    Frozen,
    /// To be checked when its turn comes.
    Waiting,
    /// A check has been sent and no answer has decided it yet.
    InProgress,
    /// A check produced a success response from the right address.
    Succeeded,
    /// A check failed (timeout, error response, non-symmetric answer).
    Failed,
}

/// The pair priority (RFC 8445 §6.1.2.3): with G the controlling agent's candidate
/// priority and D the controlled agent's, `2^32 × MIN(G,D) + 2 × MAX(G,D) + (G > D ? 1 : 0)`.
pub fn pair_priority(local: u32, remote: u32, controlling: bool) -> u64 {
    let (g, d) = if controlling {
        (u64::from(local), u64::from(remote))
    } else {
        (u64::from(remote), u64::from(local))
    };
    (1 << 32) * g.min(d) + 2 * g.max(d) + u64::from(g > d)
}

/// One pair in the checklist: indexes into the agent's local and remote candidate lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePair {
    /// Index of the local candidate (a host or relayed one: server-reflexive candidates are
    /// replaced by their base, RFC 8445 §6.1.2.4).
    pub local: usize,
    /// Index of the remote candidate.
    pub remote: usize,
    /// The pair foundation: the local and remote foundations together (§6.1.2.6).
    pub foundation: (String, String),
    /// The pair priority for the current role.
    pub priority: u64,
    /// The state.
    pub state: PairState,
    /// Set when a check of this pair succeeded: the index of the valid pair it produced
    /// (itself, or a pair with a peer-reflexive local candidate, §7.2.5.3.2).
    pub valid: Option<usize>,
    /// The valid pair has been nominated (§8.1.1 for the controlling agent, §7.3.1.5 for the
    /// controlled one).
    pub nominated: bool,
    /// The controlled agent received USE-CANDIDATE for this pair before its own check of it
    /// succeeded: nominate when it does (§7.3.1.5).
    pub nominate_on_success: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8445 §6.1.2.3, computed by hand: G = 2130706431 (host), D = 1694498815 (srflx).
    #[test]
    fn pair_priority_formula() {
        let host = 2_130_706_431u32;
        let srflx = 1_694_498_815u32;
        let expected = (1u64 << 32) * 1_694_498_815 + 2 * 2_130_706_431 + 1;
        assert_eq!(pair_priority(host, srflx, true), expected);
        // The other agent sees the same pair with the roles of the priorities swapped and
        // computes the same number: both order the pair identically.
        assert_eq!(pair_priority(srflx, host, false), expected);
        // G < D: the last term is 0.
        assert_eq!(pair_priority(host, srflx, false), expected - 1);
    }
}
