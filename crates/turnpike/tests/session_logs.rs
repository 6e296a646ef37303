//! Issue #11, "Logs": the real binary writes one line per allocation at creation and at end
//! (with the traffic this test relayed through it, and the end reason), a bounded number of
//! lines for an authentication-failure flood (every failure either logged or counted in a
//! "suppressed" summary), and one line per server-side cause of a 508 however often it
//! repeats. The TURN side is the ICE crate's TURN client, an independent implementation
//! of the client half of RFC 8656.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use ice::{TurnClient, TurnCredentials, TurnError, TurnEvent, TurnInput};
use serde_json::Value;
use stun::attributes::{Nonce, PasswordAlgorithmId, Realm, RequestedTransport, Username};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId};

mod common;

use common::Server;

const REALM: &str = "logs.test";
/// The message of a server-side cause's first line in its interval.
const SERVER_ERROR: &str = "request refused for a server-side reason";

/// A server relaying on loopback for `alice` (password `pw`), with `more` flags.
fn relay_server(more: &[&str]) -> Server {
    Server::spawn(&relay_args(more), |_| {})
}

/// The flags of [`relay_server`].
fn relay_args<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut args = common::LOOPBACK_RELAY.to_vec();
    args.extend([
        "--allowed-peers",
        "127.0.0.1/32",
        "--realm",
        REALM,
        "--users",
        "alice:pw",
    ]);
    args.extend_from_slice(more);
    args
}

/// The log lines of a running server, read as they come.
#[derive(Default)]
struct Log {
    seen: Vec<Value>,
}

