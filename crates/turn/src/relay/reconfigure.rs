//! Applying a reloaded configuration to a running core: credentials, peer policy, quotas and
//! per-allocation caps change in place; allocations, permissions, channels, nonces and failure
//! counts are kept. Addresses, ports and the realm are fixed for the life of a core (the
//! driver names them as needing a restart).
//!
//! Everything costly (indexing the users hashes every name: about 6 ms for 10,000 users on
//! the reference machine) happens when the [`Reloadable`] is built, before the driver takes a
//! worker's lock; [`TurnServer::reconfigure`] only swaps values and hands the old ones back,
//! so that they are freed after the lock is released too.

use std::time::Duration;

use super::config::TurnConfig;
use super::server::TurnServer;
use crate::auth::credentials::UserTable;
use crate::auth::StaticUser;
use crate::policy::PeerPolicy;

/// What a configuration reload may change in a running core.
#[derive(Debug, Clone)]
pub struct Reloadable {
    /// Static users (file and database), indexed for the core's realm.
    pub users: UserTable,
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
    /// The reloadable part of `config`, with these credentials (`users` keyed for `realm`,
    /// which must be the core's) and policy.
    pub fn new(
        config: &TurnConfig,
        realm: &str,
        users: Vec<StaticUser>,
        rest_secrets: Vec<String>,
        policy: PeerPolicy,
    ) -> Reloadable {
        Reloadable {
            users: UserTable::new(users, realm),
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
    /// Applies `update` and returns what it replaced (users, secrets, policy), to be dropped
    /// outside the caller's lock. Limits apply to the next request that checks them: an
    /// allocation over a lowered cap keeps what it has and gets no more; a changed bandwidth
    /// cap applies to allocations made from now on.
    pub fn reconfigure(&mut self, update: Reloadable) -> Replaced {
        let users = self.auth.replace_users(update.users);
        let rest_secrets = self.auth.set_rest_secrets(update.rest_secrets);
        let policy = std::mem::replace(&mut self.policy, update.policy);
        let config = &mut self.config;
        config.user_quota = update.user_quota;
        config.total_quota = update.total_quota;
        config.max_permissions = update.max_permissions;
        config.max_channels = update.max_channels;
        config.bandwidth = update.bandwidth;
        config.max_lifetime = update.max_lifetime;
        // The policy may forbid peers the fast path relays to now.
        self.fast_path_touch_all();
        Replaced {
            _users: users,
            _rest_secrets: rest_secrets,
            _policy: policy,
        }
    }
}

/// What [`TurnServer::reconfigure`] replaced, only to be dropped.
#[derive(Debug)]
#[must_use = "drop it after releasing the lock around the core"]
pub struct Replaced {
    _users: UserTable,
    _rest_secrets: Vec<String>,
    _policy: PeerPolicy,
}
