//! What the authenticator is told: realm, nonce secret, users (as keys), TURN REST secrets
//! and the failure limits.

use std::fmt;
use std::time::Duration;

use stun::attributes::PasswordAlgorithmId;
use stun::LongTermKey;

use crate::budget::DEFAULT_BUDGET_RATE;

/// Nonce lifetime when none is configured: 600 s, as coturn (RFC 8656 §5 leaves it open).
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(600);
/// Failed authentications allowed per source address per window when none is configured.
pub const DEFAULT_FAILURES_ALLOWED: u32 = 10;
/// Length of the failure-counting window when none is configured.
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Slots of the per-source tables when no size is configured (8 bytes each).
pub const DEFAULT_RATE_LIMIT_TABLE_SIZE: usize = 65_536;

/// How the [`crate::auth::Authenticator`] is set up.
#[derive(Clone)]
pub struct AuthConfig {
    /// REALM sent in challenges and required in requests (RFC 8489 §14.9: fewer than 128
    /// characters; RECOMMENDED: the provider's domain name, §9.2.4).
    pub realm: String,
    /// Key of the nonce MAC. Random at start, or configured so that the nodes of a cluster
    /// (and a restarted node) accept each other's nonces.
    pub nonce_secret: [u8; 32],
    /// How long a nonce stays valid; older ones get 438 (Stale Nonce).
    pub nonce_lifetime: Duration,
    /// Users with fixed credentials (from the configuration file or SQLite).
    pub users: Vec<StaticUser>,
    /// TURN REST shared secrets (draft-uberti-behave-turn-rest §2.2); several during a
    /// rotation (§5.2). Empty: REST credentials are off.
    pub rest_secrets: Vec<String>,
    /// Failed authentications allowed per source address in one window; more are dropped.
    pub failures_allowed: u32,
    /// Length of the failure-counting window.
    pub failure_window: Duration,
    /// Slots of the per-source tables (failure counts, amplification budget).
    pub rate_limit_table_size: usize,
    /// Bytes per second a source may get in unauthenticated answers beyond the size of its
    /// requests (burst: 4 s of it); 0 turns the budget off. See [`crate::budget`].
    pub response_budget: u32,
}

impl AuthConfig {
    /// A configuration with `realm` and `nonce_secret`, no users, no REST secrets and the
    /// default lifetimes and limits.
    pub fn new(realm: impl Into<String>, nonce_secret: [u8; 32]) -> AuthConfig {
        AuthConfig {
            realm: realm.into(),
            nonce_secret,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            users: Vec::new(),
            rest_secrets: Vec::new(),
            failures_allowed: DEFAULT_FAILURES_ALLOWED,
            failure_window: DEFAULT_FAILURE_WINDOW,
            rate_limit_table_size: DEFAULT_RATE_LIMIT_TABLE_SIZE,
            response_budget: DEFAULT_BUDGET_RATE,
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets never reach a log line; user names may (at debug level only).
        f.debug_struct("AuthConfig")
            .field("realm", &self.realm)
            .field("nonce_secret", &"..")
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("users", &self.users.len())
            .field("rest_secrets", &self.rest_secrets.len())
            .field("failures_allowed", &self.failures_allowed)
            .field("failure_window", &self.failure_window)
            .field("rate_limit_table_size", &self.rate_limit_table_size)
            .field("response_budget", &self.response_budget)
            .finish()
    }
}

/// A user with fixed long-term credentials. Only keys are kept, never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// The USERNAME the client sends.
    pub username: String,
    /// The user's keys for the configured realm.
    pub keys: UserKeys,
}

impl StaticUser {
    /// A user whose keys are derived from `password` for `realm`.
    pub fn from_password(username: &str, realm: &str, password: &str) -> StaticUser {
        StaticUser {
            username: username.to_owned(),
            keys: UserKeys::from_password(username, realm, password),
        }
    }
}

/// Both long-term keys of a user (RFC 8489 §9.2.2, §18.5.1): what a server stores instead
/// of the password, as SIP servers store H(A1).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UserKeys {
    /// MD5(username ":" realm ":" password).
    pub md5: [u8; 16],
    /// SHA-256(username ":" realm ":" password).
    pub sha256: [u8; 32],
}

impl UserKeys {
    /// Derives both keys from a password (SASLprep-ed by the codec, RFC 8489 §9.2.2).
    pub fn from_password(username: &str, realm: &str, password: &str) -> UserKeys {
        let md5 = match LongTermKey::derive(PasswordAlgorithmId::MD5, username, realm, password) {
            Some(LongTermKey::Md5(key)) => key,
            // The codec derives an MD5 key for MD5, always.
            _ => unreachable!("LongTermKey::derive(MD5) yields an MD5 key"),
        };
        let sha256 =
            match LongTermKey::derive(PasswordAlgorithmId::SHA256, username, realm, password) {
                Some(LongTermKey::Sha256(key)) => key,
                // The codec derives a SHA-256 key for SHA-256, always.
                _ => unreachable!("LongTermKey::derive(SHA256) yields a SHA-256 key"),
            };
        UserKeys { md5, sha256 }
    }

    /// The key for a password algorithm: SHA-256 for SHA256, MD5 for anything else (the
    /// authenticator only lets MD5 and SHA256 through, RFC 8489 §9.2.4).
    pub fn key(&self, algorithm: PasswordAlgorithmId) -> LongTermKey {
        if algorithm == PasswordAlgorithmId::SHA256 {
            LongTermKey::Sha256(self.sha256)
        } else {
            LongTermKey::Md5(self.md5)
        }
    }
}

impl fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A key is as good as a password: never print it.
        f.write_str("UserKeys(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8489 §9.2.2: 'user', 'realm', 'pass' gives the MD5 key 0x8493fbc5....
    #[test]
    fn keys_follow_the_rfc_example() {
        let keys = UserKeys::from_password("user", "realm", "pass");
        assert_eq!(
            keys.md5,
            [
                0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb, 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc,
                0x40, 0xeb
            ]
        );
        assert_eq!(
            keys.key(PasswordAlgorithmId::SHA256),
            LongTermKey::derive(PasswordAlgorithmId::SHA256, "user", "realm", "pass").unwrap()
        );
        assert_eq!(
            keys.key(PasswordAlgorithmId::MD5),
            LongTermKey::Md5(keys.md5)
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let mut config = AuthConfig::new("example.org", [7; 32]);
        config.rest_secrets.push("hunter2".into());
        config
            .users
            .push(StaticUser::from_password("alice", "example.org", "pw"));
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2") && !text.contains("7, 7"));
        assert_eq!(format!("{:?}", config.users[0].keys), "UserKeys(..)");
    }
}
