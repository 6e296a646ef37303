//! The checks of the `config_file` fuzz target, shared with its corpus replay
//! (`crates/turnpike/src/config/tests/fuzz_corpus.rs`, a unit test of the binary crate).
//!
//! The input is the configuration file's bytes (any bytes: invalid UTF-8 is a problem to
//! report too), read by `config::check_file` as `turnpike config check` and `serve --config`
//! do. `crate::config` is the real module: the binary's own in the replay, and the same
//! source files included with `#[path]` in the fuzz target (see `config_file.rs`).
//!
//! Checks: no panic; an error has at least one problem, each printed on one line, at a line
//! of the file; a problem with a secret key never prints that key's value; a configuration
//! that loads never shows a secret in the `Debug` form of the fields that hold them.

use std::path::Path;

use crate::config::{check_file, Origin};

/// The keys whose values must never be printed (as in `config/values.rs`).
const SECRET_KEYS: [&str; 4] = ["users", "rest-secrets", "nonce-secret", "signaling-secret"];

/// Strings (of at least 12 bytes, so that they cannot be words of a message by chance) and
/// long numbers inside a secret value.
fn secret_texts(value: &toml::Value, found: &mut Vec<String>) {
    match value {
        toml::Value::String(s) if s.len() >= 12 => found.push(s.clone()),
        toml::Value::Integer(n) if n.unsigned_abs() >= 100_000_000_000 => {
            found.push(n.to_string());
        }
        toml::Value::Array(items) => items.iter().for_each(|v| secret_texts(v, found)),
        toml::Value::Table(table) => {
            for (key, v) in table {
                if key.len() >= 12 {
                    found.push(key.clone());
                }
                secret_texts(v, found);
            }
        }
        _ => {}
    }
}

/// What a run gave, for the corpus replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Loaded,
    Rejected { problems: usize },
}

/// Runs one fuzz input, written to `path` (a scratch file the caller owns).
pub fn check(data: &[u8], path: &Path) -> Outcome {
    std::fs::write(path, data).expect("the scratch file is writable");
    let text = String::from_utf8_lossy(data);
    // The secret values, when the file parses as TOML at all.
    let mut secrets = Vec::new();
    if let Ok(table) = text.parse::<toml::Table>() {
        for key in SECRET_KEYS {
            if let Some(value) = table.get(key) {
                secret_texts(value, &mut secrets);
            }
        }
    }
    // Also a secret whose line is broken: the rest of a `users`/`*-secret` line.
    for line in text.lines() {
        let line = line.trim_start();
        if SECRET_KEYS.iter().any(|key| line.starts_with(key)) {
            if let Some((_, value)) = line.split_once('=') {
                let value = value.trim().trim_matches(['"', '\'', '[', ']', ' ']);
                if value.len() >= 12 && value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    secrets.push(value.to_owned());
                }
            }
        }
    }
    let lines = text.lines().count().max(1) + 1;
    match check_file(path) {
        Ok(config) => {
            // The fields that hold secrets, each entry on its own; the rest of the configuration
            // may well contain the same text legitimately (`rest-secrets = ["0.0.0.0:3478"]` and
            // the default `listen`: corpus file crash-debug-shares-a-non-secret-value). One
            // entry at a time, never the fields printed together: a "secret" may be made of the
            // redaction markers and the punctuation around them (`rest-secrets = ["[] [Secret(."]`
            // and `users = []` print `[] [Secret(..)]`: crash-secret-spells-the-redaction-marker;
            // `["[] [] None N"]` is in `[] [] None None`: crash-secret-spells-none).
            let shown: Vec<String> = (config.users.iter().map(|u| format!("{u:?}")))
                .chain(config.rest_secrets.iter().map(|s| format!("{s:?}")))
                .chain(config.nonce_secret.iter().map(|s| format!("{s:?}")))
                .chain(config.signaling_secret.iter().map(|s| format!("{s:?}")))
                .collect();
            for secret in &secrets {
                for text in &shown {
                    assert!(!text.contains(secret.as_str()), "Debug shows a secret");
                }
            }
            Outcome::Loaded
        }
        Err(error) => {
            assert!(!error.problems.is_empty(), "an error without a problem");
            for problem in &error.problems {
                let printed = problem.to_string();
                assert!(
                    !printed.contains('\n'),
                    "a problem on two lines: {printed:?}"
                );
                if let Origin::File {
                    line: Some(line), ..
                } = problem.origin
                {
                    assert!(line >= 1 && line <= lines, "line {line} of {lines}");
                }
                let about_secret = problem
                    .key
                    .as_deref()
                    .is_none_or(|k| SECRET_KEYS.contains(&k));
                if about_secret {
                    for secret in &secrets {
                        assert!(
                            !printed.contains(secret.as_str()),
                            "a secret is printed: {printed:?}"
                        );
                    }
                }
            }
            Outcome::Rejected {
                problems: error.problems.len(),
            }
        }
    }
}
