//! The checks of the `ice_agent` fuzz target, shared with its corpus replay
//! (`crates/ice/tests/fuzz_corpus.rs`).
//!
//! One agent (its role from the first byte) with two host sockets, a STUN server and a TURN
//! server configured, and the remote ICE credentials known. The input is a script read with
//! [`Input`]:
//! - remote candidates, as `candidate:` strings built from a template or given raw;
//! - datagrams from any source (a remote candidate, the STUN or TURN server, a stranger):
//!   raw bytes, a connectivity check signed with the agent's own password (as the peer
//!   would), or an answer to one of the requests the agent actually sent (success or error,
//!   with mapped/relayed addresses, NONCE/REALM, signed with the key that request expects or
//!   a wrong one) — so that the fuzzer reaches nomination, consent and the TURN client;
//! - application data to send, `end-of-candidates`, `close`, and clock steps.
//!
//! After every step: every transmit leaves from a host socket and is not empty; application
//! data comes only from a known remote candidate; remote candidates stay bounded; after
//! `handle_timeout(now)` no timer is due at `now` (a driver's loop terminates).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ice::agent::{AgentConfig, AgentInput, Candidate, IceAgent, MAX_REMOTE_CANDIDATES};
use ice::turn_client::TurnCredentials;
use stun::attributes::{
    ErrorCode, IceControlled, IceControlling, Lifetime, Nonce, PasswordAlgorithmId, Priority,
    Realm, UseCandidate, Username, XorMappedAddress, XorRelayedAddress,
};
use stun::{Class, LongTermKey, Message, MessageType, MessageWriter, Method, TransactionId};

use crate::input::Input;

const REMOTE_UFRAG: &str = "rufr";
const REMOTE_PWD: &str = "remote-password-22chars";
const TURN_USER: &str = "alice";
const TURN_PASSWORD: &str = "alice-pass";
const REALM: &str = "example.org";

fn hosts() -> [SocketAddr; 2] {
    ["192.168.1.2:5000", "[2001:db8::2]:5000"].map(|a| a.parse().unwrap())
}

fn stun_server() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn turn_server() -> SocketAddr {
    "192.0.2.2:3478".parse().unwrap()
}

/// Sources of datagrams and addresses in templates: remote candidates' addresses, the
/// servers, strangers.
fn addresses() -> [SocketAddr; 8] {
    [
        "198.51.100.7:6000",
        "198.51.100.8:6001",
        "[2001:db8:1::7]:6000",
        "192.0.2.1:3478",
        "192.0.2.2:3478",
        "203.0.113.5:40000",
        "10.0.0.9:7",
        "192.168.1.2:5000",
    ]
    .map(|a| a.parse().unwrap())
}

/// What a run reached, for the corpus replay to check that seeds exercise the deep paths.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub steps: usize,
    pub transmits: usize,
    pub consumed: usize,
    pub data: usize,
    pub selected: bool,
}

/// A STUN request the agent sent: what an answer has to match.
struct Sent {
    transaction_id: TransactionId,
    method: Method,
    from: SocketAddr,
    to: SocketAddr,
}

struct World {
    agent: IceAgent,
    now: Instant,
    sent: Vec<Sent>,
    reached: Reached,
}

impl World {
    fn drain(&mut self) {
        let hosts = hosts();
        while let Some(transmit) = self.agent.poll_transmit() {
            assert!(
                hosts.contains(&transmit.source),
                "sent from a non-host socket"
            );
            assert!(!transmit.payload.is_empty(), "an empty datagram");
            self.reached.transmits += 1;
            if let Ok(message) = Message::decode(&transmit.payload) {
                let header = message.header();
                if header.message_type.class == Class::Request {
                    // Keep the latest few: answers go to one of them.
                    if self.sent.len() == 16 {
                        self.sent.remove(0);
                    }
                    self.sent.push(Sent {
                        transaction_id: header.transaction_id,
                        method: header.message_type.method,
                        from: transmit.source,
                        to: transmit.destination,
                    });
                }
            }
        }
        while let Some(event) = self.agent.poll_event() {
            if let ice::agent::IceEvent::SelectedPair { .. } = event {
                self.reached.selected = true;
            }
        }
        assert!(self.agent.remote_candidates().len() <= MAX_REMOTE_CANDIDATES);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        if self.agent.poll_timeout().is_some_and(|at| at <= self.now) {
            self.agent.handle_timeout(self.now);
        }
        self.drain();
        if let Some(at) = self.agent.poll_timeout() {
            assert!(at > self.now, "a timer is still due after handle_timeout");
        }
    }

