//! NAT behaviour discovery against Turnpike's own sans-IO Binding server, through a simulated
//! NAT, with a hand-moved clock: every mapping × filtering combination, no NAT, a stateful
//! firewall, blocked UDP, servers without RFC 5780, several servers, hairpinning, packet loss,
//! and the binding lifetime.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ice::nat::{
    Filtering, LifetimeConfig, Mapping, NatConfig, NatDiscovery, NatReport, NatSocket, NatType,
    Note, ProbeOutcome, Test, Undecided,
};
use stun::TransactionId;
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId, Transport};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

const CLIENT_IP: &str = "10.0.0.2";
const PRIMARY_PORT: u16 = 40212;
/// Trial sockets' local ports: this, plus their number.
const TRIAL_PORTS: u16 = 40000;
const PROBE_PORT: u16 = 40999;
const PUBLIC_IP: &str = "203.0.113.5";
/// One-way delay between the client and a server (through the NAT).
const LATENCY: Duration = Duration::from_millis(10);

fn primary_local() -> SocketAddr {
    SocketAddr::new(ip(CLIENT_IP), PRIMARY_PORT)
}

/// An RFC 5780 server on 192.0.2.1/192.0.2.2 × 3478/3479.
fn discovery_server() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: addr("192.0.2.1:3478"),
            alternate_ip: Some(ip("192.0.2.2")),
            alternate_port: Some(3479),
        },
        software: None,
    })
}

/// An RFC 5780 server with a second IP but no second port: 192.0.2.1/192.0.2.2 × 3478.
fn single_port_server() -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets {
            primary: addr("192.0.2.1:3478"),
            alternate_ip: Some(ip("192.0.2.2")),
            alternate_port: None,
        },
        software: None,
    })
}

/// A plain STUN server with one socket.
fn plain_server(address: &str) -> BindingServer {
    BindingServer::new(BindingConfig {
        sockets: ServerSockets::single(addr(address)),
        software: None,
    })
}

/// A NAT binding: internal address, the remote it was made for (per the mapping behaviour),
/// its external port, the remotes sent to, and when it was last used.
#[derive(Debug)]
struct Binding {
    internal: SocketAddr,
    key: Option<SocketAddr>,
    external: u16,
    sent_to: Vec<SocketAddr>,
    created: Instant,
    last_used: Instant,
    /// Used again more than [`STREAM_AFTER`] after it was made (conntrack's "stream").
    stream: bool,
}

/// Linux conntrack: a UDP flow that sees a packet more than 2 s after it was created gets
/// the longer "stream" timeout (nf_conntrack_proto_udp.c, `stream_ts`).
const STREAM_AFTER: Duration = Duration::from_secs(2);

impl Binding {
    fn touch(&mut self, now: Instant) {
        if now.duration_since(self.created) > STREAM_AFTER {
            self.stream = true;
        }
        self.last_used = now;
    }
}

/// A simulated NAT (or, with `translate: false`, a stateful firewall).
#[derive(Debug)]
struct SimNat {
    translate: bool,
    mapping: Mapping,
    filtering: Filtering,
    hairpin: bool,
    lifetime: Duration,
    /// The lifetime of a binding used again after [`STREAM_AFTER`]; `None`: `lifetime`.
    stream_lifetime: Option<Duration>,
    bindings: Vec<Binding>,
    next_port: u16,
}

impl SimNat {
    fn new(mapping: Mapping, filtering: Filtering) -> Self {
        SimNat {
            translate: true,
            mapping,
            filtering,
            hairpin: false,
            lifetime: Duration::from_secs(120),
            stream_lifetime: None,
            bindings: Vec::new(),
            next_port: 50000,
        }
    }

    fn public_ip(&self) -> IpAddr {
        if self.translate {
            ip(PUBLIC_IP)
        } else {
            ip(CLIENT_IP)
        }
    }

    fn expire(&mut self, now: Instant) {
        let (new, stream) = (self.lifetime, self.stream_lifetime.unwrap_or(self.lifetime));
        self.bindings.retain(|b| {
            let lifetime = if b.stream { stream } else { new };
            now.duration_since(b.last_used) < lifetime
        });
    }

