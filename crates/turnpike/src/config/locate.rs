//! Locating problems: byte offset → line, and key → where its value came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::error::{KeyProblem, Origin, Problem};

/// The 1-based line that holds byte `offset` of `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where each key of the merged layer was set, so that a validation problem is reported against the
/// value that actually won (a flag over the file, the file over the default).
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The configuration file, if one was read.
    file: Option<PathBuf>,
    /// Line of every top-level key of the file.
    file_lines: BTreeMap<String, usize>,
    /// Keys set by a flag or an env var, with which of the two.
    cli: BTreeMap<String, Origin>,
    /// Keys set below the file (`RUST_LOG` for `log-level`).
    fallback: BTreeMap<String, Origin>,
}

impl Sources {
    /// Records the configuration file and the line of each of its keys.
    pub fn set_file(&mut self, path: PathBuf, lines: BTreeMap<String, usize>) {
        self.file = Some(path);
        self.file_lines = lines;
    }

    /// Records that `key` was set on the command line or in the environment.
    pub fn set_cli(&mut self, key: String, origin: Origin) {
        self.cli.insert(key, origin);
    }

    /// Records that `key` was set by a source weaker than the file.
    pub fn set_fallback(&mut self, key: String, origin: Origin) {
        self.fallback.insert(key, origin);
    }

    /// The origin of `key`: the command line if set there, else the file, else a fallback, else the
    /// default.
    pub fn origin_of(&self, key: &str) -> Origin {
        if let Some(origin) = self.cli.get(key) {
            return origin.clone();
        }
        match (&self.file, self.file_lines.get(key)) {
            (Some(path), Some(line)) => Origin::File {
                path: path.clone(),
                line: Some(*line),
            },
            _ => self.fallback.get(key).cloned().unwrap_or(Origin::Default),
        }
    }

    /// Attaches the origin of its key to a validation problem.
    pub fn locate(&self, problem: KeyProblem) -> Problem {
        Problem {
            origin: self.origin_of(problem.key),
            key: Some(problem.key.to_owned()),
            reason: problem.reason,
        }
    }
}

/// Orders problems for printing: file problems by line (whole-file ones first), then the command
/// line, keeping the order of discovery otherwise.
pub fn sort(problems: &mut [Problem]) {
    problems.sort_by_key(|problem| match &problem.origin {
        Origin::File { line, .. } => (0, line.unwrap_or(0)),
        Origin::Flag | Origin::Env { .. } => (1, 0),
        Origin::Default => (2, 0),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::error::Reason;

    #[test]
    fn lines_are_one_based() {
        let text = "a = 1\nb = 2\n\nc = 3";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 6), 2);
        assert_eq!(line_of(text, text.len() - 1), 4);
        assert_eq!(line_of(text, 999), 4);
    }

    #[test]
    fn command_line_wins_over_file() {
        let mut sources = Sources::default();
        sources.set_file("t.toml".into(), BTreeMap::from([("udp".to_owned(), 3)]));
        assert_eq!(
            sources.origin_of("udp"),
            Origin::File {
                path: "t.toml".into(),
                line: Some(3)
            }
        );
        let env = Origin::Env {
            var: "TURNPIKE_UDP".to_owned(),
        };
        sources.set_cli("udp".to_owned(), env.clone());
        let problem = sources.locate(KeyProblem {
            key: "udp",
            reason: Reason::Rule("x".into()),
        });
        assert_eq!(problem.origin, env);
        assert_eq!(problem.to_string(), "TURNPIKE_UDP: x");
        assert_eq!(sources.origin_of("tcp"), Origin::Default);
    }
}
