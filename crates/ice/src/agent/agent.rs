//! The ICE agent (RFC 8445, one component, UDP, full ICE, regular nomination).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use stun::{Class, Message, Method, TransactionId};

use super::candidate::{Candidate, CandidateKind, COMPONENT};
use super::checklist::CheckList;
use super::config::AgentConfig;
use super::consent::Consent;
use super::event::{AgentInput, AgentTransmit, IceConnectionState, IceEvent};
use crate::request::RequestOptions;
use crate::transaction::BindingTransaction;
use crate::turn_client::{TurnClient, TurnInput};

/// Where a local candidate sends from and receives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Base {
    /// A host socket.
    Host(SocketAddr),
    /// A TURN allocation (an index into the agent's relays): datagrams go through
    /// [`TurnClient::send_to`] and come back out of [`TurnClient::handle_input`].
    Relay(usize),
}

/// One TURN allocation made from a host socket, the base of a relayed candidate.
#[derive(Debug)]
pub(super) struct Relay {
    pub(super) client: TurnClient,
    /// The host socket the client talks to its server from.
    pub(super) host: SocketAddr,
    /// The host candidate of that socket.
    pub(super) host_local: usize,
    /// Still allocating (gathering is not complete).
    pub(super) pending: bool,
}

/// A local candidate and its base.
#[derive(Debug, Clone)]
pub(super) struct LocalCandidate {
    pub(super) candidate: Candidate,
    pub(super) base: Base,
}

impl LocalCandidate {
    /// Host and relayed candidates are paired; reflexive ones are represented by their base
    /// (RFC 8445 §6.1.2.4).
    pub(super) fn pairable(&self) -> bool {
        matches!(
            self.candidate.kind,
            CandidateKind::Host | CandidateKind::Relayed
        )
    }

    /// The local preference the candidate's priority was computed with (§5.1.2.1).
    pub(super) fn local_preference(&self) -> u16 {
        ((self.candidate.priority >> 8) & 0xFFFF) as u16
    }
}

/// Why a check transaction was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// A connectivity check (§7.2), possibly nominating (USE-CANDIDATE).
    Check { use_candidate: bool },
    /// A consent-freshness check on the selected pair (RFC 7675).
    Consent,
}

/// A Binding request of ours to the peer, in flight.
#[derive(Debug, Clone)]
pub(super) struct CheckTransaction {
    pub(super) tx: BindingTransaction,
    pub(super) pair: usize,
    pub(super) purpose: Purpose,
    /// Our role when the request left (§7.2.5.1 acts on a 487 only if it is unchanged).
    pub(super) controlling: bool,
    /// Replaced by a triggered check (§7.3.1.4): no more retransmissions, and a timeout
    /// means nothing, but a response still counts.
    pub(super) cancelled: bool,
}

/// A Binding request to a STUN server, for a server-reflexive candidate (§5.1.1.2).
#[derive(Debug, Clone)]
pub(super) struct Gathering {
    pub(super) tx: BindingTransaction,
    pub(super) base: usize,
}

/// Largest STUN message the agent writes (checks and responses are ~100 bytes).
pub(super) const BUF_LEN: usize = 512;
/// The most remote candidates (signalled and peer-reflexive) the agent keeps.
pub const MAX_REMOTE_CANDIDATES: usize = 64;

/// `ice-char` (RFC 8839 §5.4): what ufrag and password are drawn from.
const ICE_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A sans-IO ICE agent. See the [module documentation](super) for the run loop.
#[derive(Debug)]
pub struct IceAgent {
    pub(super) config: AgentConfig,
    pub(super) rng: StdRng,
    pub(super) controlling: bool,
    pub(super) tie_breaker: u64,
    pub(super) local_ufrag: String,
    pub(super) local_pwd: String,
    pub(super) remote_ufrag: Option<String>,
    pub(super) remote_pwd: Option<String>,
    pub(super) locals: Vec<LocalCandidate>,
    pub(super) remotes: Vec<Candidate>,
    pub(super) remote_end: bool,
    pub(super) host_count: u16,
    pub(super) prflx_count: u32,
    pub(super) checklist: CheckList,
    pub(super) checks: BTreeMap<TransactionId, CheckTransaction>,
    pub(super) gathers: BTreeMap<TransactionId, Gathering>,
    pub(super) relays: Vec<Relay>,
    pub(super) gathering_reported: bool,
    pub(super) last_check_sent: Option<Instant>,
    /// The latest `now` seen: when no check has been sent yet, the first is due then.
    pub(super) latest: Instant,
    pub(super) first_valid_at: Option<Instant>,
    pub(super) nominating: Option<usize>,
    pub(super) selected: Option<usize>,
    pub(super) state: IceConnectionState,
    pub(super) consent: Option<Consent>,
    pub(super) transmits: VecDeque<AgentTransmit>,
    pub(super) events: VecDeque<IceEvent>,
}

