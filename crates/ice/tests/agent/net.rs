//! A simulated network for ICE agents: datagrams queued with a latency, optional seeded loss,
//! NAT boxes with configurable mapping and filtering (RFC 4787 §4.1, §5), and a STUN
//! server (`turn::BindingServer`). Time moves only when the harness moves it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ice::{AgentConfig, AgentInput, Candidate, IceAgent, IceConnectionState, IceEvent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stun::{attributes::ErrorCode, Class, Message};
use turn::auth::{AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::{
    ClientOutcome, ClientTransport, FiveTuple, PeerAddr, RelayAddr, TurnConfig, TurnServer,
    PEER_HEADROOM,
};

use crate::fake_relay::FakeSockets;
use turn::{BindingConfig, BindingServer, ServerSockets, Transport};

/// The TURN realm and the one user of the simulated relay.
pub const TURN_REALM: &str = "example.org";
pub const TURN_USER: &str = "alice";
pub const TURN_PASSWORD: &str = "alice-pass";

/// The TURN server core at a public address, relaying from `relay_ip`.
struct Relay {
    addr: SocketAddr,
    relay_ip: IpAddr,
    server: TurnServer,
    sockets: FakeSockets,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("addr", &self.addr).finish()
    }
}

/// NAT mapping behaviour (RFC 4787 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// One external port per internal address and port, whatever the destination.
    EndpointIndependent,
    /// A new external port per destination address and port ("symmetric").
    AddressAndPortDependent,
}

/// NAT filtering behaviour (RFC 4787 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// Anyone may send to a mapping ("full cone").
    EndpointIndependent,
    /// Only IPs the mapping has sent to ("restricted cone").
    AddressDependent,
    /// Only addresses and ports the mapping has sent to ("port-restricted cone").
    AddressAndPortDependent,
}

/// One NAT box with a public IP and a private network behind it.
#[derive(Debug)]
struct Nat {
    public_ip: IpAddr,
    mapping: Mapping,
    filtering: Filtering,
    /// (internal, destination key) → external port. The key is the destination for
    /// address-and-port-dependent mapping, unspecified for endpoint-independent.
    ports: BTreeMap<(SocketAddr, SocketAddr), u16>,
    /// external port → (internal address, destinations it has sent to).
    bindings: BTreeMap<u16, (SocketAddr, BTreeSet<SocketAddr>)>,
    next_port: u16,
}

impl Nat {
    fn outbound(&mut self, internal: SocketAddr, destination: SocketAddr) -> SocketAddr {
        let key = match self.mapping {
            Mapping::EndpointIndependent => (internal, SocketAddr::from(([0, 0, 0, 0], 0))),
            Mapping::AddressAndPortDependent => (internal, destination),
        };
        let port = match self.ports.get(&key) {
            Some(port) => *port,
            None => {
                let port = self.next_port;
                self.next_port += 1;
                self.ports.insert(key, port);
                self.bindings.insert(port, (internal, BTreeSet::new()));
                port
            }
        };
        if let Some((_, contacted)) = self.bindings.get_mut(&port) {
            contacted.insert(destination);
        }
        SocketAddr::new(self.public_ip, port)
    }

    fn inbound(&self, port: u16, source: SocketAddr) -> Option<SocketAddr> {
        let (internal, contacted) = self.bindings.get(&port)?;
        let allowed = match self.filtering {
            Filtering::EndpointIndependent => true,
            Filtering::AddressDependent => contacted.iter().any(|c| c.ip() == source.ip()),
            Filtering::AddressAndPortDependent => contacted.contains(&source),
        };
        allowed.then_some(*internal)
    }
}

/// One agent on the network.
#[derive(Debug)]
pub struct Peer {
    pub agent: IceAgent,
    /// Its host socket.
    pub host: SocketAddr,
    /// The NAT it is behind, if any.
    pub nat: Option<usize>,
    /// Application data it received.
    pub data: Vec<Vec<u8>>,
    /// Every event, with the time it was seen.
    pub events: Vec<(Instant, IceEvent)>,
    /// A silent peer neither sends nor receives (it crashed, or its network is gone).
    pub silent: bool,
}

