//! Reading the configuration file into a [`ConfigLayer`], collecting every problem rather than the
//! first.
//!
//! serde stops at the first bad value, so the file is first read as a table of spanned keys and
//! each key is then deserialized on its own: one bad value does not hide the next, and every
//! problem gets the line of its key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::error::{Origin, Problem, Reason};
use super::layer::{keys, ConfigLayer};
use super::locate::line_of;
use super::suggest::{closest_key, coturn_hint};
use super::values::{SECRET_KEYS, SECRET_LIST_KEYS};

/// What a configuration file contributed: the keys it set correctly, the line of every key, and the
/// problems found in it.
#[derive(Debug, Clone, Default)]
pub struct FileLayer {
    /// Every well-typed known key; paths made relative to the file's directory.
    pub layer: ConfigLayer,
    /// Line of every top-level key, known or not.
    pub lines: BTreeMap<String, usize>,
    /// Syntax errors, unknown keys and badly typed values, in line order.
    pub problems: Vec<Problem>,
}

/// Reads and parses the file at `path`; an unreadable file is a single problem.
pub fn read(path: &Path) -> FileLayer {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text),
        Err(error) => FileLayer {
            problems: vec![Problem {
                origin: Origin::File {
                    path: path.to_owned(),
                    line: None,
                },
                key: None,
                reason: Reason::Unreadable(error.to_string()),
            }],
            ..FileLayer::default()
        },
    }
}

/// Parses `text`, the contents of the file at `path` (used for messages and relative paths).
pub fn parse(path: &Path, text: &str) -> FileLayer {
    let at = |line: Option<usize>| Origin::File {
        path: path.to_owned(),
        line,
    };
    let table: BTreeMap<Spanned<String>, toml::Value> = match toml::from_str(text) {
        Ok(table) => table,
        Err(error) => {
            let line = error.span().map(|span| line_of(text, span.start));
            let problem = match super::coturn::looks_like_turnserver_conf(text) {
                Some((line, key)) => Problem {
                    origin: at(None),
                    key: None,
                    reason: Reason::CoturnFile {
                        path: path.to_owned(),
                        line,
                        key,
                    },
                },
                None => Problem {
                    origin: at(line),
                    key: None,
                    reason: Reason::Syntax(one_line(error.message())),
                },
            };
            return FileLayer {
                problems: vec![problem],
                ..FileLayer::default()
            };
        }
    };

    let known: Vec<String> = keys().collect();
    let mut file = FileLayer::default();
    for (key, value) in table {
        let line = line_of(text, key.span().start);
        let key = key.into_inner();
        file.lines.insert(key.clone(), line);
        let problem = |reason| Problem {
            origin: at(Some(line)),
            key: Some(key.clone()),
            reason,
        };
        if !known.contains(&key) {
            file.problems
                .push(problem(unknown_key_reason(&key, &value, &known)));
            continue;
        }
        let secret = SECRET_KEYS.contains(&key.as_str());
        if let Some(reason) = secret.then(|| secret_type_problem(&key, &value)).flatten() {
            file.problems.push(problem(reason));
            continue;
        }
        match one_key_layer(&key, value) {
            Ok(layer) => file.layer = file.layer.overlay(layer),
            // Unreachable once the types are right (a `Secret` parses from any string), and
            // serde's text may quote the value: never print it for a secret.
            Err(_) if secret => file.problems.push(problem(Reason::BadValue(
                "cannot be read (the value is not shown: it is a secret)".to_owned(),
            ))),
            Err(reason) => file.problems.push(problem(reason)),
        }
    }
    if let Some(dir) = path.parent() {
        file.layer = resolve_relative_paths(file.layer, dir);
    }
    super::locate::sort(&mut file.problems);
    file
}

/// Deserializes a single `key = value` pair with the same serde rules as the whole file.
fn one_key_layer(key: &str, value: toml::Value) -> Result<ConfigLayer, Reason> {
    let mut table = toml::Table::new();
    table.insert(key.to_owned(), value);
    toml::Value::Table(table)
        .try_into::<ConfigLayer>()
        .map_err(|error| Reason::BadValue(one_line(error.message())))
}

/// The problem with the value of a secret key when its TOML type is wrong, in words that name
/// types and positions only. serde's own message quotes the value (`invalid type: string
/// "alice:PASSWORD", expected a sequence`), which would print a password or a secret.
fn secret_type_problem(key: &str, value: &toml::Value) -> Option<Reason> {
    const NOT_SHOWN: &str = "the value is not shown: it is a secret";
    let list = SECRET_LIST_KEYS.contains(&key);
    let why = match value {
        toml::Value::Array(entries) if list => {
            let (i, entry) = entries.iter().enumerate().find(|(_, e)| !e.is_str())?;
            format!(
                "entry {} is {}, expected a string; {NOT_SHOWN}",
                i + 1,
                a_type(entry)
            )
        }
        toml::Value::String(_) if !list => return None,
        other => {
            let expected = match key {
                "users" => "a list of strings such as [\"NAME:PASSWORD\"]",
                _ if list => "a list of strings",
                _ => "a string",
            };
            format!("expected {expected}, found {}; {NOT_SHOWN}", a_type(other))
        }
    };
    Some(Reason::BadValue(why))
}

/// "a string", "an integer", … for messages about a value that must not be quoted.
fn a_type(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

/// A parser message on one line, so that every problem is exactly one line of output.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Explains an unknown key: a table gets a hint that the file is flat, one of coturn's names the
/// Turnpike key to use, anything else a spelling hint.
fn unknown_key_reason(key: &str, value: &toml::Value, known: &[String]) -> Reason {
    if let Some(hint) = coturn_hint(key) {
        return Reason::CoturnKey(hint);
    }
    if value.is_table() {
        let prefix = format!("{key}-");
        let hint = known
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        return Reason::Table { hint };
    }
    let suggestion = closest_key(key, known.iter().map(String::as_str)).map(str::to_owned);
    Reason::UnknownKey { suggestion }
}

/// Makes relative paths in the file relative to the file's directory rather than to the server's
/// working directory, so that a configuration keeps working wherever the server is started from.
/// (Flags and env vars stay relative to the working directory, as a shell user expects.)
fn resolve_relative_paths(mut layer: ConfigLayer, dir: &Path) -> ConfigLayer {
    let resolve = |path: PathBuf| {
        if path.is_relative() {
            dir.join(path)
        } else {
            path
        }
    };
    layer.tls_cert = layer.tls_cert.map(resolve);
    layer.tls_key = layer.tls_key.map(resolve);
    layer.https_cert = layer.https_cert.map(resolve);
    layer.https_key = layer.https_key.map(resolve);
    layer.user_db = layer.user_db.map(resolve);
    layer
}