impl Log {
    /// Waits (up to 20 s) for a line of `server` with `message` that `also` accepts, and
    /// returns it.
    fn wait_for(&mut self, server: &Server, message: &str, also: impl Fn(&Value) -> bool) -> Value {
        let wanted = |v: &Value| v["fields"]["message"] == message && also(v);
        if let Some(v) = self.seen.iter().find(|v| wanted(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = server
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {message:?} line; seen {:#?}", self.seen));
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            self.seen.push(v.clone());
            if wanted(&v) {
                return v;
            }
        }
    }
}

/// The ICE crate's TURN client on its own UDP socket, driven in real time.
struct Turn {
    socket: UdpSocket,
    client: TurnClient,
    /// Peer data received through the relay: (peer, payload).
    received: Vec<(SocketAddr, Vec<u8>)>,
}

impl Turn {
    fn new(server: SocketAddr, username: &str, password: &str) -> Turn {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let credentials = TurnCredentials {
            username: username.into(),
            password: password.into(),
        };
        let client = TurnClient::new(Instant::now(), server, credentials, rand::random());
        Turn {
            socket,
            client,
            received: Vec::new(),
        }
    }

    fn send(&mut self, payload: &[u8]) {
        self.socket.send_to(payload, self.client.server()).unwrap();
    }

    /// Runs the client until `done` says so (10 s at most).
    fn run_until(&mut self, mut done: impl FnMut(&mut Turn) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 1500];
        while !done(self) {
            assert!(Instant::now() < deadline, "TURN client timed out");
            while let Some(t) = self.client.poll_transmit() {
                self.socket.send_to(&t.payload, t.destination).unwrap();
            }
            if let Ok((len, from)) = self.socket.recv_from(&mut buf) {
                if let TurnInput::Data { peer, payload } =
                    self.client.handle_input(Instant::now(), from, &buf[..len])
                {
                    self.received.push((peer, payload.to_vec()));
                }
            }
            self.client.handle_timeout(Instant::now());
        }
    }

    /// Waits for the next client event `want` accepts; panics on another one first.
    fn expect(&mut self, want: impl Fn(&TurnEvent) -> bool) -> TurnEvent {
        let mut got = None;
        self.run_until(|t| {
            if let Some(event) = t.client.poll_event() {
                got = Some(event);
            }
            got.is_some()
        });
        let event = got.unwrap();
        assert!(want(&event), "{event:?}");
        event
    }

    fn allocate(&mut self) -> SocketAddr {
        match self.expect(|e| matches!(e, TurnEvent::Allocated { .. })) {
            TurnEvent::Allocated { relayed, .. } => relayed,
            _ => unreachable!(),
        }
    }
}

fn field(line: &Value, name: &str) -> Value {
    line["fields"][name].clone()
}

// One line at creation and one at end, with user, realm, 5-tuple, relay address, duration,
// the packets and bytes this test relayed each way, and the end reason (deleted: Refresh 0).
#[test]
fn allocation_lines_carry_the_relayed_traffic() {
    let server = relay_server(&["--tcp", "false"]);
    let mut log = Log::default();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut turn = Turn::new(server.address("udp"), "alice", "pw");
    let relayed = turn.allocate();
    let client_addr = turn.socket.local_addr().unwrap();

    let created = log.wait_for(&server, "allocation created", |_| true);
    assert_eq!(created["target"], "turnpike::session");
    assert_eq!(created["level"], "INFO");
    assert_eq!(field(&created, "user"), "alice");
    assert_eq!(field(&created, "realm"), REALM);
    assert_eq!(field(&created, "client"), client_addr.to_string());
    assert_eq!(field(&created, "server"), server.address("udp").to_string());
    assert_eq!(field(&created, "transport"), "udp");
    assert_eq!(field(&created, "relay"), relayed.to_string());
    assert_eq!(field(&created, "lifetime_s"), 600);
    assert!(field(&created, "reason").is_null(), "{created}");

    // Client → peer: 5 datagrams of 100 bytes over a channel, each seen by the peer.
    turn.client.bind_channel(Instant::now(), peer_addr);
    turn.expect(|e| matches!(e, TurnEvent::ChannelBound { .. }));
    let mut buf = [0u8; 1500];
    for i in 0..5u8 {
        let t = turn.client.send_to(Instant::now(), peer_addr, &[i; 100]);
        turn.send(&t.payload);
        let (len, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((len, from), (100, relayed));
    }
    // Peer → client: 3 datagrams of 70 bytes, each received by the client.
    for i in 0..3u8 {
        peer.send_to(&[i; 70], relayed).unwrap();
        turn.run_until(|t| t.received.len() > usize::from(i));
    }
    assert!(turn
        .received
        .iter()
        .all(|(p, d)| *p == peer_addr && d.len() == 70));

    turn.client.deallocate(Instant::now());
    turn.expect(|e| *e == TurnEvent::Deallocated);
    let ended = log.wait_for(&server, "allocation ended", |_| true);
    assert_eq!(ended["target"], "turnpike::session");
    assert_eq!(field(&ended, "reason"), "deleted");
    assert!(field(&ended, "lifetime_s").is_null(), "{ended}");
    assert_eq!(field(&ended, "user"), "alice");
    assert_eq!(field(&ended, "client"), client_addr.to_string());
    assert_eq!(field(&ended, "relay"), relayed.to_string());
    assert_eq!(field(&ended, "to_peer_packets"), 5);
    assert_eq!(field(&ended, "to_peer_bytes"), 500);
    assert_eq!(field(&ended, "to_client_packets"), 3);
    assert_eq!(field(&ended, "to_client_bytes"), 210);
    let duration = field(&ended, "duration_ms").as_u64().unwrap();
    assert!(duration < 60_000, "{duration}");
    server.stop();
}

/// A STUN message read from a TCP stream (its length is in the header).
fn read_stun(stream: &mut TcpStream) -> Vec<u8> {
    let mut message = vec![0u8; 20];
    stream.read_exact(&mut message).unwrap();
    let len = usize::from(u16::from_be_bytes([message[2], message[3]]));
    message.resize(20 + len, 0);
    stream.read_exact(&mut message[20..]).unwrap();
    message
}

// Over TCP the allocation lives and dies with the connection (RFC 8656 §3.1): closing it
// ends the allocation with reason connection-closed; the server's stop ends the others with
// reason shutdown.
#[test]
fn closed_connection_and_shutdown_end_reasons() {
    let server = relay_server(&[]);
    let mut log = Log::default();
    let mut stream = TcpStream::connect(server.address("tcp")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let client_addr = stream.local_addr().unwrap();
    let mut turn = TurnClient::new(
        Instant::now(),
        server.address("tcp"),
        TurnCredentials {
            username: "alice".into(),
            password: "pw".into(),
        },
        rand::random(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline);
        while let Some(t) = turn.poll_transmit() {
            stream.write_all(&t.payload).unwrap();
        }
        if let Some(event) = turn.poll_event() {
            assert!(matches!(event, TurnEvent::Allocated { .. }), "{event:?}");
            break;
        }
        let message = read_stun(&mut stream);
        turn.handle_input(Instant::now(), server.address("tcp"), &message);
    }
    let created = log.wait_for(&server, "allocation created", |_| true);
    assert_eq!(field(&created, "transport"), "tcp");
    drop(stream);
    let ended = log.wait_for(&server, "allocation ended", |_| true);
    assert_eq!(field(&ended, "reason"), "connection-closed");
    assert_eq!(field(&ended, "client"), client_addr.to_string());

    let mut udp = Turn::new(server.address("udp"), "alice", "pw");
    let relayed = udp.allocate();
    let (_, lines) = server.stop_with_log();
    let ended = lines
        .iter()
        .find(|v| {
            v["fields"]["message"] == "allocation ended" && field(v, "relay") == relayed.to_string()
        })
        .unwrap_or_else(|| panic!("no end line for {relayed}: {lines:#?}"));
    assert_eq!(field(ended, "reason"), "shutdown");
}

/// An Allocate signed with the wrong password for `alice`, with `nonce`.
fn allocate_with(password: &str, tid: u32, nonce: &str) -> Vec<u8> {
    let key = LongTermKey::derive(PasswordAlgorithmId::MD5, "alice", REALM, password).unwrap();
    let mut id = [0u8; 12];
    id[..4].copy_from_slice(&tid.to_be_bytes());
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId(id),
    )
    .unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    w.add(&Username("alice")).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(nonce)).unwrap();
    w.add_message_integrity(key.as_bytes()).unwrap();
    let len = w.finish();
    buf.truncate(len);
    buf
}

// 10,000 wrong-password Allocates as fast as the socket goes: a bounded number of
// "authentication failed" lines (the log's bucket: 20 at once, 2/s), and every failure the
// server counted is either logged or in a "suppressed" summary.
#[test]
fn an_auth_failure_flood_writes_few_lines() {
    const FLOOD: u32 = 10_000;
    let server = relay_server(&["--tcp", "false", "--metrics-listen", "127.0.0.1:0"]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The nonce of a 401 challenge.
    let mut buf = [0u8; 512];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId([9; 12]),
    )
    .unwrap();
    w.add(&RequestedTransport(RequestedTransport::UDP)).unwrap();
    let len = w.finish();
    socket.send_to(&buf[..len], server.address("udp")).unwrap();
    let len = socket.recv(&mut buf).unwrap();
    let nonce = Message::decode(&buf[..len])
        .unwrap()
        .get::<Nonce<'_>>()
        .unwrap()
        .unwrap()
        .0
        .to_string();
    let started = Instant::now();
    for tid in 0..FLOOD {
        let request = allocate_with("guess", tid, &nonce);
        socket.send_to(&request, server.address("udp")).unwrap();
    }
    let flood_time = started.elapsed();
    // A fence: the right password from the same socket (same worker, same queue) is served
    // after every datagram of the flood that got in, so the counters are final once it is
    // answered. Resent, as the flood may have filled the socket buffer.
    let fence = allocate_with("pw", FLOOD, &nonce);
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    'fence: loop {
        assert!(Instant::now() < deadline, "the fence was never answered");
        socket.send_to(&fence, server.address("udp")).unwrap();
        while let Ok(len) = socket.recv(&mut buf) {
            let reply = Message::decode(&buf[..len]).unwrap();
            if reply.header().transaction_id.0[..4] == FLOOD.to_be_bytes() {
                break 'fence;
            }
        }
    }
    // Every worker's count (the kernel spreads sources over the workers).
    let scrape = common::scrape::scrape(server.address("metrics"));
    let failures = common::scrape::sum(&scrape, "turnpike_auth_total", &["wrong_credentials"])
        + common::scrape::sum(&scrape, "turnpike_auth_total", &["rate_limited"]);
    let failures = failures as u64;
    let (_, lines) = server.stop_with_log();
    let elapsed = started.elapsed();
    let logged = lines
        .iter()
        .filter(|v| v["fields"]["message"] == "authentication failed")
        .inspect(|v| {
            assert_eq!(v["target"], "turnpike::auth");
            assert_eq!(field(v, "user"), "alice");
            assert_eq!(field(v, "source"), socket.local_addr().unwrap().to_string());
            let reason = field(v, "reason");
            assert!(
                reason == "wrong-credentials" || reason == "rate-limited",
                "{reason}"
            );
        })
        .count() as u64;
    let suppressed: u64 = lines
        .iter()
        .filter(|v| {
            v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("suppressed"))
        })
        .map(|v| field(v, "suppressed").as_u64().unwrap())
        .sum();
    eprintln!(
        "flood of {FLOOD} sent in {flood_time:?}: the server saw {failures} failures, wrote \
         {logged} lines for them and {suppressed} suppressed (run {elapsed:?})"
    );
    // Most of the flood reached the server (loopback may drop a few under load).
    assert!(failures >= u64::from(FLOOD) / 2, "{failures}");
    assert_eq!(
        logged + suppressed,
        failures,
        "every failure logged or counted"
    );
    let bound = 20 + 2 * (elapsed.as_secs() + 1);
    assert!(
        logged >= 20 && logged <= bound,
        "{logged} lines, at most {bound}"
    );
}