impl Peer {
    /// The candidates this peer signalled.
    pub fn local_candidates(&self) -> Vec<Candidate> {
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                IceEvent::LocalCandidate(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The states it went through, with times.
    pub fn states(&self) -> Vec<(Instant, IceConnectionState)> {
        self.events
            .iter()
            .filter_map(|(t, e)| match e {
                IceEvent::StateChanged(s) => Some((*t, *s)),
                _ => None,
            })
            .collect()
    }

    /// When it first reached `state`.
    pub fn reached(&self, state: IceConnectionState) -> Option<Instant> {
        self.states()
            .into_iter()
            .find(|(_, s)| *s == state)
            .map(|(t, _)| t)
    }
}

#[derive(Debug)]
struct Packet {
    deliver_at: Instant,
    seq: u64,
    from: SocketAddr,
    /// The private network the datagram travels in: the sender's NAT when it stays behind
    /// it, `None` on the public side.
    realm: Option<usize>,
    to: SocketAddr,
    payload: Vec<u8>,
}

/// The whole simulated world.
#[derive(Debug)]
pub struct World {
    pub now: Instant,
    pub start: Instant,
    seed: u8,
    rng: StdRng,
    /// One-way latency of every datagram.
    pub latency: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    queue: Vec<Packet>,
    seq: u64,
    pub peers: Vec<Peer>,
    nats: Vec<Nat>,
    stun: Option<(SocketAddr, BindingServer)>,
    turn: Option<Relay>,
    /// Datagrams the relay forwarded, either way.
    pub relayed: usize,
    /// `Some(delay)`: signalled candidates reach the other peer after `delay`; `None`: the
    /// test passes them by hand.
    pub auto_signal: Option<Duration>,
    signals: Vec<(Instant, usize, Candidate)>,
    /// Error codes of every STUN error response delivered.
    pub error_codes: Vec<u16>,
    /// Datagrams dropped by NAT filtering or with no route.
    pub filtered: usize,
}

impl World {
    pub fn new(seed: u8, latency: Duration) -> Self {
        let start = Instant::now();
        World {
            now: start,
            start,
            seed,
            rng: StdRng::from_seed([seed; 32]),
            latency,
            loss: 0.0,
            queue: Vec::new(),
            seq: 0,
            peers: Vec::new(),
            nats: Vec::new(),
            stun: None,
            turn: None,
            relayed: 0,
            auto_signal: Some(Duration::from_millis(100)),
            signals: Vec::new(),
            error_codes: Vec::new(),
            filtered: 0,
        }
    }

    pub fn add_nat(&mut self, public_ip: &str, mapping: Mapping, filtering: Filtering) -> usize {
        self.nats.push(Nat {
            public_ip: public_ip.parse().unwrap(),
            mapping,
            filtering,
            ports: BTreeMap::new(),
            bindings: BTreeMap::new(),
            next_port: 50000,
        });
        self.nats.len() - 1
    }

    pub fn set_stun_server(&mut self, addr: &str) -> SocketAddr {
        let addr: SocketAddr = addr.parse().unwrap();
        let server = BindingServer::new(BindingConfig {
            sockets: ServerSockets::single(addr),
            software: None,
        });
        self.stun = Some((addr, server));
        addr
    }

    /// Puts a TURN server (the `turn::relay::TurnServer` core) at `addr`, relaying from
    /// `relay_ip`; it knows one user, alice.
    pub fn set_turn_server(&mut self, addr: &str, relay_ip: &str) -> SocketAddr {
        let addr: SocketAddr = addr.parse().unwrap();
        let relay_ip: IpAddr = relay_ip.parse().unwrap();
        let mut auth = AuthConfig::new(TURN_REALM, [7; 32]);
        auth.users = vec![StaticUser::from_password(
            TURN_USER,
            TURN_REALM,
            TURN_PASSWORD,
        )];
        let server = TurnServer::new(
            TurnConfig {
                relay_v4: Some(relay_ip),
                ..TurnConfig::default()
            },
            Authenticator::new(auth),
            PeerPolicy::default(),
            Box::new(StdRng::seed_from_u64(u64::from(self.seed))),
        );
        self.turn = Some(Relay {
            addr,
            relay_ip,
            server,
            sockets: FakeSockets::default(),
        });
        addr
    }

    /// The default config for a peer: the world's STUN server, if any.
    pub fn config(&self, controlling: bool) -> AgentConfig {
        let mut config = AgentConfig::new(controlling);
        if let Some((addr, _)) = &self.stun {
            config.stun_servers.push(*addr);
        }
        config
    }

    pub fn add_peer(&mut self, config: AgentConfig, host: &str, nat: Option<usize>) -> usize {
        let index = self.peers.len();
        let mut seed = [self.seed; 32];
        seed[0] = index as u8;
        self.peers.push(Peer {
            agent: IceAgent::new(self.now, config, seed),
            host: host.parse().unwrap(),
            nat,
            data: Vec::new(),
            events: Vec::new(),
            silent: false,
        });
        index
    }

    /// Gives each of the two peers the other's ufrag and password.
    pub fn exchange_credentials(&mut self) {
        let (u0, p0) = own(self.peers[0].agent.local_credentials());
        let (u1, p1) = own(self.peers[1].agent.local_credentials());
        self.peers[0].agent.set_remote_credentials(&u1, &p1);
        self.peers[1].agent.set_remote_credentials(&u0, &p0);
    }

    /// Every peer adds its host candidate.
    pub fn start(&mut self) {
        for peer in &mut self.peers {
            peer.agent.add_host_candidate(self.now, peer.host);
        }
        self.flush();
    }

    /// Runs the world for `duration`.
    /// Relay sockets the TURN server core has open (one per live allocation).
    pub fn open_relay_sockets(&self) -> usize {
        self.turn
            .as_ref()
            .map_or(0, |relay| relay.sockets.open.len())
    }

    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        self.run_until(until, |_| false);
    }

    /// Runs until `done` holds or `limit` has passed; returns whether `done` held.
    pub fn run_until_or(&mut self, limit: Duration, done: impl Fn(&World) -> bool) -> bool {
        let until = self.now + limit;
        self.run_until(until, done)
    }

    fn run_until(&mut self, until: Instant, done: impl Fn(&World) -> bool) -> bool {
        let mut same_instant = 0u32;
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            let mut next = self.queue.iter().map(|p| p.deliver_at).min();
            for peer in self.peers.iter().filter(|p| !p.silent) {
                if let Some(t) = peer.agent.poll_timeout() {
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
            }
            if let Some(t) = self.turn.as_ref().and_then(|r| r.server.poll_timeout()) {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
            for (t, _, _) in &self.signals {
                next = Some(next.map_or(*t, |n: Instant| n.min(*t)));
            }
            let Some(next) = next else {
                self.now = until;
                return false;
            };
            if next > until {
                self.now = until;
                return false;
            }
            if next <= self.now {
                same_instant += 1;
                assert!(
                    same_instant < 10_000,
                    "livelock at {:?}",
                    self.now - self.start
                );
            } else {
                same_instant = 0;
                self.now = next;
            }
            self.step();
        }
    }

    /// Delivers what is due and fires due timeouts.
    fn step(&mut self) {
        let now = self.now;
        let mut due: Vec<Packet> = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.queue[i].deliver_at <= now {
                due.push(self.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.deliver_at, p.seq));
        for packet in due {
            self.deliver(packet);
        }
        let signals = std::mem::take(&mut self.signals);
        for (at, to, candidate) in signals {
            if at <= now {
                self.peers[to].agent.add_remote_candidate(now, candidate);
            } else {
                self.signals.push((at, to, candidate));
            }
        }
        if let Some(relay) = &mut self.turn {
            relay.sockets.expire(&mut relay.server, now);
        }
        for peer in self.peers.iter_mut().filter(|p| !p.silent) {
            if peer.agent.poll_timeout().is_some_and(|t| t <= now) {
                peer.agent.handle_timeout(now);
            }
        }
    }

    /// Collects transmits and events from every peer.
    pub fn flush(&mut self) {
        for index in 0..self.peers.len() {
            while let Some(event) = self.peers[index].agent.poll_event() {
                if let (IceEvent::LocalCandidate(c), Some(delay)) = (&event, self.auto_signal) {
                    let other = 1 - index;
                    self.signals.push((self.now + delay, other, c.clone()));
                }
                self.peers[index].events.push((self.now, event));
            }
            while let Some(t) = self.peers[index].agent.poll_transmit() {
                if self.peers[index].silent {
                    continue;
                }
                assert_eq!(
                    t.source, self.peers[index].host,
                    "sent from a socket we have"
                );
                let nat = self.peers[index].nat;
                self.send(nat, t.source, t.destination, t.payload);
            }
        }
    }

    /// Sends one datagram from `source` (inside `nat`, if any) to `destination`.
    pub fn send(
        &mut self,
        nat: Option<usize>,
        source: SocketAddr,
        to: SocketAddr,
        payload: Vec<u8>,
    ) {
        let (from, realm) = match nat {
            Some(n) if !self.is_inside(n, to) => (self.nats[n].outbound(source, to), None),
            Some(n) => (source, Some(n)),
            None => (source, None),
        };
        if self.loss > 0.0 && self.rng.gen_bool(self.loss) {
            return;
        }
        self.enqueue(from, realm, to, payload);
    }

    /// Queues a datagram for delivery one latency from now.
    fn enqueue(
        &mut self,
        from: SocketAddr,
        realm: Option<usize>,
        to: SocketAddr,
        payload: Vec<u8>,
    ) {
        self.seq += 1;
        self.queue.push(Packet {
            deliver_at: self.now + self.latency,
            seq: self.seq,
            from,
            realm,
            to,
            payload,
        });
    }

    fn is_inside(&self, nat: usize, addr: SocketAddr) -> bool {
        self.peers
            .iter()
            .any(|p| p.nat == Some(nat) && p.host.ip() == addr.ip())
    }

    fn deliver(&mut self, packet: Packet) {
        let now = self.now;
        if let Ok(message) = Message::decode(&packet.payload) {
            if message.header().message_type.class == Class::Error {
                if let Some(Ok(code)) = message.get::<ErrorCode<'_>>() {
                    self.error_codes.push(code.code);
                }
            }
        }
        if let Some((addr, server)) = &self.stun {
            if packet.to == *addr {
                let mut out = [0u8; 1500];
                let id = server.config().sockets.ids().next().unwrap();
                if let Some(answer) =
                    server.handle(Transport::Udp, id, packet.from, &packet.payload, &mut out)
                {
                    let reply = out[..answer.len].to_vec();
                    let from = *addr;
                    self.enqueue(from, None, answer.to, reply);
                }
                return;
            }
        }
        if self.turn.as_ref().is_some_and(|r| r.addr == packet.to) {
            return self.deliver_to_turn(packet);
        }
        if self
            .turn
            .as_ref()
            .is_some_and(|r| r.relay_ip == packet.to.ip())
        {
            return self.deliver_to_relayed(packet);
        }
        // Through a NAT's public side, or straight to a host address.
        let (target, realm) = match self.nats.iter().position(|n| n.public_ip == packet.to.ip()) {
            Some(n) => match self.nats[n].inbound(packet.to.port(), packet.from) {
                Some(internal) => (internal, Some(n)),
                None => {
                    self.filtered += 1;
                    return;
                }
            },
            None => (packet.to, packet.realm),
        };
        // A private address is reachable only from inside its own network.
        let Some(peer) = self
            .peers
            .iter_mut()
            .find(|p| p.host == target && p.nat == realm)
        else {
            self.filtered += 1;
            return;
        };
        if peer.silent {
            return;
        }
        if let AgentInput::Data(data) =
            peer.agent
                .handle_input(now, target, packet.from, &packet.payload)
        {
            peer.data.push(data.to_vec());
        }
    }

    /// A datagram from a client to the TURN server.
    fn deliver_to_turn(&mut self, packet: Packet) {
        let now = self.now;
        let unix_now = 1_900_000_000 + (now - self.start).as_secs();
        let relay = self.turn.as_mut().unwrap();
        let five_tuple = FiveTuple {
            client: packet.from.into(),
            server: relay.addr,
            transport: ClientTransport::Udp,
        };
        let mut out = [0u8; 1500];
        let clock = (now, unix_now);
        let outcome = (relay.sockets).serve(
            &mut relay.server,
            clock,
            five_tuple,
            &packet.payload,
            &mut out,
        );
        let (from, to, payload) = match outcome {
            // Over UDP a ConnectionBind (RFC 6062) is refused: never bound.
            ClientOutcome::Nothing | ClientOutcome::ConnectionBound { .. } => return,
            ClientOutcome::Reply(t) => (relay.addr, t.to, out[..t.len].to_vec()),
            ClientOutcome::Relay {
                relay: source,
                peer,
                payload: range,
                ..
            } => {
                self.relayed += 1;
                (source.get(), peer.get(), packet.payload[range].to_vec())
            }
        };
        self.enqueue(from, None, to, payload);
    }

    /// A datagram from a peer to a relayed address.
    fn deliver_to_relayed(&mut self, packet: Packet) {
        let now = self.now;
        let relay = self.turn.as_mut().unwrap();
        let len = packet.payload.len();
        let mut buf = vec![0u8; PEER_HEADROOM + len + 4];
        buf[PEER_HEADROOM..PEER_HEADROOM + len].copy_from_slice(&packet.payload);
        let Some(outcome) = relay.server.handle_peer(
            now,
            RelayAddr::from(packet.to),
            PeerAddr::from(packet.from),
            &mut buf,
            len,
        ) else {
            self.filtered += 1;
            return;
        };
        self.relayed += 1;
        let from = relay.addr;
        self.enqueue(
            from,
            None,
            outcome.to.client.get(),
            buf[outcome.data].to_vec(),
        );
    }

    /// Seconds since the start, for messages.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn own((u, p): (&str, &str)) -> (String, String) {
    (u.to_owned(), p.to_owned())
}

/// The credentials of the simulated relay's user.
pub fn turn_credentials() -> ice::TurnCredentials {
    ice::TurnCredentials {
        username: TURN_USER.into(),
        password: TURN_PASSWORD.into(),
    }
}