impl IceAgent {
    /// A new agent. Its ufrag (8 `ice-char`s, 48 bits; RFC 8445 §5.3 asks for at least 24),
    /// password (24, 144 bits; at least 128) and tie-breaker come from the RNG seeded with
    /// `seed`, as do all transaction ids.
    pub fn new(now: Instant, config: AgentConfig, seed: [u8; 32]) -> Self {
        let mut rng = StdRng::from_seed(seed);
        let local_ufrag = random_ice_string(&mut rng, 8);
        let local_pwd = random_ice_string(&mut rng, 24);
        let tie_breaker = rng.next_u64();
        IceAgent {
            controlling: config.controlling,
            config,
            rng,
            tie_breaker,
            local_ufrag,
            local_pwd,
            remote_ufrag: None,
            remote_pwd: None,
            locals: Vec::new(),
            remotes: Vec::new(),
            remote_end: false,
            host_count: 0,
            prflx_count: 0,
            checklist: CheckList::default(),
            checks: BTreeMap::new(),
            gathers: BTreeMap::new(),
            relays: Vec::new(),
            gathering_reported: true,
            last_check_sent: None,
            latest: now,
            first_valid_at: None,
            nominating: None,
            selected: None,
            state: IceConnectionState::New,
            consent: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Our (ufrag, password), to signal to the peer.
    pub fn local_credentials(&self) -> (&str, &str) {
        (&self.local_ufrag, &self.local_pwd)
    }

    /// The peer's ufrag and password. Checks wait for them; requests from the peer are
    /// answered before they are known (RFC 8445 §7.3). Later calls replace them (an ICE
    /// restart is not supported: the checklist is kept).
    pub fn set_remote_credentials(&mut self, ufrag: &str, pwd: &str) {
        self.remote_ufrag = Some(ufrag.to_owned());
        self.remote_pwd = Some(pwd.to_owned());
    }

    /// True while this agent is the controlling one (it may change on a role conflict).
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// The tie-breaker (RFC 8445 §7.1.3), for tests that stage role conflicts.
    pub fn tie_breaker(&self) -> u64 {
        self.tie_breaker
    }

    /// The current connection state.
    pub fn state(&self) -> IceConnectionState {
        self.state
    }

    /// Adds a host candidate for the local UDP socket `addr` (RFC 8445 §5.1.1.1), pairs it
    /// with the remote candidates, and starts gathering a server-reflexive candidate from
    /// it at each STUN server of its address family (§5.1.1.2). Several host sockets get
    /// decreasing local preferences, in the order they are added.
    pub fn add_host_candidate(&mut self, now: Instant, addr: SocketAddr) {
        self.latest = self.latest.max(now);
        if self
            .locals
            .iter()
            .any(|l| l.candidate.kind == CandidateKind::Host && l.candidate.address == addr)
        {
            return;
        }
        let preference = 65535 - self.host_count;
        self.host_count = self.host_count.saturating_add(1);
        let candidate =
            Candidate::new(CandidateKind::Host, addr, addr.ip(), None, preference, None);
        let index = self.push_local(candidate, Base::Host(addr), true);
        self.gathering_reported = false;
        for server in self.config.stun_servers.clone() {
            if server.is_ipv4() != addr.is_ipv4() {
                continue;
            }
            let id = self.transaction_id();
            let Ok(tx) = BindingTransaction::new(
                now,
                server,
                id,
                &RequestOptions::default(),
                self.config.gather_timing,
            ) else {
                continue;
            };
            self.gathers.insert(id, Gathering { tx, base: index });
            self.gathering_reported = false;
        }
        for (server, credentials) in self.config.turn_servers.clone() {
            if server.is_ipv4() != addr.is_ipv4() {
                continue;
            }
            let mut seed = [0u8; 32];
            self.rng.fill_bytes(&mut seed);
            self.relays.push(Relay {
                client: TurnClient::new(now, server, credentials, seed),
                host: addr,
                host_local: index,
                pending: true,
            });
        }
        self.flush_gathering(now);
        self.flush_relays();
        self.pair_local(index);
    }

    /// Adds a remote candidate (trickle: at any time, before or after checks start). Other
    /// components are ignored. A candidate at the address of a peer-reflexive one learned
    /// from a check takes its place, even after that one was selected (RFC 8445 §7.3.1.3,
    /// RFC 8838 §11): see [`IceAgent::replace_peer_reflexive`].
    pub fn add_remote_candidate(&mut self, now: Instant, candidate: Candidate) {
        self.latest = self.latest.max(now);
        if candidate.component != COMPONENT {
            return;
        }
        if let Some(existing) = self
            .remotes
            .iter()
            .position(|r| r.address == candidate.address)
        {
            if self.remotes[existing].kind == CandidateKind::PeerReflexive {
                self.replace_peer_reflexive(existing, candidate);
            }
            return;
        }
        if self.remotes.len() >= MAX_REMOTE_CANDIDATES {
            // Bounded memory: a peer trickling without end is ignored past the limit
            // (browsers gather a handful; the pair limit is lower still).
            return;
        }
        self.remotes.push(candidate);
        let remote = self.remotes.len() - 1;
        for local in 0..self.locals.len() {
            if self.locals[local].pairable() {
                self.add_pair(local, remote);
            }
        }
    }

    /// The peer has no more candidates (RFC 8838 §8.2): once every pair has failed, the
    /// agent may fail.
    pub fn end_of_remote_candidates(&mut self) {
        self.remote_end = true;
    }

    /// The selected pair, (local, remote), once nomination is done.
    pub fn selected_pair(&self) -> Option<(&Candidate, &Candidate)> {
        let pair = self.checklist.get(self.selected?)?;
        Some((
            &self.locals.get(pair.local)?.candidate,
            self.remotes.get(pair.remote)?,
        ))
    }

    /// How many candidate pairs are in each state: progress while the checks run.
    pub fn check_counts(&self) -> super::checklist::CheckCounts {
        self.checklist.counts()
    }

    /// The local candidates gathered so far, peer-reflexive ones included.
    pub fn local_candidates(&self) -> impl Iterator<Item = &Candidate> {
        self.locals.iter().map(|l| &l.candidate)
    }

    /// The remote candidates, signalled or learned.
    pub fn remote_candidates(&self) -> &[Candidate] {
        &self.remotes
    }

    /// The next datagram to send. Call until `None` after every other call.
    pub fn poll_transmit(&mut self) -> Option<AgentTransmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        if !self.gathering_reported
            && self.gathers.is_empty()
            && self.relays.iter().all(|r| !r.pending)
        {
            self.gathering_reported = true;
            return Some(IceEvent::GatheringComplete);
        }
        None
    }

    /// Application data over the selected pair; `None` before a pair is selected and after
    /// the agent failed (RFC 7675 §5.1: no data without consent).
    pub fn send_data(&mut self, now: Instant, data: &[u8]) -> Option<AgentTransmit> {
        if self.state == IceConnectionState::Failed {
            return None;
        }
        let pair = self.checklist.get(self.selected?)?;
        let base = self.locals.get(pair.local)?.base;
        let destination = self.remotes.get(pair.remote)?.address;
        match base {
            Base::Host(source) => Some(AgentTransmit {
                source,
                destination,
                payload: data.to_vec(),
            }),
            Base::Relay(i) => {
                let relay = self.relays.get_mut(i)?;
                let t = relay.client.send_to(now, destination, data);
                let source = relay.host;
                // Control traffic the send caused (a permission refresh) goes first.
                self.flush_relays();
                Some(AgentTransmit {
                    source,
                    destination: t.destination,
                    payload: t.payload,
                })
            }
        }
    }

    /// A datagram that arrived on host socket `local` from `from`.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        local: SocketAddr,
        from: SocketAddr,
        packet: &'a [u8],
    ) -> AgentInput<'a> {
        self.latest = self.latest.max(now);
        // Datagrams from a TURN server to the socket its client uses go to that client
        // first; what it does not claim (a Binding answer to a gathering request sent to
        // the same server) goes on.
        for i in 0..self.relays.len() {
            let relay = &mut self.relays[i];
            if relay.host != local || relay.client.server() != from {
                continue;
            }
            match relay.client.handle_input(now, from, packet) {
                TurnInput::NotMine => continue,
                TurnInput::Consumed => {
                    self.flush_relays();
                    self.update(now);
                    return AgentInput::Consumed;
                }
                TurnInput::Data { peer, payload } => {
                    let input = self.handle_on_base(now, Base::Relay(i), peer, payload);
                    self.flush_relays();
                    return input;
                }
            }
        }
        self.handle_on_base(now, Base::Host(local), from, packet)
    }

    fn handle_on_base<'a>(
        &mut self,
        now: Instant,
        base: Base,
        from: SocketAddr,
        packet: &'a [u8],
    ) -> AgentInput<'a> {
        if stun::looks_like_stun(packet) {
            let Ok(message) = Message::decode(packet) else {
                return AgentInput::Ignored;
            };
            if message.header().message_type.method != Method::BINDING {
                return AgentInput::Ignored;
            }
            match message.header().message_type.class {
                Class::Request => self.handle_request(base, from, &message),
                Class::Indication => {} // a keepalive (RFC 8445 §11): nothing to do
                Class::Success | Class::Error => self.handle_response(now, base, from, &message),
            }
            self.update(now);
            return AgentInput::Consumed;
        }
        if self.remotes.iter().any(|r| r.address == from) {
            AgentInput::Data(packet)
        } else {
            AgentInput::Ignored
        }
    }

    /// Ends the session politely: every TURN allocation is released at once (Refresh with
    /// LIFETIME 0, RFC 8656 §7) instead of lingering on the server until it expires. The
    /// requests are in [`Self::poll_transmit`]; send them, then drop the agent. Data sent on
    /// a relayed pair after this is lost.
    pub fn close(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
        for relay in &mut self.relays {
            relay.client.deallocate(now);
        }
        self.flush_relays();
    }

    /// Moves the clock: retransmissions, paced checks, nomination, consent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.latest = self.latest.max(now);
        for gathering in self.gathers.values_mut() {
            gathering.tx.handle_timeout(now);
        }
        self.flush_gathering(now);
        for check in self.checks.values_mut() {
            check.tx.handle_timeout(now);
        }
        self.flush_checks(now);
        for relay in &mut self.relays {
            relay.client.handle_timeout(now);
        }
        self.flush_relays();
        self.pace_checks(now);
        self.update(now);
        self.run_consent(now);
    }

    /// When [`Self::handle_timeout`] should next be called; a past time means now.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        for gathering in self.gathers.values() {
            consider(gathering.tx.poll_timeout());
        }
        for check in self.checks.values() {
            consider(check.tx.poll_timeout());
        }
        for relay in &self.relays {
            consider(relay.client.poll_timeout());
        }
        if self.checks_may_run() && self.checklist.has_check_due() {
            consider(Some(self.next_pacing_slot()));
        }
        let live = self.state != IceConnectionState::Failed;
        if let (Some(first), true) = (self.first_valid_at, live && self.nomination_pending()) {
            consider(Some(first + self.config.nomination_delay));
        }
        if let Some(consent) = &self.consent {
            if self.state != IceConnectionState::Failed {
                consider(Some(consent.next_check));
                let since = consent.last_seen;
                if self.state == IceConnectionState::Connected {
                    consider(Some(since + self.config.disconnected_timeout));
                }
                consider(Some(since + self.config.consent_timeout));
            }
        }
        next
    }
}

fn random_ice_string(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ICE_CHARS[rng.gen_range(0..ICE_CHARS.len())]))
        .collect()
}
