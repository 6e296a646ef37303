//! Replays the committed corpus of the `ice_agent` fuzz target (`fuzz/corpus/ice_agent/`)
//! through the same checks (`fuzz/fuzz_targets/ice_agent_check.rs`), so that `cargo test`
//! on stable catches a regression on any seed or past crash.
//!
//! The seeds are scripts in the target's input format, written by `write_seed_corpus` below
//! (ignored; run it by name to rewrite them). Crash reproducers are added by hand as
//! `crash-*` and never regenerated.

// Test code (the harness and the shared check file it includes): a failed unwrap is a failed
// test, as in `props.rs`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

#[path = "../../../fuzz/fuzz_targets/ice_agent_check.rs"]
mod check;
#[path = "../../../fuzz/fuzz_targets/input.rs"]
mod input;
#[path = "../../../fuzz/fuzz_targets/replay.rs"]
mod replay;

fn corpus_dir() -> PathBuf {
    replay::corpus_dir(env!("CARGO_MANIFEST_DIR"), "ice_agent")
}

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    for (path, reached) in replay::replay(&corpus_dir(), seeds().len(), check::check) {
        assert!(reached.steps > 0, "{} runs no step", path.display());
    }
}

/// The seeds reach past the first datagram: checks answered, a pair selected, data
/// delivered from the remote candidate.
#[test]
fn the_seeds_reach_nomination_and_data() {
    let (_, seed) = seeds()
        .into_iter()
        .find(|(name, _)| *name == "checks-answered-then-data")
        .expect("the seed exists");
    let reached = check::check(&seed);
    assert!(reached.selected, "{reached:?}");
    assert_eq!(reached.data, 1, "{reached:?}");
}

// ---------------------------------------------------------------------------------------
// The seed corpus: scripts in the format `check::check` reads.

const CANDIDATE: u8 = 0;
const RAW_CANDIDATE: u8 = 1;
const DATAGRAM: u8 = 2;
const CHECK: u8 = 3;
const ANSWER: u8 = 4;
const SEND: u8 = 6;
const ADVANCE: u8 = 7;
const END_OR_CLOSE: u8 = 8;

/// Indexes into the check's `addresses()`.
const REMOTE: u8 = 0;
const STUN_SERVER: u8 = 3;

struct Script(Vec<u8>);

impl Script {
    fn new(controlling: bool) -> Script {
        Script(vec![u8::from(controlling)])
    }

    /// A host candidate at `addresses()[address]`, priority byte `priority`.
    fn candidate(mut self, address: u8, kind: u8) -> Self {
        self.0
            .extend_from_slice(&[CANDIDATE, address, kind, 0x7e, 0, 7, 0, 0]);
        self
    }

    fn raw_candidate(mut self, text: &str) -> Self {
        self.0.push(RAW_CANDIDATE);
        self.bytes(text.as_bytes());
        self
    }

    fn datagram(mut self, host: u8, from: u8, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(&[DATAGRAM, host, from]);
        self.bytes(bytes);
        self
    }

    /// A check from `addresses()[from]`; `flags` as in `check_request`.
    fn check(mut self, from: u8, flags: u8) -> Self {
        self.0
            .extend_from_slice(&[CHECK, 0, from, flags, 0, 0, 0, 1, 0x6e, 0, 0, 0]);
        self
    }

    /// Answers the `pick`-th remembered request; `flags` as in `answer`.
    fn answer(mut self, pick: u8, flags: u8, code: u8, mapped: u8) -> Self {
        self.0
            .extend_from_slice(&[ANSWER, pick, flags, code, mapped, 1]);
        self
    }

    fn send(mut self, data: &[u8]) -> Self {
        self.0.push(SEND);
        self.bytes(data);
        self
    }

    fn advance(mut self, hundredths: u16) -> Self {
        self.0.push(ADVANCE);
        self.0.extend_from_slice(&hundredths.to_be_bytes());
        self
    }

    fn end_or_close(mut self, end: bool) -> Self {
        self.0.extend_from_slice(&[END_OR_CLOSE, u8::from(end)]);
        self
    }

    fn bytes(&mut self, data: &[u8]) {
        self.0
            .extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        self.0.extend_from_slice(data);
    }
}

/// Success, XOR-MAPPED-ADDRESS, signed with the key the request expects, FINGERPRINT.
const SIGNED_SUCCESS: u8 = 2;
/// An error with REALM and NONCE, unsigned (a TURN 401 challenge).
const CHALLENGE: u8 = 1 | 8 | 32;

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut checks = Script::new(true).candidate(REMOTE, 0).advance(5);
    // Answer whatever the agent sent last (the check to the remote candidate, or gathering).
    for pick in 0..6 {
        checks = checks.answer(pick, SIGNED_SUCCESS, 0, REMOTE);
    }
    let checks = checks
        .check(REMOTE, 8)
        .advance(150)
        .answer(15, SIGNED_SUCCESS, 0, REMOTE)
        .advance(150)
        .datagram(0, REMOTE, b"application data")
        .send(b"to the peer")
        .0;
    vec![
        ("checks-answered-then-data", checks),
        (
            "controlled-with-use-candidate",
            Script::new(false)
                .candidate(REMOTE, 0)
                .check(REMOTE, 8)
                .advance(100)
                .answer(0, SIGNED_SUCCESS, 0, REMOTE)
                .advance(6000)
                .0,
        ),
        (
            "turn-challenge-and-gathering",
            Script::new(true)
                .answer(0, CHALLENGE, 0, STUN_SERVER)
                .answer(1, CHALLENGE, 0, STUN_SERVER)
                .answer(2, SIGNED_SUCCESS | 4, 0, STUN_SERVER)
                .advance(300)
                .end_or_close(false)
                .0,
        ),
        (
            "role-conflict-and-bad-checks",
            Script::new(true)
                .candidate(1, 1)
                .check(1, 0)
                .check(1, 1)
                .check(1, 2)
                .answer(0, 1, 2, 1)
                .end_or_close(true)
                .advance(0xffff)
                .0,
        ),
        (
            "odd-candidates-and-garbage",
            Script::new(false)
                .raw_candidate("candidate:1 1 UDP 2130706431 192.0.2.9 1 typ host")
                .raw_candidate("a=candidate:x 1 udp 1 ::1 0 typ relay raddr 0.0.0.0 rport 0")
                .raw_candidate("candidate:")
                .candidate(2, 4)
                .datagram(1, 2, &[0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42])
                .datagram(0, 5, b"not from a candidate")
                .0,
        ),
    ]
}

#[test]
#[ignore = "rewrites fuzz/corpus/ice_agent; run by name after changing the seeds"]
fn write_seed_corpus() {
    replay::write_seeds(&corpus_dir(), &seeds());
}
