//! Fuzz target: `Message::decode` and everything that reads a decoded message, then a
//! re-encode round trip. The checks live in `check.rs`, shared with the corpus test in
//! `crates/stun/tests/fuzz_corpus.rs`.

#![no_main]

mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check(data);
});
