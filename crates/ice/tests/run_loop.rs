//! The run-loop contract ([`sansio::Core`]) from the outside: one generic client driver, written
//! once against the trait, runs a STUN Binding transaction and the TURN client alike, and the
//! servers they talk to — the Binding server and the TURN server, with its relay-socket
//! commands — are driven through the same trait. Nothing here knows which core it drives
//! beyond its input and output types.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

// The other test binaries use more of it.
#[allow(dead_code)]
#[path = "common/fake_relay.rs"]
mod fake_relay;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::{
    BindingTransaction, RequestOptions, RetransmitTiming, TurnClient, TurnCredentials, TurnEvent,
    TurnTransmit,
};
use rand::rngs::StdRng;
use rand::SeedableRng;
use sansio::{Core, Datagram};
use stun::TransactionId;
use turn::auth::{AuthConfig, Authenticator, StaticUser};
use turn::policy::PeerPolicy;
use turn::relay::{ClientOutcome, ClientTransport, FiveTuple, TurnConfig, TurnServer};
use turn::run_loop::{BindingInput, TurnServerHandled, TurnServerInput};
use turn::{BindingConfig, BindingServer, ServerSockets, SocketId};

use fake_relay::FakeSockets;

const CLIENT: &str = "198.51.100.7:40000";
const SERVER: &str = "192.0.2.1:3478";
const REALM: &str = "example.org";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Where a client core's transmit goes and what it carries.
trait Outgoing {
    fn destination(&self) -> SocketAddr;
    fn payload(&self) -> &[u8];
}

impl Outgoing for ice::Transmit<'_> {
    fn destination(&self) -> SocketAddr {
        self.destination
    }
    fn payload(&self) -> &[u8] {
        self.payload
    }
}

impl Outgoing for TurnTransmit {
    fn destination(&self) -> SocketAddr {
        self.destination
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// The generic driver: runs `client` until it reports an event, each datagram it sends
/// answered by `network` (a server core behind a fake wire), timers fired as they come due
/// on a clock moved by hand. Written once for every single-socket client core.
fn until_event<C>(
    client: &mut C,
    mut now: Instant,
    mut network: impl FnMut(Instant, SocketAddr, &[u8]) -> Option<Vec<u8>>,
) -> C::Event
where
    C: for<'a> Core<Input<'a> = Datagram<'a>>,
    for<'t> C::Transmit<'t>: Outgoing,
{
    for _ in 0..100 {
        if let Some(event) = client.poll_event() {
            return event;
        }
        let mut answers = Vec::new();
        while let Some(t) = client.poll_transmit(now) {
            if let Some(answer) = network(now, t.destination(), t.payload()) {
                answers.push((t.destination(), answer));
            }
        }
        for (from, answer) in &answers {
            client.handle_input(now, Datagram::new(*from, answer));
        }
        if answers.is_empty() {
            now = client
                .poll_timeout()
                .expect("a client waiting without a timer");
            client.handle_timeout(now);
        }
    }
    panic!("no event after 100 rounds");
}

// RFC 8489 §6.3.1: a Binding request answered with XOR-MAPPED-ADDRESS, both ends driven
// through the contract; the transaction's one event is its result.
#[test]
fn a_binding_transaction_against_the_binding_server() {
    let now = Instant::now();
    let mut server = BindingServer::new(BindingConfig {
        sockets: ServerSockets::single(addr(SERVER)),
        software: None,
    });
    let timing = RetransmitTiming::default();
    let options = RequestOptions::default();
    let mut tx =
        BindingTransaction::new(now, addr(SERVER), TransactionId([3; 12]), &options, timing)
            .unwrap();
    let mut out = [0u8; 1500];
    let result = until_event(&mut tx, now, |now, _, request| {
        let input = BindingInput {
            local: SocketId::PRIMARY,
            source: addr(CLIENT),
            request,
            out: &mut out,
        };
        let answer = server.handle_input(now, input)?;
        Some(out[..answer.len].to_vec())
    });
    assert_eq!(result.unwrap().mapped, addr(CLIENT));
    // The stateless server has nothing else for its driver.
    assert_eq!(server.poll_timeout(), None);
    assert!(server.poll_event().is_none());
}

// The same driver with the TURN client: its first event is the allocation (RFC 8656 §7.2),
// after the 401 challenge (RFC 8489 §9.2) it answered on its own. On the server side, the Allocate asks for a
// relay socket through the server's command queue and is answered when the driver reports
// the bind as an input.
#[test]
fn a_turn_allocation_against_the_turn_server() {
    let now = Instant::now();
    let mut auth = AuthConfig::new(REALM, [7; 32]);
    auth.users = vec![StaticUser::from_password("alice", REALM, "alice-pass")];
    let config = TurnConfig {
        relay_v4: Some("203.0.113.10".parse().unwrap()),
        ..TurnConfig::default()
    };
    let mut server = TurnServer::new(
        config,
        Authenticator::new(auth),
        PeerPolicy::default(),
        Box::new(StdRng::seed_from_u64(42)),
    );
    let credentials = TurnCredentials {
        username: "alice".into(),
        password: "alice-pass".into(),
    };
    let mut client = TurnClient::new(now, addr(SERVER), credentials, [9; 32]);
    let five_tuple = FiveTuple {
        client: addr(CLIENT).into(),
        server: addr(SERVER),
        transport: ClientTransport::Udp,
    };
    let (mut sockets, mut requests) = (FakeSockets::default(), 0);
    let mut network = |now: Instant, _: SocketAddr, packet: &[u8]| {
        requests += 1;
        let mut out = [0u8; 1500];
        let input = TurnServerInput::Client {
            unix_now: 1_900_000_000,
            five_tuple,
            local: SocketId::PRIMARY,
            packet,
            out: &mut out,
        };
        let outcome = match server.handle_input(now, input) {
            TurnServerHandled::Client(outcome) => outcome,
            other => panic!("{other:?}"),
        };
        // The server's driver: carry out its commands (every relay socket it asks for is
        // bound), each result fed back as an input; the Allocate's answer comes from the last.
        let outcome = match sockets.run(&mut server, now, &mut out) {
            ClientOutcome::Nothing => outcome,
            answer => answer,
        };
        match outcome {
            ClientOutcome::Reply(reply) => Some(out[..reply.len].to_vec()),
            other => panic!("{other:?}"),
        }
    };
    let allocated = until_event(&mut client, now, &mut network);
    let TurnEvent::Allocated {
        relayed, mapped, ..
    } = allocated
    else {
        panic!("{allocated:?}");
    };
    assert_eq!(mapped, addr(CLIENT));
    // The unsigned Allocate drew the 401, the signed one the allocation.
    let opened: Vec<SocketAddr> = sockets.open.iter().copied().collect();
    assert_eq!((requests, opened), (2, vec![relayed]));
    assert_eq!(server.stats().allocation_count(), 1);
    // The allocation's lifetime is the server's next timer (RFC 8656 §7.2: 600 s by default).
    let expiry = server.poll_timeout().unwrap();
    assert!(expiry <= now + Duration::from_secs(600), "{expiry:?}");
}
