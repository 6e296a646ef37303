//! What the agent does with STUN from the network: the peer's checks (RFC 8445 §7.3) and
//! the answers to ours (§7.2.5), and answers from STUN servers while gathering.

use std::net::SocketAddr;
use std::time::Instant;

use stun::Message;

use super::agent::{Base, IceAgent, Purpose, BUF_LEN};
use super::check::{self, Refusal};
use super::event::IceConnectionState;
use super::pair::{pair_priority, CandidatePair, PairState};
use crate::error::TransactionError;

/// RFC 8445 §7.3.1.1: the error code of a role conflict.
const ROLE_CONFLICT: u16 = 487;

impl IceAgent {
    /// A Binding request from the peer (§7.3).
    pub(super) fn handle_request(&mut self, base: Base, from: SocketAddr, message: &Message<'_>) {
        let header = *message.header();
        let incoming = match check::validate_request(message, &self.local_ufrag, &self.local_pwd) {
            Ok(incoming) => incoming,
            Err(refusal) => return self.refuse(base, from, &header, refusal),
        };
        // §7.3.1.1: repair a role conflict, or tell the peer to.
        if let Some(role) = incoming.role {
            if role.controlling == self.controlling {
                let we_win = self.tie_breaker >= role.tie_breaker;
                if self.controlling == we_win {
                    // Controlling and larger tie-breaker, or controlled and smaller: keep
                    // our role, the peer must switch.
                    return self.refuse(base, from, &header, Refusal::RoleConflict);
                }
                self.switch_role(!self.controlling);
            }
        }
        let mut buf = [0u8; BUF_LEN];
        if let Ok(len) = check::write_success(&mut buf, &header, from, &self.local_pwd) {
            self.send_from(base, from, buf[..len].to_vec());
        }
        let Some(local) = self.local_for_base(base) else {
            return;
        };
        // §7.3.1.3: a source we do not know is a peer-reflexive candidate.
        let Some(remote) = self.remote_or_learn(from, incoming.priority) else {
            return;
        };
        let Some(pair) = self
            .checklist
            .find(local, remote)
            .or_else(|| self.add_pair(local, remote))
        else {
            return;
        };
        self.trigger_check(pair);
        // §7.3.1.5: USE-CANDIDATE nominates the pair for the controlled agent.
        if incoming.use_candidate && !self.controlling {
            let p = &self.checklist.pairs()[pair];
            match (p.state, p.valid) {
                (PairState::Succeeded, Some(valid)) => {
                    self.checklist.pairs_mut()[valid].nominated = true
                }
                _ => self.checklist.pairs_mut()[pair].nominate_on_success = true,
            }
        }
    }

    /// §7.3.1.4: a check from the peer triggers one of ours on the same pair, unless that
    /// pair already succeeded. An In-Progress check is cancelled and replaced.
    fn trigger_check(&mut self, pair: usize) {
        if self.selected.is_some() {
            return; // the checks are over (§8.3); requests are still answered
        }
        let state = self.checklist.pairs()[pair].state;
        match state {
            PairState::Succeeded => {}
            PairState::InProgress => {
                for check in self.checks.values_mut() {
                    if check.pair == pair && check.purpose != Purpose::Consent {
                        check.cancelled = true;
                    }
                }
                self.checklist.trigger(pair);
            }
            PairState::Waiting | PairState::Frozen | PairState::Failed => {
                self.checklist.trigger(pair)
            }
        }
    }

    /// Answers a refused request (400/401 unsigned, 487 signed).
    fn refuse(&mut self, base: Base, from: SocketAddr, header: &stun::Header, refusal: Refusal) {
        let mut buf = [0u8; BUF_LEN];
        if let Ok(len) = check::write_error(&mut buf, header, refusal, &self.local_pwd) {
            self.send_from(base, from, buf[..len].to_vec());
        }
    }

