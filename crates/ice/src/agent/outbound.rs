//! What the agent sends on its own: paced checks (RFC 8445 §6.1.4.2, Ta §14.2),
//! retransmissions, nomination (§8.1.1), consent checks (RFC 7675), and the state that
//! follows from them.

use std::net::SocketAddr;
use std::time::Instant;

use super::agent::{Base, CheckTransaction, IceAgent, Purpose, BUF_LEN};
use super::candidate::{candidate_priority, CandidateKind, COMPONENT};
use super::check::{self, CheckRequest, RoleClaim};
use super::consent::{Consent, Freshness};
use super::event::{AgentTransmit, IceConnectionState, IceEvent};
use super::pair::PairState;
use crate::transaction::BindingTransaction;
use crate::turn_client::TurnEvent;

impl IceAgent {
    /// Queues a datagram from `base` to `destination`: straight from a host socket, or
    /// wrapped by the TURN client of a relayed base (Send indication or ChannelData).
    pub(super) fn send_from(&mut self, base: Base, destination: SocketAddr, payload: Vec<u8>) {
        match base {
            Base::Host(source) => self.transmits.push_back(AgentTransmit {
                source,
                destination,
                payload,
            }),
            Base::Relay(i) => {
                let now = self.latest;
                let Some(relay) = self.relays.get_mut(i) else {
                    return;
                };
                let t = relay.client.send_to(now, destination, &payload);
                let source = relay.host;
                self.flush_relays();
                self.transmits.push_back(AgentTransmit {
                    source,
                    destination: t.destination,
                    payload: t.payload,
                });
            }
        }
    }

    /// Sends the TURN clients' control traffic and reads their events: an allocation
    /// gives a relayed candidate (and its mapped address a server-reflexive one).
    pub(super) fn flush_relays(&mut self) {
        for i in 0..self.relays.len() {
            while let Some(t) = self.relays[i].client.poll_transmit() {
                let source = self.relays[i].host;
                self.transmits.push_back(AgentTransmit {
                    source,
                    destination: t.destination,
                    payload: t.payload,
                });
            }
            while let Some(event) = self.relays[i].client.poll_event() {
                match event {
                    TurnEvent::Allocated {
                        relayed, mapped, ..
                    } => {
                        self.relays[i].pending = false;
                        self.add_relayed(i, relayed, mapped);
                    }
                    TurnEvent::AllocationFailed(_) | TurnEvent::Expired => {
                        self.relays[i].pending = false;
                    }
                    _ => {}
                }
            }
        }
    }

    /// A relayed candidate (§5.1.1.2) on allocation `relay`, paired with every remote
    /// candidate; the allocation's mapped address is a server-reflexive candidate too.
    fn add_relayed(&mut self, relay: usize, relayed: SocketAddr, mapped: SocketAddr) {
        let host_local = self.relays[relay].host_local;
        let server = self.relays[relay].client.server();
        let preference = self.locals[host_local].local_preference();
        let base_ip = self.locals[host_local].candidate.address.ip();
        let candidate = super::candidate::Candidate::new(
            CandidateKind::Relayed,
            relayed,
            base_ip,
            Some(server.ip()),
            preference,
            Some(mapped),
        );
        let local = self.push_local(candidate, Base::Relay(relay), true);
        self.add_server_reflexive(host_local, mapped, server);
        self.pair_local(local);
    }

    /// Checks start once the peer's credentials are known, and stop once a pair is
    /// selected or the agent failed.
    pub(super) fn checks_may_run(&self) -> bool {
        self.remote_pwd.is_some()
            && self.selected.is_none()
            && self.state != IceConnectionState::Failed
    }

    /// When the next paced check may leave: Ta after the last one (§14.2).
    pub(super) fn next_pacing_slot(&self) -> Instant {
        match self.last_check_sent {
            Some(last) => last + self.config.ta,
            None => self.latest,
        }
    }

    /// One new check per Ta: the triggered queue first, then the checklist (§6.1.4.2).
    pub(super) fn pace_checks(&mut self, now: Instant) {
        if !self.checks_may_run() || now < self.next_pacing_slot() {
            return;
        }
        if let Some(pair) = self.checklist.next_check() {
            self.start_check(
                now,
                pair,
                Purpose::Check {
                    use_candidate: false,
                },
            );
        }
    }

