//! The TURN client against the sans-IO TURN server core, with a hand-moved clock: what a
//! real event loop does (send, receive, fire timers) with the network in between faked.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{TurnClient, TurnClientConfig, TurnCredentials, TurnEvent, TurnInput};
use rand::rngs::StdRng;
use rand::SeedableRng;
use stun::Message;
use turn::auth::{AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::{
    ClientOutcome, ClientTransport, FiveTuple, PeerAddr, RelayAddr, TurnConfig, TurnServer,
    PEER_HEADROOM,
};

pub use crate::fake_relay::FakeSockets;

pub const REALM: &str = "example.org";
pub const SERVER: &str = "192.0.2.1:3478";
pub const CLIENT: &str = "198.51.100.7:40000";
pub const RELAY_IP: &str = "203.0.113.10";
pub const PEER: &str = "192.0.2.50:4000";
pub const SEED: [u8; 32] = [9; 32];

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn alice() -> TurnCredentials {
    TurnCredentials {
        username: "alice".into(),
        password: "alice-pass".into(),
    }
}

/// How the server is set up.
pub struct ServerSetup {
    pub nonce_lifetime: Duration,
    /// With a TURN REST secret the server's nonces do not ask for USERHASH.
    pub rest_secret: Option<&'static str>,
}

impl Default for ServerSetup {
    fn default() -> Self {
        ServerSetup {
            nonce_lifetime: Duration::from_secs(600),
            rest_secret: None,
        }
    }
}

/// A datagram the server sent from a relay socket to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToPeer {
    pub relay: SocketAddr,
    pub peer: SocketAddr,
    pub payload: Vec<u8>,
}

/// Server, client, clock and the wire between them.
pub struct Net {
    pub server: TurnServer,
    pub sockets: FakeSockets,
    pub client: TurnClient,
    pub start: Instant,
    pub now: Instant,
    /// Every datagram the client sent to the server, with the time it left.
    pub sent: Vec<(Instant, Vec<u8>)>,
    /// Every event the client reported.
    pub events: Vec<TurnEvent>,
    /// What reached peers through the relay.
    pub to_peer: Vec<ToPeer>,
    /// Drop everything the client sends (a dead server).
    pub blackhole: bool,
}

pub fn five_tuple() -> FiveTuple {
    FiveTuple {
        client: addr(CLIENT).into(),
        server: addr(SERVER),
        transport: ClientTransport::Udp,
    }
}

impl Net {
    pub fn new(setup: ServerSetup, credentials: TurnCredentials, config: TurnClientConfig) -> Net {
        let mut auth = AuthConfig::new(REALM, [7; 32]);
        auth.nonce_lifetime = setup.nonce_lifetime;
        auth.users = vec![StaticUser::from_password("alice", REALM, "alice-pass")];
        auth.rest_secrets = setup.rest_secret.iter().map(|s| s.to_string()).collect();
        let server = TurnServer::new(
            TurnConfig {
                relay_v4: Some(RELAY_IP.parse().unwrap()),
                ..TurnConfig::default()
            },
            Authenticator::new(auth),
            PeerPolicy::default(),
            Box::new(StdRng::seed_from_u64(42)),
        );
        let start = Instant::now();
        let client = TurnClient::with_config(start, addr(SERVER), credentials, SEED, config);
        Net {
            server,
            sockets: FakeSockets::default(),
            client,
            start,
            now: start,
            sent: Vec::new(),
            events: Vec::new(),
            to_peer: Vec::new(),
            blackhole: false,
        }
    }

    /// A default server and alice with RFC 8489 timing.
    pub fn alice() -> Net {
        Net::new(ServerSetup::default(), alice(), TurnClientConfig::default())
    }

    /// Wall-clock seconds for the server's nonces and REST credentials, moving with `now`.
    pub fn unix_now(&self) -> u64 {
        1_900_000_000 + (self.now - self.start).as_secs()
    }

