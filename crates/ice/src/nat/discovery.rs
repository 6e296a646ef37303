//! The NAT behaviour discovery state machine: which probe to send next, and what the answers
//! mean (RFC 5780 §4, RFC 3489 §10.1).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stun::TransactionId;

use super::behaviour::{Filtering, Mapping, NatType};
use super::config::NatConfig;
use super::lifetime_run::LifetimeRun;
use super::probe::Probe;
use super::report::{
    NatReport, NatSocket, Note, ProbeOutcome, ProbeRecord, ServerObservation, Test, Undecided,
};
use crate::request::RequestOptions;
use crate::transaction::BindingTransaction;

/// A datagram discovery wants sent: `payload` to `destination`, from `socket`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatTransmit<'a> {
    /// The socket to send from.
    pub socket: NatSocket,
    /// Where to send it.
    pub destination: SocketAddr,
    /// The bytes, borrowed from the core.
    pub payload: &'a [u8],
}

/// A source of fresh transaction ids (RFC 8489 §5: uniformly and cryptographically random;
/// tests use a counter).
type IdSource = Box<dyn FnMut() -> TransactionId + Send>;

/// NAT behaviour discovery against one or more STUN servers, without sockets or clocks.
///
/// The order of the probes (RFC 5780 §4.5 leaves it to the client):
/// 1. test I to the first server; if it sends OTHER-ADDRESS, it becomes the behaviour server;
/// 2. on the behaviour server: filtering tests II and III (RFC 5780 §4.4) and the hairpinning
///    test, together — filtering first, because the mapping tests send to the server's other
///    address and would open the very filters under test;
/// 3. mapping test II, then III if needed (RFC 5780 §4.3);
/// 4. test I to every other server (more servers also reveal endpoint-dependent mapping
///    without RFC 5780 support), each one checked for OTHER-ADDRESS as in step 1;
/// 5. hairpinning, if no behaviour server ran it;
/// 6. when asked, the binding lifetimes (RFC 5780 §4.6) against the behaviour server (or the
///    first that answered), each wait on a fresh binding ([`super::lifetime_run`]).
///
/// Probes start at least [`NatConfig::pace`] apart (RFC 5780 §5).
pub struct NatDiscovery {
    config: NatConfig,
    servers: Vec<SocketAddr>,
    local: SocketAddr,
    ids: IdSource,
    start: Instant,
    /// Tests of the current step that have not started yet.
    queue: VecDeque<Test>,
    /// The earliest start of the next probe (pacing, or the end of a lifetime wait).
    not_before: Instant,
    active: Vec<Probe>,
    found: Findings,
    records: Vec<ProbeRecord>,
    lifetime: Option<LifetimeRun>,
    state: State,
}

#[derive(Debug)]
enum State {
    Running,
    Finished(Option<Box<NatReport>>),
}

/// The outcome of each test, as it comes in.
#[derive(Debug, Default)]
struct Findings {
    /// Test I per server; `None` until it has run.
    basic: Vec<Option<ProbeOutcome>>,
    /// The server the RFC 5780 tests run against, and its OTHER-ADDRESS.
    behaviour: Option<(SocketAddr, SocketAddr)>,
    /// Servers whose OTHER-ADDRESS could not be used (same IP or port as the server).
    unusable_other: Vec<(SocketAddr, SocketAddr)>,
    filtering_ii: Option<ProbeOutcome>,
    filtering_iii: Option<ProbeOutcome>,
    mapping_ii: Option<ProbeOutcome>,
    mapping_iii: Option<ProbeOutcome>,
    hairpin: Option<ProbeOutcome>,
}

/// What to do next.
enum Step {
    /// Start these probes, paced.
    Probes(Vec<Test>),
    /// Let the binding-lifetime test run: it starts its own probes.
    Lifetime,
    /// Discovery is over.
    Done,
}

