//! Replays the committed corpus of the `turn_server` fuzz target (`fuzz/corpus/turn_server/`)
//! through the same checks (`fuzz/fuzz_targets/turn_server_check.rs`), so that `cargo test`
//! on stable catches a regression on any seed or past crash.
//!
//! The seeds are scripts in the target's input format, written by `write_seed_corpus` below
//! (ignored; run it by name to rewrite them). Crash reproducers are added by hand as
//! `crash-*` and never regenerated.

// Test code (the harness and the shared check file it includes): a failed unwrap is a failed
// test, as in `props.rs`.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

#[path = "../../../fuzz/fuzz_targets/turn_server_check.rs"]
mod check;
#[path = "../../../fuzz/fuzz_targets/input.rs"]
mod input;
#[path = "../../../fuzz/fuzz_targets/replay.rs"]
mod replay;

fn corpus_dir() -> PathBuf {
    replay::corpus_dir(env!("CARGO_MANIFEST_DIR"), "turn_server")
}

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    for (path, reached) in replay::replay(&corpus_dir(), seeds().len(), check::check) {
        assert!(reached.steps > 0, "{} runs no step", path.display());
    }
}

/// The seeds reach the paths behind authentication: allocations are made (up to the
/// quota) and data is relayed both ways.
#[test]
fn the_seeds_reach_allocations_and_the_data_path() {
    let reached = |name: &str| {
        let (_, seed) = seeds()
            .into_iter()
            .find(|(seed, _)| *seed == name)
            .expect("the seed exists");
        check::check(&seed)
    };
    let data = reached("allocate-permission-channel-data");
    assert_eq!(data.most_allocations, 1, "{data:?}");
    // ChannelData and a Send indication to the permitted peer; the peer's datagram back.
    assert_eq!((data.to_peer, data.to_client), (2, 1), "{data:?}");
    // alice from three sources with a quota of 2, bob once.
    let quota = reached("quota-and-replay-from-another-port");
    assert_eq!(quota.most_allocations, 3, "{quota:?}");
}

// ---------------------------------------------------------------------------------------
// The seed corpus: scripts in the format `check::check` reads.

/// Step selectors (`input.below(7)`).
const RAW: u8 = 0;
const REQUEST: u8 = 1;
const CHANNEL_DATA: u8 = 3;
const PEER: u8 = 4;
const ADVANCE: u8 = 5;
const CLOSE: u8 = 6;

/// Template methods and flags, as in the check file.
const ALLOCATE: u8 = 0;
const REFRESH: u8 = 1;
const CREATE_PERMISSION: u8 = 2;
const CHANNEL_BIND: u8 = 3;
const SEND: u8 = 4;
use check::{
    CHANNEL as F_CHANNEL, DATA as F_DATA, EVEN_PORT as F_EVEN_PORT, FAMILY as F_FAMILY,
    FINGERPRINT as F_FINGERPRINT, LIFETIME as F_LIFETIME, PEER as F_PEER, PEER2 as F_PEER2,
    TOKEN as F_TOKEN, TRANSPORT as F_TRANSPORT,
};
/// Auth modes.
const UNSIGNED: u8 = 0;
const SIGNED: u8 = 1;
const REST: u8 = 2;
const REST_EXPIRED: u8 = 3;
const STALE_NONCE: u8 = 4;

#[derive(Default)]
struct Script(Vec<u8>);

/// The variable fields of a templated request.
#[derive(Clone, Copy, Default)]
struct Template {
    method: u8,
    flags: u16,
    lifetime: u8,
    peer: u8,
    peer2: u8,
    channel: u8,
    family: u8,
    auth: u8,
    user: u8,
}

