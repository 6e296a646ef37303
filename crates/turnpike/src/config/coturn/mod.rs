//! coturn's `turnserver.conf` into a Turnpike TOML file (`turnpike config import-coturn`), and
//! the coturn names `config check` recognizes.
//!
//! [`parse`] splits lines as coturn does, [`translate`] maps options to Turnpike keys (the
//! table of every coturn option is [`keys`]), and [`import`] writes the result as TOML, with a
//! comment for every option dropped or meaning something different.

mod keys;
mod parse;
mod ranges;
mod translate;

use std::path::{Path, PathBuf};

pub use keys::{find as find_key, CoturnKey};
pub use translate::{Note, Problem};

use super::layer;
use translate::{Entry, Translation};

/// Comment lines are wrapped at this width.
const COMMENT_WIDTH: usize = 98;

/// A translated file.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The Turnpike TOML file, comments included. It holds the original's secrets.
    pub toml: String,
    /// Turnpike keys written.
    pub translated: usize,
    /// coturn options dropped, each with the reason (also comments of `toml`).
    pub dropped: Vec<Note>,
    /// Differences of meaning (also comments of `toml`).
    pub differs: Vec<Note>,
}

/// Translates `text`, the contents of the coturn file at `source`. Relative paths in it (`cert`,
/// `pkey`) are taken from the file's directory and written absolute. Fails with every line that
/// coturn would not accept either: an unknown option, a bad value.
pub fn import(source: &Path, text: &str) -> Result<Imported, Vec<Problem>> {
    let directives = parse::directives(text);
    let base = absolute_dir(source);
    let translation = translate::translate(&directives, &base)?;
    Ok(Imported {
        toml: render(source, &translation),
        translated: translation.entries.len(),
        dropped: translation.dropped,
        differs: translation.differs,
    })
}

/// When `text` (which is not valid TOML) reads like a `turnserver.conf` — most of its lines are
/// coturn options, and one of them is not also a Turnpike key — the first such option and its
/// line.
pub fn looks_like_turnserver_conf(text: &str) -> Option<(usize, &'static str)> {
    let directives = parse::directives(text);
    let known: Vec<(usize, &'static CoturnKey)> = directives
        .iter()
        .filter_map(|d| keys::find(&d.key).map(|key| (d.line, key)))
        .collect();
    if known.is_empty() || known.len() * 2 < directives.len() {
        return None;
    }
    let turnpike: Vec<String> = layer::keys().collect();
    known
        .into_iter()
        .find(|(_, key)| !turnpike.iter().any(|k| k == key.name))
        .map(|(line, key)| (line, key.name))
}

/// The directory of `source`, absolute (relative to the working directory when `source` is).
fn absolute_dir(source: &Path) -> PathBuf {
    let dir = source.parent().unwrap_or(Path::new(""));
    if dir.is_absolute() {
        return dir.to_owned();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(dir))
        .unwrap_or_else(|_| dir.to_owned())
}

/// The output file: a header with every dropped option and difference, then the keys in the
/// order of `turnpike config example`, each under a comment naming its coturn lines.
fn render(source: &Path, translation: &Translation) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!(
            "Translated from coturn's {} by `turnpike config import-coturn`.",
            source.display()
        ),
    );
    comment(
        &mut out,
        "This file holds the credentials of the original (`users`, `rest-secrets`): keep it \
         readable by the server's user only. Check it with `turnpike config check FILE`.",
    );
    notes(&mut out, "Left out:", &translation.dropped);
    let unattached: Vec<Note> = translation
        .differs
        .iter()
        .filter(|note| !note.attached)
        .cloned()
        .collect();
    notes(&mut out, "Different in Turnpike:", &unattached);

    let mut doc = toml_edit::DocumentMut::new();
    for key in layer::keys() {
        let Some(entry) = translation.entries.get(key.as_str()) else {
            continue;
        };
        doc.insert(&key, toml_edit::Item::Value(entry.value.clone()));
        if let Some(mut written) = doc.key_mut(&key) {
            written.leaf_decor_mut().set_prefix(entry_comment(entry));
        }
    }
    out.push_str(&doc.to_string());
    out
}

/// `- `KEY`, line N: WHY` for each note, under `title`.
fn notes(out: &mut String, title: &str, notes: &[Note]) {
    if notes.is_empty() {
        return;
    }
    out.push_str("#\n");
    comment(out, title);
    for note in notes {
        let line = note
            .line
            .map_or_else(|| "not set".to_owned(), |line| format!("line {line}"));
        bullet(out, &format!("- `{}` ({line}): {}", note.key, note.why));
    }
}

/// The comment above a key: where it comes from, and how it differs.
fn entry_comment(entry: &Entry) -> String {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (key, line) in &entry.from {
        match groups.iter_mut().find(|(k, _)| k == key) {
            Some((_, lines)) => lines.push(*line),
            None => groups.push((key, vec![*line])),
        }
    }
    let from: Vec<String> = groups
        .iter()
        .map(|(key, lines)| {
            let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
            let word = if lines.len() == 1 { "line" } else { "lines" };
            format!("`{key}` ({word} {})", lines.join(", "))
        })
        .collect();
    let mut text = String::from("\n");
    if !from.is_empty() {
        comment(&mut text, &format!("coturn: {}", from.join(", ")));
    }
    for why in &entry.differs {
        comment(&mut text, &format!("Different: {why}"));
    }
    text
}

/// Appends `text` as `#` lines, wrapped.
fn comment(out: &mut String, text: &str) {
    wrapped(out, text, "");
}

/// [`comment`] for a list item: continuation lines are indented under its text.
fn bullet(out: &mut String, text: &str) {
    wrapped(out, text, "  ");
}

/// Appends `text` as `#` lines wrapped at [`COMMENT_WIDTH`], continuation lines starting with
/// `indent`; control characters (which would end a TOML comment or be refused in one) become
/// `?`.
fn wrapped(out: &mut String, text: &str, indent: &str) {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + word.chars().count() + 1 > COMMENT_WIDTH {
            out.push_str(&format!("# {line}\n"));
            line = String::from(indent);
        } else if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&format!("# {}\n", line.trim_end()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_wrap_and_stay_comments() {
        let mut out = String::new();
        comment(&mut out, &"word ".repeat(60));
        comment(&mut out, "a\rb\u{7}c");
        assert!(
            out.lines().all(|l| l.starts_with("# ") && l.len() <= 102),
            "{out}"
        );
        assert!(out.ends_with("# a?b?c\n"), "{out}");
    }

    #[test]
    fn turnserver_conf_is_recognized_and_toml_is_not() {
        let conf = "# coturn\nlistening-port=3478\nfingerprint\nrealm=example.org\n";
        assert_eq!(
            looks_like_turnserver_conf(conf),
            Some((2, "listening-port"))
        );
        // Keys both programs share are not enough: this is a broken Turnpike file.
        assert_eq!(
            looks_like_turnserver_conf("realm = \"x\"\nmin-port = \n"),
            None
        );
        assert_eq!(
            looks_like_turnserver_conf("listen = [\"x\"\nudp = true\n"),
            None
        );
        assert_eq!(looks_like_turnserver_conf(""), None);
    }
}
