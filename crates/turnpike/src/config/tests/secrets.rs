//! Secret keys (`users`, `rest-secrets`, `nonce-secret`, `signaling-secret`): a problem with
//! one names the key, the line and the reason, and never quotes the value — not for a wrong
//! type, not for a value the rules reject, not for a syntax error on its line.

use super::problems;
use crate::config::values::SECRET_KEYS;
use crate::config::Origin;

/// Text that must never appear in a message: each bad value below contains it.
const SENTINEL: &str = "S3CR3T-S3NT1N3L";
/// The same, for values that must be numbers.
const NUMERIC_SENTINEL: &str = "9876543219";

/// Wrongly typed or rejected values of `key`, each holding a sentinel.
fn bad_values(key: &str) -> Vec<String> {
    let s = SENTINEL;
    let n = NUMERIC_SENTINEL;
    let mut values = vec![
        n.to_owned(),
        format!("{n}.5"),
        "true".to_owned(),
        format!("{{ alice = \"{s}\" }}"),
        format!("[{n}, {n}]"),
        format!("[[\"{s}\"]]"),
        format!("[{{ x = \"{s}\" }}]"),
    ];
    if key == "users" || key == "rest-secrets" {
        // A string where a list is expected (the mistake of issue #10), an entry of the wrong
        // type after a good one, entries the rules reject.
        values.push(format!("\"alice:{s}\""));
        values.push(format!("[\"bob:{s}x\", {n}]"));
        values.push(format!("[\"{s}\", \"{s}\"]"));
        values.push("[\"S3NT\"]".replace("S3NT", &s[..6]));
    } else {
        // A list where a string is expected; too short; not hex (`nonce-secret`).
        values.push(format!("[\"{s}\"]"));
        values.push(format!("\"{}\"", &s[..6]));
        if key == "nonce-secret" {
            values.push(format!("\"{s}{s}{s}{s}{s}\""));
        }
    }
    values
}

#[test]
fn every_secret_key_is_known() {
    let known: Vec<String> = crate::config::layer::keys().collect();
    for key in SECRET_KEYS {
        assert!(known.iter().any(|k| k == key), "{key} is not a key");
    }
    assert!(SECRET_KEYS.contains(&"users") && SECRET_KEYS.contains(&"nonce-secret"));
}

#[test]
fn a_bad_secret_value_is_named_by_key_and_line_never_shown() {
    let mut checked = 0;
    for key in SECRET_KEYS {
        for value in bad_values(key) {
            let text = format!("udp = true\n\n{key} = {value}\n");
            let found = problems(&text);
            let printed: Vec<String> = found.iter().map(ToString::to_string).collect();
            let about_key: Vec<_> = found
                .iter()
                .filter(|p| p.key.as_deref() == Some(key))
                .collect();
            assert!(!about_key.is_empty(), "{text:?} gave {printed:#?}");
            for problem in about_key {
                assert!(
                    matches!(problem.origin, Origin::File { line: Some(3), .. }),
                    "{text:?}: {problem:?}"
                );
            }
            for line in &printed {
                assert!(
                    !line.contains(SENTINEL) && !line.contains(&SENTINEL[..6]),
                    "{text:?} printed the secret: {line}"
                );
                assert!(
                    !line.contains(NUMERIC_SENTINEL),
                    "{text:?} printed the secret: {line}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 4 * 9, "only {checked} cases");
}

#[test]
fn a_syntax_error_on_a_secret_line_does_not_show_it() {
    let s = SENTINEL;
    let texts = [
        format!("users = [\"alice:{s}]\n"),
        format!("rest-secrets = [{s}]\n"),
        format!("nonce-secret = {s}\n"),
        format!("signaling-secret = \"{s}\" \"{s}\"\n"),
        format!("users = [\"alice:{s}\",\n"),
        format!("signaling-secret = '''{s}\n"),
        format!("users = \"alice:{s}\"\nusers = \"bob:{s}\"\n"),
    ];
    for text in texts {
        for problem in problems(&text) {
            let line = problem.to_string();
            assert!(
                !line.contains(&s[..6]),
                "{text:?} printed the secret: {line}"
            );
        }
    }
}

#[test]
fn the_reason_says_what_was_expected() {
    let found = problems(&format!("users = \"alice:{SENTINEL}\"\n"));
    let line = found[0].to_string();
    assert!(line.contains("key `users`"), "{line}");
    assert!(line.contains("list"), "{line}");
    assert!(line.contains("string"), "{line}");
}
