//! The checks of the `turn_server` fuzz target, shared with its corpus replay
//! (`crates/turn/tests/fuzz_corpus.rs`).
//!
//! The input is a script: a sequence of steps read with [`Input`] — raw datagrams from one
//! of several clients, requests built from templates (so that the fuzzer reaches the paths
//! behind MESSAGE-INTEGRITY: the harness signs with a configured user's key and the last
//! nonce the server gave that client, like a client library), ChannelData, datagrams from
//! peers on the relay sockets, clock steps and closed connections. After every step the
//! invariants below must hold; a panic anywhere in the core is a finding too.
//!
//! Invariants:
//! - a reply goes to the client that sent the request, fits the output buffer, decodes as
//!   STUN, and answers that request (same transaction id and method, response class);
//! - a payload to relay is a range of the packet, leaves from an open relay socket, and never
//!   goes to a denied peer (loopback, private ranges, the server's own service port);
//! - a framed peer datagram is a range of the buffer and reads back as ChannelData or a Data
//!   indication carrying exactly the payload, for a client that has an allocation;
//! - allocations never exceed the total quota, each holds an open relay socket, and a socket
//!   is never closed twice or closed when not open;
//! - the timer loop terminates: after `handle_timeout(now)`, nothing is due at `now`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::attributes::{
    AddressFamily, ChannelNumber, Data, DontFragment, ErrorCode, EvenPort, Lifetime, Nonce,
    PasswordAlgorithmId, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken,
    Username, XorPeerAddress, XorRelayedAddress,
};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId};
use turn::auth::{rest, AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::stats::Direction;
use turn::relay::{
    ClientOutcome, ClientTransport, FiveTuple, PeerAddr, RelayAddr, RelayCommand, RelayOpenError,
    SharedState, TurnConfig, TurnEvent, TurnServer, PEER_HEADROOM,
};
use turn::SocketId;

use crate::input::Input;

pub const REALM: &str = "example.org";
const REST_SECRET: &str = "rest-secret";
/// Configured users; the third entry signs with a wrong password.
const USERS: [(&str, &str); 3] = [
    ("alice", "alice-pass"),
    ("bob", "bob-pass"),
    ("alice", "not-alice-pass"),
];
const RELAY_V4: &str = "203.0.113.10";
const RELAY_V6: &str = "2001:db8::10";
const SERVER_V4: &str = "192.0.2.1:3478";
const SERVER_V6: &str = "[2001:db8::1]:3478";
const USER_QUOTA: usize = 2;
const TOTAL_QUOTA: usize = 5;
/// Few ports, so that exhaustion (508) and EVEN-PORT reservations are reachable.
const PORTS: std::ops::RangeInclusive<u16> = 50_000..=50_007;

/// The clients: two ports of one IPv4 address (a replay from another port), another IPv4
/// client over TCP, an IPv6 client, and the server itself as a (spoofed) source.
fn sources() -> [FiveTuple; 5] {
    let udp4 = |client: &str| FiveTuple {
        client: client.parse::<SocketAddr>().unwrap().into(),
        server: SERVER_V4.parse().unwrap(),
        transport: ClientTransport::Udp,
    };
    [
        udp4("198.51.100.7:40000"),
        udp4("198.51.100.7:40001"),
        FiveTuple {
            transport: ClientTransport::Tcp,
            ..udp4("198.51.100.8:40000")
        },
        FiveTuple {
            client: "[2001:db8:2::7]:40000"
                .parse::<SocketAddr>()
                .unwrap()
                .into(),
            server: SERVER_V6.parse().unwrap(),
            transport: ClientTransport::Udp,
        },
        udp4("192.0.2.1:3478"),
    ]
}

/// Peer addresses: allowed documentation addresses, our own relay, and denied ones.
fn peers() -> [SocketAddr; 9] {
    [
        "198.51.100.20:5000",
        "198.51.100.21:6000",
        "[2001:db8:3::5]:7000",
        "203.0.113.10:50000",
        "203.0.113.10:50001",
        "127.0.0.1:80",
        "10.0.0.1:22",
        "192.0.2.1:3478",
        "[::1]:443",
    ]
    .map(|p| p.parse().unwrap())
}

/// Peers the relay must never send to (loopback, private, the server's own service port).
fn denied(peer: SocketAddr) -> bool {
    let ip = peer.ip();
    ip.is_loopback()
        || ip == "10.0.0.1".parse::<IpAddr>().unwrap()
        || peer == SERVER_V4.parse::<SocketAddr>().unwrap()
}

/// Relay sockets that "bind" any free address and check open/close pairing.
#[derive(Default)]
struct Sockets {
    open: BTreeSet<SocketAddr>,
}

impl Sockets {
    /// Executes a command of the core, as a driver does; for a bind, its result. A TCP
    /// allocation's listening socket (RFC 6062) takes its address like a UDP one.
    fn execute(&mut self, command: RelayCommand) -> Option<Result<(), RelayOpenError>> {
        match command {
            RelayCommand::Open { addr, .. } => Some(match self.open.insert(addr.get()) {
                true => Ok(()),
                false => Err(RelayOpenError::AddrInUse),
            }),
            RelayCommand::Close(addr) => {
                assert!(
                    self.open.remove(&addr.get()),
                    "closed {addr}, which is not open"
                );
                None
            }
            _ => None,
        }
    }
}

/// What the harness remembers per client, as a client library would.
#[derive(Default, Clone)]
struct ClientState {
    nonce: Option<String>,
    channels: Vec<u16>,
}

struct World {
    server: TurnServer,
    sockets: Sockets,
    now: Instant,
    start_unix: u64,
    elapsed: Duration,
    sources: [FiveTuple; 5],
    clients: Vec<ClientState>,
    tokens: Vec<[u8; 8]>,
    next_tid: u32,
    /// Allocations created minus ended, as the core's events tell.
    live_by_events: usize,
}

impl World {
    fn new() -> World {
        let config = TurnConfig {
            relay_v4: Some(RELAY_V4.parse().unwrap()),
            relay_v6: Some(RELAY_V6.parse().unwrap()),
            port_range: PORTS,
            user_quota: USER_QUOTA,
            total_quota: TOTAL_QUOTA,
            max_permissions: 3,
            max_channels: 3,
            own_ips: vec!["192.0.2.1".parse().unwrap()],
            service_ports: vec![3478],
            software: Some("fuzz".into()),
            ..TurnConfig::default()
        };
        let shared = Arc::new(SharedState::new(
            &config.relay_ips(),
            config.port_range.clone(),
        ));
        let mut auth = AuthConfig::new(REALM, [7; 32]);
        auth.users = USERS[..2]
            .iter()
            .map(|(name, password)| StaticUser::from_password(name, REALM, password))
            .collect();
        auth.rest_secrets = vec![REST_SECRET.into()];
        let server = TurnServer::with_shared_state(
            config,
            Authenticator::new(auth),
            PeerPolicy::default(),
            Box::new(StdRng::seed_from_u64(1)),
            shared,
        );
        let sources = sources();
        World {
            server,
            sockets: Sockets::default(),
            now: Instant::now(),
            start_unix: 1_900_000_000,
            elapsed: Duration::ZERO,
            clients: vec![ClientState::default(); sources.len()],
            sources,
            tokens: Vec::new(),
            next_tid: 0,
            live_by_events: 0,
        }
    }

    fn unix_now(&self) -> u64 {
        self.start_unix + self.elapsed.as_secs()
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.elapsed += by;
        // A driver calls handle_timeout whenever poll_timeout is due; it must stop being due.
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
            self.run_commands(&mut []);
        }
        if let Some(t) = self.server.poll_timeout() {
            assert!(t > self.now, "a timer is still due after handle_timeout");
        }
    }

    /// Executes the core's commands, feeding each bind's result back (a driver does it
    /// after every call); the answer of an Allocate finished meanwhile.
    fn run_commands(&mut self, out: &mut [u8]) -> ClientOutcome {
        let mut answer = ClientOutcome::Nothing;
        while let Some(command) = self.server.poll_command() {
            let ticket = match &command {
                RelayCommand::Open { ticket, .. } => Some(*ticket),
                _ => None,
            };
            if let (Some(ticket), Some(result)) = (ticket, self.sockets.execute(command)) {
                match self.server.relay_opened(self.now, ticket, result, out) {
                    ClientOutcome::Nothing => {}
                    outcome => answer = outcome,
                }
            }
        }
        answer
    }

    fn tid(&mut self) -> TransactionId {
        self.next_tid += 1;
        let mut id = [0x5a; 12];
        id[..4].copy_from_slice(&self.next_tid.to_be_bytes());
        TransactionId(id)
    }

    /// Feeds a client packet and checks the outcome.
    fn feed(&mut self, source: usize, packet: &[u8]) {
        let five_tuple = self.sources[source];
        let mut out = [0u8; 1500];
        let outcome = self.server.handle_client(
            self.now,
            self.unix_now(),
            five_tuple,
            SocketId::PRIMARY,
            packet,
            &mut out,
        );
        let outcome = match self.run_commands(&mut out) {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        };
        match outcome {
            ClientOutcome::Nothing => {}
            ClientOutcome::Reply(transmit)
            | ClientOutcome::ConnectionBound {
                reply: transmit, ..
            } => {
                assert_eq!(
                    transmit.to,
                    five_tuple.client.get(),
                    "a reply to someone else"
                );
                assert!(transmit.len <= out.len());
                self.check_reply(source, packet, &out[..transmit.len]);
            }
            ClientOutcome::Relay {
                relay,
                peer,
                payload,
                ..
            } => {
                assert!(payload.start <= payload.end && payload.end <= packet.len());
                assert!(
                    self.sockets.open.contains(&relay.get()),
                    "relayed from {relay}, not an open relay socket"
                );
                assert!(!denied(peer.get()), "relayed to a denied peer {peer}");
            }
        }
    }

    /// A reply answers its request and is remembered as a client library would.
    fn check_reply(&mut self, source: usize, request: &[u8], reply: &[u8]) {
        let response = Message::decode(reply).expect("the server's reply decodes");
        let request = Message::decode(request).expect("only a decoded request is answered");
        let (rh, qh) = (response.header(), request.header());
        assert_eq!(rh.transaction_id, qh.transaction_id);
        assert_eq!(rh.message_type.method, qh.message_type.method);
        assert!(matches!(
            rh.message_type.class,
            Class::Success | Class::Error
        ));
        let client = &mut self.clients[source];
        if let Some(Ok(nonce)) = response.get::<Nonce<'_>>() {
            client.nonce = Some(nonce.0.to_string());
        }
        if rh.message_type.class == Class::Success {
            if let Some(Ok(token)) = response.get::<ReservationToken>() {
                self.tokens.push(token.0);
            }
            if let Some(Ok(relayed)) = response.get::<XorRelayedAddress>() {
                let family = relayed.0.is_ipv4();
                assert!(self
                    .server
                    .config()
                    .relay_ips_of(family)
                    .contains(&relayed.0.ip()));
            }
            if qh.message_type.method == Method::CHANNEL_BIND {
                if let Some(Ok(number)) = request.get::<ChannelNumber>() {
                    if !client.channels.contains(&number.0) {
                        client.channels.push(number.0);
                    }
                }
            }
        } else {
            assert!(
                matches!(response.get::<ErrorCode<'_>>(), Some(Ok(_))),
                "an error response carries ERROR-CODE"
            );
        }
    }

    /// Allocation-wide invariants, after every step.
    fn check_state(&mut self) {
        // Every allocation has one creation and one end event (the queue cannot overflow
        // within one step of this harness).
        while let Some(event) = self.server.poll_event() {
            match event {
                TurnEvent::AllocationCreated(_) => self.live_by_events += 1,
                TurnEvent::AllocationEnded { .. } => self.live_by_events -= 1,
                TurnEvent::Lost { .. } => panic!("events lost: {event:?}"),
                _ => {}
            }
        }
        let allocations = self.server.stats().allocation_count() as usize;
        assert_eq!(self.live_by_events, allocations, "created − ended events");
        assert!(allocations <= TOTAL_QUOTA, "over the total quota");
        assert_eq!(allocations, self.server.shared_state().allocations());
        assert!(
            self.sockets.open.len() >= allocations,
            "an allocation without a relay socket"
        );
        let held = self
            .sources
            .iter()
            .filter(|t| self.server.has_allocation(t));
        assert!(held.count() <= allocations);
    }
}

