//! Clients driving the sans-IO hub with a hand-moved clock and a seeded RNG.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use signal::{CloseReason, ConnId, Hub, HubConfig, IceConfig, Output};

/// The `iceServers` every test connection gets.
pub const ICE: &str = r#"[{"urls":["stun:example.org:3478"]}]"#;
/// Wall-clock seconds at the start of every test.
pub const UNIX_START: u64 = 1_900_000_000;

pub struct World {
    pub hub: Hub,
    pub now: Instant,
    pub unix_now: u64,
    next_conn: ConnId,
}

/// What a `joined` said.
#[derive(Debug, Clone)]
pub struct Joined {
    pub conn: ConnId,
    pub id: String,
    pub resume: String,
    pub peers: Vec<String>,
    pub frame: Value,
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

impl World {
    pub fn new() -> World {
        World::with(HubConfig::default())
    }

    pub fn with(config: HubConfig) -> World {
        World {
            hub: Hub::new(config, Box::new(StdRng::seed_from_u64(7))),
            now: Instant::now(),
            unix_now: UNIX_START,
            next_conn: 1,
        }
    }

    /// Opens a connection.
    pub fn connect(&mut self) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let ice = IceConfig {
            servers: RawValue::from_string(ICE.to_owned()).unwrap(),
            ttl: 86_400,
        };
        self.hub.connect(self.now, conn, ice);
        conn
    }

    /// One text frame from `conn`.
    pub fn send(&mut self, conn: ConnId, text: &str) {
        self.hub.handle_text(self.now, self.unix_now, conn, text);
        self.hub.check_invariants().unwrap();
    }

    /// One JSON frame from `conn`.
    pub fn send_json(&mut self, conn: ConnId, value: Value) {
        self.send(conn, &value.to_string());
    }

    /// Every command since the last call.
    pub fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.hub.poll_output()).collect()
    }

    /// Every frame since the last call, as (connection, text); panics on a close.
    pub fn texts(&mut self) -> Vec<(ConnId, String)> {
        self.outputs()
            .into_iter()
            .map(|o| match o {
                Output::Send { conn, text } => (conn, text),
                other => panic!("expected only frames, got {other:?}"),
            })
            .collect()
    }

    /// Every frame since the last call, parsed.
    pub fn frames(&mut self) -> Vec<(ConnId, Value)> {
        let texts = self.texts();
        texts.into_iter().map(|(c, t)| (c, json(&t))).collect()
    }

    /// The frames for `conn` since the last call (frames for others are dropped).
    pub fn frames_for(&mut self, conn: ConnId) -> Vec<Value> {
        let frames = self.frames();
        frames
            .into_iter()
            .filter(|(c, _)| *c == conn)
            .map(|(_, f)| f)
            .collect()
    }

    /// Sends `frame` from `conn` and returns the one error it caused (code, ref).
    pub fn error_for(&mut self, conn: ConnId, text: &str) -> (String, Option<String>) {
        self.send(conn, text);
        let frames = self.frames();
        assert_eq!(frames.len(), 1, "one frame for {text}: {frames:?}");
        let (to, frame) = &frames[0];
        assert_eq!(*to, conn);
        assert_eq!(frame["type"], "error", "{frame}");
        assert!(frame["message"].is_string(), "{frame}");
        let code = frame["code"].as_str().unwrap().to_owned();
        (code, frame["ref"].as_str().map(str::to_owned))
    }

    /// Connects and joins `room`; drains every output (the others' `peer-joined` too).
    pub fn join(&mut self, room: &str) -> Joined {
        let conn = self.connect();
        self.send_json(conn, json!({"type": "join", "room": room}));
        self.joined(conn)
    }

    /// The `joined` that `conn` just got; drains every output.
    pub fn joined(&mut self, conn: ConnId) -> Joined {
        let frames = self.frames();
        let (_, frame) = frames
            .into_iter()
            .find(|(c, f)| *c == conn && f["type"] == "joined")
            .unwrap_or_else(|| panic!("connection {conn} did not join"));
        Joined {
            conn,
            id: frame["id"].as_str().unwrap().to_owned(),
            resume: frame["resume"].as_str().unwrap().to_owned(),
            peers: frame["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect(),
            frame,
        }
    }

    /// Moves the clock forward by `d`, firing every timer due on the way at its instant.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(at) = self.hub.poll_timeout().filter(|&at| at <= target) {
            self.now = self.now.max(at);
            self.hub.handle_timeout(self.now);
            self.hub.check_invariants().unwrap();
        }
        self.now = target;
        self.unix_now += d.as_secs();
    }

    /// The socket closed.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.hub.disconnect(self.now, conn);
        self.hub.check_invariants().unwrap();
    }
}

/// The close command in `outputs` for `conn`, if any.
pub fn close_of(outputs: &[Output], conn: ConnId) -> Option<CloseReason> {
    outputs.iter().find_map(|o| match o {
        Output::Close { conn: c, reason } if *c == conn => Some(*reason),
        _ => None,
    })
}
