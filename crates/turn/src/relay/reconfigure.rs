//! Applying a reloaded configuration to a running core: credentials, peer policy, quotas and
//! per-allocation caps change in place; allocations, permissions, channels, nonces and failure
//! counts are kept. Addresses, ports and the realm are fixed for the life of a core (the
//! driver names them as needing a restart).

use std::time::Duration;

use super::config::TurnConfig;
use super::server::TurnServer;
use crate::auth::StaticUser;
use crate::policy::PeerPolicy;

/// What a configuration reload may change in a running core.
#[derive(Debug, Clone)]
pub struct Reloadable {
    /// Static users (file and database), as keys for the core's realm.
    pub users: Vec<StaticUser>,
    /// TURN REST secrets.
    pub rest_secrets: Vec<String>,
    /// The peer-address policy.
    pub policy: PeerPolicy,
    /// Allocations per username; 0: no limit.
    pub user_quota: usize,
    /// Allocations per server.
    pub total_quota: usize,
    /// Live permissions per allocation.
    pub max_permissions: usize,
    /// Channel bindings per allocation.
    pub max_channels: usize,
    /// Bytes per second per allocation, for allocations made from now on.
    pub bandwidth: Option<u64>,
    /// Longest lifetime granted from now on.
    pub max_lifetime: Duration,
}

impl Reloadable {
    /// The reloadable part of `config`, with these credentials and policy.
    pub fn new(
        config: &TurnConfig,
        users: Vec<StaticUser>,
        rest_secrets: Vec<String>,
        policy: PeerPolicy,
    ) -> Reloadable {
        Reloadable {
            users,
            rest_secrets,
            policy,
            user_quota: config.user_quota,
            total_quota: config.total_quota,
            max_permissions: config.max_permissions,
            max_channels: config.max_channels,
            bandwidth: config.bandwidth,
            max_lifetime: config.max_lifetime,
        }
    }
}

impl TurnServer {
    /// Applies `update`. Limits apply to the next request that checks them: an allocation
    /// over a lowered cap keeps what it has and gets no more; a changed bandwidth cap applies
    /// to allocations made from now on.
    pub fn reconfigure(&mut self, update: Reloadable) {
        self.auth.set_users(update.users);
        self.auth.set_rest_secrets(update.rest_secrets);
        self.policy = update.policy;
        let config = &mut self.config;
        config.user_quota = update.user_quota;
        config.total_quota = update.total_quota;
        config.max_permissions = update.max_permissions;
        config.max_channels = update.max_channels;
        config.bandwidth = update.bandwidth;
        config.max_lifetime = update.max_lifetime;
    }
}