    /// The source address a packet from `internal` to `remote` leaves with.
    fn outbound(&mut self, now: Instant, internal: SocketAddr, remote: SocketAddr) -> SocketAddr {
        self.expire(now);
        let key = match self.mapping {
            Mapping::EndpointIndependent => None,
            Mapping::AddressDependent => Some(SocketAddr::new(remote.ip(), 0)),
            _ => Some(remote),
        };
        let position = self
            .bindings
            .iter()
            .position(|b| b.internal == internal && b.key == key);
        let index = match position {
            Some(index) => index,
            None => {
                let taken = |port| self.bindings.iter().any(|b| b.external == port);
                let external = if !self.translate || !taken(internal.port()) {
                    internal.port()
                } else {
                    while taken(self.next_port) {
                        self.next_port += 1;
                    }
                    self.next_port
                };
                self.bindings.push(Binding {
                    internal,
                    key,
                    external,
                    sent_to: Vec::new(),
                    created: now,
                    last_used: now,
                    stream: false,
                });
                self.bindings.len() - 1
            }
        };
        let public_ip = self.public_ip();
        let binding = &mut self.bindings[index];
        binding.sent_to.push(remote);
        binding.touch(now);
        SocketAddr::new(public_ip, binding.external)
    }

    /// The internal address a packet from `remote` to external port `port` goes to, if any.
    /// Hairpinned packets skip the filter, as on NATs that hairpin (RFC 4787 §6).
    fn inbound(&mut self, now: Instant, remote: SocketAddr, port: u16) -> Option<SocketAddr> {
        self.expire(now);
        let filtering = if remote.ip() == self.public_ip() {
            Filtering::EndpointIndependent
        } else {
            self.filtering
        };
        let binding = self.bindings.iter_mut().find(|b| {
            b.external == port
                && match filtering {
                    Filtering::EndpointIndependent => true,
                    Filtering::AddressDependent => b.sent_to.iter().any(|r| r.ip() == remote.ip()),
                    _ => b.sent_to.contains(&remote),
                }
        })?;
        binding.touch(now);
        Some(binding.internal)
    }
}

/// A datagram on its way to the client's public address.
#[derive(Debug)]
struct InFlight {
    at: Instant,
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The client's world: a NAT (or none), servers, and packets in flight.
#[derive(Debug)]
struct Net {
    nat: Option<SimNat>,
    servers: Vec<BindingServer>,
    in_flight: Vec<InFlight>,
    /// Drop everything (UDP blocked).
    blocked: bool,
    /// Drop this many of the client's next datagrams.
    lose_next: usize,
    /// The server answers from the socket the request came in on, whatever CHANGE-REQUEST
    /// asked (a server that does not honour it).
    ignore_change_request: bool,
    sent: usize,
}

impl Net {
    fn new(nat: Option<SimNat>, servers: Vec<BindingServer>) -> Self {
        Net {
            nat,
            servers,
            in_flight: Vec::new(),
            blocked: false,
            lose_next: 0,
            ignore_change_request: false,
            sent: 0,
        }
    }

    fn public_ip(&self) -> IpAddr {
        self.nat.as_ref().map_or(ip(CLIENT_IP), SimNat::public_ip)
    }

    fn send(&mut self, now: Instant, socket: NatSocket, destination: SocketAddr, payload: &[u8]) {
        self.sent += 1;
        if self.blocked {
            return;
        }
        if self.lose_next > 0 {
            self.lose_next -= 1;
            return;
        }
        let port = match socket {
            NatSocket::Primary => PRIMARY_PORT,
            NatSocket::LifetimeProbe => PROBE_PORT,
            NatSocket::LifetimeBinding(n) => TRIAL_PORTS + u16::try_from(n).unwrap(),
        };
        let internal = SocketAddr::new(ip(CLIENT_IP), port);
        let source = match &mut self.nat {
            Some(nat) => nat.outbound(now, internal, destination),
            None => internal,
        };
        if destination.ip() == self.public_ip() {
            // To our own public address: back in only if the NAT hairpins (or there is none).
            if self.nat.as_ref().is_none_or(|nat| nat.hairpin) {
                self.in_flight.push(InFlight {
                    at: now + LATENCY,
                    from: source,
                    to: destination,
                    bytes: payload.to_vec(),
                });
            }
            return;
        }
        for server in &self.servers {
            let sockets = server.config().sockets;
            let Some(id) = sockets
                .ids()
                .find(|id| sockets.address(*id) == Some(destination))
            else {
                continue;
            };
            let mut out = [0u8; 1500];
            let Some(answer) = server.handle(Transport::Udp, id, source, payload, &mut out) else {
                return;
            };
            let from_id: SocketId = if self.ignore_change_request {
                id
            } else {
                answer.from
            };
            self.in_flight.push(InFlight {
                at: now + 2 * LATENCY,
                from: sockets.address(from_id).unwrap(),
                to: answer.to,
                bytes: out[..answer.len].to_vec(),
            });
            return;
        }
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.iter().map(|p| p.at).min()
    }

