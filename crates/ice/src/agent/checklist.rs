//! The checklist (RFC 8445 §6.1.2): forming and pruning pairs, their order, the frozen
//! algorithm, and the triggered-check queue (§7.3.1.4).

use std::collections::VecDeque;

use super::pair::{CandidatePair, PairState};

/// The most pairs kept (RFC 8445 §6.1.2.5 recommends a limit of 100).
pub const MAX_PAIRS: usize = 100;

/// The pairs of the one data stream this agent runs, plus the triggered-check queue.
///
/// Pairs are never removed, only failed, so their indexes stay valid for the transactions
/// and valid-pair links that refer to them.
#[derive(Debug, Clone, Default)]
pub struct CheckList {
    pairs: Vec<CandidatePair>,
    triggered: VecDeque<usize>,
}

/// How many pairs of the checklist are in each state (RFC 8445 §6.1.2.6), for progress
/// reports while checks run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckCounts {
    /// Frozen: waiting for a pair of the same foundation to succeed.
    pub frozen: usize,
    /// Waiting for their turn.
    pub waiting: usize,
    /// A check sent, no answer yet.
    pub in_progress: usize,
    /// Checked and answered.
    pub succeeded: usize,
    /// Failed (timeout, error response, pruned at the end).
    pub failed: usize,
}

impl CheckCounts {
    /// Every pair counted.
    pub fn total(&self) -> usize {
        self.frozen + self.waiting + self.in_progress + self.succeeded + self.failed
    }
}

/// What [`CheckList::add`] did with a new pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The pair is new, at this index.
    New(usize),
    /// A pair with the same local candidate and remote address already exists (§6.1.2.4:
    /// redundant pairs are pruned), at this index.
    Existing(usize),
    /// The checklist is full (§6.1.2.5).
    Full,
}

impl CheckList {
    /// All pairs, in insertion order.
    pub fn pairs(&self) -> &[CandidatePair] {
        &self.pairs
    }

    /// All pairs, to change (states, valid links, nomination flags).
    pub fn pairs_mut(&mut self) -> &mut [CandidatePair] {
        &mut self.pairs
    }

    /// One pair.
    pub fn get(&self, index: usize) -> Option<&CandidatePair> {
        self.pairs.get(index)
    }

