//! What every worker's [`crate::auth::Authenticator`] shares, so that each limit holds per
//! source for the whole server and not per worker: the failure counts and the amplification
//! budget. Built once by the binary and handed to every worker.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::AuthConfig;
use super::rate_limit::FailureLimiter;
use crate::budget::ResponseBudget;

/// The per-source tables shared by all workers.
#[derive(Debug, Clone)]
pub struct SharedLimits {
    /// Failed authentications per source (`auth-failures`).
    pub failures: Arc<FailureLimiter>,
    /// Bytes of unauthenticated answers beyond the requests' sizes, per source.
    pub budget: Arc<ResponseBudget>,
}

impl SharedLimits {
    /// The tables for `config`, placing sources by a hash keyed with `key` (draw it at
    /// random: whoever knows it can pick addresses that collide).
    pub fn new(config: &AuthConfig, key: [u8; 16]) -> SharedLimits {
        SharedLimits {
            failures: Arc::new(FailureLimiter::new(
                config.failures_allowed,
                config.failure_window,
                config.rate_limit_table_size,
                key,
            )),
            budget: Arc::new(ResponseBudget::new(
                config.response_budget,
                config.rate_limit_table_size,
                key,
            )),
        }
    }

    /// The tables of a lone authenticator, keyed by a value derived from the nonce secret
    /// (secret, and no randomness needed in the sans-IO core).
    pub fn derived(config: &AuthConfig) -> SharedLimits {
        let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(&config.nonce_secret) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        };
        mac.update(b"turnpike source table v1");
        let digest = mac.finalize().into_bytes();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        SharedLimits::new(config, key)
    }
}
