//! Replays the committed corpus of the `signal_hub` fuzz target (`fuzz/corpus/signal_hub/`)
//! through the same checks (`fuzz/fuzz_targets/signal_hub_check.rs`), so that `cargo test`
//! on stable catches a regression on any seed or past crash.
//!
//! The seeds are scripts in the target's input format, written by `write_seed_corpus` below
//! (ignored; run it by name to rewrite them). Crash reproducers are added by hand as
//! `crash-*` and never regenerated.

// Test code (the harness and the shared check file it includes): a failed unwrap is a failed
// test, as in `props.rs`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

#[path = "../../../fuzz/fuzz_targets/signal_hub_check.rs"]
mod check;
#[path = "../../../fuzz/fuzz_targets/input.rs"]
mod input;
#[path = "../../../fuzz/fuzz_targets/replay.rs"]
mod replay;

fn corpus_dir() -> PathBuf {
    replay::corpus_dir(env!("CARGO_MANIFEST_DIR"), "signal_hub")
}

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    for (path, reached) in replay::replay(&corpus_dir(), seeds().len(), check::check) {
        assert!(reached.steps > 0, "{} runs no step", path.display());
    }
}

/// The seeds get past `join` (with and without join tokens) into routing, resume and the
/// silence timeout.
#[test]
fn the_seeds_reach_rooms_routing_and_timeouts() {
    for (name, seed) in seeds() {
        let reached = check::check(&seed);
        match name {
            "two-peers-talk" => {
                assert_eq!((reached.joined, reached.most_peers), (2, 2), "{reached:?}");
                assert!(reached.routed >= 2, "{reached:?}");
            }
            "tokens-required" => assert_eq!(reached.joined, 1, "{reached:?}"),
            "silence-then-resume" => {
                assert!(reached.closed >= 1, "{reached:?}");
                assert_eq!(reached.joined, 2, "{reached:?}");
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// The seed corpus: scripts in the format `check::check` reads.

const CONNECT: u8 = 0;
const DISCONNECT: u8 = 1;
const TEMPLATE: u8 = 2;
const RAW: u8 = 4;
const ADVANCE: u8 = 5;

/// Frame kinds (index into the check's `KINDS`).
const JOIN: u8 = 0;
const OFFER: u8 = 1;
const MESSAGE: u8 = 5;
const BROADCAST: u8 = 6;
const LEAVE: u8 = 7;
const PONG: u8 = 9;

/// Template flags.
const ROOM: u8 = 1;
const TO: u8 = 2;
const RESUME: u8 = 4;
const TOKEN: u8 = 8;
const DATA: u8 = 32;

/// Join-token choices.
const VALID: u8 = 1;
const EXPIRED: u8 = 2;
const OTHER_ROOM: u8 = 3;
const FORGED: u8 = 4;

#[derive(Default)]
struct Script(Vec<u8>);

impl Script {
    fn new(tokens: bool) -> Script {
        Script(vec![u8::from(tokens)])
    }

    fn connect(mut self) -> Self {
        self.0.push(CONNECT);
        self
    }

    fn disconnect(mut self, conn: u8) -> Self {
        self.0.extend_from_slice(&[DISCONNECT, conn]);
        self
    }

    /// `frame(conn, kind, flags, peer/token pick, join token, data)`.
    fn frame(mut self, conn: u8, kind: u8, flags: u8, pick: u8, join: u8, data: &str) -> Self {
        self.0
            .extend_from_slice(&[TEMPLATE, conn, kind, flags, 0, pick, pick, join]);
        self.bytes(data.as_bytes());
        self
    }

    fn raw(mut self, conn: u8, text: &str) -> Self {
        self.0.extend_from_slice(&[RAW, conn]);
        self.bytes(text.as_bytes());
        self
    }

    fn advance(mut self, hundredths: u16) -> Self {
        self.0.push(ADVANCE);
        self.0.extend_from_slice(&hundredths.to_be_bytes());
        self
    }

    fn bytes(&mut self, data: &[u8]) {
        self.0
            .extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        self.0.extend_from_slice(data);
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "two-peers-talk",
            Script::new(false)
                .connect()
                .connect()
                .frame(0, JOIN, ROOM, 0, 0, "")
                .frame(1, JOIN, ROOM, 0, 0, "")
                .frame(0, OFFER, TO | DATA, 1, 0, r#"{"sdp":"v=0"}"#)
                .frame(1, MESSAGE, TO | DATA, 0, 0, "[1,2,3]")
                .frame(0, BROADCAST, DATA, 0, 0, "\"hi\"")
                .frame(1, LEAVE, 0, 0, 0, "")
                .0,
        ),
        (
            "tokens-required",
            Script::new(true)
                .connect()
                .connect()
                .connect()
                .connect()
                .frame(0, JOIN, ROOM | TOKEN, 0, VALID, "")
                .frame(1, JOIN, ROOM | TOKEN, 0, EXPIRED, "")
                .frame(2, JOIN, ROOM | TOKEN, 0, FORGED, "")
                .frame(3, JOIN, ROOM | TOKEN, 1, OTHER_ROOM, "")
                .0,
        ),
        (
            "silence-then-resume",
            Script::new(false)
                .connect()
                .frame(0, JOIN, ROOM, 0, 0, "")
                .advance(800)
                .connect()
                .frame(0, JOIN, ROOM | RESUME, 0, 0, "")
                .frame(0, PONG, 0, 0, 0, "")
                .advance(1000)
                .0,
        ),
        (
            "room-full-and-queue",
            Script::new(false)
                .connect()
                .connect()
                .connect()
                .connect()
                .frame(0, JOIN, ROOM, 0, 0, "")
                .frame(1, JOIN, ROOM, 0, 0, "")
                .frame(2, JOIN, ROOM, 0, 0, "")
                .frame(3, JOIN, ROOM, 0, 0, "")
                .disconnect(1)
                .frame(0, MESSAGE, TO | DATA, 1, 0, "1")
                .frame(0, MESSAGE, TO | DATA, 1, 0, "2")
                .frame(0, MESSAGE, TO | DATA, 1, 0, "3")
                .advance(600)
                .0,
        ),
        (
            "garbage-and-oversize",
            Script::new(false)
                .connect()
                .raw(0, "{")
                .raw(0, "[]")
                .raw(0, r#"{"type":7}"#)
                .raw(
                    0,
                    &format!(r#"{{"type":"message","data":"{}"}}"#, "x".repeat(600)),
                )
                .frame(0, OFFER, TO | DATA, 0, 0, "not json")
                .0,
        ),
    ]
}

#[test]
#[ignore = "rewrites fuzz/corpus/signal_hub; run by name after changing the seeds"]
fn write_seed_corpus() {
    replay::write_seeds(&corpus_dir(), &seeds());
}
