//! The static users, found by USERNAME or by USERHASH (RFC 8489 §14.3, §14.4).

use std::collections::BTreeMap;

use super::config::{StaticUser, UserKeys};

/// Static users, indexed by name and by USERHASH = SHA-256(username ":" realm).
#[derive(Debug, Clone, Default)]
pub struct UserTable {
    by_name: BTreeMap<String, UserKeys>,
    /// USERHASH → username (a key of `by_name`).
    by_hash: BTreeMap<[u8; 32], String>,
}

impl UserTable {
    /// Indexes `users` for `realm`. A name given twice keeps its last keys.
    pub fn new(users: Vec<StaticUser>, realm: &str) -> UserTable {
        let mut table = UserTable::default();
        for user in users {
            table
                .by_hash
                .insert(stun::userhash(&user.username, realm), user.username.clone());
            table.by_name.insert(user.username, user.keys);
        }
        table
    }

    /// The keys of the user named `username`.
    pub fn by_name(&self, username: &str) -> Option<&UserKeys> {
        self.by_name.get(username)
    }

    /// The name and keys of the user whose USERHASH is `hash`.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Option<(&str, &UserKeys)> {
        let name = self.by_hash.get(hash)?;
        let keys = self.by_name.get(name)?;
        Some((name, keys))
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when there are no static users.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §14.4: USERHASH = SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
    #[test]
    fn users_resolve_by_name_and_hash() {
        let alice = StaticUser::from_password("alice", "example.org", "pw");
        let table = UserTable::new(
            vec![
                StaticUser::from_password("alice", "example.org", "old"),
                alice.clone(),
            ],
            "example.org",
        );
        assert_eq!(table.len(), 1);
        assert_eq!(table.by_name("alice"), Some(&alice.keys));
        assert_eq!(table.by_name("bob"), None);
        let hash = stun::userhash("alice", "example.org");
        assert_eq!(table.by_hash(&hash), Some(("alice", &alice.keys)));
        assert_eq!(table.by_hash(&stun::userhash("alice", "other")), None);
        assert!(UserTable::default().is_empty());
    }
}