    fn input(&mut self, local: SocketAddr, from: SocketAddr, packet: &[u8]) {
        match self.agent.handle_input(self.now, local, from, packet) {
            AgentInput::Consumed => self.reached.consumed += 1,
            AgentInput::Ignored => {}
            AgentInput::Data(data) => {
                assert!(
                    self.agent
                        .remote_candidates()
                        .iter()
                        .any(|c| c.address == from),
                    "data accepted from {from}, not a remote candidate"
                );
                assert_eq!(data, packet);
                self.reached.data += 1;
            }
        }
        self.drain();
    }
}

/// A `candidate:` line from a template; the input may break any field.
fn candidate_text(input: &mut Input<'_>) -> String {
    let address = addresses()[input.below(8)];
    let kind = ["host", "srflx", "prflx", "relay", "bogus"][input.below(5)];
    let priority = match input.u8() {
        0 => 0,
        0xff => u32::MAX,
        n => u32::from(n) << 23 | 255,
    };
    let component = [1, 2, 0, 257][input.below(4)];
    let mut text = format!(
        "candidate:f{} {component} udp {priority} {} {} typ {kind}",
        input.u8(),
        address.ip(),
        address.port()
    );
    if input.bool() {
        let related = addresses()[input.below(8)];
        text.push_str(&format!(" raddr {} rport {}", related.ip(), related.port()));
    }
    if input.bool() {
        text.push_str(" generation 0 ufrag rufr");
    }
    text
}

/// A connectivity check to the agent, as the peer sends it (RFC 8445 §7.1.2), signed with
/// the agent's password or a wrong one.
fn check_request(world: &World, input: &mut Input<'_>) -> Vec<u8> {
    let flags = input.u8();
    let (local_ufrag, local_pwd) = world.agent.local_credentials();
    let username = if flags & 1 == 0 {
        format!("{local_ufrag}:{REMOTE_UFRAG}")
    } else {
        format!("someone:{REMOTE_UFRAG}")
    };
    let password = if flags & 2 == 0 {
        local_pwd.to_owned()
    } else {
        "wrong".to_owned()
    };
    let tie_breaker = u64::from(input.u32());
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::BINDING_REQUEST,
        TransactionId([9; 12]),
    )
    .expect("the buffer holds a header");
    w.add(&Username(&username)).unwrap();
    w.add(&Priority(input.u32())).unwrap();
    match flags >> 2 & 3 {
        0 => w.add(&IceControlling(tie_breaker)).unwrap(),
        1 => w.add(&IceControlled(tie_breaker)).unwrap(),
        2 => {
            w.add(&IceControlling(tie_breaker)).unwrap();
            w.add(&UseCandidate).unwrap();
        }
        _ => {}
    }
    w.add_message_integrity(password.as_bytes()).unwrap();
    if flags & 16 == 0 {
        w.add_fingerprint().unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    buf
}