    /// One pair, to change.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut CandidatePair> {
        self.pairs.get_mut(index)
    }

    /// Finds the pair of local candidate `local` and remote candidate `remote`.
    pub fn find(&self, local: usize, remote: usize) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.local == local && p.remote == remote)
    }

    /// Adds a pair unless it is redundant or the list is full. `same_remote` tells whether
    /// an existing pair's remote candidate has the same address as the new one's (pruning,
    /// §6.1.2.4: same local base, same remote address → keep the one of higher priority;
    /// since pairs already use the base as local candidate, the existing pair stays and takes
    /// the higher priority).
    ///
    /// A new pair starts Waiting when no pair of its foundation is Waiting or In-Progress,
    /// Frozen otherwise (§6.1.2.6, with RFC 8838 §11 for pairs formed while checks run).
    pub fn add(&mut self, mut pair: CandidatePair, same_remote: impl Fn(usize) -> bool) -> Added {
        if let Some(existing) = self
            .pairs
            .iter()
            .position(|p| p.local == pair.local && same_remote(p.remote))
        {
            return Added::Existing(existing);
        }
        if self.pairs.len() >= MAX_PAIRS {
            return Added::Full;
        }
        pair.state = if self.foundation_busy(&pair.foundation) {
            PairState::Frozen
        } else {
            PairState::Waiting
        };
        self.pairs.push(pair);
        Added::New(self.pairs.len() - 1)
    }

    /// Puts a pair at the back of the triggered-check queue, in state Waiting (§7.3.1.4).
    pub fn trigger(&mut self, index: usize) {
        if let Some(pair) = self.pairs.get_mut(index) {
            pair.state = PairState::Waiting;
            if !self.triggered.contains(&index) {
                self.triggered.push_back(index);
            }
        }
    }

    /// True when [`Self::next_check`] would return a pair: a triggered one, a Waiting pair,
    /// or a Frozen pair whose foundation has nothing Waiting or In-Progress. (A Frozen pair
    /// behind an In-Progress one of its foundation is not due: reporting it would make the
    /// caller's timer fire for nothing, again and again.)
    pub fn has_check_due(&self) -> bool {
        let waiting = |i: &usize| self.pairs.get(*i).map(|p| p.state) == Some(PairState::Waiting);
        self.triggered.iter().any(waiting)
            || self.pairs.iter().any(|p| {
                p.state == PairState::Waiting
                    || (p.state == PairState::Frozen && !self.foundation_busy(&p.foundation))
            })
    }

    /// True when a pair of this foundation is Waiting or In-Progress.
    fn foundation_busy(&self, foundation: &(String, String)) -> bool {
        self.pairs.iter().any(|p| {
            &p.foundation == foundation
                && matches!(p.state, PairState::Waiting | PairState::InProgress)
        })
    }

    /// The pair to check at this Ta tick (§6.1.4.2): the head of the triggered queue; else
    /// the Waiting pair of highest priority; else, when no pair is Waiting, unfreeze per
    /// foundation the Frozen pair of highest priority whose foundation has nothing Waiting
    /// or In-Progress, and take the best of those. `None` when there is nothing to check.
    pub fn next_check(&mut self) -> Option<usize> {
        while let Some(index) = self.triggered.pop_front() {
            if self.pairs.get(index).map(|p| p.state) == Some(PairState::Waiting) {
                return Some(index);
            }
        }
        if let Some(best) = self.best_in(PairState::Waiting) {
            return Some(best);
        }
        let mut order: Vec<usize> = (0..self.pairs.len())
            .filter(|i| self.pairs[*i].state == PairState::Frozen)
            .collect();
        order.sort_by(|a, b| self.pairs[*b].priority.cmp(&self.pairs[*a].priority));
        for index in order {
            if !self.foundation_busy(&self.pairs[index].foundation) {
                self.pairs[index].state = PairState::Waiting;
            }
        }
        self.best_in(PairState::Waiting)
    }

    fn best_in(&self, state: PairState) -> Option<usize> {
        (0..self.pairs.len())
            .filter(|i| self.pairs[*i].state == state)
            .max_by_key(|i| (self.pairs[*i].priority, std::cmp::Reverse(*i)))
    }

    /// After a success: every Frozen pair with the same foundation becomes Waiting
    /// (§7.2.5.3.3).
    pub fn unfreeze_foundation(&mut self, foundation: &(String, String)) {
        for pair in &mut self.pairs {
            if pair.state == PairState::Frozen && &pair.foundation == foundation {
                pair.state = PairState::Waiting;
            }
        }
    }

    /// Recomputes every pair priority, after a role change (§7.2.5.1).
    pub fn reprioritize(&mut self, priority: impl Fn(&CandidatePair) -> u64) {
        for pair in &mut self.pairs {
            pair.priority = priority(pair);
        }
    }

    /// Stops the checks once a pair is nominated (§8.1.2 and §8.3): Frozen and Waiting pairs
    /// are dropped from consideration (marked Failed) and the triggered queue emptied.
    pub fn conclude(&mut self) {
        self.triggered.clear();
        for pair in &mut self.pairs {
            if matches!(pair.state, PairState::Frozen | PairState::Waiting) {
                pair.state = PairState::Failed;
            }
        }
    }

    /// True when no pair can still succeed: none is Frozen, Waiting or In-Progress, and none
    /// has succeeded.
    pub fn all_failed(&self) -> bool {
        !self.pairs.is_empty() && self.pairs.iter().all(|p| p.state == PairState::Failed)
    }

    /// The valid pair (§7.2.5.3.2) of highest priority, and whether it is nominated.
    pub fn best_valid(&self, nominated_only: bool) -> Option<usize> {
        (0..self.pairs.len())
            .filter(|i| {
                let p = &self.pairs[*i];
                self.pairs.iter().any(|q| q.valid == Some(*i)) && (!nominated_only || p.nominated)
            })
            .max_by_key(|i| (self.pairs[*i].priority, std::cmp::Reverse(*i)))
    }

    /// How many pairs are in each state.
    pub fn counts(&self) -> CheckCounts {
        let mut counts = CheckCounts::default();
        for pair in &self.pairs {
            let slot = match pair.state {
                PairState::Frozen => &mut counts.frozen,
                PairState::Waiting => &mut counts.waiting,
                PairState::InProgress => &mut counts.in_progress,
                PairState::Succeeded => &mut counts.succeeded,
                PairState::Failed => &mut counts.failed,
            };
            *slot += 1;
        }
        counts
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Appends a pair as is (a valid pair with a peer-reflexive local candidate, which is
    /// never checked itself, §7.2.5.3.2). Returns its index, or `None` when full.
    pub fn push_valid(&mut self, pair: CandidatePair) -> Option<usize> {
        if self.pairs.len() >= MAX_PAIRS {
            return None;
        }
        self.pairs.push(pair);
        Some(self.pairs.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(local: usize, remote: usize, foundation: &str, priority: u64) -> CandidatePair {
        CandidatePair {
            local,
            remote,
            foundation: (foundation.into(), "r".into()),
            priority,
            state: PairState::Frozen,
            valid: None,
            nominated: false,
            nominate_on_success: false,
        }
    }

    // RFC 8445 §6.1.2.6 / §6.1.4.2: one Waiting pair per foundation, highest priority first;
    // triggered checks go before ordinary ones (§7.3.1.4).
    #[test]
    fn frozen_algorithm_and_triggered_queue() {
        let mut list = CheckList::default();
        let differ = |_| false;
        assert_eq!(list.add(pair(0, 0, "a", 10), differ), Added::New(0));
        assert_eq!(list.add(pair(0, 1, "a", 30), differ), Added::New(1));
        assert_eq!(list.add(pair(1, 0, "b", 20), differ), Added::New(2));
        assert_eq!(list.get(0).unwrap().state, PairState::Waiting);
        assert_eq!(list.get(1).unwrap().state, PairState::Frozen);
        assert_eq!(list.get(2).unwrap().state, PairState::Waiting);
        list.trigger(1);
        assert_eq!(list.next_check(), Some(1));
        list.get_mut(1).unwrap().state = PairState::InProgress;
        assert_eq!(list.next_check(), Some(2));
        list.get_mut(2).unwrap().state = PairState::InProgress;
        assert_eq!(list.next_check(), Some(0));
        list.get_mut(0).unwrap().state = PairState::InProgress;
        assert_eq!(list.next_check(), None);
        assert!(
            !list.has_check_due(),
            "nothing due while every pair is in progress"
        );
        // A Frozen pair behind an In-Progress pair of its foundation is not due either...
        assert_eq!(list.add(pair(2, 0, "b", 5), differ), Added::New(3));
        assert_eq!(list.get(3).unwrap().state, PairState::Frozen);
        assert!(!list.has_check_due());
        assert_eq!(list.next_check(), None);
        // ...until that pair fails (§6.1.4.2).
        list.get_mut(2).unwrap().state = PairState::Failed;
        assert!(list.has_check_due());
        assert_eq!(list.next_check(), Some(3));
        // Pruning: same local candidate, same remote address.
        assert_eq!(list.add(pair(0, 5, "a", 99), |_| true), Added::Existing(0));
    }

    // RFC 8445 §6.1.2.6: every pair is in exactly one of five states; the counts say how
    // far the checks have come.
    #[test]
    fn counts_pairs_by_state() {
        let mut list = CheckList::default();
        assert_eq!(list.counts(), CheckCounts::default());
        let differ = |_| false;
        list.add(pair(0, 0, "a", 10), differ);
        list.add(pair(0, 1, "a", 30), differ);
        list.add(pair(1, 0, "b", 20), differ);
        list.add(pair(1, 1, "c", 5), differ);
        list.get_mut(2).unwrap().state = PairState::InProgress;
        list.get_mut(3).unwrap().state = PairState::Succeeded;
        let counts = list.counts();
        assert_eq!(
            counts,
            CheckCounts {
                frozen: 1,
                waiting: 1,
                in_progress: 1,
                succeeded: 1,
                failed: 0
            }
        );
        assert_eq!(counts.total(), 4);
        list.conclude();
        assert_eq!(list.counts().failed, 2);
    }
}