    /// Datagrams that reach one of the client's sockets by `now`.
    fn arrivals(&mut self, now: Instant) -> Vec<(NatSocket, SocketAddr, Vec<u8>)> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|p| p.at <= now);
        self.in_flight = later;
        let mut delivered = Vec::new();
        for packet in due {
            if packet.to.ip() != self.public_ip() {
                continue;
            }
            let internal = match &mut self.nat {
                Some(nat) => nat.inbound(now, packet.from, packet.to.port()),
                None => Some(SocketAddr::new(ip(CLIENT_IP), packet.to.port())),
            };
            let socket = match internal.map(|a| a.port()) {
                Some(PRIMARY_PORT) => NatSocket::Primary,
                Some(PROBE_PORT) => NatSocket::LifetimeProbe,
                Some(port) if port >= TRIAL_PORTS => {
                    NatSocket::LifetimeBinding(u32::from(port - TRIAL_PORTS))
                }
                _ => continue,
            };
            delivered.push((socket, packet.from, packet.bytes));
        }
        delivered
    }
}

/// Transaction ids from a counter: deterministic runs.
fn counter() -> impl FnMut() -> TransactionId + Send + 'static {
    let mut next = 0u32;
    move || {
        next += 1;
        let mut id = [0u8; 12];
        id[..4].copy_from_slice(&next.to_be_bytes());
        TransactionId(id)
    }
}

/// Runs discovery to the end; returns the report and how long it took.
fn run_with(net: &mut Net, config: NatConfig, servers: &[&str]) -> (NatReport, Duration) {
    let start = Instant::now();
    let servers = servers.iter().map(|s| addr(s)).collect();
    let mut nat = NatDiscovery::new(start, config, servers, primary_local(), counter());
    let mut now = start;
    for _ in 0..100_000 {
        if let Some(report) = nat.poll_result() {
            assert!(nat.poll_timeout().is_none());
            return (report, now - start);
        }
        while let Some(t) = nat.poll_transmit(now) {
            let (socket, destination, payload) = (t.socket, t.destination, t.payload.to_vec());
            net.send(now, socket, destination, &payload);
        }
        let wake = [nat.poll_timeout(), net.next_arrival()]
            .into_iter()
            .flatten()
            .min()
            .expect("discovery waits for something until it finishes");
        now = now.max(wake);
        for (socket, from, bytes) in net.arrivals(now) {
            nat.handle_input(now, socket, from, &bytes);
        }
        nat.handle_timeout(now);
    }
    panic!("discovery did not finish");
}

fn run(net: &mut Net, servers: &[&str]) -> (NatReport, Duration) {
    run_with(net, NatConfig::default(), servers)
}

const SERVER: &str = "192.0.2.1:3478";

fn behind(mapping: Mapping, filtering: Filtering) -> Net {
    Net::new(
        Some(SimNat::new(mapping, filtering)),
        vec![discovery_server()],
    )
}

const MAPPINGS: [Mapping; 3] = [
    Mapping::EndpointIndependent,
    Mapping::AddressDependent,
    Mapping::AddressAndPortDependent,
];
const FILTERINGS: [Filtering; 3] = [
    Filtering::EndpointIndependent,
    Filtering::AddressDependent,
    Filtering::AddressAndPortDependent,
];