impl Script {
    fn request(&mut self, source: u8, t: Template, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[REQUEST, source, t.method]);
        self.0.extend_from_slice(&t.flags.to_be_bytes());
        self.0
            .extend_from_slice(&[t.lifetime, t.peer, t.peer2, t.channel, 0, t.family, 0]);
        self.0.extend_from_slice(&[t.auth, t.user]);
        if t.flags & F_DATA != 0 {
            self.bytes(data);
        }
        self.0.push(0); // no byte flipped
        self
    }

    /// The usual client exchange: unsigned first (401 with a nonce), then signed.
    fn signed(&mut self, source: u8, t: Template) -> &mut Self {
        self.request(
            source,
            Template {
                auth: UNSIGNED,
                ..t
            },
            &[],
        );
        self.request(source, t, &[])
    }

    fn bytes(&mut self, data: &[u8]) {
        self.0
            .extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        self.0.extend_from_slice(data);
    }

    fn raw(&mut self, source: u8, packet: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[RAW, source]);
        self.bytes(packet);
        self
    }

    fn channel_data(&mut self, source: u8, selector: u8, lie: u8, payload: &[u8]) -> &mut Self {
        self.0
            .extend_from_slice(&[CHANNEL_DATA, source, selector, lie]);
        self.bytes(payload);
        self
    }

    fn peer(&mut self, relay: u8, peer: u8, payload: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&[PEER, relay, peer]);
        self.bytes(payload);
        self
    }

    fn advance(&mut self, tenths: u16) -> &mut Self {
        self.0.push(ADVANCE);
        self.0.extend_from_slice(&tenths.to_be_bytes());
        self
    }

    fn close(&mut self, source: u8) -> &mut Self {
        self.0.extend_from_slice(&[CLOSE, source]);
        self
    }

    fn done(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

fn allocate(auth: u8, user: u8) -> Template {
    Template {
        method: ALLOCATE,
        flags: F_TRANSPORT | F_FINGERPRINT,
        auth,
        user,
        ..Template::default()
    }
}

fn signed(method: u8, flags: u16) -> Template {
    Template {
        method,
        flags,
        auth: SIGNED,
        ..Template::default()
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut s = Script::default();
    let mut seeds = vec![(
        "allocate-permission-channel-data",
        s.signed(0, allocate(SIGNED, 0))
            .request(0, signed(CREATE_PERMISSION, F_PEER), &[])
            .request(0, signed(CHANNEL_BIND, F_PEER | F_CHANNEL), &[])
            .channel_data(0, 0, 0, b"to the peer")
            .peer(0, 0, b"from the peer")
            .request(0, signed(SEND, F_PEER | F_DATA), b"sent")
            .request(
                0,
                Template {
                    peer2: 1,
                    ..signed(SEND, F_PEER2 | F_DATA)
                },
                b"no permission",
            )
            .request(
                0,
                Template {
                    lifetime: 0,
                    ..signed(REFRESH, F_LIFETIME)
                },
                &[],
            )
            .done(),
    )];
    seeds.push((
        "rest-credential-over-tcp-then-close",
        s.signed(2, allocate(REST, 1))
            .request(2, signed(CREATE_PERMISSION, F_PEER | F_PEER2), &[])
            .peer(0, 1, b"x")
            .close(2)
            .done(),
    ));
    seeds.push((
        "quota-and-replay-from-another-port",
        s.signed(0, allocate(SIGNED, 0))
            .signed(1, allocate(SIGNED, 0))
            .signed(3, allocate(SIGNED, 0))
            .signed(2, allocate(SIGNED, 1))
            .done(),
    ));
    seeds.push((
        "even-port-reservation",
        s.signed(
            0,
            Template {
                flags: F_TRANSPORT | F_EVEN_PORT,
                ..allocate(SIGNED, 0)
            },
        )
        .signed(
            1,
            Template {
                flags: F_TRANSPORT | F_TOKEN,
                ..allocate(SIGNED, 1)
            },
        )
        .advance(400)
        .done(),
    ));
    seeds.push((
        "expiry-of-everything",
        s.signed(0, allocate(SIGNED, 0))
            .request(0, signed(CHANNEL_BIND, F_PEER | F_CHANNEL), &[])
            .advance(3500)
            .request(0, signed(REFRESH, 0), &[])
            .advance(6100)
            .request(0, signed(REFRESH, 0), &[])
            .advance(0xffff)
            .done(),
    ));
    seeds.push((
        "ipv6-client-both-families",
        s.signed(
            3,
            Template {
                flags: F_TRANSPORT | F_FAMILY,
                family: 1,
                ..allocate(SIGNED, 0)
            },
        )
        .request(
            3,
            Template {
                peer: 2,
                ..signed(CREATE_PERMISSION, F_PEER)
            },
            &[],
        )
        .done(),
    ));
    let denied_peer = |peer: u8| Template {
        peer,
        ..signed(CREATE_PERMISSION, F_PEER)
    };
    s.signed(0, allocate(SIGNED, 0));
    for peer in [3, 5, 6, 7, 8] {
        s.request(0, denied_peer(peer), &[]);
    }
    seeds.push(("own-and-denied-peers", s.done()));
    seeds.push((
        "wrong-password-stale-nonce-expired-rest",
        s.signed(0, allocate(SIGNED, 2))
            .request(0, allocate(STALE_NONCE, 0), &[])
            .request(1, allocate(REST_EXPIRED, 0), &[])
            .done(),
    ));
    seeds.push((
        "garbage-and-lying-channel-data",
        s.raw(0, &[0; 20])
            .raw(1, &[0x00, 0x03, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42])
            .raw(4, b"\x40\x00\x00\x10short")
            .channel_data(0, 0x80, 0xff, b"length lies")
            .channel_data(0, 0x00, 0xf1, b"")
            .peer(0xff, 0, b"no allocation")
            .done(),
    ));
    seeds
}

#[test]
#[ignore = "rewrites fuzz/corpus/turn_server; run by name after changing the seeds"]
fn write_seed_corpus() {
    replay::write_seeds(&corpus_dir(), &seeds());
}
