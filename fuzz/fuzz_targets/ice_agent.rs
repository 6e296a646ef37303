//! Fuzz target: the ICE agent's input (`IceAgent::handle_input` from any source, remote
//! candidate strings, `handle_timeout`, `send_data`, `close`). The script format and the
//! invariants live in `ice_agent_check.rs`, shared with `crates/ice/tests/fuzz_corpus.rs`.

#![no_main]

mod ice_agent_check;
mod input;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ice_agent_check::check(data);
});
