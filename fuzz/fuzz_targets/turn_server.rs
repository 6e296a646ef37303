//! Fuzz target: the TURN server core (`TurnServer::handle_client`, `handle_peer`,
//! `handle_timeout`, `client_closed`) driven by a script of datagrams from several clients
//! and peers with a moving clock. The script format and the invariants live in
//! `turn_server_check.rs`, shared with `crates/turn/tests/fuzz_corpus.rs`.

#![no_main]

mod input;
mod turn_server_check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    turn_server_check::check(data);
});