// RFC 5780 §4.3 and §4.4: each combination of mapping and filtering behaviour is told apart,
// and RFC 3489 §5 names it.
#[test]
fn every_mapping_and_filtering_combination() {
    for mapping in MAPPINGS {
        for filtering in FILTERINGS {
            let mut net = behind(mapping, filtering);
            let (report, took) = run(&mut net, &[SERVER]);
            let case = format!("{mapping} / {filtering}: {report:#?}");
            assert_eq!(report.mapping, Some(mapping), "{case}");
            assert!(!report.mapping_by_comparison, "{case}");
            assert_eq!(report.filtering, Some(filtering), "{case}");
            assert_eq!(report.behind_nat, Some(true), "{case}");
            assert_eq!(report.hairpinning, Some(false), "{case}");
            // Port-preserving NAT: the first binding keeps the local port.
            assert_eq!(
                report.public,
                Some(SocketAddr::new(ip(PUBLIC_IP), PRIMARY_PORT)),
                "{case}"
            );
            assert_eq!(report.behaviour_server, Some(addr(SERVER)));
            assert_eq!(report.other_address, Some(addr("192.0.2.2:3479")));
            let expected = match (mapping, filtering) {
                (Mapping::EndpointIndependent, Filtering::EndpointIndependent) => NatType::FullCone,
                (Mapping::EndpointIndependent, Filtering::AddressDependent) => {
                    NatType::RestrictedCone
                }
                (Mapping::EndpointIndependent, _) => NatType::PortRestrictedCone,
                _ => NatType::Symmetric,
            };
            assert_eq!(report.nat_type, Some(expected), "{case}");
            assert!(report.notes.is_empty(), "{case}");
            // Unanswered probes wait 3 s, and they run side by side: about 3 s in all.
            assert!(took < Duration::from_secs(4), "{case}: took {took:?}");
        }
    }
}

// RFC 5780 §4.4: "These tests are sensitive to prior state on the NAT": the filtering tests
// run before the mapping tests, which send to the server's other address.
#[test]
fn filtering_is_tested_before_the_mapping_opens_filters() {
    let mut net = behind(
        Mapping::EndpointIndependent,
        Filtering::AddressAndPortDependent,
    );
    let (report, _) = run(&mut net, &[SERVER]);
    let start_of = |test| {
        report
            .probes
            .iter()
            .find(|p| p.test == test)
            .map(|p| p.started)
            .unwrap()
    };
    assert!(start_of(Test::FilteringII) < start_of(Test::MappingII));
    assert!(start_of(Test::FilteringIII) < start_of(Test::MappingII));
    // Endpoint-independent mapping needs no test III.
    assert!(report.probes.iter().all(|p| p.test != Test::MappingIII));
    let destinations: Vec<_> = report
        .probes
        .iter()
        .map(|p| (p.test, p.destination))
        .collect();
    assert!(destinations.contains(&(Test::MappingII, addr("192.0.2.2:3478"))));
    assert!(destinations.contains(&(Test::FilteringII, addr(SERVER))));
}

// RFC 5780 §5: "A client SHOULD NOT generate more than ten new STUN transactions per second".
#[test]
fn probes_are_paced() {
    let mut net = behind(
        Mapping::AddressAndPortDependent,
        Filtering::AddressAndPortDependent,
    );
    let (report, _) = run(&mut net, &[SERVER]);
    let mut starts: Vec<Duration> = report.probes.iter().map(|p| p.started).collect();
    starts.sort();
    assert_eq!(starts.len(), 6, "{report:#?}");
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(100),
            "{starts:?}"
        );
    }
}

// RFC 4787 §6: a NAT that hairpins sends our packet to our own mapped address back to us.
#[test]
fn hairpinning_is_detected() {
    for mapping in MAPPINGS {
        let mut nat = SimNat::new(mapping, Filtering::AddressAndPortDependent);
        nat.hairpin = true;
        let mut net = Net::new(Some(nat), vec![discovery_server()]);
        let (report, _) = run(&mut net, &[SERVER]);
        assert_eq!(report.hairpinning, Some(true), "{mapping}: {report:#?}");
        let hairpin = report
            .probes
            .iter()
            .find(|p| p.test == Test::Hairpin)
            .unwrap();
        assert_eq!(hairpin.destination, report.public.unwrap());
        assert!(
            matches!(hairpin.outcome, ProbeOutcome::Hairpinned { from } if from.ip() == ip(PUBLIC_IP))
        );
    }
}

