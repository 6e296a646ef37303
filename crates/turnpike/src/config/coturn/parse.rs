//! Reading `turnserver.conf` into directives, splitting lines the way coturn's own reader
//! (`read_config_file` and `parse_arg_string` in coturn's `mainrelay.c`) does:
//!
//! - leading blanks are skipped; a line whose first other character is `#` is a comment, and so
//!   is a blank line (a `#` later in a line is part of the value, as in coturn);
//! - trailing white space is removed;
//! - the key runs up to the first space, tab or `=`; every space, tab and `=` after it is
//!   skipped and the rest is the value (`key=value`, `key value`, `key = value`; a bare `key`
//!   has an empty value);
//! - a value starting with `"` loses it, and one closing `"`.

/// One `key[=value]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line number.
    pub line: usize,
    /// The option name, as written (coturn compares names exactly).
    pub key: String,
    /// The value; empty for a bare flag.
    pub value: String,
}

/// Every directive of `text`, in file order.
pub fn directives(text: &str) -> Vec<Directive> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| directive(i + 1, line))
        .collect()
}

/// The directive on `line` (numbered `number`), or `None` for a comment or a blank line.
fn directive(number: usize, line: &str) -> Option<Directive> {
    let line = line.trim_start_matches([' ', '\t']).trim_end();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let separator = |c: char| matches!(c, ' ' | '\t' | '=');
    let (key, rest) = line.split_at(line.find(separator).unwrap_or(line.len()));
    let mut value = rest.trim_start_matches(separator);
    if let Some(quoted) = value.strip_prefix('"') {
        let quoted = quoted.trim_end();
        value = quoted.strip_suffix('"').unwrap_or(quoted);
    }
    Some(Directive {
        line: number,
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// coturn's boolean values (`get_bool_value`): empty (a bare flag) is true; a first character
/// of `0`, `n`, `N`, `f` or `F` is false, of `y`, `Y`, `t`, `T` or `1`–`9` true; `on` and `off`
/// in three spellings. Anything else coturn rejects, and so do we: `None`.
pub fn boolean(value: &str) -> Option<bool> {
    match value.chars().next() {
        None => Some(true),
        Some('0' | 'n' | 'N' | 'f' | 'F') => Some(false),
        Some('y' | 'Y' | 't' | 'T' | '1'..='9') => Some(true),
        _ => match value {
            "off" | "OFF" | "Off" => Some(false),
            "on" | "ON" | "On" => Some(true),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Option<(String, String)> {
        directive(1, line).map(|d| (d.key, d.value))
    }

    fn pair(key: &str, value: &str) -> Option<(String, String)> {
        Some((key.to_owned(), value.to_owned()))
    }

    #[test]
    fn splits_lines_as_coturn_does() {
        assert_eq!(one("listening-port=3478"), pair("listening-port", "3478"));
        assert_eq!(one("listening-port 3478"), pair("listening-port", "3478"));
        assert_eq!(one("  min-port = 49160  "), pair("min-port", "49160"));
        assert_eq!(one("fingerprint"), pair("fingerprint", ""));
        assert_eq!(one("\tverbose\t"), pair("verbose", ""));
        assert_eq!(one("user=alice:pa=ss#1"), pair("user", "alice:pa=ss#1"));
        assert_eq!(one("realm=\"example.org\" "), pair("realm", "example.org"));
        assert_eq!(one("pidfile=\"/run/t.pid"), pair("pidfile", "/run/t.pid"));
        assert_eq!(one("# listening-port=3478"), None);
        assert_eq!(one("   #fingerprint"), None);
        assert_eq!(one("   "), None);
    }

    #[test]
    fn numbers_lines_from_one() {
        let found = directives("# c\n\nfingerprint\nrealm=x\n");
        assert_eq!(found.iter().map(|d| d.line).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn booleans_as_coturn_reads_them() {
        for yes in ["", "1", "9", "yes", "true", "t", "Y", "on", "On"] {
            assert_eq!(boolean(yes), Some(true), "{yes}");
        }
        for no in ["0", "no", "false", "F", "off", "OFF"] {
            assert_eq!(boolean(no), Some(false), "{no}");
        }
        for bad in ["maybe", "enable", "-1"] {
            assert_eq!(boolean(bad), None, "{bad}");
        }
    }
}
