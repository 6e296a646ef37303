//! The checks of the `signal_hub` fuzz target, shared with its corpus replay
//! (`crates/signal/tests/fuzz_corpus.rs`).
//!
//! The input is a script read with [`Input`]: connections open and close, send frames —
//! arbitrary text, or frames built from templates that use the peer ids, resume tokens and
//! join tokens a real client would have (so that the fuzzer gets past `join` into routing,
//! resume and the limits) — and the clock moves. The first byte picks the configuration
//! (join tokens required or not). After every step:
//! - `Hub::check_invariants` holds (every peer in one room, rooms within capacity, ...);
//! - every frame sent is one JSON object with a `type`, to a connection that is open;
//! - a connection is closed at most once, and never gets a frame after its close;
//! - the hub's counters agree with the harness (open connections);
//! - after `handle_timeout(now)` no timer is due at `now` (a driver's loop terminates).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::value::RawValue;
use serde_json::Value;
use signal::{token, ConnId, Hub, HubConfig, IceConfig, Output};

use crate::input::Input;

pub const TOKEN_SECRET: &[u8] = b"fuzz-signaling-secret";
const ROOMS: [&str; 4] = ["a", "b", "", "room with spaces"];
const KINDS: [&str; 12] = [
    "join",
    "offer",
    "answer",
    "candidate",
    "bye",
    "message",
    "broadcast",
    "leave",
    "ping",
    "pong",
    "joined",
    "nope",
];
const START_UNIX: u64 = 1_900_000_000;

fn config(tokens: bool) -> HubConfig {
    HubConfig {
        room_capacity: 3,
        max_message_bytes: 512,
        queue_length: 2,
        message_rate: 20,
        message_burst: 5,
        ping_interval: Duration::from_secs(3),
        silence_timeout: Duration::from_secs(7),
        resume_grace: Duration::from_secs(5),
        token_secret: tokens.then(|| TOKEN_SECRET.to_vec()),
    }
}

fn ice() -> IceConfig {
    IceConfig {
        servers: RawValue::from_string(r#"[{"urls":["turn:192.0.2.1"]}]"#.to_owned())
            .expect("a JSON literal"),
        ttl: 60,
    }
}

/// What a run reached, for the corpus replay to check that seeds exercise the deep paths.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    pub steps: usize,
    pub joined: usize,
    pub most_peers: usize,
    pub routed: usize,
    pub closed: usize,
}

struct World {
    hub: Hub,
    now: Instant,
    elapsed: Duration,
    next_conn: ConnId,
    open: Vec<ConnId>,
    closed: BTreeSet<ConnId>,
    ids: Vec<String>,
    resume_tokens: Vec<String>,
    reached: Reached,
}

/// The fields of a frame the hub writes itself.
#[derive(serde::Deserialize)]
struct FrameHead {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    resume: Option<String>,
    from: Option<String>,
}

impl World {
    fn unix_now(&self) -> u64 {
        START_UNIX + self.elapsed.as_secs()
    }

    /// Drains the outputs and checks them.
    fn drain(&mut self) {
        while let Some(out) = self.hub.poll_output() {
            match out {
                Output::Send { conn, text } => {
                    assert!(
                        !self.closed.contains(&conn),
                        "a frame after close to {conn}"
                    );
                    assert!(self.open.contains(&conn), "a frame to unknown {conn}");
                    // Only the hub's own fields are read: a routed `data` is the sender's JSON,
                    // verbatim, and may hold what `Value` refuses but JSON allows (a number out
                    // of f64's range, such as 1e999); unknown fields are skipped unparsed.
                    let frame: FrameHead =
                        serde_json::from_str(&text).expect("frames are JSON objects with a type");
                    match frame.kind.as_str() {
                        "joined" => {
                            self.reached.joined += 1;
                            let id = frame.id.expect("joined has an id");
                            let resume = frame.resume.expect("and a token");
                            self.ids.push(id);
                            self.resume_tokens.push(resume);
                        }
                        "offer" | "answer" | "candidate" | "bye" | "message" | "broadcast" => {
                            self.reached.routed += 1;
                            assert!(frame.from.is_some(), "routed frames carry from");
                        }
                        _ => {}
                    }
                }
                Output::Close { conn, .. } => {
                    assert!(self.closed.insert(conn), "closed twice: {conn}");
                    assert!(self.open.contains(&conn), "closed an unknown connection");
                    self.open.retain(|&c| c != conn);
                    self.reached.closed += 1;
                }
                _ => {}
            }
        }
    }