// RFC 3489 §10.1: mapped address = local address, test II answered → open Internet.
#[test]
fn no_nat_is_open_internet() {
    let mut net = Net::new(None, vec![discovery_server()]);
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(report.public, Some(primary_local()));
    assert_eq!(report.behind_nat, Some(false));
    assert_eq!(report.mapping, Some(Mapping::EndpointIndependent));
    assert_eq!(report.filtering, Some(Filtering::EndpointIndependent));
    assert_eq!(report.hairpinning, None);
    assert_eq!(report.nat_type, Some(NatType::OpenInternet));
    // RFC 5780 §4.3: not NATed, so no mapping tests II and III (but test I ran).
    assert!(report
        .probes
        .iter()
        .any(|p| matches!(p.test, Test::Basic { .. })));
    assert!(report
        .probes
        .iter()
        .all(|p| !matches!(p.test, Test::MappingII | Test::MappingIII | Test::Hairpin)));
}

// RFC 3489 §10.1: not NATed, but test II unanswered → symmetric UDP firewall.
#[test]
fn stateful_firewall_is_a_symmetric_udp_firewall() {
    let mut firewall = SimNat::new(
        Mapping::EndpointIndependent,
        Filtering::AddressAndPortDependent,
    );
    firewall.translate = false;
    let mut net = Net::new(Some(firewall), vec![discovery_server()]);
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(report.behind_nat, Some(false));
    assert_eq!(report.filtering, Some(Filtering::AddressAndPortDependent));
    assert_eq!(report.nat_type, Some(NatType::SymmetricUdpFirewall));
}

// RFC 3489 §10.1: "If this test yields no response, the client knows right away that it is
// not capable of UDP connectivity."
#[test]
fn no_answer_at_all_is_udp_blocked() {
    let mut net = behind(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    net.blocked = true;
    let (report, took) = run(&mut net, &[SERVER, "198.51.100.1:3478"]);
    assert_eq!(report.nat_type, Some(NatType::UdpBlocked));
    assert_eq!(report.public, None);
    assert_eq!(report.behind_nat, None);
    assert_eq!(report.mapping, None);
    assert_eq!(report.servers.len(), 2);
    assert!(report
        .servers
        .iter()
        .all(|s| matches!(s.outcome, ProbeOutcome::NoAnswer { sends: 3 })));
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    // Two servers, one after the other, 3 s each (requests at 0, 0.5 and 1.5 s).
    assert_eq!(took, Duration::from_secs(6));
    assert_eq!(net.sent, 6);
}

// RFC 5780 §4.3: "If OTHER-ADDRESS is not returned, the server does not support this usage
// and this test cannot be run."
#[test]
fn server_without_other_address() {
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
        )),
        vec![plain_server(SERVER)],
    );
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(
        report.public,
        Some(SocketAddr::new(ip(PUBLIC_IP), PRIMARY_PORT))
    );
    assert_eq!(report.behind_nat, Some(true));
    assert_eq!(report.mapping, None);
    assert_eq!(report.filtering, None);
    assert_eq!(report.nat_type, None);
    assert_eq!(report.behaviour_server, None);
    assert_eq!(report.notes, [Note::NoOtherAddress { answered: 1 }]);
    assert_eq!(
        report.notes[0].to_string(),
        "server does not support RFC 5780 (no OTHER-ADDRESS): only the mapping of one server \
         can be observed"
    );
    // Hairpinning needs only the mapped address.
    assert_eq!(report.hairpinning, Some(false));
}

// RFC 4787 §4.1: different mapped addresses for different destinations is endpoint-dependent
// mapping, visible with plain STUN servers.
#[test]
fn several_plain_servers_reveal_endpoint_dependent_mapping() {
    let servers = vec![
        plain_server("192.0.2.1:3478"),
        plain_server("198.51.100.1:3478"),
    ];
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::AddressDependent,
            Filtering::AddressAndPortDependent,
        )),
        servers,
    );
    let (report, _) = run(&mut net, &["192.0.2.1:3478", "198.51.100.1:3478"]);
    assert_eq!(report.mapping, Some(Mapping::EndpointDependent));
    assert!(report.mapping_by_comparison);
    assert_eq!(report.nat_type, Some(NatType::Symmetric));
    assert_eq!(report.filtering, None);
    assert_eq!(report.notes, [Note::NoOtherAddress { answered: 2 }]);
    let mapped: Vec<_> = report.servers.iter().map(|s| s.mapped().unwrap()).collect();
    assert_ne!(mapped[0], mapped[1]);

    let servers = vec![
        plain_server("192.0.2.1:3478"),
        plain_server("198.51.100.1:3478"),
    ];
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
        )),
        servers,
    );
    let (report, _) = run(&mut net, &["192.0.2.1:3478", "198.51.100.1:3478"]);
    assert_eq!(report.mapping, Some(Mapping::EndpointIndependent));
    assert!(report.mapping_by_comparison);
    // Filtering unknown: the RFC 3489 name is undecided.
    assert_eq!(report.nat_type, None);
}