    /// Delivers everything the client wants sent, and the server's answers, until quiet.
    pub fn pump(&mut self) {
        while let Some(t) = self.client.poll_transmit() {
            assert_eq!(t.destination, addr(SERVER));
            self.sent.push((self.now, t.payload.clone()));
            if !self.blackhole {
                self.deliver_to_server(&t.payload);
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    /// One datagram from the client into the server core, and its consequences.
    pub fn deliver_to_server(&mut self, payload: &[u8]) {
        let mut out = [0u8; 1500];
        let unix_now = self.unix_now();
        let clock = (self.now, unix_now);
        let outcome =
            (self.sockets).serve(&mut self.server, clock, five_tuple(), payload, &mut out);
        match outcome {
            // Over UDP a ConnectionBind (RFC 6062) is refused: never bound.
            ClientOutcome::Nothing | ClientOutcome::ConnectionBound { .. } => {}
            ClientOutcome::Reply(t) => {
                let input = self
                    .client
                    .handle_input(self.now, addr(SERVER), &out[..t.len]);
                assert_eq!(input, TurnInput::Consumed, "a reply to our request");
            }
            ClientOutcome::Relay {
                relay,
                peer,
                payload: range,
                ..
            } => self.to_peer.push(ToPeer {
                relay: relay.get(),
                peer: peer.get(),
                payload: payload[range].to_vec(),
            }),
        }
    }

    /// The server's answer to `request` from the client, kept from the client.
    pub fn server_reply(&mut self, request: &[u8]) -> Vec<u8> {
        let mut out = [0u8; 1500];
        let unix_now = self.unix_now();
        let clock = (self.now, unix_now);
        match (self.sockets).serve(&mut self.server, clock, five_tuple(), request, &mut out) {
            ClientOutcome::Reply(t) => out[..t.len].to_vec(),
            other => panic!("no reply: {other:?}"),
        }
    }

    /// Moves the clock to `until`, firing the client's and the server's timers on time and
    /// pumping after each.
    pub fn run_until(&mut self, until: Instant) {
        self.pump();
        loop {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.sockets.expire(&mut self.server, self.now);
                    self.client.handle_timeout(self.now);
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = until;
        self.client.handle_timeout(self.now);
        self.pump();
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.run_until(self.now + by);
    }

    /// Runs until the client has reported `Allocated`; returns the relayed address.
    pub fn allocate(&mut self) -> SocketAddr {
        self.pump();
        match self.events.first() {
            Some(TurnEvent::Allocated { relayed, .. }) => *relayed,
            other => panic!("expected Allocated, got {other:?}"),
        }
    }

    /// A peer sends `data` to the relayed address; returns what the client made of the
    /// datagram the server forwarded (None: the server dropped it).
    pub fn peer_sends(&mut self, peer: SocketAddr, data: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
        let relay = self.client.relayed_address().expect("allocated");
        let mut buf = vec![0u8; PEER_HEADROOM + data.len() + 4];
        buf[PEER_HEADROOM..PEER_HEADROOM + data.len()].copy_from_slice(data);
        let outcome = self.server.handle_peer(
            self.now,
            RelayAddr::from(relay),
            PeerAddr::from(peer),
            &mut buf,
            data.len(),
        )?;
        assert_eq!(outcome.to, five_tuple());
        let framed = &buf[outcome.data];
        match self.client.handle_input(self.now, addr(SERVER), framed) {
            TurnInput::Data { peer, payload } => Some((peer, payload.to_vec())),
            other => panic!("peer data came out as {other:?}"),
        }
    }

    /// The client datagrams of `method` (requests only), in order.
    pub fn requests(&self, method: stun::Method) -> Vec<(Instant, Vec<u8>)> {
        self.sent
            .iter()
            .filter(|(_, p)| {
                Message::decode(p).is_ok_and(|m| {
                    m.header().message_type == stun::MessageType::new(method, stun::Class::Request)
                })
            })
            .cloned()
            .collect()
    }
}
