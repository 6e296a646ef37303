//! Fuzz target: the signaling hub (`Hub::connect`, `handle_text`, `disconnect`,
//! `handle_timeout`) driven by a script of frames from several connections with a moving
//! clock. The script format and the invariants live in `signal_hub_check.rs`, shared with
//! `crates/signal/tests/fuzz_corpus.rs`.

#![no_main]

mod input;
mod signal_hub_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    signal_hub_check::check(data);
});