// The relay range is one port: a second and a third client get 508, and the log says why
// once ("relay port pool empty on 127.0.0.1"), then counts the repeat in a summary.
#[test]
fn an_empty_port_pool_is_logged_once_with_its_cause() {
    let (low, _) = common::free_relay_range();
    let port = low.to_string();
    let server = relay_server(&["--tcp", "false", "--min-port", &port, "--max-port", &port]);
    let mut log = Log::default();
    let mut first = Turn::new(server.address("udp"), "alice", "pw");
    first.allocate();
    for _ in 0..2 {
        let mut refused = Turn::new(server.address("udp"), "alice", "pw");
        let failed = refused.expect(|e| matches!(e, TurnEvent::AllocationFailed(_)));
        let TurnEvent::AllocationFailed(TurnError::ErrorResponse { code, .. }) = failed else {
            panic!("{failed:?}");
        };
        assert_eq!(code, 508);
    }
    let line = log.wait_for(&server, SERVER_ERROR, |_| true);
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["target"], "turnpike::server_error");
    assert_eq!(field(&line, "code"), 508);
    assert_eq!(field(&line, "cause"), "relay port pool empty on 127.0.0.1");
    assert_eq!(field(&line, "user"), "alice");
    let (_, lines) = server.stop_with_log();
    let all: Vec<&Value> = log.seen.iter().chain(lines.iter()).collect();
    // Every server_error line goes into the failure messages: a CI run once saw two full lines
    // here (the shutdown flush race fixed in server_events), and the lines tell what recurs.
    let errors: Vec<&&Value> = all
        .iter()
        .filter(|v| v["target"] == "turnpike::server_error")
        .collect();
    let full = errors
        .iter()
        .filter(|v| field(v, "repeats").is_null())
        .count();
    assert_eq!(full, 1, "one full line per cause and interval: {errors:#?}");
    let repeats: Vec<&&&Value> = errors
        .iter()
        .filter(|v| !field(v, "repeats").is_null())
        .collect();
    assert_eq!(repeats.len(), 1, "{errors:#?}");
    assert_eq!(field(repeats[0], "repeats"), 1);
    assert_eq!(
        field(repeats[0], "cause"),
        "relay port pool empty on 127.0.0.1"
    );
}