impl NatDiscovery {
    /// Starts discovery at `now` from a primary socket bound to `local`, against `servers`
    /// (in order of preference). `local` must be the socket's real address, not a wildcard:
    /// comparing it with the mapped address tells "no NAT" (RFC 5780 §4.3). `ids` draws a
    /// fresh transaction id for every probe.
    pub fn new(
        now: Instant,
        config: NatConfig,
        servers: Vec<SocketAddr>,
        local: SocketAddr,
        ids: impl FnMut() -> TransactionId + Send + 'static,
    ) -> Self {
        let found = Findings {
            basic: vec![None; servers.len()],
            ..Findings::default()
        };
        let mut discovery = NatDiscovery {
            config,
            servers,
            local,
            ids: Box::new(ids),
            start: now,
            queue: VecDeque::new(),
            not_before: now,
            active: Vec::new(),
            found,
            records: Vec::new(),
            lifetime: None,
            state: State::Running,
        };
        discovery.plan(now);
        discovery
    }

    /// True once the report is ready (whether or not [`Self::poll_result`] has taken it).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished(_))
    }

    /// The probes that have ended so far, in order; for progress reports.
    pub fn probes(&self) -> &[ProbeRecord] {
        &self.records
    }

    /// The next datagram to send, if one is due at `now`. Call it until it returns `None`
    /// after every input and timeout; the send counts as made at `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<NatTransmit<'_>> {
        self.start_due(now);
        let index = self.active.iter_mut().position(|p| p.take_send(now))?;
        let probe = &self.active[index];
        Some(NatTransmit {
            socket: probe.socket,
            destination: probe.transaction().server(),
            payload: probe.transaction().request(),
        })
    }

    /// When [`Self::handle_timeout`] (and then [`Self::poll_transmit`]) should next be
    /// called; `None` once finished. A time in the past means "now".
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let next_start = (!self.queue.is_empty()).then_some(self.not_before);
        let next_trial = self
            .lifetime
            .as_ref()
            .and_then(LifetimeRun::poll_timeout)
            .map(|at| at.max(self.not_before));
        self.active
            .iter()
            .filter_map(Probe::poll_timeout)
            .chain(next_start)
            .chain(next_trial)
            .min()
    }

    /// Advances the clock: retransmissions, and probes that give up.
    pub fn handle_timeout(&mut self, now: Instant) {
        for probe in &mut self.active {
            probe.handle_timeout(now);
        }
        self.reap(now);
    }

    /// Offers a datagram that arrived on `socket` from `from`. Returns true when it belonged
    /// to a probe under way; anything else (late answers, stray packets) is ignored.
    pub fn handle_input(
        &mut self,
        now: Instant,
        socket: NatSocket,
        from: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        let taken = self
            .active
            .iter_mut()
            .any(|probe| probe.handle_input(now, socket, from, bytes));
        if taken {
            self.reap(now);
        }
        taken
    }

    /// The report, once: `Some` the first time it is asked for after discovery ended.
    pub fn poll_result(&mut self) -> Option<NatReport> {
        match &mut self.state {
            State::Finished(slot) => slot.take().map(|report| *report),
            State::Running => None,
        }
    }

    /// Starts the next queued probe, or the next probe of the lifetime test, if its time
    /// has come.
    fn start_due(&mut self, now: Instant) {
        if now < self.not_before {
            return;
        }
        let Some(test) = self.queue.pop_front() else {
            self.start_lifetime_probe(now);
            return;
        };
        self.not_before = later(now, self.config.pace);
        let Some((socket, destination, options)) = self.probe_spec(test) else {
            // The step was planned only once what the probe needs was known.
            let outcome = ProbeOutcome::NoAnswer { sends: 0 };
            self.absorb(now, test, NatSocket::Primary, self.local, now, outcome);
            self.plan(now);
            return;
        };
        self.start_probe(now, test, socket, destination, &options);
    }

    /// Starts the lifetime test's next due probe, if any.
    fn start_lifetime_probe(&mut self, now: Instant) {
        let Some(run) = &mut self.lifetime else {
            return;
        };
        let Some(start) = run.start_due(now) else {
            return;
        };
        let destination = run.server;
        self.not_before = later(now, self.config.pace);
        let options = RequestOptions {
            response_port: start.response_port,
            ..RequestOptions::default()
        };
        self.start_probe(now, start.test, start.socket, destination, &options);
    }

    fn start_probe(
        &mut self,
        now: Instant,
        test: Test,
        socket: NatSocket,
        destination: SocketAddr,
        options: &RequestOptions,
    ) {
        let id = (self.ids)();
        match BindingTransaction::new(now, destination, id, options, self.config.probe_timing) {
            Ok(tx) => self.active.push(Probe::new(test, socket, now, tx)),
            // Cannot happen: these requests carry no PADDING or SOFTWARE.
            Err(_) => {
                let outcome = ProbeOutcome::NoAnswer { sends: 0 };
                self.absorb(now, test, socket, destination, now, outcome);
                self.plan(now);
            }
        }
    }

    /// Where a test goes, from which socket, with which attributes.
    fn probe_spec(&self, test: Test) -> Option<(NatSocket, SocketAddr, RequestOptions)> {
        let plain = RequestOptions::default();
        let with_change = RequestOptions {
            change_request: test.change_request(),
            ..RequestOptions::default()
        };
        let behaviour = self.found.behaviour;
        Some(match test {
            Test::Basic { server } => (NatSocket::Primary, *self.servers.get(server)?, plain),
            Test::FilteringII | Test::FilteringIII | Test::FilteringIIChangeIp => {
                (NatSocket::Primary, behaviour?.0, with_change)
            }
            Test::MappingII => {
                let (server, other) = behaviour?;
                (
                    NatSocket::Primary,
                    SocketAddr::new(other.ip(), server.port()),
                    plain,
                )
            }
            Test::MappingIII => (NatSocket::Primary, behaviour?.1, plain),
            Test::Hairpin => (NatSocket::Primary, self.public()?, plain),
            // The lifetime test starts its own probes (`start_lifetime_probe`).
            Test::LifetimeCreate { .. }
            | Test::LifetimeRefresh { .. }
            | Test::LifetimeCheck { .. } => return None,
        })
    }

    /// Records the probes that have ended, and plans the next step once all have.
    fn reap(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.active.len() {
            match self.active[index].take_outcome() {
                Some(outcome) => {
                    let probe = self.active.remove(index);
                    let destination = probe.transaction().server();
                    let (test, socket, started) = (probe.test, probe.socket, probe.started);
                    self.absorb(now, test, socket, destination, started, outcome);
                }
                None => index += 1,
            }
        }
        self.plan(now);
    }

    /// Takes in the outcome of one probe.
    fn absorb(
        &mut self,
        now: Instant,
        test: Test,
        socket: NatSocket,
        destination: SocketAddr,
        started: Instant,
        outcome: ProbeOutcome,
    ) {
        self.records.push(ProbeRecord {
            test,
            socket,
            destination,
            started: started.saturating_duration_since(self.start),
            outcome: outcome.clone(),
        });
        let found = &mut self.found;
        match test {
            Test::Basic { server } => {
                if let (Some(other), Some(&address)) = (
                    outcome.response().and_then(|r| r.other_address),
                    self.servers.get(server),
                ) {
                    // RFC 5780 §4.3, §4.4: the tests need another IP; without another port
                    // (a server with a second IP only) they narrow down what they can.
                    let usable = other.ip() != address.ip();
                    if !usable {
                        found.unusable_other.push((address, other));
                    } else if found.behaviour.is_none() {
                        found.behaviour = Some((address, other));
                    }
                }
                if let Some(slot) = found.basic.get_mut(server) {
                    *slot = Some(outcome);
                }
            }
            Test::FilteringII | Test::FilteringIIChangeIp => found.filtering_ii = Some(outcome),
            Test::FilteringIII => found.filtering_iii = Some(outcome),
            Test::MappingII => found.mapping_ii = Some(outcome),
            Test::MappingIII => found.mapping_iii = Some(outcome),
            Test::Hairpin => found.hairpin = Some(outcome),
            Test::LifetimeCreate { .. }
            | Test::LifetimeRefresh { .. }
            | Test::LifetimeCheck { .. } => {
                if let Some(run) = &mut self.lifetime {
                    run.record(now, test, &outcome);
                }
            }
        }
    }

    /// Queues the next step once the current one is over, or finishes.
    fn plan(&mut self, now: Instant) {
        while self.active.is_empty() && self.queue.is_empty() && !self.is_finished() {
            match self.next_step(now) {
                Step::Probes(tests) => self.queue.extend(tests),
                Step::Lifetime => return,
                Step::Done => {
                    let report = self.report();
                    self.state = State::Finished(Some(Box::new(report)));
                }
            }
        }
    }

    fn next_step(&mut self, now: Instant) -> Step {
        let behind_nat = self.public().map(|public| public != self.local);
        let hairpin_due = self.found.hairpin.is_none() && behind_nat == Some(true);
        if self.found.behaviour.is_some() {
            if self.found.filtering_ii.is_none() {
                let mut tests = if self.single_port() {
                    vec![Test::FilteringIIChangeIp]
                } else {
                    vec![Test::FilteringII, Test::FilteringIII]
                };
                if hairpin_due {
                    tests.push(Test::Hairpin);
                }
                return Step::Probes(tests);
            }
            // RFC 5780 §4.3: without a NAT the mapping is endpoint-independent; no test.
            if behind_nat == Some(true) {
                if self.found.mapping_ii.is_none() {
                    return Step::Probes(vec![Test::MappingII]);
                }
                let first = self.behaviour_mapped();
                let second = mapped_of(&self.found.mapping_ii);
                if self.found.mapping_iii.is_none()
                    && second.is_some()
                    && second != first
                    && !self.single_port()
                {
                    return Step::Probes(vec![Test::MappingIII]);
                }
            }
        }
        if let Some(server) = self.found.basic.iter().position(Option::is_none) {
            return Step::Probes(vec![Test::Basic { server }]);
        }
        if hairpin_due {
            return Step::Probes(vec![Test::Hairpin]);
        }
        self.next_lifetime_step(now)
    }

    fn next_lifetime_step(&mut self, now: Instant) -> Step {
        let Some(config) = self.config.lifetime else {
            return Step::Done;
        };
        if self.lifetime.is_none() {
            let server = match self.found.behaviour {
                Some((server, _)) => Some(server),
                None => self.first_answered().map(|(server, _)| server),
            };
            let Some(server) = server else {
                return Step::Done;
            };
            self.lifetime = Some(LifetimeRun::new(now, config, server));
        }
        match &self.lifetime {
            Some(run) if !run.is_done() => Step::Lifetime,
            _ => Step::Done,
        }
    }

    /// True when the behaviour server has a second IP but no second port: its
    /// OTHER-ADDRESS carries its own port.
    fn single_port(&self) -> bool {
        self.found
            .behaviour
            .is_some_and(|(server, other)| server.port() == other.port())
    }

    /// The first server that answered test I, and what it saw.
    fn first_answered(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.servers
            .iter()
            .zip(&self.found.basic)
            .find_map(|(server, outcome)| Some((*server, mapped_of(outcome)?)))
    }

    /// Our public address: the mapped address from the first server that answered.
    fn public(&self) -> Option<SocketAddr> {
        self.first_answered().map(|(_, mapped)| mapped)
    }

    /// The behaviour server's test I mapped address.
    fn behaviour_mapped(&self) -> Option<SocketAddr> {
        let (server, _) = self.found.behaviour?;
        let index = self.servers.iter().position(|s| *s == server)?;
        mapped_of(self.found.basic.get(index)?)
    }

    /// Reads the findings into the report.
    fn report(&mut self) -> NatReport {
        let mut notes = Vec::new();
        let servers: Vec<ServerObservation> = self
            .servers
            .iter()
            .zip(&self.found.basic)
            .filter_map(|(server, outcome)| {
                Some(ServerObservation {
                    server: *server,
                    outcome: outcome.clone()?,
                })
            })
            .collect();
        let public = self.public();
        let behind_nat = public.map(|public| public != self.local);
        let answered = servers.iter().filter(|s| s.mapped().is_some()).count();
        if answered > 0 && self.found.behaviour.is_none() {
            for (server, other) in &self.found.unusable_other {
                notes.push(Note::OtherAddressUnusable {
                    server: *server,
                    other: *other,
                });
            }
            // "No OTHER-ADDRESS" would contradict the notes just given.
            if self.found.unusable_other.is_empty() {
                notes.push(Note::NoOtherAddress { answered });
            }
        }

        let rfc_mapping = match behind_nat {
            Some(false) => Some(Mapping::EndpointIndependent),
            _ => self.rfc_5780_mapping(&mut notes),
        };
        let (compared, undecided) = compare_servers(&servers);
        if undecided && rfc_mapping.is_none() {
            notes.push(Note::MappingUndecided);
        }
        let (mapping, mapping_by_comparison) = match (rfc_mapping, compared) {
            (Some(Mapping::EndpointIndependent), Some((found, Some(pair))))
                if !found.is_endpoint_independent() =>
            {
                notes.push(Note::MappingInconsistent {
                    first: pair.0,
                    second: pair.1,
                });
                (Some(found), true)
            }
            (Some(rfc), _) => (Some(rfc), false),
            (None, Some((found, _))) => (Some(found), true),
            (None, None) => (None, false),
        };
        let filtering = self.rfc_5780_filtering(&mut notes);
        let hairpinning = match &self.found.hairpin {
            Some(ProbeOutcome::Hairpinned { .. }) => Some(true),
            Some(ProbeOutcome::NoAnswer { .. } | ProbeOutcome::Answered { .. }) => Some(false),
            Some(outcome @ ProbeOutcome::Failed(_)) => {
                notes.push(Note::TestFailed {
                    test: Test::Hairpin,
                    outcome: outcome.clone(),
                });
                None
            }
            None => None,
        };
        let nat_type = NatType::classify(
            answered > 0,
            behind_nat.unwrap_or(false),
            mapping,
            filtering,
        );
        let lifetime = match self.lifetime.take() {
            Some(run) => match run.failure() {
                Some(note) => {
                    notes.push(note.clone());
                    None
                }
                None => Some(run.lifetimes()),
            },
            None => None,
        };
        NatReport {
            local: self.local,
            servers,
            behaviour_server: self.found.behaviour.map(|(server, _)| server),
            other_address: self.found.behaviour.map(|(_, other)| other),
            public,
            behind_nat,
            mapping,
            mapping_by_comparison,
            filtering,
            hairpinning,
            nat_type,
            lifetime,
            notes,
            probes: self.records.clone(),
        }
    }

    /// RFC 5780 §4.3: compare the mapped addresses of tests I, II and III.
    fn rfc_5780_mapping(&self, notes: &mut Vec<Note>) -> Option<Mapping> {
        self.found.behaviour?;
        let first = self.behaviour_mapped()?;
        let second = match &self.found.mapping_ii {
            Some(ProbeOutcome::Answered { response, .. }) => response.mapped,
            other => {
                failed(notes, Test::MappingII, other);
                return None;
            }
        };
        if second == first {
            return Some(Mapping::EndpointIndependent);
        }
        if let Some((server, other)) = self.found.behaviour.filter(|_| self.single_port()) {
            // Test III would go to the other IP *and port*: there is no other port.
            notes.push(Note::NoAlternatePort {
                server,
                other,
                undecided: Undecided::Mapping,
            });
            return None;
        }
        match &self.found.mapping_iii {
            Some(ProbeOutcome::Answered { response, .. }) if response.mapped == second => {
                Some(Mapping::AddressDependent)
            }
            Some(ProbeOutcome::Answered { .. }) => Some(Mapping::AddressAndPortDependent),
            other => {
                failed(notes, Test::MappingIII, other);
                None
            }
        }
    }

    /// RFC 5780 §4.4: which of the answers from elsewhere came through.
    fn rfc_5780_filtering(&self, notes: &mut Vec<Note>) -> Option<Filtering> {
        let (server, other) = self.found.behaviour?;
        // The answer must come from where CHANGE-REQUEST asked, or it proves nothing.
        let honoured = |notes: &mut Vec<Note>, test, expected: SocketAddr, from: SocketAddr| {
            if from == expected {
                return true;
            }
            notes.push(Note::ChangeRequestNotHonoured {
                test,
                expected,
                from,
            });
            false
        };
        if self.single_port() {
            let test = Test::FilteringIIChangeIp;
            return match &self.found.filtering_ii {
                Some(ProbeOutcome::Answered { response, .. }) => {
                    honoured(notes, test, other, response.from)
                        .then_some(Filtering::EndpointIndependent)
                }
                Some(ProbeOutcome::NoAnswer { .. }) => {
                    notes.push(Note::NoAlternatePort {
                        server,
                        other,
                        undecided: Undecided::Filtering,
                    });
                    None
                }
                other => {
                    failed(notes, test, other);
                    None
                }
            };
        }
        match &self.found.filtering_ii {
            Some(ProbeOutcome::Answered { response, .. }) => {
                honoured(notes, Test::FilteringII, other, response.from)
                    .then_some(Filtering::EndpointIndependent)
            }
            Some(ProbeOutcome::NoAnswer { .. }) => match &self.found.filtering_iii {
                Some(ProbeOutcome::Answered { response, .. }) => {
                    let expected = SocketAddr::new(server.ip(), other.port());
                    honoured(notes, Test::FilteringIII, expected, response.from)
                        .then_some(Filtering::AddressDependent)
                }
                Some(ProbeOutcome::NoAnswer { .. }) => Some(Filtering::AddressAndPortDependent),
                other => {
                    failed(notes, Test::FilteringIII, other);
                    None
                }
            },
            other => {
                failed(notes, Test::FilteringII, other);
                None
            }
        }
    }
}