    /// A response: to one of our checks, or to a gathering request.
    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        base: Base,
        from: SocketAddr,
        message: &Message<'_>,
    ) {
        let id = message.header().transaction_id;
        if let Some(gathering) = self.gathers.get_mut(&id) {
            gathering.tx.handle_input(now, from, message.as_bytes());
            self.flush_gathering(now);
            return;
        }
        if !self.checks.contains_key(&id) {
            return;
        }
        // §7.2.5: the response must be authenticated with the peer's password; anything
        // else is discarded as if it never came (an attacker cannot fail our pairs).
        let Some(pwd) = &self.remote_pwd else {
            return;
        };
        if message.verify_integrity(pwd.as_bytes()).is_err() {
            return;
        }
        let Some(mut check) = self.checks.remove(&id) else {
            return;
        };
        if !check.tx.handle_input(now, from, message.as_bytes()) {
            self.checks.insert(id, check);
            return;
        }
        let Some(result) = check.tx.poll_result() else {
            return;
        };
        let pair_local = self.checklist.pairs()[check.pair].local;
        // §7.2.5.2.1: the response must come from where the request went, to where it left.
        let symmetric = from == check.tx.server() && base == self.locals[pair_local].base;
        match result {
            Ok(response) if symmetric => {
                self.check_succeeded(now, check.pair, check.purpose, response.mapped)
            }
            Err(TransactionError::ErrorResponse {
                code: ROLE_CONFLICT,
                ..
            }) if check.purpose != Purpose::Consent => {
                // §7.2.5.1: switch role if it is still the one the request claimed, and
                // check the pair again.
                if check.controlling == self.controlling {
                    self.switch_role(!self.controlling);
                }
                if self.selected.is_none() {
                    self.checklist.trigger(check.pair);
                }
            }
            _ => self.check_failed(check.pair, check.purpose),
        }
    }

    /// §7.2.5.3: a success response makes a valid pair, unfreezes the foundation, and may
    /// complete a nomination.
    fn check_succeeded(&mut self, now: Instant, pair: usize, purpose: Purpose, mapped: SocketAddr) {
        if purpose == Purpose::Consent {
            if let Some(consent) = &mut self.consent {
                consent.last_seen = now;
            }
            if self.state == IceConnectionState::Disconnected {
                self.set_state(IceConnectionState::Connected);
            }
            return;
        }
        let checked = self.checklist.pairs()[pair].clone();
        // §7.2.5.3.1 / §7.2.5.3.2: the valid pair has the local candidate at the mapped
        // address (perhaps a new peer-reflexive one) and the checked pair's remote one.
        let local = self.local_or_learn(mapped, checked.local);
        let valid = if local == checked.local {
            pair
        } else if let Some(existing) = self.checklist.find(local, checked.remote) {
            existing
        } else {
            let priority = pair_priority(
                self.locals[local].candidate.priority,
                self.remotes[checked.remote].priority,
                self.controlling,
            );
            let valid_pair = CandidatePair {
                local,
                remote: checked.remote,
                foundation: (
                    self.locals[local].candidate.foundation.clone(),
                    self.remotes[checked.remote].foundation.clone(),
                ),
                priority,
                state: PairState::Succeeded,
                valid: None,
                nominated: false,
                nominate_on_success: false,
            };
            match self.checklist.push_valid(valid_pair) {
                Some(index) => index,
                None => pair,
            }
        };
        let pairs = self.checklist.pairs_mut();
        pairs[pair].state = PairState::Succeeded;
        pairs[pair].valid = Some(valid);
        pairs[valid].valid = Some(valid);
        let nominate = matches!(
            purpose,
            Purpose::Check {
                use_candidate: true
            }
        ) || (!self.controlling && pairs[pair].nominate_on_success);
        if nominate {
            pairs[valid].nominated = true;
        }
        self.checklist.unfreeze_foundation(&checked.foundation);
        self.first_valid_at.get_or_insert(now);
        if let Some(consent) = &mut self.consent {
            consent.last_seen = now;
        }
    }
}