#[test]
fn two_ports_of_one_plain_server_ip() {
    let servers = vec![
        plain_server("192.0.2.1:3478"),
        plain_server("192.0.2.1:3479"),
    ];
    let both = ["192.0.2.1:3478", "192.0.2.1:3479"];
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::AddressAndPortDependent,
            Filtering::AddressAndPortDependent,
        )),
        servers.clone(),
    );
    let (report, _) = run(&mut net, &both);
    assert_eq!(report.mapping, Some(Mapping::AddressAndPortDependent));

    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::AddressDependent,
            Filtering::AddressAndPortDependent,
        )),
        servers,
    );
    let (report, _) = run(&mut net, &both);
    assert_eq!(report.mapping, None);
    assert!(
        report.notes.contains(&Note::MappingUndecided),
        "{:?}",
        report.notes
    );
}

// A plain server first, the RFC 5780 server second: the tests run against the second, and
// both servers' mapped addresses are compared.
#[test]
fn the_first_server_with_other_address_runs_the_tests() {
    let servers = vec![plain_server("198.51.100.1:3478"), discovery_server()];
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::EndpointIndependent,
            Filtering::AddressDependent,
        )),
        servers,
    );
    let (report, _) = run(&mut net, &["198.51.100.1:3478", SERVER]);
    assert_eq!(report.behaviour_server, Some(addr(SERVER)));
    assert_eq!(report.mapping, Some(Mapping::EndpointIndependent));
    assert!(!report.mapping_by_comparison);
    assert_eq!(report.filtering, Some(Filtering::AddressDependent));
    assert_eq!(report.nat_type, Some(NatType::RestrictedCone));
    assert_eq!(report.servers.len(), 2);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
}