impl fmt::Debug for NatDiscovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatDiscovery")
            .field("config", &self.config)
            .field("servers", &self.servers)
            .field("local", &self.local)
            .field("queue", &self.queue)
            .field("active", &self.active)
            .field("found", &self.found)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn mapped_of(outcome: &Option<ProbeOutcome>) -> Option<SocketAddr> {
    outcome.as_ref()?.response().map(|r| r.mapped)
}

fn failed(notes: &mut Vec<Note>, test: Test, outcome: &Option<ProbeOutcome>) {
    if let Some(outcome) = outcome {
        notes.push(Note::TestFailed {
            test,
            outcome: outcome.clone(),
        });
    }
}

/// A (server, mapped) pair.
type Seen = (SocketAddr, SocketAddr);

/// What comparing the mapped addresses of several servers tells.
type Comparison = Option<(Mapping, Option<(Seen, Seen)>)>;

/// Mapping judged by comparing what several servers saw (RFC 4787 §4.1's definitions), with a
/// pair of servers that saw different mapped addresses, if any; and whether the servers
/// that answered were too alike to decide (one IP, several ports, one mapping).
fn compare_servers(servers: &[ServerObservation]) -> (Comparison, bool) {
    let seen: Vec<Seen> = servers
        .iter()
        .filter_map(|s| Some((s.server, s.mapped()?)))
        .collect();
    let mut port_dependent = None;
    let mut address_dependent = None;
    let mut independent_across_ips = false;
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            let same_ip = a.0.ip() == b.0.ip();
            if a.1 != b.1 {
                let slot = if same_ip {
                    &mut port_dependent
                } else {
                    &mut address_dependent
                };
                slot.get_or_insert((*a, *b));
            } else if !same_ip {
                independent_across_ips = true;
            }
        }
    }
    // Same IP, other port, other mapping: the mapping depends on the port.
    if let Some(pair) = port_dependent {
        return (Some((Mapping::AddressAndPortDependent, Some(pair))), false);
    }
    if let Some(pair) = address_dependent {
        return (Some((Mapping::EndpointDependent, Some(pair))), false);
    }
    if independent_across_ips {
        return (Some((Mapping::EndpointIndependent, None)), false);
    }
    let undecided = seen.iter().any(|s| s.0 != seen[0].0);
    (None, undecided)
}

/// `at + wait`, saturating.
fn later(at: Instant, wait: Duration) -> Instant {
    at.checked_add(wait).unwrap_or(at)
}