/// An answer to a request the agent sent: the input picks which, the class, the error code,
/// the attributes and the key. Returns (local, from, bytes).
fn answer(world: &World, input: &mut Input<'_>) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
    let pick = input.u8();
    let flags = input.u8();
    let code = [401, 438, 487, 400, 437, 508][input.below(6)];
    let mapped = addresses()[input.below(8)];
    let lifetime = [0, 600, u32::MAX][input.below(3)];
    let sent = world
        .sent
        .get(usize::from(pick) % world.sent.len().max(1))?;
    let class = if flags & 1 == 0 {
        Class::Success
    } else {
        Class::Error
    };
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(
        &mut buf,
        MessageType::new(sent.method, class),
        sent.transaction_id,
    )
    .expect("the buffer holds a header");
    if class == Class::Error {
        w.add(&ErrorCode {
            code,
            reason: "fuzz",
        })
        .unwrap();
    }
    if flags & 2 != 0 {
        w.add(&XorMappedAddress(mapped)).unwrap();
    }
    if flags & 4 != 0 {
        let relayed = SocketAddr::new(turn_server().ip(), 50_000 + u16::from(pick));
        w.add(&XorRelayedAddress(relayed)).unwrap();
        w.add(&Lifetime(lifetime)).unwrap();
    }
    if flags & 8 != 0 {
        w.add(&Realm(REALM)).unwrap();
        w.add(&Nonce("fuzz-nonce")).unwrap();
    }
    // The key the request expects: the remote password for a check, the long-term key for
    // the TURN server, none for the STUN server; or a wrong one.
    let key = match (flags >> 4 & 3, sent.method) {
        (0, Method::BINDING) => Some(REMOTE_PWD.as_bytes().to_vec()),
        (0, _) => Some(
            LongTermKey::derive(PasswordAlgorithmId::MD5, TURN_USER, REALM, TURN_PASSWORD)
                .expect("MD5 keys derive from any text")
                .as_bytes()
                .to_vec(),
        ),
        (1, _) => Some(b"wrong key".to_vec()),
        _ => None,
    };
    if let Some(key) = key {
        w.add_message_integrity(&key).unwrap();
    }
    if flags & 64 == 0 {
        w.add_fingerprint().unwrap();
    }
    let len = w.finish();
    buf.truncate(len);
    // From where it was sent, or (a spoofed answer) from elsewhere.
    let from = if flags & 128 == 0 { sent.to } else { mapped };
    Some((sent.from, from, buf))
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let now = Instant::now();
    let mut config = AgentConfig::new(input.bool());
    config.stun_servers = vec![stun_server()];
    config.turn_servers = vec![(
        turn_server(),
        TurnCredentials {
            username: TURN_USER.into(),
            password: TURN_PASSWORD.into(),
        },
    )];
    let mut agent = IceAgent::new(now, config, [3; 32]);
    agent.set_remote_credentials(REMOTE_UFRAG, REMOTE_PWD);
    let mut world = World {
        agent,
        now,
        sent: Vec::new(),
        reached: Reached::default(),
    };
    for host in hosts() {
        world.agent.add_host_candidate(now, host);
    }
    world.drain();
    while !input.is_empty() && world.reached.steps < 256 {
        world.reached.steps += 1;
        match input.below(9) {
            0 => {
                let text = candidate_text(&mut input);
                if let Ok(candidate) = text.parse::<Candidate>() {
                    let now = world.now;
                    world.agent.add_remote_candidate(now, candidate);
                    world.drain();
                }
            }
            1 => {
                let text = String::from_utf8_lossy(input.bytes(200)).into_owned();
                if let Ok(candidate) = text.parse::<Candidate>() {
                    let now = world.now;
                    world.agent.add_remote_candidate(now, candidate);
                    world.drain();
                }
            }
            2 => {
                let local = hosts()[input.below(2)];
                let from = addresses()[input.below(8)];
                let packet = input.bytes(600).to_vec();
                world.input(local, from, &packet);
            }
            3 => {
                let local = hosts()[input.below(2)];
                let from = addresses()[input.below(8)];
                let packet = check_request(&world, &mut input);
                world.input(local, from, &packet);
            }
            4 | 5 => {
                if let Some((local, from, packet)) = answer(&world, &mut input) {
                    world.input(local, from, &packet);
                }
            }
            6 => {
                let data = input.bytes(300).to_vec();
                let now = world.now;
                if let Some(transmit) = world.agent.send_data(now, &data) {
                    assert!(hosts().contains(&transmit.source));
                }
                world.drain();
            }
            7 => {
                // 10 ms steps up to ~11 minutes: retransmissions, nomination, consent,
                // TURN refreshes.
                let by = Duration::from_millis(u64::from(input.u16()) * 10);
                world.advance(by);
            }
            _ => {
                if input.bool() {
                    world.agent.end_of_remote_candidates();
                } else {
                    let now = world.now;
                    world.agent.close(now);
                }
                world.drain();
            }
        }
    }
    world.reached
}
