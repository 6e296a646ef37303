//! Fuzz target: the configuration file parser and validation (`config::check_file`, as
//! `turnpike config check` runs it). The checks live in `config_file_check.rs`, shared with
//! the unit test `crates/turnpike/src/config/tests/fuzz_corpus.rs`.
//!
//! The configuration module lives in the binary crate `turnpike`, which has no library
//! target. Rather than split that crate (a `lib.rs` would move every module and every
//! `crate::` path of the binary), the module's own source files are compiled here as they are
//! with `#[path]`: the module depends only on std, serde/toml/clap/ipnet and the TURN core,
//! plus one file of the HTTP module (`http/origin.rs`, the allowed-origin parser, std only),
//! which is included the same way. A new dependency of the config module shows up here as a
//! build error of this target, not as a silent gap.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

#[allow(dead_code, unused_imports)]
#[path = "../../crates/turnpike/src/config/mod.rs"]
mod config;

#[path = "config_file_http.rs"]
mod http;

mod config_file_check;

/// One scratch file per process (`check_file` reads a path, as `turnpike config check` does).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("turnpike-fuzz-config-{}.toml", std::process::id()))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    config_file_check::check(data, scratch());
});