    /// Sends a Binding request on `pair` (§7.2.2, §7.2.4).
    pub(super) fn start_check(&mut self, now: Instant, pair: usize, purpose: Purpose) {
        let (Some(remote_ufrag), Some(remote_pwd)) = (&self.remote_ufrag, &self.remote_pwd) else {
            return;
        };
        let Some(p) = self.checklist.get(pair) else {
            return;
        };
        let local = &self.locals[p.local];
        let remote = self.remotes[p.remote].address;
        let use_candidate = matches!(
            purpose,
            Purpose::Check {
                use_candidate: true
            }
        );
        let request = CheckRequest {
            remote_ufrag,
            local_ufrag: &self.local_ufrag,
            remote_pwd,
            // §7.1.1: the priority a peer-reflexive candidate from this base would get.
            priority: candidate_priority(
                CandidateKind::PeerReflexive,
                local.local_preference(),
                COMPONENT,
            ),
            role: RoleClaim {
                controlling: self.controlling,
                tie_breaker: self.tie_breaker,
            },
            use_candidate,
        };
        let mut id = [0u8; 12];
        rand::RngCore::fill_bytes(&mut self.rng, &mut id);
        let id = stun::TransactionId(id);
        let mut buf = [0u8; BUF_LEN];
        let Ok(len) = check::write_request(&mut buf, id, &request) else {
            return;
        };
        let timing = match purpose {
            Purpose::Check { .. } => self.config.check_timing,
            Purpose::Consent => self.config.consent_check_timing,
        };
        let Ok(tx) = BindingTransaction::with_request(now, remote, id, &buf[..len], timing) else {
            return;
        };
        if let Purpose::Check { .. } = purpose {
            if let Some(p) = self.checklist.get_mut(pair) {
                if p.state != PairState::Succeeded {
                    p.state = PairState::InProgress;
                }
            }
            self.last_check_sent = Some(now);
            if self.state == IceConnectionState::New {
                self.set_state(IceConnectionState::Checking);
            }
        }
        self.checks.insert(
            id,
            CheckTransaction {
                tx,
                pair,
                purpose,
                controlling: self.controlling,
                cancelled: false,
            },
        );
        self.flush_checks(now);
    }

    /// Sends due (re)transmissions of checks and handles the ones that timed out.
    pub(super) fn flush_checks(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut finished = Vec::new();
        for (id, check) in &mut self.checks {
            while let Some(t) = check.tx.poll_transmit(now) {
                if !check.cancelled {
                    out.push((check.pair, t.destination, t.payload.to_vec()));
                }
            }
            if let Some(result) = check.tx.poll_result() {
                finished.push((*id, result.is_err()));
            }
        }
        for (pair, destination, payload) in out {
            let base = self.locals[self.checklist.pairs()[pair].local].base;
            self.send_from(base, destination, payload);
        }
        for (id, timed_out) in finished {
            let Some(check) = self.checks.remove(&id) else {
                continue;
            };
            // Only timeouts end up here; responses are handled as they arrive.
            if timed_out && !check.cancelled {
                self.check_failed(check.pair, check.purpose);
            }
        }
    }

    /// A check got no usable answer: its pair fails (§7.2.5.2), and a failed nomination
    /// lets another pair be nominated.
    pub(super) fn check_failed(&mut self, pair: usize, purpose: Purpose) {
        if purpose == Purpose::Consent {
            return; // consent is judged by time since the last response, not per check
        }
        if self.nominating == Some(pair) {
            self.nominating = None;
        }
        if let Some(p) = self.checklist.get_mut(pair) {
            if p.state == PairState::InProgress {
                p.state = PairState::Failed;
            }
        }
    }

    /// Sends due Binding requests to STUN servers and handles ended gatherings.
    pub(super) fn flush_gathering(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut finished = Vec::new();
        for (id, gathering) in &mut self.gathers {
            while let Some(t) = gathering.tx.poll_transmit(now) {
                out.push((gathering.base, t.destination, t.payload.to_vec()));
            }
            if let Some(result) = gathering.tx.poll_result() {
                finished.push((*id, result.ok().map(|r| (r.mapped, r.from))));
            }
        }
        for (local, destination, payload) in out {
            let base = self.locals[local].base;
            self.send_from(base, destination, payload);
        }
        for (id, mapped) in finished {
            let Some(gathering) = self.gathers.remove(&id) else {
                continue;
            };
            if let Some((mapped, server)) = mapped {
                self.add_server_reflexive(gathering.base, mapped, server);
            }
        }
    }

    /// A server-reflexive candidate (§5.1.1.2), unless it equals a candidate we have
    /// (no NAT: the mapped address is the host address, §5.1.3).
    pub(super) fn add_server_reflexive(
        &mut self,
        base: usize,
        mapped: SocketAddr,
        server: SocketAddr,
    ) {
        if self.locals.iter().any(|l| l.candidate.address == mapped) {
            return;
        }
        let local = &self.locals[base];
        let candidate = super::candidate::Candidate::new(
            CandidateKind::ServerReflexive,
            mapped,
            local.candidate.address.ip(),
            Some(server.ip()),
            local.local_preference(),
            Some(local.candidate.address),
        );
        let base = local.base;
        self.push_local(candidate, base, true);
    }

