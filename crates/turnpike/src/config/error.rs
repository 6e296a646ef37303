//! What can be wrong with a configuration, and where it came from.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from; decides how a problem with it is printed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The configuration file; the line is 1-based and unknown for whole-file problems.
    File {
        /// The file as given by the user.
        path: PathBuf,
        /// 1-based line of the key, when known.
        line: Option<usize>,
    },
    /// A `--KEY` flag.
    Flag,
    /// An environment variable: `TURNPIKE_KEY`, or `RUST_LOG` for `log-level`.
    Env {
        /// The variable's name.
        var: String,
    },
    /// The built-in default (only reachable when a rule depends on a defaulted key).
    Default,
}

/// Why a value is rejected. Each variant's text completes the sentence "key `K`: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The file is not valid TOML.
    #[error("{0}")]
    Syntax(String),
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    /// A key that Turnpike does not know.
    #[error("unknown key{}", did_you_mean(suggestion.as_deref()))]
    UnknownKey {
        /// A known key close to the unknown one.
        suggestion: Option<String>,
    },
    /// One of coturn's option names: the hint says what Turnpike uses instead.
    #[error("unknown key: {0}")]
    CoturnKey(String),
    /// The whole file is coturn's `turnserver.conf`, not TOML.
    #[error(
        "this looks like coturn's turnserver.conf (`{key}` on line {line}), not a Turnpike TOML \
         file: translate it with `turnpike config import-coturn {} > turnpike.toml`",
        path.display()
    )]
    CoturnFile {
        /// The file, as given.
        path: PathBuf,
        /// Line of the first coturn option that is not a Turnpike key.
        line: usize,
        /// That option.
        key: &'static str,
    },
    /// A table (`[name]`): the configuration is flat.
    #[error("tables are not used, the file is flat{}", table_hint(hint))]
    Table {
        /// The known keys that start with the table name.
        hint: Vec<String>,
    },
    /// The value has the wrong type or cannot be parsed.
    #[error("{0}")]
    BadValue(String),
    /// An integer outside its allowed range.
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The given value.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A list that must not be empty is empty.
    #[error("must list at least one address")]
    Empty,
    /// The same address is listed twice.
    #[error("`{0}` is listed twice")]
    Duplicate(String),
    /// A key that only makes sense together with another one.
    #[error("requires `{0}` to be set as well")]
    Requires(&'static str),
    /// A file named by the key cannot be used.
    #[error("cannot read `{path}`: {error}")]
    MissingFile {
        /// The path as resolved.
        path: PathBuf,
        /// What the operating system said.
        error: String,
    },
    /// A rule between keys, explained in full.
    #[error("{0}")]
    Rule(String),
}

/// "; did you mean `listen`?" when there is a close known key.
fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion
        .map(|key| format!("; did you mean `{key}`?"))
        .unwrap_or_default()
}

/// "; write top-level keys such as `tls-cert`, `tls-key`" for the keys a table name was meant to
/// group.
fn table_hint(keys: &[String]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let keys: Vec<String> = keys.iter().map(|key| format!("`{key}`")).collect();
    format!("; write top-level keys such as {}", keys.join(", "))
}

/// One problem with one key (or with the whole file when `key` is `None`), located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the offending value came from.
    pub origin: Origin,
    /// The key in file spelling; `None` for whole-file problems such as syntax errors.
    pub key: Option<String>,
    /// What is wrong.
    pub reason: Reason,
}

impl fmt::Display for Problem {
    /// `FILE:LINE: key `KEY`: REASON`, `--KEY: REASON` or `TURNPIKE_KEY: REASON`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("");
        match &self.origin {
            Origin::File { path, line } => {
                write!(f, "{}", path.display())?;
                if let Some(line) = line {
                    write!(f, ":{line}")?;
                }
                match &self.key {
                    Some(key) => write!(f, ": key `{key}`: {}", self.reason),
                    None => write!(f, ": {}", self.reason),
                }
            }
            Origin::Flag => write!(f, "--{key}: {}", self.reason),
            Origin::Env { var } => write!(f, "{var}: {}", self.reason),
            Origin::Default => write!(f, "default of `{key}`: {}", self.reason),
        }
    }
}

impl std::error::Error for Problem {}

/// A configuration that cannot be used: every problem found, in file-line order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The problems, at least one.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    /// One problem per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A problem found by validation, before it is located: the key it belongs to and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// The key in file spelling.
    pub key: &'static str,
    /// What is wrong.
    pub reason: Reason,
}