    fn check_state(&mut self) {
        if let Err(violation) = self.hub.check_invariants() {
            panic!("hub invariant: {violation}");
        }
        let stats = self.hub.stats();
        assert_eq!(stats.connections, self.open.len());
        self.reached.most_peers = self.reached.most_peers.max(stats.peers);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.elapsed += by;
        if self.hub.poll_timeout().is_some_and(|at| at <= self.now) {
            self.hub.handle_timeout(self.now);
        }
        if let Some(at) = self.hub.poll_timeout() {
            assert!(at > self.now, "a timer is still due after handle_timeout");
        }
    }

    fn pick<'s>(list: &'s [String], input: &mut Input<'_>, fallback: &'s str) -> &'s str {
        // One byte whatever the list holds, so that seeds are written without replaying.
        let k = usize::from(input.u8());
        match list.len() {
            0 => fallback,
            n => &list[k % n],
        }
    }
}

/// A frame built from a template: the input picks the type, the room, a real peer id or
/// resume token (or a made-up one), a join token (valid, expired, for another room, forged
/// or absent) and the `data` bytes.
fn templated_frame(world: &World, input: &mut Input<'_>) -> String {
    let kind = KINDS[input.below(KINDS.len())];
    let flags = input.u8();
    let room = ROOMS[input.below(ROOMS.len())];
    let to = World::pick(&world.ids, input, "0123abcd");
    let resume = World::pick(&world.resume_tokens, input, "not-a-token");
    let join_token = match input.below(5) {
        0 => None,
        1 => Some(token::mint(TOKEN_SECRET, room, world.unix_now() + 600)),
        2 => Some(token::mint(
            TOKEN_SECRET,
            room,
            world.unix_now().saturating_sub(1),
        )),
        3 => Some(token::mint(TOKEN_SECRET, "b", world.unix_now() + 600)),
        _ => Some(token::mint(b"another secret", room, world.unix_now() + 600)),
    };
    let data = String::from_utf8_lossy(input.bytes(600)).into_owned();
    let mut frame = serde_json::Map::new();
    frame.insert("type".into(), kind.into());
    if flags & 1 != 0 {
        frame.insert("room".into(), room.into());
    }
    if flags & 2 != 0 {
        frame.insert("to".into(), to.into());
    }
    if flags & 4 != 0 {
        frame.insert("resume".into(), resume.into());
    }
    if let (true, Some(join_token)) = (flags & 8 != 0, join_token) {
        frame.insert("token".into(), join_token.into());
    }
    if flags & 16 != 0 {
        frame.insert("from".into(), to.into());
    }
    let mut text = Value::Object(frame).to_string();
    if flags & 32 != 0 {
        // `data` verbatim: valid JSON or not, the hub must answer with an error frame or
        // copy it byte for byte.
        text.pop();
        text.push_str(",\"data\":");
        text.push_str(&data);
        text.push('}');
    } else if flags & 64 != 0 {
        text.truncate(input.below(text.len() + 1));
    }
    text
}

/// Runs one fuzz input.
pub fn check(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let tokens = input.bool();
    let mut world = World {
        hub: Hub::new(config(tokens), Box::new(StdRng::seed_from_u64(1))),
        now: Instant::now(),
        elapsed: Duration::ZERO,
        next_conn: 0,
        open: Vec::new(),
        closed: BTreeSet::new(),
        ids: Vec::new(),
        resume_tokens: Vec::new(),
        reached: Reached::default(),
    };
    while !input.is_empty() && world.reached.steps < 256 {
        world.reached.steps += 1;
        match input.below(6) {
            0 => {
                world.next_conn += 1;
                world.hub.connect(world.now, world.next_conn, ice());
                world.open.push(world.next_conn);
            }
            1 => {
                let k = input.u8();
                if !world.open.is_empty() {
                    let conn = world.open.remove(usize::from(k) % world.open.len());
                    world.hub.disconnect(world.now, conn);
                    world.closed.insert(conn);
                }
            }
            2 | 3 => {
                let k = input.u8();
                let text = templated_frame(&world, &mut input);
                if !world.open.is_empty() {
                    let conn = world.open[usize::from(k) % world.open.len()];
                    let unix_now = world.unix_now();
                    world.hub.handle_text(world.now, unix_now, conn, &text);
                }
            }
            4 => {
                let k = input.u8();
                let text = String::from_utf8_lossy(input.bytes(700)).into_owned();
                if !world.open.is_empty() {
                    let conn = world.open[usize::from(k) % world.open.len()];
                    let unix_now = world.unix_now();
                    world.hub.handle_text(world.now, unix_now, conn, &text);
                }
            }
            _ => {
                // 10 ms steps up to ~11 minutes: past heartbeat, silence, grace and token
                // expiry.
                let by = Duration::from_millis(u64::from(input.u16()) * 10);
                world.advance(by);
            }
        }
        world.drain();
        world.check_state();
    }
    world.reached
}