// `ulimit -n` too low (issue #11: "the server says ready and then refuses everyone,
// silently"): once the relay sockets reach the open-file limit, Allocates get 508 and the log
// names the cause, EMFILE on the relay address.
#[test]
fn emfile_on_relay_sockets_is_logged_with_its_cause() {
    let args = relay_args(&["--tcp", "false", "--workers", "1"]);
    let server = Server::spawn_wrapped(&["prlimit", "--nofile=64:64", "--"], &args, |_| {});
    let mut log = Log::default();
    let mut clients = Vec::new();
    let refused = loop {
        assert!(
            clients.len() < 64,
            "no 508 with 64 allocations under nofile=64"
        );
        let mut turn = Turn::new(server.address("udp"), "alice", "pw");
        match turn.expect(|_| true) {
            TurnEvent::Allocated { .. } => clients.push(turn),
            TurnEvent::AllocationFailed(TurnError::ErrorResponse { code, .. }) => break code,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(refused, 508);
    assert!(!clients.is_empty(), "some allocations fit under the limit");
    let line = log.wait_for(&server, SERVER_ERROR, |_| true);
    assert_eq!(
        field(&line, "cause"),
        "relay socket on 127.0.0.1: too many open files in the process (EMFILE)"
    );
    assert_eq!(field(&line, "code"), 508);
    assert_eq!(server.stop(), Some(0));
}

// The lines have their own targets, so the log filter routes or silences them (they hold
// client addresses and usernames): `turnpike::session=off` drops the session lines only.
#[test]
fn session_lines_follow_the_log_filter() {
    let args = relay_args(&["--tcp", "false"]);
    let server = Server::spawn_logging("info,turnpike::session=off", &args, |_| {});
    let mut turn = Turn::new(server.address("udp"), "alice", "pw");
    turn.allocate();
    turn.client.deallocate(Instant::now());
    turn.expect(|e| *e == TurnEvent::Deallocated);
    let (_, lines) = server.stop_with_log();
    assert!(
        !lines.iter().any(|v| v["target"] == "turnpike::session"),
        "{lines:#?}"
    );
    // Other lines of the same crate still pass.
    assert!(
        lines
            .iter()
            .any(|v| v["fields"]["message"] == "worker stopped"),
        "{lines:#?}"
    );
}