    /// True while the controlling agent has a valid pair but has not nominated yet.
    pub(super) fn nomination_pending(&self) -> bool {
        self.controlling
            && self.selected.is_none()
            && self.nominating.is_none()
            && self.first_valid_at.is_some()
    }

    /// After any change: nominate (controlling, §8.1.1), select a nominated pair, fail when
    /// nothing can succeed any more.
    pub(super) fn update(&mut self, now: Instant) {
        if self.state == IceConnectionState::Failed {
            return;
        }
        self.maybe_nominate(now);
        self.maybe_select(now);
        if self.selected.is_none()
            && self.remote_end
            && self.gathers.is_empty()
            && self.nominating.is_none()
            && (self.checklist.is_empty() || self.checklist.all_failed())
            && self.remote_pwd.is_some()
        {
            self.set_state(IceConnectionState::Failed);
        }
    }

    /// Regular nomination (§8.1.1): the controlling agent picks the valid pair of highest
    /// priority once no pair of higher priority is still pending, or after
    /// `nomination_delay`, and checks it again with USE-CANDIDATE.
    fn maybe_nominate(&mut self, now: Instant) {
        if !self.nomination_pending() {
            return;
        }
        let Some(best) = self.checklist.best_valid(false) else {
            return;
        };
        let best_priority = self.checklist.pairs()[best].priority;
        let better_pending = self.checklist.pairs().iter().any(|p| {
            p.priority > best_priority
                && matches!(
                    p.state,
                    PairState::Frozen | PairState::Waiting | PairState::InProgress
                )
        });
        let waited = self
            .first_valid_at
            .is_some_and(|first| now >= first + self.config.nomination_delay);
        if better_pending && !waited {
            return;
        }
        self.nominating = Some(best);
        self.start_check(
            now,
            best,
            Purpose::Check {
                use_candidate: true,
            },
        );
    }

    /// Selects the nominated valid pair of highest priority (§8.1.1, §8.2).
    fn maybe_select(&mut self, now: Instant) {
        let Some(best) = self.checklist.best_valid(true) else {
            return;
        };
        if let Some(current) = self.selected {
            if current == best
                || self.checklist.pairs()[current].priority >= self.checklist.pairs()[best].priority
            {
                return;
            }
        }
        let first = self.selected.is_none();
        self.selected = Some(best);
        self.nominating = None;
        // §8.1.2 / §8.3: with a nominated pair the checks are over.
        self.checklist.conclude();
        for check in self.checks.values_mut() {
            if check.purpose != Purpose::Consent {
                check.cancelled = true;
            }
        }
        let pair = &self.checklist.pairs()[best];
        let local = self.locals[pair.local].candidate.clone();
        let remote = self.remotes[pair.remote].clone();
        // Data over a relayed pair goes in ChannelData, 4 bytes of overhead instead of 36
        // (RFC 8656 §12).
        if let Base::Relay(i) = self.locals[pair.local].base {
            if let Some(relay) = self.relays.get_mut(i) {
                relay.client.bind_channel(now, remote.address);
            }
            self.flush_relays();
        }
        self.events
            .push_back(IceEvent::SelectedPair { local, remote });
        if first {
            self.consent = Some(Consent::start(
                now,
                self.config.consent_interval,
                &mut self.rng,
            ));
        }
        self.set_state(IceConnectionState::Connected);
    }

    /// Consent freshness (RFC 7675 §5.1): a check every ~5 s; silence means Disconnected,
    /// then Failed.
    pub(super) fn run_consent(&mut self, now: Instant) {
        let (Some(mut consent), Some(selected)) = (self.consent, self.selected) else {
            return;
        };
        if self.state == IceConnectionState::Failed {
            return;
        }
        match consent.freshness(
            now,
            self.config.disconnected_timeout,
            self.config.consent_timeout,
        ) {
            Freshness::Lost => {
                self.set_state(IceConnectionState::Failed);
                return;
            }
            Freshness::Stale => self.set_state(IceConnectionState::Disconnected),
            Freshness::Fresh => {}
        }
        if now >= consent.next_check {
            consent.checked(now, self.config.consent_interval, &mut self.rng);
            self.consent = Some(consent);
            self.start_check(now, selected, Purpose::Consent);
        }
    }

    /// Changes the state, with an event when it is a change.
    pub(super) fn set_state(&mut self, state: IceConnectionState) {
        if self.state != state {
            self.state = state;
            self.events.push_back(IceEvent::StateChanged(state));
        }
    }
}