// RFC 8489 §6.2.1: lost requests are retransmitted; discovery still decides.
#[test]
fn lost_packets_are_retransmitted() {
    let mut net = behind(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    net.lose_next = 2;
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(report.nat_type, Some(NatType::FullCone));
    let first = &report.probes[0];
    assert_eq!(first.test, Test::Basic { server: 0 });
    assert!(
        matches!(&first.outcome, ProbeOutcome::Answered { response, .. } if response.sends == 3)
    );
}

// RFC 5780 §4.4 relies on the server answering from where CHANGE-REQUEST asks; an answer from
// elsewhere proves nothing about filtering.
#[test]
fn change_request_not_honoured() {
    let mut net = behind(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    net.ignore_change_request = true;
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(report.filtering, None);
    assert_eq!(report.mapping, Some(Mapping::EndpointIndependent));
    assert_eq!(report.nat_type, None);
    assert_eq!(
        report.notes,
        [Note::ChangeRequestNotHonoured {
            test: Test::FilteringII,
            expected: addr("192.0.2.2:3479"),
            from: addr(SERVER),
        }]
    );
}

fn with_lifetime() -> NatConfig {
    with_lifetime_max(120)
}

/// Discovery that measures the lifetimes with waits of up to `max_wait` seconds.
fn with_lifetime_max(max_wait: u64) -> NatConfig {
    NatConfig {
        lifetime: Some(LifetimeConfig {
            max_wait: Duration::from_secs(max_wait),
            ..LifetimeConfig::default()
        }),
        ..NatConfig::default()
    }
}

// RFC 5780 §4.6: make a binding from port X, wait T, ask from port Y for an answer to X's
// mapped port; a search over T finds the lifetime. Each T on a binding of its own.
#[test]
fn binding_lifetime_is_found() {
    for filtering in FILTERINGS {
        let mut nat = SimNat::new(Mapping::AddressAndPortDependent, filtering);
        nat.lifetime = Duration::from_secs(30);
        let mut net = Net::new(Some(nat), vec![discovery_server()]);
        let (report, took) = run_with(&mut net, with_lifetime(), &[SERVER]);
        let lifetimes = report.lifetime.unwrap();
        for lifetime in [lifetimes.new, lifetimes.refreshed] {
            assert!(lifetime.alive < Duration::from_secs(30), "{lifetime:?}");
            let expired = lifetime.expired.unwrap();
            assert!(expired >= Duration::from_secs(30), "{lifetime:?}");
            assert!(
                expired - lifetime.alive <= Duration::from_secs(2),
                "{lifetime:?}"
            );
        }
        assert!(took < Duration::from_secs(300), "took {took:?}");
        let checks: Vec<_> = report
            .probes
            .iter()
            .filter(|p| matches!(p.test, Test::LifetimeCheck { .. }))
            .collect();
        assert!(checks.iter().all(|p| p.socket == NatSocket::LifetimeProbe));
        assert!(checks.len() >= 6, "{checks:#?}");
        // Every trial made its binding from a socket of its own.
        let mut sockets: Vec<_> = report
            .probes
            .iter()
            .filter(|p| matches!(p.test, Test::LifetimeCreate { .. }))
            .map(|p| p.socket)
            .collect();
        let trials = sockets.len();
        assert!(trials >= 2, "{sockets:?}");
        sockets.sort();
        sockets.dedup();
        assert_eq!(sockets.len(), trials);
        assert!(sockets
            .iter()
            .all(|s| matches!(s, NatSocket::LifetimeBinding(_))));
        assert_eq!(report.nat_type, Some(NatType::Symmetric));
    }
}

// The NAT of the issue: Linux conntrack keeps a flow answered within its first 2 s for 30 s
// and one still active after that for 120 s. A search that refreshes one binding reported
// 64–66 s here (after the first expiry every refresh made a new, 30 s binding); trials on
// fresh bindings report both values.
#[test]
fn conntrack_new_and_refreshed_lifetimes_are_both_found() {
    let mut nat = SimNat::new(
        Mapping::EndpointIndependent,
        Filtering::AddressAndPortDependent,
    );
    nat.lifetime = Duration::from_secs(30);
    nat.stream_lifetime = Some(Duration::from_secs(120));
    let mut net = Net::new(Some(nat), vec![discovery_server()]);
    let (report, took) = run_with(&mut net, with_lifetime_max(300), &[SERVER]);
    let lifetimes = report.lifetime.unwrap();
    let within = |lifetime: ice::nat::Lifetime, truth: u64| {
        let truth = Duration::from_secs(truth);
        lifetime.alive < truth
            && lifetime.expired.is_some_and(|e| e >= truth)
            && lifetime.expired.unwrap() - lifetime.alive <= truth / 10
    };
    assert!(within(lifetimes.new, 30), "{lifetimes:?}");
    assert!(within(lifetimes.refreshed, 120), "{lifetimes:?}");
    assert_eq!(lifetimes.warm_up, Duration::from_secs(3));
    // The two searches and the ladder of waits run at once: far less than the sum of waits.
    assert!(took < Duration::from_secs(600), "took {took:?}");
}

#[test]
fn lifetime_longer_than_the_longest_wait() {
    let mut nat = SimNat::new(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    nat.lifetime = Duration::from_secs(3600);
    let mut net = Net::new(Some(nat), vec![discovery_server()]);
    let (report, took) = run_with(&mut net, with_lifetime_max(20), &[SERVER]);
    let lifetimes = report.lifetime.unwrap();
    for lifetime in [lifetimes.new, lifetimes.refreshed] {
        assert_eq!(lifetime.alive, Duration::from_secs(20));
        assert_eq!(lifetime.expired, None);
    }
    // The waits 1, 2, ... 20 s ran at once: the longest trial (3 s warm-up, 20 s) bounds it.
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

// RFC 5780 §5: "a client MUST be prepared to receive a 420 (Unknown Attribute) error to
// requests that include RESPONSE-PORT".
#[test]
fn lifetime_needs_response_port() {
    let mut net = Net::new(
        Some(SimNat::new(
            Mapping::EndpointIndependent,
            Filtering::EndpointIndependent,
        )),
        vec![plain_server(SERVER)],
    );
    let (report, _) = run_with(&mut net, with_lifetime(), &[SERVER]);
    assert_eq!(report.lifetime, None);
    let failure = report
        .notes
        .iter()
        .find(|n| {
            matches!(
                n,
                Note::TestFailed {
                    test: Test::LifetimeCheck { .. },
                    ..
                }
            )
        })
        .unwrap();
    assert!(failure.to_string().contains("420"), "{failure}");
}

#[test]
fn lifetime_is_skipped_unless_asked() {
    let mut net = behind(Mapping::EndpointIndependent, Filtering::EndpointIndependent);
    let (report, _) = run(&mut net, &[SERVER]);
    assert_eq!(report.lifetime, None);
    assert!(!report.probes.is_empty());
    assert!(report.probes.iter().all(|p| p.socket == NatSocket::Primary));
}

// A server with `alternate-ip` but no `alternate-port` sends OTHER-ADDRESS with its own
// port and answers 420 to CHANGE-REQUEST for the port (RFC 5780 §6.1). The tests that need
// no second port still run: mapping test II, and test II with "change IP" only; what they
// cannot tell apart is said once, without "no OTHER-ADDRESS".
#[test]
fn a_server_without_a_second_port_decides_what_it_can() {
    let cases = [
        // (mapping, filtering) → (mapping found, filtering found, NAT type, undecided)
        (
            Mapping::EndpointIndependent,
            Filtering::EndpointIndependent,
            Some(Mapping::EndpointIndependent),
            Some(Filtering::EndpointIndependent),
            Some(NatType::FullCone),
            vec![],
        ),
        (
            Mapping::EndpointIndependent,
            Filtering::AddressAndPortDependent,
            Some(Mapping::EndpointIndependent),
            None,
            None,
            vec![Undecided::Filtering],
        ),
        (
            Mapping::AddressAndPortDependent,
            Filtering::AddressDependent,
            None,
            None,
            None,
            vec![Undecided::Mapping, Undecided::Filtering],
        ),
    ];
    for (mapping, filtering, found_mapping, found_filtering, nat_type, undecided) in cases {
        let mut net = Net::new(
            Some(SimNat::new(mapping, filtering)),
            vec![single_port_server()],
        );
        let (report, _) = run(&mut net, &[SERVER]);
        let why = format!("{mapping:?}/{filtering:?}: {report:#?}");
        assert_eq!(report.other_address, Some(addr("192.0.2.2:3478")), "{why}");
        assert_eq!(report.mapping, found_mapping, "{why}");
        assert!(!report.mapping_by_comparison, "{why}");
        assert_eq!(report.filtering, found_filtering, "{why}");
        assert_eq!(report.nat_type, nat_type, "{why}");
        let notes: Vec<Undecided> = report
            .notes
            .iter()
            .map(|n| match n {
                Note::NoAlternatePort { undecided, .. } => *undecided,
                other => panic!("unexpected note {other}: {why}"),
            })
            .collect();
        assert_eq!(notes, undecided, "{why}");
        for note in &report.notes {
            let text = note.to_string();
            assert!(
                text.contains("no alternate port") && !text.contains("no OTHER-ADDRESS"),
                "{text}"
            );
        }
        // No CHANGE-REQUEST for the port was sent: it could only earn a 420.
        assert!(!report.probes.is_empty());
        assert!(report
            .probes
            .iter()
            .all(|p| !p.test.change_request().change_port));
    }
}

// Discovery with no servers at all ends at once, as UDP blocked.
#[test]
fn no_servers() {
    let mut net = Net::new(None, Vec::new());
    let (report, took) = run(&mut net, &[]);
    assert_eq!(report.nat_type, Some(NatType::UdpBlocked));
    assert_eq!(took, Duration::ZERO);
}

// Stray datagrams (not STUN, other transaction ids) are ignored.
#[test]
fn stray_datagrams_are_ignored() {
    let start = Instant::now();
    let mut nat = NatDiscovery::new(
        start,
        NatConfig::default(),
        vec![addr(SERVER)],
        primary_local(),
        counter(),
    );
    let t = nat.poll_transmit(start).unwrap();
    assert_eq!(
        (t.socket, t.destination),
        (NatSocket::Primary, addr(SERVER))
    );
    assert!(!nat.handle_input(start, NatSocket::Primary, addr(SERVER), b"hello"));
    assert!(!nat.handle_input(start, NatSocket::Primary, addr(SERVER), &[0u8; 20]));
    assert!(nat.poll_transmit(start).is_none());
    assert_eq!(nat.poll_timeout(), Some(start + Duration::from_millis(500)));
}
