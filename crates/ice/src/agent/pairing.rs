//! The agent's candidate bookkeeping: local and remote candidates, forming pairs
//! (RFC 8445 §6.1.2.2), peer-reflexive candidates (§7.2.5.3.1, §7.3.1.3), roles (§7.2.5.1).

use std::net::SocketAddr;

use rand::RngCore;
use stun::TransactionId;

use super::agent::{Base, IceAgent, LocalCandidate, MAX_REMOTE_CANDIDATES};
use super::candidate::{
    candidate_priority, foundation, Candidate, CandidateKind, Transport, COMPONENT,
};
use super::checklist::Added;
use super::event::IceEvent;
use super::pair::{pair_priority, CandidatePair, PairState};

impl IceAgent {
    /// A fresh random transaction id (RFC 8489 §5).
    pub(super) fn transaction_id(&mut self) -> TransactionId {
        let mut id = [0u8; 12];
        self.rng.fill_bytes(&mut id);
        TransactionId(id)
    }

    /// Records a local candidate; signalled ones become a [`IceEvent::LocalCandidate`].
    pub(super) fn push_local(&mut self, candidate: Candidate, base: Base, announce: bool) -> usize {
        if announce {
            self.events
                .push_back(IceEvent::LocalCandidate(candidate.clone()));
        }
        self.locals.push(LocalCandidate { candidate, base });
        self.locals.len() - 1
    }

    /// Pairs a new local candidate with every remote candidate.
    pub(super) fn pair_local(&mut self, local: usize) {
        if !self.locals[local].pairable() {
            return;
        }
        for remote in 0..self.remotes.len() {
            self.add_pair(local, remote);
        }
    }

    /// Forms one pair (§6.1.2.2: same address family), pruned against the existing ones
    /// (§6.1.2.4). Returns the index of the new or equivalent existing pair.
    pub(super) fn add_pair(&mut self, local: usize, remote: usize) -> Option<usize> {
        let l = &self.locals[local].candidate;
        let r = &self.remotes[remote];
        if l.address.is_ipv4() != r.address.is_ipv4() {
            return None;
        }
        let pair = CandidatePair {
            local,
            remote,
            foundation: (l.foundation.clone(), r.foundation.clone()),
            priority: pair_priority(l.priority, r.priority, self.controlling),
            state: PairState::Frozen,
            valid: None,
            nominated: false,
            nominate_on_success: false,
        };
        let address = r.address;
        let base = self.locals[local].base;
        let remotes = &self.remotes;
        match self.checklist.add(pair, |i| remotes[i].address == address) {
            Added::New(i) => {
                // Checks from a relayed base need a permission for the peer's IP on the
                // server (RFC 8656 §9), or the server drops the answers.
                if let Base::Relay(r) = base {
                    let now = self.latest;
                    if let Some(relay) = self.relays.get_mut(r) {
                        relay.client.create_permission(now, address);
                    }
                    self.flush_relays();
                }
                Some(i)
            }
            Added::Existing(i) => Some(i),
            Added::Full => None,
        }
    }

    /// Recomputes pair priorities (after a role switch or a candidate update).
    pub(super) fn reprioritize(&mut self) {
        let (locals, remotes, controlling) = (&self.locals, &self.remotes, self.controlling);
        self.checklist.reprioritize(|p| {
            pair_priority(
                locals[p.local].candidate.priority,
                remotes[p.remote].priority,
                controlling,
            )
        });
    }

    /// Switches role (§7.2.5.1, §7.3.1.1) and reorders the checklist.
    pub(super) fn switch_role(&mut self, controlling: bool) {
        self.controlling = controlling;
        self.nominating = None;
        self.reprioritize();
    }

    /// The host or relayed candidate whose base is `base`.
    pub(super) fn local_for_base(&self, base: Base) -> Option<usize> {
        self.locals
            .iter()
            .position(|l| l.base == base && l.pairable())
    }

    /// The remote candidate at `from`, or a new peer-reflexive one with the PRIORITY of the
    /// check that revealed it (§7.3.1.3).
    /// `None` when the peer already has [`MAX_REMOTE_CANDIDATES`]: the check is then
    /// answered but not paired, so a peer cannot grow our memory without bound.
    pub(super) fn remote_or_learn(&mut self, from: SocketAddr, priority: u32) -> Option<usize> {
        if let Some(known) = self.remotes.iter().position(|r| r.address == from) {
            return Some(known);
        }
        if self.remotes.len() >= MAX_REMOTE_CANDIDATES {
            return None;
        }
        self.prflx_count += 1;
        self.remotes.push(Candidate {
            // Any value unique among the peer's foundations (§7.3.1.3); ours are decimal,
            // the peer's may be anything, so a prefix keeps them apart.
            foundation: format!("prflx{}", self.prflx_count),
            component: COMPONENT,
            transport: Transport::Udp,
            priority,
            address: from,
            kind: CandidateKind::PeerReflexive,
            related: None,
        });
        Some(self.remotes.len() - 1)
    }

    /// Puts the signalled `candidate` in the place of the peer-reflexive remote candidate
    /// `index` learned at the same transport address. A connectivity check travels faster
    /// than signaling, so a check often arrives before the candidate it comes from (RFC 8838
    /// §11). The signalled type, priority and foundation win (RFC 8445 §7.3.1.3: "it will
    /// signal the actual foundation"); the pairs keep their index and so their state,
    /// validity and nomination. When the selected pair uses it, the caller hears the
    /// signalled candidate in a new [`IceEvent::SelectedPair`]: the one it got at selection
    /// said `prflx` for what the peer calls, say, its `host` candidate.
    pub(super) fn replace_peer_reflexive(&mut self, index: usize, candidate: Candidate) {
        for pair in self.checklist.pairs_mut() {
            if pair.remote == index {
                pair.foundation.1.clone_from(&candidate.foundation);
            }
        }
        self.remotes[index] = candidate;
        self.reprioritize();
        let Some(selected) = self.selected.and_then(|s| self.checklist.get(s)) else {
            return;
        };
        if selected.remote == index {
            let local = self.locals[selected.local].candidate.clone();
            let remote = self.remotes[index].clone();
            self.events
                .push_back(IceEvent::SelectedPair { local, remote });
        }
    }

    /// The local candidate at the mapped address a success response reported, or a new
    /// peer-reflexive one on the base of the checked pair (§7.2.5.3.1). It is not
    /// signalled and not paired: checks from it are checks from its base.
    pub(super) fn local_or_learn(&mut self, mapped: SocketAddr, checked_local: usize) -> usize {
        if let Some(known) = self
            .locals
            .iter()
            .position(|l| l.candidate.address == mapped)
        {
            return known;
        }
        let base = self.locals[checked_local].base;
        let preference = self.locals[checked_local].local_preference();
        let base_ip = self.locals[checked_local].candidate.address.ip();
        let candidate = Candidate {
            foundation: foundation(CandidateKind::PeerReflexive, base_ip, None),
            component: COMPONENT,
            transport: Transport::Udp,
            priority: candidate_priority(CandidateKind::PeerReflexive, preference, COMPONENT),
            address: mapped,
            kind: CandidateKind::PeerReflexive,
            related: Some(self.locals[checked_local].candidate.address),
        };
        self.push_local(candidate, base, false)
    }
}
