//! "Did you mean …?" for misspelt keys, and "that is coturn's name" for coturn's options.

use super::coturn;

/// The known key closest to `unknown`, if it is close enough to be a likely typo.
///
/// Underscores count as dashes, because `tls_cert` for `tls-cert` is the most common slip. "Close
/// enough" is an edit distance of at most a third of the key's length (at least 1), which catches
/// one or two typos without proposing unrelated short keys.
pub fn closest_key<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = unknown.replace('_', "-").to_ascii_lowercase();
    let limit = (wanted.chars().count() / 3).max(1);
    known
        .into_iter()
        .map(|key| (edit_distance(&wanted, key), key))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, key)| key)
}

/// What to write instead of `unknown` when it is one of coturn's option names (people moving
/// from coturn write `static-auth-secret` or `listening-port`): the Turnpike key, or why there is
/// none. Underscores count as dashes, as in [`closest_key`].
pub fn coturn_hint(unknown: &str) -> Option<String> {
    let key = coturn::find_key(unknown).or_else(|| coturn::find_key(&unknown.replace('_', "-")))?;
    Some(match key.turnpike {
        Some(turnpike) => format!(
            "`{}` is coturn's name: use `{turnpike}` ({})",
            key.name, key.note
        ),
        None => format!(
            "`{}` is a coturn option with no Turnpike key: {}",
            key.name, key.note
        ),
    })
}

/// Levenshtein distance over characters (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // One row of the classic dynamic-programming table: `row[j]` is the distance between the prefix
    // of `a` seen so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [&str; 4] = ["listen", "tls-cert", "tls-key", "tcp-idle-timeout"];

    #[test]
    fn distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(closest_key("lisen", KEYS), Some("listen"));
        assert_eq!(closest_key("tls_cert", KEYS), Some("tls-cert"));
        assert_eq!(closest_key("TLS-KEY", KEYS), Some("tls-key"));
        assert_eq!(
            closest_key("tcp-idle-timout", KEYS),
            Some("tcp-idle-timeout")
        );
        assert_eq!(closest_key("realm", KEYS), None);
    }

    #[test]
    fn coturn_names_get_the_turnpike_key() {
        let hint = coturn_hint("static-auth-secret").unwrap();
        assert!(
            hint.starts_with("`static-auth-secret` is coturn's name: use `rest-secrets`"),
            "{hint}"
        );
        assert!(coturn_hint("listening_port")
            .unwrap()
            .contains("use `listen`"));
        let hint = coturn_hint("fingerprint").unwrap();
        assert!(
            hint.contains("no Turnpike key: Turnpike adds FINGERPRINT"),
            "{hint}"
        );
        assert_eq!(coturn_hint("lisen"), None);
    }
}
