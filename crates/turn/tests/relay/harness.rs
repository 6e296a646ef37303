//! A TURN client driving the sans-IO server with a hand-moved clock and fake relay sockets.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::attributes::{
    ErrorCode, Nonce, PasswordAlgorithm, PasswordAlgorithmId, PasswordAlgorithms, Realm, Username,
};
use stun::{
    AnyAttribute, Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId,
};
use turn::auth::algorithms::ADVERTISED;
use turn::auth::{AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::{
    ClientOutcome, ClientTransport, ConnectionId, FiveTuple, OpenTicket, PeerAddr, RelayAddr,
    RelayCommand, RelayOpenError, ServerErrorCause, SharedState, SocketKind, TurnConfig, TurnEvent,
    TurnServer,
};
use turn::SocketId;

pub const REALM: &str = "example.org";
pub const SERVER: &str = "192.0.2.1:3478";
/// The relay IP in most tests: a documentation address, allowed as a peer by the policy.
pub const RELAY_IP: &str = "203.0.113.10";

/// Relay sockets that "bind" anything not listed as taken by another program: they execute
/// the core's commands as a driver does.
#[derive(Debug, Default)]
pub struct FakeSockets {
    pub open: BTreeSet<SocketAddr>,
    pub taken: BTreeSet<SocketAddr>,
    /// Every bind fails with this (EADDRNOTAVAIL, EMFILE, …).
    pub fail_all: Option<RelayOpenError>,
    /// TCP listening sockets (RFC 6062 relayed addresses).
    pub listening: BTreeSet<SocketAddr>,
    /// Outgoing TCP connections asked for: (id, relay, peer).
    pub connecting: Vec<(ConnectionId, SocketAddr, SocketAddr)>,
    /// Peer data connections the core closed.
    pub closed_tcp: Vec<ConnectionId>,
    /// Binds asked for and not answered: while set, `Open` commands are kept here instead
    /// of being executed (a driver that is slow, or lost one).
    pub hold_opens: bool,
    pub held: Vec<(OpenTicket, SocketAddr)>,
    /// Every bind asked for, in order.
    pub opens_asked: Vec<SocketAddr>,
}

impl FakeSockets {
    /// Executes one command; for an `Open`, the result to report (`None` as well when the
    /// bind is held).
    pub fn execute(
        &mut self,
        command: RelayCommand,
    ) -> Option<(OpenTicket, Result<(), RelayOpenError>)> {
        match command {
            RelayCommand::Open { ticket, addr, kind } => {
                self.opens_asked.push(addr.get());
                if self.hold_opens {
                    self.held.push((ticket, addr.get()));
                    return None;
                }
                let result = match kind {
                    SocketKind::Udp => self.open(addr),
                    _ => self.listen_tcp(addr),
                };
                Some((ticket, result))
            }
            RelayCommand::Close(addr) => {
                self.close(addr);
                None
            }
            RelayCommand::ConnectTcp { id, relay, peer } => {
                self.connect_tcp(id, relay, peer);
                None
            }
            RelayCommand::CloseTcp(id) => {
                self.closed_tcp.push(id);
                None
            }
            other => panic!("unexpected command {other:?}"),
        }
    }

    fn open(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        let addr = addr.get();
        if let Some(error) = self.fail_all {
            return Err(error);
        }
        match !self.taken.contains(&addr) && self.open.insert(addr) {
            true => Ok(()),
            false => Err(RelayOpenError::AddrInUse),
        }
    }
    fn close(&mut self, addr: RelayAddr) {
        let addr = addr.get();
        let closed = self.open.remove(&addr) || self.listening.remove(&addr);
        assert!(closed, "closing {addr}, which is not open");
    }
    fn listen_tcp(&mut self, addr: RelayAddr) -> Result<(), RelayOpenError> {
        let addr = addr.get();
        if self.taken.contains(&addr) || self.open.contains(&addr) {
            return Err(RelayOpenError::AddrInUse);
        }
        assert!(self.listening.insert(addr), "listening twice on {addr}");
        Ok(())
    }
    fn connect_tcp(&mut self, id: ConnectionId, relay: RelayAddr, peer: PeerAddr) {
        let (relay, peer) = (relay.get(), peer.get());
        assert!(
            self.listening.contains(&relay),
            "connect from {relay}, not a TCP relay"
        );
        self.connecting.push((id, relay, peer));
    }
}

pub struct World {
    pub server: TurnServer,
    pub sockets: FakeSockets,
    pub now: Instant,
    pub unix_now: u64,
    next_tid: u8,
}

pub fn config() -> TurnConfig {
    TurnConfig {
        relay_v4: Some(RELAY_IP.parse().unwrap()),
        ..TurnConfig::default()
    }
}

impl World {
    pub fn new(config: TurnConfig) -> World {
        Self::with_policy(config, PeerPolicy::default())
    }

    pub fn with_policy(config: TurnConfig, policy: PeerPolicy) -> World {
        let shared = Arc::new(SharedState::new(
            &config.relay_ips(),
            config.port_range.clone(),
        ));
        Self::sharing(config, policy, shared)
    }

    /// One of several cores (workers) sharing `shared`.
    pub fn sharing(config: TurnConfig, policy: PeerPolicy, shared: Arc<SharedState>) -> World {
        let mut auth = AuthConfig::new(REALM, [7; 32]);
        auth.users = vec![
            StaticUser::from_password("alice", REALM, "alice-pass"),
            StaticUser::from_password("bob", REALM, "bob-pass"),
        ];
        auth.rest_secrets = vec!["rest-secret".into()];
        let server = TurnServer::with_shared_state(
            config,
            Authenticator::new(auth),
            policy,
            Box::new(StdRng::seed_from_u64(42)),
            shared,
        );
        let start = Instant::now();
        World {
            server,
            sockets: FakeSockets::default(),
            now: start,
            unix_now: 1_900_000_000,
            next_tid: 0,
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.unix_now += by.as_secs();
        while let Some(t) = self.server.poll_timeout() {
            if t > self.now {
                break;
            }
            self.server.handle_timeout(self.now);
            self.run_commands(&mut []);
        }
    }

    /// Executes the commands the server queued, as a driver does after each call, feeding
    /// each bind's result back; returns the answer of an Allocate finished meanwhile.
    pub fn run_commands(&mut self, out: &mut [u8]) -> ClientOutcome {
        let mut answer = ClientOutcome::Nothing;
        while let Some(command) = self.server.poll_command() {
            if let Some((ticket, result)) = self.sockets.execute(command) {
                match self.server.relay_opened(self.now, ticket, result, out) {
                    ClientOutcome::Nothing => {}
                    outcome => answer = outcome,
                }
            }
        }
        answer
    }

    /// Answers a held bind (see [`FakeSockets::hold_opens`]) with `result`, as a late driver
    /// would, then runs the commands queued; returns the outcome and the reply bytes if any.
    pub fn answer_open(
        &mut self,
        ticket: OpenTicket,
        result: Result<(), RelayOpenError>,
    ) -> (ClientOutcome, Vec<u8>) {
        let mut out = [0u8; 1500];
        let outcome = self.server.relay_opened(self.now, ticket, result, &mut out);
        let outcome = match self.run_commands(&mut out) {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        };
        let reply = match &outcome {
            ClientOutcome::Reply(t) => out[..t.len].to_vec(),
            _ => Vec::new(),
        };
        (outcome, reply)
    }

    /// The server errors (code, cause) among the events queued since the last call; the
    /// other events are dropped.
    pub fn server_errors(&mut self) -> Vec<(u16, ServerErrorCause)> {
        std::iter::from_fn(|| self.server.poll_event())
            .filter_map(|e| match e {
                TurnEvent::ServerError(e) => Some((e.code, e.cause)),
                _ => None,
            })
            .collect()
    }

    /// Ends the allocation on `five_tuple` by hand (see [`TurnServer::kick`]).
    pub fn kick(&mut self, five_tuple: &FiveTuple) -> bool {
        let kicked = self.server.kick(self.now, five_tuple);
        self.run_commands(&mut []);
        kicked
    }

    /// Ends every allocation of `username` by hand.
    pub fn kick_user(&mut self, username: &str) -> usize {
        let kicked = self.server.kick_user(self.now, username);
        self.run_commands(&mut []);
        kicked
    }

    /// The client's TCP/TLS connection on `five_tuple` closed.
    pub fn client_closed(&mut self, five_tuple: &FiveTuple) {
        self.server.client_closed(self.now, five_tuple);
        self.run_commands(&mut []);
    }

    pub fn tid(&mut self) -> TransactionId {
        self.next_tid = self.next_tid.wrapping_add(1);
        TransactionId([self.next_tid; 12])
    }

    /// Feeds raw bytes from `from`; returns the outcome and the reply bytes if any.
    pub fn feed(&mut self, from: FiveTuple, packet: &[u8]) -> (ClientOutcome, Vec<u8>) {
        let mut out = [0u8; 1500];
        let outcome = self.server.handle_client(
            self.now,
            self.unix_now,
            from,
            SocketId::PRIMARY,
            packet,
            &mut out,
        );
        let outcome = match self.run_commands(&mut out) {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        };
        let reply = match &outcome {
            ClientOutcome::Reply(t) | ClientOutcome::ConnectionBound { reply: t, .. } => {
                assert_eq!(t.to, from.client.get());
                out[..t.len].to_vec()
            }
            _ => Vec::new(),
        };
        (outcome, reply)
    }
}

pub fn udp_client(port: u16) -> FiveTuple {
    FiveTuple {
        client: SocketAddr::new("198.51.100.7".parse().unwrap(), port).into(),
        server: SERVER.parse().unwrap(),
        transport: ClientTransport::Udp,
    }
}

pub fn tcp_client(port: u16) -> FiveTuple {
    FiveTuple {
        transport: ClientTransport::Tcp,
        ..udp_client(port)
    }
}

/// A client with credentials, as a TURN client library would be.
pub struct Client {
    pub five_tuple: FiveTuple,
    pub username: String,
    pub key: LongTermKey,
    pub nonce: Option<String>,
    /// Signs as an RFC 8489 client: PASSWORD-ALGORITHMS echoed, SHA-256 chosen,
    /// MESSAGE-INTEGRITY-SHA256 (§9.2.5); else MESSAGE-INTEGRITY with the MD5 key (RFC 5389).
    pub sha256: bool,
}

impl Client {
    pub fn new(five_tuple: FiveTuple, username: &str, password: &str) -> Client {
        let key = LongTermKey::derive(PasswordAlgorithmId::MD5, username, REALM, password).unwrap();
        Client {
            five_tuple,
            username: username.into(),
            key,
            nonce: None,
            sha256: false,
        }
    }

    /// The same client signing as RFC 8489 describes, with the SHA-256 key.
    pub fn modern(five_tuple: FiveTuple, username: &str, password: &str) -> Client {
        let key =
            LongTermKey::derive(PasswordAlgorithmId::SHA256, username, REALM, password).unwrap();
        Client {
            key,
            sha256: true,
            ..Client::new(five_tuple, username, password)
        }
    }

    /// Encodes a request with `attributes`, signed (MESSAGE-INTEGRITY with the MD5 key, or
    /// MESSAGE-INTEGRITY-SHA256 for a [`Client::modern`]) once a nonce is known.
    pub fn encode(
        &self,
        method: Method,
        tid: TransactionId,
        attributes: &[AnyAttribute<'_>],
    ) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
        for a in attributes {
            w.add_any(a).unwrap();
        }
        if let Some(nonce) = &self.nonce {
            w.add(&Username(&self.username)).unwrap();
            w.add(&Realm(REALM)).unwrap();
            w.add(&Nonce(nonce)).unwrap();
            if self.sha256 {
                w.add(&PasswordAlgorithms::new(&ADVERTISED)).unwrap();
                w.add(&PasswordAlgorithm {
                    algorithm: PasswordAlgorithmId::SHA256,
                    parameters: &[],
                })
                .unwrap();
                w.add_message_integrity_sha256(self.key.as_bytes()).unwrap();
            } else {
                w.add_message_integrity(self.key.as_bytes()).unwrap();
            }
        }
        w.add_fingerprint().unwrap();
        let len = w.finish();
        buf.truncate(len);
        buf
    }

    /// Learns a nonce as a client does before its first Allocate: an unsigned Allocate with
    /// REQUESTED-TRANSPORT draws a 401 with the challenge (RFC 8489 §9.2.3.1).
    pub fn learn_nonce(&mut self, world: &mut World) {
        let udp = AnyAttribute::RequestedTransport(stun::attributes::RequestedTransport(17));
        let unsigned = Client {
            nonce: None,
            username: String::new(),
            ..*self
        };
        let tid = world.tid();
        let (_, reply) = world.feed(
            self.five_tuple,
            &unsigned.encode(Method::ALLOCATE, tid, &[udp]),
        );
        let m = Message::decode(&reply).expect("a 401");
        self.nonce = Some(m.get::<Nonce<'_>>().unwrap().unwrap().0.to_string());
    }

    /// Sends a request, answering a 401/438 challenge once as a client library does.
    /// Returns the final response bytes.
    pub fn request(
        &mut self,
        world: &mut World,
        method: Method,
        attributes: &[AnyAttribute<'_>],
    ) -> Vec<u8> {
        for _ in 0..2 {
            let tid = world.tid();
            let (_, reply) = world.feed(self.five_tuple, &self.encode(method, tid, attributes));
            let m = Message::decode(&reply).expect("a STUN reply");
            assert_eq!(m.header().transaction_id, tid);
            if m.header().message_type.class == Class::Error {
                let code = m.get::<ErrorCode<'_>>().unwrap().unwrap().code;
                if code == 401 && self.nonce.is_none() || code == 438 {
                    self.nonce = Some(m.get::<Nonce<'_>>().unwrap().unwrap().0.to_string());
                    continue;
                }
            }
            return reply;
        }
        panic!("challenge loop");
    }
}

/// The error code of a response, or 0 for success.
pub fn code(reply: &[u8]) -> u16 {
    let m = Message::decode(reply).unwrap();
    match m.header().message_type.class {
        Class::Success => 0,
        _ => m.get::<ErrorCode<'_>>().unwrap().unwrap().code,
    }
}
