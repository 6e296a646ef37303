//! Tests of the configuration as a whole: files, rules, layers, the example.

mod control;
mod example;
mod file;
mod fuzz_corpus;
mod http;
mod https;
mod layers;
mod metrics;
mod rules;
mod secrets;
mod turn;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::error::Problem;
use super::{load, CliLayer, Config, ConfigError};

/// Serializes the tests that set or read `TURNPIKE_*` env vars, which are process-global.
pub(crate) static ENV_LOCK: Mutex<()> = Mutex::new(());

/// A configuration file in a fresh temporary directory (kept alive by the returned guard).
pub(crate) struct TempConfig {
    /// Owns the directory; dropping it deletes the file.
    _dir: tempfile::TempDir,
    /// The file.
    pub path: PathBuf,
}

impl TempConfig {
    /// Writes `text` to `turnpike.toml` in a new temporary directory.
    pub fn new(text: &str) -> TempConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("turnpike.toml");
        std::fs::write(&path, text).unwrap();
        TempConfig { _dir: dir, path }
    }

    /// The directory holding the file, for sibling files such as certificates.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap()
    }
}

/// Loads `text` as a file with no command-line layer.
pub(crate) fn check(text: &str) -> Result<Config, ConfigError> {
    let file = TempConfig::new(text);
    load(Some(&file.path), &CliLayer::default())
}

/// The problems of `text`, which must be rejected.
pub(crate) fn problems(text: &str) -> Vec<Problem> {
    match check(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(error) => error.problems,
    }
}

/// The only problem of `text`, as (line, key, printed reason).
pub(crate) fn only_problem(text: &str) -> (Option<usize>, Option<String>, String) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    let problem = found.into_iter().next().unwrap();
    let line = match problem.origin {
        super::Origin::File { line, .. } => line,
        other => panic!("not from the file: {other:?}"),
    };
    (line, problem.key, problem.reason.to_string())
}
