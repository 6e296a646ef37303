//! Replays a committed corpus directory through a target's checks, for the `cargo test`
//! replays in `crates/*/tests/fuzz_corpus*.rs` (stable, no cargo-fuzz). Not part of the
//! fuzz targets themselves.

use std::fs;
use std::path::{Path, PathBuf};

/// `fuzz/corpus/<target>`, from a crate's manifest directory (`crates/<crate>`).
pub fn corpus_dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir)
        .join("../../fuzz/corpus")
        .join(target)
}

/// Runs `check` on every file of `dir` (sorted), naming the file that fails; returns what
/// each run reached. Panics if the directory holds fewer than `at_least` files, so that a
/// lost corpus does not pass silently.
pub fn replay<R>(dir: &Path, at_least: usize, check: fn(&[u8]) -> R) -> Vec<(PathBuf, R)> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= at_least,
        "{} holds {} files, fewer than the {at_least} seeds",
        dir.display(),
        files.len()
    );
    files
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).expect("readable corpus file");
            let reached = std::panic::catch_unwind(|| check(&bytes))
                .unwrap_or_else(|_| panic!("{} fails the fuzz checks", path.display()));
            (path, reached)
        })
        .collect()
}

/// Writes the generated seeds into `dir` (the ignored `write_seed_corpus` tests).
pub fn write_seeds(dir: &Path, seeds: &[(&str, Vec<u8>)]) {
    fs::create_dir_all(dir).expect("the corpus directory can be made");
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).expect("the seed can be written");
    }
}
