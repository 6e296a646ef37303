//! Replays the committed corpus of the `config_file` fuzz target (`fuzz/corpus/config_file/`)
//! through the same checks (`fuzz/fuzz_targets/config_file_check.rs`), so that `cargo test`
//! on stable catches a regression on any seed or past crash. A unit test: the configuration
//! module is part of the binary crate.
//!
//! The seeds are written by `write_seed_corpus` below (ignored; run it by name to rewrite
//! them). Crash reproducers are added by hand as `crash-*` and never regenerated.

use std::path::PathBuf;

#[path = "../../../../../fuzz/fuzz_targets/config_file_check.rs"]
mod check;
#[path = "../../../../../fuzz/fuzz_targets/replay.rs"]
mod replay;

use check::Outcome;

fn corpus_dir() -> PathBuf {
    replay::corpus_dir(env!("CARGO_MANIFEST_DIR"), "config_file")
}

thread_local! {
    /// The scratch file `check` writes each input to.
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().unwrap();
}

fn run(data: &[u8]) -> Outcome {
    SCRATCH.with(|dir| check::check(data, &dir.path().join("fuzz.toml")))
}

#[test]
fn every_corpus_file_passes_the_fuzz_checks() {
    let results = replay::replay(&corpus_dir(), seeds().len(), run);
    // Both outcomes are represented: the example loads, the broken files do not.
    assert!(results.iter().any(|(_, o)| *o == Outcome::Loaded));
    assert!(results
        .iter()
        .any(|(_, o)| matches!(o, Outcome::Rejected { problems } if *problems > 1)));
}

/// The check catches what it is there for: a secret printed in a problem fails it.
#[test]
fn the_check_finds_a_printed_secret() {
    // Before secret values were hidden, this printed `invalid type: string "alice:…"`.
    let seed = b"users = \"alice:correct-horse-battery\"\n";
    assert!(matches!(run(seed), Outcome::Rejected { problems: 1 }));
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = "correct-horse-battery-staple";
    let every_key = format!(
        "listen = [\"127.0.0.1:3478\", \"[::1]:3478\"]\nudp = true\ntcp = false\n\
         tls-listen = [\"127.0.0.1:5349\"]\nsoftware = \"fuzz\"\ntcp-idle-timeout = 60\n\
         max-tcp-connections = 100\nworkers = 2\nturn = true\nrealm = \"example.org\"\n\
         users = [\"alice:{s}\", \"bob:{s}x\"]\nrest-secrets = [\"{s}\"]\n\
         nonce-secret = \"{}\"\nnonce-lifetime = 600\nrelay-ip = [\"127.0.0.1\"]\n\
         external-ip = [\"203.0.113.7/127.0.0.1\"]\nmin-port = 50000\nmax-port = 50100\n\
         user-quota = 2\ntotal-quota = 10\nallowed-peers = [\"10.0.0.0/8\"]\n\
         denied-peers = [\"192.0.2.1\"]\nhttp-listen = [\"127.0.0.1:8080\"]\n\
         signaling-secret = \"{s}\"\nallowed-origins = [\"https://example.org\"]\n\
         log-level = \"debug\"\nlog-format = \"json\"\n",
        "0f".repeat(32)
    );
    vec![
        ("example", crate::config::EXAMPLE.as_bytes().to_vec()),
        ("every-key", every_key.into_bytes()),
        (
            "secrets-of-the-wrong-type",
            format!(
                "users = \"alice:{s}\"\nrest-secrets = {{ a = \"{s}\" }}\n\
                 nonce-secret = [\"{s}\"]\nsignaling-secret = 123456789012345\n"
            )
            .into_bytes(),
        ),
        (
            "rejected-values",
            format!(
                "users = [\"{s}\", \"a:\", \"b:{s}\", \"b:{s}\"]\nrest-secrets = [\"short\"]\n\
                 nonce-secret = \"{s}\"\nsignaling-secret = \"short\"\nlisten = [\"nope\"]\n\
                 min-port = 70000\nlisen = 1\n[tls]\ncert = \"x\"\n"
            )
            .into_bytes(),
        ),
        (
            "syntax-error",
            format!("udp = true\nusers = [\"alice:{s}]\n").into_bytes(),
        ),
        ("duplicate-key", b"udp = true\nudp = false\n".to_vec()),
        ("invalid-utf8", b"software = \"\xff\xfe\"\n".to_vec()),
        ("empty", Vec::new()),
    ]
}

#[test]
#[ignore = "rewrites fuzz/corpus/config_file; run by name after changing the seeds"]
fn write_seed_corpus() {
    replay::write_seeds(&corpus_dir(), &seeds());
}