/// Bits of a request template's `flags`.
pub const TRANSPORT: u16 = 1;
pub const LIFETIME: u16 = 1 << 1;
pub const PEER: u16 = 1 << 2;
pub const PEER2: u16 = 1 << 3;
pub const CHANNEL: u16 = 1 << 4;
pub const EVEN_PORT: u16 = 1 << 5;
pub const TOKEN: u16 = 1 << 6;
pub const FAMILY: u16 = 1 << 7;
pub const DONT_FRAGMENT: u16 = 1 << 8;
pub const DATA: u16 = 1 << 9;
pub const FINGERPRINT: u16 = 1 << 10;
pub const NO_COOKIE: u16 = 1 << 11;

const METHODS: [MessageType; 5] = [
    MessageType::new(Method::ALLOCATE, Class::Request),
    MessageType::new(Method::REFRESH, Class::Request),
    MessageType::new(Method::CREATE_PERMISSION, Class::Request),
    MessageType::new(Method::CHANNEL_BIND, Class::Request),
    MessageType::new(Method::SEND, Class::Indication),
];

/// Builds a request from a template chosen by the input, signs it as the input says, then
/// flips a few bytes if the input asks.
fn templated_request(world: &mut World, input: &mut Input<'_>, source: usize) -> Vec<u8> {
    let message_type = METHODS[input.below(METHODS.len())];
    let flags = input.u16();
    let lifetime = [0, 1, 60, 600, 3600, 86_400, u32::MAX][input.below(7)];
    let peers = peers();
    let peer = peers[input.below(peers.len())];
    let peer2 = peers[input.below(peers.len())];
    let channel = match input.u8() {
        n @ 0..=15 => 0x4000 + u16::from(n),
        0xff => input.u16(),
        n => 0x4000 + u16::from(n) * 64,
    };
    let transport = [17, 6, 0][input.below(3)];
    let family = [AddressFamily::IPV4, AddressFamily::IPV6, AddressFamily(3)][input.below(3)];
    let token = match world.tokens.len() {
        0 => [input.u8(); 8],
        n => world.tokens[input.below(n)],
    };
    let auth = input.below(5);
    let (user, password) = USERS[input.below(USERS.len())];
    let data = if flags & DATA != 0 {
        input.bytes(200)
    } else {
        &[]
    };

    let tid = world.tid();
    let mut buf = vec![0u8; 1500];
    let mut w = if flags & NO_COOKIE != 0 {
        MessageWriter::with_cookie(&mut buf, message_type, 0, tid)
    } else {
        MessageWriter::new(&mut buf, message_type, tid)
    }
    .expect("the buffer holds a header");
    if flags & TRANSPORT != 0 {
        w.add(&RequestedTransport(transport)).unwrap();
    }
    if flags & LIFETIME != 0 {
        w.add(&Lifetime(lifetime)).unwrap();
    }
    if flags & PEER != 0 {
        w.add(&XorPeerAddress(peer)).unwrap();
    }
    if flags & PEER2 != 0 {
        w.add(&XorPeerAddress(peer2)).unwrap();
    }
    if flags & CHANNEL != 0 {
        w.add(&ChannelNumber(channel)).unwrap();
    }
    if flags & EVEN_PORT != 0 {
        w.add(&EvenPort {
            reserve_next: flags & TOKEN == 0,
        })
        .unwrap();
    }
    if flags & TOKEN != 0 {
        w.add(&ReservationToken(token)).unwrap();
    }
    if flags & FAMILY != 0 {
        w.add(&RequestedAddressFamily(family)).unwrap();
    }
    if flags & DONT_FRAGMENT != 0 {
        w.add(&DontFragment).unwrap();
    }
    if flags & DATA != 0 {
        w.add(&Data(data)).unwrap();
    }
    // 0: unsigned; 1: a configured user; 2: a REST credential; 3: an expired REST
    // credential; 4: signed with a stale nonce the server never issued.
    let nonce = world.clients[source].nonce.clone();
    let signed = match auth {
        0 => None,
        1 => Some((user.to_string(), password.to_string(), nonce)),
        2 | 3 => {
            let expiry = if auth == 2 {
                world.unix_now() + 3600
            } else {
                world.unix_now().saturating_sub(1)
            };
            let name = rest::username(expiry, Some(user));
            let password = rest::password(REST_SECRET, &name);
            Some((name, password, nonce))
        }
        _ => Some((user.to_string(), password.to_string(), Some("stale".into()))),
    };
    if let Some((name, password, nonce)) = signed {
        let key = LongTermKey::derive(PasswordAlgorithmId::MD5, &name, REALM, &password)
            .expect("MD5 keys derive from any text");
        w.add(&Username(&name)).unwrap();
        w.add(&Realm(REALM)).unwrap();
        if let Some(nonce) = &nonce {
            w.add(&Nonce(nonce)).unwrap();
        }
        w.add_message_integrity(key.as_bytes()).unwrap();
    }
    if flags & FINGERPRINT != 0 {
        w.add_fingerprint().unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    for _ in 0..input.below(4) {
        let at = usize::from(input.u16()) % buf.len();
        buf[at] ^= input.u8();
    }
    buf
}

/// ChannelData on a channel the client bound (or any number), with a length field that
/// may lie.
fn channel_data(world: &World, input: &mut Input<'_>, source: usize) -> Vec<u8> {
    let channels = &world.clients[source].channels;
    let selector = input.u8();
    let channel = match channels.len() {
        n if n > 0 && selector < 0x80 => channels[usize::from(selector) % n],
        _ => 0x4000 | u16::from(selector),
    };
    let lie = input.u8();
    let payload = input.bytes(300);
    let length = match lie {
        0..=0xef => payload.len() as u16,
        n => (payload.len() as u16).wrapping_add(u16::from(n - 0xf0)),
    };
    let mut packet = Vec::with_capacity(4 + payload.len() + 3);
    packet.extend_from_slice(&channel.to_be_bytes());
    packet.extend_from_slice(&length.to_be_bytes());
    packet.extend_from_slice(payload);
    if lie & 1 == 1 {
        packet.resize(packet.len().next_multiple_of(4), 0);
    }
    packet
}

/// A datagram from a peer to a relay socket (one that is open, or any address).
fn peer_datagram(world: &mut World, input: &mut Input<'_>) {
    let selector = input.u8();
    let relay = match world.sockets.open.len() {
        n if n > 0 && selector < 0xf0 => *world
            .sockets
            .open
            .iter()
            .nth(usize::from(selector) % n)
            .unwrap(),
        _ => SocketAddr::new(RELAY_V4.parse().unwrap(), 50_000 + u16::from(selector % 8)),
    };
    let peers = peers();
    let peer = peers[input.below(peers.len())];
    let payload = input.bytes(600);
    let mut buf = vec![0u8; PEER_HEADROOM + payload.len() + 3];
    buf[PEER_HEADROOM..PEER_HEADROOM + payload.len()].copy_from_slice(payload);
    let outcome = world.server.handle_peer(
        world.now,
        RelayAddr::from(relay),
        PeerAddr::from(peer),
        &mut buf,
        payload.len(),
    );
    let Some(outcome) = outcome else {
        return;
    };
    assert!(outcome.data.start <= outcome.data.end && outcome.data.end <= buf.len());
    assert!(
        world.server.has_allocation(&outcome.to),
        "framed for no allocation"
    );
    let framed = &buf[outcome.data];
    match framed.first().map(|b| b >> 6) {
        // RFC 8656 §12.4: ChannelData, its length the payload's.
        Some(0b01) => {
            let length = usize::from(u16::from_be_bytes([framed[2], framed[3]]));
            assert_eq!(length, payload.len());
            assert_eq!(&framed[4..4 + length], payload);
        }
        // RFC 8656 §11.4: a Data indication from the peer, carrying the payload.
        _ => {
            let message = Message::decode(framed).expect("a Data indication decodes");
            assert_eq!(
                message.header().message_type,
                MessageType::new(Method::DATA, Class::Indication)
            );
            assert_eq!(message.get::<Data<'_>>().unwrap().unwrap().0, payload);
            let from = message.get::<XorPeerAddress>().unwrap().unwrap().0;
            assert_eq!(from.port(), peer.port());
        }
    }
}

/// What a run reached, for the corpus replay to check that seeds exercise the deep paths.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub steps: usize,
    pub most_allocations: usize,
    pub to_peer: u64,
    pub to_client: u64,
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let mut world = World::new();
    let mut reached = Reached::default();
    // Bounded so that a long input costs linear time (libFuzzer caps input length too).
    while !input.is_empty() && reached.steps < 256 {
        reached.steps += 1;
        match input.below(7) {
            0 => {
                let source = input.below(world.sources.len());
                let packet = input.bytes(1500).to_vec();
                world.feed(source, &packet);
            }
            1 | 2 => {
                let source = input.below(world.sources.len());
                let packet = templated_request(&mut world, &mut input, source);
                world.feed(source, &packet);
            }
            3 => {
                let source = input.below(world.sources.len());
                let packet = channel_data(&world, &mut input, source);
                world.feed(source, &packet);
            }
            4 => peer_datagram(&mut world, &mut input),
            5 => {
                // 100 ms steps, up to ~109 minutes: past nonce, permission, channel and
                // allocation lifetimes.
                let by = Duration::from_millis(u64::from(input.u16()) * 100);
                world.advance(by);
            }
            _ => {
                let source = input.below(world.sources.len());
                let five_tuple = world.sources[source];
                world.server.client_closed(world.now, &five_tuple);
                world.run_commands(&mut []);
                world.clients[source].channels.clear();
            }
        }
        world.check_state();
        let stats = world.server.stats();
        let allocations = stats.allocation_count() as usize;
        reached.most_allocations = reached.most_allocations.max(allocations);
        reached.to_peer = stats.packets_in(Direction::ToPeer);
        reached.to_client = stats.packets_in(Direction::ToClient);
    }
    reached
}
